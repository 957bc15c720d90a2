//! The servers every part measures, each on its own loopback port:
//!
//! - a **static upstream**: Debian's nginx serving Blue Button-shaped files under `/v2/fhir/`
//!   (a Patient, an EOB page precompressed with gzip, 2 MB and 6 MB identity pages), and
//!   passing every other path (sign-in, token, discovery) to the emulator, so the broker is
//!   configured exactly as against Blue Button while its reads cost the upstream almost nothing;
//! - the **reference proxy**: nginx attaching a fixed bearer token and passing through;
//! - the **broker** (the release binary), with its embedded SQLite store, signed in once
//!   through the emulator's real pages.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use connect_medicare_protocol::{
    Callback, PkceVerifier, State,
    contract::{CSRF_HEADER, CSRF_VALUE, CreateFlowResponse},
};
use connect_medicare_sandbox::{
    AppConfig, Clock, Sandbox, SandboxConfig,
    driver::{Browser, Consent, Outcome},
};
use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};

use crate::system::{Process, free_port, wait_ready};

pub const CLIENT_ID: &str = "bench-client";
pub const CLIENT_SECRET: &str = "bench-client-secret";
/// The CPU the proxies (nginx's worker, the broker) run on; the upstream and the load tool
/// share the other.
pub const PROXY_CPU: u32 = 0;
pub const LOAD_CPU: u32 = 1;

/// The paths of the static upstream's pages, as the broker's clients ask for them.
pub const PATIENT_READ: &str = "Patient/{patient}";
pub const GZIP_PAGE: &str = "ExplanationOfBenefit?startIndex=0";
pub const LARGE_PAGE: &str = "ExplanationOfBenefit?startIndex=1";
pub const HUGE_PAGE: &str = "ExplanationOfBenefit?startIndex=2";

/// Sizes of the files the static upstream serves.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub patient: usize,
    pub gzip_page: usize,
    pub gzip_page_inflated: usize,
    pub large_page: usize,
    pub huge_page: usize,
}

pub struct Stack {
    _dir: tempfile::TempDir,
    pub sizes: Sizes,
    pub upstream: Process,
    pub upstream_origin: String,
    pub reference: Process,
    pub reference_origin: String,
    pub broker: Process,
    pub broker_origin: String,
    /// The broker again, keeping no proxied read's lookup (`connection_cache_ms = 0`).
    pub uncached: Process,
    pub uncached_origin: String,
    /// The design's floor (`bare.rs`): axum and reqwest passing reads through, nothing else.
    pub bare: Process,
    pub bare_origin: String,
    /// The broker's session cookie and CSRF header, as a signed-in browser sends them.
    pub broker_headers: Vec<String>,
    pub patient: String,
    _sandbox: Sandbox,
}

