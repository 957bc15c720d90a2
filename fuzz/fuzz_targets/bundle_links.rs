//! A search Bundle's paging links, both kinds: Blue Button's `startIndex` links read by the SDK
//! and the broker (`BundleLinks`, `PageRequest`), and a SMART server's opaque links, which the
//! broker reseals so that every link relayed is its own and opens under the FHIR base.
#![no_main]

use std::sync::LazyLock;

use connect_medicare_broker::fuzzing::Proxy;
use connect_medicare_protocol::{BundleLinks, PageRequest};
use libfuzzer_sys::fuzz_target;

static PROXY: LazyLock<Proxy> = LazyLock::new(Proxy::default);

fuzz_target!(|data: &[u8]| {
    if let Ok(links) = BundleLinks::from_bundle_json(data) {
        let _ = (links.total(), links.entries(), links.previous_page());
        if let Ok(Some(next)) = links.next_page() {
            let _ = next.apply_to([("patient", "-1"), ("startIndex", "9"), ("_count", "3")]);
        }
        if let Ok(Some(plan)) = links.page_plan() {
            assert!(plan.len() <= 10_000, "a plan of {} pages", plan.len());
        }
    }
    if let Ok(url) = std::str::from_utf8(data) {
        if let Ok(page) = PageRequest::from_link(url) {
            assert_ne!(page.count, Some(0), "a page of zero");
        }
    }
    PROXY.opaque_bundle(data);
});
