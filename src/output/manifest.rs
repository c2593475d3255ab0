//! `manifest.json`: what was released and exactly how, written by `release` and read back, typed,
//! by the release transaction and `audit`.
//!
//! The release folder is public: nothing here may depend on the data except through the
//! protection (no input digest, path, row or unit count). The ledger line it names carries a
//! secret nonce, so that line's hash reveals nothing.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::sha256_hex;
use crate::policy::CostSource;
use crate::privacy::{Budget, Cost, Mechanism};

/// The report's file in a release folder.
pub const REPORT_HTML: &str = "report.html";

/// The files of a release folder that present its tables (a presentation revision rewrites
/// them, and nothing else but the manifest): the workbook `<release id>.xlsx` and the report.
pub fn presentation_files(release_id: &str) -> [String; 2] {
    [format!("{release_id}.xlsx"), REPORT_HTML.to_string()]
}

/// SHA-256 of what a presentation revision never changes: the manifest without its
/// presentation, the release's title, its revisions, the report format and the workbook's and the
/// report's hashes (compact JSON, keys sorted). The ledger's `published` line records it, each `revised` line
/// carries it on, and `audit` recomputes it from the folder.
pub fn content_sha256(m: &Manifest) -> String {
    let mut v = serde_json::to_value(m).expect("serialising to memory");
    if let Some(o) = v.as_object_mut() {
        o.remove("presentation");
        o.remove("revisions");
    }
    v["release"]["title"] = serde_json::Value::Null;
    // Which safestat made the workbook and report is theirs too: a revision remakes them.
    if let Some(tool) = v["tool"].as_object_mut() {
        tool.remove("report_format");
    }
    let presenting = presentation_files(&m.release.id);
    if let Some(outputs) = v["outputs"].as_array_mut() {
        outputs.retain(|o| !presenting.iter().any(|p| o["path"] == p.as_str()));
    }
    sha256_hex(&serde_json::to_vec(&v).expect("serialising to memory"))
}

/// The manifest's format; 2 dropped the inputs' digests and paths (they are exact functions of
/// private data) and marks declared bounds in each table's guarantee; 3 adds the groups of tables
/// estimated together (`consistency`) and each table's `margin_of_error_method`; 4 adds the
/// `presentation` (labels, titles, units, language) that the workbook and the report are made
/// with, and `inputs[].bounded_in`; 5 adds a sum's count of contributors (`tables[].contributors`)
/// and published shares (`tables[].shares`), and the exact tables (`exact_tables`); 6 groups only
/// tables that are margins of one bounded table, says why each other table is drawn alone
/// (`tables[].drawn_alone`) and publishes every table's margins and grand total; 7 adds the public
/// budget statement (`statement`), the signing key of a signed dataset (`signature`) and what mixing
/// exact and differentially private tables means (`mixing`), and no longer publishes the policy's
/// hashes (the charge line commits to them); 8 says who exact tables are proven against
/// (`exact_tables[].attacker`: the outsider and each respondent knowing its own contributions),
/// and the presentation gains the publication's texts (`source`, `organisation`, `contact`,
/// `period`, `notes`), table numbers (`table_numbers`, `tables[].number`) and the privacy unit's
/// label; 9 records which workbook and report the folder's safestat makes (`tool.report_format`).
pub const MANIFEST_FORMAT: u32 = 9;

/// What `safestat report` makes of a folder's tables and manifest, byte for byte: one more each
/// time the workbook's or `report.html`'s bytes change for the same folder (a golden test of a
/// fixture folder holds it). `verify` and `report` compare a folder's workbook and report with
/// what they make only when its manifest states this format: an older safestat's are checked by
/// their hashes alone.
pub const REPORT_FORMAT: u32 = 1;