impl Stack {
    pub async fn start(broker_bin: &Path) -> Result<Self> {
        let mut dir = tempfile::tempdir()?;
        // CM_BENCH_KEEP=1 keeps the configurations and logs, to look into a failure.
        if std::env::var_os("CM_BENCH_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let www = dir.path().join("www");
        std::fs::create_dir(&www)?;
        let sizes = write_pages(&www)?;

        let broker_port = free_port()?;
        let broker_origin = format!("http://127.0.0.1:{broker_port}");
        let redirect_uri = format!("{broker_origin}/callback");
        let sandbox = Sandbox::start(
            SandboxConfig::with_app(AppConfig::new(CLIENT_ID, CLIENT_SECRET, &redirect_uri)),
            Clock::new(),
        )
        .await?;

        // No per-session pacing against the static upstream: it has no rate limit to stay
        // under, and the load is one session's.
        let upstream_port = free_port()?;
        let upstream_origin = format!("http://127.0.0.1:{upstream_port}");
        let upstream = nginx(
            dir.path(),
            "upstream",
            LOAD_CPU,
            &upstream_conf(upstream_port, &www, sandbox.origin()),
        )?;
        wait_ready(&format!("{upstream_origin}/v2/fhir/Patient/x")).await?;

        let reference_port = free_port()?;
        let reference_origin = format!("http://127.0.0.1:{reference_port}");
        let reference = nginx(
            dir.path(),
            "reference",
            PROXY_CPU,
            &reference_conf(reference_port, upstream_port),
        )?;
        wait_ready(&format!("{reference_origin}/v2/fhir/Patient/x")).await?;

        let broker = start_broker(
            dir.path(),
            broker_bin,
            broker_port,
            &upstream_origin,
            Some(0),
            "",
        )?;
        wait_ready(&format!("{broker_origin}/readyz")).await?;
        let (cookie, patient) = sign_in(&broker_origin, &sandbox, &redirect_uri).await?;
        // The same broker keeping no proxied read's lookup (`connection_cache_ms = 0`), on the
        // same store: the session signed in above is its too.
        let uncached_port = free_port()?;
        let uncached_origin = format!("http://127.0.0.1:{uncached_port}");
        let uncached = start_broker(
            dir.path(),
            broker_bin,
            uncached_port,
            &upstream_origin,
            Some(0),
            "connection_cache_ms = 0\n",
        )?;
        wait_ready(&format!("{uncached_origin}/readyz")).await?;

        let bare_port = free_port()?;
        let bare_origin = format!("http://127.0.0.1:{bare_port}");
        let bare = Process::pinned(
            "bare-proxy",
            PROXY_CPU,
            &std::env::current_exe()?,
            &["bare-proxy", &bare_port.to_string(), &upstream_origin],
        )?;
        wait_ready(&format!("{bare_origin}/v1/fhir/medicare/Patient/x")).await?;
        let broker_headers = vec![
            format!("Cookie: {cookie}"),
            format!("{CSRF_HEADER}: {CSRF_VALUE}"),
        ];
        Ok(Self {
            _dir: dir,
            sizes,
            upstream,
            upstream_origin,
            reference,
            reference_origin,
            broker,
            broker_origin,
            uncached,
            uncached_origin,
            bare,
            bare_origin,
            broker_headers,
            patient,
            _sandbox: sandbox,
        })
    }

    /// The URL of `page` (one of the constants above) directly at the upstream, through nginx,
    /// and through the broker.
    pub fn urls(&self, page: &str) -> [String; 3] {
        let page = page.replace("{patient}", &self.patient);
        let upstream_path = match page.split_once('?') {
            Some((path, query)) => format!("/v2/fhir/{path}/?{query}"),
            None => format!("/v2/fhir/{page}"),
        };
        [
            format!("{}{upstream_path}", self.upstream_origin),
            format!("{}{upstream_path}", self.reference_origin),
            format!("{}/v1/fhir/medicare/{page}", self.broker_origin),
        ]
    }

    /// The URL of `page` through the broker that keeps no proxied read's lookup.
    pub fn uncached_url(&self, page: &str) -> String {
        let page = page.replace("{patient}", &self.patient);
        format!("{}/v1/fhir/medicare/{page}", self.uncached_origin)
    }

    /// The URL of `page` through the bare axum + reqwest proxy.
    pub fn bare_url(&self, page: &str) -> String {
        let page = page.replace("{patient}", &self.patient);
        format!("{}/v1/fhir/medicare/{page}", self.bare_origin)
    }

    /// The pid whose CPU time is the reference proxy's: its one worker.
    pub fn reference_worker(&self) -> Result<u32> {
        self.reference
            .children()?
            .first()
            .copied()
            .context("nginx has no worker")
    }

    pub fn upstream_worker(&self) -> Result<u32> {
        self.upstream
            .children()?
            .first()
            .copied()
            .context("nginx has no worker")
    }
}

/// A Blue Button-shaped Bundle of `n` claims, each a real sample EOB with its own id and
/// amounts (so it compresses as a real page does, not as one claim repeated).
fn eob_page(n: usize) -> Vec<u8> {
    let sample: Value = serde_json::from_str(include_str!(
        "../../../../fixtures/bb2-samples/eob_read_carrier_v2.json"
    ))
    .expect("the sample parses");
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            let mut claim = sample.clone();
            claim["id"] = json!(format!("carrier-{}", next() % 10_000_000_000));
            let text = serde_json::to_string(&claim).expect("serializes");
            // Vary every digit the way different claims do (1 to 9: a JSON number never gets a
            // leading zero, so the claim still parses).
            let varied: String = text
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        char::from(b'1' + (next() % 9) as u8)
                    } else {
                        c
                    }
                })
                .collect();
            let mut claim: Value = serde_json::from_str(&varied).expect("still JSON");
            claim["id"] = json!(format!("carrier-{i}"));
            json!({ "resource": claim })
        })
        .collect();
    serde_json::to_vec(&json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": n,
        "link": [{ "relation": "self", "url": "https://sandbox.bluebutton.cms.gov/v2/fhir/ExplanationOfBenefit/" }],
        "entry": entries,
    }))
    .expect("serializes")
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// The smallest page of whole claims of at least `bytes` (`gzipped`: on the wire).
fn page_of_at_least(bytes: usize, gzipped: bool) -> Result<Vec<u8>> {
    let mut n = 1;
    loop {
        let page = eob_page(n);
        let size = if gzipped {
            gzip(&page)?.len()
        } else {
            page.len()
        };
        if size >= bytes {
            return Ok(page);
        }
        n = (n * bytes / size.max(1)).max(n + 1);
    }
}

