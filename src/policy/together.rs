//! Which DP tables are estimated together, decided from the plan alone (never from the data).
//!
//! A least-squares fit may only combine measurements of one quantity. A **group** is two or more
//! tables that are exact margins of one *bounded* union table: the input's rows are bounded once,
//! at the union's cells (every dimension any of the tables uses), and every table of the group is
//! summed from that one bounded table (`input` does both). That holds when the statistic's bounds
//! mean the same at every level of detail:
//!
//! - `count_units` with `max_cells_per_unit = 1`: each unit is kept in one union cell, so it is in
//!   one cell of every margin, and a margin's cell is the number of units whose kept union cell
//!   lies in it. With `c > 1` a unit kept in two union cells that fall in one margin cell counts
//!   once there, not twice: the margin is not the sum of the cells it covers.
//! - `count_rows` and `sum` whose `max_rows_per_cell` does not bind (it is `max_rows_per_unit`):
//!   each unit keeps `k` rows wherever they fall, and every table adds the same kept rows. A
//!   binding per-cell cap keeps fewer of a unit's rows in a coarse cell than in the finer cells it
//!   covers.
//!
//! and the tables read the same input with the same statistic and the same bounds. Summing a
//! bounded union table keeps each table's own sensitivity: a unit in one union cell is in one
//! cell of a margin; a unit's `k` rows put at most `k` in any cell of any margin (the bound `m = k`
//! declares). So the costs opendp computes from each table's statistic are unchanged.
//!
//! Every other table is drawn alone, and [`Grouping::alone`] says why in one line.

use super::plan::{InputKind, Plan};
use super::statistic::{Bound, Statistic};

/// The largest union table estimated. The 17 x 9 x 7 x 2 = 2,142-cell group of BENCHMARKS.md
/// takes well under a second; the tables of a larger group are drawn alone, with the reason.
pub const MAX_UNION_CELLS: usize = 100_000;

/// Tables that are margins of one bounded table, estimated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Together {
    /// Indices into [`Plan::tables`], in policy order.
    pub tables: Vec<usize>,
    /// Indices into [`Plan::dimensions`]: the union table's dimensions, in order of first use.
    pub dims: Vec<usize>,
    /// The union table's cells.
    pub union_cells: usize,
}

/// The plan's groups, and why each other table is drawn alone.
#[derive(Debug, Clone, Default)]
pub struct Grouping {
    pub groups: Vec<Together>,
    /// `(table, reason)` for every table not in a group, in policy order.
    pub alone: Vec<(usize, String)>,
}

impl Grouping {
    /// The group of table `t`, if it has one.
    pub fn of(&self, t: usize) -> Option<usize> {
        self.groups.iter().position(|g| g.tables.contains(&t))
    }

    /// Why table `t` is drawn alone, if it is.
    pub fn reason(&self, t: usize) -> Option<&str> {
        self.alone
            .iter()
            .find(|(a, _)| *a == t)
            .map(|(_, r)| r.as_str())
    }
}

impl Together {
    /// Each table's dimensions as positions in the union's, in the table's own `by` order.
    pub fn axes(&self, plan: &Plan) -> Vec<Vec<usize>> {
        self.tables
            .iter()
            .map(|&t| {
                plan.tables[t]
                    .dims
                    .iter()
                    .map(|d| self.dims.iter().position(|u| u == d).expect("a union dim"))
                    .collect()
            })
            .collect()
    }

    /// The union's dimensions' numbers of categories.
    pub fn sizes(&self, plan: &Plan) -> Vec<usize> {
        self.dims
            .iter()
            .map(|&d| plan.dimensions[d].categories.len())
            .collect()
    }
}

/// Why a statistic's tables are not margins of one bounded table, if they are not.
pub fn not_margins(statistic: &Statistic, unit: &str) -> Option<String> {
    match statistic.bound() {
        Bound::Cells(1) => None,
        Bound::Cells(c) => Some(format!(
            "max_cells_per_unit = {c}: one {unit} kept in two cells of a finer table counts once in the coarser cell they share, so its cells are not sums of the finer table's"
        )),
        Bound::Rows { per_unit, per_cell } if per_cell >= per_unit => None,
        Bound::Rows { per_unit, per_cell } => Some(format!(
            "max_rows_per_cell = {per_cell} binds below max_rows_per_unit = {per_unit}: a coarser cell keeps fewer of one {unit}'s rows than the finer cells it covers, so the tables measure different totals"
        )),
        Bound::Whole => Some("an exact table".to_string()),
    }
}

