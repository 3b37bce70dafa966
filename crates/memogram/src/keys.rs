//! [`Keys`]: the verifying keys behind `D` and `E` vids (hio's `keep`, verification half).

use std::collections::HashMap;

use crate::{Vid, VidCode};

/// The verifying keys a receiver knows, for the vids that do not carry their key.
///
/// A `B` vid is its own Ed25519 key and needs no store. A `D` vid names a key the receiver
/// must already hold (hio drops `D` grams whose vid is not in its `keep`), and an `E` vid is
/// the Blake3-256 digest of one. [`add`](Keys::add) registers a key under both.
///
/// ```
/// use memogram::{Keys, Seed, Signer, VidCode};
///
/// let signer = Signer::from_seed(&Seed::new([3; 32])).named(VidCode::E);
/// let mut keys = Keys::default();
/// assert_eq!(keys.key(&signer.vid()), None);
/// keys.add(*Signer::from_seed(&Seed::new([3; 32])).vid().raw());
/// assert!(keys.key(&signer.vid()).is_some());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    by_vid: HashMap<Vid, [u8; 32]>,
}

impl Keys {
    /// Registers an Ed25519 verifying key under its `D` and `E` vids.
    pub fn add(&mut self, key: [u8; 32]) {
        for code in [VidCode::D, VidCode::E] {
            self.by_vid.insert(Vid::of_key(code, &key), key);
        }
    }

    /// The verifying key `vid` names: its own bytes for `B`, the registered key for `D` and
    /// `E`, `None` for a vid this store does not know.
    pub fn key(&self, vid: &Vid) -> Option<[u8; 32]> {
        match vid.code() {
            VidCode::B => Some(*vid.raw()),
            VidCode::D | VidCode::E => self.by_vid.get(vid).copied(),
        }
    }

    /// How many keys are registered.
    pub fn len(&self) -> usize {
        self.by_vid.len() / 2
    }

    /// Whether no key is registered.
    pub fn is_empty(&self) -> bool {
        self.by_vid.is_empty()
    }
}

impl Vid {
    /// The vid of `code` for the verifying key `key`: the key itself for `B` and `D`, its
    /// Blake3-256 digest for `E`.
    pub fn of_key(code: VidCode, key: &[u8; 32]) -> Vid {
        match code {
            VidCode::B | VidCode::D => Vid::new(code, *key),
            VidCode::E => Vid::new(code, *blake3::hash(key).as_bytes()),
        }
    }
}
