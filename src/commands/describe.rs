//! How `check` and `plan` describe a table in one line: its statistic and its bounds.

use crate::policy::{Bound, Plan, Statistic, TableSpec};

pub(super) fn bounds(plan: &Plan, table: &TableSpec) -> String {
    let b = match table.statistic.bound() {
        Bound::Cells(c) => format!("{c} cell/unit"),
        Bound::Rows { per_unit, per_cell } if per_cell < per_unit => {
            format!("{per_unit} rows/unit, {per_cell}/cell")
        }
        Bound::Rows { per_unit, .. } => format!("{per_unit} rows/unit"),
        Bound::Whole => "every row".to_string(),
    };
    format!("{b} ({})", plan.bounds_status(table))
}

pub(super) fn statistic(table: &TableSpec) -> String {
    match &table.statistic {
        Statistic::Sum { column, lo, hi, .. } => format!("sum({column}) in [{lo}, {hi}]"),
        s => s.name().to_string(),
    }
}
