//! Reading rows back, the same way for every SQL store: every value is re-validated, and a
//! value that no longer parses is [`Error::Corrupt`]. Both SQL schemas use the same column
//! names and the same encodings (hex hashes, unix seconds, raw ciphertext bytes).

use connect_medicare_protocol::{
    PatientId, PkceChallenge, RedirectUri, Scopes, Timestamp,
    contract::{ConnectionStatus, ProviderId},
};
use sqlx::Row as _;

use super::{ConnectionRecord, FlowRecord, FlowStatus, PendingRevocation, SessionRecord};
use crate::{
    crypto::{Ciphertext, TokenKind},
    error::{Error, Result},
    ids::{FlowCookieHash, FlowKey, ProofHash, SessionHash},
};

pub(super) const FLOW_COLUMNS: &str = "key, provider, code_challenge, redirect_uri, \
                                       cookie_hash, created_at, expires_at, status, session_hash";
pub(super) const CONNECTION_COLUMNS: &str = "session_hash, provider, patient, scopes, \
     demographics_shared, grant_expires_at, access_token_ct, refresh_token_ct, \
     access_expires_at, generation, status, updated_at";
/// A session (by the hash of a cookie id: `$1`, valid at `$2`) with its connection to the
/// provider `$3` if it has one, in one statement
/// ([`get_session_connection`](super::SessionStore::get_session_connection)). The connection's columns are NULL without one.
pub(super) static SESSION_CONNECTION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        let connection: Vec<String> = CONNECTION_COLUMNS
            .split(',')
            .map(|column| format!("k.{}", column.trim()))
            .collect();
        format!(
            "SELECT s.hash, s.created_at, s.last_seen_at, s.expires_at, s.proof_hash, {} \
         FROM session_cookies c JOIN sessions s ON s.hash = c.session_hash \
         LEFT JOIN connections k ON k.session_hash = s.hash AND k.provider = $3 \
         WHERE c.cookie_hash = $1 AND s.expires_at > $2 \
         AND (c.valid_until IS NULL OR c.valid_until > $2)",
            connection.join(", ")
        )
    });
pub(super) const REVOCATION_COLUMNS: &str =
    "id, session_hash, provider, token_kind, token_ct, attempts, next_attempt_at, created_at";

