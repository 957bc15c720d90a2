//! The configuration's unit tests: defaults, every source of every value (file, environment,
//! files they name), every problem reported at once and named by its field, and no secret in
//! any `Debug` output or message.

use std::io::Write as _;

use connect_medicare_protocol::{ProviderKind, SmartConfiguration};

use super::*;
use crate::crypto::KeyId;

const CANARY_SECRET: &str = "canary-client-secret-4f1d";
/// base64 of the 32 bytes `canary-key-bytes-32-long-0123456`.
const CANARY_KEY: &str = "Y2FuYXJ5LWtleS1ieXRlcy0zMi1sb25nLTAxMjM0NTY=";

fn minimal() -> String {
    format!(
        r#"
public_base_url = "http://localhost:8080"
database = "sqlite::memory:"

[[keys]]
id = "k1"
key = "{CANARY_KEY}"

[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "http://127.0.0.1:8123"
client_id = "client-1"
redirect_uri = "http://localhost:8080/callback"
"#
    )
}

fn secret_env<'a>() -> Vec<(&'a str, &'a str)> {
    vec![(
        "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
        CANARY_SECRET,
    )]
}

fn parse_with(text: &str, env: Vec<(&str, &str)>) -> Result<Config> {
    Config::parse(text, Path::new("/etc/cm/broker.toml"), Env::from_pairs(env))
}

fn parse(text: &str) -> Result<Config> {
    parse_with(text, secret_env())
}

fn problems(result: Result<Config>) -> Vec<String> {
    match result {
        Err(Error::InvalidConfig { problems }) => problems,
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(config) => panic!("expected problems, got {config:?}"),
    }
}

fn assert_problem(result: Result<Config>, needle: &str) {
    let found = problems(result);
    assert!(
        found.iter().any(|p| p.contains(needle)),
        "no problem mentions {needle:?}: {found:#?}"
    );
}

#[test]
fn minimal_config_gets_defaults() {
    let config = parse(&minimal()).unwrap();
    assert_eq!(config.listen().to_string(), "127.0.0.1:8080");
    assert_eq!(config.metrics_listen(), None);
    assert_eq!(config.max_connections(), 4_096);
    assert_eq!(config.header_read_timeout(), Duration::from_secs(10));
    assert_eq!(config.public_origin().as_str(), "http://localhost:8080");
    assert_eq!(
        config
            .allowed_origins()
            .iter()
            .map(Origin::as_str)
            .collect::<Vec<_>>(),
        ["http://localhost:8080"]
    );
    assert_eq!(config.database(), &DatabaseConfig::SqliteMemory);
    assert_eq!(config.flow_ttl_seconds(), 600);
    assert_eq!(config.max_pending_flows(), 10_000);
    assert_eq!(config.session_ttl_seconds(), 30 * 24 * 3600);
    assert_eq!(config.refresh_skew_seconds(), 60);
    assert_eq!(config.connection_cache(), Some(Duration::from_millis(250)));
    assert_eq!(config.upstream_timeouts().connect(), Duration::from_secs(5));
    assert_eq!(
        config.upstream_timeouts().request(),
        Duration::from_secs(30)
    );
    assert_eq!(config.key_ring().current_key_id().as_str(), "k1");
    let provider = &config.providers()[0];
    assert_eq!(provider.id().as_str(), "medicare");
    assert_eq!(provider.client_secret().expose_secret(), CANARY_SECRET);
    assert_eq!(provider.kind(), ProviderKind::BlueButton);
    assert_eq!(provider.discovery_url(), None);
    let resolved = provider.resolve(None).unwrap();
    assert_eq!(
        resolved.scopes(),
        resolved.provider().default_scopes(),
        "no scopes configured: the provider's defaults"
    );
    assert!(resolved.authorize_post());
    let info = resolved.info();
    assert_eq!(
        info.authorization_endpoint,
        "http://127.0.0.1:8123/v2/o/authorize/"
    );
    assert_eq!(info.aud.as_str(), "http://127.0.0.1:8123/v2/fhir/");
    assert_eq!(info.eob_types.len(), 8);
    assert!(config.provider(provider.id()).is_some());
}

