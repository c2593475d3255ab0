//! The connection to Apache Spark through Spark Connect (the `spark-connect-rs` crate, built
//! with the `spark` feature): the connection string from the environment (never in a message: a
//! token in it is masked), the same checks as PostgreSQL's before any aggregate is computed, and
//! the aggregates turned into exact cells by the code both engines share ([`super::answer`]).
//!
//! Every statement is Spark SQL with named parameters (`:key`, `:values0`, ...) sent as literals
//! beside the text, never spliced into it, so `safestat sql` prints what is sent and the ledger's
//! hashes are of statements without secrets. Spark has no transaction: each statement reads the
//! relation as it is then, so the relation must not change during a release (pin a table
//! version in a `query` where the format has them). Each statement runs within the input's
//! `timeout_seconds`, measured by the client, which interrupts the session's work when it ends.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int8Type, Int16Type, Int32Type, Int64Type};
use spark_connect_rs::client::ChannelBuilder;
use spark_connect_rs::errors::SparkError;
use spark_connect_rs::plan::LogicalPlanBuilder;
use spark_connect_rs::spark::expression::Literal;
use spark_connect_rs::spark::expression::literal::{Array as ArrayLiteral, LiteralType};
use spark_connect_rs::{SparkSession, SparkSessionBuilder, spark};

use super::super::error::InputError;
use super::super::request::{Count, InputResult, SqlRead};
use super::answer::{
    Column, Failing, Field, Mapping, RunTable, check_columns, connection_string, count_tables,
    input_result, map_undeclared, read_totals,
};
use super::statements::{Param, spark_version_statement};
use super::{Asked, Dialect, InputStatements};
use crate::hash::sha256_hex;
use crate::policy::Plan;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads Spark input `input` of `plan` for `counts`: connect, check the relation's columns and
/// values, read its totals, then count each table; only aggregates come back.
pub(super) fn read_spark(
    plan: &Plan,
    input: usize,
    counts: &[Count],
    asked: Asked,
) -> Result<InputResult, InputError> {
    let mut failing = Failing::new(plan, input);
    let url = connection_string(plan, input, &mut failing, "sc://spark.example:15002")?;
    // The client crate panics on a few answers it does not expect (no Arrow batch at all): a
    // panic is this input's failure, never the process's.
    let read = std::panic::catch_unwind(AssertUnwindSafe(|| {
        read_from(plan, (input, asked), counts, &url, &failing)
    }));
    read.unwrap_or_else(|_| {
        Err(failing.fail(
            "the Spark Connect client failed on an answer it did not expect; nothing was charged"
                .to_string(),
        ))
    })
}

fn read_from(
    plan: &Plan,
    (input, asked): (usize, Asked),
    counts: &[Count],
    url: &str,
    failing: &Failing,
) -> Result<InputResult, InputError> {
    let sql = plan.inputs[input].sql.as_ref().expect("an SQL input");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failing.fail(format!("cannot start the network runtime: {e}")))?;
    let session = connect(&runtime, url, failing, &sql.url_env)?;
    let mut read = Session {
        runtime,
        session,
        sent: Vec::new(),
        failing,
        timeout: Duration::from_secs(sql.timeout_seconds),
    };
    let statements = InputStatements::new(plan, input, counts, asked);
    debug_assert_eq!(statements.dialect, Dialect::Spark);
    let version = read.run(&spark_version_statement(), HashMap::new())?;
    let engine = match fields(&version).map_err(|m| failing.fail(m))?.as_slice() {
        [row] => match row.as_slice() {
            [Field::Text(v)] => Some(format!("Apache Spark {v}")),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| failing.fail("`SELECT version()` did not answer one text".into()))?;
    let mappings = read.checked_mappings(plan, &statements)?;
    let answer = read.answer(&statements.totals, HashMap::new())?;
    let totals = read_totals(plan, &statements, &answer, failing)?;
    let counted = count_tables(&mut read, plan, counts, &statements, &mappings, failing)?;
    // Without a snapshot, a relation that changed during the read (or a query that does not
    // return the same rows each time) is caught by its fingerprint, read again at the end.
    let answer = read.answer(&statements.totals, HashMap::new())?;
    let again = read_totals(plan, &statements, &answer, failing)?;
    if (again.rows, &again.digest) != (totals.rows, &totals.digest) {
        return Err(failing.cannot(format!(
            "the relation changed during the read ({} rows at the start, {} at the end, or the same count of other rows); Spark has no snapshot, so the relation must not change during a release, and a `query` must return the same rows each time (no LIMIT without ORDER BY, no rand()): pin a table version or a partition that is no longer written; nothing was charged",
            totals.rows, again.rows
        )));
    }
    let read = SqlRead {
        engine,
        relation: sql.relation.describe(),
        snapshot: "none: Spark has no transaction; each statement read the relation as it was then"
            .to_string(),
        statements: read.sent,
    };
    Ok(input_result(Dialect::Spark, &totals, counted, read))
}

