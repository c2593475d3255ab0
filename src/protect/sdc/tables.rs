//! A release's exact tables, protected together: every exact table with all its margins in one
//! [`Structure`] (tables of the same input share their common margins, so a pattern must hold
//! against every combination of them), each table's primary rule applied to its own cells (a
//! shared cell keeps the strictest levels), one secondary suppression, one audit.

use super::structure::Layout;
use super::{Interval, Levels, Objective, Protected, SdcError, Structure, levels, primary};
use crate::input::Counts;
use crate::policy::{ExactTableSpec, Group, Plan, SecondaryObjective};

/// One exact table as published: every point of its grid (inner cells and margins, each
/// dimension's categories then its total, first dimension slowest) with its value, `None` where
/// hidden, and the attacker's interval of each hidden point.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactTable {
    pub values: Vec<Option<i64>>,
    pub intervals: Vec<Option<Interval>>,
    /// How the secondary cells were chosen (one method for a release's linked tables).
    pub method: super::Method,
    /// How many of its hidden grid points are primary (small or sensitive) cells, the others
    /// being secondary. For the officer only: the published files mark both alike.
    pub primary: usize,
}

/// An exact table that an earlier release published from the same data: its specification in
/// this plan's terms (dimensions, rules), its inner cells from this read, and its published grid
/// (`None` where it was hidden). Its published cells are facts; its hidden cells stay hidden; its
/// primary cells must stay protected.
#[derive(Debug, Clone)]
pub struct Linked {
    pub spec: ExactTableSpec,
    pub counts: Counts,
    pub published: Vec<Option<i64>>,
}

/// The structure of exact tables `specs` (a plan's, and those linked from earlier releases): per
/// table, the cell of each grid point. Dimensions are told apart by input and by what is counted
/// or summed, so that tables of different inputs (which may count different people) or of
/// different quantities (a count and a sum of the same cells) are never linked.
///
/// `same_data[i]` is the input whose data input `i` holds (itself, or an earlier input of the same
/// bytes read the same way): tables of such inputs are tables of one data, and are linked.
pub fn structure(
    plan: &Plan,
    specs: &[&ExactTableSpec],
    same_data: &[usize],
) -> (Structure, Vec<Vec<usize>>) {
    let n = plan.dimensions.len();
    link(
        specs
            .iter()
            .zip(spaces(plan, specs, same_data))
            .map(|(t, space)| {
                let counts = t.sum.as_ref().is_none_or(|s| s.column.is_none());
                (
                    space as u32,
                    t.dims.iter().map(|&d| space * n + d).collect(),
                    layouts(plan, t),
                    t.margins,
                    floor(counts, t.zeros_primary || t.zeros_secondary),
                    t.zeros_secondary,
                )
            })
            .collect(),
    )
}

/// Each table's space: what it counts or sums (counts of units are measure 0, counts of rows and
/// each summed column the next) of which data (its input, or the input of the same data).
fn spaces(plan: &Plan, specs: &[&ExactTableSpec], same_data: &[usize]) -> Vec<usize> {
    let mut measures: Vec<Option<Option<String>>> = vec![None];
    specs
        .iter()
        .map(|t| {
            let m = t.sum.as_ref().map(|s| s.column.clone());
            let measure = measures.iter().position(|x| *x == m).unwrap_or_else(|| {
                measures.push(m);
                measures.len() - 1
            });
            let input = same_data.get(t.input).copied().unwrap_or(t.input);
            measure * plan.inputs.len() + input
        })
        .collect()
}

/// The most finest cells whose respondents are each taken as an insider ([`insiders`]); a
/// policy whose exact sums exceed it is refused before anything is read.
pub use crate::policy::MAX_FINEST_CELLS;

/// How many finest cells the data of exact tables `tables` has: the combinations of the
/// categories of `dims` (every dimension they are tabulated by, with `sizes` categories), at most
/// [`MAX_FINEST_CELLS`].
fn finest_cells(
    plan: &Plan,
    specs: &[&ExactTableSpec],
    (tables, dims): (&[usize], &[usize]),
    sizes: &[usize],
) -> Result<usize, SdcError> {
    sizes
        .iter()
        .try_fold(1usize, |p, &s| p.checked_mul(s))
        .filter(|&p| p <= MAX_FINEST_CELLS)
        .ok_or_else(|| SdcError::Described {
            input: true,
            message: format!(
                "exact tables {} together tabulate their data by [{}], more than {MAX_FINEST_CELLS} combinations of categories: too many for safestat to check each combination's respondents, who know their own contributions, against the suppression pattern. Publish fewer dimensions, or some of these tables with differential privacy. Nothing was charged",
                tables
                    .iter()
                    .map(|&t| format!("`{}`", specs[t].name))
                    .collect::<Vec<_>>()
                    .join(", "),
                plan.dimension_names(dims).join(", ")
            ),
        })
}

