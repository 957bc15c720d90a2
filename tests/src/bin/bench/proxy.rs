//! The proxy part: the same pages read directly from the static upstream, through nginx
//! attaching a token, and through the broker; and the broker's memory under 64 streams.

use anyhow::{Context as _, Result};

use crate::{
    report::{Table, ratio},
    stack::{GZIP_PAGE, HUGE_PAGE, LARGE_PAGE, LOAD_CPU, PATIENT_READ, PROXY_CPU, Stack},
    system::{cpu_seconds, median, status_bytes},
    wrk::{Load, Measured},
};

/// Settings of one part's runs.
#[derive(Debug, Clone, Copy)]
pub struct Runs {
    pub seconds: u32,
    pub repeats: usize,
}

/// The medians of several runs, and the CPU time per request of the process serving them.
struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
}

fn measure(load: &Load<'_>, pid: u32, runs: Runs) -> Result<Figures> {
    load.check()?;
    // One short run first: connections open, caches warm.
    Load {
        seconds: 1,
        ..*load
    }
    .run()?;
    let mut rates = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..runs.repeats {
        let before = cpu_seconds(pid)?;
        let Measured {
            requests,
            per_second,
            p50_ms,
            p99_ms,
        } = load.run()?;
        let used = cpu_seconds(pid)? - before;
        rates.push(per_second);
        p50.push(p50_ms);
        p99.push(p99_ms);
        cpu.push(used * 1e6 / requests as f64);
    }
    Ok(Figures {
        per_second: median(&mut rates),
        p50_ms: median(&mut p50),
        p99_ms: median(&mut p99),
        cpu_us: median(&mut cpu),
    })
}

pub fn proxy(stack: &mut Stack, runs: Runs) -> Result<Table> {
    let sizes = stack.sizes;
    let pages = [
        (
            format!("{:.1} KB Patient read", sizes.patient as f64 / 1024.0),
            PATIENT_READ,
            false,
        ),
        (
            format!(
                "{:.0} KB gzip page ({:.0} KB inflated), passed through",
                sizes.gzip_page as f64 / 1024.0,
                sizes.gzip_page_inflated as f64 / 1024.0
            ),
            GZIP_PAGE,
            true,
        ),
        (
            format!(
                "{:.2} MB identity page",
                sizes.large_page as f64 / 1048576.0
            ),
            LARGE_PAGE,
            false,
        ),
    ];
    let mut table = Table::new(
        "Proxy: req/s and CPU per request through each proxy, against nginx as a token-attaching proxy (static upstream)",
        &[
            "what",
            "through",
            "req/s",
            "req/s / nginx",
            "p50 ms",
            "p99 ms",
            "CPU µs/req",
            "CPU / nginx",
            "CPU / axum + reqwest",
        ],
    );
    let reference_pid = stack.reference_worker()?;
    let upstream_pid = stack.upstream_worker()?;
    for (label, page, gzip) in pages {
        let [direct_url, reference_url, broker_url] = stack.urls(page);
        let (bare_url, uncached_url) = (stack.bare_url(page), stack.uncached_url(page));
        let mut plain = Vec::new();
        if gzip {
            plain.push("Accept-Encoding: gzip".to_owned());
        }
        let mut with_session = stack.broker_headers.clone();
        with_session.extend(plain.iter().cloned());
        let load = |url, headers, cpu| Load {
            url,
            headers,
            connections: 32,
            seconds: runs.seconds,
            cpu,
        };
        // Direct: the upstream on its core, the load on the other. Every proxy runs on the
        // upstream's other core, the load beside the upstream.
        let direct = measure(&load(&direct_url, &plain, PROXY_CPU), upstream_pid, runs)?;
        let reference = measure(&load(&reference_url, &plain, LOAD_CPU), reference_pid, runs)?;
        let bare = measure(&load(&bare_url, &plain, LOAD_CPU), stack.bare.pid(), runs)?;
        let broker = measure(
            &load(&broker_url, &with_session, LOAD_CPU),
            stack.broker.pid(),
            runs,
        )?;
        let uncached = measure(
            &load(&uncached_url, &with_session, LOAD_CPU),
            stack.uncached.pid(),
            runs,
        )?;
        stack.broker.check_alive()?;
        stack.uncached.check_alive()?;
        let rows = [
            ("direct (no proxy; CPU: the upstream's)", &direct),
            ("nginx, one worker (reference)", &reference),
            ("axum + reqwest alone", &bare),
            ("broker (defaults)", &broker),
            (
                "broker, no connection cache (`connection_cache_ms = 0`)",
                &uncached,
            ),
        ];
        for (through, figures) in rows {
            table.row(vec![
                label.clone(),
                through.to_owned(),
                format!("{:.0}", figures.per_second),
                ratio(figures.per_second / reference.per_second),
                format!("{:.2}", figures.p50_ms),
                format!("{:.2}", figures.p99_ms),
                format!("{:.0}", figures.cpu_us),
                ratio(figures.cpu_us / reference.cpu_us),
                ratio(figures.cpu_us / bare.cpu_us),
            ]);
        }
    }
    Ok(table)
}

