//! The privacy-budget ledger: one append-only, hash-chained JSON Lines file per dataset.
//!
//! Owns the entry format (typed events: [`Charge`], [`Publication`], [`Repair`]), its
//! verification, the exclusive lock and append ([`locked`]), and the release transaction
//! ([`transaction`]): lock, verify, check the witnesses, roll forward, decide, charge. How costs add
//! up is [`crate::privacy::Accounting`]'s (opendp's). Must never rewrite or drop a complete line:
//! the only truncation it performs removes the incomplete bytes of a write that crashed before
//! its fsync, and records that it did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::sha256_hex;
use crate::output::{BudgetStatement, FileHash};
use crate::privacy::{Accounting, AccountingError, Budget, Cost};

mod locked;
pub mod transaction;

pub use locked::LockedLedger;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot use ledger `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ledger `{path}` failed verification; nothing was charged (run `safestat audit --ledger {path}`):{}", format_findings(.findings))]
    Corrupt {
        path: PathBuf,
        findings: Vec<Finding>,
    },
    #[error("ledger `{path}` belongs to {what}; {fix}")]
    Mismatch {
        path: PathBuf,
        what: String,
        fix: String,
    },
    #[error(
        "over budget: dataset `{dataset}` has spent {spent} of {budget}; this release needs {requested} and only {remaining} remains. Nothing was charged, drawn or written"
    )]
    OverBudget {
        dataset: String,
        budget: String,
        spent: String,
        requested: String,
        remaining: String,
    },
    #[error(
        "ledger `{path}` lacks a charge that release folder `{folder}` proves: `{release_id}` version {version} was paid at ledger line {seq}, and that line is missing or differs. Lines were cut from the ledger's end, or it was replaced; its spent budget would be spent again. Nothing was charged: restore the ledger from a backup (`safestat audit` shows every folder it lacks)"
    )]
    Witness {
        path: PathBuf,
        folder: PathBuf,
        release_id: String,
        version: u32,
        seq: u64,
    },
    /// The ledger's lock was not had within `--lock-timeout`: another release holds it.
    #[error(
        "ledger `{path}` is locked by another release ({holder}); gave up after {seconds} s (--lock-timeout). Nothing was charged: run again later"
    )]
    Busy {
        path: PathBuf,
        holder: String,
        seconds: f64,
    },
    #[error(transparent)]
    Accounting(#[from] AccountingError),
    /// Finishing an interrupted run's folder, or preparing this one's, failed.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// A re-run that would draw again or change a release without `--new-version`.
    #[error("{0}")]
    Refused(String),
    /// Exact tables of another release were published (an interrupted run rolled forward, or a
    /// release at the same time) after this release read the ledger to protect its own with
    /// them: run again.
    #[error("{0}")]
    Moved(String),
}

fn format_findings(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("\n  - {f}")).collect()
}

/// Something wrong in a ledger, with the 1-based line it concerns.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One table's charge inside a `charge` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableCharge {
    pub name: String,
    /// The cost opendp's map reports in the table's own measure.
    pub cost: Cost,
    /// The same cost in the ledger's unit (`epsilon` or `rho`).
    pub charged: f64,
}

/// A ledger line: its sequence number, time and event, chained to the line before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    #[serde(flatten)]
    pub body: Body,
    /// SHA-256 of the previous line's bytes (without its newline); zeros for the first line.
    pub prev_sha256: String,
}

/// What a line records (`kind` in the file). No `deny_unknown_fields`: serde cannot combine it
/// with `flatten`; the hash chain, not the parser, is what detects edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// Boxed: a charge is far larger than the other entries.
    Charge(Box<Charge>),
    Published(Publication),
    Repair(Repair),
    /// Boxed, like a charge.
    Revised(Box<Revision>),
}

/// Budget spent on a release, written and fsynced before any noise is drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub dataset: String,
    pub release_id: String,
    pub version: u32,
    /// SHA-256 of the policy file's bytes (for the record; not what identifies the release).
    pub policy_sha256: String,
    /// SHA-256 of the plan's canonical meaning (`Plan::identity`): with the input fingerprints,
    /// what identifies the release.
    pub plan_sha256: String,
    /// Each input's fingerprint ([`crate::hash::Fingerprint`]'s `now` when it was charged;
    /// private: exact functions of the data).
    pub inputs: BTreeMap<String, String>,
    /// How each SQL input was read: the engine, the relation, the snapshot and every statement
    /// sent (private, like the fingerprints; absent when every input is a file).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, SourceRead>,
    /// 256 secret random bits, so that this line's SHA-256 (which the public manifest carries)
    /// reveals nothing about the input fingerprints above.
    pub nonce: String,
    pub accounting: String,
    pub budget: Budget,
    pub unit: String,
    pub tables: Vec<TableCharge>,
    /// The release's exact tables (cell suppression, not differentially private): recorded,
    /// charged nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exact_tables: Vec<String>,
    /// The exact tables of earlier releases of the same data that these were protected together
    /// with. Private like the fingerprints: that two releases were read from the same data is a
    /// fact about the data (a change confined to hidden cells would show as a missing link).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exact_links: Vec<LinkedTable>,
    /// Per exact table, the SHA-256 of its exact cells (private, like the fingerprints): a later
    /// release links an earlier table whose cells it counts the same, whatever its input.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exact_digests: BTreeMap<String, String>,
    /// Inputs of the release that hold the same data as another of its inputs (the same bytes
    /// read alike, or exact tables that agree cell for cell where they meet), by name: their
    /// exact tables were protected as tables of one data. Private.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub same_data: BTreeMap<String, String>,
    /// The release's cost: the opendp composition of its tables' `charged`.
    pub cost: f64,
    /// The opendp composition of every charge's `cost` up to and including this one.
    pub total_after: f64,
    /// The release folder, relative to the ledger file's folder (see [`Ledger::record`]).
    pub out_dir: String,
    /// The key that signs the release's manifest (absent: unsigned). Once a dataset is signed,
    /// every later release must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningRecord>,
}

/// A signing key as the ledger records it: public parts only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningRecord {
    /// The key ID, as minisign prints it.
    pub id: String,
    /// The public key (minisign's base64 line), so `audit` checks the signature itself.
    pub public_key: String,
}

/// An exact table of an earlier release that a release was protected together with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkedTable {
    pub release_id: String,
    pub version: u32,
    pub table: String,
    /// The input of this release it was counted on, when not an input of its own name (its
    /// cells showed the same data under another name, file or source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_on: Option<String>,
    /// Its dimensions that this release names otherwise (`region` then, `area` now), matched by
    /// their categories: earlier name to this release's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub renamed: BTreeMap<String, String>,
}

/// What the ledger records of an SQL input's read. Never the connection string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRead {
    /// The server's `version()`.
    pub engine: String,
    /// The table or query, as the policy states it.
    pub relation: String,
    /// `txid_current_snapshot()`: the snapshot every statement of the read saw.
    pub snapshot: String,
    /// SHA-256 of every statement sent, in order (`safestat sql` prints them).
    pub statements_sha256: Vec<String>,
}

/// The release's outputs are in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub dataset: String,
    pub release_id: String,
    pub version: u32,
    pub charge_seq: u64,
    /// Relative to the ledger file's folder, like a charge's.
    pub out_dir: String,
    pub manifest_sha256: String,
    pub outputs: Vec<FileHash>,
    /// [`crate::output::content_sha256`] of the manifest: what its presentation revisions must
    /// keep (absent in ledgers written before revisions existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
    /// A resumed run's exact tables, protected with other earlier tables (or inputs of one data)
    /// than its charge records, because exact tables were published between the charge and the
    /// resumed run: those it was protected with, which `audit` re-checks instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_links: Option<Vec<LinkedTable>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_data: Option<BTreeMap<String, String>>,
}

/// A presentation revision of a published release (`safestat report RELEASE_DIR --policy P`):
/// its workbook and report made again with another policy's labels, titles and texts, the tables'
/// bytes unchanged, nothing drawn or charged. Its `publication` is the folder's state from then
/// on: the new manifest's hash and every output's; the manifest lists the bytes it replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    #[serde(flatten)]
    pub publication: Publication,
    /// 1 for the first revision of a publication, one more for each after it.
    pub revision: u32,
    /// When it was made, as its manifest says (so that an interrupted revision is made again
    /// byte for byte).
    pub revised_at: String,
    /// The manifest it replaced (the publication's, or the revision's before it).
    pub previous_manifest_sha256: String,
    /// SHA-256 of the revising policy file's bytes (for the record).
    pub policy_sha256: String,
    /// The revising policy's `Plan::identity` hash: the release's own but for its title, so a
    /// later `release` with that policy finds the release already published.
    pub plan_sha256: String,
    /// The release's title and presentation it gives (public, as in the manifest), so that a
    /// revision interrupted before its files were written is completed without its policy.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub presentation: crate::policy::Presentation,
}

/// Incomplete bytes of a crashed write were removed (they drew no noise: a charge is only
/// followed by noise once its line is complete and fsynced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repair {
    pub discarded_bytes: u64,
    pub discarded_sha256: String,
    pub reason: String,
}

/// A ledger as read from disk.
#[derive(Debug, Default)]
pub struct Ledger {
    pub path: PathBuf,
    /// Complete lines: their bytes (no newline) and what they parse to.
    pub lines: Vec<(Vec<u8>, Result<Entry, String>)>,
    /// Bytes after the last newline: a write that never completed.
    pub torn: Vec<u8>,
}

impl Ledger {
    pub fn parse(path: &Path, bytes: &[u8]) -> Ledger {
        let (complete, torn) = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => (&bytes[..=i], &bytes[i + 1..]),
            None => (&bytes[..0], bytes),
        };
        let lines = complete
            .split(|&b| b == b'\n')
            .take(complete.iter().filter(|&&b| b == b'\n').count())
            .map(|l| {
                (
                    l.to_vec(),
                    serde_json::from_slice::<Entry>(l).map_err(|e| e.to_string()),
                )
            })
            .collect();
        Ledger {
            path: path.to_path_buf(),
            lines,
            torn: torn.to_vec(),
        }
    }

    /// Reads a ledger without locking (for `budget` and `audit`); a missing file is empty.
    pub fn read(path: &Path) -> Result<Ledger, LedgerError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Ledger::parse(path, &bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger {
                path: path.to_path_buf(),
                ..Ledger::default()
            }),
            Err(source) => Err(LedgerError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The folder that paths recorded in this ledger are relative to: the ledger file's own.
    pub fn dir(&self) -> PathBuf {
        folder_of(&self.path)
    }

    /// A path as this ledger records it: relative to [`Ledger::dir`] (absolute only when the two
    /// share no root), so a ledger and its release folders can move together and a command
    /// finds them from any working folder.
    pub fn record(&self, path: &Path) -> String {
        let full = |p: &Path| {
            std::fs::canonicalize(p)
                .or_else(|_| std::path::absolute(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        // The leaf may not exist yet; its folder does (or is made before a charge).
        let (folder, leaf) = match (path.parent(), path.file_name()) {
            (Some(parent), Some(leaf)) if !parent.as_os_str().is_empty() => (full(parent), leaf),
            (_, Some(leaf)) => (full(Path::new(".")), leaf),
            _ => return full(path).display().to_string(),
        };
        let target = folder.join(leaf);
        pathdiff::diff_paths(&target, full(&self.dir()))
            .unwrap_or(target)
            .display()
            .to_string()
    }

    /// A recorded path, resolved: relative ones from [`Ledger::dir`] (its real location, since
    /// [`Ledger::record`] measured from there, so `..` steps are undone exactly).
    pub fn resolve(&self, recorded: &str) -> PathBuf {
        let dir = self.dir();
        let base = std::fs::canonicalize(&dir).unwrap_or(dir);
        let mut out = PathBuf::new();
        for part in base.join(recorded).components() {
            match part {
                std::path::Component::ParentDir
                    if matches!(
                        out.components().next_back(),
                        Some(std::path::Component::Normal(_))
                    ) =>
                {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    }

    /// The line (1-based) and bytes of the entry with sequence number `seq`, if present.
    pub fn line_bytes(&self, seq: u64) -> Option<&[u8]> {
        let i = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.lines.get(i).map(|(b, _)| b.as_slice())
    }

    /// Whether a charge whose line is `seq` with SHA-256 `sha256` is in this ledger (what a
    /// release folder's manifest claims).
    pub fn has_charge(&self, seq: u64, sha256: &str) -> bool {
        self.line_bytes(seq)
            .is_some_and(|b| sha256_hex(b) == sha256)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|(_, e)| e.as_ref().ok())
    }

    /// The (dataset, budget) the first charge established: the budget is the first one a charge
    /// states ([`Budget::NONE`] while every charge was of exact tables without a budget).
    pub fn identity(&self) -> Option<(&str, &Budget)> {
        let dataset = self.charges().next()?.charge.dataset.as_str();
        let budget = self
            .charges()
            .map(|c| &c.charge.budget)
            .find(|b| !b.is_none())
            .unwrap_or(&Budget::NONE);
        Some((dataset, budget))
    }

    /// Whether a release of `plan` must fingerprint its inputs in the legacy scheme too
    /// ([`crate::hash::Fingerprint`]): a charge it is compared with recorded an input of the same
    /// name in that scheme. Those are the last charge of its release id (what a re-run is
    /// decided by) and, when it has exact tables, the published charges of the dataset's exact
    /// tables (what they may be linked with); no other, so that the legacy hashes stop once
    /// those charges are in the current scheme.
    pub fn wants_legacy_fingerprints(&self, plan: &crate::policy::Plan) -> bool {
        let legacy = |charge: &Charge| {
            plan.inputs.iter().any(|i| {
                charge
                    .inputs
                    .get(&i.name)
                    .is_some_and(|f| crate::hash::is_legacy(f))
            })
        };
        let rerun = self
            .last_charge_of(&plan.release_id)
            .is_some_and(|c| legacy(c.charge));
        rerun
            || !plan.exact_tables.is_empty()
                && self.charges().any(|c| {
                    c.charge.dataset == plan.dataset
                        && !c.charge.exact_tables.is_empty()
                        && self.publication_of(c.seq).is_some()
                        && legacy(c.charge)
                })
    }

    /// The latest charge of release `release_id`: what a re-run of it is decided by.
    pub fn last_charge_of(&self, release_id: &str) -> Option<ChargeAt<'_>> {
        self.charges()
            .filter(|c| c.charge.release_id == release_id)
            .last()
    }

    /// Every charge, in ledger order.
    pub fn charges(&self) -> impl Iterator<Item = ChargeAt<'_>> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, (_, e))| match e {
                Ok(Entry {
                    seq,
                    body: Body::Charge(charge),
                    ..
                }) => Some(ChargeAt {
                    line: i + 1,
                    seq: *seq,
                    charge,
                }),
                _ => None,
            })
    }

    /// Every publication, in ledger order.
    pub fn publications(&self) -> impl Iterator<Item = &Publication> {
        self.entries().filter_map(|e| match &e.body {
            Body::Published(p) => Some(p),
            _ => None,
        })
    }

    /// The charges of `dataset` that published exact tables, by sequence number: those a release
    /// of exact tables must be protected with (see `commands::release::exact::linked`), but for
    /// the charges of release `except` (a re-run of it is not protected with itself).
    pub fn published_exact(&self, dataset: &str, except: Option<&str>) -> Vec<u64> {
        self.charges()
            .filter(|c| {
                !c.charge.exact_tables.is_empty()
                    && c.charge.dataset == dataset
                    && Some(c.charge.release_id.as_str()) != except
                    && self.publication_of(c.seq).is_some()
            })
            .map(|c| c.seq)
            .collect()
    }

    /// The publication of the charge at sequence number `seq`, if recorded, as its latest
    /// presentation revision left it: the manifest and outputs its folder holds.
    pub fn publication_of(&self, seq: u64) -> Option<&Publication> {
        let published = self.publications().find(|p| p.charge_seq == seq)?;
        Some(
            self.revisions_of(seq)
                .last()
                .map_or(published, |r| &r.publication),
        )
    }

    /// The presentation revisions of the charge at sequence number `seq`, in ledger order.
    pub fn revisions_of(&self, seq: u64) -> impl Iterator<Item = &Revision> {
        self.entries().filter_map(move |e| match &e.body {
            Body::Revised(r) if r.publication.charge_seq == seq => Some(r.as_ref()),
            _ => None,
        })
    }

    /// Every charge's public budget statement, in ledger order, with the charge's sequence
    /// number: a pure function of the charges, so a release's statement is the same whenever it
    /// is computed (an interrupted run resumed later states what the first attempt would have).
    pub fn statements(&self) -> Vec<(u64, BudgetStatement)> {
        let mut out: Vec<(u64, BudgetStatement)> = Vec::new();
        for (n, c) in self.charges().enumerate() {
            let (spent_before, previous_sha256) = match out.last() {
                Some((_, s)) => (s.total_after, s.sha256()),
                None => (0.0, GENESIS.to_string()),
            };
            let charge = c.charge;
            out.push((
                c.seq,
                BudgetStatement {
                    dataset: charge.dataset.clone(),
                    sequence: n as u64 + 1,
                    release_id: charge.release_id.clone(),
                    version: charge.version,
                    accounting: charge.accounting.clone(),
                    budget: charge.budget,
                    unit: charge.unit.clone(),
                    spent_before,
                    cost: charge.cost,
                    total_after: charge.total_after,
                    charge_sha256: sha256_hex(&self.lines[c.line - 1].0),
                    previous_sha256,
                },
            ));
        }
        out
    }

    /// The budget statement of the charge at sequence number `seq`.
    pub fn statement_of(&self, seq: u64) -> Option<BudgetStatement> {
        self.statements()
            .into_iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, statement)| statement)
    }

    /// The signing key of the dataset's latest signed charge, if any was signed.
    pub fn signing_key(&self) -> Option<&SigningRecord> {
        self.charges()
            .filter_map(|c| c.charge.signing_key.as_ref())
            .last()
    }

    /// The composed total spent so far (zero for a new ledger).
    pub fn spent(&self, accounting: &Accounting) -> Result<f64, LedgerError> {
        Ok(accounting.compose(self.charges().map(|c| c.charge.cost).collect())?)
    }

    /// Verifies the chain, the sequence, every recomputable total and the budget over the
    /// complete lines; returns every problem found (empty when the ledger is sound).
    pub fn verify(&self) -> Vec<Finding> {
        let mut check = Verification::default();
        let mut prev = GENESIS.to_string();
        for (i, (bytes, entry)) in self.lines.iter().enumerate() {
            let line = i + 1;
            let this_hash = sha256_hex(bytes);
            match entry {
                Err(e) => check.find(line, format!("not a valid ledger entry ({e})")),
                Ok(entry) => {
                    check.chain(line, entry, &prev);
                    match &entry.body {
                        Body::Charge(c) => check.charge(line, entry.seq, c),
                        Body::Published(p) => check.publication(line, p),
                        Body::Revised(r) => check.revision(line, r),
                        Body::Repair(_) => {}
                    }
                }
            }
            prev = this_hash;
        }
        check.findings
    }

    /// A torn last line (bytes after the last newline), reported apart from [`Ledger::verify`]
    /// because it is a crash's trace, not an edit, and the next release repairs it.
    pub fn torn_finding(&self) -> Option<Finding> {
        (!self.torn.is_empty()).then(|| Finding {
            line: self.lines.len() + 1,
            message: format!(
                "torn last line: {} bytes with no newline (a write that crashed before completing); the next release repairs it",
                self.torn.len()
            ),
        })
    }

    /// Charges that no `published` entry follows.
    pub fn unpublished_charges(&self) -> impl Iterator<Item = ChargeAt<'_>> {
        let published: Vec<u64> = self.publications().map(|p| p.charge_seq).collect();
        self.charges().filter(move |c| !published.contains(&c.seq))
    }

    /// The folders that hold the release folders this ledger records.
    pub fn recorded_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self
            .entries()
            .filter_map(|e| match &e.body {
                Body::Charge(charge) => self
                    .resolve(&charge.out_dir)
                    .parent()
                    .map(Path::to_path_buf),
                Body::Published(Publication { out_dir, .. }) => {
                    self.resolve(out_dir).parent().map(Path::to_path_buf)
                }
                Body::Revised(r) => self
                    .resolve(&r.publication.out_dir)
                    .parent()
                    .map(Path::to_path_buf),
                Body::Repair(_) => None,
            })
            .collect();
        roots.sort();
        roots.dedup();
        roots
    }

    /// Release folders of this ledger's dataset (beside the folders it records, and in `roots`)
    /// that name a charge this ledger lacks: lines were cut from its end, or it was replaced.
    pub fn missing_witnessed_charges(&self, roots: &[PathBuf]) -> Vec<MissingCharge> {
        let Some((dataset, _)) = self.identity() else {
            return Vec::new();
        };
        let mut all = self.recorded_roots();
        all.extend_from_slice(roots);
        self.missing_charges_of(dataset, &all)
    }

    /// Release folders of `dataset` under `roots` whose charge this ledger lacks.
    pub fn missing_charges_of(&self, dataset: &str, roots: &[PathBuf]) -> Vec<MissingCharge> {
        crate::output::release_folders(roots, dataset)
            .into_iter()
            .filter(|(_, m)| !self.has_charge(m.ledger.charge_seq, &m.ledger.charge_sha256))
            .map(|(folder, m)| MissingCharge {
                folder,
                release_id: m.release.id,
                version: m.release.version,
                seq: m.ledger.charge_seq,
            })
            .collect()
    }
}

/// The folder holding the file at `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A charge and where it is in its ledger.
#[derive(Debug, Clone, Copy)]
pub struct ChargeAt<'a> {
    /// 1-based line.
    pub line: usize,
    pub seq: u64,
    pub charge: &'a Charge,
}

