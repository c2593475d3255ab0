//! The one place a row's values are parsed and checked, and the bad rows collected, grouped by
//! kind, for one report.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::hash::PieceHasher;

use super::layout::Layout;
use super::pass::{ChunkError, Pass};
use super::problems::Problems;
use super::records::{Quoted, RecordError, Records, Unquoted};

/// One validated row, as the scanner hands it to a sink.
pub(super) struct Row<'a> {
    /// The privacy unit's key (microdata).
    pub(super) unit: Option<&'a [u8]>,
    /// Per table: the row's cell, and what it adds (1 for counts, the clamped value for sums).
    pub(super) cells: &'a [u32],
    pub(super) values: &'a [i64],
    /// The row's count (aggregated input).
    pub(super) count: Option<i64>,
    /// Aggregated input: what tells this row's cell apart ([`Layout::cell_key`], encoded).
    pub(super) key: &'a [u8],
    /// Where to point an error about this row: its byte offset.
    pub(super) byte: u64,
    /// No bad row was found before this one: bounding may go on (after a bad row it stops, and
    /// the reading only checks the rest).
    pub(super) clean: bool,
}

/// Reads and validates the rows in `[start, end)` of the file, handing each to `sink`; returns
/// how many rows there were. The one place a row's values are parsed and checked. Splits with
/// [`Unquoted`] unless `quoted`; it fails with [`ChunkError::Quoted`] at the first `"`.
/// With [`Pass::pieces`], the bytes are hashed as they are read, and the piece is left there if
/// every byte of `[start, end)` was read.
pub(super) fn scan_rows(
    pass: Pass,
    start: u64,
    end: u64,
    sink: impl FnMut(Row) -> Result<(), ChunkError>,
) -> Result<(u64, Problems), ChunkError> {
    let mut file = File::open(pass.path).map_err(ChunkError::Io)?;
    file.seek(SeekFrom::Start(start)).map_err(ChunkError::Io)?;
    let mut piece = pass.pieces.map(|_| PieceHasher::new(start));
    let source = Hashing {
        source: file.take(end - start),
        piece: piece.as_mut(),
    };
    let scanned = if pass.quoted {
        scan_records(Quoted::new(source, pass.multiline), start, pass, sink)
    } else {
        scan_records(Unquoted::new(source), start, pass, sink)
    };
    if let (Some(pieces), Some(piece)) = (pass.pieces, piece)
        && piece.offset() == end
    {
        pieces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(piece.finish());
    }
    scanned
}

/// A source that hashes what is read from it.
struct Hashing<'a, R> {
    source: R,
    piece: Option<&'a mut PieceHasher>,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.source.read(buf)?;
        if let Some(piece) = &mut self.piece {
            piece.update(&buf[..n]);
        }
        Ok(n)
    }
}

pub(super) fn scan_records(
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
    let mut clamped = vec![[0u64; 2]; layout.tables.len()];
    loop {
        let byte = match records.next_record() {
            Ok(Some(offset)) => start + offset,
            Ok(None) => break,
            Err(e) => return Err(stopped(e, start)),
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
        let unit = categories_and_unit(layout, &field, byte, &mut codes, &mut problems);
        let count = cells_and_values(
            layout,
            &field,
            byte,
            &codes,
            (&mut cells, &mut values, &mut clamped),
            &mut problems,
        );
        if problems.end_row() {
            continue;
        }
        encode_cell_key(layout, &codes, field, &mut key);
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
    for (total, [lo, hi]) in counters.clamped.iter().zip(clamped) {
        total[0].fetch_add(lo, Relaxed);
        total[1].fetch_add(hi, Relaxed);
    }
    Ok((rows, problems))
}

/// The row's category codes (one per dimension in [`Layout::dims`]) and its privacy unit; bad
/// values go to `problems`.
#[inline]
fn categories_and_unit<'a>(
    layout: &Layout,
    field: &impl Fn(usize) -> &'a [u8],
    byte: u64,
    codes: &mut [u32],
    problems: &mut Problems,
) -> Option<&'a [u8]> {
    for (k, (_, col, index)) in layout.dims.iter().enumerate() {
        let value = field(*col);
        match index.lookup(value) {
            Ok(code) => codes[k] = code,
            Err(bad) => problems.add(byte, Some(*col), bad.group(*col, value), || {
                bad.message(index, value)
            }),
        }
    }
    let col = layout.unit_column?;
    let id = field(col);
    if id.is_empty() {
        problems.add(byte, Some(col), "empty unit".into(), || {
            "the privacy unit is empty".to_string()
        });
    }
    Some(id)
}

/// Per table the row's cell and what it adds (1, or the clamped summed value, counting the values
/// its clamp cut in `clamped`), and the row's count (pre-counted input); bad values go to
/// `problems`.
#[inline]
fn cells_and_values<'a>(
    layout: &Layout,
    field: &impl Fn(usize) -> &'a [u8],
    byte: u64,
    codes: &[u32],
    (cells, values, clamped): (&mut [u32], &mut [i64], &mut [[u64; 2]]),
    problems: &mut Problems,
) -> Option<i64> {
    let integer = |col: usize, problems: &mut Problems| match parse_i64(field(col)) {
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
            Some((col, lo, hi)) => match integer(col, problems) {
                Some(n) if n < 0 && table.non_negative => {
                    problems.add(byte, Some(col), format!("negative sum {col}"), || {
                        format!("`{n}` is negative; an exact table's sum needs values of 0 or more (the dominance rules and the attacker's audit take every contribution as non-negative)")
                    });
                    0
                }
                Some(n) => {
                    clamped[t][0] += u64::from(n < lo);
                    clamped[t][1] += u64::from(n > hi);
                    n.clamp(lo, hi)
                }
                None => 0,
            },
            None => 1,
        };
    }
    let col = layout.count_column?;
    let n = integer(col, problems);
    if let Some(n) = n.filter(|&n| n < 0) {
        problems.add(byte, Some(col), format!("negative {col}"), || {
            format!("count `{n}` is negative")
        });
    }
    n
}

/// What stops a reader at a record (reported alone): a failed read, a quote (the file is read
/// again by the csv crate), a line break inside quotes, malformed CSV.
fn stopped(e: RecordError, start: u64) -> ChunkError {
    match e {
        RecordError::Io(e) => ChunkError::Io(e),
        RecordError::Quote(_) => ChunkError::Quoted,
        RecordError::LineBreakInField {
            byte,
            field,
            breaks,
        } => ChunkError::At {
            byte: start + byte,
            field: Some(field),
            message: format!(
                "a quoted field opens with `\"` on this line and runs on across {breaks} line break(s) before it closes; one stray quote would swallow the rows after it. Fix the quote, or set `multiline = true` on the input if its fields really hold line breaks"
            ),
        },
        RecordError::Malformed { byte, message } => ChunkError::At {
            byte: start + byte,
            field: None,
            message,
        },
    }
}

/// What tells a pre-counted row's cell apart ([`Layout::cell_key`]), as bytes in `key`: each
/// dimension's code, and every other column as written (length-prefixed).
fn encode_cell_key<'a>(
    layout: &Layout,
    codes: &[u32],
    field: impl Fn(usize) -> &'a [u8],
    key: &mut Vec<u8>,
) {
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
}

/// An integer as Rust's `i64::from_str` reads it (an optional sign, then ASCII digits, within
/// range), straight from the bytes.
pub(super) fn parse_i64(bytes: &[u8]) -> Result<i64, String> {
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
