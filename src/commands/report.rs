//! `safestat report RELEASE_DIR`: the workbook and `report.html` again, from a published folder's
//! manifest and table CSVs (never the raw data). Into the release folder itself, a file the
//! manifest lists must come out byte for byte as published (a missing one is restored); `--out`
//! writes them anywhere else, and `--policy` takes the labels, titles, units and language from a
//! policy of the same release (to fix a label after publication; nothing is drawn or charged).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::console::print;
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::output::Manifest;
use crate::policy;
use crate::report;

pub fn run(dir: &Path, out: Option<PathBuf>, relabel: Option<PathBuf>) -> Result<(), Error> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path)
        .map_err(|e| Error::Usage(format!("cannot read `{}`: {e}", path.display())))?;
    let mut manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Usage(format!(
            "`{}` is not a safestat manifest: {e}",
            path.display()
        ))
    })?;
    if let Some(policy) = relabel {
        // Labels, titles, units and language from a policy of the same release: display only.
        if out.is_none() {
            return Err(Error::Usage(
                "--policy presents the release differently from its manifest, so its files cannot go into the release folder; add --out DIR".into(),
            ));
        }
        let plan = policy::load(&policy)?;
        if plan.release_id != manifest.release.id || plan.dataset != manifest.dataset {
            return Err(Error::Usage(format!(
                "policy `{}` is for release `{}` of `{}`, but the folder holds `{}` of `{}`",
                policy.display(),
                plan.release_id,
                plan.dataset,
                manifest.release.id,
                manifest.dataset
            )));
        }
        manifest.presentation = plan.presentation;
    }
    let made_here = [
        report::workbook_name(&manifest),
        report::REPORT_HTML.to_string(),
    ];
    for o in manifest
        .outputs
        .iter()
        .filter(|o| !made_here.contains(&o.path))
    {
        let why = match std::fs::read(dir.join(&o.path)) {
            Ok(b) if sha256_hex(&b) == o.sha256 => continue,
            Ok(_) => "differs from the SHA-256 its manifest lists (altered after publication)",
            Err(_) => "is missing",
        };
        return Err(Error::Usage(format!(
            "`{}` in `{}` {why}; the workbook and report are made from the tables, so nothing was written (`safestat verify {}` lists every problem)",
            o.path,
            dir.display(),
            dir.display()
        )));
    }
    let file = |name: &str| std::fs::read(dir.join(name)).ok();
    let tables = report::read_tables(&manifest, &file)?;
    let exact = report::read_exact_tables(&manifest, &file)?;
    let made = report::render(&manifest, &tables, &exact)?;
    let target = out.clone().unwrap_or_else(|| dir.to_path_buf());
    let io =
        |p: &Path, e: std::io::Error| Error::Usage(format!("cannot write `{}`: {e}", p.display()));
    std::fs::create_dir_all(&target).map_err(|e| io(&target, e))?;
    let mut r = String::new();
    for (name, bytes) in made {
        let file = target.join(&name);
        let listed = manifest.outputs.iter().find(|o| o.path == name);
        if out.is_none() && listed.is_none() {
            // An older release: a file its manifest does not list would fail its audit.
            return Err(Error::Usage(format!(
                "the manifest of `{}` does not list `{name}` (a release made before workbooks and reports); nothing written: use --out DIR to write them elsewhere",
                dir.display()
            )));
        }
        if out.is_none()
            && let Some(o) = listed
        {
            let made_sha = sha256_hex(&bytes);
            if made_sha != o.sha256 {
                let made_by = &manifest.tool.version;
                let why = if *made_by == env!("CARGO_PKG_VERSION") {
                    "although the tables are as published and this is the safestat version that made it: the manifest was altered".to_string()
                } else {
                    format!(
                        "(it was made by safestat {made_by}, this is {})",
                        env!("CARGO_PKG_VERSION")
                    )
                };
                return Err(Error::Usage(format!(
                    "`{name}` made from this folder would differ from the one its manifest lists {why}; nothing written: use --out DIR to write it elsewhere"
                )));
            }
            if std::fs::read(&file).map(|b| sha256_hex(&b)).ok() == Some(made_sha) {
                let _ = writeln!(r, "{}: unchanged (matches the manifest)", file.display());
                continue;
            }
        }
        std::fs::write(&file, &bytes).map_err(|e| io(&file, e))?;
        let _ = writeln!(r, "{}: written", file.display());
    }
    print(&r)
}