fn write_pages(www: &Path) -> Result<Sizes> {
    let patient: Value = serde_json::from_str(include_str!(
        "../../../../fixtures/bb2-samples/patient_read_v2.json"
    ))?;
    let patient = serde_json::to_vec(&patient)?;
    std::fs::write(www.join("patient.json"), &patient)?;
    let small = page_of_at_least(100 * 1024, true)?;
    let small_gz = gzip(&small)?;
    std::fs::write(www.join("eob-0.json"), &small)?;
    std::fs::write(www.join("eob-0.json.gz"), &small_gz)?;
    let large = page_of_at_least(2 * 1024 * 1024, false)?;
    std::fs::write(www.join("eob-1.json"), &large)?;
    let huge = page_of_at_least(6 * 1024 * 1024, false)?;
    std::fs::write(www.join("eob-2.json"), &huge)?;
    Ok(Sizes {
        patient: patient.len(),
        gzip_page: small_gz.len(),
        gzip_page_inflated: small.len(),
        large_page: large.len(),
        huge_page: huge.len(),
    })
}

/// The settings both nginx instances share: one worker, no access log, temporary files in
/// the benchmark's directory.
fn nginx_common(dir: &Path, name: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\n\
         pid {d}/{name}.pid;\n\
         error_log {d}/{name}-error.log;\n\
         events {{ worker_connections 4096; }}\n"
    ) + &format!(
        "http {{\n  access_log off;\n  keepalive_requests 1000000;\n  \
         client_body_temp_path {d}/{name}-body; proxy_temp_path {d}/{name}-proxy;\n  \
         fastcgi_temp_path {d}/{name}-fcgi; uwsgi_temp_path {d}/{name}-uwsgi; \
         scgi_temp_path {d}/{name}-scgi;\n"
    )
}

fn upstream_conf(port: u16, www: &Path, sandbox: &str) -> String {
    let www = www.display();
    // Everything the broker does not read from the files (sign-in, token, discovery) is the
    // emulator's.
    format!(
        "  default_type application/fhir+json;\n  sendfile on;\n  tcp_nopush on;\n  \
         server {{\n    listen 127.0.0.1:{port};\n    root {www};\n    \
         location /v2/fhir/Patient/ {{ try_files /patient.json =404; }}\n    \
         location /v2/fhir/ExplanationOfBenefit {{ gzip_static on; try_files /eob-$arg_startIndex.json =404; }}\n    \
         location / {{ proxy_pass {sandbox}; proxy_set_header Host $http_host; }}\n  }}\n}}\n"
    )
}

fn reference_conf(port: u16, upstream: u16) -> String {
    format!(
        "  upstream fhir {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n  \
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      \
         proxy_pass http://fhir;\n      proxy_http_version 1.1;\n      \
         proxy_set_header Connection \"\";\n      \
         proxy_set_header Authorization \"Bearer a-fixed-token-for-the-reference\";\n    }}\n  }}\n}}\n"
    )
}

