//! The one SHA-256 helper, the secret nonces that make a hash safe to publish, and the inputs'
//! fingerprints (a file's: BLAKE3, from the parallel readers' pieces, [`pieces`]).
//!
//! Owns how bytes become a hex digest. A digest of private data (an input's bytes, a ledger line
//! that holds input fingerprints) is an exact function of that data: it may go into the ledger,
//! which is private, but never into a release folder unless the hashed bytes carry a secret
//! [`nonce`] (then the digest is a hiding commitment and reveals nothing).

use sha2::{Digest, Sha256};

mod pieces;
pub use pieces::{Piece, PieceHasher, combine};

/// SHA-256 of `bytes`, as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// 256 fresh bits from the operating system's generator, as hex: a secret that, written into a
/// ledger line, makes that line's SHA-256 independent of everything else the line holds.
pub fn nonce() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What identifies an input's content in the ledger: a re-run of a release is the same release
/// only if each input's fingerprint is the one its charge recorded (private, like the data).
///
/// A fingerprint names its scheme before a `:` (`blake3:` for a file's bytes; an engine's for a
/// database relation, see `input::sql`). A recorded fingerprint without a scheme is the scheme
/// of safestat before 2026-12-05 (SHA-256 of a file's bytes; SHA-256 over an MD5 digest of a
/// relation's rows): it is computed too, as `legacy`, when the ledger still holds one
/// ([`is_legacy`]), so that a release made before an upgrade is still recognised after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// In the current scheme: what a new charge records.
    pub now: String,
    /// In the scheme of earlier charges, when the read was asked for it.
    pub legacy: Option<String>,
}

impl Fingerprint {
    /// A file's fingerprint from its BLAKE3 hash (in the current scheme only).
    pub fn blake3(hash: blake3::Hash) -> Fingerprint {
        Fingerprint {
            now: format!("blake3:{}", hash.to_hex()),
            legacy: None,
        }
    }

    /// Whether `recorded` (from a charge) fingerprints the same content as this one.
    pub fn matches(&self, recorded: &str) -> bool {
        self.now == recorded || self.legacy.as_deref() == Some(recorded)
    }
}

/// Each input's fingerprint, by name (private: functions of the data).
pub type Fingerprints = std::collections::BTreeMap<String, Fingerprint>;

/// Whether a recorded fingerprint is in the scheme before schemes were named.
pub fn is_legacy(recorded: &str) -> bool {
    !recorded.contains(':')
}

/// A file's fingerprint, fed its bytes in order: BLAKE3 (about 2.6 times as fast as SHA-256
/// here, BENCHMARKS.md, issue 27), and SHA-256 too when `legacy` is asked for.
pub struct FileHasher {
    blake3: blake3::Hasher,
    sha256: Option<Sha256>,
}

impl FileHasher {
    pub fn new(legacy: bool) -> FileHasher {
        FileHasher {
            blake3: blake3::Hasher::new(),
            sha256: legacy.then(Sha256::new),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.blake3.update(bytes);
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(bytes);
        }
    }

    pub fn finish(self) -> Fingerprint {
        Fingerprint {
            legacy: self.sha256.map(|s| hex::encode(s.finalize())),
            ..Fingerprint::blake3(self.blake3.finalize())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_fingerprint_names_its_scheme_and_matches_either_scheme() {
        let mut h = FileHasher::new(true);
        h.update(b"abc");
        let f = h.finish();
        // BLAKE3's and SHA-256's published test vectors for "abc".
        assert_eq!(
            f.now,
            "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(f.legacy.as_deref(), Some(sha));
        assert!(f.matches(&f.now) && f.matches(sha) && !f.matches("blake3:00"));
        assert!(is_legacy(sha) && !is_legacy(&f.now));
        let mut without = FileHasher::new(false);
        without.update(b"abc");
        let without = without.finish();
        assert_eq!(
            (without.now.as_str(), without.legacy),
            (f.now.as_str(), None)
        );
        assert!(
            !Fingerprint {
                now: f.now,
                legacy: None
            }
            .matches(sha)
        );
    }
}
