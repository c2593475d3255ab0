//! The validated release plan: what every command works from.
//!
//! Owns policy validation (every field of [`PolicyFile`] is destructured, so a new field cannot
//! skip it), the resolution of defaults, shares and input paths, and the sensitivity that the
//! contribution bounds imply. It never reads data values: `plan` must be able to run on a policy
//! alone.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::hash::sha256_hex;
use crate::ledger::{Accounting, Budget};
use crate::policy::{CostSection, PolicyError, PolicyFile, TableSection};

/// Largest number of cells one table may declare (its categories' product). Keeps a typo in a
/// category list from allocating gigabytes.
pub const MAX_CELLS_PER_TABLE: u64 = 50_000_000;

/// Largest change one unit may make to a cell of a sum (`max_rows_per_unit * max(|lo|, |hi|)`):
/// 2^53, so that the sensitivity opendp calibrates to is an exact float.
pub const MAX_UNIT_CONTRIBUTION: u128 = 1 << 53;

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
    pub inputs: Vec<InputSpec>,
    pub dimensions: Vec<Dimension>,
    pub tables: Vec<TableSpec>,
}

#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    /// The path as the policy wrote it.
    pub declared_path: PathBuf,
    /// The path resolved against the policy file's folder.
    pub path: PathBuf,
    pub kind: InputKind,
    /// The file's character encoding when it is not UTF-8 (decoded by `encoding_rs`).
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// Whether a quoted field may hold a line break.
    pub multiline: bool,
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
    pub suppress_below: i64,
    pub confidence: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    Declared,
    Weight { weight: f64, total_weight: f64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statistic {
    /// Distinct privacy units per cell; a unit is kept in at most `max_cells_per_unit` cells.
    CountUnits { max_cells_per_unit: u32 },
    /// Rows per cell; at most `max_rows_per_unit` rows per unit, `max_rows_per_cell` per cell.
    CountRows {
        max_rows_per_unit: u32,
        max_rows_per_cell: u32,
    },
    /// Sum of `column` clamped per row to `[lo, hi]`, with the same row bounds as `CountRows`.
    Sum {
        column: String,
        lo: i64,
        hi: i64,
        max_rows_per_unit: u32,
        max_rows_per_cell: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Discrete Laplace (geometric) noise, pure DP, calibrated to the L1 sensitivity.
    Laplace,
    /// Discrete Gaussian noise, zCDP, calibrated to the L2 sensitivity.
    Gaussian,
}

/// A privacy cost: epsilon under pure DP, or rho under zero-concentrated DP.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cost {
    Epsilon(f64),
    Rho(f64),
}

/// How far one privacy unit can move a table, in the two norms the mechanisms use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sensitivity {
    pub l1: f64,
    pub l2: f64,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::Laplace => "discrete laplace",
            Mechanism::Gaussian => "discrete gaussian",
        })
    }
}

impl Cost {
    /// `(measure, epsilon, rho)` as the manifest writes them: `pure_dp` or `zcdp`, and the
    /// amount under its own name.
    pub fn parts(self) -> (&'static str, Option<f64>, Option<f64>) {
        match self {
            Cost::Epsilon(e) => ("pure_dp", Some(e), None),
            Cost::Rho(r) => ("zcdp", None, Some(r)),
        }
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cost::Epsilon(e) => write!(f, "epsilon={}", short_number(*e)),
            Cost::Rho(r) => write!(f, "rho={}", short_number(*r)),
        }
    }
}

/// A number for people to read: at most six decimals, trailing zeros dropped. Files (manifest,
/// ledger) always carry the full value.
pub fn short_number(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A statistic's contribution bounds: cells per unit, or rows per unit and per cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Cells(u32),
    Rows { per_unit: u32, per_cell: u32 },
}

impl Statistic {
    pub fn bound(&self) -> Bound {
        match *self {
            Statistic::CountUnits { max_cells_per_unit } => Bound::Cells(max_cells_per_unit),
            Statistic::CountRows {
                max_rows_per_unit,
                max_rows_per_cell,
            }
            | Statistic::Sum {
                max_rows_per_unit,
                max_rows_per_cell,
                ..
            } => Bound::Rows {
                per_unit: max_rows_per_unit,
                per_cell: max_rows_per_cell,
            },
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Statistic::CountUnits { .. } => "count_units",
            Statistic::CountRows { .. } => "count_rows",
            Statistic::Sum { .. } => "sum",
        }
    }

