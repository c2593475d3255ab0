//! Secondary suppression at its exact minimum: Fischetti and Salazar's integer program, solved by
//! cut generation (Fischetti, M. and Salazar González, J.-J. (2000), "Models and algorithms for
//! optimizing cell suppression in tabular data with linear constraints", JASA 95).
//!
//! One 0/1 variable `x_c` per cell that may become a secondary (visible, not published before,
//! not zero); the primary cells and those hidden before are hidden. Minimise the cells hidden (or
//! the value, as the policy says) subject to: for every primary cell `p` and direction, the
//! attacker's linear program over the hidden cells moves `p` by its protection level. That
//! program, `max ±y_p` subject to `M y = 0` and `-a_c x_c <= y_c <= B x_c` (a hidden cell may fall
//! to zero or rise by up to `B`, the largest value plus one; a visible one is fixed), reaches the
//! level `need` exactly when every solution `(g, alpha, beta >= 0)` of its dual,
//! `M' g + alpha - beta = ±e_p`, has `sum_c (B alpha_c + a_c beta_c) x_c >= need`. Those are the
//! cuts. The master problem starts with the cuts every equation through a primary cell gives (one
//! more of its cells must be hidden), and each round solves it, asks the attacker about every
//! primary cell in the pattern found, and adds the dual's cut for every cell still short (its
//! coefficients capped at `need`). A pattern that satisfies every cut met so far and protects every
//! primary cell is the minimum: the cuts are valid for every pattern that protects them.
//!
//! Bounding a hidden cell's rise by `B` only makes the modelled attacker stronger than the real
//! one, whose intervals are unbounded above: a pattern protected here is protected there. Whole
//! numbers are left to the audit, as for the heuristic ([`crate::protect::sdc::protect_cells`] raises a level
//! where they narrow an interval and solves again).
//!
//! The duals of one check differ only in their right-hand side, so each component's are one LP
//! re-solved from ask to ask ([`dual_cuts`]); on 17 x 7 x 2 (one component) that took its 18
//! duals from 28 ms, solved afresh on both cores, to 16 ms on one (measured with a temporary timer). Any feasible dual gives a valid cut, so a cut's
//! validity never depends on the basis it was reached from.
//!
//! Each round asks the continuous attacker (LPs, in parallel) about every primary cell; where an
//! LP's optimum is a whole-number table (always in two-way tables) its interval is the audit's, so
//! the release's audit does not solve it again.
//!
//! Deterministic: no time limit ever decides the result. The method is tried only on structures
//! of at most [`MAX_CANDIDATES`] candidate cells and [`MAX_PRIMARY`] primary cells, for at most
//! [`MAX_ROUNDS`] rounds of at most [`NODE_LIMIT`] branch-and-bound nodes each; out of rounds, its
//! last pattern (a lower bound on any protecting pattern's cost) is completed by
//! [`super::heuristic`]'s heuristic for the cells it leaves short; beyond the limits the heuristic
//! chooses the whole pattern; the manifest says which happened. The master problem is solved by
//! microlp in every build, so the pattern does not depend on the build. Among patterns of as many
//! cells the one hiding less value is preferred (tie-break weights of under one cell in total);
//! ties left after that are the solver's deterministic choice.

use std::collections::BTreeMap;

use super::{Levels, Objective, SecondaryError};
use crate::protect::sdc::SdcError;
use crate::protect::sdc::attack::{Components, Interval, continuous};
use crate::protect::sdc::solver::by_core;
use crate::protect::sdc::structure::{Equation, Structure};

/// The most cells that may become secondaries for the exact method.
pub const MAX_CANDIDATES: usize = 20_000;
/// The most primary cells for the exact method.
pub const MAX_PRIMARY: usize = 2_000;
/// The most master problems (rounds of cuts) before the exact method's last pattern is completed
/// by the heuristic.
pub const MAX_ROUNDS: usize = 40;
/// The checks of every primary cell a structure is allowed, counted in checks of one cell: this
/// many full checks of [`MAX_ROUNDS`] primary cells or more (a round checks only the cells short
/// in the last one until those are protected). Scaled so that a small structure, whose every
/// check is full, is never stopped before its rounds run out: a table with one small cell may need
/// 19 rounds (a full check each) to reach its minimum of 3.
pub const MAX_FULL_CHECKS: usize = 6;
/// The most branch-and-bound nodes of one master problem before the exact method gives way to
/// the heuristic (a deterministic limit, unlike a time limit).
pub const NODE_LIMIT: u64 = 2_000;

