//! Discovery documents, shaped as Blue Button's (`apps/wellknown/views/openid.py`) and, for
//! the SMART face, as SMART App Launch 2.2 asks.

use std::sync::Arc;

use axum::{extract::State, http::StatusCode, response::Response};
use serde_json::json;

use crate::{
    errors,
    state::{Profile, Shared},
};

const BB2_CAPABILITIES: [&str; 8] = [
    "client-confidential-symmetric",
    "context-standalone-patient",
    "launch-standalone",
    "permission-offline",
    "permission-patient",
    "permission-v1",
    "permission-v2",
    "authorize-post",
];

/// `GET /v2/fhir/.well-known/smart-configuration`: no `issuer`, and authorize and revoke
/// advertised **without** their trailing slash (which the server answers with a 301).
pub(crate) async fn bb2_smart_configuration(State(shared): State<Arc<Shared>>) -> Response {
    let origin = shared.origin();
    errors::json(
        StatusCode::OK,
        json!({
            "authorization_endpoint": format!("{origin}/v2/o/authorize"),
            "revocation_endpoint": format!("{origin}/v2/o/revoke_token"),
            "token_endpoint": format!("{origin}/v2/o/token"),
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code", "token"],
            "scopes_supported": Profile::BlueButton.scopes_supported(),
            "code_challenge_methods_supported": ["S256"],
            "capabilities": BB2_CAPABILITIES,
        }),
    )
}

/// `GET /v2/connect/.well-known/openid-configuration` (and the legacy root path).
pub(crate) async fn bb2_openid_configuration(State(shared): State<Arc<Shared>>) -> Response {
    let origin = shared.origin();
    errors::json(
        StatusCode::OK,
        json!({
            "issuer": origin,
            "authorization_endpoint": format!("{origin}/v2/o/authorize"),
            "revocation_endpoint": format!("{origin}/v2/o/revoke_token"),
            "token_endpoint": format!("{origin}/v2/o/token"),
            "userinfo_endpoint": format!("{origin}/v2/connect/userinfo"),
            "ui_locales_supported": ["en-US"],
            "service_documentation": "https://bluebutton.cms.gov/developers",
            "op_tos_uri": "https://bluebutton.cms.gov/terms",
            "grant_types_supported": ["refresh_token", "authorization_code"],
            "response_types_supported": ["code", "token"],
            "fhir_metadata_uri": format!("{origin}/v2/fhir/metadata"),
        }),
    )
}

/// `GET /smart/fhir/.well-known/smart-configuration`: a plain SMART App Launch 2.2 server.
pub(crate) async fn smart_configuration(State(shared): State<Arc<Shared>>) -> Response {
    let origin = shared.origin();
    let mut document = json!({
            "issuer": format!("{origin}/smart"),
            "authorization_endpoint": format!("{origin}/smart/auth/authorize"),
            "token_endpoint": format!("{origin}/smart/auth/token"),
            "revocation_endpoint": format!("{origin}/smart/auth/revoke"),
            "introspection_endpoint": format!("{origin}/smart/auth/introspect"),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "scopes_supported": Profile::Smart.scopes_supported(),
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-standalone",
                "client-confidential-symmetric",
                "context-standalone-patient",
                "permission-offline",
                "permission-online",
                "permission-patient",
                "permission-v2",
                "authorize-post"
            ],
    });
    if shared.config.smart_callback_iss
        && let Some(fields) = document.as_object_mut()
    {
        fields.insert(
            "authorization_response_iss_parameter_supported".into(),
            serde_json::Value::Bool(true),
        );
    }
    if !shared.config.smart_revocation
        && let Some(fields) = document.as_object_mut()
    {
        fields.remove("revocation_endpoint");
    }
    errors::json(StatusCode::OK, document)
}