    /// The sensitivity the bounds imply (DESIGN.md, "Neighbours and sensitivity"). Every float is
    /// rounded up, so the noise is never calibrated to less than the true sensitivity.
    pub fn sensitivity(&self) -> Sensitivity {
        match *self {
            Statistic::CountUnits { max_cells_per_unit } => {
                let c = u128::from(max_cells_per_unit);
                Sensitivity {
                    l1: f64_upper(c),
                    l2: sqrt_upper(c),
                }
            }
            Statistic::CountRows {
                max_rows_per_unit,
                max_rows_per_cell,
            } => Sensitivity {
                l1: f64_upper(u128::from(max_rows_per_unit)),
                l2: sqrt_upper(row_l2_squared(max_rows_per_unit, max_rows_per_cell)),
            },
            Statistic::Sum {
                lo,
                hi,
                max_rows_per_unit,
                max_rows_per_cell,
                ..
            } => {
                let b = u128::from(lo.unsigned_abs().max(hi.unsigned_abs()));
                Sensitivity {
                    l1: f64_upper(b * u128::from(max_rows_per_unit)),
                    l2: sqrt_upper(b * b * row_l2_squared(max_rows_per_unit, max_rows_per_cell)),
                }
            }
        }
    }

    /// Whether a published value of this statistic can never be negative, so that negative noisy
    /// values may be clamped to zero.
    pub fn is_non_negative(&self) -> bool {
        match self {
            Statistic::CountUnits { .. } | Statistic::CountRows { .. } => true,
            Statistic::Sum { lo, .. } => *lo >= 0,
        }
    }
}

/// `floor(k/m) * m^2 + (k mod m)^2`: the squared L2 distance of `k` rows spread at most `m` per
/// cell, the most concentrated (worst) way.
fn row_l2_squared(k: u32, m: u32) -> u128 {
    let (k, m) = (u128::from(k), u128::from(m));
    (k / m) * m * m + (k % m) * (k % m)
}

/// The smallest `f64` that is at least `n`.
fn f64_upper(n: u128) -> f64 {
    let f = n as f64;
    if f.is_finite() && (f as u128) < n {
        f.next_up()
    } else {
        f
    }
}

/// An `f64` that is at least `sqrt(n)`: exact when `n` is a perfect square, otherwise one ulp
/// above the correctly rounded root of an upper bound of `n`.
fn sqrt_upper(n: u128) -> f64 {
    let s = f64_upper(n).sqrt();
    if s.fract() == 0.0 && (s as u128).checked_mul(s as u128) == Some(n) {
        s
    } else {
        s.next_up()
    }
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
            inputs,
            dimensions,
            tables,
        } = self;
        let inputs: Vec<_> = inputs
            .iter()
            .map(|i| {
                let (count_column, add_duplicates) = match &i.kind {
                    InputKind::Microdata => (None, false),
                    InputKind::Aggregated {
                        count_column,
                        add_duplicates,
                    } => (Some(count_column), *add_duplicates),
                };
                json!({
                    "name": i.name,
                    "count_column": count_column,
                    "add_duplicates": add_duplicates,
                    "encoding": i.encoding.map(|e| e.name()),
                    "multiline": i.multiline,
                })
            })
            .collect();
        let dimensions: Vec<_> = dimensions
            .iter()
            .map(
                |d| json!({ "name": d.name, "categories": d.categories, "catch_all": d.catch_all }),
            )
            .collect();
        let tables: Vec<_> = tables
            .iter()
            .map(|t| {
                let (column, clamp) = match &t.statistic {
                    Statistic::Sum { column, lo, hi, .. } => (Some(column), Some([lo, hi])),
                    _ => (None, None),
                };
                let (cells, rows, per_cell) = match t.statistic.bound() {
                    Bound::Cells(c) => (Some(c), None, None),
                    Bound::Rows { per_unit, per_cell } => (None, Some(per_unit), Some(per_cell)),
                };
                json!({
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
                })
            })
            .collect();
        json!({
            "identity_format": 1,
            "release_id": release_id,
            "title": title,
            "dataset": dataset,
            "privacy_unit": privacy_unit,
            "budget": budget,
            "inputs": inputs,
            "dimensions": dimensions,
            "tables": tables,
        })
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

/// Reads, parses and validates the policy at `path`.
pub fn load(path: &Path) -> Result<Plan, PolicyError> {
    let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| PolicyError::Syntax {
        path: path.to_path_buf(),
        message: "the file is not UTF-8 text".to_string(),
    })?;
    let file = PolicyFile::parse(&text, path)?;
    let mut plan = validate(file, path)?;
    plan.policy_sha256 = sha256_hex(text.as_bytes());
    plan.plan_sha256 = sha256_hex(plan.identity().to_string().as_bytes());
    Ok(plan)
}

/// Characters allowed in names that become file or folder names.
fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

const SAFE_NAME_RULE: &str =
    "use 1-100 ASCII letters, digits, `-`, `_` or `.`, not starting with `.`";

