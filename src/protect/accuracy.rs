//! How a published DP value errs, shared by the tables estimated together ([`super::consistency`])
//! and the tables as drawn ([`super::postprocess`]): a table's error model, the normal quantile
//! of a confidence, a margin of error, and the shares of a total with theirs. Reads published
//! values and the noise's variances only.

/// The half-width of a `confidence` interval for a cell of an estimated table: `z` times the
/// closed-form standard deviation, plus the table's largest rounding shift, rounded down (the
/// error is an integer at most the least-squares error plus the shift, so when the former is
/// within `z sd` the whole error is within `floor(z sd + shift)`).
pub fn margin_of_error(variance: f64, confidence: f64, shift: f64) -> i64 {
    (z(confidence) * variance.sqrt() + shift).floor() as i64
}

/// The standard normal quantile of a two-sided `confidence` interval (1.96 for 0.95): opendp's
/// accuracy of a Gaussian of scale 1 at significance `1 - confidence`, `sqrt(2) erf_inv(confidence)`
/// (the same `erf_inv` opendp's own accuracies use, so no second statistics crate is built).
/// The policy holds `confidence` strictly between 0 and 1, where opendp's check always passes.
pub fn z(confidence: f64) -> f64 {
    opendp::accuracy::gaussian_scale_to_accuracy(1.0, 1.0 - confidence).unwrap_or(f64::NAN)
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
    let z = z(confidence);
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
    fn z_is_the_two_sided_standard_normal_quantile() {
        // Reference values of the standard normal quantile (Abramowitz and Stegun, 26.2).
        for (confidence, want) in [
            (0.5, 0.674_489_750_196_081_7),
            (0.8, 1.281_551_565_544_600_5),
            (0.9, 1.644_853_626_951_472_2),
            (0.95, 1.959_963_984_540_054),
            (0.99, 2.575_829_303_548_900_4),
            (0.999, 3.290_526_731_491_893_5),
        ] {
            assert!(
                (z(confidence) - want).abs() < 1e-9,
                "{confidence}: {}",
                z(confidence)
            );
        }
    }

    #[test]
    fn margin_of_error_is_the_normal_quantile_plus_the_shift() {
        // sd 10: 1.96 * 10 = 19.6, plus 0.5 -> 20.1 -> 20.
        assert_eq!(margin_of_error(100.0, 0.95, 0.5), 20);
        assert_eq!(margin_of_error(100.0, 0.95, 0.0), 19);
    }

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
}
