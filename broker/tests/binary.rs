//! The `connect-medicare-broker` binary: `serve`, `check-config` and `gen-key`.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use common::*;
use connect_medicare_sandbox::driver::Consent;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A broker process that serves, its log read on a thread: the addresses it logs
/// (`address=` for the API, `metrics=` for the metrics listener) and every line.
struct Served {
    _process: Running,
    addresses: std::sync::mpsc::Receiver<(&'static str, String)>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    fn start(mut command: Command) -> Self {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, addresses) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for field in ["address=", "metrics="] {
                    if let Some(rest) = line.split(field).nth(1) {
                        let value = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send((field, value.to_owned()));
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            _process: Running(child),
            addresses,
            log,
        }
    }

    /// Kills the process as `kill -9` does: no shutdown, no flush.
    fn kill(&mut self) {
        self._process.0.kill().unwrap();
        self._process.0.wait().unwrap();
    }

    /// The next address the log names under `field`.
    fn address(&self, field: &str) -> String {
        loop {
            let (named, value) = self
                .addresses
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the broker logs its {field}"));
            if named == field {
                return value;
            }
        }
    }
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connect-medicare-broker"));
    command.env("NO_COLOR", "1").env_remove("CM_BROKER_CONFIG");
    command
}

/// Writes `dir/broker.toml`: an ephemeral port, the database `broker.db` beside the file,
/// Medicare at `sandbox`, and `extra`.
fn write_config(dir: &std::path::Path, sandbox: &str, extra: &str) -> std::path::PathBuf {
    let mut toml = BrokerToml::new(sandbox, "sqlite://broker.db");
    toml.listen = Some("127.0.0.1:0".to_owned());
    toml.extra = extra.to_owned();
    toml.write(dir)
}

/// A browser of the broker at `address`.
fn browser_at(address: &str) -> Client {
    Client::for_base(&format!("http://{address}"))
}

/// `serve` with `config` and the client secret in the environment.
fn serve_command(config: &std::path::Path) -> Command {
    let mut command = binary();
    command
        .args(["serve", "--config", config.to_str().unwrap()])
        .env(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CLIENT_SECRET,
        );
    command
}

#[tokio::test]
async fn serve_answers_the_api_and_never_prints_the_secret() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sandbox.origin(), "");
    let mut command = serve_command(&config);
    command.env("CM_BROKER_LOG", "trace");
    let served = Served::start(command);
    let address = served.address("address=");
    let log = served.log.clone();
    let response = reqwest::Client::new()
        .get(format!("http://{address}/v1/config"))
        .header("x-connect-medicare", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains(CLIENT_ID));
    assert!(!body.contains(CLIENT_SECRET));
    let health = reqwest::get(format!("http://{address}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        dir.path().join("broker.db").exists(),
        "relative paths are relative to the file"
    );
    assert!(
        !log.lock().unwrap().contains(CLIENT_SECRET),
        "the secret never reaches a log"
    );
}

