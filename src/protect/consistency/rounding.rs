//! Controlled rounding of a fitted union table: integers whose every published marginal stays
//! within 1 of the fitted value, found by microlp (pure-Rust branch and bound).
//!
//! Each union cell becomes its fitted value rounded down or up (a 0/1 variable). Every cell of
//! every table of the group, and the group's grand total, must then lie between the floor and
//! the ceiling of its fitted value: controlled rounding (Cox and Ernst 1982; Cox 1987). The
//! objective, the distance of the union cells from their fitted values, picks the closest such
//! rounding. A two-dimensional table with its margins always has a controlled rounding; three
//! and more dimensions may not. So the search widens: if no rounding within 1 is found within
//! [`NODE_LIMIT`] branch-and-bound nodes, every table cell may move by up to 2, then 3 (the
//! grand total always stays within 1). Failing
//! that, or when more than [`MAX_OPEN`] union cells are fractional (branch and bound then takes
//! minutes), the union cells are rounded cumulatively in their order (each cell is the rounded
//! running sum minus the previous rounded running sum): the grand total, and every table of
//! leading union dimensions, stays within 1, and other tables move by what they move. What the
//! rounding reached is reported, and each table's largest shift enters its margin of error. A
//! node limit, not a time limit, bounds the search, so the result is the same on every machine.

use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem, SolveOptions, Variable};

use super::layout::Layout;

/// Branch-and-bound nodes allowed for each tolerance.
pub const NODE_LIMIT: u64 = 500;

/// The most fractional union cells given to branch and bound.
pub const MAX_OPEN: usize = 5_000;

/// A fitted value this close to an integer is that integer (the QP is solved to about 1e-8).
const SNAP: f64 = 1e-6;

/// How far the published cells may be from their fitted values after rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// Every published cell moved by less than 1 + the value, the grand total by less than 1.
    Within(u32),
    /// Cumulative rounding: the grand total within 1, other cells by their measured shifts.
    Cumulative,
}

/// The integer union table and the tolerance it meets.
pub(super) struct Rounded {
    pub union: Vec<i64>,
    pub tolerance: Tolerance,
}

/// The floor and ceiling of `v`, or `v` twice when it is (within [`SNAP`] of) an integer.
fn floor_ceil(v: f64) -> (f64, f64) {
    let r = v.round();
    if (v - r).abs() < SNAP {
        (r, r)
    } else {
        (v.floor(), v.ceil())
    }
}

/// Rounds the fitted union table `x`, given every table of the group fitted (`fitted[j]`).
pub(super) fn round(layout: &Layout, x: &[f64], fitted: &[Vec<f64>]) -> Rounded {
    let (base, open): (Vec<f64>, Vec<bool>) = x
        .iter()
        .map(|&v| {
            let (lo, hi) = floor_ceil(v);
            (lo, lo != hi)
        })
        .unzip();
    // Every constraint: the union cells it adds, its fitted value, and whether it may widen (the
    // grand total never does).
    let mut sums: Vec<(Vec<usize>, f64, bool)> = Vec::new();
    for (j, cells) in fitted.iter().enumerate() {
        for (members, &v) in layout.members(j).into_iter().zip(cells) {
            sums.push((members, v, true));
        }
    }
    sums.push(((0..x.len()).collect(), x.iter().sum(), false));
    if open.iter().filter(|&&o| o).count() <= MAX_OPEN {
        for widen in 0..3u32 {
            if let Some(union) = solve(x, &base, &open, &sums, f64::from(widen)) {
                return Rounded {
                    union,
                    tolerance: Tolerance::Within(widen),
                };
            }
        }
    }
    Rounded {
        union: round_cumulatively(x),
        tolerance: Tolerance::Cumulative,
    }
}

/// The closest rounding with every sum within `widen` of its floor and ceiling (the grand total
/// within its floor and ceiling), if branch and bound finds one within [`NODE_LIMIT`] nodes.
fn solve(
    x: &[f64],
    base: &[f64],
    open: &[bool],
    sums: &[(Vec<usize>, f64, bool)],
    widen: f64,
) -> Option<Vec<i64>> {
    let mut problem = Problem::new(OptimizationDirection::Minimize);
    let vars: Vec<Option<Variable>> = x
        .iter()
        .zip(base)
        .zip(open)
        .map(|((&v, &b), &open)| open.then(|| problem.add_binary_var(1.0 - 2.0 * (v - b))))
        .collect();
    for (members, value, widens) in sums {
        let (lo, hi) = floor_ceil(*value);
        let widen = if *widens { widen } else { 0.0 };
        let mut expr = LinearExpr::empty();
        let mut fixed = 0.0;
        let mut any = false;
        for &u in members {
            fixed += base[u];
            if let Some(v) = vars[u] {
                expr.add(v, 1.0);
                any = true;
            }
        }
        let (lo, hi) = (lo - widen - fixed, hi + widen - fixed);
        if !any {
            if lo > 0.0 || hi < 0.0 {
                return None;
            }
            continue;
        }
        if lo == hi {
            problem.add_constraint(expr, ComparisonOp::Eq, lo);
        } else {
            problem.add_constraint(expr.clone(), ComparisonOp::Ge, lo);
            problem.add_constraint(expr, ComparisonOp::Le, hi);
        }
    }
    let mut options = SolveOptions::default();
    options.node_limit = Some(NODE_LIMIT);
    let outcome = problem.solve_with(options).ok()?;
    let solution = outcome.solution()?;
    Some(
        base.iter()
            .zip(&vars)
            .map(|(&b, v)| {
                let up = v.map_or(0.0, |v| solution.var_value(v).round());
                (b + up) as i64
            })
            .collect(),
    )
}

