//! BLAKE3 of a file read in pieces by several readers at once, each hashing the bytes it reads:
//! the file is read once, and the fingerprint is of exactly the bytes that were counted.
//!
//! BLAKE3 is a tree over 1,024-byte chunks in which every subtree of a power-of-two number of
//! chunks, starting at a multiple of its length, is a node of the whole input's tree. A reader
//! hashes such subtrees of its bytes (at most [`SUBTREE`] long) into chaining values with
//! `blake3::hazmat`, and keeps as loose bytes what fills no whole chunk of its own: where its
//! piece starts or ends inside a chunk (the chunk is shared with the next reader), and the file's
//! first chunk (the whole input, for a file of one chunk, whose root hash is that chunk's own).
//! [`combine`] hashes the loose bytes into chunks once the pieces are together and joins
//! everything into the root as the tree prescribes ([`blake3::hazmat::left_subtree_len`]). The
//! result is `blake3::hash` of the whole file, checked against it for many lengths and splits.

use std::collections::HashMap;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};
use blake3::{CHUNK_LEN, Hasher};

const CHUNK: u64 = CHUNK_LEN as u64;
/// The longest subtree a reader hashes as one: 64 chunks, enough for BLAKE3's widest SIMD path
/// (16 chunks at once), few enough to stay in the cache.
const SUBTREE: u64 = 64 * CHUNK;

/// One reader's part of the tree, for bytes `[start, end)` of the file.
pub struct Piece {
    start: u64,
    end: u64,
    nodes: Vec<Node>,
}

enum Node {
    /// A whole subtree of `len` bytes at `at`, as its chaining value.
    Subtree {
        at: u64,
        len: u64,
        cv: ChainingValue,
    },
    /// Bytes at `at` that fill no whole chunk of this piece, hashed by [`combine`].
    Loose { at: u64, bytes: Vec<u8> },
}

/// Hashes the bytes of one piece, fed in order from its start.
pub struct PieceHasher {
    /// Where the piece starts, and the offset of the next byte.
    start: u64,
    at: u64,
    /// The bytes of the node being filled (it starts at `at - pending.len()`), when they came in
    /// more than one update.
    pending: Vec<u8>,
    nodes: Vec<Node>,
}

