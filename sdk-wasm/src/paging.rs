//! Searches and paging that never trust a link's host: the JS layer sends the same search to
//! the broker again with only the `startIndex` and `_count` these functions read from a
//! Bundle link ([`PageRequest`]), and fetches every page after the first in parallel when the
//! `last` link gives the plan ([`BundleLinks::page_plan`]).

use crate::prelude::*;

use connect_medicare_protocol::{BundleLinks, EobType, Error as RuleError, PageRequest};
use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::{
    config,
    error::{code, invalid_config, refused},
    js,
};

/// The ExplanationOfBenefit search parameters as `[name, value]` pairs, checked before
/// anything is sent: claim types the provider knows (`types`, a comma list), `since` and
/// `until` service dates (`YYYY-MM-DD`), and a page size within the provider's limit.
#[wasm_bindgen(js_name = eobQuery)]
pub fn eob_query(
    provider: JsValue,
    types: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page_size: Option<u32>,
) -> Result<Array, JsValue> {
    let info = config::provider(&provider).ok_or_else(config::unusable)?;
    let out = Array::new();
    let push = |name: &str, value: &str| {
        out.push(&Array::of2(&name.into(), &value.into()));
    };
    if let Some(types) = types.filter(|t| !t.is_empty()) {
        let known = |t: &EobType| info.eob_types.is_empty() || info.eob_types.contains(t);
        let mut codes = String::new();
        for t in EobType::parse_list(&types)
            .filter(|list| list.iter().all(known))
            .ok_or_else(|| invalid_config("types must be claim types this provider serves"))?
        {
            if !codes.is_empty() {
                codes.push(',');
            }
            codes.push_str(t.as_str());
        }
        push("type", &codes);
    }
    for (prefix, date) in [("ge", since), ("le", until)] {
        if let Some(date) = date {
            if !is_date(&date) {
                return Err(invalid_config("since and until must be dates (YYYY-MM-DD)"));
            }
            push("service-date", &js::concat(&[prefix, &date]));
        }
    }
    if let Some(size) = page_size {
        if size == 0 || info.max_page_size.is_some_and(|max| size > max) {
            return Err(invalid_config(
                "pageSize must be between 1 and the provider's largest page",
            ));
        }
        push("_count", &js::decimal(size.into()));
    }
    Ok(out)
}

/// `YYYY-MM-DD`.
fn is_date(raw: &str) -> bool {
    raw.len() == 10
        && raw.bytes().enumerate().all(|(i, c)| match i {
            4 | 7 => c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The paging links of a Bundle object (`total` and the entries play no part in paging).
fn links(bundle: &JsValue) -> BundleLinks {
    let mut pairs = Vec::new();
    if let Some(list) = js::get_array(bundle, "link") {
        for i in 0..list.length() {
            let link = list.get(i);
            if let (Some(relation), Some(url)) =
                (js::get_str(&link, "relation"), js::get_str(&link, "url"))
            {
                pairs.push((relation, url));
            }
        }
    }
    BundleLinks::new(pairs.iter().map(|(r, u)| (r.as_str(), u.as_str())), None, 0)
}

fn unusable(e: &RuleError) -> JsValue {
    refused(
        code::UPSTREAM_ERROR,
        "The Bundle's paging links are unusable",
        e,
    )
}

/// `{ startIndex, count }` (count `undefined` when the link names none).
fn page(request: PageRequest) -> JsValue {
    js::object(&[
        ("startIndex", request.start_index.into()),
        (
            "count",
            request.count.map_or(JsValue::UNDEFINED, JsValue::from),
        ),
    ])
}

/// The page after `bundle` as `{ startIndex, count }`, or `null` on the last page. Only the
/// `next` link's `startIndex` and `_count` are read.
#[wasm_bindgen(js_name = nextPage)]
pub fn next_page(bundle: JsValue) -> Result<JsValue, JsValue> {
    Ok(links(&bundle)
        .next_page()
        .map_err(|e| unusable(&e))?
        .map_or(JsValue::NULL, page))
}

/// Every page after `bundle`, planned from its `last` link: an array of
/// `{ startIndex, count }`, or `null` when there is no `last` link (page with [`next_page`]).
#[wasm_bindgen(js_name = pagePlan)]
pub fn page_plan(bundle: JsValue) -> Result<JsValue, JsValue> {
    Ok(
        match links(&bundle).page_plan().map_err(|e| unusable(&e))? {
            Some(plan) => plan.into_iter().map(page).collect::<Array>().into(),
            None => JsValue::NULL,
        },
    )
}