#[test]
fn sign_in_origins_are_exact_secure_origins_with_a_default_for_the_bb2_sandbox() {
    let origins = |config: &Config| -> Vec<String> {
        config.providers()[0]
            .resolve(None)
            .unwrap()
            .sign_in_origins()
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect()
    };
    // The emulator without the setting: none.
    let config = parse(&minimal()).unwrap();
    assert!(origins(&config).is_empty());
    // Production without it: none, and a warning naming it.
    let production = minimal().replace("http://127.0.0.1:8123", "https://api.bluebutton.cms.gov");
    let config = parse(&production).unwrap();
    assert!(origins(&config).is_empty());
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.contains("sign_in_origins")),
        "{:?}",
        config.warnings()
    );
    // Blue Button's sandbox: Medicare.gov's test login, and no warning.
    let sandbox = minimal().replace(
        "http://127.0.0.1:8123",
        "https://sandbox.bluebutton.cms.gov",
    );
    let config = parse(&sandbox).unwrap();
    assert_eq!(origins(&config), ["https://test.medicare.gov"]);
    assert!(
        !config
            .warnings()
            .iter()
            .any(|w| w.contains("sign_in_origins"))
    );
    // Set: kept as origins (normalised); an explicit empty list means none.
    let set = format!(
        "{}sign_in_origins = [\"HTTP://127.0.0.1:8124\"]\n",
        minimal()
    );
    let config = parse(&set).unwrap();
    assert_eq!(origins(&config), ["http://127.0.0.1:8124"]);
    assert!(
        !config
            .warnings()
            .iter()
            .any(|w| w.contains("sign_in_origins"))
    );
    let none = format!("{sandbox}sign_in_origins = []\n");
    assert!(origins(&parse(&none).unwrap()).is_empty());
    for (bad, needle) in [
        ("\"*\"", "not * or null"),
        ("\"https:\"", "not an absolute"),
        ("\"https://login.example/sso\"", "no path"),
        ("\"http://login.example\"", "must be https"),
        (
            "\"https://a.example\", \"https://A.example\"",
            "listed twice",
        ),
    ] {
        let text = format!("{}sign_in_origins = [{bad}]\n", minimal());
        assert_problem(parse(&text), needle);
    }
}

#[test]
fn debug_shows_no_secret() {
    let config = parse(&minimal()).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains(CANARY_SECRET), "{shown}");
    assert!(!shown.contains(CANARY_KEY), "{shown}");
    assert!(!shown.contains("canary-key-bytes"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    let env = Env::from_pairs(secret_env());
    assert!(!format!("{env:?}").contains(CANARY_SECRET));
}

#[test]
fn errors_show_no_secret() {
    // A syntax error on the secret's own line.
    let text = minimal().replace(
        "client_id = \"client-1\"",
        &format!("client_id = \"client-1\"\nclient_secret = {CANARY_SECRET}"),
    );
    let err = parse_with(&text, vec![]).unwrap_err().to_string();
    assert!(!err.contains(CANARY_SECRET), "{err}");
    assert!(err.starts_with("/etc/cm/broker.toml:"), "{err}");
    // A secret where a number belongs.
    let text = format!("flow_ttl_seconds = \"{CANARY_SECRET}\"\n{}", minimal());
    let err = parse(&text).unwrap_err().to_string();
    assert!(!err.contains(CANARY_SECRET), "{err}");
    assert!(err.contains("broker.toml:1:"), "{err}");
    // A malformed key.
    let text = minimal().replace(CANARY_KEY, "canary-not-a-key");
    let err = parse(&text).unwrap_err().to_string();
    assert!(!err.contains("canary-not-a-key"), "{err}");
    assert!(err.contains("keys[0].key"), "{err}");
    // A postgres URL with a password: a bad option, a bad port, a bad scheme spelling.
    for url in [
        "postgres://cm:canary-db-password@db/cm?sslmode=canary-db-password",
        "postgres://cm:canary-db-password@db:99999/cm",
        "postgres://cm:canary-db-password@/cm",
    ] {
        let text = minimal().replace("sqlite::memory:", url);
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("database"), "{err}");
        assert!(!err.contains("canary-db-password"), "{err}");
    }
    // A valid one: accepted, and neither the config's Debug nor the URL's shows it.
    let text = minimal().replace(
        "sqlite::memory:",
        "postgres://cm:canary-db-password@db:5433/cm?sslmode=require&password=canary-db-password",
    );
    let config = parse(&text).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("canary-db-password"), "{shown}");
    assert!(
        shown.contains(
            "PostgresUrl(\"postgres://cm:[redacted]@db:5433/cm?sslmode=require&password=[redacted]\")"
        ),
        "{shown}"
    );
}

