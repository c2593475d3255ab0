//! `safestat release POLICY`: the one command that both begins a ledger transaction and applies
//! a protection, and so the one path on which noise is drawn and budget is spent.
//!
//! Reads as the pipeline of ARCHITECTURE.md: load and validate the plan, calibrate the
//! mechanisms (no data), read and bound the inputs, begin the ledger transaction (lock, verify,
//! roll forward, decide, charge), and only then draw noise, post-process on noisy values, write
//! the folder atomically and record the publication.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::console::{self, print};
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::input::{self, InputData, ReadOptions};
use crate::ledger::transaction::{self, Begun, Charged, Request};
use crate::ledger::{SigningRecord, SourceRead, TableCharge};
use crate::output::{
    self, Bounds, ConsistencyGroup, Contributors, ContributorsEntry, CostEntry, FileHash,
    InputEntry, Manifest, ManifestLedger, ManifestRelease, PolicyEntry, PublishedTable,
    Reliability, RngInfo, SensitivityEntry, SharesEntry, SignatureEntry, Suppression, TableEntry,
    ToolInfo, TotalCost, Totals, TotalsEntry,
};
use crate::policy::{self, Bound, InputKind, Plan, Statistic, TableSpec};
use crate::privacy::{Accounting, Cost, Mechanism};
use crate::protect::accuracy::{self, ErrorModel};
use crate::protect::consistency::{self, Tolerance};
use crate::protect::dp::{NOISE_RNG, OPENDP_VERSION};
use crate::protect::postprocess::{finish_cells, finish_sum_cells};
use crate::protect::totals;
use crate::protect::{self, NoiseMechanism, TableNoise, dp};
use crate::report;
use crate::sign;

mod exact;

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

/// Where contribution bounding's random choices come from.
const BOUNDING_RNG: &str = "rand StdRng (ChaCha12) seeded from the operating system: row priorities, and the secret 128-bit keys of the keyed mix (SplitMix64 finaliser) that gives count_units cell priorities";
/// How an SQL input's contributions are bounded (see `input::sql`'s statements).
const SQL_BOUNDING: &str = "the PostgreSQL server, in one read-only REPEATABLE READ transaction: window functions partitioned by the privacy unit keep the rows (or cells) of lowest priority, each priority the SHA-256 of a fresh secret 32-byte key and the row's content (or the unit and cell); only per-cell aggregates are returned";
const COMPOSITION: &str = "opendp CompositionMeasure::compose (basic sequential composition); pure-DP tables cast to zCDP with make_pureDP_to_zCDP when any table is zCDP";