/// `manifest.json`: what was released and exactly how. The release folder is public, so nothing
/// here may depend on the data except through the protection: no input digest, path, row or unit
/// count; the ledger line it names carries a secret nonce, so that line's hash reveals nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_format: u32,
    pub release: ManifestRelease,
    pub dataset: String,
    pub privacy_unit: String,
    pub created_at: String,
    pub tool: ToolInfo,
    pub rng: RngInfo,
    pub policy: PolicyEntry,
    pub inputs: Vec<InputEntry>,
    pub tables: Vec<TableEntry>,
    /// Exact tables protected by cell suppression, not differentially private (format 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exact_tables: Vec<ExactTableEntry>,
    pub total_cost: TotalCost,
    /// The groups of tables that measure the same quantity, estimated together (format 3).
    #[serde(default)]
    pub consistency: Vec<ConsistencyGroup>,
    pub ledger: ManifestLedger,
    /// How the tables are presented to readers (format 4; display only).
    #[serde(default)]
    pub presentation: crate::policy::Presentation,
    /// Set when the release publishes exact tables beside differentially private tables of the
    /// same people: what that does to the guarantee, in words (format 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixing: Option<String>,
    /// The dataset's budget as of this release, one link of a public chain (format 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<BudgetStatement>,
    /// The key whose signature of this file is `manifest.json.minisig` (format 7; absent: the
    /// dataset is not signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureEntry>,
    /// Every file of the release folder except this manifest (and its signature).
    pub outputs: Vec<FileHash>,
    /// The presentation revisions this folder went through (`safestat report RELEASE_DIR
    /// --policy P`), oldest first; absent before the first. Any format may carry them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionEntry>,
}

/// One presentation revision: the workbook and report made again with another policy's labels,
/// titles and texts. The tables' files are as published; the ledger records the revision too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevisionEntry {
    /// 1 for the first, one more for each after it.
    pub revision: u32,
    /// When it was made (UTC, RFC 3339).
    pub revised_at: String,
    /// SHA-256 of the manifest it replaced.
    pub previous_manifest_sha256: String,
    /// The release's title before it, for the record (a revision may change the title, which is
    /// otherwise part of what identifies a release's policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_title: Option<String>,
    /// The files it replaced or added, with the hashes they had before (absent: added).
    pub replaced: Vec<ReplacedFile>,
}

/// A file a presentation revision rewrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplacedFile {
    pub path: String,
    /// Its SHA-256 before the revision; absent when the revision added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    pub sha256: String,
}

/// A release's public budget statement: what its dataset had spent before it, what it cost, the
/// total after it, and the hash of the statement of the dataset's release before it. Statement
/// `n` is the dataset's `n`th charge, so a set of folders whose statements run 1..n without a gap
/// or a fork, each chained to the one before, shows every charge: nothing was spent out of sight.
/// Holds nothing private (no fingerprints, no paths): every figure is already in the manifest's
/// `ledger` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetStatement {
    pub dataset: String,
    /// 1 for the dataset's first release (charge), and one more for each after it.
    pub sequence: u64,
    pub release_id: String,
    pub version: u32,
    pub accounting: String,
    pub budget: Budget,
    /// The unit of the three figures below (`epsilon` or `rho`).
    pub unit: String,
    pub spent_before: f64,
    pub cost: f64,
    /// opendp's composition of `spent_before` and `cost`: the dataset's total after this release.
    pub total_after: f64,
    /// The SHA-256 of the ledger line that charged this release (as in `ledger.charge_sha256`; a
    /// hiding commitment, its line holds a secret nonce). Two runs charged from one ledger state
    /// (a ledger restored from a backup) state different lines, so the chain shows the fork.
    pub charge_sha256: String,
    /// [`BudgetStatement::sha256`] of statement `sequence - 1`; 64 zeros for the first.
    pub previous_sha256: String,
}

impl BudgetStatement {
    /// What the next statement names: the SHA-256 of this statement's compact JSON with its keys
    /// sorted (as in `manifest.json`, without spaces or line breaks; Python's
    /// `json.dumps(s, sort_keys=True, separators=(",", ":"))` gives the same bytes for the
    /// figures safestat writes).
    pub fn sha256(&self) -> String {
        // A `Value`'s object keys are sorted.
        let value = serde_json::to_value(self).expect("serialising to memory");
        sha256_hex(&serde_json::to_vec(&value).expect("serialising to memory"))
    }
}

