//! Exact tables protected by cell suppression (statistical disclosure control), the one
//! protection that is not differential privacy: exact values are published, the risky ones are
//! hidden, and every pattern is proven by an attacker's audit before it is written.
//!
//! 1. [`structure`]: the cells of linked tables (inner cells and every margin) and the equations
//!    between them, as the attacker knows them.
//! 2. Primary suppression ([`primary`]): a cell counted from fewer than `min_frequency` privacy
//!    units (and more than none; zeros only when the policy says so) is hidden, and must keep an
//!    attacker's interval reaching its protection levels ([`levels`]).
//! 3. Secondary suppression ([`secondary`]): further cells hidden so that subtraction, margins
//!    and linked tables cannot narrow a primary cell's interval below its levels.
//! 4. The attacker's audit ([`attack`]): for every hidden cell, the smallest and largest value
//!    consistent with everything published, whole numbers and non-negativity included. A pattern
//!    in which a primary cell's interval falls short is never returned: [`protect`] raises the
//!    levels and suppresses again, and errs if it cannot.

/// The attacker's LPs and integer programs: HiGHS with the `highs` feature (built from source:
/// needs cmake and libclang), else good_lp's pure-Rust microlp (see BENCHMARKS.md for both).
#[cfg(feature = "highs")]
use good_lp::highs as SOLVER;
#[cfg(not(feature = "highs"))]
use good_lp::microlp as SOLVER;

pub mod attack;
pub mod optimal;
pub mod secondary;
pub mod structure;
mod sweep;
pub mod tables;

pub use attack::{Interval, attack};
use optimal::Exact;
pub use secondary::{Levels, Objective, protects};
pub use structure::{Key, Structure};

/// `f` over `items` cut into one slice per core (a single slice when there are fewer than
/// `at_least` items), the results in the items' order: for independent problems, each slice
/// solved on its own thread.
fn by_core<T: Sync, R: Send, E: Send>(
    items: &[T],
    at_least: usize,
    f: impl Fn(&[T]) -> Result<Vec<R>, E> + Sync,
) -> Result<Vec<R>, E> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < at_least.max(2) {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(size).map(|part| s.spawn(|| f(part))).collect();
        let mut all = Vec::with_capacity(items.len());
        for h in handles {
            all.extend(h.join().expect("a solver's thread panicked")?);
        }
        Ok(all)
    })
}

/// The primary rule and the protection asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// A cell of fewer privacy units than this (and more than none) is hidden.
    pub min_frequency: i64,
    /// Whether a zero cell is primary too (by default it is not: a zero is published).
    pub zeros_primary: bool,
    /// The attacker's interval for a primary cell of value `v` must reach `v + U` and `v - L`
    /// with `U = max(1, ceil(v * interval_percent / 100))` and `L = min(v, U)`.
    pub interval_percent: f64,
    pub objective: Objective,
}

/// Whether a cell counted from `frequency` units is primary under `rules`.
pub fn primary(frequency: i64, rules: &Rules) -> bool {
    if frequency == 0 {
        rules.zeros_primary
    } else {
        frequency < rules.min_frequency
    }
}

/// A primary cell's protection levels (see [`Rules::interval_percent`]).
pub fn levels(value: i64, rules: &Rules) -> Levels {
    let up = ((value as f64 * rules.interval_percent / 100.0).ceil() as i64).max(1);
    Levels {
        up,
        down: value.min(up),
    }
}

