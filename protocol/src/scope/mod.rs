//! SMART App Launch scopes: one token ([`Scope`]) and the space-separated list sent as
//! `scope=` ([`Scopes`]).
//!
//! The grammar is the one of [SMART App Launch 2.2 §scopes], in both its v1 form
//! (`patient/Observation.read`) and its v2 form (`patient/Observation.rs`, with optional
//! `?param=value` restrictions), plus the non-resource scopes (`openid`, `launch/patient`, ...).
//! Blue Button 2.0 advertises v1 and v2 spellings side by side and strands the user on an
//! "Invalid scopes." page for anything it does not know, so [`Scopes::check_supported`] lets
//! callers refuse such a request before anyone navigates.
//!
//! [SMART App Launch 2.2 §scopes]: https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html

use crate::prelude::*;

use core::{
    fmt::{self, Write as _},
    hash::{Hash, Hasher},
    ops::{BitOr, BitOrAssign},
    str::FromStr,
};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, SeqAccess, Visitor},
};

use crate::{
    error::{Error, Result},
    url::cut,
};

/// The `reason`s of [`Error::InvalidScope`], one per broken rule.
mod reason {
    use crate::error::msg;

    pub(super) const EMPTY: &str = msg!("empty scope");
    pub(super) const EMPTY_LIST: &str = msg!("empty scope list");
    pub(super) const WHITESPACE: &str =
        msg!("contains whitespace (scopes are separated by single spaces)");
    pub(super) const CONTROL: &str = msg!("contains a control character");
    pub(super) const QUOTE: &str = msg!("contains a double quote or backslash");
    pub(super) const NON_ASCII: &str = msg!("contains a non-ASCII character");
    pub(super) const UNKNOWN_COMPARTMENT: &str =
        msg!("unknown compartment (expected patient, user or system)");
    pub(super) const MISSING_RESOURCE: &str = msg!("missing resource type after the compartment");
    pub(super) const BAD_RESOURCE: &str = msg!(
        "resource type must be * or a FHIR resource type name such as Patient ([A-Z][A-Za-z]*)"
    );
    pub(super) const MISSING_DOT: &str =
        msg!("missing '.' and permissions after the resource type");
    pub(super) const EMPTY_PERMISSIONS: &str = msg!("empty permissions after '.'");
    pub(super) const STAR_NOT_ALONE: &str = msg!("'*' must be the whole permission (SMART v1 .*)");
    pub(super) const MIXED: &str = msg!("mixes SMART v1 (read, write) and v2 (cruds) permissions");
    pub(super) const UNKNOWN_PERMISSION: &str =
        msg!("unknown permission (v1 allows read, write or *; v2 allows the letters c r u d s)");
    pub(super) const REPEATED_PERMISSION: &str = msg!("repeated v2 permission letter");
    pub(super) const PERMISSION_ORDER: &str =
        msg!("v2 permission letters must appear in the order c, r, u, d, s");
    pub(super) const V1_PARAMETERS: &str =
        msg!("parameters after '?' need SMART v2 permissions (e.g. .rs, not .read)");
    pub(super) const EMPTY_PARAMETERS: &str = msg!("empty parameters after '?'");
}

/// The non-resource scopes that SMART App Launch 2.2 defines.
const WELL_KNOWN: [&str; 8] = [
    "openid",
    "profile",
    "fhirUser",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
];