/// Checks every field of `file` and builds the [`Plan`]; collects all problems before failing.
pub fn validate(file: PolicyFile, path: &Path) -> Result<Plan, PolicyError> {
    let PolicyFile {
        release,
        dataset,
        inputs,
        categories,
        catch_all,
        defaults,
        tables,
    } = file;
    let mut problems: Vec<String> = Vec::new();
    let mut problem = |at: &str, msg: String| problems.push(format!("{at}: {msg}"));

    // [release]
    let crate::policy::ReleaseSection {
        id: release_id,
        title,
        cost: release_cost,
    } = release;
    if !is_safe_name(&release_id) {
        problem(
            "[release] field `id`",
            format!("`{release_id}` cannot name a release folder; {SAFE_NAME_RULE}"),
        );
    }
    let release_cost = release_cost.and_then(|c| match cost_from_section(&c) {
        Ok(c) => Some(c),
        Err(msg) => {
            problem("[release] field `cost`", msg);
            None
        }
    });

    // [dataset]
    let crate::policy::DatasetSection {
        name: dataset,
        privacy_unit,
        budget,
        ledger,
        releases,
    } = dataset;
    let privacy_unit = nfc(privacy_unit);
    let accounting = match budget.map(|b| b.accounting()) {
        Some(Ok(a)) => Some(a),
        Some(Err(msg)) => {
            problem("[dataset] field `budget`", msg);
            None
        }
        None => {
            problem(
                "[dataset] field `budget`",
                "every dataset needs a total privacy budget, e.g. `budget = { rho = 1.0 }`"
                    .to_string(),
            );
            None
        }
    };
    if !is_safe_name(&dataset) {
        problem(
            "[dataset] field `name`",
            format!("`{dataset}` is not a usable dataset name; {SAFE_NAME_RULE}"),
        );
    }
    if privacy_unit.trim().is_empty() {
        problem(
            "[dataset] field `privacy_unit`",
            "must name the column that identifies a person (or other privacy unit)".to_string(),
        );
    }

    // [inputs.*]
    let base = path.parent().unwrap_or(Path::new(""));
    let mut input_specs = Vec::new();
    if inputs.is_empty() {
        problem("[inputs]", "at least one input is needed".to_string());
    }
    for (name, section) in inputs {
        let crate::policy::InputSection {
            path: declared_path,
            aggregated,
            count_column,
            encoding,
            multiline,
            duplicates,
        } = section;
        let at = format!("[inputs.{name}]");
        if declared_path.as_os_str().is_empty() {
            problem(
                &format!("{at} field `path`"),
                "must not be empty".to_string(),
            );
        }
        let add_duplicates = match duplicates.as_deref() {
            None | Some("error") => false,
            Some("add") => true,
            Some(other) => {
                problem(
                    &format!("{at} field `duplicates`"),
                    format!(
                        "unknown value `{other}`; use `error` (two rows for one cell are refused) or `add` (their counts are added up){}",
                        did_you_mean(other, ["error", "add"])
                    ),
                );
                false
            }
        };
        if duplicates.is_some() && !aggregated {
            problem(
                &format!("{at} field `duplicates`"),
                "only applies to an aggregated input (`aggregated = true`)".to_string(),
            );
        }
        let kind = match (aggregated, count_column.map(nfc)) {
            (true, Some(c)) if !c.trim().is_empty() => InputKind::Aggregated {
                count_column: c,
                add_duplicates,
            },
            (true, _) => {
                problem(
                    &format!("{at} field `count_column`"),
                    "an aggregated input must name the column holding each cell's count"
                        .to_string(),
                );
                InputKind::Aggregated {
                    count_column: String::new(),
                    add_duplicates,
                }
            }
            (false, Some(c)) => {
                problem(
                    &format!("{at} field `count_column`"),
                    format!("`{c}` is only meaningful with `aggregated = true`"),
                );
                InputKind::Microdata
            }
            (false, None) => InputKind::Microdata,
        };
        let encoding = match encoding.as_deref().map(parse_encoding) {
            None => None,
            Some(Ok(e)) => e,
            Some(Err(msg)) => {
                problem(&format!("{at} field `encoding`"), msg);
                None
            }
        };
        input_specs.push(InputSpec {
            name,
            path: base.join(&declared_path),
            declared_path,
            kind,
            encoding,
            multiline,
        });
    }

    // [categories] and [catch_all]
    let mut dimensions = Vec::new();
    for (name, cats) in categories {
        let (name, cats): (String, Vec<String>) = (nfc(name), cats.into_iter().map(nfc).collect());
        let at = format!("[categories] field `{name}`");
        if cats.is_empty() {
            problem(&at, "declares no categories".to_string());
        }
        let mut seen = HashSet::new();
        for c in &cats {
            if c.trim().is_empty() {
                problem(&at, "an empty category is not allowed".to_string());
            } else if c.trim() != c {
                problem(&at, format!("category `{c}` has surrounding spaces"));
            } else if !seen.insert(c.as_str()) {
                problem(&at, format!("category `{c}` is declared twice"));
            }
        }
        dimensions.push(Dimension {
            name,
            categories: cats,
            catch_all: None,
        });
    }
    for (column, target) in catch_all {
        let (column, target) = (nfc(column), nfc(target));
        let at = format!("[catch_all] field `{column}`");
        match dimensions.iter_mut().find(|d| d.name == column) {
            None => problem(
                &at,
                format!("`{column}` has no declared categories in [categories]"),
            ),
            Some(d) => match d.categories.iter().position(|c| *c == target) {
                Some(i) => d.catch_all = Some(i as u32),
                None => problem(
                    &at,
                    format!("`{target}` is not one of the declared categories of `{column}`"),
                ),
            },
        }
    }

    // [defaults]
    let crate::policy::DefaultsSection {
        mechanism: default_mechanism,
        suppress_below: default_suppress,
        confidence: default_confidence,
    } = defaults;
    let default_mechanism = default_mechanism.and_then(|m| match parse_mechanism(&m) {
        Ok(m) => Some(m),
        Err(msg) => {
            problem("[defaults] field `mechanism`", msg);
            None
        }
    });
    if let Some(s) = default_suppress
        && s < 0
    {
        problem(
            "[defaults] field `suppress_below`",
            format!("must be 0 or more, got `{s}`"),
        );
    }
    if let Some(c) = default_confidence
        && !(c > 0.0 && c < 1.0)
    {
        problem(
            "[defaults] field `confidence`",
            format!("must be strictly between 0 and 1, got `{c}`"),
        );
    }

    // [[table]]
    if tables.is_empty() {
        problem("[[table]]", "the policy declares no tables".to_string());
    }
    let used_inputs: HashSet<String> = tables.iter().map(|t| t.input.clone()).collect();
    let total_weight: f64 = tables
        .iter()
        .filter_map(|t| t.weight)
        .filter(|w| *w > 0.0)
        .sum();
    let mut names = BTreeSet::new();
    let mut table_specs = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let label = if table.name.is_empty() {
            format!("[[table]] #{}", i + 1)
        } else {
            format!("table `{}`", table.name)
        };
        let mut tp = |field: &str, msg: String| {
            let at = if field.is_empty() {
                label.clone()
            } else {
                format!("{label}, field `{field}`")
            };
            problem(&at, msg)
        };
        if let Some(spec) = validate_table(
            table,
            &mut tp,
            &mut names,
            &input_specs,
            &dimensions,
            &privacy_unit,
            release_cost,
            total_weight,
            (default_mechanism, default_suppress, default_confidence),
        ) {
            table_specs.push(spec);
        }
    }
    for input in &input_specs {
        if !used_inputs.contains(&input.name) {
            problem(
                &format!("[inputs.{}]", input.name),
                "no table reads this input; remove it or add a table".to_string(),
            );
        }
    }
    if let Some(Accounting::Pure { .. }) = accounting {
        for t in &table_specs {
            if let Cost::Rho(_) = t.cost {
                problem(
                    &format!("table `{}`, field `cost`", t.name),
                    "the dataset's budget is pure DP (epsilon): every table's cost must be in epsilon".to_string(),
                );
            }
        }
    }
    if release_cost.is_some()
        && table_specs
            .iter()
            .all(|t| t.cost_source == CostSource::Declared)
    {
        problem(
            "[release] field `cost`",
            "no table gives a `weight`, so the release cost would be unused".to_string(),
        );
    }

    if !problems.is_empty() {
        return Err(PolicyError::Invalid {
            path: path.to_path_buf(),
            problems,
        });
    }
    let (Some(budget), Some(accounting)) = (budget, accounting) else {
        unreachable!("a missing or invalid budget is a problem reported above");
    };
    let ledger = base
        .join(ledger.unwrap_or_else(|| PathBuf::from("ledger").join(format!("{dataset}.jsonl"))));
    Ok(Plan {
        policy_path: path.to_path_buf(),
        policy_sha256: String::new(),
        plan_sha256: String::new(),
        release_id,
        title,
        dataset,
        privacy_unit,
        budget,
        accounting,
        ledger,
        releases: base.join(releases.unwrap_or_else(|| PathBuf::from("releases"))),
        inputs: input_specs,
        dimensions,
        tables: table_specs,
    })
}

