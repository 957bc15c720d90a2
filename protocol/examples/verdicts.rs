//! The protocol's decisions on cases read from standard input — one JSON object per line, one
//! verdict per line on standard output — for the differential test against oauth4webapi
//! (`tests/npm/oracle.test.mjs`). Each case is decided the way the product decides it:
//!
//! - `{"kind": "callback", "url", "state", "issuer", "iss_supported"}`: the browser's reading of
//!   a redirect (`Callback::parse`, then `verify` against the flow's `state`: `state` before
//!   `error`), then, for a code, the broker's RFC 9207 check against a SMART server whose
//!   discovery names `issuer` (and advertises `iss` when `iss_supported`). Verdict:
//!   `code:<code>`, `error:<OAuth error code>` or `refused`.
//! - `{"kind": "token", "status", "content_type", "body"}`: the broker's reading of a token
//!   endpoint answer (`TokenResponse::from_json` for a 2xx, `OAuthError::from_response`
//!   otherwise). Verdict: `ok`, `error:<OAuth error code>` or `refused`.
//! - `{"kind": "s256", "verifier"}`: the PKCE S256 challenge of a verifier, or `refused`.
//!
//!   cargo run -p connect-medicare-protocol --example verdicts < cases.jsonl

use std::io::{BufRead as _, Write as _};

use connect_medicare_protocol::{
    Callback, Error, FhirBase, OAuthError, PkceVerifier, Provider, Scopes, SmartConfiguration,
    State, TokenResponse,
};
use serde_json::{Value, json};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.expect("standard input");
        if line.trim().is_empty() {
            continue;
        }
        let case: Value = serde_json::from_str(&line).expect("a JSON case per line");
        let text = |key: &str| case[key].as_str().unwrap_or_default();
        let verdict = match text("kind") {
            "callback" => callback(
                text("url"),
                text("state"),
                text("issuer"),
                case["iss_supported"].as_bool().unwrap_or(false),
            ),
            "token" => token(
                u16::try_from(case["status"].as_u64().unwrap_or(0)).unwrap_or(0),
                case["content_type"].as_str(),
                text("body"),
            ),
            "s256" => PkceVerifier::parse(text("verifier")).map_or_else(
                |_| "refused".to_owned(),
                |v| v.challenge().as_str().to_owned(),
            ),
            other => panic!("unknown case kind {other:?}"),
        };
        writeln!(out, "{verdict}").expect("standard output");
    }
}

/// A SMART server whose discovery names `issuer`.
fn provider(issuer: &str, iss_supported: bool) -> Provider {
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": "https://ehr.example/authorize",
        "token_endpoint": "https://ehr.example/token",
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": iss_supported,
    });
    let config =
        SmartConfiguration::from_json(discovery.to_string().as_bytes()).expect("discovery");
    Provider::from_smart_configuration(
        FhirBase::parse("https://ehr.example/fhir").unwrap(),
        &config,
    )
    .expect("provider")
}

fn callback(url: &str, state: &str, issuer: &str, iss_supported: bool) -> String {
    let Ok(expected) = State::parse(state) else {
        return "refused".to_owned();
    };
    let Ok(Some(callback)) = Callback::parse(url) else {
        return "refused".to_owned();
    };
    let iss = callback.iss().map(str::to_owned);
    match callback.verify(&expected) {
        Ok(code) => match provider(issuer, iss_supported).check_callback_issuer(iss.as_deref()) {
            Ok(()) => format!("code:{}", code.expose_secret()),
            Err(_) => "refused".to_owned(),
        },
        Err(Error::Authorization(error)) => format!("error:{}", error.code().as_str()),
        Err(_) => "refused".to_owned(),
    }
}

fn token(status: u16, content_type: Option<&str>, body: &str) -> String {
    if (200..300).contains(&status) {
        let requested = Scopes::parse("openid patient/*.rs").expect("scopes");
        return match TokenResponse::from_json(body.as_bytes(), &requested) {
            Ok(_) => "ok".to_owned(),
            Err(_) => "refused".to_owned(),
        };
    }
    let error = OAuthError::from_response(status, content_type, body.as_bytes());
    format!("error:{}", error.code().as_str())
}
