//! The weighted least-squares fit of a group's union table to its noisy tables, solved by
//! Clarabel (an interior-point solver for convex quadratic programs, Goulart and Chen 2024).
//!
//! Minimises `sum_j sum_c (t_j(x)_c - y_jc)^2 / var_j` over the union table `x`, with `x >= 0`
//! when the statistic cannot be negative. `t_j(x)` is table `j` summed from `x`, `y_j` its noisy
//! cells and `var_j` the variance of its noise. Weighting each measurement by its inverse
//! variance is generalised least squares with a diagonal covariance (the noise of different
//! cells and tables is independent): without the constraint it is the best linear unbiased
//! estimate; the constraint is the non-negative least-squares step of the US Census Bureau's
//! TopDown algorithm (Abowd et al. 2022) and of Tumult's post-processing.
//!
//! As a sparse QP: besides `x`, a variable for every cell of every marginal on the way from the
//! union to each table, one dimension summed out at a time (a table of the dimensions `S` is
//! defined from the table of `S` plus one dimension: each row adds at most one dimension's
//! categories), and a residual `r` per published cell. Objective `1/2 sum w r^2`; equalities
//! define the marginals and `t_j - r = y_j`; `x >= 0`. Summing out one dimension at a time keeps
//! every row short, so the solver's factorisation stays sparse (a grand total written directly
//! over a 2,142-cell union made it take two seconds instead of milliseconds). A tiny ridge on
//! `x` (1e-9 of the largest weight) picks one union table among the many with the same
//! marginals, so the result does not depend on the solver's path.

use std::collections::BTreeMap;

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus,
    SupportedConeT, ZeroConeT,
};

use super::layout::{Axes, Layout};

/// The QP's equality rows, built up as triplets.
struct Rows {
    rows: Vec<usize>,
    cols: Vec<usize>,
    vals: Vec<f64>,
    b: Vec<f64>,
}

impl Rows {
    fn push(&mut self, entries: &[(usize, f64)], rhs: f64) {
        let row = self.b.len();
        for &(col, val) in entries {
            self.rows.push(row);
            self.cols.push(col);
            self.vals.push(val);
        }
        self.b.push(rhs);
    }
}

/// The marginal tables, keyed by their (sorted) union dimensions, each a block of variables.
struct Marginals<'a> {
    sizes: &'a [usize],
    /// Dimensions -> first variable; the union table (all dimensions) is variables `0..n`.
    start: BTreeMap<Vec<usize>, usize>,
    next: usize,
}

impl Marginals<'_> {
    fn cells(&self, dims: &[usize]) -> usize {
        dims.iter().map(|&d| self.sizes[d]).product()
    }

    /// The first variable of the marginal over `dims` (sorted), defining it, and the marginals
    /// it is summed from, as needed.
    fn of(&mut self, dims: &[usize], eq: &mut Rows) -> usize {
        if let Some(&s) = self.start.get(dims) {
            return s;
        }
        // Summed from the marginal with one more dimension: the first missing one.
        let extra = (0..self.sizes.len())
            .find(|d| !dims.contains(d))
            .expect("the union itself is always defined");
        let mut finer = dims.to_vec();
        finer.push(extra);
        finer.sort_unstable();
        let from = self.of(&finer, eq);
        let start = self.next;
        self.next += self.cells(dims);
        self.start.insert(dims.to_vec(), start);
        let finer_sizes: Vec<usize> = finer.iter().map(|&d| self.sizes[d]).collect();
        let keep = Axes(
            dims.iter()
                .map(|d| finer.iter().position(|f| f == d).expect("a finer dim"))
                .collect(),
        );
        let map = Layout::new(&finer_sizes, &[&keep]);
        let mut members = vec![vec![(0usize, 0.0f64); 0]; self.cells(dims)];
        for (f, &c) in map.cell_of[0].iter().enumerate() {
            members[c as usize].push((from + f, -1.0));
        }
        for (c, mut entries) in members.into_iter().enumerate() {
            entries.push((start + c, 1.0));
            eq.push(&entries, 0.0);
        }
        start
    }

    /// A table's cells (in its own order, `axes`) as variables of its sorted marginal, defined
    /// as needed.
    fn cells_of(&mut self, axes: &Axes, eq: &mut Rows) -> Vec<usize> {
        let mut dims = axes.0.clone();
        dims.sort_unstable();
        let start = self.of(&dims, eq);
        let dim_sizes: Vec<usize> = dims.iter().map(|&d| self.sizes[d]).collect();
        // The table's own order is a permutation of the sorted marginal's cells.
        let own = Axes(
            axes.0
                .iter()
                .map(|d| dims.iter().position(|s| s == d).expect("own dim"))
                .collect(),
        );
        let perm = Layout::new(&dim_sizes, &[&own]);
        let mut vars = vec![0usize; perm.cells[0]];
        for (sorted, &c) in perm.cell_of[0].iter().enumerate() {
            vars[c as usize] = start + sorted;
        }
        vars
    }
}