/// The permissions of a resource scope, as a set of the SMART v2 letters `c r u d s`
/// ([SMART App Launch 2.2 §scopes]).
///
/// SMART v1 permissions map onto this set: `read` is `rs` ([`Permissions::V1_READ`]), `write`
/// is `cud` ([`Permissions::V1_WRITE`]) and `*` is `cruds` ([`Permissions::ALL`]). Its
/// [`Display`](fmt::Display) writes the v2 letters in their canonical order.
///
/// [SMART App Launch 2.2 §scopes]: https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// No permission at all.
    pub const NONE: Self = Self(0);
    /// `c`: create.
    pub const CREATE: Self = Self(1);
    /// `r`: read a resource by id.
    pub const READ: Self = Self(1 << 1);
    /// `u`: update.
    pub const UPDATE: Self = Self(1 << 2);
    /// `d`: delete.
    pub const DELETE: Self = Self(1 << 3);
    /// `s`: search.
    pub const SEARCH: Self = Self(1 << 4);
    /// `cruds`, the same as SMART v1 `*`.
    pub const ALL: Self = Self(0b1_1111);
    /// `rs`, the same as SMART v1 `read`.
    pub const V1_READ: Self = Self(Self::READ.0 | Self::SEARCH.0);
    /// `cud`, the same as SMART v1 `write`.
    pub const V1_WRITE: Self = Self(Self::CREATE.0 | Self::UPDATE.0 | Self::DELETE.0);

    /// The v2 letters in their required order, with their bits.
    const LETTERS: [(u8, Permissions); 5] = [
        (b'c', Self::CREATE),
        (b'r', Self::READ),
        (b'u', Self::UPDATE),
        (b'd', Self::DELETE),
        (b's', Self::SEARCH),
    ];

    /// Whether `c` (create) is granted.
    pub const fn create(self) -> bool {
        self.contains(Self::CREATE)
    }

    /// Whether `r` (read by id) is granted.
    pub const fn read(self) -> bool {
        self.contains(Self::READ)
    }

    /// Whether `u` (update) is granted.
    pub const fn update(self) -> bool {
        self.contains(Self::UPDATE)
    }

    /// Whether `d` (delete) is granted.
    pub const fn delete(self) -> bool {
        self.contains(Self::DELETE)
    }

    /// Whether `s` (search) is granted.
    pub const fn search(self) -> bool {
        self.contains(Self::SEARCH)
    }

    /// Whether every permission in `other` is also in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The permissions in either set.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether no permission is granted.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The SMART v1 spelling of exactly this set (`read`, `write` or `*`), if there is one.
    pub const fn v1_name(self) -> Option<&'static str> {
        match self {
            Self::V1_READ => Some("read"),
            Self::V1_WRITE => Some("write"),
            Self::ALL => Some("*"),
            _ => None,
        }
    }

    /// Parses a v2 permission string: a non-empty, in-order, repetition-free subset of `cruds`.
    /// An unknown letter anywhere is reported first, then a repeated one, then the order.
    fn parse_v2(letters: &str) -> Result<Self, &'static str> {
        if letters.is_empty() {
            return Err(reason::EMPTY_PERMISSIONS);
        }
        // The bits follow the letters' order: c = 1, r = 2, u = 4, d = 8, s = 16.
        let (mut set, mut last, mut repeated, mut disordered) = (0u8, 0u8, false, false);
        for b in letters.bytes() {
            let Some(rank) = b"cruds".iter().position(|&letter| letter == b) else {
                return Err(reason::UNKNOWN_PERMISSION);
            };
            let bit = 1 << rank;
            repeated |= set & bit != 0;
            disordered |= bit <= last;
            set |= bit;
            last = bit;
        }
        match (repeated, disordered) {
            (true, _) => Err(reason::REPEATED_PERMISSION),
            (_, true) => Err(reason::PERMISSION_ORDER),
            _ => Ok(Self(set)),
        }
    }

    /// Parses the part of a resource scope between `.` and `?`; the flag says it was v1.
    fn parse(permissions: &str) -> Result<(Self, bool), &'static str> {
        match permissions {
            "read" => Ok((Self::V1_READ, true)),
            "write" => Ok((Self::V1_WRITE, true)),
            "*" => Ok((Self::ALL, true)),
            _ if permissions.bytes().any(|b| b == b'*') => Err(reason::STAR_NOT_ALONE),
            _ if has(permissions, b"read") || has(permissions, b"write") => Err(reason::MIXED),
            _ => Self::parse_v2(permissions).map(|set| (set, false)),
        }
    }
}

impl BitOr for Permissions {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for Permissions {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, bit) in Self::LETTERS {
            if self.contains(bit) {
                f.write_char(char::from(letter))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions({self})")
    }
}

/// The compartment of a resource scope.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Compartment {
    Patient,
    User,
    System,
}

impl Compartment {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "patient" => Some(Self::Patient),
            "user" => Some(Self::User),
            "system" => Some(Self::System),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::User => "user",
            Self::System => "system",
        }
    }
}

/// Where the parts of a resource scope sit in its token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct ResourceParts {
    compartment: Compartment,
    /// Byte index of the `.` between resource type and permissions.
    dot: usize,
    /// Byte index of the `?` that starts the parameters, if any.
    query: Option<usize>,
    permissions: Permissions,
    /// Whether the permissions were written in SMART v1 (`read`, `write`, `*`).
    v1: bool,
}