/// A dual's weight on cells the pattern leaves visible, divided by `B`: small, so that among the
/// attacker's dual solutions the one with the smallest coefficients on cells not yet hidden (the
/// strongest cut) is chosen. The weighted dual is the attacker's where a visible cell may move
/// by the weight times its bounds, so the weight must keep that move far below one: with a
/// weight of 1e-4 undivided, a visible cell could rise by `1e-4 B` (5.4 on the benchmark's
/// 40 x 12 x 4, whose grand total is 53,999), the weighted attacker reached levels the real one
/// did not, and its cuts no longer separated the pattern (every round fell back to the
/// combinatorial cut).
const VISIBLE: f64 = 1e-4;

/// A primary cell short of its level in one direction, which asks for a cut: `(cell, up, need)`.
type Ask = (usize, bool, i64);

/// One cut: `sum(coefficient * x[candidate]) >= rhs`.
#[derive(Debug, Clone)]
struct Cut {
    terms: Vec<(usize, f64)>,
    rhs: f64,
}

/// Hides the fewest cells (or the least value) besides `hidden`'s (the primary ones and those
/// hidden before; modified in place) so that every primary cell `(cell, levels)` is protected in
/// both directions by the continuous attacker; cells `published` before are never hidden, nor are
/// zeros, unless the structure says a zero may be ([`Structure::zero_hideable`]). Returns the primary cells whose interval in the pattern is already the attacker's with
/// whole numbers (as [`crate::protect::sdc::attack()`] would find it), with their intervals, for the audit not
/// to solve again; the others may still fall short where only whole numbers narrow their
/// interval. When the rounds run out, `hidden` holds the last round's pattern, which satisfies
/// every cut met: no pattern that protects every primary cell costs less. At most `rounds`
/// master problems ([`MAX_ROUNDS`] for a release).
pub fn suppress(
    structure: &Structure,
    values: &[i64],
    published: &[bool],
    hidden: &mut [bool],
    primary: &[(usize, Levels)],
    objective: Objective,
    rounds: usize,
) -> Result<Exact, SdcError> {
    let candidate: Vec<bool> = (0..structure.cells())
        .map(|c| !hidden[c] && !published[c] && (values[c] != 0 || structure.zero_hideable(c)))
        .collect();
    let candidates = candidate.iter().filter(|&&c| c).count();
    if candidates > MAX_CANDIDATES || primary.len() > MAX_PRIMARY {
        return Ok(Exact::Beyond);
    }
    let separator = Separator {
        structure,
        values,
        primary,
        equations: structure.equations().collect(),
        candidate,
        big: values.iter().copied().max().unwrap_or(0).max(0) as f64 + 1.0,
    };
    let Some(mut cuts) = separator.first_cuts(hidden) else {
        return Ok(Exact::Beyond); // the heuristic names the cell that cannot be protected
    };
    // Each round checks first the primary cells the last check found short, and every primary
    // cell only once those are protected: a new pattern mostly fails where the last one did.
    let everyone: Vec<usize> = (0..primary.len()).collect();
    let mut current: Option<(Vec<bool>, Vec<usize>)> = None;
    let mut last = None;
    let mut suspects = everyone.clone();
    let (mut masters, mut checked) = (0, 0);
    let check_budget = MAX_FULL_CHECKS * everyone.len().max(MAX_ROUNDS);
    loop {
        if current.is_none() {
            if masters == rounds {
                break;
            }
            masters += 1;
            let Some(chosen) = master(values, &cuts, objective) else {
                break; // beyond the node limit, or infeasible
            };
            let mut pattern = hidden.to_vec();
            for &c in &chosen {
                pattern[c] = true;
            }
            current = Some((pattern, chosen));
        }
        let (pattern, _) = current.as_ref().expect("solved above");
        let full = suspects.len() == everyone.len();
        if full {
            if checked + everyone.len() > check_budget {
                break;
            }
            checked += everyone.len();
        }
        let found = separator.check(pattern, &suspects)?;
        if found.short.is_empty() {
            if full {
                hidden.copy_from_slice(pattern);
                return Ok(Exact::Minimum(found.known));
            }
            suspects = everyone.clone(); // the same pattern, every cell
            continue;
        }
        cuts.extend(found.cuts);
        suspects = found.short;
        last = current.take();
    }
    // Out of rounds (or nodes): the latest pattern is a bound, for the heuristic to complete on
    // the cells it leaves short.
    let Some((pattern, chosen)) = current.or(last) else {
        return Ok(Exact::Beyond);
    };
    let found = separator.check(&pattern, &everyone)?;
    hidden.copy_from_slice(&pattern);
    if found.short.is_empty() {
        return Ok(Exact::Minimum(found.known));
    }
    let at_least = match objective {
        Objective::Cells => chosen.len() as i64,
        Objective::Value => chosen.iter().map(|&c| values[c]).sum(),
    };
    let short = found.short.iter().map(|&i| primary[i]).collect();
    Ok(Exact::Bound { at_least, short })
}

