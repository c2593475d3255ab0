//! The release transaction: everything between "the inputs are read" and "noise may be drawn".
//!
//! [`begin`] locks the ledger for the whole release (so whatever an unpublished charge left
//! behind belongs to a run that is no longer alive), verifies it, checks it against the release
//! folders that witness its charges, finishes what interrupted runs left (roll forward), decides
//! whether this is a re-run, checks the budget and appends the fsynced charge. Only then does
//! the caller draw noise, and [`Charged::publish`] records the publication and releases the
//! lock. Never pays twice for one version of a release.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Body, Charge, ChargeAt, LedgerError, LockedLedger, Publication, TableCharge};
use crate::hash::{nonce, sha256_hex};
use crate::output::{self, FileHash, OutputError};
use crate::policy::Plan;

/// What a release asks of its ledger.
pub struct Request<'a> {
    pub plan: &'a Plan,
    /// Each input's fingerprint, in the current scheme and (when the ledger asked for it) the
    /// legacy one.
    pub inputs: crate::hash::Fingerprints,
    /// How each SQL input was read (see [`super::SourceRead`]).
    pub sources: BTreeMap<String, super::SourceRead>,
    /// Each table's cost, as opendp maps it and in the ledger's unit.
    pub tables: Vec<TableCharge>,
    /// The exact tables' names (charged nothing).
    pub exact_tables: Vec<String>,
    /// The earlier releases' exact tables they were protected with.
    pub exact_links: Vec<super::LinkedTable>,
    /// The charges whose published exact tables the release's were protected with in mind
    /// ([`super::Ledger::published_exact`] when it read the ledger); `None` without exact tables.
    pub exact_seen: Option<Vec<u64>>,
    /// Per exact table, the digest of its cells.
    pub exact_digests: BTreeMap<String, String>,
    /// Inputs holding the same data as another input, whose exact tables were protected as one.
    pub same_data: BTreeMap<String, String>,
    /// The release's cost, composed by opendp.
    pub cost: f64,
    pub new_version: bool,
    /// `--out`, when given.
    pub out: Option<&'a Path>,
    /// The key that will sign the manifest (public parts), if the release is signed.
    pub signing_key: Option<super::SigningRecord>,
    /// How long to wait for the ledger's lock (`None`: as long as it takes).
    pub lock_timeout: Option<std::time::Duration>,
}

/// How the transaction began.
pub enum Begun {
    /// Published already and the folder is intact: nothing to draw, nothing to charge.
    AlreadyReleased {
        version: u32,
        dir: PathBuf,
        notes: Vec<String>,
    },
    /// Paid for (now, or by an interrupted run): the caller may draw noise.
    Charged(Box<Charged>),
}

/// A release paid for, with the ledger still locked until [`Charged::publish`].
pub struct Charged {
    locked: LockedLedger,
    pub version: u32,
    /// The charge's sequence number and the SHA-256 of its line (which holds a secret nonce).
    pub seq: u64,
    pub charge_sha256: String,
    /// The release's cost and the dataset's total after it, in the ledger's unit.
    pub cost: f64,
    pub total_after: f64,
    pub out_dir: PathBuf,
    /// The release's public budget statement (see [`super::Ledger::statements`]).
    pub statement: crate::output::BudgetStatement,
    /// Paid by an earlier, interrupted run: nothing was charged now.
    pub resumed: bool,
    /// Resumed with other links of its exact tables than its charge records (exact tables
    /// published in between): recorded with its publication.
    relinked: Option<(Vec<super::LinkedTable>, BTreeMap<String, String>)>,
    /// What the transaction did before the charge (roll forward, a resumed charge), for stderr.
    pub notes: Vec<String>,
}

impl Charged {
    /// Records the publication of the folder now in place, then releases the lock.
    pub fn publish(
        mut self,
        plan: &Plan,
        manifest_sha256: String,
        outputs: Vec<FileHash>,
        content_sha256: String,
    ) -> Result<(), LedgerError> {
        let out_dir = self.locked.ledger.record(&self.out_dir);
        self.locked.append(Body::Published(Publication {
            dataset: plan.dataset.clone(),
            release_id: plan.release_id.clone(),
            version: self.version,
            charge_seq: self.seq,
            out_dir,
            manifest_sha256,
            outputs,
            content_sha256: Some(content_sha256),
            exact_links: self.relinked.as_ref().map(|(links, _)| links.clone()),
            same_data: self.relinked.map(|(_, same)| same),
        }))?;
        Ok(())
    }
}

