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
use crate::policy::{Plan, Statistic};

#[cfg(feature = "postgres")]
mod client;
mod statements;
#[cfg(feature = "postgres")]
mod tls;

use statements::setup_statements;
pub use statements::{InputStatements, MAX_UNDECLARED};

/// One statement as `safestat sql` shows it: what it is for, its text and its parameters.
#[derive(Debug, Clone)]
pub struct Sent {
    pub purpose: String,
    pub sql: String,
    pub parameters: Vec<String>,
}

/// Every statement a read of SQL input `input` sends, in order, exactly as [`read_sql`] sends
/// it (the ledger records their SHA-256).
pub fn script(plan: &Plan, input: usize, counts: &[Count]) -> Vec<Sent> {
    let sql = plan.inputs[input].sql.as_ref().expect("an SQL input");
    let st = InputStatements::new(plan, input, counts);
    let [timeout, version, snapshot] = setup_statements(sql.timeout_seconds);
    let plain = |purpose: &str, sql: String| Sent {
        purpose: purpose.to_string(),
        sql,
        parameters: Vec::new(),
    };
    let mut out = vec![
        plain("the time limit of each statement", timeout),
        plain(
            "the engine and its version (recorded in the ledger)",
            version,
        ),
        plain(
            "the snapshot every statement sees (recorded in the ledger)",
            snapshot,
        ),
        plain(
            "the relation's columns and types (prepared, never executed: reads no row)",
            st.probe.clone(),
        ),
    ];
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
                .map(|(i, &d)| format!("${} = the declared categories of `{}` (text[])", i + 1, dim_name(d)))
                .collect(),
        });
    }
    out.push(plain(
        "rows, distinct units, empty units, NULL summed values, and a fingerprint of the content (recorded in the ledger, private)",
        st.totals.clone(),
    ));
    for ts in &st.tables {
        let table = &counts[ts.table];
        let parameters = table_parameters(plan, table, ts.shared_key);
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
    out
}

/// What a table's statement is sent with: its key (an empty one for an exact sum, the input's
/// shared key for rows, the table's own for cells), then per dimension its values, their codes
/// and the code of a NULL.
fn table_parameters(plan: &Plan, table: &Count, shared_key: bool) -> Vec<String> {
    let whole = matches!(table.statistic, Statistic::Total { .. });
    let mut parameters = vec![if whole {
        "$1 = an empty key (bytea): an exact table's sum keeps every row, so nothing is drawn"
            .to_string()
    } else if shared_key {
        "$1 = the input's secret key for row priorities: 32 fresh random bytes per release (bytea), never stored".to_string()
    } else {
        "$1 = this table's secret key for cell priorities: 32 fresh random bytes per release (bytea), never stored".to_string()
    }];
    for (j, &d) in table.dims.iter().enumerate() {
        parameters.push(format!(
            "${} = the values of `{}`: its declared categories, then the undeclared values the check found (text[])",
            3 * j + 2,
            plan.dimensions[d].name
        ));
        parameters.push(format!(
            "${} = their category codes, 0-based in declared order (int4[])",
            3 * j + 3
        ));
        parameters.push(format!(
            "${} = the code of a NULL: the catch-all's, else NULL (int4)",
            3 * j + 4
        ));
    }
    parameters
}

/// Reads SQL input `input` of `plan` for `counts`.
#[cfg(feature = "postgres")]
pub fn read_sql(plan: &Plan, input: usize, counts: &[Count]) -> Result<InputResult, InputError> {
    client::read_sql(plan, input, counts)
}

/// Refuses SQL input `input`: this build has no PostgreSQL client.
#[cfg(not(feature = "postgres"))]
pub fn read_sql(plan: &Plan, input: usize, _counts: &[Count]) -> Result<InputResult, InputError> {
    Err(not_built(plan, input))
}

/// In a build without the `postgres` feature, the refusal of the policy's first SQL input: asked
/// before any input is read (a CSV input listed first is not read in vain) and by `plan`.
pub fn refused_by_this_build(plan: &Plan) -> Option<InputError> {
    if cfg!(feature = "postgres") {
        return None;
    }
    let input = plan.inputs.iter().position(|spec| spec.sql.is_some())?;
    Some(not_built(plan, input))
}

/// The refusal of an SQL input by a build without the `postgres` feature (a usage error: the
/// input is not at fault, nor is the server; retrying cannot help).
fn not_built(plan: &Plan, input: usize) -> InputError {
    let spec = &plan.inputs[input];
    InputError::Sql {
        input: spec.name.clone(),
        location: spec.location(),
        message: "this safestat was built without the PostgreSQL client; build it with \
                  `cargo build --release --features postgres` (nothing was read or charged)"
            .to_string(),
        temporary: false,
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests;