/// Opens a Spark Connect session at `url` (`sc://host:port/;option=value...`) within
/// [`CONNECT_TIMEOUT`].
fn connect(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    failing: &Failing,
    url_env: &str,
) -> Result<SparkSession, InputError> {
    // Checked first: the client crate panics on a string it cannot read, on `use_ssl=true` (its
    // TLS is not built in) and on a `session_id` that is not a UUID.
    let not_a_string = |m: String| {
        failing.fail(format!(
            "`{url_env}` is not a Spark Connect connection string: {m}"
        ))
    };
    for option in url.split(';').skip(1) {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        match name.to_ascii_lowercase().as_str() {
            "use_ssl" if value.eq_ignore_ascii_case("true") => {
                return Err(not_a_string(
                    "`use_ssl=true` asks for TLS, which this build's Spark Connect client does not have; reach the server through a tunnel or a private network".to_string(),
                ));
            }
            "session_id" => {
                return Err(not_a_string(
                    "`session_id` is safestat's to choose (a fresh session per read)".to_string(),
                ));
            }
            _ => {}
        }
    }
    ChannelBuilder::create(url)
        .map_err(|e| not_a_string(format!("{e} (the form is `sc://host:port/;option=value`)")))?;
    // Byte-order comparison, whatever the server's default collation (Spark 4); errors instead
    // of silent wrapping or NULLs (ANSI mode); `GROUP BY 1` meaning the first column.
    let builder = SparkSessionBuilder::remote(url)
        .app_name("safestat")
        .config("spark.sql.session.collation.default", "UTF8_BINARY")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.groupByOrdinal", "true");
    match runtime.block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, builder.build()).await }) {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(spark_failure(failing, &e)),
        Err(_) => Err(failing.fail_as(
            format!(
                "the Spark Connect server did not answer within {} seconds (nothing was charged)",
                CONNECT_TIMEOUT.as_secs()
            ),
            true,
        )),
    }
}

/// One input's session: the statements' hashes sent so far, and how a failure is reported.
struct Session<'f> {
    runtime: tokio::runtime::Runtime,
    session: SparkSession,
    sent: Vec<String>,
    failing: &'f Failing,
    timeout: Duration,
}

impl Session<'_> {
    /// Runs `statement` with the named parameters `args`; its answer as one Arrow batch.
    fn run(
        &mut self,
        statement: &str,
        args: HashMap<String, Literal>,
    ) -> Result<RecordBatch, InputError> {
        let relation = spark::Relation {
            common: None,
            rel_type: Some(spark::relation::RelType::Sql(spark::Sql {
                query: statement.to_string(),
                args,
                pos_args: Vec::new(),
            })),
        };
        let plan = LogicalPlanBuilder::new(relation).plan_root();
        let mut client = self.session.clone().client();
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, client.to_arrow(plan)).await });
        let batch = match answer {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => return Err(spark_failure(self.failing, &e)),
            Err(_) => {
                // Stop the server's work on it; the failure stands whatever this answers.
                let session = self.session.clone();
                let _ = self.runtime.block_on(async {
                    tokio::time::timeout(CONNECT_TIMEOUT, session.interrupt_all()).await
                });
                return Err(self.failing.fail(format!(
                    "a statement ran longer than `timeout_seconds` ({} s) and was interrupted; nothing was charged",
                    self.timeout.as_secs()
                )));
            }
        };
        self.sent.push(sha256_hex(statement.as_bytes()));
        Ok(batch)
    }

    /// The relation's columns checked (`LIMIT 0` reads no row), then each dimension's values as
    /// codes: its declared categories and the undeclared values the domain statement finds,
    /// mapped as the CSV path maps them (or all refused in one message).
    fn checked_mappings(
        &mut self,
        plan: &Plan,
        statements: &InputStatements,
    ) -> Result<Vec<Mapping>, InputError> {
        // Columns and types: LIMIT 0 reads no row.
        let probe = self.run(&statements.probe, HashMap::new())?;
        let columns: Vec<Column> = probe
            .schema()
            .fields()
            .iter()
            .map(|f| Column {
                name: f.name().clone(),
                integer: f.data_type().is_integer(),
                type_name: type_name(f.data_type()),
            })
            .collect();
        check_columns(
            plan,
            statements,
            &columns,
            "tinyint, smallint, int or bigint",
        )
        .map_err(|m| self.failing.cannot(m))?;
        let mut mappings = Mapping::declared(plan, statements);
        if let Some(domain) = &statements.domain {
            let args = mappings
                .iter()
                .enumerate()
                .map(|(i, m)| (name(Param::Declared(i)), strings(&m.values)))
                .collect();
            let found = self.answer(domain, args)?;
            map_undeclared(plan, statements, &mut mappings, &found)
                .map_err(|m| self.failing.cannot(m))?;
        }
        Ok(mappings)
    }

    /// [`Session::run`]'s answer as rows of fields.
    fn answer(
        &mut self,
        statement: &str,
        args: HashMap<String, Literal>,
    ) -> Result<Vec<Vec<Field>>, InputError> {
        let batch = self.run(statement, args)?;
        fields(&batch).map_err(|m| self.failing.fail(m))
    }
}

