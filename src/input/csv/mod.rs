//! The CSV source: a file becomes exact, bounded cells per table, read once in parallel chunks
//! (or in one piece when fields are quoted), checked row by row and filed in memory by unit, then
//! bounded partition by partition; or, when the rows would outgrow the filing budget, streamed
//! into their units as they are read (spilling to disk by unit when those outgrow the memory
//! limit).
//!
//! Must never print, log or return a data value other than the offending one in an error
//! message, and never the exact cells it produces.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Mutex, PoisonError};

use crate::hash::{FileHasher, Fingerprint, PieceHasher, combine};
use crate::policy::{InputKind, Plan, Statistic};

use super::error::InputError;
use super::file::{ensure_unchanged, open_input};
use super::request::{BoundingEffect, Count, Counted, InputResult, ReadOptions, Whole};

mod bounding;
mod chunk;
mod keys;
mod layout;
mod parts;
mod pass;
mod problems;
mod progress;
mod records;
mod scan;
mod spill;
mod stream;
#[cfg(test)]
mod tests;

mod units;

use chunk::{read_aggregated, read_chunk};
#[cfg(any(feature = "postgres", feature = "spark"))]
pub(super) use layout::CategoryIndex;
use layout::Layout;
use pass::{ChunkError, Pass, Tally};
use problems::{Problems, column_name, line_of, report_rows};
use progress::{Counters, with_progress};
use spill::read_spilled;
use stream::{links, stream_chunk};

