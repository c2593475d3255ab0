//! What the workbook and the report show, read back from a release folder's published files:
//! each table's cells ([`Table`], [`ExactTable`]), its cross-table ([`Cross`]), and the words and
//! methodology around them ([`View`]). Below the two writers (`html`, `workbook`).

use std::collections::BTreeMap;

use super::words::Words;
use crate::output::{ExactTableEntry, Manifest, TableEntry};
use crate::policy::Presentation;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the release folder has no `{0}`, which its manifest lists")]
    Missing(String),
    #[error("`{file}` is not a table as safestat publishes it: {message}")]
    Malformed { file: String, message: String },
    #[error("cannot write the workbook: {0}")]
    Workbook(String),
}

/// One published table, read back from its CSV: each cell's categories and value (`None`:
/// suppressed), in the file's order (first dimension slowest).
#[derive(Debug, Clone)]
pub struct Table<'a> {
    pub entry: &'a TableEntry,
    /// Each dimension's categories, in declared order.
    pub categories: Vec<Vec<String>>,
    pub values: Vec<Option<i64>>,
    /// Per cell, whether the release flagged it `unreliable` (its `flag` column).
    pub flags: Vec<bool>,
    /// Per cell, its share of the table's total and that share's margin, in percent as published
    /// (`None`: suppressed), when the table publishes shares.
    pub shares: Option<Vec<Option<(f64, f64)>>>,
    /// The table's margins and grand total as published after its cells (format 6), by their
    /// labels (the total's label where a dimension is summed out): value, margin of error and
    /// flag.
    pub totals: BTreeMap<Vec<String>, (i64, i64, bool)>,
}

impl Table<'_> {
    /// Cell `i`'s category of every dimension.
    pub fn labels(&self, i: usize) -> Vec<&str> {
        crate::output::cell_labels(&self.categories, i)
    }

    /// The value at these categories (one per dimension), if the table has that cell.
    pub fn at(&self, cats: &[&str]) -> Option<Option<i64>> {
        let mut i = 0;
        for (k, c) in cats.iter().enumerate() {
            let pos = self.categories[k].iter().position(|x| x == c)?;
            i = i * self.categories[k].len() + pos;
        }
        self.values.get(i).copied()
    }
}

/// Reads table `entry` from its CSV bytes (a byte-order mark is skipped).
fn read_table<'a>(
    entry: &'a TableEntry,
    file: &str,
    bytes: &[u8],
    presentation: &crate::policy::Presentation,
) -> Result<Table<'a>, ReportError> {
    let bad = |message: String| ReportError::Malformed {
        file: file.to_string(),
        message,
    };
    let dimensions: Vec<&str> = entry.dimensions.iter().map(String::as_str).collect();
    let bytes = crate::output::coded_csv(bytes, &dimensions, presentation).map_err(bad)?;
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let dims = entry.dimensions.len();
    // Format 4 adds the `flag` column; format 5 a sum's contributors and the shares after it.
    let has_flag = header.get(dims + 3) == Some("flag");
    if !(header.len() == dims + 3 || has_flag) || header.get(dims) != Some("value") {
        return Err(bad(format!(
            "its header is not `{}value,status,moe..,flag`",
            entry
                .dimensions
                .iter()
                .map(|d| format!("{d},"))
                .collect::<String>()
        )));
    }
    let mut categories: Vec<Vec<String>> = vec![Vec::new(); dims];
    let mut values = Vec::new();
    let mut flags = Vec::new();
    // Format 5: the shares' columns, by name.
    let share_at = header.iter().position(|h| h == "share_pct");
    let mut shares = share_at.map(|_| Vec::new());
    let mut totals = BTreeMap::new();
    let total_label = entry.totals.as_ref().map(|t| t.label.as_str());
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let line = |message: String| bad(format!("line {}: {message}", n + 2));
        if let (Some(label), crate::output::TOTAL_STATUS) = (total_label, &record[dims + 1]) {
            let (labels, total) = total_row(&record, dims, label).map_err(line)?;
            totals.insert(labels, total);
            continue;
        }
        for (k, cats) in categories.iter_mut().enumerate() {
            let c = &record[k];
            if !cats.iter().any(|x| x == c) {
                cats.push(c.to_string());
            }
        }
        let value = cell_value(&record, dims).map_err(line)?;
        values.push(value);
        flags.push(has_flag && &record[dims + 3] == "unreliable");
        if let (Some(at), Some(shares)) = (share_at, shares.as_mut()) {
            shares.push(share_of(&record, at, value).map_err(line)?);
        }
    }
    let cells: usize = categories.iter().map(Vec::len).product();
    let rows = entry.totals.as_ref().map_or(0, |t| t.rows);
    if totals.len() != rows {
        return Err(bad(format!(
            "it has {} total rows and the manifest says {rows}",
            totals.len()
        )));
    }
    if cells != values.len() || cells != entry.cells {
        return Err(bad(format!(
            "it has {} rows, but its categories make {cells} cells and the manifest says {}",
            values.len(),
            entry.cells
        )));
    }
    Ok(Table {
        entry,
        categories,
        values,
        flags,
        shares,
        totals,
    })
}

