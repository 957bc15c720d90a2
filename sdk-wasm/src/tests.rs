//! The module through its one export, [`call`]: natively under `cargo nextest`, and in
//! headless Chromium under wasm-bindgen-test (scripts/test.sh) — the PKCE vector, the
//! validation of the authorize request before a record is kept, the flow record (TTL, return
//! path, tampering), callback handling (state before error) and the error codes of refusals.
//! The JS layer around it (storage, the address bar, one completion per callback, paging,
//! broker errors) is tested on the built module in Node (tests/npm/sdk.test.mjs) and in
//! Chromium (tests/e2e/sdk-browser.mjs).

use connect_medicare_protocol::{
    AuthorizeRequest, ClientId, PkceChallenge, PkceVerifier, Provider, RedirectUri, Scopes, State,
};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

use crate::{call, out::refusal};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test_configure!(run_in_browser);

const AUTHORIZE: &str = "https://sandbox.bluebutton.cms.gov/v2/o/authorize/";
const AUD: &str = "https://sandbox.bluebutton.cms.gov/v2/fhir/";
const REDIRECT: &str = "http://localhost:8080/callback";
const SCOPES: &str = "openid profile launch/patient patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs";
const NOW: u64 = 1_700_000_000_000;

/// The fields of an answer; panics on a refusal.
fn fields(answer: &str) -> Vec<String> {
    assert!(refusal(answer).is_none(), "refused: {answer}");
    answer.split('\n').map(str::to_owned).collect()
}

/// The code of a refusal; panics on success.
fn code(answer: &str) -> String {
    refusal(answer)
        .unwrap_or_else(|| panic!("not refused: {answer}"))
        .0
        .to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `start` on `seed`-derived bytes: `[state, challenge, verifier]`.
fn start(seed: u8, return_to: &str) -> Vec<String> {
    let random: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect();
    fields(&call(0, &[hex(&random).as_str(), return_to].join("\n")))
}

/// What a correct broker puts in the authorize URL for `state` and `challenge`.
fn authorize_for(state: &str, challenge: &str) -> AuthorizeRequest {
    AuthorizeRequest::new(
        &Provider::blue_button_sandbox(),
        ClientId::new("client-123").unwrap(),
        RedirectUri::parse(REDIRECT).unwrap(),
        Scopes::parse(SCOPES).unwrap(),
        &State::parse(state).unwrap(),
        &PkceChallenge::parse(challenge).unwrap(),
    )
    .unwrap()
}

/// A finish request: the provider entry, the started flow, the answer.
struct Finish<'a> {
    client_id: &'a str,
    redirect_uri: &'a str,
    scopes_supported: &'a str,
    authorize_post: bool,
    state: &'a str,
    verifier: &'a str,
    post: bool,
    return_to: &'a str,
    method: &'a str,
    target: &'a str,
    form: &'a str,
    expires_in: &'a str,
}

impl Finish<'_> {
    fn call(&self) -> String {
        let flag = |b: bool| if b { "1" } else { "0" };
        let now = NOW.to_string();
        call(
            1,
            &[
                "medicare",
                AUTHORIZE,
                self.client_id,
                self.redirect_uri,
                AUD,
                self.scopes_supported,
                flag(self.authorize_post),
                self.state,
                self.verifier,
                flag(self.post),
                self.return_to,
                self.method,
                self.target,
                self.form,
                self.expires_in,
                &now,
            ]
            .join("\n"),
        )
    }
}

fn get<'a>(s: &'a [String], url: &'a str) -> Finish<'a> {
    Finish {
        client_id: "client-123",
        redirect_uri: REDIRECT,
        scopes_supported: "",
        authorize_post: false,
        state: &s[0],
        verifier: &s[2],
        post: false,
        return_to: "",
        method: "get",
        target: url,
        form: "",
        expires_in: "600",
    }
}

/// A flow started and finished against a correct broker: `(state, record)`.
fn kept(seed: u8, return_to: &str) -> (String, String) {
    let s = start(seed, return_to);
    let url = authorize_for(&s[0], &s[1]).url();
    let record = fields(
        &Finish {
            return_to,
            ..get(&s, &url)
        }
        .call(),
    )
    .remove(0);
    (s[0].clone(), record)
}

