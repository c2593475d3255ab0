//! Release output: the published table files, the manifest, and their atomic placement.
//!
//! Owns the CSV and JSON layouts and the rule that a release folder appears whole or not at all:
//! everything is written and fsynced in a temporary folder beside the target, which is then
//! renamed into place. Must never receive or write exact cells: it only formats
//! [`crate::postprocess::Cell`]s.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::sha256_hex;

use crate::plan::{Cost, CostSource, Mechanism};
use crate::postprocess::Cell;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "output folder `{0}` already exists; refusing to overwrite a release (choose another --out, or remove it if it was never published)"
    )]
    Exists(PathBuf),
    #[error("cannot write the release to `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A release folder's files: (name, bytes).
pub type Files = Vec<(String, Vec<u8>)>;

/// One published table, ready to format.
pub struct PublishedTable<'a> {
    pub name: &'a str,
    /// Dimension names, first varying slowest.
    pub dimensions: Vec<&'a str>,
    /// Each dimension's declared categories.
    pub categories: Vec<&'a [String]>,
    pub cells: &'a [Cell],
    pub margin_of_error: i64,
    pub confidence: f64,
}

/// The margin-of-error column's name for a confidence: `moe95` for 0.95, `moe97.5` for 0.975.
pub fn moe_column(confidence: f64) -> String {
    let pct = format!("{:.4}", confidence * 100.0);
    let pct = pct.trim_end_matches('0').trim_end_matches('.');
    format!("moe{pct}")
}

impl PublishedTable<'_> {
    /// `<dims...>,value,status,moeNN`; one row per declared cell in category order.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let moe = self.margin_of_error.to_string();
        let mut header: Vec<String> = self.dimensions.iter().map(|d| d.to_string()).collect();
        header.extend(["value".into(), "status".into(), moe_column(self.confidence)]);
        w.write_record(&header).expect("writing to memory");
        for (i, cell) in self.cells.iter().enumerate() {
            let value = cell.value.map(|v| v.to_string()).unwrap_or_default();
            let mut row = self.labels(i);
            row.extend([value.as_str(), cell.status(), moe.as_str()]);
            w.write_record(&row).expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }

    /// The category labels of cell `i` (cells are stored first dimension slowest).
    fn labels(&self, i: usize) -> Vec<&str> {
        let mut labels = vec![""; self.categories.len()];
        let mut rest = i;
        for (k, cats) in self.categories.iter().enumerate().rev() {
            labels[k] = &cats[rest % cats.len()];
            rest /= cats.len();
        }
        labels
    }

    /// The same table as JSON: `{"table", "columns", "rows": [[...], ...]}` with numbers as
    /// numbers and suppressed values as `null`.
    pub fn to_json(&self) -> Vec<u8> {
        let moe_name = moe_column(self.confidence);
        let mut columns: Vec<&str> = self.dimensions.clone();
        columns.extend(["value", "status", &moe_name]);
        let rows: Vec<serde_json::Value> = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let mut row: Vec<serde_json::Value> =
                    self.labels(i).into_iter().map(Into::into).collect();
                row.push(cell.value.map_or(serde_json::Value::Null, Into::into));
                row.push(cell.status().into());
                row.push(self.margin_of_error.into());
                serde_json::Value::Array(row)
            })
            .collect();
        let doc = serde_json::json!({ "table": self.name, "columns": columns, "rows": rows });
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("serialising to memory");
        bytes.push(b'\n');
        bytes
    }
}

/// The manifest's format; 2 dropped the inputs' digests and paths (they are exact functions of
/// private data) and marks declared bounds in each table's guarantee.
pub const MANIFEST_FORMAT: u32 = 2;

/// `manifest.json`: what was released and exactly how. The release folder is public, so nothing
/// here may depend on the data except through the protection: no input digest, path, row or unit
/// count; the ledger line it names carries a secret nonce, so that line's hash reveals nothing.
#[derive(Debug, Serialize)]
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
    pub total_cost: TotalCost,
    pub ledger: ManifestLedger,
    /// Every file of the release folder except this manifest.
    pub outputs: Vec<FileHash>,
}

/// The ledger charge that paid for this release; `charge_sha256` is the hash of that exact line
/// (which holds a secret nonce), so an edit of the charge is detectable even when it is the
/// ledger's last line, and a ledger that lost the line is caught by the folder that names it.
#[derive(Debug, Serialize)]
pub struct ManifestLedger {
    pub accounting: &'static str,
    pub budget: crate::ledger::Budget,
    pub charge_seq: u64,
    pub charge_sha256: String,
    /// This release's cost in the ledger's unit, and the dataset's total after it.
    pub unit: &'static str,
    pub charged: f64,
    pub total_after: f64,
}

