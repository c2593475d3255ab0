//! How a release describes itself: the manifest's entries for its differentially private
//! tables (mechanism, cost, bounds, margins, suppression, reliability, totals, shares) and for
//! their consistency groups, and the manifest around them, built from the plan, the calibrated
//! mechanisms and what post-processing made of the noisy values. Never an exact value.

use std::path::Path;

use super::manifest::*;
use super::tables::{TOTAL_STATUS, moe_column};
use crate::hash::sha256_hex;
use crate::policy::{Bound, CostSource, Engine, InputKind, Plan, Statistic, TableSpec};
use crate::privacy::{Cost, Mechanism};
use crate::protect::consistency::{self, Tolerance};
use crate::protect::dp::{NOISE_RNG, OPENDP_VERSION};
use crate::protect::{self, MechanismError, NoiseMechanism, TableNoise, accuracy, dp, totals};

/// Where contribution bounding's random choices come from.
pub const BOUNDING_RNG: &str = "rand StdRng (ChaCha12) seeded from the operating system: row priorities, and the secret 128-bit keys of the keyed mix (SplitMix64 finaliser) that gives count_units cell priorities";
/// How an SQL input's contributions are bounded (see `input::sql`'s statements).
pub const SQL_BOUNDING: &str = "the PostgreSQL server, in one read-only REPEATABLE READ transaction: window functions partitioned by the privacy unit keep the rows (or cells) of lowest priority, each priority the SHA-256 of a fresh secret 32-byte key and the row's content (or the unit and cell); only per-cell aggregates are returned";
pub const SPARK_BOUNDING: &str = "the Apache Spark server, through Spark Connect (no transaction: the relation is read by each statement): window functions partitioned by the privacy unit keep the rows (or cells) of lowest priority, each priority the SHA-256 of a fresh secret 32-byte key and the row's content (or the unit and cell); only per-cell aggregates are returned";
pub const COMPOSITION: &str = "opendp CompositionMeasure::compose (basic sequential composition); pure-DP tables cast to zCDP with make_pureDP_to_zCDP when any table is zCDP";

