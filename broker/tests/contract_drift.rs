//! One source of truth for the error codes: `protocol/src/contract.rs`'s `error_codes!` table.
//! Its copies — the OpenAPI document the broker serves (`broker/openapi.json`) and the npm
//! package's TypeScript union (`npm/index.d.ts`) — must list exactly its codes, in its order,
//! so a code added on one side only fails the test command.

use connect_medicare_protocol::contract::ErrorCode;
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
