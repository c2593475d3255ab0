//! The release policy as the file states it (`policies/*.toml`).
//!
//! Owns parsing only: every struct mirrors the TOML layout and rejects unknown fields, so a typo is
//! an error rather than a silently ignored setting. Nothing here decides whether the values make
//! sense; [`super::validate`] does that and is the only way to a [`super::Plan`].
//! Commands must never use these raw types directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors reading or parsing a policy file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy `{path}` is not valid TOML for a safestat policy: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("policy `{path}` is invalid:{}", format_problems(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

fn format_problems(problems: &[String]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// The whole policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub release: ReleaseSection,
    pub dataset: DatasetSection,
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSection>,
    #[serde(default)]
    pub categories: BTreeMap<String, Vec<String>>,
    /// Per column, the declared category that undeclared values are mapped to.
    #[serde(default)]
    pub catch_all: BTreeMap<String, String>,
    #[serde(default)]
    pub defaults: DefaultsSection,
    /// How the tables are presented (display only).
    #[serde(default)]
    pub publication: PublicationSection,
    /// Per dimension, display labels for it and its categories.
    #[serde(default)]
    pub labels: BTreeMap<String, LabelSection>,
    #[serde(default, rename = "table")]
    pub tables: Vec<TableSection>,
}

/// `[publication]`: the report's language, the suppressed marker, a byte-order mark on CSVs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicationSection {
    pub language: Option<String>,
    pub suppressed_marker: Option<String>,
    pub csv_bom: Option<bool>,
    /// Write the CSVs' dimension headers and categories as their labels (default: codes).
    pub csv_labels: Option<bool>,
    /// Flag a count's cell when its margin of error is above this share of its value.
    pub unreliable_above: Option<f64>,
    /// Where a cross-table's totals (계) go: `first` (the default) or `last`.
    pub totals: Option<String>,
    /// The source line under every table (`자료: ...`).
    pub source: Option<String>,
    /// Who publishes, and where readers ask (the methodology).
    pub organisation: Option<String>,
    pub contact: Option<String>,
    /// The reference period the figures describe (e.g. `2024년`).
    pub period: Option<String>,
    /// Numbered footnotes under every table (`주: 1) ... 2) ...`).
    pub notes: Option<Vec<String>>,
    /// Whether tables are numbered (`표 1.`; default true).
    pub table_numbers: Option<bool>,
}

