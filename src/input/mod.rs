//! Input: a source becomes exact, bounded cells per table, and a private fingerprint.
//!
//! Sources: a CSV file ([`csv`]; a legacy encoding is decoded first, [`decode`]), or a
//! PostgreSQL table or query ([`sql`]: bounded and counted in the server, only per-cell
//! aggregates come back).
//! Owns what every source must give: per table the exact cells, bounded as the plan says
//! (in `csv/bounding.rs` for a file, in the server for SQL), and each input's fingerprint for the
//! ledger. Errors name the file, the line and the field. Exact cells never leave memory: they go
//! to the protection only.

use crate::policy::{Plan, Statistic};

mod csv;
mod decode;
mod error;
mod file;
mod request;
pub mod sql;

pub use error::InputError;
pub use request::{BoundingEffect, InputResult, ReadOptions, SqlRead, Whole, keep_largest};

use csv::read_pass;
use decode::transcode;

/// An exact table's inner cells as read (first dimension slowest): its values (privacy units,
/// or sums), the privacy units behind each, and what a sum's units contributed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counts {
    pub values: Vec<i64>,
    /// Per cell, its privacy units (each counted once, however many rows it has there).
    pub frequencies: Vec<i64>,
    /// A sum's: per cell, the largest sums (largest first) of its units that are not in
    /// `spanning` (each in this cell alone). Empty for a count of units.
    pub largest: Vec<Vec<i64>>,
    /// A sum's units that have rows in more than one combination of the categories its data's
    /// exact tables are tabulated by (they may be in one cell of this table, or several): each
    /// with an id (the same unit has the same id in every table of its data read together) and
    /// its sum in each cell of this table it is in. Sorted, so that it does not depend on how
    /// the input was read. Empty for a count of units.
    pub spanning: Vec<Spanning>,
}

/// A privacy unit in several cells: its id and its sum in each cell (by cell).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Spanning {
    pub unit: u64,
    pub cells: Vec<(usize, i64)>,
}

impl Counts {
    /// A count's cells: each value is its number of privacy units.
    pub fn units(counts: Vec<i64>) -> Counts {
        Counts {
            values: counts.clone(),
            frequencies: counts,
            largest: Vec::new(),
            spanning: Vec::new(),
        }
    }
}

