//! The published tables: one row per declared cell, as CSV (and JSON on request).
//!
//! Formats [`Cell`]s, which hold noisy, post-processed values only: never an exact cell.

use crate::protect::postprocess::Cell;

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
    /// `None` flags nothing (sums, whose flags need a noisy count of contributors).
    pub unreliable_above: Option<f64>,
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
    let pct = format!("{:.4}", confidence * 100.0);
    let pct = pct.trim_end_matches('0').trim_end_matches('.');
    format!("moe{pct}")
}

impl PublishedTable<'_> {
    /// `unreliable` for a flagged cell, else empty.
    pub fn flag(&self, cell: &Cell) -> &'static str {
        match (cell.value, self.unreliable_above) {
            (Some(v), Some(share)) if unreliable(v, self.margin_of_error, share) => "unreliable",
            _ => "",
        }
    }

    /// How many published cells are flagged.
    pub fn flagged(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| !self.flag(c).is_empty())
            .count()
    }

    /// `<dims...>,value,status,moeNN,flag`; one row per declared cell in category order.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let moe = self.margin_of_error.to_string();
        let mut header: Vec<String> = self.dimensions.iter().map(|d| d.to_string()).collect();
        header.extend([
            "value".into(),
            "status".into(),
            moe_column(self.confidence),
            "flag".into(),
        ]);
        w.write_record(&header).expect("writing to memory");
        for (i, cell) in self.cells.iter().enumerate() {
            let value = cell.value.map(|v| v.to_string()).unwrap_or_default();
            let mut row = self.labels(i);
            row.extend([value.as_str(), cell.status(), moe.as_str(), self.flag(cell)]);
            w.write_record(&row).expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }

    /// The category labels of cell `i`.
    fn labels(&self, i: usize) -> Vec<&str> {
        cell_labels(&self.categories, i)
    }

    /// The same table as JSON: `{"table", "columns", "rows": [[...], ...]}` with numbers as
    /// numbers and suppressed values as `null`.
    pub fn to_json(&self) -> Vec<u8> {
        let moe_name = moe_column(self.confidence);
        let mut columns: Vec<&str> = self.dimensions.clone();
        columns.extend(["value", "status", &moe_name, "flag"]);
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
                row.push(self.flag(cell).into());
                serde_json::Value::Array(row)
            })
            .collect();
        let doc = serde_json::json!({ "table": self.name, "columns": columns, "rows": rows });
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("serialising to memory");
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moe_column_names() {
        assert_eq!(moe_column(0.95), "moe95");
        assert_eq!(moe_column(0.975), "moe97.5");
        assert_eq!(moe_column(0.9), "moe90");
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
        };
        let text = String::from_utf8(t.to_csv()).unwrap();
        assert_eq!(
            text,
            "a,b,value,status,moe95,flag\nf,x,0,published,7,unreliable\nf,y,10,published,7,unreliable\n\
             f,z,20,published,7,\nm,x,30,published,7,\nm,y,,suppressed,7,\nm,z,50,published,7,\n"
        );
        let json: serde_json::Value = serde_json::from_slice(&t.to_json()).unwrap();
        assert_eq!(
            json["rows"][4],
            serde_json::json!(["m", "y", null, "suppressed", 7, ""])
        );
    }
}
