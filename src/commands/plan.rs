//! `safestat plan POLICY`: what a release would do and cost, from the policy alone.
//!
//! Reads no data and spends nothing.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::describe;
use crate::console::{self, print};
use crate::error::Error;
use crate::ledger::Ledger;
use crate::policy::{self, Plan};
use crate::privacy::{Accounting, Cost, epsilon_at, short_number};
use crate::protect::{self, NoiseMechanism, TableNoise, consistency, dp};

/// What `plan` was asked, as the command line says it.
pub struct PlanArgs {
    pub policy: PathBuf,
    pub ledger: Option<PathBuf>,
    /// `N` or `TABLE=N`, as typed.
    pub target_moe: Vec<String>,
    pub delta: Option<f64>,
}

/// `safestat plan POLICY`: per table the mechanism, scale, cost and margin of error, and what
/// the release would charge; with targets, the cost each table needs; reads no data.
pub fn run(args: PlanArgs) -> Result<(), Error> {
    let plan = policy::load(&args.policy)?;
    let mechs = protect::calibrate(&plan)?;
    let delta = match args.delta {
        Some(d) if !(d > 0.0 && d < 1.0) => {
            return Err(Error::Usage(format!(
                "--delta must be strictly between 0 and 1, got {d}"
            )));
        }
        Some(d) => Some(d),
        None => plan.accounting.delta(),
    };
    let targets = parse_targets(&plan, &args.target_moe)?;
    let mut r = format!(
        "plan for release `{}` (dataset `{}`, privacy unit `{}`); no data read\n",
        plan.release_id, plan.dataset, plan.privacy_unit
    );
    r.push_str(&tables(&plan, &mechs, delta)?);
    for t in &plan.exact_tables {
        let _ = writeln!(
            r,
            "exact table `{}` by [{}], {}: {}, cell suppression of {}, an attacker's interval of at least {}% (not differentially private; costs no budget)",
            t.name,
            plan.dimension_names(&t.dims).join(", "),
            t.margins_phrase(),
            t.values_phrase(&plan.privacy_unit),
            t.rules_phrase(&plan.privacy_unit),
            t.interval_percent
        );
    }
    r.push_str(&groups(&plan, &mechs));
    if let Some(refusal) = crate::input::sql::refused_by_this_build(&plan) {
        let _ = writeln!(
            r,
            "note: `release` and `check` will refuse this policy: {refusal}"
        );
    }
    // Read once: the plan as declared and the plan for the targets are measured against it.
    let ledger = Ledger::read(&args.ledger.unwrap_or_else(|| plan.ledger.clone()))?;
    let line = budget(&plan, &mechs, &ledger)?;
    r.push_str(&line.text);
    r.push_str(&expected_sizes(&plan, &mechs)?);
    if targets.iter().any(Option::is_some) {
        r.push_str(&planned_for_targets(
            &plan, &mechs, &targets, delta, &ledger,
        )?);
    }
    let _ = writeln!(
        r,
        "margin: the published value is within ± this of the bounded exact value with the stated probability (before clamping at 0 and suppression); for tables estimated together, a normal approximation that counts the rounding"
    );
    print(&r)?;
    console::status("release", plan.release_id.clone());
    console::status("unit", plan.accounting.unit());
    console::status("charged", line.cost);
    console::status("spent", line.spent);
    console::status("remaining", line.remaining);
    if line.enough {
        console::status("status", "planned");
        Ok(())
    } else {
        Err(Error::WouldNotFit(format!(
            "release `{}` does not fit what the budget of dataset `{}` has left (see above); `release` would be refused",
            plan.release_id, plan.dataset
        )))
    }
}

