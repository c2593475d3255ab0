//! The published tables: one row per declared cell, as CSV (and JSON on request).
//!
//! Formats [`Cell`]s, which hold noisy, post-processed values only: never an exact cell.

use super::ExactTableEntry;
use crate::protect::postprocess::Cell;
use crate::protect::totals::Margin;

/// One published table, ready to format.
pub struct PublishedTable<'a> {
    pub name: &'a str,
    /// Dimension names, first varying slowest.
    pub dimensions: Vec<&'a str>,
    /// Each dimension's declared categories.
    pub categories: Vec<&'a [String]>,
    pub cells: &'a [Cell],
    pub margin_of_error: i64,
    pub confidence: f64,
    /// Flag a cell `unreliable` when the margin is above this share of its published value;
    /// `None` flags nothing (a sum that does not measure its contributors).
    pub unreliable_above: Option<f64>,
    /// A sum's noisy count of contributors per cell (`None` where suppressed) and its margin.
    pub contributors: Option<Contributors<'a>>,
    /// Each cell's `(share, margin)` of the table's total as fractions (`None` where suppressed
    /// or undefined), when the table publishes shares.
    pub shares: Option<&'a [Option<(f64, f64)>]>,
    /// The table's margins and grand total, written after its cells (status `total`).
    pub totals: Option<Totals<'a>>,
}

/// A DP table's margins: rows after its cells, `label` in each dimension summed out.
pub struct Totals<'a> {
    pub label: &'a str,
    pub margins: &'a [Margin],
}

/// The status of a margin's row in a DP table's CSV.
pub const TOTAL_STATUS: &str = "total";

/// A share as a percentage with one decimal (`12.3`).
pub fn percent(share: f64) -> String {
    format!("{:.1}", share * 100.0)
}

/// A share's margin as a percentage, rounded up to one decimal so that it is never understated.
pub fn percent_margin(margin: f64) -> String {
    format!("{:.1}", (margin * 1000.0 - 1e-9).ceil().max(0.0) / 10.0)
}

/// The noisy number of privacy units behind each cell of a sum.
pub struct Contributors<'a> {
    pub counts: &'a [Option<i64>],
    pub margin_of_error: i64,
}

/// The category of every dimension of cell `i`, cells stored first dimension slowest (the
/// order of a table's CSV rows).
pub fn cell_labels<C: AsRef<[String]>>(categories: &[C], i: usize) -> Vec<&str> {
    let mut labels = vec![""; categories.len()];
    let mut rest = i;
    for (k, cats) in categories.iter().enumerate().rev() {
        let cats = cats.as_ref();
        labels[k] = &cats[rest % cats.len()];
        rest /= cats.len();
    }
    labels
}

/// Whether a published `value` with margin of error `moe` is unreliable at `share`: its margin is
/// above that share of it. A function of published numbers only.
pub fn unreliable(value: i64, moe: i64, share: f64) -> bool {
    moe as f64 > share * value as f64
}

/// The margin-of-error column's name for a confidence: `moe95` for 0.95, `moe97.5` for 0.975.
pub fn moe_column(confidence: f64) -> String {
    // Ten decimals: enough for 0.99999999 (`moe99.999999`), and a float's last bit is rounded
    // away (0.95 * 100 is 95.00000000000001).
    let pct = format!("{:.10}", confidence * 100.0);
    let pct = pct.trim_end_matches('0').trim_end_matches('.');
    format!("moe{pct}")
}

