//! The callback URL as the SDK and the broker read it: `code`, `state`, `error` each at most
//! once; a callback verifies only against its own `state`; stripped of its parameters, a URL
//! is no longer a callback.
#![no_main]

use connect_medicare_protocol::{Callback, Error, State, strip_callback_params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(callback)) = Callback::parse(url) {
        let state = State::parse(callback.state().as_str()).expect("a parsed state parses");
        let other = State::parse(&format!("{}x", state.as_str()));
        if let Ok(other) = other {
            let again = Callback::parse(url)
                .expect("parses twice")
                .expect("a callback");
            assert!(
                matches!(again.verify(&other), Err(Error::StateMismatch)),
                "a callback verified against another state"
            );
        }
        let _ = callback.verify(&state);
    }
    let stripped = strip_callback_params(url);
    assert!(
        matches!(Callback::parse(&stripped), Ok(None)),
        "still a callback once stripped: {stripped:?}"
    );
});
