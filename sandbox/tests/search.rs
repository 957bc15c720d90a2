//! Searches as Blue Button runs them, over real HTTP: `service-date` and `_lastUpdated`
//! (operators, intervals, Blue Button's 400s verbatim), `type`, unknown parameters, `total`
//! and links; and a run through a beneficiary with hundreds of claims, 50 at a time, under
//! the rate limit.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;
use connect_medicare_protocol::EobType;
use connect_medicare_sandbox::{Clock, Sandbox};
use serde_json::{Value, json};

async fn unthrottled() -> Sandbox {
    sandbox_with(|c| c.throttle = None, Clock::new()).await
}

/// What a test needs of a claim.
#[derive(Debug, Clone)]
struct Claim {
    id: String,
    end: String,
    updated: String,
}

fn claims(bundle: &Value) -> Vec<Claim> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let r = &e["resource"];
            Claim {
                id: r["id"].as_str().unwrap().to_owned(),
                // A drug event has no billing period: its date is the fill date.
                end: r["billablePeriod"]["end"]
                    .as_str()
                    .or(r["item"][0]["servicedDate"].as_str())
                    .unwrap()
                    .to_owned(),
                updated: r["meta"]["lastUpdated"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

/// GET that honours 429s by moving the sandbox's (frozen) clock by `Retry-After`, as a
/// well-behaved client waits; returns the body and how many 429s it met.
async fn polite_get(sandbox: &Sandbox, path: &str, token: &str) -> (Value, u32) {
    let mut throttled = 0;
    loop {
        let response = get(sandbox, path, token).await;
        if response.status() == 429 {
            throttled += 1;
            assert!(throttled < 5, "throttled again and again: {path}");
            let wait: i64 = header_value(&response, "retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            sandbox.clock().advance(wait);
            continue;
        }
        assert_eq!(response.status(), 200, "{path}");
        return (json(response).await, throttled);
    }
}

/// Every page of an ExplanationOfBenefit search with `_count=50`, following `next` by
/// re-sending the search with the link's `startIndex` (never the link's host); checks the
/// pages against `total` and the `last` link.
async fn all_pages(sandbox: &Sandbox, token: &str, filter: &str) -> (Vec<Claim>, u64, u32) {
    let mut out = Vec::new();
    let mut start = 0;
    let mut total = None;
    let mut throttled = 0;
    loop {
        let path = format!("/v2/fhir/ExplanationOfBenefit?_count=50&startIndex={start}{filter}");
        let (page, waits) = polite_get(sandbox, &path, token).await;
        throttled += waits;
        let page_total = page["total"].as_u64().unwrap();
        assert_eq!(
            *total.get_or_insert(page_total),
            page_total,
            "a stable total"
        );
        let entries = claims(&page);
        // The link's host is not ours: read its startIndex and _count, re-send the search.
        // (Its query repeats `service-date` for an interval, as Blue Button's does.)
        let next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
        match next {
            Some(url) => {
                let query = url.split_once('?').unwrap().1;
                let value = |name: &str| {
                    form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.parse::<usize>().unwrap())
                };
                assert_eq!(entries.len(), 50, "only the last page is short");
                assert_eq!(value("_count"), Some(50));
                assert_eq!(value("startIndex"), Some(start + 50));
                start += 50;
            }
            None => {
                let last = page["link"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["relation"] == "last")
                    .unwrap()["url"]
                    .as_str()
                    .unwrap();
                assert!(last.contains(&format!("startIndex={start}&")), "{last}");
                out.extend(entries);
                break;
            }
        }
        out.extend(entries);
    }
    (out, total.unwrap_or(0), throttled)
}

#[tokio::test]
async fn paging_through_hundreds_of_claims_fifty_at_a_time_under_the_rate_limit() {
    // The default rate limit (10 per second per token) on a frozen clock: the run meets 429s
    // and waits them out by advancing the clock, never by sleeping.
    let sandbox = sandbox_with(|_| {}, Clock::frozen()).await;
    let token = token_for(&sandbox, 29).await;
    let (everything, total, mut throttled) = all_pages(&sandbox, &token, "").await;
    assert!(total >= 300, "{total}");
    assert_eq!(everything.len() as u64, total);
    let ids: HashSet<&str> = everything.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), everything.len(), "no duplicates");

    // Each type alone, and all of them together, add up to the total.
    let mut by_type = 0;
    for kind in EobType::ALL {
        let (page, waits) = polite_get(
            &sandbox,
            &format!(
                "/v2/fhir/ExplanationOfBenefit?_count=1&type={}",
                kind.as_str()
            ),
            &token,
        )
        .await;
        throttled += waits;
        let n = page["total"].as_u64().unwrap();
        let expected = everything
            .iter()
            .filter(|c| c.id.starts_with(&format!("{}-", kind.as_str())))
            .count() as u64;
        assert_eq!(n, expected, "{kind:?}");
        assert!(n > 0, "{kind:?}");
        by_type += n;
    }
    assert_eq!(by_type, total);

    // A type filter, paged: exactly the claims of those types.
    let (institutional, n, waits) = all_pages(&sandbox, &token, "&type=inpatient,outpatient").await;
    throttled += waits;
    let expected: HashSet<&str> = everything
        .iter()
        .map(|c| c.id.as_str())
        .filter(|id| id.starts_with("inpatient-") || id.starts_with("outpatient-"))
        .collect();
    assert_eq!(n as usize, expected.len());
    assert_eq!(
        institutional
            .iter()
            .map(|c| c.id.as_str())
            .collect::<HashSet<_>>(),
        expected
    );

    // A service-date interval, paged: exactly the claims that went through inside it.
    let (in_2020, n, waits) = all_pages(
        &sandbox,
        &token,
        "&service-date=ge2020-01-01&service-date=lt2021-01-01",
    )
    .await;
    throttled += waits;
    let expected: HashSet<&str> = everything
        .iter()
        .filter(|c| c.end.as_str() >= "2020-01-01" && c.end.as_str() < "2021-01-01")
        .map(|c| c.id.as_str())
        .collect();
    assert!(expected.len() > 50, "{}", expected.len());
    assert_eq!(n as usize, expected.len());
    assert_eq!(
        in_2020
            .iter()
            .map(|c| c.id.as_str())
            .collect::<HashSet<_>>(),
        expected
    );
    // More than ten requests in one instant: the rate limit was met and waited out.
    assert!(throttled >= 1, "{throttled}");
}

