//! Shares of a table's total and their margins of error, over many releases with a known truth
//! through opendp's real noise: the stated 95% margins hold for tables published as drawn, with
//! either mechanism (the grouped case is checked in `tests/consistency.rs`).
//!
//! False failures: each check compares a coverage (per cell over R = 4000 draws, and over all
//! cells) with 0.95 less 6 standard errors (binomial); if the true coverage is at least 0.95 a
//! check fails by accident with probability below 1e-9. Per mechanism there are 7 + 1 of them and
//! one that the margins are not needlessly wide (coverage below 0.99 plus 6 standard errors,
//! where the delta method puts it near 0.95): 18 checks, below 2e-8 in all.

use safestat::privacy::{Cost, Mechanism, Sensitivity};
use safestat::protect::NoiseMechanism;
use safestat::protect::accuracy::{ErrorModel, shares};

const REPS: usize = 4000;

/// The share of draws within the stated margin, per cell.
fn coverage(mechanism: Mechanism, cost: Cost) -> Vec<f64> {
    // Cells from 15 to 400 against noise of standard deviation about 10: small and large shares.
    // The smallest is 1.5 sd above 0, so clamping at 0 binds in some draws, as in a release.
    let truth: Vec<i64> = vec![400, 250, 120, 60, 30, 15, 140];
    let total: i64 = truth.iter().sum();
    let sens = Sensitivity { l1: 1.0, l2: 1.0 };
    let m = NoiseMechanism::calibrate(mechanism, sens, cost).unwrap();
    let error = ErrorModel::drawn(m.variance(), truth.len(), m.margin_of_error(0.95).unwrap());
    let mut within = vec![0usize; truth.len()];
    for _ in 0..REPS {
        let noisy: Vec<i64> = m
            .invoke(&truth)
            .unwrap()
            .into_iter()
            .map(|v| v.max(0))
            .collect();
        let s = shares(&noisy, error, 0.95).unwrap();
        for ((&(p, margin), &x), w) in s.cells.iter().zip(&truth).zip(&mut within) {
            let truth_share = x as f64 / total as f64;
            *w += usize::from((p - truth_share).abs() <= margin);
        }
    }
    within.iter().map(|&w| w as f64 / REPS as f64).collect()
}

fn check(name: &str, per_cell: Vec<f64>) {
    eprintln!("{name}: coverage per cell {per_cell:.4?}");
    // Every cell: small shares (mostly their own cell's error) and large ones (mostly the total's).
    let se = (0.95 * 0.05 / REPS as f64).sqrt();
    for (i, &c) in per_cell.iter().enumerate() {
        assert!(
            c >= 0.95 - 6.0 * se,
            "{name}: cell {i} coverage {c} below 0.95"
        );
    }
    // All cells together, tighter.
    let all = per_cell.iter().sum::<f64>() / per_cell.len() as f64;
    let se = se / (per_cell.len() as f64).sqrt();
    assert!(all >= 0.95 - 6.0 * se, "{name}: coverage {all} below 0.95");
    assert!(
        all <= 0.99 + 6.0 * se,
        "{name}: coverage {all}: the margins are needlessly wide"
    );
}

#[test]
fn share_margins_hold_for_gaussian_tables() {
    // sigma = 1 / sqrt(2 rho) = 10.
    check("gaussian", coverage(Mechanism::Gaussian, Cost::Rho(0.005)));
}

#[test]
fn share_margins_hold_for_laplace_tables() {
    // b = 1 / epsilon = 7, standard deviation about 9.9.
    check(
        "laplace",
        coverage(Mechanism::Laplace, Cost::Epsilon(1.0 / 7.0)),
    );
}
