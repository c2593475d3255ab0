//! The differentially private tables after their noise: each estimated with its group or
//! finished alone (clamped, suppressed on noisy values, summed into margins, with shares and
//! margins of error), formatted as files, and described for the manifest and the officer. Noisy
//! values only: the noise itself is drawn in `release.rs`, the one file that applies it.

use std::fmt::Write as _;

use crate::error::Error;
use crate::input::InputData;
use crate::output::{
    self, ConsistencyGroup, Contributors, PublishedTable, Reliability, TableEntry, Totals,
};
use crate::policy::{Plan, Statistic, TableSpec};
use crate::protect::TableNoise;
use crate::protect::accuracy::{self, ErrorModel};
use crate::protect::consistency::{self, Tolerance};
use crate::protect::postprocess::{Cell, finish_cells, finish_sum_cells};
use crate::protect::totals::{self, Margin};

/// The summary lines, the manifest's table entries and notes for the officer.
#[derive(Default)]
pub(super) struct Summary {
    pub text: String,
    pub entries: Vec<TableEntry>,
    pub groups: Vec<ConsistencyGroup>,
    pub notes: Vec<String>,
}

/// A warning for each input without rows.
pub(super) fn empty_inputs(plan: &Plan, data: &InputData) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, (spec, result)) in plan.inputs.iter().zip(&data.results).enumerate() {
        if result.rows == 0 {
            let dp = plan.tables.iter().any(|t| t.input == i);
            notes.push(format!(
                "warning: input `{}` has no rows: {}",
                spec.name,
                if dp {
                    "its DP tables are noise only"
                } else {
                    "its exact tables are all zeros"
                }
            ));
        }
    }
    notes
}

/// A table estimated with its group: the group, a cell's margin of error, how its cells err and
/// where its margins are summed from.
pub(super) struct EstimatedTable {
    group: usize,
    margin_of_error: i64,
    error: ErrorModel,
    source: totals::Source,
}

/// Per table, its estimate with its group (`None`: drawn alone, or its group published as drawn).
pub(super) fn estimated_tables(
    plan: &Plan,
    applied: &[consistency::Applied],
) -> Vec<Option<EstimatedTable>> {
    let mut estimated: Vec<Option<EstimatedTable>> = (0..plan.tables.len()).map(|_| None).collect();
    for (g, a) in applied.iter().enumerate() {
        if let Ok(e) = &a.outcome {
            for (k, &t) in a.group.tables.iter().enumerate() {
                estimated[t] = Some(EstimatedTable {
                    group: g,
                    margin_of_error: e.margins[k],
                    error: e.errors[k],
                    source: e.sources[k].clone(),
                });
            }
        }
    }
    estimated
}

/// One table after post-processing: what it publishes, from noisy values only.
pub(super) struct Finished {
    cells: Vec<Cell>,
    /// A sum's noisy counts of contributors, as published.
    counts: Option<Vec<Option<i64>>>,
    suppressed: usize,
    margin_of_error: i64,
    contributors_margin: Option<i64>,
    group: Option<usize>,
    /// Its margins and grand total.
    margins: Vec<Margin>,
    /// Its shares of its total, when the policy asks for them and the total is positive.
    shares: Option<accuracy::Shares>,
}

