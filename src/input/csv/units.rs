//! The privacy units of a reader (streaming) or of a group of rows (filed, spilled): an
//! open-addressing table of unit records (their bounded contributions), and the batches in which
//! rows are handed to it.

use foldhash::quality::RandomState;

use super::bounding::{Bounder, prefetch};
use super::keys::{EMPTY, KEY_WORDS, is_long, store_long, stored_long, unit_hash};
use super::layout::Layout;
use super::pass::{ChunkError, Tally};

/// The privacy units one reader owns (or of one group of rows, every row of theirs): one record
/// each in `bounder`, with the unit's key at its head, found through an open-addressing table.
/// A lookup touches the table slot and the record it then updates, and nothing else (for keys
/// of up to [`INLINE_KEY`] bytes).
pub(super) struct Units {
    /// Linear probing, at most half full: [`EMPTY`], or the unit's hash's top 32 bits above its
    /// id. (Filled with a non-zero value so that its pages are written, never first mapped to
    /// the kernel's zero page and then copied on the first insert with a TLB flush on every core.)
    pub(super) slots: Vec<u64>,
    pub(super) long_keys: Vec<u8>,
    pub(super) bounder: Bounder,
    /// Bytes the units may take (records, table, long keys) before the reader gives up
    /// (`u64::MAX`: no limit).
    pub(super) limit: u64,
    /// The keyed hash of units' keys ([`unit_hash`]): the records keep no hash, so the table
    /// computes each unit's again when it grows.
    hasher: RandomState,
}

impl Units {
    pub(super) fn new(
        layout: &Layout,
        keys: &[[u64; 2]],
        (expected, limit): (usize, u64),
        hasher: &RandomState,
    ) -> Units {
        let tables: Vec<_> = layout
            .tables
            .iter()
            .zip(keys)
            .map(|(t, &key)| (t.statistic.clone(), t.cells, key))
            .collect();
        let mut bounder = Bounder::new(&tables, KEY_WORDS);
        bounder.reserve(expected);
        // Pages mapped ahead count against the limit: at most an eighth of it.
        bounder.limit_populate(limit / 8);
        Units {
            slots: vec![EMPTY; (expected * 2).next_power_of_two().max(16)],
            long_keys: Vec::new(),
            bounder,
            limit,
            hasher: *hasher,
        }
    }

    /// Forgets every unit, keeping the memory, and makes room for `expected` units.
    pub(super) fn reset(&mut self, expected: usize) {
        self.bounder.clear(expected);
        self.long_keys.clear();
        let n = (expected * 2).next_power_of_two().max(16);
        if self.slots.len() == n {
            self.slots.fill(EMPTY);
        } else {
            self.slots = vec![EMPTY; n];
        }
    }

    /// What the units hold but their exact cells: how many they are, their exact sums'
    /// contributions and, when `kept` is asked ([`super::pass::Pass::bounding_effect`]), the rows
    /// their bounds keep.
    pub(super) fn tally(&self, kept: bool) -> Tally {
        Tally {
            units: self.len() as u64,
            whole: self.bounder.whole(),
            kept: if kept {
                self.bounder.kept_rows()
            } else {
                Vec::new()
            },
            exact: Vec::new(),
            rows: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.bounder.units()
    }

    pub(super) fn footprint(&self) -> u64 {
        (self.len() * self.bounder.bytes_per_unit()
            + self.bounder.populated_ahead()
            + self.bounder.whole_bytes()
            + self.slots.len() * 8
            + self.long_keys.len()) as u64
    }

    pub(super) fn home(&self, hash: u64) -> usize {
        hash as usize & (self.slots.len() - 1)
    }

    pub(super) fn slot(hash: u64, unit: u32) -> u64 {
        (hash >> 32) << 32 | u64::from(unit)
    }

    /// Whether `unit` has the key whose [`key_words`] are `key` (and, for a long key, whose
    /// bytes are `long`).
    pub(super) fn has_key(&self, unit: u32, key: &[u64; KEY_WORDS], long: &[u8]) -> bool {
        let head: &[u64; KEY_WORDS] = self.bounder.head(unit).try_into().expect("key words");
        if !is_long(key) {
            return head == key;
        }
        head[1] == key[1] && stored_long(head, &self.long_keys) == long
    }

    /// The id of the unit with key `key` ([`key_words`], and the bytes `long` of a long key) and
    /// keyed hash `hash`, adding it if new; fails with [`ChunkError::OverMemory`] when a new unit
    /// would take the units over their limit, or the ids (32 bits) run out.
    pub(super) fn intern(
        &mut self,
        key: &[u64; KEY_WORDS],
        long: &[u8],
        hash: u64,
    ) -> Result<u32, ChunkError> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        while self.slots[i] != EMPTY {
            let (tag, unit) = (self.slots[i] >> 32, self.slots[i] as u32);
            if tag == hash >> 32 && self.has_key(unit, key, long) {
                return Ok(unit);
            }
            i = (i + 1) & mask;
        }
        // Ids are u32, and id u32::MAX under the top tag would look like an empty slot.
        if self.len() >= u32::MAX as usize
            || (self.limit != u64::MAX
                && self.footprint() + self.bounder.bytes_per_unit() as u64 > self.limit)
        {
            return Err(ChunkError::OverMemory);
        }
        let mut head = *key;
        if is_long(key) {
            store_long(&mut head, &mut self.long_keys, long);
        }
        let unit = self.bounder.add_unit(&head);
        self.slots[i] = Units::slot(hash, unit);
        if self.len() * 2 > self.slots.len() {
            self.grow();
        }
        Ok(unit)
    }

