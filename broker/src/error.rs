//! The broker's errors: [`Error`], the one error enum of the crate (configuration, key ring,
//! store), and [`ApiError`], what an HTTP handler answers with — one JSON shape
//! ([`ErrorBody`]) carrying a stable [`ErrorCode`].
//!
//! No message here ever carries a secret: configuration problems name the field, never its
//! value; key and token failures describe, never echo.

use std::{borrow::Cow, fmt, path::PathBuf, sync::Arc};

use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use connect_medicare_protocol::contract::{ErrorBody, ErrorCode};
use serde::{Serialize, de::DeserializeOwned};

/// `Result` with the broker's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail inside the broker outside an HTTP exchange.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A configuration file is not valid TOML, or has an unknown or mistyped field. Only the
    /// position and the parser's message are kept: the offending line may hold a secret.
    #[error("{}: {message}", location(path, *line, *column))]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column of the problem, when known.
        column: Option<usize>,
        /// The parser's message (it names fields, not secret values).
        message: String,
    },
    /// The configuration parsed but is unusable; every problem names its field.
    #[error("invalid configuration:{}", ProblemList(problems))]
    InvalidConfig {
        /// One line per problem, each starting with the field it is about.
        problems: Vec<String>,
    },
    /// A token-encryption key is malformed (never shows the key).
    #[error("invalid encryption key: {0}")]
    InvalidKey(&'static str),
    /// A ciphertext was sealed with a key the ring no longer holds.
    #[error(
        "ciphertext was sealed with key {key_id:?}, which is not in the key ring \
         (keep old keys listed until every token they sealed has been refreshed or expired)"
    )]
    UnknownKey {
        /// The key id written in the ciphertext.
        key_id: String,
    },
    /// A ciphertext does not authenticate: tampered, or opened for another session or field.
    #[error("ciphertext does not authenticate (tampered, or for another session or field)")]
    Decrypt,
    /// A ciphertext is not in the broker's format.
    #[error("malformed ciphertext: {0}")]
    MalformedCiphertext(&'static str),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    /// Too many unexpired flows are pending; `POST /v1/flows` is capped.
    #[error("too many pending flows")]
    TooManyFlows,
    /// A record with this key already exists (a flow for this `state`, or a session).
    #[error("a {0} with this key already exists")]
    AlreadyExists(Record),
    /// A connection was written for a session that does not exist (or was just deleted).
    #[error("no such session")]
    SessionNotFound,
    /// A stored value no longer parses (written by another version, or edited by hand).
    #[error("corrupt {what} in the store")]
    Corrupt {
        /// Which column or field.
        what: &'static str,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A schema migration failed.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

/// The kinds of record a store keeps by a key of its own ([`Error::AlreadyExists`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// A flow, keyed by its `state`.
    Flow,
    /// A session, keyed by its hash.
    Session,
    /// A session id (a cookie's hash) naming a session.
    SessionId,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flow => "flow",
            Self::Session => "session",
            Self::SessionId => "session id",
        })
    }
}

// Messages include their cause (they are logged with `%error`), so the causes are not also
// exposed as `source()`: a printed chain would repeat them.
impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}

fn location(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
        (Some(line), None) => format!("{}:{line}", path.display()),
        _ => path.display().to_string(),
    }
}

struct ProblemList<'a>(&'a [String]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// An HTTP failure: a stable [`ErrorCode`], a human message, and optionally `retry_after`.
///
/// Its response is an [`ErrorBody`] with the code's status and `Cache-Control: no-store`.
/// Internal errors ([`ApiError::internal`]) answer with a generic message; their cause rides
/// in the response's extensions ([`Failure`]) to the router's [`log_failures`] middleware,
/// which logs it once, inside the request's span. It never reaches the browser.
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
    set_cookie: Option<HeaderValue>,
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    /// An error with this code and message. The message goes to the browser: it must not
    /// contain a secret, a token or PHI.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            set_cookie: None,
            cause: None,
        }
    }

    /// The same error, answered with this `Set-Cookie` (the session's answers use it to expire
    /// a cookie known to be invalid).
    pub(crate) fn with_set_cookie(mut self, cookie: HeaderValue) -> Self {
        self.set_cookie = Some(cookie);
        self
    }

    /// An internal error: the browser sees `internal` and a generic message; `cause` is
    /// logged by [`log_failures`].
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: Cow::Borrowed("internal error; it was logged"),
            retry_after: None,
            set_cookie: None,
            cause: Some(Arc::from(cause.into())),
        }
    }

    /// Adds `retry_after` (seconds), as sent with `rate_limited`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The machine code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human message the browser sees.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Seconds to wait, if set.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The HTTP status: the code's, or 500 for a code the broker never answers with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status())
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone().into_owned(),
            retry_after: self.retry_after,
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("retry_after", &self.retry_after)
            .field("cause", &self.cause.as_ref().map(|c| c.to_string()))
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(cookie) = self.set_cookie {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(Failure {
                code: self.code,
                cause,
            });
        }
        response
    }
}

/// The cause of an internal error, carried in its response's extensions from
/// [`ApiError::into_response`] to [`log_failures`] (extensions never reach the wire).
#[derive(Clone)]
pub(crate) struct Failure {
    code: ErrorCode,
    cause: Arc<dyn std::error::Error + Send + Sync>,
}

