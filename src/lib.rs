//! safestat: a command-line publisher of privacy-safe statistics.
//!
//! The folders follow the data flow (ARCHITECTURE.md): [`policy`] (the file, validated into a
//! plan; reads no data) -> [`input`] (a source becomes exact cells, bounded as the plan says) ->
//! [`protect`] (opendp's noise, then post-processing of noisy values) -> [`output`] (tables and
//! the manifest, written atomically). [`ledger`] keeps each dataset's budget and owns the release
//! transaction; [`privacy`] is the field's vocabulary at the bottom; [`commands`] has one file per
//! command. The synthetic sample and benchmark data are made by the `safestat-synth` binary.

mod cli;
mod commands;
mod console;
mod error;
mod hash;
mod input;
mod ledger;
mod output;
mod policy;
pub mod privacy;
pub mod protect;
mod report;
mod sign;

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
    if cli.command.status_json() {
        console::status_json();
    }
    let result = commands::dispatch(cli);
    console::finish(&result);
    Ok(result)
}
