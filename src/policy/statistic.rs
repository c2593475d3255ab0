//! Statistics, their contribution bounds and the sensitivities the bounds imply.
//!
//! Owns the proof obligations of DESIGN.md's "Neighbours and sensitivity": two datasets are
//! neighbours when one holds all the rows of one more privacy unit; from the bounds, a unit moves
//! a table by at most the [`Sensitivity`] computed here (every float rounded up, so noise is
//! never calibrated to less than the truth). Reads no data.

use crate::privacy::Sensitivity;

/// Largest `max_rows_per_unit` or `max_cells_per_unit`: every unit reserves this many slots per
/// table when its contributions are bounded.
pub const MAX_SLOTS: u32 = 1000;

/// Largest number of cells one table may declare (its categories' product). Keeps a typo in a
/// category list from allocating gigabytes.
pub const MAX_CELLS_PER_TABLE: u64 = 50_000_000;

/// Largest change one unit may make to a cell of a sum (`max_rows_per_unit * max(|lo|, |hi|)`):
/// 2^53, so that the sensitivity opendp calibrates to is an exact float.
pub const MAX_UNIT_CONTRIBUTION: u128 = 1 << 53;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statistic {
    /// Distinct privacy units per cell; a unit is kept in at most `max_cells_per_unit` cells.
    CountUnits { max_cells_per_unit: u32 },
    /// Rows per cell; at most `max_rows_per_unit` rows per unit, `max_rows_per_cell` per cell.
    CountRows {
        max_rows_per_unit: u32,
        max_rows_per_cell: u32,
    },
    /// Sum of `column` clamped per row to `[lo, hi]`, with the same row bounds as `CountRows`.
    Sum {
        column: String,
        lo: i64,
        hi: i64,
        max_rows_per_unit: u32,
        max_rows_per_cell: u32,
    },
    /// The exact sum of `column` (of 1 per row when `None`: a count of rows) over every row,
    /// unbounded and never noised: an exact table's (cell suppression) values. Each unit's whole
    /// contribution is kept, so that every cell's `largest` contributions are known to the
    /// dominance and p% rules.
    Total {
        column: Option<String>,
        largest: u32,
    },
}

/// A statistic's contribution bounds: cells per unit, or rows per unit and per cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Cells(u32),
    Rows {
        per_unit: u32,
        per_cell: u32,
    },
    /// Every row of a unit counts (an exact table's sum, [`Statistic::Total`]).
    Whole,
}

impl Statistic {
    pub fn bound(&self) -> Bound {
        match *self {
            Statistic::CountUnits { max_cells_per_unit } => Bound::Cells(max_cells_per_unit),
            Statistic::CountRows {
                max_rows_per_unit,
                max_rows_per_cell,
            }
            | Statistic::Sum {
                max_rows_per_unit,
                max_rows_per_cell,
                ..
            } => Bound::Rows {
                per_unit: max_rows_per_unit,
                per_cell: max_rows_per_cell,
            },
            Statistic::Total { .. } => Bound::Whole,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Statistic::CountUnits { .. } => "count_units",
            Statistic::CountRows { .. } => "count_rows",
            Statistic::Sum { .. }
            | Statistic::Total {
                column: Some(_), ..
            } => "sum",
            Statistic::Total { column: None, .. } => "count_rows",
        }
    }

