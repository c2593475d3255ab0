//! The `release` command: the one path on which noise is drawn and budget is spent.
//!
//! Owns the order that the privacy invariants require: validate, read the inputs (fingerprinting
//! them), lock the ledger for the whole transaction, check it against the release folders that
//! witness its charges, finish what an interrupted run left (roll forward), decide whether this
//! is a re-run, check the budget, append and fsync the charge, and only then draw noise,
//! post-process on noisy values, write the folder atomically and record the publication. Must
//! never draw noise before the charge is on disk, and never pay twice for one version of a
//! release.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::commands::{calibrate, print, read_all};
use crate::error::Error;
use crate::hash::{nonce, sha256_hex};
use crate::ledger::{Body, Entry, LedgerError, LockedLedger, TableCharge};
use crate::mechanism::{self, NOISE_RNG, NoiseMechanism, OPENDP_VERSION};
use crate::output::{
    self, Bounds, CostEntry, FileHash, InputEntry, Manifest, ManifestLedger, ManifestRelease,
    PolicyEntry, PublishedTable, RngInfo, SensitivityEntry, Suppression, TableEntry, ToolInfo,
    TotalCost,
};
use crate::plan::{self, Bound, Cost, InputKind, Mechanism, Plan, Statistic, TableSpec};
use crate::postprocess::finish_cells;

/// Where contribution bounding's random choices come from.
const BOUNDING_RNG: &str = "rand StdRng (ChaCha12) seeded from the operating system: row priorities, and the secret 128-bit keys of the keyed mix (SplitMix64 finaliser) that gives count_units cell priorities";
const COMPOSITION: &str = "opendp CompositionMeasure::compose (basic sequential composition); pure-DP tables cast to zCDP with make_pureDP_to_zCDP when any table is zCDP";

/// The ledger to use: `--ledger` (or `SAFESTAT_LEDGER`), else the plan's (the policy's
/// `ledger`, else `ledger/<dataset>.jsonl`, both beside the policy file).
pub fn ledger_path(flag: Option<PathBuf>, plan: &Plan) -> PathBuf {
    flag.unwrap_or_else(|| plan.ledger.clone())
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

/// What the ledger says about this release id.
enum Decision {
    /// Not released before (or `--new-version`): charge and draw this version.
    Fresh { version: u32 },
    /// Charged by a run that died before publishing anything (nothing of it was recovered by
    /// [`roll_forward`]): draw under that charge, paying nothing again.
    Resume { version: u32, charge: Box<Entry> },
    /// Published already and the folder is intact: nothing to do.
    AlreadyReleased { version: u32, dir: PathBuf },
}

/// A charge's fields that the release transaction needs.
struct ChargeRef<'a> {
    release_id: &'a str,
    version: u32,
    plan_sha256: &'a str,
    inputs: &'a BTreeMap<String, String>,
    out_dir: &'a str,
}

fn charge_ref(e: &Entry) -> Option<ChargeRef<'_>> {
    match &e.body {
        Body::Charge {
            release_id,
            version,
            plan_sha256,
            inputs,
            out_dir,
            ..
        } => Some(ChargeRef {
            release_id,
            version: *version,
            plan_sha256,
            inputs,
            out_dir,
        }),
        _ => None,
    }
}

/// Refuses when a release folder of this dataset names a charge that the ledger does not hold
/// (its line is missing or differs): the ledger lost lines from its end, or was replaced by
/// another, and budget it already spent would be spent again. Looks in the plan's releases
/// folder, beside every folder the ledger records, and beside `--out`.
fn check_witnesses(locked: &LockedLedger, plan: &Plan, out: Option<&Path>) -> Result<(), Error> {
    let ledger = &locked.ledger;
    let mut roots = vec![plan.releases.clone()];
    roots.extend(recorded_roots(ledger));
    roots.extend(out.and_then(Path::parent).map(Path::to_path_buf));
    for (dir, m) in output::release_folders(&roots, &plan.dataset) {
        if !ledger.has_charge(m.ledger.charge_seq, &m.ledger.charge_sha256) {
            return Err(LedgerError::Witness {
                path: ledger.path.clone(),
                folder: dir,
                release_id: m.release.id,
                version: m.release.version,
                seq: m.ledger.charge_seq,
            }
            .into());
        }
    }
    Ok(())
}