/// One pass over the input: split by [`Unquoted`] in parallel chunks, or, once a `"` has been
/// seen (`quoted`), by the csv crate in one piece, since a quoted field may hold a newline and a
/// chunk could then begin mid-record.
pub(super) fn read_pass(
    plan: &Plan,
    input: usize,
    counts: &[Count],
    options: ReadOptions,
    quoted: bool,
) -> Result<InputResult, InputError> {
    // One reader for a quoted file (below), and for a pre-counted one, whose duplicate cells are
    // found across the whole file (it has at most one row per cell, so it is small).
    let aggregated = matches!(plan.inputs[input].kind, InputKind::Aggregated { .. });
    // Filed rows are bounded on every thread, however many readers filed them.
    let bounders = options.threads.max(1);
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
    let (headers, header_line) = read_header(&mut file, path)?;
    let header_end = header_line.len() as u64;
    let layout = Layout::new(plan, input, counts, headers, path)?;
    let chunks = chunk_bounds(&mut file, header_end, len, options).map_err(io_err)?;

    let mut seed = StdRng::from_entropy();
    let hasher = foldhash::quality::RandomState::default();
    let keys: Vec<[u64; 2]> = layout.tables.iter().map(|_| seed.r#gen()).collect();
    let counters = Counters::new(layout.tables.len());
    let name = plan.inputs[input].name.as_str();
    // The readers hash what they read, the header's piece being read_header's bytes; the legacy
    // scheme (SHA-256, sequential) needs a reading of its own ([`hash_file_legacy`]).
    let header_piece = || {
        let mut header = PieceHasher::new(0);
        header.update(&header_line);
        vec![header.finish()]
    };
    let pieces = Mutex::new(header_piece());
    let pass = Pass {
        path,
        layout: &layout,
        hasher: &hasher,
        keys: &keys,
        counters: &counters,
        quoted,
        multiline: plan.inputs[input].multiline,
        bounding_effect: options.bounding_effect,
        pieces: (!options.legacy_fingerprints).then_some(&pieces),
    };
    let body = len - header_end;
    // Rows are filed in memory when they fit the budget (by a sample of the rows), else
    // streamed; filed rows that outgrow it after all are read again, streamed.
    let filing = parts::fits(
        &mut file,
        (header_end, len),
        (&layout, chunks.len(), bounders),
        options.filing_budget.min(options.memory_limit),
    )
    .map_err(io_err)?;
    let (mut hashed, mut results) = with_progress(options.progress, &counters, len, name, || {
        read_chunks(pass, (&chunks, body), options, (filing, bounders))
    });
    let streamed_counters;
    let mut pass = pass;
    if results
        .iter()
        .any(|r| matches!(r, Err(ChunkError::Unfiled)))
    {
        streamed_counters = Counters::new(layout.tables.len());
        *pieces.lock().unwrap_or_else(PoisonError::into_inner) = header_piece();
        pass = Pass {
            counters: &streamed_counters,
            ..pass
        };
        (hashed, results) = with_progress(options.progress, pass.counters, len, name, || {
            read_chunks(pass, (&chunks, body), options, (false, bounders))
        });
    }
    let hashed = hashed.transpose().map_err(io_err)?;
    // A `"` stops the splitter of unquoted rows (and the legacy hashing notes one): the file is
    // read again as quoted.
    let has_quote = hashed.as_ref().is_some_and(|(_, quote)| *quote)
        || results.iter().any(|r| matches!(r, Err(ChunkError::Quoted)));
    if has_quote && !quoted {
        return read_pass(plan, input, counts, options, true);
    }
    // A reader reads from its own handle: the file's metadata now must be as before the reading.
    ensure_unchanged(path, &before)?;
    let (tally, clamped) = if results
        .iter()
        .any(|r| matches!(r, Err(ChunkError::OverMemory)))
    {
        // The spilling reads the rows again, and counts what it reads: it hashes them anew. A
        // reader over the memory limit stops early, so the first pass may not have met a `"`
        // that the spilling meets: the file is then read again as quoted.
        *pieces.lock().unwrap_or_else(PoisonError::into_inner) = header_piece();
        let Some(spilled) = spill(pass, (header_end, len), name, options)? else {
            return read_pass(plan, input, counts, options, true);
        };
        ensure_unchanged(path, &before)?;
        spilled
    } else {
        (merge(results, path, &layout)?, pass.counters.clamped())
    };
    // Every reader of a pass that counted read all its bytes (one that stops early fails the
    // pass, or spills it); pieces that do not cover the file mean it changed under them.
    let fingerprint = match hashed {
        Some((fingerprint, _)) => fingerprint,
        None => combine(
            pieces.into_inner().unwrap_or_else(PoisonError::into_inner),
            len,
        )
        .map(Fingerprint::blake3)
        .ok_or_else(|| InputError::Changed {
            path: path.to_path_buf(),
        })?,
    };
    let bounding = match plan.inputs[input].kind {
        InputKind::Aggregated { .. } => Vec::new(),
        InputKind::Microdata => (0..layout.tables.len())
            .map(|t| BoundingEffect {
                rows: tally.rows,
                kept: tally.kept.get(t).copied().flatten(),
                clamped: layout.tables[t].sum.map(|_| clamped[t]),
            })
            .collect(),
    };
    Ok(InputResult {
        counted: per_count(counts, tally.exact, tally.whole),
        fingerprint,
        rows: tally.rows,
        units: layout.unit_column.map(|_| tally.units),
        sql: None,
        bounding,
    })
}

/// What the spilling counted, and per table the values its clamp cut.
type Spilled = (Tally, Vec<[u64; 2]>);

/// Reads the body `[header_end, len)` again, spilled to temporary files by unit, when the
/// units outgrew the memory limit: its tally, and per table the values clamped; `None` when an
/// unquoted reading met a `"` (the file must be read as quoted).
fn spill(
    pass: Pass,
    (header_end, len): (u64, u64),
    name: &str,
    options: ReadOptions,
) -> Result<Option<Spilled>, InputError> {
    let path = pass.path;
    eprintln!(
        "safestat: {}: the privacy units need more than the memory limit of {} MiB; spilling to temporary files by unit",
        path.display(),
        options.memory_limit >> 20
    );
    let counters = Counters::new(pass.layout.tables.len());
    let pass = Pass {
        counters: &counters,
        ..pass
    };
    let tally = match with_progress(options.progress, &counters, len, name, || {
        read_spilled(pass, header_end, len, options.memory_limit)
    }) {
        Ok(tally) => tally,
        Err(ChunkError::Quoted) if !pass.quoted => return Ok(None),
        Err(e) => return Err(locate(path, pass.layout, e)),
    };
    Ok(Some((tally, counters.clamped())))
}

/// The pass's cells as one result per count: its cells hold every count's cells in order, then
/// each `sum`'s contributors in order ([`bounding::Bounder::finish`]), and `whole` each exact sum's
/// contributions in order ([`bounding::Bounder::whole`]).
fn per_count(counts: &[Count], mut cells: Vec<Vec<i128>>, whole: Vec<Whole>) -> Vec<Counted> {
    let mut contributors = cells.split_off(counts.len()).into_iter();
    let mut whole = whole.into_iter();
    let counted = counts
        .iter()
        .zip(cells)
        .map(|(count, values)| match count.statistic {
            Statistic::Sum { .. } => Counted::Sum {
                values,
                contributors: contributors.next().expect("a sum's contributors"),
            },
            Statistic::Total { .. } => Counted::Total {
                values,
                whole: whole.next().expect("an exact sum's contributions"),
            },
            _ => Counted::Cells(values),
        })
        .collect();
    debug_assert!(contributors.next().is_none() && whole.next().is_none());
    counted
}

/// What each reader of a pass ended with.
type ReaderResults = Vec<Result<Tally, ChunkError>>;

/// Reads `chunks` in parallel, one reader each (hashing what it reads, with
/// [`Pass::pieces`]), while, for the legacy scheme, another thread fingerprints the whole file
/// and notes whether it holds a `"`. Microdata are either `filing`: read in two steps, the
/// readers filing every row in memory by its unit ([`read_chunk`]), then `bounders` threads
/// bounding the partitions, taking them in turn ([`parts::bound_parts`]); or streamed into
/// their units as they are read ([`stream_chunk`]). `body` is the bytes of rows.
fn read_chunks(
    pass: Pass,
    (chunks, body): (&[(u64, u64)], u64),
    options: ReadOptions,
    (filing, bounders): (bool, usize),
) -> (Option<std::io::Result<(Fingerprint, bool)>>, ReaderResults) {
    let readers = chunks.len();
    let share = options.memory_limit / readers as u64;
    let budget = options.filing_budget.min(options.memory_limit) / readers as u64;
    // About one unit per 64 bytes of rows, shared out between the readers: sizing their tables
    // for that up front spares most rehashes (only the pages a unit touches are ever written).
    let expected_units = (body / 64 / readers as u64).min(share / 64) as usize;
    let partitions = parts::partitions(body);
    let (bad, over) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|s| {
        let digest = options
            .legacy_fingerprints
            .then(|| s.spawn(|| hash_file_legacy(pass.path)));
        let signals = (&bad, &over);
        let workers: Vec<_> = chunks
            .iter()
            .zip(links(readers))
            .map(|(&(start, end), links)| {
                s.spawn(move || {
                    if pass.layout.unit_column.is_none() {
                        read_aggregated(pass, start, end).map(Filed::Counted)
                    } else if filing {
                        read_chunk(pass, (start, end), (partitions, bounders), budget, signals)
                            .map(Filed::Parts)
                    } else {
                        let units = (expected_units, share);
                        stream_chunk(pass, start, end, links, units).map(Filed::Counted)
                    }
                })
            })
            .collect();
        let filed: Vec<Result<Filed, ChunkError>> = workers
            .into_iter()
            .map(|w| w.join().expect("chunk reader panicked"))
            .collect();
        let digest = digest.map(|d| d.join().expect("hasher panicked"));
        (digest, bound_filed(pass, filed, bounders))
    })
}

