//! Every DP table's margins and grand total, at no cost: sums of the values it publishes
//! (post-processing of noisy values only), each with a margin of error of its own.
//!
//! A table's values are summed from a **base** integer table: its group's union table when it is
//! estimated with a group (so its margins are the other tables' cells where they are published,
//! exactly), else its own cells (negative noisy values clamped to 0 where the statistic cannot
//! be negative). A margin keeps some of the table's dimensions and sums out the others; the
//! margin over none is the grand total.
//!
//! Margin of error: each margin also has an *unconstrained* value whose error is known in closed
//! form: the same sum of the unconstrained least-squares estimate (for a group;
//! [`super::consistency::marginal_variance`]) or of the raw noisy cells (their noise independent,
//! so a sum of `n` cells has `n` times a cell's variance). The published margin errs by at most
//! its distance from the unconstrained one, which is measured (rounding, and non-negativity
//! where it binds: each clamped cell moves towards its non-negative truth, but a sum of many
//! clamped cells moves away from its own), plus the unconstrained error, which is within `z`
//! standard deviations with the stated confidence (normal approximation). A "margin" of one cell
//! of a table drawn alone is that cell, with opendp's exact margin.

use super::accuracy::margin_of_error;
use super::consistency::{Axes, marginal_variance};

/// How a margin's margin of error is obtained, for the manifest.
pub const METHOD: &str = "normal approximation of the error of the same sum of the unconstrained estimate (the unconstrained least-squares union table of the table's group, with its variance in closed form; or the raw noisy cells, each with the noise's variance), plus the margin's largest measured distance from that sum (rounding, and clamping at 0 where it binds); a margin of one cell of a table drawn alone has that cell's exact margin";
use crate::input::margin;

/// How the base's unconstrained values err.
#[derive(Debug, Clone)]
pub enum Noise {
    /// A group's union: the tables measured, as `(axes in the union, noise variance)`.
    Group(Vec<(Axes, f64)>),
    /// A table drawn alone: independent noise of `variance` per cell, whose exact margin of
    /// error at the table's confidence is `cell_margin`.
    Alone { variance: f64, cell_margin: i64 },
}

/// Where a table's published values come from, for its margins.
#[derive(Debug, Clone)]
pub struct Source {
    /// The base's dimensions' numbers of categories.
    pub sizes: Vec<usize>,
    /// The table's dimensions as positions in the base's, in the table's order.
    pub axes: Vec<usize>,
    /// The base's integer values (before suppression).
    pub published: Vec<i64>,
    /// The base's unconstrained values.
    pub free: Vec<f64>,
    pub noise: Noise,
}

/// One margin of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Margin {
    /// The table's dimensions it keeps (positions in the table's `by`, in order); the others
    /// are summed out.
    pub keep: Vec<usize>,
    /// Its cells, the kept dimensions' categories in order (first slowest).
    pub values: Vec<i64>,
    pub margin_of_error: i64,
}

impl Source {
    /// A table drawn alone: its own cells (`dims` categories each), published as `published`
    /// from noisy values `noisy`.
    pub fn alone(
        sizes: Vec<usize>,
        published: Vec<i64>,
        noisy: &[i64],
        variance: f64,
        cell_margin: i64,
    ) -> Source {
        Source {
            axes: (0..sizes.len()).collect(),
            sizes,
            published,
            free: noisy.iter().map(|&v| v as f64).collect(),
            noise: Noise::Alone {
                variance,
                cell_margin,
            },
        }
    }