impl RunTable for Session<'_> {
    fn run_table(
        &mut self,
        statement: &str,
        key: &[u8],
        mappings: &[&Mapping],
    ) -> Result<Vec<Vec<Field>>, InputError> {
        let mut args =
            HashMap::from([(name(Param::Key), literal(LiteralType::Binary(key.to_vec())))]);
        for (j, m) in mappings.iter().enumerate() {
            args.insert(name(Param::Values(j)), strings(&m.values));
            args.insert(name(Param::Codes(j)), integers(&m.codes));
            args.insert(
                name(Param::Null(j)),
                match m.null_code {
                    Some(code) => literal(LiteralType::Integer(code)),
                    None => literal(LiteralType::Null(integer_type())),
                },
            );
        }
        self.answer(statement, args)
    }
}

/// A parameter's name as Spark's `args` map keys it (the statement's `:name` without its colon).
fn name(p: Param) -> String {
    Dialect::Spark.param(p).trim_start_matches(':').to_string()
}

fn literal(value: LiteralType) -> Literal {
    Literal {
        literal_type: Some(value),
    }
}

fn integer_type() -> spark::DataType {
    spark::DataType {
        kind: Some(spark::data_type::Kind::Integer(spark::data_type::Integer {
            type_variation_reference: 0,
        })),
    }
}

/// An `array<string>` literal.
fn strings(values: &[String]) -> Literal {
    literal(LiteralType::Array(ArrayLiteral {
        element_type: Some(spark::DataType {
            kind: Some(spark::data_type::Kind::String(spark::data_type::String {
                type_variation_reference: 0,
            })),
        }),
        elements: values
            .iter()
            .map(|v| literal(LiteralType::String(v.clone())))
            .collect(),
    }))
}

/// An `array<int>` literal.
fn integers(values: &[i32]) -> Literal {
    literal(LiteralType::Array(ArrayLiteral {
        element_type: Some(integer_type()),
        elements: values
            .iter()
            .map(|&v| literal(LiteralType::Integer(v)))
            .collect(),
    }))
}

/// An answer's rows as fields (the statements return integers and strings).
fn fields(batch: &RecordBatch) -> Result<Vec<Vec<Field>>, String> {
    let mut rows = vec![Vec::with_capacity(batch.num_columns()); batch.num_rows()];
    for column in batch.columns() {
        for (i, row) in rows.iter_mut().enumerate() {
            row.push(if column.is_null(i) {
                Field::Null
            } else {
                match column.data_type() {
                    DataType::Int8 => Field::Int(column.as_primitive::<Int8Type>().value(i).into()),
                    DataType::Int16 => {
                        Field::Int(column.as_primitive::<Int16Type>().value(i).into())
                    }
                    DataType::Int32 => {
                        Field::Int(column.as_primitive::<Int32Type>().value(i).into())
                    }
                    DataType::Int64 => Field::Int(column.as_primitive::<Int64Type>().value(i)),
                    DataType::Utf8 => Field::Text(column.as_string::<i32>().value(i).to_string()),
                    DataType::LargeUtf8 => {
                        Field::Text(column.as_string::<i64>().value(i).to_string())
                    }
                    DataType::Null => Field::Null,
                    other => return Err(format!("the server answered a column of type {other}")),
                }
            });
        }
    }
    Ok(rows)
}

/// A column type in Spark SQL's words, for messages.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        other => other.to_string(),
    }
}

/// A Spark error as a failure: temporary when the server could not be reached or went away (a
/// refused connection, gRPC's UNAVAILABLE, a connection cut mid-answer, a session the server no
/// longer knows after a restart), else the input's or the policy's fault.
fn spark_failure(failing: &Failing, e: &SparkError) -> InputError {
    let text = e.to_string();
    // The client crate reports a cut connection (gRPC INTERNAL or UNKNOWN from the transport)
    // as it reports Spark's own errors; the transport's words tell them apart.
    let cut = [
        "transport error",
        "h2 protocol error",
        "broken pipe",
        "connection reset",
        "error reading a body from connection",
        "stream closed",
        "SESSION_NOT_FOUND",
        "SESSION_CLOSED",
    ]
    .iter()
    .any(|words| text.contains(words));
    let temporary = cut
        || matches!(
            e,
            SparkError::InvalidConnectionUrl(_)
                | SparkError::Unavailable(_)
                | SparkError::IoError(..)
                | SparkError::Aborted(_)
        );
    let mut message = match e {
        // The server's words, without the plan it appends after a blank line.
        SparkError::AnalysisException(m) => format!(
            "the server said: {}",
            m.split(";\n'").next().unwrap_or(m).trim_end()
        ),
        SparkError::InvalidConnectionUrl(m) => {
            format!("cannot reach the Spark Connect server ({m})")
        }
        other => format!("the server said: {other}"),
    };
    if temporary {
        message.push_str(" (the connection to the server failed or was lost; nothing was charged)");
    }
    failing.fail_as(message, temporary)
}