#[test]
fn postgres_urls_are_accepted_and_redacted() {
    for raw in [
        "postgres://cm:pw@db.internal:5432/broker",
        "postgresql://cm@127.0.0.1/broker?sslmode=verify-full",
        "postgres:///broker?host=/run/postgresql",
    ] {
        let text = minimal().replace("sqlite::memory:", raw);
        let config = parse(&text).unwrap_or_else(|e| panic!("{raw}: {e}"));
        let DatabaseConfig::Postgres(url) = config.database() else {
            panic!("{raw}: {:?}", config.database());
        };
        assert_eq!(url.expose_secret(), raw);
        assert_eq!(url, &PostgresUrl::parse(raw).unwrap());
    }
    let url = PostgresUrl::parse("postgres://cm:s3cret@db/broker").unwrap();
    assert_eq!(
        format!("{url:?}"),
        "PostgresUrl(\"postgres://cm:[redacted]@db/broker\")"
    );
    let err = PostgresUrl::parse("mysql://cm:s3cret@db/broker").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
    // From the environment too.
    let config = parse_with(
        &minimal(),
        vec![
            ("CM_BROKER_DATABASE", "postgres://cm:s3cret@db/broker"),
            ("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET", "x"),
        ],
    )
    .unwrap();
    assert!(matches!(config.database(), DatabaseConfig::Postgres(_)));
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn unknown_fields_are_refused() {
    let err = parse(&format!("lisen = \"0.0.0.0:1\"\n{}", minimal())).unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
    let err = parse(&minimal().replace("kind = ", "colour = \"red\"\nkind = ")).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    let err = parse(&format!("{}\n[upstream]\ntimeout = 3\n", minimal())).unwrap_err();
    assert!(err.to_string().contains("timeout"), "{err}");
}

#[test]
fn missing_secret_is_named() {
    assert_problem(parse_with(&minimal(), vec![]), "providers[0].client_secret");
    assert_problem(
        parse_with(&minimal(), vec![]),
        "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET",
    );
}

#[test]
fn secret_from_file_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("secret");
    let mut file = std::fs::File::create(&secret_path).unwrap();
    writeln!(file, "from-file-secret").unwrap();
    let config_path = dir.path().join("broker.toml");
    let text = minimal().replace(
        "client_id = \"client-1\"",
        "client_id = \"client-1\"\nclient_secret_file = \"secret\"",
    );
    // Relative to the config file's directory; trailing newline dropped.
    let config = Config::parse(&text, &config_path, Env::empty()).unwrap();
    assert_eq!(
        config.providers()[0].client_secret().expose_secret(),
        "from-file-secret"
    );
    // The environment wins over the file.
    let config = Config::parse(&text, &config_path, Env::from_pairs(secret_env())).unwrap();
    assert_eq!(
        config.providers()[0].client_secret().expose_secret(),
        CANARY_SECRET
    );
    // Or a file named by the environment.
    let config = Config::parse(
        &minimal(),
        &config_path,
        Env::from_pairs([(
            "CM_BROKER_PROVIDERS__MEDICARE__CLIENT_SECRET_FILE",
            secret_path.to_str().unwrap(),
        )]),
    )
    .unwrap();
    assert_eq!(
        config.providers()[0].client_secret().expose_secret(),
        "from-file-secret"
    );
    // A missing file is named.
    let text = text.replace("\"secret\"", "\"missing\"");
    let err = Config::parse(&text, &config_path, Env::empty()).unwrap_err();
    assert!(err.to_string().contains("client_secret_file"), "{err}");
    // Both in the file: refused.
    let both = minimal().replace(
        "client_id = \"client-1\"",
        "client_id = \"client-1\"\nclient_secret = \"x\"\nclient_secret_file = \"secret\"",
    );
    assert_problem(Config::parse(&both, &config_path, Env::empty()), "not both");
}