#[tokio::test]
async fn operators_are_required_with_blue_buttons_messages() {
    let sandbox = unthrottled().await;
    let token = token_for(&sandbox, 3).await;
    for bad in ["2020-01-01", "eq2020-01-01", "", "2020"] {
        let encoded: String = form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        for resource in ["ExplanationOfBenefit", "Patient", "Coverage"] {
            for query in [
                format!("_lastUpdated={encoded}"),
                format!("_lastUpdated=gt2020-01-01&_lastUpdated={encoded}"),
            ] {
                let response = get(&sandbox, &format!("/v2/fhir/{resource}?{query}"), &token).await;
                assert_eq!(response.status(), 400, "{resource}?{query}");
                assert_eq!(
                    json(response).await,
                    json!({"detail": "the _lastUpdated operator is not valid"})
                );
            }
        }
        for query in [
            format!("service-date={encoded}"),
            format!("service-date=ge2020-01-01&service-date={encoded}"),
        ] {
            let response = get(
                &sandbox,
                &format!("/v2/fhir/ExplanationOfBenefit?{query}"),
                &token,
            )
            .await;
            assert_eq!(response.status(), 400, "{query}");
            assert_eq!(
                json(response).await,
                json!({"detail": "the service-date operator is not valid"})
            );
        }
    }
    // `service-date` is not a Patient parameter: dropped like any unknown one.
    let patient = bundle(
        &sandbox,
        "/v2/fhir/Patient?service-date=2020&foo=bar",
        &token,
    )
    .await;
    assert_eq!(patient["total"], 1);
    // An operator with a date the backend cannot read: its diagnostics, passed on.
    let response = get(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit?service-date=gtsoon",
        &token,
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json(response).await,
        json!({"detail": "An error occurred contacting the upstream server:Invalid date/time format: \"soon\""})
    );
    // `_count=0`: the backend divides by the page size.
    let response = get(&sandbox, "/v2/fhir/ExplanationOfBenefit?_count=0", &token).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json(response).await,
        json!({"detail": "An error occurred contacting the upstream server:Invalid pageSize '0'"})
    );
}

