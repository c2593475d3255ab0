//! Input readers: stream a CSV input once, check every value against the plan, and feed each
//! table's contribution bounding.
//!
//! Owns header resolution, category interning (values become small integer codes), privacy-unit
//! interning, value parsing and the SHA-256 of the bytes read. Errors name the file, the line and
//! the field. Must never print, log or return a data value other than the offending one in an
//! error message, and never the exact cells it produces.

use std::collections::HashMap;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use std::sync::mpsc::{Receiver, Sender, channel};

use crate::bounding::{Bounder, prefetch};
use crate::plan::{Dimension, InputKind, Plan, Statistic};
use crate::records::{Quoted, RecordError, Records, Unquoted};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open input `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read input `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: the header has no column `{column}` (needed by {needed_by}); columns are: {available}{suggestion}"
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        needed_by: String,
        available: String,
        /// `; did you mean ...?` when a column's name is close.
        suggestion: String,
    },
    #[error(
        "{path}: too many privacy units for one spill partition (at most 4,294,967,295); split the input"
    )]
    TooManyUnits { path: PathBuf },
    #[error("input `{path}` changed while it was being read; run again once it is complete")]
    Changed { path: PathBuf },
    #[error("{path}: the header names column `{column}` twice")]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("{path}:{line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// Every bad row found, grouped by kind (see `report_rows`).
    #[error("{message}")]
    BadRows { message: String },
    #[error("{path}:{line}: field `{field}`: {message}")]
    Value {
        path: PathBuf,
        line: u64,
        field: String,
        message: String,
    },
}

impl InputError {
    /// True when the failure is the machine's (I/O), not the data's.
    pub fn is_io(&self) -> bool {
        matches!(self, InputError::Io { .. })
    }

    /// The same error about the file at `to`, where it named `from` (a decoded copy's errors
    /// name the original; its lines are the original's).
    fn renamed(self, from: &Path, to: &Path) -> InputError {
        use InputError::*;
        let fix = |p: PathBuf| if p == from { to.to_path_buf() } else { p };
        match self {
            Open { path, source } => Open {
                path: fix(path),
                source,
            },
            Io { path, source } => Io {
                path: fix(path),
                source,
            },
            MissingColumn {
                path,
                column,
                needed_by,
                available,
                suggestion,
            } => MissingColumn {
                path: fix(path),
                column,
                needed_by,
                available,
                suggestion,
            },
            TooManyUnits { path } => TooManyUnits { path: fix(path) },
            Changed { path } => Changed { path: fix(path) },
            DuplicateColumn { path, column } => DuplicateColumn {
                path: fix(path),
                column,
            },
            Malformed {
                path,
                line,
                message,
            } => Malformed {
                path: fix(path),
                line,
                message,
            },
            BadRows { message } => BadRows {
                message: message.replace(&from.display().to_string(), &to.display().to_string()),
            },
            Value {
                path,
                line,
                field,
                message,
            } => Value {
                path: fix(path),
                line,
                field,
                message,
            },
        }
    }
}

/// What reading one input produced.
#[derive(Debug)]
pub struct InputResult {
    /// Exact cells per table, in the order of the `tables` argument. Never written anywhere.
    /// Wider than the noise's `i64` so that no sum can wrap (see [`saturate`]).
    pub exact: Vec<Vec<i128>>,
    pub sha256: String,
    /// Rows read (exact; shown by `check` to the data officer only, never published).
    pub rows: u64,
    /// Distinct privacy units (microdata only; same caveat).
    pub units: Option<u64>,
}

/// Looks up a category value's code, applying the dimension's catch-all. Runs for every
/// dimension of every row, so values of up to [`CATEGORY_KEY`] bytes are found as five integers
/// ([`category_words`]) in a small open-addressing table, with no string hashing or comparison.
struct CategoryIndex {
    /// At most a quarter full, a power of two long; `None` is empty.
    short: Vec<Option<([u64; 5], u32)>>,
    /// Values longer than [`CATEGORY_KEY`] bytes.
    long: HashMap<Box<[u8]>, u32>,
    catch_all: Option<u32>,
    name: String,
    declared: String,
    labels: Vec<String>,
}

/// The longest category value [`CategoryIndex`] finds as integers.
const CATEGORY_KEY: usize = 32;

/// A category value of up to [`CATEGORY_KEY`] bytes as five words, one-to-one: up to
/// [`INLINE_KEY`] bytes its [`key_words`] and zeros; beyond that four (possibly overlapping)
/// unaligned loads and the length (never zero).
fn category_words(value: &[u8]) -> [u64; 5] {
    let n = value.len();
    if n <= INLINE_KEY {
        let [a, b] = key_words(value);
        return [a, b, 0, 0, 0];
    }
    let word = |at: usize| u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
    [word(0), word(8), word(n - 16), word(n - 8), n as u64]
}

impl CategoryIndex {
    fn new(dim: &Dimension) -> CategoryIndex {
        let size = (dim.categories.len() * 4).next_power_of_two().max(8);
        let mut index = CategoryIndex {
            short: vec![None; size],
            long: HashMap::new(),
            catch_all: dim.catch_all,
            name: dim.name.clone(),
            declared: dim.categories.join(", "),
            labels: dim.categories.clone(),
        };
        for (code, c) in dim.categories.iter().enumerate() {
            let (value, code) = (c.as_bytes(), code as u32);
            if value.len() > CATEGORY_KEY {
                index.long.insert(value.into(), code);
                continue;
            }
            let key = category_words(value);
            let mut i = index.home(&key);
            while index.short[i].is_some() {
                i = (i + 1) & (size - 1);
            }
            index.short[i] = Some((key, code));
        }
        index
    }

    fn home(&self, key: &[u64; 5]) -> usize {
        let mixed = (key[0] ^ key[1] ^ key[2].rotate_left(29) ^ key[4].rotate_left(43))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 40) as usize & (self.short.len() - 1)
    }

    /// The code of `value`: a declared category (compared after Unicode NFC normalisation),
    /// else the catch-all. Bytes that are not UTF-8 are never a category, not even the
    /// catch-all: they are text in another encoding, read wrongly.
    #[inline]
    fn lookup(&self, value: &[u8]) -> Result<u32, BadValue> {
        match self.exact(value) {
            Some(code) => Ok(code),
            None => self.lookup_undeclared(value),
        }
    }

    /// [`CategoryIndex::lookup`] for a value not declared as written (rare: off the hot path).
    #[cold]
    #[inline(never)]
    fn lookup_undeclared(&self, value: &[u8]) -> Result<u32, BadValue> {
        let text = std::str::from_utf8(value).map_err(|e| BadValue::NotUtf8 {
            offset: e.valid_up_to(),
            byte: value[e.valid_up_to()],
        })?;
        if !text.is_ascii() {
            let normal = crate::plan::nfc(text.to_string());
            if normal != text
                && let Some(code) = self.exact(normal.as_bytes())
            {
                return Ok(code);
            }
        }
        self.catch_all.ok_or(BadValue::Undeclared)
    }

    /// The code of a declared category written exactly as `value`.
    fn exact(&self, value: &[u8]) -> Option<u32> {
        if value.len() > CATEGORY_KEY {
            return self.long.get(value).copied();
        }
        let key = category_words(value);
        let mut i = self.home(&key);
        while let Some((k, code)) = &self.short[i] {
            // Word by word, from registers: comparing the arrays whole goes through the stack.
            if k[0] == key[0]
                && k[1] == key[1]
                && k[2] == key[2]
                && k[3] == key[3]
                && k[4] == key[4]
            {
                return Some(*code);
            }
            i = (i + 1) & (self.short.len() - 1);
        }
        None
    }

    fn label(&self, code: u32) -> &str {
        &self.labels[code as usize]
    }

    fn undeclared(&self, value: &[u8]) -> String {
        let value = String::from_utf8_lossy(value);
        format!(
            "value `{value}` is not a declared category of `{}` (declared: {}){}; declare it, fix the data, or map undeclared values with [catch_all]",
            self.name,
            self.declared,
            crate::plan::did_you_mean(&value, self.labels.iter().map(String::as_str)),
        )
    }
}

/// Why a value is no category.
enum BadValue {
    /// Not UTF-8: byte `offset` of the value (`byte`) starts no valid sequence.
    NotUtf8 { offset: usize, byte: u8 },
    /// Valid text, but neither declared nor mapped to a catch-all.
    Undeclared,
}

impl BadValue {
    /// The kind of problem, for grouping bad rows: per column, and per value when undeclared.
    fn group(&self, col: usize, value: &[u8]) -> String {
        match self {
            BadValue::NotUtf8 { .. } => format!("utf8 {col}"),
            BadValue::Undeclared => format!("undeclared {col} {}", hex::encode(value)),
        }
    }

    fn message(&self, index: &CategoryIndex, value: &[u8]) -> String {
        match self {
            BadValue::NotUtf8 { offset, byte } => format!(
                "the value is not UTF-8 text (byte {offset} of the value is 0x{byte:02X}); if the file is in a legacy encoding such as CP949 (Korean Excel) or EUC-KR, declare it on the input, e.g. `encoding = \"cp949\"`"
            ),
            BadValue::Undeclared => index.undeclared(value),
        }
    }
}

/// How one table reads a row: which columns make its cell, and what it adds.
struct TableLayout {
    /// (position in [`Layout::dims`], radix) per dimension, first dimension slowest.
    dims: Vec<(usize, u32)>,
    /// Column index and clamp of a summed column.
    sum: Option<(usize, i64, i64)>,
    statistic: Statistic,
    cells: usize,
}

