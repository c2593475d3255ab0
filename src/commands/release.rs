//! `safestat release POLICY`: the one command that both begins a ledger transaction and applies
//! a protection, and so the one path on which noise is drawn and budget is spent.
//!
//! Reads as the pipeline of ARCHITECTURE.md: load and validate the plan, calibrate the
//! mechanisms (no data), read and bound the inputs, begin the ledger transaction (lock, verify,
//! roll forward, decide, charge), and only then draw noise, post-process on noisy values, write
//! the folder atomically and record the publication.
//!
//! Beside it: `release/exact.rs` (the exact tables: linked to earlier releases, protected and
//! proven before the charge, formatted after it) and `release/drawn.rs` (the DP tables once their
//! noise is drawn here: estimated, finished, formatted). The manifest's entries are built in
//! `output` (`describe.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::console::{self, print};
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::input::{self, InputData, ReadOptions};
use crate::ledger::transaction::{self, Begun, Charged, Request};
use crate::ledger::{Ledger, SigningRecord, SourceRead, TableCharge};
use crate::output::{self, FileHash, Manifest, ManifestLedger, SignatureEntry};
use crate::policy::{self, Plan};
use crate::privacy::Accounting;
use crate::protect::consistency;
use crate::protect::sdc::tables::ExactTable;
use crate::protect::{self, TableNoise, dp};
use crate::report;
use crate::sign;

mod drawn;
mod exact;

use drawn::{Summary, empty_inputs, estimated_tables, finish_table, group_note, publish_table};

/// What `release` was asked, as the command line says it.
pub struct ReleaseArgs {
    pub policy: PathBuf,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub ledger: Option<PathBuf>,
    pub new_version: bool,
    /// `--lock-timeout`, in seconds.
    pub lock_timeout: Option<f64>,
    pub read: ReadOptions,
}

/// `read` with the legacy fingerprints asked for when the ledger at `ledger_file` holds a charge
/// fingerprinted that way that this release is compared with. The ledger is only looked at (not
/// locked): a legacy charge written meanwhile would make this run refuse, as of other inputs.
fn fingerprinted(plan: &Plan, ledger_file: &Path, read: ReadOptions) -> ReadOptions {
    ReadOptions {
        legacy_fingerprints: Ledger::read(ledger_file)
            .is_ok_and(|l| l.wants_legacy_fingerprints(plan)),
        ..read
    }
}

/// `safestat release`: the pipeline. Nothing is drawn before the charge is on disk.
pub fn run(args: ReleaseArgs) -> Result<(), Error> {
    let lock_timeout = lock_timeout(args.lock_timeout)?;
    let plan = policy::load(&args.policy)?;
    let mechanisms = protect::calibrate(&plan)?;
    let (tables, cost) = charges(&plan, &mechanisms)?;
    // The signing key is read (and its permissions checked) before any data is.
    let signing_key = plan
        .signing_key
        .as_deref()
        .map(sign::SigningKey::load)
        .transpose()?;
    // Read (and fingerprint) the inputs before the ledger is locked: no noise yet, and the
    // fingerprints decide whether this is a re-run.
    let ledger_file = args.ledger.unwrap_or_else(|| plan.ledger.clone());
    let mut exact = input::read_all(&plan, &fingerprinted(&plan, &ledger_file, args.read))?;
    // Exact tables are protected (and their pattern proven) before anything is charged, together
    // with the exact tables earlier releases published from the same data.
    let fingerprints = exact.fingerprints(&plan);
    let linked = exact::linked(
        &plan,
        &ledger_file,
        &fingerprints,
        &args.read,
        args.new_version,
    )?;
    let (exact_tables, record) =
        exact::protect(&plan, &mut exact, &linked.tables, &fingerprints, &args.read)?;
    console::notes(&linked.notes);
    console::notes(&record.notes);
    let request = Request {
        plan: &plan,
        inputs: fingerprints,
        sources: source_reads(&plan, &exact),
        tables,
        exact_tables: plan.exact_tables.iter().map(|t| t.name.clone()).collect(),
        exact_links: linked.tables.iter().map(|(link, _)| link.clone()).collect(),
        exact_seen: linked.seen.clone(),
        exact_digests: record.digests,
        same_data: record.same_data,
        cost,
        new_version: args.new_version,
        out: args.out.as_deref(),
        signing_key: signing_key.as_ref().map(|k| SigningRecord {
            id: k.id.clone(),
            public_key: k.public_base64(),
        }),
        lock_timeout,
    };
    let charged = match transaction::begin(&ledger_file, request)? {
        Begun::AlreadyReleased {
            version,
            dir,
            notes,
        } => return already_released(&plan, version, &dir, &notes),
        Begun::Charged(charged) => *charged,
    };
    console::notes(&charged.notes);
    // Only now, with the charge on disk: noise, then post-processing on noisy values only.
    let (mut files, mut summary) = draw_tables(&plan, &mechanisms, &mut exact, args.json)?;
    drop(exact);
    let manifest = describe(
        (&plan, &args.policy),
        &mechanisms,
        &charged,
        &exact_tables,
        (args.json, signing_key.as_ref()),
        &mut files,
        &mut summary,
    )?;
    let (manifest_sha256, outputs, content_sha256) =
        seal(&plan, &charged, manifest, signing_key.as_ref(), &mut files);
    output::write_folder_atomically(&charged.out_dir, &files)?;
    let report = report(
        &plan,
        &mechanisms,
        &charged,
        &ledger_file,
        &summary.text,
        &summary.notes,
    )?;
    published_status(&plan, &charged)?;
    charged.publish(&plan, manifest_sha256, outputs, content_sha256)?;
    print(&report)
}

