//! Validation of the `[[table]]` sections: one small function per field kind.
//!
//! Every field of [`DpTableSection`] is destructured in [`table`], so a new field cannot skip
//! validation; each problem is reported against the table and the field, and all of them are
//! collected before the policy is refused.

use std::collections::{BTreeSet, HashSet};

use super::fields::{
    Defaults, Problems, TableProblems, check_name, cost_from_section, input_of, parse_mechanism,
    total_label_of,
};
use super::file::{CostSection, DpTableSection, Refused};
use super::names::{did_you_mean, nfc};
use super::plan::{CostSource, Dimension, InputKind, InputSpec, TableSpec};
use super::statistic::{MAX_CELLS_PER_TABLE, MAX_SLOTS, MAX_UNIT_CONTRIBUTION, Statistic};
use crate::privacy::{Cost, Mechanism, positive_finite};

/// What every table is checked against: the sections validated before the tables.
pub(super) struct TableContext<'a> {
    pub inputs: &'a [InputSpec],
    pub dimensions: &'a [Dimension],
    pub privacy_unit: &'a str,
    /// `[release] cost`, shared by the tables that give a `weight`.
    pub release_cost: Option<Cost>,
    pub defaults: Defaults,
}

impl TableProblems<'_> {
    /// A required contribution bound: at least 1 and at most [`MAX_SLOTS`].
    fn bound(&mut self, field: &str, value: Option<u32>) -> Option<u32> {
        match value {
            Some(0) => {
                self.fail(field, "must be at least 1".to_string());
                None
            }
            Some(v) if v > MAX_SLOTS => {
                self.fail(
                    field,
                    format!(
                        "`{v}` is above the limit of {MAX_SLOTS}: every unit reserves that many slots in memory"
                    ),
                );
                None
            }
            Some(v) => Some(v),
            None => {
                self.fail(field, format!("`{field}` is required for this statistic"));
                None
            }
        }
    }
}

/// Validates every table; returns the valid ones (the policy is refused if any problem was
/// found).
pub(super) fn tables(
    sections: Vec<(DpTableSection, Vec<Refused>)>,
    context: &TableContext,
    problems: &mut Problems,
) -> Vec<TableSpec> {
    let total_weight: f64 = sections
        .iter()
        .filter_map(|(t, _)| t.weight)
        .filter(|w| *w > 0.0)
        .sum();
    let mut names = BTreeSet::new();
    let mut specs = Vec::new();
    for (i, (section, refused)) in sections.into_iter().enumerate() {
        let label = if section.name.is_empty() {
            format!("[[table]] #{}", i + 1)
        } else {
            format!("table `{}`", section.name)
        };
        let mut at = TableProblems {
            problems,
            label,
            ok: true,
        };
        for (field, message) in refused {
            at.fail(field, message);
        }
        if let Some(spec) = table(section, context, total_weight, &mut names, &mut at) {
            specs.push(spec);
        }
    }
    specs
}

/// The contribution bounds as written.
struct BoundFields {
    max_cells_per_unit: Option<u32>,
    max_rows_per_unit: Option<u32>,
    max_rows_per_cell: Option<u32>,
}

fn table(
    section: DpTableSection,
    context: &TableContext,
    total_weight: f64,
    names: &mut BTreeSet<String>,
    at: &mut TableProblems,
) -> Option<TableSpec> {
    let DpTableSection {
        name,
        input,
        statistic,
        by,
        column,
        total_label,
        clamp,
        max_cells_per_unit,
        max_rows_per_unit,
        max_rows_per_cell,
        cost,
        weight,
        contributors_cost,
        mechanism,
        suppress_below,
        confidence,
        consistent,
        shares,
        expected_cell_size,
    } = section;
    if expected_cell_size == Some(0) {
        at.fail(
            "expected_cell_size",
            "must be at least 1 (the size you expect a typical cell to have)".to_string(),
        );
    }
    let by: Vec<String> = by.into_iter().map(nfc).collect();
    let column = column.map(nfc);
    check_name(&name, names, at);
    let input = input_of(&input, context.inputs, at);
    let input_kind = input.map(|i| &context.inputs[i].kind);
    let dims = dimensions_of(&by, input_kind, context, at);
    let total_label = total_label_of(total_label, &dims, context.dimensions, at);
    let bounds = BoundFields {
        max_cells_per_unit,
        max_rows_per_unit,
        max_rows_per_cell,
    };
    let statistic = statistic_of(
        &statistic, column, clamp, bounds, &by, input_kind, context, at,
    );
    if shares == Some(true) && statistic.as_ref().is_some_and(|s| !s.is_non_negative()) {
        at.fail(
            "shares",
            "a share of the total needs values that cannot be negative; this sum's `clamp` lets rows be below 0".to_string(),
        );
    }
    let cost = cost_of(cost, weight, context.release_cost, total_weight, at);
    let mechanism = mechanism_of(mechanism.as_deref(), cost, context.defaults.mechanism, at);
    let (suppress_below, confidence) =
        thresholds(suppress_below, confidence, &context.defaults, at);
    let contributors_cost = contributors_of(
        contributors_cost,
        statistic.as_ref(),
        mechanism,
        suppress_below,
        at,
    );
    match (at.ok, input, statistic, cost, mechanism) {
        (true, Some(input), Some(statistic), Some((cost, cost_source)), Some(mechanism)) => {
            Some(TableSpec {
                name,
                input,
                statistic,
                dims,
                mechanism,
                cost,
                cost_source,
                contributors_cost,
                suppress_below,
                confidence,
                consistent: consistent.or(context.defaults.consistent).unwrap_or(true),
                expected_cell_size,
                total_label,
            })
        }
        _ => None,
    }
}