impl PublishedTable<'_> {
    /// `unreliable` for a flagged cell `i`, else empty. A sum's cell is flagged when its count of
    /// contributors is unreliable, or when its own margin is above the share of its value (it is
    /// then published, having enough contributors, but says little); a sum without a count of
    /// contributors is never flagged.
    pub fn flag(&self, i: usize) -> &'static str {
        let (Some(v), Some(share)) = (self.cells[i].value, self.unreliable_above) else {
            return "";
        };
        let by_value = || unreliable(v.saturating_abs(), self.margin_of_error, share);
        let flagged = match &self.contributors {
            Some(c) => {
                c.counts[i].is_some_and(|n| unreliable(n, c.margin_of_error, share)) || by_value()
            }
            None => by_value(),
        };
        if flagged { "unreliable" } else { "" }
    }

    /// How many published cells are flagged.
    pub fn flagged(&self) -> usize {
        (0..self.cells.len())
            .filter(|&i| !self.flag(i).is_empty())
            .count()
    }

    /// The column names: `<dims...>,value,status,moeNN,flag`, then for a sum that counts them
    /// `contributors,contributors_moeNN`.
    fn columns(&self) -> Vec<String> {
        let mut header: Vec<String> = self.dimensions.iter().map(|d| d.to_string()).collect();
        header.extend([
            "value".into(),
            "status".into(),
            moe_column(self.confidence),
            "flag".into(),
        ]);
        if self.contributors.is_some() {
            header.push("contributors".into());
            header.push(format!("contributors_{}", moe_column(self.confidence)));
        }
        if self.shares.is_some() {
            header.push("share_pct".into());
            header.push(format!("share_pct_{}", moe_column(self.confidence)));
        }
        header
    }

    /// One row per declared cell in category order.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let moe = self.margin_of_error.to_string();
        w.write_record(self.columns()).expect("writing to memory");
        for (i, cell) in self.cells.iter().enumerate() {
            let value = cell.value.map(|v| v.to_string()).unwrap_or_default();
            let mut row: Vec<String> = self.labels(i).into_iter().map(String::from).collect();
            row.extend([
                value,
                cell.status().into(),
                moe.clone(),
                self.flag(i).into(),
            ]);
            if let Some(c) = &self.contributors {
                row.push(c.counts[i].map(|n| n.to_string()).unwrap_or_default());
                row.push(c.margin_of_error.to_string());
            }
            if let Some(shares) = self.shares {
                let (p, m) = shares[i].map_or((String::new(), String::new()), |(p, m)| {
                    (percent(p), percent_margin(m))
                });
                row.extend([p, m]);
            }
            w.write_record(&row).expect("writing to memory");
        }
        let extra = self.columns().len() - self.dimensions.len() - 4;
        for (labels, value, moe) in self.total_rows() {
            let mut row = labels;
            row.extend([
                value.to_string(),
                TOTAL_STATUS.to_string(),
                moe.to_string(),
                self.total_flag(value, moe).to_string(),
            ]);
            row.extend(std::iter::repeat_n(String::new(), extra));
            w.write_record(&row).expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }

    /// Every margin's rows: the labels (the total's label where a dimension is summed out),
    /// the value and its margin of error.
    fn total_rows(&self) -> Vec<(Vec<String>, i64, i64)> {
        let Some(totals) = &self.totals else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for m in totals.margins {
            let kept: Vec<&[String]> = m.keep.iter().map(|&k| self.categories[k]).collect();
            for (i, &value) in m.values.iter().enumerate() {
                let cats = cell_labels(&kept, i);
                let labels = (0..self.dimensions.len())
                    .map(|k| match m.keep.iter().position(|&j| j == k) {
                        Some(p) => cats[p].to_string(),
                        None => totals.label.to_string(),
                    })
                    .collect();
                rows.push((labels, value, m.margin_of_error));
            }
        }
        rows
    }

    /// A margin's flag: as a count's cell's, from its value and its margin (a sum's margins too:
    /// they are sums of many contributors' rows, and their own margin says how well measured).
    fn total_flag(&self, value: i64, moe: i64) -> &'static str {
        match self.unreliable_above {
            Some(share) if unreliable(value.saturating_abs(), moe, share) => "unreliable",
            _ => "",
        }
    }

    /// The category labels of cell `i`.
    fn labels(&self, i: usize) -> Vec<&str> {
        cell_labels(&self.categories, i)
    }

    /// The same table as JSON: `{"table", "columns", "rows": [[...], ...]}` with numbers as
    /// numbers and suppressed values as `null`.
    pub fn to_json(&self) -> Vec<u8> {
        let columns = self.columns();
        let rows: Vec<serde_json::Value> = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let mut row: Vec<serde_json::Value> =
                    self.labels(i).into_iter().map(Into::into).collect();
                row.push(cell.value.map_or(serde_json::Value::Null, Into::into));
                row.push(cell.status().into());
                row.push(self.margin_of_error.into());
                row.push(self.flag(i).into());
                if let Some(c) = &self.contributors {
                    row.push(c.counts[i].map_or(serde_json::Value::Null, Into::into));
                    row.push(c.margin_of_error.into());
                }
                if let Some(shares) = self.shares {
                    let number =
                        |s: String| serde_json::Value::from(s.parse::<f64>().unwrap_or(0.0));
                    match shares[i] {
                        Some((p, m)) => {
                            row.push(number(percent(p)));
                            row.push(number(percent_margin(m)));
                        }
                        None => row.extend([serde_json::Value::Null, serde_json::Value::Null]),
                    }
                }
                serde_json::Value::Array(row)
            })
            .chain(self.total_rows().into_iter().map(|(labels, value, moe)| {
                let mut row: Vec<serde_json::Value> = labels.into_iter().map(Into::into).collect();
                row.push(value.into());
                row.push(TOTAL_STATUS.into());
                row.push(moe.into());
                row.push(self.total_flag(value, moe).into());
                row.resize(columns.len(), serde_json::Value::Null);
                serde_json::Value::Array(row)
            }))
            .collect();
        let doc = serde_json::json!({ "table": self.name, "columns": columns, "rows": rows });
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("serialising to memory");
        bytes.push(b'\n');
        bytes
    }
}