/// Locks `ledger_file` and takes the release as far as its charge (see the module's header).
pub fn begin(ledger_file: &Path, request: Request) -> Result<Begun, LedgerError> {
    let plan = request.plan;
    let mut notes = Vec::new();
    let mut locked = open(plan, ledger_file, request.lock_timeout, &mut notes)?;
    check_witnesses(&locked, plan, request.out)?;
    notes.extend(roll_forward(&mut locked)?);
    refuse_if_exact_moved(&locked, &request)?;
    match decide(&locked, &request)? {
        Decision::AlreadyReleased { version, dir } => Ok(Begun::AlreadyReleased {
            version,
            dir,
            notes,
        }),
        Decision::Resume { version, seq } => resume(locked, request, (version, seq), notes),
        Decision::Fresh { version } => {
            if let (Some(signed), None) = (locked.ledger.signing_key(), &request.signing_key) {
                return Err(LedgerError::Refused(format!(
                    "dataset `{}` is signed (its releases so far by key {}), so every release of it must be: name the secret key with `[dataset] signing_key` or SAFESTAT_SIGNING_KEY. Nothing was charged",
                    plan.dataset, signed.id
                )));
            }
            if let (Some(signed), Some(key)) = (locked.ledger.signing_key(), &request.signing_key)
                && signed.id != key.id
            {
                notes.push(format!(
                    "note: signing with key {}; the dataset's releases so far were signed by key {}: readers who check them with that key's public file need the new one",
                    key.id, signed.id
                ));
            }
            let out_dir = request
                .out
                .map_or_else(|| default_out_dir(plan, version), Path::to_path_buf);
            output::ensure_absent(&out_dir)?;
            charge(locked, request, version, out_dir, notes).map(|c| Begun::Charged(Box::new(c)))
        }
    }
}

/// Exact tables published since this release read the ledger (a run rolled forward just now, or
/// another release in the meantime) must be protected with this release's: refused, to be run
/// again.
fn refuse_if_exact_moved(locked: &LockedLedger, request: &Request) -> Result<(), LedgerError> {
    let Some(seen) = &request.exact_seen else {
        return Ok(());
    };
    let plan = request.plan;
    let except = (!request.new_version).then_some(plan.release_id.as_str());
    let now = locked.ledger.published_exact(&plan.dataset, except);
    let Some(&seq) = now.iter().find(|s| !seen.contains(s)) else {
        return Ok(());
    };
    let c = locked
        .ledger
        .charges()
        .find(|c| c.seq == seq)
        .map(|c| format!("`{}` version {}", c.charge.release_id, c.charge.version))
        .unwrap_or_default();
    Err(LedgerError::Moved(format!(
        "release {c} published exact tables of dataset `{}` after this release read the ledger (an interrupted run finished now, or a release ran at the same time); this release's exact tables must be protected together with them: run it again. Nothing was charged",
        plan.dataset
    )))
}

/// Resumes `version`, paid for at ledger line `seq` by a run interrupted before publishing: it
/// draws under that charge (with the same signing key), charging nothing again.
fn resume(
    locked: LockedLedger,
    request: Request,
    (version, seq): (u32, u64),
    mut notes: Vec<String>,
) -> Result<Begun, LedgerError> {
    let plan = request.plan;
    let charge = locked
        .ledger
        .charges()
        .find(|c| c.seq == seq)
        .map(|c| c.charge.clone())
        .expect("decided on a charge of this ledger");
    if charge.signing_key != request.signing_key {
        let key = |k: &Option<super::SigningRecord>| {
            k.as_ref()
                .map_or("no key (unsigned)".to_string(), |k| format!("key {}", k.id))
        };
        return Err(LedgerError::Refused(format!(
            "`{}` version {version} was paid for at ledger line {seq} to be signed with {}, but this run signs with {}; resume it with the same signing key (nothing was charged)",
            plan.release_id,
            key(&charge.signing_key),
            key(&request.signing_key)
        )));
    }
    let out_dir = request
        .out
        .map_or_else(|| locked.ledger.resolve(&charge.out_dir), Path::to_path_buf);
    output::ensure_absent(&out_dir)?;
    notes.push(format!(
        "resuming `{}` version {version}: it was paid for at ledger line {seq} by a run that was interrupted before publishing; drawing under that charge, charging nothing again",
        plan.release_id
    ));
    let charge_sha256 = sha256_hex(locked.ledger.line_bytes(seq).expect("present"));
    let statement = locked
        .ledger
        .statement_of(seq)
        .expect("a charge's statement");
    Ok(Begun::Charged(Box::new(Charged {
        locked,
        version,
        seq,
        charge_sha256,
        cost: charge.cost,
        total_after: charge.total_after,
        out_dir,
        statement,
        resumed: true,
        relinked: (charge.exact_links != request.exact_links
            || charge.same_data != request.same_data)
            .then(|| (request.exact_links.clone(), request.same_data.clone())),
        notes,
    })))
}

