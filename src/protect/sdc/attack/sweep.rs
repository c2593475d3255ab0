//! Many of the attacker's LPs over one component for little more than the cost of one: the
//! objective is a selector per target cell, and moving from one target to the next re-solves
//! from the last optimal basis instead of from scratch.
//!
//! microlp cannot change an LP's objective, but it can fix a variable and release it again, each
//! time re-solving from where it was (its dual simplex). So the LP is built once, with a selector
//! `s_c` per target cell `c`, maximising `s_1 + ... + s_n`, where `s_c <= x_c` (to maximise `x_c`)
//! or `s_c <= u_c - x_c` (to minimise it), and `0 <= s_c <= u_c`, `u_c` being the cell's upper
//! bound from single equations ([`super::propagated`]), never below its largest value.
//! With every selector fixed at zero but `s_t`, the optimum is `max x_t` (or `u_t - min x_t`): a
//! fixed selector only asks `x_c >= 0` (or `x_c <= u_c`), which every table satisfies. A target
//! without a finite `u_c` gets no selector: its LP is solved on its own (it may be unbounded).
//!
//! Measured on the benchmark's 40 x 12 x 4 table (686 hidden cells in one component): the 686
//! largest values in 1.9 s on one core, where solving each LP afresh took about 40 ms (BENCHMARKS.md).
//! The optimum does not depend on the path to it, so neither do the intervals. On microlp in
//! every build (HiGHS, with `--features highs`, solves the problems a sweep leaves).
//!
//! Tried and left: the same with whole-number cells, for the integer programs. microlp then
//! re-solves its branch and bound from the start at every fix: 95 s to fix the selectors of
//! 40 x 12 x 4 alone, against 0.55 s for the LP.

use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem, Solution, Variable};

use crate::protect::sdc::structure::Equation;

/// One component's LP, ready to optimise any of its target cells in one direction.
pub struct Sweep {
    /// `None` once the solver failed: every target is then solved on its own.
    solution: Option<Solution>,
    /// Per cell of the component (in member order), its variable.
    x: Vec<Variable>,
    /// Per cell of the component, its selector and upper bound, for targets with a finite one.
    selectors: Vec<Option<(Variable, f64)>>,
    /// The cell whose selector is free (the others are fixed at zero), once one is.
    selected: Option<usize>,
    maximise: bool,
}

impl Sweep {
    /// The LP of the component of `members` (sorted hidden cells) and its `equations`, with a
    /// selector for each member `targets` names whose upper bound in `limits` (per cell) is finite.
    /// `None` when no target has one, or the LP could not be solved (every target is then
    /// solved on its own, which reports why).
    pub fn new<'a>(
        members: &[usize],
        equations: impl Iterator<Item = &'a Equation>,
        (values, hidden, floors): (&[i64], &[bool], &[i64]),
        targets: &[usize],
        limits: &[(f64, f64)],
        maximise: bool,
    ) -> Option<Sweep> {
        let mut problem = Problem::new(OptimizationDirection::Maximize);
        let x: Vec<Variable> = members
            .iter()
            .map(|&c| problem.add_var(0.0, (floors[c] as f64, f64::INFINITY)))
            .collect();
        let mut selectors = vec![None; members.len()];
        for &t in targets {
            let (Ok(i), upper) = (members.binary_search(&t), limits[t].1) else {
                continue;
            };
            if !upper.is_finite() || selectors[i].is_some() {
                continue;
            }
            let s = problem.add_var(1.0, (0.0, upper));
            let mut lhs = LinearExpr::empty();
            lhs.add(s, 1.0);
            if maximise {
                lhs.add(x[i], -1.0); // s <= x
                problem.add_constraint(lhs, ComparisonOp::Le, 0.0);
            } else {
                lhs.add(x[i], 1.0); // s <= u - x
                problem.add_constraint(lhs, ComparisonOp::Le, upper);
            }
            selectors[i] = Some((s, upper));
        }
        if selectors.iter().all(Option::is_none) {
            return None;
        }
        for e in equations {
            // total - sum(parts) = 0, the published cells moved to the right-hand side.
            let mut lhs = LinearExpr::empty();
            let mut rhs = 0.0;
            for (c, sign) in e.terms() {
                if hidden[c] {
                    let i = members
                        .binary_search(&c)
                        .expect("hidden cells of the component");
                    lhs.add(x[i], sign);
                } else {
                    rhs -= sign * values[c] as f64;
                }
            }
            problem.add_constraint(lhs, ComparisonOp::Eq, rhs);
        }
        let solution = problem.solve().ok()?.into_solution().ok()?;
        Some(Sweep {
            solution: Some(solution),
            x,
            selectors,
            selected: None,
            maximise,
        })
    }

    /// The optimum of the `i`th member and the optimal table (the members' values in order), or
    /// `None` when it has no selector or the solver failed (solve it on its own).
    pub fn optimum(&mut self, i: usize) -> Option<(f64, Vec<f64>)> {
        let (s, upper) = self.selectors[i]?;
        let mut solution = self.solution.take()?;
        // The first time, every other selector is fixed at zero; later only the last one.
        let others: Vec<Variable> = match self.selected {
            None => (0..self.selectors.len())
                .filter(|&j| j != i)
                .filter_map(|j| self.selectors[j].map(|x| x.0))
                .collect(),
            Some(j) if j == i => Vec::new(),
            Some(j) => vec![self.selectors[j].expect("selected").0],
        };
        for v in others {
            solution = solution.fix_var(v, 0.0).ok()?.into_solution().ok()?;
        }
        if self.selected.is_some_and(|j| j != i) {
            solution = solution.unfix_var(s).ok()?.0.into_solution().ok()?;
        }
        self.selected = Some(i);
        let reached = solution.var_value(s);
        let table = self.x.iter().map(|&v| solution.var_value(v)).collect();
        self.solution = Some(solution);
        let value = if self.maximise {
            reached
        } else {
            upper - reached
        };
        Some((value, table))
    }
}