/// A group's manifest entry.
pub fn group_entry(plan: &Plan, a: &consistency::Applied) -> ConsistencyGroup {
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

pub fn build_manifest(
    plan: &Plan,
    policy: &Path,
    mechs: &[TableNoise],
    (version, ledger): (u32, ManifestLedger),
    files: &[(String, Vec<u8>)],
    tables: Vec<TableEntry>,
    consistency: Vec<ConsistencyGroup>,
) -> Result<Manifest, MechanismError> {
    let total = dp::compose(&protect::measurements(mechs))?;
    Ok(Manifest {
        manifest_format: MANIFEST_FORMAT,
        release: ManifestRelease {
            id: plan.release_id.clone(),
            version,
            title: plan.title.clone(),
        },
        dataset: plan.dataset.clone(),
        privacy_unit: plan.privacy_unit.clone(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        tool: ToolInfo {
            name: "safestat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            opendp_version: OPENDP_VERSION.into(),
            report_format: Some(REPORT_FORMAT),
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
                bounded_in: spec.sql.as_ref().map(|sql| match sql.engine {
                    Engine::Postgres => SQL_BOUNDING.to_string(),
                    Engine::Spark => SPARK_BOUNDING.to_string(),
                }),
            })
            .collect(),
        tables,
        exact_tables: Vec::new(),
        total_cost: total_cost(total),
        consistency,
        ledger,
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

/// What post-processing made of one differentially private table, as its manifest entry tells it.
pub struct Drawn<'a> {
    /// Its files (`name.csv`, and `name.json` when asked).
    pub files: Vec<String>,
    pub cells: usize,
    pub suppressed: usize,
    /// A cell's margin of error (the group's estimate's, or the noise's own).
    pub margin_of_error: i64,
    /// Its count of contributors' margin of error, when a sum measures it.
    pub contributors_margin: Option<i64>,
    /// The consistency group it was estimated with.
    pub group: Option<usize>,
    /// Why it was drawn alone though it measures what other tables measure.
    pub drawn_alone: Option<String>,
    pub reliability: Reliability,
    /// Rows of its margins and grand total.
    pub total_rows: usize,
    /// Its shares, when the policy asks for them and its total is positive.
    pub shares: Option<&'a accuracy::Shares>,
}

/// A differentially private table's manifest entry.
pub fn dp_table_entry(
    plan: &Plan,
    t: &TableSpec,
    noise: &TableNoise,
    drawn: Drawn,
) -> Result<TableEntry, MechanismError> {
    let mut entry = table_entry(
        plan,
        t,
        &noise.values,
        (noise.cost()?, noise.values.cost()?),
        &drawn,
    );
    entry.reliability = Some(drawn.reliability);
    entry.drawn_alone = drawn.drawn_alone;
    entry.totals = Some(TotalsEntry {
        label: t.total_label.clone(),
        rows: drawn.total_rows,
        status: TOTAL_STATUS.into(),
        from: if drawn.group.is_some() {
            "the sums of the table's published values before suppression, summed from its consistency group's integer union table: a margin that is another table of the group equals that table's cells".into()
        } else if t.statistic.is_non_negative() {
            "the sums of the table's published values before suppression (negative noisy values clamped to 0 first)".into()
        } else {
            "the sums of the table's published values before suppression".into()
        },
        margin_of_error_method: totals::METHOD.into(),
    });
    if plan.presentation.shares(&t.name) {
        entry.shares = Some(shares_entry(t, drawn.shares, drawn.group.is_some()));
    }
    if let (Some(c), Some(moe)) = (&noise.contributors, drawn.contributors_margin) {
        entry.contributors = Some(contributors_entry(t, c, moe)?);
        entry.suppression.rule = format!(
            "a cell whose noisy count of contributors is below {} is shown as suppressed, its count of contributors too",
            t.suppress_below
        );
        entry.suppression.decided_on = "noisy counts of contributors".into();
    } else if matches!(t.statistic, Statistic::Sum { .. }) {
        entry.suppression.rule =
            "nothing is suppressed: a sum is suppressed only on a noisy count of its contributors, which this table does not measure".into();
        entry.suppression.decided_on = "nothing".into();
    }
    Ok(entry)
}

/// The entry's fields every differentially private table has.
fn table_entry(
    plan: &Plan,
    t: &TableSpec,
    m: &NoiseMechanism,
    // The table's cost (every measurement composed), and its values' alone.
    (cost, values_cost): (Cost, Cost),
    drawn: &Drawn,
) -> TableEntry {
    let group = drawn.group;
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
        files: drawn.files.clone(),
        input: plan.inputs[t.input].name.clone(),
        statistic: t.statistic.name().into(),
        column,
        clamp,
        dimensions: t
            .dims
            .iter()
            .map(|&d| plan.dimensions[d].name.clone())
            .collect(),
        cells: drawn.cells,
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
        margin_of_error: drawn.margin_of_error,
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
            cells_suppressed: drawn.suppressed,
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
) -> Result<ContributorsEntry, MechanismError> {
    let cost = m.cost()?;
    let declared = t.contributors_cost.unwrap_or(cost);
    Ok(ContributorsEntry {
        counts: "distinct privacy units among the cell's kept rows (a unit keeps at most max_rows_per_unit rows, so it counts in at most that many cells)".into(),
        columns: vec![
            "contributors".into(),
            format!("contributors_{}", moe_column(t.confidence)),
        ],
        sensitivity: SensitivityEntry {
            norm: t.mechanism.norm().name().into(),
            value: m.d_in,
        },
        noise_scale: m.scale,
        privacy_cost: CostEntry::new(cost, declared, CostSource::Declared, computed_by(t.mechanism, cost)),
        margin_of_error: moe,
    })
}

/// How a table's shares were computed, for the manifest.
fn shares_entry(t: &TableSpec, shares: Option<&accuracy::Shares>, grouped: bool) -> SharesEntry {
    SharesEntry {
        columns: vec![
            "share_pct".into(),
            format!("share_pct_{}", moe_column(t.confidence)),
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
