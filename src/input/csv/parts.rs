//! Rows in memory, filed by their unit: each reader files every row it reads, compactly, in one
//! of many partitions chosen by the unit's keyed hash; once every row is read, each partition is
//! bounded on its own. A partition's units are few enough that their records and table stay in
//! the cache while its rows are counted into them: the rows of a unit never meet a unit record
//! that has to come from memory (a lookup in one table of every unit waited on two misses a
//! row, the table's slot and then the record). The partitions' exact cells add up: every unit's
//! rows are in one partition.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::keys::{INLINE_KEY, KEY_WORDS, is_long, store_long, stored_long, unit_hash};
use super::layout::Layout;
use super::pass::{ChunkError, Pass, Tally};
use super::units::{Units, range_of};

/// Partitions the readers file rows in, at most: a reader writes to the end of every
/// partition in turn, and the processor's stream prefetchers follow a few dozen such streams but
/// not hundreds (at 1,024 the filing took a quarter longer).
const MAX_PARTITIONS: u64 = 64;
/// Rows a partition is aimed at: no fewer (from the input's size, before reading; at about
/// 24 bytes a row). Small in the unit tests, so that their inputs of a few thousand rows go
/// through many partitions and groups.
const MIN_PARTITION_ROWS: u64 = if cfg!(test) { 16 } else { 1 << 15 };
/// Rows a partition is counted in at a time, at most (about): its units' records (about 100
/// bytes a unit) and table then stay in the processor's second-level cache.
const GROUP_ROWS: usize = if cfg!(test) { 64 } else { 1 << 12 };

/// Bytes of rows [`fits`] reads to judge how long a row is.
const SAMPLE_BYTES: usize = 1 << 18;

/// Whether the rows in `[start, end)` of `file` would fit `budget` bytes filed in memory by
/// `readers` readers ([`Parts`], with what bounding them on `bounders` threads takes besides),
/// judged by the rows in the first [`SAMPLE_BYTES`] bytes: how many there are, and their unit
/// keys' bytes beyond the inline ones. An input whose later rows are much shorter can fit in
/// the judgement and not in fact: its readers then stop, and it is read again, streamed
/// ([`ChunkError::Unfiled`]).
pub(super) fn fits(
    file: &mut std::fs::File,
    (start, end): (u64, u64),
    (layout, readers, bounders): (&Layout, usize, usize),
    budget: u64,
) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let Some(unit) = layout.unit_column else {
        return Ok(false);
    };
    let body = end - start;
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    file.seek(SeekFrom::Start(start))?;
    file.by_ref()
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)?;
    let lines = sample.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let (mut rows, mut long) = (0u64, 0u64);
    for line in lines {
        rows += 1;
        let id = line.split(|&b| b == b',').nth(unit).unwrap_or_default();
        if id.len() > INLINE_KEY {
            long += id.len() as u64;
        }
    }
    let parts = Parts::new(layout, partitions(body));
    let sample_rows = rows.max(1);
    let filed = (u128::from(body) * u128::from(sample_rows * (parts.width * 8) as u64 + long))
        / u128::from((sample.len() as u64).max(1));
    let share = parts.filing_limit(budget / readers as u64, bounders);
    Ok(filed <= u128::from(share) * readers as u128)
}

/// How many partitions a pass over `body` bytes of rows files them in.
pub(super) fn partitions(body: u64) -> usize {
    (body / 24 / MIN_PARTITION_ROWS)
        .clamp(1, MAX_PARTITIONS)
        .next_power_of_two() as usize
}

/// One reader's rows, by partition. A row is [`Parts::width`] words: its unit's key words (a
/// long key's bytes in the partition's arena), its cell in each table (four to a word when
/// every table has at most 65,536 cells, else two), and the value of each `sum` table (clamped).
/// Its priority is drawn when it is counted.
pub(super) struct Parts {
    width: usize,
    /// Bits a cell takes: 16 or 32.
    cell_bits: usize,
    cell_words: usize,
    /// The tables that sum a column, in order.
    sums: Vec<usize>,
    rows: Vec<Vec<u64>>,
    long: Vec<Vec<u8>>,
    /// Bytes the rows take (their vectors may have reserved up to twice as much address
    /// space, but pages are only mapped when written).
    bytes: u64,
}