#[test]
fn pkce_rfc7636_appendix_b() {
    const OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    let random = [[0u8; 32], OCTETS].concat();
    let out = fields(&call(0, &[hex(&random), String::new()].join("\n")));
    assert_eq!(out[2], "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    assert_eq!(out[1], "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_eq!(
        out[2],
        PkceVerifier::from_random_bytes(OCTETS).expose_secret()
    );
}

#[test]
fn start_makes_256_bit_secrets_and_checks_return_to() {
    let a = start(1, "");
    let b = start(2, "/claims?tab=1");
    assert_eq!((a[0].len(), a[2].len()), (43, 43));
    assert_ne!(a[0], b[0]);
    assert_ne!(a[1], b[1]);
    assert!(State::parse(&a[0]).is_ok());
    assert!(PkceChallenge::parse(&a[1]).is_ok());
    assert_eq!(
        PkceVerifier::parse(&a[2]).unwrap().challenge().as_str(),
        a[1]
    );
    for bad in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "claims",
        "/a b",
    ] {
        let random = hex(&[7; 64]);
        assert_eq!(
            code(&call(0, &[random.as_str(), bad].join("\n"))),
            "invalid_config",
            "{bad}"
        );
    }
    // Anything but 64 bytes of hex is refused.
    for random in [hex(&[7; 63]), hex(&[7; 65]), "zz".repeat(64)] {
        assert_eq!(
            code(&call(0, &[random, String::new()].join("\n"))),
            "invalid_config"
        );
    }
}

#[test]
fn a_correct_authorize_request_gives_the_flow_record() {
    let s = start(3, "");
    let url = authorize_for(&s[0], &s[1]).url();
    let record = fields(
        &Finish {
            return_to: "/claims|x?y=1",
            ..get(&s, &url)
        }
        .call(),
    );
    let expires = NOW + 600_000;
    assert_eq!(
        record,
        [format!(
            "1|{NOW}|{expires}|{}|medicare|{}|/claims|x?y=1",
            s[0], s[2]
        )]
    );
    // The broker's `expires_in` sets the TTL, within an hour; 0 (unsaid) is 600 s.
    for (expires_in, ttl) in [("60", 60_000), ("0", 600_000), ("99999", 3_600_000)] {
        let record = fields(
            &Finish {
                expires_in,
                ..get(&s, &url)
            }
            .call(),
        );
        assert!(record[0].starts_with(&format!("1|{NOW}|{}|", NOW + ttl)));
    }
    // The provider's scopes_supported is honoured.
    assert!(
        refusal(
            &Finish {
                scopes_supported: SCOPES,
                ..get(&s, &url)
            }
            .call()
        )
        .is_none()
    );
    assert_eq!(
        code(
            &Finish {
                scopes_supported: "openid profile",
                ..get(&s, &url)
            }
            .call()
        ),
        "invalid_config"
    );
}

#[test]
fn every_tampered_authorize_request_is_refused() {
    let s = start(4, "");
    let url = authorize_for(&s[0], &s[1]).url();
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
        url.replace(&s[1], &start(5, "")[1]),
        // Another flow's state.
        authorize_for(&start(6, "")[0], &s[1]).url(),
        // A line break cannot smuggle a field in.
        format!("{url}\n1"),
    ];
    for bad in &tampered {
        assert_eq!(code(&get(&s, bad).call()), "invalid_config", "{bad}");
    }
    // A method other than the one asked for, or none.
    for method in ["post", "put", ""] {
        let answer = Finish {
            method,
            ..get(&s, &url)
        };
        assert_eq!(code(&answer.call()), "invalid_config", "{method}");
    }
    // A provider entry that is unusable.
    for (client_id, redirect_uri) in [("", REDIRECT), ("client-123", "http://app.example/cb")] {
        let answer = Finish {
            client_id,
            redirect_uri,
            ..get(&s, &url)
        };
        assert_eq!(code(&answer.call()), "invalid_config");
    }
    // What start did not make.
    let answer = Finish {
        verifier: "short",
        ..get(&s, &url)
    };
    assert_eq!(code(&answer.call()), "invalid_config");
}

#[test]
fn a_form_post_is_checked_as_a_form_post() {
    let s = start(7, "");
    let request = authorize_for(&s[0], &s[1]);
    // As the JS layer sends the fields: `new URLSearchParams(fields).toString()`.
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let form = request
        .form_fields()
        .map(|(k, v)| [encode(k), encode(v)].join("="))
        .collect::<Vec<_>>()
        .join("&");
    let post = Finish {
        authorize_post: true,
        post: true,
        method: "post",
        target: AUTHORIZE,
        form: &form,
        ..get(&s, "")
    };
    assert!(refusal(&post.call()).is_none(), "{}", post.call());
    // Not where the provider takes no POST, nor when GET was asked for.
    for (authorize_post, asked) in [(false, true), (true, false)] {
        let answer = Finish {
            authorize_post,
            post: asked,
            ..post
        };
        assert_eq!(code(&answer.call()), "invalid_config");
    }
    // A field given twice.
    let twice = format!("{form}&scope=openid");
    assert_eq!(
        code(
            &Finish {
                form: &twice,
                ..post
            }
            .call()
        ),
        "invalid_config"
    );
}

