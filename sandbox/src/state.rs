//! The authorization server's state: apps, sign-ins, pending consents, codes, tokens and
//! data-access grants. Everything is in memory; nothing needs to persist.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, OnceLock},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use connect_medicare_protocol::Scopes;
use sha2::{Digest, Sha256};

use crate::{
    clock::Clock,
    config::{AppConfig, SandboxConfig},
    data::Dataset,
    faults::Faults,
    throttle::Throttle,
};

/// Which face of the server a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Profile {
    /// Blue Button 2.0 v2, quirks included, at the root (`/v2/...`).
    BlueButton,
    /// A plain SMART App Launch 2.2 server under `/smart/`.
    Smart,
}

impl Profile {
    /// The authorization endpoint's path.
    pub(crate) fn authorize_path(self) -> &'static str {
        match self {
            Profile::BlueButton => "/v2/o/authorize/",
            Profile::Smart => "/smart/auth/authorize",
        }
    }

    /// Where an authorize request from a browser that is not signed in is sent.
    pub(crate) fn login_path(self) -> &'static str {
        match self {
            Profile::BlueButton => "/mymedicare/login",
            Profile::Smart => "/smart/auth/login",
        }
    }

    /// Where the consent form posts (`{uuid}` appended).
    pub(crate) fn consent_path(self, uuid: &str) -> String {
        match self {
            Profile::BlueButton => format!("/v2/o/authorize/{uuid}/"),
            Profile::Smart => format!("/smart/auth/consent/{uuid}"),
        }
    }

    /// The FHIR base path, with its trailing slash.
    pub(crate) fn fhir_path(self) -> &'static str {
        match self {
            Profile::BlueButton => "/v2/fhir/",
            Profile::Smart => "/smart/fhir/",
        }
    }

    /// The scopes this face lists.
    pub(crate) fn scopes_supported(self) -> &'static [&'static str] {
        match self {
            Profile::BlueButton => &[
                "openid",
                "profile",
                "launch/patient",
                "patient/Patient.read",
                "patient/ExplanationOfBenefit.read",
                "patient/Coverage.read",
                "patient/Patient.rs",
                "patient/ExplanationOfBenefit.rs",
                "patient/Coverage.rs",
            ],
            Profile::Smart => &[
                "openid",
                "fhirUser",
                "profile",
                "launch/patient",
                "offline_access",
                "online_access",
                "patient/Patient.rs",
                "patient/Coverage.rs",
                "patient/ExplanationOfBenefit.rs",
                "patient/Observation.rs",
                "patient/Condition.rs",
                "patient/AllergyIntolerance.rs",
                "patient/Immunization.rs",
                "patient/MedicationRequest.rs",
                "patient/Medication.rs",
                "patient/*.rs",
            ],
        }
    }
}

/// The authorize request's parameters, carried through sign-in and consent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuthParams {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) response_type: String,
    pub(crate) scope: Option<String>,
    pub(crate) state: String,
    pub(crate) code_challenge: String,
    pub(crate) code_challenge_method: String,
    pub(crate) aud: String,
}

impl AuthParams {
    /// The parameters as form fields, in a stable order (`scope` only when it was given).
    pub(crate) fn fields(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("client_id".to_owned(), self.client_id.clone()),
            ("redirect_uri".to_owned(), self.redirect_uri.clone()),
            ("response_type".to_owned(), self.response_type.clone()),
        ];
        if let Some(scope) = &self.scope {
            out.push(("scope".to_owned(), scope.clone()));
        }
        out.extend([
            ("state".to_owned(), self.state.clone()),
            ("code_challenge".to_owned(), self.code_challenge.clone()),
            (
                "code_challenge_method".to_owned(),
                self.code_challenge_method.clone(),
            ),
            ("aud".to_owned(), self.aud.clone()),
        ]);
        out
    }
}

