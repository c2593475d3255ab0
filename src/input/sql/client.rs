//! The connection to PostgreSQL (the `postgres` crate, built with the `postgres` feature): the
//! connection string from the environment (never in a message: its password is masked), one
//! read-only REPEATABLE READ transaction per input, the checks before any aggregate is computed
//! (columns and types, undeclared category values, empty units, NULL values), and the aggregates
//! turned into exact cells.

use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, IsolationLevel, Transaction};
use rand::RngCore;

use super::super::csv::CategoryIndex;
use super::super::error::InputError;
use super::super::request::{Count, Counted, InputResult, SqlRead, Whole};
use super::statements::setup_statements;
use super::tls;
use super::{InputStatements, MAX_UNDECLARED};
use crate::hash::sha256_hex;
use crate::policy::{Plan, Statistic};

/// Reads SQL input `input` of `plan` for `counts`: connect, open one read-only snapshot, check
/// the relation's columns and values, read its totals, then count each table; only aggregates
/// come back.
pub(super) fn read_sql(
    plan: &Plan,
    input: usize,
    counts: &[Count],
) -> Result<InputResult, InputError> {
    let spec = &plan.inputs[input];
    let sql = spec.sql.as_ref().expect("an SQL input");
    let (mut client, failing) = connect(plan, input)?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| failing.pg(e))?;
    let mut read = Session {
        tx: &mut tx,
        sent: Vec::new(),
        failing: &failing,
    };
    let statements = InputStatements::new(plan, input, counts);
    let [timeout, version, snapshot] = setup_statements(sql.timeout_seconds);
    read.execute(&timeout)?;
    let engine = read.one_value(&version)?;
    let snapshot = read.one_value(&snapshot)?;
    // Columns and types: prepared, never executed.
    let probe = read
        .tx
        .prepare(&statements.probe)
        .map_err(|e| failing.pg(e))?;
    read.sent.push(sha256_hex(statements.probe.as_bytes()));
    check_columns(plan, &statements, probe.columns()).map_err(|m| failing.cannot(m))?;
    let mappings = read.mappings(plan, &statements)?;
    let totals = read.totals(plan, &statements)?;
    let counted = read.count_tables(plan, counts, &statements, &mappings)?;
    let sent = read.sent;
    tx.commit().map_err(|e| failing.pg(e))?;
    let relation = sql.relation.describe();
    Ok(InputResult {
        counted,
        sha256: sha256_hex(
            format!("postgres\n{relation}\n{}\n{}", totals.rows, totals.digest).as_bytes(),
        ),
        rows: totals.rows as u64,
        units: Some(totals.units as u64),
        sql: Some(SqlRead {
            engine,
            relation,
            snapshot,
            statements: sent,
        }),
        bounding: Vec::new(),
    })
}

/// How a read of one SQL input fails: every message names the input and where it is, with the
/// connection string and its password masked.
struct Failing {
    input: String,
    location: String,
    masker: Masker,
}

impl Failing {
    /// The input or its connection string is at fault: retrying will not help.
    fn fail(&self, message: String) -> InputError {
        self.fail_as(message, false)
    }

    fn fail_as(&self, message: String, temporary: bool) -> InputError {
        InputError::Sql {
            input: self.input.clone(),
            location: self.location.clone(),
            message: self.masker.mask(&message),
            temporary,
        }
    }

    /// The relation cannot count what was asked of it (columns, values).
    fn cannot(&self, message: String) -> InputError {
        InputError::SqlData {
            input: self.input.clone(),
            location: self.location.clone(),
            message: self.masker.mask(&message),
        }
    }

    /// The server's error, temporary when the server could not be reached or went away.
    fn pg(&self, e: postgres::Error) -> InputError {
        self.fail_as(describe(&e), temporary(&e))
    }
}