/// One scope token ([SMART App Launch 2.2 §scopes]).
///
/// Two kinds exist:
///
/// - **Resource scopes** `<compartment>/<resource>.<permissions>[?<parameters>]`, where the
///   compartment is `patient`, `user` or `system`; the resource is `*` or a FHIR type name
///   (`[A-Z][A-Za-z]*`); the permissions are SMART v1 `read` / `write` / `*` or SMART v2 a
///   non-empty, in-order subset of `cruds`; and the parameters (v2 only), e.g.
///   `category=laboratory`, are kept verbatim and narrow the scope.
/// - **Other scopes**: `openid`, `profile`, `fhirUser`, `launch`, `launch/patient`,
///   `launch/encounter`, `offline_access`, `online_access`, and any other RFC 6749 scope-token
///   (`%x21 / %x23-5B / %x5D-7E`) that does not look like a resource scope. They are compared
///   as exact tokens.
///
/// A scope keeps the token exactly as written ([`Scope::as_str`], [`Display`](fmt::Display)),
/// so what is parsed is what is sent. v1 `read` is the same grant as v2 `rs`, `write` as `cud`
/// and `*` as `cruds`: see [`Scope::equivalent`], [`Scope::covers`], [`Scope::to_v2`] and
/// [`Scope::to_v1`]. Equality and hashing are on the exact token.
///
/// ```
/// use connect_medicare_protocol::Scope;
///
/// let granted = Scope::parse("patient/Patient.read")?;
/// assert_eq!(granted.to_v2().as_str(), "patient/Patient.rs");
/// assert!(granted.covers(&Scope::parse("patient/Patient.s")?));
/// assert!(Scope::parse("patient/Patient.sr").is_err()); // v2 letters out of order
/// # Ok::<(), connect_medicare_protocol::Error>(())
/// ```
///
/// [SMART App Launch 2.2 §scopes]: https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html
#[derive(Clone)]
pub struct Scope {
    raw: String,
    resource: Option<ResourceParts>,
}