/// The folders that hold the release folders a ledger records.
pub(crate) fn recorded_roots(ledger: &crate::ledger::Ledger) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ledger
        .entries()
        .filter_map(|e| match &e.body {
            Body::Charge { out_dir, .. } | Body::Published { out_dir, .. } => {
                ledger.resolve(out_dir).parent().map(Path::to_path_buf)
            }
            _ => None,
        })
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// Finishes what interrupted runs left, under the lock (so no other run is still writing): a
/// charge whose folder is complete and carries that charge's hash gets its `published` entry;
/// a whole unfinished folder of such a charge is renamed into place first; any other
/// unfinished folder of an unpublished charge is removed (it was never published). Returns a
/// note per thing done.
fn roll_forward(locked: &mut LockedLedger) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let pending: Vec<(usize, Entry)> = locked
        .ledger
        .unpublished_charges()
        .map(|(line, e)| (line, e.clone()))
        .collect();
    for (line, charge) in pending {
        let c = charge_ref(&charge).expect("unpublished_charges yields charges");
        let dir = locked.ledger.resolve(c.out_dir);
        let charge_sha = sha256_hex(locked.ledger.line_bytes(charge.seq).expect("its own line"));
        let carries_charge = |p: &output::Published| p.manifest.ledger.charge_sha256 == charge_sha;
        let mut published = output::read_published(&dir).ok().filter(carries_charge);
        for partial in output::partial_folders(&dir) {
            let whole = output::read_published(&partial).ok().filter(carries_charge);
            match whole {
                Some(p) if published.is_none() && !dir.exists() => {
                    output::finish_partial(&partial, &dir)?;
                    notes.push(format!(
                        "completed `{}` version {} in {}: an interrupted run had written it whole but not moved it into place",
                        c.release_id,
                        c.version,
                        dir.display()
                    ));
                    published = Some(p);
                }
                _ => {
                    std::fs::remove_dir_all(&partial).map_err(|source| {
                        output::OutputError::Io {
                            path: partial.clone(),
                            source,
                        }
                    })?;
                    notes.push(format!(
                        "removed `{}`, the unfinished folder of an interrupted run (never published)",
                        partial.display()
                    ));
                }
            }
        }
        if let Some(p) = published {
            let dataset = match &charge.body {
                Body::Charge { dataset, .. } => dataset.clone(),
                _ => unreachable!("a charge"),
            };
            let out_dir = c.out_dir.to_string();
            let (release_id, version) = (c.release_id.to_string(), c.version);
            locked.append(Body::Published {
                dataset,
                release_id: release_id.clone(),
                version,
                charge_seq: charge.seq,
                out_dir,
                manifest_sha256: p.manifest_sha256,
                outputs: p.manifest.outputs,
            })?;
            notes.push(format!(
                "recorded the publication of `{release_id}` version {version} (charged at ledger line {line}), which an interrupted run had not"
            ));
        }
    }
    Ok(notes)
}