/// What one check of a pattern found: the primary cells short (indices into the primary list),
/// the cuts they ask for, and the others' intervals where they are the audit's.
#[derive(Default)]
struct Check {
    short: Vec<usize>,
    cuts: Vec<Cut>,
    known: Vec<(usize, Interval)>,
}

/// The separation of the master problem's patterns (checking one, and finding the cuts it
/// violates) and what it needs: the structure and its values, the primary cells with their
/// levels, the structure's equations, which cells may become secondaries, and `big` (the largest
/// value plus one, how far a hidden cell may rise in the modelled attack).
struct Separator<'a> {
    structure: &'a Structure,
    values: &'a [i64],
    primary: &'a [(usize, Levels)],
    equations: Vec<&'a Equation>,
    candidate: Vec<bool>,
    big: f64,
}

impl Separator<'_> {
    /// The cuts every equation through a primary cell gives: it needs another hidden cell
    /// besides those `hidden` already, or it gives the cell away. `None` when one has no
    /// candidate left.
    fn first_cuts(&self, hidden: &[bool]) -> Option<Vec<Cut>> {
        let mut cuts = Vec::new();
        for &(p, _) in self.primary {
            for e in self
                .equations
                .iter()
                .filter(|e| e.terms().any(|(c, _)| c == p))
            {
                if e.terms().any(|(c, _)| c != p && hidden[c]) {
                    continue;
                }
                let terms: Vec<(usize, f64)> = e
                    .terms()
                    .filter(|&(c, _)| self.candidate[c])
                    .map(|(c, _)| (c, 1.0))
                    .collect();
                if terms.is_empty() {
                    return None;
                }
                cuts.push(Cut { terms, rhs: 1.0 });
            }
        }
        Some(cuts)
    }

    /// Asks the continuous attacker about primary cells `which` (indices into the primary list)
    /// in `pattern`: those short of a level, with the dual's cut for each short direction, and
    /// the others' intervals where they are the audit's.
    fn check(&self, pattern: &[bool], which: &[usize]) -> Result<Check, SdcError> {
        let (structure, values) = (self.structure, self.values);
        let cells: Vec<usize> = which.iter().map(|&i| self.primary[i].0).collect();
        let intervals = continuous(structure, values, pattern, &cells)?;
        let mut found = Check::default();
        let mut asks = Vec::new();
        for (&i, &(interval, whole)) in which.iter().zip(&intervals) {
            let (p, levels) = self.primary[i];
            let short = [
                (
                    true,
                    levels.up,
                    interval.hi.is_some_and(|hi| hi < values[p] + levels.up),
                ),
                (false, levels.down, interval.lo > values[p] - levels.down),
            ];
            if short.iter().any(|s| s.2) {
                found.short.push(i);
            } else if whole {
                found.known.push((p, interval));
            }
            asks.extend(
                short
                    .into_iter()
                    .filter(|s| s.2)
                    .map(|(up, need, _)| (p, up, need)),
            );
        }
        found.cuts = self.cuts_for(pattern, &asks)?;
        Ok(found)
    }

    /// The dual's cut for each of `asks` in `pattern`, in order: one dual LP per component, for
    /// its asks in order; the components on both cores (each wholly on one, so that a cut never
    /// depends on how many cores there are).
    fn cuts_for(&self, pattern: &[bool], asks: &[Ask]) -> Result<Vec<Cut>, SdcError> {
        let components = Components::new(self.structure, pattern);
        let mut by_component: BTreeMap<usize, Vec<(usize, Ask)>> = BTreeMap::new();
        for (n, &ask) in asks.iter().enumerate() {
            by_component
                .entry(components.component(ask.0))
                .or_default()
                .push((n, ask));
        }
        let groups: Vec<_> = by_component.into_values().collect();
        let mut made: Vec<(usize, Cut)> = by_core(&groups, 2, |part| {
            let mut made = Vec::new();
            for group in part {
                let asks: Vec<_> = group.iter().map(|g| g.1).collect();
                let cuts = dual_cuts(
                    &self.equations,
                    (self.values, self.structure.floors()),
                    &components,
                    (pattern, &self.candidate),
                    &asks,
                    self.big,
                )?;
                made.extend(group.iter().map(|g| g.0).zip(cuts));
            }
            Ok::<_, SecondaryError>(made)
        })?;
        made.sort_by_key(|m| m.0);
        Ok(made.into_iter().map(|m| m.1).collect())
    }
}

