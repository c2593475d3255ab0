//! What a source is asked to count ([`Count`]), what it gives back for the counts of one input
//! ([`InputResult`]), and how an input is read ([`ReadOptions`]).

use crate::policy::{Plan, Statistic, TableSpec};

/// One table of exact cells a source is asked to count: `statistic` by `dims` (indices into the
/// plan's dimensions, first slowest) from input `input`; `name` says which table(s) it serves, in
/// errors. Nothing about noise: what a count is for (a DP table, a group's union, an exact table's
/// units or a data's exact sums) is the reader's caller's ([`super::read_all`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub name: String,
    pub input: usize,
    pub dims: Vec<usize>,
    pub statistic: Statistic,
}

impl Count {
    /// What DP table `t` counts.
    pub fn of(t: &TableSpec) -> Count {
        Count {
            name: t.name.clone(),
            input: t.input,
            dims: t.dims.clone(),
            statistic: t.statistic.clone(),
        }
    }

    /// Its number of cells.
    pub fn cells(&self, plan: &Plan) -> usize {
        self.dims
            .iter()
            .map(|&d| plan.dimensions[d].categories.len())
            .product()
    }
}

/// What reading one input produced.
#[derive(Debug)]
pub struct InputResult {
    /// One result per count asked, in the order of the `counts` argument (moved out by
    /// [`super::read_all`], which keeps them by count: empty in [`super::InputData::results`]).
    /// Never written anywhere.
    pub counted: Vec<Counted>,
    /// What identifies the input's content in the ledger (private: a function of the data).
    pub fingerprint: crate::hash::Fingerprint,
    /// Rows read (exact; shown by `check` to the data officer only, never published).
    pub rows: u64,
    /// Distinct privacy units (microdata only; same caveat; a database input's only when
    /// [`ReadOptions::distinct_units`] asks).
    pub units: Option<u64>,
    /// What an SQL input's read sent and saw, for the ledger (`None` for a file).
    pub sql: Option<SqlRead>,
    /// Per table (in the order of the `tables` argument), what its contribution bounds did in
    /// this read (a microdata file's; empty for pre-counted and SQL inputs, bounded elsewhere).
    /// For `check`'s eyes only, like `rows`.
    pub bounding: Vec<BoundingEffect>,
}

/// What one [`Count`] gave back, by its statistic. Cells are first dimension slowest, and wider
/// than the noise's `i64` so that no sum can wrap (see [`super::saturate`]). Never written
/// anywhere.
#[derive(Debug, Clone, PartialEq)]
pub enum Counted {
    /// A count of units or of rows: per cell, the count.
    Cells(Vec<i128>),
    /// A DP sum: per cell, its bounded sum, and its contributors (distinct units among the
    /// cell's kept rows).
    Sum {
        values: Vec<i128>,
        contributors: Vec<i128>,
    },
    /// An exact table's sum or count of rows ([`crate::policy::Statistic::Total`]): per cell,
    /// the sum, and what the units contributed.
    Total { values: Vec<i128>, whole: Whole },
}

impl Counted {
    /// Its value per cell (a count, or a sum).
    pub fn values(&self) -> &[i128] {
        match self {
            Counted::Cells(values)
            | Counted::Sum { values, .. }
            | Counted::Total { values, .. } => values,
        }
    }

    /// Moves its values out (a DP table's are dropped as soon as the noise is added).
    pub fn take_values(&mut self) -> Vec<i128> {
        match self {
            Counted::Cells(values)
            | Counted::Sum { values, .. }
            | Counted::Total { values, .. } => std::mem::take(values),
        }
    }

    /// A DP sum's contributors per cell.
    pub fn contributors(&self) -> Option<&[i128]> {
        match self {
            Counted::Sum { contributors, .. } => Some(contributors),
            _ => None,
        }
    }

    /// Moves a DP sum's contributors out.
    pub fn take_contributors(&mut self) -> Option<Vec<i128>> {
        match self {
            Counted::Sum { contributors, .. } => Some(std::mem::take(contributors)),
            _ => None,
        }
    }

