//! The CESR primitives grams are made of: [`Mid`], [`Vid`], [`Signature`] and [`Seed`], each
//! in its text form (qb64, URL-safe base64 without padding) and its binary form (qb2, the
//! base64 decoding of the text).
//!
//! A primitive's text is `base64url(lead zero bytes ‖ raw)` with its leading characters
//! replaced by the code; every one is a whole number of 24-bit units, so no padding appears.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Error;

/// The text of a primitive: `code` over `lead` zero bytes, then `raw`.
fn qb64(code: &str, lead: usize, raw: &[u8]) -> String {
    let mut bytes = vec![0u8; lead];
    bytes.extend_from_slice(raw);
    let text = URL_SAFE_NO_PAD.encode(bytes);
    format!("{code}{}", &text[code.len()..])
}

/// Decodes base64url text of a known length into `N` bytes.
fn decode_b64<const N: usize>(field: &'static str, text: &[u8]) -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(n) if n == N => Ok(out),
        _ => Err(Error::BadField {
            field,
            why: "not base64url of the right length",
        }),
    }
}

/// A memo id: CESR `Salt_128`, code `0A` then 16 bytes. 24 characters as text, 18 bytes in
/// binary.
///
/// hio never checks a received mid (it is only a key), so any 24 base64url characters, or
/// any 18 bytes, read as a mid: the binary form is kept whole and converts both ways without
/// loss. Mids made here always carry the `0A` code.
///
/// ```
/// use memogram::Mid;
///
/// let mid = Mid::from_qb64(b"0AD5s502N14R8bWw8qyvRW-S")?;
/// assert_eq!(mid.to_string(), "0AD5s502N14R8bWw8qyvRW-S");
/// assert_eq!(&mid.to_qb2()[..2], [0xd0, 0x00]);
/// assert_eq!(Mid::new([7; 16]).to_string().get(..2), Some("0A"));
/// # Ok::<(), memogram::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mid([u8; 18]);

impl Mid {
    /// Text length.
    pub const QB64_LEN: usize = 24;
    /// Binary length.
    pub const QB2_LEN: usize = 18;

    /// The mid of these 16 raw bytes, with the `0A` code.
    pub fn new(raw: [u8; 16]) -> Mid {
        let mut qb2 = [0u8; 18];
        qb2[0] = 0xd0;
        qb2[2..].copy_from_slice(&raw);
        Mid(qb2)
    }

    /// A fresh mid, unique as hio's uuid1 mids are (not secret): the time in nanoseconds, a
    /// process-wide counter, and 4 bytes of a randomly keyed hash.
    pub fn fresh() -> Mid {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(count);
        let salt = hasher.finish() as u32;
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&nanos.to_be_bytes());
        raw[8..12].copy_from_slice(&count.to_be_bytes());
        raw[12..].copy_from_slice(&salt.to_be_bytes());
        Mid::new(raw)
    }

    /// Reads a mid from its 24 characters of text.
    pub fn from_qb64(text: &[u8]) -> Result<Mid, Error> {
        Ok(Mid(decode_b64::<18>("mid", text)?))
    }

    /// Reads a mid from its 18 bytes of binary.
    pub fn from_qb2(bytes: &[u8]) -> Result<Mid, Error> {
        let qb2: [u8; 18] = bytes.try_into().map_err(|_| Error::BadField {
            field: "mid",
            why: "not 18 bytes",
        })?;
        Ok(Mid(qb2))
    }

    /// The 24 characters of text.
    pub fn to_qb64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The 24 characters of text, without an allocation: what every gram's header carries.
    pub(crate) fn qb64_array(&self) -> [u8; Mid::QB64_LEN] {
        let mut text = [0u8; Mid::QB64_LEN];
        // 18 bytes are exactly 24 characters of unpadded base64: the slice always fits.
        let _ = URL_SAFE_NO_PAD.encode_slice(self.0, &mut text);
        text
    }

    /// The 18 bytes of binary.
    pub fn to_qb2(&self) -> [u8; 18] {
        self.0
    }
}

impl fmt::Display for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_qb64())
    }
}

impl fmt::Debug for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mid({self})")
    }
}

/// The code of a [`Vid`]: how the 32 bytes after it name the signer's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VidCode {
    /// `B`, Ed25519N (non-transferable): the bytes are the verifying key itself.
    B,
    /// `D`, Ed25519: the bytes are the verifying key, looked up in a key store.
    D,
    /// `E`, Blake3-256 digest of the verifying key, looked up in a key store.
    E,
}