/// Per table of `tables`: the table, where each of its dimensions sits among `dims`, and its
/// grid's extent per dimension.
fn placed(
    plan: &Plan,
    specs: &[&ExactTableSpec],
    tables: &[usize],
    dims: &[usize],
) -> Vec<(usize, Vec<usize>, Vec<usize>)> {
    tables
        .iter()
        .map(|&t| {
            let spec = specs[t];
            let at = spec
                .dims
                .iter()
                .map(|d| dims.binary_search(d).expect("a dimension of the space"))
                .collect();
            let extent = layouts(plan, spec)
                .iter()
                .map(|l| {
                    if spec.margins {
                        l.positions()
                    } else {
                        l.categories
                    }
                })
                .collect();
            (t, at, extent)
        })
        .collect()
}

/// The insiders of the exact tables `specs` (laid out on `grids` of `structure`), one per
/// finest cell of each data (see [`super::Insider`]): its respondents are in one inner cell of
/// each table, and the largest of them contributes at most the least of those cells' largest
/// contributions (`top`, per cell: a count's unit contributes 1). Data whose insiders know
/// nothing the rules do not already make public (a count whose zeros are never hidden: each
/// knows its cell is at least 1) have none.
fn insiders(
    plan: &Plan,
    specs: &[&ExactTableSpec],
    (structure, grids): (&Structure, &[Vec<usize>]),
    spaces: &[usize],
    top: &[i64],
) -> Result<Vec<super::Insider>, SdcError> {
    let n = plan.dimensions.len();
    let mut by_space: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (t, &space) in spaces.iter().enumerate() {
        if !specs[t].dims.is_empty() {
            by_space.entry(space).or_default().push(t);
        }
    }
    let mut found = Vec::new();
    for (space, tables) in by_space {
        let knows_more = tables
            .iter()
            .any(|&t| grids[t].iter().any(|&c| top[c] > structure.floor(c)));
        if !knows_more {
            continue;
        }
        let mut dims: Vec<usize> = tables.iter().flat_map(|&t| specs[t].dims.clone()).collect();
        dims.sort_unstable();
        dims.dedup();
        let sizes: Vec<usize> = dims
            .iter()
            .map(|&d| plan.dimensions[d].categories.len())
            .collect();
        let finest = finest_cells(plan, specs, (&tables, &dims), &sizes)?;
        let placed = placed(plan, specs, &tables, &dims);
        for f in 0..finest {
            let coords = unravel(f, &sizes);
            let mut cells: Vec<usize> = placed
                .iter()
                .map(|(t, at, extent)| {
                    let p = at
                        .iter()
                        .zip(extent)
                        .fold(0, |p, (&k, &e)| p * e + coords[k]);
                    grids[*t][p]
                })
                .collect();
            let x = cells.iter().map(|&c| top[c]).min().unwrap_or(0);
            if x <= 0 {
                continue;
            }
            cells.sort_unstable();
            cells.dedup();
            let knows: Vec<(usize, i64)> = cells
                .into_iter()
                .filter(|&c| x > structure.floor(c))
                .map(|c| (c, x))
                .collect();
            if !knows.is_empty() {
                found.push(super::Insider {
                    keys: vec![
                        dims.iter()
                            .zip(&coords)
                            .map(|(&d, &c)| (space * n + d, c as u32))
                            .collect(),
                    ],
                    knows,
                });
            }
        }
    }
    Ok(found)
}

/// One exact table's shape in a structure: its space, dimension ids, layout per dimension,
/// whether it has margins, and the least value its hidden cells can have ([`floor`]).
/// The last flag: whether its zero cells may be hidden as secondary cells.
pub type Shape = (u32, Vec<usize>, Vec<Layout>, bool, i64, bool);

/// The least value a hidden cell of an exact table can have, as its rules make public: a count
/// (of units or of rows) whose zeros are never hidden hides only cells of 1 or more (a cell of
/// no unit has no row); a sum may hide a cell of 0 (units that contributed nothing).
pub fn floor(counts: bool, zeros_hidden: bool) -> i64 {
    i64::from(counts && !zeros_hidden)
}

