//! The design's floor: the least a token-attaching proxy on the broker's own stack can be — an
//! axum server and a reqwest client, built as the broker builds its upstream client, passing
//! `GET /v1/fhir/medicare/<path>` to the static upstream with a fixed bearer token and streaming
//! the answer back. No session, store, allow-list, pacing or checks.
//!
//! The proxy part measures it beside nginx and the broker: nginx / this is what the framework
//! costs, this / broker what the broker's own work costs. `cm-bench bare-proxy <port>
//! <upstream origin>` runs it (the stack starts it pinned beside the broker).

use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse as _, Response},
};

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    base: String,
}

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let Some(rest) = request.uri().path().strip_prefix("/v1/fhir/medicare/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The static upstream's paths, as `Stack::urls` gives them.
    let url = match request.uri().query() {
        Some(query) => format!("{}/v2/fhir/{rest}/?{query}", upstream.base),
        None => format!("{}/v2/fhir/{rest}", upstream.base),
    };
    let mut outgoing = upstream
        .client
        .get(url)
        .bearer_auth("a-fixed-token-for-the-reference")
        .header(header::ACCEPT, "application/fhir+json");
    if let Some(encoding) = request.headers().get(header::ACCEPT_ENCODING) {
        outgoing = outgoing.header(header::ACCEPT_ENCODING, encoding);
    }
    let Ok(answer) = outgoing.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
        if let Some(value) = answer.headers().get(&name) {
            response = response.header(name, value.clone());
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

pub async fn serve(port: u16, base: String) -> Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .no_gzip()
        .build()?;
    let app = Router::new()
        .fallback(forward)
        .with_state(Upstream { client, base });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .context("binding the bare proxy")?;
    axum::serve(listener, app).await?;
    Ok(())
}
