//! safestat: a command-line publisher of privacy-safe statistics.
//!
//! The data flow, one module per step: [`policy`] (the file) -> [`plan`] (validated) ->
//! [`input`] (stream the data) -> [`bounding`] (bound each unit's contributions) ->
//! [`mechanism`] (opendp noise and costs) -> [`postprocess`] (clamp, suppress on noisy values) ->
//! [`output`] (tables and manifest, written atomically). [`ledger`] keeps each dataset's budget.
//! [`release`] is the one command that charges the ledger and draws noise; [`audit`] holds
//! `budget` and `audit`; [`commands`] dispatches and holds `check` and `plan`. [`synth`] makes the
//! synthetic sample and benchmark data.

pub mod audit;
pub mod bounding;
pub mod cli;
pub mod commands;
pub mod error;
pub mod hash;
pub mod input;
pub mod ledger;
pub mod mechanism;
pub mod output;
pub mod plan;
pub mod policy;
pub mod postprocess;
pub mod records;
pub mod release;
pub mod synth;

use std::ffi::OsString;

use clap::Parser;

pub use error::Error;

/// Parses `args` and runs the command. Usage errors (and `--help`) are clap's: they are returned
/// as `Err(clap::Error)` in the outer result so the caller can print them with clap's style.
pub fn run<I, T>(args: I) -> Result<Result<(), Error>, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = cli::Cli::try_parse_from(args)?;
    Ok(commands::dispatch(cli))
}