/// The `by` columns as indices into the plan's dimensions.
fn dimensions_of(
    by: &[String],
    input_kind: Option<&InputKind>,
    context: &TableContext,
    at: &mut TableProblems,
) -> Vec<usize> {
    let mut dims = Vec::new();
    let mut seen = HashSet::new();
    let mut cells: u64 = 1;
    for b in by {
        if !seen.insert(b.as_str()) {
            at.fail("by", format!("column `{b}` is listed twice"));
            continue;
        }
        if b == context.privacy_unit {
            at.fail(
                "by",
                format!("`{b}` is the privacy unit; publishing it per unit is never safe"),
            );
            continue;
        }
        if let Some(InputKind::Aggregated { count_column, .. }) = input_kind
            && b == count_column
        {
            at.fail("by", format!("`{b}` is the input's count column"));
            continue;
        }
        match context.dimensions.iter().position(|d| d.name == *b) {
            Some(d) => {
                dims.push(d);
                cells = cells.saturating_mul(context.dimensions[d].categories.len() as u64);
            }
            None => at.fail(
                "by",
                format!(
                    "column `{b}` has no declared categories; add `{b} = [...]` under [categories] (DP tables publish every declared cell, so the categories must be public){}",
                    did_you_mean(b, context.dimensions.iter().map(|d| d.name.as_str()))
                ),
            ),
        }
    }
    if cells > MAX_CELLS_PER_TABLE {
        at.fail(
            "by",
            format!(
                "the table would have {cells} cells, more than the limit of {MAX_CELLS_PER_TABLE}"
            ),
        );
    }
    dims
}

#[allow(clippy::too_many_arguments)]
fn statistic_of(
    statistic: &str,
    column: Option<String>,
    clamp: Option<[i64; 2]>,
    bounds: BoundFields,
    by: &[String],
    input_kind: Option<&InputKind>,
    context: &TableContext,
    at: &mut TableProblems,
) -> Option<Statistic> {
    match statistic {
        "count_units" => count_units(column.is_some(), clamp.is_some(), bounds, at),
        "count_rows" => count_rows(column.is_some(), clamp.is_some(), bounds, at),
        "sum" => {
            if matches!(input_kind, Some(InputKind::Aggregated { .. })) {
                at.fail(
                    "statistic",
                    "`sum` needs microdata: per-row clamping cannot be applied to an aggregated input".to_string(),
                );
            }
            sum(column, clamp, bounds, by, context.privacy_unit, at)
        }
        other => {
            at.fail(
                "statistic",
                format!(
                    "unknown statistic `{other}`; use `count_units`, `count_rows` or `sum`{}",
                    did_you_mean(other, ["count_units", "count_rows", "sum"])
                ),
            );
            None
        }
    }
}

fn count_units(
    column: bool,
    clamp: bool,
    bounds: BoundFields,
    at: &mut TableProblems,
) -> Option<Statistic> {
    at.forbid("column", column, "count_units counts units, not a column");
    at.forbid("clamp", clamp, "only sums are clamped");
    at.forbid(
        "max_rows_per_unit",
        bounds.max_rows_per_unit.is_some(),
        "count_units bounds cells per unit; use max_cells_per_unit",
    );
    at.forbid(
        "max_rows_per_cell",
        bounds.max_rows_per_cell.is_some(),
        "count_units counts each unit once per cell",
    );
    at.bound("max_cells_per_unit", bounds.max_cells_per_unit)
        .map(|c| Statistic::CountUnits {
            max_cells_per_unit: c,
        })
}