fn nginx(dir: &Path, name: &'static str, cpu: u32, http: &str) -> Result<Process> {
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(&conf, nginx_common(dir, name) + http)?;
    let conf = conf.display().to_string();
    Process::pinned(
        name,
        cpu,
        &nginx_binary()?,
        &["-c", &conf, "-g", "daemon off;", "-e", "stderr"],
    )
}

fn nginx_binary() -> Result<PathBuf> {
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    bail!("nginx is not installed (scripts/bench.sh installs Debian's nginx-light)")
}

/// The broker on `port` with Blue Button at `upstream`, paced at `pacing` requests per second
/// per connection (`None`: the broker's default for Blue Button), with `settings` (top-level
/// TOML lines) besides. Brokers started in one `dir` share its store and keys, so a session
/// signed in through one is served by all.
pub fn start_broker(
    dir: &Path,
    bin: &Path,
    port: u16,
    upstream: &str,
    pacing: Option<u32>,
    settings: &str,
) -> Result<Process> {
    if !dir.join("keys.toml").exists() {
        let keys = std::process::Command::new(bin).arg("gen-key").output()?;
        if !keys.status.success() {
            bail!("gen-key failed");
        }
        std::fs::write(dir.join("keys.toml"), &keys.stdout)?;
    }
    let pacing = pacing
        .map(|n| format!("requests_per_second = {n}\n"))
        .unwrap_or_default();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
public_base_url = "http://127.0.0.1:{port}"
database = "sqlite://broker.db"
keys_file = "keys.toml"
{settings}
[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "{upstream}"
client_id = "{CLIENT_ID}"
redirect_uri = "http://127.0.0.1:{port}/callback"
{pacing}"#
    );
    let path = dir.join(format!("broker-{port}.toml"));
    std::fs::write(&path, config)?;
    let path = path.display().to_string();
    Process::pinned_with(
        "broker",
        PROXY_CPU,
        bin,
        &["serve", "--config", &path],
        &[(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CLIENT_SECRET,
        )],
        Some(&dir.join(format!("broker-{port}.log"))),
    )
}

fn random32() -> Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(bytes)
}

/// Signs in as the beneficiary with the most claims (327), as the SDK does, and returns the session
/// cookie and the patient id.
pub async fn sign_in(
    broker: &str,
    sandbox: &Sandbox,
    redirect_uri: &str,
) -> Result<(String, String)> {
    // The flow cookie `POST /v1/flows` sets goes back with the completion, as a browser's would.
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let state = State::from_random_bytes(random32()?);
    let verifier = PkceVerifier::from_random_bytes(random32()?);
    let created: CreateFlowResponse = http
        .post(format!("{broker}/v1/flows"))
        .header(CSRF_HEADER, CSRF_VALUE)
        .json(&json!({
            "provider": "medicare",
            "state": state.as_str(),
            "code_challenge": verifier.challenge().as_str(),
            "redirect_uri": redirect_uri,
            "method": "get",
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let outcome = Browser::new(sandbox.origin())?
        .authorize(
            &created.authorize,
            "BBUser00029",
            "PW00029!",
            Consent::ALLOW,
        )
        .await?;
    let Outcome::Redirected(callback) = outcome else {
        bail!("the sign-in did not come back: {outcome:?}");
    };
    let code = Callback::parse(&callback)?
        .context("no callback")?
        .verify(&state)?
        .expose_secret()
        .to_owned();
    let response = http
        .post(format!("{broker}/v1/flows/complete"))
        .header(CSRF_HEADER, CSRF_VALUE)
        .json(&json!({
            "state": state.as_str(),
            "code": code,
            "code_verifier": verifier.expose_secret(),
        }))
        .send()
        .await?;
    let cookie = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("completing the sign-in answered {status}: {body}");
    }
    let session: Value = serde_json::from_str(&body)?;
    let patient = session["connections"][0]["patient"]
        .as_str()
        .context("no patient in the session")?
        .to_owned();
    Ok((cookie, patient))
}
