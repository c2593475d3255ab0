//! Policy validation: [`PolicyFile`] (what the file says) becomes a [`Plan`] (what the commands
//! use), one small function per section.
//!
//! Every field is destructured, so a new field cannot skip validation, and every problem is
//! collected ([`Problems`]) before the policy is refused, so the officer sees them all at once.
//! Reads no data and spends nothing.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::exact;
use super::fields::{Defaults, Problems, cost_from_section, parse_mechanism};
use super::file::{
    DatasetSection, DefaultsSection, DpTableSection, ExactTableSection, InputSection, LabelSection,
    PolicyError, PolicyFile, PublicationSection, Refused, ReleaseSection, SqlSection, TableKind,
    TableSection,
};
use super::labels;
use super::names::{SAFE_NAME_RULE, did_you_mean, is_safe_name, nfc, parse_encoding};
use super::plan::ExactTableSpec;
use super::plan::{
    CostSource, Dimension, Engine, InputKind, InputSpec, Plan, Relation, SqlSource, TableSpec,
};
use super::presentation::{Presentation, TableLabels};
use super::table::{self, TableContext};
use crate::hash::sha256_hex;
use crate::privacy::{Accounting, Budget, Cost};

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
    plan.plan_sha256 = plan.identity_sha256(plan.title.as_deref());
    Ok(plan)
}

/// Checks every field of `file` and builds the [`Plan`]; collects all problems before failing.
/// Relative paths resolve from `path`'s folder.
// Over 80 lines on purpose: it reads as the policy file's sections in order, each validated by
// a function of its own, then the checks across sections, then the plan's fields.
pub fn validate(file: PolicyFile, path: &Path) -> Result<Plan, PolicyError> {
    let PolicyFile {
        release,
        dataset,
        inputs,
        categories,
        catch_all,
        defaults,
        publication,
        labels,
        tables,
    } = file;
    let mut problems = Problems::default();
    let base = path.parent().unwrap_or(Path::new(""));
    let release = release_section(release, &mut problems);
    let dataset = dataset_section(dataset, base, &mut problems);
    let inputs = input_sections(inputs, base, &mut problems);
    let dimensions = category_sections(categories, catch_all, &mut problems);
    let defaults = defaults_section(defaults, &mut problems);
    let presentation = presentation_with_tables(
        publication,
        labels,
        &tables,
        (&dimensions, &dataset.privacy_unit),
        &mut problems,
    );
    let used_inputs: HashSet<String> = tables.iter().map(|t| t.input.clone()).collect();
    if tables.is_empty() {
        problems.add("[[table]]", "the policy declares no tables".to_string());
    }
    let (dp_sections, exact_sections) = kinds(tables);
    let (exact_tables, exact_names) = exact_table_sections(
        exact_sections,
        &inputs,
        (&dimensions, &dataset.privacy_unit),
        &mut problems,
    );
    let context = TableContext {
        inputs: &inputs,
        dimensions: &dimensions,
        privacy_unit: &dataset.privacy_unit,
        release_cost: release.cost,
        defaults,
    };
    let tables = table::tables(dp_sections, &context, &mut problems);
    for t in tables
        .iter()
        .filter(|t| exact_names.contains(&t.name.to_ascii_lowercase()))
    {
        problems.add(
            &format!("table `{}`, field `name`", t.name),
            format!("the table name `{}` is used twice", t.name),
        );
    }
    check_across_sections(
        &inputs,
        &used_inputs,
        &tables,
        dataset.accounting,
        release.cost,
        &mut problems,
    );
    check_shown_labels(
        &presentation,
        &dimensions,
        &tables,
        &exact_tables,
        &mut problems,
    );
    if !problems.0.is_empty() {
        return Err(PolicyError::Invalid {
            path: path.to_path_buf(),
            problems: problems.0,
        });
    }
    let (Some(budget), Some(accounting)) = (dataset.budget, dataset.accounting) else {
        unreachable!("an invalid budget is a problem reported above");
    };
    Ok(Plan {
        policy_path: path.to_path_buf(),
        policy_sha256: String::new(),
        plan_sha256: String::new(),
        release_id: release.id,
        title: release.title,
        dataset: dataset.name,
        privacy_unit: dataset.privacy_unit,
        budget,
        accounting,
        ledger: dataset.ledger,
        releases: dataset.releases,
        signing_key: dataset.signing_key,
        inputs,
        dimensions,
        tables,
        exact_tables,
        presentation,
    })
}

