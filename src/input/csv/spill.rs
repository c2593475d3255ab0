//! The spill path, for inputs whose units outgrow the memory limit: rows go to temporary files
//! by unit, then each file is bounded on its own.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::keys::{key_words, unit_hash};
use super::pass::{ChunkError, Pass, Tally};
use super::scan::scan_rows;
use super::units::{Batch, Units, range_of};

/// Rows read back from a partition's file before they are counted into their units.
const BATCH_ROWS: usize = 4096;

/// The spill path, for inputs whose units do not fit in `memory_limit`: one pass writes every
/// row (unit key, keyed hash, random priority, cells, values) to one of `partitions` temporary
/// files chosen by the unit's hash; then each partition is bounded in memory on its own. A unit's
/// rows all land in one partition, so the exact cells are the sum over partitions, with the same
/// distribution as the in-memory path. The files are private to this user and removed when done.
pub(super) fn read_spilled(
    pass: Pass,
    start: u64,
    end: u64,
    memory_limit: u64,
) -> Result<Tally, ChunkError> {
    use std::io::{BufWriter, Write};
    let hasher = pass.hasher;
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
        let hash = unit_hash(hasher, &key_words(id), id);
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

    let mut total: Option<Tally> = None;
    let keep = pass.layout.keep_largest();
    for p in 0..partitions {
        let part = bound_partition(&dir.path().join(format!("{p}.bin")), pass)?;
        total = Tally::add(total, part, &keep);
    }
    let mut total = total.expect("at least two partitions");
    total.rows = rows;
    Ok(total)
}

/// Bounds the units of one spilled partition (all of whose rows are in it), in memory.
fn bound_partition(path: &Path, pass: Pass) -> Result<Tally, ChunkError> {
    let (layout, keys) = (pass.layout, pass.keys);
    use std::io::BufReader;
    let tables = layout.tables.len();
    let (mut cells, mut values) = (vec![0u32; tables], vec![0i64; tables]);
    let mut batch = Batch::new(tables, BATCH_ROWS);
    let mut r = BufReader::with_capacity(1 << 16, File::open(path).map_err(ChunkError::Io)?);
    let mut units = Units::new(layout, keys, (0, u64::MAX), pass.hasher);
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
        batch.push((&id, key_words(&id), hash), prio, &cells, &values);
        if batch.len() == BATCH_ROWS {
            units.absorb(&batch)?;
            batch.clear();
        }
    }
    units.absorb(&batch)?;
    let tally = units.tally(pass.bounding_effect);
    Ok(Tally {
        exact: units.bounder.finish(),
        ..tally
    })
}
