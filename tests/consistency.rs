//! Consistent estimation over many releases of a small group with a known truth, through
//! opendp's real noise: the estimates are unbiased (up to rounding), never less accurate than
//! the noisy tables, clearly more accurate for the margins several tables measure, and their
//! stated margins of error hold.
//!
//! False failures: every check compares an average over R = 3000 independent releases with a
//! bound at least 6 standard errors away from what the closed-form variance predicts. For a mean
//! of 3000 near-Gaussian errors a 6-standard-error deviation has probability 2e-9; over the 68
//! cells checked for bias and the 29 table-level checks (5 of them the coverage of the shares of
//! each table's total) the chance that any fails by accident is below 2e-7.

use safestat::privacy::{Cost, Mechanism, Sensitivity};
use safestat::protect::NoiseMechanism;
use safestat::protect::accuracy::{ErrorModel, margin_of_error, shares};
use safestat::protect::consistency::{self, Axes, Measured, Tolerance};

const REPS: usize = 3000;

#[test]
fn estimates_are_unbiased_more_accurate_and_their_margins_hold() {
    // gender (2) x age (7) x region (5); every union cell at least 40, so non-negativity never
    // binds (the noise's standard deviation is at most 5).
    let sizes = vec![2usize, 7, 5];
    let truth: Vec<i64> = (0..70).map(|u| 40 + (u * 37 % 23) as i64).collect();
    let tables: Vec<(Vec<usize>, f64)> = vec![
        (vec![0, 1], 0.05), // gender x age
        (vec![2, 1], 0.05), // region x age
        (vec![0], 0.02),    // gender
        (vec![1], 0.02),    // age
        (vec![2], 0.02),    // region
        (vec![], 0.02),     // total
    ];
    let sens = Sensitivity { l1: 1.0, l2: 1.0 };
    let mechs: Vec<NoiseMechanism> = tables
        .iter()
        .map(|(_, rho)| {
            NoiseMechanism::calibrate(Mechanism::Gaussian, sens, Cost::Rho(*rho)).unwrap()
        })
        .collect();
    let axes: Vec<Axes> = tables.iter().map(|(a, _)| Axes(a.clone())).collect();
    let exact: Vec<Vec<i64>> = axes
        .iter()
        .map(|a| consistency::marginal(&sizes, a, &truth))
        .collect();
    let with_var: Vec<(&Axes, f64)> = axes
        .iter()
        .zip(&mechs)
        .map(|(a, m)| (a, m.variance()))
        .collect();
    let n = tables.len();
    let mut sum_err: Vec<Vec<f64>> = exact.iter().map(|e| vec![0.0; e.len()]).collect();
    let (mut sq_raw, mut sq_est) = (vec![0.0; n], vec![0.0; n]);
    let mut within = vec![0usize; n];
    let mut shares_within = vec![0usize; n];
    let total_variance = consistency::total_variance(&sizes, &with_var);
    let grand_total: i64 = truth.iter().sum();
    for _ in 0..REPS {
        let measured: Vec<Measured> = axes
            .iter()
            .zip(&mechs)
            .zip(&exact)
            .map(|((a, m), e)| Measured {
                axes: a.clone(),
                noisy: m.invoke(e).unwrap(),
                variance: m.variance(),
            })
            .collect();
        let est = consistency::estimate(&sizes, &measured, true).unwrap();
        for j in 0..n {
            let var = consistency::cell_variance(&sizes, &with_var, j);
            let moe = margin_of_error(var, 0.95, est.shift[j]);
            for (c, &e) in exact[j].iter().enumerate() {
                let raw = (measured[j].noisy[c] - e) as f64;
                let err = (est.tables[j][c] - e) as f64;
                sum_err[j][c] += err;
                sq_raw[j] += raw * raw;
                sq_est[j] += err * err;
                within[j] += usize::from(err.abs() <= moe as f64);
            }
            // Each cell's share of the table's total (the grand total), as a release computes it.
            let error = ErrorModel {
                cell_variance: var,
                total_variance,
                shift: est.shift[j],
                total_shift: match est.tolerance {
                    Tolerance::Within(0) | Tolerance::Cumulative => 1.0,
                    Tolerance::Within(_) => est.shift[j] * exact[j].len() as f64,
                },
                cell_margin: None,
            };
            let s = shares(&est.tables[j], error, 0.95).unwrap();
            for (&(p, margin), &e) in s.cells.iter().zip(&exact[j]) {
                let truth_share = e as f64 / grand_total as f64;
                shares_within[j] += usize::from((p - truth_share).abs() <= margin);
            }
        }
    }
    for j in 0..n {
        let var_raw = mechs[j].variance();
        let var_est = consistency::cell_variance(&sizes, &with_var, j);
        let cells = exact[j].len();
        let samples = (cells * REPS) as f64;
        // Unbiased up to rounding: the error is the least-squares error (mean 0, standard
        // deviation sqrt(var_est)) plus a rounding shift below 1.
        let sd = var_est.sqrt() + 1.0;
        for (c, s) in sum_err[j].iter().enumerate() {
            let mean = s / REPS as f64;
            let bound = 1.0 + 6.0 * sd / (REPS as f64).sqrt();
            assert!(
                mean.abs() <= bound,
                "table {j} cell {c}: mean error {mean} beyond {bound}"
            );
        }
        // Mean squared errors, each within 6 relative standard errors (sqrt(2 / samples) for a
        // mean of squared near-Gaussian errors) of its prediction: the noisy tables' is their
        // variance (the discrete Gaussian's is at most, and here within 1% of, sigma^2); the
        // estimate's is at most (sd + 1)^2, the rounding shift being below 1.
        let tol = 6.0 * (2.0 / samples).sqrt();
        let mse_raw = sq_raw[j] / samples;
        let mse_est = sq_est[j] / samples;
        assert!(
            mse_raw >= var_raw * 0.9 * (1.0 - tol),
            "table {j}: the noisy tables' error {mse_raw} is below its variance {var_raw}"
        );
        assert!(
            mse_est <= sd * sd * (1.0 + tol),
            "table {j}: estimated error {mse_est} beyond {}",
            sd * sd
        );
        // Never less accurate than the noisy table.
        assert!(
            mse_est <= mse_raw,
            "table {j}: estimate {mse_est} worse than noisy {mse_raw}"
        );
        // The margins that several tables measure: clearly more accurate.
        if j >= 2 {
            assert!(
                mse_est <= 0.75 * mse_raw,
                "table {j}: estimate {mse_est} not clearly better than noisy {mse_raw}"
            );
        }
        // The stated 95% margins hold: coverage at least 0.95 less 6 standard errors.
        let coverage = within[j] as f64 / samples;
        let floor = 0.95 - 6.0 * (0.95 * 0.05 / samples).sqrt();
        assert!(
            coverage >= floor,
            "table {j}: {coverage} of cells within the margin, below {floor}"
        );
        // So do the shares' (the total's own share, 100%, is exact).
        let share_coverage = shares_within[j] as f64 / samples;
        if j < n - 1 {
            assert!(
                share_coverage >= floor,
                "table {j}: {share_coverage} of shares within their margin, below {floor}"
            );
        }
        eprintln!(
            "table {j}: cells {cells} var raw {var_raw:.2} predicted {var_est:.2}; mse raw {mse_raw:.2} estimated {mse_est:.2}; coverage {coverage:.4}; shares {share_coverage:.4}"
        );
    }
}