/// Connects to the server of SQL input `input`, named by the environment variable the policy
/// gives (a 30-second connect timeout unless the string sets one), as application `safestat`.
fn connect(plan: &Plan, input: usize) -> Result<(Client, Failing), InputError> {
    let spec = &plan.inputs[input];
    let sql = spec.sql.as_ref().expect("an SQL input");
    let mut failing = Failing {
        input: spec.name.clone(),
        location: spec.location(),
        masker: Masker::new(""),
    };
    let url = std::env::var(&sql.url_env).map_err(|_| {
        failing.fail(format!(
            "environment variable `{}` is not set; it must hold the connection string, e.g. `postgresql://officer@db.example/registers`",
            sql.url_env
        ))
    })?;
    failing.masker = Masker::new(&url);
    let (url, tls) =
        tls::split(&url).map_err(|m| failing.fail(format!("`{}`: {m}", sql.url_env)))?;
    let mut config = Config::from_str(&url).map_err(|e| {
        failing.fail(format!(
            "`{}` is not a valid connection string: {e}",
            sql.url_env
        ))
    })?;
    if let Some(password) = config.get_password() {
        failing
            .masker
            .secrets
            .push(String::from_utf8_lossy(password).into_owned());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(30));
    }
    config.application_name("safestat");
    if config.get_ssl_mode() != postgres::config::SslMode::Prefer {
        // The postgres crate found an `sslmode` the split above did not: never let it decide.
        return Err(failing.fail(format!(
            "`{}`: its `sslmode` could not be read; write the connection string as `key=value` pairs",
            sql.url_env
        )));
    }
    // TLS over TCP only: a Unix socket is local, and the server refuses TLS there. A `hostaddr`
    // is reached over TCP whatever `host` says.
    let over_tcp = config.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_)))
        || !config.get_hostaddrs().is_empty();
    let mode = if over_tcp {
        tls.mode
    } else {
        tls::Mode::Disable
    };
    config.ssl_mode(mode.as_postgres());
    if let Some(caveat) = mode.caveat().filter(|_| over_tcp) {
        eprintln!("safestat: note: input `{}`: {caveat}", spec.name);
    }
    let connector = tls::connector(&tls).map_err(|m| failing.fail(m))?;
    let client = config.connect(connector).map_err(|e| failing.pg(e))?;
    Ok((client, failing))
}

/// The aggregates read from one input's snapshot so far: the transaction, the SHA-256 of every
/// statement sent (for the ledger), and how a failure is reported.
struct Session<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    sent: Vec<String>,
    failing: &'t Failing,
}

/// The relation's totals: rows, distinct units and a fingerprint of its content.
struct Totals {
    rows: i64,
    units: i64,
    digest: String,
}

impl Session<'_, '_> {
    fn execute(&mut self, statement: &str) -> Result<(), InputError> {
        self.tx
            .batch_execute(statement)
            .map_err(|e| self.failing.pg(e))?;
        self.sent.push(sha256_hex(statement.as_bytes()));
        Ok(())
    }

    fn one_value(&mut self, statement: &str) -> Result<String, InputError> {
        one_value(self.tx, statement, &mut self.sent).map_err(|e| self.failing.pg(e))
    }

