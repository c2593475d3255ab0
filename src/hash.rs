//! The one SHA-256 helper, and the secret nonces that make a hash safe to publish.
//!
//! Owns how bytes become a hex digest. A digest of private data (an input's bytes, a ledger line
//! that holds input fingerprints) is an exact function of that data: it may go into the ledger,
//! which is private, but never into a release folder unless the hashed bytes carry a secret
//! [`nonce`] (then the digest is a hiding commitment and reveals nothing).

use sha2::{Digest, Sha256};

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