fn parse_mechanism(m: &str) -> Result<Mechanism, String> {
    match m {
        "laplace" => Ok(Mechanism::Laplace),
        "gaussian" => Ok(Mechanism::Gaussian),
        other => Err(format!(
            "unknown mechanism `{other}`; use `laplace` (discrete Laplace, pure DP) or `gaussian` (discrete Gaussian, zCDP){}",
            did_you_mean(other, ["laplace", "gaussian"])
        )),
    }
}

/// A name or category in Unicode normalisation form C, so that text typed on a Mac (decomposed
/// Hangul) and text from elsewhere compare equal.
pub fn nfc(s: String) -> String {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        s
    } else {
        s.nfc().collect()
    }
}

/// `; did you mean `x`?` for the candidate nearest to `given`, when one is near enough to be a
/// likely typo (the same but for case, or at least 70% alike by Damerau-Levenshtein distance);
/// empty otherwise.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let given_lower = given.to_lowercase();
    let best = candidates
        .into_iter()
        .filter(|&c| c != given)
        .map(|c| {
            let lower = c.to_lowercase();
            let alike = if lower == given_lower {
                2.0 // same but for case: the best possible match
            } else {
                strsim::normalized_damerau_levenshtein(&given_lower, &lower)
            };
            (c, alike)
        })
        .filter(|&(_, alike)| alike >= 0.7)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    best.map_or_else(String::new, |(c, _)| format!("; did you mean `{c}`?"))
}