fn decide(
    locked: &LockedLedger,
    plan: &Plan,
    inputs: &BTreeMap<String, String>,
    new_version: bool,
    out: Option<&Path>,
) -> Result<Decision, LedgerError> {
    let ledger = &locked.ledger;
    let Some((line, charge)) = ledger
        .charges()
        .filter(|(_, e)| charge_ref(e).is_some_and(|c| c.release_id == plan.release_id))
        .last()
    else {
        return Ok(Decision::Fresh { version: 1 });
    };
    let c = charge_ref(charge).expect("a charge");
    let version = c.version;
    let same = c.plan_sha256 == plan.plan_sha256 && c.inputs == inputs;
    let published = ledger.entries().find_map(|e| match &e.body {
        Body::Published {
            charge_seq,
            manifest_sha256,
            out_dir,
            ..
        } if *charge_seq == charge.seq => Some((manifest_sha256.clone(), out_dir.clone())),
        _ => None,
    });
    let resume = || Decision::Resume {
        version,
        charge: Box::new(charge.clone()),
    };
    if new_version {
        return Ok(match published {
            // The latest version was paid for but never published: publishing it is the new
            // version, and it is paid already.
            None if same => resume(),
            _ => Decision::Fresh {
                version: version + 1,
            },
        });
    }
    let id = &plan.release_id;
    if !same {
        let what = if c.plan_sha256 != plan.plan_sha256 {
            "a different policy (not only in comments or layout: its tables, categories, bounds, costs, budget or title)"
        } else {
            "different inputs"
        };
        return Err(LedgerError::Refused(format!(
            "release `{id}` version {version} (ledger line {line}) was made from {what}; a changed release needs `--new-version` (fresh noise and a fresh charge)"
        )));
    }
    let Some((manifest_sha256, recorded)) = published else {
        return Ok(resume());
    };
    let dir = out.map_or_else(|| ledger.resolve(&recorded), Path::to_path_buf);
    match output::read_published(&dir) {
        Ok(p) if p.manifest_sha256 == manifest_sha256 => {
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

/// Locks the ledger for the whole release and checks that it may be charged: it verifies, it
/// belongs to this dataset and budget, and a torn last line is repaired. Says so when it starts
/// a new ledger.
fn open_ledger(plan: &Plan, ledger_file: &Path) -> Result<LockedLedger, Error> {
    let mut locked = LockedLedger::open(ledger_file)?;
    if locked.created || locked.ledger.lines.is_empty() && locked.ledger.torn.is_empty() {
        eprintln!(
            "safestat: note: starting a new budget ledger `{}` for dataset `{}` ({}); every later release of this dataset must use this ledger",
            ledger_file.display(),
            plan.dataset,
            plan.accounting.describe()
        );
    }
    let findings = locked.ledger.verify();
    if !findings.is_empty() {
        return Err(LedgerError::Corrupt {
            path: ledger_file.to_path_buf(),
            findings,
        }
        .into());
    }
    if let Some((dataset, budget)) = locked.ledger.identity() {
        if dataset != plan.dataset {
            return Err(LedgerError::Mismatch {
                path: ledger_file.to_path_buf(),
                what: format!("dataset `{dataset}`, not `{}`", plan.dataset),
                fix: "give each dataset its own ledger".into(),
            }
            .into());
        }
        if *budget != plan.budget {
            return Err(LedgerError::Mismatch {
                path: ledger_file.to_path_buf(),
                what: format!(
                    "a dataset whose budget is {budget:?}, but the policy says {:?}",
                    plan.budget
                ),
                fix: "a dataset's budget is fixed by its first charge; restore the policy's budget"
                    .into(),
            }
            .into());
        }
    }
    if let Some(n) = locked.repair_torn()? {
        eprintln!(
            "safestat: repaired ledger `{}`: removed a torn last line of {n} bytes (an interrupted write; it drew no noise) and recorded the repair",
            ledger_file.display()
        );
    }
    Ok(locked)
}

/// The charge this release is drawn under, and where it goes.
struct Paid {
    version: u32,
    seq: u64,
    charge_sha256: String,
    cost: f64,
    total_after: f64,
    out_dir: PathBuf,
    /// Paid by an earlier, interrupted run.
    resumed: bool,
}

pub fn release(
    policy: &Path,
    out: Option<PathBuf>,
    json: bool,
    ledger_flag: Option<PathBuf>,
    new_version: bool,
    read_options: &crate::input::ReadOptions,
) -> Result<(), Error> {
    let plan = plan::load(policy)?;
    let acc = plan.accounting;
    let ledger_file = ledger_path(ledger_flag, &plan);
    let mechs = calibrate(&plan)?;
    let charges = plan
        .tables
        .iter()
        .zip(&mechs)
        .map(|(t, m)| {
            Ok(TableCharge {
                name: t.name.clone(),
                cost: m.cost()?,
                charged: acc.table_charge(m)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let cost = acc.compose(charges.iter().map(|c| c.charged).collect())?;
    // Read (and fingerprint) the inputs before taking the lock: no noise yet, and the
    // fingerprints decide whether this is a re-run.
    let mut data = read_all(&plan, read_options)?;
    let inputs: BTreeMap<String, String> = plan
        .inputs
        .iter()
        .zip(&data.results)
        .map(|(spec, r)| (spec.name.clone(), r.sha256.clone()))
        .collect();

    // The lock is held until the publication is recorded, so whatever an unpublished charge
    // left behind when the lock is taken belongs to a run that is no longer alive.
    let mut locked = open_ledger(&plan, &ledger_file)?;
    check_witnesses(&locked, &plan, out.as_deref())?;
    for note in roll_forward(&mut locked)? {
        eprintln!("safestat: {note}");
    }
    let paid = match decide(&locked, &plan, &inputs, new_version, out.as_deref())? {
        Decision::AlreadyReleased { version, dir } => {
            return print(&format!(
                "already released: `{}` version {version} is in {} and matches the ledger; nothing drawn, nothing charged\n",
                plan.release_id,
                dir.display()
            ));
        }
        Decision::Resume { version, charge } => {
            let Body::Charge {
                cost,
                total_after,
                out_dir,
                ..
            } = &charge.body
            else {
                unreachable!("a charge")
            };
            let out_dir = out
                .clone()
                .unwrap_or_else(|| locked.ledger.resolve(out_dir));
            output::ensure_absent(&out_dir)?;
            eprintln!(
                "safestat: resuming `{}` version {version}: it was paid for at ledger line {} by a run that was interrupted before publishing; drawing under that charge, charging nothing again",
                plan.release_id, charge.seq
            );
            Paid {
                version,
                seq: charge.seq,
                charge_sha256: sha256_hex(locked.ledger.line_bytes(charge.seq).expect("present")),
                cost: *cost,
                total_after: *total_after,
                out_dir,
                resumed: true,
            }
        }
        Decision::Fresh { version } => {
            let out_dir = out
                .clone()
                .unwrap_or_else(|| default_out_dir(&plan, version));
            output::ensure_absent(&out_dir)?;
            charge(&mut locked, &plan, charges, cost, inputs, version, out_dir)?
        }
    };

    // Only now, with the charge on disk: noise, then post-processing on noisy values only.
    let (files, summary) = draw_tables(&plan, &mechs, &mut data, json)?;
    let manifest = build_manifest(
        &plan,
        policy,
        &mechs,
        &paid,
        files.as_slice(),
        summary.entries,
    )?;
    let outputs = manifest.outputs.clone();
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialising to memory");
    manifest_bytes.push(b'\n');
    let manifest_sha256 = sha256_hex(&manifest_bytes);
    let mut files = files;
    files.push(("manifest.json".to_string(), manifest_bytes));
    output::write_folder_atomically(&paid.out_dir, &files)?;
    locked.append(Body::Published {
        dataset: plan.dataset.clone(),
        release_id: plan.release_id.clone(),
        version: paid.version,
        charge_seq: paid.seq,
        out_dir: locked.ledger.record(&paid.out_dir),
        manifest_sha256,
        outputs,
    })?;
    drop(locked);

    let mut r = String::new();
    let _ = writeln!(
        r,
        "released `{}` version {} to {}",
        plan.release_id,
        paid.version,
        paid.out_dir.display()
    );
    let _ = writeln!(
        r,
        "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
        "table", "cells", "suppressed", "mechanism", "cost", "margin"
    );
    r.push_str(&summary.text);
    let total = mechanism::compose(&mechs.iter().collect::<Vec<_>>())?;
    let paid_how = if paid.resumed {
        format!(
            "paid {} at ledger line {} by the interrupted run; charged nothing now",
            acc.amount(paid.cost),
            paid.seq
        )
    } else {
        format!("charged {}", acc.amount(paid.cost))
    };
    let _ = writeln!(
        r,
        "total cost: {total} (composed by opendp); {paid_how} to `{}`, {} spent of {}",
        ledger_file.display(),
        acc.amount(paid.total_after),
        acc.describe()
    );
    for note in &summary.notes {
        let _ = writeln!(r, "{note}");
    }
    let _ = writeln!(
        r,
        "manifest: {}",
        paid.out_dir.join("manifest.json").display()
    );
    print(&r)
}

/// Checks the budget and appends the charge (fsynced) under the lock. Composing (spent, cost) is
/// exactly the in-order composition of every charge that `Ledger::verify` recomputes.
fn charge(
    locked: &mut LockedLedger,
    plan: &Plan,
    tables: Vec<TableCharge>,
    cost: f64,
    inputs: BTreeMap<String, String>,
    version: u32,
    out_dir: PathBuf,
) -> Result<Paid, Error> {
    let acc = plan.accounting;
    let spent = locked.ledger.spent(&acc)?;
    let total_after = acc.compose(vec![spent, cost])?;
    if !acc.fits(total_after)? {
        let remaining = (acc.capacity()? - spent).max(0.0);
        return Err(LedgerError::OverBudget {
            dataset: plan.dataset.clone(),
            budget: acc.describe(),
            spent: acc.amount(spent),
            requested: acc.amount(cost),
            remaining: acc.amount(remaining),
        }
        .into());
    }
    // The folder that will hold the release exists before the charge, so the charge records
    // its path exactly (relative to the ledger's folder).
    if let Some(parent) = out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| output::OutputError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let entry = locked.append(Body::Charge {
        dataset: plan.dataset.clone(),
        release_id: plan.release_id.clone(),
        version,
        policy_sha256: plan.policy_sha256.clone(),
        plan_sha256: plan.plan_sha256.clone(),
        inputs,
        nonce: nonce(),
        accounting: acc.name().to_string(),
        budget: plan.budget,
        unit: acc.unit().to_string(),
        tables,
        cost,
        total_after,
        out_dir: locked.ledger.record(&out_dir),
    })?;
    Ok(Paid {
        version,
        seq: entry.seq,
        charge_sha256: locked.last_line_sha256(),
        cost,
        total_after,
        out_dir,
        resumed: false,
    })
}

/// The summary lines, the manifest's table entries and notes for the officer.
struct Summary {
    text: String,
    entries: Vec<TableEntry>,
    notes: Vec<String>,
}

/// Draws every table's noise (the exact cells are dropped as soon as it is added), post-processes
/// the noisy values and formats the files.
fn draw_tables(
    plan: &Plan,
    mechs: &[NoiseMechanism],
    data: &mut crate::commands::InputData,
    json: bool,
) -> Result<(output::Files, Summary), Error> {
    let mut files: output::Files = Vec::new();
    let mut summary = Summary {
        text: String::new(),
        entries: Vec::new(),
        notes: Vec::new(),
    };
    for (spec, result) in plan.inputs.iter().zip(&data.results) {
        if result.rows == 0 {
            summary.notes.push(format!(
                "warning: input `{}` has no rows: its tables are noise only",
                spec.name
            ));
        }
    }
    for (i, (t, m)) in plan.tables.iter().zip(mechs).enumerate() {
        let exact = data.take_exact(i);
        let noisy = m.invoke(&exact)?;
        drop(exact);
        let (cells, suppressed) =
            finish_cells(noisy, t.statistic.is_non_negative(), t.suppress_below);
        let moe = m.margin_of_error(t.confidence)?;
        let table = PublishedTable {
            name: &t.name,
            dimensions: t
                .dims
                .iter()
                .map(|&d| plan.dimensions[d].name.as_str())
                .collect(),
            categories: t
                .dims
                .iter()
                .map(|&d| plan.dimensions[d].categories.as_slice())
                .collect(),
            cells: &cells,
            margin_of_error: moe,
            confidence: t.confidence,
        };
        let mut names = vec![format!("{}.csv", t.name)];
        files.push((names[0].clone(), table.to_csv()));
        if json {
            names.push(format!("{}.json", t.name));
            files.push((names[1].clone(), table.to_json()));
        }
        let cost = m.cost()?;
        let _ = writeln!(
            summary.text,
            "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
            t.name,
            cells.len(),
            suppressed,
            t.mechanism.to_string(),
            cost.to_string(),
            format!("±{moe} ({}%)", t.confidence * 100.0)
        );
        if !plan.bounds_enforced(t) {
            summary.notes.push(format!(
                "note: `{}` reads pre-counted input: it is differentially private only if the declared bound holds (safestat cannot enforce it)",
                t.name
            ));
        }
        summary.entries.push(table_entry(
            plan,
            t,
            m,
            cost,
            names,
            cells.len(),
            suppressed,
            moe,
        ));
    }
    Ok((files, summary))
}

fn build_manifest(
    plan: &Plan,
    policy: &Path,
    mechs: &[NoiseMechanism],
    paid: &Paid,
    files: &[(String, Vec<u8>)],
    tables: Vec<TableEntry>,
) -> Result<Manifest, Error> {
    let acc = plan.accounting;
    let total = mechanism::compose(&mechs.iter().collect::<Vec<_>>())?;
    Ok(Manifest {
        manifest_format: output::MANIFEST_FORMAT,
        release: ManifestRelease {
            id: plan.release_id.clone(),
            version: paid.version,
            title: plan.title.clone(),
        },
        dataset: plan.dataset.clone(),
        privacy_unit: plan.privacy_unit.clone(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        tool: ToolInfo {
            name: "safestat",
            version: env!("CARGO_PKG_VERSION"),
            opendp_version: OPENDP_VERSION,
        },
        rng: RngInfo {
            noise: NOISE_RNG,
            contribution_bounding: BOUNDING_RNG,
        },
        policy: PolicyEntry {
            file: policy
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: plan.policy_sha256.clone(),
            plan_sha256: plan.plan_sha256.clone(),
        },
        inputs: plan
            .inputs
            .iter()
            .map(|spec| InputEntry {
                name: spec.name.clone(),
                kind: match spec.kind {
                    InputKind::Microdata => "microdata",
                    InputKind::Aggregated { .. } => "aggregated",
                },
                contribution_bounds: match spec.kind {
                    InputKind::Microdata => "enforced",
                    InputKind::Aggregated { .. } => "declared",
                },
            })
            .collect(),
        tables,
        total_cost: total_cost(total),
        ledger: ManifestLedger {
            accounting: acc.name(),
            budget: plan.budget,
            charge_seq: paid.seq,
            charge_sha256: paid.charge_sha256.clone(),
            unit: acc.unit(),
            charged: paid.cost,
            total_after: paid.total_after,
        },
        outputs: files
            .iter()
            .map(|(name, bytes)| FileHash {
                path: name.clone(),
                sha256: sha256_hex(bytes),
            })
            .collect(),
    })
}

fn total_cost(total: Cost) -> TotalCost {
    let (measure, epsilon, rho) = total.parts();
    TotalCost {
        measure,
        epsilon,
        rho,
        delta: 0.0,
        composition: COMPOSITION,
    }
}

#[allow(clippy::too_many_arguments)]
fn table_entry(
    plan: &Plan,
    t: &TableSpec,
    m: &NoiseMechanism,
    cost: Cost,
    files: Vec<String>,
    cells: usize,
    suppressed: usize,
    moe: i64,
) -> TableEntry {
    let (column, clamp) = match &t.statistic {
        Statistic::Sum { column, lo, hi, .. } => (Some(column.clone()), Some([*lo, *hi])),
        _ => (None, None),
    };
    let status = plan.bounds_status(t);
    let contribution_bounds = match t.statistic.bound() {
        Bound::Cells(c) => Bounds {
            status,
            max_cells_per_unit: Some(c),
            max_rows_per_unit: None,
            max_rows_per_cell: None,
        },
        Bound::Rows { per_unit, per_cell } => Bounds {
            status,
            max_cells_per_unit: None,
            max_rows_per_unit: Some(per_unit),
            max_rows_per_cell: Some(per_cell),
        },
    };
    let (norm, computed_by) = match (t.mechanism, cost) {
        (Mechanism::Laplace, Cost::Epsilon(_)) => ("l1", "opendp make_laplace privacy map"),
        (Mechanism::Laplace, Cost::Rho(_)) => {
            ("l1", "opendp make_pureDP_to_zCDP(make_laplace) privacy map")
        }
        (Mechanism::Gaussian, _) => ("l2", "opendp make_gaussian privacy map"),
    };
    let (protection, guarantee) = if plan.bounds_enforced(t) {
        (
            "differential_privacy",
            format!(
                "{cost} differential privacy for every {}: safestat enforced the contribution bounds",
                plan.privacy_unit
            ),
        )
    } else {
        (
            "differential_privacy_if_declared_bounds_hold",
            format!(
                "{cost} differential privacy for every {} only if the declared contribution bounds hold: the input was counted elsewhere and safestat could not enforce them",
                plan.privacy_unit
            ),
        )
    };
    let mut post_processing = Vec::new();
    if t.statistic.is_non_negative() {
        post_processing.push("negative noisy values clamped to 0");
    }
    TableEntry {
        name: t.name.clone(),
        files,
        input: plan.inputs[t.input].name.clone(),
        statistic: t.statistic.name(),
        column,
        clamp,
        dimensions: t
            .dims
            .iter()
            .map(|&d| plan.dimensions[d].name.clone())
            .collect(),
        cells,
        protection,
        guarantee,
        contribution_bounds,
        mechanism: t.mechanism,
        sensitivity: SensitivityEntry {
            norm,
            value: m.d_in,
        },
        noise_scale: m.scale,
        privacy_cost: CostEntry::new(cost, t.cost, t.cost_source, computed_by),
        confidence: t.confidence,
        margin_of_error: moe,
        post_processing,
        suppression: Suppression {
            rule: format!(
                "a cell whose published (noisy) value is below {} is shown as suppressed",
                t.suppress_below
            ),
            threshold: t.suppress_below,
            decided_on: "noisy values",
            cells_suppressed: suppressed,
        },
    }
}
