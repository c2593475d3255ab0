//! A release's exact tables: counted exactly, protected by cell suppression before the ledger is
//! touched (a pattern that cannot be proven fails the release with nothing charged), then
//! published as CSV rows with every margin, and described in the manifest with the attacker's
//! interval of every suppressed cell.

use std::fmt::Write as _;

use crate::error::Error;
use crate::input::InputData;
use crate::output::{CellInterval, ExactPublished, ExactTableEntry, Files, PrimaryRule, TOTAL};
use crate::policy::{Plan, SecondaryObjective};
use crate::protect::sdc::tables::{self, ExactTable};

/// What the manifest says about the attacker's audit.
pub const AUDIT: &str = "for every suppressed cell, the least and greatest value consistent with every published cell of the release's exact tables (each table's margins, and the margins tables of the same input share), non-negativity and whole numbers: linear programs through good_lp, and integer programs where an LP's optimum is fractional";
/// What the manifest says about secondary suppression.
pub const SECONDARY: &str = "per primary cell and direction, the cheapest change of the tables that moves it by its protection level while keeping every margin and every cell non-negative (an LP; hidden cells are free, visible ones cost 1 each or their value); the visible cells it moves are suppressed; zeros are never suppressed as secondaries; checked by the attacker's audit, with levels raised where whole numbers narrow an interval";

/// Counts and protects the plan's exact tables (before any charge).
pub fn protect(plan: &Plan, data: &mut InputData) -> Result<Vec<ExactTable>, Error> {
    let counts = (0..plan.exact_tables.len())
        .map(|e| data.take_exact_table(plan, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tables::protect_tables(plan, &counts)?)
}

/// The exact tables' files, manifest entries and summary lines.
pub fn publish(
    plan: &Plan,
    protected: &[ExactTable],
    json: bool,
) -> (Files, Vec<ExactTableEntry>, String) {
    let mut files = Files::new();
    let mut entries = Vec::new();
    let mut lines = String::new();
    for (t, table) in plan.exact_tables.iter().zip(protected) {
        let published = ExactPublished {
            dimensions: plan.dimension_names(&t.dims),
            categories: plan.dimension_categories(&t.dims),
            values: &table.values,
        };
        let mut names = vec![format!("{}.csv", t.name)];
        let mut csv = published.to_csv();
        if plan.presentation.csv_bom {
            csv.splice(0..0, "\u{feff}".bytes());
        }
        files.push((names[0].clone(), csv));
        if json {
            names.push(format!("{}.json", t.name));
            files.push((names[1].clone(), exact_json(&t.name, &published)));
        }
        let suppressed = table.values.iter().filter(|v| v.is_none()).count();
        let intervals = table
            .intervals
            .iter()
            .enumerate()
            .filter_map(|(i, iv)| {
                iv.map(|iv| CellInterval {
                    cell: published.labels(i).iter().map(|s| s.to_string()).collect(),
                    lo: iv.lo,
                    hi: iv.hi,
                })
            })
            .collect();
        let _ = writeln!(
            lines,
            "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
            t.name,
            table.values.len(),
            suppressed,
            "cell suppression",
            "none (not DP)",
            "exact"
        );
        entries.push(ExactTableEntry {
            name: t.name.clone(),
            files: names,
            input: plan.inputs[t.input].name.clone(),
            statistic: "count_units".into(),
            dimensions: published.dimensions.iter().map(|d| d.to_string()).collect(),
            cells: table.values.len(),
            protection: "cell_suppression".into(),
            guarantee: format!(
                "not differentially private: exact counts of {} with every margin; a cell of fewer than {} is suppressed, with further cells so that no combination of the published cells narrows it below its protection interval",
                plan.privacy_unit, t.min_frequency
            ),
            total_label: TOTAL.into(),
            primary_rule: PrimaryRule {
                min_frequency: t.min_frequency,
                zeros_suppressed: t.zeros_primary,
            },
            interval_percent: t.interval_percent,
            secondary_objective: match t.secondary {
                SecondaryObjective::Cells => "cells",
                SecondaryObjective::Value => "value",
            }
            .into(),
            secondary_method: SECONDARY.into(),
            cells_suppressed: suppressed,
            audit: AUDIT.into(),
            intervals,
        });
    }
    (files, entries, lines)
}

/// `{"table", "columns", "rows"}` as the DP tables' JSON, suppressed values `null`.
fn exact_json(name: &str, t: &ExactPublished) -> Vec<u8> {
    let mut columns: Vec<&str> = t.dimensions.clone();
    columns.extend(["value", "status", "protection"]);
    let rows: Vec<serde_json::Value> = t
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut row: Vec<serde_json::Value> = t.labels(i).into_iter().map(Into::into).collect();
            row.push(v.map_or(serde_json::Value::Null, Into::into));
            row.push(
                if v.is_some() {
                    "published"
                } else {
                    "suppressed"
                }
                .into(),
            );
            row.push(crate::output::EXACT_PROTECTION.into());
            serde_json::Value::Array(row)
        })
        .collect();
    let doc = serde_json::json!({ "table": name, "columns": columns, "rows": rows });
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("serialising to memory");
    bytes.push(b'\n');
    bytes
}
