//! Secondary suppression: the cells to hide besides the primary ones, so that the attacker's
//! interval for every primary cell reaches its protection levels.
//!
//! The method is the classic LP heuristic for the Fischetti-Salazar model. For each primary cell
//! `p` and each direction, the attacker can push `p` up by its upper protection level `U` (down by
//! its lower one `L`) exactly when some change `y` of the hidden cells keeps every equation,
//! keeps every cell non-negative and moves `p` by that much. So: find the cheapest such change
//! over all cells, where changing a hidden cell is free and changing a visible one costs its
//! weight per unit (1 per cell, or the cell's value plus 1, as the policy's objective says), and
//! hide every visible cell the change uses. The change then exists in the new pattern, so `p` is
//! protected in that direction, and hiding more cells later never undoes it. Primary cells are
//! handled in cell order, and a direction the current pattern already protects is skipped. Zero
//! cells are never hidden as secondaries (as the peers do by default); visible zeros stay fixed.
//!
//! Every pattern is then checked by the attacker's problem with whole numbers
//! ([`crate::protect::sdc::attack`]); the LP's change may be fractional where the structure is not totally
//! unimodular (three or more dimensions), so a primary cell still short of its levels is
//! protected again with its level raised by the shortfall, a few rounds at most.
//!
//! Deterministic: the LPs are built in a fixed order from the structure's sorted equations and
//! the same input gives the same pattern; ties between equally cheap changes are broken by a
//! weight that grows by one part in 10^7 with the cell's index (the earlier cell is preferred);
//! counting cells, a cell's weight also grows by up to 1% with its value, so that among patterns
//! of as many cells the one hiding less is preferred.

use good_lp::{Expression, ProblemVariables, Solution, SolverModel, Variable, variable};

use super::{Levels, Objective, SecondaryError};
use crate::protect::sdc::attack::{Components, Seen};
use crate::protect::sdc::structure::Structure;

/// Hides cells besides `hidden`'s (the primary ones, modified in place) until every primary cell
/// `(cell, levels)` is protected in both directions by the continuous attacker's problem; cells
/// `published` before are never hidden.
pub fn suppress(
    structure: &Structure,
    values: &[i64],
    published: &[bool],
    hidden: &mut [bool],
    primary: &[(usize, Levels)],
    objective: Objective,
) -> Result<(), SecondaryError> {
    for &(p, levels) in primary {
        for (direction, need) in [(1.0, levels.up), (-1.0, levels.down)] {
            if need <= 0 {
                continue;
            }
            let components = Components::new(structure, hidden);
            if reaches(
                &components,
                structure,
                values,
                hidden,
                p,
                direction > 0.0,
                need,
            ) {
                continue;
            }
            let change = cheapest_change(
                structure,
                values,
                published,
                hidden,
                p,
                direction * need as f64,
                objective,
            )?;
            for (c, &moved) in change.iter().enumerate() {
                if moved && !hidden[c] {
                    hidden[c] = true;
                }
            }
        }
    }
    Ok(())
}

/// Whether the continuous attacker can move `p` by `need` up (or down) in the pattern `hidden`
/// (whose `components` these are): one LP over `p`'s component.
pub(super) fn reaches(
    components: &Components,
    structure: &Structure,
    values: &[i64],
    hidden: &[bool],
    p: usize,
    up: bool,
    need: i64,
) -> bool {
    let mut seen = Seen::none(structure.cells());
    match components.bound(structure, values, hidden, p, up, false, &mut seen) {
        Ok((Some(v), _)) if up => v >= (values[p] + need) as f64 - 1e-6,
        Ok((Some(v), _)) => v <= (values[p] - need) as f64 + 1e-6,
        Ok((None, _)) => up,
        Err(_) => false,
    }
}

/// The cheapest change of the table that moves `p` by `delta` and keeps every equation and every
/// cell non-negative: which cells it moves.
fn cheapest_change(
    structure: &Structure,
    values: &[i64],
    published: &[bool],
    hidden: &[bool],
    p: usize,
    delta: f64,
    objective: Objective,
) -> Result<Vec<bool>, SecondaryError> {
    let n = structure.cells();
    let largest = values.iter().copied().max().unwrap_or(0).max(0) as f64 + 1.0;
    let mut vars = ProblemVariables::new();
    // y = up - down for every cell; a visible zero cannot move.
    let (mut up, mut down): (Vec<Variable>, Vec<Variable>) =
        (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut cost = Expression::from(0.0);
    for c in 0..n {
        let fixed = !hidden[c]
            && ((values[c] == 0 && !structure.zero_hideable(c)) || published[c])
            && c != p;
        let max_up = if fixed { 0.0 } else { f64::INFINITY };
        // Down to the cell's floor (0, or 1 for a count whose zeros are never hidden).
        let max_down = if fixed {
            0.0
        } else {
            (values[c] - structure.floor(c)).max(0) as f64
        };
        let u = vars.add(variable().min(0.0).max(max_up));
        let d = vars.add(variable().min(0.0).max(max_down));
        if !hidden[c] {
            // Counting cells, a smaller cell is preferred among as many (by at most 1%).
            let base = match objective {
                Objective::Cells => 1.0 + 0.01 * values[c] as f64 / largest,
                Objective::Value => values[c] as f64 + 1.0,
            };
            let w = base * (1.0 + 1e-7 * c as f64 / n as f64);
            cost += w * u + w * d;
        }
        up.push(u);
        down.push(d);
    }
    // microlp: on these LPs (thousands of columns, a few hundred equations, a warm-free start)
    // it solves in about a millisecond where HiGHS through good_lp takes 0.4 s (BENCHMARKS.md).
    let mut model = vars.minimise(cost).using(good_lp::microlp);
    for e in structure.equations() {
        let mut lhs: Expression = up[e.total] - down[e.total];
        for &q in &e.parts {
            lhs -= up[q] - down[q];
        }
        model = model.with(lhs.eq(0.0));
    }
    model = model.with((up[p] - down[p]).eq(delta));
    let solution = model.solve().map_err(|e| SecondaryError {
        cell: p,
        message: format!("no change of the table moves it by {delta}: {e}"),
    })?;
    Ok((0..n)
        .map(|c| c != p && solution.value(up[c]) + solution.value(down[c]) > 1e-7)
        .collect())
}
