//! `safestat plan POLICY`: what a release would do and cost, from the policy alone.
//!
//! Reads no data and spends nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::describe;
use crate::console::print;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::policy::{self, Plan};
use crate::privacy::short_number;
use crate::protect::{self, NoiseMechanism, consistency, dp};

/// `safestat plan POLICY`: per table the mechanism, scale, cost and margin of error, and what
/// the release would charge; reads no data.
pub fn run(policy: &Path, ledger: Option<PathBuf>) -> Result<(), Error> {
    let plan = policy::load(policy)?;
    let mechs = protect::calibrate(&plan)?;
    let mut r = format!(
        "plan for release `{}` (dataset `{}`, privacy unit `{}`); no data read\n",
        plan.release_id, plan.dataset, plan.privacy_unit
    );
    r.push_str(&tables(&plan, &mechs)?);
    r.push_str(&groups(&plan, &mechs));
    r.push_str(&budget(&plan, &mechs, ledger)?);
    let _ = writeln!(
        r,
        "margin: the published value is within ± this of the bounded exact value with the stated probability (before clamping at 0 and suppression); for tables estimated together, a normal approximation that counts the rounding"
    );
    print(&r)
}

/// One line per table, and the release's total cost.
fn tables(plan: &Plan, mechs: &[NoiseMechanism]) -> Result<String, Error> {
    let mut r = String::new();
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
    for (t, m) in plan.tables.iter().zip(mechs) {
        let _ = writeln!(
            r,
            "{:<28} {:<24} {:>6}  {:<30} {:<18} {:>12} {:>10.3}  {:<16} {:>10}",
            t.name,
            describe::statistic(t),
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
    }
    let refs: Vec<&NoiseMechanism> = mechs.iter().collect();
    let _ = writeln!(
        r,
        "total cost: {} (composed by opendp)",
        dp::compose(&refs)?
    );
    Ok(r)
}

/// The groups of tables estimated together, and each table's margin once estimated (assuming a
/// controlled rounding): the margins `release` will publish.
fn groups(plan: &Plan, mechs: &[NoiseMechanism]) -> String {
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
                mechs[t].margin_of_error(spec.confidence).unwrap_or(-1)
            );
        }
    }
    r
}

/// What this release would charge against the dataset's budget, and what the ledger has left.
fn budget(plan: &Plan, mechs: &[NoiseMechanism], ledger: Option<PathBuf>) -> Result<String, Error> {
    let acc = plan.accounting;
    let charged = mechs
        .iter()
        .map(|m| m.charge(&acc))
        .collect::<Result<Vec<_>, _>>()?;
    let cost = acc.compose(charged)?;
    let ledger_file = ledger.unwrap_or_else(|| plan.ledger.clone());
    let ledger = Ledger::read(&ledger_file)?;
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