/// The default output folder, in the plan's releases folder: `<id>` for version 1, `<id>.v<N>`
/// after.
fn default_out_dir(plan: &Plan, version: u32) -> PathBuf {
    let id = &plan.release_id;
    plan.releases.join(if version == 1 {
        id.to_string()
    } else {
        format!("{id}.v{version}")
    })
}

/// Locks the ledger and checks that it may be charged: it verifies, it belongs to this dataset
/// and budget, and a torn last line is repaired. Says so when it starts a new ledger.
fn open(
    plan: &Plan,
    ledger_file: &Path,
    lock_timeout: Option<std::time::Duration>,
    notes: &mut Vec<String>,
) -> Result<LockedLedger, LedgerError> {
    let mut locked = LockedLedger::open(ledger_file, lock_timeout)?;
    if locked.created || locked.ledger.lines.is_empty() && locked.ledger.torn.is_empty() {
        notes.push(format!(
            "note: starting a new budget ledger `{}` for dataset `{}` ({}); every later release of this dataset must use this ledger",
            ledger_file.display(),
            plan.dataset,
            plan.accounting.describe()
        ));
    }
    let findings = locked.ledger.verify();
    if !findings.is_empty() {
        return Err(LedgerError::Corrupt {
            path: ledger_file.to_path_buf(),
            findings,
        });
    }
    if let Some((dataset, budget)) = locked.ledger.identity() {
        if dataset != plan.dataset {
            return Err(LedgerError::Mismatch {
                path: ledger_file.to_path_buf(),
                what: format!("dataset `{dataset}`, not `{}`", plan.dataset),
                fix: "give each dataset its own ledger".into(),
            });
        }
        // A policy of exact tables only may give no budget: its charge states the dataset's. A
        // dataset that had none (exact tables only) is given the first budget a policy states.
        if *budget != plan.budget && !budget.is_none() && !plan.budget.is_none() {
            return Err(LedgerError::Mismatch {
                path: ledger_file.to_path_buf(),
                what: format!(
                    "a dataset whose budget is {}, but the policy says {}",
                    describe(budget),
                    describe(&plan.budget)
                ),
                fix: "a dataset's budget is fixed by its first charge; restore the policy's budget"
                    .into(),
            });
        }
    }
    if let Some(n) = locked.repair_torn()? {
        notes.push(format!(
            "repaired ledger `{}`: removed a torn last line of {n} bytes (an interrupted write; it drew no noise) and recorded the repair",
            ledger_file.display()
        ));
    }
    Ok(locked)
}

/// Refuses when a release folder of this dataset names a charge that the ledger does not hold
/// (its line is missing or differs): the ledger lost lines from its end, or was replaced by
/// another, and budget it already spent would be spent again. Looks in the plan's releases
/// folder, beside every folder the ledger records, and beside `--out`.
fn check_witnesses(
    locked: &LockedLedger,
    plan: &Plan,
    out: Option<&Path>,
) -> Result<(), LedgerError> {
    let ledger = &locked.ledger;
    let mut roots = vec![plan.releases.clone()];
    roots.extend(ledger.recorded_roots());
    roots.extend(out.and_then(Path::parent).map(Path::to_path_buf));
    match ledger
        .missing_charges_of(&plan.dataset, &roots)
        .into_iter()
        .next()
    {
        None => Ok(()),
        Some(missing) => Err(LedgerError::Witness {
            path: ledger.path.clone(),
            folder: missing.folder,
            release_id: missing.release_id,
            version: missing.version,
            seq: missing.seq,
        }),
    }
}

