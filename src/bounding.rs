//! Contribution bounding: turns a stream of (unit, cell, value) observations into exact cells in
//! which no privacy unit weighs more than the policy allows.
//!
//! Owns the per-unit state and the random choice of which contributions to keep. The choice is a
//! *bottom-k sample by random priority*: every row gets an independent priority from a
//! cryptographically secure generator and a unit keeps its `k` lowest-priority rows (a uniform
//! k-subset of its rows); for `count_units`, each distinct (unit, cell) gets a keyed-hash priority
//! (duplicates agree) and the unit keeps its `c` lowest cells (a uniform c-subset of its cells).
//! Bottom-k of a union is bottom-k of the parts' bottom-k, so chunks of a file read in parallel
//! merge exactly: which contributions survive never depends on the file's order or on how it was
//! split, and so never on other units' rows. The exact cells this module produces must never leave
//! memory: they go straight to the mechanisms.

use crate::plan::Statistic;

/// Largest `max_rows_per_unit` or `max_cells_per_unit`: every unit reserves this many slots per
/// table, so memory is units x slots x (12 or 20) bytes.
pub const MAX_SLOTS: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `count_units`: keep `slots` distinct cells per unit.
    Units,
    /// `count_rows` / `sum`: keep `slots` rows per unit, at most `per_cell` of them in one cell.
    Rows { per_cell: u32, has_values: bool },
}

/// Per-table accumulator: fixed-size slots per unit in flat arrays.
#[derive(Debug, Clone)]
pub struct Accumulator {
    kind: Kind,
    slots: usize,
    cells: usize,
    /// Salt mixed into `count_units` priorities, so tables choose independently.
    salt: u64,
    len: Vec<u32>,
    prio: Vec<u64>,
    cell: Vec<u32>,
    value: Vec<i64>,
}

