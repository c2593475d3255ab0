//! Where everything is in an input's rows: the columns each table reads, and category values
//! found as small integer codes (after Unicode NFC, never from bytes that are not UTF-8).

use std::collections::HashMap;
use std::path::Path;

use super::keys::{INLINE_KEY, key_words};
use crate::input::{Count, InputError};
use crate::policy::{Dimension, InputKind, Plan, Statistic};

/// Looks up a category value's code, applying the dimension's catch-all. Runs for every
/// dimension of every row, so values of up to [`CATEGORY_KEY`] bytes are found as five integers
/// ([`category_words`]) in a small open-addressing table, with no string hashing or comparison.
pub(in crate::input) struct CategoryIndex {
    /// At most a quarter full, a power of two long; an empty slot's code is [`EMPTY`].
    short: Vec<Slot>,
    /// The odd multiplier of [`CategoryIndex::home`], chosen so that as few categories as
    /// possible are displaced from their home slot (for a few dozen categories usually none;
    /// of hundreds, a few).
    seed: u64,
    /// Values longer than [`CATEGORY_KEY`] bytes.
    pub(super) long: HashMap<Box<[u8]>, u32>,
    pub(super) catch_all: Option<u32>,
    pub(super) name: String,
    pub(super) declared: String,
    pub(super) labels: Vec<String>,
}

/// A slot of [`CategoryIndex`]'s table: a category's words and its code.
#[derive(Clone, Copy)]
struct Slot {
    key: [u64; 5],
    code: u32,
}

/// The code of an empty slot.
const EMPTY: u32 = u32::MAX;
/// An empty slot: its words are no value's ([`category_words`] of up to [`INLINE_KEY`] bytes
/// ends in three zero words; of more, in the length), so no lookup stops at it as found.
const EMPTY_SLOT: Slot = Slot {
    key: [u64::MAX; 5],
    code: EMPTY,
};

/// The home slot of `key` in a table of `len` (a power of two) slots.
#[inline]
fn home(key: &[u64; 5], seed: u64, len: usize) -> usize {
    // Every word, each pair in an order (the words of values that differ only in byte order
    // within them do not cancel out), then the seed.
    let front = key[0].wrapping_mul(0xFF51_AFD7_ED55_8CCD) ^ key[1];
    let back = key[2].wrapping_mul(0xC4CE_B9FE_1A85_EC53) ^ key[3] ^ key[4].rotate_left(43);
    ((front ^ back.rotate_left(29)).wrapping_mul(seed) >> 40) as usize & (len - 1)
}

/// Puts `key` in the first free slot of `table` from its home: true if that is its home.
fn place(table: &mut [Slot], seed: u64, key: [u64; 5], code: u32) -> bool {
    let at = home(&key, seed, table.len());
    let mut i = at;
    while table[i].code != EMPTY {
        i = (i + 1) & (table.len() - 1);
    }
    table[i] = Slot { key, code };
    i == at
}

/// The longest category value [`CategoryIndex`] finds as integers.
pub(super) const CATEGORY_KEY: usize = 32;
/// A category value of up to [`CATEGORY_KEY`] bytes as five words, one-to-one: up to
/// [`INLINE_KEY`] bytes its [`key_words`] and zeros; beyond that four (possibly overlapping)
/// unaligned loads and the length (never zero).
pub(super) fn category_words(value: &[u8]) -> [u64; 5] {
    let n = value.len();
    if n <= INLINE_KEY {
        let [a, b] = key_words(value);
        return [a, b, 0, 0, 0];
    }
    let word = |at: usize| u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
    [word(0), word(8), word(n - 16), word(n - 8), n as u64]
}

impl CategoryIndex {
    pub(in crate::input) fn new(dim: &Dimension) -> CategoryIndex {
        let size = (dim.categories.len() * 4).next_power_of_two().max(8);
        let mut index = CategoryIndex {
            short: Vec::new(),
            seed: 0,
            long: HashMap::new(),
            catch_all: dim.catch_all,
            name: dim.name.clone(),
            declared: dim.categories.join(", "),
            labels: dim.categories.clone(),
        };
        let mut short = Vec::new();
        for (code, c) in dim.categories.iter().enumerate() {
            let (value, code) = (c.as_bytes(), code as u32);
            if value.len() > CATEGORY_KEY {
                index.long.insert(value.into(), code);
            } else {
                short.push((category_words(value), code));
            }
        }
        // A few multipliers tried, the first that leaves every category in its home slot kept
        // (else the one displacing fewest): a lookup is then one probe.
        let mut fewest = usize::MAX;
        for attempt in 1..=16u64 {
            let seed = attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut table = vec![EMPTY_SLOT; size];
            let displaced = short
                .iter()
                .filter(|&&(key, code)| !place(&mut table, seed, key, code))
                .count();
            if displaced < fewest {
                (fewest, index.short, index.seed) = (displaced, table, seed);
            }
            if displaced == 0 {
                break;
            }
        }
        index
    }

