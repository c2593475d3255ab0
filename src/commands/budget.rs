//! `safestat budget [--ledger FILE] [--json]`: spent and remaining budget per dataset.
//!
//! Read-only. Exits 6 when a ledger fails verification (its figures cannot be trusted). Also
//! owns what `audit` reports per ledger ([`BudgetReport`]) and which ledgers both read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::console::print;
use crate::error::Error;
use crate::ledger::{Ledger, LedgerError};
use crate::policy;
use crate::privacy::{Budget, short_number};

/// The ledgers to read: the one given (`--ledger`), else the one `--policy` uses, else every
/// `ledger/*.jsonl` under the current folder together with the ledgers of the policies found in
/// `policies/` and the current folder (a policy without a `ledger` line writes beside itself, in
/// `policies/ledger/`). When none exists, says where it looked.
pub(super) fn ledger_files(
    flag: Option<PathBuf>,
    policy: Option<PathBuf>,
) -> Result<Vec<PathBuf>, Error> {
    if let (Some(f), None) = (&flag, &policy) {
        let f = f.clone();
        if !f.exists() {
            return Err(Error::Usage(format!(
                "ledger `{}` does not exist",
                f.display()
            )));
        }
        return Ok(vec![f]);
    }
    if let Some(p) = policy {
        if let Some(f) = flag {
            return Err(Error::Usage(format!(
                "both --policy `{}` and a ledger (`{}`, from --ledger or SAFESTAT_LEDGER) were given; give one",
                p.display(),
                f.display()
            )));
        }
        let plan = policy::load(&p)?;
        if !plan.ledger.exists() {
            return Err(Error::Usage(format!(
                "policy `{}` uses ledger `{}`, which does not exist yet (no release of dataset `{}` so far)",
                p.display(),
                plan.ledger.display(),
                plan.dataset
            )));
        }
        return Ok(vec![plan.ledger]);
    }
    let mut files: Vec<PathBuf> = files_with_extension(Path::new("ledger"), "jsonl");
    let mut of_policies = Vec::new();
    let mut unusable = 0;
    for folder in [Path::new("policies"), Path::new(".")] {
        for path in files_with_extension(folder, "toml") {
            match policy::load(&path) {
                Ok(plan) => of_policies.push((path, plan.ledger)),
                Err(e) => {
                    unusable += 1;
                    crate::console::notes(&[format!(
                        "note: policy `{}` cannot be loaded, so its ledger was not read ({}); name it with --ledger FILE",
                        path.display(),
                        // The first problem, not only the heading above them.
                        e.to_string()
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ")
                    )]);
                }
            }
        }
    }
    for (_, ledger) in &of_policies {
        if ledger.exists() {
            files.push(ledger.clone());
        }
    }
    // One ledger reached by two spellings of its path is read once.
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    if files.is_empty() {
        let mut message = "no ledger found: looked in `ledger/*.jsonl`".to_string();
        if of_policies.is_empty() && unusable == 0 {
            message.push_str(" and found no policy in `policies/` or the current folder");
        }
        for (policy, ledger) in &of_policies {
            let _ = write!(
                message,
                "; policy `{}` uses `{}` (not written yet)",
                policy.display(),
                ledger.display()
            );
        }
        message.push_str("; give --ledger FILE (or SAFESTAT_LEDGER) or --policy POLICY");
        return Err(Error::Usage(message));
    }
    Ok(files)
}

/// The files directly in `folder` whose name ends `.<extension>`, sorted.
fn files_with_extension(folder: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == extension))
                .map(|p| p.strip_prefix(".").map(Path::to_path_buf).unwrap_or(p))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[derive(Debug, Serialize)]
pub(super) struct ReleaseLine {
    release_id: String,
    version: u32,
    line: usize,
    cost: f64,
    published: bool,
    /// Exact tables (cell suppression, not differentially private; charged nothing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exact_tables: Vec<String>,
}

/// One ledger's figures, as `budget --json` and `audit --json` print them.
#[derive(Debug, Serialize)]
pub(super) struct BudgetReport {
    pub ledger: String,
    dataset: Option<String>,
    accounting: Option<String>,
    budget: Option<Budget>,
    pub unit: Option<String>,
    pub spent: f64,
    /// For (epsilon, delta) accounting: the epsilon the spent rho amounts to at the budget's delta.
    spent_epsilon_at_delta: Option<f64>,
    /// The budget left in `unit` (for (epsilon, delta): the rho that still converts within it).
    remaining: Option<f64>,
    pub releases: Vec<ReleaseLine>,
    /// How many published releases of the dataset hold exact tables (not differentially
    /// private): the guarantee of its differentially private tables holds only relative to
    /// what those reveal.
    exact_publications: usize,
    verified: bool,
}