#[test]
fn inline_secret_is_a_warning() {
    let text = minimal().replace(
        "client_id = \"client-1\"",
        "client_id = \"client-1\"\nclient_secret = \"inline\"",
    );
    let config = parse_with(&text, vec![]).unwrap();
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.contains("providers[0].client_secret"))
    );
}

#[test]
fn connection_limits_and_the_metrics_listener() {
    let text = format!(
        "metrics_listen = \"127.0.0.1:9090\"\nmax_connections = 100\n\
         header_read_timeout_seconds = 3\n{}",
        minimal()
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.metrics_listen(),
        Some("127.0.0.1:9090".parse().unwrap())
    );
    assert_eq!(config.max_connections(), 100);
    assert_eq!(config.header_read_timeout(), Duration::from_secs(3));
    let mut env = secret_env();
    env.push(("CM_BROKER_METRICS_LISTEN", "127.0.0.1:9191"));
    env.push(("CM_BROKER_MAX_CONNECTIONS", "64"));
    let config = parse_with(&minimal(), env).unwrap();
    assert_eq!(
        config.metrics_listen(),
        Some("127.0.0.1:9191".parse().unwrap())
    );
    assert_eq!(config.max_connections(), 64);

    assert_problem(
        parse(&format!("metrics_listen = \"localhost\"\n{}", minimal())),
        "metrics_listen: must be IP:port",
    );
    assert_problem(
        parse(&format!(
            "listen = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\"\n{}",
            minimal()
        )),
        "metrics_listen: must differ from listen",
    );
    assert_problem(
        parse(&format!("max_connections = 0\n{}", minimal())),
        "max_connections: must be between",
    );
    assert_problem(
        parse(&format!("header_read_timeout_seconds = 0\n{}", minimal())),
        "header_read_timeout_seconds: must be between",
    );
}

#[test]
fn env_overrides() {
    let mut env = secret_env();
    env.extend([
        ("CM_BROKER_LISTEN", "0.0.0.0:9000"),
        ("CM_BROKER_PUBLIC_BASE_URL", "https://app.example.com/cm"),
        (
            "CM_BROKER_ALLOWED_ORIGINS",
            "https://app.example.com, https://admin.example.com",
        ),
        ("CM_BROKER_DATABASE", "sqlite://relative.db"),
        ("CM_BROKER_FLOW_TTL_SECONDS", "300"),
        ("CM_BROKER_MAX_PENDING_FLOWS", "5"),
        ("CM_BROKER_SESSION_TTL_SECONDS", "3600"),
        ("CM_BROKER_REFRESH_SKEW_SECONDS", "0"),
        ("CM_BROKER_CONNECTION_CACHE_MS", "0"),
        ("CM_BROKER_UPSTREAM__CONNECT_TIMEOUT_SECONDS", "2"),
        ("CM_BROKER_UPSTREAM__REQUEST_TIMEOUT_SECONDS", "9"),
        ("CM_BROKER_PROVIDERS__MEDICARE__CLIENT_ID", "client-2"),
        ("CM_BROKER_CONFIG", "ignored"),
        ("CM_BROKER_LOG", "debug"),
        ("OTHER_VARIABLE", "ignored"),
    ]);
    let text = minimal().replace(
        "http://localhost:8080/callback",
        "https://app.example.com/callback",
    );
    let config = parse_with(&text, env).unwrap();
    assert_eq!(config.listen().to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.public_base_url().as_str(),
        "https://app.example.com/cm"
    );
    assert_eq!(config.allowed_origins().len(), 2);
    // Relative to the working directory when it comes from the environment.
    assert_eq!(
        config.database(),
        &DatabaseConfig::SqliteFile(PathBuf::from("relative.db"))
    );
    assert_eq!(config.flow_ttl_seconds(), 300);
    assert_eq!(config.max_pending_flows(), 5);
    assert_eq!(config.session_ttl_seconds(), 3600);
    assert_eq!(config.refresh_skew_seconds(), 0);
    assert_eq!(config.connection_cache(), None, "0 keeps nothing");
    assert_eq!(config.upstream_timeouts().connect(), Duration::from_secs(2));
    assert_eq!(config.upstream_timeouts().request(), Duration::from_secs(9));
    assert_eq!(config.providers()[0].client_id().as_str(), "client-2");
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn env_mistakes_are_refused() {
    let mut env = secret_env();
    env.push(("CM_BROKER_LISTN", "0.0.0.0:1"));
    assert_problem(parse_with(&minimal(), env), "CM_BROKER_LISTN: unknown");
    let mut env = secret_env();
    env.push(("CM_BROKER_PROVIDERS__EPIC__CLIENT_SECRET", "x"));
    assert_problem(parse_with(&minimal(), env), "no provider with this id");
    let mut env = secret_env();
    env.push(("CM_BROKER_FLOW_TTL_SECONDS", "ten"));
    assert_problem(parse_with(&minimal(), env), "whole number");
}

#[test]
fn relative_paths_follow_the_config_file() {
    let text = minimal().replace("sqlite::memory:", "sqlite://data/broker.db");
    let config = parse(&text).unwrap();
    assert_eq!(
        config.database(),
        &DatabaseConfig::SqliteFile(PathBuf::from("/etc/cm/data/broker.db"))
    );
    let text = minimal().replace("sqlite::memory:", "/var/lib/cm.db");
    let config = parse(&text).unwrap();
    assert_eq!(
        config.database(),
        &DatabaseConfig::SqliteFile(PathBuf::from("/var/lib/cm.db"))
    );
    assert_problem(
        parse(&minimal().replace("sqlite::memory:", "mysql://x")),
        "database",
    );
}

#[test]
fn key_ring_sources() {
    // CM_BROKER_KEYS replaces the file's keys; the last key seals.
    let other = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let keys = format!("old:{CANARY_KEY}, new:{other}");
    let mut env = secret_env();
    env.push(("CM_BROKER_KEYS", &keys));
    let config = parse_with(&minimal(), env).unwrap();
    let ids: Vec<_> = config.key_ring().key_ids().map(KeyId::as_str).collect();
    assert_eq!(ids, ["old", "new"]);
    assert_eq!(config.key_ring().current_key_id().as_str(), "new");

    // A keys file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keys.toml"),
        format!("[[keys]]\nid = \"f1\"\nkey = \"{other}\"\n"),
    )
    .unwrap();
    let no_keys = minimal().replace(
        &format!("[[keys]]\nid = \"k1\"\nkey = \"{CANARY_KEY}\"\n"),
        "",
    );
    let text = format!("keys_file = \"keys.toml\"\n{no_keys}");
    let config = Config::parse(
        &text,
        &dir.path().join("broker.toml"),
        Env::from_pairs(secret_env()),
    )
    .unwrap();
    assert_eq!(config.key_ring().current_key_id().as_str(), "f1");
}