#[tokio::test]
async fn date_filters_split_the_claims_consistently() {
    let sandbox = unthrottled().await;
    let token = token_for(&sandbox, 19).await;
    let (everything, total, _) = all_pages(&sandbox, &token, "").await;
    let count = |bundle: &Value| bundle["total"].as_u64().unwrap();
    let search = |query: String| {
        let sandbox = &sandbox;
        let token = token.clone();
        async move {
            bundle(
                sandbox,
                &format!("/v2/fhir/ExplanationOfBenefit?_count=50&{query}"),
                &token,
            )
            .await
        }
    };

    // service-date: `le` and `gt` of the same day split the claims in two.
    let mut ends: Vec<&str> = everything.iter().map(|c| c.end.as_str()).collect();
    ends.sort_unstable();
    let day = ends[ends.len() / 2];
    let le = search(format!("service-date=le{day}")).await;
    let gt = search(format!("service-date=gt{day}")).await;
    assert_eq!(count(&le) + count(&gt), total);
    assert_eq!(
        count(&le),
        everything.iter().filter(|c| c.end.as_str() <= day).count() as u64
    );
    assert!(claims(&gt).iter().all(|c| c.end.as_str() > day));
    // A month's precision: `ge2020-03` starts on the first of March.
    let march = search("service-date=ge2020-03&service-date=lt2020-04".to_owned()).await;
    assert_eq!(
        count(&march),
        everything
            .iter()
            .filter(|c| c.end.starts_with("2020-03"))
            .count() as u64
    );

    // _lastUpdated at millisecond precision: `le` and `gt` of one claim's stamp.
    let mut stamps: Vec<&str> = everything.iter().map(|c| c.updated.as_str()).collect();
    stamps.sort_unstable();
    let stamp = stamps[stamps.len() * 3 / 4];
    let encoded: String = form_urlencoded::byte_serialize(stamp.as_bytes()).collect();
    let le = search(format!("_lastUpdated=le{encoded}")).await;
    let gt = search(format!("_lastUpdated=gt{encoded}")).await;
    assert_eq!(count(&le) + count(&gt), total);
    assert_eq!(
        count(&gt),
        everything
            .iter()
            .filter(|c| c.updated.as_str() > stamp)
            .count() as u64
    );
    // Claims loaded before the backend kept load times carry its fallback stamp.
    let fallback = "2020-01-01T00:00:00.000+00:00";
    let early = search("_lastUpdated=le2020-01-01T00:00:00.000Z".to_owned()).await;
    assert!(count(&early) > 0);
    assert!(claims(&early).iter().all(|c| c.updated == fallback));

    // Filters combine, and the links carry every one of them.
    let combined = search(
        "type=carrier,pde&service-date=ge2020-01-01&service-date=lt2021-07-01&_lastUpdated=gt2020-06-01&foo=bar"
            .to_owned(),
    )
    .await;
    let expected = everything
        .iter()
        .filter(|c| c.id.starts_with("carrier-") || c.id.starts_with("pde-"))
        .filter(|c| c.end.as_str() >= "2020-01-01" && c.end.as_str() < "2021-07-01")
        .filter(|c| c.updated.as_str() > "2020-06-01T23:59:59.999+00:00")
        .count() as u64;
    assert_eq!(count(&combined), expected);
    let links: BTreeMap<&str, &str> = combined["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["relation"].as_str().unwrap(), l["url"].as_str().unwrap()))
        .collect();
    for (relation, url) in &links {
        for part in [
            "type=carrier%2Cpde",
            "service-date=ge2020-01-01",
            "service-date=lt2021-07-01",
            "_lastUpdated=gt2020-06-01",
            "_count=50",
            "startIndex=",
            "patient=-20140000008344",
        ] {
            assert!(url.contains(part), "{relation}: {url} lacks {part}");
        }
        assert!(
            !url.contains("foo"),
            "unknown parameters are dropped: {url}"
        );
        assert!(url.starts_with("https://prod-sbx.bfd.cms.example/v2/fhir/ExplanationOfBenefit"));
    }

    // Patient and Coverage answer `_lastUpdated` too.
    let none = bundle(
        &sandbox,
        "/v2/fhir/Patient?_lastUpdated=gt2030-01-01",
        &token,
    )
    .await;
    assert_eq!(none["total"], 0);
    assert!(none.get("entry").is_none());
    let coverage = bundle(
        &sandbox,
        "/v2/fhir/Coverage?_lastUpdated=lt2030-01-01",
        &token,
    )
    .await;
    assert_eq!(coverage["total"], 4);
}

#[tokio::test]
async fn type_values_as_blue_button_and_its_backend_read_them() {
    let sandbox = unthrottled().await;
    let token = token_for(&sandbox, 9).await;
    let total_of = |query: &'static str| {
        let sandbox = &sandbox;
        let token = token.clone();
        async move {
            bundle(
                sandbox,
                &format!("/v2/fhir/ExplanationOfBenefit?{query}"),
                &token,
            )
            .await["total"]
                .as_u64()
                .unwrap()
        }
    };
    let all = total_of("").await;
    let carrier = total_of("type=carrier").await;
    let pde = total_of("type=pde").await;
    assert_eq!(total_of("type=CARRIER,Pde").await, carrier + pde);
    assert_eq!(
        total_of("type=https://bluebutton.cms.gov/resources/codesystem/eob-type|carrier,pde").await,
        carrier + pde
    );
    // A bare system means every type.
    assert_eq!(
        total_of("type=https://bluebutton.cms.gov/resources/codesystem/eob-type|").await,
        all
    );
    // Blue Button's pattern lets these through; the backend then reads no known type.
    assert_eq!(total_of("type=carrierpde").await, 0);
    // …or reads only the first of two codes with a blank between them.
    assert_eq!(total_of("type=carrier,%20pde").await, carrier);
    for bad in ["claims", "carrier,claims", "", "carrier,%20,pde"] {
        let response = get(
            &sandbox,
            &format!("/v2/fhir/ExplanationOfBenefit?type={bad}"),
            &token,
        )
        .await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(
            json(response).await,
            json!({"detail": "the type parameter value is not valid"})
        );
    }
}