pub(super) fn budget_report(ledger: &Ledger) -> Result<BudgetReport, LedgerError> {
    let verified = ledger.verify().is_empty() && ledger.torn_finding().is_none();
    let releases: Vec<ReleaseLine> = ledger
        .charges()
        .map(|c| ReleaseLine {
            release_id: c.charge.release_id.clone(),
            version: c.charge.version,
            line: c.line,
            cost: c.charge.cost,
            published: ledger.publication_of(c.seq).is_some(),
            exact_tables: c.charge.exact_tables.clone(),
        })
        .collect();
    let mut report = BudgetReport {
        ledger: ledger.path.display().to_string(),
        dataset: None,
        accounting: None,
        budget: None,
        unit: None,
        spent: 0.0,
        spent_epsilon_at_delta: None,
        remaining: None,
        exact_publications: releases
            .iter()
            .filter(|r| r.published && !r.exact_tables.is_empty())
            .count(),
        releases,
        verified,
    };
    if let Some((dataset, budget)) = ledger.identity() {
        let acc = budget
            .accounting()
            .map_err(|e| LedgerError::Accounting(crate::privacy::AccountingError(e)))?;
        let spent = ledger.spent(&acc)?;
        report.dataset = Some(dataset.to_string());
        report.accounting = Some(acc.name().to_string());
        report.budget = Some(*budget);
        report.unit = Some(acc.unit().to_string());
        report.spent = spent;
        report.spent_epsilon_at_delta = acc.approx_epsilon(spent)?;
        report.remaining = Some((acc.capacity()? - spent).max(0.0));
    }
    Ok(report)
}

/// `safestat budget`: exits 6 when a ledger fails verification (its figures cannot be trusted).
pub fn run(flag: Option<PathBuf>, policy: Option<PathBuf>, json: bool) -> Result<(), Error> {
    let mut reports = Vec::new();
    for path in ledger_files(flag, policy)? {
        reports.push(budget_report(&Ledger::read(&path)?)?);
    }
    if json {
        let mut text = serde_json::to_string_pretty(&reports).expect("serialising to memory");
        text.push('\n');
        print(&text)?;
    } else {
        print(&reports.iter().map(text).collect::<String>())?;
    }
    if let [one] = reports.as_slice() {
        crate::console::status("unit", one.unit.clone());
        crate::console::status("spent", one.spent);
        crate::console::status("remaining", one.remaining);
    }
    crate::console::status(
        "ledgers",
        serde_json::to_value(&reports).expect("serialising to memory"),
    );
    if reports.iter().all(|b| b.verified) {
        crate::console::status("status", "valid");
        Ok(())
    } else {
        Err(Error::Integrity(
            "a ledger fails verification; its figures cannot be trusted (run `safestat audit`)"
                .into(),
        ))
    }
}

/// One ledger's figures for people.
fn text(b: &BudgetReport) -> String {
    let mut r = String::new();
    let Some(dataset) = &b.dataset else {
        let _ = writeln!(r, "{}: no charges yet", b.ledger);
        return r;
    };
    let unit = b.unit.as_deref().unwrap_or("");
    let budget = b.budget.and_then(|x| x.accounting().ok());
    let _ = writeln!(r, "dataset `{dataset}` (ledger {})", b.ledger);
    let _ = writeln!(
        r,
        "  accounting  {}",
        budget.map(|a| a.describe()).unwrap_or_default()
    );
    let mut spent = format!("{unit}={}", short_number(b.spent));
    if let (Some(e), Some(d)) = (b.spent_epsilon_at_delta, b.budget.and_then(|x| x.delta)) {
        let _ = write!(spent, " (epsilon={} at delta={d:e})", short_number(e));
    }
    if budget == Some(crate::privacy::Accounting::None) {
        // Exact tables only: nothing was or can be spent until a policy gives a budget.
        let _ = writeln!(
            r,
            "  spent       nothing (a release with differentially private tables sets the budget)"
        );
    } else {
        let _ = writeln!(r, "  spent       {spent}");
        let _ = writeln!(
            r,
            "  remaining   {unit}={}",
            short_number(b.remaining.unwrap_or(0.0))
        );
    }
    let _ = writeln!(r, "  releases    {}", b.releases.len());
    if b.exact_publications > 0 {
        let _ = writeln!(
            r,
            "  exact       {} published release(s) hold exact tables (not differentially private): the differential privacy of this dataset's tables holds only relative to what they reveal",
            b.exact_publications
        );
    }
    for rel in &b.releases {
        let _ = writeln!(
            r,
            "    {:<24} v{:<3} {unit}={:<12} {}",
            rel.release_id,
            rel.version,
            short_number(rel.cost),
            if rel.published {
                "published"
            } else {
                "charged, never published"
            }
        );
        if !rel.exact_tables.is_empty() {
            let _ = writeln!(
                r,
                "      and exact tables, not differentially private, charged nothing: {}",
                rel.exact_tables.join(", ")
            );
        }
    }
    if !b.verified {
        let _ = writeln!(
            r,
            "  WARNING: this ledger fails verification; run `safestat audit`"
        );
    }
    r
}
