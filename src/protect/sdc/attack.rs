//! The attacker's problem: for a hidden cell, the smallest and the largest value consistent with
//! everything published (every visible cell, every equation of the structure, non-negativity, and
//! that counts are whole numbers). Solved as linear programs through good_lp; where the LP's
//! optimum is not a whole-number solution, again as an integer program, which can only narrow
//! the interval. This is what `release` checks before it writes a pattern and what `audit`
//! re-runs from the published files, so it never trusts how the pattern was chosen.

use good_lp::{
    Expression, ProblemVariables, ResolutionError, Solution, SolverModel, Variable, variable,
};

use super::structure::Structure;

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
    let one = |t: usize| -> Result<(Interval, bool), AttackError> {
        let side = |maximise| -> Result<(Option<i64>, bool), AttackError> {
            let (v, whole) =
                components.bound(structure, values, hidden, t, maximise, whole_numbers)?;
            let v = v.map(|v| {
                if maximise {
                    (v + 1e-6).floor() as i64
                } else {
                    (v - 1e-6).ceil() as i64
                }
            });
            Ok((v, whole))
        };
        let (lo, whole_lo) = side(false)?;
        let (hi, whole_hi) = side(true)?;
        let lo = lo.expect("a count is bounded below by 0");
        Ok((Interval { lo, hi }, whole_lo && whole_hi))
    };
    // The problems are independent: one slice of the targets per core, results in target order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || targets.len() < 16 {
        return targets.iter().map(|&t| one(t)).collect();
    }
    let size = targets.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .chunks(size)
            .map(|part| s.spawn(|| part.iter().map(|&t| one(t)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("an attacker's problem panicked"))
            .collect()
    })
}

impl Components {
    /// The hidden cells linked to hidden cell `c` (sorted) and the equations involving them (as
    /// indices into [`Structure::equations`]'s order).
    pub fn of(&self, c: usize) -> (&[usize], &[usize]) {
        let k = self.of[c].expect("a hidden cell");
        (&self.members[k], &self.equations[k])
    }

    /// The least (or, with `maximise`, the largest) value of hidden cell `target` over tables
    /// that agree with every published cell, `None` when unbounded; with `whole_numbers`, over
    /// whole-number tables (an integer program where the LP's solution is fractional). And
    /// whether the optimum found is a whole-number table (always with `whole_numbers`; unbounded
    /// counts as whole: whole numbers cannot bound it either).
    pub fn bound(
        &self,
        structure: &Structure,
        values: &[i64],
        hidden: &[bool],
        target: usize,
        maximise: bool,
        whole_numbers: bool,
    ) -> Result<(Option<f64>, bool), AttackError> {
        let fail = |message: String| AttackError {
            cell: target,
            message,
        };
        let k = self.of[target].expect("the target is hidden");
        let cells = &self.members[k];
        let all: Vec<_> = structure.equations().collect();
        let equations: Vec<_> = self.equations[k].iter().map(|&e| all[e]).collect();
        for integer in [false, true] {
            let mut vars = ProblemVariables::new();
            let x: Vec<Variable> = cells
                .iter()
                .map(|_| {
                    let v = variable().min(0.0);
                    vars.add(if integer {
                        // microlp's integer variables need bounds within i32.
                        v.integer().max(f64::from(i32::MAX))
                    } else {
                        v
                    })
                })
                .collect();
            let at = |c: usize| cells.binary_search(&c).ok().map(|i| x[i]);
            let objective: Expression = at(target).expect("the target is in its component").into();
            let problem = if maximise {
                vars.maximise(objective)
            } else {
                vars.minimise(objective)
            };
            let mut model = problem.using(super::SOLVER);
            for e in &equations {
                // total - sum(parts) = 0, the published cells moved to the right-hand side.
                let mut lhs = Expression::from(0.0);
                let mut rhs = 0.0;
                let terms =
                    std::iter::once((e.total, 1.0)).chain(e.parts.iter().map(|&p| (p, -1.0)));
                for (c, sign) in terms {
                    if hidden[c] {
                        lhs += sign * at(c).expect("hidden cells of the component");
                    } else {
                        rhs -= sign * values[c] as f64;
                    }
                }
                model = model.with(lhs.eq(rhs));
            }
            let solution = match model.solve() {
                Ok(s) => s,
                Err(ResolutionError::Unbounded) => return Ok((None, true)),
                Err(e) => return Err(fail(e.to_string())),
            };
            let value = solution.value(at(target).expect("in"));
            let whole = x
                .iter()
                .all(|&v| (solution.value(v) - solution.value(v).round()).abs() < 1e-6);
            if whole || integer || !whole_numbers {
                return Ok((Some(value), whole || integer));
            }
        }
        unreachable!("the integer pass returns")
    }
}