    /// The margin keeping the table's dimensions `keep`, with its margin of error at
    /// `confidence`.
    pub fn margin(&self, keep: &[usize], confidence: f64) -> Margin {
        let axes: Vec<usize> = keep.iter().map(|&k| self.axes[k]).collect();
        let summed: Vec<i128> = margin(
            &self.sizes,
            &axes,
            &self
                .published
                .iter()
                .map(|&v| i128::from(v))
                .collect::<Vec<_>>(),
        );
        let free = margin(&self.sizes, &axes, &self.free);
        let shift = summed
            .iter()
            .zip(&free)
            .map(|(&v, &f)| (v as f64 - f).abs())
            .fold(0.0, f64::max);
        let cells_summed: usize = (0..self.sizes.len())
            .filter(|d| !axes.contains(d))
            .map(|d| self.sizes[d])
            .product();
        let margin_of_error = match &self.noise {
            Noise::Group(measured) => {
                let measured: Vec<(&Axes, f64)> = measured.iter().map(|(a, v)| (a, *v)).collect();
                let var = marginal_variance(&self.sizes, &measured, &axes);
                margin_of_error(var, confidence, shift)
            }
            // One cell: clamping only moves it towards its non-negative truth.
            Noise::Alone { cell_margin, .. } if cells_summed == 1 => *cell_margin,
            Noise::Alone { variance, .. } => {
                margin_of_error(variance * cells_summed as f64, confidence, shift)
            }
        };
        Margin {
            keep: keep.to_vec(),
            values: summed
                .into_iter()
                .map(|v| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
                .collect(),
            margin_of_error,
        }
    }

    /// Every margin of a table of `dims` dimensions but the table itself: those keeping more
    /// dimensions first, earlier dimensions first among equals; the grand total last.
    pub fn margins(&self, confidence: f64) -> Vec<Margin> {
        subsets(self.axes.len())
            .into_iter()
            .map(|keep| self.margin(&keep, confidence))
            .collect()
    }
}

/// The proper subsets of `0..k`, each in order: the masks from `2^k - 2` down to 0, dimension `i`
/// kept when bit `k - 1 - i` is set.
pub fn subsets(k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return Vec::new();
    }
    (0..(1u64 << k) - 1)
        .rev()
        .map(|mask| (0..k).filter(|&i| mask >> (k - 1 - i) & 1 == 1).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_keep_more_dimensions_first_and_end_with_the_grand_total() {
        assert_eq!(subsets(0), Vec::<Vec<usize>>::new());
        assert_eq!(subsets(1), vec![Vec::<usize>::new()]);
        assert_eq!(subsets(2), vec![vec![0], vec![1], vec![]]);
        assert_eq!(
            subsets(3),
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0],
                vec![1, 2],
                vec![1],
                vec![2],
                vec![]
            ]
        );
    }

    #[test]
    fn a_table_drawn_alone_sums_its_published_cells_and_counts_the_clamping() {
        // 2 x 3, noisy with two negative cells clamped to 0 (a shift of 3 + 2 in row 0).
        let noisy = [-3, 10, -2, 7, 8, 9];
        let published: Vec<i64> = noisy.iter().map(|&v: &i64| v.max(0)).collect();
        let s = Source::alone(vec![2, 3], published, &noisy, 4.0, 5);
        let m = s.margins(0.95);
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].keep.clone(), m[0].values.clone()),
            (vec![0], vec![10, 24])
        );
        assert_eq!(m[1].values, vec![7, 18, 9]);
        assert_eq!(m[2].values, vec![34]);
        let z = 1.959963984540054;
        // Rows: 3 cells of variance 4, shift 5 (row 0); columns: 2 cells, shift 3; total: 6
        // cells, shift 5.
        assert_eq!(
            m[0].margin_of_error,
            (z * 12f64.sqrt() + 5.0).floor() as i64
        );
        assert_eq!(m[1].margin_of_error, (z * 8f64.sqrt() + 3.0).floor() as i64);
        assert_eq!(
            m[2].margin_of_error,
            (z * 24f64.sqrt() + 5.0).floor() as i64
        );
        // A margin of one cell keeps the cell's exact margin.
        let one = Source::alone(vec![1, 2], vec![0, 5], &[-1, 5], 4.0, 5);
        assert_eq!(one.margin(&[1], 0.95).margin_of_error, 5);
    }
}
