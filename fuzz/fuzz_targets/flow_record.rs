//! The SDK's flow record (sessionStorage) read back with a callback: input is
//! `callback URL \0 record`. A sign-in completes only with the record's own `state`, before
//! its expiry, returning to a same-origin path.
#![no_main]

use connect_medicare::fuzzing::{callback_state, complete, is_return_path};
use libfuzzer_sys::fuzz_target;

/// A time within any record a seed holds (ms since the epoch).
const NOW: u64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (url, record) = match text.split_once('\0') {
        Some((url, record)) => (url, Some(record)),
        None => (text, None),
    };
    let Ok(completed) = complete(url, record, NOW) else {
        return;
    };
    let record = record.expect("completed without a record");
    assert_eq!(
        callback_state(url).ok().flatten().as_deref(),
        Some(completed.state.as_str()),
        "completed with a state the callback did not carry"
    );
    assert!(
        record.split('|').nth(3) == Some(completed.state.as_str()),
        "completed with a state the record did not hold"
    );
    let expires: u64 = record
        .split('|')
        .nth(2)
        .and_then(|e| e.parse().ok())
        .expect("a record with an expiry");
    assert!(NOW < expires, "completed after the record expired");
    if let Some(path) = &completed.return_to {
        assert!(is_return_path(path), "returns to {path:?}");
    }
});