/// A release folder that proves a charge its ledger lacks.
#[derive(Debug)]
pub struct MissingCharge {
    pub folder: PathBuf,
    pub release_id: String,
    pub version: u32,
    pub seq: u64,
}

/// What [`Ledger::verify`] has seen so far, and what it found wrong.
#[derive(Default)]
struct Verification {
    findings: Vec<Finding>,
    /// The dataset and budget the first charge set.
    identity: Option<(String, Budget)>,
    /// Every charge's cost so far, for the running total.
    costs: Vec<f64>,
    /// Charges by sequence number: (release id, version).
    charged: BTreeMap<u64, (String, u32)>,
    /// Publications by charge: the line that recorded it.
    published: BTreeMap<u64, usize>,
    /// Per published charge, its revisions so far, its folder's manifest hash and outputs, and
    /// the content hash its revisions keep.
    states: BTreeMap<u64, (u32, String, Vec<FileHash>, Option<String>)>,
}

impl Verification {
    fn find(&mut self, line: usize, message: String) {
        self.findings.push(Finding { line, message });
    }

    /// The line's place: its sequence number and its link to the line before.
    fn chain(&mut self, line: usize, entry: &Entry, prev: &str) {
        if entry.seq != line as u64 {
            self.find(
                line,
                format!(
                    "sequence number {} where {line} was expected: a line was deleted, inserted or moved",
                    entry.seq
                ),
            );
        }
        if entry.prev_sha256 != prev {
            let why = if line == 1 {
                "the first line must carry the zero hash (lines were deleted or inserted before it)"
                    .to_string()
            } else {
                format!(
                    "line {} was edited, or lines were deleted, inserted or reordered",
                    line - 1
                )
            };
            self.find(line, format!("does not chain to line {}: {why}", line - 1));
        }
    }