/// The table sections as their kinds, each with the fields its kind refused: DP tables, and
/// exact tables (`protection = "suppression"`), which are validated on their own and spend
/// nothing.
type Kinds = (
    Vec<(DpTableSection, Vec<Refused>)>,
    Vec<(ExactTableSection, Vec<Refused>)>,
);

fn kinds(tables: Vec<TableSection>) -> Kinds {
    let (mut dp, mut exact) = (Vec::new(), Vec::new());
    for t in tables {
        match t.into_kind() {
            (TableKind::Dp(section), refused) => dp.push((section, refused)),
            (TableKind::Exact(section), refused) => exact.push((section, refused)),
        }
    }
    (dp, exact)
}

/// The publication's presentation: its sections, and each table's own labels (title, unit,
/// shares, number) as the tables declare them. Groups' subtotals may be labelled like
/// categories.
fn presentation_with_tables(
    publication: PublicationSection,
    labels: BTreeMap<String, LabelSection>,
    tables: &[TableSection],
    (dimensions, privacy_unit): (&[Dimension], &str),
    problems: &mut Problems,
) -> Presentation {
    let groups: std::collections::BTreeSet<(String, String)> = tables
        .iter()
        .flat_map(|t| t.groups.iter().flatten())
        .map(|g| {
            (
                super::names::nfc(g.dimension.clone()),
                super::names::nfc(g.name.clone()),
            )
        })
        .collect();
    let mut presentation = labels::presentation_sections(
        publication,
        labels,
        (dimensions, privacy_unit),
        &groups,
        problems,
    );
    for t in tables {
        if t.title.is_some() || t.unit.is_some() || t.shares == Some(true) || t.number.is_some() {
            if t.number.as_ref().is_some_and(|n| n.trim().is_empty()) {
                problems.add(
                    &format!("[[table]] `{}` field `number`", t.name),
                    "is empty: give the table's number (e.g. \"3-1\"), or leave the field out to number tables in order".to_string(),
                );
            }
            let labels = TableLabels {
                title: t.title.clone(),
                unit: t.unit.clone(),
                shares: t.shares == Some(true),
                number: t.number.clone(),
            };
            presentation.tables.insert(t.name.clone(), labels);
        }
    }
    presentation
}

/// The exact tables (`protection = "suppression"`), each validated, then together: one secondary
/// suppression protects them all and minimises one thing, their finest cells, units beside
/// rows and cycles of links. Also their names, lowercased, which no DP table may take.
fn exact_table_sections(
    sections: Vec<(ExactTableSection, Vec<Refused>)>,
    inputs: &[InputSpec],
    (dimensions, privacy_unit): (&[Dimension], &str),
    problems: &mut Problems,
) -> (Vec<ExactTableSpec>, std::collections::BTreeSet<String>) {
    let mut names = std::collections::BTreeSet::new();
    let exact_tables: Vec<ExactTableSpec> = sections
        .into_iter()
        .filter_map(|t| {
            exact::exact_table(t, inputs, dimensions, privacy_unit, &mut names, problems)
        })
        .collect();
    if let Some(first) = exact_tables.first() {
        for t in exact_tables
            .iter()
            .filter(|t| t.secondary != first.secondary)
        {
            problems.add(
                &format!("table `{}`, field `secondary`", t.name),
                format!(
                    "`{}`, but exact table `{}` says `{}`: a release's exact tables are protected together by one secondary suppression, which minimises one thing; give them the same `secondary`",
                    t.secondary.name(),
                    first.name,
                    first.secondary.name()
                ),
            );
        }
    }
    exact::check_finest_cells(&exact_tables, dimensions, problems);
    exact::check_units_beside_rows(&exact_tables, problems);
    exact::check_cycles(&exact_tables, problems);
    (exact_tables, names)
}

