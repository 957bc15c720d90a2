//! Load from `wrk`, pinned to one CPU, and what it reports.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// One `wrk` run.
pub struct Load<'a> {
    pub url: &'a str,
    pub headers: &'a [String],
    pub connections: u32,
    pub seconds: u32,
    pub cpu: u32,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Load<'_> {
    /// One request with `curl` first: a page that does not answer 200 fails with its answer,
    /// before any load.
    pub fn check(&self) -> Result<()> {
        self.check_concurrently(1)
    }

    /// `n` requests at once with `curl`, failing with the first answer that is not 200 (to
    /// show what went wrong when `wrk` counts errors).
    fn check_concurrently(&self, n: usize) -> Result<()> {
        let children = (0..n)
            .map(|_| {
                let mut command = Command::new("curl");
                command.args(["-sS", "-o", "/dev/stderr", "-w", "%{http_code}"]);
                for header in self.headers {
                    command.arg("-H").arg(header);
                }
                command
                    .arg(self.url)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
            })
            .collect::<std::io::Result<Vec<_>>>()
            .context("running curl")?;
        for child in children {
            let output = child.wait_with_output()?;
            let status = String::from_utf8_lossy(&output.stdout);
            if status != "200" {
                let body = String::from_utf8_lossy(&output.stderr);
                bail!("{} answered {status}: {:.400}", self.url, body);
            }
        }
        Ok(())
    }

    pub fn run(&self) -> Result<Measured> {
        let mut command = Command::new("taskset");
        command.args([
            "-c",
            &self.cpu.to_string(),
            "wrk",
            "-t1",
            &format!("-c{}", self.connections),
            &format!("-d{}s", self.seconds),
            "--latency",
            // A multi-megabyte page at 64 connections takes longer than wrk's default 2 s.
            "--timeout",
            "30s",
        ]);
        for header in self.headers {
            command.arg("-H").arg(header);
        }
        let output = command.arg(self.url).output().context("running wrk")?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "wrk failed: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        parse(&text)
            .map_err(
                |e| match self.check_concurrently(self.connections as usize) {
                    Err(answer) => e.context(answer),
                    Ok(()) => e,
                },
            )
            .with_context(|| format!("wrk's output for {}:\n{text}", self.url))
    }
}

/// Reads `wrk --latency`'s report; fails on any non-2xx answer or socket error, so a figure is
/// never the speed of an error page.
fn parse(text: &str) -> Result<Measured> {
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        bail!("errors under load: {}", line.trim());
    }
    let mut requests = None;
    let mut per_second = None;
    let mut p50 = None;
    let mut p99 = None;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", ..] => requests = n.parse().ok(),
            ["Requests/sec:", n] => per_second = n.parse().ok(),
            ["50%", t] => p50 = Some(millis(t)?),
            ["99%", t] => p99 = Some(millis(t)?),
            _ => {}
        }
    }
    Ok(Measured {
        requests: requests.context("no request count")?,
        per_second: per_second.context("no Requests/sec")?,
        p50_ms: p50.context("no 50%")?,
        p99_ms: p99.context("no 99%")?,
    })
}

/// `wrk`'s durations (`812.00us`, `1.23ms`, `2.01s`) in milliseconds.
fn millis(text: &str) -> Result<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("unknown duration {text}")
    };
    Ok(number.parse::<f64>()? * factor)
}