/// Finishes what interrupted runs left, under the lock (so no other run is still writing): a
/// charge whose folder is complete and carries that charge's hash gets its `published` entry;
/// a whole unfinished folder of such a charge is renamed into place first; any other
/// unfinished folder of an unpublished charge is removed (it was never published). Returns a
/// note per thing done.
fn roll_forward(locked: &mut LockedLedger) -> Result<Vec<String>, LedgerError> {
    let mut notes = Vec::new();
    let pending: Vec<(usize, u64, Charge)> = locked
        .ledger
        .unpublished_charges()
        .map(|c| (c.line, c.seq, c.charge.clone()))
        .collect();
    for (line, seq, charge) in pending {
        let dir = locked.ledger.resolve(&charge.out_dir);
        let charge_sha = sha256_hex(locked.ledger.line_bytes(seq).expect("its own line"));
        let carries_charge = |p: &output::Published| p.manifest.ledger.charge_sha256 == charge_sha;
        let mut published = output::read_published(&dir).ok().filter(carries_charge);
        for partial in output::partial_folders(&dir) {
            match output::read_published(&partial).ok().filter(carries_charge) {
                Some(p) if published.is_none() && !dir.exists() => {
                    output::finish_partial(&partial, &dir)?;
                    notes.push(format!(
                        "completed `{}` version {} in {}: an interrupted run had written it whole but not moved it into place",
                        charge.release_id,
                        charge.version,
                        dir.display()
                    ));
                    published = Some(p);
                }
                _ => {
                    std::fs::remove_dir_all(&partial).map_err(|source| OutputError::Io {
                        path: partial.clone(),
                        source,
                    })?;
                    notes.push(format!(
                        "removed `{}`, the unfinished folder of an interrupted run (never published)",
                        partial.display()
                    ));
                }
            }
        }
        if let Some(p) = published {
            locked.append(Body::Published(Publication {
                dataset: charge.dataset.clone(),
                release_id: charge.release_id.clone(),
                version: charge.version,
                charge_seq: seq,
                out_dir: charge.out_dir.clone(),
                manifest_sha256: p.manifest_sha256,
                content_sha256: Some(crate::output::content_sha256(&p.manifest)),
                outputs: p.manifest.outputs,
                exact_links: None,
                same_data: None,
            }))?;
            notes.push(format!(
                "recorded the publication of `{}` version {} (charged at ledger line {line}), which an interrupted run had not",
                charge.release_id, charge.version
            ));
        }
    }
    Ok(notes)
}

/// What the ledger says about this release id.
enum Decision {
    /// Not released before (or `--new-version`): charge and draw this version.
    Fresh { version: u32 },
    /// Charged by a run that died before publishing anything (nothing of it was recovered by
    /// [`roll_forward`]): draw under that charge (sequence number `seq`), paying nothing again.
    Resume { version: u32, seq: u64 },
    /// Published already and the folder is intact: nothing to do.
    AlreadyReleased { version: u32, dir: PathBuf },
}

fn decide(locked: &LockedLedger, request: &Request) -> Result<Decision, LedgerError> {
    let (ledger, plan) = (&locked.ledger, request.plan);
    let Some(ChargeAt { line, seq, charge }) = ledger.last_charge_of(&plan.release_id) else {
        return Ok(Decision::Fresh { version: 1 });
    };
    let version = charge.version;
    // A presentation revision's policy is the release's too (it differs at most in its title).
    let same_plan = charge.plan_sha256 == plan.plan_sha256
        || ledger
            .revisions_of(seq)
            .any(|r| r.plan_sha256 == plan.plan_sha256);
    let same = same_plan && same_inputs(&charge.inputs, &request.inputs);
    let published = ledger.publication_of(seq);
    if request.new_version {
        return Ok(match published {
            // The latest version was paid for but never published: publishing it is the new
            // version, and it is paid already.
            None if same => Decision::Resume { version, seq },
            _ => Decision::Fresh {
                version: version + 1,
            },
        });
    }
    let id = &plan.release_id;
    if !same {
        let (what, presentation) = if !same_plan {
            (
                "a different policy (not only in comments or layout: its tables, categories, bounds, costs, budget or title)",
                if published.is_some() {
                    " (if only its presentation changed, its release title, labels, table titles or notes, `safestat report RELEASE_DIR --policy POLICY` revises the published folder without a charge)"
                } else {
                    ""
                },
            )
        } else {
            ("different inputs", "")
        };
        return Err(LedgerError::Refused(format!(
            "release `{id}` version {version} (ledger line {line}) was made from {what}; a changed release needs `--new-version` (fresh noise and a fresh charge){presentation}"
        )));
    }
    let Some(publication) = published else {
        return Ok(Decision::Resume { version, seq });
    };
    let dir = request
        .out
        .map_or_else(|| ledger.resolve(&publication.out_dir), Path::to_path_buf);
    match output::read_published(&dir) {
        Ok(p) if p.manifest_sha256 == publication.manifest_sha256 => {
            Ok(Decision::AlreadyReleased { version, dir })
        }
        result => {
            let why = match result {
                Ok(_) => "its manifest was altered".to_string(),
                Err((file, why)) => format!("`{}` {why}", file.unwrap_or_default()),
            };
            Err(LedgerError::Refused(format!(
                "release `{id}` version {version} was already published to `{}`, but {why}; nothing is drawn again silently: restore the folder, or publish a new version with `--new-version` (a fresh charge)",
                dir.display()
            )))
        }
    }
}