/// The last resort: cumulative rounding. Cell `u` is `round(S_u) - round(S_{u-1})`, with `S_u`
/// the running sum, so any run of consecutive cells (the grand total, a table of leading
/// dimensions) moves by less than 1, and a non-negative table stays non-negative.
fn round_cumulatively(x: &[f64]) -> Vec<i64> {
    let mut running = 0.0;
    let mut previous = 0.0;
    x.iter()
        .map(|&v| {
            running += v;
            let r = (running + 0.5).floor();
            let cell = r - previous;
            previous = r;
            cell as i64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::layout::{Axes, Layout};
    use super::*;

    fn fitted(layout: &Layout, x: &[f64]) -> Vec<Vec<f64>> {
        (0..layout.cells.len())
            .map(|j| layout.marginal(j, x))
            .collect()
    }

    #[test]
    fn a_two_way_table_with_its_margins_is_rounded_within_one() {
        let sizes = [3, 4];
        let tables = [Axes(vec![0, 1]), Axes(vec![0]), Axes(vec![1]), Axes(vec![])];
        let layout = Layout::new(&sizes, &tables.iter().collect::<Vec<_>>());
        let x = [0.5, 1.5, 2.25, 0.75, 3.4, 0.6, 0.0, 7.0, 1.1, 1.9, 2.5, 0.5];
        let fitted = fitted(&layout, &x);
        let r = round(&layout, &x, &fitted);
        assert_eq!(r.tolerance, Tolerance::Within(0));
        for (j, table) in fitted.iter().enumerate() {
            let rounded = layout.marginal_exact(j, &r.union);
            for (&f, &v) in table.iter().zip(&rounded) {
                assert!((v as f64 - f).abs() < 1.0, "table {j}: {v} from {f}");
            }
        }
        assert_eq!(r.union[6], 0);
        assert_eq!(r.union[7], 7);
    }

    /// Three 2x2x2 margins and the one-way margins, fitted at 1/2 on the cells of even parity:
    /// every one-way cell is exactly 1, so one cell of each pair of complementary values would
    /// have to be kept, and no two even cells differ in every coordinate. No controlled rounding
    /// exists; the widened search finds one within 2.
    #[test]
    fn a_table_without_a_controlled_rounding_widens_and_says_so() {
        let sizes = [2, 2, 2];
        let tables = [
            Axes(vec![0, 1]),
            Axes(vec![0, 2]),
            Axes(vec![1, 2]),
            Axes(vec![0]),
            Axes(vec![1]),
            Axes(vec![2]),
        ];
        let layout = Layout::new(&sizes, &tables.iter().collect::<Vec<_>>());
        let x: Vec<f64> = (0..8u32)
            .map(|u| if u.count_ones() % 2 == 0 { 0.5 } else { 0.0 })
            .collect();
        let fitted = fitted(&layout, &x);
        let r = round(&layout, &x, &fitted);
        assert_eq!(r.tolerance, Tolerance::Within(1));
        assert_eq!(r.union.iter().sum::<i64>(), 2);
        for (j, table) in fitted.iter().enumerate() {
            for (&f, &v) in table.iter().zip(&layout.marginal_exact(j, &r.union)) {
                assert!((v as f64 - f).abs() < 2.0, "table {j}: {v} from {f}");
            }
        }
    }

    #[test]
    fn cumulative_rounding_keeps_every_run_of_cells_within_one() {
        let x = [0.5, 0.5, 0.5, 0.5, 2.0, 0.3, 0.3, 0.3, 7.9, 0.0];
        let r = round_cumulatively(&x);
        assert!(r.iter().all(|&v| v >= 0), "{r:?}");
        for a in 0..x.len() {
            for b in a + 1..=x.len() {
                let fitted: f64 = x[a..b].iter().sum();
                let rounded: i64 = r[a..b].iter().sum();
                assert!((rounded as f64 - fitted).abs() < 1.0, "{a}..{b}: {r:?}");
            }
        }
    }
}
