//! What every engine's client does with the answers of [`super::statements`]'s statements, the
//! same for PostgreSQL and Spark: a failure named after its input (secrets masked), the
//! relation's columns checked, undeclared values mapped as the CSV path maps them, and the
//! aggregates turned into exact cells. A client turns each answer's rows into [`Field`]s first.

use rand::RngCore;

use super::super::csv::CategoryIndex;
use super::super::error::InputError;
use super::super::request::{Count, Counted, InputResult, SqlRead, Whole};
use super::{Dialect, InputStatements, MAX_UNDECLARED};
use crate::hash::{Fingerprint, sha256_hex};
use crate::policy::{Plan, Statistic};

/// One value of an answer's row, as the statements return them: an integer, a text or NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field {
    Null,
    Int(i64),
    Text(String),
}

impl Field {
    fn int(&self) -> Result<Option<i64>, String> {
        match self {
            Field::Null => Ok(None),
            Field::Int(v) => Ok(Some(*v)),
            Field::Text(t) => Err(format!("the server returned the text `{t}` for an integer")),
        }
    }

    fn count(&self) -> Result<i64, String> {
        self.int()?
            .ok_or_else(|| "the server returned NULL for a count".to_string())
    }

    fn text(&self) -> Result<Option<&str>, String> {
        match self {
            Field::Null => Ok(None),
            Field::Text(t) => Ok(Some(t)),
            Field::Int(v) => Err(format!("the server returned the integer {v} for a text")),
        }
    }
}

/// An answer's rows.
pub(super) type Rows = [Vec<Field>];

/// Column `i` of `row`, or a message if the answer is too short.
fn at(row: &[Field], i: usize) -> Result<&Field, String> {
    row.get(i)
        .ok_or_else(|| format!("the server answered {} columns, not {}", row.len(), i + 1))
}

/// How a read of one SQL input fails: every message names the input and where it is, with the
/// connection string and its secrets masked.
pub(super) struct Failing {
    pub input: String,
    pub location: String,
    pub masker: Masker,
}

impl Failing {
    pub fn new(plan: &Plan, input: usize) -> Failing {
        let spec = &plan.inputs[input];
        Failing {
            input: spec.name.clone(),
            location: spec.location(),
            masker: Masker::new(""),
        }
    }

    /// The input or its connection string is at fault: retrying will not help.
    pub fn fail(&self, message: String) -> InputError {
        self.fail_as(message, false)
    }

    pub fn fail_as(&self, message: String, temporary: bool) -> InputError {
        InputError::Sql {
            input: self.input.clone(),
            location: self.location.clone(),
            message: self.masker.mask(&message),
            temporary,
        }
    }

    /// The relation cannot count what was asked of it (columns, values).
    pub fn cannot(&self, message: String) -> InputError {
        InputError::SqlData {
            input: self.input.clone(),
            location: self.location.clone(),
            message: self.masker.mask(&message),
        }
    }
}

/// The connection string from the environment variable input `input` names, or a failure
/// saying how to set it (`example`, a connection string of the engine's form).
pub(super) fn connection_string(
    plan: &Plan,
    input: usize,
    failing: &mut Failing,
    example: &str,
) -> Result<String, InputError> {
    let sql = plan.inputs[input].sql.as_ref().expect("an SQL input");
    let url = std::env::var(&sql.url_env).map_err(|_| {
        failing.fail(format!(
            "environment variable `{}` is not set; it must hold the connection string, e.g. `{example}`",
            sql.url_env
        ))
    })?;
    failing.masker = Masker::new(&url);
    Ok(url)
}

/// 32 fresh random bytes from the operating system: a key for the row priorities.
pub(super) fn fresh_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// How a dimension's values become codes in SQL: the values, their codes, and the code of a
/// NULL (the catch-all, if any).
#[derive(Debug, Clone)]
pub(super) struct Mapping {
    pub values: Vec<String>,
    pub codes: Vec<i32>,
    pub null_code: Option<i32>,
}

impl Mapping {
    /// Each dimension's declared categories, in the order of the domain statement's parameters.
    pub fn declared(plan: &Plan, statements: &InputStatements) -> Vec<Mapping> {
        statements
            .dims
            .iter()
            .map(|&d| {
                let dim = &plan.dimensions[d];
                Mapping {
                    values: dim.categories.clone(),
                    codes: (0..dim.categories.len() as i32).collect(),
                    null_code: dim.catch_all.map(|c| c as i32),
                }
            })
            .collect()
    }
}

