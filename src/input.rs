//! Input readers: stream a CSV input once, check every value against the plan, and feed each
//! table's contribution bounding.
//!
//! Owns header resolution, category interning (values become small integer codes), privacy-unit
//! interning, value parsing and the SHA-256 of the bytes read. Errors name the file, the line and
//! the field. Must never print, log or return a data value other than the offending one in an
//! error message, and never the exact cells it produces.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hashbrown::HashTable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::bounding::Bounder;
use crate::plan::{Dimension, InputKind, Plan, Statistic};

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
        "{path}: the header has no column `{column}` (needed by {needed_by}); columns are: {available}"
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        needed_by: String,
        available: String,
    },
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
}

/// What reading one input produced.
#[derive(Debug)]
pub struct InputResult {
    /// Exact cells per table, in the order of the `tables` argument. Never written anywhere.
    pub exact: Vec<Vec<i64>>,
    pub sha256: String,
    /// Rows read (exact; shown by `check` to the data officer only, never published).
    pub rows: u64,
    /// Distinct privacy units (microdata only; same caveat).
    pub units: Option<u64>,
}

/// Looks up a category value's code, applying the dimension's catch-all.
struct CategoryIndex {
    codes: HashMap<Box<[u8]>, u32>,
    catch_all: Option<u32>,
    name: String,
    declared: String,
}