    #[inline]
    fn home(&self, key: &[u64; 5]) -> usize {
        home(key, self.seed, self.short.len())
    }

    /// How many categories are not in their home slot (each costs its lookups a probe more).
    #[cfg(test)]
    pub(super) fn displaced(&self) -> usize {
        (0..self.short.len())
            .filter(|&i| self.short[i].code != EMPTY && self.home(&self.short[i].key) != i)
            .count()
    }

    /// The code of `value`: a declared category (compared after Unicode NFC normalisation),
    /// else the catch-all. Bytes that are not UTF-8 are never a category, not even the
    /// catch-all: they are text in another encoding, read wrongly.
    #[inline]
    pub(in crate::input) fn lookup(&self, value: &[u8]) -> Result<u32, BadValue> {
        match self.exact(value) {
            Some(code) => Ok(code),
            None => self.lookup_undeclared(value),
        }
    }

    /// [`CategoryIndex::lookup`] for a value not declared as written (rare: off the hot path).
    #[cold]
    #[inline(never)]
    pub(super) fn lookup_undeclared(&self, value: &[u8]) -> Result<u32, BadValue> {
        let text = std::str::from_utf8(value).map_err(|e| BadValue::NotUtf8 {
            offset: e.valid_up_to(),
            byte: value[e.valid_up_to()],
        })?;
        if !text.is_ascii() {
            let normal = crate::policy::nfc(text.to_string());
            if normal != text
                && let Some(code) = self.exact(normal.as_bytes())
            {
                return Ok(code);
            }
        }
        self.catch_all.ok_or(BadValue::Undeclared)
    }

    /// The code of a declared category written exactly as `value`.
    #[inline]
    pub(super) fn exact(&self, value: &[u8]) -> Option<u32> {
        if value.len() > CATEGORY_KEY {
            return self.exact_long(value);
        }
        let key = category_words(value);
        let mut i = self.home(&key);
        loop {
            let slot = &self.short[i];
            // Word by word, from registers, with no branch between the words.
            let differ = (slot.key[0] ^ key[0])
                | (slot.key[1] ^ key[1])
                | (slot.key[2] ^ key[2])
                | (slot.key[3] ^ key[3])
                | (slot.key[4] ^ key[4]);
            if differ == 0 {
                return Some(slot.code);
            }
            if slot.code == EMPTY {
                return None;
            }
            i = (i + 1) & (self.short.len() - 1);
        }
    }

    /// [`CategoryIndex::exact`] for a value longer than [`CATEGORY_KEY`] bytes.
    #[cold]
    #[inline(never)]
    fn exact_long(&self, value: &[u8]) -> Option<u32> {
        self.long.get(value).copied()
    }

    pub(super) fn label(&self, code: u32) -> &str {
        &self.labels[code as usize]
    }

    pub(in crate::input) fn undeclared(&self, value: &[u8]) -> String {
        let value = String::from_utf8_lossy(value);
        format!(
            "value `{value}` is not a declared category of `{}` (declared: {}){}; declare it, fix the data, or map undeclared values with [catch_all]",
            self.name,
            self.declared,
            crate::policy::did_you_mean(&value, self.labels.iter().map(String::as_str)),
        )
    }
}

/// Why a value is no category.
pub(in crate::input) enum BadValue {
    /// Not UTF-8: byte `offset` of the value (`byte`) starts no valid sequence.
    NotUtf8 { offset: usize, byte: u8 },
    /// Valid text, but neither declared nor mapped to a catch-all.
    Undeclared,
}

impl BadValue {
    /// The kind of problem, for grouping bad rows: per column, and per value when undeclared.
    pub(super) fn group(&self, col: usize, value: &[u8]) -> String {
        match self {
            BadValue::NotUtf8 { .. } => format!("utf8 {col}"),
            BadValue::Undeclared => format!("undeclared {col} {}", hex::encode(value)),
        }
    }

    pub(super) fn message(&self, index: &CategoryIndex, value: &[u8]) -> String {
        match self {
            BadValue::NotUtf8 { offset, byte } => format!(
                "the value is not UTF-8 text (byte {offset} of the value is 0x{byte:02X}); if the file is in a legacy encoding such as CP949 (Korean Excel) or EUC-KR, declare it on the input, e.g. `encoding = \"cp949\"`"
            ),
            BadValue::Undeclared => index.undeclared(value),
        }
    }
}

/// How one table reads a row: which columns make its cell, and what it adds.
pub(super) struct TableLayout {
    /// (position in [`Layout::dims`], radix) per dimension, first dimension slowest.
    pub(super) dims: Vec<(usize, u32)>,
    /// Column index and clamp of a summed column.
    pub(super) sum: Option<(usize, i64, i64)>,
    /// An exact table's sum: a negative value is an error, not clamped.
    pub(super) non_negative: bool,
    pub(super) statistic: Statistic,
    pub(super) cells: usize,
}