/// Exact cells in the noise's domain (`i64`), saturating at its ends. Clamping each cell is
/// 1-Lipschitz in every coordinate, so it never raises the sensitivity: a unit that moves an
/// `i128` cell by `d` moves the saturated cell by at most `d`. (Each cell is an `i128` sum of at
/// most 2^64 values of at most 2^63, so the sum itself can never wrap.)
pub fn saturate(cells: Vec<i128>) -> Vec<i64> {
    cells
        .into_iter()
        .map(|c| c.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
        .collect()
}

/// Reads input `input` of `plan` once and computes the exact cells of `tables` (indices into
/// `plan.tables`, all reading this input), in parallel chunks and spilling to disk as `options`
/// say (tests use tiny chunks to split units across them).
pub fn read_input_with(
    plan: &Plan,
    input: usize,
    tables: &[usize],
    options: ReadOptions,
) -> Result<InputResult, InputError> {
    let spec = &plan.inputs[input];
    if spec.sql.is_some() {
        return sql::read_sql(plan, input, tables);
    }
    let Some(encoding) = spec.encoding else {
        return read_pass(plan, input, tables, options, false);
    };
    // A legacy encoding is decoded to a private UTF-8 copy first (lines stay where they are, so
    // errors name the original's lines); the fingerprint is the original's bytes'.
    let (copy, sha256) = transcode(&spec.path, encoding)?;
    let mut decoded = plan.clone();
    decoded.inputs[input].path = copy.path().to_path_buf();
    decoded.inputs[input].encoding = None;
    let mut result = read_pass(&decoded, input, tables, options, false)
        .map_err(|e| e.renamed(copy.path(), &spec.path))?;
    result.sha256 = sha256;
    Ok(result)
}

/// Where a table's cells are: `(input, position in that input's exact cells)`.
type Slot = (usize, usize);

/// Everything read from the inputs: per input its hash and exact cells, and where each table's
/// exact cells are.
pub struct InputData {
    pub results: Vec<InputResult>,
    /// Per DP table, where its exact cells are: read on its own, or summed from its group's one
    /// bounded union table (then already here).
    cells: Vec<Cells>,
    /// Per sum table, where its contributors are in its input's exact cells.
    contributors: Vec<Option<Slot>>,
    /// Per exact table, the positions of its counts (each unit in one cell) and, for microdata,
    /// of the same count allowing two cells per unit (they differ when a unit is in several),
    /// and of a sum's values and largest contributions (its position in the input's `largest`).
    exact_tables: Vec<ExactSlots>,
    /// Per DP table, what its contribution bounds did (a table estimated with others: their
    /// union's, which they are bounded as); `None` when its input was bounded elsewhere.
    pub bounding: Vec<Option<BoundingEffect>>,
}

/// Where a DP table's exact cells are.
#[derive(Debug)]
enum Cells {
    Read(Slot),
    /// Summed from its group's bounded union table.
    Margin(Vec<i128>),
}

/// Where an exact table's cells are (see [`InputData::take_exact_table`]).
#[derive(Debug, Clone)]
enum ExactSlots {
    /// A count of units: one cell per unit, and from microdata the same allowing two (they
    /// differ when a unit is in several cells).
    Units { units: Slot, check: Option<Slot> },
    /// A sum or count of rows: its data's read ([`ExactRead::Sum`]), at `slot` (values) and
    /// `whole` (its position in the input's `whole`), and where each of the table's dimensions
    /// is among the read's.
    Sum {
        slot: Slot,
        whole: usize,
        sizes: Vec<usize>,
        axes: Vec<usize>,
        largest: usize,
    },
}

impl InputData {
    /// Each input's fingerprint (SHA-256 of its bytes), by name: private, for the ledger.
    pub fn fingerprints(&self, plan: &Plan) -> std::collections::BTreeMap<String, String> {
        plan.inputs
            .iter()
            .zip(&self.results)
            .map(|(spec, r)| (spec.name.clone(), r.sha256.clone()))
            .collect()
    }

    /// How each SQL input was read, by name (private, for the ledger).
    pub fn sql_reads(&self, plan: &Plan) -> std::collections::BTreeMap<String, SqlRead> {
        plan.inputs
            .iter()
            .zip(&self.results)
            .filter_map(|(spec, r)| Some((spec.name.clone(), r.sql.clone()?)))
            .collect()
    }

    /// Moves table `t`'s exact cells out, in the noise's domain, so they are dropped as soon as
    /// the noise is added.
    pub fn take_exact(&mut self, t: usize) -> Vec<i64> {
        saturate(match &mut self.cells[t] {
            Cells::Read((input, pos)) => std::mem::take(&mut self.results[*input].exact[*pos]),
            Cells::Margin(cells) => std::mem::take(cells),
        })
    }

    /// Exact table `e`'s inner cells (first dimension slowest): the privacy units per cell
    /// and, for a sum, its values and what its units contributed; refuses a count of units in
    /// which some unit is in several cells.
    pub fn take_exact_table(&mut self, plan: &Plan, e: usize) -> Result<Counts, InputError> {
        let (units, check) = match &self.exact_tables[e] {
            &ExactSlots::Units { units, check } => (units, check),
            ExactSlots::Sum {
                slot: (input, pos),
                whole,
                sizes,
                axes,
                largest,
            } => {
                let read = &self.results[*input];
                return Ok(sum_table(
                    &read.exact[*pos],
                    &read.whole[*whole],
                    (sizes, axes),
                    *largest,
                    *input as u64,
                ));
            }
        };
        let (input, pos) = units;
        let counts = std::mem::take(&mut self.results[input].exact[pos]);
        if let Some((input2, pos2)) = check {
            let two = std::mem::take(&mut self.results[input2].exact[pos2]);
            let extra: i128 = two.iter().sum::<i128>() - counts.iter().sum::<i128>();
            if extra > 0 {
                let t = &plan.exact_tables[e];
                let spec = &plan.inputs[t.input];
                let by = t
                    .dims
                    .iter()
                    .map(|&d| format!("`{}`", plan.dimensions[d].name))
                    .collect::<Vec<_>>()
                    .join(" or ");
                return Err(InputError::UnitsInSeveralCells(format!(
                    "input `{}` ({}): {extra} privacy unit(s) in more than one cell of exact table `{}` (their {by} differ between rows); an exact count of units needs each unit in one cell, so that its margins are the sums of its cells: correct the data, count rows (`count_rows`, which lets a unit be in several cells), or publish the table with differential privacy (`max_cells_per_unit`)",
                    spec.name,
                    spec.location(),
                    t.name
                )));
            }
        }
        Ok(Counts::units(saturate(counts)))
    }

    /// Moves sum table `t`'s exact contributor counts out, as [`InputData::take_exact`] does.
    pub fn take_contributors(&mut self, t: usize) -> Option<Vec<i64>> {
        let (input, pos) = self.contributors[t]?;
        Some(saturate(std::mem::take(
            &mut self.results[input].exact[pos],
        )))
    }
}

/// An exact sum table's inner cells from its data's read over finer dimensions (`sizes`, the
/// table's dimensions at `axes` among them): its `values` per finer cell and what its units
/// contributed (`whole`). A unit's sum in a cell of the table is its sums in the finer cells
/// under it; a unit in several finer cells is listed in `spanning` (id: `input`, then its rank
/// among them in a canonical order), the others in `largest` (`k` per cell).
fn sum_table(
    values: &[i128],
    whole: &crate::input::Whole,
    (sizes, axes): (&[usize], &[usize]),
    k: usize,
    input: u64,
) -> Counts {
    let to = cell_map(sizes, axes);
    let cells = axes.iter().map(|&a| sizes[a]).product::<usize>();
    let mut sums = vec![0i128; cells];
    let mut units = vec![0i128; cells];
    let mut largest: Vec<Vec<i128>> = vec![Vec::new(); cells];
    for (f, &c) in to.iter().enumerate() {
        sums[c] += values[f];
        units[c] += whole.units[f];
        for &v in &whole.largest[f] {
            crate::input::keep_largest(&mut largest[c], v, k);
        }
    }
    // Each unit in several finer cells, in a canonical order (by its sums per finer cell), so
    // that its id does not depend on how the input was split among readers.
    let mut finer: Vec<Vec<(u32, i128)>> = whole
        .spanning
        .iter()
        .map(|u| {
            let mut u = u.clone();
            u.sort_unstable();
            u
        })
        .collect();
    finer.sort_unstable();
    let spanning = finer
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let mut here: Vec<(usize, i128)> = Vec::new();
            for &(f, v) in unit {
                let c = to[f as usize];
                match here.iter_mut().find(|h| h.0 == c) {
                    Some(h) => {
                        h.1 += v;
                        units[c] -= 1; // counted once per finer cell above
                    }
                    None => here.push((c, v)),
                }
            }
            here.sort_unstable();
            Spanning {
                unit: (input << 32) | i as u64,
                cells: here.into_iter().map(|(c, v)| (c, clamp(v))).collect(),
            }
        })
        .collect();
    Counts {
        values: saturate(sums),
        frequencies: saturate(units),
        largest: largest.into_iter().map(saturate).collect(),
        spanning,
    }
}