/// A consent page that was shown and not yet answered.
#[derive(Debug, Clone)]
pub(crate) struct Approval {
    pub(crate) profile: Profile,
    pub(crate) user: usize,
    pub(crate) params: AuthParams,
    pub(crate) scopes: Scopes,
    pub(crate) expires_at: i64,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub(crate) struct CodeRecord {
    pub(crate) profile: Profile,
    pub(crate) client_id: String,
    pub(crate) user: usize,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) scopes: Scopes,
    pub(crate) expires_at: i64,
    pub(crate) used: bool,
}

/// An access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessRecord {
    pub(crate) profile: Profile,
    pub(crate) client_id: String,
    pub(crate) user: usize,
    pub(crate) scopes: Scopes,
    pub(crate) expires_at: i64,
    pub(crate) refresh: Option<String>,
}

/// A refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshRecord {
    /// Used (rotated) or revoked. Kept so reuse answers `invalid_grant` and so a refresh
    /// after the grant was deleted still finds whose grant it was.
    pub(crate) spent: bool,
    pub(crate) profile: Profile,
    pub(crate) client_id: String,
    pub(crate) user: usize,
    pub(crate) scopes: Scopes,
    pub(crate) access: String,
}

/// A one-time `req_token` of the Medicare login: who signed in, for which relay, until when.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) user: usize,
    pub(crate) relay: String,
    pub(crate) expires_at: i64,
}

/// A data-access grant: one per app, beneficiary and profile.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) expires_at: Option<i64>,
}

/// Who a grant belongs to.
pub(crate) type GrantKey = (String, usize, Profile);

/// The mutable part of the server.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    counter: u64,
    /// Sandbox sign-in cookie value → user index.
    pub(crate) logins: HashMap<String, usize>,
    /// Blue Button's `relay` → (the authorize request to return to, expiry).
    pub(crate) relays: HashMap<String, (String, i64)>,
    /// The Medicare login's one-time `req_token`s.
    pub(crate) tickets: HashMap<String, Ticket>,
    pub(crate) approvals: HashMap<String, Approval>,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) access: HashMap<String, AccessRecord>,
    pub(crate) refresh: HashMap<String, RefreshRecord>,
    pub(crate) grants: HashMap<GrantKey, Grant>,
    /// The SMART face's stored searches, by their `_getpages` id (HAPI's paging cache).
    pub(crate) pages: HashMap<String, StoredSearch>,
}

/// A search the SMART face keeps for its opaque `_getpages` links: as on HAPI FHIR, whoever
/// holds the id and a valid token with the scope reads its pages — the id is the only secret.
#[derive(Debug, Clone)]
pub(crate) struct StoredSearch {
    /// The resource type searched (`Patient`, `Coverage`, `ExplanationOfBenefit`).
    pub(crate) resource: String,
    /// The index of the user whose search it was.
    pub(crate) user: usize,
    /// The search's parameters, without `startIndex` and `_count`.
    pub(crate) pairs: Vec<(String, String)>,
}

