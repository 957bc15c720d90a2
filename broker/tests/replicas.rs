//! Single flight across replicas: two real `connect-medicare-broker` processes share one real
//! PostgreSQL database (and, the same way, one SQLite file), with the sandbox as Blue Button.
//!
//! One session connects through the first replica. Then the sandbox's clock moves past the
//! access token's hour, so Blue Button answers 401 to it while both brokers still believe it
//! valid (their clocks are the system's): every request takes the reactive path — upstream
//! 401, refresh, replay. Concurrent requests spread over both replicas must all be answered
//! 200 with **exactly one** upstream refresh: Blue Button's refresh tokens are single use, so
//! a second refresh would be refused with `invalid_grant` and end the connection (its request
//! would answer `reconnect_required`). The stored generation moving by exactly one, the
//! connection still `connected`, and every request a 200 show it.

mod common;
#[path = "../src/store/test_postgres.rs"]
mod test_postgres;

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use common::*;
use connect_medicare_broker::{
    ConnectionRecord, PgStore, PostgresUrl, SessionHash, SqliteStore, Store,
};
use connect_medicare_protocol::contract::{ConnectionStatus, ErrorCode, ProviderId};
use connect_medicare_sandbox::{FaultConfig, Sandbox};

/// Runs the broker (`$0 "$@"`) and kills it as soon as standard input closes: when the
/// [`Replica`] drops, and equally when the test process dies without unwinding.
const WATCHDOG: &str = r#""$0" "$@" & broker=$!
while read -r _; do :; done
kill "$broker" 2>/dev/null
wait "$broker""#;