/// An exact table as published: every point of its grid (each dimension's categories, then
/// `total`), first dimension slowest, its exact value or empty where suppressed.
pub struct ExactPublished<'a> {
    pub dimensions: Vec<&'a str>,
    pub categories: Vec<&'a [String]>,
    /// Whether the grid has each dimension's total after its categories.
    pub margins: bool,
    /// The label of a margin's dimension (`total` unless the policy names another).
    pub total: &'a str,
    /// Per dimension, its groups' names (their subtotals follow its categories).
    pub groups: Vec<Vec<&'a str>>,
    pub values: &'a [Option<i64>],
}

/// Every row of an exact table says what it is, so that the file alone is never taken for a
/// differentially private table.
pub const EXACT_PROTECTION: &str = "exact values, cell suppression (not differentially private)";

impl<'a> ExactPublished<'a> {
    /// Grid positions of dimension `k`: its categories, then (with margins) its groups and total.
    pub fn positions(&self, k: usize) -> usize {
        self.categories[k].len()
            + if self.margins {
                self.groups.get(k).map_or(0, Vec::len) + 1
            } else {
                0
            }
    }

    /// The label of position `c` of dimension `k`: a category, a group, or the total's label.
    pub fn label(&self, k: usize, c: usize) -> &'a str {
        let cats: &'a [String] = self.categories[k];
        let groups = self.groups.get(k).map_or(&[][..], Vec::as_slice);
        match c.checked_sub(cats.len()) {
            None => &cats[c],
            Some(g) if g < groups.len() => groups[g],
            Some(_) => self.total,
        }
    }

    /// The labels of grid point `i`: a category, a group, or the total's label.
    pub fn labels(&self, i: usize) -> Vec<&'a str> {
        let mut labels = vec![""; self.categories.len()];
        let mut rest = i;
        for k in (0..self.categories.len()).rev() {
            let n = self.positions(k);
            labels[k] = self.label(k, rest % n);
            rest /= n;
        }
        labels
    }

    /// `<dims...>,value,status,protection`, one row per grid point.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<&str> = self.dimensions.clone();
        header.extend(["value", "status", "protection"]);
        w.write_record(&header).expect("writing to memory");
        for (i, v) in self.values.iter().enumerate() {
            let value = v.map(|v| v.to_string()).unwrap_or_default();
            let mut row: Vec<&str> = self.labels(i);
            row.push(&value);
            row.push(if v.is_some() {
                "published"
            } else {
                "suppressed"
            });
            row.push(EXACT_PROTECTION);
            w.write_record(&row).expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }
}

/// An exact table as read back: each dimension's categories, and every grid point's value.
pub type ExactRead = (Vec<Vec<String>>, Vec<Option<i64>>);

