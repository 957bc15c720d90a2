//! The FHIR surface: `metadata`, `Patient`, `Coverage`, `ExplanationOfBenefit` (read and
//! search), and `userinfo`. Every search is forced to the token's own patient; Bundle links
//! are written on a foreign host, as Blue Button passes its backend's links through.
//!
//! A Blue Button read or search goes through the same steps as on the real server: the
//! token (401), the scopes (403), the per-token rate limit (429, with the `X-RateLimit-*`
//! headers from then on), Blue Button's parameter checks (400), the backend (an injected
//! upstream failure answers 502), the backend's own checks (400), then the data.

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use connect_medicare_protocol::Scopes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    clinical,
    clock::{format_instant_millis, format_rfc3339},
    data::User,
    errors::{self, ACCESS_TIMED_OUT, NO_PERMISSION, TokenProblem},
    search::{DEFAULT_COUNT, Search, SearchError},
    state::{Profile, Shared, StoredSearch},
    throttle::{RateHeaders, throttled_detail},
    token::allows,
};

/// Blue Button's answer when its backend fails (`apps/fhir/bluebutton/exceptions.py`).
pub(crate) const UPSTREAM_ERROR: &str = "An error occurred contacting the upstream server";

/// Who is calling, once the bearer token checked out.
struct Caller<'a> {
    user: &'a User,
    /// The user's index in the dataset.
    index: usize,
    scopes: Scopes,
    token: String,
}

/// A failed FHIR request, written in the profile's error shape.
enum Failure {
    InvalidToken(errors::TokenProblem),
    TimedOut,
    Forbidden,
    NotFound,
    BadRequest(String),
    /// 429, with DRF's wait in whole seconds when it knows it.
    Throttled(Option<u64>),
    /// Throttled until this instant (unix milliseconds), given as an HTTP-date.
    ThrottledUntil(u64, i64),
    /// The backend failed: 502.
    Upstream,
}

impl From<SearchError> for Failure {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Invalid(detail) => Failure::BadRequest(detail),
            SearchError::Backend(diagnostics) => {
                Failure::BadRequest(format!("{UPSTREAM_ERROR}:{diagnostics}"))
            }
        }
    }
}

impl Failure {
    fn into_response(self, profile: Profile) -> Response {
        match profile {
            Profile::BlueButton => match self {
                Failure::InvalidToken(problem) => errors::invalid_token(problem),
                Failure::TimedOut => errors::grant_ended(ACCESS_TIMED_OUT),
                Failure::Forbidden => errors::detail(StatusCode::FORBIDDEN, NO_PERMISSION),
                Failure::NotFound => errors::detail(StatusCode::NOT_FOUND, "Not found."),
                Failure::BadRequest(detail) => errors::detail(StatusCode::BAD_REQUEST, &detail),
                Failure::Throttled(wait) => {
                    let mut response =
                        errors::detail(StatusCode::TOO_MANY_REQUESTS, &throttled_detail(wait));
                    // DRF writes `Retry-After` only for a non-zero wait.
                    if let Some(wait) = wait.filter(|w| *w > 0) {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
                    }
                    response
                }
                Failure::ThrottledUntil(wait, until_millis) => {
                    let mut response = errors::detail(
                        StatusCode::TOO_MANY_REQUESTS,
                        &throttled_detail(Some(wait)),
                    );
                    let until = std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(
                            u64::try_from(until_millis).unwrap_or(0),
                        );
                    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(until)) {
                        response.headers_mut().insert(header::RETRY_AFTER, date);
                    }
                    response
                }
                Failure::Upstream => errors::detail(StatusCode::BAD_GATEWAY, UPSTREAM_ERROR),
            },
            Profile::Smart => {
                let (status, code, text) = match self {
                    Failure::InvalidToken(_) => (
                        StatusCode::UNAUTHORIZED,
                        "login",
                        "Invalid or expired access token".to_owned(),
                    ),
                    Failure::TimedOut => (
                        StatusCode::UNAUTHORIZED,
                        "expired",
                        ACCESS_TIMED_OUT.to_owned(),
                    ),
                    Failure::Forbidden => {
                        (StatusCode::FORBIDDEN, "forbidden", NO_PERMISSION.to_owned())
                    }
                    Failure::NotFound => (
                        StatusCode::NOT_FOUND,
                        "not-found",
                        "Resource not found".to_owned(),
                    ),
                    Failure::BadRequest(detail) => (StatusCode::BAD_REQUEST, "invalid", detail),
                    Failure::Throttled(_) | Failure::ThrottledUntil(..) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        "throttled",
                        "Too many requests".to_owned(),
                    ),
                    Failure::Upstream => (
                        StatusCode::BAD_GATEWAY,
                        "transient",
                        UPSTREAM_ERROR.to_owned(),
                    ),
                };
                let mut response = errors::json(
                    status,
                    json!({"resourceType": "OperationOutcome",
                           "issue": [{"severity": "error", "code": code, "diagnostics": text}]}),
                );
                if status == StatusCode::UNAUTHORIZED {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
                    );
                }
                response
            }
        }
    }
}