/// Where everything is in this input's rows; shared read-only by the chunk readers.
pub(super) struct Layout {
    pub(super) headers: csv::ByteRecord,
    /// Every dimension the tables use, once: (dimension index in the plan, column, lookup).
    pub(super) dims: Vec<(usize, usize, CategoryIndex)>,
    pub(super) tables: Vec<TableLayout>,
    pub(super) unit_column: Option<usize>,
    pub(super) count_column: Option<usize>,
    /// Aggregated input: the columns that tell its rows' cells apart (every column but the
    /// count), each with its position in [`Layout::dims`] when it is a dimension (compared by
    /// category, after the catch-all) and `None` otherwise (compared as written).
    pub(super) cell_key: Vec<(usize, Option<usize>)>,
    /// Aggregated input: two rows for one cell add up instead of being an error.
    pub(super) add_duplicates: bool,
}

/// The header's columns by name, refusing a name given twice.
struct Columns<'a> {
    by_name: HashMap<&'a [u8], usize>,
    headers: &'a csv::ByteRecord,
    path: &'a Path,
}

impl<'a> Columns<'a> {
    fn new(headers: &'a csv::ByteRecord, path: &'a Path) -> Result<Columns<'a>, InputError> {
        let mut by_name = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            if by_name.insert(h, i).is_some() {
                return Err(InputError::DuplicateColumn {
                    path: path.to_path_buf(),
                    column: String::from_utf8_lossy(h).into_owned(),
                });
            }
        }
        Ok(Columns {
            by_name,
            headers,
            path,
        })
    }

    /// The column called `name`, or an error naming who needs it and the near misses.
    fn get(&self, name: &str, needed_by: &str) -> Result<usize, InputError> {
        self.by_name
            .get(name.as_bytes())
            .copied()
            .ok_or_else(|| InputError::MissingColumn {
                path: self.path.to_path_buf(),
                column: name.to_string(),
                needed_by: needed_by.to_string(),
                available: self
                    .headers
                    .iter()
                    .map(|h| format!("`{}`", String::from_utf8_lossy(h)))
                    .collect::<Vec<_>>()
                    .join(", "),
                suggestion: crate::policy::did_you_mean(
                    name,
                    self.headers
                        .iter()
                        .filter_map(|h| std::str::from_utf8(h).ok()),
                ),
            })
    }
}

impl Layout {
    /// Per exact sum table ([`Statistic::Total`], in table order), how many of each cell's
    /// largest unit sums its rules read.
    pub(super) fn keep_largest(&self) -> Vec<usize> {
        self.tables
            .iter()
            .filter_map(|t| match t.statistic {
                Statistic::Total { largest, .. } => Some(largest as usize),
                _ => None,
            })
            .collect()
    }

    pub(super) fn new(
        plan: &Plan,
        input: usize,
        counts: &[Count],
        headers: csv::ByteRecord,
        path: &Path,
    ) -> Result<Layout, InputError> {
        let columns = Columns::new(&headers, path)?;
        let mut dims: Vec<(usize, usize, CategoryIndex)> = Vec::new();
        let table_layouts = counts
            .iter()
            .map(|count| table_layout(plan, count, &columns, &mut dims))
            .collect::<Result<Vec<_>, _>>()?;
        let (unit_column, count_column, add_duplicates) = match &plan.inputs[input].kind {
            InputKind::Microdata => (
                Some(columns.get(&plan.privacy_unit, "the privacy unit")?),
                None,
                false,
            ),
            InputKind::Aggregated {
                count_column,
                add_duplicates,
            } => (
                None,
                Some(columns.get(count_column, "the count")?),
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

/// How table `t` reads a row; the dimensions it uses are added to `dims` (each once, shared by
/// the tables that use it).
fn table_layout(
    plan: &Plan,
    table: &Count,
    columns: &Columns,
    dims: &mut Vec<(usize, usize, CategoryIndex)>,
) -> Result<TableLayout, InputError> {
    let needed_by = format!("table `{}`", table.name);
    let mut tdims = Vec::new();
    for &d in &table.dims {
        let pos = match dims.iter().position(|&(dd, _, _)| dd == d) {
            Some(p) => p,
            None => {
                let col = columns.get(&plan.dimensions[d].name, &needed_by)?;
                dims.push((d, col, CategoryIndex::new(&plan.dimensions[d])));
                dims.len() - 1
            }
        };
        tdims.push((pos, plan.dimensions[d].categories.len() as u32));
    }
    let sum = match &table.statistic {
        Statistic::Sum {
            column: c, lo, hi, ..
        } => Some((columns.get(c, &needed_by)?, *lo, *hi)),
        Statistic::Total {
            column: Some(c), ..
        } => Some((columns.get(c, &needed_by)?, 0, i64::MAX)),
        _ => None,
    };
    Ok(TableLayout {
        dims: tdims,
        sum,
        non_negative: matches!(table.statistic, Statistic::Total { .. }),
        statistic: table.statistic.clone(),
        cells: table.cells(plan),
    })
}

/// A cell key of an aggregated input in words: `gender = `female`, age_group = `unknown``.
pub(super) fn describe_cell(layout: &Layout, mut key: &[u8]) -> String {
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
