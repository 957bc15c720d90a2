//! A token endpoint's answer: whatever it holds, a parsed response never shows its tokens in
//! `Debug`, and its expiry is computed without overflow.
#![no_main]

use connect_medicare_protocol::{Scopes, Timestamp, TokenResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let requested =
        Scopes::parse("openid profile patient/Patient.rs patient/Coverage.rs offline_access")
            .expect("scopes");
    let Ok(response) = TokenResponse::from_json(data, &requested) else {
        return;
    };
    let debug = format!("{response:?}");
    // What `Debug` may show: everything but the tokens. A token that happens to occur in
    // those (a patient id `12aaaa…` and a token `aaaa…`), or in the field names (a token
    // `refresh_toke`: so a token without a digit), proves nothing either way.
    let public = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        response.token_type(),
        response.expires_in(),
        response.scope(),
        response.patient(),
        response.access_grant_expiration()
    );
    let mut secrets = vec![response.access_token().expose_secret()];
    secrets.extend(response.refresh_token().map(|r| r.expose_secret()));
    for secret in secrets {
        if secret.len() >= 8
            && secret.bytes().any(|b| b.is_ascii_digit())
            && !public.contains(secret)
        {
            assert!(!debug.contains(secret), "Debug shows a token");
        }
    }
    for now in [0, 1_800_000_000, i64::MAX / 2] {
        let _ = response.expires_at(Timestamp::from_unix_seconds(now));
    }
    let _ = response.access_grant_expiration();
});
