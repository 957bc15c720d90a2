//! The `connect-medicare-broker` binary: `serve`, `check-config` and `gen-key`.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use common::*;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connect-medicare-broker"));
    command.env("NO_COLOR", "1").env_remove("CM_BROKER_CONFIG");
    command
}

fn write_config(dir: &std::path::Path, sandbox: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("broker.toml");
    std::fs::write(
        &path,
        format!(
            r#"
listen = "127.0.0.1:0"
public_base_url = "{APP_ORIGIN}"
database = "sqlite://broker.db"
{extra}
[[keys]]
id = "k1"
key = "{KEY}"

[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "{sandbox}"
client_id = "{CLIENT_ID}"
redirect_uri = "{REDIRECT_URI}"
"#
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn serve_answers_the_api_and_never_prints_the_secret() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sandbox.origin(), "");
    let mut child = binary()
        .args(["serve", "--config", config.to_str().unwrap()])
        .env(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
            CLIENT_SECRET,
        )
        .env("CM_BROKER_LOG", "trace")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("address=").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let address = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the broker logs its address");
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
        .args(["check-config", good.to_str().unwrap()])
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
    let output = binary()
        .args(["check-config", bad.to_str().unwrap()])
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
