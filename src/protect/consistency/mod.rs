//! Consistent estimation: the tables of a release that measure the same quantity, estimated
//! together as one non-negative integer table from which each of them is summed, so that every
//! margin adds up exactly across tables.
//!
//! A **group** ([`crate::policy::grouping`], decided from the plan alone) is two or more tables
//! that are exact margins of one bounded **union table**, which crosses all the dimensions its
//! tables use: the input's rows are bounded once at the union's cells and every table of the
//! group is summed from that one bounded table, so they all measure one quantity. The estimate,
//! all of it post-processing of noisy values:
//!
//! 1. [`gls`]: the union table that fits every noisy table best, each weighted by the inverse of
//!    its noise variance (generalised least squares), non-negative when the statistic is.
//!    Several tables that measure one total (the grand total, a gender's total) combine into an
//!    estimate more accurate than any of them.
//! 2. [`rounding`]: controlled rounding of that table to integers, keeping every published cell
//!    and the grand total within 1 of its fitted value where such a rounding exists.
//! 3. Each table of the group is summed from the integer union table: non-negative integers
//!    whose margins agree across tables.
//!
//! Suppression and reliability decisions then read these estimates, never the exact cells.
//! The margin of error of an estimated cell ([`margin_of_error`](super::accuracy::margin_of_error)) is the normal approximation of
//! the unconstrained estimate's error ([`variance`]) plus the largest rounding shift of its table.
//!
//! A group the solver fails on is published as drawn (each table is still the margin of the one
//! bounded table, with its own noise), and the summary and the manifest say so.

mod gls;
mod layout;
mod rounding;
mod variance;

use std::time::{Duration, Instant};

pub use layout::Axes;
pub use rounding::{NODE_LIMIT, Tolerance};
pub use variance::{cell_variance, marginal_variance, total_variance};

use super::TableNoise;
use super::accuracy::{ErrorModel, margin_of_error};
use super::totals::{Noise, Source};
use crate::policy::{Plan, Together};

/// A group of tables estimated together.
pub type Group = Together;

/// The largest absolute noisy value estimated: beyond it a double no longer holds the fractional
/// parts that rounding needs.
const MAX_VALUE: i64 = 1 << 48;

/// What the manifest says about the method.
pub const METHOD: &str = "generalised least squares (each noisy table weighted by the inverse of its noise variance) with non-negativity where the statistic cannot be negative, then controlled rounding to integers; every table of the group is summed from the one integer union table";
/// The solvers, by crate, with the rounding's node limit as the code has it.
pub fn solvers() -> String {
    format!(
        "clarabel 0.11 (interior-point QP, default tolerances) for the least-squares fits; microlp 0.6 (branch and bound, node limit {NODE_LIMIT} per tolerance) for the rounding"
    )
}
/// How an estimated table's margin of error is obtained.
pub const MOE_METHOD: &str = "normal approximation of the unconstrained least-squares estimate's error, with its variance in closed form from the noise variances (an upper bound for discrete Gaussian noise), plus the largest distance of a published value from that estimate (the rounding, and the non-negativity step where it binds), measured on the noisy values";

/// One noisy table of a group.
pub struct Measured {
    pub axes: Axes,
    pub noisy: Vec<i64>,
    /// The noise variance of each cell.
    pub variance: f64,
}

/// A group's estimate: each table summed from the integer union table, and how far it is from the
/// unconstrained least-squares estimate.
pub struct Estimate {
    pub tables: Vec<Vec<i64>>,
    /// Per table, the largest distance of a published cell from its unconstrained least-squares
    /// estimate (the rounding's shift, and the non-negativity step's where it binds).
    pub shift: Vec<f64>,
    /// Per table, the largest distance of a published cell from its fitted value (the rounding's
    /// alone).
    pub rounding_shift: Vec<f64>,
    pub tolerance: Tolerance,
    /// The integer union table every table is summed from.
    pub union: Vec<i64>,
    /// The unconstrained least-squares union table, whose error has the closed-form variance.
    pub free: Vec<f64>,
}

