//! One source of truth for the contract: `protocol/src/contract.rs`. Its copies — the OpenAPI
//! document the broker serves (`broker/openapi.json`) and the npm package's types
//! (`npm/index.d.ts`) — must say what it says, so a code, a field or a value added on one side
//! only fails the test command:
//!
//! - the error codes, exactly and in order (the `error_codes!` table);
//! - every body's fields: each OpenAPI schema names exactly the fields of its Rust type, read
//!   from the type's own `Deserialize` (the field list serde derives, through `serde-aux`), and
//!   the TypeScript interfaces the SDK returns name the same fields in camelCase;
//! - every enumerated value (statuses, kinds, methods), in OpenAPI and TypeScript.
//!
//! The routes are held by `operations.rs::the_openapi_description_matches_the_routes` (every
//! contract route documented and served, nothing else documented), and the router builds its
//! `/v1` routes from the contract's `routes` constants.

use std::collections::BTreeSet;

use connect_medicare_protocol::{
    ProviderKind,
    contract::{
        AuthorizeMethod, CompleteFlowRequest, CompleteFlowResponse, ConfigResponse, Connection,
        ConnectionStatus, CreateFlowRequest, CreateFlowResponse, DisconnectRequest,
        DisconnectResponse, ErrorBody, ErrorCode, ProviderInfo, ProviderRevocation,
        RevocationStatus, SessionResponse,
    },
};
use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;
use serde_json::Value;

/// The codes the broker answers with (the SDK-only ones have no HTTP status).
fn broker_codes() -> Vec<&'static str> {
    ErrorCode::ALL
        .iter()
        .filter(|code| code.status() != 0)
        .map(|code| code.as_str())
        .collect()
}

#[test]
fn the_openapi_error_body_lists_exactly_the_brokers_codes() {
    let openapi: Value = serde_json::from_str(connect_medicare_broker::OPENAPI).unwrap();
    let listed: Vec<&str> =
        openapi["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
            .as_array()
            .expect("ErrorBody.code has an enum")
            .iter()
            .map(|code| code.as_str().unwrap())
            .collect();
    assert_eq!(
        listed,
        broker_codes(),
        "broker/openapi.json's ErrorBody.code"
    );
}

#[test]
fn the_typescript_error_code_lists_exactly_the_contracts_codes() {
    let types =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../npm/index.d.ts")).unwrap();
    let union = types
        .split_once("export type ErrorCode =")
        .and_then(|(_, rest)| rest.split_once(';'))
        .expect("npm/index.d.ts declares `export type ErrorCode = ...;`")
        .0;
    let listed: Vec<&str> = union
        .split('|')
        .map(|member| member.trim().trim_matches('\''))
        .filter(|member| !member.is_empty())
        .collect();
    let all: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(listed, all, "npm/index.d.ts's ErrorCode");
}

/// The wire names of `T`'s fields (a struct) or values (an enum), after `rename_all`: the list
/// serde's derive hands a deserializer (`serde_aux`'s `serde_introspect`).
fn names<'de, T: Deserialize<'de>>() -> BTreeSet<&'static str> {
    serde_introspect::<T>().iter().copied().collect()
}

fn openapi() -> Value {
    serde_json::from_str(connect_medicare_broker::OPENAPI).unwrap()
}

/// Every schema of the OpenAPI document, with the names of the Rust type it describes.
fn schema_fields() -> Vec<(&'static str, BTreeSet<&'static str>)> {
    vec![
        ("ConfigResponse", names::<ConfigResponse>()),
        ("ProviderInfo", names::<ProviderInfo>()),
        ("CreateFlowRequest", names::<CreateFlowRequest>()),
        ("CreateFlowResponse", names::<CreateFlowResponse>()),
        ("CompleteFlowRequest", names::<CompleteFlowRequest>()),
        ("CompleteFlowResponse", names::<CompleteFlowResponse>()),
        ("SessionResponse", names::<SessionResponse>()),
        ("Connection", names::<Connection>()),
        ("DisconnectRequest", names::<DisconnectRequest>()),
        ("DisconnectResponse", names::<DisconnectResponse>()),
        ("ProviderRevocation", names::<ProviderRevocation>()),
        ("ErrorBody", names::<ErrorBody>()),
    ]
}

/// Schemas that are not a struct's fields: the authorize redirect is one of two shapes (a URL,
/// or a form's action and fields), described by `oneOf`.
const NOT_STRUCTS: [&str; 1] = ["AuthorizeRedirect"];