/// `--lock-timeout`, checked.
fn lock_timeout(seconds: Option<f64>) -> Result<Option<std::time::Duration>, Error> {
    match seconds {
        Some(t) if !(t.is_finite() && t >= 0.0) => Err(Error::Usage(format!(
            "--lock-timeout must be a number of seconds, 0 or more; got `{t}`"
        ))),
        t => Ok(t.map(std::time::Duration::from_secs_f64)),
    }
}

/// What each SQL input's read sent and saw, for the ledger.
fn source_reads(plan: &Plan, exact: &InputData) -> std::collections::BTreeMap<String, SourceRead> {
    exact
        .sql_reads(plan)
        .into_iter()
        .map(|(name, r)| {
            let read = SourceRead {
                engine: r.engine,
                relation: r.relation,
                snapshot: r.snapshot,
                statements_sha256: r.statements,
            };
            (name, read)
        })
        .collect()
}

/// A re-run of a release already published and recorded: nothing drawn, nothing charged.
fn already_released(plan: &Plan, version: u32, dir: &Path, notes: &[String]) -> Result<(), Error> {
    console::notes(notes);
    console::status("status", "already_released");
    console::status("release", plan.release_id.clone());
    console::status("version", version);
    console::status("dir", dir.display().to_string());
    console::status("charged", 0.0);
    print(&format!(
        "already released: `{}` version {version} is in {} and matches the ledger; nothing drawn, nothing charged\n",
        plan.release_id,
        dir.display()
    ))
}

