//! Prometheus metrics, kept and written by `prometheus-client` (OpenMetrics text). Labels
//! never carry a token, a session, a patient or a query string: routes are the matched route
//! templates.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Histogram buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What kind of upstream call a latency belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UpstreamCall {
    Token,
    Revoke,
    Discovery,
    Fhir,
}

impl EncodeLabelValue for UpstreamCall {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let name = match self {
            Self::Token => "token",
            Self::Revoke => "revoke",
            Self::Discovery => "discovery",
            Self::Fhir => "fhir",
        };
        EncodeLabelValue::encode(&name, encoder)
    }
}

/// Whether a proxied read's lookup was answered from the connection cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CacheLookup {
    Hit,
    Miss,
}

impl EncodeLabelValue for CacheLookup {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let name = match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
        };
        EncodeLabelValue::encode(&name, encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    result: CacheLookup,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    call: UpstreamCall,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The broker's metrics, and the registry that writes them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream: Family<CallLabels, Histogram, fn() -> Histogram>,
    store: Histogram,
    connection_cache: Family<CacheLabels, Counter>,
    refreshes: Counter,
    refresh_failures: Counter,
    upstream_429: Counter,
    upstream_up: Family<ProviderLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Registry::default(),
            requests: Family::default(),
            upstream: Family::new_with_constructor(histogram as fn() -> Histogram),
            store: histogram(),
            connection_cache: Family::default(),
            refreshes: Counter::default(),
            refresh_failures: Counter::default(),
            upstream_429: Counter::default(),
            upstream_up: Family::default(),
        };
        let mut registry = Registry::default();
        registry.register(
            "cm_broker_requests",
            "Requests answered, by method, route and status",
            metrics.requests.clone(),
        );
        registry.register(
            "cm_broker_upstream_seconds",
            "Upstream call latency, by kind",
            metrics.upstream.clone(),
        );
        registry.register(
            "cm_broker_upstream_up",
            "Whether the provider's discovery document answered the last probe (1) or not (0)",
            metrics.upstream_up.clone(),
        );
        registry.register(
            "cm_broker_store_seconds",
            "Store call latency (session lookups; a connection-cache hit is not a store call)",
            metrics.store.clone(),
        );
        registry.register(
            "cm_broker_connection_cache",
            "Proxied reads' session lookups, by whether the connection cache answered them",
            metrics.connection_cache.clone(),
        );
        registry.register(
            "cm_broker_refreshes",
            "Token refreshes that succeeded",
            metrics.refreshes.clone(),
        );
        registry.register(
            "cm_broker_refresh_failures",
            "Token refreshes that failed",
            metrics.refresh_failures.clone(),
        );
        registry.register(
            "cm_broker_upstream_throttled",
            "Upstream 429 answers",
            metrics.upstream_429.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// One request answered: its method, matched route template and status.
    pub(crate) fn request(&self, method: String, route: String, status: u16) {
        let labels = RequestLabels {
            method,
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// One upstream call and how long it took.
    pub(crate) fn upstream(&self, call: UpstreamCall, took: Duration) {
        self.upstream
            .get_or_create(&CallLabels { call })
            .observe(took.as_secs_f64());
    }

    /// One store call and how long it took.
    pub(crate) fn store(&self, took: Duration) {
        self.store.observe(took.as_secs_f64());
    }

    /// A proxied read's lookup, answered by the connection cache or not.
    pub(crate) fn connection_cache(&self, result: CacheLookup) {
        self.connection_cache
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    /// A refresh finished, well or not.
    pub(crate) fn refresh(&self, ok: bool) {
        if ok {
            self.refreshes.inc();
        } else {
            self.refresh_failures.inc();
        }
    }

    /// Upstream answered 429.
    pub(crate) fn throttled(&self) {
        self.upstream_429.inc();
    }

    /// Whether a provider answered the last health probe; returns what the probe before it
    /// found (`None` for the first).
    pub(crate) fn upstream_up(&self, provider: &str, up: bool) -> Option<bool> {
        let labels = ProviderLabels {
            provider: provider.to_owned(),
        };
        let before = self.upstream_up.get(&labels).map(|gauge| gauge.get() == 1);
        self.upstream_up.get_or_create(&labels).set(i64::from(up));
        before
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exposition_format() {
        let metrics = Metrics::default();
        metrics.request("GET".into(), "/v1/fhir/{provider}/{resource}".into(), 200);
        metrics.request("GET".into(), "/v1/fhir/{provider}/{resource}".into(), 200);
        metrics.upstream(UpstreamCall::Fhir, Duration::from_millis(30));
        metrics.refresh(true);
        metrics.throttled();
        metrics.connection_cache(CacheLookup::Hit);
        metrics.connection_cache(CacheLookup::Hit);
        metrics.connection_cache(CacheLookup::Miss);
        let text = metrics.render();
        assert!(text.contains("cm_broker_connection_cache_total{result=\"hit\"} 2"));
        assert!(text.contains("cm_broker_connection_cache_total{result=\"miss\"} 1"));
        assert!(text.contains(
            "cm_broker_requests_total{method=\"GET\",route=\"/v1/fhir/{provider}/{resource}\",status=\"200\"} 2"
        ));
        assert!(text.contains("cm_broker_upstream_seconds_bucket{le=\"0.05\",call=\"fhir\"} 1"));
        assert!(text.contains("cm_broker_upstream_seconds_bucket{le=\"0.025\",call=\"fhir\"} 0"));
        assert!(text.contains("cm_broker_refreshes_total 1"));
        assert!(text.contains("cm_broker_upstream_throttled_total 1"));
    }
}