/// An exact table's CSV: each dimension's categories (in order, `total` aside) and every grid
/// point's value (`None`: suppressed), checked to be the whole grid in order.
pub fn read_exact(
    bytes: &[u8],
    t: &ExactTableEntry,
    presentation: &crate::policy::Presentation,
) -> Result<ExactRead, String> {
    let dimensions: Vec<&str> = t.dimensions.iter().map(String::as_str).collect();
    let bytes = super::coded_csv(bytes, &dimensions, presentation)?;
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let dims = t.dimensions.len();
    let want: Vec<&str> = t
        .dimensions
        .iter()
        .map(String::as_str)
        .chain(["value", "status", "protection"])
        .collect();
    if header.iter().ne(want.iter().copied()) {
        return Err(format!("its header is not `{}`", want.join(",")));
    }
    let mut categories: Vec<Vec<String>> = vec![Vec::new(); dims];
    let groups = t.group_names();
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        for (k, cats) in categories.iter_mut().enumerate() {
            let c = &record[k];
            let margin = c == t.total_label || groups.get(k).is_some_and(|g| g.contains(&c));
            if !margin && !cats.iter().any(|x| x == c) {
                cats.push(c.to_string());
            }
        }
        let value = match (&record[dims], &record[dims + 1]) {
            ("", "suppressed") => None,
            (v, "published") => Some(
                v.parse::<i64>()
                    .map_err(|_| format!("line {}: `{v}` is not a whole number", n + 2))?,
            ),
            (v, s) => return Err(format!("line {}: value `{v}` with status `{s}`", n + 2)),
        };
        rows.push((
            record
                .iter()
                .take(dims)
                .map(String::from)
                .collect::<Vec<_>>(),
            value,
        ));
    }
    // The rows are the whole grid, in order: categories then the total, first dimension slowest.
    let view = ExactPublished {
        dimensions: t.dimensions.iter().map(String::as_str).collect(),
        categories: categories.iter().map(Vec::as_slice).collect(),
        margins: t.margins,
        total: &t.total_label,
        groups,
        values: &[],
    };
    let points: usize = (0..dims).map(|k| view.positions(k)).product();
    if rows.len() != points || points != t.cells {
        return Err(format!(
            "it has {} rows; its categories, groups and totals make {points} and the manifest says {}",
            rows.len(),
            t.cells
        ));
    }
    for (i, (labels, _)) in rows.iter().enumerate() {
        if view.labels(i) != labels.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(format!("line {}: not the grid's next cell", i + 2));
        }
    }
    Ok((categories, rows.into_iter().map(|(_, v)| v).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moe_column_names() {
        assert_eq!(moe_column(0.95), "moe95");
        assert_eq!(moe_column(0.975), "moe97.5");
        assert_eq!(moe_column(0.9), "moe90");
        assert_eq!(moe_column(0.99999999), "moe99.999999");
    }

    #[test]
    fn csv_lists_every_cell_in_category_order() {
        let cats_a = vec!["f".to_string(), "m".to_string()];
        let cats_b = vec!["x".to_string(), "y".to_string(), "z".to_string()];
        let cells: Vec<Cell> = (0..6)
            .map(|i| Cell {
                value: (i != 4).then_some(i * 10),
            })
            .collect();
        let t = PublishedTable {
            name: "t",
            dimensions: vec!["a", "b"],
            categories: vec![&cats_a, &cats_b],
            cells: &cells,
            margin_of_error: 7,
            confidence: 0.95,
            unreliable_above: Some(0.5),
            contributors: None,
            shares: None,
            totals: None,
        };
        let text = String::from_utf8(t.to_csv()).unwrap();
        assert_eq!(
            text,
            "a,b,value,status,moe95,flag\nf,x,0,published,7,unreliable\nf,y,10,published,7,unreliable\n\
             f,z,20,published,7,\nm,x,30,published,7,\nm,y,,suppressed,7,\nm,z,50,published,7,\n"
        );
        // Margins follow the cells, labelled where a dimension is summed out.
        let margins = [
            Margin {
                keep: vec![0],
                values: vec![30, 120],
                margin_of_error: 9,
            },
            Margin {
                keep: vec![1],
                values: vec![30, 50, 12],
                margin_of_error: 8,
            },
            Margin {
                keep: vec![],
                values: vec![150],
                margin_of_error: 12,
            },
        ];
        let with_totals = PublishedTable {
            totals: Some(Totals {
                label: "계",
                margins: &margins,
            }),
            ..t
        };
        let text = String::from_utf8(with_totals.to_csv()).unwrap();
        assert!(
            text.ends_with(
                "m,z,50,published,7,\nf,계,30,total,9,\nm,계,120,total,9,\n계,x,30,total,8,\n\
                 계,y,50,total,8,\n계,z,12,total,8,unreliable\n계,계,150,total,12,\n"
            ),
            "{text}"
        );
        let t = PublishedTable {
            totals: None,
            ..with_totals
        };
        let json: serde_json::Value = serde_json::from_slice(&t.to_json()).unwrap();
        assert_eq!(
            json["rows"][4],
            serde_json::json!(["m", "y", null, "suppressed", 7, ""])
        );
    }
}
