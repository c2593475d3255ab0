//! The validated release plan: the only thing commands use (never the raw policy file).
//!
//! Owns [`Plan`] and its parts, and a plan's identity: what a release means, in a canonical form
//! that comments and layout do not change.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::statistic::{Bound, Statistic};
use crate::privacy::{Accounting, Budget, Cost, Mechanism};

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Plan {
    pub policy_path: PathBuf,
    /// SHA-256 of the policy file's bytes (a comment changes it; see [`Plan::identity`]).
    pub policy_sha256: String,
    /// SHA-256 of what the release means ([`Plan::identity`]): what identifies a release.
    pub plan_sha256: String,
    pub release_id: String,
    pub title: Option<String>,
    pub dataset: String,
    pub privacy_unit: String,
    /// The dataset's budget as the policy states it, and how costs add up under it.
    pub budget: Budget,
    pub accounting: Accounting,
    /// The dataset's ledger: the policy's `ledger`, else `ledger/<dataset>.jsonl`, resolved
    /// against the policy file's folder (never the folder a command runs in).
    pub ledger: PathBuf,
    /// The folder of the dataset's release folders: the policy's `releases`, else `releases`,
    /// resolved against the policy file's folder.
    pub releases: PathBuf,
    /// The secret key that signs the release's manifest: `SAFESTAT_SIGNING_KEY`, else the
    /// policy's `signing_key` resolved against its folder. Where the key is kept is not what the
    /// release means, so not part of [`Plan::identity`].
    pub signing_key: Option<PathBuf>,
    pub inputs: Vec<InputSpec>,
    pub dimensions: Vec<Dimension>,
    /// The differentially private tables.
    pub tables: Vec<TableSpec>,
    /// The exact tables, protected by cell suppression (not differentially private).
    pub exact_tables: Vec<ExactTableSpec>,
    /// How the release is presented (labels, titles, units, language): display only, so not
    /// part of [`Plan::identity`].
    pub presentation: super::Presentation,
}

#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    /// The path resolved against the policy file's folder.
    pub path: PathBuf,
    pub kind: InputKind,
    /// The file's character encoding when it is not UTF-8 (decoded by `encoding_rs`).
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// Whether a quoted field may hold a line break.
    pub multiline: bool,
    /// Where the rows are when they are in a database (then `path` is empty).
    pub sql: Option<SqlSource>,
}

/// A database input: which engine, which relation, and how to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlSource {
    pub engine: Engine,
    /// The environment variable that holds the connection string.
    pub url_env: String,
    pub relation: Relation,
    /// Each statement's time limit.
    pub timeout_seconds: u64,
}

/// The engine that holds a database input's rows and runs its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL (`sql = { ... }`), over its wire protocol.
    Postgres,
    /// Apache Spark (`spark = { ... }`), over Spark Connect.
    Spark,
}

impl Engine {
    /// The policy's field for an input in this engine.
    pub fn field(self) -> &'static str {
        match self {
            Engine::Postgres => "sql",
            Engine::Spark => "spark",
        }
    }

    /// The engine's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Spark => "Apache Spark",
        }
    }
}

/// What an SQL input reads: a table (or view), possibly schema-qualified, or a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// The name's parts (`schema.table` is two), each quoted as an identifier when sent.
    Table(Vec<String>),
    Query(String),
}

impl Relation {
    /// As the policy wrote it, for messages and the ledger.
    pub fn describe(&self) -> String {
        match self {
            Relation::Table(parts) => format!("table {}", parts.join(".")),
            Relation::Query(q) => format!("query `{q}`"),
        }
    }
}

impl InputSpec {
    /// An input's part of [`Plan::identity`]: how it is read, not where it is.
    fn identity(&self) -> serde_json::Value {
        let (count_column, add_duplicates) = match &self.kind {
            InputKind::Microdata => (None, false),
            InputKind::Aggregated {
                count_column,
                add_duplicates,
            } => (Some(count_column), *add_duplicates),
        };
        let mut identity = serde_json::json!({
            "name": self.name,
            "count_column": count_column,
            "add_duplicates": add_duplicates,
            "encoding": self.encoding.map(|e| e.name()),
            "multiline": self.multiline,
        });
        // Only SQL inputs carry the key, so that the identity of every file policy is unchanged.
        if let Some(sql) = &self.sql {
            identity["sql"] = match &sql.relation {
                Relation::Table(parts) => serde_json::json!({ "table": parts }),
                Relation::Query(q) => serde_json::json!({ "query": q }),
            };
            // Only Spark inputs name their engine, so that every PostgreSQL identity is unchanged.
            if sql.engine == Engine::Spark {
                identity["sql"]["engine"] = "spark".into();
            }
        }
        identity
    }