/// RSS of `pid` idle, its peak while 64 clients each stream `url` for the run, and after.
fn streaming_rss(pid: u32, url: &str, headers: &[String], runs: Runs) -> Result<[f64; 4]> {
    let idle = status_bytes(pid, "VmRSS:")?;
    // Resets the peak (VmHWM) to the current RSS (proc(5), clear_refs "5").
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
    let measured = Load {
        url,
        headers,
        connections: 64,
        seconds: runs.seconds,
        cpu: LOAD_CPU,
    }
    .run()?;
    let peak = status_bytes(pid, "VmHWM:")?;
    let after = status_bytes(pid, "VmRSS:")?;
    let mb = |b: u64| b as f64 / 1048576.0;
    Ok([mb(idle), mb(peak), mb(after), measured.requests as f64])
}

/// RSS of the broker idle, and its peak while 64 clients each stream the largest page; the
/// same for the bare axum + reqwest proxy (`bare.rs`), the floor of the broker's stack.
pub fn memory(stack: &mut Stack, runs: Runs) -> Result<Table> {
    let [_, _, broker_url] = stack.urls(HUGE_PAGE);
    let bare = streaming_rss(stack.bare.pid(), &stack.bare_url(HUGE_PAGE), &[], runs)?;
    let broker = streaming_rss(stack.broker.pid(), &broker_url, &stack.broker_headers, runs)?;
    stack.broker.check_alive()?;
    let mut table = Table::new(
        "Memory: RSS while 64 clients stream a large page each, the broker vs axum + reqwest alone",
        &[
            "what",
            "idle MB",
            "peak MB",
            "peak − idle MB",
            "target",
            "after MB",
            "pages streamed",
        ],
    );
    let what = format!(
        "64 × {:.1} MB identity pages, {} s",
        stack.sizes.huge_page as f64 / 1048576.0,
        runs.seconds
    );
    for (who, [idle, peak, after, pages], target) in [
        ("broker", broker, "≤ 20"),
        ("axum + reqwest alone", bare, "—"),
    ] {
        table.row(vec![
            format!("{who}: {what}"),
            format!("{idle:.1}"),
            format!("{peak:.1}"),
            format!("{:.1}", peak - idle),
            target.to_owned(),
            format!("{after:.1}"),
            format!("{pages:.0}"),
        ]);
    }
    Ok(table)
}

/// Where the broker spends a small read: `perf` samples of the broker while it serves the
/// Patient read, by thread and code (kernel, the broker, libc), and its heaviest symbols.
pub fn profile(stack: &mut Stack, runs: Runs) -> Result<Vec<Table>> {
    let pid = stack.broker.pid();
    let [_, _, url] = stack.urls(PATIENT_READ);
    let data = std::env::temp_dir().join(format!("cm-bench-{pid}.perf"));
    let data_arg = data.display().to_string();
    let seconds = runs.seconds.to_string();
    let mut perf = std::process::Command::new("perf")
        .args([
            "record",
            "-q",
            "-F",
            "2999",
            "-p",
            &pid.to_string(),
            "-o",
            &data_arg,
        ])
        .args(["--", "sleep", &seconds])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("running perf (Debian's linux-perf)")?;
    Load {
        url: &url,
        headers: &stack.broker_headers,
        connections: 32,
        seconds: runs.seconds,
        cpu: LOAD_CPU,
    }
    .run()?;
    perf.wait()?;
    let report = |sort: &str| -> Result<Vec<(f64, String)>> {
        let output = std::process::Command::new("perf")
            .args([
                "report",
                "-i",
                &data_arg,
                "--no-children",
                "--stdio",
                "--sort",
                sort,
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (share, rest) = l.trim().split_once('%')?;
                Some((
                    share.parse().ok()?,
                    rest.split_whitespace().collect::<Vec<_>>().join(" "),
                ))
            })
            .collect())
    };
    let mut by_code = Table::new(
        "Profile: the broker's samples on the Patient read, by thread and code",
        &["share of samples", "thread and code"],
    );
    for (share, what) in report("comm,dso")?.into_iter().take(8) {
        by_code.row(vec![format!("{share:.1}%"), what]);
    }
    let mut by_symbol = Table::new(
        "Profile: the broker's heaviest symbols on the Patient read",
        &["share of samples", "symbol"],
    );
    for (share, what) in report("sym")?.into_iter().take(15) {
        by_symbol.row(vec![format!("{share:.1}%"), format!("`{what}`")]);
    }
    let _ = std::fs::remove_file(&data);
    Ok(vec![by_code, by_symbol])
}
