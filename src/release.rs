//! The `release` command: the one path on which noise is drawn and budget is spent.
//!
//! Owns the order that the privacy invariants require: validate, read the inputs (hashing
//! them), lock the ledger, decide whether this is a re-run, check the budget, append and fsync the
//! charge, unlock, and only then draw noise, post-process on noisy values, write the folder
//! atomically and record the publication. Must never draw noise before the charge is on disk,
//! and never re-draw a release that already exists without `--new-version`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::commands::{calibrate, print, read_all};
use crate::error::Error;
use crate::ledger::{Body, Entry, LedgerError, LockedLedger, TableCharge, sha256_hex};
use crate::mechanism::{self, NOISE_RNG, NoiseMechanism, OPENDP_VERSION};
use crate::output::{
    self, Bounds, CostEntry, FileHash, InputEntry, Manifest, ManifestLedger, ManifestRelease,
    PublishedTable, RngInfo, SensitivityEntry, Suppression, TableEntry, ToolInfo, TotalCost,
};
use crate::plan::{self, Bound, Cost, InputKind, Mechanism, Plan, Statistic, TableSpec};
use crate::postprocess::finish_cells;

/// Where contribution bounding's random choices come from.
const BOUNDING_RNG: &str = "rand StdRng (ChaCha12) seeded from the operating system";
const COMPOSITION: &str = "opendp CompositionMeasure::compose (basic sequential composition); pure-DP tables cast to zCDP with make_pureDP_to_zCDP when any table is zCDP";

/// The ledger to use: `--ledger` (or `SAFESTAT_LEDGER`), else the policy's `ledger`, else
/// `ledger/<dataset>.jsonl` under the current folder.
pub fn ledger_path(flag: Option<PathBuf>, plan: &Plan) -> PathBuf {
    flag.or_else(|| plan.ledger.clone())
        .unwrap_or_else(|| PathBuf::from("ledger").join(format!("{}.jsonl", plan.dataset)))
}

/// The default output folder: `releases/<id>` for version 1, `releases/<id>.v<N>` after.
fn default_out_dir(id: &str, version: u32) -> PathBuf {
    let leaf = if version == 1 {
        id.to_string()
    } else {
        format!("{id}.v{version}")
    };
    PathBuf::from("releases").join(leaf)
}

/// What the ledger says about this release id.
enum Decision {
    /// Not released before (or `--new-version`): draw and charge this version.
    Fresh { version: u32 },
    /// Published already and the folder is intact: nothing to do.
    AlreadyReleased { version: u32, dir: PathBuf },
    /// Charged and written, but the publication was never recorded (a crash after the outputs
    /// were in place): record it, draw nothing.
    RecordPublication {
        version: u32,
        dir: PathBuf,
        charge_seq: u64,
        manifest_sha256: String,
        outputs: Vec<FileHash>,
    },
}

/// Checks that `dir/manifest.json` has the given hash (when one is given) and that every file
/// the manifest lists is present with its hash. Returns the manifest's hash and outputs.
pub(crate) fn folder_intact(
    dir: &Path,
    manifest_sha256: Option<&str>,
) -> Result<(String, Vec<FileHash>), String> {
    let bytes = std::fs::read(dir.join("manifest.json"))
        .map_err(|e| format!("cannot read `{}`: {e}", dir.join("manifest.json").display()))?;
    let sha = sha256_hex(&bytes);
    if let Some(expected) = manifest_sha256
        && expected != sha
    {
        return Err(format!(
            "`{}` was altered",
            dir.join("manifest.json").display()
        ));
    }
    let manifest: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("manifest.json is not valid JSON: {e}"))?;
    let outputs: Vec<FileHash> = serde_json::from_value(manifest["outputs"].clone())
        .map_err(|e| format!("manifest.json has no valid `outputs`: {e}"))?;
    for o in &outputs {
        let path = dir.join(&o.path);
        match std::fs::read(&path) {
            Ok(b) if sha256_hex(&b) == o.sha256 => {}
            Ok(_) => return Err(format!("`{}` was altered", path.display())),
            Err(_) => return Err(format!("`{}` is missing", path.display())),
        }
    }
    Ok((sha, outputs))
}