    /// A charge: its dataset and budget are the ledger's, its cost and the running total are
    /// what opendp composes, and the total fits the budget.
    fn charge(&mut self, line: usize, seq: u64, c: &Charge) {
        match &self.identity {
            None => self.identity = Some((c.dataset.clone(), c.budget)),
            Some((d, b)) => {
                let (d, b) = (d.clone(), *b);
                if d != c.dataset {
                    self.find(
                        line,
                        format!("charges dataset `{}` in a ledger of `{d}`", c.dataset),
                    );
                }
                // A dataset without a budget (exact tables only) is given one once; a budget
                // never changes.
                if b.is_none() {
                    self.identity = Some((d, c.budget));
                } else if b != c.budget {
                    self.find(line, format!("budget changed from {b:?} to {:?}", c.budget));
                }
            }
        }
        if self
            .charged
            .insert(seq, (c.release_id.clone(), c.version))
            .is_some()
        {
            self.find(line, "duplicate sequence number".into());
        }
        let acc = match c.budget.accounting() {
            Ok(a) => a,
            Err(e) => return self.find(line, format!("invalid budget: {e}")),
        };
        if acc.name() != c.accounting || acc.unit() != c.unit {
            self.find(
                line,
                format!(
                    "accounting `{}` in `{}` does not match the budget",
                    c.accounting, c.unit
                ),
            );
        }
        match acc.compose(c.tables.iter().map(|t| t.charged).collect()) {
            Ok(x) if x == c.cost => {}
            Ok(x) => self.find(
                line,
                format!(
                    "release cost {} is not the composition of its tables' charges ({x})",
                    c.cost
                ),
            ),
            Err(e) => self.find(line, e.to_string()),
        }
        self.costs.push(c.cost);
        match acc.compose(self.costs.clone()) {
            Ok(t) => {
                if t != c.total_after {
                    self.find(
                        line,
                        format!(
                            "running total {} does not match the recomputed total {t}",
                            c.total_after
                        ),
                    );
                }
                match acc.fits(t) {
                    Ok(true) => {}
                    Ok(false) => self.find(
                        line,
                        format!(
                            "the running total {} exceeds the budget {}",
                            acc.amount(t),
                            acc.describe()
                        ),
                    ),
                    Err(e) => self.find(line, e.to_string()),
                }
            }
            Err(e) => self.find(line, e.to_string()),
        }
    }