/// Tables ([`Shape`]) in one structure (the same id is the same dimension; tables share cells
/// only within a space: one input's count, or its sum of one column); per table, the cell of each
/// grid point. A cell two tables share keeps the lower floor.
pub fn link(tables: Vec<Shape>) -> (Structure, Vec<Vec<usize>>) {
    let mut s = Structure::new();
    let grids: Vec<Vec<usize>> = tables
        .iter()
        .map(|(space, dims, layouts, margins, _, _)| {
            if *margins {
                s.add_table(*space, dims, layouts)
            } else {
                let sizes: Vec<usize> = layouts.iter().map(|l| l.categories).collect();
                s.add_inner(*space, dims, &sizes)
            }
        })
        .collect();
    let mut floors = vec![i64::MAX; s.cells()];
    let mut zeros = vec![false; s.cells()];
    for (grid, table) in grids.iter().zip(&tables) {
        for &c in grid {
            floors[c] = floors[c].min(table.4);
            zeros[c] |= table.5;
        }
    }
    s.set_zeros_hideable(zeros);
    // Every cell is in some table; none would keep the untouched start.
    s.set_floors(
        floors
            .into_iter()
            .map(|f| if f == i64::MAX { 0 } else { f })
            .collect(),
    );
    (s, grids)
}

/// Each dimension's layout in exact table `t`: its categories and groups.
/// Table `t`'s values as published on its grid (its cells, then margins and subtotals where it
/// has them), from its inner cells.
pub fn published_grid(plan: &Plan, t: &ExactTableSpec, inner: &[i64]) -> Vec<i64> {
    if t.margins {
        grid_values(&layouts(plan, t), inner)
    } else {
        inner.to_vec()
    }
}

fn layouts(plan: &Plan, t: &ExactTableSpec) -> Vec<Layout> {
    t.dims
        .iter()
        .enumerate()
        .map(|(k, &d)| {
            let groups = t.groups.get(k).map_or(&[][..], Vec::as_slice);
            let categories = &plan.dimensions[d].categories;
            layout(categories, groups).expect("validated: groups name their dimension's categories")
        })
        .collect()
}