/// Everything a handler needs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) apps: HashMap<String, AppConfig>,
    pub(crate) config: SandboxConfig,
    pub(crate) data: Dataset,
    pub(crate) clock: Clock,
    /// Injected faults and the rate limit in force (changed at run time by `/__admin/`).
    pub(crate) faults: Faults,
    /// The per-token request logs of the rate limit.
    pub(crate) throttle: Throttle,
    /// `http://127.0.0.1:PORT`, known once the listener is bound.
    pub(crate) origin: OnceLock<String>,
    /// The Medicare login's origin (its own listener), known once it is bound.
    pub(crate) login_origin: OnceLock<String>,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, clock: Clock) -> Self {
        let apps = config
            .apps
            .iter()
            .map(|a| (a.client_id.clone(), a.clone()))
            .collect();
        if config.clock_offset_seconds != 0 {
            clock.advance(config.clock_offset_seconds);
        }
        let faults = Faults::new(&config, clock.now_millis());
        Self {
            apps,
            config,
            data: Dataset::new(),
            clock,
            faults,
            throttle: Throttle::default(),
            origin: OnceLock::new(),
            login_origin: OnceLock::new(),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The state, locked. Never held across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This server's origin.
    pub(crate) fn origin(&self) -> &str {
        self.origin.get().map_or("http://127.0.0.1", String::as_str)
    }

    /// The Medicare login's origin.
    pub(crate) fn login_origin(&self) -> &str {
        self.login_origin
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }

    /// The app with this client id.
    pub(crate) fn app(&self, client_id: &str) -> Option<&AppConfig> {
        self.apps.get(client_id)
    }
}

impl Inner {
    /// A fresh opaque value (token, code, cookie), derived from the seed and a counter, so
    /// the same seed and the same sequence of requests give the same values.
    pub(crate) fn mint(&mut self, seed: u64, kind: &str, len: usize) -> String {
        self.counter += 1;
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update(self.counter.to_le_bytes());
        hasher.update(kind.as_bytes());
        let mut out = URL_SAFE_NO_PAD.encode(hasher.finalize());
        out.truncate(len);
        out
    }

    /// A UUID-shaped id (the consent page's `/v2/o/authorize/<uuid>/`).
    pub(crate) fn mint_uuid(&mut self, seed: u64) -> String {
        self.counter += 1;
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update(self.counter.to_le_bytes());
        hasher.update(b"uuid");
        uuid_from_digest(&hasher.finalize())
    }

    /// Kills an access token and its paired refresh token (RFC 7009: either kills both).
    pub(crate) fn revoke_pair_of_access(&mut self, access: &str) {
        if let Some(record) = self.access.remove(access)
            && let Some(refresh) = record.refresh
            && let Some(r) = self.refresh.get_mut(&refresh)
        {
            r.spent = true;
        }
    }

    /// Kills a refresh token and its paired access token.
    pub(crate) fn revoke_pair_of_refresh(&mut self, refresh: &str) {
        if let Some(record) = self.refresh.get_mut(refresh) {
            record.spent = true;
            let access = record.access.clone();
            self.access.remove(&access);
        }
    }

    /// Forgets every token issued under a grant (they are then unknown, not spent).
    pub(crate) fn forget_tokens_of(&mut self, key: &GrantKey) {
        let (client, user, profile) = key;
        let matches = |c: &String, u: usize, p: Profile| c == client && u == *user && p == *profile;
        self.refresh
            .retain(|_, r| !matches(&r.client_id, r.user, r.profile));
        self.access
            .retain(|_, a| !matches(&a.client_id, a.user, a.profile));
    }

    /// Deletes a grant and every token and code issued under it.
    pub(crate) fn delete_grant(&mut self, key: &GrantKey) {
        self.grants.remove(key);
        let (client, user, profile) = key;
        let matches = |c: &String, u: usize, p: Profile| c == client && u == *user && p == *profile;
        for record in self.refresh.values_mut() {
            if matches(&record.client_id, record.user, record.profile) {
                record.spent = true;
            }
        }
        self.access
            .retain(|_, a| !matches(&a.client_id, a.user, a.profile));
        self.codes
            .retain(|_, c| !matches(&c.client_id, c.user, c.profile));
    }
}

/// A version-4 UUID from the first 16 bytes of a digest: the emulator's ids follow its seed, so
/// the `uuid` crate only sets the version and variant bits and writes the text.
pub(crate) fn uuid_from_digest(digest: &[u8]) -> String {
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    #[test]
    fn ids_from_a_digest_are_version_4_uuids_and_follow_the_digest() {
        let digest = Sha256::digest(b"seed");
        let id = super::uuid_from_digest(&digest);
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(id, super::uuid_from_digest(&digest));
        assert_ne!(id, super::uuid_from_digest(&Sha256::digest(b"other")));
    }
}