/// The protection a sum's sensitivity rules ask of a cell of `value` whose largest units
/// contribute `largest` (largest first), or `None` when neither rule makes it primary. The
/// level is how far the attacker's interval must reach above the value (and below it, as far as
/// zero allows), the standard levels of the rules (Hundepool et al., *Statistical Disclosure
/// Control*, 2012, 4.2):
/// - (n,k)-dominance: primary when the `n` largest make more than `k`% of the value; safe once
///   the attacker's upper bound reaches `100 (x1 + ... + xn) / k`, so the level is that, rounded
///   up, minus the value.
/// - p%: primary when the rest (the value less the two largest) is under `p`% of the largest,
///   so that the second largest unit, subtracting its own contribution from the value, would
///   estimate the largest's within `p`%; the level is `p`% of the largest, rounded up, less the
///   rest.
///
/// Contributions are whole numbers of 0 or more; the arithmetic is exact (`i128`).
pub fn sensitive(value: i64, largest: &[i64], sum: &crate::policy::ExactSum) -> Option<i64> {
    let x = i128::from(value);
    if x <= 0 {
        return None;
    }
    let mut level = 0i128;
    if let Some(d) = sum.dominance {
        let top: i128 = largest
            .iter()
            .take(d.n as usize)
            .map(|&v| i128::from(v))
            .sum();
        let k = i128::from(d.k);
        if 100 * top > k * x {
            level = level.max(ceil_div(100 * top, k) - x);
        }
    }
    if let Some(p) = sum.p_percent {
        let x1 = i128::from(largest.first().copied().unwrap_or(0));
        let x2 = i128::from(largest.get(1).copied().unwrap_or(0));
        let rest = x - x1 - x2;
        let p = i128::from(p);
        if 100 * rest < p * x1 {
            level = level.max(ceil_div(p * x1, 100) - rest);
        }
    }
    (level > 0).then(|| level.min(i128::from(i64::MAX)) as i64)
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// A protected structure: which cells are hidden (primary or secondary) and what the attacker
/// can infer about each hidden cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Protected {
    pub primary: Vec<bool>,
    pub hidden: Vec<bool>,
    /// Per hidden cell, in cell order, its attacker's interval.
    pub intervals: Vec<(usize, Interval)>,
    /// Rounds of secondary suppression it took (1 unless whole numbers narrowed an interval).
    pub rounds: usize,
    /// How the secondary cells were chosen.
    pub method: Method,
}

/// How a pattern's secondary cells were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The exact minimum ([`optimal`]).
    Optimal,
    /// The exact method's last pattern, out of rounds or nodes, completed by the heuristic: any
    /// pattern that protects the primary cells has at least `at_least` secondary cells (or that
    /// much value hidden, as the objective says). A sum of hidden values: never published.
    Completed { at_least: i64 },
    /// The LP heuristic ([`secondary`]), for structures beyond the exact method's limits.
    Heuristic,
}

#[derive(Debug, thiserror::Error)]
pub enum SdcError {
    #[error(transparent)]
    Attack(#[from] attack::AttackError),
    #[error(transparent)]
    Secondary(#[from] secondary::SecondaryError),
    /// A primary cell an earlier release already published exactly: hiding it now protects
    /// nothing.
    #[error("cell {cell} is primary but an earlier release published it")]
    AlreadyPublished { cell: usize },
    /// A bug, never an input problem: the pattern found leaves a primary cell short.
    #[error(
        "the suppression pattern leaves cell {cell} exposed: the attacker's interval is {lo}..{hi} around its value"
    )]
    Exposed { cell: usize, lo: i64, hi: String },
    /// The pattern protects every primary cell against an outsider, but a respondent who knows
    /// its own contribution to other hidden cells narrows this one's interval, and hiding what
    /// the heuristic asks in its model did not help within the rounds allowed.
    #[error(
        "no pattern found protects cell {cell} against a respondent who knows its own contribution to the other suppressed cells it is in: it narrows the cell to {lo}..{hi}"
    )]
    Insider { cell: usize, lo: i64, hi: String },
    /// A cell too large for the attacker's problems to stay exact (the input's fault: publish
    /// it in larger units).
    #[error(
        "cell {cell} is {value}, beyond 2^53 = {MAX_EXACT_VALUE}, where the attacker's linear programs can no longer tell one unit from the next; publish the table in larger units"
    )]
    TooLarge { cell: usize, value: i64 },
    /// One of the above, its cell named by its categories; `input` when the policy or data is at
    /// fault.
    #[error("{message}")]
    Described { message: String, input: bool },
}