/// A broker process; killed when dropped (or when the test process dies).
struct Replica {
    child: Child,
    address: Option<mpsc::Receiver<String>>,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Replica {
    /// Starts `connect-medicare-broker serve` with `config`, on the database `database`
    /// (given in the environment, as an operator keeps a password out of the file).
    fn spawn(config: &Path, database: &str) -> Replica {
        let mut child = Command::new("/bin/sh")
            .args([
                "-c",
                WATCHDOG,
                env!("CARGO_BIN_EXE_connect-medicare-broker"),
            ])
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("CM_BROKER_CONFIG")
            .env("NO_COLOR", "1")
            .env("CM_BROKER_DATABASE", database)
            .env(
                "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
                CLIENT_SECRET,
            )
            .env("CM_BROKER_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the broker binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("address=").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(address.to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Replica {
            child,
            address: Some(rx),
            base: String::new(),
            log,
        }
    }

    /// Waits for the address it logs once it has opened (and migrated) the store.
    fn wait_ready(&mut self) {
        let rx = self.address.take().expect("waited once");
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => self.base = format!("http://{address}"),
            Err(_) => panic!("the broker did not start; its log:\n{}", self.log()),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills the broker itself (not its watchdog shell) as `kill -9` does.
    fn kill_9(&mut self) {
        let shell = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        let broker = children.split_whitespace().next().expect("the broker runs");
        let killed = Command::new("kill").args(["-9", broker]).status().unwrap();
        assert!(killed.success());
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The sandbox, without its per-token rate limit (the test sends one token's requests far
/// faster than Blue Button's 10 per second, on purpose), and with every API answer delayed
/// so that the replicas' refreshes are sure to overlap in time: without the lease both would
/// spend the same refresh token.
async fn slow_unthrottled_sandbox() -> Sandbox {
    sandbox_with(|config| {
        config.throttle = None;
        config.faults = FaultConfig {
            latency_ms: 200,
            ..FaultConfig::default()
        };
    })
    .await
}

/// The configuration both replicas share (the database comes from the environment).
fn write_config(dir: &Path, sandbox: &Sandbox) -> PathBuf {
    let mut toml = BrokerToml::new(sandbox.origin(), "sqlite::memory:");
    toml.listen = Some("127.0.0.1:0".to_owned());
    toml.write(dir)
}

async fn stored(store: &dyn Store, session: &SessionHash) -> ConnectionRecord {
    store
        .get_connection(session, &ProviderId::new("medicare").unwrap())
        .await
        .unwrap()
        .expect("the connection exists")
}

/// Two replicas on `database`, started together; `requests` concurrent reads at token
/// expiry, alternating between them; `open` gives the test its own view of the database once
/// the replicas have opened it.
async fn one_refresh_across_two_replicas<F>(
    database: &str,
    open: impl FnOnce() -> F,
    requests: usize,
    user: usize,
) where
    F: Future<Output = Box<dyn Store>>,
{
    let sandbox = slow_unthrottled_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sandbox);
    let mut replicas = [
        Replica::spawn(&config, database),
        Replica::spawn(&config, database),
    ];
    for replica in &mut replicas {
        replica.wait_ready();
    }
    let store = open().await;
    let store = store.as_ref();

    // Sign in through the first replica; the second serves the same session.
    let mut first = Client::for_base(&replicas[0].base);
    connect(&mut first, &sandbox, user).await;
    let second = Client {
        base: replicas[1].base.clone(),
        ..first.clone()
    };
    for client in [&first, &second] {
        let reply = client.clone().get("/v1/fhir/medicare/Coverage").await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let session = session_key(store, &first).await;
    let before = stored(store, &session).await;

    // The access token dies upstream: Blue Button's clock passes its hour.
    sandbox.clock().advance(3601);
    let calls = (0..requests).map(|i| {
        let mut client = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        async move {
            client
                .get(&format!(
                    "/v1/fhir/medicare/ExplanationOfBenefit?_count=1&startIndex={}",
                    i % 10
                ))
                .await
        }
    });
    let replies = futures_util::future::join_all(calls).await;
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(
            reply.status,
            200,
            "request {i} (replica {}): {}",
            i % 2,
            String::from_utf8_lossy(&reply.body)
        );
    }

    let after = stored(store, &session).await;
    assert_eq!(
        after.generation,
        before.generation + 1,
        "exactly one upstream refresh"
    );
    assert_eq!(after.status, ConnectionStatus::Connected);
    assert_ne!(after.refresh_token_ct, before.refresh_token_ct, "rotated");
    // Both replicas go on with the new tokens, without another refresh.
    for client in [&first, &second] {
        let reply = client.clone().get("/v1/fhir/medicare/Coverage").await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    assert_eq!(
        stored(store, &session).await.generation,
        before.generation + 1
    );

    // The brokers' own account agrees: one refresh request went upstream, in all.
    let upstream_refreshes: usize = replicas
        .iter()
        .map(|r| r.log().matches("refreshing upstream").count())
        .sum();
    assert_eq!(upstream_refreshes, 1);

    for replica in &replicas {
        let log = replica.log();
        assert!(!log.contains(CLIENT_SECRET), "the client secret was logged");
        assert!(
            !log.contains(test_postgres::PASSWORD),
            "the database password was logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_refresh_once_for_200_concurrent_requests() {
    // An empty database: the two replicas migrate it as they start together (sqlx holds an
    // advisory lock, so one applies the migrations and the other finds them applied).
    let db = test_postgres::TestDatabase::create().await;
    let url = db.url_string();
    let open = || async {
        let url = PostgresUrl::parse(&db.url_string()).unwrap();
        Box::new(PgStore::connect(&url).await.unwrap()) as Box<dyn Store>
    };
    one_refresh_across_two_replicas(&url, open, 200, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_sqlite_file_refresh_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.db");
    // No file yet: the two replicas create and migrate it as they start together.
    let url = format!("sqlite://{}", path.display());
    let open = || async { Box::new(SqliteStore::open(&path).await.unwrap()) as Box<dyn Store> };
    one_refresh_across_two_replicas(&url, open, 40, 17).await;
}

/// `kill -9` of one of two replicas on PostgreSQL while browsers read through it: every
/// session, whichever replica signed it in, still works through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_of_one_replica_on_postgres_loses_no_session() {
    let sandbox = sandbox().await;
    let db = test_postgres::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sandbox);
    let (mut a, mut b) = (
        Replica::spawn(&config, &db.url_string()),
        Replica::spawn(&config, &db.url_string()),
    );
    a.wait_ready();
    b.wait_ready();
    let mut browsers = Vec::new();
    for user in 0..8 {
        let mut browser = Client::for_base(if user % 2 == 0 { &a.base } else { &b.base });
        connect(&mut browser, &sandbox, user).await;
        browsers.push(browser);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = browsers
        .iter()
        .map(|browser| {
            let mut browser = browser.clone();
            browser.base = a.base.clone();
            tokio::spawn(read_until_stopped(
                browser,
                "/v1/fhir/medicare/Coverage".to_owned(),
                stop.clone(),
            ))
        })
        .collect();
    // Kill once the reads are under way (as many answered as there are readers).
    while metric_at(&a.base).await < browsers.len() as f64 {
        tokio::task::yield_now().await;
    }
    a.kill_9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for task in load {
        reads += task.await.unwrap();
    }
    let mut lost = 0;
    for browser in &browsers {
        if !still_connected(browser, &b.base).await {
            lost += 1;
        }
    }
    eprintln!(
        "hostile: durability | kill -9 of one of two replicas on PostgreSQL under load ({reads} reads, {} sessions) | sessions lost: {lost}",
        browsers.len()
    );
    assert_eq!(lost, 0, "sessions lost to a replica's kill -9");
}

/// Two replicas on PostgreSQL, each keeping proxied reads' lookups for a second
/// (`connection_cache_ms`): a disconnect answered by one is honoured by the other at once,
/// although it kept the connection moments before — the disconnect waited out the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_on_one_caching_replica_is_honoured_by_the_other_at_once() {
    let sandbox = sandbox().await;
    let db = test_postgres::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut toml = BrokerToml::new(sandbox.origin(), "sqlite::memory:");
    toml.listen = Some("127.0.0.1:0".to_owned());
    toml.extra = "connection_cache_ms = 1000\n".to_owned();
    let config = toml.write(dir.path());
    let (mut a, mut b) = (
        Replica::spawn(&config, &db.url_string()),
        Replica::spawn(&config, &db.url_string()),
    );
    a.wait_ready();
    b.wait_ready();
    let mut first = Client::for_base(&a.base);
    connect(&mut first, &sandbox, 5).await;
    let mut second = Client {
        base: b.base.clone(),
        ..first.clone()
    };
    // Both replicas read, and so keep the session's connection; the first reads twice, the
    // second time from what it kept.
    for client in [&first, &first, &second] {
        let reply = client.clone().get("/v1/fhir/medicare/Coverage").await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    assert_eq!(
        metric_sum(&a.base, "cm_broker_connection_cache_total{result=\"hit\"}").await,
        1.0,
        "the first replica's second read came from its cache"
    );
    let relayed = upstream_reads_at(&a.base).await;
    assert_eq!(relayed, 2.0, "the first replica's two reads went upstream");
    let started = std::time::Instant::now();
    let reply = second
        .post(
            "/v1/session/disconnect",
            serde_json::json!({"provider": "medicare"}),
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the window was waited out"
    );
    let reply = first.get("/v1/fhir/medicare/Coverage").await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (401, ErrorCode::NotConnected),
        "the first replica relayed a disconnected connection's token"
    );
    // Refused before anything went upstream: Blue Button never saw the token again (it would
    // have refused it, revoked, and the broker would have answered the same).
    assert_eq!(upstream_reads_at(&a.base).await, relayed);
}

/// How many proxied reads the replica at `base` has answered.
async fn metric_at(base: &str) -> f64 {
    metric_sum(
        base,
        "cm_broker_requests_total{method=\"GET\",route=\"/v1/fhir/{provider}/{resource}\",status=\"200\"}",
    )
    .await
}

/// How many FHIR reads the replica at `base` has sent upstream.
async fn upstream_reads_at(base: &str) -> f64 {
    metric_sum(base, "cm_broker_upstream_seconds_count{call=\"fhir\"}").await
}

/// The sum of the replica's metric lines that start with `series`.
async fn metric_sum(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(series))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
