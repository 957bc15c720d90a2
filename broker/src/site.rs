//! The optional static site (an example app, the demo) the broker serves beside its API, and
//! the Content-Security-Policy its pages get.

use axum::{
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

use crate::state::AppState;

/// The static site (an example app, the demo): files from `dir`, unknown paths answered
/// with `index.html` (a single-page app's routes, its callback route among them), and every
/// page under a strict Content-Security-Policy — scripts from the site only, WebAssembly
/// allowed (`'wasm-unsafe-eval'`), nothing else unsafe; forms may post only to the site and
/// to the providers' authorization endpoints — with `Referrer-Policy: no-referrer`, so the
/// callback URL's code never leaks in a `Referer`.
pub(crate) fn static_site(
    state: &AppState,
    dir: &std::path::Path,
) -> axum::routing::MethodRouter<AppState> {
    use tower_http::services::ServeFile;
    let csp = HeaderValue::from_str(&content_security_policy(state))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let index = ServeFile::new(dir.join("index.html"));
    let service = tower::ServiceBuilder::new()
        .map_response(same_origin_redirects_only)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .service(
            ServeDir::new(dir).fallback(tower::service_fn(move |request: Request| {
                let index = index.clone();
                async move {
                    // A path naming a file that is not there is a 404; any other path is one of
                    // the app's routes (its callback among them): the app's index.html.
                    let last = request.uri().path().rsplit('/').next().unwrap_or_default();
                    if last.contains('.') {
                        return Ok::<_, std::convert::Infallible>(
                            StatusCode::NOT_FOUND.into_response(),
                        );
                    }
                    Ok(tower::ServiceExt::oneshot(index, request)
                        .await?
                        .into_response())
                }
            })),
        );
    axum::routing::get_service(service)
}

/// The static site's redirects (a directory without its trailing slash) must stay on this
/// origin: a `Location` that a browser could read as another host — `//host/`, `/\\host/`
/// (browsers read a backslash as a slash), or anything not a plain absolute path — is answered
/// 404 instead. `GET //host` would otherwise redirect to `//host/`, a protocol-relative URL.
fn same_origin_redirects_only<B>(response: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let Some(location) = response.headers().get(header::LOCATION) else {
        return response.map(axum::body::Body::new);
    };
    let same_origin = location.to_str().is_ok_and(|l| {
        let mut chars = l.chars();
        chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\'))
    });
    if same_origin {
        response.map(axum::body::Body::new)
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The sources a page that starts a sign-in must allow in its CSP `form-action`: `'self'`,
/// each provider's authorization endpoint, and the origins its sign-in redirects a form POST
/// through (`sign_in_origins`) — browsers apply `form-action` to every hop of the redirects.
pub fn form_action_sources(state: &AppState) -> Vec<String> {
    let mut sources = vec!["'self'".to_owned()];
    for provider in state.providers() {
        let resolved = &provider.resolved;
        let endpoint = url::Url::parse(resolved.provider().authorization_endpoint())
            .ok()
            .map(|url| url.origin().ascii_serialization());
        let sign_in = resolved
            .sign_in_origins()
            .iter()
            .map(|o| o.as_str().to_owned());
        for origin in endpoint.into_iter().chain(sign_in) {
            if !sources.contains(&origin) {
                sources.push(origin);
            }
        }
    }
    sources
}

/// The static site's Content-Security-Policy, `form-action` from [`form_action_sources`].
pub fn content_security_policy(state: &AppState) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; form-action {}; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'",
        form_action_sources(state).join(" ")
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;
    use crate::{
        app::app,
        state::testing::{get, state, text},
    };

    #[tokio::test]
    async fn serves_the_static_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>demo</h1>").unwrap();
        std::fs::create_dir(dir.path().join("callback")).unwrap();
        std::fs::write(dir.path().join("callback/index.html"), "callback page").unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "secret outside").unwrap();

        let app = app(state(Some(dir.path())).await);
        let response = get(app.clone(), "/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "<h1>demo</h1>");
        let response = get(app.clone(), "/callback/?code=abc&state=xyz").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "callback page");
        assert_eq!(get(app.clone(), "/healthz").await.status(), StatusCode::OK);
        assert_eq!(
            get(app.clone(), "/missing.js").await.status(),
            StatusCode::NOT_FOUND
        );
        // An app route (no file extension) is the app's index.html.
        let response = get(app.clone(), "/claims/2024?tab=pde").await;
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(text(response).await, "<h1>demo</h1>");
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
            "{csp}"
        );
        assert!(
            csp.contains("form-action 'self' http://127.0.0.1:8123 http://127.0.0.1:8124;"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"),
            "{csp}"
        );
        let name = outside.path().file_name().unwrap().to_str().unwrap();
        for traversal in [format!("/../{name}"), format!("/%2e%2e/{name}")] {
            let response = get(app.clone(), &traversal).await;
            assert_ne!(response.status(), StatusCode::OK, "{traversal}");
        }
    }

    #[tokio::test]
    async fn the_static_site_never_redirects_off_site() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>demo</h1>").unwrap();
        std::fs::create_dir(dir.path().join("connect-medicare")).unwrap();
        std::fs::write(dir.path().join("connect-medicare/index.html"), "pkg").unwrap();
        let app = app(state(Some(dir.path())).await);
        // A directory without its slash is still redirected, on this origin.
        let response = get(app.clone(), "/connect-medicare").await;
        assert!(response.status().is_redirection(), "{}", response.status());
        assert_eq!(response.headers()[header::LOCATION], "/connect-medicare/");
        // The same directory named so that the redirect would leave the site is not.
        for uri in [
            "//connect-medicare",
            "//connect-medicare?x=1",
            "///connect-medicare",
        ] {
            let response = get(app.clone(), uri).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
            assert!(response.headers().get(header::LOCATION).is_none(), "{uri}");
        }
        for location in [
            "//evil.example/",
            "/\\evil.example/",
            "https://evil.example/",
            "",
        ] {
            let response = axum::http::Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, location)
                .body(Body::empty())
                .unwrap();
            assert_eq!(
                same_origin_redirects_only(response).status(),
                StatusCode::NOT_FOUND,
                "{location:?}"
            );
        }
    }
}
