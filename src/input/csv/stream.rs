//! The streaming path, for inputs whose rows would take more memory filed than the budget of
//! `parts.rs`: every reader counts each row into its unit's record as it reads it, so memory
//! grows with the units and never with the rows. Slower (two cache misses a row, the unit
//! table's slot and then the record), but for any number of rows.

use std::sync::mpsc::{Receiver, Sender, channel};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::keys::{key_words, unit_hash};
use super::pass::{ChunkError, Pass, Tally};
use super::scan::scan_rows;
use super::units::{Batch, Units, range_of};

/// Rows a reader collects for another reader's units before handing them over.
pub(super) const HANDOVER_ROWS: usize = 4096;
/// Rows a reader collects for its own units before counting them.
pub(super) const LOCAL_ROWS: usize = 256;
/// One reader's links to the others: its inbox, and an outbox to every other reader (`None` at
/// its own place).
pub(super) struct Links {
    pub(super) me: usize,
    pub(super) inbox: Receiver<Batch>,
    pub(super) outboxes: Vec<Option<Sender<Batch>>>,
}

/// Links for `n` readers, each able to send to every other.
pub(super) fn links(n: usize) -> Vec<Links> {
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

/// Reads the rows in `[start, end)`, streaming them into their units. Every reader owns the
/// units in one hash range ([`range_of`]): it counts its own units' rows and hands the others'
/// over, in batches, to their owners, counting what it is handed in between. So each unit is bounded by exactly one reader,
/// with no merging afterwards, and a reader's table holds only its own units. Gives up with
/// [`ChunkError::OverMemory`] once its units need more than `memory_limit` bytes. When another
/// reader has failed it goes on only checking its rows, so that the error reported is the
/// first in the file whatever the timing.
// Long (about 100 lines) on purpose: the row sink, the hand-over batches and the inbox share
// mutable state that the borrow checker lets one closure and its function hold; split, the
// state would move into a struct whose every method is called once, per row, on the hot path.
pub(super) fn stream_chunk(
    pass: Pass,
    start: u64,
    end: u64,
    links: Links,
    (expected_units, memory_limit): (usize, u64),
) -> Result<Tally, ChunkError> {
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
    let mut rng = StdRng::from_entropy();
    let mut units = Units::new(layout, keys, (expected_units, memory_limit), hasher);
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
        let key = key_words(id);
        let hash = unit_hash(hasher, &key, id);
        let owner = range_of(hash, outgoing.len());
        if owner == me {
            local.push((id, key, hash), rng.r#gen(), row.cells, row.values);
            if local.len() == LOCAL_ROWS {
                units.absorb(&local)?;
                local.clear();
                for batch in inbox.iter().flat_map(Receiver::try_iter) {
                    units.absorb(&batch)?;
                }
            }
        } else {
            let batch = &mut outgoing[owner];
            batch.push((id, key, hash), rng.r#gen(), row.cells, row.values);
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
    let tally = units.tally(pass.bounding_effect);
    Ok(Tally {
        rows,
        exact: units.bounder.finish(),
        ..tally
    })
}