/// A `count_units` priority for (unit, cell): a bijective mix of the unit's keyed hash, the
/// table's salt and the cell, so the same (unit, cell) always gets the same priority.
pub fn cell_priority(unit_hash: u64, salt: u64, cell: u32) -> u64 {
    // splitmix64's finaliser: a bijection with full avalanche.
    let mut z = unit_hash ^ salt.wrapping_add(u64::from(cell).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Accumulator {
    pub fn new(statistic: &Statistic, cells: usize, salt: u64) -> Accumulator {
        let (kind, slots) = match *statistic {
            Statistic::CountUnits { max_cells_per_unit } => (Kind::Units, max_cells_per_unit),
            Statistic::CountRows {
                max_rows_per_unit,
                max_rows_per_cell,
            } => (
                Kind::Rows {
                    per_cell: max_rows_per_cell,
                    has_values: false,
                },
                max_rows_per_unit,
            ),
            Statistic::Sum {
                max_rows_per_unit,
                max_rows_per_cell,
                ..
            } => (
                Kind::Rows {
                    per_cell: max_rows_per_cell,
                    has_values: true,
                },
                max_rows_per_unit,
            ),
        };
        Accumulator {
            kind,
            slots: slots as usize,
            cells,
            salt,
            len: Vec::new(),
            prio: Vec::new(),
            cell: Vec::new(),
            value: Vec::new(),
        }
    }

    pub fn cells(&self) -> usize {
        self.cells
    }

    /// Whether this table's priority comes from [`cell_priority`] (else from the row's random
    /// priority).
    pub fn keyed_by_cell(&self) -> bool {
        self.kind == Kind::Units
    }

    pub fn salt(&self) -> u64 {
        self.salt
    }

    fn ensure_unit(&mut self, unit: usize) {
        if self.len.len() <= unit {
            let n = (unit + 1).max(self.len.len() * 3 / 2);
            self.len.resize(n, 0);
            self.prio.resize(n * self.slots, 0);
            self.cell.resize(n * self.slots, 0);
            if let Kind::Rows {
                has_values: true, ..
            } = self.kind
            {
                self.value.resize(n * self.slots, 0);
            }
        }
    }

    /// Records that `unit` contributed `value` (1 for counts, the clamped value for sums) to
    /// `cell` with priority `prio` (a row's random priority, or [`cell_priority`] for
    /// `count_units`).
    pub fn observe(&mut self, unit: u32, prio: u64, cell: u32, value: i64) {
        let unit = unit as usize;
        self.ensure_unit(unit);
        let base = unit * self.slots;
        let n = self.len[unit] as usize;
        let kept = base..base + n;
        if self.kind == Kind::Units && self.cell[kept.clone()].contains(&cell) {
            return;
        }
        let slot = if n < self.slots {
            self.len[unit] += 1;
            base + n
        } else {
            // Replace the highest priority kept, if this one is lower.
            let (worst, &worst_prio) = self.prio[kept]
                .iter()
                .enumerate()
                .max_by_key(|&(_, p)| p)
                .expect("slots >= 1");
            if prio >= worst_prio {
                return;
            }
            base + worst
        };
        self.prio[slot] = prio;
        self.cell[slot] = cell;
        if !self.value.is_empty() {
            self.value[slot] = value;
        }
    }

    /// Adds another accumulator's units (from another chunk of the same input) into this one;
    /// `map[u]` is this accumulator's id for the other's unit `u`. Exact: the result is what one
    /// pass over both chunks would have kept.
    pub fn merge_from(&mut self, other: &Accumulator, map: &[u32]) {
        for (u, &n) in other.len.iter().enumerate().take(map.len()) {
            let base = u * other.slots;
            for s in base..base + n as usize {
                let v = if other.value.is_empty() {
                    1
                } else {
                    other.value[s]
                };
                self.observe(map[u], other.prio[s], other.cell[s], v);
            }
        }
    }

    /// Applies the per-cell cap and adds every unit's kept contributions into exact cells.
    pub fn finish(self) -> Vec<i64> {
        let mut out = vec![0i64; self.cells];
        let mut kept: Vec<(u64, u32, i64)> = Vec::with_capacity(self.slots);
        let mut per_cell: Vec<(u32, u32)> = Vec::new();
        for (u, &n) in self.len.iter().enumerate() {
            let range = u * self.slots..u * self.slots + n as usize;
            match self.kind {
                Kind::Units => {
                    for s in range {
                        out[self.cell[s] as usize] += 1;
                    }
                }
                Kind::Rows { per_cell: m, .. } => {
                    let value = |s: usize| {
                        if self.value.is_empty() {
                            1
                        } else {
                            self.value[s]
                        }
                    };
                    if (m as usize) >= n as usize {
                        for s in range {
                            out[self.cell[s] as usize] += value(s);
                        }
                        continue;
                    }
                    // Lowest priorities first: each cell keeps a uniform m-subset of its rows.
                    kept.clear();
                    kept.extend(range.map(|s| (self.prio[s], self.cell[s], value(s))));
                    kept.sort_unstable_by_key(|&(p, _, _)| p);
                    per_cell.clear();
                    for &(_, c, v) in &kept {
                        let slot = match per_cell.iter_mut().find(|(cell, _)| *cell == c) {
                            Some(slot) => slot,
                            None => {
                                per_cell.push((c, 0));
                                per_cell.last_mut().expect("just pushed")
                            }
                        };
                        if slot.1 < m {
                            slot.1 += 1;
                            out[c as usize] += v;
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn rows(k: u32, m: u32) -> Statistic {
        Statistic::CountRows {
            max_rows_per_unit: k,
            max_rows_per_cell: m,
        }
    }

    fn units(c: u32) -> Statistic {
        Statistic::CountUnits {
            max_cells_per_unit: c,
        }
    }

    #[test]
    fn a_unit_with_fifty_rows_keeps_exactly_k() {
        let mut rng = StdRng::from_entropy();
        let mut acc = Accumulator::new(&rows(4, 4), 50, 0);
        for cell in 0..50 {
            acc.observe(0, rng.r#gen(), cell, 1);
        }
        acc.observe(1, rng.r#gen(), 7, 1);
        let cells = acc.finish();
        assert_eq!(cells.iter().sum::<i64>(), 5);
        assert!(cells.iter().all(|&c| c <= 2));
    }

    #[test]
    fn per_cell_cap_applies_after_the_row_cap() {
        let mut rng = StdRng::from_entropy();
        let mut acc = Accumulator::new(&rows(4, 1), 3, 0);
        for _ in 0..10 {
            acc.observe(0, rng.r#gen(), 0, 1);
        }
        acc.observe(0, rng.r#gen(), 1, 1);
        let cells = acc.finish();
        assert!(cells[0] <= 1 && cells[1] <= 1 && cells[2] == 0, "{cells:?}");
    }

    #[test]
    fn count_units_counts_each_unit_once_per_cell_and_at_most_c_cells() {
        let mut acc = Accumulator::new(&units(2), 5, 99);
        for cell in [0, 0, 1, 2, 3, 4, 0] {
            acc.observe(0, cell_priority(12345, 99, cell), cell, 1);
        }
        acc.observe(1, cell_priority(777, 99, 3), 3, 1);
        acc.observe(1, cell_priority(777, 99, 3), 3, 1);
        let cells = acc.finish();
        assert_eq!(cells.iter().sum::<i64>(), 3);
        assert!(cells.iter().all(|&c| c <= 2));
    }

    #[test]
    fn sums_keep_their_values() {
        let mut acc = Accumulator::new(
            &Statistic::Sum {
                column: "x".into(),
                lo: 0,
                hi: 100,
                max_rows_per_unit: 2,
                max_rows_per_cell: 2,
            },
            2,
            0,
        );
        acc.observe(0, 5, 0, 40);
        acc.observe(0, 1, 1, 30);
        acc.observe(0, 9, 1, 100); // highest priority: dropped
        assert_eq!(acc.finish(), [40, 30]);
    }

    /// Splitting a unit's rows between two accumulators and merging gives exactly what one pass
    /// keeps, whatever the split (a unit whose rows fall in two chunks).
    #[test]
    fn merging_chunks_is_exact() {
        let mut rng = StdRng::from_entropy();
        for stat in [rows(4, 4), rows(5, 2), units(3)] {
            for _ in 0..200 {
                let obs: Vec<(u32, u64, u32)> = (0..rng.gen_range(1..40))
                    .map(|_| {
                        let unit = rng.gen_range(0..3);
                        let cell = rng.gen_range(0..6);
                        let prio = if let Statistic::CountUnits { .. } = stat {
                            cell_priority(u64::from(unit) * 1000, 7, cell)
                        } else {
                            rng.r#gen()
                        };
                        (unit, prio, cell)
                    })
                    .collect();
                let mut whole = Accumulator::new(&stat, 6, 7);
                for &(u, p, c) in &obs {
                    whole.observe(u, p, c, 1);
                }
                let split = rng.gen_range(0..=obs.len());
                let (mut a, mut b) = (Accumulator::new(&stat, 6, 7), Accumulator::new(&stat, 6, 7));
                for &(u, p, c) in &obs[..split] {
                    a.observe(u, p, c, 1);
                }
                // Chunk b numbers units in its own order.
                let mut local: Vec<u32> = Vec::new();
                for &(u, p, c) in &obs[split..] {
                    let id = match local.iter().position(|&g| g == u) {
                        Some(i) => i,
                        None => {
                            local.push(u);
                            local.len() - 1
                        }
                    };
                    b.observe(id as u32, p, c, 1);
                }
                a.merge_from(&b, &local);
                assert_eq!(a.finish(), whole.finish(), "{stat:?}");
            }
        }
    }

    /// Each of a unit's 50 rows must be kept with probability k/50, whatever its position in the
    /// file. Over N trials a row's keep count is Binomial(N, p); Hoeffding bounds the chance that
    /// any of the 50 rows strays by more than t*N from N*p by 50 * 2 * exp(-2 N t^2). With
    /// N = 20,000 and t = 0.03 that is 100 * exp(-36) < 3e-14: the false-failure probability.
    /// A "keep the first k" bug gives row 0 a frequency of 1.0 instead of 0.08 and fails.
    #[test]
    fn kept_rows_are_a_uniform_sample() {
        let mut rng = StdRng::from_entropy();
        let (n_rows, k, trials) = (50u32, 4u32, 20_000u32);
        let mut kept = vec![0u32; n_rows as usize];
        for _ in 0..trials {
            let mut acc = Accumulator::new(&rows(k, k), n_rows as usize, 0);
            for row in 0..n_rows {
                acc.observe(0, rng.r#gen(), row, 1);
            }
            for (row, c) in acc.finish().into_iter().enumerate() {
                kept[row] += c as u32;
            }
        }
        let p = f64::from(k) / f64::from(n_rows);
        for (row, &c) in kept.iter().enumerate() {
            let freq = f64::from(c) / f64::from(trials);
            assert!(
                (freq - p).abs() < 0.03,
                "row {row} kept with frequency {freq}, expected {p}"
            );
        }
    }

    /// Same check for the cells a `count_units` unit keeps (each of 10 cells with probability
    /// 3/10), with a fresh unit hash per trial as a fresh unit would get. The first cell is seen
    /// 5 times, to show duplicates do not raise a cell's chances. False-failure probability
    /// 10 * 2 * exp(-2 * 20,000 * 0.03^2) < 5e-15.
    #[test]
    fn kept_cells_are_a_uniform_sample() {
        let mut rng = StdRng::from_entropy();
        let trials = 20_000u32;
        let mut kept = [0u32; 10];
        let salt: u64 = rng.r#gen();
        for _ in 0..trials {
            let unit_hash: u64 = rng.r#gen();
            let mut acc = Accumulator::new(&units(3), 10, salt);
            for cell in [0, 0, 0, 0].into_iter().chain(0..10) {
                acc.observe(0, cell_priority(unit_hash, salt, cell), cell, 1);
            }
            for (cell, c) in acc.finish().into_iter().enumerate() {
                kept[cell] += c as u32;
            }
        }
        for (cell, &c) in kept.iter().enumerate() {
            let freq = f64::from(c) / f64::from(trials);
            assert!(
                (freq - 0.3).abs() < 0.03,
                "cell {cell} kept with frequency {freq}"
            );
        }
    }
}