/// `[labels.<dimension>]`: `label = "..."` and `categories = { code = "label", ... }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSection {
    pub label: Option<String>,
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSection {
    pub id: String,
    pub title: Option<String>,
    /// Total cost shared among the tables that give a `weight` instead of a `cost`.
    pub cost: Option<CostSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    pub name: String,
    pub privacy_unit: String,
    /// The dataset's total privacy budget across every release.
    pub budget: Option<crate::privacy::Budget>,
    /// The ledger file (default `ledger/<name>.jsonl` beside the policy file).
    pub ledger: Option<PathBuf>,
    /// The folder that holds this dataset's release folders (default `releases` beside the
    /// policy file).
    pub releases: Option<PathBuf>,
    /// The minisign secret key that signs every release's manifest (policy-relative;
    /// `SAFESTAT_SIGNING_KEY` overrides it).
    pub signing_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSection {
    /// A CSV file; exactly one of `path`, `sql` and `spark`.
    pub path: Option<PathBuf>,
    /// A PostgreSQL table or query, read over the wire with bounding and counting pushed down.
    pub sql: Option<SqlSection>,
    /// An Apache Spark table or query, read through Spark Connect the same way.
    pub spark: Option<SqlSection>,
    #[serde(default)]
    pub aggregated: bool,
    pub count_column: Option<String>,
    /// The file's character encoding (default UTF-8), e.g. `cp949` for Korean Excel exports.
    pub encoding: Option<String>,
    /// Whether a quoted field may hold a line break (default: no, so that one stray quote
    /// cannot swallow the rows after it).
    #[serde(default)]
    pub multiline: bool,
    /// Aggregated input: what two rows for the same cell mean: `error` (default) or `add`.
    pub duplicates: Option<String>,
}

/// `sql = { url_env = "...", table = "..." }` (or `query = "SELECT ..."`); `spark = { ... }`
/// alike.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSection {
    /// The environment variable holding the connection string (never the string itself).
    pub url_env: String,
    pub table: Option<String>,
    pub query: Option<String>,
    /// Each statement's time limit, in seconds (default 3600).
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSection {
    pub mechanism: Option<String>,
    pub suppress_below: Option<i64>,
    pub confidence: Option<f64>,
    /// Whether tables that measure the same quantity are estimated together (default true).
    pub consistent: Option<bool>,
}

/// A privacy cost as written: exactly one of `epsilon` (pure DP) or `rho` (zCDP).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSection {
    pub epsilon: Option<f64>,
    pub rho: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSection {
    pub name: String,
    pub input: String,
    pub statistic: String,
    #[serde(default)]
    pub by: Vec<String>,
    pub column: Option<String>,
    pub clamp: Option<[i64; 2]>,
    pub max_cells_per_unit: Option<u32>,
    pub max_rows_per_unit: Option<u32>,
    pub max_rows_per_cell: Option<u32>,
    pub cost: Option<CostSection>,
    pub weight: Option<f64>,
    /// `sum`: the cost of the noisy count of each cell's contributors (privacy units), on which
    /// the sum's suppression and reliability flags are decided; charged on top of `cost`.
    pub contributors_cost: Option<CostSection>,
    pub mechanism: Option<String>,
    pub suppress_below: Option<i64>,
    pub confidence: Option<f64>,
    /// `false` leaves this table out of consistent estimation: it is published as drawn.
    pub consistent: Option<bool>,
    /// The table's title and unit (e.g. "명") for readers: display only.
    pub title: Option<String>,
    pub unit: Option<String>,
    /// The table's number in the publication (`3-1`; default: its place among the tables).
    pub number: Option<String>,
    /// Publish each cell's share of the table's total (percent) with its margin of error:
    /// post-processing of the noisy values, display only.
    pub shares: Option<bool>,
    /// A public prior: the size the officer expects a typical cell to have (never read from the
    /// data); `plan` warns when the margin of error is larger.
    pub expected_cell_size: Option<u64>,
    /// `dp` (the default: differential privacy) or `suppression` (exact values protected by cell
    /// suppression; not differentially private).
    pub protection: Option<String>,
    /// Exact tables: publish every margin (default `true`).
    pub margins: Option<bool>,
    /// Exact tables: the primary suppression rule.
    pub primary: Option<PrimarySection>,
    /// Exact tables: how far an attacker's interval for a primary cell must reach, in percent of
    /// its value.
    pub interval_percent: Option<f64>,
    /// Exact tables: what secondary suppression minimises, `cells` (default) or `value`.
    pub secondary: Option<String>,
    /// Exact tables: the label of a margin's dimension in the published rows (default `total`).
    pub total_label: Option<String>,
    /// Exact tables: groups of a dimension's categories whose subtotals are published too.
    pub groups: Option<Vec<GroupSection>>,
}

/// A `[[table]]` section as its kind: what a differentially private table may state, or what an
/// exact one may. [`TableSection::into_kind`] tells them apart by `protection` and refuses, in
/// one place and with the reason, every field the kind does not have, so the validators of each
/// kind receive a type without the other's fields.
pub enum TableKind {
    Dp(DpTableSection),
    Exact(ExactTableSection),
}

/// A differentially private table's section (`protection = "dp"`, the default).
pub struct DpTableSection {
    pub name: String,
    pub input: String,
    pub statistic: String,
    pub by: Vec<String>,
    pub column: Option<String>,
    pub total_label: Option<String>,
    pub clamp: Option<[i64; 2]>,
    pub max_cells_per_unit: Option<u32>,
    pub max_rows_per_unit: Option<u32>,
    pub max_rows_per_cell: Option<u32>,
    pub cost: Option<CostSection>,
    pub weight: Option<f64>,
    pub contributors_cost: Option<CostSection>,
    pub mechanism: Option<String>,
    pub suppress_below: Option<i64>,
    pub confidence: Option<f64>,
    pub consistent: Option<bool>,
    pub shares: Option<bool>,
    pub expected_cell_size: Option<u64>,
}

/// An exact table's section (`protection = "suppression"`): no noise, no budget.
pub struct ExactTableSection {
    pub name: String,
    pub input: String,
    pub statistic: String,
    pub by: Vec<String>,
    pub column: Option<String>,
    pub total_label: Option<String>,
    pub margins: Option<bool>,
    pub primary: Option<PrimarySection>,
    pub interval_percent: Option<f64>,
    pub secondary: Option<String>,
    pub groups: Option<Vec<GroupSection>>,
}

/// A field that does not apply to a table's kind, and why: `(field, message)`.
pub type Refused = (&'static str, String);

const NOT_EXACT: &str = "does not apply to an exact table (`protection = \"suppression\"`): it draws no noise and spends no budget; its cells are counted exactly and protected by suppression";
const ONLY_EXACT_GROUPS: &str = "does not apply here: only exact tables (`protection = \"suppression\"`) publish subtotals of groups of categories; a DP table's subtotals are tables of their own (`by` fewer dimensions)";
const ONLY_EXACT_RULES: &str = "does not apply here: only exact tables (`protection = \"suppression\"`) have suppression rules; a DP table's cells are suppressed on noisy values (`suppress_below`)";

impl TableSection {
    /// The section as its kind (`protection = "suppression"`: exact; `dp`, none or anything else:
    /// differentially private), with every field given that the kind does not have, and an
    /// unknown `protection`, refused. Its title, unit, number and shares are the presentation's,
    /// read before.
    // Over 80 lines on purpose: it names every field of the section, taken apart without `..`,
    // then refused or moved into its kind, so that a field added to the section without a
    // decision on which kind has it does not compile.
    pub fn into_kind(self) -> (TableKind, Vec<Refused>) {
        let TableSection {
            name,
            input,
            statistic,
            by,
            column,
            clamp,
            max_cells_per_unit,
            max_rows_per_unit,
            max_rows_per_cell,
            cost,
            weight,
            contributors_cost,
            mechanism,
            suppress_below,
            confidence,
            consistent,
            title: _,
            unit: _,
            number: _,
            shares,
            expected_cell_size,
            protection,
            margins,
            primary,
            interval_percent,
            secondary,
            total_label,
            groups,
        } = self;
        let refuse = |given: &[(&'static str, bool)], why: &str| -> Vec<Refused> {
            given
                .iter()
                .filter(|(_, present)| *present)
                .map(|(field, _)| (*field, why.to_string()))
                .collect()
        };
        if protection.as_deref() == Some("suppression") {
            let refused = refuse(
                &[
                    ("cost", cost.is_some()),
                    ("weight", weight.is_some()),
                    ("contributors_cost", contributors_cost.is_some()),
                    ("mechanism", mechanism.is_some()),
                    ("suppress_below", suppress_below.is_some()),
                    ("confidence", confidence.is_some()),
                    ("consistent", consistent.is_some()),
                    ("expected_cell_size", expected_cell_size.is_some()),
                    ("shares", shares.is_some()),
                    ("max_cells_per_unit", max_cells_per_unit.is_some()),
                    ("max_rows_per_unit", max_rows_per_unit.is_some()),
                    ("max_rows_per_cell", max_rows_per_cell.is_some()),
                    ("clamp", clamp.is_some()),
                ],
                NOT_EXACT,
            );
            let section = ExactTableSection {
                name,
                input,
                statistic,
                by,
                column,
                total_label,
                margins,
                primary,
                interval_percent,
                secondary,
                groups,
            };
            return (TableKind::Exact(section), refused);
        }
        let mut refused = Vec::new();
        if let Some(p) = protection.as_deref().filter(|p| *p != "dp") {
            refused.push((
                "protection",
                format!(
                    "`{p}`: use `dp` (differential privacy, the default) or `suppression` (exact values, cell suppression){}",
                    super::names::did_you_mean(p, ["dp", "suppression"])
                ),
            ));
        }
        refused.extend(refuse(&[("groups", groups.is_some())], ONLY_EXACT_GROUPS));
        refused.extend(refuse(
            &[
                ("margins", margins.is_some()),
                ("primary", primary.is_some()),
                ("interval_percent", interval_percent.is_some()),
                ("secondary", secondary.is_some()),
            ],
            ONLY_EXACT_RULES,
        ));
        let section = DpTableSection {
            name,
            input,
            statistic,
            by,
            column,
            total_label,
            clamp,
            max_cells_per_unit,
            max_rows_per_unit,
            max_rows_per_cell,
            cost,
            weight,
            contributors_cost,
            mechanism,
            suppress_below,
            confidence,
            consistent,
            shares,
            expected_cell_size,
        };
        (TableKind::Dp(section), refused)
    }
}

/// `{ dimension = "region", name = "capital", categories = ["seoul", "incheon"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSection {
    pub dimension: String,
    pub name: String,
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimarySection {
    /// A cell counted from fewer privacy units than this (and more than none) is hidden.
    pub min_frequency: Option<i64>,
    /// Whether a zero cell is hidden too (default `false`).
    pub zeros: Option<bool>,
    /// Whether a zero cell may be hidden as a secondary cell (default `false`): then a hidden
    /// count may be 0, and an attacker cannot count on each being at least 1.
    pub zeros_as_secondary: Option<bool>,
    /// Sums: the (n,k)-dominance rule, `{ n = 1, k = 80 }`.
    pub dominance: Option<DominanceSection>,
    /// Sums: the p% rule.
    pub p_percent: Option<i64>,
}

/// `dominance = { n = 1, k = 80 }`: a cell whose `n` largest units make more than `k` percent
/// of it is hidden.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DominanceSection {
    pub n: Option<i64>,
    pub k: Option<i64>,
}

impl PolicyFile {
    /// Parses policy text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<PolicyFile, PolicyError> {
        toml::from_str(text).map_err(|e| {
            let message = e.to_string().trim_end().to_string();
            let suggestion = suggest_field(&message);
            PolicyError::Syntax {
                path: path.to_path_buf(),
                message: message + &suggestion,
            }
        })
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`"): the
/// expected field nearest to `x`, as `; did you mean ...?`.
fn suggest_field(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return String::new();
    };
    let Some((given, expected)) = rest.split_once('`') else {
        return String::new();
    };
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    super::names::did_you_mean(given, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_an_error_naming_it() {
        let text = r#"
            [release]
            id = "x"
            [dataset]
            name = "d"
            privacy_unit = "id"
            budget = { rho = 1.0 }
            [[table]]
            name = "t"
            input = "i"
            statistic = "count_rows"
            max_rows_per_unti = 4
        "#;
        let err = PolicyFile::parse(text, Path::new("p.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("max_rows_per_unti"), "{msg}");
        assert!(msg.contains("p.toml"), "{msg}");
        assert!(
            msg.ends_with("; did you mean `max_rows_per_unit`?"),
            "{msg}"
        );
    }

    #[test]
    fn minimal_policy_parses() {
        let text = r#"
            [release]
            id = "x"
            [dataset]
            name = "d"
            privacy_unit = "id"
        "#;
        let p = PolicyFile::parse(text, Path::new("p.toml")).unwrap();
        assert_eq!(p.release.id, "x");
        assert!(p.tables.is_empty());
    }
}