/// A dimension's layout from its `categories` and `groups` (`None` if a group names a category
/// it does not have).
pub fn layout(categories: &[String], groups: &[Group]) -> Option<Layout> {
    let groups = groups
        .iter()
        .map(|g| {
            g.categories
                .iter()
                .map(|m| categories.iter().position(|c| c == m))
                .collect::<Option<Vec<usize>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Layout {
        categories: categories.len(),
        groups,
    })
}

/// Refuses a table without margins beside a table of other dimensions of the same data (the
/// same space, as [`spaces`] gives each table's): their cells add up to each
/// other's (`r1,m,young + r1,m,old = r1,m`), and the structure states sums only where a table
/// publishes margins, so the attacker's model would miss what the two give away together.
fn refuse_unlinked_inner_cells(
    plan: &Plan,
    specs: &[&ExactTableSpec],
    spaces: &[usize],
) -> Result<(), SdcError> {
    let dims = |t: &ExactTableSpec| {
        let mut d = t.dims.clone();
        d.sort_unstable();
        d
    };
    for (i, t) in specs.iter().enumerate().filter(|(_, t)| !t.margins) {
        if let Some((_, u)) = specs
            .iter()
            .enumerate()
            .find(|&(j, u)| u.name != t.name && spaces[j] == spaces[i] && dims(u) != dims(t))
        {
            return Err(SdcError::Described {
                input: true,
                message: format!(
                    "exact table `{}` (without margins, by [{}]) and `{}` (by [{}]) count the same data by different dimensions: their cells add up to each other's, which safestat cannot yet state for a table without margins, so the pair cannot be proven safe. Publish both with margins, or with the same dimensions. Nothing was charged",
                    t.name,
                    plan.dimension_names(&t.dims).join(", "),
                    u.name,
                    plan.dimension_names(&u.dims).join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// Refuses tables of one space (this release's and the earlier ones linked) whose dimensions
/// form a cycle (see [`crate::policy::margins_suffice`]).
fn refuse_cycles(specs: &[&ExactTableSpec], spaces: &[usize]) -> Result<(), SdcError> {
    let mut by_space: std::collections::BTreeMap<usize, Vec<&ExactTableSpec>> = Default::default();
    for (t, &space) in specs.iter().zip(spaces) {
        by_space.entry(space).or_default().push(t);
    }
    for tables in by_space.values() {
        let sets: Vec<Vec<usize>> = tables.iter().map(|t| t.dims.clone()).collect();
        if !crate::policy::margins_suffice(&sets) {
            return Err(SdcError::Described {
                input: true,
                message: format!(
                    "exact tables {} {}. Nothing was charged",
                    tables
                        .iter()
                        .map(|t| format!("`{}`", t.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                    crate::policy::CYCLE
                ),
            });
        }
    }
    Ok(())
}

/// Refuses a count of units beside a count of rows of the same data (an input holding the same
/// data as another counts as it, and a linked earlier table as the input it was counted on), at
/// least one of them this release's (the first `ours` of `specs`); see
/// [`crate::policy::UNITS_BESIDE_ROWS`].
fn refuse_units_beside_rows(
    specs: &[&ExactTableSpec],
    same_data: &[usize],
    ours: usize,
) -> Result<(), SdcError> {
    let data = |t: &ExactTableSpec| same_data.get(t.input).copied().unwrap_or(t.input);
    for (i, t) in specs.iter().enumerate() {
        for (j, u) in specs.iter().enumerate() {
            if (i < ours || j < ours)
                && t.statistic() == "count_units"
                && u.statistic() == "count_rows"
                && data(t) == data(u)
            {
                return Err(SdcError::Described {
                    input: true,
                    message: format!(
                        "exact tables `{}` (count_units) and `{}` (count_rows) {}. Nothing was charged",
                        t.name,
                        u.name,
                        crate::policy::UNITS_BESIDE_ROWS
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Protects the plan's exact tables from their inner cells `counts` (one per exact table),
/// together with the tables `linked` from earlier releases of the same data; inputs holding the
/// same data are `same_data` (see [`structure`]).
pub fn protect_tables(
    plan: &Plan,
    counts: &[Counts],
    linked: &[Linked],
    same_data: &[usize],
) -> Result<Vec<ExactTable>, SdcError> {
    let specs: Vec<&ExactTableSpec> = plan
        .exact_tables
        .iter()
        .chain(linked.iter().map(|l| &l.spec))
        .collect();
    let spaces = spaces(plan, &specs, same_data);
    refuse_unlinked_inner_cells(plan, &specs, &spaces)?;
    refuse_units_beside_rows(&specs, same_data, plan.exact_tables.len())?;
    refuse_cycles(&specs, &spaces)?;
    let (structure, grids) = structure(plan, &specs, same_data);
    let all_counts: Vec<&Counts> = counts
        .iter()
        .chain(linked.iter().map(|l| &l.counts))
        .collect();
    let points = Points::of(plan, &specs, (&structure, &grids), &all_counts)?;
    let (published, hidden_before) = earlier_facts(plan, linked, (&structure, &grids), &points)?;
    let wanted = points.wanted(&specs, &grids);
    let mut insiders = insiders(plan, &specs, (&structure, &grids), &spaces, &points.top())?;
    insiders.extend(spanning_insiders(
        (plan, &specs, &all_counts),
        (&structure, &grids),
        (&spaces, same_data),
        linked.len(),
    )?);
    // One objective for the release (validation refuses exact tables that differ).
    let objective = match plan.exact_tables.first().map(|t| t.secondary) {
        Some(SecondaryObjective::Value) => Objective::Value,
        _ => Objective::Cells,
    };
    let protected = super::protect_cells(
        &structure,
        &points.values,
        (&wanted, &insiders),
        &published,
        &hidden_before,
        objective,
    )
    .map_err(|e| pinned_by_earlier(plan, &structure, !linked.is_empty(), e))?;
    // The plan's tables come first in the structure; the linked ones are not published again.
    Ok(grids[..plan.exact_tables.len()]
        .iter()
        .map(|grid| as_published(grid, &points.values, &protected, &wanted))
        .collect())
}

/// Every grid point of the exact tables' structure: its value, its units and its largest
/// contributions (a margin's: its cells', each unit being in one cell).
struct Points {
    values: Vec<i64>,
    frequencies: Vec<i64>,
    largest: Vec<Vec<i64>>,
}

impl Points {
    /// The grid points of tables `specs` laid out on `grids`, from their inner cells `counts`;
    /// two tables that share a point must agree on its value.
    fn of(
        plan: &Plan,
        specs: &[&ExactTableSpec],
        (structure, grids): (&Structure, &[Vec<usize>]),
        counts: &[&Counts],
    ) -> Result<Points, SdcError> {
        let mut points = Points {
            values: vec![0; structure.cells()],
            frequencies: vec![0; structure.cells()],
            largest: vec![Vec::new(); structure.cells()],
        };
        // Which table gave each grid point its value.
        let mut given_by: Vec<Option<&str>> = vec![None; structure.cells()];
        for ((t, grid), inner) in specs.iter().zip(grids).zip(counts) {
            for ((&cell, v), f) in grid
                .iter()
                .zip(published_grid(plan, t, &inner.values))
                .zip(published_grid(plan, t, &inner.frequencies))
            {
                if let Some(other) = given_by[cell]
                    && points.values[cell] != v
                {
                    return Err(SdcError::Described {
                        input: false,
                        message: format!(
                            "cell ({}): tables `{other}` and `{}` count it differently ({} and {v}), though they are taken to count the same data",
                            cell_name(plan, structure, cell),
                            t.name,
                            points.values[cell]
                        ),
                    });
                }
                given_by[cell] = Some(&t.name);
                points.values[cell] = v;
                points.frequencies[cell] = f;
            }
            if let Some(sum) = &t.sum {
                points.add_largest(&layouts(plan, t), t.margins, grid, inner, sum.largest());
            }
        }
        Ok(points)
    }

    /// A sum table's largest contributions on its `grid` (laid out as `layouts`, with or without
    /// `margins`), `k` per point, from its inner cells; a unit in several cells is one contributor
    /// of each grid point over them.
    fn add_largest(
        &mut self,
        layouts: &[Layout],
        margins: bool,
        grid: &[usize],
        inner: &Counts,
        k: u32,
    ) {
        let k = k as usize;
        let mut merged = if margins {
            grid_fold(layouts, &inner.largest, |a: &mut Vec<i64>, b| {
                for &v in b {
                    crate::input::keep_largest(a, v, k);
                }
            })
        } else {
            inner.largest.clone()
        };
        // A unit in several cells is one contributor of each grid point over them, with its
        // sums there together (the grid's sums counted it once per cell).
        for unit in &inner.spanning {
            for (point, (sum, cells)) in unit_on_grid(layouts, margins, &unit.cells) {
                crate::input::keep_largest(&mut merged[point], sum, k);
                self.frequencies[grid[point]] -= cells - 1;
            }
        }
        // A cell two tables share keeps the longer list (each is its table's rules' few).
        for (&cell, list) in grid.iter().zip(merged) {
            if list.len() > self.largest[cell].len() {
                self.largest[cell] = list;
            }
        }
    }

    /// Each table's primary rule on its own cells (the earlier tables' too: their small cells
    /// must stay protected), by grid point; a cell two tables share keeps the higher levels.
    fn wanted(&self, specs: &[&ExactTableSpec], grids: &[Vec<usize>]) -> Vec<(usize, Levels)> {
        let mut wanted: Vec<Option<Levels>> = vec![None; self.values.len()];
        for (t, grid) in specs.iter().zip(grids) {
            let rules = super::Rules {
                min_frequency: t.min_frequency,
                zeros_primary: t.zeros_primary,
                interval_percent: t.interval_percent,
                objective: Objective::Cells,
            };
            for &cell in grid {
                let value = self.values[cell];
                let mut l = primary(self.frequencies[cell], &rules).then(|| levels(value, &rules));
                if let Some(up) = t
                    .sum
                    .as_ref()
                    .and_then(|s| super::sensitive(value, &self.largest[cell], s))
                {
                    let asked = levels(value, &rules);
                    l = Some(Levels {
                        up: asked.up.max(up),
                        down: value.min(asked.down.max(up)),
                    });
                }
                if let Some(l) = l {
                    let w = wanted[cell].get_or_insert(l);
                    w.up = w.up.max(l.up);
                    w.down = w.down.max(l.down);
                }
            }
        }
        wanted
            .iter()
            .enumerate()
            .filter_map(|(c, l)| l.map(|l| (c, l)))
            .collect()
    }

    /// Each point's largest single contribution: a count's unit contributes 1.
    fn top(&self) -> Vec<i64> {
        self.largest
            .iter()
            .zip(&self.values)
            .map(|(largest, &value)| largest.first().copied().unwrap_or(i64::from(value > 0)))
            .collect()
    }
}

/// What the earlier releases `linked` published is a fact, and what they hid stays hidden: per
/// grid point, whether it was published, and whether it was hidden. A published value the same
/// data no longer gives is refused.
fn earlier_facts(
    plan: &Plan,
    linked: &[Linked],
    (structure, grids): (&Structure, &[Vec<usize>]),
    points: &Points,
) -> Result<(Vec<bool>, Vec<bool>), SdcError> {
    let values = &points.values;
    let mut published = vec![false; structure.cells()];
    let mut hidden_before = vec![false; structure.cells()];
    for (l, grid) in linked.iter().zip(&grids[plan.exact_tables.len()..]) {
        for (&cell, v) in grid.iter().zip(&l.published) {
            match v {
                Some(v) if *v != values[cell] => {
                    return Err(SdcError::Described {
                        input: true,
                        message: format!(
                            "cell ({}): the earlier table `{}` published {v}, and the same data counts {}",
                            cell_name(plan, structure, cell),
                            l.spec.name,
                            values[cell]
                        ),
                    });
                }
                Some(_) => published[cell] = true,
                None => hidden_before[cell] = true,
            }
        }
    }
    Ok((published, hidden_before))
}

/// A failed protection, described. With earlier releases' cells fixed (published, or hidden for
/// good), a small cell may have no room left to be protected in: the releases together cannot,
/// which is the policy's or the data's matter (exit 2), not a bug.
fn pinned_by_earlier(plan: &Plan, structure: &Structure, linked: bool, e: SdcError) -> SdcError {
    let pinned = linked && matches!(e, SdcError::Secondary(_));
    match describe(plan, structure, e) {
        SdcError::Described { message, .. } if pinned => SdcError::Described {
            input: true,
            message: format!(
                "{message}. The earlier releases' exact tables this release is protected with fix their published cells and keep their hidden ones hidden, and no pattern of this release's tables protects this cell within them: publish these tables with fewer dimensions or larger cells, or under differential privacy. Nothing was charged"
            ),
        },
        other => other,
    }
}

/// One table as published from its `grid`: its values where not hidden, the attacker's interval
/// of each hidden point, and how many of its points are primary (`wanted`).
fn as_published(
    grid: &[usize],
    values: &[i64],
    protected: &Protected,
    wanted: &[(usize, Levels)],
) -> ExactTable {
    let intervals = &protected.intervals;
    ExactTable {
        values: grid
            .iter()
            .map(|&c| (!protected.hidden[c]).then_some(values[c]))
            .collect(),
        intervals: grid
            .iter()
            .map(|&c| {
                intervals
                    .binary_search_by_key(&c, |x| x.0)
                    .ok()
                    .map(|i| intervals[i].1)
            })
            .collect(),
        method: protected.method,
        primary: grid
            .iter()
            .filter(|&&c| wanted.binary_search_by_key(&c, |w| w.0).is_ok())
            .count(),
    }
}

/// A unit's sums in `cells` (inner cells of a table laid out as `layouts`) on the table's grid:
/// per grid point over at least one of them (the inner cells themselves, and with `margins`
/// every margin and subtotal over them), its sum there and how many of its cells it covers.
fn unit_on_grid(
    layouts: &[Layout],
    margins: bool,
    cells: &[(usize, i64)],
) -> std::collections::BTreeMap<usize, (i64, i64)> {
    let mut out: std::collections::BTreeMap<usize, (i64, i64)> = Default::default();
    let sizes: Vec<usize> = layouts.iter().map(|l| l.categories).collect();
    let extent: Vec<usize> = layouts.iter().map(|l| l.positions()).collect();
    for &(cell, v) in cells {
        let coords = unravel(cell, &sizes);
        // Per dimension, the positions over this category: itself, its groups, the total.
        let covering: Vec<Vec<usize>> = if margins {
            layouts
                .iter()
                .zip(&coords)
                .map(|(l, &c)| {
                    let mut p = vec![c];
                    p.extend(
                        (0..l.groups.len())
                            .filter(|&g| l.groups[g].contains(&c))
                            .map(|g| l.categories + g),
                    );
                    p.push(l.positions() - 1);
                    p
                })
                .collect()
        } else {
            coords.iter().map(|&c| vec![c]).collect()
        };
        let ext = if margins { &extent } else { &sizes };
        let mut points = vec![0usize];
        for (p, &n) in covering.iter().zip(ext) {
            points = points
                .iter()
                .flat_map(|&q| p.iter().map(move |&x| q * n + x))
                .collect();
        }
        for q in points {
            let e = out.entry(q).or_default();
            e.0 = e.0.saturating_add(v);
            e.1 += 1;
        }
    }
    out
}

/// Inner cell `cell`'s point on the grid of a table laid out as `layouts`.
fn inner_point(layouts: &[Layout], margins: bool, cell: usize) -> usize {
    if !margins {
        return cell;
    }
    let sizes: Vec<usize> = layouts.iter().map(|l| l.categories).collect();
    unravel(cell, &sizes)
        .iter()
        .zip(layouts)
        .fold(0, |p, (&c, l)| p * l.positions() + c)
}

/// The respondents in several finest cells of their data, each an insider of its own (see
/// [`super::Insider`]): in every table of its data it knows its sum in each inner cell it is
/// in. Tables linked from earlier releases, and inputs read as the same data, were read apart,
/// so a unit there cannot be told to be the same as one here: their units in several cells are
/// refused (exit 2) rather than checked in part.
fn spanning_insiders(
    (plan, specs, counts): (&Plan, &[&ExactTableSpec], &[&Counts]),
    (structure, grids): (&Structure, &[Vec<usize>]),
    (spaces, same_data): (&[usize], &[usize]),
    linked: usize,
) -> Result<Vec<super::Insider>, SdcError> {
    let ours = specs.len() - linked;
    // An earlier table protected with this release's tables of its data (the same space), when
    // units of that data are in several cells in either read: each read tells only its own
    // tables' units apart, and a unit in several cells of the two together may be in one cell
    // of each.
    let here: std::collections::BTreeSet<usize> = spaces[..ours].iter().copied().collect();
    let spanning_here: std::collections::BTreeSet<usize> = spaces[..ours]
        .iter()
        .zip(counts)
        .filter(|(_, c)| !c.spanning.is_empty())
        .map(|(&space, _)| space)
        .collect();
    for ((t, c), space) in specs.iter().zip(counts).zip(spaces).skip(ours) {
        if here.contains(space) && (!c.spanning.is_empty() || spanning_here.contains(space)) {
            return Err(SdcError::Described {
                input: true,
                message: format!(
                    "the earlier exact table `{}` is protected with this release's exact tables of the same data, and privacy units of that data have rows in several cells: safestat cannot yet check such respondents across releases (each release's tables were read apart). Publish these tables with differential privacy, or keep tables of this data in one release. Nothing was charged",
                    t.name
                ),
            });
        }
    }
    for (i, &j) in same_data.iter().enumerate().filter(|&(i, &j)| i != j) {
        let twins: Vec<&&ExactTableSpec> = specs[..ours]
            .iter()
            .zip(counts)
            .filter(|(t, c)| (t.input == i || t.input == j) && !c.spanning.is_empty())
            .map(|(t, _)| t)
            .collect();
        if let Some(t) = twins.first() {
            return Err(SdcError::Described {
                input: true,
                message: format!(
                    "inputs `{}` and `{}` hold the same data, and privacy units of exact table `{}` have rows in several cells: safestat cannot yet check those respondents across two inputs. Read the tables from one input. Nothing was charged",
                    plan.inputs[i].name, plan.inputs[j].name, t.name
                ),
            });
        }
    }
    // Per (space, unit): the inner cells it is in, with its sum in each.
    let mut units: std::collections::BTreeMap<(usize, u64), Vec<(usize, i64)>> = Default::default();
    for (((t, c), grid), &space) in specs.iter().zip(counts).zip(grids).zip(spaces).take(ours) {
        let layouts = layouts(plan, t);
        for unit in &c.spanning {
            let known = units.entry((space, unit.unit)).or_default();
            known.extend(
                unit.cells
                    .iter()
                    .map(|&(cell, v)| (grid[inner_point(&layouts, t.margins, cell)], v)),
            );
        }
    }
    Ok(units
        .into_values()
        .map(|mut cells| {
            cells.sort_unstable();
            cells.dedup();
            super::Insider {
                keys: cells
                    .iter()
                    .map(|&(c, _)| structure.key(c).to_vec())
                    .collect(),
                knows: cells
                    .into_iter()
                    .filter(|&(c, v)| v > structure.floor(c))
                    .collect(),
            }
        })
        .filter(|i| !i.knows.is_empty())
        .collect())
}

/// The attacker's interval of every hidden grid point of the plan's exact tables, from their
/// published values alone (`None` where hidden): what `audit` re-runs from a release folder.
pub fn attack_published(
    plan_structure: &(Structure, Vec<Vec<usize>>),
    published: &[Vec<Option<i64>>],
) -> Result<Vec<Vec<Option<Interval>>>, SdcError> {
    let (structure, grids) = plan_structure;
    let mut values = vec![0i64; structure.cells()];
    let mut hidden = vec![false; structure.cells()];
    for (grid, table) in grids.iter().zip(published) {
        for (&cell, v) in grid.iter().zip(table) {
            match v {
                Some(v) => values[cell] = *v,
                None => hidden[cell] = true,
            }
        }
    }
    let targets: Vec<usize> = (0..structure.cells()).filter(|&c| hidden[c]).collect();
    let found = super::attack(structure, &values, &hidden, &targets)?;
    Ok(grids
        .iter()
        .map(|grid| {
            grid.iter()
                .map(|&c| targets.binary_search(&c).ok().map(|i| found[i]))
                .collect()
        })
        .collect())
}

/// The error with its cell named by its categories (`region=seoul, age_group=total`).
fn describe(plan: &Plan, structure: &Structure, e: SdcError) -> SdcError {
    let cell = match &e {
        SdcError::Exposed { cell, .. }
        | SdcError::Insider { cell, .. }
        | SdcError::AlreadyPublished { cell }
        | SdcError::TooLarge { cell, .. } => *cell,
        SdcError::Attack(a) => a.cell,
        SdcError::Secondary(s) => s.cell,
        SdcError::Described { .. } => return e,
    };
    SdcError::Described {
        input: e.is_input(),
        message: e.to_string().replace(
            &format!("cell {cell}"),
            &format!("cell ({})", cell_name(plan, structure, cell)),
        ),
    }
}

/// A cell by its categories: `region=seoul, age_group=20s`, or the grand total.
fn cell_name(plan: &Plan, structure: &Structure, cell: usize) -> String {
    let n = plan.dimensions.len();
    let key = structure.key(cell);
    if key.is_empty() {
        return "the grand total".to_string();
    }
    key.iter()
        .map(|&(d, c)| {
            let dim = &plan.dimensions[d % n];
            match structure.group_members(d, c) {
                Some(members) => format!(
                    "{}=({})",
                    dim.name,
                    members
                        .iter()
                        .map(|&m| dim.categories[m].as_str())
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
                None => format!("{}={}", dim.name, dim.categories[c as usize]),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every grid point's value (each dimension's categories, then its groups, then its total,
/// first dimension slowest) from a table's `inner` values: the sum of the inner cells under it.
/// One dimension at a time, each position summing the positions it covers.
pub fn grid_values(layouts: &[Layout], inner: &[i64]) -> Vec<i64> {
    grid_fold(layouts, inner, |a, b| *a += b)
}

/// [`grid_values`] for any cell type: each grid point gathers the inner cells under it with
/// `add`, from the type's default.
pub fn grid_fold<T: Clone + Default>(
    layouts: &[Layout],
    inner: &[T],
    add: impl Fn(&mut T, &T),
) -> Vec<T> {
    let mut extent: Vec<usize> = layouts.iter().map(|l| l.categories).collect();
    let mut values = inner.to_vec();
    for (j, l) in layouts.iter().enumerate() {
        let all: Vec<usize> = (0..l.categories).collect();
        let mut wider = extent.clone();
        wider[j] = l.positions();
        let mut out = vec![T::default(); wider.iter().product()];
        for (p, v) in out.iter_mut().enumerate() {
            let mut coords = unravel(p, &wider);
            let members = match coords[j].checked_sub(l.categories) {
                None => std::slice::from_ref(&coords[j]).to_vec(),
                Some(g) if g < l.groups.len() => l.groups[g].clone(),
                Some(_) => all.clone(),
            };
            for &c in &members {
                coords[j] = c;
                add(
                    v,
                    &values[coords.iter().zip(&extent).fold(0, |q, (c, n)| q * n + c)],
                );
            }
        }
        values = out;
        extent = wider;
    }
    values
}

/// Point `i`'s coordinates in a grid of `sizes`, first dimension slowest.
pub fn unravel(mut i: usize, sizes: &[usize]) -> Vec<usize> {
    let mut c = vec![0; sizes.len()];
    for j in (0..sizes.len()).rev() {
        c[j] = i % sizes[j];
        i /= sizes[j];
    }
    c
}