fn caller<'a>(
    shared: &'a Shared,
    profile: Profile,
    headers: &HeaderMap,
) -> Result<Caller<'a>, Failure> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Failure::InvalidToken(TokenProblem::Missing))?;
    let now = shared.clock.now();
    let inner = shared.lock();
    let record = inner
        .access
        .get(token)
        .filter(|a| a.profile == profile)
        .ok_or(Failure::InvalidToken(TokenProblem::Invalid))?;
    if record.expires_at <= now {
        return Err(Failure::InvalidToken(TokenProblem::Expired));
    }
    let grant = inner
        .grants
        .get(&(record.client_id.clone(), record.user, profile))
        .ok_or(Failure::InvalidToken(TokenProblem::Invalid))?;
    if grant.expires_at.is_some_and(|at| at <= now) {
        return Err(Failure::TimedOut);
    }
    Ok(Caller {
        user: &shared.data.users()[record.user],
        index: record.user,
        scopes: record.scopes.clone(),
        token: token.to_owned(),
    })
}

/// The rate limit (and a forced 429 storm) on the Blue Button face: DRF checks throttles
/// after authentication and permissions, before the view runs.
fn throttle(
    shared: &Shared,
    profile: Profile,
    caller: &Caller<'_>,
    limits: &mut Option<RateHeaders>,
) -> Result<(), Failure> {
    if profile != Profile::BlueButton {
        return Ok(());
    }
    let now = shared.clock.now_millis();
    let rate = shared.faults.throttle();
    if let Some(storm) = shared.faults.storm(now) {
        *limits = Some(RateHeaders {
            limit: rate.map_or(0, |r| i64::from(r.requests)),
            remaining: 0,
            reset_millis: storm.remaining_millis,
        });
        let wait = u64::try_from((storm.remaining_millis + 999) / 1000)
            .unwrap_or(1)
            .max(1);
        if shared.faults.retry_after_date() {
            return Err(Failure::ThrottledUntil(wait, now + storm.remaining_millis));
        }
        return Err(Failure::Throttled(Some(wait)));
    }
    if let Some(rate) = rate {
        let decision = shared.throttle.check(rate, &caller.token, now);
        *limits = Some(decision.headers);
        if let Some(wait) = decision.refused {
            return Err(Failure::Throttled(wait));
        }
    }
    Ok(())
}

/// The call to the backend, which an injected fault makes fail.
fn backend(shared: &Shared) -> Result<(), Failure> {
    if shared.faults.upstream_fails() {
        return Err(Failure::Upstream);
    }
    Ok(())
}

type Pairs = Vec<(String, String)>;

fn query_pairs(query: Option<String>) -> Pairs {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The three searchable resource types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resource {
    Patient,
    Coverage,
    ExplanationOfBenefit,
}

impl Resource {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "Patient" => Some(Self::Patient),
            "Coverage" => Some(Self::Coverage),
            "ExplanationOfBenefit" => Some(Self::ExplanationOfBenefit),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Patient => "Patient",
            Self::Coverage => "Coverage",
            Self::ExplanationOfBenefit => "ExplanationOfBenefit",
        }
    }
}

