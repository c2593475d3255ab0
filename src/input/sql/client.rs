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

use super::super::error::InputError;
use super::super::request::{Count, InputResult, SqlRead};
use super::answer::{
    Column, Failing, Field, Mapping, RunTable, check_columns, connection_string, count_tables,
    input_result, map_undeclared, read_totals,
};
use super::statements::setup_statements;
use super::tls;
use super::{Asked, Dialect, InputStatements};
use crate::hash::sha256_hex;
use crate::policy::Plan;

/// Reads SQL input `input` of `plan` for `counts`: connect, open one read-only snapshot, check
/// the relation's columns and values, read its totals, then count each table; only aggregates
/// come back.
pub(super) fn read_sql(
    plan: &Plan,
    input: usize,
    counts: &[Count],
    asked: Asked,
) -> Result<InputResult, InputError> {
    let spec = &plan.inputs[input];
    let sql = spec.sql.as_ref().expect("an SQL input");
    let (mut client, failing) = connect(plan, input)?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| pg(&failing, e))?;
    let mut read = Session {
        tx: &mut tx,
        sent: Vec::new(),
        failing: &failing,
    };
    let statements = InputStatements::new(plan, input, counts, asked);
    let [timeout, version, snapshot] = setup_statements(sql.timeout_seconds);
    read.execute(&timeout)?;
    let engine = read.one_value(&version)?;
    let snapshot = read.one_value(&snapshot)?;
    // Columns and types: prepared, never executed.
    let probe = read
        .tx
        .prepare(&statements.probe)
        .map_err(|e| pg(&failing, e))?;
    read.sent.push(sha256_hex(statements.probe.as_bytes()));
    let columns: Vec<Column> = probe
        .columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            integer: [Type::INT2, Type::INT4, Type::INT8].contains(c.type_()),
            type_name: c.type_().to_string(),
        })
        .collect();
    check_columns(plan, &statements, &columns, "smallint, integer or bigint")
        .map_err(|m| failing.cannot(m))?;
    let mappings = read.mappings(plan, &statements)?;
    let answer = read.query(&statements.totals, &[])?;
    let totals = read_totals(plan, &statements, &answer, &failing)?;
    let counted = count_tables(&mut read, plan, counts, &statements, &mappings, &failing)?;
    let sent = read.sent;
    tx.commit().map_err(|e| pg(&failing, e))?;
    let read = SqlRead {
        engine,
        relation: sql.relation.describe(),
        snapshot,
        statements: sent,
    };
    Ok(input_result(Dialect::Postgres, &totals, counted, read))
}

/// Connects to the server of SQL input `input`, named by the environment variable the policy
/// gives (a 30-second connect timeout unless the string sets one), as application `safestat`.
fn connect(plan: &Plan, input: usize) -> Result<(Client, Failing), InputError> {
    let spec = &plan.inputs[input];
    let sql = spec.sql.as_ref().expect("an SQL input");
    let mut failing = Failing::new(plan, input);
    let url = connection_string(
        plan,
        input,
        &mut failing,
        "postgresql://officer@db.example/registers",
    )?;
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
            .add(String::from_utf8_lossy(password).into_owned());
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
    let client = config.connect(connector).map_err(|e| pg(&failing, e))?;
    Ok((client, failing))
}

/// The aggregates read from one input's snapshot so far: the transaction, the SHA-256 of every
/// statement sent (for the ledger), and how a failure is reported.
struct Session<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    sent: Vec<String>,
    failing: &'t Failing,
}

impl Session<'_, '_> {
    fn execute(&mut self, statement: &str) -> Result<(), InputError> {
        self.tx
            .batch_execute(statement)
            .map_err(|e| pg(self.failing, e))?;
        self.sent.push(sha256_hex(statement.as_bytes()));
        Ok(())
    }

    fn one_value(&mut self, statement: &str) -> Result<String, InputError> {
        one_value(self.tx, statement, &mut self.sent).map_err(|e| pg(self.failing, e))
    }

    /// Each dimension's values as codes: its declared categories, and the undeclared values the
    /// domain statement finds mapped as the CSV path maps them (or all refused in one message).
    fn mappings(
        &mut self,
        plan: &Plan,
        statements: &InputStatements,
    ) -> Result<Vec<Mapping>, InputError> {
        let mut mappings = Mapping::declared(plan, statements);
        if let Some(domain) = &statements.domain {
            let declared: Vec<Vec<String>> = statements
                .dims
                .iter()
                .map(|&d| plan.dimensions[d].categories.clone())
                .collect();
            let params: Vec<&(dyn ToSql + Sync)> =
                declared.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            let found = self.query(domain, &params)?;
            map_undeclared(plan, statements, &mut mappings, &found)
                .map_err(|m| self.failing.cannot(m))?;
        }
        Ok(mappings)
    }

    /// A statement's answer as fields, its SHA-256 recorded.
    fn query(
        &mut self,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Vec<Field>>, InputError> {
        let failing = self.failing;
        let rows = self
            .tx
            .query(statement, params)
            .map_err(|e| pg(failing, e))?;
        self.sent.push(sha256_hex(statement.as_bytes()));
        fields(&rows).map_err(|e| pg(failing, e))
    }
}

impl RunTable for Session<'_, '_> {
    fn run_table(
        &mut self,
        statement: &str,
        key: &[u8],
        mappings: &[&Mapping],
    ) -> Result<Vec<Vec<Field>>, InputError> {
        let mut owned: Vec<Box<dyn ToSql + Sync + '_>> = vec![Box::new(key)];
        for m in mappings {
            owned.push(Box::new(&m.values));
            owned.push(Box::new(&m.codes));
            owned.push(Box::new(m.null_code));
        }
        let params: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        self.query(statement, &params)
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

/// An answer's rows as fields: each column by its type (the statements return `int4`, `int8`
/// and text).
fn fields(rows: &[postgres::Row]) -> Result<Vec<Vec<Field>>, postgres::Error> {
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    let ty = row.columns()[i].type_();
                    Ok(if *ty == Type::INT4 {
                        row.try_get::<_, Option<i32>>(i)?
                            .map_or(Field::Null, |v| Field::Int(v.into()))
                    } else if *ty == Type::INT8 {
                        row.try_get::<_, Option<i64>>(i)?
                            .map_or(Field::Null, Field::Int)
                    } else {
                        row.try_get::<_, Option<String>>(i)?
                            .map_or(Field::Null, Field::Text)
                    })
                })
                .collect()
        })
        .collect()
}

/// The server's error, temporary when the server could not be reached or went away.
fn pg(failing: &Failing, e: postgres::Error) -> InputError {
    failing.fail_as(describe(&e), temporary(&e))
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
