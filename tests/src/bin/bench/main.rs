//! `cm-bench`: the benchmark behind `scripts/bench.sh` (see `BENCHMARKS.md`). It prints one
//! Markdown table per part, every figure beside its reference measured in the same run.
//!
//! ```text
//! cm-bench <broker binary> [proxy] [memory] [paging] [store] [profile]
//! cm-bench bare-proxy <port> <upstream origin>    (started by the proxy part, see bare.rs)
//! ```
//!
//! `CM_BENCH_SECONDS` (default 5) is the length of each load run, `CM_BENCH_REPEATS` (default
//! 3) how many runs a median is taken of. Linux only: it pins processes with `taskset` and
//! reads `/proc`.

#![allow(clippy::print_stdout, missing_docs, unreachable_pub)]

mod bare;
mod paging;
mod proxy;
mod report;
mod stack;
mod store;
mod system;
mod wrk;

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::proxy::Runs;

fn env_number(name: &str, default: u32) -> Result<u32> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name} must be a whole number")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let first = args
        .next()
        .context("usage: cm-bench <broker binary> [parts]")?;
    if first == "bare-proxy" {
        let (Some(port), Some(upstream)) = (args.next(), args.next()) else {
            anyhow::bail!("usage: cm-bench bare-proxy <port> <upstream origin>");
        };
        return bare::serve(port.parse()?, upstream).await;
    }
    let broker = PathBuf::from(first);
    let mut parts: Vec<String> = args.collect();
    if parts.is_empty() {
        parts = ["proxy", "memory", "profile", "store", "paging"]
            .map(str::to_owned)
            .to_vec();
    }
    let runs = Runs {
        seconds: env_number("CM_BENCH_SECONDS", 5)?,
        repeats: env_number("CM_BENCH_REPEATS", 3)? as usize,
    };
    let wants = |part: &str| parts.iter().any(|p| p == part);
    if wants("proxy") || wants("memory") || wants("profile") {
        let mut stack = stack::Stack::start(&broker).await?;
        let stack = &mut stack;
        // The load runs block this thread; the emulator (sign-in only) is idle meanwhile.
        let mut tables = Vec::new();
        if wants("proxy") {
            tables.push(tokio::task::block_in_place(|| proxy::proxy(stack, runs))?);
        }
        if wants("memory") {
            tables.push(tokio::task::block_in_place(|| proxy::memory(stack, runs))?);
        }
        if wants("profile") {
            tables.extend(tokio::task::block_in_place(|| proxy::profile(stack, runs))?);
        }
        for table in tables {
            println!("{}", table.markdown());
        }
    }
    if wants("store") {
        println!("{}", store::store(100_000, 5_000).await?.markdown());
    }
    if wants("paging") {
        println!("{}", paging::paging(&broker, runs.repeats).await?);
    }
    Ok(())
}
