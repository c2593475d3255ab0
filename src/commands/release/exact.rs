//! A release's exact tables: counted exactly, protected by cell suppression before the ledger is
//! touched (a pattern that cannot be proven fails the release with nothing charged), then
//! published as CSV rows with every margin, and described in the manifest with the attacker's
//! interval of every suppressed cell.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::Error;
use crate::input::{self, InputData, ReadOptions};
use crate::ledger::{Ledger, LinkedTable};
use crate::output::{self, CellInterval, ExactPublished, ExactTableEntry, Files, PrimaryRule};
use crate::policy::{ExactSum, ExactTableSpec, Plan, SecondaryObjective};
use crate::protect::sdc::Method;
use crate::protect::sdc::tables::{self, ExactTable, Linked};

/// What the manifest says about the attacker's audit.
pub const AUDIT: &str = "for every suppressed cell, the least and greatest value consistent with every published cell of the release's exact tables (each table's margins, and the margins tables of the same input share), non-negativity, what the rules make public (a suppressed count is at least 1 where zeros are never suppressed) and whole numbers: linear programs through good_lp, and integer programs where an LP's optimum is fractional; every suppressed cell, small or secondary, is audited before the release is charged";
/// What the manifest says about secondary suppression by the exact method.
pub const OPTIMAL: &str = "the exact minimum (cells, or value, as the objective says) of the Fischetti-Salazar integer program, solved by cut generation: a 0/1 variable per cell that may be hidden, and for every primary cell and direction the cut the attacker's dual LP gives while the pattern leaves it short; the pattern found is then checked by the attacker's audit, with levels raised where whole numbers narrow an interval";
/// What the manifest says about a pattern the exact method could not finish within its limits.
pub const COMPLETED: &str = "not proven minimal: the exact method (the Fischetti-Salazar integer program by cut generation) reached its limits (rounds of cuts, or branch-and-bound nodes of a master problem), and the heuristic (per short primary cell and direction, the cheapest change of the tables that moves it by its protection level) completed its last pattern; checked by the attacker's audit";
/// What the manifest says about secondary suppression by the heuristic (tables beyond the exact
/// method's limits).
pub const HEURISTIC: &str = "a heuristic, the table being beyond the exact method's limits: per primary cell and direction, the cheapest change of the tables that moves it by its protection level while keeping every margin and every cell non-negative (an LP; hidden cells are free, visible ones cost 1 each or their value); the visible cells it moves are suppressed; zeros are never suppressed as secondaries; checked by the attacker's audit, with levels raised where whole numbers narrow an interval";

/// Counts and protects the plan's exact tables (before any charge), with those `linked` from
/// earlier releases.
pub fn protect(
    plan: &Plan,
    data: &mut InputData,
    linked: &[(LinkedTable, Linked)],
) -> Result<Vec<ExactTable>, Error> {
    let counts = (0..plan.exact_tables.len())
        .map(|e| data.take_exact_table(plan, e))
        .collect::<Result<Vec<_>, _>>()?;
    let linked: Vec<Linked> = linked.iter().map(|(_, l)| l.clone()).collect();
    Ok(tables::protect_tables(plan, &counts, &linked)?)
}