/// Where everything is in this input's rows; shared read-only by the chunk readers.
struct Layout {
    headers: csv::ByteRecord,
    /// Every dimension the tables use, once: (dimension index in the plan, column, lookup).
    dims: Vec<(usize, usize, CategoryIndex)>,
    tables: Vec<TableLayout>,
    unit_column: Option<usize>,
    count_column: Option<usize>,
    /// Aggregated input: the columns that tell its rows' cells apart (every column but the
    /// count), each with its position in [`Layout::dims`] when it is a dimension (compared by
    /// category, after the catch-all) and `None` otherwise (compared as written).
    cell_key: Vec<(usize, Option<usize>)>,
    /// Aggregated input: two rows for one cell add up instead of being an error.
    add_duplicates: bool,
}

impl Layout {
    fn new(
        plan: &Plan,
        input: usize,
        tables: &[usize],
        headers: csv::ByteRecord,
        path: &Path,
    ) -> Result<Layout, InputError> {
        let mut columns: HashMap<&[u8], usize> = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            if columns.insert(h, i).is_some() {
                return Err(InputError::DuplicateColumn {
                    path: path.to_path_buf(),
                    column: String::from_utf8_lossy(h).into_owned(),
                });
            }
        }
        let column = |name: &str, needed_by: &str| -> Result<usize, InputError> {
            columns
                .get(name.as_bytes())
                .copied()
                .ok_or_else(|| InputError::MissingColumn {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    needed_by: needed_by.to_string(),
                    available: headers
                        .iter()
                        .map(|h| format!("`{}`", String::from_utf8_lossy(h)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    suggestion: crate::plan::did_you_mean(
                        name,
                        headers.iter().filter_map(|h| std::str::from_utf8(h).ok()),
                    ),
                })
        };
        let mut dims: Vec<(usize, usize, CategoryIndex)> = Vec::new();
        let mut table_layouts = Vec::new();
        for &t in tables {
            let table = &plan.tables[t];
            let needed_by = format!("table `{}`", table.name);
            let mut tdims = Vec::new();
            for &d in &table.dims {
                let pos = match dims.iter().position(|&(dd, _, _)| dd == d) {
                    Some(p) => p,
                    None => {
                        let col = column(&plan.dimensions[d].name, &needed_by)?;
                        dims.push((d, col, CategoryIndex::new(&plan.dimensions[d])));
                        dims.len() - 1
                    }
                };
                tdims.push((pos, plan.dimensions[d].categories.len() as u32));
            }
            let sum = match &table.statistic {
                Statistic::Sum {
                    column: c, lo, hi, ..
                } => Some((column(c, &needed_by)?, *lo, *hi)),
                _ => None,
            };
            table_layouts.push(TableLayout {
                dims: tdims,
                sum,
                statistic: table.statistic.clone(),
                cells: plan.table_cells(table),
            });
        }
        let (unit_column, count_column, add_duplicates) = match &plan.inputs[input].kind {
            InputKind::Microdata => (
                Some(column(&plan.privacy_unit, "the privacy unit")?),
                None,
                false,
            ),
            InputKind::Aggregated {
                count_column,
                add_duplicates,
            } => (
                None,
                Some(column(count_column, "the count")?),
                *add_duplicates,
            ),
        };
        let cell_key = match count_column {
            Some(count) => (0..headers.len())
                .filter(|&c| c != count)
                .map(|c| (c, dims.iter().position(|&(_, col, _)| col == c)))
                .collect(),
            None => Vec::new(),
        };
        Ok(Layout {
            headers,
            dims,
            tables: table_layouts,
            unit_column,
            count_column,
            cell_key,
            add_duplicates,
        })
    }
}

/// How an input is read: in how many parallel chunks at most, and how small a chunk may be.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub threads: usize,
    pub min_chunk_bytes: u64,
    /// Bytes the units' state may take before the input is spilled to disk by unit.
    pub memory_limit: u64,
    /// Show progress on stderr when reading takes more than a second and stderr is a terminal.
    pub progress: bool,
}

/// Rows and bytes read so far, shared by the chunk readers and the progress display.
#[derive(Default)]
struct Counters {
    rows: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicBool,
}