/// Every table's labels as the outputs show them: distinct within a table, and, for labelled
/// CSVs, usable as CSV values.
fn check_shown_labels(
    presentation: &Presentation,
    dimensions: &[Dimension],
    tables: &[TableSpec],
    exact_tables: &[ExactTableSpec],
    problems: &mut Problems,
) {
    let shown: Vec<labels::CsvTable> = tables
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                &t.dims[..],
                t.total_label.as_str(),
                Vec::new(),
            )
        })
        .chain(exact_tables.iter().map(|t| {
            let groups = t
                .groups
                .iter()
                .map(|g| g.iter().map(|g| g.name.as_str()).collect())
                .collect();
            (t.name.as_str(), &t.dims[..], t.total_label.as_str(), groups)
        }))
        .collect();
    labels::check_labels_distinct(presentation, dimensions, &shown, problems);
    if presentation.csv_labels {
        labels::check_csv_labels(presentation, dimensions, &shown, problems);
    }
}

struct Release {
    id: String,
    title: Option<String>,
    cost: Option<Cost>,
}

fn release_section(section: ReleaseSection, problems: &mut Problems) -> Release {
    let ReleaseSection { id, title, cost } = section;
    if !is_safe_name(&id) {
        problems.add(
            "[release] field `id`",
            format!("`{id}` cannot name a release folder; {SAFE_NAME_RULE}"),
        );
    }
    let cost = cost.and_then(|c| match cost_from_section(&c) {
        Ok(c) => Some(c),
        Err(msg) => {
            problems.add("[release] field `cost`", msg);
            None
        }
    });
    Release { id, title, cost }
}

struct Dataset {
    name: String,
    privacy_unit: String,
    budget: Option<Budget>,
    accounting: Option<Accounting>,
    ledger: PathBuf,
    releases: PathBuf,
    signing_key: Option<PathBuf>,
}

