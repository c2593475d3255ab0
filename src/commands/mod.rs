//! One file per command; this module only dispatches the parsed command line to them.
//!
//! `check` and `plan` spend nothing; `release` is the one command that charges the ledger and
//! draws noise; `budget` and `audit` only read. Commands never print an exact cell.

mod audit;
mod budget;
mod check;
mod describe;
mod key;
mod plan;
mod release;
mod report;
mod sql;
mod verify;

use crate::cli::{Cli, Command, KeyAction};
use crate::error::Error;

pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Check { policy, read, .. } => check::run(&policy, &read.options()),
        Command::Plan {
            policy,
            ledger,
            target_moe,
            delta,
            ..
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
            lock_timeout,
            read,
            ..
        } => release::run(release::ReleaseArgs {
            policy,
            out,
            json,
            ledger,
            new_version,
            lock_timeout,
            read: read.options(),
        }),
        Command::Sql { policy, ledger } => sql::run(&policy, ledger.as_deref()),
        Command::Report {
            release_dir,
            out,
            policy,
        } => report::run(&release_dir, out, policy),
        Command::Budget {
            ledger,
            policy,
            json,
            ..
        } => budget::run(ledger, policy, json),
        Command::Audit {
            ledger,
            policy,
            release_dirs,
            json,
        } => audit::run(ledger, policy, &release_dirs, json),
        Command::Verify {
            release_dirs,
            public_key,
            json,
        } => verify::run(&release_dirs, public_key.as_deref(), json),
        Command::Key {
            action: KeyAction::New { out },
        } => key::new(&out),
    }
}