#[test]
fn key_ring_problems() {
    let no_keys = minimal().replace(
        &format!("[[keys]]\nid = \"k1\"\nkey = \"{CANARY_KEY}\"\n"),
        "",
    );
    assert_problem(parse(&no_keys), "gen-key");
    let short = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 16]);
    assert_problem(
        parse(&minimal().replace(CANARY_KEY, &short)),
        "keys[0].key: invalid encryption key: key must decode to exactly 32 bytes",
    );
    let dup = minimal().replace(
        "[[providers]]",
        &format!("[[keys]]\nid = \"k1\"\nkey = \"{CANARY_KEY}\"\n\n[[providers]]"),
    );
    assert_problem(parse(&dup), "keys[1].id: \"k1\" is used twice");
    assert_problem(
        parse(&minimal().replace("id = \"k1\"", "id = \"a.b\"")),
        "keys[0].id",
    );
    let mut env = secret_env();
    env.push(("CM_BROKER_KEYS", "no-colon"));
    assert_problem(parse_with(&minimal(), env), "CM_BROKER_KEYS[0]");
}

#[test]
fn provider_problems_name_their_field() {
    let dup = format!(
        "{}\n{}",
        minimal(),
        minimal()
            .split_once("[[providers]]")
            .map(|(_, p)| format!("[[providers]]{p}"))
            .unwrap()
    );
    assert_problem(parse(&dup), "providers[1].id: \"medicare\" is used twice");
    assert_problem(
        parse(&minimal().replace("id = \"medicare\"", "id = \"Medicare\"")),
        "providers[0].id",
    );
    assert_problem(
        parse(&minimal().replace(
            "http://localhost:8080/callback",
            "http://localhost:9999/callback",
        )),
        "providers[0].redirect_uri: http://localhost:9999/callback must be on the app's origin",
    );
    assert_problem(
        parse(&minimal().replace(
            "http://localhost:8080/callback",
            "http://example.com/callback",
        )),
        "providers[0].redirect_uri: invalid redirect_uri",
    );
    assert_problem(
        parse(&minimal().replace("http://127.0.0.1:8123", "http://bluebutton.example.com")),
        "providers[0].base_url",
    );
    assert_problem(
        parse(&minimal().replace(
            "kind = \"blue_button\"",
            "kind = \"blue_button\"\nscopes = \"openid offline_access\"",
        )),
        "providers.medicare.scopes: scope \"offline_access\" is not supported",
    );
    assert_problem(
        parse(&minimal().replace(
            "kind = \"blue_button\"",
            "kind = \"blue_button\"\nscopes = \"patient/Patient.sr\"",
        )),
        "providers[0].scopes",
    );
    assert_problem(
        parse(&minimal().replace("kind = \"blue_button\"", "kind = \"smart\"")),
        "providers[0].fhir_base_url: required",
    );
    assert_problem(
        parse(&minimal().replace("client_id = \"client-1\"\n", "")),
        "providers[0].client_id: required",
    );
    let no_providers = minimal().split_once("[[providers]]").unwrap().0.to_owned();
    assert_problem(parse(&no_providers), "providers: at least one");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = minimal()
        .replace("http://localhost:8080\"", "http://app.example.com\"")
        .replace("sqlite::memory:", "postgres://x:99999")
        .replace("id = \"medicare\"", "id = \"Medicare\"");
    let found = problems(parse(&text));
    for needle in ["public_base_url", "database", "providers[0].id"] {
        assert!(found.iter().any(|p| p.starts_with(needle)), "{found:#?}");
    }
}