    /// Where the input is, for messages: its path, or its relation and the variable naming the
    /// server (never the connection string).
    pub fn location(&self) -> String {
        match &self.sql {
            None => self.path.display().to_string(),
            Some(s) => format!("{}, server in ${}", s.relation.describe(), s.url_env),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// One row per record; the privacy unit column identifies whose record it is.
    Microdata,
    /// Counts made elsewhere: one row per cell, the count in `count_column`. Two rows for the
    /// same cell are an error unless `add_duplicates`.
    Aggregated {
        count_column: String,
        add_duplicates: bool,
    },
}

/// A categorical column with its public, declared categories.
#[derive(Debug, Clone)]
pub struct Dimension {
    pub name: String,
    pub categories: Vec<String>,
    /// Index of the category that undeclared values are mapped to, if the policy names one.
    pub catch_all: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: String,
    /// Index into [`Plan::inputs`].
    pub input: usize,
    pub statistic: Statistic,
    /// Indices into [`Plan::dimensions`], in the policy's `by` order.
    pub dims: Vec<usize>,
    pub mechanism: Mechanism,
    pub cost: Cost,
    /// Where the cost came from: the table's own `cost`, or its `weight` share of the release.
    pub cost_source: CostSource,
    /// `sum` only: the cost of the noisy count of each cell's contributors, which decides the
    /// sum's suppression and flags (`None`: not measured; the table then suppresses nothing).
    pub contributors_cost: Option<Cost>,
    pub suppress_below: i64,
    pub confidence: f64,
    /// Whether the table may be estimated together with the tables that measure the same
    /// quantity (`protect::consistency`); `false` publishes it as drawn.
    pub consistent: bool,
    /// The officer's public prior of a typical cell's size, for `plan`'s warning only (it
    /// changes no output, so it is not part of the plan's identity).
    pub expected_cell_size: Option<u64>,
    /// The word in a margin's rows where a dimension is summed out (`total` by default).
    pub total_label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    Declared,
    Weight { weight: f64, total_weight: f64 },
}

impl Plan {
    /// What the release means, in a canonical form: everything that decides its outputs (the
    /// release, the dataset and its budget, the inputs' kinds and how they are read, the
    /// declared categories, every table's statistic, bounds, mechanism, cost and thresholds),
    /// and nothing that does not (comments, layout, field order, the spelling of paths).
    /// Together with the inputs' fingerprints it identifies a release: a re-run is the same
    /// release exactly when both are unchanged.
    pub fn identity(&self) -> serde_json::Value {
        use serde_json::json;
        // Destructured so that a new field of `Plan` must be placed here or explicitly left out.
        let Plan {
            policy_path: _,
            policy_sha256: _,
            plan_sha256: _,
            release_id,
            title,
            dataset,
            privacy_unit,
            budget,
            accounting: _,
            ledger: _,
            releases: _,
            signing_key: _,
            inputs,
            dimensions,
            tables,
            exact_tables,
            presentation: _,
        } = self;
        let inputs: Vec<_> = inputs.iter().map(InputSpec::identity).collect();
        let dimensions: Vec<_> = dimensions
            .iter()
            .map(
                |d| json!({ "name": d.name, "categories": d.categories, "catch_all": d.catch_all }),
            )
            .collect();
        let tables: Vec<_> = tables.iter().map(|t| self.table_identity(t)).collect();
        let exact: Vec<_> = exact_tables
            .iter()
            .map(|t| {
                let mut v = json!(t);
                v["input"] = json!(self.inputs[t.input].name);
                v["by"] = json!(
                    t.dims
                        .iter()
                        .map(|&d| &self.dimensions[d].name)
                        .collect::<Vec<_>>()
                );
                v
            })
            .collect();
        let mut identity = json!({
            "identity_format": 1,
            "release_id": release_id,
            "title": title,
            "dataset": dataset,
            "privacy_unit": privacy_unit,
            "budget": budget,
            "inputs": inputs,
            "dimensions": dimensions,
            "tables": tables,
        });
        // Only plans with exact tables carry the key, so that every other plan's identity is
        // unchanged.
        if !exact.is_empty() {
            identity["exact_tables"] = json!(exact);
        }
        identity
    }

    /// The SHA-256 of [`Plan::identity`] with the release's title `title` instead of its own:
    /// with its own, `plan_sha256`; with a published release's, whether this policy is that
    /// release but for its presentation.
    pub fn identity_sha256(&self, title: Option<&str>) -> String {
        let mut identity = self.identity();
        identity["title"] = serde_json::json!(title);
        crate::hash::sha256_hex(identity.to_string().as_bytes())
    }

    /// A table's part of [`Plan::identity`].
    fn table_identity(&self, t: &TableSpec) -> serde_json::Value {
        let (column, clamp) = match &t.statistic {
            Statistic::Sum { column, lo, hi, .. } => (Some(column), Some([lo, hi])),
            _ => (None, None),
        };
        let (cells, rows, per_cell) = match t.statistic.bound() {
            Bound::Cells(c) => (Some(c), None, None),
            Bound::Rows { per_unit, per_cell } => (None, Some(per_unit), Some(per_cell)),
            Bound::Whole => (None, None, None),
        };
        let mut identity = serde_json::json!({
            "name": t.name,
            "input": self.inputs[t.input].name,
            "statistic": t.statistic.name(),
            "column": column,
            "clamp": clamp,
            "max_cells_per_unit": cells,
            "max_rows_per_unit": rows,
            "max_rows_per_cell": per_cell,
            "by": t.dims.iter().map(|&d| &self.dimensions[d].name).collect::<Vec<_>>(),
            "mechanism": t.mechanism,
            "cost": t.cost,
            "cost_source": t.cost_source,
            "suppress_below": t.suppress_below,
            "confidence": t.confidence,
            "consistent": t.consistent,
        });
        // Only sums that measure their contributors carry the key, so that the identity of every
        // other table is unchanged.
        if let Some(c) = t.contributors_cost {
            identity["contributors_cost"] = serde_json::json!(c);
        }
        // Only a label other than the default changes the identity, so that every plan before
        // margins were published keeps its identity.
        if t.total_label != DEFAULT_TOTAL {
            identity["total_label"] = serde_json::json!(t.total_label);
        }
        identity
    }

    /// The names of dimensions `dims` (indices into [`Plan::dimensions`]).
    pub fn dimension_names(&self, dims: &[usize]) -> Vec<&str> {
        dims.iter()
            .map(|&d| self.dimensions[d].name.as_str())
            .collect()
    }

    /// The declared categories of dimensions `dims`.
    pub fn dimension_categories(&self, dims: &[usize]) -> Vec<&[String]> {
        dims.iter()
            .map(|&d| self.dimensions[d].categories.as_slice())
            .collect()
    }

    pub fn table_cells(&self, table: &TableSpec) -> usize {
        table
            .dims
            .iter()
            .map(|&d| self.dimensions[d].categories.len())
            .product()
    }

    pub fn bounds_enforced(&self, table: &TableSpec) -> bool {
        self.inputs[table.input].kind == InputKind::Microdata
    }

    /// `enforced` (microdata: safestat bounds each unit) or `declared` (aggregated input).
    pub fn bounds_status(&self, table: &TableSpec) -> &'static str {
        if self.bounds_enforced(table) {
            "enforced"
        } else {
            "declared"
        }
    }
}

/// What secondary suppression minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondaryObjective {
    Cells,
    Value,
}