/// An `i128` in the noise's domain (see [`saturate`]).
fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Per cell of a table of dimensions with `sizes` categories (first slowest), the cell of its
/// margin over `axes` (positions among them, in the margin's order) it falls in.
pub fn cell_map(sizes: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut stride = vec![0usize; sizes.len()];
    let mut cells = 1usize;
    for &a in axes.iter().rev() {
        stride[a] = cells;
        cells *= sizes[a];
    }
    (0..sizes.iter().product::<usize>())
        .map(|u| {
            let (mut rest, mut cell) = (u, 0);
            for d in (0..sizes.len()).rev() {
                cell += (rest % sizes[d]) * stride[d];
                rest /= sizes[d];
            }
            cell
        })
        .collect()
}

/// Reads every input once, computing the exact cells of all the tables that use it (the DP
/// tables' and the exact tables'). A group of DP tables estimated together is bounded once, as
/// its union table, and each of its tables is summed from that one bounded table.
pub fn read_all(plan: &Plan, options: &ReadOptions) -> Result<InputData, InputError> {
    let reading = reading_plan(plan);
    let tables = &reading.plan.tables;
    let mut results = Vec::new();
    let mut slot = vec![(0, 0); tables.len()];
    let mut contributors_at: Vec<Option<Slot>> = vec![None; tables.len()];
    let mut largest = vec![0; tables.len()];
    for input in 0..reading.plan.inputs.len() {
        let of_input: Vec<usize> = (0..tables.len())
            .filter(|&t| tables[t].input == input)
            .collect();
        for (pos, &t) in of_input.iter().enumerate() {
            slot[t] = (input, pos);
        }
        let totals = of_input
            .iter()
            .filter(|&&t| matches!(tables[t].statistic, Statistic::Total { .. }));
        for (j, &t) in totals.enumerate() {
            largest[t] = j;
        }
        // A sum's contributors follow every table of its input, in order.
        let sums = of_input
            .iter()
            .filter(|&&t| matches!(tables[t].statistic, Statistic::Sum { .. }));
        for (j, &t) in sums.enumerate() {
            contributors_at[t] = Some((input, of_input.len() + j));
        }
        results.push(read_input_with(&reading.plan, input, &of_input, *options)?);
    }
    // Every grouped table's margin is filled in below.
    let mut cells: Vec<Cells> = (0..plan.tables.len())
        .map(|t| match reading.own[t] {
            Some(r) => Cells::Read(slot[r]),
            None => Cells::Margin(Vec::new()),
        })
        .collect();
    let bounding = (0..plan.tables.len())
        .map(|t| {
            let r = match reading.groups.of(t) {
                Some(g) => reading.unions[g],
                None => reading.own[t]?,
            };
            let (input, pos) = slot[r];
            results[input].bounding.get(pos).copied()
        })
        .collect();
    for (g, &u) in reading.groups.groups.iter().zip(&reading.unions) {
        let (input, pos) = slot[u];
        let union = std::mem::take(&mut results[input].exact[pos]);
        let sizes = g.sizes(plan);
        for (&t, axes) in g.tables.iter().zip(g.axes(plan)) {
            let summed = margin(&sizes, &axes, &union);
            // A grouped sum read on its own too (for its contributors) keeps the same rows.
            if let Cells::Read((input, pos)) = cells[t] {
                debug_assert_eq!(results[input].exact[pos], summed, "table {t}");
            }
            cells[t] = Cells::Margin(summed);
        }
    }
    let contributors = (0..plan.tables.len())
        .map(|t| reading.own[t].and_then(|r| contributors_at[r]))
        .collect();
    let exact_tables = plan
        .exact_tables
        .iter()
        .zip(&reading.exact)
        .map(|(t, read)| match read {
            &ExactRead::Units { units, check } => ExactSlots::Units {
                units: slot[units],
                check: check.map(|c| slot[c]),
            },
            ExactRead::Sum { read, dims } => ExactSlots::Sum {
                slot: slot[*read],
                whole: largest[*read],
                sizes: dims
                    .iter()
                    .map(|&d| plan.dimensions[d].categories.len())
                    .collect(),
                axes: t
                    .dims
                    .iter()
                    .map(|d| dims.binary_search(d).expect("the read has every dimension"))
                    .collect(),
                largest: t.sum.as_ref().map_or(1, |s| s.largest()) as usize,
            },
        })
        .collect();
    Ok(InputData {
        results,
        cells,
        contributors,
        exact_tables,
        bounding,
    })
}