impl CategoryIndex {
    fn new(dim: &Dimension) -> CategoryIndex {
        CategoryIndex {
            codes: dim
                .categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_bytes().into(), i as u32))
                .collect(),
            catch_all: dim.catch_all,
            name: dim.name.clone(),
            declared: dim.categories.join(", "),
        }
    }

    fn code(&self, value: &[u8]) -> Option<u32> {
        self.codes.get(value).copied().or(self.catch_all)
    }

    fn undeclared(&self, value: &[u8]) -> String {
        format!(
            "value `{}` is not a declared category of `{}` (declared: {}); declare it, fix the data, or map undeclared values with [catch_all]",
            String::from_utf8_lossy(value),
            self.name,
            self.declared
        )
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
        let (unit_column, count_column) = match &plan.inputs[input].kind {
            InputKind::Microdata => (Some(column(&plan.privacy_unit, "the privacy unit")?), None),
            InputKind::Aggregated { count_column } => {
                (None, Some(column(count_column, "the count")?))
            }
        };
        Ok(Layout {
            headers,
            dims,
            tables: table_layouts,
            unit_column,
            count_column,
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
    At {
        byte: u64,
        field: Option<usize>,
        message: String,
    },
}

/// The units of one chunk: their keys in one arena, found through a table of (keyed hash, id).
struct Units {
    table: HashTable<(u64, u32)>,
    keys: Vec<u8>,
    /// End of each unit's key in `keys`.
    ends: Vec<usize>,
}

impl Units {
    fn with_capacity(units: usize) -> Units {
        Units {
            table: HashTable::with_capacity(units),
            keys: Vec::new(),
            ends: Vec::with_capacity(units),
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn key(&self, unit: u32) -> &[u8] {
        let u = unit as usize;
        let start = if u == 0 { 0 } else { self.ends[u - 1] };
        &self.keys[start..self.ends[u]]
    }

    /// The id of the unit with key `id` and keyed hash `hash`, adding it (to `bounder` too) if new.
    fn intern(&mut self, id: &[u8], hash: u64, bounder: &mut Bounder) -> u32 {
        let found = {
            let (keys, ends) = (&self.keys, &self.ends);
            self.table
                .find(hash, |&(h, u)| {
                    h == hash && {
                        let u = u as usize;
                        let start = if u == 0 { 0 } else { ends[u - 1] };
                        &keys[start..ends[u]] == id
                    }
                })
                .map(|&(_, u)| u)
        };
        match found {
            Some(u) => u,
            None => {
                let u = bounder.add_unit(hash);
                self.keys.extend_from_slice(id);
                self.ends.push(self.keys.len());
                self.table.insert_unique(hash, (hash, u), |&(h, _)| h);
                u
            }
        }
    }
}

/// What every reader of one input shares.
#[derive(Clone, Copy)]
struct Pass<'a> {
    path: &'a Path,
    layout: &'a Layout,
    /// The keyed hash of unit keys (one key for the whole input, so chunks agree).
    hasher: &'a RandomState,
    /// Per table, the salt of its `count_units` priorities.
    salts: &'a [u64],
    counters: &'a Counters,
    /// How many hash ranges each chunk splits its units into (one per core).
    ranges: usize,
}

/// Exact cells per table, with the row and unit counts.
struct Counted {
    exact: Vec<Vec<i64>>,
    rows: u64,
    units: u64,
}

/// The units of one hash range, and their bounded contributions.
struct Part {
    units: Units,
    bounder: Bounder,
}

/// What one chunk of rows produced: its units split into hash ranges ([`part_of`]), so that the
/// chunks' ranges can be merged and finished one range per core.
struct Chunk {
    parts: Vec<Part>,
    aggregated: Vec<Vec<i64>>,
    rows: u64,
}

/// The hash range of a unit. Bits 40.. are used: hashbrown takes the bucket from the low bits and
/// its tag from the top seven, which a range must not fix.
fn part_of(hash: u64, parts: usize) -> usize {
    ((hash >> 40) % parts as u64) as usize
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
    let path = plan.inputs[input].path.as_path();
    let io_err = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(|source| InputError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let before = file.metadata().map_err(io_err)?;
    let len = before.len();
    let (headers, header_end) = read_header(&mut file, path)?;
    let layout = Layout::new(plan, input, tables, headers, path)?;
    let chunks = chunk_bounds(&mut file, header_end, len, options).map_err(io_err)?;

    let mut seed = StdRng::from_entropy();
    let hasher = RandomState::new();
    let salts: Vec<u64> = layout.tables.iter().map(|_| seed.r#gen()).collect();
    let share = options.memory_limit / chunks.len() as u64;
    let counters = Counters::default();
    let name = plan.inputs[input].name.as_str();
    let pass = Pass {
        path,
        layout: &layout,
        hasher: &hasher,
        salts: &salts,
        counters: &counters,
        ranges: options.threads.max(1),
    };
    let (hashed, results) = std::thread::scope(|s| {
        let progress = options
            .progress
            .then(|| s.spawn(|| show_progress(&counters, len, name)));
        let digest = s.spawn(|| hash_file(path));
        let workers: Vec<_> = chunks
            .iter()
            .map(|&(start, end)| s.spawn(move || read_chunk(pass, start, end, share)))
            .collect();
        let results: Vec<Result<Chunk, ChunkError>> = workers
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
    let after = std::fs::metadata(path).map_err(io_err)?;
    if after.len() != len || after.modified().ok() != before.modified().ok() {
        return Err(InputError::Changed {
            path: path.to_path_buf(),
        });
    }
    if has_quote && chunks.len() > 1 {
        // A quoted field may hold a newline, so a chunk may have started mid-record: read the
        // file again in one piece.
        return read_input_with(
            plan,
            input,
            tables,
            ReadOptions {
                threads: 1,
                ..options
            },
        );
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
        let chunks = results
            .into_iter()
            .map(|r| r.map_err(|e| locate(path, &layout, e)))
            .collect::<Result<Vec<Chunk>, _>>()?;
        combine(chunks, layout.count_column.is_some())
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
    Ok((headers, end))
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
    /// Where to point an error about this row: its byte offset and the count column.
    byte: u64,
    count_column: usize,
}

/// Reads and validates the rows in `[start, end)` of the file, handing each to `sink`; returns
/// how many rows there were. The one place a row's values are parsed and checked.
fn scan_rows(
    path: &Path,
    start: u64,
    end: u64,
    layout: &Layout,
    counters: &Counters,
    mut sink: impl FnMut(Row) -> Result<(), ChunkError>,
) -> Result<u64, ChunkError> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut reported = start;
    let mut file = File::open(path).map_err(ChunkError::Io)?;
    file.seek(SeekFrom::Start(start)).map_err(ChunkError::Io)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .buffer_capacity(1 << 17)
        .from_reader(file.take(end - start));
    let width = layout.headers.len();
    let mut codes = vec![0u32; layout.dims.len()];
    let mut cells = vec![0u32; layout.tables.len()];
    let mut values = vec![0i64; layout.tables.len()];
    let mut record = csv::ByteRecord::new();
    let mut rows: u64 = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let byte = start + e.position().map_or(0, |p| p.byte());
                return Err(match e.into_kind() {
                    csv::ErrorKind::Io(e) => ChunkError::Io(e),
                    kind => ChunkError::At {
                        byte,
                        field: None,
                        message: format!("{kind:?}"),
                    },
                });
            }
        }
        rows += 1;
        let byte = start + record.position().map_or(0, |p| p.byte());
        if rows.is_multiple_of(65_536) {
            counters.rows.fetch_add(65_536, Relaxed);
            counters.bytes.fetch_add(byte - reported, Relaxed);
            reported = byte;
        }
        let at = |field: usize, message: String| ChunkError::At {
            byte,
            field: Some(field),
            message,
        };
        if record.len() != width {
            return Err(ChunkError::At {
                byte,
                field: None,
                message: format!(
                    "the row has {} fields but the header has {width}",
                    record.len()
                ),
            });
        }
        for (k, (_, col, index)) in layout.dims.iter().enumerate() {
            let value = &record[*col];
            codes[k] = index
                .code(value)
                .ok_or_else(|| at(*col, index.undeclared(value)))?;
        }
        let unit = match layout.unit_column {
            Some(col) => {
                let id = &record[col];
                if id.is_empty() {
                    return Err(at(col, "the privacy unit is empty".to_string()));
                }
                Some(id)
            }
            None => None,
        };
        for (t, table) in layout.tables.iter().enumerate() {
            let mut cell: u32 = 0;
            for &(pos, radix) in &table.dims {
                cell = cell * radix + codes[pos];
            }
            cells[t] = cell;
            values[t] = match table.sum {
                Some((col, lo, hi)) => parse_i64(&record[col])
                    .map_err(|m| at(col, m))?
                    .clamp(lo, hi),
                None => 1,
            };
        }
        let count = match layout.count_column {
            Some(col) => {
                let n = parse_i64(&record[col]).map_err(|m| at(col, m))?;
                if n < 0 {
                    return Err(at(col, format!("count `{n}` is negative")));
                }
                Some(n)
            }
            None => None,
        };
        sink(Row {
            unit,
            cells: &cells,
            values: &values,
            count,
            byte,
            count_column: layout.count_column.unwrap_or(0),
        })?;
    }
    Ok(rows)
}

fn new_bounder(layout: &Layout, salts: &[u64]) -> Bounder {
    Bounder::new(
        &layout
            .tables
            .iter()
            .zip(salts)
            .map(|(t, &salt)| (t.statistic.clone(), t.cells, salt))
            .collect::<Vec<_>>(),
    )
}

/// Bytes one more unit with key `id` takes: its record, its key and its table entry.
fn unit_footprint(bounder: &Bounder, id: &[u8]) -> u64 {
    (bounder.bytes_per_unit() + 8 + 20 + id.len()) as u64
}

/// Reads one chunk in memory. Gives up with [`ChunkError::OverMemory`] once its units need more
/// than `memory_limit` bytes.
fn read_chunk(pass: Pass, start: u64, end: u64, memory_limit: u64) -> Result<Chunk, ChunkError> {
    let Pass {
        path,
        layout,
        hasher,
        salts,
        counters,
        ranges,
    } = pass;
    let mut rng = StdRng::from_entropy();
    // At most one unit per row, and rows take ~40 bytes or more: sizing for that up front spares
    // the table its rehashes (only the table's control bytes are written until units arrive).
    let expected_units = match layout.unit_column {
        Some(_) => (((end - start) / 40) as usize).min((memory_limit / 64) as usize),
        None => 0,
    };
    let mut parts: Vec<Part> = (0..ranges)
        .map(|_| {
            let mut bounder = new_bounder(layout, salts);
            bounder.reserve(expected_units / ranges);
            Part {
                units: Units::with_capacity(expected_units / ranges),
                bounder,
            }
        })
        .collect();
    let mut footprint: u64 = 0;
    let mut aggregated: Vec<Vec<i64>> = match layout.count_column {
        Some(_) => layout.tables.iter().map(|t| vec![0; t.cells]).collect(),
        None => Vec::new(),
    };
    let rows = scan_rows(path, start, end, layout, counters, |row| {
        if let Some(id) = row.unit {
            let hash = hasher.hash_one(id);
            let Part { units, bounder } = &mut parts[part_of(hash, ranges)];
            let known = units.len();
            let u = units.intern(id, hash, bounder);
            if units.len() > known {
                footprint += unit_footprint(bounder, id);
                if footprint > memory_limit {
                    return Err(ChunkError::OverMemory);
                }
            }
            bounder.observe_row(u, rng.r#gen(), row.cells, row.values);
        } else if let Some(n) = row.count {
            for (t, &cell) in row.cells.iter().enumerate() {
                let slot = &mut aggregated[t][cell as usize];
                *slot = slot.checked_add(n).ok_or_else(|| ChunkError::At {
                    byte: row.byte,
                    field: Some(row.count_column),
                    message: "the cell's total overflows".into(),
                })?;
            }
        }
        Ok(())
    })?;
    Ok(Chunk {
        parts,
        aggregated,
        rows,
    })
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
        path,
        layout,
        hasher,
        salts,
        counters,
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
    let rows = scan_rows(path, start, end, layout, counters, |row| {
        let id = row.unit.expect("only microdata spills");
        let hash = hasher.hash_one(id);
        let f = &mut files[(hash % partitions as u64) as usize];
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
    for f in &mut files {
        f.flush().map_err(ChunkError::Io)?;
    }
    drop(files);

    let tables = layout.tables.len();
    let mut total: Option<Vec<Vec<i64>>> = None;
    let mut unit_count = 0;
    let (mut cells, mut values) = (vec![0u32; tables], vec![0i64; tables]);
    for p in 0..partitions {
        let mut r = BufReader::with_capacity(
            1 << 16,
            File::open(dir.path().join(format!("{p}.bin"))).map_err(ChunkError::Io)?,
        );
        let mut units = Units::with_capacity(0);
        let mut bounder = new_bounder(layout, salts);
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
            let u = units.intern(&id, hash, &mut bounder);
            bounder.observe_row(u, prio, &cells, &values);
        }
        unit_count += units.len();
        let part = bounder.finish();
        match &mut total {
            None => total = Some(part),
            Some(total) => {
                for (t, p) in total.iter_mut().zip(part) {
                    for (a, b) in t.iter_mut().zip(p) {
                        *a += b;
                    }
                }
            }
        }
    }
    Ok(Counted {
        exact: total.unwrap_or_default(),
        rows,
        units: unit_count as u64,
    })
}

/// Combines the chunks: each hash range is merged across chunks and finished on its own thread
/// (units never span ranges, so the exact cells are the sum over ranges), and aggregated counts
/// are added up.
fn combine(chunks: Vec<Chunk>, aggregated: bool) -> Counted {
    let rows = chunks.iter().map(|c| c.rows).sum();
    let mut totals: Vec<Vec<i64>> = Vec::new();
    let mut by_range: Vec<Vec<Part>> = Vec::new();
    for chunk in chunks {
        for (cells, add) in totals.iter_mut().zip(&chunk.aggregated) {
            for (c, v) in cells.iter_mut().zip(add) {
                *c = c.saturating_add(*v);
            }
        }
        if totals.is_empty() {
            totals = chunk.aggregated;
        }
        by_range.resize_with(chunk.parts.len(), Vec::new);
        for (range, part) in by_range.iter_mut().zip(chunk.parts) {
            range.push(part);
        }
    }
    if aggregated {
        return Counted {
            exact: totals,
            rows,
            units: 0,
        };
    }
    let finished: Vec<(Vec<Vec<i64>>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = by_range
            .into_iter()
            .map(|parts| {
                s.spawn(move || {
                    let mut parts = parts.into_iter();
                    let mut base = parts.next().expect("every chunk has every range");
                    for other in parts {
                        merge(&mut base, &other);
                    }
                    let units = base.units.len();
                    (base.bounder.finish(), units)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("merging thread panicked"))
            .collect()
    });
    let mut exact: Option<Vec<Vec<i64>>> = None;
    let mut units = 0;
    for (cells, n) in finished {
        units += n;
        match &mut exact {
            None => exact = Some(cells),
            Some(total) => {
                for (t, c) in total.iter_mut().zip(cells) {
                    for (a, b) in t.iter_mut().zip(c) {
                        *a += b;
                    }
                }
            }
        }
    }
    Counted {
        exact: exact.expect("at least one range"),
        rows,
        units: units as u64,
    }
}

/// Merges one hash range of a later chunk into `base`: units are matched by their key bytes, and
/// each unit's bounded sample is merged exactly (see [`Bounder::merge_unit`]).
fn merge(base: &mut Part, other: &Part) {
    for u in 0..other.units.len() as u32 {
        let hash = other.bounder.unit_hash(u);
        let dst = base
            .units
            .intern(other.units.key(u), hash, &mut base.bounder);
        base.bounder.merge_unit(dst, &other.bounder, u);
    }
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
        ChunkError::OverMemory => unreachable!("over-memory chunks are spilled, never reported"),
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

/// The 1-based line holding byte `byte` of the file.
fn line_of(path: &Path, byte: u64) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    let mut prefix = Vec::new();
    if file.take(byte).read_to_end(&mut prefix).is_err() {
        return 0;
    }
    prefix.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

fn parse_i64(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("`{}` is not an integer", String::from_utf8_lossy(bytes)))
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

    #[test]
    fn a_unit_split_across_chunks_is_bounded_once() {
        // `heavy` has 50 rows, one per cell c0..c49, interleaved with 200 one-row units in `x`,
        // so its rows fall in every one of the 16 chunks.
        let mut data = String::from("id,cell,v\n");
        for i in 0..50 {
            data += &format!("heavy,c{i},100\n");
            for j in 0..4 {
                data += &format!("u{i}_{j},x,3\n");
            }
        }
        let (_dir, plan) = plan_for(&data);
        for _ in 0..20 {
            let r = read_input_with(&plan, 0, &[0, 1, 2], tiny_chunks()).unwrap();
            assert_eq!(r.rows, 250);
            assert_eq!(r.units, Some(201));
            let heavy = |t: usize| r.exact[t][..50].iter().sum::<i64>();
            assert_eq!((heavy(0), heavy(1), heavy(2)), (4, 2, 40), "{:?}", r.exact);
            assert_eq!(
                (r.exact[0][50], r.exact[1][50], r.exact[2][50]),
                (200, 200, 600)
            );
        }
    }

    #[test]
    fn chunked_and_single_reads_agree_when_no_bound_binds() {
        // No unit exceeds its bounds, so the exact cells are deterministic.
        let mut data = String::from("id,cell,v\n");
        for i in 0..300 {
            data += &format!("p{},c{},{}\n", i % 97, i % 50, i % 13);
        }
        let (_dir, plan) = plan_for(&data);
        let single = read_input_with(&plan, 0, &[0, 2], in_memory()).unwrap();
        let chunked = read_input_with(&plan, 0, &[0, 2], tiny_chunks()).unwrap();
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
        let mut data = String::from("id,cell,v\n");
        for i in 0..50 {
            data += &format!("heavy,c{i},100\n");
            for j in 0..4 {
                data += &format!("u{i}_{j},x,3\n");
            }
        }
        let (_dir, plan) = plan_for(&data);
        for _ in 0..10 {
            let r = read_input_with(&plan, 0, &[0, 1, 2], spilling()).unwrap();
            let heavy = |t: usize| r.exact[t][..50].iter().sum::<i64>();
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

    #[test]
    fn quoted_newlines_fall_back_to_one_chunk() {
        let mut data = String::from("id,cell,v\n");
        for i in 0..200 {
            data += &format!("\"p{i}\nsecond line\",c{},1\n", i % 50);
        }
        let (_dir, plan) = plan_for(&data);
        let r = read_input_with(&plan, 0, &[0], tiny_chunks()).unwrap();
        assert_eq!(r.rows, 200);
        assert_eq!(r.exact[0].iter().sum::<i64>(), 200);
    }
}
