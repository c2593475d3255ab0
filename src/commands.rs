//! The subcommands: `check`, `plan` and `release`, each wiring the data-flow modules together.
//!
//! Owns the order of operations (validate, read, charge, draw noise, post-process, write) and the
//! reports printed on standard output. Must never print an exact cell: reports show the policy,
//! the mechanisms and the noisy results only (`check` also shows row and unit counts to the data
//! officer, which are never written into a release).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::input::{InputResult, read_input};
use crate::mechanism::{self, NOISE_RNG, NoiseMechanism, OPENDP_VERSION};
use crate::output::{
    self, Bounds, CostEntry, FileHash, InputEntry, Manifest, ManifestRelease, PublishedTable,
    RngInfo, SensitivityEntry, Suppression, TableEntry, ToolInfo, TotalCost,
};
use crate::plan::{self, Cost, InputKind, Mechanism, Plan, Statistic, TableSpec};
use crate::postprocess::finish_cells;

/// Where contribution bounding's random choices come from.
const BOUNDING_RNG: &str = "rand StdRng (ChaCha12) seeded from the operating system";
const COMPOSITION: &str = "opendp CompositionMeasure::compose (basic sequential composition); pure-DP tables cast to zCDP with make_pureDP_to_zCDP when any table is zCDP";

pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Check { policy } => check(&policy),
        Command::Plan { policy } => plan_command(&policy),
        Command::Release { policy, out, json } => release(&policy, out, json),
    }
}

/// Writes a report to standard output; a closed pipe (`safestat plan p | head`) is not an error.
fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(Error::Stdout),
    }
}

/// Calibrates every table's mechanism (no data needed).
fn calibrate(plan: &Plan) -> Result<Vec<NoiseMechanism>, Error> {
    plan.tables
        .iter()
        .map(|t| NoiseMechanism::calibrate(t.mechanism, t.statistic.sensitivity(), t.cost))
        .collect::<Result<_, _>>()
        .map_err(Error::from)
}

/// Everything read from the inputs: per input its hash and exact cells, and where each table's
/// exact cells are.
struct InputData {
    results: Vec<InputResult>,
    /// Per table, `(input, position in that input's exact cells)`.
    slot: Vec<(usize, usize)>,
}

impl InputData {
    /// Moves table `t`'s exact cells out, so they are dropped as soon as the noise is added.
    fn take_exact(&mut self, t: usize) -> Vec<i64> {
        let (input, pos) = self.slot[t];
        std::mem::take(&mut self.results[input].exact[pos])
    }
}

/// Reads every input once, computing the exact cells of all the tables that use it.
fn read_all(plan: &Plan) -> Result<InputData, Error> {
    let mut results = Vec::new();
    let mut slot = vec![(0, 0); plan.tables.len()];
    for input in 0..plan.inputs.len() {
        let tables: Vec<usize> = (0..plan.tables.len())
            .filter(|&t| plan.tables[t].input == input)
            .collect();
        for (pos, &t) in tables.iter().enumerate() {
            slot[t] = (input, pos);
        }
        results.push(read_input(plan, input, &tables)?);
    }
    Ok(InputData { results, slot })
}

fn describe_bounds(plan: &Plan, table: &TableSpec) -> String {
    let how = if plan.bounds_enforced(table) {
        "enforced"
    } else {
        "declared"
    };
    let b = match &table.statistic {
        Statistic::CountUnits { max_cells_per_unit } => format!("{max_cells_per_unit} cell/unit"),
        Statistic::CountRows {
            max_rows_per_unit,
            max_rows_per_cell,
        }
        | Statistic::Sum {
            max_rows_per_unit,
            max_rows_per_cell,
            ..
        } => {
            if max_rows_per_cell < max_rows_per_unit {
                format!("{max_rows_per_unit} rows/unit, {max_rows_per_cell}/cell")
            } else {
                format!("{max_rows_per_unit} rows/unit")
            }
        }
    };
    format!("{b} ({how})")
}

fn describe_statistic(table: &TableSpec) -> String {
    match &table.statistic {
        Statistic::Sum { column, lo, hi, .. } => format!("sum({column}) in [{lo}, {hi}]"),
        s => s.name().to_string(),
    }
}

fn check(policy: &Path) -> Result<(), Error> {
    let plan = plan::load(policy)?;
    calibrate(&plan)?;
    let results = read_all(&plan)?.results;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "policy `{}` is valid: release `{}`, dataset `{}`",
        policy.display(),
        plan.release_id,
        plan.dataset
    );
    let _ = writeln!(
        r,
        "inputs (exact counts, for your eyes only; never published):"
    );
    for (spec, res) in plan.inputs.iter().zip(&results) {
        let kind = match &spec.kind {
            InputKind::Microdata => format!(
                "microdata, {} distinct `{}`",
                res.units.unwrap_or(0),
                plan.privacy_unit
            ),
            InputKind::Aggregated { count_column } => {
                format!("aggregated, counts in `{count_column}`")
            }
        };
        let _ = writeln!(
            r,
            "  {:<12} {}: {} rows, {kind}; every value valid",
            spec.name,
            spec.path.display(),
            res.rows
        );
    }
    let _ = writeln!(r, "tables:");
    for t in &plan.tables {
        let dims: Vec<&str> = t
            .dims
            .iter()
            .map(|&d| plan.dimensions[d].name.as_str())
            .collect();
        let _ = writeln!(
            r,
            "  {:<28} {:<26} by [{}], {} cells, {}",
            t.name,
            describe_statistic(t),
            dims.join(", "),
            plan.table_cells(t),
            describe_bounds(&plan, t)
        );
    }
    let _ = writeln!(
        r,
        "nothing was spent; run `safestat plan` for costs and accuracy"
    );
    print(&r)
}