    /// Each dimension's values as codes: its declared categories, and the undeclared values the
    /// domain statement finds mapped as the CSV path maps them (or all refused in one message).
    fn mappings(
        &mut self,
        plan: &Plan,
        statements: &InputStatements,
    ) -> Result<Vec<Mapping>, InputError> {
        let indexes: Vec<CategoryIndex> = statements
            .dims
            .iter()
            .map(|&d| CategoryIndex::new(&plan.dimensions[d]))
            .collect();
        let mut mappings: Vec<Mapping> = statements
            .dims
            .iter()
            .map(|&d| {
                Mapping::declared(&plan.dimensions[d].categories, plan.dimensions[d].catch_all)
            })
            .collect();
        if let Some(domain) = &statements.domain {
            let declared: Vec<Vec<String>> = statements
                .dims
                .iter()
                .map(|&d| plan.dimensions[d].categories.clone())
                .collect();
            let params: Vec<&(dyn ToSql + Sync)> =
                declared.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            let failing = self.failing;
            let rows = self.tx.query(domain, &params).map_err(|e| failing.pg(e))?;
            self.sent.push(sha256_hex(domain.as_bytes()));
            let found = rows
                .iter()
                .map(|r| Ok((r.try_get::<_, i32>(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<(i32, Option<String>, i64)>, postgres::Error>>()
                .map_err(|e| failing.pg(e))?;
            map_undeclared(plan, statements, &indexes, &mut mappings, found)
                .map_err(|m| failing.cannot(m))?;
        }
        Ok(mappings)
    }

    /// Rows, distinct units and the content's fingerprint; refuses empty units and NULL summed
    /// values before anything is counted.
    fn totals(&mut self, plan: &Plan, statements: &InputStatements) -> Result<Totals, InputError> {
        let failing = self.failing;
        let pg = |e| failing.pg(e);
        let totals = self.tx.query_one(&statements.totals, &[]).map_err(pg)?;
        self.sent.push(sha256_hex(statements.totals.as_bytes()));
        let rows: i64 = totals.try_get(0).map_err(pg)?;
        let units: i64 = totals.try_get(1).map_err(pg)?;
        let empty_units: i64 = totals.try_get(2).map_err(pg)?;
        if empty_units > 0 {
            return Err(failing.fail(format!(
                "column `{}`: {empty_units} rows have an empty or NULL privacy unit; every record must name its unit",
                plan.privacy_unit
            )));
        }
        for (i, column) in statements.sum_columns.iter().enumerate() {
            let nulls: i64 = totals.try_get(3 + i).map_err(pg)?;
            if nulls > 0 {
                return Err(failing.cannot(format!(
                    "column `{column}`: {nulls} rows hold NULL, which is not an integer"
                )));
            }
        }
        let digest: String = totals
            .try_get(3 + statements.sum_columns.len())
            .map_err(pg)?;
        Ok(Totals {
            rows,
            units,
            digest,
        })
    }

    /// Each table bounded and counted in the server (row priorities keyed by fresh secret keys,
    /// bound as parameters), its cells filled in: one result per count, in order.
    fn count_tables(
        &mut self,
        plan: &Plan,
        counts: &[Count],
        statements: &InputStatements,
        mappings: &[Mapping],
    ) -> Result<Vec<Counted>, InputError> {
        let failing = self.failing;
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
            let mut owned: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(key)];
            for &d in &table.dims {
                let m = &mappings[statements.dims.iter().position(|&x| x == d).expect("used")];
                owned.push(Box::new(m.values.clone()));
                owned.push(Box::new(m.codes.clone()));
                owned.push(Box::new(m.null_code));
            }
            let params: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
            let result = self.tx.query(&ts.sql, &params).map_err(|e| failing.pg(e))?;
            self.sent.push(sha256_hex(ts.sql.as_bytes()));
            let bad = |e| match e {
                Filled::Db(e) => failing.pg(e),
                Filled::Bad(m) => failing.cannot(format!("table `{}`: {m}", table.name)),
            };
            debug_assert_eq!(ts.table, counted.len(), "one statement per count, in order");
            let mut cells = fill_cells(plan, table, &result).map_err(bad)?;
            if let (Counted::Total { whole, .. }, Some(spanning)) = (&mut cells, &ts.spanning) {
                let rows = self
                    .tx
                    .query(spanning, &params)
                    .map_err(|e| failing.pg(e))?;
                self.sent.push(sha256_hex(spanning.as_bytes()));
                whole.spanning = fill_spanning(plan, table, &rows).map_err(bad)?;
            }
            counted.push(cells);
        }
        Ok(counted)
    }
}

/// Runs a statement that returns one text value.
fn one_value(
    tx: &mut Transaction<'_>,
    statement: &str,
    sent: &mut Vec<String>,
) -> Result<String, postgres::Error> {
    let row = tx.query_one(statement, &[])?;
    sent.push(sha256_hex(statement.as_bytes()));
    row.try_get(0)
}

/// 32 fresh random bytes from the operating system: a key for the row priorities.
fn fresh_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// How a dimension's values become codes in SQL: the values, their codes, and the code of a
/// NULL (the catch-all, if any).
#[derive(Debug, Clone)]
struct Mapping {
    values: Vec<String>,
    codes: Vec<i32>,
    null_code: Option<i32>,
}

impl Mapping {
    fn declared(categories: &[String], catch_all: Option<u32>) -> Mapping {
        Mapping {
            values: categories.to_vec(),
            codes: (0..categories.len() as i32).collect(),
            null_code: catch_all.map(|c| c as i32),
        }
    }
}

/// Maps every undeclared value the domain statement found as the CSV path does (a declared
/// category after Unicode NFC, else the catch-all), or refuses them all in one message.
fn map_undeclared(
    plan: &Plan,
    statements: &InputStatements,
    indexes: &[CategoryIndex],
    mappings: &mut [Mapping],
    found: Vec<(i32, Option<String>, i64)>,
) -> Result<(), String> {
    if found.len() > MAX_UNDECLARED {
        return Err(format!(
            "the dimension columns hold more than {MAX_UNDECLARED} distinct values that are not declared categories; map them to categories in a `query`"
        ));
    }
    let mut problems = Vec::new();
    for (dim, value, rows) in found {
        let i = usize::try_from(dim)
            .ok()
            .filter(|&i| i < indexes.len())
            .ok_or("the server answered a dimension that was not asked for")?;
        let name = &plan.dimensions[statements.dims[i]].name;
        match value {
            None if mappings[i].null_code.is_some() => {}
            None => problems.push(format!(
                "column `{name}`: {rows} rows hold NULL, which is not a declared category; fix the data or map undeclared values with [catch_all]"
            )),
            Some(v) => match indexes[i].lookup(v.as_bytes()) {
                Ok(code) => {
                    mappings[i].values.push(v);
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

/// Refuses a relation that lacks a column the tables read, or whose summed column is not an
/// integer.
fn check_columns(
    plan: &Plan,
    statements: &InputStatements,
    columns: &[postgres::Column],
) -> Result<(), String> {
    let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
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
        if let Some(col) = columns.iter().find(|x| x.name() == c)
            && ![Type::INT2, Type::INT4, Type::INT8].contains(col.type_())
        {
            problems.push(format!(
                "column `{c}` is of type {}, but a sum needs an integer column (smallint, integer or bigint); cast it in a `query` if its values are whole numbers",
                col.type_()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

enum Filled {
    Db(postgres::Error),
    Bad(String),
}

impl From<postgres::Error> for Filled {
    fn from(e: postgres::Error) -> Filled {
        Filled::Db(e)
    }
}

/// A count's exact cells from its aggregate rows `(code..., count, sum, contributors)` (an
/// exact sum's add its largest units' sums and its lowest row value), with a sum's contributors
/// per cell and what an exact sum's units contributed (its units and largest sums per cell; the
/// units in several cells come apart): a cell the server did not return is a zero (and still
/// gets noise).
fn fill_cells(plan: &Plan, table: &Count, rows: &[postgres::Row]) -> Result<Counted, Filled> {
    let radix: Vec<usize> = table
        .dims
        .iter()
        .map(|&d| plan.dimensions[d].categories.len())
        .collect();
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
            let sum: Option<String> = row.try_get(radix.len() + 1)?;
            let sum = sum.unwrap_or_else(|| "0".to_string());
            sum.parse::<i128>()
                .map_err(|_| Filled::Bad(format!("the server returned `{sum}` as a sum")))?
        } else {
            i128::from(row.try_get::<_, i64>(radix.len())?)
        };
        cells[cell] += value;
        if let Some(c) = contributors.as_mut() {
            c[cell] += i128::from(row.try_get::<_, i64>(radix.len() + 2)?);
        }
        if let (Some(top), Some(column)) = (largest.as_mut(), whole) {
            top.units[cell] += i128::from(row.try_get::<_, i64>(radix.len() + 2)?);
            let lowest: i64 = row.try_get(radix.len() + 4)?;
            if lowest < 0 {
                return Err(Filled::Bad(format!(
                    "column `{column}` holds a negative value ({lowest}); an exact table's sum needs values of 0 or more (the dominance rules and the attacker's audit take every contribution as non-negative)"
                )));
            }
            let list: Option<String> = row.try_get(radix.len() + 3)?;
            for v in list
                .unwrap_or_default()
                .split(',')
                .filter(|v| !v.is_empty())
            {
                let v = v.parse::<i128>().map_err(|_| {
                    Filled::Bad(format!("the server returned `{v}` as a unit's sum"))
                })?;
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
fn cell_of(plan: &Plan, table: &Count, row: &postgres::Row, from: usize) -> Result<usize, Filled> {
    let mut cell = 0usize;
    for (j, &d) in table.dims.iter().enumerate() {
        let n = plan.dimensions[d].categories.len();
        let code: Option<i32> = row.try_get(from + j)?;
        let code = code
            .and_then(|c| usize::try_from(c).ok())
            .filter(|&c| c < n)
            .ok_or_else(|| {
                Filled::Bad(format!(
                    "the server returned a cell outside the declared categories of `{}` (the data changed under a snapshot?)",
                    plan.dimensions[d].name
                ))
            })?;
        cell = cell * n + code;
    }
    Ok(cell)
}

/// An exact sum's units in several cells from rows `(rank, code per dimension..., sum)`: each
/// unit's sum per cell, grouped by its rank.
fn fill_spanning(
    plan: &Plan,
    table: &Count,
    rows: &[postgres::Row],
) -> Result<Vec<Vec<(u32, i128)>>, Filled> {
    let mut by_rank: std::collections::BTreeMap<i64, Vec<(u32, i128)>> = Default::default();
    for row in rows {
        let rank: i64 = row.try_get(0)?;
        let cell = cell_of(plan, table, row, 1)?;
        let sum: String = row.try_get(1 + table.dims.len())?;
        let sum = sum
            .parse::<i128>()
            .map_err(|_| Filled::Bad(format!("the server returned `{sum}` as a unit's sum")))?;
        by_rank.entry(rank).or_default().push((cell as u32, sum));
    }
    Ok(by_rank.into_values().collect())
}

/// Whether retrying later may succeed: the server could not be reached, or the connection was
/// lost (SQLSTATE class 08; 57P01-57P03, a server shutting down or not yet accepting
/// connections). A refused login, a missing table or a statement that ran out of time are not.
fn temporary(e: &postgres::Error) -> bool {
    if is_tls(e) {
        return false; // a certificate, a host name or a server without TLS: retrying won't help
    }
    match e.code().map(|c| c.code()) {
        Some(code) => code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03"),
        None => e.as_db_error().is_none(),
    }
}

/// Whether the connection failed TLS for good: a certificate or host name that does not verify,
/// a server without TLS under a mode that requires it, or no host name to verify (the `postgres`
/// crate's and OpenSSL's words for them). A handshake cut short (a reset, a server restarting)
/// is not: retrying may help.
fn is_tls(e: &postgres::Error) -> bool {
    let text = describe_chain(e);
    e.as_db_error().is_none()
        && text.starts_with("error performing TLS handshake")
        && [
            "certificate verify failed",
            "server does not support TLS",
            "no hostname provided",
            "weak sslmode",
        ]
        .iter()
        .any(|cause| text.contains(cause))
}

/// A client error and its chain of causes, each said once (OpenSSL's errors repeat their stack
/// in their sources).
fn describe_chain(e: &postgres::Error) -> String {
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !m.contains(&text) {
            m.push_str(&format!(": {text}"));
        }
        source = s.source();
    }
    m
}

/// A server or connection error in words: the server's message, detail and hint, or the
/// client's chain of causes.
fn describe(e: &postgres::Error) -> String {
    let mut m = match e.as_db_error() {
        Some(db) => {
            let mut m = format!("the server said: {} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                m.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => describe_chain(e),
    };
    if is_tls(e) {
        m.push_str(" (TLS as `sslmode` asks failed: with `verify-full` the server's certificate must be signed by an authority in `sslrootcert` (or the system's store) and name the host connected to; under `require` the server must offer TLS; nothing was charged)");
        return m;
    }
    // SQLSTATE classes 08 (connection exception) and 57 (operator intervention: shutdown,
    // terminated backend), or a connection the client saw close.
    let class = e.code().map(|c| &c.code()[..2]);
    if e.is_closed() || matches!(class, Some("08" | "57")) || m.contains("connection closed") {
        m.push_str(" (the connection to the server was lost; nothing was charged)");
    }
    m
}

/// Hides secrets (the password, the connection string) in messages.
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
        secrets.retain(|s| !s.is_empty());
        Masker { secrets }
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