/// Who signed the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    /// The signature's file in the folder (`manifest.json.minisig`).
    pub file: String,
    /// The key ID, as minisign prints it.
    pub key_id: String,
    pub algorithm: String,
}

/// The ledger charge that paid for this release; `charge_sha256` is the hash of that exact line
/// (which holds a secret nonce), so an edit of the charge is detectable even when it is the
/// ledger's last line, and a ledger that lost the line is caught by the folder that names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestLedger {
    pub accounting: String,
    pub budget: Budget,
    pub charge_seq: u64,
    pub charge_sha256: String,
    /// This release's cost in the ledger's unit, and the dataset's total after it.
    pub unit: String,
    pub charged: f64,
    pub total_after: f64,
}

/// The policy, by file name (its folder is private). Its hashes (of the file's bytes and of the
/// plan's meaning, which holds an SQL input's query text) are not published from format 7: a plain
/// hash of a guessable text confirms a guess. They are in the ledger's charge, which the manifest's
/// `ledger.charge_sha256` commits to without revealing them (the line holds a secret nonce).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyEntry {
    pub file: String,
    /// Format 6 and earlier: SHA-256 of the policy file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Format 6 and earlier: SHA-256 of the plan's canonical meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestRelease {
    pub id: String,
    pub version: u32,
    pub title: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub opendp_version: String,
    /// The [`REPORT_FORMAT`] of the safestat that made the workbook and report (absent before
    /// manifest format 9: made by an earlier one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_format: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RngInfo {
    pub noise: String,
    pub contribution_bounding: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
}

/// An input, by name and kind only: its path and its digest are private.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputEntry {
    pub name: String,
    pub kind: String,
    /// `enforced` (microdata: safestat bounds each unit) or `declared` (pre-counted input).
    pub contribution_bounds: String,
    /// Where an SQL input's rows were bounded and counted (absent for a file, which safestat
    /// reads itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounded_in: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub files: Vec<String>,
    pub input: String,
    pub statistic: String,
    pub column: Option<String>,
    pub clamp: Option<[i64; 2]>,
    pub dimensions: Vec<String>,
    pub cells: usize,
    /// `differential_privacy` when safestat enforced the contribution bounds;
    /// `differential_privacy_if_declared_bounds_hold` for pre-counted input, whose bounds the
    /// policy only declares.
    pub protection: String,
    /// The guarantee in words.
    pub guarantee: String,
    pub contribution_bounds: Bounds,
    pub mechanism: Mechanism,
    pub sensitivity: SensitivityEntry,
    pub noise_scale: f64,
    pub privacy_cost: CostEntry,
    pub confidence: f64,
    pub margin_of_error: i64,
    /// How the margin of error was obtained (format 3).
    #[serde(default)]
    pub margin_of_error_method: String,
    /// The index in `consistency` of the group this table was estimated with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_group: Option<usize>,
    pub post_processing: Vec<String>,
    pub suppression: Suppression,
    /// Which published cells are flagged `unreliable`, and how many (format 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reliability: Option<Reliability>,
    /// A sum's second measurement: the noisy count of each cell's contributors, which decides its
    /// suppression and flags (format 5). The table's cost is both measurements composed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributors: Option<ContributorsEntry>,
    /// Each cell's share of the table's total, if published (format 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<SharesEntry>,
    /// Why the table was drawn alone, not estimated with a group of tables (format 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawn_alone: Option<String>,
    /// The table's margins and grand total, rows after its cells in its files (format 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<TotalsEntry>,
}

/// A DP table's margins and grand total, published after its cells: every combination of its
/// dimensions with at least one summed out (`label` in its place), status `total`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotalsEntry {
    pub label: String,
    /// How many rows follow the cells.
    pub rows: usize,
    /// The status of those rows.
    pub status: String,
    /// What they are sums of.
    pub from: String,
    pub margin_of_error_method: String,
}

