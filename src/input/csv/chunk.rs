//! One reader's work on its chunk of the file: file every row in memory by its unit (bounded
//! afterwards, `parts.rs`); and the reading of pre-counted (aggregated) input.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::keys::{key_words, unit_hash};
use super::layout::describe_cell;
use super::parts::Parts;
use super::pass::{ChunkError, Pass, Tally};
use super::problems::line_of;
use super::scan::scan_rows;
use super::units::range_of;

/// Reads the rows in `[start, end)`, filing each in memory in the partition of its unit
/// ([`Parts`], `partitions` of them); gives up with [`ChunkError::Unfiled`] once they and
/// their bounding on `bounders` threads would need more than `budget` bytes (this reader's
/// share), telling the others (`over`), who then give up too. After a bad row (here, or in
/// another reader: `bad`) it only checks the rest, so that the error reported is the first in
/// the file whatever the timing.
pub(super) fn read_chunk(
    pass: Pass,
    (start, end): (u64, u64),
    (partitions, bounders): (usize, usize),
    budget: u64,
    (bad, over): (&AtomicBool, &AtomicBool),
) -> Result<(u64, Parts), ChunkError> {
    let Pass { layout, hasher, .. } = pass;
    let mut parts = Parts::new(layout, partitions);
    let limit = parts.filing_limit(budget, bounders);
    let mut stopped = false;
    let (rows, problems) = scan_rows(pass, start, end, |row| {
        if over.load(Ordering::Relaxed) {
            // Another reader's rows outgrew the budget: the file is read again, streamed.
            return Err(ChunkError::Unfiled);
        }
        if stopped {
            return Ok(());
        }
        if !row.clean || bad.load(Ordering::Relaxed) {
            // A bad row: nothing will be released, so stop filing (and tell the other
            // readers); only check the rest.
            stopped = true;
            bad.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let id = row.unit.expect("microdata rows have a unit");
        let key = key_words(id);
        let hash = unit_hash(hasher, &key, id);
        parts.push(range_of(hash, partitions), (id, key), row.cells, row.values);
        if parts.bytes() > limit {
            over.store(true, Ordering::Relaxed);
            return Err(ChunkError::Unfiled);
        }
        Ok(())
    })?;
    if !problems.is_empty() {
        return Err(ChunkError::Rows(problems));
    }
    if stopped {
        return Err(ChunkError::Aborted);
    }
    Ok((rows, parts))
}

/// Reads the rows in `[start, end)` of an aggregated input, adding up each cell's counts. Two
/// rows for the same cell are an error unless the policy says they add up: a subtotal row, or a
/// value folded into a declared cell by `[catch_all]`, would otherwise count its people twice
/// and break the declared bound.
pub(super) fn read_aggregated(pass: Pass, start: u64, end: u64) -> Result<Tally, ChunkError> {
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
    Ok(Tally {
        exact,
        whole: Vec::new(),
        rows,
        units: 0,
        kept: Vec::new(),
    })
}