/// A total's labels, and its value, margin and whether it is flagged unreliable.
type TotalRow = (Vec<String>, (i64, i64, bool));

/// A total's row of a table of `dims` dimensions: its labels (one of them the total's `label`),
/// and its value, margin and whether it is flagged unreliable.
fn total_row(record: &csv::StringRecord, dims: usize, label: &str) -> Result<TotalRow, String> {
    let labels: Vec<String> = record.iter().take(dims).map(str::to_string).collect();
    if labels.iter().all(|l| l != label) {
        return Err("a total's row sums out no dimension".to_string());
    }
    let v = &record[dims];
    let value = v
        .parse::<i64>()
        .map_err(|_| format!("`{v}` is not a whole number"))?;
    let moe = &record[dims + 2];
    let moe = moe
        .parse::<i64>()
        .map_err(|_| format!("margin `{moe}` is not a whole number"))?;
    Ok((labels, (value, moe, &record[dims + 3] == "unreliable")))
}

/// A cell's row's value: a number when published, `None` when suppressed.
fn cell_value(record: &csv::StringRecord, dims: usize) -> Result<Option<i64>, String> {
    match (&record[dims], &record[dims + 1]) {
        ("", "suppressed") => Ok(None),
        (v, "published") => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("`{v}` is not a whole number")),
        (v, s) => Err(format!("value `{v}` with status `{s}`")),
    }
}

/// A cell's share and its margin (the columns from `at` on), which a published cell has.
fn share_of(
    record: &csv::StringRecord,
    at: usize,
    value: Option<i64>,
) -> Result<Option<(f64, f64)>, String> {
    let number = |i: usize| record.get(i).and_then(|v| v.parse::<f64>().ok());
    match (value, number(at), number(at + 1)) {
        (None, _, _) => Ok(None),
        (Some(_), Some(p), Some(m)) => Ok(Some((p, m))),
        _ => Err("a published cell without its share and margin".to_string()),
    }
}

/// The release's tables, read from `file(name)` (the folder's files, or those about to be
/// written).
pub fn read_tables<'a>(
    manifest: &'a Manifest,
    file: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<Table<'a>>, ReportError> {
    manifest
        .tables
        .iter()
        .map(|entry| {
            let name = entry
                .files
                .iter()
                .find(|f| f.ends_with(".csv"))
                .ok_or_else(|| ReportError::Missing(format!("{}.csv", entry.name)))?;
            let bytes = file(name).ok_or_else(|| ReportError::Missing(name.clone()))?;
            read_table(entry, name, &bytes, &manifest.presentation)
        })
        .collect()
}

/// An exact table read back from its CSV: the categories of each dimension and every grid
/// point's value (`None`: suppressed), first dimension slowest, each dimension's total last.
#[derive(Debug, Clone)]
pub struct ExactTable<'a> {
    pub entry: &'a ExactTableEntry,
    pub categories: Vec<Vec<String>>,
    pub values: Vec<Option<i64>>,
}