/// An exact table: published with exact values, protected by cell suppression. Not
/// differentially private.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExactTableEntry {
    pub name: String,
    pub files: Vec<String>,
    pub input: String,
    /// `count_units` or `sum`.
    pub statistic: String,
    /// A sum's column (absent for a count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub dimensions: Vec<String>,
    /// Grid points published: every combination of categories (and totals, with margins).
    pub cells: usize,
    /// Whether every margin is published (format 5; `true` when absent).
    #[serde(default = "yes")]
    pub margins: bool,
    /// `cell_suppression`.
    pub protection: String,
    /// In words, that it is not differentially private and what protects it.
    pub guarantee: String,
    pub total_label: String,
    /// Per dimension, its groups of categories, whose subtotals are published after its
    /// categories (absent: none).
    #[serde(default, skip_serializing_if = "crate::policy::no_groups")]
    pub groups: Vec<Vec<crate::policy::Group>>,
    pub primary_rule: PrimaryRule,
    /// The attacker's interval of a primary cell must reach this percent of its value above and
    /// below it (at least 1).
    pub interval_percent: f64,
    pub secondary_objective: String,
    pub secondary_method: String,
    pub cells_suppressed: usize,
    /// Who the pattern is proven against, in words: the outsider, and each respondent knowing
    /// its own contributions (format 8; absent before).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attacker: String,
    /// How the intervals below were found.
    pub audit: String,
    /// Every suppressed cell and what an attacker can infer about it from everything published.
    pub intervals: Vec<CellInterval>,
}

fn yes() -> bool {
    true
}

impl ExactTableEntry {
    /// Per dimension, its groups' names (empty where it has none).
    pub fn group_names(&self) -> Vec<Vec<&str>> {
        (0..self.dimensions.len())
            .map(|k| {
                self.groups
                    .get(k)
                    .map_or(Vec::new(), |g| g.iter().map(|g| g.name.as_str()).collect())
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrimaryRule {
    /// A cell of fewer privacy units than this (and more than none) is suppressed.
    pub min_frequency: i64,
    pub zeros_suppressed: bool,
    /// Zero cells may be hidden as secondary cells, so a hidden count may be 0 (absent: never).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zeros_as_secondary: bool,
    /// A sum's (n,k)-dominance rule (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominance: Option<crate::policy::Dominance>,
    /// A sum's p% rule (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_percent: Option<u32>,
}

/// A suppressed cell's labels and the attacker's interval for it (`hi` null: unbounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellInterval {
    pub cell: Vec<String>,
    pub lo: i64,
    pub hi: Option<i64>,
}

/// The noisy count of a sum's contributors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContributorsEntry {
    /// What is counted, in words.
    pub counts: String,
    pub columns: Vec<String>,
    pub sensitivity: SensitivityEntry,
    pub noise_scale: f64,
    pub privacy_cost: CostEntry,
    pub margin_of_error: i64,
}

/// How a table's shares were computed from its published values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharesEntry {
    pub columns: Vec<String>,
    /// The total the shares are of (noisy, post-processed) and its margin of error; `None` when
    /// it is not positive (no shares are given).
    pub total: Option<i64>,
    pub total_margin_of_error: Option<i64>,
    pub total_from: String,
    pub margin_of_error_method: String,
}

/// The reliability flag of a table's cells.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reliability {
    pub rule: String,
    /// `None` for a sum: its flags need a noisy count of contributors, which is not measured.
    pub unreliable_above: Option<f64>,
    pub cells_flagged: usize,
    pub cells_published: usize,
}