impl PieceHasher {
    /// A piece starting at byte `start` of the file.
    pub fn new(start: u64) -> PieceHasher {
        PieceHasher {
            start,
            at: start,
            pending: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// The offset of the next byte: the piece's end once every byte is in.
    pub fn offset(&self) -> u64 {
        self.at
    }

    /// Where the node being filled starts, and how long it is when whole (whether loose).
    fn node(&self) -> (u64, u64, bool) {
        let from = self.at - self.pending.len() as u64;
        if !from.is_multiple_of(CHUNK) {
            // The piece began inside a chunk: up to its end, loose.
            return (from, CHUNK - from % CHUNK, true);
        }
        if from == 0 {
            return (0, CHUNK, true);
        }
        (from, SUBTREE.min(1 << from.trailing_zeros()), false)
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (from, len, loose) = self.node();
            let need = (len as usize) - self.pending.len();
            if need > bytes.len() {
                self.pending.extend_from_slice(bytes);
                self.at += bytes.len() as u64;
                return;
            }
            self.at += need as u64;
            if self.pending.is_empty() {
                self.nodes.push(node(from, &bytes[..need], loose));
            } else {
                self.pending.extend_from_slice(&bytes[..need]);
                self.nodes.push(node(from, &self.pending, loose));
                self.pending.clear();
            }
            bytes = &bytes[need..];
        }
    }

    /// The piece, once its last byte is in: a node left unfilled is hashed as the largest
    /// whole subtrees it holds, and what fills no whole chunk stays loose.
    pub fn finish(mut self) -> Piece {
        let (mut from, _, loose) = self.node();
        let mut rest: &[u8] = &self.pending;
        if !loose {
            // `from` is a multiple of the unfilled node's length, a power of two longer than
            // `rest`: each largest power of two of chunks in `rest` starts at a multiple of its
            // own length.
            while rest.len() as u64 >= CHUNK {
                let len = 1u64 << (rest.len() as u64 / CHUNK).ilog2() << CHUNK.ilog2();
                self.nodes.push(node(from, &rest[..len as usize], false));
                (from, rest) = (from + len, &rest[len as usize..]);
            }
        }
        if !rest.is_empty() {
            self.nodes.push(Node::Loose {
                at: from,
                bytes: rest.to_vec(),
            });
        }
        Piece {
            start: self.start,
            end: self.at,
            nodes: self.nodes,
        }
    }
}

/// A whole node's bytes at `at`, hashed unless loose.
fn node(at: u64, bytes: &[u8], loose: bool) -> Node {
    if loose {
        return Node::Loose {
            at,
            bytes: bytes.to_vec(),
        };
    }
    Node::Subtree {
        at,
        len: bytes.len() as u64,
        cv: chaining_value(at, bytes),
    }
}

/// The chaining value of the subtree (or chunk) `bytes` at `at`.
fn chaining_value(at: u64, bytes: &[u8]) -> ChainingValue {
    Hasher::new()
        .set_input_offset(at)
        .update(bytes)
        .finalize_non_root()
}

/// BLAKE3 of a file of `len` bytes from its pieces (in any order), or `None` unless they cover
/// `[0, len)` exactly, each byte once.
pub fn combine(mut pieces: Vec<Piece>, len: u64) -> Option<blake3::Hash> {
    pieces.sort_by_key(|p| (p.start, p.end));
    let mut at = 0;
    for p in &pieces {
        if p.start != at {
            return None;
        }
        at = p.end;
    }
    if at != len {
        return None;
    }
    // The loose bytes, joined where they touch, are whole chunks (the last may be the file's
    // short last chunk).
    let mut nodes: HashMap<u64, (u64, ChainingValue)> = HashMap::new();
    let mut loose: Option<(u64, Vec<u8>)> = None;
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    for node in pieces.into_iter().flat_map(|p| p.nodes) {
        match node {
            Node::Subtree { at, len, cv } => {
                chunks.extend(loose.take());
                nodes.insert(at, (len, cv));
            }
            Node::Loose { at, bytes } => match &mut loose {
                Some((from, run)) if *from + run.len() as u64 == at => run.extend(bytes),
                _ => {
                    chunks.extend(loose.take());
                    loose = Some((at, bytes));
                }
            },
        }
    }
    chunks.extend(loose);
    if len <= CHUNK {
        // One chunk (or none): the root is that chunk's, all of it loose.
        let bytes = chunks.first().map_or(&[][..], |(_, b)| b.as_slice());
        return (bytes.len() as u64 == len).then(|| blake3::hash(bytes));
    }
    for (from, run) in chunks {
        for (i, chunk) in run.chunks(CHUNK_LEN).enumerate() {
            let at = from + i as u64 * CHUNK;
            if !at.is_multiple_of(CHUNK)
                || (chunk.len() < CHUNK_LEN && at + chunk.len() as u64 != len)
            {
                return None;
            }
            nodes.insert(at, (chunk.len() as u64, chaining_value(at, chunk)));
        }
    }
    let left = left_subtree_len(len);
    Some(merge_subtrees_root(
        &subtree(&nodes, 0, left)?,
        &subtree(&nodes, left, len - left)?,
        Mode::Hash,
    ))
}

/// The chaining value of the tree's node of `len` bytes at `at`, from the pieces' nodes.
fn subtree(nodes: &HashMap<u64, (u64, ChainingValue)>, at: u64, len: u64) -> Option<ChainingValue> {
    if let Some(&(l, cv)) = nodes.get(&at)
        && l == len
    {
        return Some(cv);
    }
    if len <= CHUNK {
        return None;
    }
    let left = left_subtree_len(len);
    Some(merge_subtrees_non_root(
        &subtree(nodes, at, left)?,
        &subtree(nodes, at + left, len - left)?,
        Mode::Hash,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `data` hashed in pieces split at `cuts`, each fed in updates of random sizes.
    fn in_pieces(data: &[u8], cuts: &[usize], rng: &mut impl Rng) -> Option<blake3::Hash> {
        let mut bounds = vec![0];
        bounds.extend(cuts);
        bounds.push(data.len());
        let pieces = bounds
            .windows(2)
            .map(|w| {
                let mut h = PieceHasher::new(w[0] as u64);
                let mut at = w[0];
                while at < w[1] {
                    let n = rng.gen_range(1..=(w[1] - at).min(3 * SUBTREE as usize));
                    h.update(&data[at..at + n]);
                    at += n;
                }
                assert_eq!(h.offset(), w[1] as u64);
                h.finish()
            })
            .rev()
            .collect();
        combine(pieces, data.len() as u64)
    }

    #[test]
    fn pieces_give_blake3_of_the_whole_for_any_length_and_split() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut data = vec![0u8; 600_000];
        rng.fill(&mut data[..]);
        let edges = [
            0,
            1,
            1023,
            1024,
            1025,
            2048,
            3071,
            65_536,
            65_537,
            131_072,
            131_072 + 5,
            262_144,
        ];
        let mut lengths: Vec<usize> = edges.to_vec();
        lengths.extend((0..40).map(|_| rng.gen_range(0..data.len())));
        lengths.push(data.len());
        for &len in &lengths {
            let whole = blake3::hash(&data[..len]);
            for pieces in 1..=5 {
                let mut cuts: Vec<usize> = (1..pieces).map(|_| rng.gen_range(0..=len)).collect();
                // Cuts on and beside chunk and subtree boundaries too.
                if pieces > 1 && len > 70_000 {
                    cuts[0] = [1024, 1023, 65_536, 65_535, 65_537][rng.gen_range(0..5)];
                }
                cuts.sort();
                assert_eq!(
                    in_pieces(&data[..len], &cuts, &mut rng),
                    Some(whole),
                    "length {len}, cuts {cuts:?}"
                );
            }
            // Many pieces within one chunk (readers of a few rows each), then one long piece.
            let from = rng.gen_range(0..=len);
            let mut cuts: Vec<usize> = (0..12)
                .map(|_| rng.gen_range(from..=len.min(from + 1000)))
                .collect();
            cuts.sort();
            assert_eq!(
                in_pieces(&data[..len], &cuts, &mut rng),
                Some(whole),
                "length {len}, cuts {cuts:?}"
            );
        }
    }

    #[test]
    fn pieces_that_miss_or_repeat_bytes_give_nothing() {
        let data = vec![7u8; 100_000];
        let piece = |from: usize, to: usize| {
            let mut h = PieceHasher::new(from as u64);
            h.update(&data[from..to]);
            h.finish()
        };
        let len = data.len() as u64;
        assert!(combine(vec![piece(0, 50_000), piece(50_000, 100_000)], len).is_some());
        assert!(combine(vec![piece(0, 50_000), piece(50_001, 100_000)], len).is_none());
        assert!(combine(vec![piece(0, 50_000), piece(49_999, 100_000)], len).is_none());
        assert!(combine(vec![piece(0, 50_000)], len).is_none());
        assert!(combine(vec![piece(10, 100_000)], len).is_none());
        assert!(combine(Vec::new(), 0) == Some(blake3::hash(b"")));
    }
}