impl ExactTable<'_> {
    /// Grid points per row of the cross-table: the last dimension's categories, then (with
    /// margins) its groups and total.
    pub fn columns(&self) -> usize {
        match self.categories.len() {
            0 => 1,
            k => self.view().positions(k - 1),
        }
    }

    /// The labels of the row dimensions (all but the last; the only one of a one-dimensional
    /// table) of row `r`, and of column `c` (the last dimension's; empty for one dimension).
    pub fn row_labels(&self, r: usize) -> Vec<&str> {
        let labels = self.labels(r * self.shape().1);
        let keep = if self.categories.len() == 1 {
            1
        } else {
            labels.len() - 1
        };
        labels[..keep].to_vec()
    }

    pub fn column_label(&self, c: usize) -> &str {
        match self.categories.len() {
            k if k > 1 => self.view().label(k - 1, c),
            _ => "",
        }
    }

    fn labels(&self, i: usize) -> Vec<&str> {
        self.view().labels(i)
    }

    fn view(&self) -> crate::output::ExactPublished<'_> {
        crate::output::ExactPublished {
            dimensions: Vec::new(),
            categories: self.categories.iter().map(Vec::as_slice).collect(),
            margins: self.entry.margins,
            total: &self.entry.total_label,
            groups: self.entry.group_names(),
            values: &[],
        }
    }

    /// Rows and columns of the cross-table (a one-dimensional table is one column).
    pub fn shape(&self) -> (usize, usize) {
        if self.categories.len() == 1 {
            (self.values.len(), 1)
        } else {
            (self.values.len() / self.columns(), self.columns())
        }
    }
}

/// The release's exact tables, read from `file(name)`.
pub fn read_exact_tables<'a>(
    manifest: &'a Manifest,
    file: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<ExactTable<'a>>, ReportError> {
    manifest
        .exact_tables
        .iter()
        .map(|entry| {
            let name = format!("{}.csv", entry.name);
            let bytes = file(&name).ok_or_else(|| ReportError::Missing(name.clone()))?;
            let (categories, values) =
                crate::output::read_exact(&bytes, entry, &manifest.presentation).map_err(
                    |message| ReportError::Malformed {
                        file: name.clone(),
                        message,
                    },
                )?;
            Ok(ExactTable {
                entry,
                categories,
                values,
            })
        })
        .collect()
}

/// A table as a cross-table: rows are the categories of every dimension but the last, columns
/// the last dimension's; totals (계) from the tables of the same consistency group that are its
/// margins (they add up exactly with its cells, suppression aside).
#[derive(Debug)]
pub struct Cross {
    /// The dimensions that label the rows: every one but the last (the only one of a table with
    /// one dimension; none for a table with none).
    pub row_dims: Vec<String>,
    /// The dimension whose categories are the columns (tables with two dimensions or more).
    pub column_dim: Option<String>,
    /// Per row, its categories (of every dimension but the last).
    pub rows: Vec<Vec<String>>,
    /// The last dimension's categories (one unnamed column for a table with one dimension or
    /// none).
    pub columns: Vec<String>,
    pub values: Vec<Vec<Option<i64>>>,
    /// Per cell, whether it is flagged `unreliable`.
    pub flags: Vec<Vec<bool>>,
    /// The total of each row (the margin without the last dimension), if published.
    pub row_totals: Option<Vec<Option<i64>>>,
    /// The total of each column, and the grand total, if published.
    pub column_totals: Option<Vec<Option<i64>>>,
    pub grand_total: Option<Option<i64>>,
    /// The margins of error of the totals shown, when the table publishes them (format 6):
    /// `(the dimensions they are by, margin)`, the grand total's with none.
    pub total_margins: Vec<(Vec<String>, i64)>,
}