fn count_rows(
    column: bool,
    clamp: bool,
    bounds: BoundFields,
    at: &mut TableProblems,
) -> Option<Statistic> {
    at.forbid("column", column, "count_rows counts rows, not a column");
    at.forbid("clamp", clamp, "only sums are clamped");
    at.forbid(
        "max_cells_per_unit",
        bounds.max_cells_per_unit.is_some(),
        "count_rows bounds rows; use max_rows_per_unit",
    );
    row_bounds(&bounds, at).map(|(k, m)| Statistic::CountRows {
        max_rows_per_unit: k,
        max_rows_per_cell: m,
    })
}

fn sum(
    column: Option<String>,
    clamp: Option<[i64; 2]>,
    bounds: BoundFields,
    by: &[String],
    privacy_unit: &str,
    at: &mut TableProblems,
) -> Option<Statistic> {
    at.forbid(
        "max_cells_per_unit",
        bounds.max_cells_per_unit.is_some(),
        "sum bounds rows; use max_rows_per_unit",
    );
    let column = match column {
        Some(c) if !c.trim().is_empty() => {
            if c == privacy_unit || by.contains(&c) {
                at.fail("column", format!("`{c}` cannot be both summed and a key"));
            }
            Some(c)
        }
        _ => {
            at.fail("column", "`sum` needs the `column` to add up".to_string());
            None
        }
    };
    let clamp = clamp_of(clamp, at);
    let rows = row_bounds(&bounds, at);
    if let (Some([lo, hi]), Some((k, _))) = (clamp, rows) {
        let b = lo.unsigned_abs().max(hi.unsigned_abs());
        let worst = u128::from(b) * u128::from(k);
        if worst > MAX_UNIT_CONTRIBUTION {
            at.fail(
                "clamp",
                format!(
                    "one unit could move a cell by {worst} ({k} rows of up to {b}), more than 2^53 = {MAX_UNIT_CONTRIBUTION}, the largest sensitivity a 64-bit float holds exactly; narrow the clamp or lower max_rows_per_unit"
                ),
            );
        }
    }
    match (column, clamp, rows) {
        (Some(column), Some([lo, hi]), Some((k, m))) => Some(Statistic::Sum {
            column,
            lo,
            hi,
            max_rows_per_unit: k,
            max_rows_per_cell: m,
        }),
        _ => None,
    }
}

fn clamp_of(clamp: Option<[i64; 2]>, at: &mut TableProblems) -> Option<[i64; 2]> {
    match clamp {
        Some([lo, hi]) if lo > hi => {
            at.fail(
                "clamp",
                format!("lower bound `{lo}` is greater than upper bound `{hi}`"),
            );
            None
        }
        Some([0, 0]) => {
            at.fail("clamp", "`[0, 0]` makes every sum zero".to_string());
            None
        }
        Some(c) => Some(c),
        None => {
            at.fail(
                "clamp",
                "`sum` needs `clamp = [lower, upper]` to bound each row".to_string(),
            );
            None
        }
    }
}

/// `(max_rows_per_unit, max_rows_per_cell)`, the second defaulting to the first.
fn row_bounds(bounds: &BoundFields, at: &mut TableProblems) -> Option<(u32, u32)> {
    let k = at.bound("max_rows_per_unit", bounds.max_rows_per_unit)?;
    let m = match bounds.max_rows_per_cell {
        None => k,
        Some(0) => {
            at.fail("max_rows_per_cell", "must be at least 1".to_string());
            return None;
        }
        Some(m) if m > k => {
            at.fail(
                "max_rows_per_cell",
                format!("`{m}` is more than max_rows_per_unit `{k}`"),
            );
            return None;
        }
        Some(m) => m,
    };
    Some((k, m))
}