/// Minimises `x' P x / 2` subject to `A x + s = b`, `s` in `cones`: the solution, or why there
/// is none.
fn solve(
    pm: &CscMatrix<f64>,
    a: &CscMatrix<f64>,
    b: &[f64],
    cones: &[SupportedConeT<f64>],
) -> Result<Vec<f64>, String> {
    let q = vec![0.0; pm.n];
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .build()
        .map_err(|e| format!("solver settings: {e:?}"))?;
    let mut solver = DefaultSolver::new(pm, &q, a, b, cones, settings)
        .map_err(|e| format!("the solver refused the problem: {e:?}"))?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => Ok(solver.solution.x),
        status => Err(format!(
            "the solver stopped without a solution ({status:?})"
        )),
    }
}

/// The fitted union table. `tables[j]` gives table `j`'s axes, `y[j]` its noisy cells and
/// `variance[j]` its noise variance.
pub(super) fn fit(
    sizes: &[usize],
    tables: &[&Axes],
    y: &[Vec<f64>],
    variance: &[f64],
    non_negative: bool,
) -> Result<Vec<f64>, String> {
    let n: usize = sizes.iter().product();
    // Scale values by the smallest noise standard deviation: weights in (0, 1], values near 1.
    let unit = variance
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .sqrt()
        .max(1e-6);
    let mut eq = Rows {
        rows: Vec::new(),
        cols: Vec::new(),
        vals: Vec::new(),
        b: Vec::new(),
    };
    let mut marginals = Marginals {
        sizes,
        start: BTreeMap::from([((0..sizes.len()).collect(), 0)]),
        next: n,
    };
    let cell_vars: Vec<Vec<usize>> = tables
        .iter()
        .map(|axes| marginals.cells_of(axes, &mut eq))
        .collect();
    let residuals = marginals.next;
    let mut weights = Vec::new();
    for (j, vars) in cell_vars.iter().enumerate() {
        for (c, &v) in vars.iter().enumerate() {
            let r = residuals + weights.len();
            eq.push(&[(v, 1.0), (r, -1.0)], y[j][c] / unit);
            weights.push(unit * unit / variance[j]);
        }
    }
    let vars = residuals + weights.len();
    let mut cones = vec![ZeroConeT(eq.b.len())];
    if non_negative {
        for u in 0..n {
            eq.push(&[(u, -1.0)], 0.0);
        }
        cones.push(NonnegativeConeT(n));
    }
    let a = CscMatrix::new_from_triplets(eq.b.len(), vars, eq.rows, eq.cols, eq.vals);
    let ridge = 1e-9 * weights.iter().copied().fold(0.0, f64::max);
    let mut diag_idx: Vec<usize> = (0..n).collect();
    diag_idx.extend(residuals..vars);
    let diag: Vec<f64> = std::iter::repeat_n(ridge, n).chain(weights).collect();
    let pm = CscMatrix::new_from_triplets(vars, vars, diag_idx.clone(), diag_idx, diag);
    let solution = solve(&pm, &a, &eq.b, &cones)?;
    let x = &solution[..n];
    if x.iter().any(|v| !v.is_finite()) {
        return Err("the solver returned a value that is not a number".into());
    }
    Ok(x.iter()
        .map(|&v| {
            let v = v * unit;
            if non_negative { v.max(0.0) } else { v }
        })
        .collect())
}