/// A table's rows (per row, its categories of every dimension but the last) and columns (the
/// last dimension's categories; one unnamed column for a table with one dimension or none).
fn rows_and_columns(categories: &[Vec<String>]) -> (Vec<Vec<String>>, Vec<String>) {
    let n = categories.len();
    match n {
        0 => (vec![Vec::new()], vec![String::new()]),
        1 => (
            categories[0].iter().map(|c| vec![c.clone()]).collect(),
            vec![String::new()],
        ),
        _ => {
            let mut rows: Vec<Vec<String>> = vec![Vec::new()];
            for cats in &categories[..n - 1] {
                rows = rows
                    .iter()
                    .flat_map(|r| {
                        cats.iter().map(move |c| {
                            let mut r = r.clone();
                            r.push(c.clone());
                            r
                        })
                    })
                    .collect();
            }
            (rows, categories[n - 1].clone())
        }
    }
}

/// The totals a cross-table shows (see [`Cross`]).
#[derive(Default)]
struct Totals {
    rows: Option<Vec<Option<i64>>>,
    columns: Option<Vec<Option<i64>>>,
    grand: Option<Option<i64>>,
    margins: Vec<(Vec<String>, i64)>,
}

impl Totals {
    /// Format 6: the table's own totals (rows whose categories include `label`), published
    /// after its cells, with their margins of error.
    fn published(
        table: &Table,
        label: &str,
        dims: &[&str],
        (row_cats, columns): (&[Vec<String>], &[String]),
    ) -> Totals {
        let n = dims.len();
        let mut totals = Totals::default();
        // Each kind of total shown, by the dimensions it keeps: its margin (one per kind).
        let kinds: Vec<Vec<usize>> = match n {
            0 => Vec::new(),
            1 => vec![vec![]],
            _ => vec![(0..n - 1).collect(), vec![n - 1], vec![]],
        };
        for keep in kinds {
            let moe = table.totals.iter().find_map(|(key, &(_, moe, _))| {
                let kept = (0..n).all(|k| (key[k] != label) == keep.contains(&k));
                kept.then_some(moe)
            });
            if let Some(moe) = moe {
                let by = keep.iter().map(|&k| dims[k].to_string()).collect();
                totals.margins.push((by, moe));
            }
        }
        let total = |cats: Vec<&str>| {
            let key: Vec<String> = cats.into_iter().map(str::to_string).collect();
            table.totals.get(&key).map(|&(v, _, _)| Some(v))
        };
        totals.grand = total(vec![label; n]).filter(|_| n >= 1);
        if n >= 2 {
            totals.rows = row_cats
                .iter()
                .map(|r| {
                    let mut cats: Vec<&str> = r.iter().map(String::as_str).collect();
                    cats.push(label);
                    total(cats)
                })
                .collect();
            totals.columns = columns
                .iter()
                .map(|c| {
                    let mut cats = vec![label; n - 1];
                    cats.push(c);
                    total(cats)
                })
                .collect();
        }
        totals
    }

    /// A grouped table's totals: its group's tables over fewer dimensions (its margins).
    fn of_group(
        tables: &[Table],
        group: Option<usize>,
        dims: &[&str],
        row_cats: &[Vec<String>],
    ) -> Totals {
        let n = dims.len();
        if n == 0 {
            return Totals::default();
        }
        let whole = margin(tables, group, &[]).map(|t| t.values[0]);
        if n == 1 {
            // One column: its total is the grand total.
            return Totals {
                grand: whole,
                ..Totals::default()
            };
        }
        Totals {
            rows: margin(tables, group, &dims[..n - 1]).map(|m| {
                row_cats
                    .iter()
                    .map(|r| {
                        let cats: Vec<&str> = r.iter().map(String::as_str).collect();
                        m.at(&cats).flatten()
                    })
                    .collect()
            }),
            columns: margin(tables, group, &dims[n - 1..]).map(|m| m.values.clone()),
            grand: whole,
            margins: Vec::new(),
        }
    }
}

