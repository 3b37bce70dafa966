//! [`Keys`]: the verifying keys behind vids (hio's `keep`, verification half).

use std::collections::HashMap;

use crate::{Vid, VidCode};

/// The verifying keys a receiver knows, by vid: hio's `keep`, which maps any vid to any key.
///
/// A `B` vid is its own Ed25519 key and needs no entry (an entry for it wins, as in hio's
/// keep). A `D` vid names a key the receiver must already hold (hio drops `D` grams whose vid
/// is not in its `keep`), and an `E` vid is, by convention, the Blake3-256 digest of one.
/// [`add`](Keys::add) registers a key under both of those; [`insert`](Keys::insert) under
/// any vid at all, as hio's keep allows (a KERI identifier whose key was rotated, an `E` vid
/// that is not a digest of its key).
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

    /// Registers `key` under `vid`, whatever the vid (hio's `keep[vid]`); replaces the key
    /// it had.
    pub fn insert(&mut self, vid: Vid, key: [u8; 32]) {
        self.by_vid.insert(vid, key);
    }

    /// Forgets the key of `vid`; the key it had.
    pub fn remove(&mut self, vid: &Vid) -> Option<[u8; 32]> {
        self.by_vid.remove(vid)
    }

    /// The verifying key `vid` names: the registered one if there is one, else a `B` vid's
    /// own bytes; `None` for a `D` or `E` vid this store does not know.
    pub fn key(&self, vid: &Vid) -> Option<[u8; 32]> {
        match (self.by_vid.get(vid), vid.code()) {
            (Some(key), _) => Some(*key),
            (None, VidCode::B) => Some(*vid.raw()),
            (None, VidCode::D | VidCode::E) => None,
        }
    }

    /// How many vids have a key registered.
    pub fn len(&self) -> usize {
        self.by_vid.len()
    }

    /// Whether no vid has a key registered.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_vid_may_name_any_key_as_in_hios_keep() {
        let key = [7; 32];
        let rotated = Vid::new(VidCode::D, [9; 32]);
        let not_a_digest = Vid::new(VidCode::E, [1; 32]);
        let mut keys = Keys::default();
        assert_eq!(keys.key(&rotated), None);
        keys.insert(rotated, key);
        keys.insert(not_a_digest, key);
        assert_eq!(keys.key(&rotated), Some(key));
        assert_eq!(keys.key(&not_a_digest), Some(key));
        assert_eq!(keys.len(), 2);
        // A B vid is its own key, unless the store says otherwise.
        let b = Vid::new(VidCode::B, [3; 32]);
        assert_eq!(keys.key(&b), Some([3; 32]));
        keys.insert(b, key);
        assert_eq!(keys.key(&b), Some(key));
        assert_eq!(keys.remove(&rotated), Some(key));
        assert_eq!(keys.key(&rotated), None);
    }
}