    /// A publication follows its charge, once.
    fn publication(&mut self, line: usize, p: &Publication) {
        match self.charged.get(&p.charge_seq) {
            Some((id, v)) if *id == p.release_id && *v == p.version => {
                self.states.entry(p.charge_seq).or_insert_with(|| {
                    (
                        0,
                        p.manifest_sha256.clone(),
                        p.outputs.clone(),
                        p.content_sha256.clone(),
                    )
                });
                if let Some(first) = self.published.insert(p.charge_seq, line) {
                    self.find(
                        line,
                        format!(
                            "charge {} was already published at line {first}",
                            p.charge_seq
                        ),
                    );
                }
            }
            _ => self.find(
                line,
                format!(
                    "publishes `{}` version {} with no matching charge at sequence {} before it",
                    p.release_id, p.version, p.charge_seq
                ),
            ),
        }
    }

    /// A revision follows its charge's publication, numbered on from the one before it, replaces
    /// the manifest the ledger last recorded for it, and leaves every output but the workbook
    /// and the report as it was.
    fn revision(&mut self, line: usize, r: &Revision) {
        let p = &r.publication;
        let Some((count, manifest, outputs, content)) = self.states.get_mut(&p.charge_seq) else {
            return self.find(
                line,
                format!(
                    "revises `{}` version {}, whose charge at sequence {} has no publication before it",
                    p.release_id, p.version, p.charge_seq
                ),
            );
        };
        let expected = (*count + 1, manifest.clone());
        let presenting = crate::output::presentation_files(&p.release_id);
        let tables = |o: &[FileHash]| {
            let mut t: Vec<FileHash> = o
                .iter()
                .filter(|f| !presenting.contains(&f.path))
                .cloned()
                .collect();
            t.sort_by(|a, b| a.path.cmp(&b.path));
            t
        };
        let tables_changed = tables(outputs) != tables(&p.outputs)
            || (content.is_some() && *content != p.content_sha256);
        if content.is_none() {
            *content = p.content_sha256.clone();
        }
        *count = r.revision;
        *manifest = p.manifest_sha256.clone();
        *outputs = p.outputs.clone();
        if tables_changed {
            self.find(
                line,
                format!(
                    "revision {} of `{}` version {} changes a file other than the workbook and the report, or the manifest's content (a presentation revision never does)",
                    r.revision, p.release_id, p.version
                ),
            );
        }
        let matches = self.charged.get(&p.charge_seq) == Some(&(p.release_id.clone(), p.version));
        if !matches {
            self.find(
                line,
                format!(
                    "revises `{}` version {}, but the charge at sequence {} is another release's",
                    p.release_id, p.version, p.charge_seq
                ),
            );
        } else if (r.revision, &r.previous_manifest_sha256) != (expected.0, &expected.1) {
            self.find(
                line,
                format!(
                    "revision {} of `{}` version {} does not follow the ledger's last record of its folder (revision {} replacing manifest {})",
                    r.revision, p.release_id, p.version, expected.0, expected.1
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: serde_json's default float parser is not always correctly rounded, so a
    /// running total read back could differ in the last digit from the one written, and `verify`
    /// reported a sound ledger as tampered.
    #[test]
    fn totals_survive_the_json_round_trip_exactly() {
        // 200,000 doubles spread over the magnitudes costs and totals take (a fixed
        // xorshift stream, so the test is deterministic).
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
            let x = mantissa * 10f64.powi((state % 24) as i32 - 8);
            let s = serde_json::to_string(&x).unwrap();
            assert_eq!(
                serde_json::from_str::<f64>(&s).unwrap().to_bits(),
                x.to_bits(),
                "{s}"
            );
        }
    }

    #[test]
    fn a_revision_follows_its_publication_and_the_revision_before_it() {
        let publication = |sha: &str| Publication {
            dataset: "d".into(),
            release_id: "r".into(),
            version: 1,
            charge_seq: 1,
            out_dir: "o".into(),
            manifest_sha256: sha.into(),
            outputs: Vec::new(),
            content_sha256: None,
            exact_links: None,
            same_data: None,
        };
        let revision = |n: u32, previous: &str, sha: &str| Revision {
            publication: publication(sha),
            revision: n,
            revised_at: String::new(),
            previous_manifest_sha256: previous.into(),
            policy_sha256: String::new(),
            plan_sha256: String::new(),
            title: None,
            presentation: Default::default(),
        };
        let mut check = Verification::default();
        check.charged.insert(1, ("r".into(), 1));
        check.revision(2, &revision(1, "a", "b")); // before its publication
        check.publication(3, &publication("a"));
        check.revision(4, &revision(1, "a", "b"));
        check.revision(5, &revision(2, "b", "c"));
        check.revision(6, &revision(2, "c", "d")); // numbered as the one before
        check.revision(7, &revision(4, "x", "e")); // replaces a manifest never recorded
        let mut other = revision(1, "a", "b");
        other.publication.release_id = "s".into();
        check.revision(8, &other); // another release's charge
        // The workbook and the report may change; a table may not.
        let file = |path: &str, sha: &str| FileHash {
            path: path.into(),
            sha256: sha.into(),
        };
        // (line 8 left the charge's state at revision 1, manifest `b`)
        let mut presented = revision(2, "b", "f");
        presented.publication.outputs = vec![file("r.xlsx", "1"), file("report.html", "2")];
        check.revision(9, &presented);
        let mut table = revision(3, "f", "g");
        table.publication.outputs = vec![
            file("r.xlsx", "1"),
            file("report.html", "2"),
            file("t.csv", "3"),
        ];
        check.revision(10, &table);
        let lines: Vec<usize> = check.findings.iter().map(|f| f.line).collect();
        assert_eq!(lines, [2, 6, 7, 8, 10], "{:?}", check.findings);
    }

    #[test]
    fn torn_tail_is_separated_from_complete_lines() {
        let l = Ledger::parse(Path::new("x"), b"{\"a\":1}\n{\"b\":");
        assert_eq!(l.lines.len(), 1);
        assert_eq!(l.torn, b"{\"b\":");
        let l = Ledger::parse(Path::new("x"), b"");
        assert!(l.lines.is_empty() && l.torn.is_empty());
    }
}
