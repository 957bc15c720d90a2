//! Scope lists as a token response or the configuration names them: what parses prints back to
//! a list that parses to the same scopes.
#![no_main]

use connect_medicare_protocol::{Scope, Scopes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scopes) = Scopes::parse(raw) {
        let printed = scopes.to_string();
        let again = Scopes::parse(&printed).expect("a printed scope list parses");
        assert_eq!(again, scopes, "{raw:?} printed as {printed:?}");
    }
    if let Ok(scope) = Scope::parse(raw) {
        assert_eq!(Scope::parse(scope.as_str()).ok(), Some(scope));
    }
});
