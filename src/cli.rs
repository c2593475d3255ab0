//! The command line as the user typed it (clap). Nothing here is validated beyond its syntax;
//! the commands turn it into a [`crate::plan::Plan`] before using it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Publish privacy-safe statistics: differential privacy (opendp) and small-cell suppression,
/// with a manifest an auditor can check.
#[derive(Debug, Parser)]
#[command(name = "safestat", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a policy and every input it names (headers, types, categories); spends nothing.
    Check {
        /// The release policy (TOML).
        policy: PathBuf,
    },
    /// Show each table's mechanism, sensitivity, noise scale, privacy cost and margin of error;
    /// reads no data.
    Plan {
        /// The release policy (TOML).
        policy: PathBuf,
    },
    /// Compute, protect and write the release: one CSV per table and a manifest.
    Release {
        /// The release policy (TOML).
        policy: PathBuf,
        /// Output folder; must not exist yet [default: releases/<release id>]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write each table as JSON (`<table>.json`).
        #[arg(long)]
        json: bool,
    },
}