// Equality and hashing on the token alone: the parts are a function of it.
impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Scope {}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl Scope {
    /// Parses one scope token.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScope`] with a specific reason when the token is empty, has characters
    /// outside the RFC 6749 scope-token set, or looks like a resource scope but breaks the SMART
    /// grammar (unknown compartment, bad resource type, missing or malformed permissions).
    pub fn parse(token: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidScope {
            scope: token.to_owned(),
            reason,
        };
        check_characters(token).map_err(invalid)?;
        let resource = parse_resource(token).map_err(invalid)?;
        Ok(Self {
            raw: token.to_owned(),
            resource,
        })
    }

    /// The token exactly as written, as it goes into `scope=`.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether this is a resource scope (`patient/…`, `user/…`, `system/…`).
    pub fn is_resource(&self) -> bool {
        self.resource.is_some()
    }

    /// The compartment of a resource scope: `patient`, `user` or `system`.
    pub fn compartment(&self) -> Option<&str> {
        self.resource.map(|r| r.compartment.as_str())
    }

    /// The resource type of a resource scope (`Patient`, or `*` for every type).
    pub fn resource_type(&self) -> Option<&str> {
        self.resource
            .and_then(|r| self.raw.get(r.compartment.as_str().len() + 1..r.dot))
    }

    /// The permissions of a resource scope, with v1 spellings mapped to their v2 sets.
    pub fn permissions(&self) -> Option<Permissions> {
        self.resource.map(|r| r.permissions)
    }

    /// The parameters after `?` of a v2 resource scope, verbatim (`category=laboratory`).
    pub fn parameters(&self) -> Option<&str> {
        self.resource
            .and_then(|r| r.query)
            .and_then(|q| self.raw.get(q + 1..))
    }

    /// Whether this is a resource scope written with SMART v1 permissions (`read`, `write`, `*`).
    pub fn is_v1(&self) -> bool {
        self.resource.is_some_and(|r| r.v1)
    }

    /// Whether this resource scope grants `r` (read by id), possibly restricted by parameters.
    pub fn allows_read(&self) -> bool {
        self.permissions().is_some_and(Permissions::read)
    }

    /// Whether this resource scope grants `s` (search), possibly restricted by parameters.
    pub fn allows_search(&self) -> bool {
        self.permissions().is_some_and(Permissions::search)
    }

    /// The SMART v2 spelling of this scope: `.read` becomes `.rs`, `.write` `.cud` and `.*`
    /// `.cruds`. v2 resource scopes and other scopes are returned unchanged.
    pub fn to_v2(&self) -> Scope {
        match self.resource {
            Some(r) if r.v1 => {
                let raw = format!("{}.{}", &self.raw[..r.dot], r.permissions);
                Self {
                    raw,
                    resource: Some(ResourceParts { v1: false, ..r }),
                }
            }
            _ => self.clone(),
        }
    }

    /// The SMART v1 spelling of this scope, when there is an exact one: `.rs` becomes `.read`,
    /// `.cud` `.write` and `.cruds` `.*`. Other v2 permission sets and v2 scopes with
    /// parameters have none (`None`). v1 resource scopes and other scopes, which are the same
    /// in both versions, are returned unchanged.
    pub fn to_v1(&self) -> Option<Scope> {
        match self.resource {
            Some(r) if !r.v1 => {
                if r.query.is_some() {
                    return None;
                }
                let name = r.permissions.v1_name()?;
                Some(Self {
                    raw: format!("{}.{name}", &self.raw[..r.dot]),
                    resource: Some(ResourceParts { v1: true, ..r }),
                })
            }
            _ => Some(self.clone()),
        }
    }

    /// Whether both scopes grant exactly the same thing, across SMART v1 and v2 spellings:
    /// `patient/Patient.read` is equivalent to `patient/Patient.rs` but not to
    /// `patient/Patient.r`. Other scopes are equivalent only to the identical token.
    pub fn equivalent(&self, other: &Scope) -> bool {
        match (self.resource, other.resource) {
            (Some(a), Some(b)) => {
                a.compartment == b.compartment
                    && a.permissions == b.permissions
                    && self.resource_type() == other.resource_type()
                    && self.parameters() == other.parameters()
            }
            (None, None) => self.raw == other.raw,
            _ => false,
        }
    }

    /// Whether a grant of `self` includes everything `needed` asks for.
    ///
    /// For resource scopes: the same compartment; the same resource type, or `*` in `self`;
    /// `self`'s permissions a superset of `needed`'s (v1 and v2 alike); and, when `self` has
    /// parameters, `needed` has exactly the same ones (a scope without parameters covers any
    /// parameterised one, never the reverse). Other scopes cover only the identical token.
    pub fn covers(&self, needed: &Scope) -> bool {
        match (self.resource, needed.resource) {
            (Some(_), Some(n)) => self.covers_parts(
                n.compartment,
                needed.resource_type().unwrap_or_default(),
                n.permissions,
                needed.parameters(),
            ),
            (None, None) => self.raw == needed.raw,
            _ => false,
        }
    }

    /// [`Scope::covers`] for a needed resource scope given by its parts.
    fn covers_parts(
        &self,
        compartment: Compartment,
        resource_type: &str,
        permissions: Permissions,
        parameters: Option<&str>,
    ) -> bool {
        let Some(r) = self.resource else {
            return false;
        };
        let own_type = self.resource_type().unwrap_or_default();
        r.compartment == compartment
            && (own_type == "*" || own_type == resource_type)
            && r.permissions.contains(permissions)
            && self.parameters().is_none_or(|own| parameters == Some(own))
    }
}

/// Checks that `token` is a non-empty RFC 6749 scope-token (`%x21 / %x23-5B / %x5D-7E`).
fn check_characters(token: &str) -> Result<(), &'static str> {
    if token.is_empty() {
        return Err(reason::EMPTY);
    }
    for c in token.chars() {
        if c.is_whitespace() {
            return Err(reason::WHITESPACE);
        }
        if c.is_control() {
            return Err(reason::CONTROL);
        }
        if c == '"' || c == '\\' {
            return Err(reason::QUOTE);
        }
        if !c.is_ascii() {
            return Err(reason::NON_ASCII);
        }
    }
    Ok(())
}

/// Whether a token with an unknown prefix before `/` still looks like a resource scope
/// (`practitioner/Patient.read`), and so is a mistake rather than a custom scope.
fn looks_like_resource_scope(prefix: &str, rest: &str) -> bool {
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_alphabetic())
        && rest
            .bytes()
            .next()
            .is_some_and(|b| b == b'*' || b.is_ascii_uppercase())
        && rest.bytes().any(|b| b == b'.')
}

/// Whether `haystack` contains `needle`.
fn has(haystack: &str, needle: &[u8]) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w == needle)
}

/// Whether `name` is `*` or `[A-Z][A-Za-z]*`.
fn is_resource_type(name: &str) -> bool {
    if name == "*" {
        return true;
    }
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase()) && bytes.all(|b| b.is_ascii_alphabetic())
}