/// The statistic without its bounds: what a table measures before bounding.
fn quantity(statistic: &Statistic) -> (&'static str, Option<(&str, i64, i64)>) {
    match statistic {
        Statistic::Sum { column, lo, hi, .. } => ("sum", Some((column.as_str(), *lo, *hi))),
        s => (s.name(), None),
    }
}

/// The plan's groups: tables of one input, statistic and bounds whose bounds make them margins of
/// one bounded table ([`not_margins`]), two or more, with a union of at most [`MAX_UNION_CELLS`]
/// cells, in the order of their first table. Reads the plan only.
pub fn grouping(plan: &Plan) -> Grouping {
    let mut candidates: Vec<Together> = Vec::new();
    let mut alone: Vec<(usize, String)> = Vec::new();
    for (i, t) in plan.tables.iter().enumerate() {
        let same_quantity = |j: usize| {
            let u = &plan.tables[j];
            j != i && u.input == t.input && quantity(&u.statistic) == quantity(&t.statistic)
        };
        if !t.consistent {
            alone.push((i, "`consistent = false` in the policy".to_string()));
            continue;
        }
        if let Some(why) = not_margins(&t.statistic, &plan.privacy_unit) {
            let reason = if (0..plan.tables.len()).any(same_quantity) {
                why
            } else {
                no_partner(plan, i)
            };
            alone.push((i, reason));
            continue;
        }
        let partner = candidates.iter_mut().find(|g| {
            let first = &plan.tables[g.tables[0]];
            first.input == t.input && first.statistic == t.statistic
        });
        match partner {
            Some(g) => {
                g.tables.push(i);
                for &d in &t.dims {
                    if !g.dims.contains(&d) {
                        g.dims.push(d);
                    }
                }
            }
            None => candidates.push(Together {
                tables: vec![i],
                dims: t.dims.clone(),
                union_cells: 0,
            }),
        }
    }
    let mut groups = Vec::new();
    for mut g in candidates {
        let cells = g.dims.iter().try_fold(1usize, |acc, &d| {
            acc.checked_mul(plan.dimensions[d].categories.len())
        });
        if g.tables.len() < 2 {
            let t = g.tables[0];
            let table = &plan.tables[t];
            // A table of the same quantity with other bounds, or none at all.
            let other = plan.tables.iter().enumerate().find(|&(j, u)| {
                j != t
                    && u.consistent
                    && u.input == table.input
                    && quantity(&u.statistic) == quantity(&table.statistic)
                    && not_margins(&u.statistic, &plan.privacy_unit).is_none()
            });
            let reason = match other {
                Some((_, u)) => format!(
                    "its bounds ({}) differ from `{}`'s ({}): tables estimated together must be bounded alike",
                    bounds(&table.statistic),
                    u.name,
                    bounds(&u.statistic)
                ),
                None => no_partner(plan, t),
            };
            alone.push((t, reason));
            continue;
        }
        match cells.filter(|&c| c <= MAX_UNION_CELLS) {
            Some(c) => {
                g.union_cells = c;
                groups.push(g);
            }
            None => {
                let reason = format!(
                    "its group's union table would have {} cells, more than the {MAX_UNION_CELLS} estimated in memory",
                    cells.map_or("more than 2^64".to_string(), |c| c.to_string())
                );
                alone.extend(g.tables.iter().map(|&t| (t, reason.clone())));
            }
        }
    }
    alone.sort_by_key(|(t, _)| *t);
    Grouping { groups, alone }
}

/// A table with no other table of its quantity.
fn no_partner(plan: &Plan, t: usize) -> String {
    let table = &plan.tables[t];
    let input = &plan.inputs[table.input];
    let counted = match input.kind {
        InputKind::Microdata => "",
        InputKind::Aggregated { .. } => " (pre-counted)",
    };
    format!(
        "no other table of input `{}`{counted} measures the same quantity",
        input.name
    )
}

/// A statistic's bounds as the policy writes them.
fn bounds(statistic: &Statistic) -> String {
    match statistic.bound() {
        Bound::Cells(c) => format!("max_cells_per_unit = {c}"),
        Bound::Rows { per_unit, per_cell } if per_cell >= per_unit => {
            format!("max_rows_per_unit = {per_unit}")
        }
        Bound::Rows { per_unit, per_cell } => {
            format!("max_rows_per_unit = {per_unit}, max_rows_per_cell = {per_cell}")
        }
        Bound::Whole => "none".to_string(),
    }
}