impl SecondaryObjective {
    /// Its name in the policy and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            SecondaryObjective::Cells => "cells",
            SecondaryObjective::Value => "value",
        }
    }
}

/// An exact table's sum (of a column, or of 1 per row: `count_rows`) and the sensitivity rules
/// that need each unit's contribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactSum {
    /// The summed column (whole numbers, 0 or more); `None`: each row counts 1.
    pub column: Option<String>,
    /// The (n,k)-dominance rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominance: Option<Dominance>,
    /// The p% rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_percent: Option<u32>,
}

/// The (n,k)-dominance rule: a cell whose `n` largest units make more than `k` percent of its
/// value is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dominance {
    pub n: u32,
    pub k: u32,
}

/// The largest `n` of the dominance rule.
pub const MAX_DOMINANCE_N: i64 = 10;

impl ExactSum {
    /// How many of each cell's largest contributions the rules read.
    pub fn largest(&self) -> u32 {
        // At least the largest: a respondent who knows its own contribution (the insider the
        // suppression is checked against) knows at most that much of a cell.
        let p = if self.p_percent.is_some() { 2 } else { 1 };
        self.dominance.map_or(1, |d| d.n).max(p)
    }
}

/// A validated exact table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExactTableSpec {
    pub name: String,
    /// Index into the plan's inputs.
    #[serde(skip)]
    pub input: usize,
    /// Indices into the plan's dimensions, in `by` order.
    #[serde(skip)]
    pub dims: Vec<usize>,
    /// Publish every margin (a `total` row for each combination).
    pub margins: bool,
    /// The exact sum of a column (`None`: the table counts privacy units), with its rules. In
    /// the identity only when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<ExactSum>,
    /// A cell of fewer privacy units than this (and more than none) is primary.
    pub min_frequency: i64,
    pub zeros_primary: bool,
    /// A zero cell may be hidden as a secondary cell, so a hidden count may be 0. In the
    /// identity only when set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub zeros_secondary: bool,
    pub interval_percent: f64,
    pub secondary: SecondaryObjective,
    /// The label of a margin's dimension in the published rows (`seoul,total`). Part of the
    /// plan's identity only when it is not the default, so that earlier plans keep their hash.
    #[serde(skip_serializing_if = "is_default_total")]
    pub total_label: String,
    /// Per dimension (in `by` order), its groups of categories, whose subtotals are published
    /// after its categories and before its total. In the identity only when there are any.
    #[serde(skip_serializing_if = "no_groups")]
    pub groups: Vec<Vec<Group>>,
}