/// Per table, the margin of error asked for (`--target-moe N` for all, `TABLE=N` for one; a
/// table's own target wins over the one for all). `N%` is relative to the table's
/// `expected_cell_size`: a sum is then priced by its own scale, not a count's.
fn parse_targets(plan: &Plan, given: &[String]) -> Result<Vec<Option<i64>>, Error> {
    let mut all = None;
    let mut per_table = vec![None; plan.tables.len()];
    for g in given {
        let (table, n) = match g.rsplit_once('=') {
            Some((t, n)) => (Some(t.trim()), n.trim()),
            None => (None, g.trim()),
        };
        let bad = || {
            Error::Usage(format!(
                "--target-moe `{g}`: the margin must be a whole number of at least 1, or a percentage of the table's expected_cell_size, as `5`, `victims_by_age=5` or `services_by_region=5%`"
            ))
        };
        let target = match n.strip_suffix('%') {
            Some(pct) => Target::Relative(
                pct.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| *p > 0.0 && p.is_finite())
                    .ok_or_else(bad)?,
            ),
            None => Target::Absolute(n.parse().ok().filter(|&n: &i64| n >= 1).ok_or_else(bad)?),
        };
        match table {
            None => all = Some(target),
            Some(name) => {
                let t = plan
                    .tables
                    .iter()
                    .position(|t| t.name == name)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--target-moe `{g}`: no table `{name}` in the policy{}",
                            policy::did_you_mean(name, plan.tables.iter().map(|t| t.name.as_str()))
                        ))
                    })?;
                per_table[t] = Some(target);
            }
        }
    }
    per_table
        .into_iter()
        .zip(&plan.tables)
        .map(|(own, t)| {
            let Some(target) = own.or(all) else {
                return Ok(None);
            };
            match (target, t.expected_cell_size) {
                (Target::Absolute(n), _) => Ok(Some(n)),
                // Relative to a size: a margin of at least 1.
                (Target::Relative(pct), Some(size)) => {
                    Ok(Some(((pct / 100.0 * size as f64).floor() as i64).max(1)))
                }
                // A relative target for every table skips those without a size.
                (Target::Relative(_), None) if own.is_none() => Ok(None),
                (Target::Relative(pct), None) => Err(Error::Usage(format!(
                    "--target-moe `{}={pct}%`: a relative margin needs the table's `expected_cell_size` (the size you expect a typical cell to have)",
                    t.name
                ))),
            }
        })
        .collect()
}

/// A margin asked for: in the table's unit, or a percentage of its expected cell size.
#[derive(Debug, Clone, Copy)]
enum Target {
    Absolute(i64),
    Relative(f64),
}

/// A cost as (epsilon, delta) at `delta`: a pure-DP cost is its own epsilon (delta 0); a zCDP
/// cost is converted by opendp.
fn as_approx(cost: Cost, delta: f64) -> Result<String, Error> {
    Ok(match cost {
        Cost::Epsilon(e) => format!("ε={} (pure)", short_number(e)),
        Cost::Rho(rho) => format!("ε={} at δ={delta:e}", short_number(epsilon_at(rho, delta)?)),
    })
}

/// A cost as it would be written in the policy, every digit shown (`rho = 0.06284`).
fn declarable(cost: Cost) -> String {
    match cost {
        Cost::Epsilon(e) => format!("epsilon={e}"),
        Cost::Rho(r) => format!("rho={r}"),
    }
}

/// Warnings where a table's margin is larger than the cell size the officer expects.
fn expected_sizes(plan: &Plan, mechs: &[TableNoise]) -> Result<String, Error> {
    let mut r = String::new();
    for (t, m) in plan.tables.iter().zip(mechs) {
        let Some(size) = t.expected_cell_size else {
            continue;
        };
        let moe = m.values.margin_of_error(t.confidence)?;
        if moe as u64 > size {
            let _ = writeln!(
                r,
                "warning: `{}`: its margin of error ±{moe} is larger than the cell size you expect ({size}): a typical cell will be mostly noise; raise its cost, coarsen its categories, or plan for a margin with --target-moe {}={}",
                t.name,
                t.name,
                (size / 2).max(1)
            );
        }
    }
    Ok(r)
}

/// The cost each targeted table needs for its margin (opendp's accuracy functions), the release's
/// cost with those, and whether it fits the remaining budget.
fn planned_for_targets(
    plan: &Plan,
    mechs: &[TableNoise],
    targets: &[Option<i64>],
    delta: Option<f64>,
    ledger: &Ledger,
) -> Result<String, Error> {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "for the margins asked, as published (a table estimated with its group is priced by its margin after estimation, the group's other tables at their costs):"
    );
    let grouping = policy::grouping(plan);
    let _ = writeln!(
        r,
        "  {:<28} {:>12}  {:<44} cost now (margin)",
        "table", "target", "cost it needs (opendp)"
    );
    let mut planned = Vec::with_capacity(mechs.len());
    for (i, ((t, m), target)) in plan.tables.iter().zip(mechs).zip(targets).enumerate() {
        let Some(target) = *target else {
            planned.push(m.clone());
            continue;
        };
        let contributors = m.contributors.clone();
        let m = &m.values;
        let zcdp = matches!(t.cost, Cost::Rho(_));
        let (mut cost, mut needed) = NoiseMechanism::for_margin(
            t.mechanism,
            zcdp,
            t.statistic.sensitivity(),
            target,
            t.confidence,
        )?;
        if let Some(g) = grouping.of(i) {
            // Earlier targets' costs already planned, later ones' as declared: a later table's
            // higher cost only narrows this one's margin.
            let mut now: Vec<TableNoise> = planned.clone();
            now.extend(mechs[i..].iter().cloned());
            (cost, needed) = grouped_cost(plan, &grouping.groups[g], i, &now, target, cost)?;
        }
        let approx = match (delta, cost) {
            (Some(d), Cost::Rho(_)) => format!(" ({})", as_approx(cost, d)?),
            _ => String::new(),
        };
        let target_text = format!("±{target} ({}%)", t.confidence * 100.0);
        let needs = format!("{}{approx}", declarable(cost));
        let _ = writeln!(
            r,
            "  {:<28} {target_text:>12}  {needs:<44} {} (±{})",
            t.name,
            m.cost()?,
            m.margin_of_error(t.confidence)?
        );
        planned.push(TableNoise {
            values: needed,
            contributors,
        });
    }
    let total = dp::compose(&protect::measurements(&planned))?;
    let _ = writeln!(
        r,
        "  the release would then cost {total} (composed by opendp)"
    );
    r.push_str(
        &budget(plan, &planned, ledger)?
            .text
            .replace("budget: ", "  budget: "),
    );
    Ok(r)
}