#[test]
fn check_config_fails_clearly_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(
        dir.path(),
        "http://127.0.0.1:8123",
        r#"allowed_origins = ["http://localhost:8080", "https://other.example"]"#,
    );
    let output = binary()
        .args(["check-config", "--config", good.to_str().unwrap()])
        .env(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CLIENT_SECRET,
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("cross-site"),
        "{stdout}{stderr}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&good)
            .unwrap()
            .replace(REDIRECT_URI, "http://evil.example/cb"),
    )
    .unwrap();
    // The same way serve takes it: --config, or CM_BROKER_CONFIG.
    let output = binary()
        .arg("check-config")
        .env("CM_BROKER_CONFIG", &bad)
        .env(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CLIENT_SECRET,
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("redirect_uri"), "{stderr}");
    assert!(!stderr.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_public_listener() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        sandbox.origin(),
        r#"metrics_listen = "127.0.0.1:0""#,
    );
    let mut command = binary();
    command.arg("serve").env("CM_BROKER_CONFIG", &config).env(
        "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
        CLIENT_SECRET,
    );
    let served = Served::start(command);
    let main = served.address("address=");
    let metrics = served.address("metrics=");
    assert_ne!(main, metrics);
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("http://{main}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let public = http
        .get(format!("http://{main}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        public.status(),
        404,
        "/metrics is not on the public listener"
    );
    let private = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    let text = private.text().await.unwrap();
    assert!(
        text.contains(r#"cm_broker_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    // The metrics listener serves nothing else.
    let other = http
        .get(format!("http://{metrics}/v1/config"))
        .header("x-connect-medicare", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn a_flood_of_silent_sockets_under_a_low_descriptor_limit_does_not_starve_health_checks() {
    use tokio::io::AsyncReadExt as _;

    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        sandbox.origin(),
        "max_connections = 128\nheader_read_timeout_seconds = 1",
    );
    // 256 descriptors: more silent sockets than the process could ever hold at once.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" serve --config "$1""#)
        .arg(env!("CARGO_BIN_EXE_connect-medicare-broker"))
        .arg(&config)
        .env("NO_COLOR", "1")
        .env(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CLIENT_SECRET,
        );
    let served = Served::start(command);
    let address = served.address("address=");
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // Queued behind 300 sockets that never send a byte, a health check is still answered...
    let health = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .expect("the health check was starved");
    assert_eq!(health.status(), 200);
    // ...because the broker closes each of them once its deadline passes.
    for mut stream in silent {
        let mut buffer = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            stream.read_to_end(&mut buffer),
        )
        .await;
        assert!(closed.is_ok(), "a silent socket was never closed");
    }
}

#[test]
fn gen_key_prints_a_usable_key_entry() {
    let output = binary().args(["gen-key", "--id", "k2"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    let key = &parsed["keys"][0];
    assert_eq!(key["id"].as_str(), Some("k2"));
    assert!(
        connect_medicare_broker::KeyMaterial::from_base64(key["key"].as_str().unwrap()).is_ok()
    );
}

/// The hardened systemd unit shipped in `broker/`, with its binary path pointed at this build:
/// `systemd-analyze verify` finds nothing to say (unknown or misspelt directives are only
/// warnings there, so any output fails), and its offline security review rates the exposure
/// at most 2.0 of 10.
#[test]
fn the_systemd_unit_verifies_and_stays_hardened() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("connect-medicare-broker.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/connect-medicare-broker serve --config"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("connect-medicare-broker.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/bin/connect-medicare-broker",
            env!("CARGO_BIN_EXE_connect-medicare-broker"),
        ),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (scripts/setup.sh)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        security.status.success(),
        "{}",
        String::from_utf8_lossy(&security.stdout)
    );
}

/// `kill -9` while browsers read and sign in: every sign-in the broker acknowledged before the
/// kill is a working session after the restart, and no read answered anything but its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_under_load_loses_no_acknowledged_session() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sandbox.origin(), "");
    let mut served = Served::start(serve_command(&config));
    let address = served.address("address=");

    // Readers: four signed-in browsers reading their Patient in a loop.
    let mut readers = Vec::new();
    for user in 0..4 {
        let mut browser = browser_at(&address);
        let session = connect(&mut browser, &sandbox, user).await;
        let patient = session.connections[0].patient.clone().unwrap();
        readers.push((browser, patient));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = readers
        .iter()
        .map(|(browser, patient)| {
            let path = format!("/v1/fhir/medicare/Patient/{}", patient.as_str());
            tokio::spawn(read_until_stopped(browser.clone(), path, stop.clone()))
        })
        .collect();
    // Sign-ins, one after another, until enough are acknowledged: then the kill.
    let mut acknowledged = Vec::new();
    for user in 4..12 {
        let mut browser = browser_at(&address);
        connect(&mut browser, &sandbox, user).await;
        acknowledged.push(browser);
    }
    // One more in flight at the kill: it counts only if the broker acknowledged it.
    let in_flight = {
        let mut browser = browser_at(&address);
        let (flow, code) = authorize(&mut browser, &sandbox, 12, Consent::ALLOW).await;
        let body = serde_json::json!({
            "state": flow.state.as_str(),
            "code": code,
            "code_verifier": flow.verifier.expose_secret(),
        });
        tokio::spawn(async move {
            // Not `complete`: the broker may die under this request, and that is no failure.
            let reply = browser
                .try_send_with(reqwest::Method::POST, "/v1/flows/complete", Some(body), &[])
                .await?;
            (reply.status == 200).then_some(browser)
        })
    };
    served.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Ok(Some(browser)) = in_flight.await {
        acknowledged.push(browser);
    }
    let mut reads = 0;
    for task in load {
        reads += task.await.unwrap();
    }
    assert!(reads > 0, "the readers never read");

    let restarted = Served::start(serve_command(&config));
    let address = format!("http://{}", restarted.address("address="));
    let mut lost = 0;
    for browser in readers
        .iter()
        .map(|(browser, _)| browser)
        .chain(&acknowledged)
    {
        if !still_connected(browser, &address).await {
            lost += 1;
        }
    }
    eprintln!(
        "hostile: durability | kill -9 under load ({reads} reads, {} sessions) | sessions lost: {lost}",
        readers.len() + acknowledged.len()
    );
    assert_eq!(lost, 0, "sessions lost to a kill -9");
}