/// The release's table over `dims` that is in `group` (the margin of a grouped table).
fn margin<'a>(
    tables: &'a [Table<'a>],
    group: Option<usize>,
    dims: &[&str],
) -> Option<&'a Table<'a>> {
    let group = group?;
    tables.iter().find(|t| {
        t.entry.consistency_group == Some(group)
            && t.entry.dimensions.len() == dims.len()
            && t.entry.dimensions.iter().zip(dims).all(|(a, b)| a == b)
    })
}

impl Cross {
    pub fn of(table: &Table, tables: &[Table]) -> Cross {
        let dims: Vec<&str> = table.entry.dimensions.iter().map(String::as_str).collect();
        let n = dims.len();
        let (row_cats, columns) = rows_and_columns(&table.categories);
        let ncol = columns.len();
        let values: Vec<Vec<Option<i64>>> = (0..row_cats.len())
            .map(|r| (0..ncol).map(|c| table.values[r * ncol + c]).collect())
            .collect();
        let flags: Vec<Vec<bool>> = (0..row_cats.len())
            .map(|r| (0..ncol).map(|c| table.flags[r * ncol + c]).collect())
            .collect();
        let totals = match table.entry.totals.as_ref() {
            Some(t) => Totals::published(table, &t.label, &dims, (&row_cats, &columns)),
            None => Totals::of_group(tables, table.entry.consistency_group, &dims, &row_cats),
        };
        let (row_dims, column_dim) = match n {
            0 => (Vec::new(), None),
            1 => (vec![dims[0].to_string()], None),
            _ => (
                dims[..n - 1].iter().map(|d| d.to_string()).collect(),
                Some(dims[n - 1].to_string()),
            ),
        };
        Cross {
            row_dims,
            column_dim,
            rows: row_cats,
            columns,
            values,
            flags,
            row_totals: totals.rows,
            column_totals: totals.columns,
            grand_total: totals.grand,
            total_margins: totals.margins,
        }
    }
}

impl Cross {
    /// Whether any total (계) is shown.
    pub fn has_totals(&self) -> bool {
        self.row_totals.is_some() || self.column_totals.is_some() || self.grand_total.is_some()
    }

    /// Whether a total row is shown: the column totals, or a one-dimensional table's grand total.
    pub fn has_total_row(&self) -> bool {
        self.column_totals.is_some() || (self.column_dim.is_none() && self.grand_total.is_some())
    }
}

/// The presentation's words for a release: its language's, and its labels.
pub struct View<'a> {
    pub manifest: &'a Manifest,
    pub p: &'a Presentation,
    pub w: &'static Words,
}