/// Estimates a group's tables together: a union table of dimensions with `sizes` categories,
/// non-negative when `non_negative`. Reads noisy values only.
pub fn estimate(
    sizes: &[usize],
    tables: &[Measured],
    non_negative: bool,
) -> Result<Estimate, String> {
    if let Some(v) = tables
        .iter()
        .flat_map(|t| &t.noisy)
        .find(|v| v.unsigned_abs() > MAX_VALUE as u64)
    {
        return Err(format!(
            "a noisy value ({v}) is beyond 2^48, where rounding cannot be exact"
        ));
    }
    let axes: Vec<&Axes> = tables.iter().map(|t| &t.axes).collect();
    let layout = layout::Layout::new(sizes, &axes);
    let y: Vec<Vec<f64>> = tables
        .iter()
        .map(|t| t.noisy.iter().map(|&v| v as f64).collect())
        .collect();
    let variance: Vec<f64> = tables.iter().map(|t| t.variance).collect();
    let x = gls::fit(sizes, &axes, &y, &variance, non_negative)?;
    let fitted: Vec<Vec<f64>> = (0..tables.len()).map(|j| layout.marginal(j, &x)).collect();
    let rounded = rounding::round(&layout, &x, &fitted);
    // The margins of error are measured from the unconstrained estimate, whose error the closed
    // form describes: a published value errs by at most its distance from it plus that error.
    // Non-negativity moves each cell towards the truth but can move a sum of many cells away.
    let free = if non_negative {
        gls::fit(sizes, &axes, &y, &variance, false)?
    } else {
        x
    };
    let mut out = Vec::with_capacity(tables.len());
    let mut shift = Vec::with_capacity(tables.len());
    let distance = |table: &[i64], fit: &[f64]| {
        table
            .iter()
            .zip(fit)
            .map(|(&v, &f)| (v as f64 - f).abs())
            .fold(0.0, f64::max)
    };
    let mut rounding_shift = Vec::with_capacity(tables.len());
    for (j, fitted) in fitted.iter().enumerate() {
        let fit = layout.marginal(j, &free);
        let table: Vec<i64> = layout
            .marginal_exact(j, &rounded.union)
            .into_iter()
            .map(|v| i64::try_from(v).map_err(|_| "an estimated cell overflows".to_string()))
            .collect::<Result<_, _>>()?;
        shift.push(distance(&table, &fit));
        rounding_shift.push(distance(&table, fitted));
        out.push(table);
    }
    Ok(Estimate {
        tables: out,
        shift,
        rounding_shift,
        tolerance: rounded.tolerance,
        union: rounded.union,
        free,
    })
}

/// Table `axes` summed from an integer union table of dimensions with `sizes` categories.
pub fn marginal(sizes: &[usize], axes: &Axes, union: &[i64]) -> Vec<i64> {
    crate::input::margin(sizes, &axes.0, union)
}

/// Each table's dimensions as positions in its group's union.
pub fn axes(plan: &Plan, group: &Group) -> Vec<Axes> {
    group.axes(plan).into_iter().map(Axes).collect()
}

/// Each table's margin of error once its group is estimated, assuming a controlled rounding
/// (a shift of at most 1): what `plan` shows before any data is read.
pub fn planned_margins(plan: &Plan, group: &Group, mechs: &[TableNoise]) -> Vec<(usize, i64)> {
    let axes = axes(plan, group);
    let sizes = group.sizes(plan);
    let measured: Vec<(&Axes, f64)> = axes
        .iter()
        .zip(&group.tables)
        .map(|(a, &t)| (a, mechs[t].values.variance()))
        .collect();
    let margins = group_margins(plan, group, &sizes, &measured, |_| 1.0);
    group.tables.iter().copied().zip(margins).collect()
}

/// Each table's margin of error in a group of tables `(axes, noise variance)`, given each table's
/// rounding shift.
fn group_margins(
    plan: &Plan,
    group: &Group,
    sizes: &[usize],
    measured: &[(&Axes, f64)],
    shift: impl Fn(usize) -> f64,
) -> Vec<i64> {
    group
        .tables
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let var = cell_variance(sizes, measured, k);
            margin_of_error(var, plan.tables[t].confidence, shift(k))
        })
        .collect()
}