/// What a reader of [`read_chunks`] ends with: the cells of pre-counted rows, or microdata rows
/// filed by unit.
enum Filed {
    Counted(Tally),
    Parts((u64, parts::Parts)),
}

/// The readers' results once their filed rows are bounded, on `threads` threads: the cells of
/// pre-counted input as they are; every reader's errors as they are, the others then
/// [`ChunkError::Aborted`].
fn bound_filed(pass: Pass, filed: Vec<Result<Filed, ChunkError>>, threads: usize) -> ReaderResults {
    if filed.iter().any(Result::is_err) {
        return filed
            .into_iter()
            .map(|f| f.and(Err(ChunkError::Aborted)))
            .collect();
    }
    let mut rows = 0;
    let mut counted = Vec::new();
    let mut filed_parts = Vec::new();
    for f in filed {
        match f {
            Ok(Filed::Counted(tally)) => counted.push(Ok(tally)),
            Ok(Filed::Parts((n, p))) => {
                rows += n;
                filed_parts.push(p);
            }
            Err(_) => unreachable!("errors returned above"),
        }
    }
    if filed_parts.is_empty() {
        return counted;
    }
    let next = AtomicUsize::new(0);
    let (filed_parts, next) = (&filed_parts, &next);
    let mut tallies: Vec<Result<Tally, ChunkError>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(move || parts::bound_parts(pass, filed_parts, next)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("partition bounder panicked"))
            .collect()
    });
    // The readers counted the rows; the bounders, every unit once.
    if let Some(Ok(first)) = tallies.first_mut() {
        first.rows = rows;
    }
    tallies
}