/// A group of a dimension's categories, published as a subtotal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub categories: Vec<String>,
}

/// Whether no dimension has groups.
pub fn no_groups(groups: &[Vec<Group>]) -> bool {
    groups.iter().all(Vec::is_empty)
}

/// The label of a margin's dimension unless the policy names another.
pub const DEFAULT_TOTAL: &str = "total";

fn is_default_total(label: &String) -> bool {
    label == DEFAULT_TOTAL
}

impl ExactTableSpec {
    /// What its values are, in words: `exact counts of victim_id`, `exact counts of rows` or
    /// `exact sums of amount`.
    pub fn values_phrase(&self, unit: &str) -> String {
        match self.sum.as_ref().map(|s| s.column.as_deref()) {
            None => format!("exact counts of {unit}"),
            Some(None) => "exact counts of rows".to_string(),
            Some(Some(column)) => format!("exact sums of {column}"),
        }
    }

    /// Its statistic's name in the policy and the manifest.
    pub fn statistic(&self) -> &'static str {
        match self.sum.as_ref().map(|s| s.column.is_some()) {
            None => "count_units",
            Some(false) => "count_rows",
            Some(true) => "sum",
        }
    }

    /// Its primary rules in words: `cells of fewer than 5 victim_id, or whose largest victim_id
    /// makes more than 80% of the cell`.
    pub fn rules_phrase(&self, unit: &str) -> String {
        let mut rules = vec![format!("cells of fewer than {} {unit}", self.min_frequency)];
        if let Some(s) = &self.sum {
            if let Some(d) = s.dominance {
                rules.push(match d.n {
                    1 => format!("whose largest {unit} makes more than {}% of the cell", d.k),
                    n => format!(
                        "whose {n} largest {unit} make more than {}% of the cell",
                        d.k
                    ),
                });
            }
            if let Some(p) = s.p_percent {
                rules.push(format!(
                    "in which the second largest {unit} could estimate the largest's contribution within {p}%"
                ));
            }
        }
        rules.join(", or ")
    }

    /// `with every margin` (and its groups' subtotals) or `without margins`, as the summaries
    /// say it.
    pub fn margins_phrase(&self) -> String {
        if !self.margins {
            return "without margins".into();
        }
        let groups: Vec<String> = self
            .groups
            .iter()
            .flatten()
            .map(|g| format!("`{}`", g.name))
            .collect();
        if groups.is_empty() {
            "with every margin".into()
        } else {
            format!(
                "with every margin and the subtotals of {}",
                groups.join(", ")
            )
        }
    }
}
