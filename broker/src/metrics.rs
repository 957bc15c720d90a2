//! Prometheus metrics, written in the text exposition format by hand (a few counters and
//! histograms do not need a metrics framework). Labels never carry a token, a session, a
//! patient or a query string: routes are the matched route templates.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Histogram buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bucket {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bucket, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bucket}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// What kind of upstream call a latency belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum UpstreamCall {
    Token,
    Revoke,
    Discovery,
    Fhir,
}

impl UpstreamCall {
    fn as_str(self) -> &'static str {
        match self {
            UpstreamCall::Token => "token",
            UpstreamCall::Revoke => "revoke",
            UpstreamCall::Discovery => "discovery",
            UpstreamCall::Fhir => "fhir",
        }
    }
}

/// The broker's metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    upstream: Mutex<BTreeMap<UpstreamCall, Histogram>>,
    store: Mutex<Histogram>,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    upstream_429: AtomicU64,
    upstream_up: Mutex<BTreeMap<String, bool>>,
}

impl Metrics {
    /// One request answered: its method, matched route template and status.
    pub(crate) fn request(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// One upstream call and how long it took.
    pub(crate) fn upstream(&self, call: UpstreamCall, took: Duration) {
        let mut map = self.upstream.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(call).or_default().observe(took.as_secs_f64());
    }

    /// One store call and how long it took.
    pub(crate) fn store(&self, took: Duration) {
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(took.as_secs_f64());
    }

    /// A refresh finished, well or not.
    pub(crate) fn refresh(&self, ok: bool) {
        let counter = if ok {
            &self.refreshes
        } else {
            &self.refresh_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Upstream answered 429.
    pub(crate) fn throttled(&self) {
        self.upstream_429.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a provider answered the last health probe; returns what the probe before it
    /// found (`None` for the first).
    pub(crate) fn upstream_up(&self, provider: &str, up: bool) -> Option<bool> {
        let mut map = self.upstream_up.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(provider.to_owned(), up)
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP cm_broker_requests_total Requests answered, by method, route and status.\n",
        );
        out.push_str("# TYPE cm_broker_requests_total counter\n");
        for ((method, route, status), count) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "cm_broker_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP cm_broker_upstream_seconds Upstream call latency, by kind.\n");
        out.push_str("# TYPE cm_broker_upstream_seconds histogram\n");
        for (call, histogram) in self
            .upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            histogram.render(
                &mut out,
                "cm_broker_upstream_seconds",
                &format!("call=\"{}\"", call.as_str()),
            );
        }
        out.push_str(
            "# HELP cm_broker_upstream_up Whether the provider's discovery document answered \
             the last probe (1) or not (0).\n# TYPE cm_broker_upstream_up gauge\n",
        );
        for (provider, up) in self
            .upstream_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "cm_broker_upstream_up{{provider=\"{provider}\"}} {}",
                u8::from(*up)
            );
        }
        out.push_str("# HELP cm_broker_store_seconds Store call latency.\n");
        out.push_str("# TYPE cm_broker_store_seconds histogram\n");
        self.store.lock().unwrap_or_else(|p| p.into_inner()).render(
            &mut out,
            "cm_broker_store_seconds",
            "",
        );
        for (name, help, counter) in [
            (
                "cm_broker_refreshes_total",
                "Token refreshes that succeeded.",
                &self.refreshes,
            ),
            (
                "cm_broker_refresh_failures_total",
                "Token refreshes that failed.",
                &self.refresh_failures,
            ),
            (
                "cm_broker_upstream_throttled_total",
                "Upstream 429 answers.",
                &self.upstream_429,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exposition_format() {
        let metrics = Metrics::default();
        metrics.request("GET", "/v1/fhir/{provider}/{resource}", 200);
        metrics.request("GET", "/v1/fhir/{provider}/{resource}", 200);
        metrics.upstream(UpstreamCall::Fhir, Duration::from_millis(30));
        metrics.refresh(true);
        metrics.throttled();
        let text = metrics.render();
        assert!(text.contains(
            "cm_broker_requests_total{method=\"GET\",route=\"/v1/fhir/{provider}/{resource}\",status=\"200\"} 2"
        ));
        assert!(text.contains("cm_broker_upstream_seconds_bucket{call=\"fhir\",le=\"0.05\"} 1"));
        assert!(text.contains("cm_broker_upstream_seconds_bucket{call=\"fhir\",le=\"0.025\"} 0"));
        assert!(text.contains("cm_broker_refreshes_total 1"));
        assert!(text.contains("cm_broker_upstream_throttled_total 1"));
    }
}