/// The least cost (four significant digits, rounded up) at which table `t`, estimated with its
/// group and the group's other tables as in `mechs`, has a margin of at most `target` once
/// estimated (assuming a controlled rounding), found by bisection between a millionth of
/// `alone` (the cost it needs drawn alone) and `alone`: estimating together never loses accuracy,
/// so the margin at `alone` is the margin alone or less, plus the rounding's 1.
fn grouped_cost(
    plan: &Plan,
    group: &policy::Together,
    t: usize,
    mechs: &[TableNoise],
    target: i64,
    alone: Cost,
) -> Result<(Cost, NoiseMechanism), Error> {
    let spec = &plan.tables[t];
    let k = group
        .tables
        .iter()
        .position(|&u| u == t)
        .expect("in its group");
    let (value, of): (f64, fn(f64) -> Cost) = match alone {
        Cost::Epsilon(e) => (e, Cost::Epsilon),
        Cost::Rho(r) => (r, Cost::Rho),
    };
    let at = |v: f64| -> Result<(i64, NoiseMechanism), Error> {
        let m = NoiseMechanism::calibrate(spec.mechanism, spec.statistic.sensitivity(), of(v))?;
        let mut mechs = mechs.to_vec();
        mechs[t].values = m.clone();
        Ok((consistency::planned_margins(plan, group, &mechs)[k].1, m))
    };
    // The rounding's 1 may need a little more than the cost alone.
    let mut hi = value;
    while at(hi)?.0 > target {
        hi *= 2.0;
        if hi > value * 1e6 {
            return Err(Error::Usage(format!(
                "--target-moe: no cost gives `{}` a margin of ±{target} once estimated with its group",
                spec.name
            )));
        }
    }
    let mut lo = hi * 1e-6;
    for _ in 0..60 {
        let mid = (lo * hi).sqrt();
        if at(mid)?.0 <= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // Four significant digits, rounded up: a number the officer types, still within the target.
    let e = hi.log10().floor() as i32 - 3;
    let declared: f64 = format!("{}e{e}", (hi / 10f64.powi(e)).ceil() as u64)
        .parse()
        .expect("a decimal number");
    let (margin, m) = at(declared)?;
    debug_assert!(margin <= target);
    Ok((of(declared), m))
}

/// One line per table, and the release's total cost.
fn tables(plan: &Plan, mechs: &[TableNoise], delta: Option<f64>) -> Result<String, Error> {
    let mut r = String::new();
    if plan.tables.is_empty() {
        r.push_str("no differentially private tables: total cost none\n");
        return Ok(r);
    }
    let _ = writeln!(
        r,
        "{:<28} {:<24} {:>6}  {:<30} {:<18} {:>12} {:>10}  {:<16} {:>10}",
        "table",
        "statistic",
        "cells",
        "bounds",
        "mechanism",
        "sensitivity",
        "scale",
        "cost (opendp)",
        "margin"
    );
    for (t, noise) in plan.tables.iter().zip(mechs) {
        let rows = std::iter::once((t.name.clone(), describe::statistic(t), &noise.values)).chain(
            noise.contributors.as_ref().map(|c| {
                (
                    "  contributors".to_string(),
                    "count of units".to_string(),
                    c,
                )
            }),
        );
        for (name, statistic, m) in rows {
            let _ = writeln!(
                r,
                "{:<28} {:<24} {:>6}  {:<30} {:<18} {:>12} {:>10.3}  {:<16} {:>10}",
                name,
                statistic,
                plan.table_cells(t),
                describe::bounds(plan, t),
                t.mechanism.to_string(),
                format!(
                    "{}={}",
                    t.mechanism.norm().name().to_uppercase(),
                    short_number(m.d_in)
                ),
                m.scale,
                m.cost()?.to_string(),
                format!(
                    "±{} ({}%)",
                    m.margin_of_error(t.confidence)?,
                    t.confidence * 100.0
                ),
            );
            if let Some(d) = delta {
                // The same cost as (ε, δ), at the end of the row.
                r.pop();
                let _ = writeln!(r, "  {}", as_approx(m.cost()?, d)?);
            }
        }
    }
    let total = dp::compose(&protect::measurements(mechs))?;
    let approx = match delta {
        Some(d) => format!("; as (ε, δ): {}", as_approx(total, d)?),
        None if matches!(total, Cost::Rho(_)) => "; add --delta D to see it as (ε, δ)".to_string(),
        None => String::new(),
    };
    let _ = writeln!(r, "total cost: {total} (composed by opendp){approx}");
    Ok(r)
}

/// The groups of tables estimated together, and each table's margin once estimated (assuming a
/// controlled rounding): the margins `release` will publish; then each table drawn alone, and why.
fn groups(plan: &Plan, mechs: &[TableNoise]) -> String {
    let mut r = String::new();
    let grouping = policy::grouping(plan);
    for g in &grouping.groups {
        let names: Vec<&str> = g
            .tables
            .iter()
            .map(|&t| plan.tables[t].name.as_str())
            .collect();
        let _ = writeln!(
            r,
            "consistent: {} will be bounded once and estimated together as one {}-cell table; margins then:",
            names.join(", "),
            g.union_cells
        );
        for (t, moe) in consistency::planned_margins(plan, g, mechs) {
            let spec = &plan.tables[t];
            let _ = writeln!(
                r,
                "  {:<28} ±{moe} ({}%), drawn alone ±{}",
                spec.name,
                spec.confidence * 100.0,
                mechs[t]
                    .values
                    .margin_of_error(spec.confidence)
                    .unwrap_or(-1)
            );
        }
    }
    for (t, reason) in &grouping.alone {
        let _ = writeln!(r, "drawn alone: `{}`: {reason}", plan.tables[*t].name);
    }
    r
}

/// What this release would charge against the dataset's budget, and what the ledger has left.
/// [`budget`]'s line and figures, in the budget's unit.
struct BudgetLine {
    text: String,
    enough: bool,
    cost: f64,
    spent: f64,
    remaining: f64,
}

fn budget(plan: &Plan, mechs: &[TableNoise], ledger: &Ledger) -> Result<BudgetLine, Error> {
    // A policy without a budget (exact tables only) is charged against the dataset's, if any.
    let acc = match ledger.identity() {
        Some((_, b)) if plan.budget.is_none() => b.accounting().unwrap_or(plan.accounting),
        _ => plan.accounting,
    };
    let charged = mechs
        .iter()
        .map(|m| m.charge(&acc))
        .collect::<Result<Vec<_>, _>>()?;
    let cost = acc.compose(charged)?;
    let ledger_file = &ledger.path;
    let spent = ledger.spent(&acc)?;
    let capacity = acc.capacity()?;
    let enough = acc.fits(acc.compose(vec![spent, cost])?)?;
    let mut r = String::new();
    if !ledger.verify().is_empty() {
        let _ = writeln!(
            r,
            "WARNING: ledger `{}` fails verification, so the figures below cannot be trusted and `release` would refuse; run `safestat audit`",
            ledger_file.display()
        );
    }
    if acc == Accounting::None {
        let _ = writeln!(
            r,
            "budget: none (the dataset publishes exact tables only: nothing is charged); ledger `{}`",
            ledger_file.display()
        );
    } else {
        let _ = writeln!(
            r,
            "budget: {}; this release charges {}; ledger `{}`: spent {}, remaining {}{}",
            acc.describe(),
            acc.amount(cost),
            ledger_file.display(),
            acc.amount(spent),
            acc.amount((capacity - spent).max(0.0)),
            if enough {
                ""
            } else {
                "; NOT ENOUGH: `release` would be refused"
            }
        );
    }
    Ok(BudgetLine {
        text: r,
        enough,
        cost,
        spent,
        remaining: (capacity - spent).max(0.0),
    })
}