/// Clamps, suppresses and sums one table's noisy values (its group's estimate when it has one),
/// with their margins of error and shares.
pub(super) fn finish_table(
    plan: &Plan,
    (t, m): (&TableSpec, &TableNoise),
    noisy: Vec<i64>,
    noisy_contributors: Option<Vec<i64>>,
    estimated: Option<EstimatedTable>,
) -> Result<Finished, Error> {
    let non_negative = t.statistic.is_non_negative();
    let clamped = |values: &[i64]| -> Vec<i64> {
        values
            .iter()
            .map(|&v| if non_negative { v.max(0) } else { v })
            .collect()
    };
    let contributors_margin = match &m.contributors {
        Some(c) => Some(c.margin_of_error(t.confidence)?),
        None => None,
    };
    let cell_margin = m.values.margin_of_error(t.confidence)?;
    let group = estimated.as_ref().map(|e| e.group);
    // The table's margins and grand total, summed from what it publishes (before suppression):
    // its group's union table, or its own cells.
    let (source, estimate) = match estimated {
        Some(e) => (e.source, Some((e.margin_of_error, e.error))),
        None => (
            totals::Source::alone(
                plan.dimension_categories(&t.dims)
                    .iter()
                    .map(|c| c.len())
                    .collect(),
                clamped(&noisy),
                &noisy,
                m.values.variance(),
                cell_margin,
            ),
            None,
        ),
    };
    let margins = source.margins(t.confidence);
    let (margin_of_error, error) = match estimate {
        Some(estimate) => estimate,
        None => (
            cell_margin,
            ErrorModel {
                // The clamped cells' total, measured from the raw noisy total.
                total_shift: margins.last().map_or(0.0, |total| {
                    (total.values[0] as f64 - noisy.iter().map(|&v| v as f64).sum::<f64>()).abs()
                }),
                ..ErrorModel::drawn(m.values.variance(), noisy.len(), cell_margin)
            },
        ),
    };
    let shares = plan
        .presentation
        .shares(&t.name)
        .then(|| accuracy::shares(&clamped(&noisy), error, t.confidence))
        .flatten();
    let (cells, counts, suppressed) = match noisy_contributors {
        Some(n) => {
            let (cells, counts, suppressed) =
                finish_sum_cells(noisy, non_negative, n, t.suppress_below);
            (cells, Some(counts), suppressed)
        }
        // A sum without its count of contributors suppresses nothing (the policy requires
        // `suppress_below = 0` then): its noisy value must never decide.
        None if matches!(t.statistic, Statistic::Sum { .. }) => {
            let (cells, suppressed) = finish_cells(noisy, non_negative, i64::MIN);
            (cells, None, suppressed)
        }
        None => {
            let (cells, suppressed) = finish_cells(noisy, non_negative, t.suppress_below);
            (cells, None, suppressed)
        }
    };
    Ok(Finished {
        cells,
        counts,
        suppressed,
        margin_of_error,
        contributors_margin,
        group,
        margins,
        shares,
    })
}

/// Formats one finished table's files (its CSV, and its JSON when asked), its summary line, its
/// notes and its manifest entry.
pub(super) fn publish_table(
    plan: &Plan,
    (t, m): (&TableSpec, &TableNoise),
    f: &Finished,
    (drawn_alone, json): (Option<String>, bool),
    files: &mut output::Files,
    summary: &mut Summary,
) -> Result<(), Error> {
    let moe = f.margin_of_error;
    let published_shares = published_shares(f);
    let table = published_table(plan, t, f, published_shares.as_deref());
    let reliability = reliability(&table, f.cells.len() - f.suppressed);
    if let Some(note) = reliability_note(&t.name, &table, &reliability, moe) {
        summary.notes.push(note);
    }
    let mut names = vec![format!("{}.csv", t.name)];
    let csv = output::published_csv(table.to_csv(), &table.dimensions, &plan.presentation);
    files.push((names[0].clone(), csv));
    if json {
        names.push(format!("{}.json", t.name));
        files.push((names[1].clone(), table.to_json()));
    }
    let _ = writeln!(
        summary.text,
        "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
        t.name,
        f.cells.len(),
        f.suppressed,
        t.mechanism.to_string(),
        m.cost()?.to_string(),
        format!("±{moe} ({}%)", t.confidence * 100.0)
    );
    if !plan.bounds_enforced(t) {
        summary.notes.push(format!(
            "note: `{}` reads pre-counted input: it is differentially private only if the declared bound holds (safestat cannot enforce it)",
            t.name
        ));
    }
    if plan.presentation.shares(&t.name) && f.shares.is_none() {
        summary.notes.push(format!(
            "warning: `{}`: its published total is not positive, so no shares are given",
            t.name
        ));
    }
    summary.entries.push(output::dp_table_entry(
        plan,
        t,
        m,
        output::Drawn {
            files: names,
            cells: f.cells.len(),
            suppressed: f.suppressed,
            margin_of_error: moe,
            contributors_margin: f.contributors_margin,
            group: f.group,
            drawn_alone,
            reliability,
            total_rows: f.margins.iter().map(|m| m.values.len()).sum(),
            shares: f.shares.as_ref(),
        },
    )?);
    Ok(())
}