/// What the exact method found.
#[derive(Debug, Clone, PartialEq)]
pub enum Exact {
    /// The minimum, with the primary cells whose intervals the audit need not solve again.
    Minimum(Vec<(usize, Interval)>),
    /// Out of rounds: the pattern of the last round, short for some primary cell, whose
    /// secondary cells are a lower bound (their number, or value, as the objective says) on
    /// those of any pattern that protects every primary cell. `short`: the primary cells that
    /// pattern leaves short (hiding more cells protects the others still).
    Bound {
        at_least: i64,
        short: Vec<(usize, Levels)>,
    },
    /// Beyond the method's limits; nothing chosen.
    Beyond,
}

/// The master problem: the cheapest candidates to hide that satisfy every cut so far, `None`
/// when its branch and bound needs more than [`NODE_LIMIT`] nodes or no pattern satisfies them.
/// On microlp in every build (also with HiGHS for the attacker), so that a pattern never depends
/// on how safestat was built.
fn master(values: &[i64], cuts: &[Cut], objective: Objective) -> Option<Vec<usize>> {
    use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem, SolveOptions};
    // Only the candidates some cut names can be worth hiding.
    let mut named: BTreeMap<usize, Option<microlp::Variable>> = BTreeMap::new();
    for cut in cuts {
        for &(c, _) in &cut.terms {
            named.insert(c, None);
        }
    }
    let largest = named.keys().map(|&c| values[c]).max().unwrap_or(0).max(1) as f64;
    let share = 1.0 / (named.len() as f64 + 1.0);
    let mut problem = Problem::new(OptimizationDirection::Minimize);
    for (&c, x) in named.iter_mut() {
        // The tie-breaks of all cells together weigh less than one cell (or one unit of value).
        let w = match objective {
            Objective::Cells => 1.0 + share * values[c] as f64 / largest,
            Objective::Value => values[c] as f64 + share,
        };
        *x = Some(problem.add_binary_var(w));
    }
    for cut in cuts {
        let mut lhs = LinearExpr::empty();
        for &(c, k) in &cut.terms {
            lhs.add(named[&c].expect("added"), k);
        }
        problem.add_constraint(lhs, ComparisonOp::Ge, cut.rhs);
    }
    let mut options = SolveOptions::default();
    options.node_limit = Some(NODE_LIMIT);
    // Infeasible cuts (no pattern protects some cell: its neighbours were published before) or a
    // solver failure: the heuristic takes over and names the cell it cannot protect.
    let Ok(outcome) = problem.solve_with(options) else {
        return None;
    };
    if !outcome.is_optimal() {
        return None;
    }
    let solution = outcome.solution()?;
    Some(
        named
            .iter()
            .filter(|(_, x)| solution.var_value(x.expect("added")) > 0.5)
            .map(|(&c, _)| c)
            .collect(),
    )
}

