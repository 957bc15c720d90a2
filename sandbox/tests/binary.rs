//! The `connect-medicare-sandbox serve` binary: flags, an apps file, and a real socket.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on an ephemeral port and returns it with its origin, read from the
/// line it logs once listening.
fn serve(args: &[&str]) -> (Running, String) {
    serve_with_env(args, &[])
}

/// As [`serve`], with extra environment variables.
fn serve_with_env(args: &[&str], env: &[(&str, &str)]) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connect-medicare-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--login-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    // Read the log on a thread, so a sandbox that never says it listens fails the test
    // instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let origin = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(origin);
            }
        }
    });
    let origin = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the sandbox logs the address it listens on");
    (running, origin)
}

#[tokio::test]
async fn serves_discovery_for_apps_from_flags_and_file() {
    let dir = std::env::temp_dir().join(format!("cm-sandbox-apps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("apps.toml");
    std::fs::write(
        &file,
        r#"
[[apps]]
client_id = "from-file"
client_secret = "file-secret"
redirect_uris = ["http://localhost:9000/cb"]
grant_kind = "research"
require_demographics = false
"#,
    )
    .unwrap();
    let (_running, origin) = serve(&[
        "--app",
        "from-flag:flag-secret:http://localhost:8080/callback:one_time",
        "--apps-file",
        file.to_str().unwrap(),
    ]);
    let config: serde_json::Value =
        reqwest::get(format!("{origin}/v2/fhir/.well-known/smart-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        config["authorization_endpoint"],
        format!("{origin}/v2/o/authorize")
    );
    // Both apps are registered: each authenticates at the token endpoint (and is refused
    // only for the missing grant type, not as an unknown client).
    for (id, secret) in [("from-flag", "flag-secret"), ("from-file", "file-secret")] {
        let response = reqwest::Client::new()
            .post(format!("{origin}/v2/o/token/"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{id}");
        assert_eq!(
            response.text().await.unwrap(),
            r#"{"error":"unsupported_grant_type"}"#
        );
    }
    // No `--admin`: the test controls do not exist.
    let admin = reqwest::get(format!("{origin}/__admin/faults"))
        .await
        .unwrap();
    assert_eq!(admin.status(), 404);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn fault_flags_and_environment_reach_the_admin_endpoint() {
    let (_running, origin) = serve_with_env(
        &[
            "--app",
            "cid:secret:http://localhost:8080/callback",
            "--throttle",
            "2/second",
            "--error-rate",
            "1",
            "--latency-ms",
            "5",
            "--storm-requests",
            "4",
            "--seed",
            "9",
            "--clock-offset",
            "-30",
        ],
        &[("CM_SANDBOX_DROP_RATE", "0.25"), ("CM_SANDBOX_ADMIN", "1")],
    );
    let faults: serde_json::Value = reqwest::get(format!("{origin}/__admin/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        faults,
        serde_json::json!({"latency_ms": 5, "error_rate": 1.0, "drop_rate": 0.25,
                           "throttle": "2/second", "storm": {"requests_left": 4},
                           "gzip_always": false, "retry_after_date": false, "revoke_status": null,
                           "leak_patients": false,
                           "seed": 9})
    );
    let clock: serde_json::Value = reqwest::get(format!("{origin}/__admin/clock"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["offset_ms"], -30_000);
}

#[test]
fn a_rate_outside_zero_to_one_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_connect-medicare-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--app",
            "a:b:http://x/cb",
        ])
        .args(["--error-rate", "1.5"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("must be between 0 and 1"));
}

#[test]
fn refuses_to_start_without_apps() {
    let output = Command::new(env!("CARGO_BIN_EXE_connect-medicare-sandbox"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("CM_SANDBOX_APPS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("register at least one app"));
}
