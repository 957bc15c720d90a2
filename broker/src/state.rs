//! The state every handler shares ([`AppState`]): the configuration, the store, the clock,
//! the one upstream HTTP client, the providers being served, the metrics, and each feature's
//! in-process state (the FHIR proxy's pacing, the refresh locks, the completions in flight).
//! Those are defined by their features, in files that do not import this one; handlers that
//! need only a part take it by [`FromRef`] (`State<Arc<Metrics>>`, `State<Arc<Config>>`).

use std::sync::Arc;

use axum::extract::FromRef;
use connect_medicare_protocol::{
    Timestamp,
    contract::{ErrorCode, ProviderId},
};

use crate::{
    clock::Clock,
    config::{Config, ProviderConfig, ResolvedProvider},
    crypto::KeyRing,
    error::{ApiError, Error, Result},
    fhir::pacing::Budget,
    flows::replays::Completions,
    metrics::Metrics,
    refresh::locks::Locks,
    store::{CachedStore, Store},
    upstream::{Credentials, Upstream},
};

/// One provider ready to serve: its configuration (which holds the client secret) and its
/// resolved profile.
#[derive(Debug)]
pub(crate) struct ServedProvider {
    config: Arc<Config>,
    index: usize,
    pub(crate) resolved: ResolvedProvider,
}

impl ServedProvider {
    /// `config`'s provider at `index`, resolved.
    pub(crate) fn new(config: Arc<Config>, index: usize, resolved: ResolvedProvider) -> Self {
        Self {
            config,
            index,
            resolved,
        }
    }

    /// The provider's configuration (which holds its client secret).
    pub(crate) fn config(&self) -> &ProviderConfig {
        &self.config.providers()[self.index]
    }

    /// The client credentials for its token and revocation endpoints.
    pub(crate) fn credentials(&self) -> Credentials<'_> {
        Credentials {
            id: self.resolved.client_id(),
            secret: self.config().client_secret(),
            auth: self.config().client_auth(),
        }
    }
}

struct Inner {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    upstream: Upstream,
    providers: Vec<ServedProvider>,
    locks: Locks,
    budget: Budget,
    completions: Completions,
    metrics: Arc<Metrics>,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl AppState {
    /// State from a validated configuration, an opened store and a clock. Builds the one
    /// upstream HTTP client and resolves every provider — fetching the discovery document of
    /// each SMART provider — so a broker that cannot reach a SMART server does not start.
    pub async fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let store: Arc<dyn Store> = Arc::new(CachedStore::new(
            store,
            config.connection_cache(),
            metrics.clone(),
        ));
        let upstream = Upstream::new(config.upstream_timeouts(), metrics.clone()).map_err(|e| {
            Error::InvalidConfig {
                problems: vec![format!("cannot build the HTTP client: {e}")],
            }
        })?;
        let mut providers = Vec::new();
        for (index, provider) in config.providers().iter().enumerate() {
            let discovered = match provider.discovery_url() {
                Some(url) => {
                    Some(
                        upstream
                            .discover(&url)
                            .await
                            .map_err(|e| Error::InvalidConfig {
                                problems: vec![format!(
                                    "providers.{}: cannot use {url}: {e}",
                                    provider.id().as_str()
                                )],
                            })?,
                    )
                }
                None => None,
            };
            let resolved = provider.resolve(discovered.as_ref())?;
            // RFC 9207 §2.4: the `iss` check tells servers apart only if no two share an issuer.
            let issuer = resolved.provider().issuer();
            if let Some(other) = providers.iter().find(|p: &&ServedProvider| {
                issuer.is_some() && p.resolved.provider().issuer() == issuer
            }) {
                return Err(Error::InvalidConfig {
                    problems: vec![format!(
                        "providers.{} and providers.{} name the same issuer ({}): their \
                         sign-ins could not be told apart (RFC 9207)",
                        other.resolved.id().as_str(),
                        provider.id().as_str(),
                        issuer.unwrap_or_default()
                    )],
                });
            }
            providers.push(ServedProvider::new(config.clone(), index, resolved));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                clock,
                upstream,
                providers,
                locks: Locks::default(),
                budget: Budget::default(),
                completions: Completions::default(),
                metrics,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The token-encryption key ring.
    pub fn keys(&self) -> &KeyRing {
        self.inner.config.key_ring()
    }

    /// The current time, by the injected clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    pub(crate) fn providers(&self) -> &[ServedProvider] {
        &self.inner.providers
    }

    /// The served provider with this id, or `unknown_provider`.
    pub(crate) fn provider(
        &self,
        id: &ProviderId,
    ) -> std::result::Result<&ServedProvider, ApiError> {
        self.inner
            .providers
            .iter()
            .find(|p| p.resolved.id() == id)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownProvider, "no such provider"))
    }

    /// The served provider named by a raw path segment, or `unknown_provider`.
    pub(crate) fn provider_by_name(
        &self,
        raw: &str,
    ) -> std::result::Result<&ServedProvider, ApiError> {
        let id = ProviderId::new(raw)
            .map_err(|_| ApiError::new(ErrorCode::UnknownProvider, "no such provider"))?;
        self.provider(&id)
    }

    pub(crate) fn locks(&self) -> &Locks {
        &self.inner.locks
    }

    pub(crate) fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    pub(crate) fn completions(&self) -> &Completions {
        &self.inner.completions
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.inner.metrics.clone()
    }
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(state: &AppState) -> Self {
        state.inner.config.clone()
    }
}

/// What the router's unit tests share: a state, a request, a body.
#[cfg(test)]
pub(crate) mod testing {
    use std::{path::Path, sync::Arc};

    use axum::{Router, body::Body, extract::Request, response::Response};
    use connect_medicare_protocol::Timestamp;
    use tower::ServiceExt;

    use super::AppState;
    use crate::{
        clock::ManualClock,
        config::{Config, Env},
        store::MemoryStore,
    };

    /// A broker with one Blue Button provider, a memory store, the clock at 1,000 s, and
    /// `static_dir` as its static site if given.
    pub(crate) async fn state(static_dir: Option<&Path>) -> AppState {
        let static_line = static_dir
            .map(|d| format!("static_dir = {:?}\n", d.display().to_string()))
            .unwrap_or_default();
        let text = format!(
            r#"{static_line}
public_base_url = "http://localhost:8080"
database = "sqlite::memory:"
[[keys]]
id = "k1"
key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "http://127.0.0.1:8123"
client_id = "client"
redirect_uri = "http://localhost:8080/callback"
sign_in_origins = ["http://127.0.0.1:8124"]
"#
        );
        let env = Env::from_pairs([("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET", "s")]);
        let config = Config::parse(&text, Path::new("broker.toml"), env).unwrap();
        AppState::new(
            Arc::new(config),
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::new(Timestamp::from_unix_seconds(1_000))),
        )
        .await
        .unwrap()
    }

    pub(crate) async fn get(app: Router, uri: &str) -> Response {
        app.oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    pub(crate) async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use connect_medicare_protocol::Timestamp;

    use super::testing::state;

    #[tokio::test]
    async fn state_exposes_the_key_ring_and_clock() {
        let state = state(None).await;
        assert_eq!(state.keys().current_key_id().as_str(), "k1");
        assert_eq!(state.now(), Timestamp::from_unix_seconds(1_000));
        assert!(!format!("{state:?}").contains("AAAAAAAA"));
    }
}