impl Parts {
    pub(super) fn new(layout: &Layout, partitions: usize) -> Parts {
        let sums: Vec<usize> = (0..layout.tables.len())
            .filter(|&t| layout.tables[t].sum.is_some())
            .collect();
        let cell_bits = if layout.tables.iter().all(|t| t.cells <= 1 << 16) {
            16
        } else {
            32
        };
        let cell_words = layout.tables.len().div_ceil(64 / cell_bits);
        Parts {
            width: KEY_WORDS + cell_words + sums.len(),
            cell_bits,
            cell_words,
            sums,
            rows: vec![Vec::new(); partitions],
            long: vec![Vec::new(); partitions],
            bytes: 0,
        }
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The bytes of rows a reader may file within `share`, its part of the memory limit, when
    /// the readers file alike: bounding then takes, on each of `bounders` threads, a copy of at
    /// most 9/8 of one partition's rows (every reader's, and their hashes: [`bound_parts`]
    /// counts a larger partition where it lies), a reader's part of which is this reader's
    /// bytes / partitions * bounders * 9/8 * (width + 2) / width.
    pub(super) fn filing_limit(&self, share: u64, bounders: usize) -> u64 {
        let (p, w, t) = (
            self.rows.len() as u128,
            self.width as u128,
            bounders as u128,
        );
        // bytes + bytes * t / p * 9/8 * (w + 2) / w <= share
        (u128::from(share) * 8 * p * w / (8 * p * w + 9 * t * (w + 2))) as u64
    }

    /// Files a row of the unit with key `id` ([`key_words`](super::keys::key_words) `key`) in
    /// partition `part`: per table its cell and value.
    pub(super) fn push(
        &mut self,
        part: usize,
        (id, mut key): (&[u8], [u64; KEY_WORDS]),
        cells: &[u32],
        values: &[i64],
    ) {
        let rows = &mut self.rows[part];
        if is_long(&key) {
            store_long(&mut key, &mut self.long[part], id);
            self.bytes += id.len() as u64;
        }
        rows.extend_from_slice(&key);
        for word in cells.chunks(64 / self.cell_bits) {
            let packed = word
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, &c)| w | u64::from(c) << (i * self.cell_bits));
            rows.push(packed);
        }
        for &t in &self.sums {
            rows.push(values[t] as u64);
        }
        self.bytes += (self.width * 8) as u64;
    }

    /// The unit key of `row` (a row of [`Parts::width`] words, its long keys in `long`): its
    /// key words and, for a long key, its bytes (else empty).
    fn key<'a>(row: &[u64], long: &'a [u8]) -> ([u64; KEY_WORDS], &'a [u8]) {
        let key: [u64; KEY_WORDS] = row[..KEY_WORDS].try_into().expect("key words");
        if is_long(&key) {
            (key, stored_long(&key, long))
        } else {
            (key, &[])
        }
    }

    /// Per table, `row`'s cell and what it adds (1, or its sum's value).
    fn decode(&self, row: &[u64], (cells, values): (&mut [u32], &mut [i64])) {
        let (packed, sums) = row[KEY_WORDS..].split_at(self.cell_words);
        let mask = (1u64 << self.cell_bits) - 1;
        for (cells, &w) in cells.chunks_mut(64 / self.cell_bits).zip(packed) {
            for (i, c) in cells.iter_mut().enumerate() {
                *c = (w >> (i * self.cell_bits) & mask) as u32;
            }
        }
        for (&t, &v) in self.sums.iter().zip(sums) {
            values[t] = v as i64;
        }
    }
}

/// Bounds the partitions of every reader's [`Parts`] (all with the same number of partitions),
/// taking the next partition not yet taken from `next` until none is left: the exact cells of
/// the partitions this worker took, with their units and whole-table contributions. Call it on
/// several threads with the same `next` to share the partitions out.
pub(super) fn bound_parts(
    pass: Pass,
    parts: &[Parts],
    next: &AtomicUsize,
) -> Result<Tally, ChunkError> {
    let mut counter = Counter::new(pass);
    let Some(first) = parts.first() else {
        return Ok(counter.finish());
    };
    let partitions = first.rows.len();
    let rows: usize = parts
        .iter()
        .map(|r| r.rows.iter().map(Vec::len).sum::<usize>())
        .sum();
    // A partition of more than 9/8 of its share (one with a unit of very many rows) is counted
    // where it lies: a copy in groups could take more memory than the filing left for it.
    let most_sorted = (rows / first.width).div_ceil(partitions) * 9 / 8 + GROUP_ROWS;
    let mut sorted = Sorted::default();
    loop {
        let p = next.fetch_add(1, Ordering::Relaxed);
        if p >= partitions {
            break;
        }
        let rows = || {
            parts.iter().flat_map(move |r| {
                let long = &r.long[p][..];
                r.rows[p].chunks_exact(r.width).map(move |row| (row, long))
            })
        };
        let hash = |row: &[u64], long: &[u8]| {
            let (key, id) = Parts::key(row, long);
            unit_hash(pass.hasher, &key, id)
        };
        let n: usize = parts.iter().map(|r| r.rows[p].len() / r.width).sum();
        let groups = n.div_ceil(GROUP_ROWS).next_power_of_two();
        if groups == 1 || n > most_sorted {
            counter.count(first, rows().map(|(r, l)| (hash(r, l), r, l)))?;
            continue;
        }
        sorted.hashes.clear();
        sorted.hashes.extend(rows().map(|(r, l)| hash(r, l)));
        // Groups from the hash bits just below those that chose the partition (a unit's rows
        // are all in one partition, and in one group of it).
        sorted.sort(
            rows(),
            first.width,
            |h| range_of(h, partitions * groups) - p * groups,
            groups,
        );
        for g in 0..groups {
            counter.count(first, sorted.group(g))?;
        }
    }
    Ok(counter.finish())
}