#[test]
fn public_base_url_and_origins() {
    assert_problem(
        parse(&minimal().replace("http://localhost:8080\"", "http://app.example.com\"")),
        "public_base_url: http://app.example.com is not a secure context",
    );
    assert_problem(
        parse(&format!(
            "allowed_origins = [\"http://localhost:8080/\"]\n{}",
            minimal()
        )),
        "allowed_origins[0]: an origin has no path",
    );
    assert_problem(
        parse(&format!("allowed_origins = [\"*\"]\n{}", minimal())),
        "allowed_origins[0]",
    );
    assert_problem(
        parse(&format!("allowed_origins = []\n{}", minimal())),
        "allowed_origins: must not be empty",
    );
    assert_problem(
        parse(&format!("listen = \"localhost:80\"\n{}", minimal())),
        "listen",
    );
    // A redirect URI on an allowed origin (a sibling-subdomain broker) is accepted.
    let text = format!(
        "allowed_origins = [\"https://app.example.com\"]\n{}",
        minimal()
            .replace("http://localhost:8080\"", "https://cm.example.com\"")
            .replace(
                "http://localhost:8080/callback",
                "https://app.example.com/callback"
            )
    );
    let config = parse(&text).unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn cross_site_broker_is_a_warning() {
    // The demo's shape: app and broker on localhost ports — same-site, no warning
    // beyond plain http.
    let config = parse(&format!(
        "allowed_origins = [\"http://localhost:5173\", \"http://localhost:8080\"]\n{}",
        minimal()
    ))
    .unwrap();
    assert!(
        !config.warnings().iter().any(|w| w.contains("cross-site")),
        "{:?}",
        config.warnings()
    );
    assert!(config.warnings().iter().any(|w| w.contains("plain http")));

    let config = parse(&format!(
        "allowed_origins = [\"http://localhost:8080\", \"http://127.0.0.1:5173\"]\n{}",
        minimal()
    ))
    .unwrap();
    let cross: Vec<_> = config
        .warnings()
        .iter()
        .filter(|w| w.contains("the broker is cross-site to the app"))
        .collect();
    assert_eq!(cross.len(), 1, "{:?}", config.warnings());
    assert!(cross[0].contains("http://127.0.0.1:5173"));

    let config = parse_with(
        &minimal().replace(
            "http://localhost:8080/callback",
            "https://app.example.org/callback",
        ),
        {
            let mut env = secret_env();
            env.extend([
                ("CM_BROKER_PUBLIC_BASE_URL", "https://broker.example.com"),
                ("CM_BROKER_ALLOWED_ORIGINS", "https://app.example.org"),
            ]);
            env
        },
    )
    .unwrap();
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.contains("cross-site") && w.contains("https://app.example.org"))
    );
}