/// The policy, by file name (its folder is private) and by the two hashes that describe it.
#[derive(Debug, Serialize)]
pub struct PolicyEntry {
    pub file: String,
    /// SHA-256 of the policy file's bytes.
    pub sha256: String,
    /// SHA-256 of the plan's canonical meaning, what identifies the release.
    pub plan_sha256: String,
}

/// What `audit` and the release transaction read back from a published `manifest.json`: the
/// fields that tie it to its ledger charge and its files. Typed, so a renamed field fails here,
/// not silently.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedManifest {
    pub manifest_format: u32,
    pub release: ReleaseRef,
    pub dataset: String,
    pub policy: PolicyRef,
    pub tables: Vec<TableRef>,
    pub ledger: LedgerRef,
    pub outputs: Vec<FileHash>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseRef {
    pub id: String,
    pub version: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PolicyRef {
    pub plan_sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableRef {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LedgerRef {
    pub charge_seq: u64,
    pub charge_sha256: String,
    pub charged: f64,
}

/// A release folder as published: its manifest's bytes, hash and content.
pub struct Published {
    pub manifest_sha256: String,
    pub manifest: PublishedManifest,
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
    let manifest: PublishedManifest = serde_json::from_slice(&bytes).map_err(|e| {
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
pub fn unlisted_files(dir: &Path, manifest: &PublishedManifest) -> Vec<String> {
    let mut extra: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "manifest.json" && !manifest.outputs.iter().any(|o| o.path == *n))
                .collect()
        })
        .unwrap_or_default();
    extra.sort();
    extra
}

/// The release folders directly under each of `roots` whose manifest names `dataset` (dot
/// folders, the unfinished ones, are passed over), with what they publish.
pub fn release_folders(roots: &[PathBuf], dataset: &str) -> Vec<(PathBuf, PublishedManifest)> {
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
            if let Ok(m) = serde_json::from_slice::<PublishedManifest>(&bytes)
                && m.dataset == dataset
            {
                found.push((dir, m));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The unfinished folders an interrupted [`write_folder_atomically`] of `dir` may have left.
pub fn partial_folders(dir: &Path) -> Vec<PathBuf> {
    let (parent, leaf) = parent_and_leaf(dir);
    let prefix = format!(".{leaf}.partial-");
    let mut found: Vec<PathBuf> = fs::read_dir(&parent)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn parent_and_leaf(dir: &Path) -> (PathBuf, String) {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let leaf = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "release".into());
    (parent, leaf)
}

/// Renames a whole unfinished folder into place (an interrupted run's, completed by the next
/// one) and fsyncs the parent.
pub fn finish_partial(partial: &Path, dir: &Path) -> Result<(), OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    ensure_absent(dir)?;
    fs::rename(partial, dir).map_err(io(dir))?;
    let (parent, _) = parent_and_leaf(dir);
    File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(io(&parent))
}

#[derive(Debug, Serialize)]
pub struct ManifestRelease {
    pub id: String,
    pub version: u32,
    pub title: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub opendp_version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct RngInfo {
    pub noise: &'static str,
    pub contribution_bounding: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
}

/// An input, by name and kind only: its path and its digest are private.
#[derive(Debug, Serialize)]
pub struct InputEntry {
    pub name: String,
    pub kind: &'static str,
    /// `enforced` (microdata: safestat bounds each unit) or `declared` (pre-counted input).
    pub contribution_bounds: &'static str,
}

#[derive(Debug, Serialize)]
pub struct TableEntry {
    pub name: String,
    pub files: Vec<String>,
    pub input: String,
    pub statistic: &'static str,
    pub column: Option<String>,
    pub clamp: Option<[i64; 2]>,
    pub dimensions: Vec<String>,
    pub cells: usize,
    /// `differential_privacy` when safestat enforced the contribution bounds;
    /// `differential_privacy_if_declared_bounds_hold` for pre-counted input, whose bounds the
    /// policy only declares.
    pub protection: &'static str,
    /// The guarantee in words.
    pub guarantee: String,
    pub contribution_bounds: Bounds,
    pub mechanism: Mechanism,
    pub sensitivity: SensitivityEntry,
    pub noise_scale: f64,
    pub privacy_cost: CostEntry,
    pub confidence: f64,
    pub margin_of_error: i64,
    pub post_processing: Vec<&'static str>,
    pub suppression: Suppression,
}

#[derive(Debug, Serialize)]
pub struct Bounds {
    /// `enforced` (safestat bounded each unit's rows) or `declared` (aggregated input: the
    /// policy asserts the bound and safestat cannot check it).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cells_per_unit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows_per_unit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows_per_cell: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct SensitivityEntry {
    pub norm: &'static str,
    pub value: f64,
}

#[derive(Debug, Serialize)]
pub struct CostEntry {
    /// `pure_dp` (epsilon) or `zcdp` (rho).
    pub measure: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    pub delta: f64,
    /// The cost the policy asked for; `epsilon`/`rho` above is what opendp's map reports.
    pub declared: Cost,
    pub source: CostSource,
    pub computed_by: &'static str,
}

impl CostEntry {
    pub fn new(
        mapped: Cost,
        declared: Cost,
        source: CostSource,
        computed_by: &'static str,
    ) -> Self {
        let (measure, epsilon, rho) = mapped.parts();
        CostEntry {
            measure,
            epsilon,
            rho,
            delta: 0.0,
            declared,
            source,
            computed_by,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TotalCost {
    pub measure: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    pub delta: f64,
    pub composition: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Suppression {
    pub rule: String,
    pub threshold: i64,
    pub decided_on: &'static str,
    pub cells_suppressed: usize,
}

/// Refuses early when the release folder already exists.
pub fn ensure_absent(dir: &Path) -> Result<(), OutputError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => Err(OutputError::Exists(dir.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(OutputError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Writes `files` (name, bytes) into a new folder `dir`, atomically: all files are written and
/// fsynced in a temporary sibling folder, which is renamed to `dir` only when complete. On any
/// error nothing is left behind.
pub fn write_folder_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    let (parent, leaf) = parent_and_leaf(dir);
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{leaf}.partial-"))
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    for (name, bytes) in files {
        let path = tmp.path().join(name);
        let mut f = File::create(&path).map_err(io(&path))?;
        f.write_all(bytes).map_err(io(&path))?;
        f.flush().map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
    }
    ensure_absent(dir)?;
    fs::rename(tmp.path(), dir).map_err(io(dir))?;
    // The temporary folder is now `dir`; stop `tmp` from deleting anything on drop.
    let _ = tmp.keep();
    if let Ok(d) = File::open(&parent) {
        d.sync_all().map_err(io(&parent))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moe_column_names() {
        assert_eq!(moe_column(0.95), "moe95");
        assert_eq!(moe_column(0.975), "moe97.5");
        assert_eq!(moe_column(0.9), "moe90");
    }

    #[test]
    fn csv_lists_every_cell_in_category_order() {
        let cats_a = vec!["f".to_string(), "m".to_string()];
        let cats_b = vec!["x".to_string(), "y".to_string(), "z".to_string()];
        let cells: Vec<Cell> = (0..6)
            .map(|i| Cell {
                value: (i != 4).then_some(i * 10),
            })
            .collect();
        let t = PublishedTable {
            name: "t",
            dimensions: vec!["a", "b"],
            categories: vec![&cats_a, &cats_b],
            cells: &cells,
            margin_of_error: 7,
            confidence: 0.95,
        };
        let text = String::from_utf8(t.to_csv()).unwrap();
        assert_eq!(
            text,
            "a,b,value,status,moe95\nf,x,0,published,7\nf,y,10,published,7\nf,z,20,published,7\n\
             m,x,30,published,7\nm,y,,suppressed,7\nm,z,50,published,7\n"
        );
        let json: serde_json::Value = serde_json::from_slice(&t.to_json()).unwrap();
        assert_eq!(
            json["rows"][4],
            serde_json::json!(["m", "y", null, "suppressed", 7])
        );
    }

    #[test]
    fn atomic_write_refuses_an_existing_folder_and_leaves_no_debris() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r");
        write_folder_atomically(&dir, &[("a.csv".into(), b"x".to_vec())]).unwrap();
        assert_eq!(fs::read(dir.join("a.csv")).unwrap(), b"x");
        let err = write_folder_atomically(&dir, &[("b.csv".into(), b"y".to_vec())]).unwrap_err();
        assert!(matches!(err, OutputError::Exists(_)));
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["r"]);
        assert!(!dir.join("b.csv").exists());
    }
}
