//! One file per command; this module only dispatches the parsed command line to them.
//!
//! `check` and `plan` spend nothing; `release` is the one command that charges the ledger and
//! draws noise; `budget` and `audit` only read. Commands never print an exact cell.

mod audit;
mod budget;
mod check;
mod describe;
mod plan;
mod release;
mod report;
mod sql;

use crate::cli::{Cli, Command};
use crate::error::Error;

pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Check { policy, read } => check::run(&policy, &read.options()),
        Command::Plan {
            policy,
            ledger,
            target_moe,
            delta,
        } => plan::run(plan::PlanArgs {
            policy,
            ledger,
            target_moe,
            delta,
        }),
        Command::Release {
            policy,
            out,
            json,
            ledger,
            new_version,
            read,
        } => release::run(release::ReleaseArgs {
            policy,
            out,
            json,
            ledger,
            new_version,
            read: read.options(),
        }),
        Command::Sql { policy } => sql::run(&policy),
        Command::Report {
            release_dir,
            out,
            policy,
        } => report::run(&release_dir, out, policy),
        Command::Budget { ledger, json } => budget::run(ledger, json),
        Command::Audit {
            ledger,
            release_dirs,
            json,
        } => audit::run(ledger, &release_dirs, json),
    }
}
