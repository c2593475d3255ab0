//! Command dispatch, and the two commands that spend nothing: `check` and `plan`.
//!
//! Owns the dispatch from the parsed command line, the helpers the commands share (calibrating
//! every table, reading every input once, printing to stdout) and the `check` and `plan` reports.
//! Must never print an exact cell: reports show the policy and the mechanisms (`check` also shows
//! row and unit counts to the data officer, which are never written into a release), and must
//! never spend budget or draw noise (that is `release`'s alone).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::input::{InputResult, ReadOptions, read_input_with};
use crate::mechanism::{self, NoiseMechanism};
use crate::plan::{self, Bound, InputKind, Mechanism, Plan, Statistic, TableSpec};

pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Check { policy, read } => check(&policy, &read.options()),
        Command::Plan { policy, ledger } => plan_command(&policy, ledger),
        Command::Release {
            policy,
            out,
            json,
            ledger,
            new_version,
            read,
        } => crate::release::release(&policy, out, json, ledger, new_version, &read.options()),
        Command::Budget { ledger, json } => crate::audit::budget(ledger, json),
        Command::Audit {
            ledger,
            release_dirs,
            json,
        } => crate::audit::audit(ledger, &release_dirs, json),
    }
}

/// Writes a report to standard output; a closed pipe (`safestat plan p | head`) is not an error.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(Error::Stdout),
    }
}

/// Calibrates every table's mechanism (no data needed).
pub(crate) fn calibrate(plan: &Plan) -> Result<Vec<NoiseMechanism>, Error> {
    plan.tables
        .iter()
        .map(|t| NoiseMechanism::calibrate(t.mechanism, t.statistic.sensitivity(), t.cost))
        .collect::<Result<_, _>>()
        .map_err(Error::from)
}

/// Everything read from the inputs: per input its hash and exact cells, and where each table's
/// exact cells are.
pub(crate) struct InputData {
    pub results: Vec<InputResult>,
    /// Per table, `(input, position in that input's exact cells)`.
    slot: Vec<(usize, usize)>,
}

impl InputData {
    /// Moves table `t`'s exact cells out, in the noise's domain, so they are dropped as soon as
    /// the noise is added.
    pub fn take_exact(&mut self, t: usize) -> Vec<i64> {
        let (input, pos) = self.slot[t];
        crate::input::saturate(std::mem::take(&mut self.results[input].exact[pos]))
    }
}

/// Reads every input once, computing the exact cells of all the tables that use it.
pub(crate) fn read_all(plan: &Plan, options: &ReadOptions) -> Result<InputData, Error> {
    let mut results = Vec::new();
    let mut slot = vec![(0, 0); plan.tables.len()];
    for input in 0..plan.inputs.len() {
        let tables: Vec<usize> = (0..plan.tables.len())
            .filter(|&t| plan.tables[t].input == input)
            .collect();
        for (pos, &t) in tables.iter().enumerate() {
            slot[t] = (input, pos);
        }
        results.push(read_input_with(plan, input, &tables, *options)?);
    }
    Ok(InputData { results, slot })
}

fn describe_bounds(plan: &Plan, table: &TableSpec) -> String {
    let b = match table.statistic.bound() {
        Bound::Cells(c) => format!("{c} cell/unit"),
        Bound::Rows { per_unit, per_cell } if per_cell < per_unit => {
            format!("{per_unit} rows/unit, {per_cell}/cell")
        }
        Bound::Rows { per_unit, .. } => format!("{per_unit} rows/unit"),
    };
    format!("{b} ({})", plan.bounds_status(table))
}

fn describe_statistic(table: &TableSpec) -> String {
    match &table.statistic {
        Statistic::Sum { column, lo, hi, .. } => format!("sum({column}) in [{lo}, {hi}]"),
        s => s.name().to_string(),
    }
}

fn check(policy: &Path, options: &ReadOptions) -> Result<(), Error> {
    let plan = plan::load(policy)?;
    calibrate(&plan)?;
    let results = read_all(&plan, options)?.results;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "policy `{}` is valid: release `{}`, dataset `{}`",
        policy.display(),
        plan.release_id,
        plan.dataset
    );
    let _ = writeln!(
        r,
        "inputs (exact counts, for your eyes only; never published):"
    );
    for (spec, res) in plan.inputs.iter().zip(&results) {
        let kind = match &spec.kind {
            InputKind::Microdata => format!(
                "microdata, {} distinct `{}`",
                res.units.unwrap_or(0),
                plan.privacy_unit
            ),
            InputKind::Aggregated { count_column, .. } => {
                format!("aggregated, counts in `{count_column}`")
            }
        };
        let _ = writeln!(
            r,
            "  {:<12} {}: {} rows, {kind}; every value valid",
            spec.name,
            spec.path.display(),
            res.rows
        );
    }
    let _ = writeln!(r, "tables:");
    for t in &plan.tables {
        let dims: Vec<&str> = t
            .dims
            .iter()
            .map(|&d| plan.dimensions[d].name.as_str())
            .collect();
        let _ = writeln!(
            r,
            "  {:<28} {:<26} by [{}], {} cells, {}",
            t.name,
            describe_statistic(t),
            dims.join(", "),
            plan.table_cells(t),
            describe_bounds(&plan, t)
        );
    }
    let _ = writeln!(
        r,
        "nothing was spent; run `safestat plan` for costs and accuracy"
    );
    print(&r)
}

fn plan_command(policy: &Path, ledger: Option<std::path::PathBuf>) -> Result<(), Error> {
    let plan = plan::load(policy)?;
    let mechs = calibrate(&plan)?;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "plan for release `{}` (dataset `{}`, privacy unit `{}`); no data read",
        plan.release_id, plan.dataset, plan.privacy_unit
    );
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
    for (t, m) in plan.tables.iter().zip(&mechs) {
        let norm = match t.mechanism {
            Mechanism::Laplace => "L1",
            Mechanism::Gaussian => "L2",
        };
        let _ = writeln!(
            r,
            "{:<28} {:<24} {:>6}  {:<30} {:<18} {:>12} {:>10.3}  {:<16} {:>10}",
            t.name,
            describe_statistic(t),
            plan.table_cells(t),
            describe_bounds(&plan, t),
            t.mechanism.to_string(),
            format!("{norm}={}", plan::short_number(m.d_in)),
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
        mechanism::compose(&refs)?
    );
    // What this release would charge against the dataset's budget.
    let acc = plan.accounting;
    let charged = mechs
        .iter()
        .map(|m| acc.table_charge(m))
        .collect::<Result<Vec<_>, _>>()?;
    let cost = acc.compose(charged)?;
    let ledger_file = crate::release::ledger_path(ledger, &plan);
    let ledger = crate::ledger::Ledger::read(&ledger_file)?;
    let spent = ledger.spent(&acc)?;
    let capacity = acc.capacity()?;
    let enough = acc.fits(acc.compose(vec![spent, cost])?)?;
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
    let _ = writeln!(
        r,
        "margin: the published value is within ± this of the bounded exact value with the stated probability (before clamping at 0 and suppression)"
    );
    print(&r)
}
