//! SQL inputs: the records stay in PostgreSQL (or an engine that speaks its protocol); bounding
//! and counting run there, and only per-cell aggregates come back.
//!
//! The SQL text is [`statements`]'s and the script `safestat sql` prints is [`script`]; the
//! connection (the `postgres` crate; the connection string comes from the environment variable
//! the policy names and never appears in a message), the one read-only REPEATABLE READ
//! transaction every statement of an input runs in, the checks before any aggregate is computed
//! and the aggregates turned into exact cells are `client.rs`'s, built only with the `postgres`
//! feature (the client and its async runtime took 87 of a cold build's 1162 CPU-seconds).
//! Without it the statements can still be shown, but a policy with an SQL input is refused
//! before any input is read or anything charged ([`refused_by_this_build`]).

use super::error::InputError;
use super::request::{Count, InputResult};
use crate::policy::{Engine, Plan, Statistic};

#[cfg(any(feature = "postgres", feature = "spark"))]
mod answer;
#[cfg(feature = "postgres")]
mod client;
#[cfg(feature = "spark")]
mod spark;
mod statements;
#[cfg(feature = "postgres")]
mod tls;

pub use statements::{Asked, Dialect, InputStatements, MAX_UNDECLARED};
use statements::{Param, setup_statements, spark_version_statement};

/// One statement as `safestat sql` shows it: what it is for, its text and its parameters.
#[derive(Debug, Clone)]
pub struct Sent {
    pub purpose: String,
    pub sql: String,
    pub parameters: Vec<String>,
}

/// Every statement a read of SQL input `input` sends, in order, exactly as [`read_sql`] sends
/// it for a release with the same `legacy` (the ledger records their SHA-256).
pub fn script(plan: &Plan, input: usize, counts: &[Count], legacy: bool) -> Vec<Sent> {
    let sql = plan.inputs[input].sql.as_ref().expect("an SQL input");
    let asked = Asked {
        legacy,
        units: false,
    };
    let st = InputStatements::new(plan, input, counts, asked);
    let d = st.dialect;
    let plain = |purpose: &str, sql: String| Sent {
        purpose: purpose.to_string(),
        sql,
        parameters: Vec::new(),
    };
    let version_purpose = "the engine and its version (recorded in the ledger)";
    let mut out = match d {
        Dialect::Postgres => {
            let [timeout, version, snapshot] = setup_statements(sql.timeout_seconds);
            vec![
                plain("the time limit of each statement", timeout),
                plain(version_purpose, version),
                plain(
                    "the snapshot every statement sees (recorded in the ledger)",
                    snapshot,
                ),
                plain(
                    "the relation's columns and types (prepared, never executed: reads no row)",
                    st.probe.clone(),
                ),
            ]
        }
        Dialect::Spark => vec![
            plain(version_purpose, spark_version_statement()),
            plain(
                "the relation's columns and types (`LIMIT 0`: reads no row)",
                st.probe.clone(),
            ),
        ],
    };
    let dim_name = |d: usize| plan.dimensions[d].name.as_str();
    if let Some(domain) = &st.domain {
        out.push(Sent {
            purpose: format!(
                "values of the dimension columns that are NULL or not declared categories (at most {}), checked before anything is counted",
                MAX_UNDECLARED + 1
            ),
            sql: domain.clone(),
            parameters: st
                .dims
                .iter()
                .enumerate()
                .map(|(i, &dim)| format!("{} = the declared categories of `{}` ({})", d.param(Param::Declared(i)), dim_name(dim), type_name(d, "text[]")))
                .collect(),
        });
    }
    out.push(plain(
        "rows, empty units, NULL summed values, and a fingerprint of the content (recorded in the ledger, private; `check` also counts the distinct units)",
        st.totals.clone(),
    ));
    for ts in &st.tables {
        let table = &counts[ts.table];
        let parameters = table_parameters(plan, d, table, ts.shared_key);
        out.push(Sent {
            purpose: format!(
                "table `{}`: bounded per privacy unit, then counted per cell (only these aggregates come back)",
                table.name
            ),
            sql: ts.sql.clone(),
            parameters: parameters.clone(),
        });
        if let Some(spanning) = &ts.spanning {
            out.push(Sent {
                purpose: format!(
                    "table `{}`: each privacy unit with rows in several cells, numbered (not named), with its sum in each (for the rules on margins and the respondents' check; private)",
                    table.name
                ),
                sql: spanning.clone(),
                parameters,
            });
        }
    }
    if d == Dialect::Spark {
        out.push(plain(
            "rows and the fingerprint again: a relation that changed during the read (Spark has no snapshot) is refused",
            st.totals.clone(),
        ));
    }
    out
}