/// The largest value of an exact table's cell (margins included): 2^53, as for a DP sum's
/// sensitivity, so that every value, level and bound is an exact float in the attacker's
/// problems and `value + level` never wraps.
pub const MAX_EXACT_VALUE: i64 = 1 << 53;

impl SdcError {
    /// Whether the policy or data is at fault (a primary cell published before); otherwise the
    /// error is safestat's or its solver's.
    pub fn is_input(&self) -> bool {
        match self {
            SdcError::AlreadyPublished { .. }
            | SdcError::TooLarge { .. }
            | SdcError::Insider { .. } => true,
            SdcError::Described { input, .. } => *input,
            SdcError::Attack(_) | SdcError::Secondary(_) | SdcError::Exposed { .. } => false,
        }
    }
}

/// The most rounds of raised levels before [`protect`] gives up (a bug if ever reached).
const MAX_ROUNDS: usize = 8;

/// Chooses the pattern for `values` (every cell of `structure`; `frequencies`: the privacy units
/// behind each) under one set of `rules`, and proves it with the attacker's audit.
pub fn protect(
    structure: &Structure,
    values: &[i64],
    frequencies: &[i64],
    rules: &Rules,
) -> Result<Protected, SdcError> {
    let published = vec![false; values.len()];
    protect_with(structure, values, frequencies, &published, rules)
}

/// [`protect`], where the cells `published` by earlier releases are facts: never hidden, known to
/// the attacker.
pub fn protect_with(
    structure: &Structure,
    values: &[i64],
    frequencies: &[i64],
    published: &[bool],
    rules: &Rules,
) -> Result<Protected, SdcError> {
    let wanted: Vec<(usize, Levels)> = (0..values.len())
        .filter(|&c| primary(frequencies[c], rules))
        .map(|c| (c, levels(values[c], rules)))
        .collect();
    let none = vec![false; values.len()];
    protect_cells(
        structure,
        values,
        (&wanted, &[]),
        published,
        &none,
        rules.objective,
    )
}

/// The pattern that hides the primary cells `wanted` (each with its levels) and protects them,
/// proven by the attacker's audit, against an outsider and against each of the `insiders`;
/// cells `published` before are never hidden, cells hidden before stay hidden.
pub fn protect_cells(
    structure: &Structure,
    values: &[i64],
    (wanted, insiders): (&[(usize, Levels)], &[Insider]),
    published: &[bool],
    hidden_before: &[bool],
    objective: Objective,
) -> Result<Protected, SdcError> {
    let before = (published, hidden_before);
    protect_within(
        structure,
        values,
        (wanted, insiders),
        before,
        objective,
        optimal::MAX_ROUNDS,
    )
}

