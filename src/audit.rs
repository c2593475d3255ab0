//! The auditor's commands: `budget` (spent and remaining per dataset) and `audit` (verify the
//! ledgers and release folders).
//!
//! Owns the checks an auditor relies on: the hash chain and every recomputed total (through
//! [`crate::ledger::Ledger::verify`]), and each release folder against the ledger entries that
//! paid for and published it, file by file. Read-only: must never write to a ledger or a folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::commands::print;
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::ledger::{Body, Budget, Ledger, LedgerError};
use crate::output;
use crate::plan::short_number;
use crate::release::recorded_roots;

/// The ledgers to read: the one given, else every `ledger/*.jsonl`.
fn ledger_files(flag: Option<PathBuf>) -> Result<Vec<PathBuf>, Error> {
    if let Some(f) = flag {
        if !f.exists() {
            return Err(Error::Usage(format!(
                "ledger `{}` does not exist",
                f.display()
            )));
        }
        return Ok(vec![f]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir("ledger")
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        return Err(Error::Usage(
            "no ledger found in `ledger/`; give one with --ledger FILE (or SAFESTAT_LEDGER)".into(),
        ));
    }
    Ok(files)
}

#[derive(Debug, Serialize)]
struct ReleaseLine {
    release_id: String,
    version: u32,
    line: usize,
    cost: f64,
    published: bool,
}

#[derive(Debug, Serialize)]
struct BudgetReport {
    ledger: String,
    dataset: Option<String>,
    accounting: Option<String>,
    budget: Option<Budget>,
    unit: Option<String>,
    spent: f64,
    /// For (epsilon, delta) accounting: the epsilon the spent rho amounts to at the budget's delta.
    spent_epsilon_at_delta: Option<f64>,
    /// The budget left in `unit` (for (epsilon, delta): the rho that still converts within it).
    remaining: Option<f64>,
    releases: Vec<ReleaseLine>,
    verified: bool,
}

fn budget_report(ledger: &Ledger) -> Result<BudgetReport, LedgerError> {
    let verified = ledger.verify().is_empty() && ledger.torn_finding().is_none();
    let published: Vec<u64> = ledger
        .entries()
        .filter_map(|e| match &e.body {
            Body::Published { charge_seq, .. } => Some(*charge_seq),
            _ => None,
        })
        .collect();
    let releases = ledger
        .charges()
        .filter_map(|(line, e)| match &e.body {
            Body::Charge {
                release_id,
                version,
                cost,
                ..
            } => Some(ReleaseLine {
                release_id: release_id.clone(),
                version: *version,
                line,
                cost: *cost,
                published: published.contains(&e.seq),
            }),
            _ => None,
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
        releases,
        verified,
    };
    if let Some((dataset, budget)) = ledger.identity() {
        let acc = budget.accounting().map_err(LedgerError::Accounting)?;
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

/// `safestat budget`: exits 4 when a ledger fails verification (its figures cannot be trusted).
pub fn budget(flag: Option<PathBuf>, json: bool) -> Result<(), Error> {
    let mut reports = Vec::new();
    for path in ledger_files(flag)? {
        reports.push(budget_report(&Ledger::read(&path)?)?);
    }
    if json {
        let mut text = serde_json::to_string_pretty(&reports).expect("serialising to memory");
        text.push('\n');
        print(&text)?;
    } else {
        let mut r = String::new();
        for b in &reports {
            let Some(dataset) = &b.dataset else {
                let _ = writeln!(r, "{}: no charges yet", b.ledger);
                continue;
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
            let _ = writeln!(r, "  spent       {spent}");
            let _ = writeln!(
                r,
                "  remaining   {unit}={}",
                short_number(b.remaining.unwrap_or(0.0))
            );
            let _ = writeln!(r, "  releases    {}", b.releases.len());
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
            }
            if !b.verified {
                let _ = writeln!(
                    r,
                    "  WARNING: this ledger fails verification; run `safestat audit`"
                );
            }
        }
        print(&r)?;
    }
    if reports.iter().all(|b| b.verified) {
        Ok(())
    } else {
        Err(Error::AuditFailed(
            "a ledger fails verification; its figures cannot be trusted (run `safestat audit`)"
                .into(),
        ))
    }
}

/// One thing an audit found wrong.
#[derive(Debug, Serialize)]
struct Problem {
    /// `ledger` or `release`.
    scope: &'static str,
    /// The ledger file or release folder.
    path: String,
    /// The ledger line, for ledger problems.
    line: Option<usize>,
    /// The file inside a release folder, where one is concerned.
    file: Option<String>,
    message: String,
}

#[derive(Debug, Serialize)]
struct Unpublished {
    ledger: String,
    line: usize,
    release_id: String,
    version: u32,
}

#[derive(Debug, Serialize)]
struct AuditReport {
    ok: bool,
    ledgers: Vec<BudgetReport>,
    releases_checked: Vec<String>,
    problems: Vec<Problem>,
    /// Charges with no `published` entry: budget spent conservatively by an interrupted run.
    /// Reported, not a failure.
    unpublished_charges: Vec<Unpublished>,
}

/// `safestat audit`: exit 0 when everything holds, 4 otherwise.
pub fn audit(flag: Option<PathBuf>, dirs: &[PathBuf], json: bool) -> Result<(), Error> {
    let mut ledgers = Vec::new();
    let mut problems = Vec::new();
    let mut unpublished = Vec::new();
    let mut reports = Vec::new();
    for path in ledger_files(flag)? {
        let ledger = Ledger::read(&path)?;
        for f in ledger.verify().into_iter().chain(ledger.torn_finding()) {
            problems.push(Problem {
                scope: "ledger",
                path: path.display().to_string(),
                line: Some(f.line),
                file: None,
                message: f.message,
            });
        }
        for (line, release_id, version) in ledger.unpublished() {
            unpublished.push(Unpublished {
                ledger: path.display().to_string(),
                line,
                release_id,
                version,
            });
        }
        reports.push(budget_report(&ledger)?);
        ledgers.push(ledger);
    }
    for ledger in &ledgers {
        for (dir, message) in missing_witnessed_charges(ledger, dirs) {
            problems.push(Problem {
                scope: "ledger",
                path: ledger.path.display().to_string(),
                line: None,
                file: None,
                message: format!("release folder `{}`: {message}", dir.display()),
            });
        }
    }
    for dir in dirs {
        for (file, message) in check_release_dir(dir, &ledgers) {
            problems.push(Problem {
                scope: "release",
                path: dir.display().to_string(),
                line: None,
                file,
                message,
            });
        }
    }
    let report = AuditReport {
        ok: problems.is_empty(),
        ledgers: reports,
        releases_checked: dirs.iter().map(|d| d.display().to_string()).collect(),
        problems,
        unpublished_charges: unpublished,
    };
    if json {
        let mut text = serde_json::to_string_pretty(&report).expect("serialising to memory");
        text.push('\n');
        print(&text)?;
    } else {
        let mut r = String::new();
        for l in &report.ledgers {
            let _ = writeln!(
                r,
                "ledger {}: {} entries checked, {} releases, {}={} spent",
                l.ledger,
                ledgers
                    .iter()
                    .find(|x| x.path.display().to_string() == l.ledger)
                    .map_or(0, |x| x.lines.len()),
                l.releases.len(),
                l.unit.as_deref().unwrap_or("cost"),
                short_number(l.spent)
            );
        }
        for d in &report.releases_checked {
            let _ = writeln!(r, "release folder {d} checked");
        }
        for u in &report.unpublished_charges {
            let _ = writeln!(
                r,
                "note: {} line {}: `{}` version {} was charged but never published (an interrupted run; its budget stays spent)",
                u.ledger, u.line, u.release_id, u.version
            );
        }
        for p in &report.problems {
            let at = match (p.line, &p.file) {
                (Some(line), _) => format!("{} line {line}", p.path),
                (None, Some(f)) => format!("{}/{f}", p.path),
                (None, None) => p.path.clone(),
            };
            let _ = writeln!(r, "PROBLEM {at}: {}", p.message);
        }
        let _ = writeln!(
            r,
            "{}",
            if report.ok {
                "audit passed".to_string()
            } else {
                format!("audit FAILED: {} problem(s)", report.problems.len())
            }
        );
        print(&r)?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(Error::AuditFailed(format!(
            "{} problem(s) found",
            report.problems.len()
        )))
    }
}

/// Release folders that name a charge their ledger lacks (lines cut from its end, or a ledger
/// replaced): looked for beside every folder the ledger records and beside `dirs`.
fn missing_witnessed_charges(ledger: &Ledger, dirs: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let Some((dataset, _)) = ledger.identity() else {
        return Vec::new();
    };
    let mut roots = recorded_roots(ledger);
    roots.extend(
        dirs.iter()
            .filter_map(|d| d.parent().map(Path::to_path_buf)),
    );
    output::release_folders(&roots, dataset)
        .into_iter()
        .filter(|(_, m)| !ledger.has_charge(m.ledger.charge_seq, &m.ledger.charge_sha256))
        .map(|(dir, m)| {
            (
                dir,
                format!(
                    "release `{}` version {} was paid at ledger line {} (its manifest names that line's hash), but the ledger lacks that line: lines were cut from its end or the ledger was replaced",
                    m.release.id, m.release.version, m.ledger.charge_seq
                ),
            )
        })
        .collect()
}

/// Checks one release folder against the ledgers; returns (file, message) per problem.
fn check_release_dir(dir: &Path, ledgers: &[Ledger]) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let bytes = match std::fs::read(dir.join("manifest.json")) {
        Ok(b) => b,
        Err(e) => {
            out.push((
                Some("manifest.json".into()),
                format!("cannot read the manifest: {e}"),
            ));
            return out;
        }
    };
    let m: output::PublishedManifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            out.push((
                Some("manifest.json".into()),
                format!("not a safestat manifest: {e}"),
            ));
            return out;
        }
    };
    let (id, version, dataset) = (&m.release.id, m.release.version, &m.dataset);
    let Some(ledger) = ledgers
        .iter()
        .find(|l| l.identity().is_some_and(|(d, _)| d == dataset))
    else {
        out.push((None, format!("no ledger given holds dataset `{dataset}`")));
        return out;
    };
    let Some((line, charge)) = ledger.charges().find(|(_, e)| {
        matches!(&e.body, Body::Charge { release_id, version: v, .. } if release_id == id && *v == version)
    }) else {
        out.push((None, format!("the ledger has no charge for `{id}` version {version}: published without being paid for")));
        return out;
    };
    let Body::Charge {
        plan_sha256,
        tables,
        cost,
        ..
    } = &charge.body
    else {
        unreachable!("charges() yields charges");
    };
    let charge_sha = sha256_hex(&ledger.lines[line - 1].0);
    let mut differs = |what: &str| {
        out.push((
            Some("manifest.json".into()),
            format!("{what} differs from ledger line {line}"),
        ))
    };
    if m.ledger.charge_seq != charge.seq || m.ledger.charge_sha256 != charge_sha {
        differs(
            "its ledger charge (sequence number or line hash; the charge or the manifest was edited)",
        );
    }
    if m.policy.plan_sha256 != *plan_sha256 {
        differs("the plan's hash");
    }
    if m.ledger.charged != *cost {
        differs("the release cost");
    }
    if !m
        .tables
        .iter()
        .map(|t| &t.name)
        .eq(tables.iter().map(|t| &t.name))
    {
        differs("the list of tables");
    }
    // The publication: the manifest and every output as the ledger recorded them.
    let published = ledger.entries().find_map(|e| match &e.body {
        Body::Published {
            charge_seq,
            manifest_sha256,
            outputs,
            ..
        } if *charge_seq == charge.seq => Some((manifest_sha256, outputs)),
        _ => None,
    });
    match published {
        None => out.push((
            None,
            format!("ledger line {line} charged this release but no `published` entry records it (the next release of this dataset records it)"),
        )),
        Some((manifest_sha, outputs)) => {
            if *manifest_sha != sha256_hex(&bytes) {
                out.push((
                    Some("manifest.json".into()),
                    "altered since publication (hash differs from the ledger)".into(),
                ));
            }
            for o in outputs {
                match std::fs::read(dir.join(&o.path)) {
                    Ok(b) if sha256_hex(&b) == o.sha256 => {}
                    Ok(_) => out.push((
                        Some(o.path.clone()),
                        "altered since publication (hash differs from the ledger)".into(),
                    )),
                    Err(_) => out.push((Some(o.path.clone()), "missing".into())),
                }
            }
        }
    }
    if let Err((file, why)) = output::read_published(dir) {
        out.push((file, format!("does not match its own manifest: {why}")));
    }
    for n in output::unlisted_files(dir, &m) {
        out.push((Some(n), "not listed in the manifest".into()));
    }
    out
}