/// A parameter's type as `safestat sql` names it: PostgreSQL's, or Spark SQL's.
fn type_name(d: Dialect, postgres: &'static str) -> &'static str {
    match (d, postgres) {
        (Dialect::Postgres, t) => t,
        (Dialect::Spark, "bytea") => "binary",
        (Dialect::Spark, "text[]") => "array<string>",
        (Dialect::Spark, "int4[]") => "array<int>",
        (Dialect::Spark, _) => "int",
    }
}

/// What a table's statement is sent with: its key (an empty one for an exact sum, the input's
/// shared key for rows, the table's own for cells), then per dimension its values, their codes
/// and the code of a NULL.
fn table_parameters(plan: &Plan, d: Dialect, table: &Count, shared_key: bool) -> Vec<String> {
    let whole = matches!(table.statistic, Statistic::Total { .. });
    let (key, bytes) = (d.param(Param::Key), type_name(d, "bytea"));
    let mut parameters = vec![if whole {
        format!(
            "{key} = an empty key ({bytes}): an exact table's sum keeps every row, so nothing is drawn"
        )
    } else if shared_key {
        format!(
            "{key} = the input's secret key for row priorities: 32 fresh random bytes per release ({bytes}), never stored"
        )
    } else {
        format!(
            "{key} = this table's secret key for cell priorities: 32 fresh random bytes per release ({bytes}), never stored"
        )
    }];
    for (j, &dim) in table.dims.iter().enumerate() {
        parameters.push(format!(
            "{} = the values of `{}`: its declared categories, then the undeclared values the check found ({})",
            d.param(Param::Values(j)),
            plan.dimensions[dim].name,
            type_name(d, "text[]")
        ));
        parameters.push(format!(
            "{} = their category codes, 0-based in declared order ({})",
            d.param(Param::Codes(j)),
            type_name(d, "int4[]")
        ));
        parameters.push(format!(
            "{} = the code of a NULL: the catch-all's, else NULL ({})",
            d.param(Param::Null(j)),
            type_name(d, "int4")
        ));
    }
    parameters
}

/// Reads SQL input `input` of `plan` for `counts`, from its engine (refused by a build without
/// that engine's client), its totals with what is `asked`.
pub fn read_sql(
    plan: &Plan,
    input: usize,
    counts: &[Count],
    asked: Asked,
) -> Result<InputResult, InputError> {
    let engine = plan.inputs[input]
        .sql
        .as_ref()
        .expect("an SQL input")
        .engine;
    match engine {
        #[cfg(feature = "postgres")]
        Engine::Postgres => client::read_sql(plan, input, counts, asked),
        #[cfg(feature = "spark")]
        Engine::Spark => spark::read_spark(plan, input, counts, asked),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = (counts, asked);
            Err(not_built(plan, input, engine))
        }
    }
}

/// Whether this build has `engine`'s client (the `postgres` and `spark` features).
fn built_with(engine: Engine) -> bool {
    match engine {
        Engine::Postgres => cfg!(feature = "postgres"),
        Engine::Spark => cfg!(feature = "spark"),
    }
}

/// The refusal of the policy's first database input whose engine this build has no client for:
/// asked before any input is read (a CSV input listed first is not read in vain) and by `plan`.
pub fn refused_by_this_build(plan: &Plan) -> Option<InputError> {
    plan.inputs.iter().enumerate().find_map(|(input, spec)| {
        let engine = spec.sql.as_ref()?.engine;
        (!built_with(engine)).then(|| not_built(plan, input, engine))
    })
}

/// The refusal of a database input by a build without its engine's client (a usage error: the
/// input is not at fault, nor is the server; retrying cannot help).
fn not_built(plan: &Plan, input: usize, engine: Engine) -> InputError {
    let spec = &plan.inputs[input];
    let (client, feature) = match engine {
        Engine::Postgres => ("the PostgreSQL client", "postgres"),
        Engine::Spark => ("the Spark Connect client", "spark"),
    };
    InputError::Sql {
        input: spec.name.clone(),
        location: spec.location(),
        message: format!(
            "this safestat was built without {client}; build it with `cargo build --release --features {feature}` (nothing was read or charged)"
        ),
        temporary: false,
    }
}

#[cfg(all(test, any(feature = "postgres", feature = "spark")))]
mod tests;