impl VidCode {
    fn char(self) -> char {
        match self {
            VidCode::B => 'B',
            VidCode::D => 'D',
            VidCode::E => 'E',
        }
    }

    /// Its index in the base64 alphabet (`B` 1, `D` 3, `E` 4): the first byte of the binary
    /// form is this shifted left by 2.
    fn index(self) -> u8 {
        match self {
            VidCode::B => 1,
            VidCode::D => 3,
            VidCode::E => 4,
        }
    }

    fn from_index(index: u8) -> Option<VidCode> {
        match index {
            1 => Some(VidCode::B),
            3 => Some(VidCode::D),
            4 => Some(VidCode::E),
            _ => None,
        }
    }
}

/// A signer id: a [`VidCode`] and 32 bytes. 44 characters as text, 33 bytes in binary.
///
/// ```
/// use memogram::{Vid, VidCode};
///
/// let vid = Vid::from_qb64(b"BG-R9L4kTXULe33Tqidn0c-W-x6xU4lIXCdhZQYrsih2")?;
/// assert_eq!(vid.code(), VidCode::B);
/// assert_eq!(vid.to_qb2()[0], 0x04);
/// assert_eq!(Vid::from_qb2(&vid.to_qb2())?, vid);
/// # Ok::<(), memogram::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vid {
    code: VidCode,
    raw: [u8; 32],
}

impl Vid {
    /// Text length.
    pub const QB64_LEN: usize = 44;
    /// Binary length.
    pub const QB2_LEN: usize = 33;

    /// The vid of `code` and 32 raw bytes.
    pub fn new(code: VidCode, raw: [u8; 32]) -> Vid {
        Vid { code, raw }
    }

    /// Its code.
    pub fn code(&self) -> VidCode {
        self.code
    }

    /// Its 32 bytes: the verifying key for `B` and `D`, a digest of it for `E`.
    pub fn raw(&self) -> &[u8; 32] {
        &self.raw
    }

    /// Reads a vid from its 44 characters of text.
    pub fn from_qb64(text: &[u8]) -> Result<Vid, Error> {
        Vid::from_qb2(&decode_b64::<33>("vid", text)?)
    }

    /// Reads a vid from its 33 bytes of binary.
    pub fn from_qb2(bytes: &[u8]) -> Result<Vid, Error> {
        let bad = |why| Error::BadField { field: "vid", why };
        let [first, rest @ ..] = bytes else {
            return Err(bad("empty"));
        };
        let raw: [u8; 32] = rest.try_into().map_err(|_| bad("not 33 bytes"))?;
        let code = (first & 0b11 == 0)
            .then(|| VidCode::from_index(first >> 2))
            .flatten()
            .ok_or(bad("code is not B, D or E"))?;
        Ok(Vid { code, raw })
    }

    /// The 44 characters of text.
    pub fn to_qb64(&self) -> String {
        qb64(self.code.char().encode_utf8(&mut [0; 4]), 1, &self.raw)
    }

    /// The 33 bytes of binary.
    pub fn to_qb2(&self) -> [u8; 33] {
        let mut qb2 = [0u8; 33];
        qb2[0] = self.code.index() << 2;
        qb2[1..].copy_from_slice(&self.raw);
        qb2
    }
}

impl fmt::Display for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_qb64())
    }
}

impl fmt::Debug for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vid({self})")
    }
}

/// An Ed25519 signature: code `0B` then 64 bytes. 88 characters as text, 66 bytes in binary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Text length.
    pub const QB64_LEN: usize = 88;
    /// Binary length.
    pub const QB2_LEN: usize = 66;

    /// The signature of these 64 bytes.
    pub fn new(raw: [u8; 64]) -> Signature {
        Signature(raw)
    }

    /// Its 64 bytes.
    pub fn raw(&self) -> &[u8; 64] {
        &self.0
    }

    /// Reads a signature from its 88 characters of text.
    pub fn from_qb64(text: &[u8]) -> Result<Signature, Error> {
        Signature::from_qb2(&decode_b64::<66>("signature", text)?)
    }

    /// Reads a signature from its 66 bytes of binary.
    pub fn from_qb2(bytes: &[u8]) -> Result<Signature, Error> {
        let bad = |why| Error::BadField {
            field: "signature",
            why,
        };
        let [0xd0, 0x10, rest @ ..] = bytes else {
            return Err(bad("code is not 0B"));
        };
        Ok(Signature(rest.try_into().map_err(|_| bad("not 66 bytes"))?))
    }

    /// The 88 characters of text.
    pub fn to_qb64(&self) -> String {
        qb64("0B", 2, &self.0)
    }

    /// The 66 bytes of binary.
    pub fn to_qb2(&self) -> [u8; 66] {
        let mut qb2 = [0u8; 66];
        qb2[..2].copy_from_slice(&[0xd0, 0x10]);
        qb2[2..].copy_from_slice(&self.0);
        qb2
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_qb64())
    }
}