/// Maps every undeclared value the domain statement found (rows `(dim, value, rows)`) as the CSV
/// path does (a declared category after Unicode NFC, else the catch-all), or refuses them all in
/// one message.
pub(super) fn map_undeclared(
    plan: &Plan,
    statements: &InputStatements,
    mappings: &mut [Mapping],
    found: &Rows,
) -> Result<(), String> {
    if found.len() > MAX_UNDECLARED {
        return Err(format!(
            "the dimension columns hold more than {MAX_UNDECLARED} distinct values that are not declared categories; map them to categories in a `query`"
        ));
    }
    let indexes: Vec<CategoryIndex> = statements
        .dims
        .iter()
        .map(|&d| CategoryIndex::new(&plan.dimensions[d]))
        .collect();
    let mut problems = Vec::new();
    for row in found {
        let i = at(row, 0)?
            .int()?
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&i| i < indexes.len())
            .ok_or("the server answered a dimension that was not asked for")?;
        let rows = at(row, 2)?.count()?;
        let name = &plan.dimensions[statements.dims[i]].name;
        match at(row, 1)?.text()? {
            None if mappings[i].null_code.is_some() => {}
            None => problems.push(format!(
                "column `{name}`: {rows} rows hold NULL, which is not a declared category; fix the data or map undeclared values with [catch_all]"
            )),
            Some(v) => match indexes[i].lookup(v.as_bytes()) {
                Ok(code) => {
                    mappings[i].values.push(v.to_string());
                    mappings[i].codes.push(code as i32);
                }
                Err(_) => problems.push(format!(
                    "column `{name}`: {rows} rows: {}",
                    indexes[i].undeclared(v.as_bytes())
                )),
            },
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// One column of the relation: its name, whether it holds integers, and its type's name.
pub(super) struct Column {
    pub name: String,
    pub integer: bool,
    pub type_name: String,
}

/// Refuses a relation that lacks a column the tables read, or whose summed column is not an
/// integer (`integers`: the engine's integer types, for the message).
pub(super) fn check_columns(
    plan: &Plan,
    statements: &InputStatements,
    columns: &[Column],
    integers: &str,
) -> Result<(), String> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let mut wanted: Vec<(&str, String)> = vec![(&plan.privacy_unit, "the privacy unit".into())];
    for &d in &statements.dims {
        wanted.push((&plan.dimensions[d].name, "a dimension".into()));
    }
    for c in &statements.sum_columns {
        wanted.push((c, "a summed column".into()));
    }
    let mut problems = Vec::new();
    for (column, role) in &wanted {
        if !names.contains(column) {
            problems.push(format!(
                "no column `{column}` ({role}); columns are: {}{}",
                names.join(", "),
                crate::policy::did_you_mean(column, names.iter().copied())
            ));
        }
    }
    for c in &statements.sum_columns {
        if let Some(col) = columns.iter().find(|x| &x.name == c)
            && !col.integer
        {
            problems.push(format!(
                "column `{c}` is of type {}, but a sum needs an integer column ({integers}); cast it in a `query` if its values are whole numbers",
                col.type_name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A count's exact cells from its aggregate rows `(code..., count, sum, contributors)` (an
/// exact sum's add its largest units' sums and its lowest row value), with a sum's contributors
/// per cell and what an exact sum's units contributed (its units and largest sums per cell; the
/// units in several cells come apart): a cell the server did not return is a zero (and still
/// gets noise).
pub(super) fn fill_cells(plan: &Plan, table: &Count, rows: &Rows) -> Result<Counted, String> {
    let dims = table.dims.len();
    let mut cells = vec![0i128; table.cells(plan)];
    let whole = match &table.statistic {
        Statistic::Total { column, .. } => Some(column.as_deref().unwrap_or("1 per row")),
        _ => None,
    };
    // An exact sum's contributors are its count of units, read apart.
    let mut contributors =
        matches!(table.statistic, Statistic::Sum { .. }).then(|| vec![0i128; cells.len()]);
    let is_sum = whole.is_some() || contributors.is_some();
    let mut largest = whole.map(|_| Whole {
        units: vec![0; cells.len()],
        largest: vec![Vec::new(); cells.len()],
        spanning: Vec::new(),
    });
    for row in rows {
        let cell = cell_of(plan, table, row, 0)?;
        let value = if is_sum {
            // SQL's sum of no rows is NULL (a table of no dimension on an empty relation).
            let sum = at(row, dims + 1)?.text()?.unwrap_or("0");
            sum.parse::<i128>()
                .map_err(|_| format!("the server returned `{sum}` as a sum"))?
        } else {
            i128::from(at(row, dims)?.count()?)
        };
        cells[cell] += value;
        if let Some(c) = contributors.as_mut() {
            c[cell] += i128::from(at(row, dims + 2)?.count()?);
        }
        if let (Some(top), Some(column)) = (largest.as_mut(), whole) {
            top.units[cell] += i128::from(at(row, dims + 2)?.count()?);
            let lowest = at(row, dims + 4)?.count()?;
            if lowest < 0 {
                return Err(format!(
                    "column `{column}` holds a negative value ({lowest}); an exact table's sum needs values of 0 or more (the dominance rules and the attacker's audit take every contribution as non-negative)"
                ));
            }
            let list = at(row, dims + 3)?.text()?.unwrap_or_default();
            for v in list.split(',').filter(|v| !v.is_empty()) {
                let v = v
                    .parse::<i128>()
                    .map_err(|_| format!("the server returned `{v}` as a unit's sum"))?;
                top.largest[cell].push(v);
            }
        }
    }
    Ok(match (contributors, largest) {
        (Some(contributors), _) => Counted::Sum {
            values: cells,
            contributors,
        },
        (None, Some(whole)) => Counted::Total {
            values: cells,
            whole,
        },
        (None, None) => Counted::Cells(cells),
    })
}

/// A count's cell named by a row's codes, from column `from` on (one per dimension).
fn cell_of(plan: &Plan, table: &Count, row: &[Field], from: usize) -> Result<usize, String> {
    let mut cell = 0usize;
    for (j, &d) in table.dims.iter().enumerate() {
        let n = plan.dimensions[d].categories.len();
        let code = at(row, from + j)?
            .int()?
            .and_then(|c| usize::try_from(c).ok())
            .filter(|&c| c < n)
            .ok_or_else(|| {
                format!(
                    "the server returned a cell outside the declared categories of `{}` (the data changed under a snapshot?)",
                    plan.dimensions[d].name
                )
            })?;
        cell = cell * n + code;
    }
    Ok(cell)
}

/// An exact sum's units in several cells from rows `(rank, code per dimension..., sum)`: each
/// unit's sum per cell, grouped by its rank.
pub(super) fn fill_spanning(
    plan: &Plan,
    table: &Count,
    rows: &Rows,
) -> Result<Vec<Vec<(u32, i128)>>, String> {
    let mut by_rank: std::collections::BTreeMap<i64, Vec<(u32, i128)>> = Default::default();
    for row in rows {
        let rank = at(row, 0)?.count()?;
        let cell = cell_of(plan, table, row, 1)?;
        let sum = at(row, 1 + table.dims.len())?.text()?.unwrap_or_default();
        let sum = sum
            .parse::<i128>()
            .map_err(|_| format!("the server returned `{sum}` as a unit's sum"))?;
        by_rank.entry(rank).or_default().push((cell as u32, sum));
    }
    Ok(by_rank.into_values().collect())
}

/// The relation's totals from the totals statement's one row: rows, distinct units and the
/// content's fingerprint; refuses empty units and NULL summed values before anything is
/// counted.
pub(super) fn read_totals(
    plan: &Plan,
    statements: &InputStatements,
    rows: &Rows,
    failing: &Failing,
) -> Result<Totals, InputError> {
    let bad = |m: String| failing.fail(format!("the totals statement: {m}"));
    let row = match rows {
        [row] => row,
        _ => return Err(bad(format!("{} rows instead of one", rows.len()))),
    };
    let count = |i: usize| at(row, i).and_then(Field::count).map_err(bad);
    // Columns: rows, [units], empty units, a NULL count per summed column, digest, [legacy].
    let asked = statements.asked;
    let after_units = usize::from(asked.units);
    let rows = count(0)?;
    let units = if asked.units { Some(count(1)?) } else { None };
    let empty_units = count(1 + after_units)?;
    if empty_units > 0 {
        return Err(failing.fail(format!(
            "column `{}`: {empty_units} rows have an empty or NULL privacy unit; every record must name its unit",
            plan.privacy_unit
        )));
    }
    for (i, column) in statements.sum_columns.iter().enumerate() {
        let nulls = count(2 + after_units + i)?;
        if nulls > 0 {
            return Err(failing.cannot(format!(
                "column `{column}`: {nulls} rows hold NULL, which is not an integer"
            )));
        }
    }
    let digest_at = |i: usize| {
        at(row, i)
            .and_then(|f| Ok(f.text()?.unwrap_or("0").to_string()))
            .map_err(bad)
    };
    let at_digest = 2 + after_units + statements.sum_columns.len();
    let digest = digest_at(at_digest)?;
    // Spark's scheme is unchanged: its digest is its legacy one too.
    let legacy_digest = match statements.dialect {
        Dialect::Spark => Some(digest.clone()),
        Dialect::Postgres if asked.legacy => Some(digest_at(at_digest + 1)?),
        Dialect::Postgres => None,
    };
    Ok(Totals {
        rows,
        units,
        digest,
        legacy_digest,
    })
}

/// A database input's result: its cells, and its fingerprint (what makes a re-run the same
/// release): the SHA-256 of the engine's `tag`, the relation, the row count and the content's
/// digest, after the digest's scheme (`postgres-hashtext64:`, `spark-xxhash64:`); in the legacy
/// scheme, the same over the legacy digest with no scheme named.
pub(super) fn input_result(
    dialect: Dialect,
    totals: &Totals,
    counted: Vec<Counted>,
    read: SqlRead,
) -> InputResult {
    InputResult {
        counted,
        fingerprint: {
            let (tag, scheme) = match dialect {
                Dialect::Postgres => ("postgres", "postgres-hashtext64"),
                Dialect::Spark => ("spark", "spark-xxhash64"),
            };
            let of = |digest: &str| {
                let identity = format!("{tag}\n{}\n{}\n{digest}", read.relation, totals.rows);
                sha256_hex(identity.as_bytes())
            };
            Fingerprint {
                now: format!("{scheme}:{}", of(&totals.digest)),
                legacy: totals.legacy_digest.as_deref().map(of),
            }
        },
        rows: totals.rows as u64,
        units: totals.units.map(|u| u as u64),
        sql: Some(read),
        bounding: Vec::new(),
    }
}

/// The relation's totals: rows, distinct units and a fingerprint of its content.
pub(super) struct Totals {
    pub rows: i64,
    /// The distinct units, when asked for ([`super::statements::Asked`]).
    pub units: Option<i64>,
    pub digest: String,
    /// The digest in the legacy scheme, when read.
    pub legacy_digest: Option<String>,
}

/// Hides secrets (the password, the connection string, a token) in messages.
pub(super) struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    pub(super) fn new(url: &str) -> Masker {
        let mut secrets = vec![url.to_string()];
        // A URL's password, before the config parses it (an unparseable URL still has one).
        if let Some(rest) = url.split("://").nth(1)
            && let Some((userinfo, _)) = rest.split_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            secrets.push(password.to_string());
        }
        for part in url.split_whitespace() {
            if let Some(p) = part.strip_prefix("password=") {
                secrets.push(p.trim_matches('\'').to_string());
            }
        }
        // Spark Connect's `sc://host:port/;token=...;user_id=...`.
        for part in url.split(';') {
            if let Some(t) = part.strip_prefix("token=") {
                secrets.push(t.to_string());
            }
        }
        secrets.retain(|s| !s.is_empty());
        Masker { secrets }
    }

    /// Hides `secret` too (a password the PostgreSQL client's parser found).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) fn add(&mut self, secret: String) {
        if !secret.is_empty() {
            self.secrets.push(secret);
        }
    }

    pub(super) fn mask(&self, message: &str) -> String {
        let mut m = message.to_string();
        // Longest first, so the URL is hidden whole before its password is.
        let mut secrets: Vec<&String> = self.secrets.iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            m = m.replace(s.as_str(), "***");
        }
        m
    }
}

/// How a client runs one table's statement: with the key and, per dimension of the table, the
/// mapping of its values to codes (the parameters [`super::statements::Param`] names).
pub(super) trait RunTable {
    fn run_table(
        &mut self,
        statement: &str,
        key: &[u8],
        mappings: &[&Mapping],
    ) -> Result<Vec<Vec<Field>>, InputError>;
}

/// Each table bounded and counted in the server (row priorities keyed by fresh secret keys,
/// bound as parameters: one per input for the rows tables, one per `count_units` table, none
/// for an exact sum, which keeps every row), its cells filled in: one result per count, in
/// order.
pub(super) fn count_tables(
    client: &mut impl RunTable,
    plan: &Plan,
    counts: &[Count],
    statements: &InputStatements,
    mappings: &[Mapping],
    failing: &Failing,
) -> Result<Vec<Counted>, InputError> {
    let shared_key = fresh_key();
    let mut counted = Vec::new();
    for ts in &statements.tables {
        let table = &counts[ts.table];
        let key = if matches!(table.statistic, Statistic::Total { .. }) {
            Vec::new()
        } else if ts.shared_key {
            shared_key.clone()
        } else {
            fresh_key()
        };
        let maps: Vec<&Mapping> = table
            .dims
            .iter()
            .map(|&d| &mappings[statements.dims.iter().position(|&x| x == d).expect("used")])
            .collect();
        let rows = client.run_table(&ts.sql, &key, &maps)?;
        let bad = |m| failing.cannot(format!("table `{}`: {m}", table.name));
        debug_assert_eq!(ts.table, counted.len(), "one statement per count, in order");
        let mut cells = fill_cells(plan, table, &rows).map_err(bad)?;
        if let (Counted::Total { whole, .. }, Some(spanning)) = (&mut cells, &ts.spanning) {
            let rows = client.run_table(spanning, &key, &maps)?;
            whole.spanning = fill_spanning(plan, table, &rows).map_err(bad)?;
        }
        counted.push(cells);
    }
    Ok(counted)
}