#[tokio::test]
async fn bundles_are_shaped_as_the_backend_writes_them() {
    let sandbox = unthrottled().await;
    let token = token_for(&sandbox, 9).await;
    let page = bundle(
        &sandbox,
        "/v2/fhir/ExplanationOfBenefit?_count=10&startIndex=20",
        &token,
    )
    .await;
    let keys: Vec<&str> = page
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "resourceType",
            "id",
            "meta",
            "type",
            "total",
            "link",
            "entry"
        ]
    );
    let relations: Vec<&str> = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["relation"].as_str().unwrap())
        .collect();
    assert_eq!(relations, ["first", "next", "previous", "last", "self"]);
    let total = page["total"].as_u64().unwrap();
    let link = |relation: &str| {
        page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == relation)
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        link("next"),
        "https://prod-sbx.bfd.cms.example/v2/fhir/ExplanationOfBenefit?_format=application%2Fjson%2Bfhir&startIndex=30&_count=10&patient=-20140000008334"
    );
    assert!(link("previous").contains("startIndex=10&"));
    assert!(link("last").contains(&format!("startIndex={}&", (total - 1) / 10 * 10)));
    // HAPI's self link: the resource with a slash, its parameters sorted.
    assert_eq!(
        link("self"),
        "https://prod-sbx.bfd.cms.example/v2/fhir/ExplanationOfBenefit/?_count=10&_format=application%2Fjson%2Bfhir&patient=-20140000008334&startIndex=20"
    );
    // A uuid id and a millisecond `lastUpdated`, as the backend writes them.
    let id = page["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(id.matches('-').count(), 4);
    assert!(
        page["meta"]["lastUpdated"]
            .as_str()
            .unwrap()
            .ends_with("+00:00")
    );
    assert_eq!(entry_ids(&page).len(), 10);
}
