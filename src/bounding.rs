//! Contribution bounding: turns a stream of (unit, cell, value) observations into exact cells in
//! which no privacy unit weighs more than the policy allows.
//!
//! Owns the per-unit state and the random choice of which contributions to keep. Kept rows and
//! cells are chosen uniformly at random with a cryptographically secure generator, never "the
//! first k", so that which rows survive does not depend on the file's order. The exact cells this
//! module produces must never leave memory: they go straight to the mechanisms.

use rand::Rng;

use crate::plan::Statistic;

/// Per-table accumulator fed one observation per input row, finished into exact cells.
#[derive(Debug)]
pub enum Accumulator {
    /// `count_units`: the distinct cells each unit was seen in.
    Units {
        max_cells: u32,
        cells: usize,
        per_unit: Vec<Vec<u32>>,
    },
    /// `count_rows` and `sum`: a uniform reservoir of at most `max_rows` (cell, value) per unit.
    Rows {
        max_rows: u32,
        max_per_cell: u32,
        cells: usize,
        per_unit: Vec<Reservoir>,
    },
}

/// Reservoir sample (Vitter's algorithm R) of one unit's rows: after `seen` rows, `kept` is a
/// uniformly random subset of size `min(seen, k)`.
#[derive(Debug, Default, Clone)]
pub struct Reservoir {
    seen: u64,
    kept: Vec<(u32, i64)>,
}

impl Accumulator {
    pub fn new(statistic: &Statistic, cells: usize) -> Accumulator {
        match *statistic {
            Statistic::CountUnits { max_cells_per_unit } => Accumulator::Units {
                max_cells: max_cells_per_unit,
                cells,
                per_unit: Vec::new(),
            },
            Statistic::CountRows {
                max_rows_per_unit,
                max_rows_per_cell,
            }
            | Statistic::Sum {
                max_rows_per_unit,
                max_rows_per_cell,
                ..
            } => Accumulator::Rows {
                max_rows: max_rows_per_unit,
                max_per_cell: max_rows_per_cell,
                cells,
                per_unit: Vec::new(),
            },
        }
    }

    /// Records that `unit` contributed `value` (1 for counts, the clamped value for sums) to
    /// `cell`.
    pub fn observe<R: Rng>(&mut self, unit: u32, cell: u32, value: i64, rng: &mut R) {
        let unit = unit as usize;
        match self {
            Accumulator::Units { per_unit, .. } => {
                if per_unit.len() <= unit {
                    per_unit.resize_with(unit + 1, Vec::new);
                }
                let seen = &mut per_unit[unit];
                if !seen.contains(&cell) {
                    seen.push(cell);
                }
            }
            Accumulator::Rows {
                max_rows, per_unit, ..
            } => {
                if per_unit.len() <= unit {
                    per_unit.resize_with(unit + 1, Reservoir::default);
                }
                let r = &mut per_unit[unit];
                r.seen += 1;
                if r.kept.len() < *max_rows as usize {
                    r.kept.push((cell, value));
                } else {
                    let j = rng.gen_range(0..r.seen);
                    if j < u64::from(*max_rows) {
                        r.kept[j as usize] = (cell, value);
                    }
                }
            }
        }
    }

    /// Applies the remaining bounds and adds every unit's kept contributions into exact cells.
    pub fn finish<R: Rng>(self, rng: &mut R) -> Vec<i64> {
        match self {
            Accumulator::Units {
                max_cells,
                cells,
                per_unit,
            } => {
                let mut out = vec![0i64; cells];
                for mut seen in per_unit {
                    let keep = choose_uniform(&mut seen, max_cells as usize, rng);
                    for &c in keep {
                        out[c as usize] += 1;
                    }
                }
                out
            }
            Accumulator::Rows {
                max_rows,
                max_per_cell,
                cells,
                per_unit,
            } => {
                let mut out = vec![0i64; cells];
                let mut per_cell: Vec<(u32, u32)> = Vec::new();
                for Reservoir { mut kept, .. } in per_unit {
                    if max_per_cell < max_rows && kept.len() > max_per_cell as usize {
                        // Shuffle so that the per-cell cap keeps a uniform subset of each cell.
                        let n = kept.len();
                        choose_uniform(&mut kept, n, rng);
                        per_cell.clear();
                        for &(c, v) in &kept {
                            let slot = match per_cell.iter_mut().find(|(cell, _)| *cell == c) {
                                Some(slot) => slot,
                                None => {
                                    per_cell.push((c, 0));
                                    per_cell.last_mut().expect("just pushed")
                                }
                            };
                            if slot.1 < max_per_cell {
                                slot.1 += 1;
                                out[c as usize] += v;
                            }
                        }
                    } else {
                        for (c, v) in kept {
                            out[c as usize] += v;
                        }
                    }
                }
                out
            }
        }
    }
}

