//! Tokens at rest: XChaCha20-Poly1305 with a key ring.
//!
//! Every token the broker stores is sealed with the **newest** key of the [`KeyRing`] (the
//! last one configured) and opened with whichever key sealed it, so keys rotate without a
//! migration: add a new key at the end, and drop an old one once every token it sealed has
//! been refreshed (and so re-sealed) or has expired.
//!
//! # Ciphertext format (version 1)
//!
//! A [`Ciphertext`] is bytes:
//!
//! | bytes | content |
//! |---|---|
//! | 1 | format version, `0x01` |
//! | 1 | `n`, the length of the key id (1–32) |
//! | `n` | the key id, ASCII `[A-Za-z0-9_-]` |
//! | 24 | a random XChaCha20 nonce from the operating system |
//! | rest | the XChaCha20-Poly1305 ciphertext of the token, with its 16-byte tag |
//!
//! # Associated data
//!
//! The AEAD's associated data ([`Aad`]) binds a ciphertext to the session and the field it was
//! written for: `connect-medicare/token/v1`, the header above (version and key id), the
//! session hash (hex), the provider id and the field name (`access_token`, `refresh_token`,
//! or `page_link` for the paging links of `pages.rs`), separated by NUL bytes. A ciphertext
//! copied into another session's row, another provider or another field does not open.

use std::{fmt, sync::Arc};

use base64::{
    Engine as _,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose::STANDARD},
};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{AeadInPlace, Buffer as _},
};
use connect_medicare_protocol::contract::ProviderId;
use secrecy::{ExposeSecret, SecretBox, SecretString, zeroize::Zeroize};

use crate::{
    error::{Error, Result},
    ids::{SessionHash, random_bytes},
};

/// The ciphertext format version written by this broker.
const FORMAT_V1: u8 = 1;
/// Bytes in an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Bytes in a Poly1305 tag.
const TAG_LEN: usize = 16;
/// Longest key id.
const MAX_KEY_ID_LEN: usize = 32;
/// Domain separation for the associated data.
const AAD_DOMAIN: &[u8] = b"connect-medicare/token/v1";

/// A key's name in the ring: 1–32 characters of `[A-Za-z0-9_-]` (e.g. `2025-06-01`).
/// It is written into every ciphertext the key seals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates a key id.
    pub fn new(raw: &str) -> Result<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_KEY_ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::InvalidKey(
                "key id must be 1-32 characters of A-Z a-z 0-9 - _",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 32 bytes of XChaCha20-Poly1305 key. Not `Clone`; `Debug` redacted; zeroed on drop.
pub struct KeyMaterial(SecretBox<[u8; 32]>);

impl KeyMaterial {
    /// A fresh key from the operating system's RNG.
    pub fn generate() -> Result<Self> {
        Ok(Self::from_bytes(random_bytes::<32>()?))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Reads a key written as base64 (standard or URL-safe alphabet, padding optional) of
    /// exactly 32 bytes. The error never contains the input.
    pub fn from_base64(encoded: &str) -> Result<Self> {
        const LENIENT: GeneralPurposeConfig =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
        let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
        let mut decoded = standard
            .decode(encoded.trim())
            .or_else(|_| url_safe.decode(encoded.trim()))
            .map_err(|_| Error::InvalidKey("key must be base64 of 32 random bytes"))?;
        let key = <[u8; 32]>::try_from(decoded.as_slice())
            .map_err(|_| Error::InvalidKey("key must decode to exactly 32 bytes"));
        decoded.zeroize();
        key.map(Self::from_bytes)
    }

    /// The key as standard padded base64 (44 characters), for `gen-key`.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.0.expose_secret()))
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial([redacted])")
    }
}

/// Which token a ciphertext holds. Also the RFC 7009 `token_type_hint` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
}

impl TokenKind {
    /// `access_token` or `refresh_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "access_token" => Some(Self::AccessToken),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a ciphertext is bound to: the session, the provider and the field it was written for.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    session: &'a SessionHash,
    provider: &'a ProviderId,
    /// A [`TokenKind`]'s name, or `page_link`.
    field: &'static str,
}