/// Splits a token whose characters are valid into resource-scope parts, `None` for other
/// scopes.
fn parse_resource(token: &str) -> Result<Option<ResourceParts>, &'static str> {
    if WELL_KNOWN.contains(&token) {
        return Ok(None);
    }
    let (prefix, Some(rest)) = cut(token, b'/') else {
        return Ok(None);
    };
    let Some(compartment) = Compartment::parse(prefix) else {
        return if looks_like_resource_scope(prefix, rest) {
            Err(reason::UNKNOWN_COMPARTMENT)
        } else {
            Ok(None)
        };
    };
    let rest_start = prefix.len() + 1;
    let type_end = rest
        .bytes()
        .position(|b| b == b'.' || b == b'?')
        .unwrap_or(rest.len());
    let (resource_type, after_type) = rest.split_at_checked(type_end).unwrap_or((rest, ""));
    if resource_type.is_empty() {
        return Err(reason::MISSING_RESOURCE);
    }
    if !is_resource_type(resource_type) {
        return Err(reason::BAD_RESOURCE);
    }
    let Some(suffix) = after_type.strip_prefix('.') else {
        return Err(reason::MISSING_DOT);
    };
    let (permissions, parameters) = cut(suffix, b'?');
    let (set, v1) = Permissions::parse(permissions)?;
    match parameters {
        Some("") => return Err(reason::EMPTY_PARAMETERS),
        Some(_) if v1 => return Err(reason::V1_PARAMETERS),
        _ => {}
    }
    let dot = rest_start + type_end;
    Ok(Some(ResourceParts {
        compartment,
        dot,
        query: parameters.map(|_| dot + 1 + permissions.len()),
        permissions: set,
        v1,
    }))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scope").field(&self.raw).finish()
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(token: &str) -> Result<Self> {
        Self::parse(token)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.raw
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopeVisitor;

        impl Visitor<'_> for ScopeVisitor {
            type Value = Scope;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SMART scope string")
            }

            fn visit_str<E: de::Error>(self, token: &str) -> Result<Scope, E> {
                Scope::parse(token).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(ScopeVisitor)
    }
}

/// An ordered list of scopes without duplicates: what goes into `scope=`
/// ([SMART App Launch 2.2 §scopes]).
///
/// Order is kept as first inserted and duplicates (by exact token) are dropped. Two lists are
/// equal when they hold the same tokens in the same order. [`Display`](fmt::Display) joins the
/// tokens with single spaces, as sent. Serialized, it is a JSON array of strings; it
/// deserializes from such an array or from one space-separated string, validating every token.
///
/// ```
/// use connect_medicare_protocol::{Scope, Scopes};
///
/// let supported = Scopes::parse("openid patient/Patient.read patient/Coverage.rs")?;
/// let wanted = Scopes::parse("openid  patient/Patient.rs patient/Coverage.s")?;
/// assert_eq!(wanted.to_string(), "openid patient/Patient.rs patient/Coverage.s");
/// wanted.check_supported(&supported)?;
/// assert!(Scopes::parse("offline_access")?.check_supported(&supported).is_err());
/// assert!(supported.allows_search("Coverage"));
/// # Ok::<(), connect_medicare_protocol::Error>(())
/// ```
///
/// [SMART App Launch 2.2 §scopes]: https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes {
    items: Vec<Scope>,
}

