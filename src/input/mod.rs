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
pub use request::{
    BoundingEffect, Count, Counted, InputResult, ReadOptions, SqlRead, Whole, keep_largest,
};

use csv::read_pass;

pub use crate::hash::Fingerprints;
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

/// Reads input `input` of `plan` once and computes the exact cells of `counts` (all of this
/// input), in parallel chunks and spilling to disk as `options` say (tests use tiny chunks to
/// split units across them).
pub fn read_input_with(
    plan: &Plan,
    input: usize,
    counts: &[Count],
    options: ReadOptions,
) -> Result<InputResult, InputError> {
    let spec = &plan.inputs[input];
    if spec.sql.is_some() {
        let asked = sql::Asked {
            legacy: options.legacy_fingerprints,
            units: options.distinct_units,
        };
        return sql::read_sql(plan, input, counts, asked);
    }
    let Some(encoding) = spec.encoding else {
        return read_pass(plan, input, counts, options, false);
    };
    // A legacy encoding is decoded to a private UTF-8 copy first (lines stay where they are, so
    // errors name the original's lines); the fingerprint is the original's bytes'.
    let (copy, fingerprint) = transcode(&spec.path, encoding, options.legacy_fingerprints)?;
    let mut decoded = plan.clone();
    decoded.inputs[input].path = copy.path().to_path_buf();
    decoded.inputs[input].encoding = None;
    let mut result = read_pass(&decoded, input, counts, options, false)
        .map_err(|e| e.renamed(copy.path(), &spec.path))?;
    result.fingerprint = fingerprint;
    Ok(result)
}

/// Everything read from the inputs: per input its hash and what it was read from, and per count
/// of the [`reading_plan`] its result, routed to the tables by what the count is for.
pub struct InputData {
    /// Per input, what its read found (its counts' results moved to `counted`).
    pub results: Vec<InputResult>,
    /// Per count of the reading plan, its result (moved out as the tables take it).
    counted: Vec<Counted>,
    /// Per DP table, where its exact cells are: its own count, or summed from its group's one
    /// bounded union table (then already here).
    cells: Vec<Cells>,
    /// Per sum table, the count whose contributors it publishes.
    contributors: Vec<Option<usize>>,
    /// Per exact table, which counts give its cells.
    exact_tables: Vec<ExactCounts>,
    /// Per DP table, what its contribution bounds did (a table estimated with others: their
    /// union's, which they are bounded as); `None` when its input was bounded elsewhere.
    pub bounding: Vec<Option<BoundingEffect>>,
}

/// Where a DP table's exact cells are.
#[derive(Debug)]
enum Cells {
    /// Count `k` of the reading plan.
    Read(usize),
    /// Summed from its group's bounded union table.
    Margin(Vec<i128>),
}

/// Which counts give an exact table's cells (see [`InputData::take_exact_table`]).
#[derive(Debug, Clone)]
enum ExactCounts {
    /// A count of units: one cell per unit, and from microdata the same allowing two (they
    /// differ when a unit is in several cells).
    Units { units: usize, check: Option<usize> },
    /// A sum or count of rows: its data's read ([`Request::ExactSums`], count `count`, over
    /// finer dimensions with `sizes` categories), where each of the table's dimensions is among
    /// the read's (`axes`), and how many of each cell's largest contributions it keeps.
    Sum {
        count: usize,
        sizes: Vec<usize>,
        axes: Vec<usize>,
        largest: usize,
    },
}