impl<'a> Aad<'a> {
    /// The associated data of `field` of `session`'s connection to `provider`.
    pub fn new(session: &'a SessionHash, provider: &'a ProviderId, field: TokenKind) -> Self {
        Self {
            session,
            provider,
            field: field.as_str(),
        }
    }

    /// The associated data of a paging link the broker sealed for `session`'s connection to
    /// `provider` (the field `page_link`): it opens for that session and provider only.
    pub fn page_link(session: &'a SessionHash, provider: &'a ProviderId) -> Self {
        Self {
            session,
            provider,
            field: "page_link",
        }
    }

    /// The bytes authenticated along with the ciphertext (see the module docs).
    fn bytes(&self, header: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(AAD_DOMAIN.len() + header.len() + 128);
        for part in [
            AAD_DOMAIN,
            header,
            self.session.to_hex().as_bytes(),
            self.provider.as_str().as_bytes(),
            self.field.as_bytes(),
        ] {
            out.extend_from_slice(part);
            out.push(0);
        }
        out
    }
}

/// A sealed token, in the version-1 format of the module docs. What the store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext(Vec<u8>);

impl Ciphertext {
    /// Wraps bytes read back from the store (checked when opened).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes to store, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The id of the key that sealed it, when the header is well formed.
    pub fn key_id(&self) -> Option<&str> {
        self.split().ok().map(|parts| parts.key_id)
    }

    fn split(&self) -> Result<Parts<'_>> {
        let malformed = Error::MalformedCiphertext;
        let (&version, rest) = self.0.split_first().ok_or(malformed("empty"))?;
        if version != FORMAT_V1 {
            return Err(malformed("unknown format version"));
        }
        let (&id_len, rest) = rest.split_first().ok_or(malformed("truncated header"))?;
        let id_len = usize::from(id_len);
        if id_len == 0 || id_len > MAX_KEY_ID_LEN || rest.len() < id_len + NONCE_LEN + TAG_LEN {
            return Err(malformed("truncated"));
        }
        let (key_id, rest) = rest.split_at(id_len);
        let key_id = std::str::from_utf8(key_id).map_err(|_| malformed("key id"))?;
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        Ok(Parts {
            header: &self.0[..2 + id_len],
            key_id,
            nonce,
            sealed,
        })
    }
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphertext")
            .field("key_id", &self.key_id())
            .field("len", &self.0.len())
            .finish()
    }
}

struct Parts<'a> {
    header: &'a [u8],
    key_id: &'a str,
    nonce: &'a [u8],
    sealed: &'a [u8],
}

struct RingKey {
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

/// The token-encryption keys: seal with the newest (last listed), open with any.
///
/// Cheap to clone (the keys are shared); `Debug` shows the key ids only.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<[RingKey]>,
}

impl KeyRing {
    /// A ring of these keys, oldest first: the last one seals new tokens.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when there is no key or two keys share an id.
    pub fn new(keys: impl IntoIterator<Item = (KeyId, KeyMaterial)>) -> Result<Self> {
        let mut ring: Vec<RingKey> = Vec::new();
        for (id, material) in keys {
            if ring.iter().any(|k| k.id == id) {
                return Err(Error::InvalidKey("two keys share an id"));
            }
            let cipher = XChaCha20Poly1305::new(material.0.expose_secret().into());
            ring.push(RingKey { id, cipher });
        }
        if ring.is_empty() {
            return Err(Error::InvalidKey("the key ring needs at least one key"));
        }
        Ok(Self { keys: ring.into() })
    }

    /// The key that seals new tokens.
    pub fn current_key_id(&self) -> &KeyId {
        &self.current().id
    }