    pub(super) fn grow(&mut self) {
        self.slots = vec![EMPTY; self.slots.len() * 2];
        let mask = self.slots.len() - 1;
        for unit in 0..self.len() as u32 {
            let key: &[u64; KEY_WORDS] = self.bounder.head(unit).try_into().expect("key words");
            let long = if is_long(key) {
                stored_long(key, &self.long_keys)
            } else {
                &[]
            };
            let hash = unit_hash(&self.hasher, key, long);
            let mut i = self.home(hash);
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = Units::slot(hash, unit);
        }
    }

    /// Counts a batch of rows into their units' records. The rows are taken a window at a time,
    /// first asking for every row's table slot and then for every found record, so that their
    /// cache misses overlap instead of following one another.
    pub(super) fn absorb(&mut self, batch: &Batch) -> Result<(), ChunkError> {
        const WINDOW: usize = 32;
        let t = batch.tables;
        for start in (0..batch.len()).step_by(WINDOW) {
            let rows = start..(start + WINDOW).min(batch.len());
            for &hash in &batch.hashes[rows.clone()] {
                prefetch(&self.slots[self.home(hash)]);
            }
            for &hash in &batch.hashes[rows.clone()] {
                let slot = self.slots[self.home(hash)];
                if slot != EMPTY {
                    self.bounder.prefetch(slot as u32);
                }
            }
            for r in rows {
                let (key, long) = batch.key(r);
                let unit = self.intern(key, long, batch.hashes[r])?;
                let (cells, values) = (r * t..(r + 1) * t, r * t..(r + 1) * t);
                self.bounder.observe_row(
                    (unit, batch.hashes[r]),
                    batch.prios[r],
                    &batch.cells[cells],
                    &batch.values[values],
                );
            }
        }
        Ok(())
    }
}

/// Rows of microdata on their way to the reader that owns their units, column by column.
pub(super) struct Batch {
    pub(super) tables: usize,
    pub(super) hashes: Vec<u64>,
    /// Each row's random priority (see `input/csv/bounding.rs`).
    pub(super) prios: Vec<u64>,
    /// Each row's unit key as [`key_words`]; a long key's first word is its offset in `long`.
    pub(super) keys: Vec<[u64; KEY_WORDS]>,
    pub(super) long: Vec<u8>,
    /// Per row, one cell and one value per table.
    pub(super) cells: Vec<u32>,
    pub(super) values: Vec<i64>,
}

impl Batch {
    /// An empty batch with room for `rows` rows.
    pub(super) fn new(tables: usize, rows: usize) -> Batch {
        Batch {
            tables,
            hashes: Vec::with_capacity(rows),
            prios: Vec::with_capacity(rows),
            keys: Vec::with_capacity(rows),
            long: Vec::new(),
            cells: Vec::with_capacity(rows * tables),
            values: Vec::with_capacity(rows * tables),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Adds a row of the unit with key `id` ([`key_words`](super::keys::key_words) `key`) and
    /// keyed hash `hash`.
    pub(super) fn push(
        &mut self,
        (id, mut key, hash): (&[u8], [u64; KEY_WORDS], u64),
        prio: u64,
        cells: &[u32],
        values: &[i64],
    ) {
        self.hashes.push(hash);
        self.prios.push(prio);
        if is_long(&key) {
            store_long(&mut key, &mut self.long, id);
        }
        self.keys.push(key);
        self.cells.extend_from_slice(cells);
        self.values.extend_from_slice(values);
    }

    /// Row `row`'s unit key as [`key_words`], and its bytes if it is a long key (else empty).
    pub(super) fn key(&self, row: usize) -> (&[u64; KEY_WORDS], &[u8]) {
        let key = &self.keys[row];
        if !is_long(key) {
            return (key, &[]);
        }
        (key, stored_long(key, &self.long))
    }

    pub(super) fn clear(&mut self) {
        self.hashes.clear();
        self.prios.clear();
        self.keys.clear();
        self.long.clear();
        self.cells.clear();
        self.values.clear();
    }
}

/// Which of `n` readers (or spill partitions) owns the unit with keyed hash `hash`. Bits 40.. are
/// used (scaled to `0..n` by a multiply, not a division): the unit table takes the slot from the
/// low bits and the tag from the top 32.
pub(super) fn range_of(hash: u64, n: usize) -> usize {
    (((hash >> 40) * n as u64) >> 24) as usize
}