/// Table `axes` (positions in the union's dimensions, in the table's order) summed from a union
/// table of dimensions with `sizes` categories, both first dimension slowest.
pub fn margin<T: Copy + Default + std::ops::AddAssign>(
    sizes: &[usize],
    axes: &[usize],
    union: &[T],
) -> Vec<T> {
    let cells = axes.iter().map(|&a| sizes[a]).product::<usize>();
    let mut out = vec![T::default(); cells];
    for (&c, &v) in cell_map(sizes, axes).iter().zip(union) {
        out[c] += v;
    }
    out
}

/// What the inputs are read for: a plan whose tables are the reads, and what each is.
pub struct Reading {
    /// The plan the inputs are read with: first the DP tables read on their own (in plan order),
    /// then each group's union table, then the exact tables' counts.
    pub plan: Plan,
    /// The plan's groups of DP tables estimated together.
    pub groups: crate::policy::Grouping,
    /// Per DP table, its read if it is read on its own: a table drawn alone, or a grouped sum
    /// whose contributors are counted (its values are then the union's margin, and its own
    /// read, keeping the same rows, gives the contributors of each of its cells).
    own: Vec<Option<usize>>,
    /// Per group, its union table's read.
    unions: Vec<usize>,
    /// Per exact table, its reads.
    exact: Vec<ExactRead>,
}

/// An exact table's reads (indices into [`Reading::plan`]'s tables).
enum ExactRead {
    /// A count of units: one cell per unit, and from microdata two (see [`ExactSlots::Units`]).
    Units { units: usize, check: Option<usize> },
    /// A sum or count of rows: the one read of its data (its input and column) by every
    /// dimension of that data's exact tables (`dims`, in plan order), which gives each unit's
    /// sum in each combination of them.
    Sum { read: usize, dims: Vec<usize> },
}