    /// Every key id, oldest first.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|k| &k.id)
    }

    fn current(&self) -> &RingKey {
        // `new` refuses an empty ring, so there is a last key.
        &self.keys[self.keys.len() - 1]
    }

    /// Seals `plaintext` with the newest key and a fresh random nonce, bound to `aad`.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] when the operating system's RNG fails.
    pub fn encrypt(&self, plaintext: &SecretString, aad: &Aad<'_>) -> Result<Ciphertext> {
        let key = self.current();
        let nonce = random_bytes::<NONCE_LEN>()?;
        let id = key.id.as_str().as_bytes();
        let message = plaintext.expose_secret().as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + message.len() + TAG_LEN);
        out.push(FORMAT_V1);
        // KeyId::new bounds the length to 32.
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id);
        let header_len = out.len();
        out.extend_from_slice(&nonce);
        let aad = aad.bytes(&out[..header_len]);
        let mut sealed = SealBuffer {
            buf: &mut out,
            start: header_len + NONCE_LEN,
        };
        sealed
            .extend_from_slice(message)
            .map_err(|_| Error::MalformedCiphertext("cannot grow buffer"))?;
        key.cipher
            .encrypt_in_place(XNonce::from_slice(&nonce), &aad, &mut sealed)
            .map_err(|_| Error::MalformedCiphertext("plaintext too long"))?;
        Ok(Ciphertext(out))
    }

    /// Opens a ciphertext sealed by any key of the ring, checking it against `aad`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownKey`] when its key is no longer in the ring, [`Error::Decrypt`] when it
    /// does not authenticate (tampered, or another session, provider or field), and
    /// [`Error::MalformedCiphertext`] when it is not in the version-1 format.
    pub fn decrypt(&self, ciphertext: &Ciphertext, aad: &Aad<'_>) -> Result<SecretString> {
        let parts = ciphertext.split()?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id.as_str() == parts.key_id)
            .ok_or_else(|| Error::UnknownKey {
                key_id: parts.key_id.to_owned(),
            })?;
        let aad = aad.bytes(parts.header);
        let mut buf = parts.sealed.to_vec();
        let opened = key
            .cipher
            .decrypt_in_place(XNonce::from_slice(parts.nonce), &aad, &mut buf);
        let result = match opened {
            Err(_) => Err(Error::Decrypt),
            Ok(()) => match std::str::from_utf8(&buf) {
                // `to_owned` allocates exactly the length, so no copy is left behind when
                // `SecretString` boxes it; `buf` is zeroed below.
                Ok(text) => Ok(SecretString::from(text.to_owned())),
                Err(_) => Err(Error::MalformedCiphertext("plaintext is not UTF-8")),
            },
        };
        buf.zeroize();
        result
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .field("keys", &"[redacted]")
            .finish()
    }
}

/// The tail of a `Vec<u8>` from `start`, as the AEAD's in-place buffer: the header and nonce
/// before it stay untouched.
struct SealBuffer<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl AsRef<[u8]> for SealBuffer<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl AsMut<[u8]> for SealBuffer<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
}

impl chacha20poly1305::aead::Buffer for SealBuffer<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> chacha20poly1305::aead::Result<()> {
        self.buf.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.buf.truncate(self.start + len);
    }
}