    /// The sensitivity the bounds imply (DESIGN.md, "Neighbours and sensitivity"). Every float is
    /// rounded up, so the noise is never calibrated to less than the true sensitivity.
    pub fn sensitivity(&self) -> Sensitivity {
        match *self {
            Statistic::CountUnits { max_cells_per_unit } => {
                let c = u128::from(max_cells_per_unit);
                Sensitivity {
                    l1: f64_upper(c),
                    l2: sqrt_upper(c),
                }
            }
            Statistic::CountRows {
                max_rows_per_unit,
                max_rows_per_cell,
            } => Sensitivity {
                l1: f64_upper(u128::from(max_rows_per_unit)),
                l2: sqrt_upper(row_l2_squared(max_rows_per_unit, max_rows_per_cell)),
            },
            Statistic::Sum {
                lo,
                hi,
                max_rows_per_unit,
                max_rows_per_cell,
                ..
            } => {
                let b = u128::from(lo.unsigned_abs().max(hi.unsigned_abs()));
                Sensitivity {
                    l1: f64_upper(b * u128::from(max_rows_per_unit)),
                    l2: sqrt_upper(b * b * row_l2_squared(max_rows_per_unit, max_rows_per_cell)),
                }
            }
            // Unbounded: an exact table's sum is never noised.
            Statistic::Total { .. } => Sensitivity {
                l1: f64::INFINITY,
                l2: f64::INFINITY,
            },
        }
    }

    /// For a sum, the statistic of its contributors: the distinct units among each cell's kept
    /// rows. A unit keeps at most `max_rows_per_unit` rows, so it is a contributor of at most that
    /// many cells, once each: the sensitivity of `count_units` with that many cells per unit.
    pub fn contributors(&self) -> Option<Statistic> {
        match *self {
            Statistic::Sum {
                max_rows_per_unit, ..
            } => Some(Statistic::CountUnits {
                max_cells_per_unit: max_rows_per_unit,
            }),
            _ => None,
        }
    }

    /// Whether a published value of this statistic can never be negative, so that negative noisy
    /// values may be clamped to zero.
    pub fn is_non_negative(&self) -> bool {
        match self {
            Statistic::CountUnits { .. } | Statistic::CountRows { .. } => true,
            Statistic::Sum { lo, .. } => *lo >= 0,
            // Negative values are refused when read.
            Statistic::Total { .. } => true,
        }
    }
}

/// `floor(k/m) * m^2 + (k mod m)^2`: the squared L2 distance of `k` rows spread at most `m` per
/// cell, the most concentrated (worst) way.
fn row_l2_squared(k: u32, m: u32) -> u128 {
    let (k, m) = (u128::from(k), u128::from(m));
    (k / m) * m * m + (k % m) * (k % m)
}

/// The smallest `f64` that is at least `n`.
fn f64_upper(n: u128) -> f64 {
    let f = n as f64;
    if f.is_finite() && (f as u128) < n {
        f.next_up()
    } else {
        f
    }
}

/// An `f64` that is at least `sqrt(n)`: exact when `n` is a perfect square, otherwise one ulp
/// above the correctly rounded root of an upper bound of `n`.
fn sqrt_upper(n: u128) -> f64 {
    let s = f64_upper(n).sqrt();
    if s.fract() == 0.0 && (s as u128).checked_mul(s as u128) == Some(n) {
        s
    } else {
        s.next_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitivities_follow_the_design_formulas() {
        let s = Statistic::CountUnits {
            max_cells_per_unit: 4,
        }
        .sensitivity();
        assert_eq!((s.l1, s.l2), (4.0, 2.0));
        let s = Statistic::CountRows {
            max_rows_per_unit: 5,
            max_rows_per_cell: 2,
        }
        .sensitivity();
        // floor(5/2)*4 + 1 = 9
        assert_eq!((s.l1, s.l2), (5.0, 3.0));
        let s = Statistic::Sum {
            column: "x".into(),
            lo: -3,
            hi: 200,
            max_rows_per_unit: 4,
            max_rows_per_cell: 4,
        }
        .sensitivity();
        assert_eq!((s.l1, s.l2), (800.0, 800.0));
        // sqrt(2) is irrational: the float must lie above it.
        let s = Statistic::CountUnits {
            max_cells_per_unit: 2,
        }
        .sensitivity();
        assert!(s.l2 > std::f64::consts::SQRT_2 && s.l2 - std::f64::consts::SQRT_2 < 1e-15);
        assert!(s.l2 * s.l2 >= 2.0);
    }
}