impl<'a> View<'a> {
    pub fn new(manifest: &'a Manifest) -> View<'a> {
        let p = &manifest.presentation;
        View {
            manifest,
            p,
            w: Words::of(p),
        }
    }

    /// A table's title, as labelled.
    pub fn title(&self, t: &TableEntry) -> String {
        self.p.title(&t.name).to_string()
    }

    /// A table's caption: its title after its number where tables are numbered (`표 3. 성별 피해자
    /// 수`); the number is the table's own or its place among the release's tables (the
    /// differentially private ones first, then the exact ones).
    pub fn caption(&self, name: &str) -> String {
        let position = self
            .manifest
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .chain(self.manifest.exact_tables.iter().map(|t| t.name.as_str()))
            .position(|n| n == name)
            .map_or(0, |i| i + 1);
        match self.p.number(name, position) {
            Some(n) => format!("{} {n}. {}", self.w.table_word, self.p.title(name)),
            None => self.p.title(name).to_string(),
        }
    }

    /// The lines under every table: the numbered footnotes (`주 1) ...`), then the source
    /// (`자료: ...`).
    pub fn footer(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .p
            .notes
            .iter()
            .enumerate()
            .map(|(k, n)| format!("{} {}) {n}", self.w.notes_word, k + 1))
            .collect();
        if let Some(source) = &self.p.source {
            lines.push(format!("{}: {source}", self.w.source_word));
        }
        lines
    }

    /// The unit of a table's values, or the statistic's word.
    pub fn unit(&self, t: &TableEntry) -> String {
        self.p
            .unit(&t.name)
            .map(str::to_string)
            .unwrap_or_else(|| self.w.statistic_unit(&t.statistic).to_string())
    }

    /// The margin of error in words: `±6 (95%)`.
    pub fn margin(&self, t: &TableEntry) -> String {
        format!("±{} ({}%)", t.margin_of_error, t.confidence * 100.0)
    }

    pub fn category(&self, dim: &str, c: &str) -> String {
        self.p.category(dim, c).to_string()
    }

    /// A label of an exact table's grid: a category's label, or 계 / Total for a margin (whose
    /// label in the table's rows is `total`).
    pub fn grid_label(&self, dim: &str, c: &str, total: &str) -> String {
        if c == total {
            self.w.total.to_string()
        } else {
            self.category(dim, c)
        }
    }

    /// What a table's values measure, with their unit, for the one column of a one-dimensional
    /// table: `피해자 수 (명)`, `건수 (건)`, `sum of services`; a count of units says the privacy
    /// unit's label where the policy gives one.
    pub fn measure(&self, table: &str, statistic: &str, column: Option<&str>) -> String {
        let what = match (statistic, &self.p.privacy_unit_label, column) {
            ("count_units", Some(label), _) if self.w.korean => format!("{label} 수"),
            ("count_units", Some(label), _) => format!("number of {label}"),
            ("sum", _, Some(column)) if self.w.korean => format!("{column} 합계"),
            ("sum", _, Some(column)) => format!("sum of {column}"),
            _ => self.w.statistic_name(statistic).to_string(),
        };
        let unit = self
            .p
            .unit(table)
            .unwrap_or_else(|| self.w.statistic_unit(statistic));
        if unit.is_empty() {
            what
        } else {
            format!("{what} ({unit})")
        }
    }

    /// The header of an exact table's column `c`: the last dimension's category (or total), or
    /// what the values measure when the table has one dimension.
    pub fn exact_column(&self, t: &ExactTable, c: usize) -> String {
        let dims = &t.entry.dimensions;
        if dims.len() == 1 {
            self.measure(&t.entry.name, &t.entry.statistic, t.entry.column.as_deref())
        } else {
            self.grid_label(
                &dims[dims.len() - 1],
                t.column_label(c),
                &t.entry.total_label,
            )
        }
    }

    /// A column's header: its category's label, or what the values measure when the table has
    /// one column.
    pub fn column_header(&self, cross: &Cross, t: &TableEntry, c: &str) -> String {
        match &cross.column_dim {
            Some(d) => self.category(d, c),
            None => self.measure(&t.name, &t.statistic, t.column.as_deref()),
        }
    }

    /// The margins of error of a cross-table's totals in words, when the table publishes them.
    pub fn total_margins(&self, t: &TableEntry, cross: &Cross) -> Option<String> {
        (!cross.total_margins.is_empty()).then(|| {
            let margins: Vec<(String, i64)> = cross
                .total_margins
                .iter()
                .map(|(by, moe)| {
                    let labels: Vec<&str> = by.iter().map(|d| self.p.dimension(d)).collect();
                    (labels.join("·"), *moe)
                })
                .collect();
            self.w.total_margins(&margins, t.confidence)
        })
    }

    /// Methodology lines, from the manifest alone.
    pub fn methodology(&self) -> Vec<(String, String)> {
        methodology(self)
    }
}

/// What was done, in the reader's language, from the manifest: the privacy unit, each table's
/// bounds (and whether enforced), clamping, mechanism and cost (in rho and in (epsilon, delta)),
/// what a margin of error and a suppressed cell mean, and the dataset's budget.
fn methodology(v: &View) -> Vec<(String, String)> {
    let m = v.manifest;
    let w = v.w;
    let mut out = vec![
        (
            w.release.to_string(),
            format!("{} v{}", m.release.id, m.release.version),
        ),
        (
            w.privacy_unit.to_string(),
            match &v.p.privacy_unit_label {
                Some(label) => format!("{label} ({})", m.privacy_unit),
                None => m.privacy_unit.clone(),
            },
        ),
        (w.method.to_string(), w.method_text.to_string()),
    ];
    for (word, value) in [
        (w.period_word, &v.p.period),
        (w.organisation_word, &v.p.organisation),
        (w.contact_word, &v.p.contact),
    ] {
        if let Some(value) = value {
            out.push((word.to_string(), value.clone()));
        }
    }
    out.extend([
        (w.margin_meaning.to_string(), w.margin_text.to_string()),
        (
            w.suppressed_meaning.to_string(),
            w.suppressed_text(&v.p.suppressed_marker, false),
        ),
    ]);
    // A zCDP cost also as (ε, δ), at the budget's δ or 10^-6.
    let delta = m.ledger.budget.delta.unwrap_or(REPORT_DELTA);
    out.extend(
        m.tables
            .iter()
            .map(|t| (v.title(t), dp_method(v, t, delta))),
    );
    for t in &m.exact_tables {
        out.push((
            v.p.title(&t.name).to_string(),
            w.exact_method(
                &t.primary_rule,
                t.interval_percent,
                t.cells_suppressed,
                t.margins,
            ),
        ));
    }
    if m.mixing.is_some() {
        let exact: Vec<String> = m
            .exact_tables
            .iter()
            .map(|t| v.p.title(&t.name).to_string())
            .collect();
        out.push((w.mixing.to_string(), w.mixing_text(&exact)));
    }
    let l = &m.ledger;
    out.push((
        w.budget.to_string(),
        w.budget_text(&l.unit, l.charged, l.total_after, &l.budget),
    ));
    out
}

/// How DP table `t` was made, in one line: its statistic, bounds (and whether enforced),
/// clamping, mechanism, cost, margin of error, and its contributors' when it publishes them.
fn dp_method(v: &View, t: &TableEntry, delta: f64) -> String {
    let w = v.w;
    let b = &t.contribution_bounds;
    let bounds = match (
        b.max_cells_per_unit,
        b.max_rows_per_unit,
        b.max_rows_per_cell,
    ) {
        (Some(c), _, _) => w.cells_per_unit(c),
        (_, Some(r), Some(c)) => w.rows_per_unit(r, c),
        _ => String::new(),
    };
    let clamp = t
        .clamp
        .map(|[lo, hi]| w.clamped(lo, hi))
        .unwrap_or_default();
    let contributors = t
        .contributors
        .as_ref()
        .map(|c| {
            format!(
                "; {}",
                w.contributors_text(
                    &cost_text(&c.privacy_cost, delta),
                    c.margin_of_error,
                    t.suppression.threshold
                )
            )
        })
        .unwrap_or_default();
    format!(
        "{}; {bounds} ({}){clamp}; {}: {}; {}: {}; {}: {}{contributors}",
        w.statistic_name(&t.statistic),
        w.bounds_status(&b.status),
        w.mechanism,
        w.mechanism_name(&t.mechanism.to_string()),
        w.cost,
        cost_text(&t.privacy_cost, delta),
        w.margin,
        v.margin(t),
    )
}

/// A cost as charged, a zCDP one also as (ε, `delta`) by opendp's conversion.
fn cost_text(cost: &crate::output::CostEntry, delta: f64) -> String {
    match (cost.rho, cost.epsilon) {
        (Some(rho), _) => match crate::privacy::epsilon_at(rho, delta) {
            Ok(e) => format!("rho = {rho:.4} (ε = {e:.4}, δ = {delta:e})"),
            Err(_) => format!("rho = {rho:.4}"),
        },
        (None, Some(e)) => format!("ε = {e:.4} (δ = 0)"),
        (None, None) => String::new(),
    }
}

/// The δ at which zCDP costs are also shown as (ε, δ) when the budget states none.
pub const REPORT_DELTA: f64 = 1e-6;