/// An Ed25519 seed (the 32 bytes a signing key is made from): code `A`, 44 characters as
/// text. Never on the wire; this is how hio's key store and `strata memo keygen` write it.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl Seed {
    /// The seed of these 32 bytes.
    pub fn new(raw: [u8; 32]) -> Seed {
        Seed(raw)
    }

    /// A new secret seed from the operating system's random source.
    pub fn generate() -> Result<Seed, Error> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Error::Io {
            kind: std::io::ErrorKind::Other,
            text: format!("no random source: {e}"),
        })?;
        Ok(Seed(raw))
    }

    /// Its 32 bytes.
    pub fn raw(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a seed from its 44 characters of text (`A…`).
    pub fn from_qb64(text: &[u8]) -> Result<Seed, Error> {
        let bytes = decode_b64::<33>("seed", text)?;
        let [0, rest @ ..] = bytes else {
            return Err(Error::BadField {
                field: "seed",
                why: "code is not A",
            });
        };
        Ok(Seed(rest))
    }

    /// The 44 characters of text.
    pub fn to_qb64(&self) -> String {
        qb64("A", 1, &self.0)
    }
}

impl fmt::Debug for Seed {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mid_text_and_binary_as_the_spec_has_them() {
        let mid = Mid::from_qb64(b"0AD5s502N14R8bWw8qyvRW-S").unwrap();
        let hex: String = mid.to_qb2().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "d000f9b39d36375e11f1b5b0f2acaf456f92");
        assert_eq!(Mid::from_qb2(&mid.to_qb2()).unwrap(), mid);
        // hio does not check the code: any 24 characters are a mid.
        assert_eq!(
            Mid::from_qb64(b"ZZZZZZZZZZZZZZZZZZZZZZZZ")
                .unwrap()
                .to_qb64(),
            "ZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
        assert!(Mid::from_qb64(b"0AD5s502N14R8bWw8qyvRW-").is_err());
        assert!(Mid::from_qb64(b"0AD5s502N14R8bWw8qyvRW=S").is_err());
    }

    #[test]
    fn vid_codes_and_their_first_bytes() {
        let raw = [0x6f; 32];
        for (code, first, text) in [
            (VidCode::B, 0x04, 'B'),
            (VidCode::D, 0x0c, 'D'),
            (VidCode::E, 0x10, 'E'),
        ] {
            let vid = Vid::new(code, raw);
            assert_eq!(vid.to_qb2()[0], first);
            assert!(vid.to_qb64().starts_with(text));
            assert_eq!(Vid::from_qb64(vid.to_qb64().as_bytes()).unwrap(), vid);
            assert_eq!(Vid::from_qb2(&vid.to_qb2()).unwrap(), vid);
        }
        let mut bad = Vid::new(VidCode::B, raw).to_qb2();
        bad[0] = 0x08; // `C`
        assert!(Vid::from_qb2(&bad).is_err());
        assert!(Vid::from_qb2(&[]).is_err());
    }

    #[test]
    fn signature_and_seed_forms() {
        let sig = Signature::new([0xab; 64]);
        assert!(sig.to_qb64().starts_with("0B"));
        assert_eq!(sig.to_qb64().len(), Signature::QB64_LEN);
        assert_eq!(Signature::from_qb64(sig.to_qb64().as_bytes()).unwrap(), sig);
        assert_eq!(Signature::from_qb2(&sig.to_qb2()).unwrap(), sig);
        assert!(Signature::from_qb2(&[0xd0, 0x11]).is_err());
        let seed = Seed::from_qb64(b"AJtGCvHCTOpCQzr36dcxvNJ7f4GuNZzK-dusQGAnDqQQ").unwrap();
        assert_eq!(seed.raw()[..4], [0x9b, 0x46, 0x0a, 0xf1]);
        assert_eq!(
            seed.to_qb64(),
            "AJtGCvHCTOpCQzr36dcxvNJ7f4GuNZzK-dusQGAnDqQQ"
        );
        assert_eq!(format!("{seed:?}"), "Seed(..)");
    }
}