/// Draws progress on stderr until `counters.done` (unpark the thread after setting it), starting
/// only after a second so short reads stay silent; indicatif draws nothing when stderr is not a
/// terminal.
fn show_progress(counters: &Counters, total: u64, name: &str) {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    while !counters.done.load(Relaxed) {
        std::thread::park_timeout(Duration::from_millis(100));
        if bar.is_none() && start.elapsed() >= Duration::from_secs(1) {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_position(counters.bytes.load(Relaxed).min(total));
            b.set_message(format!("{name}: {} rows", counters.rows.load(Relaxed)));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// Half the machine's memory (from /proc/meminfo), or 4 GiB where that cannot be read.
pub fn default_memory_limit() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(4 << 30, |kib| kib * 1024 / 2)
}

impl Default for ReadOptions {
    /// Every core, or `SAFESTAT_THREADS` when set (for benchmarks and shared machines).
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ReadOptions {
            threads: std::env::var("SAFESTAT_THREADS")
                .ok()
                .and_then(|t| t.parse::<usize>().ok())
                .filter(|&t| t > 0)
                .unwrap_or(cores),
            min_chunk_bytes: 4 << 20,
            memory_limit: default_memory_limit(),
            progress: true,
        }
    }
}

/// A failure inside a chunk, located by absolute byte offset (turned into a line number only
/// when reported, since a chunk does not know how many lines precede it).
enum ChunkError {
    Io(std::io::Error),
    /// The chunk's units outgrew its share of the memory limit: spill instead.
    OverMemory,
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

/// Bytes of a unit's key kept in its record; longer keys live in [`Units::long_keys`].
const INLINE_KEY: usize = 15;
/// Words at the head of a unit's record that hold its key ([`key_words`]).
const KEY_WORDS: usize = 2;
/// Set in the second key word of a long key.
const LONG_KEY: u64 = 1 << 63;
/// An empty slot of [`Units::slots`].
const EMPTY: u64 = u64::MAX;

/// A unit's key as its record holds it. A key of up to [`INLINE_KEY`] bytes: its bytes in the
/// first 15 bytes of the two words and its length in the last, so the packing is one-to-one. The
/// bytes are read with a few (possibly overlapping) unaligned loads, never a variable-length
/// copy. A longer key: its offset in an arena (filled in when it is stored), then [`LONG_KEY`]
/// and its length.
fn key_words(id: &[u8]) -> [u64; KEY_WORDS] {
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

fn is_long(key: &[u64; KEY_WORDS]) -> bool {
    key[1] & LONG_KEY != 0
}

/// Stores the bytes of long key `key` at the end of `arena`, and their offset in its first word.
fn store_long(key: &mut [u64; KEY_WORDS], arena: &mut Vec<u8>, bytes: &[u8]) {
    key[0] = arena.len() as u64;
    arena.extend_from_slice(bytes);
}

/// The bytes of long key `key`, stored in `arena` by [`store_long`].
fn stored_long<'a>(key: &[u64; KEY_WORDS], arena: &'a [u8]) -> &'a [u8] {
    let start = key[0] as usize;
    &arena[start..start + (key[1] & !LONG_KEY) as usize]
}

/// The privacy units one reader owns: one record each in `bounder`, with the unit's key at its
/// head, found through an open-addressing table. A lookup touches the table slot and the record
/// it then updates, and nothing else (for keys of up to [`INLINE_KEY`] bytes).
struct Units {
    /// Linear probing, at most half full: [`EMPTY`], or the unit's hash's top 32 bits above its
    /// id. (Filled with a non-zero value so that its pages are written, never first mapped to
    /// the kernel's zero page and then copied on the first insert with a TLB flush on every core.)
    slots: Vec<u64>,
    long_keys: Vec<u8>,
    bounder: Bounder,
    /// Bytes the units may take (records, table, long keys) before the reader gives up.
    limit: u64,
}

impl Units {
    fn new(layout: &Layout, keys: &[[u64; 2]], expected: usize, limit: u64) -> Units {
        let tables: Vec<_> = layout
            .tables
            .iter()
            .zip(keys)
            .map(|(t, &key)| (t.statistic.clone(), t.cells, key))
            .collect();
        let mut bounder = Bounder::new(&tables, KEY_WORDS);
        bounder.reserve(expected);
        Units {
            slots: vec![EMPTY; (expected * 2).next_power_of_two().max(16)],
            long_keys: Vec::new(),
            bounder,
            limit,
        }
    }

    fn len(&self) -> usize {
        self.bounder.units()
    }

    fn footprint(&self) -> u64 {
        (self.len() * self.bounder.bytes_per_unit() + self.slots.len() * 8 + self.long_keys.len())
            as u64
    }

    fn home(&self, hash: u64) -> usize {
        hash as usize & (self.slots.len() - 1)
    }

    fn slot(hash: u64, unit: u32) -> u64 {
        (hash >> 32) << 32 | u64::from(unit)
    }

    /// Whether `unit` has the key whose [`key_words`] are `key` (and, for a long key, whose
    /// bytes are `long`).
    fn has_key(&self, unit: u32, key: &[u64; KEY_WORDS], long: &[u8]) -> bool {
        let head: &[u64; KEY_WORDS] = self.bounder.head(unit).try_into().expect("key words");
        if !is_long(key) {
            return head == key;
        }
        head[1] == key[1] && stored_long(head, &self.long_keys) == long
    }

    /// The id of the unit with key `key` ([`key_words`], and the bytes `long` of a long key) and
    /// keyed hash `hash`, adding it if new; fails with [`ChunkError::OverMemory`] when a new unit
    /// would take the units over their limit.
    fn intern(
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
        if self.footprint() + self.bounder.bytes_per_unit() as u64 > self.limit
            || self.len() >= u32::MAX as usize
        {
            return Err(ChunkError::OverMemory);
        }
        let mut head = *key;
        if is_long(key) {
            store_long(&mut head, &mut self.long_keys, long);
        }
        let unit = self.bounder.add_unit(hash, &head);
        self.slots[i] = Units::slot(hash, unit);
        if self.len() * 2 > self.slots.len() {
            self.grow();
        }
        Ok(unit)
    }

    fn grow(&mut self) {
        self.slots = vec![EMPTY; self.slots.len() * 2];
        let mask = self.slots.len() - 1;
        for unit in 0..self.len() as u32 {
            let hash = self.bounder.unit_hash(unit);
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
    fn absorb(&mut self, batch: &Batch) -> Result<(), ChunkError> {
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
                    unit,
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
struct Batch {
    tables: usize,
    hashes: Vec<u64>,
    /// Each row's random priority (see [`crate::bounding`]).
    prios: Vec<u64>,
    /// Each row's unit key as [`key_words`]; a long key's first word is its offset in `long`.
    keys: Vec<[u64; KEY_WORDS]>,
    long: Vec<u8>,
    /// Per row, one cell and one value per table.
    cells: Vec<u32>,
    values: Vec<i64>,
}

impl Batch {
    /// An empty batch with room for `rows` rows.
    fn new(tables: usize, rows: usize) -> Batch {
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

    fn len(&self) -> usize {
        self.hashes.len()
    }

    fn push(&mut self, id: &[u8], hash: u64, prio: u64, cells: &[u32], values: &[i64]) {
        self.hashes.push(hash);
        self.prios.push(prio);
        let mut key = key_words(id);
        if is_long(&key) {
            store_long(&mut key, &mut self.long, id);
        }
        self.keys.push(key);
        self.cells.extend_from_slice(cells);
        self.values.extend_from_slice(values);
    }

    /// Row `row`'s unit key as [`key_words`], and its bytes if it is a long key (else empty).
    fn key(&self, row: usize) -> (&[u64; KEY_WORDS], &[u8]) {
        let key = &self.keys[row];
        if !is_long(key) {
            return (key, &[]);
        }
        (key, stored_long(key, &self.long))
    }

    fn clear(&mut self) {
        self.hashes.clear();
        self.prios.clear();
        self.keys.clear();
        self.long.clear();
        self.cells.clear();
        self.values.clear();
    }
}

/// What every reader of one input shares.
#[derive(Clone, Copy)]
struct Pass<'a> {
    path: &'a Path,
    layout: &'a Layout,
    /// The keyed hash of unit keys (one key for the whole input, so readers agree).
    hasher: &'a foldhash::quality::RandomState,
    /// Per table, the secret key of its `count_units` priorities.
    keys: &'a [[u64; 2]],
    counters: &'a Counters,
    /// Whether rows are split by the csv crate (the input may quote fields) or by [`Unquoted`].
    quoted: bool,
    /// Whether a quoted field may hold a line break (the input's `multiline`).
    multiline: bool,
}

/// Exact cells per table, with the row and unit counts.
struct Counted {
    exact: Vec<Vec<i128>>,
    rows: u64,
    units: u64,
}

impl Counted {
    /// Adds another reader's (or partition's) counts: its units are not this one's, so the exact
    /// cells add up.
    fn add(total: Option<Counted>, other: Counted) -> Option<Counted> {
        let Some(mut total) = total else {
            return Some(other);
        };
        for (cells, add) in total.exact.iter_mut().zip(&other.exact) {
            for (c, v) in cells.iter_mut().zip(add) {
                *c += *v;
            }
        }
        total.rows += other.rows;
        total.units += other.units;
        Some(total)
    }
}

/// Exact cells in the noise's domain (`i64`), saturating at its ends. Clamping each cell is
/// 1-Lipschitz in every coordinate, so it never raises the sensitivity: a unit that moves an
/// `i128` cell by `d` moves the saturated cell by at most `d`. (Each cell is an `i128` sum of at
/// most 2^64 values of at most 2^63, so the sum itself can never wrap.)
pub fn saturate(cells: Vec<i128>) -> Vec<i64> {
    cells
        .into_iter()
        .map(|c| c.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
        .collect()
}

/// Which of `n` readers (or spill partitions) owns the unit with keyed hash `hash`. Bits 40.. are
/// used (scaled to `0..n` by a multiply, not a division): the unit table takes the slot from the
/// low bits and the tag from the top 32.
fn range_of(hash: u64, n: usize) -> usize {
    (((hash >> 40) * n as u64) >> 24) as usize
}

/// Reads input `input` of `plan` once and computes the exact cells of `tables` (indices into
/// `plan.tables`, all reading this input), in parallel chunks and spilling to disk as `options`
/// say (tests use tiny chunks to split units across them).
pub fn read_input_with(
    plan: &Plan,
    input: usize,
    tables: &[usize],
    options: ReadOptions,
) -> Result<InputResult, InputError> {
    let spec = &plan.inputs[input];
    let Some(encoding) = spec.encoding else {
        return read_pass(plan, input, tables, options, false);
    };
    // A legacy encoding is decoded to a private UTF-8 copy first (lines stay where they are, so
    // errors name the original's lines); the fingerprint is the original's bytes'.
    let (copy, sha256) = transcode(&spec.path, encoding)?;
    let mut decoded = plan.clone();
    decoded.inputs[input].path = copy.path().to_path_buf();
    decoded.inputs[input].encoding = None;
    let mut result = read_pass(&decoded, input, tables, options, false)
        .map_err(|e| e.renamed(copy.path(), &spec.path))?;
    result.sha256 = sha256;
    Ok(result)
}

/// Opens an input and notes its size and modification time, for [`ensure_unchanged`].
fn open_input(path: &Path) -> Result<(File, std::fs::Metadata), InputError> {
    let file = File::open(path).map_err(|source| InputError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let before = file.metadata().map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((file, before))
}

/// Refuses an input whose size or modification time changed since `before`: what was read of
/// it in separate passes (the counts, the fingerprint) would describe different bytes.
fn ensure_unchanged(path: &Path, before: &std::fs::Metadata) -> Result<(), InputError> {
    let after = std::fs::metadata(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if after.len() != before.len() || after.modified().ok() != before.modified().ok() {
        return Err(InputError::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Decodes the file at `path` from `encoding` into a new private temporary file (UTF-8),
/// returning it and the SHA-256 of the original bytes. A byte sequence that is not valid in
/// `encoding` is an error naming its line and byte offset.
fn transcode(
    path: &Path,
    encoding: &'static encoding_rs::Encoding,
) -> Result<(tempfile::NamedTempFile, String), InputError> {
    use std::io::Write;
    let io = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut source, before) = open_input(path)?;
    let copy = tempfile::Builder::new()
        .prefix("safestat-decoded-")
        .tempfile()
        .map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, copy.as_file());
    let mut decoder = encoding.new_decoder();
    let mut hasher = Sha256::new();
    let mut input = vec![0u8; 1 << 16];
    let mut output = vec![
        0u8;
        decoder
            .max_utf8_buffer_length(input.len())
            .unwrap_or(1 << 20)
    ];
    let (mut consumed, mut line) = (0u64, 1u64);
    loop {
        let n = source.read(&mut input).map_err(io)?;
        let last = n == 0;
        hasher.update(&input[..n]);
        let mut rest = &input[..n];
        loop {
            let (result, read, written) =
                decoder.decode_to_utf8_without_replacement(rest, &mut output, last);
            let done = &output[..written];
            out.write_all(done).map_err(io)?;
            line += done.iter().filter(|&&b| b == b'\n').count() as u64;
            consumed += read as u64;
            rest = &rest[read..];
            match result {
                encoding_rs::DecoderResult::InputEmpty => break,
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(bad, after) => {
                    let at = consumed - u64::from(bad) - u64::from(after);
                    return Err(InputError::Malformed {
                        path: path.to_path_buf(),
                        line,
                        message: format!(
                            "byte {at} of the file is not valid {} text (the input declares `encoding = \"{}\"`)",
                            encoding.name(),
                            encoding.name().to_ascii_lowercase()
                        ),
                    });
                }
            }
        }
        if last {
            break;
        }
    }
    out.flush().map_err(io)?;
    drop(out);
    ensure_unchanged(path, &before)?;
    Ok((copy, hex::encode(hasher.finalize())))
}

/// One pass over the input: split by [`Unquoted`] in parallel chunks, or, once a `"` has been
/// seen (`quoted`), by the csv crate in one piece, since a quoted field may hold a newline and a
/// chunk could then begin mid-record.
fn read_pass(
    plan: &Plan,
    input: usize,
    tables: &[usize],
    options: ReadOptions,
    quoted: bool,
) -> Result<InputResult, InputError> {
    // One reader for a quoted file (below), and for a pre-counted one, whose duplicate cells are
    // found across the whole file (it has at most one row per cell, so it is small).
    let aggregated = matches!(plan.inputs[input].kind, InputKind::Aggregated { .. });
    let options = if quoted || aggregated {
        ReadOptions {
            threads: 1,
            ..options
        }
    } else {
        options
    };
    let path = plan.inputs[input].path.as_path();
    let io_err = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut file, before) = open_input(path)?;
    let len = before.len();
    let (headers, header_end) = read_header(&mut file, path)?;
    let layout = Layout::new(plan, input, tables, headers, path)?;
    let chunks = chunk_bounds(&mut file, header_end, len, options).map_err(io_err)?;

    let mut seed = StdRng::from_entropy();
    let hasher = foldhash::quality::RandomState::default();
    let keys: Vec<[u64; 2]> = layout.tables.iter().map(|_| seed.r#gen()).collect();
    let readers = chunks.len();
    let share = options.memory_limit / readers as u64;
    // About one unit per 64 bytes of rows, shared out between the readers: sizing their tables
    // for that up front spares most rehashes (only the pages a unit touches are ever written).
    let expected_units = ((len - header_end) / 64 / readers as u64).min(share / 64) as usize;
    let counters = Counters::default();
    let name = plan.inputs[input].name.as_str();
    let pass = Pass {
        path,
        layout: &layout,
        hasher: &hasher,
        keys: &keys,
        counters: &counters,
        quoted,
        multiline: plan.inputs[input].multiline,
    };
    let (hashed, results) = std::thread::scope(|s| {
        let progress = options
            .progress
            .then(|| s.spawn(|| show_progress(&counters, len, name)));
        let digest = s.spawn(|| hash_file(path));
        let workers: Vec<_> = chunks
            .iter()
            .zip(links(readers))
            .map(|(&(start, end), links)| {
                s.spawn(move || read_chunk(pass, start, end, links, expected_units, share))
            })
            .collect();
        let results: Vec<Result<Counted, ChunkError>> = workers
            .into_iter()
            .map(|w| w.join().expect("chunk reader panicked"))
            .collect();
        let digest = digest.join().expect("hasher panicked");
        counters
            .done
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(p) = progress {
            p.thread().unpark();
        }
        (digest, results)
    });
    let (sha256, has_quote) = hashed.map_err(io_err)?;
    // The hash and the counts come from separate reads: they describe the same bytes only if the
    // file did not change in between.
    ensure_unchanged(path, &before)?;
    if has_quote && !quoted {
        return read_pass(plan, input, tables, options, true);
    }
    let counted = if results
        .iter()
        .any(|r| matches!(r, Err(ChunkError::OverMemory)))
    {
        eprintln!(
            "safestat: {}: the privacy units need more than the memory limit of {} MiB; spilling to temporary files by unit",
            path.display(),
            options.memory_limit >> 20
        );
        let counters = Counters::default();
        let pass = Pass {
            counters: &counters,
            ..pass
        };
        std::thread::scope(|s| {
            let progress = options
                .progress
                .then(|| s.spawn(|| show_progress(&counters, len, name)));
            let result = read_spilled(pass, header_end, len, options.memory_limit);
            counters
                .done
                .store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(p) = progress {
                p.thread().unpark();
            }
            result
        })
        .map_err(|e| locate(path, &layout, e))?
    } else {
        // A record that stopped a parser is reported alone (the first in file order); else
        // every reader's bad rows together. A reader that stopped bounding because another
        // found bad rows has none of its own to report.
        let mut total = None;
        let mut problems = Problems::default();
        let mut stopped: Option<ChunkError> = None;
        for result in results {
            match result {
                Ok(counted) => total = Counted::add(total, counted),
                Err(ChunkError::Aborted) => {}
                Err(ChunkError::Rows(p)) => problems.merge(p),
                Err(e @ ChunkError::At { .. }) => {
                    let byte = |e: &ChunkError| match e {
                        ChunkError::At { byte, .. } => *byte,
                        _ => u64::MAX,
                    };
                    if stopped.as_ref().is_none_or(|s| byte(&e) < byte(s)) {
                        stopped = Some(e);
                    }
                }
                Err(e) => return Err(locate(path, &layout, e)),
            }
        }
        if let Some(e) = stopped {
            return Err(locate(path, &layout, e));
        }
        if !problems.is_empty() {
            return Err(locate(path, &layout, ChunkError::Rows(problems)));
        }
        total.expect("a reader stops early only when another fails")
    };
    Ok(InputResult {
        exact: counted.exact,
        sha256,
        rows: counted.rows,
        units: layout.unit_column.map(|_| counted.units),
    })
}

/// Reads the header line (everything up to the first newline) and returns the column names and
/// the byte offset where the rows start.
fn read_header(file: &mut File, path: &Path) -> Result<(csv::ByteRecord, u64), InputError> {
    let mut line = Vec::new();
    let mut buf = [0u8; 1 << 16];
    let end = loop {
        let n = file.read(&mut buf).map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..=i]);
            break line.len() as u64;
        }
        line.extend_from_slice(&buf[..n]);
        if n == 0 {
            break line.len() as u64;
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(line.as_slice());
    let mut headers = csv::ByteRecord::new();
    reader
        .read_byte_record(&mut headers)
        .map_err(|e| csv_error(path, e))?;
    // Spreadsheet exports often start with a UTF-8 byte order mark; it is not part of the name.
    if headers
        .get(0)
        .is_some_and(|h| h.starts_with(b"\xEF\xBB\xBF"))
    {
        headers = headers
            .iter()
            .enumerate()
            .map(|(i, h)| if i == 0 { &h[3..] } else { h })
            .collect();
    }
    // Names are compared in Unicode NFC, as the policy's are (decomposed Hangul from a Mac
    // matches); bytes that are not UTF-8 are text in another encoding.
    let mut names = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let name = std::str::from_utf8(h).map_err(|e| InputError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "the header's column {} is not UTF-8 text (byte {} of its name); if the file is in a legacy encoding such as CP949 (Korean Excel) or EUC-KR, declare it on the input, e.g. `encoding = \"cp949\"`",
                i + 1,
                e.valid_up_to()
            ),
        })?;
        names.push(crate::plan::nfc(name.to_string()));
    }
    Ok((csv::ByteRecord::from(names), end))
}

/// Splits the rows `[start, len)` into at most `options.threads` chunks of at least
/// `options.min_chunk_bytes`, each beginning just after a newline.
fn chunk_bounds(
    file: &mut File,
    start: u64,
    len: u64,
    options: ReadOptions,
) -> std::io::Result<Vec<(u64, u64)>> {
    let body = len.saturating_sub(start);
    let n = (body / options.min_chunk_bytes.max(1)).clamp(1, options.threads.max(1) as u64);
    let mut bounds = vec![start];
    let mut buf = [0u8; 1 << 16];
    for i in 1..n {
        let mut at = (start + body * i / n).max(*bounds.last().expect("non-empty"));
        file.seek(SeekFrom::Start(at))?;
        let cut = loop {
            let got = file.read(&mut buf)?;
            if got == 0 {
                break len;
            }
            if let Some(p) = buf[..got].iter().position(|&b| b == b'\n') {
                break at + p as u64 + 1;
            }
            at += got as u64;
        };
        bounds.push(cut);
    }
    bounds.push(len);
    bounds.dedup();
    if bounds.len() == 1 {
        // No rows at all (a header-only file): still one (empty) chunk, so one reader.
        return Ok(vec![(start, start)]);
    }
    Ok(bounds.windows(2).map(|w| (w[0], w[1])).collect())
}

/// SHA-256 of the whole file, and whether it holds a quote character (which may hide a newline
/// inside a field).
fn hash_file(path: &Path) -> std::io::Result<(String, bool)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut quote = false;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        quote = quote || buf[..n].contains(&b'"');
    }
    Ok((hex::encode(hasher.finalize()), quote))
}

/// One validated row, as the scanner hands it to a sink.
struct Row<'a> {
    /// The privacy unit's key (microdata).
    unit: Option<&'a [u8]>,
    /// Per table: the row's cell, and what it adds (1 for counts, the clamped value for sums).
    cells: &'a [u32],
    values: &'a [i64],
    /// The row's count (aggregated input).
    count: Option<i64>,
    /// Aggregated input: what tells this row's cell apart ([`Layout::cell_key`], encoded).
    key: &'a [u8],
    /// Where to point an error about this row: its byte offset.
    byte: u64,
    /// No bad row was found before this one: bounding may go on (after a bad row it stops, and
    /// the reading only checks the rest).
    clean: bool,
}

/// Reads and validates the rows in `[start, end)` of the file, handing each to `sink`; returns
/// how many rows there were. The one place a row's values are parsed and checked. Splits with
/// [`Unquoted`] unless `quoted`; it fails with [`ChunkError::Quoted`] at the first `"`.
fn scan_rows(
    pass: Pass,
    start: u64,
    end: u64,
    sink: impl FnMut(Row) -> Result<(), ChunkError>,
) -> Result<(u64, Problems), ChunkError> {
    let mut file = File::open(pass.path).map_err(ChunkError::Io)?;
    file.seek(SeekFrom::Start(start)).map_err(ChunkError::Io)?;
    let source = file.take(end - start);
    if pass.quoted {
        scan_records(Quoted::new(source, pass.multiline), start, pass, sink)
    } else {
        scan_records(Unquoted::new(source), start, pass, sink)
    }
}

fn scan_records(
    mut records: impl Records,
    start: u64,
    pass: Pass,
    mut sink: impl FnMut(Row) -> Result<(), ChunkError>,
) -> Result<(u64, Problems), ChunkError> {
    use std::sync::atomic::Ordering::Relaxed;
    let (layout, counters) = (pass.layout, pass.counters);
    let mut reported = start;
    let width = layout.headers.len();
    let mut codes = vec![0u32; layout.dims.len()];
    let mut cells = vec![0u32; layout.tables.len()];
    let mut values = vec![0i64; layout.tables.len()];
    let mut key = Vec::new();
    let mut rows: u64 = 0;
    let mut problems = Problems::default();
    loop {
        let byte = match records.next_record() {
            Ok(Some(offset)) => start + offset,
            Ok(None) => break,
            Err(RecordError::Io(e)) => return Err(ChunkError::Io(e)),
            Err(RecordError::Quote(_)) => return Err(ChunkError::Quoted),
            Err(RecordError::LineBreakInField {
                byte,
                field,
                breaks,
            }) => {
                return Err(ChunkError::At {
                    byte: start + byte,
                    field: Some(field),
                    message: format!(
                        "a quoted field opens with `\"` on this line and runs on across {breaks} line break(s) before it closes; one stray quote would swallow the rows after it. Fix the quote, or set `multiline = true` on the input if its fields really hold line breaks"
                    ),
                });
            }
            Err(RecordError::Malformed { byte, message }) => {
                return Err(ChunkError::At {
                    byte: start + byte,
                    field: None,
                    message,
                });
            }
        };
        rows += 1;
        if rows.is_multiple_of(65_536) {
            counters.rows.fetch_add(65_536, Relaxed);
            counters.bytes.fetch_add(byte - reported, Relaxed);
            reported = byte;
        }
        if records.fields() != width {
            let n = records.fields();
            problems.add(byte, None, format!("width {n}"), || {
                format!("the row has {n} fields but the header has {width}")
            });
            problems.end_row();
            continue;
        }
        let field = |col: usize| records.field(col).trim_ascii();
        for (k, (_, col, index)) in layout.dims.iter().enumerate() {
            let value = field(*col);
            match index.lookup(value) {
                Ok(code) => codes[k] = code,
                Err(bad) => problems.add(byte, Some(*col), bad.group(*col, value), || {
                    bad.message(index, value)
                }),
            }
        }
        let unit = match layout.unit_column {
            Some(col) => {
                let id = field(col);
                if id.is_empty() {
                    problems.add(byte, Some(col), "empty unit".into(), || {
                        "the privacy unit is empty".to_string()
                    });
                }
                Some(id)
            }
            None => None,
        };
        let mut integer = |col: usize| match parse_i64(field(col)) {
            Ok(n) => Some(n),
            Err(message) => {
                problems.add(byte, Some(col), format!("integer {col}"), || message);
                None
            }
        };
        for (t, table) in layout.tables.iter().enumerate() {
            let mut cell: u32 = 0;
            for &(pos, radix) in &table.dims {
                cell = cell * radix + codes[pos];
            }
            cells[t] = cell;
            values[t] = match table.sum {
                Some((col, lo, hi)) => integer(col).map_or(0, |n| n.clamp(lo, hi)),
                None => 1,
            };
        }
        let count = match layout.count_column {
            Some(col) => {
                let n = integer(col);
                if let Some(n) = n.filter(|&n| n < 0) {
                    problems.add(byte, Some(col), format!("negative {col}"), || {
                        format!("count `{n}` is negative")
                    });
                }
                n
            }
            None => None,
        };
        if problems.end_row() {
            continue;
        }
        key.clear();
        for &(col, dim) in &layout.cell_key {
            match dim {
                Some(k) => key.extend_from_slice(&codes[k].to_le_bytes()),
                None => {
                    let f = field(col);
                    key.extend_from_slice(&(f.len() as u32).to_le_bytes());
                    key.extend_from_slice(f);
                }
            }
        }
        let row = Row {
            unit,
            cells: &cells,
            values: &values,
            count,
            key: &key,
            byte,
            clean: problems.is_empty(),
        };
        match sink(row) {
            Ok(()) => {}
            Err(ChunkError::Row {
                field,
                group,
                message,
            }) => {
                problems.add(byte, field, group, || message);
                problems.end_row();
            }
            Err(e) => return Err(e),
        }
    }
    Ok((rows, problems))
}

/// Kinds of bad rows reported at once; rows of further kinds are only counted.
const MAX_PROBLEM_KINDS: usize = 20;
/// Kinds a reader tells apart before it only counts (bounds memory on a file full of errors).
const MAX_TRACKED_KINDS: usize = 10_000;

/// The bad rows a reader found, grouped by kind (a column and what is wrong with it, and for a
/// category the value), each with its count and its first row. Reading goes on past a bad row,
/// so that one run reports every kind of problem, not only the first.
#[derive(Default)]
struct Problems {
    kinds: HashMap<String, ProblemKind>,
    /// Rows with at least one problem.
    rows: u64,
    /// Problems of kinds beyond [`MAX_TRACKED_KINDS`].
    untracked: u64,
    /// The current row has a problem.
    in_row: bool,
}

struct ProblemKind {
    count: u64,
    /// The first row with it: its byte offset, the field, the message.
    byte: u64,
    field: Option<usize>,
    message: String,
}

impl Problems {
    /// Records a problem of kind `group` in the row at `byte`; `message` is made only for the
    /// first row of its kind.
    #[cold]
    fn add(
        &mut self,
        byte: u64,
        field: Option<usize>,
        group: String,
        message: impl FnOnce() -> String,
    ) {
        self.in_row = true;
        if let Some(kind) = self.kinds.get_mut(&group) {
            kind.count += 1;
            if byte < kind.byte {
                (kind.byte, kind.field, kind.message) = (byte, field, message());
            }
        } else if self.kinds.len() < MAX_TRACKED_KINDS {
            self.kinds.insert(
                group,
                ProblemKind {
                    count: 1,
                    byte,
                    field,
                    message: message(),
                },
            );
        } else {
            self.untracked += 1;
        }
    }

    /// Ends a row; true when it had a problem.
    fn end_row(&mut self) -> bool {
        let bad = std::mem::take(&mut self.in_row);
        self.rows += u64::from(bad);
        bad
    }

    fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds another reader's problems.
    fn merge(&mut self, other: Problems) {
        self.rows += other.rows;
        self.untracked += other.untracked;
        for (group, kind) in other.kinds {
            match self.kinds.get_mut(&group) {
                Some(mine) => {
                    mine.count += kind.count;
                    if kind.byte < mine.byte {
                        (mine.byte, mine.field, mine.message) =
                            (kind.byte, kind.field, kind.message);
                    }
                }
                None => {
                    self.kinds.insert(group, kind);
                }
            }
        }
    }
}

/// Rows a reader collects for another reader's units before handing them over.
const HANDOVER_ROWS: usize = 4096;
/// Rows a reader collects for its own units before counting them.
const LOCAL_ROWS: usize = 256;

/// One reader's links to the others: its inbox, and an outbox to every other reader (`None` at
/// its own place).
struct Links {
    me: usize,
    inbox: Receiver<Batch>,
    outboxes: Vec<Option<Sender<Batch>>>,
}

/// Links for `n` readers, each able to send to every other.
fn links(n: usize) -> Vec<Links> {
    let (senders, inboxes): (Vec<_>, Vec<_>) = (0..n).map(|_| channel::<Batch>()).unzip();
    inboxes
        .into_iter()
        .enumerate()
        .map(|(me, inbox)| Links {
            me,
            inbox,
            outboxes: senders
                .iter()
                .enumerate()
                .map(|(o, s)| (o != me).then(|| s.clone()))
                .collect(),
        })
        .collect()
}

/// Reads the rows in `[start, end)`. Every reader owns the units in one hash range
/// ([`range_of`]): it counts its own units' rows and hands the others' over, in batches, to their
/// owners, counting what it is handed in between. So each unit is bounded by exactly one reader,
/// with no merging afterwards, and a reader's table holds only its own units. Gives up with
/// [`ChunkError::OverMemory`] once its units need more than `memory_limit` bytes. When another
/// reader has failed it goes on only checking its rows, so that the error reported is the
/// first in the file whatever the timing.
fn read_chunk(
    pass: Pass,
    start: u64,
    end: u64,
    links: Links,
    expected_units: usize,
    memory_limit: u64,
) -> Result<Counted, ChunkError> {
    let Pass {
        layout,
        hasher,
        keys,
        ..
    } = pass;
    let Links {
        me,
        inbox,
        outboxes,
    } = links;
    let tables = layout.tables.len();
    if layout.unit_column.is_none() {
        drop(outboxes);
        return read_aggregated(pass, start, end);
    }
    let mut rng = StdRng::from_entropy();
    let mut units = Units::new(layout, keys, expected_units, memory_limit);
    let mut local = Batch::new(tables, LOCAL_ROWS);
    let mut outgoing: Vec<Batch> = outboxes
        .iter()
        .map(|o| Batch::new(tables, if o.is_some() { HANDOVER_ROWS } else { 0 }))
        .collect();
    let mut aborted = false;
    let mut inbox = Some(inbox);
    let send = |to: usize, batch: Batch| {
        let outbox = outboxes[to].as_ref().expect("never sent to itself");
        outbox.send(batch).is_ok()
    };
    let (rows, problems) = scan_rows(pass, start, end, |row| {
        if aborted {
            return Ok(());
        }
        if !row.clean {
            // A bad row: nothing will be released, so stop bounding (and stop taking the
            // other readers' rows, which tells them to stop too); only check the rest.
            aborted = true;
            inbox = None;
            return Ok(());
        }
        let id = row.unit.expect("microdata rows have a unit");
        let hash = hasher.hash_one(id);
        let owner = range_of(hash, outgoing.len());
        if owner == me {
            local.push(id, hash, rng.r#gen(), row.cells, row.values);
            if local.len() == LOCAL_ROWS {
                units.absorb(&local)?;
                local.clear();
                for batch in inbox.iter().flat_map(Receiver::try_iter) {
                    units.absorb(&batch)?;
                }
            }
        } else {
            let batch = &mut outgoing[owner];
            batch.push(id, hash, rng.r#gen(), row.cells, row.values);
            if batch.len() == HANDOVER_ROWS {
                aborted = !send(
                    owner,
                    std::mem::replace(batch, Batch::new(tables, HANDOVER_ROWS)),
                );
            }
        }
        Ok(())
    })?;
    if !problems.is_empty() {
        return Err(ChunkError::Rows(problems));
    }
    if aborted {
        return Err(ChunkError::Aborted);
    }
    units.absorb(&local)?;
    for (owner, batch) in outgoing.into_iter().enumerate() {
        if owner != me && batch.len() > 0 && !send(owner, batch) {
            return Err(ChunkError::Aborted);
        }
    }
    drop(outboxes);
    // Every other reader drops its outboxes when done, which ends this.
    for batch in inbox.expect("kept while no row was bad").iter() {
        units.absorb(&batch)?;
    }
    Ok(Counted {
        units: units.len() as u64,
        exact: units.bounder.finish(),
        rows,
    })
}

/// Reads the rows in `[start, end)` of an aggregated input, adding up each cell's counts. Two
/// rows for the same cell are an error unless the policy says they add up: a subtotal row, or a
/// value folded into a declared cell by `[catch_all]`, would otherwise count its people twice
/// and break the declared bound.
fn read_aggregated(pass: Pass, start: u64, end: u64) -> Result<Counted, ChunkError> {
    let layout = pass.layout;
    let mut exact: Vec<Vec<i128>> = layout.tables.iter().map(|t| vec![0; t.cells]).collect();
    let mut first: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut duplicates = 0u64;
    let (rows, problems) = scan_rows(pass, start, end, |row| {
        let n = row.count.expect("aggregated rows have a count");
        if !layout.add_duplicates {
            if let Some(&earlier) = first.get(row.key) {
                duplicates += 1;
                // Only the first duplicate is described (one pass over the file for its line).
                let message = if duplicates > 1 {
                    String::new()
                } else {
                    format!(
                        "a second row for the cell {} (first at line {}); a pre-counted input has one row per cell. If its rows are meant to add up, set `duplicates = \"add\"` on the input",
                        describe_cell(layout, row.key),
                        line_of(pass.path, earlier)
                    )
                };
                return Err(ChunkError::Row {
                    field: None,
                    group: "duplicate cell".into(),
                    message,
                });
            }
            first.insert(row.key.to_vec(), row.byte);
        }
        for (t, &cell) in row.cells.iter().enumerate() {
            exact[t][cell as usize] += i128::from(n);
        }
        Ok(())
    })?;
    if !problems.is_empty() {
        return Err(ChunkError::Rows(problems));
    }
    Ok(Counted {
        exact,
        rows,
        units: 0,
    })
}

/// A cell key of an aggregated input in words: `gender = `female`, age_group = `unknown``.
fn describe_cell(layout: &Layout, mut key: &[u8]) -> String {
    let mut parts = Vec::new();
    for &(col, dim) in &layout.cell_key {
        let name = String::from_utf8_lossy(&layout.headers[col]);
        let value = match dim {
            Some(k) => {
                let code = u32::from_le_bytes(key[..4].try_into().expect("4 bytes"));
                key = &key[4..];
                layout.dims[k].2.label(code).to_string()
            }
            None => {
                let len = u32::from_le_bytes(key[..4].try_into().expect("4 bytes")) as usize;
                let v = String::from_utf8_lossy(&key[4..4 + len]).into_owned();
                key = &key[4 + len..];
                v
            }
        };
        parts.push(format!("{name} = `{value}`"));
    }
    parts.join(", ")
}

/// The spill path, for inputs whose units do not fit in `memory_limit`: one pass writes every
/// row (unit key, keyed hash, random priority, cells, values) to one of `partitions` temporary
/// files chosen by the unit's hash; then each partition is bounded in memory on its own. A unit's
/// rows all land in one partition, so the exact cells are the sum over partitions, with the same
/// distribution as the in-memory path. The files are private to this user and removed when done.
fn read_spilled(
    pass: Pass,
    start: u64,
    end: u64,
    memory_limit: u64,
) -> Result<Counted, ChunkError> {
    use std::io::{BufReader, BufWriter, Write};
    let Pass {
        layout,
        hasher,
        keys,
        ..
    } = pass;
    // A row on disk takes at most its CSV bytes plus ~60; a partition's units need at most ~5x
    // their rows' bytes in memory (records, keys, table), so aim partitions at limit / 5.
    let estimate = (end - start) * 5 + 1;
    let partitions = estimate.div_ceil(memory_limit.max(1)).clamp(2, 256) as usize;
    let dir = tempfile::Builder::new()
        .prefix("safestat-spill-")
        .tempdir()
        .map_err(ChunkError::Io)?;
    let mut files: Vec<BufWriter<File>> = (0..partitions)
        .map(|p| {
            File::create(dir.path().join(format!("{p}.bin")))
                .map(|f| BufWriter::with_capacity(1 << 16, f))
        })
        .collect::<Result<_, _>>()
        .map_err(ChunkError::Io)?;
    let mut rng = StdRng::from_entropy();
    let (rows, problems) = scan_rows(pass, start, end, |row| {
        if !row.clean {
            return Ok(());
        }
        let id = row.unit.expect("only microdata spills");
        let hash = hasher.hash_one(id);
        let f = &mut files[range_of(hash, partitions)];
        let mut put = |bytes: &[u8]| f.write_all(bytes).map_err(ChunkError::Io);
        put(&(id.len() as u32).to_le_bytes())?;
        put(id)?;
        put(&hash.to_le_bytes())?;
        put(&rng.r#gen::<u64>().to_le_bytes())?;
        for (&c, &v) in row.cells.iter().zip(row.values) {
            put(&c.to_le_bytes())?;
            put(&v.to_le_bytes())?;
        }
        Ok(())
    })?;
    if !problems.is_empty() {
        return Err(ChunkError::Rows(problems));
    }
    for f in &mut files {
        f.flush().map_err(ChunkError::Io)?;
    }
    drop(files);

    let tables = layout.tables.len();
    let mut total: Option<Counted> = None;
    let (mut cells, mut values) = (vec![0u32; tables], vec![0i64; tables]);
    let mut batch = Batch::new(tables, HANDOVER_ROWS);
    for p in 0..partitions {
        let mut r = BufReader::with_capacity(
            1 << 16,
            File::open(dir.path().join(format!("{p}.bin"))).map_err(ChunkError::Io)?,
        );
        let mut units = Units::new(layout, keys, 0, u64::MAX);
        let mut id = Vec::new();
        let mut word = [0u8; 8];
        let mut half = [0u8; 4];
        loop {
            match r.read_exact(&mut half) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(ChunkError::Io(e)),
            }
            id.resize(u32::from_le_bytes(half) as usize, 0);
            r.read_exact(&mut id).map_err(ChunkError::Io)?;
            r.read_exact(&mut word).map_err(ChunkError::Io)?;
            let hash = u64::from_le_bytes(word);
            r.read_exact(&mut word).map_err(ChunkError::Io)?;
            let prio = u64::from_le_bytes(word);
            for t in 0..tables {
                r.read_exact(&mut half).map_err(ChunkError::Io)?;
                cells[t] = u32::from_le_bytes(half);
                r.read_exact(&mut word).map_err(ChunkError::Io)?;
                values[t] = i64::from_le_bytes(word);
            }
            batch.push(&id, hash, prio, &cells, &values);
            if batch.len() == HANDOVER_ROWS {
                units.absorb(&batch)?;
                batch.clear();
            }
        }
        units.absorb(&batch)?;
        batch.clear();
        let part = Counted {
            units: units.len() as u64,
            exact: units.bounder.finish(),
            rows: 0,
        };
        total = Counted::add(total, part);
    }
    let mut total = total.expect("at least two partitions");
    total.rows = rows;
    Ok(total)
}

/// Turns a chunk's failure into an error naming file, line and field.
fn locate(path: &Path, layout: &Layout, e: ChunkError) -> InputError {
    let (byte, field, message) = match e {
        ChunkError::Io(source) => {
            return InputError::Io {
                path: path.to_path_buf(),
                source,
            };
        }
        ChunkError::At {
            byte,
            field,
            message,
        } => (byte, field, message),
        // Only a spilled partition can report this (readers' are spilled instead).
        ChunkError::OverMemory => {
            return InputError::TooManyUnits {
                path: path.to_path_buf(),
            };
        }
        ChunkError::Rows(problems) => return report_rows(path, layout, problems),
        ChunkError::Row { .. } => unreachable!("scan_records collects a sink's verdicts"),
        ChunkError::Aborted => unreachable!("aborted readers report nothing"),
        // The hash found no `"` in the file, yet a reader did: the file changed under it.
        ChunkError::Quoted => {
            return InputError::Changed {
                path: path.to_path_buf(),
            };
        }
    };
    let line = line_of(path, byte);
    let Some(col) = field else {
        return InputError::Malformed {
            path: path.to_path_buf(),
            line,
            message,
        };
    };
    InputError::Value {
        path: path.to_path_buf(),
        line,
        field: String::from_utf8_lossy(&layout.headers[col]).into_owned(),
        message,
    }
}

/// The bad rows as one error: the kinds in the order of their first row, at most
/// [`MAX_PROBLEM_KINDS`], each at its first row with how many rows share it. A single bad row
/// reads as it always did: `file:line: field `x`: what is wrong`.
fn report_rows(path: &Path, layout: &Layout, problems: Problems) -> InputError {
    let mut kinds: Vec<ProblemKind> = problems.kinds.into_values().collect();
    kinds.sort_by_key(|k| k.byte);
    let shown = &kinds[..kinds.len().min(MAX_PROBLEM_KINDS)];
    let lines = lines_of(path, &shown.iter().map(|k| k.byte).collect::<Vec<_>>());
    let at = |k: &ProblemKind, line: u64| match k.field {
        Some(col) => format!(
            "{}:{line}: field `{}`: {}",
            path.display(),
            String::from_utf8_lossy(&layout.headers[col]),
            k.message
        ),
        None => format!("{}:{line}: {}", path.display(), k.message),
    };
    if problems.rows == 1 && kinds.len() == 1 {
        return InputError::BadRows {
            message: at(&kinds[0], lines[0]),
        };
    }
    let mut message = format!(
        "{}: {} rows are not valid, with {} kind(s) of problem{}:",
        path.display(),
        thousands(problems.rows),
        kinds.len() + usize::from(problems.untracked > 0),
        if kinds.len() > MAX_PROBLEM_KINDS {
            format!("; the first {MAX_PROBLEM_KINDS} kinds are shown")
        } else {
            String::new()
        }
    );
    for (k, &line) in shown.iter().zip(&lines) {
        message.push_str("\n  - ");
        message.push_str(&at(k, line));
        if k.count > 1 {
            message.push_str(&format!(
                " ({} rows like this; the first is shown)",
                thousands(k.count)
            ));
        }
    }
    if problems.untracked > 0 {
        message.push_str(&format!(
            "\n  - and {} more problems of other kinds",
            thousands(problems.untracked)
        ));
    }
    InputError::BadRows { message }
}

/// `3459` as `3,459`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The lines of several records at once (see [`line_of`]), in one pass over the file.
fn lines_of(path: &Path, bytes: &[u64]) -> Vec<u64> {
    let mut order: Vec<usize> = (0..bytes.len()).collect();
    order.sort_by_key(|&i| bytes[i]);
    let mut lines = vec![0; bytes.len()];
    let Ok(file) = File::open(path) else {
        return lines;
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let (mut at, mut line) = (0u64, 1u64);
    let mut next = order.iter().peekable();
    let mut buf = [0u8; 1 << 16];
    'read: loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            while let Some(&&i) = next.peek() {
                if at >= bytes[i] && !matches!(b, b'\n' | b'\r') {
                    lines[i] = line;
                    next.next();
                } else {
                    break;
                }
            }
            if next.peek().is_none() {
                break 'read;
            }
            line += u64::from(b == b'\n');
            at += 1;
        }
    }
    for &i in next {
        lines[i] = line;
    }
    lines
}

/// The 1-based line of the record at byte `byte` of the file. The csv crate places a record
/// before the line ends and blank lines that precede it (so a CRLF file's records start at the
/// previous line's `\n`): those are passed over.
fn line_of(path: &Path, byte: u64) -> u64 {
    lines_of(path, &[byte])[0]
}

/// An integer as Rust's `i64::from_str` reads it (an optional sign, then ASCII digits, within
/// range), straight from the bytes.
fn parse_i64(bytes: &[u8]) -> Result<i64, String> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    // Negatives are accumulated below zero so that i64::MIN parses.
    let mut n: Option<i64> = (!digits.is_empty()).then_some(0);
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        n = n
            .filter(|_| d <= 9)
            .and_then(|n| n.checked_mul(10))
            .and_then(|n| {
                if negative {
                    n.checked_sub(i64::from(d))
                } else {
                    n.checked_add(i64::from(d))
                }
            });
    }
    n.ok_or_else(|| format!("`{}` is not an integer", String::from_utf8_lossy(bytes)))
}

