//! The variance of a table cell of the generalised least-squares estimate, in closed form.
//!
//! Every table of a group is a marginal of the union table, and every table's noise is
//! independent with one variance per table. The union's space splits into orthogonal subspaces
//! `V_S`, one per set `S` of union dimensions (the ANOVA, or Fourier, decomposition used for
//! marginals by Barak et al. 2007 and Ding et al. 2011): the part of a table that varies with
//! exactly the dimensions in `S`. Summing dimensions out maps `V_S` onto the same subspace of
//! every table that keeps all of `S`, scaling it by `sqrt(m_j)` (`m_j`: union cells per cell of
//! table `j`), and annihilates it in every other table. So the least-squares problem separates:
//! in `V_S`, each table `j` with `S ⊆ T_j` measures the same coordinates with independent noise
//! of variance `var_j / m_j`, and the estimate is their inverse-variance mean, of variance
//! `v_S = 1 / sum_{j: S ⊆ T_j} (m_j / var_j)` per coordinate. A cell of table `k` is the sum,
//! over `S ⊆ T_k`, of its `V_S` parts, and its variance is
//!
//! `sum_{S ⊆ T_k} m_k v_S prod_{d in S} (n_d - 1) / n_d prod_{d in T_k \ S} 1 / n_d`
//!
//! (the last two factors: the squared length of a cell's projection on `V_S`), the same for every
//! cell of the table. For a table alone this is `var_k`, as it must be.
//!
//! This is the variance of the unconstrained estimate. The non-negativity constraint is a
//! projection onto a convex set that holds the true table, which never increases the group's
//! weighted error as a whole; rounding moves a cell by less than its rounding tolerance.

use super::layout::Axes;

/// The variance of one cell of table `k`'s unconstrained estimate, for union dimensions of
/// `sizes` categories and tables `(axes, noise variance)`.
pub fn cell_variance(sizes: &[usize], tables: &[(&Axes, f64)], k: usize) -> f64 {
    marginal_variance(sizes, tables, &tables[k].0.0)
}

/// The variance of one cell of any marginal of the unconstrained estimate, over union
/// dimensions `own` (a table's, or one of its margins': the sum of its cells over the others),
/// for union dimensions of `sizes` categories and tables `(axes, noise variance)`.
pub fn marginal_variance(sizes: &[usize], tables: &[(&Axes, f64)], own: &[usize]) -> f64 {
    let union: f64 = sizes.iter().map(|&n| n as f64).product();
    let cells_per = |axes: &[usize]| union / axes.iter().map(|&d| sizes[d] as f64).product::<f64>();
    let m_k = cells_per(own);
    let mut total = 0.0;
    for mask in 0u64..(1u64 << own.len()) {
        let s: Vec<usize> = (0..own.len())
            .filter(|&i| mask >> i & 1 == 1)
            .map(|i| own[i])
            .collect();
        let precision: f64 = tables
            .iter()
            .filter(|(axes, _)| s.iter().all(|d| axes.0.contains(d)))
            .map(|(axes, var)| cells_per(&axes.0) / var)
            .sum();
        let shape: f64 = own
            .iter()
            .map(|&d| {
                let n = sizes[d] as f64;
                if s.contains(&d) {
                    (n - 1.0) / n
                } else {
                    1.0 / n
                }
            })
            .product();
        total += m_k * shape / precision;
    }
    total
}

/// The variance of the estimated grand total (the same for every table of the group: each is
/// summed from one union table): only the constant subspace `V_∅` survives the sum, so it is
/// `union cells * v_∅`, with `v_∅ = 1 / sum_j (m_j / var_j)` over every table.
pub fn total_variance(sizes: &[usize], tables: &[(&Axes, f64)]) -> f64 {
    marginal_variance(sizes, tables, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_alone_keeps_its_variance() {
        let t = Axes(vec![1, 0]);
        let v = cell_variance(&[3, 5, 2], &[(&t, 7.5)], 0);
        assert!((v - 7.5).abs() < 1e-12, "{v}");
    }

    #[test]
    fn the_total_of_a_table_alone_adds_its_cells_variances() {
        let t = Axes(vec![1, 0]);
        let v = total_variance(&[3, 5, 2], &[(&t, 7.5)]);
        assert!((v - 15.0 * 7.5).abs() < 1e-9, "{v}");
        // With the total also measured (variance 4), the inverse-variance mean.
        let total = Axes(vec![]);
        let v = total_variance(&[3, 5, 2], &[(&t, 7.5), (&total, 4.0)]);
        let want = 1.0 / (1.0 / 4.0 + 1.0 / (15.0 * 7.5));
        assert!((v - want).abs() < 1e-9, "{v} vs {want}");
    }

    #[test]
    fn a_total_measured_twice_is_the_inverse_variance_mean() {
        // The total (variance 4) and a 5-cell table (variance 1 per cell, so 5 for its sum).
        let total = Axes(vec![]);
        let by = Axes(vec![0]);
        let tables = [(&total, 4.0), (&by, 1.0)];
        let v = cell_variance(&[5], &tables, 0);
        let want = 1.0 / (1.0 / 4.0 + 1.0 / 5.0);
        assert!((v - want).abs() < 1e-12, "{v} vs {want}");
    }
}
