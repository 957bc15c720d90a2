//! Session and flow cookie values, alone and in a `Cookie` header: what parses is exactly the
//! value sent (`broker/src/fuzzing.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        connect_medicare_broker::fuzzing::cookies(value);
    }
});
