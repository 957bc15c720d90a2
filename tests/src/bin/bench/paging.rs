//! The paging part: the emulator standing in for Blue Button with latency on every request
//! and its throttle on, the broker in front with its default pacing, and the built SDK
//! (`bench/paging.mjs`) reading every claim of the beneficiary with the most.

use std::path::Path;

use anyhow::{Result, bail};
use connect_medicare_sandbox::{AppConfig, Clock, Sandbox, SandboxConfig};

use crate::{
    stack::{CLIENT_ID, CLIENT_SECRET, sign_in, start_broker},
    system::{free_port, wait_ready},
};

/// The latency the emulator adds to every request.
const LATENCY_MS: u64 = 200;

pub async fn paging(broker_bin: &Path, repeats: usize) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let origin = format!("http://127.0.0.1:{port}");
    let redirect_uri = format!("{origin}/callback");
    let mut config =
        SandboxConfig::with_app(AppConfig::new(CLIENT_ID, CLIENT_SECRET, &redirect_uri));
    config.faults.latency_ms = LATENCY_MS;
    let sandbox = Sandbox::start(config, Clock::new()).await?;
    let _broker = start_broker(dir.path(), broker_bin, port, sandbox.origin(), None, "")?;
    wait_ready(&format!("{origin}/readyz")).await?;
    let (cookie, _) = sign_in(&origin, &sandbox, &redirect_uri).await?;
    let output = tokio::process::Command::new("node")
        .arg("bench/paging.mjs")
        .arg(&origin)
        .arg(&cookie)
        .arg(LATENCY_MS.to_string())
        .arg(repeats.to_string())
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "bench/paging.mjs failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}
