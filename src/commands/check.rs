//! `safestat check POLICY`: validate a policy and every value of every input it names.
//!
//! Spends nothing and draws nothing. Shows the officer the exact number of rows and units per
//! input (never written into a release), and never an exact cell.

use std::fmt::Write as _;
use std::path::Path;

use super::describe;
use crate::console::print;
use crate::error::Error;
use crate::input::{self, ReadOptions};
use crate::policy::{self, InputKind};
use crate::protect;

/// `safestat check POLICY`: validates the policy and every value of every input.
pub fn run(policy: &Path, options: &ReadOptions) -> Result<(), Error> {
    let plan = policy::load(policy)?;
    protect::calibrate(&plan)?;
    // The signing key is refused here as `release` would refuse it (unreadable, or readable by
    // others).
    let key = plan
        .signing_key
        .as_deref()
        .map(crate::sign::SigningKey::load)
        .transpose()?;
    let mut data = input::read_all(&plan, options)?;
    // An exact table needs each unit in one cell: refused here as `release` would refuse it.
    for e in 0..plan.exact_tables.len() {
        data.take_exact_table(&plan, e)?;
    }
    let results = data.results;
    crate::console::status("status", "valid");
    crate::console::status("release", plan.release_id.clone());
    let mut r = String::new();
    let _ = writeln!(
        r,
        "policy `{}` is valid: release `{}`, dataset `{}`",
        policy.display(),
        plan.release_id,
        plan.dataset
    );
    if let Some(key) = &key {
        let _ = writeln!(r, "releases are signed by key {}", key.id);
    }
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
            spec.location(),
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
            describe::statistic(t),
            dims.join(", "),
            plan.table_cells(t),
            describe::bounds(&plan, t)
        );
    }
    for t in &plan.exact_tables {
        let _ = writeln!(
            r,
            "  {:<28} {:<26} by [{}], {}: exact values, cell suppression of {} (not differentially private)",
            t.name,
            match t.sum.as_ref().and_then(|s| s.column.as_ref()) {
                Some(column) => format!("sum({column}) (exact)"),
                None => format!("{} (exact)", t.statistic()),
            },
            plan.dimension_names(&t.dims).join(", "),
            t.margins_phrase(),
            t.rules_phrase(&plan.privacy_unit)
        );
    }
    let _ = writeln!(
        r,
        "nothing was spent; run `safestat plan` for costs and accuracy"
    );
    print(&r)
}
