//! A private PostgreSQL server for tests, shared by the store's unit tests and the broker's
//! integration tests (which include this file with `#[path]`).
//!
//! Each test process starts its own server the first time a test asks for a database, and
//! stops it when the last [`TestDatabase`] of that process is dropped (a reference count:
//! under `cargo nextest` every test is its own process, under `cargo test` the tests of one
//! binary share a server while any of them runs). The server:
//!
//! - uses the newest `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package), or
//!   `$CM_TEST_PG_BINDIR`;
//! - lives in a private temporary directory — owned by the `postgres` user when the tests run
//!   as root, since `initdb` refuses root — with its data, its log and its socket; the data
//!   directory is a copy of a template cluster that `initdb` makes once per machine (in the
//!   temporary directory, keyed by the binaries and options; remade if it ever fails);
//! - hands its first test the cluster's empty `postgres` database and creates one per further
//!   test (`CREATE DATABASE` costs a checkpoint: most test processes never need one);
//! - listens on 127.0.0.1 on an ephemeral port (never a fixed one), with a password (so tests
//!   exercise URLs holding one) and fsync off;
//! - is run by a small watchdog shell that stops it (`pg_ctl stop -m immediate`) and removes
//!   its directory as soon as its standard input closes: when the guard drops, and equally
//!   when the test process dies without unwinding.
//!
//! A test that needs PostgreSQL **fails** when the server cannot start: it never skips.

#![allow(dead_code)]

use std::{
    io::{BufRead as _, BufReader},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU32, Ordering},
    },
};

use sqlx::{Connection as _, Executor as _, postgres::PgConnectOptions};

/// The superuser's password in every test server (a canary: it must never reach a log).
pub(crate) const PASSWORD: &str = "canary-pg-password-7c1e";
/// The superuser.
const USER: &str = "postgres";

/// One running server; stopped when dropped.
pub(crate) struct Server {
    port: u16,
    /// Whether a test got the cluster's own (empty) `postgres` database already.
    postgres_taken: std::sync::atomic::AtomicBool,
    dir: tempfile::TempDir,
    /// The watchdog's standard input: closing it stops the server.
    stdin: Mutex<Option<ChildStdin>>,
    watchdog: Mutex<Child>,
}

static SERVER: Mutex<Weak<Server>> = Mutex::new(Weak::new());
static DATABASES: AtomicU32 = AtomicU32::new(0);

impl Server {
    /// This process's server, started if none is running.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is not installed or cannot start: the test fails, with the reason.
    pub(crate) fn shared() -> Arc<Server> {
        let mut slot = SERVER.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(Server::start());
        *slot = Arc::downgrade(&server);
        server
    }

    fn start() -> Server {
        let bin = bin_dir();
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("cm-pg-")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        if as_root {
            // initdb refuses to run as root: everything of the server belongs to `postgres`.
            chown_to_postgres(dir.path());
        }
        let data = dir.path().join("data");
        let mut last_log = String::new();
        for fresh_template in [false, true] {
            let template = template(&bin, as_root, fresh_template);
            let _ = std::fs::remove_dir_all(&data);
            // `cp -a` keeps the owner (`postgres`) and the 0700 mode PostgreSQL insists on.
            run(
                Command::new("cp").arg("-a").arg(&template).arg(&data),
                "copying the template cluster",
            );
            // The port is free when picked but could be taken before the server binds it:
            // pick again a few times.
            for _ in 0..3 {
                let port = free_port();
                match launch(as_root, &bin, dir.path(), port) {
                    Ok((watchdog, stdin)) => {
                        return Server {
                            port,
                            postgres_taken: std::sync::atomic::AtomicBool::new(false),
                            dir,
                            stdin: Mutex::new(Some(stdin)),
                            watchdog: Mutex::new(watchdog),
                        };
                    }
                    Err(log) => last_log = log,
                }
            }
        }
        panic!("PostgreSQL did not start; its log:\n{last_log}");
    }

    /// The port it listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server, password included.
    pub(crate) fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Its private directory (data, log, socket).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take());
        let _ = self
            .watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .wait();
    }
}

/// A fresh, empty database on this process's server; the server runs while any exists.
pub(crate) struct TestDatabase {
    server: Arc<Server>,
    name: String,
}