/// A FHIR JSON answer, serialized once (bundles run to megabytes).
fn fhir_json(body: &Value) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+json"),
            );
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET {fhir}/{type}` and `GET {fhir}/{type}/` — search.
pub(crate) async fn bb2_search(
    State(shared): State<Arc<Shared>>,
    Path(resource): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    search(&shared, Profile::BlueButton, &resource, &headers, query)
}

/// `GET /smart/fhir/{type}`.
pub(crate) async fn smart_search(
    State(shared): State<Arc<Shared>>,
    Path(resource): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    search(&shared, Profile::Smart, &resource, &headers, query)
}

/// `GET {fhir}/{type}/{id}` — read.
pub(crate) async fn bb2_read(
    State(shared): State<Arc<Shared>>,
    Path((resource, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read(&shared, Profile::BlueButton, &resource, &id, &headers)
}

/// `GET /smart/fhir/{type}/{id}`.
pub(crate) async fn smart_read(
    State(shared): State<Arc<Shared>>,
    Path((resource, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read(&shared, Profile::Smart, &resource, &id, &headers)
}

/// Writes the rate-limit headers (when the throttle ran) on any answer.
fn with_limits(mut response: Response, limits: Option<RateHeaders>) -> Response {
    if let Some(limits) = limits {
        limits.apply(response.headers_mut());
    }
    response
}

fn search(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    headers: &HeaderMap,
    query: Option<String>,
) -> Response {
    let resource = resource.trim_end_matches('/');
    let mut limits = None;
    let response = search_inner(shared, profile, resource, headers, query, &mut limits)
        .unwrap_or_else(|failure| failure.into_response(profile));
    with_limits(response, limits)
}

fn search_inner(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    headers: &HeaderMap,
    query: Option<String>,
    limits: &mut Option<RateHeaders>,
) -> Result<Response, Failure> {
    run_search(
        shared,
        profile,
        resource,
        headers,
        &query_pairs(query),
        None,
        limits,
    )
}

/// `GET /smart/fhir?_getpages=…&_getpagesoffset=…&_count=…` — a page of a stored search, as
/// HAPI FHIR serves the opaque next links it writes: any valid token with the resource's scope
/// reads the pages of the search the id names, whoever ran it (the id is the only secret).
pub(crate) async fn smart_pages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let stored = get("_getpages").and_then(|id| shared.lock().pages.get(id).cloned());
    let Some(stored) = stored else {
        return Failure::NotFound.into_response(Profile::Smart);
    };
    let mut search = stored.pairs.clone();
    search.push((
        "startIndex".to_owned(),
        get("_getpagesoffset").unwrap_or("0").to_owned(),
    ));
    if let Some(count) = get("_count") {
        search.push(("_count".to_owned(), count.to_owned()));
    }
    let mut limits = None;
    let response = run_search(
        &shared,
        Profile::Smart,
        &stored.resource,
        &headers,
        &search,
        Some((stored.user, get("_getpages").unwrap_or_default().to_owned())),
        &mut limits,
    )
    .unwrap_or_else(|failure| failure.into_response(Profile::Smart));
    with_limits(response, limits)
}

/// A search of `resource` with `pairs`, for the caller's own patient — or, for a stored
/// search's page, for `owner`'s.
fn run_search(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    headers: &HeaderMap,
    pairs: &Pairs,
    owner: Option<(usize, String)>,
    limits: &mut Option<RateHeaders>,
) -> Result<Response, Failure> {
    if let (Profile::Smart, Some(kind)) = (profile, clinical::Kind::parse(resource)) {
        return clinical_search(shared, kind, headers, pairs, owner);
    }
    let resource = Resource::parse(resource).ok_or(Failure::NotFound)?;
    let caller = caller(shared, profile, headers)?;
    if !allows(&caller.scopes, resource.name(), true) {
        return Err(Failure::Forbidden);
    }
    throttle(shared, profile, &caller, limits)?;
    let index = owner.as_ref().map_or(caller.index, |(index, _)| *index);
    let user = shared.data.users().get(index).ok_or(Failure::NotFound)?;
    let checked = Search::parse(pairs, resource == Resource::ExplanationOfBenefit);
    if let Err(SearchError::Invalid(detail)) = checked {
        return Err(Failure::BadRequest(detail));
    }
    backend(shared)?;
    let search = checked?;
    let now = shared.clock.now_millis();
    // Every search is forced to the caller's own patient; `_id`, `patient`, `beneficiary`
    // and unknown parameters are ignored.
    let updated = |at: i64| search.last_updated.contains(at);
    let (total, entries) = match resource {
        Resource::Patient => {
            let all: Vec<Value> = if updated(user.last_updated_millis()) {
                vec![shared.data.patient(user)]
            } else {
                Vec::new()
            };
            search.check_start(all.len())?;
            (all.len(), window(&all, search.start, search.count).to_vec())
        }
        Resource::Coverage => {
            let all = if updated(user.last_updated_millis()) {
                shared.data.coverages(user)
            } else {
                Vec::new()
            };
            search.check_start(all.len())?;
            (all.len(), window(&all, search.start, search.count).to_vec())
        }
        Resource::ExplanationOfBenefit => {
            let claims: Vec<_> = user
                .claims()
                .iter()
                .filter(|c| search.types.as_ref().is_none_or(|t| t.contains(&c.kind)))
                .filter(|c| search.service_date.contains(c.end_day * 86_400_000))
                .filter(|c| updated(c.last_updated_millis))
                .collect();
            search.check_start(claims.len())?;
            let page = window(&claims, search.start, search.count)
                .iter()
                .map(|c| shared.data.eob_at(user, c, now.div_euclid(1000)))
                .collect();
            (claims.len(), page)
        }
    };
    let links = match profile {
        Profile::BlueButton => links(shared, resource, user, &search, total)?,
        Profile::Smart => {
            let id = owner.map(|(_, id)| id);
            let window = page_window(&search)?;
            opaque_links(
                shared,
                resource.name(),
                index,
                window,
                &search.carried,
                total,
                id,
            )?
        }
    };
    Ok(searchset(
        shared,
        resource.name(),
        user,
        pairs,
        total,
        links,
        entries,
        Vec::new(),
    ))
}

/// A search Bundle of `entries` (one page of `total`), with `links`, and the `included`
/// resources after them (search mode `include`).
#[allow(clippy::too_many_arguments)]
fn searchset(
    shared: &Shared,
    resource: &str,
    user: &User,
    pairs: &Pairs,
    total: usize,
    links: Vec<Value>,
    entries: Vec<Value>,
    included: Vec<Value>,
) -> Response {
    let now = shared.clock.now_millis();
    // The backend stamps a bundle with its last load, or a newer resource's update.
    let newest = entries
        .iter()
        .filter_map(|e| e["meta"]["lastUpdated"].as_str())
        .max()
        .map(str::to_owned);
    let stamp = format_instant_millis(now);
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": bundle_id(shared, resource, user, pairs, now),
        "meta": {"lastUpdated": newest.filter(|n| *n > stamp).unwrap_or(stamp)},
        "type": "searchset",
        "total": total,
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = entries
            .into_iter()
            .map(|resource| json!({"resource": resource}))
            .chain(
                included
                    .into_iter()
                    .map(|resource| json!({"resource": resource, "search": {"mode": "include"}})),
            )
            .collect();
    }
    fhir_json(&bundle)
}

/// A search of US Core clinical data on the SMART face (`clinical.rs`), paged by opaque links.
fn clinical_search(
    shared: &Shared,
    kind: clinical::Kind,
    headers: &HeaderMap,
    pairs: &Pairs,
    owner: Option<(usize, String)>,
) -> Result<Response, Failure> {
    let caller = caller(shared, Profile::Smart, headers)?;
    if !allows(&caller.scopes, kind.name(), true) {
        return Err(Failure::Forbidden);
    }
    backend(shared)?;
    let index = owner.as_ref().map_or(caller.index, |(index, _)| *index);
    let users = shared.data.users();
    let user = users.get(index).ok_or(Failure::NotFound)?;
    // The patient, named as a patient-level token needs: the search's own (a stored search
    // carries it), and no one else's.
    let named = pairs
        .iter()
        .find(|(k, _)| k == "patient")
        .map(|(_, v)| v.strip_prefix("Patient/").unwrap_or(v))
        .ok_or_else(|| {
            Failure::BadRequest("The search must name the patient (patient=)".to_owned())
        })?;
    if named != user.patient_id && !shared.faults.leak_patients() {
        return Err(Failure::Forbidden);
    }
    let mut candidates = clinical::records(user, kind);
    if shared.faults.leak_patients() {
        candidates.extend(clinical::records(&users[(index + 1) % users.len()], kind));
    }
    let found = clinical::search(kind, candidates, pairs).map_err(Failure::BadRequest)?;
    let number = |name: &str, default: usize| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or(Ok(default), |(_, v)| {
                v.parse::<usize>()
                    .map_err(|_| Failure::BadRequest(format!("Invalid {name} value: \"{v}\"")))
            })
    };
    let start = number("startIndex", 0)?;
    let count = number("_count", DEFAULT_COUNT)?.min(MAX_CLINICAL_COUNT);
    if count == 0 {
        return Err(Failure::BadRequest("Invalid pageSize '0'".to_owned()));
    }
    let carried: Pairs = pairs
        .iter()
        .filter(|(k, _)| k != "_count" && k != "startIndex")
        .cloned()
        .collect();
    let total = found.len();
    let id = owner.map(|(_, id)| id);
    let links = opaque_links(
        shared,
        kind.name(),
        index,
        (start, count),
        &carried,
        total,
        id,
    )?;
    let entries: Vec<Value> = found
        .into_iter()
        .skip(start)
        .take(count)
        .map(|r| r.body)
        .collect();
    let include = pairs
        .iter()
        .any(|(k, v)| k == "_include" && v == "MedicationRequest:medication");
    let included = if include && kind == clinical::Kind::MedicationRequest {
        clinical::included_medications(&entries)
    } else {
        Vec::new()
    };
    Ok(searchset(
        shared,
        kind.name(),
        user,
        pairs,
        total,
        links,
        entries,
        included,
    ))
}

/// The largest clinical page: HAPI caps `_count` rather than refusing it.
const MAX_CLINICAL_COUNT: usize = 100;

/// A UUID-shaped id, as the backend gives each search answer; derived from the search and
/// the time, so it is stable for a frozen clock.
fn bundle_id(shared: &Shared, resource: &str, user: &User, pairs: &Pairs, now: i64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(shared.config.seed.to_le_bytes());
    hasher.update(resource.as_bytes());
    hasher.update(user.patient_id.as_bytes());
    for (k, v) in pairs {
        hasher.update(k.as_bytes());
        hasher.update([0]);
        hasher.update(v.as_bytes());
        hasher.update([0]);
    }
    hasher.update(now.to_le_bytes());
    crate::state::uuid_from_digest(&hasher.finalize())
}

fn window<T>(all: &[T], start: usize, count: usize) -> &[T] {
    let start = start.min(all.len());
    let end = start.saturating_add(count).min(all.len());
    &all[start..end]
}

/// A search's `startIndex` and `_count`; a page size of 0 fails as in the backend, where
/// `lastIndex = (total - 1) / pageSize * pageSize` divides by zero.
fn page_window(search: &Search) -> Result<(usize, usize), Failure> {
    if search.count == 0 {
        return Err(SearchError::Backend("Invalid pageSize '0'".to_owned()).into());
    }
    Ok((search.start, search.count))
}

/// `first`, `next`, `previous`, `last` (the backend's `OffsetLinkBuilder`) and `self`
/// (HAPI's, its parameters sorted), carrying `startIndex`, `_count` and the search. They name
/// the backend's host (configurable), not the sandbox's.
fn links(
    shared: &Shared,
    resource: Resource,
    user: &User,
    search: &Search,
    total: usize,
) -> Result<Vec<Value>, Failure> {
    let (start, count) = page_window(search)?;
    let base = format!("{}/v2/fhir/{}", shared.config.link_origin, resource.name());
    let (patient_param, patient_value) = match resource {
        Resource::Patient => ("_id", user.patient_id.clone()),
        Resource::Coverage => ("beneficiary", format!("Patient/{}", user.patient_id)),
        Resource::ExplanationOfBenefit => ("patient", user.patient_id.clone()),
    };
    let url = |index: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("_format", "application/json+fhir");
        q.append_pair("startIndex", &index.to_string());
        q.append_pair("_count", &count.to_string());
        q.append_pair(patient_param, &patient_value);
        for (k, v) in &search.carried {
            q.append_pair(k, v);
        }
        format!("{base}?{}", q.finish())
    };
    let link = |relation: &str, url: String| json!({"relation": relation, "url": url});
    let mut out = vec![link("first", url(0))];
    if start + count < total {
        out.push(link("next", url(start + count)));
    }
    if start > 0 {
        out.push(link("previous", url(start.saturating_sub(count))));
    }
    out.push(link("last", url(total.saturating_sub(1) / count * count)));
    let mut params: Vec<(&str, String)> = vec![
        ("_count", count.to_string()),
        ("_format", "application/json+fhir".to_owned()),
        (patient_param, patient_value.clone()),
        ("startIndex", start.to_string()),
    ];
    params.extend(search.carried.iter().map(|(k, v)| (k.as_str(), v.clone())));
    params.sort_by(|a, b| a.0.cmp(b.0));
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        q.append_pair(k, v);
    }
    out.push(link("self", format!("{base}/?{}", q.finish())));
    Ok(out)
}

/// The SMART face's links, as HAPI FHIR writes them: `next` and `previous` as opaque links on
/// the server's base — `?_getpages=<search id>&_getpagesoffset=<n>&_count=<n>` — with the
/// search kept under that id (`Inner::pages`) for whoever presents it, and `self`: the search
/// as asked on its first page, the `_getpages` link on the pages after. `id` is the search's
/// when this is one of its later pages; a new search gets a new id. The store is capped (it
/// forgets every search past [`MAX_STORED_SEARCHES`], as HAPI expires them).
fn opaque_links(
    shared: &Shared,
    resource: &str,
    index: usize,
    (start, count): (usize, usize),
    carried: &[(String, String)],
    total: usize,
    id: Option<String>,
) -> Result<Vec<Value>, Failure> {
    let origin = shared.origin();
    let paged = id.is_some();
    let id = {
        let mut inner = shared.lock();
        let id = id.unwrap_or_else(|| inner.mint_uuid(shared.config.seed));
        if inner.pages.len() >= MAX_STORED_SEARCHES && !inner.pages.contains_key(&id) {
            inner.pages.clear();
        }
        inner.pages.insert(
            id.clone(),
            StoredSearch {
                resource: resource.to_owned(),
                user: index,
                pairs: carried.to_vec(),
            },
        );
        id
    };
    let page = |offset: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("_getpages", &id);
        q.append_pair("_getpagesoffset", &offset.to_string());
        q.append_pair("_count", &count.to_string());
        q.append_pair("_bundletype", "searchset");
        format!("{origin}/smart/fhir?{}", q.finish())
    };
    let link = |relation: &str, url: String| json!({"relation": relation, "url": url});
    let own = if paged {
        page(start)
    } else {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in carried {
            q.append_pair(k, v);
        }
        format!("{origin}/smart/fhir/{resource}?{}", q.finish())
    };
    let mut out = vec![link("self", own)];
    if start + count < total {
        out.push(link("next", page(start + count)));
    }
    if start > 0 {
        out.push(link("previous", page(start.saturating_sub(count))));
    }
    Ok(out)
}

/// The most searches the SMART face keeps for its `_getpages` links.
const MAX_STORED_SEARCHES: usize = 10_000;

fn read(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    id: &str,
    headers: &HeaderMap,
) -> Response {
    let mut limits = None;
    let response = read_inner(
        shared,
        profile,
        resource,
        id.trim_end_matches('/'),
        headers,
        &mut limits,
    )
    .unwrap_or_else(|failure| failure.into_response(profile));
    with_limits(response, limits)
}

fn read_inner(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    id: &str,
    headers: &HeaderMap,
    limits: &mut Option<RateHeaders>,
) -> Result<Response, Failure> {
    if profile == Profile::Smart && resource == "Medication" {
        let caller = caller(shared, profile, headers)?;
        if !allows(&caller.scopes, "Medication", false) {
            return Err(Failure::Forbidden);
        }
        return clinical::medication(id)
            .map(|m| fhir_json(&m))
            .ok_or(Failure::NotFound);
    }
    if let (Profile::Smart, Some(kind)) = (profile, clinical::Kind::parse(resource)) {
        let caller = caller(shared, profile, headers)?;
        if !allows(&caller.scopes, kind.name(), false) {
            return Err(Failure::Forbidden);
        }
        backend(shared)?;
        let owner = clinical::owner_of(kind, id)
            .filter(|owner| *owner == caller.index || shared.faults.leak_patients())
            .and_then(|owner| shared.data.users().get(owner))
            .ok_or(Failure::NotFound)?;
        return clinical::records(owner, kind)
            .into_iter()
            .find(|r| r.body["id"] == id)
            .map(|r| fhir_json(&r.body))
            .ok_or(Failure::NotFound);
    }
    let resource = Resource::parse(resource).ok_or(Failure::NotFound)?;
    let caller = caller(shared, profile, headers)?;
    if !allows(&caller.scopes, resource.name(), false) {
        return Err(Failure::Forbidden);
    }
    throttle(shared, profile, &caller, limits)?;
    backend(shared)?;
    let user = caller.user;
    let found = match resource {
        Resource::Patient => (id == user.patient_id).then(|| shared.data.patient(user)),
        Resource::Coverage => shared
            .data
            .coverages(user)
            .into_iter()
            .find(|c| c["id"] == id),
        Resource::ExplanationOfBenefit => user
            .claims()
            .iter()
            .find(|c| c.id(user) == id)
            .map(|c| shared.data.eob_at(user, c, shared.clock.now())),
    };
    // Another patient's id is simply not found.
    found.map(|r| fhir_json(&r)).ok_or(Failure::NotFound)
}

/// `GET /v2/fhir/metadata` (and `/smart/fhir/metadata`): the CapabilityStatement, with the
/// SMART `oauth-uris` extension pointing at this server. Public, like Blue Button's.
pub(crate) async fn bb2_metadata(State(shared): State<Arc<Shared>>) -> Response {
    metadata(&shared, Profile::BlueButton)
}

/// `GET /smart/fhir/metadata`.
pub(crate) async fn smart_metadata(State(shared): State<Arc<Shared>>) -> Response {
    metadata(&shared, Profile::Smart)
}

fn metadata(shared: &Shared, profile: Profile) -> Response {
    let mut capability = shared.data.capability().clone();
    let origin = shared.origin();
    let (authorize, token) = match profile {
        Profile::BlueButton => (
            format!("{origin}/v2/o/authorize"),
            format!("{origin}/v2/o/token"),
        ),
        Profile::Smart => (
            format!("{origin}/smart/auth/authorize"),
            format!("{origin}/smart/auth/token"),
        ),
    };
    if let Some(rest) = capability.get_mut("rest").and_then(Value::as_array_mut) {
        for entry in rest {
            entry["security"] = json!({
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": authorize},
                        {"url": "token", "valueUri": token},
                    ]
                }],
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"
                }]}]
            });
        }
    }
    let mut response = fhir_json(&capability);
    if profile == Profile::BlueButton {
        // Blue Button serves its CapabilityStatement as plain JSON.
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// Whether the request's `Accept` admits `application/json` (no `Accept` admits anything).
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .peekable();
    if ranges.peek().is_none() {
        return true;
    }
    ranges.any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        !refused && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
    })
}

/// `GET /v2/connect/userinfo`: not throttled; 403 without `profile`.
pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    // Blue Button's userinfo is a Django REST framework view rendering JSON only, and DRF
    // negotiates the content type before it authenticates: an Accept that JSON does not
    // satisfy (`application/fhir+json` alone, say) is a 406 whatever the token.
    if !accepts_json(&headers) {
        return errors::json(
            StatusCode::NOT_ACCEPTABLE,
            json!({"detail": "Could not satisfy the request Accept header."}),
        );
    }
    let caller = match caller(&shared, Profile::BlueButton, &headers) {
        Ok(caller) => caller,
        Err(failure) => return failure.into_response(Profile::BlueButton),
    };
    if !caller.scopes.iter().any(|s| s.as_str() == "profile") {
        return Failure::Forbidden.into_response(Profile::BlueButton);
    }
    let user = caller.user;
    errors::json(
        StatusCode::OK,
        json!({
            "sub": user.patient_id,
            "name": format!("{} {}", user.given, user.family),
            "given_name": user.given,
            "family_name": user.family,
            "email": format!("{}.{}@example.com", user.given.to_ascii_lowercase(), user.family.to_ascii_lowercase()),
            "iat": format_rfc3339(shared.clock.now(), 'T'),
            "patient": user.patient_id,
        }),
    )
}
