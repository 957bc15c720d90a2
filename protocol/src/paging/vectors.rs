//! The paging rules against the shared cases of `fixtures/paging/vectors.json`, which the npm
//! package's JS copy of them (`npm/src/paging.js`) is checked against too
//! (`tests/npm/paging-vectors.test.mjs`): a rule changed on one side only fails that side.
//! Cases marked `"sides": ["js"]` are the JS's only (each says why) and are skipped here.

use crate::prelude::*;

use serde_json::Value;

use super::PageRequest;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const VECTORS: &str = include_str!("../../../fixtures/paging/vectors.json");

/// The cases of `kind` this side checks (shared ones and Rust-only ones); at least one.
fn ours(kind: &str) -> Vec<Value> {
    let vectors: Value = serde_json::from_str(VECTORS).expect("vectors.json is JSON");
    let cases: Vec<Value> = vectors[kind]
        .as_array()
        .unwrap_or_else(|| panic!("vectors.json has no list '{kind}'"))
        .iter()
        .filter(|c| match c.get("sides") {
            None => true,
            Some(sides) => sides.as_array().unwrap().iter().any(|s| s == "rust"),
        })
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "no '{kind}' case for Rust");
    cases
}

fn name(case: &Value) -> &str {
    case["name"].as_str().expect("every case has a name")
}

/// A page as the vectors write it (`startIndex`, `_count`).
fn page(value: &Value, name: &str) -> PageRequest {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{name}: not a startIndex page ({e}): {value}"))
}

/// An expected plan: a list of pages, or `{ pages, startIndex, _count }` for a long one.
fn plan(value: &Value, name: &str) -> Vec<PageRequest> {
    if let Some(pages) = value.as_array() {
        return pages.iter().map(|p| page(p, name)).collect();
    }
    let number = |key: &str| {
        value[key]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or_else(|| panic!("{name}: plan.{key}"))
    };
    let (start, step) = (number("startIndex"), number("_count"));
    (0..number("pages"))
        .map(|i| PageRequest {
            start_index: start + i * step,
            count: Some(step),
        })
        .collect()
}

/// Checks every case of `kind` this side checks against its `expect`: `refused` (any `Err`),
/// or `key` (`page` or `plan`) with `null` for `None`, read by `read`; fails with every case
/// that failed, not only the first.
fn check_all<T: PartialEq + core::fmt::Debug>(
    kind: &str,
    key: &str,
    answer: impl Fn(&Value) -> crate::Result<Option<T>>,
    read: impl Fn(&Value, &str) -> T,
) {
    let mut failures = Vec::new();
    for case in ours(kind) {
        let name = name(&case);
        let outcome = answer(&case);
        let expect = &case["expect"];
        if let Some(why) = expect.get("refused") {
            if outcome.is_ok() {
                failures.push(format!("{name}: expected refused ({why}), got {outcome:?}"));
            }
            continue;
        }
        let expected = expect
            .get(key)
            .unwrap_or_else(|| panic!("{name}: expect has neither 'refused' nor '{key}'"));
        let expected = (!expected.is_null()).then(|| read(expected, name));
        match outcome {
            Ok(got) if got == expected => {}
            Ok(got) => failures.push(format!("{name}: expected {expected:?}, got {got:?}")),
            Err(e) => failures.push(format!("{name}: expected {expected:?}, refused: {e:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} '{kind}' case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn link_vectors() {
    check_all(
        "links",
        "page",
        |case| {
            let url = case["url"].as_str().expect("a link case has a url");
            PageRequest::from_link(url).map(Some)
        },
        page,
    );
}

/// The Bundle of a case, read as the broker and the Rust clients read one.
#[cfg(feature = "json")]
fn bundle(case: &Value) -> crate::Result<super::BundleLinks> {
    assert!(
        case.get("start").is_none(),
        "{}: `start` is pagePlan's (JS) only",
        name(case)
    );
    super::BundleLinks::from_bundle_json(case["bundle"].to_string().as_bytes())
}

#[cfg(feature = "json")]
#[test]
fn next_page_vectors() {
    check_all("next", "page", |c| bundle(c)?.next_page(), page);
}

#[cfg(feature = "json")]
#[test]
fn page_plan_vectors() {
    check_all("plans", "plan", |c| bundle(c)?.page_plan(), plan);
}
