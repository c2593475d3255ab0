//! The attacker's problem: for a hidden cell, the smallest and the largest value consistent with
//! everything published (every visible cell, every equation of the structure, non-negativity, what
//! the rules make public: a hidden count is at least 1 where zeros are never hidden, each cell's
//! [`Structure::floor`], and that counts are whole numbers). Solved as linear programs through good_lp; where the LP's
//! optimal table is not whole numbers, whole numbers can only narrow the interval, and an
//! integer program decides by how much (see [`Components::bound`]). This is what `release`
//! checks before it writes a pattern and what `audit` re-runs from the published files, so it
//! never trusts how the pattern was chosen.
//!
//! Many problems are settled without a solve, exactly: each cell's bounds from single equations
//! ([`propagated`]) are never narrower than the attacker's, so where a table some other
//! problem's solution met already reaches one, that bound is the optimum ([`Seen`]); and the LPs
//! of one component are solved as one [`Sweep`], each re-solved from the last one's basis. On
//! the benchmark's 40 x 12 x 4 table (BENCHMARKS.md) the first took the release from 109 s to
//! 16 s, the second to 5 s, with the same pattern and intervals.

use good_lp::{
    Expression, ProblemVariables, ResolutionError, Solution, SolverModel, Variable, variable,
};

use std::collections::{BTreeMap, HashMap};

mod sweep;

use super::solver::{SOLVER, by_core};
use super::structure::{Equation, Structure};
use sweep::Sweep;

/// What the attacker can infer about one hidden cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub lo: i64,
    /// `None`: no upper bound can be inferred.
    pub hi: Option<i64>,
}

