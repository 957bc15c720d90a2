//! Paging through FHIR search Bundles without trusting a link's host.
//!
//! Blue Button passes its backend's `Bundle.link` URLs through unchanged, so their host is
//! not the API's. The next page is the *same* search re-sent through the broker with the
//! `startIndex` and `_count` read from the link's query; scheme, host and path are ignored.
//!
//! The npm package keeps a JS copy of these rules (`npm/src/paging.js`), since its data page
//! loads no wasm; `fixtures/paging/vectors.json` pins them as one set, both sides tested on it.

use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::{
    codec::form_pairs,
    error::{Error, Result, msg},
    text::{cut, parse_uint},
};

/// The most pages a plan may hold: 10,000 pages of 50 is far past any beneficiary.
const MAX_PLANNED_PAGES: u32 = 10_000;

/// One page of a search: where it starts and how many entries it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// `startIndex`: the zero-based offset of the first entry.
    #[serde(rename = "startIndex")]
    pub start_index: u32,
    /// `_count`: the page size, when the link names one.
    #[serde(rename = "_count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl PageRequest {
    /// Reads `startIndex` (required) and `_count` (optional) from a link's query. Everything
    /// else about the link — scheme, host, path, other parameters — is ignored.
    pub fn from_link(url: &str) -> Result<PageRequest> {
        let (without_fragment, _) = cut(url, b'#');
        let query = cut(without_fragment, b'?')
            .1
            .ok_or(Error::InvalidPaging(msg!("link has no query")))?;
        // Other parameters may repeat (Blue Button's links repeat `service-date` and
        // `_lastUpdated` for a date interval); only `startIndex` and `_count` must not.
        let pairs = form_pairs(query);
        let number =
            |name: &str| -> Result<Option<u32>> {
                let mut found = None;
                for (key, value) in &pairs {
                    if key == name {
                        if found.is_some() {
                            return Err(Error::DuplicateParameter(name.to_owned()));
                        }
                        found = Some(value);
                    }
                }
                found
                    .map(|v| {
                        parse_uint(v, u32::MAX.into()).map(|n| n as u32).ok_or(
                            Error::InvalidPaging(msg!("startIndex and _count must be integers")),
                        )
                    })
                    .transpose()
            };
        let start_index =
            number("startIndex")?.ok_or(Error::InvalidPaging(msg!("link has no startIndex")))?;
        let count = number("_count")?;
        if count == Some(0) {
            return Err(Error::InvalidPaging(msg!("_count must be positive")));
        }
        Ok(PageRequest { start_index, count })
    }

    /// The search parameters of `search` with this page's `startIndex` and `_count` in place
    /// of any the original had.
    pub fn apply_to<'a>(
        &self,
        search: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = search
            .into_iter()
            .filter(|(k, _)| *k != "startIndex" && *k != "_count")
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some(count) = self.count {
            out.push(("_count".to_owned(), count.to_string()));
        }
        out.push(("startIndex".to_owned(), self.start_index.to_string()));
        out
    }
}

/// The paging facts of one search Bundle: its links by relation, `total` and entry count.
/// Bundles without `total` or `entry` (an empty page) are normal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleLinks {
    this: Option<String>,
    first: Option<String>,
    previous: Option<String>,
    next: Option<String>,
    last: Option<String>,
    total: Option<u64>,
    entries: usize,
}

