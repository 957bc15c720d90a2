//! Searches, `GET {fhir}/{type}`, forced to the token's own patient: Blue Button's three
//! resources and the SMART face's clinical ones, and their paging links — Blue Button's offset
//! links on the backend's host, the SMART face's opaque `_getpages` ones and their store.

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery, State},
    http::HeaderMap,
    response::Response,
};
use serde_json::{Value, json};

use super::{
    access::{allows, backend, caller, throttle, with_limits},
    failure::Failure,
    render::searchset,
};
use crate::{
    clinical,
    form::{Pairs, pairs},
    search::{DEFAULT_COUNT, Search, SearchError},
    state::{Profile, Shared, StoredSearch},
    throttle::RateHeaders,
    users::User,
};

/// The three searchable resource types.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Resource {
    Patient,
    Coverage,
    ExplanationOfBenefit,
}

impl Resource {
    pub(super) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "Patient" => Some(Self::Patient),
            "Coverage" => Some(Self::Coverage),
            "ExplanationOfBenefit" => Some(Self::ExplanationOfBenefit),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Patient => "Patient",
            Self::Coverage => "Coverage",
            Self::ExplanationOfBenefit => "ExplanationOfBenefit",
        }
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
        &pairs(query.unwrap_or_default().as_bytes()),
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
    let pairs = pairs(query.unwrap_or_default().as_bytes());
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