/// Encodings are named as the WHATWG Encoding Standard labels them (`euc-kr`, `windows-1252`,
/// `shift_jis`, ...), plus `cp949`/`ms949`/`uhc` for Korean Windows (a superset that encoding_rs
/// decodes as `EUC-KR`). `None` is UTF-8, the default.
fn parse_encoding(label: &str) -> Result<Option<&'static encoding_rs::Encoding>, String> {
    let lower = label.trim().to_ascii_lowercase();
    let label = match lower.as_str() {
        "cp949" | "ms949" | "uhc" | "x-windows-949" => "windows-949",
        other => other,
    };
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        Some(e) if e == encoding_rs::UTF_8 => Ok(None),
        Some(e) => Ok(Some(e)),
        None => Err(format!(
            "unknown encoding `{label}`; use a WHATWG label such as `utf-8`, `cp949` (Korean Excel), `euc-kr`, `windows-1252` or `shift_jis`"
        )),
    }
}

fn cost_from_section(c: &CostSection) -> Result<Cost, String> {
    let CostSection { epsilon, rho } = *c;
    let check = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(format!(
                "`{name}` must be a positive finite number, got `{v}`"
            ))
        }
    };
    match (epsilon, rho) {
        (Some(e), None) => check("epsilon", e).map(Cost::Epsilon),
        (None, Some(r)) => check("rho", r).map(Cost::Rho),
        (Some(_), Some(_)) => {
            Err("give either `epsilon` (pure DP) or `rho` (zCDP), not both".into())
        }
        (None, None) => Err("give `epsilon` (pure DP) or `rho` (zCDP)".into()),
    }
}