/// Whether a charge's recorded fingerprints are those of the inputs read: the same names, each
/// in either scheme.
pub fn same_inputs(recorded: &BTreeMap<String, String>, read: &crate::hash::Fingerprints) -> bool {
    recorded.len() == read.len()
        && recorded
            .iter()
            .all(|(name, f)| read.get(name).is_some_and(|r| r.matches(f)))
}

/// Checks the budget and appends the charge (fsynced) under the lock. Composing (spent, cost) is
/// exactly the in-order composition of every charge that `Ledger::verify` recomputes.
fn charge(
    mut locked: LockedLedger,
    request: Request,
    version: u32,
    out_dir: PathBuf,
    notes: Vec<String>,
) -> Result<Charged, LedgerError> {
    let plan = request.plan;
    // The dataset's budget: the policy's, or (a policy of exact tables only, without one) the
    // one the ledger holds.
    let budget = match locked.ledger.identity() {
        Some((_, b)) if plan.budget.is_none() => *b,
        _ => plan.budget,
    };
    // (A verified ledger's budget is valid.)
    let acc = budget.accounting().unwrap_or(plan.accounting);
    let spent = locked.ledger.spent(&acc)?;
    let total_after = acc.compose(vec![spent, request.cost])?;
    if !acc.fits(total_after)? {
        let remaining = (acc.capacity()? - spent).max(0.0);
        return Err(LedgerError::OverBudget {
            dataset: plan.dataset.clone(),
            budget: acc.describe(),
            spent: acc.amount(spent),
            requested: acc.amount(request.cost),
            remaining: acc.amount(remaining),
        });
    }
    // The folder that will hold the release exists before the charge, so the charge records
    // its path exactly (relative to the ledger's folder).
    if let Some(parent) = out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| OutputError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let entry = locked.append(Body::Charge(Box::new(Charge {
        dataset: plan.dataset.clone(),
        release_id: plan.release_id.clone(),
        version,
        policy_sha256: plan.policy_sha256.clone(),
        plan_sha256: plan.plan_sha256.clone(),
        inputs: request
            .inputs
            .into_iter()
            .map(|(name, f)| (name, f.now))
            .collect(),
        sources: request.sources,
        nonce: nonce(),
        accounting: acc.name().to_string(),
        budget,
        unit: acc.unit().to_string(),
        tables: request.tables,
        exact_tables: request.exact_tables,
        exact_links: request.exact_links,
        exact_digests: request.exact_digests,
        same_data: request.same_data,
        cost: request.cost,
        total_after,
        out_dir: locked.ledger.record(&out_dir),
        signing_key: request.signing_key,
    })))?;
    let charge_sha256 = locked.last_line_sha256();
    let statement = locked
        .ledger
        .statement_of(entry.seq)
        .expect("the charge just appended");
    Ok(Charged {
        locked,
        version,
        seq: entry.seq,
        charge_sha256,
        cost: request.cost,
        total_after,
        out_dir,
        statement,
        resumed: false,
        relinked: None,
        notes,
    })
}

/// A budget as the officer reads it (`rho=1 (zCDP)`).
fn describe(budget: &crate::privacy::Budget) -> String {
    budget
        .accounting()
        .map_or_else(|_| format!("{budget:?}"), |a| a.describe())
}
