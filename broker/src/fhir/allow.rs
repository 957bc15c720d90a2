//! What the FHIR proxy lets through: the resource types each provider serves, the scopes a
//! grant must hold, a read's id, a search's query on the allow-list pinned to the patient —
//! and the upstream URL each becomes. No I/O here (the fuzz targets call it directly).

use connect_medicare_protocol::{
    Permissions, ProviderKind,
    contract::ErrorCode,
    resources::{ParamKind, ResourceType},
};

use crate::{config::Access, error::ApiError, pages, refresh::Live, state::ServedProvider};

/// Upper bound for `_count` when the provider names none.
const DEFAULT_MAX_COUNT: u32 = 100;

/// The resource type named in the path, if this provider serves it for `access` and the
/// connection's grant can allow it (see [`served`]).
pub(super) fn resource_type(raw: &str) -> Result<&'static ResourceType, ApiError> {
    ResourceType::get(raw).ok_or_else(|| not_allowed("this resource type is not served"))
}

/// Whether `provider` serves `resource` for `access`: Blue Button its three types; any other
/// provider the types on its configured `read` / `search` list, or, when it has none, every
/// type the broker can keep to the patient that the granted scopes allow.
pub(super) fn served(
    provider: &ServedProvider,
    resource: &'static ResourceType,
    access: Access,
) -> Result<(), ApiError> {
    let lists = provider.resolved.resources();
    let blue_button = provider.resolved.provider().kind() == ProviderKind::BlueButton;
    let listed = match lists.configured(access) {
        Some(list) => list.contains(&resource),
        None if blue_button => ResourceType::BLUE_BUTTON.contains(&resource.name()),
        None => true,
    };
    if !listed {
        return Err(not_allowed(match access {
            Access::Read => "this resource type is not on this provider's read allow-list",
            Access::Search => "this resource type is not on this provider's search allow-list",
        }));
    }
    if access == Access::Search && !resource.searchable() {
        return Err(not_allowed(
            "this resource type is read by id only: it is not in the patient's compartment",
        ));
    }
    Ok(())
}

/// Whether the connection's granted scopes can allow `access` to `resource` at all. Blue
/// Button's grant is its own (demographics are checked apart), and so is the Patient of
/// every provider; a restricted scope (`…?category=…`) counts, the server enforcing it.
pub(super) fn granted(
    provider: &ServedProvider,
    live: &Live,
    resource: &'static ResourceType,
    access: Access,
) -> Result<(), ApiError> {
    if provider.resolved.provider().kind() == ProviderKind::BlueButton || resource.is_patient() {
        return Ok(());
    }
    let permissions = match access {
        Access::Read => Permissions::READ,
        Access::Search => Permissions::SEARCH,
    };
    if live.connection.scopes.grants(resource.name(), permissions) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InsufficientScope,
            format!(
                "the granted scopes do not allow {} {}: connect again asking for patient/{}.{}",
                match access {
                    Access::Read => "reading",
                    Access::Search => "searching",
                },
                resource.name(),
                resource.name(),
                match access {
                    Access::Read => "r",
                    Access::Search => "s",
                }
            ),
        ))
    }
}

pub(super) fn not_allowed(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::NotAllowed, message)
}

/// A read's resource type and upstream URL, from the path segments and query the browser sent
/// (`id` percent-decoded): the type served for reads, no query, and an id that is a FHIR id —
/// never a dot segment — sent percent-encoded.
pub(crate) fn read_url(
    provider: &ServedProvider,
    resource: &str,
    id: &str,
    query: Option<&str>,
) -> Result<(&'static ResourceType, String), ApiError> {
    let resource = resource_type(resource)?;
    served(provider, resource, Access::Read)?;
    if query.is_some() {
        return Err(not_allowed("a read takes no parameters"));
    }
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && id != "."
        && id != "..";
    if !valid {
        return Err(not_allowed("not a FHIR resource id"));
    }
    let encoded: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let url = provider
        .resolved
        .provider()
        .fhir_base()
        .join(&format!("{}/{encoded}", resource.name()));
    Ok((resource, url))
}