#[allow(clippy::too_many_arguments)]
fn validate_table(
    table: TableSection,
    problem: &mut dyn FnMut(&str, String),
    names: &mut BTreeSet<String>,
    inputs: &[InputSpec],
    dimensions: &[Dimension],
    privacy_unit: &str,
    release_cost: Option<Cost>,
    total_weight: f64,
    (default_mechanism, default_suppress, default_confidence): (
        Option<Mechanism>,
        Option<i64>,
        Option<f64>,
    ),
) -> Option<TableSpec> {
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
        mechanism,
        suppress_below,
        confidence,
    } = table;
    let by: Vec<String> = by.into_iter().map(nfc).collect();
    let column = column.map(nfc);
    let mut ok = true;
    let mut fail = |field: &str, msg: String| {
        ok = false;
        problem(field, msg);
    };

    if !is_safe_name(&name) {
        fail(
            "name",
            format!("`{name}` cannot name an output file; {SAFE_NAME_RULE}"),
        );
    } else if !names.insert(name.to_ascii_lowercase()) {
        fail("name", format!("the table name `{name}` is used twice"));
    }

    let input_index = inputs.iter().position(|i| i.name == input);
    let input_kind = match input_index {
        Some(i) => Some(&inputs[i].kind),
        None => {
            let known: Vec<_> = inputs.iter().map(|i| format!("`{}`", i.name)).collect();
            fail(
                "input",
                format!(
                    "unknown input `{input}`; the policy declares {}{}",
                    known.join(", "),
                    did_you_mean(&input, inputs.iter().map(|i| i.name.as_str()))
                ),
            );
            None
        }
    };
    let aggregated = matches!(input_kind, Some(InputKind::Aggregated { .. }));

    let mut dims = Vec::new();
    let mut seen_by = HashSet::new();
    let mut cells: u64 = 1;
    for b in &by {
        if !seen_by.insert(b.as_str()) {
            fail("by", format!("column `{b}` is listed twice"));
            continue;
        }
        if b == privacy_unit {
            fail(
                "by",
                format!("`{b}` is the privacy unit; publishing it per unit is never safe"),
            );
            continue;
        }
        if let Some(InputKind::Aggregated { count_column, .. }) = input_kind
            && b == count_column
        {
            fail("by", format!("`{b}` is the input's count column"));
            continue;
        }
        match dimensions.iter().position(|d| d.name == *b) {
            Some(d) => {
                dims.push(d);
                cells = cells.saturating_mul(dimensions[d].categories.len() as u64);
            }
            None => fail(
                "by",
                format!(
                    "column `{b}` has no declared categories; add `{b} = [...]` under [categories] (DP tables publish every declared cell, so the categories must be public){}",
                    did_you_mean(b, dimensions.iter().map(|d| d.name.as_str()))
                ),
            ),
        }
    }
    if cells > MAX_CELLS_PER_TABLE {
        fail(
            "by",
            format!(
                "the table would have {cells} cells, more than the limit of {MAX_CELLS_PER_TABLE}"
            ),
        );
    }

    let positive = |field: &str, v: Option<u32>, fail: &mut dyn FnMut(&str, String)| match v {
        Some(0) => {
            fail(field, "must be at least 1".to_string());
            None
        }
        Some(v) if v > crate::bounding::MAX_SLOTS => {
            fail(
                field,
                format!(
                    "`{v}` is above the limit of {}: every unit reserves that many slots in memory",
                    crate::bounding::MAX_SLOTS
                ),
            );
            None
        }
        Some(v) => Some(v),
        None => {
            fail(field, format!("`{field}` is required for this statistic"));
            None
        }
    };
    let forbid = |field: &str, present: bool, why: &str, fail: &mut dyn FnMut(&str, String)| {
        if present {
            fail(field, format!("does not apply here: {why}"));
        }
    };
    let row_bounds = |fail: &mut dyn FnMut(&str, String)| -> Option<(u32, u32)> {
        let k = positive("max_rows_per_unit", max_rows_per_unit, fail)?;
        let m = match max_rows_per_cell {
            None => k,
            Some(0) => {
                fail("max_rows_per_cell", "must be at least 1".to_string());
                return None;
            }
            Some(m) if m > k => {
                fail(
                    "max_rows_per_cell",
                    format!("`{m}` is more than max_rows_per_unit `{k}`"),
                );
                return None;
            }
            Some(m) => m,
        };
        Some((k, m))
    };

    let stat = match statistic.as_str() {
        "count_units" => {
            forbid(
                "column",
                column.is_some(),
                "count_units counts units, not a column",
                &mut fail,
            );
            forbid("clamp", clamp.is_some(), "only sums are clamped", &mut fail);
            forbid(
                "max_rows_per_unit",
                max_rows_per_unit.is_some(),
                "count_units bounds cells per unit; use max_cells_per_unit",
                &mut fail,
            );
            forbid(
                "max_rows_per_cell",
                max_rows_per_cell.is_some(),
                "count_units counts each unit once per cell",
                &mut fail,
            );
            positive("max_cells_per_unit", max_cells_per_unit, &mut fail).map(|c| {
                Statistic::CountUnits {
                    max_cells_per_unit: c,
                }
            })
        }
        "count_rows" => {
            forbid(
                "column",
                column.is_some(),
                "count_rows counts rows, not a column",
                &mut fail,
            );
            forbid("clamp", clamp.is_some(), "only sums are clamped", &mut fail);
            forbid(
                "max_cells_per_unit",
                max_cells_per_unit.is_some(),
                "count_rows bounds rows; use max_rows_per_unit",
                &mut fail,
            );
            row_bounds(&mut fail).map(|(k, m)| Statistic::CountRows {
                max_rows_per_unit: k,
                max_rows_per_cell: m,
            })
        }
        "sum" => {
            forbid(
                "max_cells_per_unit",
                max_cells_per_unit.is_some(),
                "sum bounds rows; use max_rows_per_unit",
                &mut fail,
            );
            if aggregated {
                fail(
                    "statistic",
                    "`sum` needs microdata: per-row clamping cannot be applied to an aggregated input".to_string(),
                );
            }
            let column = match column {
                Some(c) if !c.trim().is_empty() => {
                    if c == privacy_unit || by.contains(&c) {
                        fail("column", format!("`{c}` cannot be both summed and a key"));
                    }
                    Some(c)
                }
                _ => {
                    fail("column", "`sum` needs the `column` to add up".to_string());
                    None
                }
            };
            let clamp = match clamp {
                Some([lo, hi]) if lo > hi => {
                    fail(
                        "clamp",
                        format!("lower bound `{lo}` is greater than upper bound `{hi}`"),
                    );
                    None
                }
                Some([0, 0]) => {
                    fail("clamp", "`[0, 0]` makes every sum zero".to_string());
                    None
                }
                Some(c) => Some(c),
                None => {
                    fail(
                        "clamp",
                        "`sum` needs `clamp = [lower, upper]` to bound each row".to_string(),
                    );
                    None
                }
            };
            let rows = row_bounds(&mut fail);
            if let (Some([lo, hi]), Some((k, _))) = (clamp, rows) {
                let worst = u128::from(lo.unsigned_abs().max(hi.unsigned_abs())) * u128::from(k);
                if worst > MAX_UNIT_CONTRIBUTION {
                    fail(
                        "clamp",
                        format!(
                            "one unit could move a cell by {worst} ({k} rows of up to {}), more than 2^53 = {MAX_UNIT_CONTRIBUTION}, the largest sensitivity a 64-bit float holds exactly; narrow the clamp or lower max_rows_per_unit",
                            lo.unsigned_abs().max(hi.unsigned_abs())
                        ),
                    );
                }
            }
            match (column, clamp, rows) {
                (Some(column), Some([lo, hi]), Some((k, m))) => Some(Statistic::Sum {
                    column,
                    lo,
                    hi,
                    max_rows_per_unit: k,
                    max_rows_per_cell: m,
                }),
                _ => None,
            }
        }
        other => {
            fail(
                "statistic",
                format!(
                    "unknown statistic `{other}`; use `count_units`, `count_rows` or `sum`{}",
                    did_you_mean(other, ["count_units", "count_rows", "sum"])
                ),
            );
            None
        }
    };

    let cost_and_source = match (cost, weight) {
        (Some(_), Some(_)) => {
            fail(
                "cost",
                "give either `cost` or `weight`, not both".to_string(),
            );
            None
        }
        (None, None) => {
            fail(
                "cost",
                "every table needs a privacy `cost` (or a `weight` share of [release] cost)"
                    .to_string(),
            );
            None
        }
        (Some(c), None) => match cost_from_section(&c) {
            Ok(c) => Some((c, CostSource::Declared)),
            Err(msg) => {
                fail("cost", msg);
                None
            }
        },
        (None, Some(w)) => {
            if !(w.is_finite() && w > 0.0) {
                fail(
                    "weight",
                    format!("must be a positive finite number, got `{w}`"),
                );
                None
            } else if let Some(total) = release_cost {
                let share = w / total_weight;
                let c = match total {
                    Cost::Epsilon(e) => Cost::Epsilon(e * share),
                    Cost::Rho(r) => Cost::Rho(r * share),
                };
                Some((
                    c,
                    CostSource::Weight {
                        weight: w,
                        total_weight,
                    },
                ))
            } else {
                fail(
                    "weight",
                    "a `weight` needs a total `cost` under [release]".to_string(),
                );
                None
            }
        }
    };

    let mechanism = match mechanism.as_deref().map(parse_mechanism) {
        Some(Ok(m)) => Some(m),
        Some(Err(msg)) => {
            fail("mechanism", msg);
            None
        }
        None => match cost_and_source {
            Some((Cost::Epsilon(_), _)) => Some(Mechanism::Laplace),
            _ => Some(default_mechanism.unwrap_or(Mechanism::Gaussian)),
        },
    };
    if let (Some(Mechanism::Gaussian), Some((Cost::Epsilon(_), _))) = (mechanism, cost_and_source) {
        fail(
            "mechanism",
            "the discrete Gaussian cannot satisfy pure DP (a cost in epsilon); use `laplace`, or give the cost in `rho`".to_string(),
        );
    }

    let suppress_below = suppress_below.or(default_suppress).unwrap_or(10);
    if suppress_below < 0 {
        fail(
            "suppress_below",
            format!("must be 0 or more, got `{suppress_below}`"),
        );
    }
    let confidence = confidence.or(default_confidence).unwrap_or(0.95);
    if !(confidence > 0.0 && confidence < 1.0) {
        fail(
            "confidence",
            format!("must be strictly between 0 and 1, got `{confidence}`"),
        );
    }

    match (ok, input_index, stat, cost_and_source, mechanism) {
        (true, Some(input), Some(statistic), Some((cost, cost_source)), Some(mechanism)) => {
            Some(TableSpec {
                name,
                input,
                statistic,
                dims,
                mechanism,
                cost,
                cost_source,
                suppress_below,
                confidence,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"
        [release]
        id = "r1"
        [dataset]
        name = "d"
        privacy_unit = "id"
        budget = { rho = 2.0 }
        [inputs.m]
        path = "m.csv"
        [categories]
        g = ["a", "b"]
        [[table]]
        name = "t"
        input = "m"
        statistic = "count_rows"
        by = ["g"]
        max_rows_per_unit = 4
        cost = { rho = 0.5 }
    "#;

    fn validate_str(text: &str) -> Result<Plan, String> {
        let file = PolicyFile::parse(text, Path::new("p.toml")).map_err(|e| e.to_string())?;
        validate(file, Path::new("dir/p.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn sample_validates_and_resolves_paths_from_the_policy_folder() {
        let plan = validate_str(SAMPLE).unwrap();
        assert_eq!(plan.inputs[0].path, Path::new("dir/m.csv"));
        assert_eq!(plan.tables[0].mechanism, Mechanism::Gaussian);
        assert_eq!(plan.tables[0].suppress_below, 10);
    }

    #[test]
    fn negative_cost_is_rejected_naming_table_and_field() {
        let err = validate_str(&SAMPLE.replace("rho = 0.5", "rho = -0.5")).unwrap_err();
        assert!(err.contains("table `t`, field `cost`"), "{err}");
        assert!(err.contains("-0.5"), "{err}");
    }

    #[test]
    fn zero_cost_is_rejected() {
        let err = validate_str(&SAMPLE.replace("rho = 0.5", "epsilon = 0.0")).unwrap_err();
        assert!(err.contains("field `cost`"), "{err}");
    }

    #[test]
    fn gaussian_with_epsilon_is_rejected() {
        let text = SAMPLE.replace("rho = 0.5 }", "epsilon = 1.0 }\nmechanism = \"gaussian\"");
        let err = validate_str(&text).unwrap_err();
        assert!(err.contains("cannot satisfy pure DP"), "{err}");
    }

    #[test]
    fn weights_share_the_release_cost() {
        let text = SAMPLE
            .replace("id = \"r1\"", "id = \"r1\"\ncost = { rho = 0.3 }")
            .replace("cost = { rho = 0.5 }", "weight = 2")
            + r#"
        [[table]]
        name = "u"
        input = "m"
        statistic = "count_units"
        max_cells_per_unit = 1
        weight = 1
        "#;
        let plan = validate_str(&text).unwrap();
        let Cost::Rho(a) = plan.tables[0].cost else {
            panic!()
        };
        let Cost::Rho(b) = plan.tables[1].cost else {
            panic!()
        };
        assert!(
            (a - 0.2).abs() < 1e-12 && (b - 0.1).abs() < 1e-12,
            "{a} {b}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = SAMPLE
            .replace("input = \"m\"", "input = \"nope\"")
            .replace("by = [\"g\"]", "by = [\"zz\"]");
        let err = validate_str(&text).unwrap_err();
        assert!(err.contains("unknown input `nope`"), "{err}");
        assert!(
            err.contains("column `zz` has no declared categories"),
            "{err}"
        );
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        let names = ["region", "age_group", "gender"];
        assert_eq!(did_you_mean("regoin", names), "; did you mean `region`?");
        assert_eq!(did_you_mean("Region", names), "; did you mean `region`?");
        assert_eq!(
            did_you_mean("agegroup", names),
            "; did you mean `age_group`?"
        );
        assert_eq!(did_you_mean("zebra", names), "");
        assert_eq!(did_you_mean("zebra", ["x"]), "");
        assert_eq!(did_you_mean("region", names), "");
    }

    #[test]
    fn sensitivities_follow_the_design_formulas() {
        let s = Statistic::CountUnits {
            max_cells_per_unit: 4,
        }
        .sensitivity();
        assert_eq!((s.l1, s.l2), (4.0, 2.0));
        let s = Statistic::CountRows {
            max_rows_per_unit: 5,
            max_rows_per_cell: 2,
        }
        .sensitivity();
        // floor(5/2)*4 + 1 = 9
        assert_eq!((s.l1, s.l2), (5.0, 3.0));
        let s = Statistic::Sum {
            column: "x".into(),
            lo: -3,
            hi: 200,
            max_rows_per_unit: 4,
            max_rows_per_cell: 4,
        }
        .sensitivity();
        assert_eq!((s.l1, s.l2), (800.0, 800.0));
        // sqrt(2) is irrational: the float must lie above it.
        let s = Statistic::CountUnits {
            max_cells_per_unit: 2,
        }
        .sensitivity();
        assert!(s.l2 > std::f64::consts::SQRT_2 && s.l2 - std::f64::consts::SQRT_2 < 1e-15);
        assert!(s.l2 * s.l2 >= 2.0);
    }
}