/// Moves a uniformly random subset of `min(k, len)` elements to the front (partial
/// Fisher-Yates) and returns it.
fn choose_uniform<'a, T, R: Rng>(items: &'a mut [T], k: usize, rng: &mut R) -> &'a [T] {
    let k = k.min(items.len());
    for i in 0..k {
        let j = rng.gen_range(i..items.len());
        items.swap(i, j);
    }
    &items[..k]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rows(k: u32, m: u32) -> Statistic {
        Statistic::CountRows {
            max_rows_per_unit: k,
            max_rows_per_cell: m,
        }
    }

    #[test]
    fn a_unit_with_fifty_rows_keeps_exactly_k() {
        let mut rng = StdRng::from_entropy();
        let mut acc = Accumulator::new(&rows(4, 4), 50);
        for cell in 0..50 {
            acc.observe(0, cell, 1, &mut rng);
        }
        acc.observe(1, 7, 1, &mut rng);
        let cells = acc.finish(&mut rng);
        assert_eq!(cells.iter().sum::<i64>(), 5);
        assert!(cells.iter().all(|&c| c <= 2));
    }

    #[test]
    fn per_cell_cap_applies_after_the_row_cap() {
        let mut rng = StdRng::from_entropy();
        let mut acc = Accumulator::new(&rows(4, 1), 3);
        for _ in 0..10 {
            acc.observe(0, 0, 1, &mut rng);
        }
        acc.observe(0, 1, 1, &mut rng);
        let cells = acc.finish(&mut rng);
        assert!(cells[0] <= 1 && cells[1] <= 1 && cells[2] == 0, "{cells:?}");
    }

    #[test]
    fn count_units_counts_each_unit_once_per_cell_and_at_most_c_cells() {
        let mut rng = StdRng::from_entropy();
        let mut acc = Accumulator::new(
            &Statistic::CountUnits {
                max_cells_per_unit: 2,
            },
            5,
        );
        for cell in [0, 0, 1, 2, 3, 4, 0] {
            acc.observe(0, cell, 1, &mut rng);
        }
        acc.observe(1, 3, 1, &mut rng);
        acc.observe(1, 3, 1, &mut rng);
        let cells = acc.finish(&mut rng);
        assert_eq!(cells.iter().sum::<i64>(), 3);
        assert!(cells.iter().all(|&c| c <= 2));
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
            let mut acc = Accumulator::new(&rows(k, k), n_rows as usize);
            for row in 0..n_rows {
                acc.observe(0, row, 1, &mut rng);
            }
            for (row, c) in acc.finish(&mut rng).into_iter().enumerate() {
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

    /// Same check for the cells a `count_units` unit keeps: each of 10 cells with probability
    /// 3/10. False-failure probability 10 * 2 * exp(-2 * 20,000 * 0.03^2) < 5e-15.
    #[test]
    fn kept_cells_are_a_uniform_sample() {
        let mut rng = StdRng::from_entropy();
        let trials = 20_000u32;
        let mut kept = [0u32; 10];
        for _ in 0..trials {
            let mut acc = Accumulator::new(
                &Statistic::CountUnits {
                    max_cells_per_unit: 3,
                },
                10,
            );
            for cell in 0..10 {
                acc.observe(0, cell, 1, &mut rng);
            }
            for (cell, c) in acc.finish(&mut rng).into_iter().enumerate() {
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