impl TestDatabase {
    /// Creates a database with a name unique to this server.
    ///
    /// # Panics
    ///
    /// When the server cannot start or the database cannot be created.
    pub(crate) async fn create() -> TestDatabase {
        let server = tokio::task::spawn_blocking(Server::shared)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        if !server.postgres_taken.swap(true, Ordering::SeqCst) {
            return TestDatabase {
                server,
                name: "postgres".to_owned(),
            };
        }
        let name = format!("cm_test_{}", DATABASES.fetch_add(1, Ordering::SeqCst));
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(server.port)
            .username(USER)
            .password(PASSWORD)
            .database("postgres");
        let mut admin = sqlx::postgres::PgConnection::connect_with(&options)
            .await
            .expect("connecting to the test server");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("creating a test database");
        admin.close().await.ok();
        TestDatabase { server, name }
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/NAME`.
    pub(crate) fn url_string(&self) -> String {
        self.server.url(&self.name)
    }

    /// The server it lives on.
    pub(crate) fn server(&self) -> &Arc<Server> {
        &self.server
    }
}

/// The newest server binaries: `$CM_TEST_PG_BINDIR`, else what
/// `ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1` finds.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CM_TEST_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/pg_ctl): \
             run scripts/setup.sh, or `apt-get install postgresql`, or set CM_TEST_PG_BINDIR"
        ),
    }
}

/// The options every test cluster is made with.
const INITDB_OPTIONS: [&str; 7] = [
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--no-sync",
    "--no-instructions",
    "--encoding=UTF8",
    "--locale=C",
    // 1 MB WAL segments instead of 16: less to copy for every server.
    "--wal-segsize=1",
];

/// A cluster made by `initdb` once per machine, to copy: `$TMPDIR/connect-medicare-pg-<key>`,
/// the key hashing the binaries, the options and the password. Made in a private directory
/// and renamed into place, so concurrent test processes never see half of one. `fresh`
/// discards the existing one first (a copy of it would not start).
fn template(bin: &Path, as_root: bool, fresh: bool) -> PathBuf {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (bin, INITDB_OPTIONS, USER, PASSWORD, as_root).hash(&mut hasher);
    let root = std::env::temp_dir();
    let template = root.join(format!("connect-medicare-pg-{:016x}", hasher.finish()));
    if fresh {
        let _ = std::fs::remove_dir_all(&template);
    }
    if template.join("PG_VERSION").exists() {
        return template;
    }
    let work = tempfile::Builder::new()
        .prefix("connect-medicare-pg-initdb-")
        .tempdir_in(&root)
        .expect("a temporary directory for initdb");
    let password_file = work.path().join("password");
    std::fs::write(&password_file, PASSWORD).expect("writing the password file");
    if as_root {
        chown_to_postgres(work.path());
    }
    let data = work.path().join("data");
    run(
        server_command(as_root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--pwfile"])
            .arg(&password_file)
            .args(INITDB_OPTIONS),
        "initdb",
    );
    // Losing the race to another process is fine: its template is as good.
    let _ = std::fs::rename(&data, &template);
    assert!(
        template.join("PG_VERSION").exists(),
        "no template cluster at {}",
        template.display()
    );
    template
}

fn chown_to_postgres(path: &Path) {
    run(Command::new("chown").args(["-R", USER]).arg(path), "chown");
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program`, run as `postgres` when we are root.
fn server_command(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// The watchdog: starts the server, says `ready`, waits for its standard input to close,
/// then stops the server and removes the directory. On failure, the server's log.
const WATCHDOG: &str = r#"
bin=$1 dir=$2 port=$3
"$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB" start >/dev/null 2>&1 || exit 1
echo ready
while read -r _; do :; done
"$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$dir/data" "$dir/log"
rmdir "$dir" 2>/dev/null
"#;

fn launch(as_root: bool, bin: &Path, dir: &Path, port: u16) -> Result<(Child, ChildStdin), String> {
    let mut child = server_command(as_root, Path::new("/bin/sh"))
        .args(["-c", WATCHDOG, "watchdog"])
        .arg(bin)
        .arg(dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the PostgreSQL watchdog: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
    if line.trim() == "ready" {
        return Ok((child, stdin));
    }
    drop(stdin);
    let _ = child.wait();
    Err(std::fs::read_to_string(dir.join("log")).unwrap_or_else(|e| format!("(no log: {e})")))
}