/// The sealed link of a query that is exactly `_page=<sealed>`.
pub(super) fn sealed_page(query: Option<&str>) -> Option<String> {
    let mut pairs = form_urlencoded::parse(query?.as_bytes());
    match (pairs.next(), pairs.next()) {
        (Some((name, value)), None) if name == pages::PAGE_PARAM => Some(value.into_owned()),
        _ => None,
    }
}

/// What the search handler checks before it looks at the session, then [`search_url`]: for
/// the fuzz targets (`fuzzing.rs`).
#[cfg(feature = "fuzzing")]
pub(crate) fn search_target(
    provider: &ServedProvider,
    resource: &str,
    query: Option<&str>,
    patient: &str,
) -> Result<String, ApiError> {
    let resource = resource_type(resource)?;
    served(provider, resource, Access::Search)?;
    search_url(provider, resource, query, patient)
}

/// A search's upstream URL: the browser's query on the allow-list ([`allowed_query`]), pinned
/// to the connection's `patient`.
pub(crate) fn search_url(
    provider: &ServedProvider,
    resource: &'static ResourceType,
    query: Option<&str>,
    patient: &str,
) -> Result<String, ApiError> {
    let profile = provider.resolved.provider();
    let mut pairs = allowed_query(provider, resource, query)?;
    // The search is always the connection's own patient's.
    let (name, value) = resource
        .pin_on(profile.kind(), patient)
        .ok_or_else(|| not_allowed("this resource type is read by id only"))?;
    pairs.push((name.to_owned(), value));
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        query.append_pair(k, v);
    }
    Ok(format!(
        "{}?{}",
        profile.fhir_base().join(resource.name()),
        query.finish()
    ))
}

/// The request's query, checked against the allow-list of `resource` on `provider`: paging
/// (`_count`, `startIndex`), the type's own parameters ([`ResourceType::param`]), `_sort` on
/// the type's dates and `_include` of what the type allows; each at most once, dates twice.
fn allowed_query(
    provider: &ServedProvider,
    resource: &'static ResourceType,
    query: Option<&str>,
) -> Result<Vec<(String, String)>, ApiError> {
    let profile = provider.resolved.provider();
    let blue_button = profile.kind() == ProviderKind::BlueButton;
    let max_count = profile.max_page_size().unwrap_or(DEFAULT_MAX_COUNT);
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let kind = resource.param(&name);
        let repeatable = kind.is_some_and(ParamKind::repeatable);
        let seen = out.iter().filter(|(k, _)| *k == name).count();
        if seen > usize::from(repeatable) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a query parameter appears too many times",
            ));
        }
        let invalid = |why: &str| ApiError::new(ErrorCode::InvalidRequest, format!("{name} {why}"));
        match (name.as_ref(), kind) {
            ("_count", _) => {
                if !value.parse::<u32>().is_ok_and(|n| n <= max_count) {
                    return Err(invalid(&format!(
                        "must be an integer from 0 to {max_count}"
                    )));
                }
            }
            ("startIndex", _) => {
                if value.parse::<u32>().is_err() {
                    return Err(invalid("must be a non-negative integer"));
                }
            }
            ("_sort", _) if resource.sortable() => {
                resource.check_sort(&value).map_err(invalid)?;
            }
            ("_include", _) if !resource.includes().is_empty() => {
                if !resource.includes().contains(&value.as_ref()) {
                    return Err(invalid(&format!(
                        "may only be {}",
                        resource.includes().join(" or ")
                    )));
                }
            }
            (_, Some(kind)) => kind.check(&value, blue_button).map_err(invalid)?,
            (_, None) => {
                let mut allowed: Vec<&str> = resource.param_names().collect();
                if resource.sortable() {
                    allowed.push("_sort");
                }
                if !resource.includes().is_empty() {
                    allowed.push("_include");
                }
                allowed.push("_count");
                return Err(ApiError::new(
                    ErrorCode::NotAllowed,
                    format!(
                        "a query parameter is not on the allow-list: {} searches take {}",
                        resource.name(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}