/// `safestat release`: the pipeline. Nothing is drawn before the charge is on disk.
pub fn run(args: ReleaseArgs) -> Result<(), Error> {
    let lock_timeout = match args.lock_timeout {
        Some(t) if !(t.is_finite() && t >= 0.0) => {
            return Err(Error::Usage(format!(
                "--lock-timeout must be a number of seconds, 0 or more; got `{t}`"
            )));
        }
        t => t.map(std::time::Duration::from_secs_f64),
    };
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
    let mut exact = input::read_all(&plan, &args.read)?;
    let ledger_file = args.ledger.unwrap_or_else(|| plan.ledger.clone());
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
        sources: exact
            .sql_reads(&plan)
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
            .collect(),
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
        } => {
            console::notes(&notes);
            console::status("status", "already_released");
            console::status("release", plan.release_id.clone());
            console::status("version", version);
            console::status("dir", dir.display().to_string());
            console::status("charged", 0.0);
            return print(&format!(
                "already released: `{}` version {version} is in {} and matches the ledger; nothing drawn, nothing charged\n",
                plan.release_id,
                dir.display()
            ));
        }
        Begun::Charged(charged) => *charged,
    };
    console::notes(&charged.notes);
    // Only now, with the charge on disk: noise, then post-processing on noisy values only.
    let (mut files, mut summary) = draw_tables(&plan, &mechanisms, &mut exact, args.json)?;
    drop(exact);
    let (exact_files, exact_entries, exact_lines) = exact::publish(&plan, &exact_tables, args.json);
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
    let mut manifest = build_manifest(
        &plan,
        &args.policy,
        &mechanisms,
        &charged,
        &files,
        summary.entries,
        summary.groups,
    )?;
    manifest.exact_tables = exact_entries;
    manifest.mixing = mixing;
    manifest.statement = Some(charged.statement.clone());
    manifest.signature = signing_key.as_ref().map(|k| SignatureEntry {
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
    let outputs = manifest.outputs.clone();
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialising to memory");
    manifest_bytes.push(b'\n');
    let manifest_sha256 = sha256_hex(&manifest_bytes);
    if let Some(key) = &signing_key {
        let comment = format!(
            "safestat release {} version {} of dataset {}, budget statement {}",
            plan.release_id, charged.version, plan.dataset, charged.statement.sequence
        );
        let signature = key.sign(&manifest_bytes, &comment);
        files.push((sign::SIGNATURE_FILE.to_string(), signature.into_bytes()));
    }
    files.push(("manifest.json".to_string(), manifest_bytes));
    output::write_folder_atomically(&charged.out_dir, &files)?;
    let report = report(
        &plan,
        &mechanisms,
        &charged,
        &ledger_file,
        &summary.text,
        &summary.notes,
    )?;
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
    let content_sha256 = output::content_sha256(&manifest);
    charged.publish(&plan, manifest_sha256, outputs, content_sha256)?;
    print(&report)
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

/// The summary lines, the manifest's table entries and notes for the officer.
struct Summary {
    text: String,
    entries: Vec<TableEntry>,
    groups: Vec<ConsistencyGroup>,
    notes: Vec<String>,
}

/// Draws every table's noise (the exact cells are dropped as soon as it is added), post-processes
/// the noisy values and formats the files.
fn draw_tables(
    plan: &Plan,
    mechs: &[TableNoise],
    data: &mut InputData,
    json: bool,
) -> Result<(output::Files, Summary), Error> {
    let mut files: output::Files = Vec::new();
    let mut summary = Summary {
        text: String::new(),
        entries: Vec::new(),
        groups: Vec::new(),
        notes: Vec::new(),
    };
    for (i, (spec, result)) in plan.inputs.iter().zip(&data.results).enumerate() {
        if result.rows == 0 {
            let dp = plan.tables.iter().any(|t| t.input == i);
            summary.notes.push(format!(
                "warning: input `{}` has no rows: {}",
                spec.name,
                if dp {
                    "its DP tables are noise only"
                } else {
                    "its exact tables are all zeros"
                }
            ));
        }
    }
    // Every table's noise first (each table's exact cells dropped as soon as it is added), then
    // the groups of tables that measure the same quantity estimated together, on noisy values.
    let mut noisy = Vec::with_capacity(plan.tables.len());
    let mut noisy_contributors = Vec::with_capacity(plan.tables.len());
    for (i, m) in mechs.iter().enumerate() {
        let exact = data.take_exact(i);
        noisy.push(m.values.invoke(&exact)?);
        drop(exact);
        // A sum's contributors, noised when the policy measures them (dropped otherwise).
        let counted = data.take_contributors(i);
        noisy_contributors.push(match (&m.contributors, counted) {
            (Some(c), Some(exact)) => Some(c.invoke(&exact)?),
            _ => None,
        });
    }
    let grouping = policy::grouping(plan);
    let applied = consistency::apply(plan, mechs, &grouping.groups, &mut noisy);
    // Per table estimated with its group: the group, its margin, how its cells err and where its
    // margins are summed from.
    let mut estimated_moe: Vec<Option<(usize, i64, ErrorModel)>> = vec![None; plan.tables.len()];
    let mut sources: Vec<Option<totals::Source>> = vec![None; plan.tables.len()];
    for (g, a) in applied.iter().enumerate() {
        if let Ok(e) = &a.outcome {
            for (k, &t) in a.group.tables.iter().enumerate() {
                estimated_moe[t] = Some((g, e.margins[k], e.errors[k]));
                sources[t] = Some(e.sources[k].clone());
            }
        }
    }
    for (i, ((t, m), noisy)) in plan.tables.iter().zip(mechs).zip(noisy).enumerate() {
        let non_negative = t.statistic.is_non_negative();
        let is_sum = matches!(t.statistic, Statistic::Sum { .. });
        let contributors_moe = match &m.contributors {
            Some(c) => Some(c.margin_of_error(t.confidence)?),
            None => None,
        };
        let cell_margin = m.values.margin_of_error(t.confidence)?;
        // The table's margins and grand total, summed from what it publishes (before
        // suppression): its group's union table, or its own cells.
        let source = match sources[i].take() {
            Some(source) => source,
            None => totals::Source::alone(
                plan.dimension_categories(&t.dims)
                    .iter()
                    .map(|c| c.len())
                    .collect(),
                noisy
                    .iter()
                    .map(|&v| if non_negative { v.max(0) } else { v })
                    .collect(),
                &noisy,
                m.values.variance(),
                cell_margin,
            ),
        };
        let margins = source.margins(t.confidence);
        let error = match estimated_moe[i] {
            Some((_, _, error)) => error,
            None => ErrorModel {
                // The clamped cells' total, measured from the raw noisy total.
                total_shift: margins.last().map_or(0.0, |total| {
                    (total.values[0] as f64 - noisy.iter().map(|&v| v as f64).sum::<f64>()).abs()
                }),
                ..ErrorModel::drawn(m.values.variance(), noisy.len(), cell_margin)
            },
        };
        let shares = plan
            .presentation
            .shares(&t.name)
            .then(|| {
                let values: Vec<i64> = noisy
                    .iter()
                    .map(|&v| if non_negative { v.max(0) } else { v })
                    .collect();
                accuracy::shares(&values, error, t.confidence)
            })
            .flatten();
        let (cells, counts, suppressed) = match noisy_contributors[i].take() {
            Some(n) => {
                let (cells, counts, suppressed) =
                    finish_sum_cells(noisy, non_negative, n, t.suppress_below);
                (cells, Some(counts), suppressed)
            }
            // A sum without its count of contributors suppresses nothing (the policy requires
            // `suppress_below = 0` then): its noisy value must never decide.
            None if is_sum => {
                let (cells, suppressed) = finish_cells(noisy, non_negative, i64::MIN);
                (cells, None, suppressed)
            }
            None => {
                let (cells, suppressed) = finish_cells(noisy, non_negative, t.suppress_below);
                (cells, None, suppressed)
            }
        };
        let group = estimated_moe[i].map(|(g, _, _)| g);
        let moe = match estimated_moe[i] {
            Some((_, moe, _)) => moe,
            None => m.values.margin_of_error(t.confidence)?,
        };
        // A suppressed cell's share is not shown either (it would give its value back).
        let published_shares: Option<Vec<Option<(f64, f64)>>> = shares.as_ref().map(|s| {
            s.cells
                .iter()
                .zip(&cells)
                .map(|(&share, cell)| cell.value.map(|_| share))
                .collect()
        });
        let table = PublishedTable {
            name: &t.name,
            dimensions: plan.dimension_names(&t.dims),
            categories: plan.dimension_categories(&t.dims),
            cells: &cells,
            margin_of_error: moe,
            confidence: t.confidence,
            // A sum's flag needs a noisy count of its contributors, never its noisy value alone.
            unreliable_above: (!is_sum || counts.is_some())
                .then_some(plan.presentation.unreliable_above),
            contributors: counts
                .as_deref()
                .zip(contributors_moe)
                .map(|(counts, moe)| Contributors {
                    counts,
                    margin_of_error: moe,
                }),
            shares: published_shares.as_deref(),
            totals: Some(Totals {
                label: &t.total_label,
                margins: &margins,
            }),
        };
        let share = plan.presentation.unreliable_above;
        let reliability = Reliability {
            rule: match (table.unreliable_above, &table.contributors) {
                (Some(_), Some(c)) => format!(
                    "a published cell is flagged `unreliable` when the margin of error of its count of contributors (±{}) is above {share} times that count, or its own margin is above {share} times its value",
                    c.margin_of_error
                ),
                (Some(_), None) => format!(
                    "a published cell whose margin of error is above {share} times its value is flagged `unreliable`"
                ),
                (None, _) => "not flagged: a sum's reliability must be judged with a noisy count of its contributors, which this table does not measure (`contributors_cost`)".into(),
            },
            unreliable_above: table.unreliable_above,
            cells_flagged: table.flagged(),
            cells_published: cells.len() - suppressed,
        };
        if reliability.cells_flagged > 0 {
            let pct = share * 100.0;
            let of = match &table.contributors {
                Some(c) => format!(
                    "above {pct}% of their value, or one of ±{} above {pct}% of their count of contributors",
                    c.margin_of_error
                ),
                None => format!("above {pct}% of their value"),
            };
            summary.notes.push(format!(
                "reliability: `{}`: {} of {} published cells have a margin of error (±{moe}) {of}; flagged `unreliable` in every output",
                t.name, reliability.cells_flagged, reliability.cells_published,
            ));
        }
        let mut names = vec![format!("{}.csv", t.name)];
        let csv = output::published_csv(table.to_csv(), &table.dimensions, &plan.presentation);
        files.push((names[0].clone(), csv));
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
        let mut entry = table_entry(
            plan,
            t,
            &m.values,
            (cost, m.values.cost()?),
            names,
            (cells.len(), suppressed),
            moe,
            group,
        );
        entry.reliability = Some(reliability);
        entry.drawn_alone = grouping.reason(i).map(str::to_string);
        entry.totals = Some(TotalsEntry {
            label: t.total_label.clone(),
            rows: margins.iter().map(|m| m.values.len()).sum(),
            status: output::TOTAL_STATUS.into(),
            from: if group.is_some() {
                "the sums of the table's published values before suppression, summed from its consistency group's integer union table: a margin that is another table of the group equals that table's cells".into()
            } else if non_negative {
                "the sums of the table's published values before suppression (negative noisy values clamped to 0 first)".into()
            } else {
                "the sums of the table's published values before suppression".into()
            },
            margin_of_error_method: totals::METHOD.into(),
        });
        if plan.presentation.shares(&t.name) {
            entry.shares = Some(shares_entry(t, shares.as_ref(), group.is_some()));
            if shares.is_none() {
                summary.notes.push(format!(
                    "warning: `{}`: its published total is not positive, so no shares are given",
                    t.name
                ));
            }
        }
        if let (Some(c), Some(moe)) = (&m.contributors, contributors_moe) {
            entry.contributors = Some(contributors_entry(t, c, moe)?);
            entry.suppression.rule = format!(
                "a cell whose noisy count of contributors is below {} is shown as suppressed, its count of contributors too",
                t.suppress_below
            );
            entry.suppression.decided_on = "noisy counts of contributors".into();
        } else if is_sum {
            entry.suppression.rule =
                "nothing is suppressed: a sum is suppressed only on a noisy count of its contributors, which this table does not measure".into();
            entry.suppression.decided_on = "nothing".into();
        }
        summary.entries.push(entry);
    }
    for a in &applied {
        let names: Vec<&str> = a
            .group
            .tables
            .iter()
            .map(|&t| plan.tables[t].name.as_str())
            .collect();
        summary.notes.push(match &a.outcome {
            Ok(consistency::Estimated { tolerance, .. }) => format!(
                "consistent: {} estimated together as one {}-cell table ({}; {:.2} s)",
                names.join(", "),
                a.group.union_cells,
                match tolerance {
                    Tolerance::Within(0) => "controlled rounding".to_string(),
                    Tolerance::Within(w) => format!("rounded within {}", w + 1),
                    Tolerance::Cumulative => "cumulative rounding: the grand total within 1".to_string(),
                },
                a.elapsed.as_secs_f64()
            ),
            Err(reason) => format!(
                "warning: {} measure the same quantity but are published as drawn, so their margins may disagree: {reason}",
                names.join(", ")
            ),
        });
        summary.groups.push(group_entry(plan, a));
    }
    for (t, reason) in &grouping.alone {
        summary
            .notes
            .push(format!("drawn alone: `{}`: {reason}", plan.tables[*t].name));
    }
    Ok((files, summary))
}

/// A group's manifest entry.
fn group_entry(plan: &Plan, a: &consistency::Applied) -> ConsistencyGroup {
    let (status, reason, rounding) = match &a.outcome {
        Ok(consistency::Estimated { tolerance, .. }) => (
            "estimated",
            None,
            Some(match tolerance {
                Tolerance::Within(0) => "controlled: every published cell and the grand total are within 1 of their fitted values".to_string(),
                Tolerance::Within(w) => format!(
                    "no controlled rounding found within the node limit: every published cell is within {} of its fitted value",
                    w + 1
                ),
                Tolerance::Cumulative => "cumulative rounding in union order: the grand total and every table of leading union dimensions are within 1 of their fitted values; each table's largest shift is in its margin of error".to_string(),
            }),
        ),
        Err(reason) => ("published_as_drawn", Some(reason.clone()), None),
    };
    ConsistencyGroup {
        tables: a
            .group
            .tables
            .iter()
            .map(|&t| plan.tables[t].name.clone())
            .collect(),
        dimensions: a
            .group
            .dims
            .iter()
            .map(|&d| plan.dimensions[d].name.clone())
            .collect(),
        union_cells: Some(a.group.union_cells),
        status: status.into(),
        reason,
        method: consistency::METHOD.into(),
        solvers: consistency::solvers(),
        rounding,
    }
}

fn build_manifest(
    plan: &Plan,
    policy: &Path,
    mechs: &[TableNoise],
    paid: &Charged,
    files: &[(String, Vec<u8>)],
    tables: Vec<TableEntry>,
    consistency: Vec<ConsistencyGroup>,
) -> Result<Manifest, Error> {
    let total = dp::compose(&protect::measurements(mechs))?;
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
            name: "safestat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            opendp_version: OPENDP_VERSION.into(),
        },
        rng: RngInfo {
            noise: NOISE_RNG.into(),
            contribution_bounding: BOUNDING_RNG.into(),
        },
        policy: PolicyEntry {
            file: policy
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: None,
            plan_sha256: None,
        },
        inputs: plan
            .inputs
            .iter()
            .map(|spec| InputEntry {
                name: spec.name.clone(),
                kind: match spec.kind {
                    InputKind::Microdata => "microdata",
                    InputKind::Aggregated { .. } => "aggregated",
                }
                .into(),
                contribution_bounds: match spec.kind {
                    InputKind::Microdata => "enforced",
                    InputKind::Aggregated { .. } => "declared",
                }
                .into(),
                bounded_in: spec.sql.as_ref().map(|_| SQL_BOUNDING.to_string()),
            })
            .collect(),
        tables,
        exact_tables: Vec::new(),
        total_cost: total_cost(total),
        consistency,
        // The charge's budget: the policy's, or the dataset's for a policy without one.
        ledger: ManifestLedger {
            accounting: paid.statement.accounting.clone(),
            budget: paid.statement.budget,
            charge_seq: paid.seq,
            charge_sha256: paid.charge_sha256.clone(),
            unit: paid.statement.unit.clone(),
            charged: paid.cost,
            total_after: paid.total_after,
        },
        presentation: plan.presentation.clone(),
        mixing: None,
        statement: None,
        signature: None,
        revisions: Vec::new(),
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
        measure: measure.into(),
        epsilon,
        rho,
        delta: 0.0,
        composition: COMPOSITION.into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn table_entry(
    plan: &Plan,
    t: &TableSpec,
    m: &NoiseMechanism,
    // The table's cost (every measurement composed), and its values' alone.
    (cost, values_cost): (Cost, Cost),
    files: Vec<String>,
    (cells, suppressed): (usize, usize),
    moe: i64,
    group: Option<usize>,
) -> TableEntry {
    let (column, clamp) = match &t.statistic {
        Statistic::Sum { column, lo, hi, .. } => (Some(column.clone()), Some([*lo, *hi])),
        _ => (None, None),
    };
    let computed_by = computed_by(t.mechanism, values_cost);
    let (protection, guarantee) = guarantee(plan, t, cost);
    let mut post_processing = Vec::new();
    let margin_of_error_method = match group {
        Some(g) => {
            post_processing.push(format!(
                "estimated with the other tables of consistency group {g}: least squares, then controlled rounding"
            ));
            consistency::MOE_METHOD.to_string()
        }
        None => {
            if t.statistic.is_non_negative() {
                post_processing.push("negative noisy values clamped to 0".to_string());
            }
            "opendp's accuracy of the table's own noise (exact for the discrete mechanism)"
                .to_string()
        }
    };
    TableEntry {
        name: t.name.clone(),
        files,
        input: plan.inputs[t.input].name.clone(),
        statistic: t.statistic.name().into(),
        column,
        clamp,
        dimensions: t
            .dims
            .iter()
            .map(|&d| plan.dimensions[d].name.clone())
            .collect(),
        cells,
        protection: protection.into(),
        guarantee,
        contribution_bounds: bounds_entry(plan, t),
        mechanism: t.mechanism,
        sensitivity: SensitivityEntry {
            norm: t.mechanism.norm().name().into(),
            value: m.d_in,
        },
        noise_scale: m.scale,
        privacy_cost: CostEntry::new(values_cost, t.cost, t.cost_source, computed_by),
        confidence: t.confidence,
        margin_of_error: moe,
        margin_of_error_method,
        consistency_group: group,
        post_processing,
        suppression: Suppression {
            rule: format!(
                "a cell whose published (noisy) value is below {} is shown as suppressed",
                t.suppress_below
            ),
            threshold: t.suppress_below,
            decided_on: "noisy values".into(),
            cells_suppressed: suppressed,
        },
        reliability: None,
        contributors: None,
        shares: None,
        drawn_alone: None,
        totals: None,
    }
}

/// A sum's count of contributors in the manifest.
fn contributors_entry(
    t: &TableSpec,
    m: &NoiseMechanism,
    moe: i64,
) -> Result<ContributorsEntry, Error> {
    let cost = m.cost()?;
    let declared = t.contributors_cost.unwrap_or(cost);
    Ok(ContributorsEntry {
        counts: "distinct privacy units among the cell's kept rows (a unit keeps at most max_rows_per_unit rows, so it counts in at most that many cells)".into(),
        columns: vec![
            "contributors".into(),
            format!("contributors_{}", output::moe_column(t.confidence)),
        ],
        sensitivity: SensitivityEntry {
            norm: t.mechanism.norm().name().into(),
            value: m.d_in,
        },
        noise_scale: m.scale,
        privacy_cost: CostEntry::new(cost, declared, policy::CostSource::Declared, computed_by(t.mechanism, cost)),
        margin_of_error: moe,
    })
}

/// How a table's shares were computed, for the manifest.
fn shares_entry(t: &TableSpec, shares: Option<&accuracy::Shares>, grouped: bool) -> SharesEntry {
    SharesEntry {
        columns: vec![
            "share_pct".into(),
            format!("share_pct_{}", output::moe_column(t.confidence)),
        ],
        total: shares.map(|s| s.total),
        total_margin_of_error: shares.map(|s| s.total_margin),
        total_from: if grouped {
            "the sum of the table's published values before suppression: the grand total of its consistency group, equal to every grouped table's sum".into()
        } else {
            "the sum of the table's published values before suppression (negative noisy values clamped to 0 first)".into()
        },
        margin_of_error_method: "delta method: Var(share error) = [Var(cell) + Var(total) (p^2 - 2p/n)] / total^2, from the closed-form noise variances, normal approximation, plus the rounding shifts of the cell and the total; suppressed cells show no share".into(),
    }
}

/// Which opendp map a measurement's cost comes from.
fn computed_by(mechanism: Mechanism, cost: Cost) -> &'static str {
    match (mechanism, cost) {
        (Mechanism::Laplace, Cost::Epsilon(_)) => "opendp make_laplace privacy map",
        (Mechanism::Laplace, Cost::Rho(_)) => {
            "opendp make_pureDP_to_zCDP(make_laplace) privacy map"
        }
        (Mechanism::Gaussian, _) => "opendp make_gaussian privacy map",
    }
}

/// A table's contribution bounds, and whether safestat enforced them (`enforced`) or the policy
/// only declares them (`declared`, pre-counted input).
fn bounds_entry(plan: &Plan, t: &TableSpec) -> Bounds {
    let status = plan.bounds_status(t).to_string();
    match t.statistic.bound() {
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
        Bound::Whole => Bounds {
            status,
            max_cells_per_unit: None,
            max_rows_per_unit: None,
            max_rows_per_cell: None,
        },
    }
}

/// The table's protection and its guarantee in words: never called differentially private
/// without saying when its bounds are only declared.
fn guarantee(plan: &Plan, t: &TableSpec, cost: Cost) -> (&'static str, String) {
    if plan.bounds_enforced(t) {
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
    }
}