    /// An exact sum's contributions.
    pub fn whole(&self) -> Option<&Whole> {
        match self {
            Counted::Total { whole, .. } => Some(whole),
            _ => None,
        }
    }
}

/// What a table's contribution bounds did in one read of a microdata file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundingEffect {
    /// Rows read.
    pub rows: u64,
    /// A table of rows (`count_rows`, `sum`), when counted ([`ReadOptions::bounding_effect`]):
    /// the rows its units keep under `max_rows_per_unit`, then also under `max_rows_per_cell`.
    /// Which rows a unit keeps is random, so the second varies a little between reads when both
    /// bounds bind.
    pub kept: Option<[u64; 2]>,
    /// A sum: how many of the rows read had a value below its clamp, and above it.
    pub clamped: Option<[u64; 2]>,
}

/// What the ledger (private) records of one SQL input's read.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRead {
    /// `version()`, as the server reports it.
    pub engine: String,
    /// The relation or query, as the policy states it.
    pub relation: String,
    /// `txid_current_snapshot()`: the snapshot every statement saw.
    pub snapshot: String,
    /// SHA-256 of every statement sent, in order.
    pub statements: Vec<String>,
}

/// How an input is read: in how many parallel chunks at most, and how small a chunk may be.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub threads: usize,
    pub min_chunk_bytes: u64,
    /// Bytes a streamed input's units may take before the input is spilled to disk by unit; it
    /// also caps [`ReadOptions::filing_budget`].
    pub memory_limit: u64,
    /// Bytes the rows of a microdata input may take filed in memory (with what bounding them
    /// takes besides), where they are bounded partition by partition in the processor's cache
    /// (about 40 bytes a row for the sample policy), at most `memory_limit`; an input whose rows
    /// need more (by a sample, or a reader's share found outgrown) is streamed into its units
    /// instead, as they are read, so that memory grows with the units and never with the rows
    /// beyond this.
    pub filing_budget: u64,
    /// Show progress on stderr when reading takes more than a second and stderr is a terminal.
    pub progress: bool,
    /// Count what each table's row bounds keep ([`InputResult::bounding`]'s `kept`), for
    /// `check`: one more pass over the units' records, so a release does not ask for it.
    pub bounding_effect: bool,
    /// Fingerprint the inputs in the legacy scheme too ([`crate::hash::Fingerprint`]): asked
    /// when the ledger still holds a charge fingerprinted that way.
    pub legacy_fingerprints: bool,
    /// Count a database input's distinct units ([`InputResult::units`]), for `check`: a grouping
    /// of every row by unit that a release does not need. (A file's come free.)
    pub distinct_units: bool,
}

/// Half the machine's memory (from /proc/meminfo), or 4 GiB where that cannot be read.
fn default_memory_limit() -> u64 {
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
    /// Every core, or `SAFESTAT_THREADS` when set (for benchmarks and shared machines); rows
    /// filed up to 1 GiB, or `SAFESTAT_FILING_MIB` MiB when set (for benchmarks: 0 streams
    /// every input).
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
            filing_budget: std::env::var("SAFESTAT_FILING_MIB")
                .ok()
                .and_then(|m| m.parse::<u64>().ok())
                .map_or(1 << 30, |m| m.saturating_mul(1 << 20)),
            progress: true,
            bounding_effect: false,
            legacy_fingerprints: false,
            distinct_units: false,
        }
    }
}

/// What the units of one exact sum table ([`crate::policy::Statistic::Total`]) contributed, cell by cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Whole {
    /// Per cell, the units with a row in it.
    pub units: Vec<i128>,
    /// Per cell, the largest sums (largest first) of the units in this cell alone.
    pub largest: Vec<Vec<i128>>,
    /// Each unit in several cells: its sum in each (by cell).
    pub spanning: Vec<Vec<(u32, i128)>>,
}

/// Adds `v` to `list` (largest first) if it is among the `k` largest.
pub fn keep_largest<T: Ord + Copy>(list: &mut Vec<T>, v: T, k: usize) {
    let at = list.partition_point(|&x| x >= v);
    if at < k {
        list.insert(at, v);
        list.truncate(k);
    }
}