#[test]
fn bounds_are_checked() {
    for (field, value) in [
        ("flow_ttl_seconds", "0"),
        ("session_ttl_seconds", "1"),
        ("refresh_skew_seconds", "999999"),
        ("connection_cache_ms", "5001"),
        ("max_pending_flows", "0"),
    ] {
        assert_problem(
            parse(&format!("{field} = {value}\n{}", minimal())),
            &format!("{field}: must be between"),
        );
    }
}

fn smart_config() -> SmartConfiguration {
    serde_json::from_str(
        r#"{
            "issuer": "https://ehr.example.com",
            "authorization_endpoint": "https://ehr.example.com/authorize",
            "token_endpoint": "https://ehr.example.com/token",
            "revocation_endpoint": "https://ehr.example.com/revoke",
            "scopes_supported": ["openid", "fhirUser", "launch/patient",
                "patient/Patient.rs", "patient/Coverage.rs", "offline_access"],
            "response_types_supported": ["code"],
            "capabilities": ["launch-standalone", "permission-v2"],
            "code_challenge_methods_supported": ["S256"]
        }"#,
    )
    .unwrap()
}

fn smart_text(extra: &str) -> String {
    format!(
        "{}\n[[providers]]\nid = \"ehr\"\nname = \"Example EHR\"\nkind = \"smart\"\n\
         fhir_base_url = \"https://ehr.example.com/fhir/r4\"\nclient_id = \"c\"\n\
         client_secret = \"s\"\nredirect_uri = \"http://localhost:8080/callback\"\n{extra}",
        minimal()
    )
}

#[test]
fn smart_providers_resolve_from_discovery() {
    let config = parse(&smart_text("")).unwrap();
    let ehr = &config.providers()[1];
    assert_eq!(ehr.kind(), ProviderKind::Smart);
    assert_eq!(
        ehr.discovery_url().as_deref(),
        Some("https://ehr.example.com/fhir/r4/.well-known/smart-configuration")
    );
    assert!(ehr.resolve(None).is_err());
    let resolved = ehr.resolve(Some(&smart_config())).unwrap();
    assert_eq!(
        resolved.scopes().to_string(),
        "openid fhirUser launch/patient patient/Patient.rs patient/Coverage.rs offline_access"
    );
    assert!(!resolved.authorize_post());
    assert_eq!(
        resolved.info().aud.as_str(),
        "https://ehr.example.com/fhir/r4"
    );
    // Blue Button takes no discovery document.
    assert!(
        config.providers()[0]
            .resolve(Some(&smart_config()))
            .is_err()
    );

    let config = parse(&smart_text("scopes = \"openid patient/Observation.rs\"")).unwrap();
    let err = config.providers()[1]
        .resolve(Some(&smart_config()))
        .unwrap_err();
    assert!(err.to_string().contains("providers.ehr.scopes"), "{err}");

    let config = parse(&smart_text("authorize_post = true")).unwrap();
    let err = config.providers()[1]
        .resolve(Some(&smart_config()))
        .unwrap_err();
    assert!(err.to_string().contains("authorize_post"), "{err}");
}

#[test]
fn pacing_is_per_provider_with_defaults_at_the_upstream_limit() {
    let config = parse(&smart_text("")).unwrap();
    let medicare = config.providers()[0].resolve(None).unwrap();
    let ehr = config.providers()[1]
        .resolve(Some(&smart_config()))
        .unwrap();
    assert_eq!(
        medicare.requests_per_second(),
        9,
        "just under Blue Button's limit of 10"
    );
    assert_eq!(ehr.requests_per_second(), 20);
    let config = parse(&smart_text("requests_per_second = 0")).unwrap();
    let ehr = config.providers()[1]
        .resolve(Some(&smart_config()))
        .unwrap();
    assert_eq!(ehr.requests_per_second(), 0, "no pacing");
    assert_problem(
        parse(&smart_text("requests_per_second = 5000")),
        "providers[1].requests_per_second: must be 0 (no pacing) to 1000",
    );
}