/// Tables of the same input, statistic and bounds, estimated as one integer union table (or
/// published as drawn, with the reason).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsistencyGroup {
    pub tables: Vec<String>,
    /// The union table's dimensions and cells.
    pub dimensions: Vec<String>,
    pub union_cells: Option<usize>,
    /// `estimated`, or `published_as_drawn` (with `reason`).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub method: String,
    pub solvers: String,
    /// How closely the integer tables keep the fitted values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bounds {
    /// `enforced` (safestat bounded each unit's rows) or `declared` (aggregated input: the
    /// policy asserts the bound and safestat cannot check it).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cells_per_unit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows_per_unit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows_per_cell: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensitivityEntry {
    pub norm: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostEntry {
    /// `pure_dp` (epsilon) or `zcdp` (rho).
    pub measure: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    pub delta: f64,
    /// The cost the policy asked for; `epsilon`/`rho` above is what opendp's map reports.
    pub declared: Cost,
    pub source: CostSource,
    pub computed_by: String,
}

impl CostEntry {
    pub fn new(mapped: Cost, declared: Cost, source: CostSource, computed_by: &str) -> Self {
        let (measure, epsilon, rho) = mapped.parts();
        CostEntry {
            measure: measure.to_string(),
            epsilon,
            rho,
            delta: 0.0,
            declared,
            source,
            computed_by: computed_by.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotalCost {
    pub measure: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    pub delta: f64,
    pub composition: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suppression {
    pub rule: String,
    pub threshold: i64,
    pub decided_on: String,
    pub cells_suppressed: usize,
}

/// A release folder as published: its manifest's bytes, hash and content.
pub struct Published {
    pub manifest_sha256: String,
    pub manifest: Manifest,
}

/// Reads `dir/manifest.json` and checks that every file it lists is present with its hash and
/// that nothing else is in the folder. The error says what is wrong, naming the file.
pub fn read_published(dir: &Path) -> Result<Published, (Option<String>, String)> {
    let path = dir.join("manifest.json");
    let bytes = fs::read(&path).map_err(|e| {
        (
            Some("manifest.json".to_string()),
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        (
            Some("manifest.json".to_string()),
            format!("not a safestat manifest: {e}"),
        )
    })?;
    for o in &manifest.outputs {
        match fs::read(dir.join(&o.path)) {
            Ok(b) if sha256_hex(&b) == o.sha256 => {}
            Ok(_) => {
                return Err((
                    Some(o.path.clone()),
                    "was altered (its hash differs from the manifest's)".into(),
                ));
            }
            Err(_) => return Err((Some(o.path.clone()), "is missing".into())),
        }
    }
    Ok(Published {
        manifest_sha256: sha256_hex(&bytes),
        manifest,
    })
}

/// Files in `dir` that its manifest does not list.
pub fn unlisted_files(dir: &Path, manifest: &Manifest) -> Vec<String> {
    let mut extra: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n != "manifest.json"
                        && !(n == crate::sign::SIGNATURE_FILE && manifest.signature.is_some())
                        && !manifest.outputs.iter().any(|o| o.path == *n)
                })
                .collect()
        })
        .unwrap_or_default();
    extra.sort();
    extra
}

/// The release folders directly under each of `roots` whose manifest names `dataset` (dot
/// folders, the unfinished ones, are passed over), with what they publish.
pub fn release_folders(roots: &[PathBuf], dataset: &str) -> Vec<(PathBuf, Manifest)> {
    let mut found = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for root in roots {
        let Ok(rd) = fs::read_dir(root) else {
            continue;
        };
        for entry in rd.filter_map(|e| e.ok()) {
            let dir = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden || !dir.is_dir() {
                continue;
            }
            let key = fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
            if !seen.insert(key) {
                continue;
            }
            let Ok(bytes) = fs::read(dir.join("manifest.json")) else {
                continue;
            };
            if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes)
                && m.dataset == dataset
            {
                found.push((dir, m));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Who made a folder's workbook and report, when it is not this safestat's report format.
pub fn made_by(tool: &ToolInfo) -> String {
    match tool.report_format {
        Some(f) => format!(
            "it was made by safestat {} with report format {f}; this one makes format {REPORT_FORMAT}",
            tool.version
        ),
        None => format!(
            "it was made by safestat {} before report formats were recorded, which manifest format 9 began; this one makes format {REPORT_FORMAT}",
            tool.version
        ),
    }
}
