//! The FHIR surface: `metadata`, `Patient`, `Coverage`, `ExplanationOfBenefit` (read and
//! search), and `userinfo`. Every search is forced to the token's own patient; Bundle links
//! are written on a foreign host, as Blue Button passes its backend's links through.

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use connect_medicare_protocol::{EobType, Scopes};
use serde_json::{Value, json};

use crate::{
    clock::format_rfc3339,
    data::User,
    errors::{self, ACCESS_TIMED_OUT, NO_PERMISSION},
    state::{Profile, Shared},
    token::allows,
};

/// Blue Button's default and largest page sizes.
const DEFAULT_COUNT: usize = 10;
const MAX_COUNT: usize = 50;

/// Who is calling, once the bearer token checked out.
struct Caller<'a> {
    user: &'a User,
    scopes: Scopes,
}

/// A failed FHIR request, written in the profile's error shape.
enum Failure {
    InvalidToken,
    TimedOut,
    Forbidden,
    NotFound,
    BadRequest(String),
}

impl Failure {
    fn into_response(self, profile: Profile) -> Response {
        match profile {
            Profile::BlueButton => match self {
                Failure::InvalidToken => errors::invalid_token(),
                Failure::TimedOut => errors::detail(StatusCode::UNAUTHORIZED, ACCESS_TIMED_OUT),
                Failure::Forbidden => errors::detail(StatusCode::FORBIDDEN, NO_PERMISSION),
                Failure::NotFound => errors::detail(StatusCode::NOT_FOUND, "Not found."),
                Failure::BadRequest(detail) => errors::detail(StatusCode::BAD_REQUEST, &detail),
            },
            Profile::Smart => {
                let (status, code, text) = match self {
                    Failure::InvalidToken => (
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
        .ok_or(Failure::InvalidToken)?;
    let now = shared.clock.now();
    let inner = shared.lock();
    let record = inner
        .access
        .get(token)
        .filter(|a| a.profile == profile && a.expires_at > now)
        .ok_or(Failure::InvalidToken)?;
    let grant = inner
        .grants
        .get(&(record.client_id.clone(), record.user, profile))
        .ok_or(Failure::InvalidToken)?;
    if grant.expires_at.is_some_and(|at| at <= now) {
        return Err(Failure::TimedOut);
    }
    Ok(Caller {
        user: &shared.data.users()[record.user],
        scopes: record.scopes.clone(),
    })
}

type Pairs = Vec<(String, String)>;

fn query_pairs(query: Option<String>) -> Pairs {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn last_value<'a>(pairs: &'a Pairs, names: &[&str]) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| names.contains(&k.as_str()))
        .map(|(_, v)| v.as_str())
}

/// `startIndex` and `_count` (or `count`), validated as Blue Button does.
fn paging(pairs: &Pairs) -> Result<(usize, usize), Failure> {
    let integer = |raw: &str| {
        raw.parse::<i64>()
            .map_err(|_| Failure::BadRequest("A valid integer is required.".to_owned()))
    };
    let count = match last_value(pairs, &["_count", "count"]) {
        None => DEFAULT_COUNT,
        Some(raw) => match integer(raw)? {
            n if n > MAX_COUNT as i64 => {
                return Err(Failure::BadRequest("value must be at most 50".to_owned()));
            }
            n if n < 0 => {
                return Err(Failure::BadRequest("value must be at least 0".to_owned()));
            }
            n => n as usize,
        },
    };
    let start = match last_value(pairs, &["startIndex"]) {
        None => 0,
        Some(raw) => usize::try_from(integer(raw)?)
            .map_err(|_| Failure::BadRequest("value must be at least 0".to_owned()))?,
    };
    Ok((start, count))
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

fn fhir_json(body: &Value) -> Response {
    let mut response = errors::json(StatusCode::OK, body.clone());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/fhir+json"),
    );
    response
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

fn search(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    headers: &HeaderMap,
    query: Option<String>,
) -> Response {
    let resource = resource.trim_end_matches('/');
    search_inner(shared, profile, resource, headers, query)
        .unwrap_or_else(|failure| failure.into_response(profile))
}

fn search_inner(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Response, Failure> {
    let resource = Resource::parse(resource).ok_or(Failure::NotFound)?;
    let caller = caller(shared, profile, headers)?;
    if !allows(&caller.scopes, resource.name(), true) {
        return Err(Failure::Forbidden);
    }
    let pairs = query_pairs(query);
    let (start, count) = paging(&pairs)?;
    let user = caller.user;
    // Every search is forced to the caller's own patient; `_id`, `patient`, `beneficiary`
    // and unknown parameters are ignored.
    let mut extra: Vec<(String, String)> = Vec::new();
    let (total, entries) = match resource {
        Resource::Patient => {
            let all = [shared.data.patient(user)];
            (1, window(&all, start, count).to_vec())
        }
        Resource::Coverage => {
            let all = shared.data.coverages(user);
            (all.len(), window(&all, start, count).to_vec())
        }
        Resource::ExplanationOfBenefit => {
            let types = match last_value(&pairs, &["type"]) {
                None => None,
                Some(raw) => {
                    let parsed = EobType::parse_list(raw).ok_or_else(|| {
                        Failure::BadRequest("the type parameter value is not valid".to_owned())
                    })?;
                    extra.push(("type".to_owned(), raw.to_owned()));
                    Some(parsed)
                }
            };
            let claims: Vec<_> = user
                .claims()
                .iter()
                .filter(|c| types.as_ref().is_none_or(|t| t.contains(&c.kind)))
                .collect();
            let page = window(&claims, start, count)
                .iter()
                .map(|c| shared.data.eob(user, c))
                .collect();
            (claims.len(), page)
        }
    };
    let links = links(shared, profile, resource, user, start, count, total, &extra);
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": format!("{}-{}-{start}-{count}", resource.name().to_ascii_lowercase(), user.index),
        "meta": {"lastUpdated": format_rfc3339(shared.clock.now(), 'T')},
        "type": "searchset",
        "total": total,
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = entries
            .into_iter()
            .map(|resource| json!({"resource": resource}))
            .collect();
    }
    Ok(fhir_json(&bundle))
}

fn window<T>(all: &[T], start: usize, count: usize) -> &[T] {
    let start = start.min(all.len());
    let end = start.saturating_add(count).min(all.len());
    &all[start..end]
}

/// `first`, `previous`, `next`, `last` and `self`, carrying `startIndex` and `_count`. On
/// Blue Button they name the backend's host (configurable), not the sandbox's.
#[allow(clippy::too_many_arguments)]
fn links(
    shared: &Shared,
    profile: Profile,
    resource: Resource,
    user: &User,
    start: usize,
    count: usize,
    total: usize,
    extra: &[(String, String)],
) -> Vec<Value> {
    let base = match profile {
        Profile::BlueButton => format!("{}/v2/fhir/{}", shared.config.link_origin, resource.name()),
        Profile::Smart => format!("{}/smart/fhir/{}", shared.origin(), resource.name()),
    };
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
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        format!("{base}?{}", q.finish())
    };
    let link = |relation: &str, url: String| json!({"relation": relation, "url": url});
    let mut out = vec![link("first", url(0))];
    if count > 0 {
        if start > 0 {
            out.push(link("previous", url(start.saturating_sub(count))));
        }
        if start + count < total {
            out.push(link("next", url(start + count)));
        }
        let last = if total == 0 {
            0
        } else {
            (total - 1) / count * count
        };
        out.push(link("last", url(last)));
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("_count", &count.to_string());
    q.append_pair("_format", "application/json+fhir");
    q.append_pair(patient_param, &patient_value);
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    q.append_pair("startIndex", &start.to_string());
    out.push(link("self", format!("{base}/?{}", q.finish())));
    out
}

fn read(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    id: &str,
    headers: &HeaderMap,
) -> Response {
    read_inner(shared, profile, resource, id.trim_end_matches('/'), headers)
        .unwrap_or_else(|failure| failure.into_response(profile))
}

fn read_inner(
    shared: &Shared,
    profile: Profile,
    resource: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let resource = Resource::parse(resource).ok_or(Failure::NotFound)?;
    let caller = caller(shared, profile, headers)?;
    if !allows(&caller.scopes, resource.name(), false) {
        return Err(Failure::Forbidden);
    }
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
            .map(|c| shared.data.eob(user, c)),
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
    fhir_json(&capability)
}

/// `GET /v2/connect/userinfo`: not throttled; 403 without `profile`.
pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
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