fn dataset_section(section: DatasetSection, base: &Path, problems: &mut Problems) -> Dataset {
    let DatasetSection {
        name,
        privacy_unit,
        budget,
        ledger,
        releases,
        signing_key,
    } = section;
    let privacy_unit = nfc(privacy_unit);
    let accounting = match budget.map(|b| b.accounting()) {
        Some(Ok(a)) => Some(a),
        Some(Err(msg)) => {
            problems.add("[dataset] field `budget`", msg);
            None
        }
        // Checked against the tables once they are read (see `check_budget_needed`).
        None => Some(Accounting::None),
    };
    let budget = match budget {
        Some(b) if b.is_none() => {
            problems.add(
                "[dataset] field `budget`",
                "give `{ epsilon = ... }` (pure DP), `{ rho = ... }` (zCDP) or `{ epsilon = ..., delta = ... }`; leave `budget` out for a dataset that publishes exact tables only".to_string(),
            );
            None
        }
        b => Some(b.unwrap_or(Budget::NONE)),
    };
    if !is_safe_name(&name) {
        problems.add(
            "[dataset] field `name`",
            format!("`{name}` is not a usable dataset name; {SAFE_NAME_RULE}"),
        );
    }
    if privacy_unit.trim().is_empty() {
        problems.add(
            "[dataset] field `privacy_unit`",
            "must name the column that identifies a person (or other privacy unit)".to_string(),
        );
    }
    let ledger =
        base.join(ledger.unwrap_or_else(|| PathBuf::from("ledger").join(format!("{name}.jsonl"))));
    let releases = base.join(releases.unwrap_or_else(|| PathBuf::from("releases")));
    // The environment names the key of the machine that releases; the policy's is the default.
    let signing_key = std::env::var_os("SAFESTAT_SIGNING_KEY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| signing_key.map(|k| base.join(k)));
    Dataset {
        name,
        privacy_unit,
        budget,
        accounting,
        ledger,
        releases,
        signing_key,
    }
}

fn input_sections(
    sections: BTreeMap<String, InputSection>,
    base: &Path,
    problems: &mut Problems,
) -> Vec<InputSpec> {
    if sections.is_empty() {
        problems.add("[inputs]", "at least one input is needed".to_string());
    }
    sections
        .into_iter()
        .map(|(name, section)| input_section(name, section, base, problems))
        .collect()
}

fn input_section(
    name: String,
    section: InputSection,
    base: &Path,
    problems: &mut Problems,
) -> InputSpec {
    let InputSection {
        path: declared_path,
        sql,
        spark,
        aggregated,
        count_column,
        encoding,
        multiline,
        duplicates,
    } = section;
    let at = |field: &str| format!("[inputs.{name}] field `{field}`");
    let sql = match (sql, spark) {
        (Some(s), None) => Some(sql_section(s, Engine::Postgres, &at("sql"), problems)),
        (None, Some(s)) => Some(sql_section(s, Engine::Spark, &at("spark"), problems)),
        (Some(s), Some(_)) => {
            problems.add(
                &format!("[inputs.{name}]"),
                "has both `sql` and `spark`; an input is read from one database".to_string(),
            );
            Some(sql_section(s, Engine::Postgres, &at("sql"), problems))
        }
        (None, None) => None,
    };
    let declared_path = source_path(&name, declared_path, sql.is_some(), problems);
    if sql.is_some() {
        if aggregated {
            problems.add(
                &at("aggregated"),
                "an SQL input holds records (microdata); a breakdown counted elsewhere is read from a CSV file".to_string(),
            );
        }
        if encoding.is_some() || multiline {
            problems.add(
                &at(if multiline { "multiline" } else { "encoding" }),
                "only applies to a CSV file; the database sends text in its own encoding"
                    .to_string(),
            );
        }
    }
    let kind = input_kind(aggregated, count_column, duplicates, &at, problems);
    let encoding = match encoding.as_deref().map(parse_encoding) {
        None => None,
        Some(Ok(e)) => e,
        Some(Err(msg)) => {
            problems.add(&at("encoding"), msg);
            None
        }
    };
    InputSpec {
        path: if sql.is_some() {
            PathBuf::new()
        } else {
            base.join(&declared_path)
        },
        name,
        kind,
        encoding,
        multiline,
        sql,
    }
}

/// An input's file: its `path`, which it must have unless it is read through `sql` (then none).
fn source_path(
    name: &str,
    declared_path: Option<PathBuf>,
    sql: bool,
    problems: &mut Problems,
) -> PathBuf {
    match (declared_path, sql) {
        (Some(p), false) => {
            if p.as_os_str().is_empty() {
                problems.add(
                    &format!("[inputs.{name}] field `path`"),
                    "must not be empty".to_string(),
                );
            }
            p
        }
        (None, true) => PathBuf::new(),
        (Some(_), true) => {
            problems.add(
                &format!("[inputs.{name}]"),
                "has both `path` and a database (`sql` or `spark`); an input is either a CSV file or a database relation"
                    .to_string(),
            );
            PathBuf::new()
        }
        (None, false) => {
            problems.add(
                &format!("[inputs.{name}]"),
                "needs `path` (a CSV file), `sql = { url_env = \"...\", table = \"...\" }` (a PostgreSQL table or query) or `spark = { ... }` (an Apache Spark one)".to_string(),
            );
            PathBuf::new()
        }
    }
}

/// What an input holds: records (microdata), or a breakdown counted elsewhere (`aggregated`,
/// each row's count in `count_column`, rows for one cell refused or added up as `duplicates`
/// says). `at` names a field of the input.
fn input_kind(
    aggregated: bool,
    count_column: Option<String>,
    duplicates: Option<String>,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> InputKind {
    let add_duplicates = match duplicates.as_deref() {
        None | Some("error") => false,
        Some("add") => true,
        Some(other) => {
            problems.add(
                &at("duplicates"),
                format!(
                    "unknown value `{other}`; use `error` (two rows for one cell are refused) or `add` (their counts are added up){}",
                    did_you_mean(other, ["error", "add"])
                ),
            );
            false
        }
    };
    if duplicates.is_some() && !aggregated {
        problems.add(
            &at("duplicates"),
            "only applies to an aggregated input (`aggregated = true`)".to_string(),
        );
    }
    match (aggregated, count_column.map(nfc)) {
        (true, Some(c)) if !c.trim().is_empty() => InputKind::Aggregated {
            count_column: c,
            add_duplicates,
        },
        (true, _) => {
            problems.add(
                &at("count_column"),
                "an aggregated input must name the column holding each cell's count".to_string(),
            );
            InputKind::Aggregated {
                count_column: String::new(),
                add_duplicates,
            }
        }
        (false, Some(c)) => {
            problems.add(
                &at("count_column"),
                format!("`{c}` is only meaningful with `aggregated = true`"),
            );
            InputKind::Microdata
        }
        (false, None) => InputKind::Microdata,
    }
}

/// Default time limit of one SQL statement.
const SQL_TIMEOUT_SECONDS: u64 = 3600;
/// The longest: PostgreSQL's `statement_timeout` is at most 2^31 - 1 milliseconds.
const MAX_SQL_TIMEOUT_SECONDS: u64 = 2_147_483;

/// `sql = { url_env, table | query, timeout_seconds }` (or `spark = { ... }`, `engine`'s).
fn sql_section(
    section: SqlSection,
    engine: Engine,
    at: &str,
    problems: &mut Problems,
) -> SqlSource {
    let SqlSection {
        url_env,
        table,
        query,
        timeout_seconds,
    } = section;
    let valid_env = !url_env.is_empty()
        && !url_env.starts_with(|c: char| c.is_ascii_digit())
        && url_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_env {
        problems.add(
            at,
            format!("`url_env` must name an environment variable (letters, digits, `_`), not `{url_env}`; the connection string itself never goes in the policy"),
        );
    }
    let relation = match (table, query) {
        (Some(t), None) => {
            let parts: Vec<String> = t.split('.').map(|p| p.trim().to_string()).collect();
            if parts.iter().any(String::is_empty) || parts.len() > 3 {
                problems.add(
                    at,
                    format!("`table` must be a table or view name, optionally schema-qualified (`schema.table`), not `{t}`"),
                );
            }
            Relation::Table(parts)
        }
        (None, Some(q)) => {
            let q = q
                .trim()
                .trim_end_matches([';', ' ', '\n', '\t'])
                .trim()
                .to_string();
            if q.is_empty() {
                problems.add(at, "`query` must not be empty".to_string());
            }
            Relation::Query(q)
        }
        (Some(_), Some(_)) => {
            problems.add(at, "give `table` or `query`, not both".to_string());
            Relation::Query(String::new())
        }
        (None, None) => {
            problems.add(
                at,
                "needs `table = \"...\"` or `query = \"SELECT ...\"`".to_string(),
            );
            Relation::Query(String::new())
        }
    };
    // PostgreSQL's statement_timeout is an int of milliseconds.
    if let Some(t) = timeout_seconds
        && !(1..=MAX_SQL_TIMEOUT_SECONDS).contains(&t)
    {
        problems.add(
            at,
            format!("`timeout_seconds` must be between 1 and {MAX_SQL_TIMEOUT_SECONDS} (24 days), not {t}"),
        );
    }
    SqlSource {
        engine,
        url_env,
        relation,
        timeout_seconds: timeout_seconds.unwrap_or(SQL_TIMEOUT_SECONDS),
    }
}

/// `[categories]` and `[catch_all]`: the public, declared categories of every dimension.
fn category_sections(
    categories: BTreeMap<String, Vec<String>>,
    catch_all: BTreeMap<String, String>,
    problems: &mut Problems,
) -> Vec<Dimension> {
    let mut dimensions: Vec<Dimension> = categories
        .into_iter()
        .map(|(name, cats)| dimension(nfc(name), cats.into_iter().map(nfc).collect(), problems))
        .collect();
    for (column, target) in catch_all {
        let (column, target) = (nfc(column), nfc(target));
        let at = format!("[catch_all] field `{column}`");
        match dimensions.iter_mut().find(|d| d.name == column) {
            None => problems.add(
                &at,
                format!("`{column}` has no declared categories in [categories]"),
            ),
            Some(d) => match d.categories.iter().position(|c| *c == target) {
                Some(i) => d.catch_all = Some(i as u32),
                None => problems.add(
                    &at,
                    format!("`{target}` is not one of the declared categories of `{column}`"),
                ),
            },
        }
    }
    dimensions
}

fn dimension(name: String, categories: Vec<String>, problems: &mut Problems) -> Dimension {
    let at = format!("[categories] field `{name}`");
    if categories.is_empty() {
        problems.add(&at, "declares no categories".to_string());
    }
    let mut seen = HashSet::new();
    for c in &categories {
        if c.trim().is_empty() {
            problems.add(&at, "an empty category is not allowed".to_string());
        } else if c.trim() != c {
            problems.add(&at, format!("category `{c}` has surrounding spaces"));
        } else if !seen.insert(c.as_str()) {
            problems.add(&at, format!("category `{c}` is declared twice"));
        }
    }
    Dimension {
        name,
        categories,
        catch_all: None,
    }
}

fn defaults_section(section: DefaultsSection, problems: &mut Problems) -> Defaults {
    let DefaultsSection {
        mechanism,
        suppress_below,
        confidence,
        consistent,
    } = section;
    let mechanism = mechanism.and_then(|m| match parse_mechanism(&m) {
        Ok(m) => Some(m),
        Err(msg) => {
            problems.add("[defaults] field `mechanism`", msg);
            None
        }
    });
    if let Some(s) = suppress_below
        && s < 0
    {
        problems.add(
            "[defaults] field `suppress_below`",
            format!("must be 0 or more, got `{s}`"),
        );
    }
    if let Some(c) = confidence
        && !(c > 0.0 && c < 1.0)
    {
        problems.add(
            "[defaults] field `confidence`",
            format!("must be strictly between 0 and 1, got `{c}`"),
        );
    }
    Defaults {
        mechanism,
        suppress_below,
        confidence,
        consistent,
    }
}

/// What only the sections together can tell: unused inputs, a pure-DP budget charged in rho, and
/// a release cost no table shares.
fn check_across_sections(
    inputs: &[InputSpec],
    used_inputs: &HashSet<String>,
    tables: &[TableSpec],
    accounting: Option<Accounting>,
    release_cost: Option<Cost>,
    problems: &mut Problems,
) {
    // (A release of exact tables only charges nothing; one with DP tables is checked below.)
    for input in inputs {
        if !used_inputs.contains(&input.name) {
            problems.add(
                &format!("[inputs.{}]", input.name),
                "no table reads this input; remove it or add a table".to_string(),
            );
        }
    }
    if accounting == Some(Accounting::None) {
        for t in tables {
            problems.add(
                &format!("table `{}`", t.name),
                "a differentially private table spends a privacy budget, and `[dataset]` gives none: add one, e.g. `budget = { rho = 1.0 }` (only a dataset that publishes exact tables alone may leave it out)".to_string(),
            );
        }
        if release_cost.is_some() {
            problems.add(
                "[release] field `cost`",
                "the dataset has no `budget` to spend it from".to_string(),
            );
        }
    }
    if let Some(Accounting::Pure { .. }) = accounting {
        for t in tables {
            if let Cost::Rho(_) = t.cost {
                problems.add(
                    &format!("table `{}`, field `cost`", t.name),
                    "the dataset's budget is pure DP (epsilon): every table's cost must be in epsilon".to_string(),
                );
            }
        }
    }
    if release_cost.is_some() && tables.iter().all(|t| t.cost_source == CostSource::Declared) {
        problems.add(
            "[release] field `cost`",
            "no table gives a `weight`, so the release cost would be unused".to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::Mechanism;

    const SAMPLE: &str = r#"
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
    fn each_kind_of_table_refuses_the_other_kinds_fields_with_the_reason() {
        // A DP table given an exact table's rules, and an unknown protection.
        let dp = SAMPLE.replace(
            "cost = { rho = 0.5 }",
            "cost = { rho = 0.5 }\nprimary = { min_frequency = 5 }\ngroups = []\nprotection = \"supression\"",
        );
        let e = validate_str(&dp).unwrap_err();
        for part in [
            "table `t`, field `primary`: does not apply here: only exact tables",
            "table `t`, field `groups`: does not apply here: only exact tables (`protection = \"suppression\"`) publish subtotals",
            "table `t`, field `protection`: `supression`: use `dp`",
            "did you mean `suppression`",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
        // An exact table given a DP table's noise and bounds.
        let exact = SAMPLE.replace(
            "cost = { rho = 0.5 }",
            "cost = { rho = 0.5 }\nprotection = \"suppression\"\nprimary = { min_frequency = 5 }\ninterval_percent = 20\nconfidence = 0.9",
        );
        let e = validate_str(&exact).unwrap_err();
        for field in ["cost", "max_rows_per_unit", "confidence"] {
            let part = format!("table `t`, field `{field}`: does not apply to an exact table");
            assert!(e.contains(&part), "{part} not in {e}");
        }
        assert!(!e.contains("field `primary`"), "{e}");
        // Without them, each is valid.
        let exact = exact
            .replace("cost = { rho = 0.5 }\n", "")
            .replace("max_rows_per_unit = 4\n", "")
            .replace("confidence = 0.9", "");
        let plan = validate_str(&exact).unwrap();
        assert_eq!((plan.tables.len(), plan.exact_tables.len()), (0, 1));
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
    fn a_sum_that_suppresses_measures_its_contributors() {
        let sum = |extra: &str| {
            SAMPLE.replace(
                "statistic = \"count_rows\"",
                &format!("statistic = \"sum\"\ncolumn = \"v\"\nclamp = [0, 9]\n{extra}"),
            )
        };
        // Suppression (the default threshold of 10) without a count of contributors is refused.
        let err = validate_str(&sum("")).unwrap_err();
        assert!(
            err.contains("table `t`, field `contributors_cost`")
                && err.contains("never on its noisy value")
                && err.contains("suppress_below = 0"),
            "{err}"
        );
        let plan = validate_str(&sum("suppress_below = 0")).unwrap();
        assert_eq!(plan.tables[0].contributors_cost, None);
        let plan = validate_str(&sum("contributors_cost = { rho = 0.01 }")).unwrap();
        assert_eq!(plan.tables[0].contributors_cost, Some(Cost::Rho(0.01)));
        // It is part of what the release means; other tables' identity is unchanged.
        let with = plan.identity();
        assert_eq!(with["tables"][0]["contributors_cost"]["rho"], 0.01);
        let without = validate_str(&sum("suppress_below = 0")).unwrap().identity();
        assert!(without["tables"][0].get("contributors_cost").is_none());
        assert!(
            validate_str(SAMPLE).unwrap().identity()["tables"][0]
                .get("contributors_cost")
                .is_none()
        );
        for (text, problem) in [
            (
                sum("contributors_cost = { epsilon = 0.1 }"),
                "discrete Gaussian cannot satisfy pure DP",
            ),
            (
                sum("contributors_cost = { rho = -1 }"),
                "field `contributors_cost`",
            ),
            (
                SAMPLE.replace(
                    "cost = { rho = 0.5 }",
                    "cost = { rho = 0.5 }\ncontributors_cost = { rho = 0.1 }",
                ),
                "only a sum measures the count of its contributors",
            ),
        ] {
            let err = validate_str(&text).unwrap_err();
            assert!(err.contains(problem), "{problem}: {err}");
        }
    }

    #[test]
    fn an_sql_input_names_a_variable_and_a_table_or_query() {
        let sql = |inner: &str| SAMPLE.replace("path = \"m.csv\"", &format!("sql = {{ {inner} }}"));
        let plan = validate_str(&sql("url_env = \"DB\", table = \"reg.victims\"")).unwrap();
        let source = plan.inputs[0].sql.as_ref().unwrap();
        assert_eq!(
            source.relation,
            Relation::Table(vec!["reg".into(), "victims".into()])
        );
        assert_eq!(source.timeout_seconds, 3600);
        assert_eq!(
            plan.inputs[0].location(),
            "table reg.victims, server in $DB"
        );
        let plan = validate_str(&sql("url_env = \"DB\", query = \"SELECT 1;\"")).unwrap();
        assert_eq!(
            plan.inputs[0].sql.as_ref().unwrap().relation,
            Relation::Query("SELECT 1".into())
        );
        // The relation is part of what a release means; the variable's name is not.
        let a = validate_str(&sql("url_env = \"DB\", table = \"a\"")).unwrap();
        let b = validate_str(&sql("url_env = \"OTHER\", table = \"a\"")).unwrap();
        let c = validate_str(&sql("url_env = \"DB\", table = \"b\"")).unwrap();
        assert_eq!(a.identity(), b.identity());
        assert_ne!(a.identity(), c.identity());
        // File inputs keep the identity they had before SQL inputs existed.
        assert!(
            validate_str(SAMPLE).unwrap().identity()["inputs"][0]
                .get("sql")
                .is_none()
        );

        for (inner, problem) in [
            (
                "url_env = \"postgresql://u:pw@h/db\", table = \"t\"",
                "must name an environment variable",
            ),
            ("url_env = \"DB\"", "needs `table"),
            (
                "url_env = \"DB\", table = \"t\", query = \"SELECT 1\"",
                "not both",
            ),
            (
                "url_env = \"DB\", table = \"a..b\"",
                "must be a table or view name",
            ),
            (
                "url_env = \"DB\", query = \" ; \"",
                "`query` must not be empty",
            ),
            (
                "url_env = \"DB\", table = \"t\", timeout_seconds = 0",
                "between 1 and 2147483",
            ),
        ] {
            let err = validate_str(&sql(inner)).unwrap_err();
            assert!(err.contains("[inputs.m] field `sql`"), "{err}");
            assert!(err.contains(problem), "{inner}: {err}");
        }
        let both = SAMPLE.replace(
            "path = \"m.csv\"",
            "path = \"m.csv\"\nsql = { url_env = \"DB\", table = \"t\" }",
        );
        assert!(
            validate_str(&both)
                .unwrap_err()
                .contains("has both `path` and a database")
        );
        let neither = SAMPLE.replace("path = \"m.csv\"", "");
        assert!(validate_str(&neither).unwrap_err().contains("needs `path`"));
        let aggregated = sql("url_env = \"DB\", table = \"t\"").replace(
            "[inputs.m]",
            "[inputs.m]\naggregated = true\ncount_column = \"n\"",
        );
        assert!(
            validate_str(&aggregated)
                .unwrap_err()
                .contains("holds records (microdata)")
        );
        // `spark = { ... }`: the same fields, the engine named in the identity (a table of the
        // same name in PostgreSQL is other data); one database per input.
        let spark =
            |inner: &str| SAMPLE.replace("path = \"m.csv\"", &format!("spark = {{ {inner} }}"));
        let in_spark = validate_str(&spark("url_env = \"SPARK\", table = \"reg.v\"")).unwrap();
        let source = in_spark.inputs[0].sql.as_ref().unwrap();
        assert_eq!(source.engine, Engine::Spark);
        assert_eq!(
            source.relation,
            Relation::Table(vec!["reg".into(), "v".into()])
        );
        let in_pg = validate_str(&sql("url_env = \"SPARK\", table = \"reg.v\"")).unwrap();
        assert_eq!(
            in_pg.inputs[0].sql.as_ref().unwrap().engine,
            Engine::Postgres
        );
        assert_ne!(in_spark.identity(), in_pg.identity());
        assert!(
            validate_str(&spark("url_env = \"SPARK\""))
                .unwrap_err()
                .contains("[inputs.m] field `spark`")
        );
        let two = spark("url_env = \"SPARK\", table = \"t\"").replace(
            "[inputs.m]",
            "[inputs.m]\nsql = { url_env = \"DB\", table = \"t\" }",
        );
        assert!(
            validate_str(&two)
                .unwrap_err()
                .contains("has both `sql` and `spark`")
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
}
