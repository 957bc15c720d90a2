//! Golden tests that run twice: natively under `cargo test`, and compiled to wasm32 inside
//! headless Chromium under `wasm-bindgen-test`, so the rules behave the same in the browser
//! SDK as in the broker.

use crate::{
    AuthorizeRequest, Callback, ClientId, Error, PageRequest, PkceChallenge, PkceVerifier,
    Provider, RedirectUri, Scope, Scopes, State, Timestamp,
};

/// Marks a test for both runners.
macro_rules! golden {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {$(
        $(#[$meta])*
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        fn $name() $body
    )*};
}

golden! {
    /// RFC 7636 Appendix B.
    fn pkce_rfc7636_appendix_b() {
        crate::pkce::golden::check();
    }

    /// RFC 4648 §10 (in base64url, unpadded) and FIPS 180-2's "abc": the crates' answers in
    /// the browser as natively.
    fn encodings_rfc4648_and_fips180() {
        for (raw, encoded) in [("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(crate::codec::base64url(raw.as_bytes()), encoded);
        }
        assert_eq!(
            crate::codec::base64url(&crate::codec::sha256(b"abc")),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(
            crate::codec::form_pairs("a+b=c%26d&e"),
            [("a b".into(), "c&d".into()), ("e".into(), String::new())]
        );
    }

    fn pkce_from_random_bytes_round_trips() {
        let verifier = PkceVerifier::from_random_bytes([0xA5; 32]);
        assert_eq!(verifier.expose_secret().len(), 43);
        let challenge = PkceChallenge::parse(verifier.challenge().as_str()).unwrap();
        assert!(challenge.is_satisfied_by(&verifier));
        assert_eq!(PkceVerifier::parse(&"a".repeat(42)).unwrap_err(), Error::InvalidVerifier);
    }

    fn state_is_256_bits_and_compared_exactly() {
        let state = State::from_random_bytes([1; 32]);
        assert_eq!(state.as_str().len(), 43);
        assert!(state.matches(&State::parse(state.as_str()).unwrap()));
        assert!(!state.matches(&State::from_random_bytes([2; 32])));
        assert_eq!(State::parse("fifteen-chars-x").unwrap_err(), Error::InvalidState);
    }

    fn scopes_v1_v2_equivalence_and_coverage() {
        let v1 = Scope::parse("patient/ExplanationOfBenefit.read").unwrap();
        let v2 = Scope::parse("patient/ExplanationOfBenefit.rs").unwrap();
        assert!(v1.equivalent(&v2));
        assert_eq!(v1.to_v2(), v2);
        let granted = Scopes::parse("openid patient/ExplanationOfBenefit.read").unwrap();
        assert!(granted.covers(&Scope::parse("patient/ExplanationOfBenefit.s").unwrap()));
        assert!(!granted.covers(&Scope::parse("patient/Patient.r").unwrap()));
        assert_eq!(Scope::parse("patient/Patient.sr").unwrap_err().code(), "invalid_scope");
    }

    fn blue_button_authorize_url() {
        let provider = Provider::blue_button_sandbox();
        let state = State::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        let verifier = PkceVerifier::parse(crate::pkce::golden::VERIFIER).unwrap();
        let request = AuthorizeRequest::new(
            &provider,
            ClientId::new("client-1").unwrap(),
            RedirectUri::parse("http://localhost:8080/callback").unwrap(),
            Scopes::parse("openid patient/Patient.rs").unwrap(),
            &state,
            &verifier.challenge(),
        )
        .unwrap();
        assert_eq!(
            request.url(),
            "https://sandbox.bluebutton.cms.gov/v2/o/authorize/?response_type=code\
             &client_id=client-1&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback\
             &scope=openid+patient%2FPatient.rs\
             &state=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\
             &aud=https%3A%2F%2Fsandbox.bluebutton.cms.gov%2Fv2%2Ffhir%2F\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256"
        );
    }

    fn callback_checks_state_before_error() {
        let ours = State::from_random_bytes([3; 32]);
        let theirs = State::from_random_bytes([4; 32]);
        let denied = format!("http://localhost/cb?error=access_denied&state={}", theirs.as_str());
        let callback = Callback::parse(&denied).unwrap().unwrap();
        assert_eq!(callback.verify(&ours).unwrap_err(), Error::StateMismatch);
        let denied = format!("http://localhost/cb?error=access_denied&state={}", ours.as_str());
        let callback = Callback::parse(&denied).unwrap().unwrap();
        assert_eq!(callback.verify(&ours).unwrap_err().code(), "access_denied");
        let dup = format!("http://localhost/cb?code=a&code=b&state={}", ours.as_str());
        assert_eq!(
            Callback::parse(&dup).unwrap_err(),
            Error::DuplicateParameter("code".into())
        );
    }

    fn paging_ignores_the_link_host() {
        let page = PageRequest::from_link(
            "http://testserver/v2/fhir/ExplanationOfBenefit?_format=application%2Fjson%2Bfhir\
             &startIndex=30&_count=10&patient=-20140000008325",
        )
        .unwrap();
        assert_eq!((page.start_index, page.count), (30, Some(10)));
    }

    fn timestamps_in_blue_button_shapes() {
        let with_t = Timestamp::parse_rfc3339("2027-12-22T10:11:42Z").unwrap();
        let with_space = Timestamp::parse_rfc3339("2027-12-22 10:11:42Z").unwrap();
        assert_eq!(with_t, with_space);
        assert_eq!(with_t.unix_seconds(), 1_829_470_302);
    }

    /// Codes of any length real servers issue (SMART's reference server: ~850 characters), with
    /// RFC 6749's whole VSCHAR range (a space included); the errors say what is wrong.
    fn authorization_codes_up_to_4096_vschar() {
        use crate::AuthorizationCode;
        let signed = "eyJhbGciOiJIUzI1NiJ9.".repeat(41);
        assert!(signed.len() > 800);
        assert!(AuthorizationCode::parse(&signed).is_ok());
        assert!(AuthorizationCode::parse(&"c".repeat(4096)).is_ok());
        assert!(AuthorizationCode::parse("a b~").is_ok());
        assert_eq!(AuthorizationCode::parse(&"c".repeat(4097)).unwrap_err().code(), "invalid_code");
        assert_eq!(AuthorizationCode::parse("a\tb").unwrap_err().code(), "invalid_code");
        assert_eq!(AuthorizationCode::parse("caf\u{e9}").unwrap_err().code(), "invalid_code");
        assert_eq!(AuthorizationCode::parse("").unwrap_err().code(), "missing_parameter");
        // Through a callback URL: a code sent with its space as `+`.
        let state = State::from_random_bytes([7; 32]);
        let url = alloc::format!("https://app.example/cb?code=a+b&state={}", state.as_str());
        let code = Callback::parse(&url).unwrap().unwrap().verify(&state).unwrap();
        assert_eq!(code.expose_secret(), "a b");
    }

    #[cfg(feature = "json")]
    fn token_response_and_error_bodies() {
        use crate::{OAuthError, OAuthErrorCode, TokenResponse};
        let requested = Scopes::parse("patient/Patient.rs").unwrap();
        let body = br#"{"access_token":"canary-access","expires_in":16768.523842,
            "token_type":"bearer","refresh_token":"canary-refresh","patient":"-20140000008325",
            "access_grant_expiration":""}"#;
        let token = TokenResponse::from_json(body, &requested).unwrap();
        assert_eq!(token.expires_in(), Some(16768));
        assert_eq!(token.scope(), &requested);
        assert!(!format!("{token:?}").contains("canary"));
        let expired = OAuthError::from_response(
            401,
            Some("application/json"),
            br#"{"status_code":401,"error":"invalid_grant","error_description":"User access has timed out. \u2026"}"#,
        );
        assert_eq!(expired.code(), &OAuthErrorCode::InvalidGrant);
        assert!(expired.is_invalid_grant());
    }
}
