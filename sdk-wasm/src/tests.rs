//! The module's rules through its typed functions, natively under `cargo nextest` and in
//! headless Chromium under wasm-bindgen-test (scripts/test.sh) — the PKCE vector, the
//! validation of the authorize request before a record is kept, the flow record (TTL, return
//! path, tampering), callback handling (state before error) and the error codes of refusals —
//! and, in Chromium only, the exports as JS calls them: `new SignIn` on `getrandom`, `follow`
//! refusing before it keeps or navigates, `completeCallback`'s object, a refusal's `Error`.
//! The JS layer around them (storage, the address bar, one completion per callback, the
//! navigation itself) is tested on the built package in Chromium (tests/e2e/sdk-browser.mjs).

use connect_medicare_protocol::{
    AuthorizeRedirect, AuthorizeRequest, ClientId, PkceChallenge, PkceVerifier, Provider,
    RedirectUri, Scopes, State,
};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

use crate::{
    Answer, ProviderEntry, Started, callback_state, complete, finish, out::Refusal, start,
};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test_configure!(run_in_browser);

const AUTHORIZE: &str = "https://sandbox.bluebutton.cms.gov/v2/o/authorize/";
const AUD: &str = "https://sandbox.bluebutton.cms.gov/v2/fhir/";
const REDIRECT: &str = "http://localhost:8080/callback";
const SCOPES: &str = "openid profile launch/patient patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs";
const NOW: u64 = 1_700_000_000_000;

/// The code of a refusal; panics on success.
fn code<T: core::fmt::Debug>(result: Result<T, Refusal>) -> &'static str {
    result.expect_err("not refused").code
}

/// `start` on `seed`-derived bytes.
fn started(seed: u8) -> (State, PkceVerifier) {
    let random: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect();
    start(&random.try_into().unwrap(), None).unwrap()
}

/// What a correct broker sends for `state` and `verifier`.
fn authorize_for(state: &State, verifier: &PkceVerifier) -> AuthorizeRequest {
    authorize_with(state, &verifier.challenge())
}

fn authorize_with(state: &State, challenge: &PkceChallenge) -> AuthorizeRequest {
    AuthorizeRequest::new(
        &Provider::blue_button_sandbox(),
        ClientId::new("client-123").unwrap(),
        RedirectUri::parse(REDIRECT).unwrap(),
        Scopes::parse(SCOPES).unwrap(),
        state,
        challenge,
    )
    .unwrap()
}

/// A finish: the provider entry, the flow as started, the broker's answer.
#[derive(Clone)]
struct Finish<'a> {
    client_id: &'a str,
    redirect_uri: &'a str,
    scopes_supported: Option<&'a str>,
    authorize_post: bool,
    post: bool,
    return_to: Option<&'a str>,
    method: &'a str,
    target: String,
    fields: Vec<(String, String)>,
    expires_in: u64,
}

impl Finish<'_> {
    fn run(&self, flow: &(State, PkceVerifier)) -> Result<(AuthorizeRedirect, String), Refusal> {
        finish(
            &ProviderEntry {
                id: "medicare",
                authorization_endpoint: AUTHORIZE,
                client_id: self.client_id,
                redirect_uri: self.redirect_uri,
                aud: AUD,
                scopes_supported: self.scopes_supported,
                authorize_post: self.authorize_post,
            },
            &Started {
                state: &flow.0,
                verifier: &flow.1,
                post: self.post,
                return_to: self.return_to,
            },
            Answer {
                method: self.method,
                target: &self.target,
                fields: self.fields.clone(),
                expires_in: self.expires_in,
            },
            NOW,
        )
    }

    fn record(&self, flow: &(State, PkceVerifier)) -> String {
        self.run(flow).unwrap().1
    }
}

/// A GET answer with `url`.
fn get(url: String) -> Finish<'static> {
    Finish {
        client_id: "client-123",
        redirect_uri: REDIRECT,
        scopes_supported: None,
        authorize_post: false,
        post: false,
        return_to: None,
        method: "get",
        target: url,
        fields: Vec::new(),
        expires_in: 600,
    }
}

