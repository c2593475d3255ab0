//! Input readers: stream a CSV input once, check every value against the plan, and feed each
//! table's contribution bounding.
//!
//! Owns header resolution, category interning (values become small integer codes), privacy-unit
//! interning, value parsing and the SHA-256 of the bytes read. Errors name the file, the line and
//! the field. Must never print, log or return a data value other than the offending one in an
//! error message, and never the exact cells it produces.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

use crate::bounding::Accumulator;
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

/// Wraps a reader and hashes every byte that passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// SHA-256 of a whole file, hex encoded.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut reader = HashingReader {
        inner: File::open(path)?,
        hasher: Sha256::new(),
    };
    std::io::copy(&mut reader, &mut std::io::sink())?;
    Ok(hex::encode(reader.hasher.finalize()))
}

/// Looks up a category value's code, applying the dimension's catch-all.
struct CategoryIndex {
    codes: HashMap<Box<[u8]>, u32>,
    catch_all: Option<u32>,
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
        }
    }

    fn code(&self, value: &[u8]) -> Option<u32> {
        self.codes.get(value).copied().or(self.catch_all)
    }
}

/// How one table reads a row: which columns make its cell, and what it adds.
struct TableReader {
    /// (column index in the record, category index, radix) per dimension, first dimension
    /// slowest.
    dims: Vec<(usize, usize, u32)>,
    /// Column index and clamp of a summed column.
    sum: Option<(usize, i64, i64)>,
    acc: Accumulator,
}

/// Reads input `input` of `plan` once and computes the exact cells of `tables` (indices into
/// `plan.tables`, all reading this input).
pub fn read_input(plan: &Plan, input: usize, tables: &[usize]) -> Result<InputResult, InputError> {
    let spec = &plan.inputs[input];
    let path = spec.path.as_path();
    let file = File::open(path).map_err(|source| InputError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .buffer_capacity(1 << 16)
        .from_reader(HashingReader {
            inner: file,
            hasher: Sha256::new(),
        });
    let csv_err = |e: csv::Error| csv_error(path, e);
    let mut headers = reader.byte_headers().map_err(csv_err)?.clone();
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

    // Every dimension used by a table of this input, interned once.
    let mut dim_columns: Vec<(usize, usize)> = Vec::new(); // (dimension, column)
    let mut indexes: Vec<CategoryIndex> = Vec::new();
    let mut readers = Vec::new();
    for &t in tables {
        let table = &plan.tables[t];
        let needed_by = format!("table `{}`", table.name);
        let mut dims = Vec::new();
        for &d in &table.dims {
            let pos = match dim_columns.iter().position(|&(dd, _)| dd == d) {
                Some(p) => p,
                None => {
                    dim_columns.push((d, column(&plan.dimensions[d].name, &needed_by)?));
                    indexes.push(CategoryIndex::new(&plan.dimensions[d]));
                    dim_columns.len() - 1
                }
            };
            dims.push((pos, d, plan.dimensions[d].categories.len() as u32));
        }
        let sum = match &table.statistic {
            Statistic::Sum {
                column: c, lo, hi, ..
            } => Some((column(c, &needed_by)?, *lo, *hi)),
            _ => None,
        };
        readers.push(TableReader {
            dims,
            sum,
            acc: Accumulator::new(&table.statistic, plan.table_cells(table)),
        });
    }
    let unit_column = match &spec.kind {
        InputKind::Microdata => Some(column(&plan.privacy_unit, "the privacy unit")?),
        InputKind::Aggregated { .. } => None,
    };
    let count_column = match &spec.kind {
        InputKind::Aggregated { count_column } => Some(column(count_column, "the count")?),
        InputKind::Microdata => None,
    };

    let mut rng = StdRng::from_entropy();
    let mut units: HashMap<Box<[u8]>, u32> = HashMap::new();
    let mut cells_aggregated: Vec<Vec<i64>> = readers
        .iter()
        .map(|r| match count_column {
            Some(_) => vec![0; r.acc_cells()],
            None => Vec::new(),
        })
        .collect();
    let mut codes = vec![0u32; dim_columns.len()];
    let mut record = csv::ByteRecord::new();
    let mut rows: u64 = 0;
    while reader.read_byte_record(&mut record).map_err(csv_err)? {
        rows += 1;
        let line = record.position().map_or(0, |p| p.line());
        let field_err = |col: usize, message: String| InputError::Value {
            path: path.to_path_buf(),
            line,
            field: String::from_utf8_lossy(&headers[col]).into_owned(),
            message,
        };
        for (k, &(d, col)) in dim_columns.iter().enumerate() {
            let value = &record[col];
            codes[k] = indexes[k].code(value).ok_or_else(|| {
                let dim = &plan.dimensions[d];
                field_err(
                    col,
                    format!(
                        "value `{}` is not a declared category of `{}` (declared: {}); declare it, fix the data, or map undeclared values with [catch_all]",
                        String::from_utf8_lossy(value),
                        dim.name,
                        dim.categories.join(", ")
                    ),
                )
            })?;
        }
        let unit = match unit_column {
            Some(col) => {
                let id = &record[col];
                if id.is_empty() {
                    return Err(field_err(col, "the privacy unit is empty".to_string()));
                }
                let next = units.len() as u32;
                Some(match units.get(id) {
                    Some(&u) => u,
                    None => {
                        units.insert(id.into(), next);
                        next
                    }
                })
            }
            None => None,
        };
        let count = match count_column {
            Some(col) => {
                let n = parse_i64(&record[col]).map_err(|m| field_err(col, m))?;
                if n < 0 {
                    return Err(field_err(col, format!("count `{n}` is negative")));
                }
                Some((col, n))
            }
            None => None,
        };
        for (r, tr) in readers.iter_mut().enumerate() {
            let mut cell: u32 = 0;
            for &(pos, _, radix) in &tr.dims {
                cell = cell * radix + codes[pos];
            }
            let value = match tr.sum {
                Some((col, lo, hi)) => parse_i64(&record[col])
                    .map_err(|m| field_err(col, m))?
                    .clamp(lo, hi),
                None => 1,
            };
            match (unit, count) {
                (Some(u), _) => tr.acc.observe(u, cell, value, &mut rng),
                (None, Some((col, n))) => {
                    let slot = &mut cells_aggregated[r][cell as usize];
                    *slot = slot
                        .checked_add(n)
                        .ok_or_else(|| field_err(col, "the cell's total overflows".into()))?;
                }
                (None, None) => unreachable!("an input is either microdata or aggregated"),
            }
        }
    }
    let sha256 = hex::encode(reader.into_inner().hasher.finalize());
    let exact = match count_column {
        Some(_) => cells_aggregated,
        None => readers
            .into_iter()
            .map(|r| r.acc.finish(&mut rng))
            .collect(),
    };
    Ok(InputResult {
        exact,
        sha256,
        rows,
        units: unit_column.map(|_| units.len() as u64),
    })
}

impl TableReader {
    fn acc_cells(&self) -> usize {
        match &self.acc {
            Accumulator::Units { cells, .. } | Accumulator::Rows { cells, .. } => *cells,
        }
    }
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
