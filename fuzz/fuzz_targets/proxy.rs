//! The FHIR proxy's checks on what the browser names: input is `selector resource \0 id-or-query`.
//! The selector's low bit picks Blue Button or a SMART server, the next a read or a search. An
//! accepted read or search reaches only the allow-listed URL under the provider's FHIR base
//! (`broker/src/fuzzing.rs` asserts it); a `_page` link the broker did not seal never opens.
#![no_main]

use std::sync::LazyLock;

use connect_medicare_broker::fuzzing::Proxy;
use libfuzzer_sys::fuzz_target;

static PROXY: LazyLock<Proxy> = LazyLock::new(Proxy::default);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let (resource, tail) = rest.split_once('\0').unwrap_or((rest, ""));
    let provider = usize::from(selector & 1);
    if selector & 2 == 0 {
        let (id, query) = match tail.split_once('?') {
            Some((id, query)) => (id, Some(query)),
            None => (tail, None),
        };
        PROXY.read(provider, resource, id, query);
    } else {
        PROXY.search(provider, resource, (!tail.is_empty()).then_some(tail));
        PROXY.sealed_page(tail);
    }
});