/// What happened to one group in a release.
pub struct Applied {
    pub group: Group,
    /// The estimate, or why the group was published as drawn.
    pub outcome: Result<Estimated, String>,
    pub elapsed: Duration,
}

/// A group's estimate as published: the rounding tolerance, and per table its margin of error,
/// how its cells err and where its margins are summed from.
pub struct Estimated {
    pub tolerance: Tolerance,
    pub margins: Vec<i64>,
    pub errors: Vec<ErrorModel>,
    pub sources: Vec<Source>,
}

/// Estimates every group that fits, replacing its tables' noisy values in `noisy` (one entry per
/// plan table). Reads noisy values only.
pub fn apply(
    plan: &Plan,
    mechs: &[TableNoise],
    groups: &[Group],
    noisy: &mut [Vec<i64>],
) -> Vec<Applied> {
    groups
        .iter()
        .map(|g| {
            let started = Instant::now();
            let outcome = estimate_group(plan, mechs, g, noisy);
            Applied {
                group: g.clone(),
                outcome,
                elapsed: started.elapsed(),
            }
        })
        .collect()
}

fn estimate_group(
    plan: &Plan,
    mechs: &[TableNoise],
    g: &Group,
    noisy: &mut [Vec<i64>],
) -> Result<Estimated, String> {
    let sizes = g.sizes(plan);
    let measured: Vec<Measured> = axes(plan, g)
        .into_iter()
        .zip(&g.tables)
        .map(|(axes, &t)| Measured {
            axes,
            noisy: noisy[t].clone(),
            variance: mechs[t].values.variance(),
        })
        .collect();
    let non_negative = plan.tables[g.tables[0]].statistic.is_non_negative();
    let est = estimate(&sizes, &measured, non_negative)?;
    let variances: Vec<(&Axes, f64)> = measured.iter().map(|m| (&m.axes, m.variance)).collect();
    let margins = group_margins(plan, g, &sizes, &variances, |k| est.shift[k]);
    let total = total_variance(&sizes, &variances);
    // The grand total's distance from the unconstrained estimate's, measured.
    let total_shift =
        (est.union.iter().map(|&v| v as f64).sum::<f64>() - est.free.iter().sum::<f64>()).abs();
    let errors = (0..g.tables.len())
        .map(|k| ErrorModel {
            cell_variance: cell_variance(&sizes, &variances, k),
            total_variance: total,
            shift: est.shift[k],
            total_shift,
            cell_margin: None,
        })
        .collect();
    let noise = Noise::Group(
        measured
            .iter()
            .map(|m| (m.axes.clone(), m.variance))
            .collect(),
    );
    let sources = measured
        .iter()
        .map(|m| Source {
            sizes: sizes.clone(),
            axes: m.axes.0.clone(),
            published: est.union.clone(),
            free: est.free.clone(),
            noise: noise.clone(),
        })
        .collect();
    for (&t, table) in g.tables.iter().zip(est.tables) {
        noisy[t] = table;
    }
    Ok(Estimated {
        tolerance: est.tolerance,
        margins,
        errors,
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gender (2) x age (3) x region (4), measured as gender x age, region x age, gender, region.
    fn group(noisy: [Vec<i64>; 4]) -> (Vec<usize>, Vec<Measured>) {
        let axes = [vec![0, 1], vec![2, 1], vec![0], vec![2]];
        let variance = [4.0, 4.0, 9.0, 9.0];
        let tables = axes
            .into_iter()
            .zip(noisy)
            .zip(variance)
            .map(|((a, noisy), variance)| Measured {
                axes: Axes(a),
                noisy,
                variance,
            })
            .collect();
        (vec![2, 3, 4], tables)
    }

    fn sample() -> [Vec<i64>; 4] {
        [
            vec![30, 12, -3, 41, 7, 2],
            vec![11, 5, 1, 20, 4, 0, 25, 9, -2, 17, 3, 1],
            vec![33, 70],
            vec![18, 22, 34, 19],
        ]
    }

    #[test]
    fn margins_add_up_exactly_and_cells_are_non_negative_integers() {
        let (sizes, tables) = group(sample());
        let est = estimate(&sizes, &tables, true).unwrap();
        let [ga, ra, g, r] = &est.tables[..] else {
            panic!("four tables")
        };
        assert!(est.tables.iter().flatten().all(|&v| v >= 0));
        // gender = sum of gender x age over age; region = sum of region x age over age.
        assert_eq!(g, &vec![ga[0] + ga[1] + ga[2], ga[3] + ga[4] + ga[5]]);
        for (k, &v) in r.iter().enumerate() {
            assert_eq!(v, ra[3 * k] + ra[3 * k + 1] + ra[3 * k + 2]);
        }
        // age from gender x age equals age from region x age, and the totals agree.
        for a in 0..3 {
            assert_eq!(
                ga[a] + ga[3 + a],
                (0..4).map(|k| ra[3 * k + a]).sum::<i64>()
            );
        }
        assert_eq!(g.iter().sum::<i64>(), r.iter().sum::<i64>());
        assert_eq!(est.tolerance, Tolerance::Within(0));
        assert!(
            est.rounding_shift.iter().all(|&s| s < 1.0),
            "{:?}",
            est.rounding_shift
        );
    }

    #[test]
    fn the_estimate_depends_on_the_noisy_values_only_and_is_deterministic() {
        let (sizes, a) = group(sample());
        let (_, b) = group(sample());
        let first = estimate(&sizes, &a, true).unwrap().tables;
        assert_eq!(first, estimate(&sizes, &b, true).unwrap().tables);
        let mut changed = sample();
        changed[2][0] += 40;
        let (_, c) = group(changed);
        assert_ne!(first, estimate(&sizes, &c, true).unwrap().tables);
    }

    #[test]
    fn signed_statistics_may_stay_negative() {
        let (sizes, tables) = group([
            vec![-30, -12, -3, -41, -7, -2],
            vec![-11, -5, -1, -20, -4, 0, -25, -9, -2, -17, -3, -1],
            vec![-45, -50],
            vec![-18, -22, -34, -19],
        ]);
        let est = estimate(&sizes, &tables, false).unwrap();
        assert!(est.tables[2].iter().all(|&v| v < 0), "{:?}", est.tables[2]);
    }

    /// The closed-form variance against the fitted estimator itself: without the constraint the
    /// fit is linear, `t = H y`, so a cell's variance is `sum_p H[c][p]^2 var_p`; column `p` of
    /// `H` is the fit of the unit vector `e_p`.
    #[test]
    fn closed_form_variance_matches_the_least_squares_fit() {
        let (sizes, tables) = group(sample());
        let axes: Vec<&Axes> = tables.iter().map(|t| &t.axes).collect();
        let variance: Vec<f64> = tables.iter().map(|t| t.variance).collect();
        let layout = layout::Layout::new(&sizes, &axes);
        let mut sum_sq = vec![vec![0.0; 0]; tables.len()];
        for (j, t) in tables.iter().enumerate() {
            sum_sq[j] = vec![0.0; t.noisy.len()];
        }
        for (p_table, t) in tables.iter().enumerate() {
            for p_cell in 0..t.noisy.len() {
                let y: Vec<Vec<f64>> = tables
                    .iter()
                    .enumerate()
                    .map(|(j, t)| {
                        (0..t.noisy.len())
                            .map(|c| f64::from(u8::from(j == p_table && c == p_cell)))
                            .collect()
                    })
                    .collect();
                let x = gls::fit(&sizes, &axes, &y, &variance, false).unwrap();
                for (k, sums) in sum_sq.iter_mut().enumerate() {
                    for (c, h) in layout.marginal(k, &x).iter().enumerate() {
                        sums[c] += h * h * variance[p_table];
                    }
                }
            }
        }
        let measured: Vec<(&Axes, f64)> = axes.iter().copied().zip(variance).collect();
        for (k, sums) in sum_sq.iter().enumerate() {
            let closed = cell_variance(&sizes, &measured, k);
            for &v in sums {
                assert!(
                    (v - closed).abs() < 1e-4 * closed,
                    "table {k}: {v} vs {closed}"
                );
            }
            // Estimating together never loses accuracy against the table alone.
            assert!(closed <= tables[k].variance + 1e-9);
        }
    }
}
