//! The pending flow of this tab: `{state, verifier, provider, created, expires, returnTo}`
//! kept in sessionStorage (or the storage the app passes) under its `state`, read once.
//!
//! The record is one line, `1|created|expires|state|provider|verifier|returnTo`: every field
//! but the last is base64url, `[a-z0-9-]` or digits, and `returnTo` comes last so it may hold
//! any character. Everything read back is validated again.

use crate::prelude::*;

use connect_medicare_protocol::{
    PkceVerifier, State,
    contract::ProviderId,
    text::{cut, parse_uint},
};
use wasm_bindgen::prelude::*;

use crate::{
    error::{code, fail},
    js::{concat, decimal},
};

#[wasm_bindgen]
extern "C" {
    /// Anything with Web Storage's `getItem`, `setItem` and `removeItem`: `sessionStorage`
    /// by default.
    #[derive(Clone)]
    pub type FlowStorage;

    #[wasm_bindgen(method, catch, js_name = getItem)]
    fn get_item(this: &FlowStorage, key: &str) -> Result<Option<String>, JsValue>;

    #[wasm_bindgen(method, catch, js_name = setItem)]
    fn set_item(this: &FlowStorage, key: &str, value: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = removeItem)]
    fn remove_item(this: &FlowStorage, key: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(method, getter, structural)]
    fn length(this: &FlowStorage) -> JsValue;

    #[wasm_bindgen(method, catch)]
    fn key(this: &FlowStorage, index: u32) -> Result<Option<String>, JsValue>;
}

/// The key prefix of flow records.
const PREFIX: &str = "connect-medicare:flow:";
/// The record format.
const VERSION: &str = "1";
/// A flow lives at most this long, whatever the broker says (milliseconds).
const MAX_TTL_MS: u64 = 60 * 60 * 1000;
/// A return path is at most this long.
const MAX_RETURN_TO: usize = 2048;

/// A flow started in this tab and not yet finished.
#[derive(Debug)]
pub(crate) struct PendingFlow {
    /// The `state` sent.
    pub(crate) state: State,
    /// The verifier whose challenge the broker registered.
    pub(crate) verifier: PkceVerifier,
    /// The provider.
    pub(crate) provider: ProviderId,
    /// When the flow started (ms since the epoch).
    pub(crate) created: u64,
    /// When the flow stops being accepted (ms since the epoch).
    pub(crate) expires: u64,
    /// Where the app wants to go afterwards: a same-origin path.
    pub(crate) return_to: Option<String>,
}

impl PendingFlow {
    /// A flow created at `now` that the broker keeps for `expires_in_s` seconds.
    pub(crate) fn new(
        state: State,
        verifier: PkceVerifier,
        provider: ProviderId,
        now: u64,
        expires_in_s: u64,
        return_to: Option<String>,
    ) -> Self {
        let ttl = expires_in_s.saturating_mul(1000).min(MAX_TTL_MS);
        Self {
            state,
            verifier,
            provider,
            created: now,
            expires: now.saturating_add(ttl),
            return_to,
        }
    }

    fn encode(&self) -> String {
        concat(&[
            VERSION,
            "|",
            &decimal(self.created),
            "|",
            &decimal(self.expires),
            "|",
            self.state.as_str(),
            "|",
            self.provider.as_str(),
            "|",
            self.verifier.expose_secret(),
            "|",
            self.return_to.as_deref().unwrap_or(""),
        ])
    }

    fn decode(raw: &str) -> Option<Self> {
        // Six `|`-terminated fields, then `returnTo` (which may hold `|`).
        let mut rest = raw;
        let mut field = || {
            let (head, tail) = cut(rest, b'|');
            rest = tail?;
            Some(head)
        };
        if field()? != VERSION {
            return None;
        }
        let created = parse_uint(field()?, u64::MAX)?;
        let expires = parse_uint(field()?, u64::MAX)?;
        let state = State::parse(field()?).ok()?;
        let provider = ProviderId::new(field()?).ok()?;
        let verifier = PkceVerifier::parse(field()?).ok()?;
        let return_to = match rest {
            "" => None,
            path if is_return_path(path) => Some(path.to_owned()),
            _ => return None,
        };
        Some(Self {
            state,
            verifier,
            provider,
            created,
            expires,
            return_to,
        })
    }
}

/// Whether `path` is a same-origin relative path: `/` then anything but a second `/` or a
/// `\` (which browsers read as `//`, another host), no control characters or spaces.
pub(crate) fn is_return_path(path: &str) -> bool {
    let mut bytes = path.bytes();
    bytes.next() == Some(b'/')
        && !matches!(bytes.next(), Some(b'/' | b'\\'))
        && path.len() <= MAX_RETURN_TO
        && !path
            .bytes()
            .any(|b| b == b'\\' || b.is_ascii_control() || b == b' ')
}

fn storage_failure(_: JsValue) -> JsValue {
    fail(
        code::NOT_IN_BROWSER,
        "sessionStorage is not available (blocked, full, or not a browser)",
    )
}

impl FlowStorage {
    /// Keeps `flow` under its state.
    pub(crate) fn save(&self, flow: &PendingFlow) -> Result<(), JsValue> {
        let key = concat(&[PREFIX, flow.state.as_str()]);
        self.set_item(&key, &flow.encode()).map_err(storage_failure)
    }

    /// Takes the flow kept under `state`, removing it: `None` when there is none, it has
    /// expired by `now`, or the record is not one this SDK wrote.
    pub(crate) fn take(&self, state: &State, now: u64) -> Result<Option<PendingFlow>, JsValue> {
        let key = concat(&[PREFIX, state.as_str()]);
        let raw = self.get_item(&key).map_err(storage_failure)?;
        if raw.is_some() {
            self.remove_item(&key).map_err(storage_failure)?;
        }
        Ok(raw
            .as_deref()
            .and_then(PendingFlow::decode)
            .filter(|flow| now < flow.expires))
    }

    /// Removes expired and unreadable flow records (abandoned sign-ins). Storages without
    /// `length`/`key` are left alone.
    pub(crate) fn sweep(&self, now: u64) {
        let Some(length) = self.length().as_f64() else {
            return;
        };
        let mut stale = Vec::new();
        for index in 0..length as u32 {
            let Ok(Some(key)) = self.key(index) else {
                continue;
            };
            if !key.starts_with(PREFIX) {
                continue;
            }
            let live = matches!(self.get_item(&key), Ok(Some(raw))
                if PendingFlow::decode(&raw).is_some_and(|f| now < f.expires));
            if !live {
                stale.push(key);
            }
        }
        for key in stale {
            let _ = self.remove_item(&key);
        }
    }
}
