//! Choosing a suppression pattern and proving it: the primary cells hidden with their levels,
//! secondary cells chosen by the exact method (or the heuristic beyond its limits, or to complete
//! it), every pattern audited by the attacker (an outsider, then each respondent who knows its
//! own contributions), and levels raised where whole numbers narrowed an interval.

use super::attack::{self, Interval, attack};
use super::primary::{Rules, levels, primary};
use super::secondary::exact::{self, Exact};
use super::secondary::{Levels, Objective, heuristic, protects};
use super::structure::{Key, Structure};
use super::{MAX_EXACT_VALUE, Method, Protected, SdcError};

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
        exact::MAX_ROUNDS,
    )
}

/// [`protect_cells`] with at most `rounds` master problems of the exact method per round of
/// levels (tests ask fewer, to reach the heuristic's completion on small tables).
pub(super) fn protect_within(
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
    if let Some(&(cell, _)) = wanted.iter().find(|(c, _)| published[*c]) {
        return Err(SdcError::AlreadyPublished { cell });
    }
    let mut search = Search::new(structure, values, wanted, hidden_before);
    for round in 1..=MAX_ROUNDS {
        let known = search.choose(published, objective, rounds)?;
        let intervals = search.audit(known)?;
        let short = search.short(&intervals);
        // Only once every cell holds against an outsider: the respondents.
        if short.is_empty() {
            if search.against_insiders(insiders, (published, objective), round)? {
                continue;
            }
            return Ok(Protected {
                primary: search.primary,
                hidden: search.hidden,
                intervals,
                rounds: round,
                method: search.method,
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
        search.raise(short, round);
    }
    unreachable!("the last round returns")
}

/// A cell short of its levels in the attacker's interval: the levels it needs now, and the
/// interval.
type Short = (usize, Levels, Interval);

/// What a pattern's search carries from round to round: the levels asked (raised where whole
/// numbers narrowed an interval), the cells every later pattern keeps hidden, and how the
/// secondary cells are chosen.
struct Search<'a> {
    structure: &'a Structure,
    values: &'a [i64],
    /// Per cell, how far down its levels may reach (its floor: see [`room`]).
    room: Vec<i64>,
    primary: Vec<bool>,
    /// The levels asked: the primary cells' first (`primaries` of them), then secondary cells
    /// found pinned exactly.
    wanted: Vec<(usize, Levels)>,
    primaries: usize,
    /// The cells every pattern hides: the primary ones, those hidden before, those found pinned
    /// and those hidden for a respondent.
    base: Vec<bool>,
    /// This round's pattern.
    hidden: Vec<bool>,
    method: Method,
}

impl<'a> Search<'a> {
    fn new(
        structure: &'a Structure,
        values: &'a [i64],
        wanted: &[(usize, Levels)],
        hidden_before: &[bool],
    ) -> Search<'a> {
        let mut primary = vec![false; values.len()];
        for &(c, _) in wanted {
            primary[c] = true;
        }
        let room = room(structure, values);
        let wanted: Vec<(usize, Levels)> = wanted
            .iter()
            .map(|&(c, l)| {
                let down = l.down.min(room[c]);
                (c, Levels { down, ..l })
            })
            .collect();
        let base: Vec<bool> = primary
            .iter()
            .zip(hidden_before)
            .map(|(&p, &h)| p || h)
            .collect();
        Search {
            structure,
            values,
            room,
            primary,
            primaries: wanted.len(),
            wanted,
            hidden: base.clone(),
            base,
            method: Method::Optimal,
        }
    }

    /// This round's pattern: the exact minimum for the levels asked, from the base; once beyond
    /// its limits, the heuristic, which adds to the pattern round after round. Gives the
    /// intervals the exact method proved (sorted by cell).
    fn choose(
        &mut self,
        published: &[bool],
        objective: Objective,
        rounds: usize,
    ) -> Result<Vec<(usize, Interval)>, SdcError> {
        let (structure, values) = (self.structure, self.values);
        let mut pattern = self.base.clone();
        let exact = match self.method {
            Method::Optimal => exact::suppress(
                structure,
                values,
                published,
                &mut pattern,
                &self.wanted,
                objective,
                rounds,
            )?,
            _ => Exact::Beyond,
        };
        let mut known = Vec::new();
        match exact {
            Exact::Minimum(found) => {
                self.hidden = pattern;
                known = found;
                known.sort_unstable_by_key(|k| k.0);
            }
            Exact::Bound { at_least, short } => {
                // Only the cells it leaves short need the heuristic: hiding more cells never
                // undoes a protection.
                self.hidden = pattern;
                self.method = Method::Completed { at_least };
                let hidden = &mut self.hidden;
                heuristic::suppress(structure, values, published, hidden, &short, objective)?;
            }
            Exact::Beyond => {
                if self.method == Method::Optimal {
                    self.method = Method::Heuristic;
                }
                let (hidden, wanted) = (&mut self.hidden, &self.wanted);
                heuristic::suppress(structure, values, published, hidden, wanted, objective)?;
            }
        }
        Ok(known)
    }

    /// The attacker's interval of every hidden cell, by cell (those the exact method proved,
    /// `known`, are not audited twice).
    fn audit(&self, known: Vec<(usize, Interval)>) -> Result<Vec<(usize, Interval)>, SdcError> {
        let targets: Vec<usize> = (0..self.values.len())
            .filter(|&c| self.hidden[c] && known.binary_search_by_key(&c, |k| k.0).is_err())
            .collect();
        let found = attack(self.structure, self.values, &self.hidden, &targets)?;
        let mut intervals: Vec<(usize, Interval)> = targets.into_iter().zip(found).collect();
        intervals.extend(known);
        intervals.sort_unstable_by_key(|k| k.0);
        Ok(intervals)
    }

    /// The cells the attacker's `intervals` leave short of their levels. A secondary cell the
    /// published cells pin exactly is published in all but name, and `safestat audit` refuses it: it is
    /// protected from now on like a primary cell (an interval of at least 1, and always hidden).
    /// Whole numbers may narrow what the LP allowed: those levels are raised by the shortfall.
    fn short(&mut self, intervals: &[(usize, Interval)]) -> Vec<Short> {
        let pinned: Vec<(usize, Interval)> = intervals
            .iter()
            .filter(|&&(c, i)| i.hi == Some(i.lo) && !self.wanted.iter().any(|w| w.0 == c))
            .copied()
            .collect();
        let mut short = Vec::new();
        for &(c, i) in &pinned {
            let levels = Levels {
                up: 1,
                down: self.room[c].min(1),
            };
            self.wanted.push((c, levels));
            self.base[c] = true;
            short.push((c, levels, i));
        }
        let values = self.values;
        for &(c, levels) in &self.wanted[..self.wanted.len() - pinned.len()] {
            let i = intervals[intervals.binary_search_by_key(&c, |x| x.0).expect("hidden")].1;
            if !protects(i, values[c], levels) {
                let up = i.hi.map_or(0, |hi| (values[c] + levels.up - hi).max(0));
                let down = (i.lo - (values[c] - levels.down)).max(0);
                short.push((
                    c,
                    Levels {
                        up: levels.up + up,
                        down: (levels.down + down).min(self.room[c]),
                    },
                    i,
                ));
            }
        }
        short
    }

    /// The respondents, each knowing its own contribution to the hidden cells it is in: whether
    /// one narrows a small cell, which then gets what the heuristic hides for it in that
    /// respondent's model (the cheapest change that moves it by its levels with the cells the
    /// respondent knows no lower than what it knows). Those cells stay hidden in every later
    /// round, so what was fixed stays fixed. True when the search must go on.
    fn against_insiders(
        &mut self,
        insiders: &[Insider],
        (published, objective): (&[bool], Objective),
        round: usize,
    ) -> Result<bool, SdcError> {
        let (structure, values) = (self.structure, self.values);
        let primaries = &self.wanted[..self.primaries];
        let failing = insiders_short(structure, values, &self.hidden, primaries, insiders)?;
        let Some((cell, _, i, _)) = failing.first() else {
            return Ok(false);
        };
        if round == MAX_ROUNDS {
            return Err(SdcError::Insider {
                cell: *cell,
                lo: i.lo,
                hi: i.hi.map_or("unbounded".into(), |h| h.to_string()),
            });
        }
        if self.method == Method::Optimal {
            // The outsider's minimum bounds every pattern that also holds against them.
            let secondary = (0..values.len()).filter(|&c| self.hidden[c] && !self.primary[c]);
            let at_least = match objective {
                Objective::Cells => secondary.count() as i64,
                Objective::Value => secondary.map(|c| values[c]).sum(),
            };
            self.method = Method::Completed { at_least };
        }
        let mut known = structure.clone();
        for (p, levels, _, knows) in &failing {
            knowing(&mut known, structure, knows, |known| {
                let wanted = [(*p, *levels)];
                heuristic::suppress(
                    known,
                    values,
                    published,
                    &mut self.hidden,
                    &wanted,
                    objective,
                )
            })?;
        }
        for (b, &h) in self.base.iter_mut().zip(&self.hidden) {
            *b |= h;
        }
        Ok(true)
    }

    /// Asks the `short` cells' raised levels, and more each round: the continuous attacker may
    /// already reach a level whole numbers cannot, so the LP must hide more.
    fn raise(&mut self, short: Vec<Short>, round: usize) {
        for (c, mut raised, _) in short {
            raised.up += round as i64;
            raised.down = raised.down.min(self.room[c]);
            if let Some(w) = self.wanted.iter_mut().find(|w| w.0 == c) {
                w.1 = raised;
            }
        }
    }
}

/// Per cell, how far down its levels may reach: only as far as the floors allow. A count of 1
/// whose zeros are never hidden is protected upwards only (the attacker knows it is at least 1),
/// and a margin no lower than its non-zero cells at their floors, whatever is hidden (the least
/// values single equations give with every non-zero cell hidden).
fn room(structure: &Structure, values: &[i64]) -> Vec<i64> {
    let all_hidden: Vec<bool> = values.iter().map(|&v| v != 0).collect();
    attack::propagated(structure, values, &all_hidden, 50)
        .iter()
        .zip(values)
        .map(|(&(lo, _), &v)| (v - (lo - 1e-6).ceil() as i64).max(0))
        .collect()
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
