//! What the readers of one pass over a CSV input share: the pass itself ([`Pass`]), what each
//! reader counts ([`Tally`]) and how a chunk fails ([`ChunkError`]).

use std::path::Path;

use super::layout::Layout;
use super::problems::Problems;
use super::progress::Counters;

/// What every reader of one input shares.
#[derive(Clone, Copy)]
pub(super) struct Pass<'a> {
    pub(super) path: &'a Path,
    pub(super) layout: &'a Layout,
    /// The keyed hash of unit keys (one key for the whole input, so readers agree).
    pub(super) hasher: &'a foldhash::quality::RandomState,
    /// Per table, the secret key of its `count_units` priorities.
    pub(super) keys: &'a [[u64; 2]],
    pub(super) counters: &'a Counters,
    /// Whether rows are split by the csv crate (the input may quote fields) or by [`Unquoted`].
    pub(super) quoted: bool,
    /// Whether a quoted field may hold a line break (the input's `multiline`).
    pub(super) multiline: bool,
    /// Whether to count what the row bounds keep ([`ReadOptions::bounding_effect`]).
    pub(super) bounding_effect: bool,
    /// Where each reader leaves the BLAKE3 piece of the bytes it read, once it has read them
    /// all ([`crate::hash::PieceHasher`]); `None` when the pass does not fingerprint the file.
    pub(super) pieces: Option<&'a std::sync::Mutex<Vec<crate::hash::Piece>>>,
}

/// Exact cells per table, with the row and unit counts.
pub(super) struct Tally {
    /// Every table's cells, in table order, then each `sum` table's contributors in order
    /// ([`super::bounding::Bounder::finish`]; turned into one result per count by
    /// [`super::per_count`]).
    pub(super) exact: Vec<Vec<i128>>,
    /// Per exact table's sum (in order), what its units contributed ([`super::bounding::Bounder::whole`]).
    pub(super) whole: Vec<crate::input::Whole>,
    pub(super) rows: u64,
    pub(super) units: u64,
    /// Per table, the rows kept under its row bounds ([`Bounder::kept_rows`]); empty when not
    /// asked for ([`ReadOptions::bounding_effect`]).
    pub(super) kept: Vec<Option<[u64; 2]>>,
}

impl Tally {
    /// Adds another reader's (or partition's) counts: its units are not this one's, so the exact
    /// cells add up. `keep` is, per exact sum table, how many of each cell's largest sums its
    /// rules read ([`Layout::keep_largest`]).
    pub(super) fn add(total: Option<Tally>, other: Tally, keep: &[usize]) -> Option<Tally> {
        let Some(mut total) = total else {
            return Some(other);
        };
        for (cells, add) in total.exact.iter_mut().zip(&other.exact) {
            for (c, v) in cells.iter_mut().zip(add) {
                *c += *v;
            }
        }
        // Each part's lists hold its own units' largest; merged, the largest of all.
        debug_assert_eq!(keep.len(), total.whole.len(), "a k per exact sum table");
        for ((whole, add), &k) in total.whole.iter_mut().zip(other.whole).zip(keep) {
            for (list, more) in whole.largest.iter_mut().zip(&add.largest) {
                for &v in more {
                    crate::input::keep_largest(list, v, k);
                }
            }
            for (n, m) in whole.units.iter_mut().zip(&add.units) {
                *n += *m;
            }
            whole.spanning.extend(add.spanning);
        }
        total.rows += other.rows;
        total.units += other.units;
        for (kept, add) in total.kept.iter_mut().zip(&other.kept) {
            if let (Some(k), Some(a)) = (kept.as_mut(), add) {
                k[0] += a[0];
                k[1] += a[1];
            }
        }
        Some(total)
    }
}

/// A failure inside a chunk, located by absolute byte offset (turned into a line number only
/// when reported, since a chunk does not know how many lines precede it).
pub(super) enum ChunkError {
    Io(std::io::Error),
    /// The chunk's units outgrew its share of the memory limit: spill instead.
    OverMemory,
    /// The chunk's rows outgrew its share of the budget for rows filed in memory: stream instead.
    Unfiled,
    /// Another reader failed first (it reports why).
    Aborted,
    /// The input holds a `"`: it must be read again, in one piece, by the csv crate.
    Quoted,
    /// A record the parser cannot read past: reported alone.
    At {
        byte: u64,
        field: Option<usize>,
        message: String,
    },
    /// A sink's verdict on one row (a duplicate cell): collected with the other bad rows.
    Row {
        field: Option<usize>,
        group: String,
        message: String,
    },
    /// The bad rows this reader found (it read on past them, bounding nothing more).
    Rows(Problems),
}