impl BundleLinks {
    /// From `(relation, url)` pairs, the Bundle's `total` and its number of entries. Unknown
    /// relations are ignored; `prev` is read as `previous`.
    pub fn new<'a>(
        links: impl IntoIterator<Item = (&'a str, &'a str)>,
        total: Option<u64>,
        entries: usize,
    ) -> Self {
        let mut out = Self {
            total,
            entries,
            ..Self::default()
        };
        for (relation, url) in links {
            let slot = match relation {
                "self" => &mut out.this,
                "first" => &mut out.first,
                "previous" | "prev" => &mut out.previous,
                "next" => &mut out.next,
                "last" => &mut out.last,
                _ => continue,
            };
            slot.get_or_insert_with(|| url.to_owned());
        }
        out
    }

    /// Reads the paging facts of a FHIR `Bundle` JSON document.
    #[cfg(feature = "json")]
    pub fn from_bundle_json(body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Link {
            relation: String,
            url: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Bundle {
            resource_type: String,
            total: Option<u64>,
            #[serde(default)]
            link: Vec<Link>,
            #[serde(default)]
            entry: Vec<serde::de::IgnoredAny>,
        }
        let bundle: Bundle =
            serde_json::from_slice(body).map_err(|e| Error::InvalidJson(e.to_string()))?;
        if bundle.resource_type != "Bundle" {
            return Err(Error::InvalidPaging("not a Bundle"));
        }
        Ok(Self::new(
            bundle
                .link
                .iter()
                .map(|l| (l.relation.as_str(), l.url.as_str())),
            bundle.total,
            bundle.entry.len(),
        ))
    }

    /// `total`, when the server sent it.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// How many entries this page holds.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The next page, or `None` on the last one.
    pub fn next_page(&self) -> Result<Option<PageRequest>> {
        self.next.as_deref().map(PageRequest::from_link).transpose()
    }

    /// The previous page, or `None` on the first one.
    pub fn previous_page(&self) -> Result<Option<PageRequest>> {
        self.previous
            .as_deref()
            .map(PageRequest::from_link)
            .transpose()
    }

    /// Every page after this one, planned from the `last` link so they can be fetched in
    /// parallel. `Ok(None)` when there is no `last` link (page sequentially with
    /// [`Self::next_page`] instead); an empty plan when this is the last page (no `next` link),
    /// whatever its `last` link says.
    pub fn page_plan(&self) -> Result<Option<Vec<PageRequest>>> {
        let Some(last) = self.last.as_deref() else {
            return Ok(None);
        };
        let Some(next) = self.next_page()? else {
            return Ok(Some(Vec::new()));
        };
        let last = PageRequest::from_link(last)?;
        let current = match (self.this.as_deref(), self.first.as_deref()) {
            (Some(link), _) | (None, Some(link)) => Some(PageRequest::from_link(link)?),
            (None, None) => None,
        };
        let step = next
            .count
            .or(last.count)
            .or(current.and_then(|c| c.count))
            .or_else(|| current.map(|c| next.start_index.saturating_sub(c.start_index)))
            .filter(|step| *step > 0)
            .ok_or(Error::InvalidPaging(msg!("cannot tell the page size")))?;
        if last.start_index < next.start_index {
            return Err(Error::InvalidPaging(msg!(
                "last page is before the next page"
            )));
        }
        let pages = (last.start_index - next.start_index) / step + 1;
        if pages > MAX_PLANNED_PAGES {
            return Err(Error::InvalidPaging(msg!("too many pages")));
        }
        let mut plan = Vec::new();
        for i in 0..pages {
            plan.push(PageRequest {
                start_index: next.start_index + i * step,
                count: Some(step),
            });
        }
        Ok(Some(plan))
    }
}

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "http://testserver/v2/fhir/ExplanationOfBenefit";

    fn links(this: u32, last: Option<u32>, next: Option<u32>) -> BundleLinks {
        let url = |i: u32| {
            format!("{HOST}?_format=application%2Fjson%2Bfhir&startIndex={i}&_count=10&patient=-1")
        };
        let mut v = vec![("self".to_owned(), url(this)), ("first".to_owned(), url(0))];
        if let Some(i) = last {
            v.push(("last".to_owned(), url(i)));
        }
        if let Some(i) = next {
            v.push(("next".to_owned(), url(i)));
        }
        BundleLinks::new(v.iter().map(|(r, u)| (r.as_str(), u.as_str())), None, 10)
    }

    #[test]
    fn next_page_ignores_the_host() {
        let p = PageRequest::from_link(
            "https://evil.example.com/other/path?startIndex=20&_count=10&patient=-99#x",
        )
        .unwrap();
        assert_eq!(
            p,
            PageRequest {
                start_index: 20,
                count: Some(10)
            }
        );
        let original = [
            ("type", "carrier,pde"),
            ("_count", "10"),
            ("startIndex", "0"),
        ];
        assert_eq!(
            p.apply_to(original),
            vec![
                ("type".to_owned(), "carrier,pde".to_owned()),
                ("_count".to_owned(), "10".to_owned()),
                ("startIndex".to_owned(), "20".to_owned()),
            ]
        );
    }

    #[test]
    fn date_intervals_repeat_their_parameter() {
        let p = PageRequest::from_link(
            "http://x/ExplanationOfBenefit?service-date=ge2020-01-01&service-date=le2020-12-31&startIndex=50&_count=50",
        )
        .unwrap();
        assert_eq!((p.start_index, p.count), (50, Some(50)));
        let original = [
            ("service-date", "ge2020-01-01"),
            ("service-date", "le2020-12-31"),
        ];
        assert_eq!(p.apply_to(original).len(), 4);
    }

    #[test]
    fn bad_links_are_refused() {
        for bad in [
            "http://x/y",
            "http://x/y?_count=10",
            "http://x/y?startIndex=-1",
            "http://x/y?startIndex=1e3",
            "http://x/y?startIndex=0&_count=0",
            "http://x/y?startIndex=0&startIndex=10",
        ] {
            assert!(PageRequest::from_link(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_from_last_link() {
        let plan = links(0, Some(40), Some(10)).page_plan().unwrap().unwrap();
        let starts: Vec<u32> = plan.iter().map(|p| p.start_index).collect();
        assert_eq!(starts, vec![10, 20, 30, 40]);
        assert!(plan.iter().all(|p| p.count == Some(10)));
    }

    #[test]
    fn plan_edge_cases() {
        // Last page: nothing more to fetch.
        assert_eq!(links(40, Some(40), None).page_plan().unwrap(), Some(vec![]));
        // No last link: the caller pages sequentially.
        assert_eq!(links(0, None, Some(10)).page_plan().unwrap(), None);
        assert_eq!(
            links(0, None, Some(10)).next_page().unwrap(),
            Some(PageRequest {
                start_index: 10,
                count: Some(10)
            })
        );
        // A last link before next is nonsense.
        assert!(links(0, Some(0), Some(10)).page_plan().is_err());
        // A plan that would be absurdly long is refused.
        let huge = BundleLinks::new(
            [
                ("next", "http://x/?startIndex=1&_count=1"),
                ("last", "http://x/?startIndex=4000000000&_count=1"),
            ],
            None,
            1,
        );
        assert!(huge.page_plan().is_err());
    }

    #[test]
    fn bundles_without_total_or_entries() {
        let empty = BundleLinks::new([], None, 0);
        assert_eq!(empty.total(), None);
        assert_eq!(empty.entries(), 0);
        assert_eq!(empty.next_page().unwrap(), None);
        assert_eq!(empty.page_plan().unwrap(), None);
    }

    #[cfg(feature = "json")]
    #[test]
    fn reads_a_bundle() {
        let body = br#"{"resourceType":"Bundle","type":"searchset","total":25,
            "link":[{"relation":"self","url":"http://other/x?startIndex=0&_count=10"},
                    {"relation":"next","url":"http://other/x?startIndex=10&_count=10"},
                    {"relation":"last","url":"http://other/x?startIndex=20&_count=10"}],
            "entry":[{"resource":{}},{"resource":{}}]}"#;
        let b = BundleLinks::from_bundle_json(body).unwrap();
        assert_eq!(b.total(), Some(25));
        assert_eq!(b.entries(), 2);
        assert_eq!(b.page_plan().unwrap().unwrap().len(), 2);
        let empty = br#"{"resourceType":"Bundle","type":"searchset"}"#;
        assert_eq!(BundleLinks::from_bundle_json(empty).unwrap().entries(), 0);
        assert!(BundleLinks::from_bundle_json(br#"{"resourceType":"Patient"}"#).is_err());
    }
}