/// A key id for `gen-key`: today's date and 4 random hex digits (`2025-06-01-3fa9`).
pub fn new_key_id(today: connect_medicare_protocol::Timestamp) -> Result<KeyId> {
    let date: String = today.to_string().chars().take(10).collect();
    let [a, b] = random_bytes::<2>()?;
    KeyId::new(&format!("{date}-{a:02x}{b:02x}"))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use connect_medicare_protocol::Timestamp;

    use super::*;
    use crate::ids::SessionId;

    const CANARY_TOKEN: &str = "canary-access-token-77d2";

    fn ring(ids: &[(&str, u8)]) -> KeyRing {
        KeyRing::new(ids.iter().map(|(id, byte)| {
            (
                KeyId::new(id).unwrap(),
                KeyMaterial::from_bytes([*byte; 32]),
            )
        }))
        .unwrap()
    }

    fn session() -> SessionHash {
        SessionId::from_random_bytes([3; 32]).hash()
    }

    fn medicare() -> ProviderId {
        ProviderId::new("medicare").unwrap()
    }

    fn token() -> SecretString {
        SecretString::from(CANARY_TOKEN)
    }

    #[test]
    fn round_trip() {
        let ring = ring(&[("k1", 1)]);
        let (s, p) = (session(), medicare());
        let aad = Aad::new(&s, &p, TokenKind::AccessToken);
        let sealed = ring.encrypt(&token(), &aad).unwrap();
        assert_eq!(sealed.key_id(), Some("k1"));
        assert_eq!(
            sealed.as_bytes().len(),
            2 + 2 + NONCE_LEN + CANARY_TOKEN.len() + TAG_LEN
        );
        let bytes = sealed.as_bytes();
        assert!(
            !bytes
                .windows(CANARY_TOKEN.len())
                .any(|w| w == CANARY_TOKEN.as_bytes())
        );
        let opened = ring.decrypt(&sealed, &aad).unwrap();
        assert_eq!(opened.expose_secret(), CANARY_TOKEN);
        // Fresh nonces: sealing twice never gives the same bytes.
        assert_ne!(ring.encrypt(&token(), &aad).unwrap(), sealed);
        // Bytes read back from a store open the same.
        let reread = Ciphertext::from_bytes(sealed.clone().into_bytes());
        assert_eq!(
            ring.decrypt(&reread, &aad).unwrap().expose_secret(),
            CANARY_TOKEN
        );
    }

    #[test]
    fn rotation() {
        let (s, p) = (session(), medicare());
        let aad = Aad::new(&s, &p, TokenKind::RefreshToken);
        let old_ring = ring(&[("old", 1)]);
        let old_sealed = old_ring.encrypt(&token(), &aad).unwrap();

        // A new key at the end: old ciphertexts still open, new ones use the new key.
        let rotated = ring(&[("old", 1), ("new", 2)]);
        assert_eq!(rotated.current_key_id().as_str(), "new");
        assert_eq!(
            rotated.decrypt(&old_sealed, &aad).unwrap().expose_secret(),
            CANARY_TOKEN
        );
        let new_sealed = rotated.encrypt(&token(), &aad).unwrap();
        assert_eq!(new_sealed.key_id(), Some("new"));

        // The old key removed: its ciphertexts fail clearly, new ones still open.
        let retired = ring(&[("new", 2)]);
        let err = retired.decrypt(&old_sealed, &aad).unwrap_err();
        assert!(matches!(&err, Error::UnknownKey { key_id } if key_id == "old"));
        assert!(err.to_string().contains("\"old\""), "{err}");
        assert_eq!(
            retired.decrypt(&new_sealed, &aad).unwrap().expose_secret(),
            CANARY_TOKEN
        );
    }

    #[test]
    fn a_key_id_with_other_bytes_does_not_open() {
        let (s, p) = (session(), medicare());
        let aad = Aad::new(&s, &p, TokenKind::AccessToken);
        let sealed = ring(&[("k1", 1)]).encrypt(&token(), &aad).unwrap();
        let impostor = ring(&[("k1", 9)]);
        assert!(matches!(
            impostor.decrypt(&sealed, &aad),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn wrong_associated_data_fails() {
        let ring = ring(&[("k1", 1)]);
        let (s, p) = (session(), medicare());
        let sealed = ring
            .encrypt(&token(), &Aad::new(&s, &p, TokenKind::AccessToken))
            .unwrap();
        let other_session = SessionId::from_random_bytes([4; 32]).hash();
        let other_provider = ProviderId::new("epic").unwrap();
        for aad in [
            Aad::new(&s, &p, TokenKind::RefreshToken),
            Aad::new(&other_session, &p, TokenKind::AccessToken),
            Aad::new(&s, &other_provider, TokenKind::AccessToken),
        ] {
            assert!(matches!(ring.decrypt(&sealed, &aad), Err(Error::Decrypt)));
        }
    }

    #[test]
    fn tampering_fails() {
        let ring = ring(&[("k1", 1), ("k2", 2)]);
        let (s, p) = (session(), medicare());
        let aad = Aad::new(&s, &p, TokenKind::AccessToken);
        let sealed = ring.encrypt(&token(), &aad).unwrap().into_bytes();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                ring.decrypt(&Ciphertext::from_bytes(bad), &aad).is_err(),
                "flipping byte {i}"
            );
        }
        // Truncated and extended.
        for bad in [
            sealed[..sealed.len() - 1].to_vec(),
            [&sealed[..], &[0]].concat(),
            Vec::new(),
            vec![FORMAT_V1],
            vec![2, 2, b'k', b'2'],
        ] {
            assert!(ring.decrypt(&Ciphertext::from_bytes(bad), &aad).is_err());
        }
        // Relabelled to the other key of the ring: does not authenticate.
        let mut relabelled = sealed.clone();
        relabelled[3] = b'1';
        assert!(matches!(
            ring.decrypt(&Ciphertext::from_bytes(relabelled), &aad),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn ring_validation() {
        assert!(KeyRing::new(Vec::new()).is_err());
        let dup = KeyRing::new([
            (KeyId::new("a").unwrap(), KeyMaterial::from_bytes([1; 32])),
            (KeyId::new("a").unwrap(), KeyMaterial::from_bytes([2; 32])),
        ]);
        assert!(matches!(dup, Err(Error::InvalidKey(_))));
        for bad in ["", "a.b", "a b", "ключ", &"a".repeat(33)] {
            assert!(KeyId::new(bad).is_err(), "{bad:?}");
        }
        assert!(KeyId::new(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn key_material_from_base64() {
        let key = KeyMaterial::generate().unwrap();
        let encoded = key.to_base64();
        assert_eq!(encoded.expose_secret().len(), 44);
        let back = KeyMaterial::from_base64(encoded.expose_secret()).unwrap();
        assert_eq!(back.0.expose_secret(), key.0.expose_secret());
        let url_safe = URL_SAFE_NO_PAD.encode([0xFB; 32]);
        assert_eq!(
            KeyMaterial::from_base64(&url_safe)
                .unwrap()
                .0
                .expose_secret(),
            &[0xFB; 32]
        );
        let short = STANDARD.encode([1; 16]);
        let err = KeyMaterial::from_base64(&short).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
        let err = KeyMaterial::from_base64("canary-not-base64!!").unwrap_err();
        assert!(!err.to_string().contains("canary"), "{err}");
    }

    #[test]
    fn debug_is_redacted() {
        let key = KeyMaterial::from_bytes([0x5A; 32]);
        let encoded = key.to_base64();
        assert_eq!(format!("{key:?}"), "KeyMaterial([redacted])");
        let ring = KeyRing::new([(KeyId::new("k1").unwrap(), key)]).unwrap();
        let shown = format!("{ring:?}");
        assert!(
            shown.contains("k1") && shown.contains("[redacted]"),
            "{shown}"
        );
        assert!(!shown.contains(encoded.expose_secret()), "{shown}");
        assert!(!shown.contains("90, 90"), "{shown}");
        let (s, p) = (session(), medicare());
        let sealed = ring
            .encrypt(&token(), &Aad::new(&s, &p, TokenKind::AccessToken))
            .unwrap();
        let shown = format!("{sealed:?}");
        assert!(shown.contains("k1"), "{shown}");
        assert!(!shown.contains(CANARY_TOKEN), "{shown}");
    }

    #[test]
    fn generated_key_ids_are_valid_and_dated() {
        let id = new_key_id(Timestamp::from_unix_seconds(1_748_736_000)).unwrap();
        assert!(id.as_str().starts_with("2025-06-01-"), "{id}");
        assert_eq!(id.as_str().len(), 15);
        assert!(
            id.as_str()[11..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }

    #[test]
    fn token_kind_names() {
        for kind in [TokenKind::AccessToken, TokenKind::RefreshToken] {
            assert_eq!(TokenKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TokenKind::parse("id_token"), None);
    }
}