/// Logs the cause of every internal error once, with `tracing::error!`, where the response
/// passes by: the router runs it inside each request's span, so the line carries the request
/// id. The message may name a store or key failure; it never holds a secret (see [`Error`]).
pub(crate) async fn log_failures(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(failure) = response.extensions_mut().remove::<Failure>() {
        tracing::error!(code = %failure.code, error = %failure.cause, "request failed");
    }
    response
}

impl From<Error> for ApiError {
    /// [`Error::TooManyFlows`] is `too_many_flows`, a duplicate flow is `state_used`;
    /// everything else is internal.
    fn from(error: Error) -> Self {
        match error {
            Error::TooManyFlows => Self::new(
                ErrorCode::TooManyFlows,
                "too many sign-ins are in progress; try again in a minute",
            ),
            Error::AlreadyExists(Record::Flow) => {
                Self::new(ErrorCode::StateUsed, "this state was already registered")
            }
            other => Self::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::new(ErrorCode::InvalidRequest, e.body_text()),
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(ErrorCode::InvalidRequest, e.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                ErrorCode::InvalidRequest,
                "expected a body with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(ErrorCode::PayloadTooLarge, "the request body is too large")
            }
            other => Self::new(ErrorCode::InvalidRequest, other.body_text()),
        }
    }
}

/// A JSON body extractor (and response) whose rejections are [`ApiError`]s: malformed JSON, a
/// wrong content type, an unknown field or an invalid value answer `invalid_request` in the
/// same [`ErrorBody`] shape as every other failure (an oversized body: `payload_too_large`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::post};
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;

    async fn body_of(response: Response) -> ErrorBody {
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn api_error_writes_the_one_shape() {
        let response =
            ApiError::new(ErrorCode::StateUsed, "this state was already used").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = body_of(response).await;
        assert_eq!(body.code, ErrorCode::StateUsed);
        assert_eq!(body.message, "this state was already used");
        assert_eq!(body.retry_after, None);
    }

    #[tokio::test]
    async fn rate_limited_carries_retry_after() {
        let response = ApiError::new(ErrorCode::RateLimited, "slow down")
            .with_retry_after(7)
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(body_of(response).await.retry_after, Some(7));
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let cause = Error::Corrupt {
            what: "canary-internal-detail",
        };
        let response = ApiError::from(cause).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        assert_eq!(body.code, ErrorCode::Internal);
        assert!(!body.message.contains("canary"), "{}", body.message);
    }

    /// Log lines, captured for the current thread.
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_internal_cause_is_logged_once_by_the_middleware() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let failing = || async { ApiError::internal("canary-store-failure") };
        // Made into a response alone, the error logs nothing: the middleware does.
        let response = failing().await.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(lines.0.lock().unwrap().is_empty());
        let app = Router::new()
            .route("/fail", axum::routing::get(failing))
            .layer(axum::middleware::from_fn(log_failures));
        let response = app
            .oneshot(Request::get("/fail").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<Failure>().is_none());
        assert!(!body_of(response).await.message.contains("canary"));
        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            logged.matches("canary-store-failure").count(),
            1,
            "{logged}"
        );
        assert!(
            logged.contains("ERROR") && logged.contains("code=internal"),
            "{logged}"
        );
    }

    #[test]
    fn store_errors_map_to_codes() {
        assert_eq!(
            ApiError::from(Error::TooManyFlows).code(),
            ErrorCode::TooManyFlows
        );
        assert_eq!(
            ApiError::from(Error::TooManyFlows).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ApiError::from(Error::AlreadyExists(Record::Flow)).code(),
            ErrorCode::StateUsed
        );
        assert_eq!(
            ApiError::from(Error::SessionNotFound).code(),
            ErrorCode::Internal
        );
    }

    #[test]
    fn sdk_only_codes_never_answer_status_zero() {
        let err = ApiError::new(ErrorCode::BrokerUnreachable, "x");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Echo {
        name: String,
    }

    fn echo_app() -> Router {
        Router::new()
            .route(
                "/echo",
                post(|ApiJson(echo): ApiJson<Echo>| async move { ApiJson(echo.name) }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(64))
    }

    async fn post_echo(content_type: Option<&str>, body: &str) -> Response {
        let mut request = Request::post("/echo");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        echo_app()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn api_json_accepts_good_bodies() {
        let response = post_echo(Some("application/json"), r#"{"name":"ada"}"#).await;
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&bytes[..], br#""ada""#);
    }

    #[tokio::test]
    async fn api_json_rejections_share_the_error_shape() {
        for (content_type, body) in [
            (Some("application/json"), "{not json"),
            (Some("application/json"), r#"{"name":"ada","extra":1}"#),
            (Some("application/json"), r#"{"name":5}"#),
            (Some("application/json"), r#"{}"#),
            (Some("text/plain"), r#"{"name":"ada"}"#),
            (None, r#"{"name":"ada"}"#),
        ] {
            let response = post_echo(content_type, body).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
            let error = body_of(response).await;
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{body}");
            assert!(!error.message.is_empty());
        }
    }

    #[tokio::test]
    async fn api_json_oversized_body_is_payload_too_large() {
        let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(200));
        let response = post_echo(Some("application/json"), &big).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body_of(response).await.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn config_problems_are_listed_one_per_line() {
        let err = Error::InvalidConfig {
            problems: vec!["listen: bad".into(), "keys: none".into()],
        };
        assert_eq!(
            err.to_string(),
            "invalid configuration:\n  - listen: bad\n  - keys: none"
        );
    }
}