fn plan_command(policy: &Path) -> Result<(), Error> {
    let plan = plan::load(policy)?;
    let mechs = calibrate(&plan)?;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "plan for release `{}` (dataset `{}`, privacy unit `{}`); no data read",
        plan.release_id, plan.dataset, plan.privacy_unit
    );
    let _ = writeln!(
        r,
        "{:<28} {:<24} {:>6}  {:<30} {:<18} {:>12} {:>10}  {:<16} {:>10}",
        "table",
        "statistic",
        "cells",
        "bounds",
        "mechanism",
        "sensitivity",
        "scale",
        "cost (opendp)",
        "margin"
    );
    for (t, m) in plan.tables.iter().zip(&mechs) {
        let norm = match t.mechanism {
            Mechanism::Laplace => "L1",
            Mechanism::Gaussian => "L2",
        };
        let _ = writeln!(
            r,
            "{:<28} {:<24} {:>6}  {:<30} {:<18} {:>12} {:>10.3}  {:<16} {:>10}",
            t.name,
            describe_statistic(t),
            plan.table_cells(t),
            describe_bounds(&plan, t),
            t.mechanism.to_string(),
            format!("{norm}={}", plan::short_number(m.d_in)),
            m.scale,
            m.cost()?.to_string(),
            format!(
                "±{} ({}%)",
                m.margin_of_error(t.confidence)?,
                t.confidence * 100.0
            ),
        );
    }
    let refs: Vec<&NoiseMechanism> = mechs.iter().collect();
    let _ = writeln!(
        r,
        "total cost: {} (composed by opendp)",
        mechanism::compose(&refs)?
    );
    let _ = writeln!(
        r,
        "margin: the published value is within ± this of the bounded exact value with the stated probability (before clamping at 0 and suppression)"
    );
    print(&r)
}

fn release(policy: &Path, out: Option<PathBuf>, json: bool) -> Result<(), Error> {
    let plan = plan::load(policy)?;
    let out_dir = out.unwrap_or_else(|| PathBuf::from("releases").join(&plan.release_id));
    output::ensure_absent(&out_dir)?;
    let mechs = calibrate(&plan)?;
    let mut data = read_all(&plan)?;
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

    // Noise, then post-processing on the noisy values only; exact cells are dropped as used.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entries = Vec::new();
    let mut summary = Vec::new();
    for (i, (t, m)) in plan.tables.iter().zip(&mechs).enumerate() {
        let cells_exact = data.take_exact(i);
        let noisy = m.invoke(&cells_exact)?;
        drop(cells_exact);
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
        summary.push((
            t.name.clone(),
            cells.len(),
            suppressed,
            t.mechanism,
            cost,
            moe,
            t.confidence,
        ));
        entries.push(table_entry(
            &plan,
            t,
            m,
            cost,
            names,
            cells.len(),
            suppressed,
            moe,
        )?);
    }

    let refs: Vec<&NoiseMechanism> = mechs.iter().collect();
    let total = mechanism::compose(&refs)?;
    let manifest = Manifest {
        manifest_format: 1,
        release: ManifestRelease {
            id: plan.release_id.clone(),
            version: 1,
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
        outputs: files
            .iter()
            .map(|(name, bytes)| FileHash {
                path: name.clone(),
                sha256: output::sha256_hex(bytes),
            })
            .collect(),
    };
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialising to memory");
    manifest_bytes.push(b'\n');
    files.push(("manifest.json".to_string(), manifest_bytes));
    output::write_folder_atomically(&out_dir, &files)?;

    let mut r = String::new();
    let _ = writeln!(
        r,
        "released `{}` version 1 to {}",
        plan.release_id,
        out_dir.display()
    );
    let _ = writeln!(
        r,
        "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
        "table", "cells", "suppressed", "mechanism", "cost", "margin"
    );
    for (name, cells, suppressed, mech, cost, moe, conf) in summary {
        let _ = writeln!(
            r,
            "  {name:<28} {cells:>6} {suppressed:>11}  {:<18} {:<22} {:>8}",
            mech.to_string(),
            cost.to_string(),
            format!("±{moe} ({}%)", conf * 100.0)
        );
    }
    let _ = writeln!(
        r,
        "total cost: {total} (composed by opendp); manifest: {}",
        out_dir.join("manifest.json").display()
    );
    print(&r)
}

fn total_cost(total: Cost) -> TotalCost {
    let (measure, epsilon, rho) = match total {
        Cost::Epsilon(e) => ("pure_dp", Some(e), None),
        Cost::Rho(r) => ("zcdp", None, Some(r)),
    };
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
) -> Result<TableEntry, Error> {
    let (column, clamp) = match &t.statistic {
        Statistic::Sum { column, lo, hi, .. } => (Some(column.clone()), Some([*lo, *hi])),
        _ => (None, None),
    };
    let status = if plan.bounds_enforced(t) {
        "enforced"
    } else {
        "declared"
    };
    let contribution_bounds = match t.statistic {
        Statistic::CountUnits { max_cells_per_unit } => Bounds {
            status,
            max_cells_per_unit: Some(max_cells_per_unit),
            max_rows_per_unit: None,
            max_rows_per_cell: None,
        },
        Statistic::CountRows {
            max_rows_per_unit,
            max_rows_per_cell,
        }
        | Statistic::Sum {
            max_rows_per_unit,
            max_rows_per_cell,
            ..
        } => Bounds {
            status,
            max_cells_per_unit: None,
            max_rows_per_unit: Some(max_rows_per_unit),
            max_rows_per_cell: Some(max_rows_per_cell),
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
    Ok(TableEntry {
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
    })
}
