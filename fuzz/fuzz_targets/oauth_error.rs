//! An OAuth error as a token, revocation or FHIR endpoint answers it (the first byte picks the
//! status and `Content-Type`) and as a callback carries it: read without panicking, its code
//! one of the known ones or kept raw, its description no more characters than the body has bytes.
#![no_main]

use connect_medicare_protocol::{OAuthError, OAuthErrorCode};
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 6] = [400, 401, 403, 429, 500, 503];
const TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/html"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(pick) % STATUSES.len()];
    let content_type = TYPES[usize::from(pick / 8) % TYPES.len()];
    let error = OAuthError::from_response(status, content_type, body);
    assert_eq!(error.status(), Some(status));
    if let Some(description) = error.description() {
        // Read lossily: an invalid byte becomes one U+FFFD, never more.
        assert!(
            description.chars().count() <= body.len(),
            "a description longer than the body"
        );
    }
    let _ = (
        error.shape(),
        error.is_invalid_grant(),
        error.is_throttled(),
    );
    if let Ok(text) = std::str::from_utf8(body) {
        let code = OAuthErrorCode::parse(text);
        let _ = (code.as_str(), code.raw());
        let mut parts = text.splitn(3, '\n');
        let (error, description, uri) = (parts.next().unwrap_or(""), parts.next(), parts.next());
        let _ = OAuthError::from_callback(error, description, uri);
    }
});
