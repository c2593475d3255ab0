//! Post-processing of noisy cells: clamping and small-cell suppression.
//!
//! Owns every decision taken after the noise. It takes noisy values only, by construction: its
//! functions never receive the exact cells, so a suppression decision cannot depend on a true
//! count (which would break differential privacy). Post-processing a DP output stays DP.

/// A published cell: its value, or `None` when suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub value: Option<i64>,
}

impl Cell {
    pub fn status(&self) -> &'static str {
        if self.value.is_some() {
            "published"
        } else {
            "suppressed"
        }
    }
}

/// Clamps negative noisy values to zero when the statistic cannot be negative, then suppresses
/// every cell whose (clamped) noisy value is below `suppress_below`. Returns the cells and how
/// many were suppressed.
pub fn finish_cells(
    noisy: Vec<i64>,
    non_negative: bool,
    suppress_below: i64,
) -> (Vec<Cell>, usize) {
    let mut suppressed = 0;
    let cells = noisy
        .into_iter()
        .map(|v| {
            let v = if non_negative { v.max(0) } else { v };
            if v < suppress_below {
                suppressed += 1;
                Cell { value: None }
            } else {
                Cell { value: Some(v) }
            }
        })
        .collect();
    (cells, suppressed)
}

/// A sum's cells, suppressed on the noisy count of their contributors (clamped at zero), never
/// on the noisy sum: noise can push a large sum below any threshold, and a reader takes a
/// suppressed cell for a small one. Returns the cells, each published cell's count of
/// contributors, and how many cells were suppressed.
pub fn finish_sum_cells(
    noisy: Vec<i64>,
    non_negative: bool,
    contributors: Vec<i64>,
    suppress_below: i64,
) -> (Vec<Cell>, Vec<Option<i64>>, usize) {
    let mut suppressed = 0;
    let (cells, counts) = noisy
        .into_iter()
        .zip(contributors)
        .map(|(v, n)| {
            let v = if non_negative { v.max(0) } else { v };
            let n = n.max(0);
            if n < suppress_below {
                suppressed += 1;
                (Cell { value: None }, None)
            } else {
                (Cell { value: Some(v) }, Some(n))
            }
        })
        .unzip();
    (cells, counts, suppressed)
}

/// How a published table's cells err: the variance of one cell's error and of the table's total
/// (the sum of its cells), and the largest rounding shift of a cell and of the total (0 for a
/// table as drawn).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorModel {
    pub cell_variance: f64,
    pub total_variance: f64,
    pub shift: f64,
    pub total_shift: f64,
    /// For a table as drawn, one cell's exact margin of error at the confidence asked (opendp's
    /// accuracy): the discrete Laplace's tails are heavier than a normal's of the same variance.
    pub cell_margin: Option<f64>,
}

impl ErrorModel {
    /// A table published as drawn: independent noise of `variance` in each of `cells` cells,
    /// whose exact margin of error is `margin` at the confidence the shares are asked at.
    pub fn drawn(variance: f64, cells: usize, margin: i64) -> ErrorModel {
        ErrorModel {
            cell_variance: variance,
            total_variance: variance * cells as f64,
            shift: 0.0,
            total_shift: 0.0,
            cell_margin: Some(margin as f64),
        }
    }
}

/// A table's shares of its total, from its published values (post-processed, suppressed cells
/// included: the total is the table's, and it adds up with the published margins).
#[derive(Debug, Clone, PartialEq)]
pub struct Shares {
    pub total: i64,
    /// The total's margin of error (normal approximation, plus a rounding shift per cell).
    pub total_margin: i64,
    /// Per cell `(share, margin)`, both as fractions of 1.
    pub cells: Vec<(f64, f64)>,
}