fn csv_error(path: &Path, e: csv::Error) -> InputError {
    let line = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::Io(_) => match e.into_kind() {
            csv::ErrorKind::Io(source) => {
                return InputError::Io {
                    path: path.to_path_buf(),
                    source,
                };
            }
            _ => unreachable!("matched above"),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields but the header has {expected_len}"),
        _ => e.to_string(),
    };
    InputError::Malformed {
        path: path.to_path_buf(),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::validate;
    use crate::policy::PolicyFile;

    /// A plan over `data` (written to a temporary `in.csv`) with a `count_rows` table (k = 4),
    /// a `count_units` table (c = 2) and a `sum` table, all by `cell` in `c0..c49, x`.
    fn plan_for(data: &str) -> (tempfile::TempDir, Plan) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.csv"), data).unwrap();
        let cells: Vec<String> = (0..50)
            .map(|i| format!("\"c{i}\""))
            .chain(["\"x\"".into()])
            .collect();
        let text = format!(
            r#"
            [release]
            id = "t"
            [dataset]
            name = "d"
            privacy_unit = "id"
            budget = {{ rho = 1.0 }}
            [inputs.in]
            path = "in.csv"
            [categories]
            cell = [{}]
            [[table]]
            name = "rows"
            input = "in"
            statistic = "count_rows"
            by = ["cell"]
            max_rows_per_unit = 4
            cost = {{ rho = 0.1 }}
            [[table]]
            name = "units"
            input = "in"
            statistic = "count_units"
            by = ["cell"]
            max_cells_per_unit = 2
            cost = {{ rho = 0.1 }}
            [[table]]
            name = "sums"
            input = "in"
            statistic = "sum"
            column = "v"
            clamp = [0, 10]
            max_rows_per_unit = 4
            by = ["cell"]
            cost = {{ rho = 0.1 }}
            "#,
            cells.join(", ")
        );
        let path = dir.path().join("p.toml");
        let plan = validate(PolicyFile::parse(&text, &path).unwrap(), &path).unwrap();
        (dir, plan)
    }

    fn tiny_chunks() -> ReadOptions {
        ReadOptions {
            threads: 16,
            min_chunk_bytes: 32,
            memory_limit: u64::MAX,
            progress: false,
        }
    }

    /// Spills at once: even one unit is over the limit.
    fn spilling() -> ReadOptions {
        ReadOptions {
            memory_limit: 1,
            ..tiny_chunks()
        }
    }

    fn in_memory() -> ReadOptions {
        ReadOptions {
            threads: 1,
            min_chunk_bytes: 1 << 30,
            memory_limit: u64::MAX,
            progress: false,
        }
    }

    /// `heavy` has 50 rows, one per cell c0..c49, interleaved with 200 one-row units in `x`, so
    /// its rows fall in every one of 16 chunks.
    fn one_heavy_unit() -> String {
        let mut data = String::from("id,cell,v\n");
        for i in 0..50 {
            data += &format!("heavy,c{i},100\n");
            for j in 0..4 {
                data += &format!("u{i}_{j},x,3\n");
            }
        }
        data
    }

    #[test]
    fn a_unit_split_across_chunks_is_bounded_once() {
        let (_dir, plan) = plan_for(&one_heavy_unit());
        for _ in 0..20 {
            let r = read_input_with(&plan, 0, &[0, 1, 2], tiny_chunks()).unwrap();
            assert_eq!(r.rows, 250);
            assert_eq!(r.units, Some(201));
            let heavy = |t: usize| r.exact[t][..50].iter().sum::<i128>();
            assert_eq!((heavy(0), heavy(1), heavy(2)), (4, 2, 40), "{:?}", r.exact);
            assert_eq!(
                (r.exact[0][50], r.exact[1][50], r.exact[2][50]),
                (200, 200, 600)
            );
        }
    }

    #[test]
    fn chunked_and_single_reads_agree_when_no_bound_binds() {
        // No unit exceeds its bounds, so the exact cells are deterministic. Ids of 2 to 40
        // bytes: inline and long keys, handed between readers.
        let mut data = String::from("id,cell,v\n");
        for i in 0..300 {
            let unit = i % 97;
            data += &format!("p{unit}{},c{},{}\n", "x".repeat(unit % 39), i % 50, i % 13);
        }
        let (_dir, plan) = plan_for(&data);
        let single = read_input_with(&plan, 0, &[0, 2], in_memory()).unwrap();
        let chunked = read_input_with(&plan, 0, &[0, 2], tiny_chunks()).unwrap();
        assert_eq!((single.units, chunked.units), (Some(97), Some(97)));
        assert_eq!(single.exact, chunked.exact);
        assert_eq!(single.sha256, chunked.sha256);
        assert_eq!(single.sha256, hash_file(&plan.inputs[0].path).unwrap().0);
    }

    #[test]
    fn errors_in_a_later_chunk_name_the_right_line() {
        let mut data = String::from("id,cell,v\n");
        for i in 0..200 {
            data += &format!("p{i},c1,1\n");
        }
        data += "p9,zebra,1\n"; // line 202
        let (_dir, plan) = plan_for(&data);
        let err = read_input_with(&plan, 0, &[0], tiny_chunks())
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("in.csv:202: field `cell`: value `zebra` is not a declared category of `cell` (declared: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27, c28, c29, c30, c31, c32, c33, c34, c35, c36, c37, c38, c39, c40, c41, c42, c43, c44, c45, c46, c47, c48, c49, x); declare it, fix the data, or map undeclared values with [catch_all]"), "{err}");
        let data = data.replace("p9,zebra,1\n", "p9,c1\n");
        let (_dir, plan) = plan_for(&data);
        let err = read_input_with(&plan, 0, &[0], tiny_chunks())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("in.csv:202: the row has 2 fields but the header has 3"),
            "{err}"
        );
    }

    /// The spill path's exact cells equal the in-memory path's (compared before any noise, in
    /// this test only). With no bound binding, both are deterministic.
    #[test]
    fn spilling_gives_the_in_memory_exact_cells() {
        let mut data = String::from("id,cell,v\n");
        for i in 0..3000 {
            data += &format!("p{},c{},{}\n", i % 997, i % 50, i % 13);
        }
        let (_dir, plan) = plan_for(&data);
        let memory = read_input_with(&plan, 0, &[0, 2], in_memory()).unwrap();
        let spilled = read_input_with(&plan, 0, &[0, 2], spilling()).unwrap();
        assert_eq!(memory.exact, spilled.exact);
        assert_eq!((memory.rows, memory.units), (spilled.rows, spilled.units));
        assert_eq!(memory.sha256, spilled.sha256);
    }

    #[test]
    fn spilling_still_bounds_each_unit() {
        let (_dir, plan) = plan_for(&one_heavy_unit());
        for _ in 0..10 {
            let r = read_input_with(&plan, 0, &[0, 1, 2], spilling()).unwrap();
            let heavy = |t: usize| r.exact[t][..50].iter().sum::<i128>();
            assert_eq!((heavy(0), heavy(1), heavy(2)), (4, 2, 40), "{:?}", r.exact);
            assert_eq!((r.exact[0][50], r.units), (200, Some(201)));
        }
    }

    #[test]
    fn spilling_reports_bad_rows_like_the_in_memory_path() {
        let mut data = String::from("id,cell,v\n");
        for i in 0..200 {
            data += &format!("p{i},c1,1\n");
        }
        data += "p9,c1,x\n";
        let (_dir, plan) = plan_for(&data);
        let err = read_input_with(&plan, 0, &[2], spilling())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("in.csv:202: field `v`: `x` is not an integer"),
            "{err}"
        );
    }

    /// Category values of every length around the inline limit (found as integers up to 16
    /// bytes, through a map beyond), values that are prefixes of one another, and a value one
    /// byte off a declared one.
    #[test]
    fn category_codes_at_every_length() {
        let categories: Vec<String> = (1..=40).map(|n| "x".repeat(n)).collect();
        let mut dim = Dimension {
            name: "d".into(),
            categories: categories.clone(),
            catch_all: None,
        };
        let index = CategoryIndex::new(&dim);
        for (code, c) in categories.iter().enumerate() {
            assert_eq!(index.exact(c.as_bytes()), Some(code as u32), "{c}");
            let mut off = c.clone().into_bytes();
            *off.last_mut().unwrap() = b'y';
            assert_eq!(index.exact(&off), None);
        }
        assert_eq!(index.exact(b""), None);
        assert_eq!(index.exact(&[b'x'; 41]), None);
        dim.catch_all = Some(3);
        let index = CategoryIndex::new(&dim);
        assert!(matches!(index.lookup(b"zebra"), Ok(3)));
        // Bytes that are not UTF-8 (here CP949 for `서울`) never fall to the catch-all.
        assert!(matches!(
            index.lookup(b"\xbc\xad\xbf\xef"),
            Err(BadValue::NotUtf8 { offset: 0, .. })
        ));
    }

    /// Regression: a Hangul category typed on a Mac (decomposed, NFD) did not match the same
    /// category declared in composed form (NFC).
    #[test]
    fn decomposed_hangul_matches_its_composed_category() {
        use unicode_normalization::UnicodeNormalization;
        let dim = Dimension {
            name: "region".into(),
            categories: vec!["서울".into(), "부산".into()],
            catch_all: None,
        };
        let index = CategoryIndex::new(&dim);
        let decomposed: String = "부산".nfd().collect();
        assert_ne!(decomposed.as_bytes(), "부산".as_bytes());
        assert!(matches!(index.lookup(decomposed.as_bytes()), Ok(1)));
    }

    /// Every key of up to [`INLINE_KEY`] bytes over a two-byte alphabet (so a byte that is
    /// dropped, or confused with padding, shows), and random keys of up to [`CATEGORY_KEY`]
    /// bytes with each of their bytes changed in turn, get words of their own.
    #[test]
    fn key_words_are_one_to_one() {
        let mut seen: HashMap<[u64; KEY_WORDS], Vec<u8>> = HashMap::new();
        for n in 0..=INLINE_KEY {
            for bits in 0..1u32 << n {
                let key: Vec<u8> = (0..n).map(|i| (bits >> i & 1) as u8).collect();
                if let Some(other) = seen.insert(key_words(&key), key.clone()) {
                    panic!("{key:?} and {other:?} share their words");
                }
            }
        }
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..2000 {
            let n = rng.gen_range(0..=CATEGORY_KEY);
            let key: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
            for i in 0..n {
                let mut other = key.clone();
                other[i] ^= 1 << rng.gen_range(0..8);
                assert_ne!(
                    category_words(&key),
                    category_words(&other),
                    "{key:?} at {i}"
                );
                if n <= INLINE_KEY {
                    assert_ne!(key_words(&key), key_words(&other), "{key:?} at {i}");
                }
            }
            let shorter = &key[..n.saturating_sub(1)];
            if n > 0 {
                assert_ne!(category_words(&key), category_words(shorter));
            }
        }
    }

    /// Keys of every length around the inline limit, keys that share their first 16 bytes, and
    /// keys that are prefixes of one another stay distinct units, also when every key has the
    /// same hash (so every lookup walks past the others' slots) and as the table grows from its
    /// smallest size.
    #[test]
    fn units_tell_keys_apart_at_every_length() {
        let (_dir, plan) = plan_for("id,cell,v\n");
        let file = File::open(&plan.inputs[0].path).unwrap();
        let layout =
            Layout::new(&plan, 0, &[0], read_header_of(file), &plan.inputs[0].path).unwrap();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for len in 0..40 {
            keys.push(vec![b'a'; len]);
            let mut other = vec![b'a'; len + 1];
            other[len] = b'b';
            keys.push(other);
        }
        for hash in [|_: &[u8]| 7u64, |k: &[u8]| k.len() as u64 * 0x9E37_79B9] {
            let mut units = Units::new(&layout, &[[1, 2]], 0, u64::MAX);
            let ids: Vec<u32> = keys
                .iter()
                .map(|k| units.intern(&key_words(k), k, hash(k)).ok().unwrap())
                .collect();
            assert_eq!(units.len(), keys.len());
            for (k, &id) in keys.iter().zip(&ids) {
                assert_eq!(units.intern(&key_words(k), k, hash(k)).ok(), Some(id));
            }
            let mut distinct = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), keys.len());
        }
    }

    fn read_header_of(mut file: File) -> csv::ByteRecord {
        read_header(&mut file, Path::new("in.csv")).unwrap().0
    }

    /// The first reader's rows turn bad near the end of its chunk, the second's from its first
    /// row: the second stops bounding at once and the first, whose hand-overs to it then fail,
    /// must still find and report its own bad row, the first in the file, with the others.
    #[test]
    fn the_first_bad_row_in_the_file_is_reported() {
        let mut data = String::from("id,cell,v\n");
        for i in 0..30_000 {
            match i {
                14_000 => data += "p14000,c1,oops\n", // line 14,002
                i if i >= 15_000 => data += &format!("p{i:05},zebra,1\n"),
                _ => data += &format!("p{i:05},c1,1\n"),
            }
        }
        let (_dir, plan) = plan_for(&data);
        let two = ReadOptions {
            threads: 2,
            ..tiny_chunks()
        };
        for _ in 0..5 {
            let err = read_input_with(&plan, 0, &[0, 2], two)
                .unwrap_err()
                .to_string();
            // Every kind of bad row is reported, in file order, with its count.
            assert!(
                err.contains("15,001 rows are not valid, with 2 kind(s) of problem:\n  - "),
                "{err}"
            );
            let first = err.lines().nth(1).unwrap();
            assert!(
                first.ends_with("in.csv:14002: field `v`: `oops` is not an integer"),
                "{err}"
            );
            assert!(
                err.contains("in.csv:15002: field `cell`: value `zebra`")
                    && err.ends_with("(15,000 rows like this; the first is shown)"),
                "{err}"
            );
        }
    }

    #[test]
    fn quoted_newlines_fall_back_to_one_chunk() {
        let mut data = String::from("id,cell,v\n");
        for i in 0..200 {
            data += &format!("\"p{i}\nsecond line\",c{},1\n", i % 50);
        }
        let (_dir, mut plan) = plan_for(&data);
        plan.inputs[0].multiline = true;
        let r = read_input_with(&plan, 0, &[0], tiny_chunks()).unwrap();
        assert_eq!(r.rows, 200);
        assert_eq!(r.exact[0].iter().sum::<i128>(), 200);
    }

    /// Regression: a field opening with a stray `"` and closed by a legitimate quote lines
    /// later turned the rows between into one record that passed every check (one unit's row
    /// swallowed the next 498 units). A line break inside quotes is an error naming the line
    /// where the quote opened, unless the input declares `multiline = true`.
    #[test]
    fn a_stray_quote_cannot_swallow_the_rows_after_it() {
        let mut data = String::from("id,cell,v\np0,c0,1\n\"p1,c1,1\n");
        for i in 2..500 {
            data += &format!("p{i},c{},1\n", i % 50);
        }
        data += "p500\",c0,1\n";
        let (_dir, plan) = plan_for(&data);
        for options in [tiny_chunks(), in_memory(), spilling()] {
            let err = read_input_with(&plan, 0, &[0], options)
                .unwrap_err()
                .to_string();
            assert!(err.contains("in.csv:3: field `id`"), "{err}");
            assert!(err.contains("across 499 line break(s)"), "{err}");
            assert!(err.contains("multiline = true"), "{err}");
        }
    }

    /// Windows line ends and blank lines before the bad row: the line named is the row's own,
    /// whether the rows are split by [`Unquoted`] or (with a quote in the file) by the csv crate.
    #[test]
    fn crlf_and_blank_lines_name_the_right_line() {
        for first in ["p0", "\"p0\""] {
            let mut data = String::from("id,cell,v\r\n");
            for i in 0..100 {
                data += &format!("{},c1,1\r\n", if i == 0 { first } else { "p1" });
            }
            data += "\r\n\n\r\np9,zebra,1\r\n"; // line 105
            let (_dir, plan) = plan_for(&data);
            for options in [tiny_chunks(), in_memory(), spilling()] {
                let err = read_input_with(&plan, 0, &[0], options)
                    .unwrap_err()
                    .to_string();
                assert!(err.contains("in.csv:105: field `cell`"), "{first}: {err}");
            }
        }
    }

    /// Unquoted and quoted inputs with the same rows give the same counts, on every path.
    #[test]
    fn a_quote_anywhere_gives_the_same_counts() {
        let mut plain = String::from("id,cell,v\n");
        for i in 0..300 {
            plain += &format!("p{},c{},{}\r\n", i % 97, i % 50, i % 13);
        }
        let quoted = plain.replace("p42,", "\"p42\",");
        let (_a, plain) = plan_for(&plain);
        let (_b, quoted) = plan_for(&quoted);
        for options in [tiny_chunks(), in_memory(), spilling()] {
            let a = read_input_with(&plain, 0, &[0, 2], options).unwrap();
            let b = read_input_with(&quoted, 0, &[0, 2], options).unwrap();
            assert_eq!((a.exact, a.rows, a.units), (b.exact, b.rows, b.units));
        }
    }

    #[test]
    fn integers_parse_as_rust_parses_them() {
        let mut cases: Vec<String> = [
            "",
            "-",
            "+",
            "0",
            "-0",
            "+0",
            "007",
            "-007",
            "12a",
            "1 2",
            "--1",
            "+-1",
            "-+1",
            "0x10",
            "1e3",
            "1.0",
            "\u{661}",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "+9223372036854775807",
            "99999999999999999999",
            "/",
            ":",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..22);
            cases.push(
                (0..len)
                    .map(|_| ['0', '1', '9', '-', '+', '/', ':', ' ', 'x'][rng.gen_range(0..9)])
                    .collect(),
            );
            cases.push(rng.r#gen::<i64>().to_string());
        }
        for case in &cases {
            assert_eq!(
                parse_i64(case.as_bytes()).ok(),
                case.parse::<i64>().ok(),
                "`{case}`"
            );
        }
    }
}