#[test]
fn flow_records_expire_and_are_read_back_checked() {
    let (state, record) = kept(8, "/claims|x");
    let callback = format!("{REDIRECT}?code=abc&state={state}");
    let live = |record: &str, now: u64| {
        let answer = call(3, &format!("{callback}\n{record}\n{now}"));
        match refusal(&answer) {
            None => true,
            Some(("flow_not_found", _)) => false,
            Some(other) => panic!("{other:?}"),
        }
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
    assert_eq!(call(2, &url), state.as_str());
    assert_eq!(call(2, "http://localhost:8080/?tab=1"), "");
    for bad in [
        format!("{REDIRECT}?code=a&state={0}&state={0}", state.as_str()),
        format!("{REDIRECT}?code=a"),
        format!(
            "{REDIRECT}?code=a&error=access_denied&state={}",
            state.as_str()
        ),
        format!("{REDIRECT}?code=a&state=short"),
    ] {
        assert_eq!(code(&call(2, &bad)), "invalid_request", "{bad}");
    }
}

#[test]
fn completing_checks_state_first_then_error_then_gives_the_code() {
    let (state, record) = kept(10, "/claims");
    let complete = |url: &str, record: &str, now: u64| call(3, &format!("{url}\n{record}\n{now}"));

    let ok = fields(&complete(
        &format!("{REDIRECT}?code=abc&state={state}"),
        &record,
        NOW + 1,
    ));
    assert_eq!(ok[0], state);
    assert_eq!(ok[1], "abc");
    assert_eq!(ok[2].len(), 43);
    assert_eq!((ok[3].as_str(), ok[4].as_str()), ("medicare", "/claims"));
    assert_eq!(ok[5], "", "no iss in the callback");
    // A callback's `iss` (RFC 9207) is passed on, decoded, for the broker to check.
    let (state_12, record_12) = kept(12, "");
    let ok = fields(&complete(
        &format!("{REDIRECT}?code=abc&state={state_12}&iss=https%3A%2F%2Fehr.example%2Fsmart"),
        &record_12,
        NOW,
    ));
    assert_eq!(ok[5], "https://ehr.example/smart");
    let (_, no_return) = kept(11, "");
    let state_11 = no_return.split('|').nth(3).unwrap().to_owned();
    let ok = fields(&complete(
        &format!("{REDIRECT}?code=abc&state={state_11}"),
        &no_return,
        NOW,
    ));
    assert_eq!(ok[4], "");

    // No record (another tab, used, never started): flow_not_found, whatever the callback says.
    let denied = format!("{REDIRECT}?error=access_denied&state={state}");
    assert_eq!(code(&complete(&denied, "", NOW)), "flow_not_found");
    // An expired or unreadable record is no record.
    assert_eq!(
        code(&complete(&denied, &record, NOW + 600_000)),
        "flow_not_found"
    );
    assert_eq!(
        code(&complete(&denied, &record.replacen("1|", "x|", 1), NOW)),
        "flow_not_found"
    );
    // The record of another flow: the callback does not match it.
    let other = format!("{REDIRECT}?code=abc&state={state_11}");
    assert_eq!(code(&complete(&other, &record, NOW)), "invalid_request");

    // With the state matched, the error: declined, and the description is never shown.
    let declined = complete(
        &format!("{denied}&error_description=Go+to+evil.example"),
        &record,
        NOW,
    );
    assert_eq!(code(&declined), "access_denied");
    assert!(!declined.contains("evil"));
    let server = complete(
        &format!("{REDIRECT}?error=server_error&state={state}"),
        &record,
        NOW,
    );
    assert_eq!(code(&server), "upstream_error");
    assert!(server.contains("(server_error)"), "{server}");

    assert_eq!(
        code(&complete("http://localhost:8080/", &record, NOW)),
        "invalid_request"
    );
}

#[test]
fn input_with_the_wrong_number_of_fields_is_refused() {
    assert_eq!(code(&call(0, "00\n/x\n/y")), "invalid_config");
    assert_eq!(code(&call(1, "medicare")), "invalid_config");
    assert_eq!(code(&call(2, "http://x/?code=a\nb")), "invalid_request");
    assert_eq!(code(&call(3, "")), "invalid_request");
    assert_eq!(code(&call(99, "")), "invalid_request");
    // A time that is not a number is refused, not read as 0.
    let (_, record) = kept(12, "");
    assert_eq!(
        code(&call(
            3,
            &format!("{REDIRECT}?code=a&state={}\n{record}\nabc", "s".repeat(43))
        )),
        "invalid_request"
    );
    // A refusal's message is human text after the code.
    let answer = call(0, &[hex(&[1; 64]).as_str(), "claims"].join("\n"));
    let (_, message) = refusal(&answer).unwrap();
    assert!(message.starts_with("returnTo must be"), "{message}");
}
