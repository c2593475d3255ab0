//! Privacy-unit keys as words: up to 15 bytes inline (length in the last byte), longer keys in
//! an arena.

use std::hash::BuildHasher;

use foldhash::quality::RandomState;

/// Bytes of a unit's key kept in its record; longer keys live in [`Units::long_keys`].
pub(super) const INLINE_KEY: usize = 15;
/// Words at the head of a unit's record that hold its key ([`key_words`]).
pub(super) const KEY_WORDS: usize = 2;
/// Set in the second key word of a long key.
pub(super) const LONG_KEY: u64 = 1 << 63;
/// An empty slot of [`Units::slots`].
pub(super) const EMPTY: u64 = u64::MAX;
/// A unit's key as its record holds it. A key of up to [`INLINE_KEY`] bytes: its bytes in the
/// first 15 bytes of the two words and its length in the last, so the packing is one-to-one. The
/// bytes are read with a few (possibly overlapping) unaligned loads, never a variable-length
/// copy. A longer key: its offset in an arena (filled in when it is stored), then [`LONG_KEY`]
/// and its length.
pub(super) fn key_words(id: &[u8]) -> [u64; KEY_WORDS] {
    let n = id.len();
    let word = |at: usize| u64::from_le_bytes(id[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            id[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    let length = (n as u64) << 56;
    match n {
        0 => [0, 0],
        1..=3 => [
            u64::from(id[0]) | u64::from(id[n / 2]) << 8 | u64::from(id[n - 1]) << 16,
            length,
        ],
        4..=8 => [half(0) | half(n - 4) << 32, length],
        // The second load overlaps the first by 16 - n bytes, shifted out.
        9..=INLINE_KEY => [word(0), word(n - 8) >> (8 * (16 - n)) | length],
        _ => [0, LONG_KEY | n as u64],
    }
}

/// A unit's keyed hash, from its [`key_words`] when its key is inline (two words hashed, no
/// loop over bytes) or from its bytes `long` when it is long. The reader that routes a row, the
/// spilling that partitions it and the unit table that places it again when it grows all compute
/// it so, and so agree.
pub(super) fn unit_hash(hasher: &RandomState, key: &[u64; KEY_WORDS], long: &[u8]) -> u64 {
    if is_long(key) {
        hasher.hash_one(long)
    } else {
        hasher.hash_one((key[0], key[1]))
    }
}

pub(super) fn is_long(key: &[u64; KEY_WORDS]) -> bool {
    key[1] & LONG_KEY != 0
}

/// Stores the bytes of long key `key` at the end of `arena`, and their offset in its first word.
pub(super) fn store_long(key: &mut [u64; KEY_WORDS], arena: &mut Vec<u8>, bytes: &[u8]) {
    key[0] = arena.len() as u64;
    arena.extend_from_slice(bytes);
}

/// The bytes of long key `key`, stored in `arena` by [`store_long`].
pub(super) fn stored_long<'a>(key: &[u64; KEY_WORDS], arena: &'a [u8]) -> &'a [u8] {
    let start = key[0] as usize;
    &arena[start..start + (key[1] & !LONG_KEY) as usize]
}