/// The rows of one partition (every reader's) sorted into groups by their unit's hash.
#[derive(Default)]
struct Sorted {
    /// The partition's units' hashes, in the readers' order.
    hashes: Vec<u64>,
    /// The rows in group order, each a hash then the row's words.
    rows: Vec<u64>,
    /// The rows' long keys.
    long: Vec<u8>,
    /// Where each group starts (in rows), and where the last ends.
    starts: Vec<usize>,
    /// Words a row takes in `rows`.
    stride: usize,
}

impl Sorted {
    /// Copies `rows` (of `width` words each, and their long keys; one per [`Sorted::hashes`])
    /// into `groups` groups by `group` of their hash: a counting sort.
    fn sort<'a>(
        &mut self,
        rows: impl Iterator<Item = (&'a [u64], &'a [u8])>,
        width: usize,
        group: impl Fn(u64) -> usize,
        groups: usize,
    ) {
        let n = self.hashes.len();
        self.stride = width + 1;
        self.starts.clear();
        self.starts.resize(groups + 1, 0);
        for &h in &self.hashes {
            self.starts[group(h) + 1] += 1;
        }
        for g in 0..groups {
            self.starts[g + 1] += self.starts[g];
        }
        let mut fill = self.starts.clone();
        // Every word is written below: the buffer only grows.
        if self.rows.len() < n * self.stride {
            self.rows.resize(n * self.stride, 0);
        }
        self.long.clear();
        for ((row, long), &h) in rows.zip(&self.hashes) {
            let at = &mut fill[group(h)];
            let to = &mut self.rows[*at * self.stride..(*at + 1) * self.stride];
            *at += 1;
            to[0] = h;
            for (to, &w) in to[1..].iter_mut().zip(row) {
                *to = w;
            }
            let (mut key, id) = Parts::key(row, long);
            if is_long(&key) {
                store_long(&mut key, &mut self.long, id);
                to[1] = key[0];
            }
        }
    }

    /// Group `g`'s rows: each with its unit's hash and the long keys.
    fn group(&self, g: usize) -> impl Iterator<Item = (u64, &[u64], &[u8])> {
        self.rows[self.starts[g] * self.stride..self.starts[g + 1] * self.stride]
            .chunks_exact(self.stride)
            .map(|row| (row[0], &row[1..], &self.long[..]))
    }
}

/// Counts groups of rows into their units, each group on its own (its units have no rows
/// elsewhere), adding up their exact cells.
struct Counter<'a> {
    pass: Pass<'a>,
    units: Units,
    rng: StdRng,
    cells: Vec<u32>,
    values: Vec<i64>,
    exact: Vec<Vec<i128>>,
    keep: Vec<usize>,
    /// What the groups counted but their cells (none before the first).
    total: Option<Tally>,
}

impl<'a> Counter<'a> {
    fn new(pass: Pass<'a>) -> Counter<'a> {
        let layout = pass.layout;
        let units = Units::new(layout, pass.keys, (0, u64::MAX), pass.hasher);
        let tables = layout.tables.len();
        Counter {
            exact: units.bounder.zero_cells(),
            keep: layout.keep_largest(),
            total: None,
            pass,
            units,
            rng: StdRng::from_entropy(),
            cells: vec![0; tables],
            values: vec![1; tables],
        }
    }

    /// Counts `rows` (each with its unit's hash and the arena of its long key; every row of
    /// their units) into their units, then those units' kept contributions into the cells.
    fn count<'r>(
        &mut self,
        parts: &Parts,
        rows: impl Iterator<Item = (u64, &'r [u64], &'r [u8])>,
    ) -> Result<(), ChunkError> {
        let mut rows = rows.peekable();
        if rows.peek().is_none() {
            return Ok(());
        }
        // The table grows if the rows' units are more.
        self.units.reset(2 * GROUP_ROWS);
        for (hash, row, long) in rows {
            let (key, id) = Parts::key(row, long);
            parts.decode(row, (&mut self.cells, &mut self.values));
            let unit = self.units.intern(&key, id, hash)?;
            self.units.bounder.observe_row(
                (unit, hash),
                self.rng.r#gen(),
                &self.cells,
                &self.values,
            );
        }
        self.units.bounder.add_cells(&mut self.exact);
        let counted = self.units.tally(self.pass.bounding_effect);
        self.total = Tally::add(self.total.take(), counted, &self.keep);
        Ok(())
    }

    fn finish(self) -> Tally {
        let total = self
            .total
            .unwrap_or_else(|| self.units.tally(self.pass.bounding_effect));
        Tally {
            exact: self.exact,
            ..total
        }
    }
}