/// A flow started and finished against a correct broker: `(state, record)`.
fn kept(seed: u8, return_to: Option<&str>) -> (String, String) {
    let flow = started(seed);
    let url = authorize_for(&flow.0, &flow.1).url();
    let record = Finish {
        return_to,
        ..get(url)
    }
    .record(&flow);
    (flow.0.as_str().to_owned(), record)
}

#[test]
fn pkce_rfc7636_appendix_b() {
    const OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    let random = [[0u8; 32], OCTETS].concat().try_into().unwrap();
    let (_, verifier) = start(&random, None).unwrap();
    assert_eq!(
        verifier.expose_secret(),
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert_eq!(
        verifier.challenge().as_str(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn start_makes_256_bit_secrets_and_checks_return_to() {
    let (a, b) = (started(1), started(2));
    assert_eq!((a.0.as_str().len(), a.1.expose_secret().len()), (43, 43));
    assert_ne!(a.0.as_str(), b.0.as_str());
    assert_ne!(a.1.expose_secret(), b.1.expose_secret());
    assert!(start(&[7; 64], Some("/claims?tab=1")).is_ok());
    // Percent-encoded, a tab stays in the path: a browser never decodes it into `//`.
    assert!(start(&[7; 64], Some("/%09/evil.example")).is_ok());
    for bad in [
        "//evil.example/x",
        "/\\evil.example",
        // Browsers strip tabs and newlines from URLs: these become `//evil.example`.
        "/\t/evil.example",
        "/\n/evil.example",
        "https://evil.example/",
        "claims",
        "/a b",
    ] {
        let refused = start(&[7; 64], Some(bad)).unwrap_err();
        assert_eq!(refused.code, "invalid_config", "{bad}");
        assert!(
            refused.message.starts_with("returnTo must be"),
            "{refused:?}"
        );
    }
}

#[test]
fn a_correct_authorize_request_gives_the_request_to_follow_and_the_flow_record() {
    let flow = started(3);
    let url = authorize_for(&flow.0, &flow.1).url();
    let (redirect, record) = Finish {
        return_to: Some("/claims|x?y=1"),
        ..get(url.clone())
    }
    .run(&flow)
    .unwrap();
    // What is followed is exactly what was validated.
    assert_eq!(redirect, AuthorizeRedirect::Get { url: url.clone() });
    let expires = NOW + 600_000;
    assert_eq!(
        record,
        format!(
            "1|{NOW}|{expires}|{}|medicare|{}|/claims|x?y=1",
            flow.0.as_str(),
            flow.1.expose_secret()
        )
    );
    // The broker's `expires_in` sets the TTL, within an hour; 0 (unsaid) is 600 s.
    for (expires_in, ttl) in [(60, 60_000), (0, 600_000), (99_999, 3_600_000)] {
        let record = Finish {
            expires_in,
            ..get(url.clone())
        }
        .record(&flow);
        assert!(record.starts_with(&format!("1|{NOW}|{}|", NOW + ttl)));
    }
    // The provider's scopes_supported is honoured.
    let with = |scopes| {
        Finish {
            scopes_supported: Some(scopes),
            ..get(url.clone())
        }
        .run(&flow)
    };
    assert!(with(SCOPES).is_ok());
    assert_eq!(code(with("openid profile")), "invalid_config");
}

#[test]
fn every_tampered_authorize_request_is_refused() {
    let flow = started(4);
    let url = authorize_for(&flow.0, &flow.1).url();
    let tampered = [
        url.replace("client_id=client-123", "client_id=other"),
        url.replace(
            "aud=https%3A%2F%2Fsandbox.bluebutton.cms.gov%2Fv2%2Ffhir%2F",
            "aud=https%3A%2F%2Fevil.example%2F",
        ),
        url.replace("/v2/o/authorize/?", "/v2/o/authorize?"),
        format!("{url}&prompt=none"),
        url.replace("localhost%3A8080", "evil.example"),
        url.replace("S256", "plain"),
        // Another flow's challenge, or another flow's state.
        authorize_for(&flow.0, &started(5).1).url(),
        authorize_with(&started(6).0, &flow.1.challenge()).url(),
        format!("{url}\n1"),
    ];
    for bad in tampered {
        assert_eq!(code(get(bad.clone()).run(&flow)), "invalid_config", "{bad}");
    }
    // A method other than the one asked for, or none.
    for method in ["post", "put", ""] {
        let answer = Finish {
            method,
            ..get(url.clone())
        };
        assert_eq!(code(answer.run(&flow)), "invalid_config", "{method}");
    }
    // A provider entry that is unusable.
    for (client_id, redirect_uri) in [("", REDIRECT), ("client-123", "http://app.example/cb")] {
        let answer = Finish {
            client_id,
            redirect_uri,
            ..get(url.clone())
        };
        assert_eq!(code(answer.run(&flow)), "invalid_config");
    }
}

#[test]
fn a_form_post_is_checked_as_a_form_post() {
    let flow = started(7);
    let fields: Vec<(String, String)> = authorize_for(&flow.0, &flow.1)
        .form_fields()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let post = Finish {
        authorize_post: true,
        post: true,
        method: "post",
        target: AUTHORIZE.to_owned(),
        fields: fields.clone(),
        ..get(String::new())
    };
    let (redirect, _) = post.run(&flow).unwrap();
    assert_eq!(
        redirect,
        AuthorizeRedirect::Post {
            action: AUTHORIZE.to_owned(),
            fields: fields.clone()
        }
    );
    // Not where the provider takes no POST, nor when GET was asked for.
    for (authorize_post, asked) in [(false, true), (true, false)] {
        let answer = Finish {
            authorize_post,
            post: asked,
            ..post.clone()
        };
        assert_eq!(code(answer.run(&flow)), "invalid_config");
    }
    // A field given twice.
    let mut twice = fields;
    twice.push(("scope".to_owned(), "openid".to_owned()));
    let answer = Finish {
        fields: twice,
        ..post
    };
    assert_eq!(code(answer.run(&flow)), "invalid_config");
}

#[test]
fn flow_records_expire_and_are_read_back_checked() {
    let (state, record) = kept(8, Some("/claims|x"));
    let callback = format!("{REDIRECT}?code=abc&state={state}");
    let live = |record: &str, now: u64| match complete(&callback, Some(record), now) {
        Ok(_) => true,
        Err(refused) if refused.code == "flow_not_found" => false,
        Err(other) => panic!("{other:?}"),
    };
    assert!(live(&record, NOW));
    assert!(live(&record, NOW + 599_999));
    assert!(!live(&record, NOW + 600_000));
    for bad in [
        "",
        "2|0|99999999999999|x|medicare|y|",
        &record.replace("|medicare|", "|Medicare|"),
        &record.replace("|/claims|x", "|//evil.example"),
        &record.replace(&state, "short"),
        // Never more than an hour, whatever the record says.
        &record.replacen(
            &format!("|{}|", NOW + 600_000),
            &format!("|{}|", NOW + 3_600_001),
            1,
        ),
    ] {
        assert!(!live(bad, NOW), "{bad}");
    }
}

#[test]
fn callbacks_name_their_state_or_are_not_callbacks() {
    let state = State::from_random_bytes([9; 32]);
    let url = format!("{REDIRECT}?code=abc&state={}", state.as_str());
    assert_eq!(
        callback_state(&url).unwrap().as_deref(),
        Some(state.as_str())
    );
    assert_eq!(
        callback_state("http://localhost:8080/?tab=1").unwrap(),
        None
    );
    for bad in [
        format!("{REDIRECT}?code=a&state={0}&state={0}", state.as_str()),
        format!("{REDIRECT}?code=a"),
        format!(
            "{REDIRECT}?code=a&error=access_denied&state={}",
            state.as_str()
        ),
        format!("{REDIRECT}?code=a&state=short"),
    ] {
        assert_eq!(code(callback_state(&bad)), "invalid_request", "{bad}");
        // The same refusal when completing, whatever the record.
        assert_eq!(code(complete(&bad, None, NOW)), "invalid_request", "{bad}");
    }
}

#[test]
fn completing_checks_state_first_then_error_then_gives_the_code() {
    let (state, record) = kept(10, Some("/claims"));
    let ok = complete(
        &format!("{REDIRECT}?code=abc&state={state}"),
        Some(&record),
        NOW + 1,
    )
    .unwrap();
    assert_eq!(
        (ok.state.as_str(), ok.code.as_str()),
        (state.as_str(), "abc")
    );
    assert_eq!(ok.verifier.len(), 43);
    assert_eq!(
        (ok.provider.as_str(), ok.return_to.as_deref()),
        ("medicare", Some("/claims"))
    );
    assert_eq!(ok.iss, None, "no iss in the callback");
    // A callback's `iss` (RFC 9207) is passed on, decoded, for the broker to check.
    let (state_12, record_12) = kept(12, None);
    let ok = complete(
        &format!("{REDIRECT}?code=abc&state={state_12}&iss=https%3A%2F%2Fehr.example%2Fsmart"),
        Some(&record_12),
        NOW,
    )
    .unwrap();
    assert_eq!(ok.iss.as_deref(), Some("https://ehr.example/smart"));
    assert_eq!(ok.return_to, None);

    // No record (another tab, used, never started): flow_not_found, whatever the callback says.
    let denied = format!("{REDIRECT}?error=access_denied&state={state}");
    assert_eq!(code(complete(&denied, None, NOW)), "flow_not_found");
    // An expired or unreadable record is no record.
    assert_eq!(
        code(complete(&denied, Some(&record), NOW + 600_000)),
        "flow_not_found"
    );
    assert_eq!(
        code(complete(
            &denied,
            Some(&record.replacen("1|", "x|", 1)),
            NOW
        )),
        "flow_not_found"
    );
    // The record of another flow: the callback does not match it.
    let other = format!("{REDIRECT}?code=abc&state={state_12}");
    assert_eq!(
        code(complete(&other, Some(&record), NOW)),
        "invalid_request"
    );

    // With the state matched, the error: declined, and the description is never shown.
    let declined = complete(
        &format!("{denied}&error_description=Go+to+evil.example"),
        Some(&record),
        NOW,
    )
    .unwrap_err();
    assert_eq!(declined.code, "access_denied");
    assert!(!declined.message.contains("evil"));
    let server = complete(
        &format!("{REDIRECT}?error=server_error&state={state}"),
        Some(&record),
        NOW,
    )
    .unwrap_err();
    assert_eq!(server.code, "upstream_error");
    assert!(server.message.contains("(server_error)"), "{server:?}");

    assert_eq!(
        code(complete("http://localhost:8080/", Some(&record), NOW)),
        "invalid_request"
    );
}

/// The exports as JS calls them: only in a browser (they call into JS).
#[cfg(target_arch = "wasm32")]
mod exports {
    use js_sys::{Array, Function, Object, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{AUD, AUTHORIZE, NOW, REDIRECT, State, authorize_with, kept};
    use crate::{SignIn, complete_callback};

    fn get(value: &JsValue, key: &str) -> JsValue {
        Reflect::get(value, &key.into()).unwrap()
    }

    fn object(pairs: &[(&str, JsValue)]) -> JsValue {
        let out = Object::new();
        for (key, value) in pairs {
            Reflect::set(&out, &(*key).into(), value).unwrap();
        }
        out.into()
    }

    /// The code of what an export threw: an `Error` with a `code`.
    fn thrown(error: JsValue) -> String {
        assert!(error.is_instance_of::<js_sys::Error>(), "{error:?}");
        get(&error, "code").as_string().unwrap()
    }

    #[test]
    fn a_sign_in_draws_fresh_secrets_from_getrandom() {
        let a = SignIn::new(false, Some("/claims".into())).unwrap();
        let b = SignIn::new(false, None).unwrap();
        assert_ne!(a.state(), b.state());
        assert_ne!(a.code_challenge(), b.code_challenge());
        assert!(State::parse(&a.state()).is_ok());
        assert_eq!(a.code_challenge(), a.verifier.challenge().as_str());
        let refused = SignIn::new(false, Some("//evil.example".into()))
            .err()
            .unwrap();
        assert_eq!(thrown(refused), "invalid_config");
    }

    #[test]
    fn follow_refuses_a_tampered_request_before_it_keeps_or_navigates() {
        let sign_in = SignIn::new(false, None).unwrap();
        let provider = object(&[
            ("id", "medicare".into()),
            ("authorization_endpoint", AUTHORIZE.into()),
            ("client_id", "client-123".into()),
            ("redirect_uri", REDIRECT.into()),
            ("aud", AUD.into()),
            ("scopes_supported", JsValue::NULL),
            ("authorize_post", false.into()),
        ]);
        let url = authorize_with(
            &State::from_random_bytes([1; 32]),
            &sign_in.verifier.challenge(),
        )
        .url();
        let answer = object(&[(
            "authorize",
            object(&[("method", "get".into()), ("url", url.into())]),
        )]);
        // `keep` is not a function: calling it would throw a TypeError, not a refusal.
        let keep: Function = JsValue::UNDEFINED.unchecked_into();
        let refused = sign_in.follow(&provider, &answer, &keep).err().unwrap();
        assert_eq!(thrown(refused), "invalid_config");
        // A provider entry without its fields, an answer that is not an object.
        for (provider, answer) in [
            (object(&[]), object(&[])),
            (provider.clone(), JsValue::NULL),
        ] {
            let sign_in = SignIn::new(false, None).unwrap();
            assert_eq!(
                thrown(sign_in.follow(&provider, &answer, &keep).err().unwrap()),
                "invalid_config"
            );
        }
        // Fields that are not [name, value] string pairs.
        let sign_in = SignIn::new(true, None).unwrap();
        let fields = Array::of1(&Array::of1(&"scope".into()));
        let answer = object(&[(
            "authorize",
            object(&[
                ("method", "post".into()),
                ("action", AUTHORIZE.into()),
                ("fields", fields.into()),
            ]),
        )]);
        assert_eq!(
            thrown(sign_in.follow(&provider, &answer, &keep).err().unwrap()),
            "invalid_config"
        );
    }

    #[test]
    fn complete_callback_answers_what_the_broker_needs() {
        let (state, record) = kept(20, Some("/claims"));
        // The record was written at NOW (2023): give it a fresh one for Date.now().
        let now = crate::browser::now();
        let record = record.replacen(
            &format!("1|{NOW}|{}|", NOW + 600_000),
            &format!("1|{now}|{}|", now + 600_000),
            1,
        );
        let done = complete_callback(
            &format!("{REDIRECT}?code=abc&state={state}"),
            Some(record.clone()),
        )
        .unwrap();
        assert_eq!(get(&done, "state").as_string().unwrap(), state);
        assert_eq!(get(&done, "code").as_string().unwrap(), "abc");
        assert_eq!(get(&done, "codeVerifier").as_string().unwrap().len(), 43);
        assert_eq!(get(&done, "provider").as_string().unwrap(), "medicare");
        assert_eq!(get(&done, "returnTo").as_string().unwrap(), "/claims");
        assert!(get(&done, "iss").is_null());
        let refused = complete_callback(&format!("{REDIRECT}?code=abc&state={state}"), None)
            .err()
            .unwrap();
        assert_eq!(thrown(refused.clone()), "flow_not_found");
        assert!(
            get(&refused, "message")
                .as_string()
                .unwrap()
                .starts_with("No sign-in started")
        );
    }
}