/// [`protect_cells`] with at most `rounds` master problems of the exact method per round of
/// levels (tests ask fewer, to reach the heuristic's completion on small tables).
fn protect_within(
    structure: &Structure,
    values: &[i64],
    (wanted, insiders): (&[(usize, Levels)], &[Insider]),
    (published, hidden_before): (&[bool], &[bool]),
    objective: Objective,
    rounds: usize,
) -> Result<Protected, SdcError> {
    if let Some((cell, &value)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| v.unsigned_abs() > MAX_EXACT_VALUE as u64)
    {
        return Err(SdcError::TooLarge { cell, value });
    }
    let mut primary = vec![false; values.len()];
    for &(c, _) in wanted {
        primary[c] = true;
    }
    // Down only as far as the floors allow: a count of 1 whose zeros are never hidden is
    // protected upwards only (the attacker knows it is at least 1), and a margin no lower than
    // its non-zero cells at their floors, whatever is hidden (the least values single equations
    // give with every non-zero cell hidden).
    let all_hidden: Vec<bool> = values.iter().map(|&v| v != 0).collect();
    let room: Vec<i64> = attack::propagated(structure, values, &all_hidden, 50)
        .iter()
        .zip(values)
        .map(|(&(lo, _), &v)| (v - (lo - 1e-6).ceil() as i64).max(0))
        .collect();
    let wanted: Vec<(usize, Levels)> = wanted
        .iter()
        .map(|&(c, l)| {
            let down = l.down.min(room[c]);
            (c, Levels { down, ..l })
        })
        .collect();
    if let Some(&(cell, _)) = wanted.iter().find(|(c, _)| published[*c]) {
        return Err(SdcError::AlreadyPublished { cell });
    }
    let mut wanted = wanted;
    let primaries = wanted.len();
    let mut base: Vec<bool> = primary
        .iter()
        .zip(hidden_before)
        .map(|(&p, &h)| p || h)
        .collect();
    let mut hidden = base.clone();
    let mut method = Method::Optimal;
    for round in 1..=MAX_ROUNDS {
        // The exact minimum for the levels asked this round, from the primary cells; once
        // beyond its limits, the heuristic, which adds to the pattern round after round.
        let mut pattern = base.clone();
        let mut known = Vec::new();
        let exact = match method {
            Method::Optimal => optimal::suppress(
                structure,
                values,
                published,
                &mut pattern,
                &wanted,
                objective,
                rounds,
            )?,
            _ => Exact::Beyond,
        };
        match exact {
            Exact::Minimum(found) => {
                hidden = pattern;
                known = found;
                known.sort_unstable_by_key(|k| k.0);
            }
            Exact::Bound { at_least, short } => {
                // Only the cells it leaves short need the heuristic: hiding more cells never
                // undoes a protection.
                hidden = pattern;
                method = Method::Completed { at_least };
                secondary::suppress(structure, values, published, &mut hidden, &short, objective)?;
            }
            Exact::Beyond => {
                if method == Method::Optimal {
                    method = Method::Heuristic;
                }
                secondary::suppress(
                    structure,
                    values,
                    published,
                    &mut hidden,
                    &wanted,
                    objective,
                )?;
            }
        }
        // The attacker's audit of every hidden cell (those the exact method audited already are
        // not audited twice).
        let targets: Vec<usize> = (0..values.len())
            .filter(|&c| hidden[c] && known.binary_search_by_key(&c, |k| k.0).is_err())
            .collect();
        let found = attack(structure, values, &hidden, &targets)?;
        let mut intervals: Vec<(usize, Interval)> = targets.into_iter().zip(found).collect();
        intervals.extend(known);
        intervals.sort_unstable_by_key(|k| k.0);
        // A secondary cell the published cells pin exactly is published in all but name, and
        // `audit` refuses it: protect it like a primary cell (an interval of at least 1) and
        // solve again.
        let pinned: Vec<(usize, Interval)> = intervals
            .iter()
            .filter(|&&(c, i)| i.hi == Some(i.lo) && !wanted.iter().any(|w| w.0 == c))
            .copied()
            .collect();
        let mut short = Vec::new();
        for &(c, i) in &pinned {
            let levels = Levels {
                up: 1,
                down: room[c].min(1),
            };
            wanted.push((c, levels));
            base[c] = true;
            short.push((c, levels, i));
        }
        // Whole numbers may narrow what the LP allowed: raise those levels by the shortfall.
        for &(c, levels) in &wanted[..wanted.len() - pinned.len()] {
            let i = intervals[intervals.binary_search_by_key(&c, |x| x.0).expect("hidden")].1;
            if !protects(i, values[c], levels) {
                let up = i.hi.map_or(0, |hi| (values[c] + levels.up - hi).max(0));
                let down = (i.lo - (values[c] - levels.down)).max(0);
                short.push((
                    c,
                    Levels {
                        up: levels.up + up,
                        down: (levels.down + down).min(room[c]),
                    },
                    i,
                ));
            }
        }
        // Only once every cell holds against an outsider: the respondents, each knowing its own
        // contribution to the hidden cells it is in. A small cell one of them narrows gets what
        // the heuristic hides for it in that respondent's model (the cheapest change that moves
        // it by its levels with the cells the respondent knows no lower than what it knows): those
        // cells stay hidden in every later round, so what was fixed stays fixed.
        if short.is_empty() {
            let failing =
                insiders_short(structure, values, &hidden, &wanted[..primaries], insiders)?;
            if let Some((cell, _, i, _)) = failing.first() {
                if round == MAX_ROUNDS {
                    return Err(SdcError::Insider {
                        cell: *cell,
                        lo: i.lo,
                        hi: i.hi.map_or("unbounded".into(), |h| h.to_string()),
                    });
                }
                if method == Method::Optimal {
                    // The outsider's minimum bounds every pattern that also holds against them.
                    let secondary = (0..values.len()).filter(|&c| hidden[c] && !primary[c]);
                    let at_least = match objective {
                        Objective::Cells => secondary.count() as i64,
                        Objective::Value => secondary.map(|c| values[c]).sum(),
                    };
                    method = Method::Completed { at_least };
                }
                let mut known = structure.clone();
                for (p, levels, _, knows) in &failing {
                    knowing(&mut known, structure, knows, |known| {
                        secondary::suppress(
                            known,
                            values,
                            published,
                            &mut hidden,
                            &[(*p, *levels)],
                            objective,
                        )
                    })?;
                }
                for (b, &h) in base.iter_mut().zip(&hidden) {
                    *b |= h;
                }
                continue;
            }
        }
        if short.is_empty() {
            return Ok(Protected {
                primary,
                hidden,
                intervals,
                rounds: round,
                method,
            });
        }
        if round == MAX_ROUNDS {
            let (cell, _, i) = short[0];
            return Err(SdcError::Exposed {
                cell,
                lo: i.lo,
                hi: i.hi.map_or("unbounded".into(), |h| h.to_string()),
            });
        }
        for (c, mut raised, _) in short {
            // The continuous attacker may already reach a level whole numbers cannot: ask more
            // each round, so that the LP must hide more.
            raised.up += round as i64;
            raised.down = raised.down.min(room[c]);
            if let Some(w) = wanted.iter_mut().find(|w| w.0 == c) {
                w.1 = raised;
            }
        }
    }
    unreachable!("the last round returns")
}

