//! How a release is presented to readers: labels for dimensions and categories (Hangul included),
//! each table's title and unit, the language of the words around the numbers, the marker for a
//! suppressed cell, and whether CSV files carry a UTF-8 byte-order mark.
//!
//! Display only: nothing here changes a number, so none of it is part of the plan's identity
//! (a relabelled policy is the same release), and a published folder can be presented again
//! (`safestat report`) without drawing anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The languages the report and the workbook are written in.
pub const LANGUAGES: [&str; 2] = ["ko", "en"];

/// How the release is presented; recorded in the manifest (it is public: it comes from the
/// policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presentation {
    /// `ko` or `en`.
    pub language: String,
    /// What a suppressed cell shows in the workbook and the report (default `x`).
    pub suppressed_marker: String,
    /// Whether the CSV files start with a UTF-8 byte-order mark (for Excel; by default with
    /// `language = "ko"` only).
    pub csv_bom: bool,
    /// Whether the CSV files name dimensions and categories by their labels (`csv_labels =
    /// true`, for people who open them directly) instead of their codes (the default, for
    /// machines). A manifest without the field was written with codes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub csv_labels: bool,
    /// A count's cell is flagged `unreliable` when its margin of error is above this share of
    /// its published value (default 0.5).
    #[serde(default = "default_unreliable_above")]
    pub unreliable_above: f64,
    /// Whether a DP table's cross-table shows its totals (계) before its categories (the total
    /// row on top, the total column first), as Korean statistical tables print them. A policy
    /// without `totals` gets `first`; a manifest without the field (format 5 or earlier) was
    /// made with them last, and is presented again as it was.
    #[serde(default)]
    pub totals_first: bool,
    /// Per dimension (by column name), its label and its categories' labels.
    #[serde(default)]
    pub dimensions: BTreeMap<String, DimensionLabels>,
    /// Per table (by name), its title, its unit and whether it publishes shares.
    #[serde(default)]
    pub tables: BTreeMap<String, TableLabels>,
    /// What a privacy unit is called in the reader's words (`[labels.<privacy unit column>]`
    /// `label = "피해자"`), for the methodology and the measure of a count of units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_unit_label: Option<String>,
    /// The publication's source line, publisher, contact, reference period and footnotes
    /// (KOSIS-style; absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Whether tables are numbered (`표 1.`, or each table's `number`). A manifest without the
    /// field (format 7 and earlier) was made without numbers.
    #[serde(default)]
    pub table_numbers: bool,
}

impl Default for Presentation {
    fn default() -> Self {
        Presentation {
            language: "en".to_string(),
            suppressed_marker: "x".to_string(),
            csv_bom: false,
            csv_labels: false,
            unreliable_above: default_unreliable_above(),
            totals_first: true,
            dimensions: BTreeMap::new(),
            tables: BTreeMap::new(),
            privacy_unit_label: None,
            source: None,
            organisation: None,
            contact: None,
            period: None,
            notes: Vec::new(),
            table_numbers: true,
        }
    }
}

fn default_unreliable_above() -> f64 {
    0.5
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DimensionLabels {
    pub label: Option<String>,
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableLabels {
    pub title: Option<String>,
    pub unit: Option<String>,
    /// Whether the table publishes each cell's share of its total (`shares = true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shares: bool,
    /// Its number in the publication, where the policy gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

impl Presentation {
    /// A dimension's label, or its column name.
    pub fn dimension<'a>(&'a self, name: &'a str) -> &'a str {
        self.dimensions
            .get(name)
            .and_then(|d| d.label.as_deref())
            .unwrap_or(name)
    }

    /// A category's label, or the category as declared.
    pub fn category<'a>(&'a self, dimension: &str, category: &'a str) -> &'a str {
        self.dimensions
            .get(dimension)
            .and_then(|d| d.categories.get(category))
            .map_or(category, String::as_str)
    }

    pub fn title<'a>(&'a self, table: &'a str) -> &'a str {
        self.tables
            .get(table)
            .and_then(|t| t.title.as_deref())
            .unwrap_or(table)
    }

    /// A table's number in the publication (its own, or its place `position` among the
    /// tables, from 1), `None` when tables are not numbered.
    pub fn number(&self, table: &str, position: usize) -> Option<String> {
        self.table_numbers.then(|| {
            self.tables
                .get(table)
                .and_then(|t| t.number.clone())
                .unwrap_or_else(|| position.to_string())
        })
    }

    pub fn unit(&self, table: &str) -> Option<&str> {
        self.tables.get(table).and_then(|t| t.unit.as_deref())
    }

    /// Whether table `table` publishes shares of its total.
    pub fn shares(&self, table: &str) -> bool {
        self.tables.get(table).is_some_and(|t| t.shares)
    }

    pub fn korean(&self) -> bool {
        self.language == "ko"
    }

    /// What would change the tables' own files if the release were presented with `other`
    /// instead (the CSVs carry the byte-order mark, the unreliability flags and the shares),
    /// named for a refusal; `None` when only the workbook and the report would change.
    pub fn changes_tables(&self, other: &Presentation) -> Option<String> {
        // Destructured so that a new field must be placed on one side or the other.
        let Presentation {
            language: _,
            suppressed_marker: _,
            csv_bom,
            csv_labels,
            unreliable_above,
            totals_first: _,
            dimensions: _,
            tables,
            privacy_unit_label: _,
            source: _,
            organisation: _,
            contact: _,
            period: _,
            notes: _,
            table_numbers: _,
        } = self;
        if *csv_bom != other.csv_bom {
            return Some(
                "`csv_bom` (the CSV files' first bytes; without `csv_bom` in the policy it follows `language`: state it as published)"
                    .into(),
            );
        }
        if *csv_labels != other.csv_labels {
            return Some("`csv_labels` (the CSV files' headers and categories)".into());
        }
        if *csv_labels && (self.dimensions != other.dimensions) {
            return Some(
                "a dimension's or category's label, which the CSV files show under `csv_labels = true`"
                    .into(),
            );
        }
        if *unreliable_above != other.unreliable_above {
            return Some("`unreliable_above` (the CSV files' unreliable flags)".into());
        }
        let shares = |p: &BTreeMap<String, TableLabels>| -> Vec<String> {
            p.iter()
                .filter(|(_, t)| t.shares)
                .map(|(n, _)| n.clone())
                .collect()
        };
        if shares(tables) != shares(&other.tables) {
            return Some("a table's `shares` (its CSV's share column)".into());
        }
        None
    }
}