#[test]
fn every_openapi_schema_names_exactly_its_rust_types_fields() {
    let openapi = openapi();
    let schemas = openapi["components"]["schemas"].as_object().unwrap();
    let expected = schema_fields();
    for (name, fields) in &expected {
        let documented: BTreeSet<&str> = schemas
            .get(*name)
            .unwrap_or_else(|| panic!("broker/openapi.json has no schema {name}"))["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no properties"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(&documented, fields, "broker/openapi.json's {name}");
        // What the type cannot go without, the schema requires (the rest may be absent).
        let required: BTreeSet<&str> = schemas[*name]["required"]
            .as_array()
            .map(|r| r.iter().map(|f| f.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert!(required.is_subset(fields), "{name}: required {required:?}");
    }
    for name in schemas.keys() {
        assert!(
            expected.iter().any(|(n, _)| n == name) || NOT_STRUCTS.contains(&name.as_str()),
            "broker/openapi.json's schema {name} has no Rust type in the contract"
        );
    }
}

/// The values of an enumerated property of a schema.
fn openapi_enum(openapi: &Value, schema: &str, property: &str) -> BTreeSet<String> {
    openapi["components"]["schemas"][schema]["properties"][property]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema}.{property} has an enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn owned(names: BTreeSet<&'static str>) -> BTreeSet<String> {
    names.into_iter().map(str::to_owned).collect()
}

#[test]
fn every_enumerated_value_is_the_contracts() {
    let openapi = openapi();
    for (schema, property, values) in [
        ("ProviderInfo", "kind", names::<ProviderKind>()),
        ("CreateFlowRequest", "method", names::<AuthorizeMethod>()),
        ("Connection", "status", names::<ConnectionStatus>()),
        ("ProviderRevocation", "status", names::<RevocationStatus>()),
    ] {
        assert_eq!(
            openapi_enum(&openapi, schema, property),
            owned(values),
            "broker/openapi.json's {schema}.{property}"
        );
    }
    let types = typescript();
    for (ts, values) in [
        (
            union_of(&member(&types, "ProviderSummary", "kind")),
            names::<ProviderKind>(),
        ),
        (
            union_of(&member(&types, "ConnectOptions", "method")),
            names::<AuthorizeMethod>(),
        ),
        (
            union_of(&member(&types, "Connection", "status")),
            names::<ConnectionStatus>(),
        ),
        (
            union_of(&alias(&types, "RevocationStatus")),
            names::<RevocationStatus>(),
        ),
    ] {
        assert_eq!(ts, owned(values), "npm/index.d.ts");
    }
}

fn typescript() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../npm/index.d.ts")).unwrap()
}

/// The body of `export interface {name} ... { ... }`.
fn interface<'a>(types: &'a str, name: &str) -> &'a str {
    let start = types
        .find(&format!("export interface {name} "))
        .unwrap_or_else(|| panic!("npm/index.d.ts declares interface {name}"));
    let body = &types[start..];
    let open = body.find('{').unwrap();
    let close = body.find("\n}").unwrap();
    &body[open + 1..close]
}

/// The members of an interface: `name` from each `name?: type;` line, comments skipped.
fn members(types: &str, name: &str) -> BTreeSet<String> {
    interface(types, name)
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("/") && !line.starts_with('*') && !line.is_empty())
        .filter_map(|line| {
            line.split_once(':')
                .map(|(member, _)| member.trim_end_matches('?'))
        })
        .map(str::to_owned)
        .collect()
}

/// The type of one member of an interface.
fn member(types: &str, name: &str, field: &str) -> String {
    interface(types, name)
        .lines()
        .map(str::trim)
        .find_map(|line| {
            let (member, ty) = line.split_once(':')?;
            (member.trim_end_matches('?') == field)
                .then(|| ty.trim().trim_end_matches(';').to_owned())
        })
        .unwrap_or_else(|| panic!("{name}.{field} in npm/index.d.ts"))
}

/// The right-hand side of `export type {name} = ...;`.
fn alias(types: &str, name: &str) -> String {
    types
        .split_once(&format!("export type {name} ="))
        .and_then(|(_, rest)| rest.split_once(';'))
        .unwrap_or_else(|| panic!("npm/index.d.ts declares type {name}"))
        .0
        .to_owned()
}

/// The string literals of a TypeScript union such as `'a' | 'b'`.
fn union_of(ty: &str) -> BTreeSet<String> {
    ty.split('|')
        .map(|member| member.trim().trim_matches('\'').to_owned())
        .filter(|member| !member.is_empty())
        .collect()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_sdks_result_types_name_the_wire_fields_in_camel_case() {
    let types = typescript();
    // The SDK maps each wire body to its result in one place (`npm/src/wire.js`): the same
    // fields, camelCase.
    for (interface, fields) in [
        ("Connection", names::<Connection>()),
        ("Session", names::<SessionResponse>()),
        ("DisconnectResult", names::<DisconnectResponse>()),
        ("ProviderRevocation", names::<ProviderRevocation>()),
    ] {
        let expected: BTreeSet<String> = fields.into_iter().map(camel).collect();
        assert_eq!(
            members(&types, interface),
            expected,
            "npm/index.d.ts's {interface}"
        );
    }
    // The providers the SDK shows are a summary of `/v1/config`'s: each field one of the wire's.
    let wire: BTreeSet<String> = names::<ProviderInfo>().into_iter().map(camel).collect();
    let summary = members(&types, "ProviderSummary");
    assert!(
        summary.is_subset(&wire),
        "npm/index.d.ts's ProviderSummary names {:?}, which /v1/config does not send",
        summary.difference(&wire).collect::<Vec<_>>()
    );
}