/// A respondent who knows its own contribution (an insider, the attacker of the p% rule taken
/// across cells: Hundepool et al., *Statistical Disclosure Control*, 2012, 4.2.4 on singletons).
/// It is in one cell of each table of its data, and knows that each of those cells holds at
/// least its own contribution; subtracting it from the hidden cells it is in, it may narrow the
/// other hidden cells. One insider stands for every respondent of its finest cell (`key`: a
/// category of every dimension its data is tabulated by), the largest one, whose contribution is
/// at most the least of those cells' largest contributions (what `knows` holds: only the cells
/// where that is above the rules' floor). A respondent whose rows fall in several finest cells
/// is an insider of its own, `keys` naming the inner cells it is in (of every table of its data)
/// and `knows` its exact sum in each. A cell that contains one of `keys` (its margins) has the
/// insider among its own respondents: its protection against them is the sensitivity rules'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insider {
    pub keys: Vec<Key>,
    pub knows: Vec<(usize, i64)>,
}

/// Whether the cell named `cell` (a key) holds the respondents of the finest cell `finest`: it
/// names, for each of its dimensions, the same category or a group of it.
fn contains(structure: &Structure, cell: &[(usize, u32)], finest: &[(usize, u32)]) -> bool {
    cell.iter().all(|&(d, c)| {
        finest.iter().any(|&(e, f)| {
            e == d
                && (f == c
                    || structure
                        .group_members(d, c)
                        .is_some_and(|m| m.contains(&(f as usize))))
        })
    })
}

/// Hidden cells an attacker knows more of: each with its least value.
type Knows = Vec<(usize, i64)>;