/// The exact tables' files, the manifest (signature entry included) and the workbook and report
/// made from the files about to be written (never the data).
fn describe(
    (plan, policy): (&Plan, &Path),
    mechanisms: &[TableNoise],
    charged: &Charged,
    exact_tables: &[ExactTable],
    (json, signing_key): (bool, Option<&sign::SigningKey>),
    files: &mut output::Files,
    summary: &mut Summary,
) -> Result<Manifest, Error> {
    let (exact_files, exact_entries, exact_lines) = exact::publish(plan, exact_tables, json);
    files.extend(exact_files);
    summary.text.push_str(&exact_lines);
    let mixing = (!plan.exact_tables.is_empty() && !plan.tables.is_empty()).then(|| {
        format!(
            "exact tables ({}) are published with exact values and are not differentially private; the differential privacy of the other tables holds only relative to what the exact tables reveal: an attacker who uses both learns what the exact tables give away, and beyond that at most the differentially private tables' privacy cost",
            plan.exact_tables
                .iter()
                .map(|t| format!("`{}`", t.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    if let Some(text) = &mixing {
        summary.notes.push(format!("note: {text}"));
    }
    // The charge's budget: the policy's, or the dataset's for a policy without one.
    let ledger = ManifestLedger {
        accounting: charged.statement.accounting.clone(),
        budget: charged.statement.budget,
        charge_seq: charged.seq,
        charge_sha256: charged.charge_sha256.clone(),
        unit: charged.statement.unit.clone(),
        charged: charged.cost,
        total_after: charged.total_after,
    };
    let mut manifest = output::build_manifest(
        plan,
        policy,
        mechanisms,
        (charged.version, ledger),
        files,
        std::mem::take(&mut summary.entries),
        std::mem::take(&mut summary.groups),
    )?;
    manifest.exact_tables = exact_entries;
    manifest.mixing = mixing;
    manifest.statement = Some(charged.statement.clone());
    manifest.signature = signing_key.map(|k| SignatureEntry {
        file: sign::SIGNATURE_FILE.into(),
        key_id: k.id.clone(),
        algorithm: sign::ALGORITHM.into(),
    });
    // The workbook and the report, from the files about to be written (never the data). The
    // release is paid for: if they cannot be made, the tables are published without them.
    let file = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    };
    let made = report::read_tables(&manifest, &file)
        .and_then(|tables| {
            let exact = report::read_exact_tables(&manifest, &file)?;
            report::render(&manifest, &tables, &exact)
        })
    .unwrap_or_else(|e| {
        summary.notes.push(format!(
            "warning: the workbook and report.html could not be made ({e}); the tables are published without them"
        ));
        Vec::new()
    });
    for (name, bytes) in made {
        manifest.outputs.push(FileHash {
            path: name.clone(),
            sha256: sha256_hex(&bytes),
        });
        files.push((name, bytes));
    }
    Ok(manifest)
}

/// Serialises the manifest and signs it; returns its hash, its outputs and its content's hash.
fn seal(
    plan: &Plan,
    charged: &Charged,
    manifest: Manifest,
    signing_key: Option<&sign::SigningKey>,
    files: &mut output::Files,
) -> (String, Vec<FileHash>, String) {
    let outputs = manifest.outputs.clone();
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialising to memory");
    manifest_bytes.push(b'\n');
    let manifest_sha256 = sha256_hex(&manifest_bytes);
    if let Some(key) = signing_key {
        let comment = format!(
            "safestat release {} version {} of dataset {}, budget statement {}",
            plan.release_id, charged.version, plan.dataset, charged.statement.sequence
        );
        let signature = key.sign(&manifest_bytes, &comment);
        files.push((sign::SIGNATURE_FILE.to_string(), signature.into_bytes()));
    }
    files.push(("manifest.json".to_string(), manifest_bytes));
    (manifest_sha256, outputs, output::content_sha256(&manifest))
}

/// The scheduler's status lines of a release published (or resumed).
fn published_status(plan: &Plan, charged: &Charged) -> Result<(), Error> {
    let acc = plan.accounting;
    console::status(
        "status",
        if charged.resumed {
            "resumed"
        } else {
            "published"
        },
    );
    console::status("release", plan.release_id.clone());
    console::status("version", charged.version);
    console::status("dir", charged.out_dir.display().to_string());
    console::status("unit", acc.unit());
    console::status("charged", if charged.resumed { 0.0 } else { charged.cost });
    console::status("spent", charged.total_after);
    console::status(
        "remaining",
        (acc.capacity()? - charged.total_after).max(0.0),
    );
    Ok(())
}

/// Each table's cost (as opendp maps it, and in the ledger's unit) and the release's, composed.
fn charges(plan: &Plan, mechanisms: &[TableNoise]) -> Result<(Vec<TableCharge>, f64), Error> {
    let acc = plan.accounting;
    let tables = plan
        .tables
        .iter()
        .zip(mechanisms)
        .map(|(t, m)| {
            Ok(TableCharge {
                name: t.name.clone(),
                cost: m.cost()?,
                charged: m.charge(&acc)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let cost = acc.compose(tables.iter().map(|c| c.charged).collect())?;
    Ok((tables, cost))
}

/// The summary printed once the release is written.
fn report(
    plan: &Plan,
    mechanisms: &[TableNoise],
    charged: &Charged,
    ledger_file: &Path,
    table_lines: &str,
    notes: &[String],
) -> Result<String, Error> {
    // The charge's accounting: the policy's, or the dataset's for a policy without a budget.
    let acc = charged
        .statement
        .budget
        .accounting()
        .unwrap_or(plan.accounting);
    let mut r = String::new();
    let _ = writeln!(
        r,
        "released `{}` version {} to {}",
        plan.release_id,
        charged.version,
        charged.out_dir.display()
    );
    let _ = writeln!(
        r,
        "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
        "table", "cells", "suppressed", "mechanism", "cost", "margin"
    );
    r.push_str(table_lines);
    let total = dp::compose(&protect::measurements(mechanisms))?;
    let paid = if charged.resumed {
        format!(
            "paid {} at ledger line {} by the interrupted run; charged nothing now",
            acc.amount(charged.cost),
            charged.seq
        )
    } else {
        format!("charged {}", acc.amount(charged.cost))
    };
    // A release of exact tables only draws no noise: its cost is none, not a zero epsilon.
    let total = if plan.tables.is_empty() {
        "none (exact tables only, not differentially private)".to_string()
    } else {
        format!("{total} (composed by opendp)")
    };
    if acc == Accounting::None {
        let _ = writeln!(
            r,
            "total cost: {total}; recorded in `{}` (the dataset has no privacy budget: it publishes exact tables only)",
            ledger_file.display(),
        );
    } else {
        let _ = writeln!(
            r,
            "total cost: {total}; {paid} to `{}`, {} spent of {}",
            ledger_file.display(),
            acc.amount(charged.total_after),
            acc.describe()
        );
    }
    for note in notes {
        let _ = writeln!(r, "{note}");
    }
    let _ = writeln!(
        r,
        "manifest: {}",
        charged.out_dir.join("manifest.json").display()
    );
    Ok(r)
}

/// Draws every table's noise (the exact cells are dropped as soon as it is added), post-processes
/// the noisy values and formats the files: noise, then the groups estimated together on noisy
/// values, then each table finished and published, then the groups' notes.
fn draw_tables(
    plan: &Plan,
    mechs: &[TableNoise],
    data: &mut InputData,
    json: bool,
) -> Result<(output::Files, Summary), Error> {
    let mut summary = Summary {
        notes: empty_inputs(plan, data),
        ..Summary::default()
    };
    let (mut noisy, mut noisy_contributors) = draw_noise(mechs, data)?;
    let grouping = policy::grouping(plan);
    let applied = consistency::apply(plan, mechs, &grouping.groups, &mut noisy);
    let mut estimated = estimated_tables(plan, &applied);
    let mut files: output::Files = Vec::new();
    for (i, ((t, m), noisy)) in plan.tables.iter().zip(mechs).zip(noisy).enumerate() {
        let finished = finish_table(
            plan,
            (t, m),
            noisy,
            noisy_contributors[i].take(),
            estimated[i].take(),
        )?;
        let drawn_alone = grouping.reason(i).map(str::to_string);
        publish_table(
            plan,
            (t, m),
            &finished,
            (drawn_alone, json),
            &mut files,
            &mut summary,
        )?;
    }
    for a in &applied {
        summary.notes.push(group_note(plan, a));
        summary.groups.push(output::group_entry(plan, a));
    }
    for (t, reason) in &grouping.alone {
        summary
            .notes
            .push(format!("drawn alone: `{}`: {reason}", plan.tables[*t].name));
    }
    Ok((files, summary))
}

/// Every table's noise, and a sum's contributors' where the policy measures them (dropped
/// otherwise): each table's exact cells dropped as soon as its noise is added.
#[allow(clippy::type_complexity)]
fn draw_noise(
    mechs: &[TableNoise],
    data: &mut InputData,
) -> Result<(Vec<Vec<i64>>, Vec<Option<Vec<i64>>>), Error> {
    let mut noisy = Vec::with_capacity(mechs.len());
    let mut noisy_contributors = Vec::with_capacity(mechs.len());
    for (i, m) in mechs.iter().enumerate() {
        let exact = data.take_exact(i);
        noisy.push(m.values.invoke(&exact)?);
        drop(exact);
        let counted = data.take_contributors(i);
        noisy_contributors.push(match (&m.contributors, counted) {
            (Some(c), Some(exact)) => Some(c.invoke(&exact)?),
            _ => None,
        });
    }
    Ok((noisy, noisy_contributors))
}
