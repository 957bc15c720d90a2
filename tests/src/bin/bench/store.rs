//! The store part: a session lookup — the one statement every proxied read makes — with
//! 100,000 sessions in SQLite and in PostgreSQL, at one client, beside a plain point read of a
//! 100,000-row table through the same driver and database, measured in the same run.

use std::{sync::Arc, time::Instant};

use anyhow::Result;
use connect_medicare_broker::{PgStore, PostgresUrl, SessionHash, SqliteStore, Store};
use connect_medicare_protocol::{Timestamp, contract::ProviderId};

use crate::{
    report::{Table, ratio},
    system::median,
};

#[path = "../../../../broker/src/store/test_postgres.rs"]
#[allow(unreachable_pub, clippy::print_stdout)]
mod test_postgres;

/// A session hash from a number (any 32 bytes do).
fn hash(n: usize) -> SessionHash {
    SessionHash::from_hex(&format!("{n:064x}")).expect("64 hex digits")
}

/// Percentiles (50, 99) of `samples`, in microseconds.
fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    (median(samples), p99)
}

/// Random indices below `n`, the same in every run.
fn picks(n: usize, count: usize) -> Vec<usize> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..count)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        })
        .collect()
}

async fn fill(store: &Arc<dyn Store>, sessions: usize, writers: usize) -> Result<()> {
    let now = Timestamp::from_unix_seconds(1_800_000_000);
    let expires = Timestamp::from_unix_seconds(1_900_000_000);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in (w..sessions).step_by(writers) {
                store.create_session(&hash(n), None, now, expires).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Lookup times (µs) of the store's session-and-connection lookup.
async fn lookups(store: &Arc<dyn Store>, sessions: usize, count: usize) -> Result<Vec<f64>> {
    let now = Timestamp::from_unix_seconds(1_800_000_100);
    let provider = ProviderId::new("medicare")?;
    let mut out = Vec::with_capacity(count);
    for n in picks(sessions, count) {
        let started = Instant::now();
        let found = store
            .get_session_connection(&hash(n), &provider, now)
            .await?;
        out.push(started.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(found.is_some(), "session {n} not found");
    }
    Ok(out)
}

/// A plain table of `rows` points in the same database, read by primary key through the same
/// driver: the floor a session lookup is compared with.
macro_rules! point_reads {
    ($pool:expr, $rows:expr, $count:expr) => {{
        let pool = $pool;
        sqlx::query("CREATE TABLE bench_points (id TEXT PRIMARY KEY, value BIGINT NOT NULL)")
            .execute(&pool)
            .await?;
        for chunk in (0..$rows).collect::<Vec<usize>>().chunks(500) {
            let mut tx = pool.begin().await?;
            for n in chunk {
                sqlx::query("INSERT INTO bench_points (id, value) VALUES ($1, $2)")
                    .bind(format!("{n:064x}"))
                    .bind(*n as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        let mut out = Vec::with_capacity($count);
        for n in picks($rows, $count) {
            let started = Instant::now();
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT value FROM bench_points WHERE id = $1")
                    .bind(format!("{n:064x}"))
                    .fetch_optional(&pool)
                    .await?;
            out.push(started.elapsed().as_secs_f64() * 1e6);
            anyhow::ensure!(row.is_some(), "point {n} not found");
        }
        pool.close().await;
        out
    }};
}

pub async fn store(sessions: usize, count: usize) -> Result<Table> {
    let mut table = Table::new(
        &format!(
            "Store: session lookup at one client with {sessions} sessions, vs a plain point read of a {sessions}-row table (same driver and database)"
        ),
        &[
            "store",
            "lookup p50 µs",
            "lookup p99 µs",
            "point read p50 µs",
            "point read p99 µs",
            "p99 / point read p99",
        ],
    );

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("broker.db");
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    fill(&sqlite, sessions, 1).await?;
    let mut ours = lookups(&sqlite, sessions, count).await?;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("points.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let mut plain = point_reads!(
        sqlx::SqlitePool::connect_with(options).await?,
        sessions,
        count
    );
    table.row(row("SQLite (one file, WAL)", &mut ours, &mut plain));

    let database = test_postgres::TestDatabase::create().await;
    let url = database.url_string();
    let pg: Arc<dyn Store> = Arc::new(PgStore::connect(&PostgresUrl::parse(&url)?).await?);
    fill(&pg, sessions, 8).await?;
    let mut ours = lookups(&pg, sessions, count).await?;
    let mut plain = point_reads!(sqlx::PgPool::connect(&url).await?, sessions, count);
    table.row(row("PostgreSQL (loopback)", &mut ours, &mut plain));
    Ok(table)
}

fn row(name: &str, ours: &mut [f64], plain: &mut [f64]) -> Vec<String> {
    let (p50, p99) = percentiles(ours);
    let (plain50, plain99) = percentiles(plain);
    vec![
        name.to_owned(),
        format!("{p50:.0}"),
        format!("{p99:.0}"),
        format!("{plain50:.0}"),
        format!("{plain99:.0}"),
        ratio(p99 / plain99),
    ]
}