/// Each cell's share `p = x / T` of the table's total `T`, with a margin of error by the delta
/// method: the error of `p` is about `(e - p E) / T` for a cell's error `e` and the total's `E`.
/// Every cell holds the same share of the total's error (the part of `e` that survives summing,
/// the constant subspace), so `Cov(e, E) = Var(E) / n` and
///
/// `Var(e - p E) = Var(e) + Var(E) (p^2 - 2 p / n)`,
///
/// exact for independent noise (`Var(E) = n Var(e)`) and for tables estimated together alike; the
/// margin is `z` times its square root (normal approximation). For a table as drawn, whose cells
/// err independently, `e - p E = (1 - p) e - p E'` with `E'` the other cells' error: its margin
/// is the root sum of squares of `(1 - p)` times the cell's exact margin and `z p sd(E')`, so that
/// a small share, whose error is mostly its own cell's, keeps the discrete Laplace's heavier
/// tail. The rounding shifts of the cell and the total are added; the whole is divided by `T`.
/// `None` when the total is not positive (no share is defined). Reads published values only.
pub fn shares(values: &[i64], error: ErrorModel, confidence: f64) -> Option<Shares> {
    let total: i64 = values.iter().sum();
    if total <= 0 || values.is_empty() {
        return None;
    }
    let t = total as f64;
    let n = values.len() as f64;
    let z = super::consistency::z(confidence);
    let cells = values
        .iter()
        .map(|&x| {
            let p = x as f64 / t;
            let noise = match error.cell_margin {
                Some(w) => {
                    let rest = (error.total_variance - error.cell_variance).max(0.0);
                    (((1.0 - p) * w).powi(2) + (z * p).powi(2) * rest).sqrt()
                }
                None => {
                    let var = error.cell_variance + error.total_variance * (p * p - 2.0 * p / n);
                    z * var.max(0.0).sqrt()
                }
            };
            (p, (noise + error.shift + p * error.total_shift) / t)
        })
        .collect();
    let total_margin = (z * error.total_variance.sqrt() + error.total_shift).floor() as i64;
    Some(Shares {
        total,
        total_margin,
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_to_one_and_their_margins_follow_the_delta_method() {
        // Four cells estimated together: cell variance 25, total variance 60, shifts 1.
        let error = ErrorModel {
            cell_variance: 25.0,
            total_variance: 60.0,
            shift: 1.0,
            total_shift: 1.0,
            cell_margin: None,
        };
        let s = shares(&[100, 300, 0, 600], error, 0.95).unwrap();
        assert_eq!(s.total, 1000);
        let sum: f64 = s.cells.iter().map(|c| c.0).sum();
        assert!((sum - 1.0).abs() < 1e-12);
        let z = 1.959963984540054;
        for (&(p, m), x) in s.cells.iter().zip([100.0, 300.0, 0.0, 600.0]) {
            assert!((p - x / 1000.0).abs() < 1e-12);
            let want = (z * (25.0 + 60.0 * (p * p - p / 2.0)).sqrt() + 1.0 + p) / 1000.0;
            assert!((m - want).abs() < 1e-12, "{m} vs {want}");
        }
        // The total's margin: z sd(E) + 1 = 16.2.
        assert_eq!(s.total_margin, 16);
        // As drawn: (1 - p) w and z p sd(rest) added in quadrature (rest: 3 cells of 25).
        let s = shares(&[100, 300, 0, 600], ErrorModel::drawn(25.0, 4, 11), 0.95).unwrap();
        for &(p, m) in &s.cells {
            let want = (((1.0 - p) * 11.0).powi(2) + (z * p).powi(2) * 75.0).sqrt() / 1000.0;
            assert!((m - want).abs() < 1e-12, "{m} vs {want}");
        }
        assert!(shares(&[0, 0], ErrorModel::drawn(1.0, 2, 2), 0.95).is_none());
        assert!(shares(&[-5, 3], ErrorModel::drawn(1.0, 2, 2), 0.95).is_none());
    }

    #[test]
    fn sums_are_suppressed_on_their_contributors_only() {
        // A sum of 3 with 40 contributors is published; a sum of 9,000 with 4 is not.
        let (cells, counts, n) =
            finish_sum_cells(vec![3, 9_000, -5, 500], true, vec![40, 4, 12, -2], 10);
        let values: Vec<_> = cells.iter().map(|c| c.value).collect();
        assert_eq!(values, [Some(3), None, Some(0), None]);
        assert_eq!(counts, [Some(40), None, Some(12), None]);
        assert_eq!(n, 2);
    }

    #[test]
    fn suppresses_below_threshold_and_clamps_negatives() {
        let (cells, n) = finish_cells(vec![-3, 0, 9, 10, 250], true, 10);
        let values: Vec<_> = cells.iter().map(|c| c.value).collect();
        assert_eq!(values, [None, None, None, Some(10), Some(250)]);
        assert_eq!(n, 3);
    }

    #[test]
    fn zero_threshold_publishes_everything_and_keeps_zeros() {
        let (cells, n) = finish_cells(vec![-3, 0, 4], true, 0);
        let values: Vec<_> = cells.iter().map(|c| c.value).collect();
        assert_eq!(values, [Some(0), Some(0), Some(4)]);
        assert_eq!(n, 0);
    }

    #[test]
    fn signed_sums_are_not_clamped() {
        let (cells, _) = finish_cells(vec![-30], false, i64::MIN);
        assert_eq!(cells[0].value, Some(-30));
    }
}