/// The shares published beside a finished table's cells: a suppressed cell's is not shown
/// either (it would give its value back).
fn published_shares(f: &Finished) -> Option<Vec<Option<(f64, f64)>>> {
    f.shares.as_ref().map(|s| {
        s.cells
            .iter()
            .zip(&f.cells)
            .map(|(&share, cell)| cell.value.map(|_| share))
            .collect()
    })
}

/// DP table `t` as published from its finished cells, with `shares` beside them.
fn published_table<'a>(
    plan: &'a Plan,
    t: &'a TableSpec,
    f: &'a Finished,
    shares: Option<&'a [Option<(f64, f64)>]>,
) -> PublishedTable<'a> {
    let is_sum = matches!(t.statistic, Statistic::Sum { .. });
    PublishedTable {
        name: &t.name,
        dimensions: plan.dimension_names(&t.dims),
        categories: plan.dimension_categories(&t.dims),
        cells: &f.cells,
        margin_of_error: f.margin_of_error,
        confidence: t.confidence,
        // A sum's flag needs a noisy count of its contributors, never its noisy value alone.
        unreliable_above: (!is_sum || f.counts.is_some())
            .then_some(plan.presentation.unreliable_above),
        contributors: f
            .counts
            .as_deref()
            .zip(f.contributors_margin)
            .map(|(counts, moe)| Contributors {
                counts,
                margin_of_error: moe,
            }),
        shares,
        totals: Some(Totals {
            label: &t.total_label,
            margins: &f.margins,
        }),
    }
}

/// How a published table's cells are flagged unreliable, and how many are.
fn reliability(table: &PublishedTable, cells_published: usize) -> Reliability {
    let share = table.unreliable_above.unwrap_or_default();
    Reliability {
        rule: match (table.unreliable_above, &table.contributors) {
            (Some(_), Some(c)) => format!(
                "a published cell is flagged `unreliable` when the margin of error of its count of contributors (±{}) is above {share} times that count, or its own margin is above {share} times its value",
                c.margin_of_error
            ),
            (Some(_), None) => format!(
                "a published cell whose margin of error is above {share} times its value is flagged `unreliable`"
            ),
            (None, _) => "not flagged: a sum's reliability must be judged with a noisy count of its contributors, which this table does not measure (`contributors_cost`)".into(),
        },
        unreliable_above: table.unreliable_above,
        cells_flagged: table.flagged(),
        cells_published,
    }
}

/// The officer's note on a table with flagged cells.
fn reliability_note(
    name: &str,
    table: &PublishedTable,
    reliability: &Reliability,
    moe: i64,
) -> Option<String> {
    let share = reliability.unreliable_above?;
    (reliability.cells_flagged > 0).then(|| {
        let pct = share * 100.0;
        let of = match &table.contributors {
            Some(c) => format!(
                "above {pct}% of their value, or one of ±{} above {pct}% of their count of contributors",
                c.margin_of_error
            ),
            None => format!("above {pct}% of their value"),
        };
        format!(
            "reliability: `{name}`: {} of {} published cells have a margin of error (±{moe}) {of}; flagged `unreliable` in every output",
            reliability.cells_flagged, reliability.cells_published,
        )
    })
}

/// The officer's note on a group: estimated together, or published as drawn and why.
pub(super) fn group_note(plan: &Plan, a: &consistency::Applied) -> String {
    let names: Vec<&str> = a
        .group
        .tables
        .iter()
        .map(|&t| plan.tables[t].name.as_str())
        .collect();
    match &a.outcome {
        Ok(consistency::Estimated { tolerance, .. }) => format!(
            "consistent: {} estimated together as one {}-cell table ({}; {:.2} s)",
            names.join(", "),
            a.group.union_cells,
            match tolerance {
                Tolerance::Within(0) => "controlled rounding".to_string(),
                Tolerance::Within(w) => format!("rounded within {}", w + 1),
                Tolerance::Cumulative =>
                    "cumulative rounding: the grand total within 1".to_string(),
            },
            a.elapsed.as_secs_f64()
        ),
        Err(reason) => format!(
            "warning: {} measure the same quantity but are published as drawn, so their margins may disagree: {reason}",
            names.join(", ")
        ),
    }
}