impl Scopes {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a `scope` value: tokens separated by one or more ASCII spaces.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidScope`] for an empty or all-space string (reason "empty scope list":
    /// Blue Button answers `scope=` with an "Invalid scopes." page) and for the first invalid
    /// token (see [`Scope::parse`]).
    pub fn parse(raw: &str) -> Result<Self> {
        let mut scopes = Scopes::new();
        let mut rest = Some(raw);
        while let Some((token, next)) = rest.map(|r| cut(r, b' ')) {
            if !token.is_empty() {
                scopes.insert(Scope::parse(token)?);
            }
            rest = next;
        }
        if scopes.is_empty() {
            return Err(Error::InvalidScope {
                scope: raw.to_owned(),
                reason: reason::EMPTY_LIST,
            });
        }
        Ok(scopes)
    }

    /// The scopes, in order.
    pub fn iter(&self) -> core::slice::Iter<'_, Scope> {
        self.items.iter()
    }

    /// How many scopes there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no scope.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether this exact token is in the list (no v1/v2 equivalence; see [`Scopes::covers`]).
    pub fn contains(&self, scope: &Scope) -> bool {
        self.items.contains(scope)
    }

    /// Appends `scope` unless the identical token is already there; says whether it was added.
    pub fn insert(&mut self, scope: Scope) -> bool {
        if self.contains(&scope) {
            false
        } else {
            self.items.push(scope);
            true
        }
    }

    /// Keeps only the scopes for which `keep` says `true`, in order.
    pub fn retain<F: FnMut(&Scope) -> bool>(&mut self, keep: F) {
        self.items.retain(keep);
    }

    /// The space-separated `scope` value, as sent.
    pub fn as_string(&self) -> String {
        self.to_string()
    }

    /// Whether some scope in the list covers `needed` (see [`Scope::covers`]).
    pub fn covers(&self, needed: &Scope) -> bool {
        self.items.iter().any(|scope| scope.covers(needed))
    }

    /// Whether the list allows reading `resource_type` by id, unrestricted by parameters, in the
    /// patient or the user compartment (`patient/Patient.read`, `user/*.rs`, ...).
    pub fn allows_read(&self, resource_type: &str) -> bool {
        self.allows(resource_type, Permissions::READ)
    }

    /// Whether the list allows searching `resource_type`, unrestricted by parameters, in the
    /// patient or the user compartment (`patient/Patient.read`, `user/*.s`, ...).
    pub fn allows_search(&self, resource_type: &str) -> bool {
        self.allows(resource_type, Permissions::SEARCH)
    }

    /// Whether some patient- or user-compartment scope grants `permissions` on `resource_type`
    /// (by name or `*`), with or without a SMART v2 parameter restriction such as
    /// `patient/Observation.rs?category=laboratory`. A restriction is the server's to enforce:
    /// the broker only keeps requests the grant cannot allow at all from reaching it.
    pub fn grants(&self, resource_type: &str, permissions: Permissions) -> bool {
        self.items.iter().any(|scope| {
            scope.resource.is_some_and(|r| {
                let own_type = scope.resource_type().unwrap_or_default();
                matches!(r.compartment, Compartment::Patient | Compartment::User)
                    && (own_type == "*" || own_type == resource_type)
                    && r.permissions.contains(permissions)
            })
        })
    }

    fn allows(&self, resource_type: &str, permissions: Permissions) -> bool {
        self.items.iter().any(|scope| {
            [Compartment::Patient, Compartment::User]
                .into_iter()
                .any(|c| scope.covers_parts(c, resource_type, permissions, None))
        })
    }

    /// Checks that every scope in `self` is covered by some scope in `supported` (a provider's
    /// `scopes_supported`). Resource scopes are compared across v1 and v2 spellings and may be
    /// narrower than what is supported; other scopes must appear exactly.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedScope`] with the first requested token that nothing covers, e.g.
    /// `offline_access` against Blue Button 2.0.
    pub fn check_supported(&self, supported: &Scopes) -> Result<()> {
        match self.items.iter().find(|scope| !supported.covers(scope)) {
            Some(scope) => Err(Error::UnsupportedScope(scope.raw.clone())),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&scope.raw)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scopes")?;
        f.debug_list()
            .entries(self.items.iter().map(Scope::as_str))
            .finish()
    }
}

impl FromStr for Scopes {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self> {
        Self::parse(raw)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut scopes = Self::new();
        scopes.extend(iter);
        scopes
    }
}

impl Extend<Scope> for Scopes {
    fn extend<I: IntoIterator<Item = Scope>>(&mut self, iter: I) {
        for scope in iter {
            self.insert(scope);
        }
    }
}

impl IntoIterator for Scopes {
    type Item = Scope;
    type IntoIter = alloc::vec::IntoIter<Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = core::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().map(Scope::as_str))
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopesVisitor;

        impl<'de> Visitor<'de> for ScopesVisitor {
            type Value = Scopes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a space-separated scope string or an array of scope strings")
            }

            fn visit_str<E: de::Error>(self, raw: &str) -> Result<Scopes, E> {
                Scopes::parse(raw).map_err(E::custom)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scopes, A::Error> {
                let mut scopes = Scopes::new();
                while let Some(scope) = seq.next_element::<Scope>()? {
                    scopes.insert(scope);
                }
                Ok(scopes)
            }
        }

        deserializer.deserialize_any(ScopesVisitor)
    }
}

#[cfg(test)]
mod tests;