/// The table's cost: its own `cost`, or its `weight` share of `[release] cost`.
fn cost_of(
    cost: Option<CostSection>,
    weight: Option<f64>,
    release_cost: Option<Cost>,
    total_weight: f64,
    at: &mut TableProblems,
) -> Option<(Cost, CostSource)> {
    match (cost, weight) {
        (Some(_), Some(_)) => {
            at.fail(
                "cost",
                "give either `cost` or `weight`, not both".to_string(),
            );
            None
        }
        (None, None) => {
            at.fail(
                "cost",
                "every table needs a privacy `cost` (or a `weight` share of [release] cost)"
                    .to_string(),
            );
            None
        }
        (Some(c), None) => match cost_from_section(&c) {
            Ok(c) => Some((c, CostSource::Declared)),
            Err(msg) => {
                at.fail("cost", msg);
                None
            }
        },
        (None, Some(w)) => {
            let w = match positive_finite("weight", w) {
                Ok(w) => w,
                Err(msg) => {
                    at.fail("weight", msg.replace("`weight` must be", "must be"));
                    return None;
                }
            };
            let Some(total) = release_cost else {
                at.fail(
                    "weight",
                    "a `weight` needs a total `cost` under [release]".to_string(),
                );
                return None;
            };
            let share = w / total_weight;
            let c = match total {
                Cost::Epsilon(e) => Cost::Epsilon(e * share),
                Cost::Rho(r) => Cost::Rho(r * share),
            };
            Some((
                c,
                CostSource::Weight {
                    weight: w,
                    total_weight,
                },
            ))
        }
    }
}

/// The table's mechanism: its own, else the one its cost implies (epsilon: Laplace), else the
/// default.
fn mechanism_of(
    mechanism: Option<&str>,
    cost: Option<(Cost, CostSource)>,
    default: Option<Mechanism>,
    at: &mut TableProblems,
) -> Option<Mechanism> {
    let mechanism = match mechanism.map(parse_mechanism) {
        Some(Ok(m)) => Some(m),
        Some(Err(msg)) => {
            at.fail("mechanism", msg);
            None
        }
        None => match cost {
            Some((Cost::Epsilon(_), _)) => Some(Mechanism::Laplace),
            _ => Some(default.unwrap_or(Mechanism::Gaussian)),
        },
    };
    if let (Some(Mechanism::Gaussian), Some((Cost::Epsilon(_), _))) = (mechanism, cost) {
        at.fail(
            "mechanism",
            "the discrete Gaussian cannot satisfy pure DP (a cost in epsilon); use `laplace`, or give the cost in `rho`".to_string(),
        );
    }
    mechanism
}

/// A sum's `contributors_cost`: the noisy count of each cell's contributors decides its
/// suppression (never the noisy sum: noise can push a large sum under the threshold), so a sum
/// that suppresses must measure it.
fn contributors_of(
    section: Option<CostSection>,
    statistic: Option<&Statistic>,
    mechanism: Option<Mechanism>,
    suppress_below: i64,
    at: &mut TableProblems,
) -> Option<Cost> {
    let statistic = statistic?;
    let is_sum = matches!(statistic, Statistic::Sum { .. });
    let Some(section) = section else {
        if is_sum && suppress_below > 0 {
            at.fail(
                "contributors_cost",
                format!(
                    "a sum is suppressed on the noisy number of its contributors, never on its noisy value: give `contributors_cost = {{ rho = 0.01 }}` (or `{{ epsilon = 0.1 }}`), charged on top of `cost`, or `suppress_below = 0` to publish every cell (now {suppress_below})"
                ),
            );
        }
        return None;
    };
    if !is_sum {
        at.forbid(
            "contributors_cost",
            true,
            "only a sum measures the count of its contributors (a count is its own count)",
        );
        return None;
    }
    match cost_from_section(&section) {
        Ok(Cost::Epsilon(_)) if mechanism == Some(Mechanism::Gaussian) => {
            at.fail(
                "contributors_cost",
                "the discrete Gaussian cannot satisfy pure DP (a cost in epsilon); give it in `rho`, or use `mechanism = \"laplace\"`".to_string(),
            );
            None
        }
        Ok(c) => Some(c),
        Err(msg) => {
            at.fail("contributors_cost", msg);
            None
        }
    }
}

/// `suppress_below` and `confidence`, from the table or the defaults.
fn thresholds(
    suppress_below: Option<i64>,
    confidence: Option<f64>,
    defaults: &Defaults,
    at: &mut TableProblems,
) -> (i64, f64) {
    let suppress_below = suppress_below.or(defaults.suppress_below).unwrap_or(10);
    if suppress_below < 0 {
        at.fail(
            "suppress_below",
            format!("must be 0 or more, got `{suppress_below}`"),
        );
    }
    let confidence = confidence.or(defaults.confidence).unwrap_or(0.95);
    if !(confidence > 0.0 && confidence < 1.0) {
        at.fail(
            "confidence",
            format!("must be strictly between 0 and 1, got `{confidence}`"),
        );
    }
    (suppress_below, confidence)
}