impl InputData {
    /// Each input's fingerprint, by name: private, for the ledger.
    pub fn fingerprints(&self, plan: &Plan) -> Fingerprints {
        plan.inputs
            .iter()
            .zip(&self.results)
            .map(|(spec, r)| (spec.name.clone(), r.fingerprint.clone()))
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
            Cells::Read(k) => self.counted[*k].take_values(),
            Cells::Margin(cells) => std::mem::take(cells),
        })
    }

    /// Exact table `e`'s inner cells (first dimension slowest): the privacy units per cell
    /// and, for a sum, its values and what its units contributed; refuses a count of units in
    /// which some unit is in several cells.
    pub fn take_exact_table(&mut self, plan: &Plan, e: usize) -> Result<Counts, InputError> {
        let (units, check) = match &self.exact_tables[e] {
            &ExactCounts::Units { units, check } => (units, check),
            ExactCounts::Sum {
                count,
                sizes,
                axes,
                largest,
            } => {
                let read = &self.counted[*count];
                let whole = read.whole().expect("an exact sum's data read");
                let input = plan.exact_tables[e].input as u64;
                return Ok(sum_table(
                    read.values(),
                    whole,
                    (sizes, axes),
                    *largest,
                    input,
                ));
            }
        };
        let counts = self.counted[units].take_values();
        if let Some(check) = check {
            let two = self.counted[check].take_values();
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
        let k = self.contributors[t]?;
        self.counted[k].take_contributors().map(saturate)
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
    if let Some(refusal) = sql::refused_by_this_build(plan) {
        return Err(refusal);
    }
    let reading = reading_plan(plan);
    let (results, mut counted, bounded) = read_counts(plan, &reading.counts, options)?;
    let Routes {
        own,
        unions,
        units,
        sums,
    } = Routes::of(plan, &reading);
    let bounding = (0..plan.tables.len())
        .map(|t| match reading.groups.of(t) {
            Some(g) => bounded[unions[g]],
            None => bounded[own[t]?],
        })
        .collect();
    // A grouped table's cells are its group's union's margin; the others', their own count's.
    let mut cells: Vec<Cells> = own
        .iter()
        .map(|read| match read {
            Some(k) => Cells::Read(*k),
            None => Cells::Margin(Vec::new()),
        })
        .collect();
    for (g, &u) in reading.groups.groups.iter().zip(&unions) {
        let union = counted[u].take_values();
        let sizes = g.sizes(plan);
        for (&t, axes) in g.tables.iter().zip(g.axes(plan)) {
            let summed = margin(&sizes, &axes, &union);
            // A grouped sum read on its own too (for its contributors) keeps the same rows.
            if let Cells::Read(k) = cells[t] {
                debug_assert_eq!(counted[k].values(), summed, "table {t}");
            }
            cells[t] = Cells::Margin(summed);
        }
    }
    let contributors = own
        .iter()
        .map(|read| read.filter(|&k| counted[k].contributors().is_some()))
        .collect();
    let exact_tables = plan
        .exact_tables
        .iter()
        .enumerate()
        .map(|(e, t)| match sums[e] {
            None => ExactCounts::Units {
                units: units[e].0,
                check: units[e].1,
            },
            Some(k) => {
                let dims = &reading.counts[k].dims;
                ExactCounts::Sum {
                    count: k,
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
                }
            }
        })
        .collect();
    Ok(InputData {
        results,
        counted,
        cells,
        contributors,
        exact_tables,
        bounding,
    })
}

/// Each request's count, by what it is for: per DP table its own count (if read on its own),
/// per group its union's, per exact count of units its count (and its check's), per exact sum
/// or count of rows its data's read.
struct Routes {
    own: Vec<Option<usize>>,
    unions: Vec<usize>,
    units: Vec<(usize, Option<usize>)>,
    sums: Vec<Option<usize>>,
}

impl Routes {
    fn of(plan: &Plan, reading: &Reading) -> Routes {
        let mut routes = Routes {
            own: vec![None; plan.tables.len()],
            unions: vec![0; reading.groups.groups.len()],
            units: vec![(0, None); plan.exact_tables.len()],
            sums: vec![None; plan.exact_tables.len()],
        };
        for (k, request) in reading.requests.iter().enumerate() {
            match request {
                &Request::Dp(t) => routes.own[t] = Some(k),
                &Request::Union(g) => routes.unions[g] = k,
                &Request::ExactUnits {
                    table,
                    check: false,
                } => routes.units[table].0 = k,
                &Request::ExactUnits { table, check: true } => routes.units[table].1 = Some(k),
                Request::ExactSums(tables) => {
                    for &e in tables {
                        routes.sums[e] = Some(k);
                    }
                }
            }
        }
        routes
    }
}

/// Per input what its read found; per count its result and what its bounds did.
type ReadCounts = (Vec<InputResult>, Vec<Counted>, Vec<Option<BoundingEffect>>);

/// Reads each input once for its counts: per input what its read found, per count its result
/// (moved out of its input's) and what its contribution bounds did (`None` when its input was
/// bounded elsewhere).
fn read_counts(
    plan: &Plan,
    counts: &[Count],
    options: &ReadOptions,
) -> Result<ReadCounts, InputError> {
    let mut results = Vec::new();
    let mut counted: Vec<Option<Counted>> = vec![None; counts.len()];
    let mut bounded = vec![None; counts.len()];
    for input in 0..plan.inputs.len() {
        let of_input: Vec<usize> = (0..counts.len())
            .filter(|&k| counts[k].input == input)
            .collect();
        let asked: Vec<Count> = of_input.iter().map(|&k| counts[k].clone()).collect();
        let mut result = read_input_with(plan, input, &asked, *options)?;
        assert_eq!(result.counted.len(), asked.len(), "one result per count");
        for (pos, (&k, cells)) in of_input.iter().zip(result.counted.drain(..)).enumerate() {
            counted[k] = Some(cells);
            bounded[k] = result.bounding.get(pos).copied();
        }
        results.push(result);
    }
    let counted = counted
        .into_iter()
        .map(|c| c.expect("every count is of an input"))
        .collect();
    Ok((results, counted, bounded))
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

/// What the inputs are read for: the counts asked of the sources, and what each is for.
pub struct Reading {
    /// In order: the DP tables read on their own (in plan order), each group's union table, then
    /// the exact tables' counts.
    pub counts: Vec<Count>,
    /// Per count, what it is for.
    requests: Vec<Request>,
    /// The plan's groups of DP tables estimated together.
    pub groups: crate::policy::Grouping,
}

/// What a count is for, and so where its cells go.
#[derive(Debug, Clone, PartialEq)]
enum Request {
    /// DP table `t`, read on its own: a table drawn alone, or a grouped sum whose contributors
    /// are counted (its values are then the union's margin, and its own read, keeping the same
    /// rows, gives the contributors of each of its cells).
    Dp(usize),
    /// Group `g`'s union table, bounded once: its margins are the group's tables.
    Union(usize),
    /// Exact count of units `table`: one cell per unit, and for `check` (microdata) the same
    /// allowing two, which gives more when a unit is in several cells.
    ExactUnits { table: usize, check: bool },
    /// The exact sums and counts of rows of one data (input and column), `tables`: one read by
    /// every dimension of those tables, which gives each unit's sum in each combination of them.
    ExactSums(Vec<usize>),
}

/// The reads of a plan: each DP table drawn alone; one union table per group of tables estimated
/// together (a grouped sum that measures its contributors is read on its own too, for them); for
/// each exact count of units its count with one cell per unit and, from microdata, the same with
/// two (every unit in a single cell gives the same total; a unit in several gives more); and one
/// read per data (input and column) of the exact sums and counts of rows, by every dimension its
/// tables have, which gives each unit's sum in each cell: every table of that data is summed from
/// it, its units counted once per cell, the units in several cells known as such. None is noised
/// here: both sources (files and SQL) count what they are asked.
pub fn reading_plan(plan: &Plan) -> Reading {
    let groups = crate::policy::grouping(plan);
    let mut counts = Vec::new();
    let mut requests = Vec::new();
    for (t, spec) in plan.tables.iter().enumerate() {
        if groups.of(t).is_none() || spec.contributors_cost.is_some() {
            counts.push(Count::of(spec));
            requests.push(Request::Dp(t));
        }
    }
    for (g, group) in groups.groups.iter().enumerate() {
        let first = &plan.tables[group.tables[0]];
        let names: Vec<&str> = group
            .tables
            .iter()
            .map(|&t| plan.tables[t].name.as_str())
            .collect();
        counts.push(Count {
            name: format!("{} (bounded together)", names.join(", ")),
            dims: group.dims.clone(),
            ..Count::of(first)
        });
        requests.push(Request::Union(g));
    }
    // In the exact tables' order: a count of units's counts, and the read of a data's sums where
    // its first table is.
    for (e, t) in plan.exact_tables.iter().enumerate() {
        let Some(sum) = &t.sum else {
            let microdata = plan.inputs[t.input].kind == crate::policy::InputKind::Microdata;
            for check in [false, true].into_iter().filter(|&c| !c || microdata) {
                counts.push(Count {
                    name: t.name.clone(),
                    input: t.input,
                    dims: t.dims.clone(),
                    statistic: Statistic::CountUnits {
                        max_cells_per_unit: if check { 2 } else { 1 },
                    },
                });
                requests.push(Request::ExactUnits { table: e, check });
            }
            continue;
        };
        let same_data = |u: &crate::policy::ExactTableSpec| {
            u.input == t.input && u.sum.as_ref().map(|s| &s.column) == Some(&sum.column)
        };
        if plan.exact_tables[..e].iter().any(same_data) {
            continue;
        }
        let of_data: Vec<usize> = (e..plan.exact_tables.len())
            .filter(|&u| same_data(&plan.exact_tables[u]))
            .collect();
        let mut dims: Vec<usize> = of_data
            .iter()
            .flat_map(|&u| plan.exact_tables[u].dims.clone())
            .collect();
        dims.sort_unstable();
        dims.dedup();
        let largest = of_data
            .iter()
            .filter_map(|&u| plan.exact_tables[u].sum.as_ref().map(|s| s.largest()))
            .max()
            .unwrap_or(1);
        let names: Vec<&str> = of_data
            .iter()
            .map(|&u| plan.exact_tables[u].name.as_str())
            .collect();
        counts.push(Count {
            name: names.join(", "),
            input: t.input,
            dims,
            statistic: Statistic::Total {
                column: sum.column.clone(),
                largest,
            },
        });
        requests.push(Request::ExactSums(of_data));
    }
    Reading {
        counts,
        requests,
        groups,
    }
}
