//! The command line as the user typed it (clap). Nothing here is validated beyond its syntax;
//! the commands turn it into a [`crate::policy::Plan`] before using it.

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
        #[command(flatten)]
        read: ReadArgs,
        /// Print one JSON object on stdout for a scheduler (status, exit code, figures); the
        /// report for people goes to stderr.
        #[arg(long)]
        status_json: bool,
    },
    /// Show each table's mechanism, sensitivity, noise scale, privacy cost and margin of error;
    /// reads no data.
    Plan {
        /// The release policy (TOML).
        policy: PathBuf,
        /// The budget ledger to report against [default: as for `release`]
        #[arg(long, env = "SAFESTAT_LEDGER")]
        ledger: Option<PathBuf>,
        /// A margin of error to plan for: `N` for every table, `TABLE=N` for one (repeatable);
        /// shows the cost each table needs for it and whether the release then fits the budget.
        #[arg(long = "target-moe", value_name = "[TABLE=]N")]
        target_moe: Vec<String>,
        /// Show zCDP costs also as (epsilon, delta) at this delta [default: the budget's delta]
        #[arg(long)]
        delta: Option<f64>,
        /// Print one JSON object on stdout for a scheduler (status, exit code, figures); the
        /// report for people goes to stderr.
        #[arg(long)]
        status_json: bool,
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
        /// The budget ledger [default: the policy's `ledger`, else ledger/<dataset>.jsonl]
        #[arg(long, env = "SAFESTAT_LEDGER")]
        ledger: Option<PathBuf>,
        /// Publish a new version of an existing release id: fresh noise and a fresh charge.
        #[arg(long)]
        new_version: bool,
        /// Give up (exit 5, nothing charged) when another release holds the ledger's lock this
        /// long [default: wait as long as it takes]
        #[arg(long, value_name = "SECONDS")]
        lock_timeout: Option<f64>,
        #[command(flatten)]
        read: ReadArgs,
        /// Print one JSON object on stdout for a scheduler (status, exit code, figures); the
        /// report for people goes to stderr.
        #[arg(long)]
        status_json: bool,
    },
    /// Print the SQL statements a release would send to each SQL input's server, for review by
    /// the database's owners; connects to nothing.
    Sql {
        /// The release policy (TOML).
        policy: PathBuf,
        /// The budget ledger the release would use, which decides whether the totals carry the
        /// legacy fingerprint too [default: the policy's `ledger`, else ledger/<dataset>.jsonl]
        #[arg(long, env = "SAFESTAT_LEDGER")]
        ledger: Option<PathBuf>,
    },
    /// Make the workbook (`<release>.xlsx`) and `report.html` again from a published release
    /// folder (its manifest and table files; never the raw data).
    Report {
        /// The release folder.
        release_dir: PathBuf,
        /// Write them here instead of into the release folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Take the labels, titles, units, texts and language from this policy of the same
        /// release: with --out, written there; without, a presentation revision of the folder
        /// itself (workbook, report and manifest rewritten, tables untouched, recorded in the
        /// policy's ledger; nothing drawn or charged).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Show spent and remaining budget per dataset.
    Budget {
        /// A ledger file [default: the ledgers of --policy, else of every policy found]
        #[arg(long, env = "SAFESTAT_LEDGER")]
        ledger: Option<PathBuf>,
        /// Use this policy's ledger.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Print one JSON object on stdout for a scheduler (status, exit code, figures); the
        /// report for people goes to stderr.
        #[arg(long)]
        status_json: bool,
    },
    /// Verify the ledger's hash chain and totals, and release folders against it; exit 4 on any
    /// problem.
    Audit {
        /// A ledger file [default: the ledgers of --policy, else of every policy found]
        #[arg(long, env = "SAFESTAT_LEDGER")]
        ledger: Option<PathBuf>,
        /// Use this policy's ledger (and the default ledger location beside it).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Release folders to check against the ledger.
        release_dirs: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check published release folders with nothing but the folders (no ledger, no data): the
    /// signature, every file's hash, the workbook and report, the tables' sums, the exact
    /// tables' suppression, and the chain of budget statements; exit 4 on any problem.
    Verify {
        /// Release folders (several of one dataset: their budget statements must form one chain).
        #[arg(required = true)]
        release_dirs: Vec<PathBuf>,
        /// The publisher's public key (`FILE.pub` from `safestat key new`): every folder must be
        /// signed by it.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Signing keys for release folders.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
}

impl Command {
    /// Whether the command was asked for `--status-json`.
    pub fn status_json(&self) -> bool {
        match self {
            Command::Check { status_json, .. }
            | Command::Plan { status_json, .. }
            | Command::Release { status_json, .. }
            | Command::Budget { status_json, .. } => *status_json,
            _ => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Write a new signing key pair: the secret key to FILE (readable by its owner only) and the
    /// public key to FILE.pub. Never overwrites.
    New {
        /// The secret key's file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// How inputs are read.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Memory the privacy units' state may take before the input is spilled to temporary files
    /// by unit, in MiB [default: half the machine's memory]
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<u64>,
    /// No progress display (it only ever appears on a terminal, after a second of reading).
    #[arg(long, short)]
    pub quiet: bool,
}

impl ReadArgs {
    pub fn options(&self) -> crate::input::ReadOptions {
        let mut options = crate::input::ReadOptions::default();
        if let Some(mib) = self.memory_limit {
            options.memory_limit = mib.saturating_mul(1 << 20);
        }
        options.progress = !self.quiet;
        options
    }
}