/// The reads of a plan: each DP table drawn alone; one union table per group of tables estimated
/// together (a grouped sum that measures its contributors is read on its own too, for them); for
/// each exact count of units its count with one cell per unit and, from microdata, the same with
/// two (every unit in a single cell gives the same total; a unit in several gives more); and one
/// read per data (input and column) of the exact sums and counts of rows, by every dimension its
/// tables have, which gives each unit's sum in each cell: every table of that data is summed from
/// it, its units counted once per cell, the units in several cells known as such. None is ever
/// noised: they are counted like a DP table's cells, so that both sources (files and SQL) serve
/// them unchanged.
pub fn reading_plan(plan: &Plan) -> Reading {
    let groups = crate::policy::grouping(plan);
    let mut reading = plan.clone();
    reading.tables.clear();
    let mut own = vec![None; plan.tables.len()];
    for (t, spec) in plan.tables.iter().enumerate() {
        if groups.of(t).is_none() || spec.contributors_cost.is_some() {
            own[t] = Some(reading.tables.len());
            reading.tables.push(spec.clone());
        }
    }
    let mut unions = Vec::new();
    for g in &groups.groups {
        let first = &plan.tables[g.tables[0]];
        unions.push(reading.tables.len());
        reading.tables.push(crate::policy::TableSpec {
            name: format!(
                "{} (bounded together)",
                g.tables
                    .iter()
                    .map(|&t| plan.tables[t].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            dims: g.dims.clone(),
            contributors_cost: None,
            consistent: false,
            ..first.clone()
        });
    }
    let counted = |name: &str, input: usize, statistic: Statistic, dims: Vec<usize>| {
        crate::policy::TableSpec {
            name: name.to_string(),
            input,
            statistic,
            dims,
            mechanism: crate::privacy::Mechanism::Gaussian,
            cost: crate::privacy::Cost::Rho(1.0),
            cost_source: crate::policy::CostSource::Declared,
            contributors_cost: None,
            suppress_below: 0,
            confidence: 0.95,
            consistent: false,
            expected_cell_size: None,
            total_label: String::new(),
        }
    };
    let mut exact = Vec::new();
    // Per data of exact sums (input, column): its read and dimensions.
    let mut sums: Vec<((usize, Option<String>), usize)> = Vec::new();
    for t in &plan.exact_tables {
        let Some(sum) = &t.sum else {
            let microdata = plan.inputs[t.input].kind == crate::policy::InputKind::Microdata;
            let mut read = |c| {
                let statistic = Statistic::CountUnits {
                    max_cells_per_unit: c,
                };
                reading
                    .tables
                    .push(counted(&t.name, t.input, statistic, t.dims.clone()));
                reading.tables.len() - 1
            };
            let units = read(1);
            let check = microdata.then(|| read(2));
            exact.push(ExactRead::Units { units, check });
            continue;
        };
        let data = (t.input, sum.column.clone());
        let read = match sums.iter().find(|s| s.0 == data) {
            Some(&(_, read)) => read,
            None => {
                let of_data = plan.exact_tables.iter().filter(|u| {
                    u.input == t.input && u.sum.as_ref().map(|s| &s.column) == Some(&sum.column)
                });
                let mut dims: Vec<usize> = of_data.clone().flat_map(|u| u.dims.clone()).collect();
                dims.sort_unstable();
                dims.dedup();
                let largest = of_data
                    .filter_map(|u| u.sum.as_ref().map(|s| s.largest()))
                    .max()
                    .unwrap_or(1);
                let names: Vec<&str> = plan
                    .exact_tables
                    .iter()
                    .filter(|u| {
                        u.input == t.input && u.sum.as_ref().map(|s| &s.column) == Some(&sum.column)
                    })
                    .map(|u| u.name.as_str())
                    .collect();
                let statistic = Statistic::Total {
                    column: sum.column.clone(),
                    largest,
                };
                reading
                    .tables
                    .push(counted(&names.join(", "), t.input, statistic, dims));
                sums.push((data, reading.tables.len() - 1));
                reading.tables.len() - 1
            }
        };
        exact.push(ExactRead::Sum {
            read,
            dims: reading.tables[read].dims.clone(),
        });
    }
    Reading {
        plan: reading,
        groups,
        own,
        unions,
        exact,
    }
}
