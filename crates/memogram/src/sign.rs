//! Ed25519 signing and verification of grams, as hio does it: each gram signed on its own,
//! over every byte before its signature, in whichever encoding is on the wire.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::{Error, Gram, Seed, Signature, Vid, VidCode};

/// A signing key and the `B` vid that names it (Ed25519N: the vid is the verifying key, so
/// a receiver needs no key store).
///
/// ```
/// use memogram::{Seed, Signer};
///
/// let seed = Seed::from_qb64(b"AJtGCvHCTOpCQzr36dcxvNJ7f4GuNZzK-dusQGAnDqQQ")?;
/// let signer = Signer::from_seed(&seed);
/// assert_eq!(signer.vid().to_string(), "BG-R9L4kTXULe33Tqidn0c-W-x6xU4lIXCdhZQYrsih2");
/// # Ok::<(), memogram::Error>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    vid: Vid,
}

impl Signer {
    /// The signer of a 32-byte seed.
    pub fn from_seed(seed: &Seed) -> Signer {
        let key = SigningKey::from_bytes(seed.raw());
        let vid = Vid::new(VidCode::B, key.verifying_key().to_bytes());
        Signer { key, vid }
    }

    /// The same key, named by a vid of `code` instead: `D` (the key, which receivers must
    /// hold in their [`Keys`](crate::Keys)) or `E` (its Blake3-256 digest, likewise).
    pub fn named(self, code: VidCode) -> Signer {
        let vid = Vid::of_key(code, &self.key.verifying_key().to_bytes());
        Signer { vid, ..self }
    }

    /// The same key, named by `vid`, whatever it is: hio's keep lets a sender sign under
    /// any vid its receivers hold this key for (a KERI identifier whose key was rotated, an
    /// `E` vid that is not a digest of the key).
    pub fn with_vid(self, vid: Vid) -> Signer {
        Signer { vid, ..self }
    }

    /// Its vid.
    pub fn vid(&self) -> Vid {
        self.vid
    }

    /// Its seed (a secret: handle with care).
    pub fn seed(&self) -> Seed {
        Seed::new(self.key.to_bytes())
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature::new(self.key.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for Signer {
    /// The vid only, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.vid)
    }
}

/// Checks a signed gram's signature against the verifying key `key` (32 bytes: a `B` vid's
/// own bytes, or what a key store holds for a `D` or `E` vid).
pub fn verify(gram: &Gram, key: &[u8; 32]) -> Result<(), Error> {
    let signature = gram.signature().ok_or(Error::BadSignature {
        why: "the gram is not signed",
    })?;
    let key = VerifyingKey::from_bytes(key).map_err(|_| Error::BadSignature {
        why: "the vid is not an Ed25519 key",
    })?;
    let signature = ed25519_dalek::Signature::from_bytes(signature.raw());
    key.verify_strict(gram.signed_bytes(), &signature)
        .map_err(|_| Error::BadSignature {
            why: "it does not verify over the gram",
        })
}
