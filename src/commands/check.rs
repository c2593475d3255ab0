//! `safestat check POLICY`: validate a policy and every value of every input it names.
//!
//! Spends nothing and draws nothing. Shows the officer the exact number of rows and units per
//! input and what each table's contribution bounds drop or cut (never written into a release),
//! and never an exact cell.

use std::fmt::Write as _;
use std::path::Path;

use super::describe;
use crate::console::print;
use crate::error::Error;
use crate::input::{self, BoundingEffect, InputResult, ReadOptions};
use crate::policy::{self, Bound, InputKind, Plan, Statistic, TableSpec};
use crate::privacy::thousands;
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
    let options = ReadOptions {
        bounding_effect: true,
        distinct_units: true,
        ..*options
    };
    let mut data = input::read_all(&plan, &options)?;
    // An exact table needs each unit in one cell: refused here as `release` would refuse it.
    for e in 0..plan.exact_tables.len() {
        data.take_exact_table(&plan, e)?;
    }
    let bounding = std::mem::take(&mut data.bounding);
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
    inputs_read(&mut r, &plan, &results);
    tables_declared(&mut r, &plan);
    bounds_effects(&mut r, &plan, &bounding);
    let _ = writeln!(
        r,
        "nothing was spent; run `safestat plan` for costs and accuracy"
    );
    print(&r)
}

/// Per input, its exact rows and units (for the officer's eyes only; never published).
fn inputs_read(r: &mut String, plan: &Plan, results: &[InputResult]) {
    let _ = writeln!(
        *r,
        "inputs (exact counts, for your eyes only; never published):"
    );
    for (spec, res) in plan.inputs.iter().zip(results) {
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
            *r,
            "  {:<12} {}: {} rows, {kind}; every value valid",
            spec.name,
            spec.location(),
            res.rows
        );
    }
}

/// Per table, what it counts, by what, its cells and bounds (or its suppression rules).
fn tables_declared(r: &mut String, plan: &Plan) {
    let _ = writeln!(*r, "tables:");
    for t in &plan.tables {
        let dims: Vec<&str> = t
            .dims
            .iter()
            .map(|&d| plan.dimensions[d].name.as_str())
            .collect();
        let _ = writeln!(
            *r,
            "  {:<28} {:<26} by [{}], {} cells, {}",
            t.name,
            describe::statistic(t),
            dims.join(", "),
            plan.table_cells(t),
            describe::bounds(plan, t)
        );
    }
    for t in &plan.exact_tables {
        let _ = writeln!(
            *r,
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
}

/// What each DP table's contribution bounds dropped or cut in this read (exact, for the
/// officer's eyes only; never published).
fn bounds_effects(r: &mut String, plan: &Plan, bounding: &[Option<BoundingEffect>]) {
    let effects: Vec<(&TableSpec, BoundingEffect)> = plan
        .tables
        .iter()
        .zip(bounding)
        .filter_map(|(t, e)| Some((t, (*e)?)))
        .collect();
    if !effects.is_empty() {
        let _ = writeln!(
            *r,
            "what the contribution bounds do in this read (exact, for your eyes only; never published):"
        );
        for (t, e) in effects {
            let _ = writeln!(*r, "  {:<28} {}", t.name, bounding_effect(t, &e));
        }
        let both = plan.tables.iter().any(|t| {
            matches!(t.statistic.bound(), Bound::Rows { per_unit, per_cell } if per_cell < per_unit)
        });
        if both {
            let _ = writeln!(
                *r,
                "  (which rows a unit keeps is random, so what max_rows_per_cell drops after max_rows_per_unit varies a little from read to read)"
            );
        }
    }
}

/// What table `t`'s bounds did in one read, in words: rows dropped by each row bound, values
/// cut by the clamp, each with its share of the rows read.
fn bounding_effect(t: &TableSpec, e: &BoundingEffect) -> String {
    let of = |n: u64| match n {
        0 => "0".to_string(),
        n => format!(
            "{} ({:.2}%)",
            thousands(n),
            100.0 * n as f64 / e.rows.max(1) as f64
        ),
    };
    let mut parts = Vec::new();
    if let (Bound::Rows { per_unit, per_cell }, Some([per_unit_kept, kept])) =
        (t.statistic.bound(), e.kept)
    {
        parts.push(format!(
            "max_rows_per_unit = {per_unit} drops {} of {} rows",
            of(e.rows - per_unit_kept),
            thousands(e.rows)
        ));
        if per_cell < per_unit {
            parts.push(format!(
                "max_rows_per_cell = {per_cell} drops {} more",
                of(per_unit_kept - kept)
            ));
        }
    }
    if let (Statistic::Sum { lo, hi, .. }, Some([below, above])) = (&t.statistic, e.clamped) {
        parts.push(format!(
            "clamp [{lo}, {hi}] cuts {} values below {lo} and {} above {hi}",
            of(below),
            of(above)
        ));
    }
    if parts.is_empty() {
        return match t.statistic.bound() {
            Bound::Cells(c) => {
                format!("max_cells_per_unit = {c} (the cells a unit loses are not counted)")
            }
            _ => "nothing to bound".to_string(),
        };
    }
    parts.join("; ")
}