/// The most attacker's problems ([`attack`]'s targets, summed over the insiders) the insiders'
/// check asks one by one; beyond it, each small cell is attacked once by all the insiders who are
/// not among its own respondents together (a coalition, which knows more than any one of them:
/// the pattern then holds against each, at the cost of a few more hidden cells).
pub const MAX_INSIDER_PROBLEMS: usize = 5_000;

/// The primary cells of `wanted` that an insider's attack leaves short of their levels under
/// pattern `hidden`: each with its levels, the interval the insider found and what it knows of
/// the hidden cells. Only the insiders who know a hidden cell, and for each only the primary
/// cells linked to what it knows and that do not contain it, are attacked;
/// two insiders who know the same and attack the same cells are attacked once. Beyond
/// [`MAX_INSIDER_PROBLEMS`], the coalition per small cell.
fn insiders_short(
    structure: &Structure,
    values: &[i64],
    hidden: &[bool],
    wanted: &[(usize, Levels)],
    insiders: &[Insider],
) -> Result<Vec<(usize, Levels, Interval, Knows)>, SdcError> {
    if insiders.is_empty() || wanted.is_empty() {
        return Ok(Vec::new());
    }
    let components = attack::Components::new(structure, hidden);
    // Per insider who knows a hidden cell: what it knows of the hidden cells, and its targets.
    let mut jobs: Vec<(Knows, Vec<usize>)> = Vec::new();
    let mut asked = std::collections::HashSet::new();
    for insider in insiders {
        let knows: Vec<(usize, i64)> = insider
            .knows
            .iter()
            .filter(|&&(c, _)| hidden[c])
            .copied()
            .collect();
        let reached: Vec<usize> = knows
            .iter()
            .map(|&(c, _)| components.component(c))
            .collect();
        let targets: Vec<usize> = wanted
            .iter()
            .map(|w| w.0)
            .filter(|&p| {
                reached.contains(&components.component(p))
                    && !insider
                        .keys
                        .iter()
                        .any(|k| contains(structure, structure.key(p), k))
            })
            .collect();
        if !targets.is_empty() && asked.insert((knows.clone(), targets.clone())) {
            jobs.push((knows, targets));
        }
    }
    if jobs.iter().map(|j| j.1.len()).sum::<usize>() > MAX_INSIDER_PROBLEMS {
        // Per small cell, every insider not among its respondents at once.
        let mut coalitions: std::collections::BTreeMap<usize, Vec<(usize, i64)>> =
            Default::default();
        for (knows, targets) in &jobs {
            for &p in targets {
                coalitions.entry(p).or_default().extend(knows);
            }
        }
        jobs = coalitions
            .into_iter()
            .map(|(p, mut knows)| {
                knows.sort_unstable_by_key(|&(c, x)| (c, std::cmp::Reverse(x)));
                knows.dedup_by_key(|k| k.0);
                (knows, vec![p])
            })
            .collect();
    }
    let mut known = structure.clone();
    let mut failing = Vec::new();
    for (knows, targets) in jobs {
        let found = knowing(&mut known, structure, &knows, |known| {
            attack(known, values, hidden, &targets)
        })?;
        for (p, i) in targets.into_iter().zip(found) {
            let levels = wanted
                .iter()
                .find(|w| w.0 == p)
                .expect("a target is wanted")
                .1;
            if !protects(i, values[p], levels) {
                failing.push((p, levels, i, knows.clone()));
            }
        }
    }
    Ok(failing)
}

/// `f` on `known` (a copy of `structure`) with the floors of the cells an insider `knows` raised
/// to what it knows, and `known` restored to `structure`'s floors after.
fn knowing<T>(
    known: &mut Structure,
    structure: &Structure,
    knows: &[(usize, i64)],
    f: impl FnOnce(&Structure) -> T,
) -> T {
    for &(c, x) in knows {
        known.set_floor(c, x);
    }
    let result = f(known);
    for &(c, _) in knows {
        known.set_floor(c, structure.floor(c));
    }
    result
}

#[cfg(test)]
mod tests;