/// The cuts that primary cells of one component ask for, each `(p, up, need)` short of `need` in
/// direction `up` in `pattern`: from the attacker's dual over the component (see the module's
/// documentation). The duals differ only in `p`'s right-hand side (1 or -1), so they are one LP
/// with a variable `z_p` on that side per asking cell, all fixed at zero but the one asking,
/// re-solved from the last basis from one ask to the next (as the attacker's `attack::sweep`).
fn dual_cuts(
    equations: &[&Equation],
    (values, floors): (&[i64], &[i64]),
    components: &Components,
    (pattern, candidate): (&[bool], &[bool]),
    asks: &[Ask],
    big: f64,
) -> Result<Vec<Cut>, SecondaryError> {
    use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem};
    let Some(&(first, ..)) = asks.first() else {
        return Ok(Vec::new());
    };
    let (members, involved) = components.of(first);
    let mut problem = Problem::new(OptimizationDirection::Minimize);
    // Per cell that can move (hidden, or a candidate), the dual's column: sum of g over its
    // equations with their signs.
    let mut column: BTreeMap<usize, LinearExpr> = BTreeMap::new();
    for &k in involved {
        let g = problem.add_var(0.0, (f64::NEG_INFINITY, f64::INFINITY));
        for (c, sign) in equations[k].terms() {
            if pattern[c] || candidate[c] {
                column
                    .entry(c)
                    .or_insert_with(LinearExpr::empty)
                    .add(g, sign);
            }
        }
    }
    let mut sides: BTreeMap<usize, microlp::Variable> = BTreeMap::new();
    for &(p, ..) in asks {
        sides
            .entry(p)
            .or_insert_with(|| problem.add_var(0.0, (-1.0, 1.0)));
    }
    let mut bounds = Vec::with_capacity(column.len());
    for (c, mut lhs) in column {
        let w = if pattern[c] { 1.0 } else { VISIBLE / big };
        let a = problem.add_var(w * big, (0.0, f64::INFINITY));
        // A hidden cell may fall to its floor (0, or 1 for a count whose zeros are never hidden).
        let fall = (values[c] - floors[c]).max(0) as f64;
        let b = problem.add_var(w * fall, (0.0, f64::INFINITY));
        lhs.add(a, 1.0);
        lhs.add(b, -1.0);
        if let Some(&z) = sides.get(&c) {
            lhs.add(z, -1.0); // the right-hand side, moved to the left
        }
        problem.add_constraint(lhs, ComparisonOp::Eq, 0.0);
        bounds.push((c, a, b));
    }
    let mut solution = settled(first, problem.solve())?;
    for (&p, &z) in &sides {
        solution = settled(p, solution.fix_var(z, 0.0))?;
    }
    let mut found = Vec::with_capacity(asks.len());
    for &(p, up, need) in asks {
        let z = sides[&p];
        solution = settled(p, solution.fix_var(z, if up { 1.0 } else { -1.0 }))?;
        let bound = |c: usize, a, b| {
            let fall = (values[c] - floors[c]).max(0) as f64;
            big * solution.var_value(a) + fall * solution.var_value(b)
        };
        let dual = bounds.iter().map(|&(c, a, b)| (c, bound(c, a, b)));
        found.push(
            cut_from(dual, need as f64, (pattern, candidate)).unwrap_or_else(|| {
                combinatorial(equations, members, involved, (pattern, candidate))
            }),
        );
        solution = settled(p, solution.fix_var(z, 0.0))?;
    }
    Ok(found)
}

/// A solve's outcome for cell `p`'s ask: stopped by a limit is a failure too (none is set).
fn settled(
    p: usize,
    outcome: Result<microlp::SolveOutcome, microlp::Error>,
) -> Result<microlp::Solution, SecondaryError> {
    let message = match outcome.map(microlp::SolveOutcome::into_solution) {
        Ok(Ok(solution)) => return Ok(solution),
        Ok(Err(_)) => "interrupted".to_string(),
        Err(e) => e.to_string(),
    };
    Err(SecondaryError {
        cell: p,
        message: format!("the attacker's dual could not be solved: {message}"),
    })
}

/// The cut a dual solution gives for a level `need`: per cell that can move, its coefficient
/// (`dual`: how far the attacker's bound on it reaches, capped at `need`), the cells hidden in
/// every pattern moved to the right-hand side. `None` when it does not separate `pattern` (the
/// pattern already meets it, or nothing is left to ask).
fn cut_from(
    dual: impl Iterator<Item = (usize, f64)>,
    need: f64,
    (pattern, candidate): (&[bool], &[bool]),
) -> Option<Cut> {
    let mut terms = Vec::new();
    let (mut rhs, mut at_pattern) = (need, 0.0);
    for (c, k) in dual {
        let k = k.min(need);
        if k < 1e-9 {
            continue;
        }
        if pattern[c] {
            at_pattern += k;
        }
        if candidate[c] {
            terms.push((c, k));
        } else {
            rhs -= k; // hidden in every pattern
        }
    }
    (at_pattern < need - 1e-6 && rhs > 1e-9).then_some(Cut { terms, rhs })
}

/// Where the dual's numbers do not separate the pattern: the combinatorial cut, that some cell of
/// the component (its `members`, in its `involved` equations) must change (a visible one of its
/// equations hidden, or a hidden one shown).
fn combinatorial(
    equations: &[&Equation],
    members: &[usize],
    involved: &[usize],
    (pattern, candidate): (&[bool], &[bool]),
) -> Cut {
    let mut terms: Vec<(usize, f64)> = Vec::new();
    let mut rhs = 1.0;
    for &k in involved {
        for (c, _) in equations[k].terms() {
            if candidate[c] && !pattern[c] && !terms.iter().any(|t| t.0 == c) {
                terms.push((c, 1.0));
            }
        }
    }
    for &c in members.iter().filter(|&&c| candidate[c]) {
        terms.push((c, -1.0));
        rhs -= 1.0;
    }
    Cut { terms, rhs }
}
