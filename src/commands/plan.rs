//! `safestat plan POLICY`: what a release would do and cost, from the policy alone.
//!
//! Reads no data and spends nothing.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::describe;
use crate::console::print;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::policy::{self, Plan};
use crate::privacy::{Cost, epsilon_at, short_number};
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
    // Read once: the plan as declared and the plan for the targets are measured against it.
    let ledger = Ledger::read(&args.ledger.unwrap_or_else(|| plan.ledger.clone()))?;
    r.push_str(&budget(&plan, &mechs, &ledger)?);
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
    print(&r)
}

/// Per table, the margin of error asked for (`--target-moe N` for all, `TABLE=N` for one; a
/// table's own target wins over the one for all).
fn parse_targets(plan: &Plan, given: &[String]) -> Result<Vec<Option<i64>>, Error> {
    let mut all = None;
    let mut per_table = vec![None; plan.tables.len()];
    for g in given {
        let (table, n) = match g.rsplit_once('=') {
            Some((t, n)) => (Some(t.trim()), n),
            None => (None, g.as_str()),
        };
        let n: i64 = n.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
            Error::Usage(format!(
                "--target-moe `{g}`: the margin must be a whole number of at least 1, as `5` or `victims_by_age=5`"
            ))
        })?;
        match table {
            None => all = Some(n),
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
                per_table[t] = Some(n);
            }
        }
    }
    Ok(per_table.into_iter().map(|t| t.or(all)).collect())
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
        "for the margins asked (each table drawn alone; estimated together, a group's margins are smaller still):"
    );
    let _ = writeln!(
        r,
        "  {:<28} {:>12}  {:<44} cost now (margin)",
        "table", "target", "cost it needs (opendp)"
    );
    let mut planned = Vec::with_capacity(mechs.len());
    for ((t, m), target) in plan.tables.iter().zip(mechs).zip(targets) {
        let Some(target) = *target else {
            planned.push(m.clone());
            continue;
        };
        let contributors = m.contributors.clone();
        let m = &m.values;
        let zcdp = matches!(t.cost, Cost::Rho(_));
        let (cost, needed) = NoiseMechanism::for_margin(
            t.mechanism,
            zcdp,
            t.statistic.sensitivity(),
            target,
            t.confidence,
        )?;
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
    r.push_str(&budget(plan, &planned, ledger)?.replace("budget: ", "  budget: "));
    Ok(r)
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
/// controlled rounding): the margins `release` will publish.
fn groups(plan: &Plan, mechs: &[TableNoise]) -> String {
    let mut r = String::new();
    for g in consistency::groups(plan) {
        let names: Vec<&str> = g
            .tables
            .iter()
            .map(|&t| plan.tables[t].name.as_str())
            .collect();
        if let Some(reason) = g.too_large() {
            let _ = writeln!(
                r,
                "warning: {} measure the same quantity but will be published as drawn: {reason}",
                names.join(", ")
            );
            continue;
        }
        let _ = writeln!(
            r,
            "consistent: {} will be estimated together as one {}-cell table; margins then:",
            names.join(", "),
            g.union_cells.unwrap_or(0)
        );
        for (t, moe) in consistency::planned_margins(plan, &g, mechs) {
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
    r
}

/// What this release would charge against the dataset's budget, and what the ledger has left.
fn budget(plan: &Plan, mechs: &[TableNoise], ledger: &Ledger) -> Result<String, Error> {
    let acc = plan.accounting;
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
    Ok(r)
}