/// The exact tables that earlier releases of this dataset published from the same data (the
/// same input fingerprint in their ledger charge), read from their folders, and counted again on
/// this read's inputs (a second pass, only when there are any): a new pattern must keep their
/// published cells, keep their hidden cells hidden and keep their small cells protected. With
/// `new_version`, the earlier versions of this very release are among them (they stay public).
pub fn linked(
    plan: &Plan,
    ledger_file: &Path,
    fingerprints: &BTreeMap<String, String>,
    options: &ReadOptions,
    new_version: bool,
) -> Result<Vec<(LinkedTable, Linked)>, Error> {
    if plan.exact_tables.is_empty() {
        return Ok(Vec::new());
    }
    let ledger = Ledger::read(ledger_file)?;
    let mut found: Vec<(LinkedTable, ExactTableSpec, Vec<Option<i64>>)> = Vec::new();
    for c in ledger.charges() {
        let charge = c.charge;
        // A re-run of this very release is decided by the ledger, not linked to itself; a new
        // version is published beside the earlier ones, so it is protected with them.
        let itself = !new_version
            && charge.release_id == plan.release_id
            && charge.plan_sha256 == plan.plan_sha256;
        if charge.exact_tables.is_empty() || charge.dataset != plan.dataset || itself {
            continue;
        }
        let same_data = |input: &str| {
            charge.inputs.contains_key(input) && charge.inputs.get(input) == fingerprints.get(input)
        };
        if !plan
            .exact_tables
            .iter()
            .any(|t| same_data(&plan.inputs[t.input].name))
        {
            continue;
        }
        let Some(publication) = ledger.publication_of(c.seq) else {
            continue; // charged, never published: nothing of it is public
        };
        let dir = ledger.resolve(&publication.out_dir);
        let cannot = |why: String| {
            Error::Usage(format!(
                "exact tables: release `{}` version {} published exact tables of the same data, and this release must be protected together with them, but its folder `{}` cannot be read ({why}); restore it from the ledger's records",
                charge.release_id,
                charge.version,
                dir.display()
            ))
        };
        let earlier = output::read_published(&dir).map_err(|(_, why)| cannot(why))?;
        // Its files are checked against its manifest above; the manifest against the ledger here,
        // so an edited manifest (other rules, other cells) is refused, never trusted.
        if earlier.manifest_sha256 != publication.manifest_sha256 {
            return Err(cannot(
                "its manifest.json differs from the one the ledger recorded when it was published"
                    .into(),
            ));
        }
        for entry in &earlier.manifest.exact_tables {
            let Some(input) = plan.inputs.iter().position(|i| i.name == entry.input) else {
                continue;
            };
            if !same_data(&entry.input) {
                continue;
            }
            let bytes = std::fs::read(dir.join(format!("{}.csv", entry.name)))
                .map_err(|e| cannot(e.to_string()))?;
            let (categories, values) = output::read_exact(&bytes, entry).map_err(&cannot)?;
            let dims = entry
                .dimensions
                .iter()
                .zip(&categories)
                .map(|(name, cats)| {
                    plan.dimensions
                        .iter()
                        .position(|d| d.name == *name && d.categories == *cats)
                })
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| {
                    cannot(format!(
                        "its table `{}` has dimensions or categories this policy does not declare",
                        entry.name
                    ))
                })?;
            let link = LinkedTable {
                release_id: charge.release_id.clone(),
                version: charge.version,
                table: entry.name.clone(),
            };
            let spec = ExactTableSpec {
                name: format!("{}/{}", charge.release_id, entry.name),
                input,
                dims,
                margins: entry.margins,
                sum: (entry.statistic != "count_units").then(|| ExactSum {
                    column: entry.column.clone(),
                    dominance: entry.primary_rule.dominance,
                    p_percent: entry.primary_rule.p_percent,
                }),
                min_frequency: entry.primary_rule.min_frequency,
                zeros_primary: entry.primary_rule.zeros_suppressed,
                interval_percent: entry.interval_percent,
                secondary: SecondaryObjective::Cells,
                total_label: entry.total_label.clone(),
                groups: entry.groups.clone(),
            };
            found.push((link, spec, values));
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    // Their cells counted on this data: the earlier tables as this plan's exact tables.
    let mut counting = plan.clone();
    counting.tables.clear();
    counting.exact_tables = found.iter().map(|(_, spec, _)| spec.clone()).collect();
    let mut data = input::read_all(&counting, options)?;
    found
        .into_iter()
        .enumerate()
        .map(|(e, (link, spec, published))| {
            let counts = data.take_exact_table(&counting, e)?;
            Ok((
                link,
                Linked {
                    spec,
                    counts,
                    published,
                },
            ))
        })
        .collect()
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
            margins: t.margins,
            total: &t.total_label,
            groups: t
                .groups
                .iter()
                .map(|g| g.iter().map(|g| g.name.as_str()).collect())
                .collect(),
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
        // How far from the minimum, for the officer only: the bound is the cost of a set of
        // hidden cells (with `secondary = "value"`, a sum of their values), never published.
        if let Method::Completed { at_least } = table.method {
            let bound = match t.secondary {
                SecondaryObjective::Cells => format!("has at least {at_least} secondary cells"),
                SecondaryObjective::Value => {
                    format!("hides at least {at_least} in value in its secondary cells")
                }
            };
            let _ = writeln!(
                lines,
                "    {}: not proven minimal (the exact method reached its limits); every pattern that protects the small cells {bound} (not published)",
                t.name
            );
        }
        entries.push(ExactTableEntry {
            name: t.name.clone(),
            files: names,
            input: plan.inputs[t.input].name.clone(),
            statistic: t.statistic().into(),
            column: t.sum.as_ref().and_then(|s| s.column.clone()),
            dimensions: published.dimensions.iter().map(|d| d.to_string()).collect(),
            cells: table.values.len(),
            margins: t.margins,
            protection: "cell_suppression".into(),
            guarantee: format!(
                "not differentially private: {} {}; {} are suppressed, with further cells so that no combination of the published cells narrows it below its protection interval",
                t.values_phrase(&plan.privacy_unit),
                t.margins_phrase(),
                t.rules_phrase(&plan.privacy_unit)
            ),
            total_label: t.total_label.clone(),
            groups: t.groups.clone(), // absent from the JSON when there are none
            primary_rule: PrimaryRule {
                min_frequency: t.min_frequency,
                zeros_suppressed: t.zeros_primary,
                dominance: t.sum.as_ref().and_then(|s| s.dominance),
                p_percent: t.sum.as_ref().and_then(|s| s.p_percent),
            },
            interval_percent: t.interval_percent,
            secondary_objective: t.secondary.name().into(),
            secondary_method: match table.method {
                Method::Optimal => OPTIMAL.into(),
                Method::Completed { .. } => COMPLETED.into(),
                Method::Heuristic => HEURISTIC.into(),
            },
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