/// The readers' results as one: a record that stopped a parser is reported alone (the first in
/// file order); else every reader's bad rows together. A reader that stopped bounding because
/// another found bad rows has none of its own to report.
fn merge(results: ReaderResults, path: &Path, layout: &Layout) -> Result<Tally, InputError> {
    let mut total = None;
    let keep = layout.keep_largest();
    let mut problems = Problems::default();
    let mut stopped: Option<(u64, ChunkError)> = None;
    for result in results {
        match result {
            Ok(tally) => total = Tally::add(total, tally, &keep),
            Err(ChunkError::Aborted) => {}
            Err(ChunkError::Rows(p)) => problems.merge(p),
            Err(e @ ChunkError::At { byte, .. }) => {
                if stopped.as_ref().is_none_or(|(first, _)| byte < *first) {
                    stopped = Some((byte, e));
                }
            }
            Err(e) => return Err(locate(path, layout, e)),
        }
    }
    if let Some((_, e)) = stopped {
        return Err(locate(path, layout, e));
    }
    if !problems.is_empty() {
        return Err(locate(path, layout, ChunkError::Rows(problems)));
    }
    Ok(total.expect("a reader stops early only when another fails"))
}

/// Reads the header line (everything up to the first newline) and returns the column names and
/// the line's bytes (the rows start after them).
fn read_header(file: &mut File, path: &Path) -> Result<(csv::ByteRecord, Vec<u8>), InputError> {
    let mut line = Vec::new();
    let mut buf = [0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..=i]);
            break;
        }
        line.extend_from_slice(&buf[..n]);
        if n == 0 {
            break;
        }
    }
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
        names.push(crate::policy::nfc(name.to_string()));
    }
    Ok((csv::ByteRecord::from(names), line))
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

/// The whole file's fingerprint in both schemes, for a ledger that still holds the legacy one
/// (SHA-256 is sequential: the readers' pieces cannot give it), and whether the file holds a
/// quote character (which may hide a newline inside a field).
fn hash_file_legacy(path: &Path) -> std::io::Result<(Fingerprint, bool)> {
    let mut file = File::open(path)?;
    let mut hasher = FileHasher::new(true);
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
    Ok((hasher.finish(), quote))
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
        ChunkError::Unfiled => unreachable!("rows over the filing budget are read again, streamed"),
        // Not expected: a `"` makes the pass read the file again as quoted (read_pass, spill).
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
        field: column_name(layout, col),
        message,
    }
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