fn decide(
    locked: &LockedLedger,
    plan: &Plan,
    inputs: &BTreeMap<String, String>,
    new_version: bool,
    out: Option<&Path>,
) -> Result<Decision, LedgerError> {
    let ledger = &locked.ledger;
    let mut latest: Option<(usize, &Entry)> = None;
    for (line, e) in ledger.charges() {
        if let Body::Charge { release_id, .. } = &e.body
            && *release_id == plan.release_id
        {
            latest = Some((line, e));
        }
    }
    let Some((line, charge)) = latest else {
        return Ok(Decision::Fresh { version: 1 });
    };
    let Body::Charge {
        version,
        policy_sha256,
        inputs: charged_inputs,
        out_dir,
        ..
    } = &charge.body
    else {
        unreachable!("charges() yields charges");
    };
    let version = *version;
    if new_version {
        return Ok(Decision::Fresh {
            version: version + 1,
        });
    }
    let refuse = |msg: String| Err(LedgerError::Refused(msg));
    let id = &plan.release_id;
    if *policy_sha256 != plan.policy_sha256 || charged_inputs != inputs {
        let what = if *policy_sha256 != plan.policy_sha256 {
            "policy"
        } else {
            "inputs"
        };
        return refuse(format!(
            "release `{id}` version {version} (ledger line {line}) was made from a different {what}; a changed release needs `--new-version` (fresh noise and a fresh charge)"
        ));
    }
    let dir = out.map_or_else(|| PathBuf::from(out_dir), Path::to_path_buf);
    let published = ledger.entries().find_map(|e| match &e.body {
        Body::Published {
            charge_seq,
            manifest_sha256,
            ..
        } if *charge_seq == charge.seq => Some(manifest_sha256.clone()),
        _ => None,
    });
    match published {
        Some(manifest_sha256) => match folder_intact(&dir, Some(&manifest_sha256)) {
            Ok(_) => Ok(Decision::AlreadyReleased { version, dir }),
            Err(why) => refuse(format!(
                "release `{id}` version {version} was already published to `{}`, but {why}; nothing is drawn again silently: restore the folder, or publish a new version with `--new-version` (a fresh charge)",
                dir.display()
            )),
        },
        None => {
            let charge_sha = sha256_hex(&ledger.lines[line - 1].0);
            let manifest_charge = std::fs::read(dir.join("manifest.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|m| m["ledger"]["charge_sha256"].as_str().map(String::from));
            match (manifest_charge, folder_intact(&dir, None)) {
                (Some(sha), Ok((manifest_sha256, outputs))) if sha == charge_sha => {
                    Ok(Decision::RecordPublication {
                        version,
                        dir,
                        charge_seq: charge.seq,
                        manifest_sha256,
                        outputs,
                    })
                }
                _ => refuse(format!(
                    "release `{id}` version {version} was charged (ledger line {line}) but its publication is not recorded: another run is still writing it, or that run was interrupted (its budget stays spent). Wait and run again; to draw a new version instead, use `--new-version` (a fresh charge)"
                )),
            }
        }
    }
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
    // Read (and hash) the inputs before taking the lock: no noise yet, and the hashes decide
    // whether this is a re-run.
    let mut data = read_all(&plan, read_options)?;
    let inputs: BTreeMap<String, String> = plan
        .inputs
        .iter()
        .zip(&data.results)
        .map(|(spec, r)| (spec.name.clone(), r.sha256.clone()))
        .collect();

    let mut locked = LockedLedger::open(&ledger_file)?;
    let findings = locked.ledger.verify();
    if !findings.is_empty() {
        return Err(LedgerError::Corrupt {
            path: ledger_file,
            findings,
        }
        .into());
    }
    if let Some((dataset, budget)) = locked.ledger.identity() {
        if dataset != plan.dataset {
            return Err(LedgerError::Mismatch {
                path: ledger_file.clone(),
                what: format!("dataset `{dataset}`, not `{}`", plan.dataset),
                fix: "give each dataset its own ledger".into(),
            }
            .into());
        }
        if *budget != plan.budget {
            return Err(LedgerError::Mismatch {
                path: ledger_file.clone(),
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

    let version = match decide(&locked, &plan, &inputs, new_version, out.as_deref())? {
        Decision::Fresh { version } => version,
        Decision::AlreadyReleased { version, dir } => {
            return print(&format!(
                "already released: `{}` version {version} is in {} and matches the ledger; nothing drawn, nothing charged\n",
                plan.release_id,
                dir.display()
            ));
        }
        Decision::RecordPublication {
            version,
            dir,
            charge_seq,
            manifest_sha256,
            outputs,
        } => {
            locked.append(Body::Published {
                dataset: plan.dataset.clone(),
                release_id: plan.release_id.clone(),
                version,
                charge_seq,
                out_dir: dir.display().to_string(),
                manifest_sha256,
                outputs,
            })?;
            return print(&format!(
                "already released: `{}` version {version} is in {}; recorded its publication, which the interrupted run had not; nothing drawn, nothing charged\n",
                plan.release_id,
                dir.display()
            ));
        }
    };
    let out_dir = out.unwrap_or_else(|| default_out_dir(&plan.release_id, version));
    output::ensure_absent(&out_dir)?;

    // The budget check and the charge, under the lock. Composing (spent, cost) is exactly the
    // in-order composition of every charge that `Ledger::verify` recomputes.
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
    let charge = locked.append(Body::Charge {
        dataset: plan.dataset.clone(),
        release_id: plan.release_id.clone(),
        version,
        policy_sha256: plan.policy_sha256.clone(),
        inputs,
        accounting: acc.name().to_string(),
        budget: plan.budget,
        unit: acc.unit().to_string(),
        tables: charges,
        cost,
        total_after,
        out_dir: out_dir.display().to_string(),
    })?;
    let ledger_entry = ManifestLedger {
        path: ledger_file.display().to_string(),
        accounting: acc.name(),
        budget: plan.budget,
        charge_seq: charge.seq,
        charge_sha256: locked.last_line_sha256(),
        unit: acc.unit(),
        charged: cost,
        total_after,
    };
    drop(locked);

    // Only now, with the charge on disk: noise, then post-processing on noisy values only.
    let input_entries: Vec<InputEntry> = plan
        .inputs
        .iter()
        .zip(&data.results)
        .map(|(spec, res)| InputEntry {
            name: spec.name.clone(),
            path: spec.declared_path.display().to_string(),
            kind: match spec.kind {
                InputKind::Microdata => "microdata",
                InputKind::Aggregated { .. } => "aggregated",
            },
            sha256: res.sha256.clone(),
        })
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entries = Vec::new();
    let mut summary = String::new();
    for (i, (t, m)) in plan.tables.iter().zip(&mechs).enumerate() {
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
            summary,
            "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
            t.name,
            cells.len(),
            suppressed,
            t.mechanism.to_string(),
            cost.to_string(),
            format!("±{moe} ({}%)", t.confidence * 100.0)
        );
        entries.push(table_entry(
            &plan,
            t,
            m,
            cost,
            names,
            cells.len(),
            suppressed,
            moe,
        ));
    }

    let refs: Vec<&NoiseMechanism> = mechs.iter().collect();
    let total = mechanism::compose(&refs)?;
    let manifest = Manifest {
        manifest_format: 1,
        release: ManifestRelease {
            id: plan.release_id.clone(),
            version,
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
        policy: FileHash {
            path: policy.display().to_string(),
            sha256: plan.policy_sha256.clone(),
        },
        inputs: input_entries,
        tables: entries,
        total_cost: total_cost(total),
        ledger: ledger_entry,
        outputs: files
            .iter()
            .map(|(name, bytes)| FileHash {
                path: name.clone(),
                sha256: output::sha256_hex(bytes),
            })
            .collect(),
    };
    let outputs = manifest.outputs.clone();
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialising to memory");
    manifest_bytes.push(b'\n');
    let manifest_sha256 = output::sha256_hex(&manifest_bytes);
    files.push(("manifest.json".to_string(), manifest_bytes));
    output::write_folder_atomically(&out_dir, &files)?;

    let mut locked = LockedLedger::open(&ledger_file)?;
    locked.repair_torn()?;
    locked.append(Body::Published {
        dataset: plan.dataset.clone(),
        release_id: plan.release_id.clone(),
        version,
        charge_seq: charge.seq,
        out_dir: out_dir.display().to_string(),
        manifest_sha256,
        outputs,
    })?;
    drop(locked);

    let mut r = String::new();
    let _ = writeln!(
        r,
        "released `{}` version {version} to {}",
        plan.release_id,
        out_dir.display()
    );
    let _ = writeln!(
        r,
        "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
        "table", "cells", "suppressed", "mechanism", "cost", "margin"
    );
    r.push_str(&summary);
    let _ = writeln!(
        r,
        "total cost: {total} (composed by opendp); charged {} to `{}`, {} spent of {}",
        acc.amount(cost),
        ledger_file.display(),
        acc.amount(total_after),
        acc.describe()
    );
    let _ = writeln!(r, "manifest: {}", out_dir.join("manifest.json").display());
    print(&r)
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
        dp_protected: true,
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