/// The typed reads a row decoder needs, for each database's row type.
pub(super) trait Columns {
    fn text(&self, column: &'static str) -> Result<String>;
    fn opt_text(&self, column: &'static str) -> Result<Option<String>>;
    fn int(&self, column: &'static str) -> Result<i64>;
    fn opt_int(&self, column: &'static str) -> Result<Option<i64>>;
    fn bytes(&self, column: &'static str) -> Result<Vec<u8>>;
    fn opt_bytes(&self, column: &'static str) -> Result<Option<Vec<u8>>>;
    fn boolean(&self, column: &'static str) -> Result<bool>;
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &'static str) -> Result<String> {
                Ok(self.try_get(column)?)
            }
            fn opt_text(&self, column: &'static str) -> Result<Option<String>> {
                Ok(self.try_get(column)?)
            }
            fn int(&self, column: &'static str) -> Result<i64> {
                Ok(self.try_get(column)?)
            }
            fn opt_int(&self, column: &'static str) -> Result<Option<i64>> {
                Ok(self.try_get(column)?)
            }
            fn bytes(&self, column: &'static str) -> Result<Vec<u8>> {
                Ok(self.try_get(column)?)
            }
            fn opt_bytes(&self, column: &'static str) -> Result<Option<Vec<u8>>> {
                Ok(self.try_get(column)?)
            }
            fn boolean(&self, column: &'static str) -> Result<bool> {
                Ok(self.try_get(column)?)
            }
        }
    };
}

columns_for!(sqlx::sqlite::SqliteRow);
columns_for!(sqlx::postgres::PgRow);

fn corrupt(what: &'static str) -> Error {
    Error::Corrupt { what }
}

fn time(row: &impl Columns, column: &'static str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_seconds(row.int(column)?))
}

fn opt_time(row: &impl Columns, column: &'static str) -> Result<Option<Timestamp>> {
    Ok(row.opt_int(column)?.map(Timestamp::from_unix_seconds))
}

fn session_hash(row: &impl Columns, column: &'static str) -> Result<SessionHash> {
    SessionHash::from_hex(&row.text(column)?).ok_or(corrupt(column))
}

fn provider(row: &impl Columns) -> Result<ProviderId> {
    ProviderId::new(&row.text("provider")?).map_err(|_| corrupt("provider"))
}

pub(super) fn flow(row: &impl Columns) -> Result<FlowRecord> {
    Ok(FlowRecord {
        key: FlowKey::from_hex(&row.text("key")?).ok_or(corrupt("flows.key"))?,
        provider: provider(row)?,
        code_challenge: PkceChallenge::parse(&row.text("code_challenge")?)
            .map_err(|_| corrupt("flows.code_challenge"))?,
        redirect_uri: RedirectUri::parse(&row.text("redirect_uri")?)
            .map_err(|_| corrupt("flows.redirect_uri"))?,
        cookie_hash: FlowCookieHash::from_hex(&row.text("cookie_hash")?)
            .ok_or(corrupt("flows.cookie_hash"))?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        status: FlowStatus::parse(&row.text("status")?).ok_or(corrupt("flows.status"))?,
        session_hash: row
            .opt_text("session_hash")?
            .map(|hex| SessionHash::from_hex(&hex).ok_or(corrupt("flows.session_hash")))
            .transpose()?,
    })
}

pub(super) fn session(row: &impl Columns) -> Result<SessionRecord> {
    Ok(SessionRecord {
        session_hash: session_hash(row, "hash")?,
        proof_hash: match row.opt_text("proof_hash")? {
            Some(hex) => Some(ProofHash::from_hex(&hex).ok_or(corrupt("sessions.proof_hash"))?),
            None => None,
        },
        created_at: time(row, "created_at")?,
        last_seen_at: time(row, "last_seen_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

pub(super) fn connection(row: &impl Columns) -> Result<ConnectionRecord> {
    let scopes = row.text("scopes")?;
    let scopes = if scopes.is_empty() {
        Scopes::new()
    } else {
        Scopes::parse(&scopes).map_err(|_| corrupt("connections.scopes"))?
    };
    Ok(ConnectionRecord {
        session_hash: session_hash(row, "session_hash")?,
        provider: provider(row)?,
        patient: row
            .opt_text("patient")?
            .map(|p| PatientId::new(&p).map_err(|_| corrupt("connections.patient")))
            .transpose()?,
        scopes,
        demographics_shared: row.boolean("demographics_shared")?,
        grant_expires_at: opt_time(row, "grant_expires_at")?,
        access_token_ct: Ciphertext::from_bytes(row.bytes("access_token_ct")?),
        refresh_token_ct: row
            .opt_bytes("refresh_token_ct")?
            .map(Ciphertext::from_bytes),
        access_expires_at: opt_time(row, "access_expires_at")?,
        generation: row.int("generation")?,
        status: match row.text("status")?.as_str() {
            "connected" => ConnectionStatus::Connected,
            "reconnect_required" => ConnectionStatus::ReconnectRequired,
            _ => return Err(corrupt("connections.status")),
        },
        updated_at: time(row, "updated_at")?,
    })
}

pub(super) fn revocation(row: &impl Columns) -> Result<PendingRevocation> {
    Ok(PendingRevocation {
        id: row.int("id")?,
        session_hash: session_hash(row, "session_hash")?,
        provider: provider(row)?,
        token_kind: TokenKind::parse(&row.text("token_kind")?)
            .ok_or(corrupt("revocations.token_kind"))?,
        token_ct: Ciphertext::from_bytes(row.bytes("token_ct")?),
        attempts: u32::try_from(row.int("attempts")?)
            .map_err(|_| corrupt("revocations.attempts"))?,
        next_attempt_at: time(row, "next_attempt_at")?,
        created_at: time(row, "created_at")?,
    })
}

/// The stored name of a connection status.
pub(super) fn status_str(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::ReconnectRequired => "reconnect_required",
    }
}

/// Unix seconds, as both schemas store times.
pub(super) fn seconds(t: Timestamp) -> i64 {
    t.unix_seconds()
}

/// Whether a database error is a unique-key violation.
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Whether a database error is a foreign-key violation.
pub(super) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}