impl Interval {
    /// The interval's width, `None` when unbounded above.
    pub fn width(&self) -> Option<i64> {
        self.hi.map(|hi| hi - self.lo)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the attacker's problem for cell {cell} could not be solved: {message}")]
pub struct AttackError {
    pub cell: usize,
    pub message: String,
}

/// The hidden cells linked to each other through equations: an attacker's problem for one cell
/// involves only its component.
pub struct Components {
    /// Per cell, its component (hidden cells only).
    of: Vec<Option<usize>>,
    /// Per component, its cells and the equations that involve them.
    members: Vec<Vec<usize>>,
    equations: Vec<Vec<usize>>,
}

impl Components {
    pub fn new(structure: &Structure, hidden: &[bool]) -> Components {
        let n = structure.cells();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        let equations: Vec<_> = structure.equations().collect();
        for e in &equations {
            let mut cells = std::iter::once(e.total)
                .chain(e.parts.iter().copied())
                .filter(|&c| hidden[c]);
            if let Some(first) = cells.next() {
                for c in cells {
                    let (a, b) = (find(&mut parent, first), find(&mut parent, c));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
            }
        }
        let mut of = vec![None; n];
        let mut root_id: Vec<Option<usize>> = vec![None; n];
        let mut members: Vec<Vec<usize>> = Vec::new();
        for c in (0..n).filter(|&c| hidden[c]) {
            let r = find(&mut parent, c);
            let id = *root_id[r].get_or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            of[c] = Some(id);
            members[id].push(c);
        }
        let mut by_component = vec![Vec::new(); members.len()];
        for (k, e) in equations.iter().enumerate() {
            let hidden_cell = std::iter::once(e.total)
                .chain(e.parts.iter().copied())
                .find(|&c| hidden[c]);
            if let Some(c) = hidden_cell {
                by_component[of[c].expect("hidden")].push(k);
            }
        }
        Components {
            of,
            members,
            equations: by_component,
        }
    }
}

/// The attacker's interval for each of `targets` (hidden cells), given the true `values` of every
/// cell and which cells are `hidden`. Cells published elsewhere (an earlier release of the same
/// cells) are simply not hidden: their values are facts.
pub fn attack(
    structure: &Structure,
    values: &[i64],
    hidden: &[bool],
    targets: &[usize],
) -> Result<Vec<Interval>, AttackError> {
    let found = bounds(structure, values, hidden, targets, true)?;
    Ok(found.into_iter().map(|(i, _)| i).collect())
}

/// The continuous attacker's interval for each of `targets` (LPs only, rounded inwards to whole
/// numbers), and whether each LP's optimum was a whole-number table, in which case the interval is
/// also the attacker's with whole numbers ([`attack`]'s).
pub fn continuous(
    structure: &Structure,
    values: &[i64],
    hidden: &[bool],
    targets: &[usize],
) -> Result<Vec<(Interval, bool)>, AttackError> {
    bounds(structure, values, hidden, targets, false)
}

fn bounds(
    structure: &Structure,
    values: &[i64],
    hidden: &[bool],
    targets: &[usize],
    whole_numbers: bool,
) -> Result<Vec<(Interval, bool)>, AttackError> {
    let components = Components::new(structure, hidden);
    let limits = propagated(structure, values, hidden, 50);
    // The largest values first, for every target, then the least: the tables the maximisations
    // meet have many cells at zero, which settles those cells' least values without a solve.
    let some = |part: &[usize]| -> Result<Vec<(Interval, bool)>, AttackError> {
        let mut seen = Seen::new(limits.clone(), part);
        let mut highs = Vec::with_capacity(part.len());
        for &t in part {
            let (hi, whole) =
                components.bound(structure, values, hidden, t, true, whole_numbers, &mut seen)?;
            highs.push((hi.map(|v| (v + 1e-6).floor() as i64), whole));
        }
        part.iter()
            .zip(highs)
            .map(|(&t, (hi, whole_hi))| {
                let (lo, whole_lo) = components.bound(
                    structure,
                    values,
                    hidden,
                    t,
                    false,
                    whole_numbers,
                    &mut seen,
                )?;
                let lo = (lo.expect("a cell is bounded below by its floor") - 1e-6).ceil() as i64;
                Ok((Interval { lo, hi }, whole_lo && whole_hi))
            })
            .collect()
    };
    // The problems are independent: one slice of the targets per core, results in target order.
    by_core(targets, 16, some)
}

/// A bound on a cell rounded inwards to a whole number: down for its most (`maximise`), up for
/// its least (within 1e-6 of a whole number, that number).
fn rounded_in(v: f64, maximise: bool) -> f64 {
    if maximise {
        (v + 1e-6).floor()
    } else {
        (v - 1e-6).ceil()
    }
}

/// The tables an attacker cannot rule out that solving has met so far (each problem's optimal
/// table), per component, and whether each is whole numbers, with every cell's bounds from single
/// equations. They settle problems without a solve: where a table met has a cell at one of its
/// bounds (most often a least value of zero, no cell being negative), that bound is the cell's
/// optimum, and with whole numbers too when the table is whole (the bound rounded inwards); and a
/// whole-number table in which a cell has the LP's optimum proves that optimum the attacker's
/// with whole numbers. Exact either way: what they settle is the optimum a solve would find.
pub struct Seen {
    /// Each cell and whole number it has in a table met, and whether in a whole-number table
    /// (the values asked about are always whole: bounds from single equations and rounded
    /// optima; a table's fractional values are never asked about, so they are not kept).
    met: HashMap<(usize, i64), bool>,
    /// Per cell, the bounds single equations give ([`propagated`]).
    limits: Vec<(f64, f64)>,
    /// The cells that may be asked about, and per component and direction, its LP for them
    /// ([`Sweep`]; `None` where it could not be made).
    targets: Vec<usize>,
    sweeps: BTreeMap<(usize, bool), Option<Sweep>>,
}

impl Seen {
    /// For the problems of the `targets`' cells, with every cell's bounds from single equations
    /// ([`propagated`]; each component's LPs for the targets are solved by one [`Sweep`]).
    pub fn new(limits: Vec<(f64, f64)>, targets: &[usize]) -> Seen {
        Seen {
            met: HashMap::new(),
            limits,
            targets: targets.to_vec(),
            sweeps: BTreeMap::new(),
        }
    }

    /// The bound single equations give for `target` (its most with `maximise`, else its
    /// least), where a table met reaches it: then it is the optimum, and whether a whole-number
    /// table reaches it (with `whole_numbers`, the bound rounded inwards and only a whole table
    /// settles it).
    fn settled_by_limit(
        &self,
        target: usize,
        maximise: bool,
        whole_numbers: bool,
    ) -> Option<(Option<f64>, bool)> {
        let (lo, hi) = self.limits[target];
        let limit = if maximise { hi } else { lo };
        if !limit.is_finite() {
            return None;
        }
        if whole_numbers {
            let limit = rounded_in(limit, maximise);
            (self.attains(target, limit) == Some(true)).then_some((Some(limit), true))
        } else {
            let whole = self.attains(target, limit)?;
            Some((Some(limit), whole))
        }
    }

    /// For one problem of a structure of `cells` cells: nothing to settle it from, solved on its
    /// own.
    pub fn none(cells: usize) -> Seen {
        Seen::new(vec![(0.0, f64::INFINITY); cells], &[])
    }

    /// The LP optimum of the `i`th cell of component `k` and its optimal table from the
    /// component's [`Sweep`] (made the first time), `None` where it has none.
    fn swept(
        &mut self,
        components: &Components,
        structure: &Structure,
        (values, hidden): (&[i64], &[bool]),
        (k, i): (usize, usize),
        maximise: bool,
    ) -> Option<(f64, Vec<f64>)> {
        let (targets, limits) = (&self.targets, &self.limits);
        self.sweeps
            .entry((k, maximise))
            .or_insert_with(|| {
                let all: Vec<&Equation> = structure.equations().collect();
                Sweep::new(
                    &components.members[k],
                    components.equations[k].iter().map(|&e| all[e]),
                    (values, hidden, structure.floors()),
                    targets,
                    limits,
                    maximise,
                )
            })
            .as_mut()?
            .optimum(i)
    }

    /// Whether some table met has `cell` at `value`: `Some(true)` when a whole-number one does.
    fn attains(&self, cell: usize, value: f64) -> Option<bool> {
        if (value - value.round()).abs() > 1e-6 {
            return None;
        }
        self.met.get(&(cell, value.round() as i64)).copied()
    }

    /// Keeps what a `table` of the cells of component `k` (in member order) shows.
    fn meet(&mut self, components: &Components, k: usize, table: &[f64], whole: bool) {
        for (&c, &v) in components.members[k].iter().zip(table) {
            if (v - v.round()).abs() < 1e-6 {
                *self.met.entry((c, v.round() as i64)).or_insert(whole) |= whole;
            }
        }
    }
}

/// What one problem over a component found.
enum Outcome {
    /// The optimum, and the optimal table (its component's cells in member order).
    Optimum(f64, Vec<f64>),
    Unbounded,
    Infeasible,
}

/// What is asked of the target cell besides optimising it.
#[derive(Clone, Copy)]
enum Target {
    /// Nothing: the LP or integer program as it is.
    Free,
    /// A whole-number table with the cell at this value (an integer program whose objective
    /// cannot improve: its first whole-number table ends it).
    At(f64),
    /// The cell at most (maximising) or at least (minimising) this value: a bound the whole-number
    /// optimum is known to respect, which gives the integer program its optimum from the start.
    Within(f64),
}

impl Components {
    /// The component of hidden cell `c` (its number).
    pub fn component(&self, c: usize) -> usize {
        self.of[c].expect("a hidden cell")
    }

    /// The hidden cells linked to hidden cell `c` (sorted) and the equations involving them (as
    /// indices into [`Structure::equations`]'s order).
    pub fn of(&self, c: usize) -> (&[usize], &[usize]) {
        let k = self.of[c].expect("a hidden cell");
        (&self.members[k], &self.equations[k])
    }

    /// The least (or, with `maximise`, the largest) value of hidden cell `target` over tables
    /// that agree with every published cell, `None` when unbounded; with `whole_numbers`, over
    /// whole-number tables. And whether the optimum is also the attacker's with whole numbers
    /// (always with `whole_numbers`; unbounded counts as whole: whole numbers cannot bound it
    /// either). `seen`: the tables met so far (see [`Seen`]), to which this adds its own.
    ///
    /// With whole numbers, the LP first: its optimum rounded inwards bounds the whole-number
    /// one, and where the LP's optimal table is whole, or a whole-number table met or found by a
    /// feasibility program has the cell at that rounded optimum, the two are equal (in the
    /// benchmark's three-way tables they always were, though the LP's tables were fractional).
    /// Only otherwise the integer program, told the bound it cannot pass.
    #[allow(clippy::too_many_arguments)]
    pub fn bound(
        &self,
        structure: &Structure,
        values: &[i64],
        hidden: &[bool],
        target: usize,
        maximise: bool,
        whole_numbers: bool,
        seen: &mut Seen,
    ) -> Result<(Option<f64>, bool), AttackError> {
        let fail = |message: String| AttackError {
            cell: target,
            message,
        };
        let k = self.of[target].expect("the target is hidden");
        let i = self.members[k]
            .binary_search(&target)
            .expect("the target is in its component");
        if let Some(settled) = seen.settled_by_limit(target, maximise, whole_numbers) {
            return Ok(settled);
        }
        let solve = |integer: bool, asked: Target| {
            self.solve(structure, values, hidden, (k, i), maximise, integer, asked)
        };
        let swept = seen.swept(self, structure, (values, hidden), (k, i), maximise);
        let (lp, table) = match swept.map_or_else(
            || solve(false, Target::Free),
            |(v, t)| Ok(Outcome::Optimum(v, t)),
        )? {
            Outcome::Optimum(v, table) => (v, table),
            Outcome::Unbounded => return Ok((None, true)),
            Outcome::Infeasible => {
                return Err(fail("no table agrees with the published cells".into()));
            }
        };
        let whole = table.iter().all(|v| (v - v.round()).abs() < 1e-6);
        seen.meet(self, k, &table, whole);
        if whole || !whole_numbers {
            return Ok((Some(lp), whole));
        }
        let rounded = rounded_in(lp, maximise);
        let mut within = rounded;
        if (lp - rounded).abs() < 1e-6 {
            if seen.attains(target, rounded) == Some(true) {
                return Ok((Some(rounded), true));
            }
            match solve(true, Target::At(rounded))? {
                Outcome::Optimum(_, table) => {
                    seen.meet(self, k, &table, true);
                    return Ok((Some(rounded), true));
                }
                // No whole-number table reaches the LP's optimum: the attacker's is inside it.
                _ => {
                    within = if maximise {
                        rounded - 1.0
                    } else {
                        rounded + 1.0
                    }
                }
            }
        }
        match solve(true, Target::Within(within))? {
            Outcome::Optimum(v, table) => {
                seen.meet(self, k, &table, true);
                Ok((Some(v), true))
            }
            Outcome::Unbounded => Ok((None, true)),
            Outcome::Infeasible => Err(fail(
                "no whole-number table agrees with the published cells".into(),
            )),
        }
    }

    /// One problem over component `k`: the `i`th of its cells maximised (or minimised), as an
    /// LP or with `integer` cells, with what is `asked` of it.
    #[allow(clippy::too_many_arguments)]
    fn solve(
        &self,
        structure: &Structure,
        values: &[i64],
        hidden: &[bool],
        (k, i): (usize, usize),
        maximise: bool,
        integer: bool,
        asked: Target,
    ) -> Result<Outcome, AttackError> {
        let cells = &self.members[k];
        let target = cells[i];
        let mut vars = ProblemVariables::new();
        let x: Vec<Variable> = cells
            .iter()
            .map(|&c| {
                let v = variable().min(structure.floor(c) as f64);
                vars.add(if integer {
                    // microlp's integer variables need bounds within i32.
                    v.integer().max(f64::from(i32::MAX))
                } else {
                    v
                })
            })
            .collect();
        let at = |c: usize| cells.binary_search(&c).ok().map(|i| x[i]);
        let objective: Expression = x[i].into();
        let problem = if maximise {
            vars.maximise(objective)
        } else {
            vars.minimise(objective)
        };
        let mut model = problem.using(SOLVER);
        let all: Vec<_> = structure.equations().collect();
        for &e in &self.equations[k] {
            let e = all[e];
            // total - sum(parts) = 0, the published cells moved to the right-hand side.
            let mut lhs = Expression::from(0.0);
            let mut rhs = 0.0;
            let terms = e.terms();
            for (c, sign) in terms {
                if hidden[c] {
                    lhs += sign * at(c).expect("hidden cells of the component");
                } else {
                    rhs -= sign * values[c] as f64;
                }
            }
            model = model.with(lhs.eq(rhs));
        }
        match asked {
            Target::Free => {}
            Target::At(v) => model = model.with(Expression::from(x[i]).eq(v)),
            Target::Within(v) if maximise => model = model.with(Expression::from(x[i]).leq(v)),
            Target::Within(v) => model = model.with(Expression::from(x[i]).geq(v)),
        }
        let solution = match model.solve() {
            Ok(s) => s,
            Err(ResolutionError::Unbounded) => return Ok(Outcome::Unbounded),
            Err(ResolutionError::Infeasible) => return Ok(Outcome::Infeasible),
            Err(e) => {
                return Err(AttackError {
                    cell: target,
                    message: e.to_string(),
                });
            }
        };
        let table: Vec<f64> = x.iter().map(|&v| solution.value(v)).collect();
        Ok(Outcome::Optimum(table[i], table))
    }
}

/// Each cell's bounds as single equations give them, applied until they settle (at most
/// `passes` times over every equation): wider than (or as wide as) the attacker's interval,
/// never narrower. Published cells are fixed at their values; hidden ones start at
/// `[floor, inf)` (0, or 1 for a count whose zeros are never hidden).
pub fn propagated(
    structure: &Structure,
    values: &[i64],
    hidden: &[bool],
    passes: usize,
) -> Vec<(f64, f64)> {
    let mut b: Vec<(f64, f64)> = (0..structure.cells())
        .map(|c| {
            if hidden[c] {
                (structure.floor(c) as f64, f64::INFINITY)
            } else {
                (values[c] as f64, values[c] as f64)
            }
        })
        .collect();
    let equations: Vec<_> = structure
        .equations()
        .filter(|e| {
            std::iter::once(&e.total)
                .chain(&e.parts)
                .any(|&c| hidden[c])
        })
        .collect();
    for _ in 0..passes {
        let mut changed = false;
        for e in &equations {
            let lo: f64 = e.parts.iter().map(|&p| b[p].0).sum();
            let infinite = e.parts.iter().filter(|&&p| b[p].1.is_infinite()).count();
            let finite: f64 = e
                .parts
                .iter()
                .map(|&p| b[p].1)
                .filter(|u| u.is_finite())
                .sum();
            let (tl, tu) = b[e.total];
            let up = if infinite > 0 { f64::INFINITY } else { finite };
            let t = (tl.max(lo), tu.min(up));
            changed |= t.0 > tl + 1e-9 || t.1 < tu - 1e-9;
            b[e.total] = t;
            let (tl, tu) = t;
            for &p in &e.parts {
                let (pl, pu) = b[p];
                // The others' sums without p.
                let others_lo = lo - pl;
                let others_up = if pu.is_infinite() {
                    if infinite > 1 { f64::INFINITY } else { finite }
                } else if infinite > 0 {
                    f64::INFINITY
                } else {
                    finite - pu
                };
                let n = (pl.max(tl - others_up), pu.min(tu - others_lo));
                changed |= n.0 > pl + 1e-9 || n.1 < pu - 1e-9;
                b[p] = n;
            }
        }
        if !changed {
            break;
        }
    }
    b
}