#[test]
fn read_and_search_allow_lists_are_checked_and_ask_for_their_scopes() {
    let config = parse(&smart_text(
        "read = [\"Patient\", \"Coverage\"]\nsearch = [\"Coverage\"]",
    ))
    .unwrap();
    let ehr = &config.providers()[1];
    let lists = ehr.resolve(Some(&smart_config())).unwrap();
    assert_eq!(
        lists.scopes().to_string(),
        "openid fhirUser launch/patient offline_access patient/Patient.r patient/Coverage.rs"
    );
    // A server that lists only SMART v1 scopes is asked in its own spelling.
    let mut v1 = smart_config();
    v1.scopes_supported = vec![
        "openid".into(),
        "launch/patient".into(),
        "patient/*.read".into(),
        "offline_access".into(),
    ];
    let in_v1 = ehr.resolve(Some(&v1)).unwrap();
    assert_eq!(
        in_v1.scopes().to_string(),
        "openid launch/patient offline_access patient/Patient.read patient/Coverage.read"
    );
    let read: Vec<&str> = lists
        .resources()
        .configured(Access::Read)
        .unwrap()
        .iter()
        .map(|t| t.name())
        .collect();
    assert_eq!(read, ["Patient", "Coverage"]);
    assert!(
        config.providers()[0]
            .resources
            .configured(Access::Read)
            .is_none()
    );
    // A list naming what the server does not support fails as configured scopes do.
    let config = parse(&smart_text("search = [\"Observation\"]")).unwrap();
    let err = config.providers()[1]
        .resolve(Some(&smart_config()))
        .unwrap_err();
    assert!(err.to_string().contains("patient/Observation.s"), "{err}");
    // Every problem at once, each naming its field.
    let text = format!(
        "{}\nread = [\"Observation\"]\n{}",
        minimal().trim_end(),
        "\n[[providers]]\nid = \"ehr\"\nname = \"E\"\nkind = \"smart\"\n\
         fhir_base_url = \"https://ehr.example.com/fhir\"\nclient_id = \"c\"\n\
         client_secret = \"s\"\nredirect_uri = \"http://localhost:8080/callback\"\n\
         read = [\"Binary\", \"observation\"]\n\
         search = [\"Medication\", \"Condition\", \"Condition\"]\n"
    );
    let found = problems(parse(&text));
    for needle in [
        "providers[0].read: Blue Button serves only Patient, Coverage, ExplanationOfBenefit; not \"Observation\"",
        "providers[1].read: \"Binary\" is not a type the broker can keep to one patient",
        "providers[1].read: \"observation\" is not a type",
        "providers[1].search: Medication is outside the patient compartment",
        "providers[1].search: lists Condition twice",
    ] {
        assert!(
            found.iter().any(|p| p.contains(needle)),
            "{needle} in {found:#?}"
        );
    }
}

#[test]
fn example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("broker.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::parse(&text, &path, Env::from_pairs(secret_env())).unwrap();
    assert_eq!(config.providers().len(), 1);
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.contains("the example key")),
        "{:?}",
        config.warnings()
    );

    // Every commented-out setting parses too, once uncommented, and the paths it names
    // exist (keys_file names a deployment path, /etc/...: left out).
    let (before, smart) = text.split_once("# --- SMART provider example ---").unwrap();
    let settings: String = before
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(setting)
                if setting.contains(" = ")
                    && setting.starts_with(|c: char| c.is_ascii_lowercase())
                    && !setting.starts_with("keys_file") =>
            {
                setting
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = Config::parse(&settings, &path, Env::from_pairs(secret_env())).unwrap();
    let static_dir = config.static_dir().expect("static_dir is uncommented");
    assert!(static_dir.join("index.html").is_file(), "{static_dir:?}");
    assert!(config.metrics_listen().is_some());

    // The commented-out SMART provider parses too, once uncommented.
    let uncommented: String = smart
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let mut env = secret_env();
    env.push(("CM_BROKER_PROVIDERS__EPIC_SANDBOX__CLIENT_SECRET", "s"));
    let config = Config::parse(
        &format!("{before}{uncommented}"),
        &path,
        Env::from_pairs(env),
    )
    .unwrap();
    assert_eq!(config.providers().len(), 2);
    assert_eq!(config.providers()[1].kind(), ProviderKind::Smart);
}
