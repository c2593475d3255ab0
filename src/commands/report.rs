//! `safestat report RELEASE_DIR`: the workbook and `report.html` again, from a published folder's
//! manifest and table CSVs (never the raw data). Into the release folder itself, a file the
//! manifest lists must come out byte for byte as published (a missing one is restored); `--out`
//! writes them anywhere else, and `--policy` takes the labels, titles, units, texts and language
//! from a policy of the same release. With `--policy` and no `--out`, the folder itself is revised:
//! a presentation revision rewrites its workbook, report and manifest (the tables' files never),
//! recorded in the ledger; nothing is drawn or charged.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::console::print;
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::ledger::{Body, Ledger, LedgerError, LockedLedger, Publication, Revision};
use crate::output::{self, FileHash, Manifest, ReplacedFile, RevisionEntry};
use crate::policy::{self, Plan, Presentation};
use crate::report;
use crate::sign;

pub fn run(dir: &Path, out: Option<PathBuf>, relabel: Option<PathBuf>) -> Result<(), Error> {
    let (_, manifest) = read_manifest(dir)?;
    let Some(policy) = relabel else {
        tables_as_published(dir, &manifest)?;
        let mut r = String::new();
        write_made(dir, out.as_deref(), &manifest, &manifest, &mut r)?;
        return print(&r);
    };
    let plan = policy::load(&policy)?;
    same_release(&plan, &policy, &manifest)?;
    let Some(out) = out else {
        return revise(dir, &plan);
    };
    // Labels, titles, units and language from a policy of the same release, elsewhere: the
    // tables are read as the folder wrote them, and presented as the policy says.
    let mut presented = manifest.clone();
    presented.presentation = plan.presentation;
    presented.release.title = plan.title;
    tables_as_published(dir, &manifest)?;
    let mut r = String::new();
    write_made(dir, Some(&out), &manifest, &presented, &mut r)?;
    print(&r)
}

/// The folder's manifest: its bytes and what they say.
fn read_manifest(dir: &Path) -> Result<(Vec<u8>, Manifest), Error> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path)
        .map_err(|e| Error::Usage(format!("cannot read `{}`: {e}", path.display())))?;
    let manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Usage(format!(
            "`{}` is not a safestat manifest: {e}",
            path.display()
        ))
    })?;
    Ok((bytes, manifest))
}

/// Makes the workbook and the report of `manifest` from `dir`'s tables, presented as
/// `presented` says, and writes them into `out`, or into `dir` itself where each must come out
/// as the manifest lists it (a missing one is restored); says what it did in `r`.
fn write_made(
    dir: &Path,
    out: Option<&Path>,
    manifest: &Manifest,
    presented: &Manifest,
    r: &mut String,
) -> Result<(), Error> {
    let made = render(dir, manifest, presented)?;
    let target = out.unwrap_or(dir);
    let io =
        |p: &Path, e: std::io::Error| Error::Usage(format!("cannot write `{}`: {e}", p.display()));
    std::fs::create_dir_all(target).map_err(|e| io(target, e))?;
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
                let why = if manifest.tool.report_format == Some(output::REPORT_FORMAT) {
                    "although the tables are as published and this safestat makes the folder's report format: the manifest was altered".to_string()
                } else {
                    format!("({})", output::made_by(&manifest.tool))
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
    Ok(())
}

/// The policy is one of the folder's release (its id and dataset).
fn same_release(plan: &Plan, policy: &Path, manifest: &Manifest) -> Result<(), Error> {
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
    Ok(())
}

/// The files the workbook and the report are made from, and every other file the manifest
/// lists, are as published.
fn tables_as_published(dir: &Path, manifest: &Manifest) -> Result<(), Error> {
    let made_here = made_here(manifest);
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
    Ok(())
}

/// The files `report` makes: the workbook and `report.html`.
fn made_here(manifest: &Manifest) -> [String; 2] {
    [
        report::workbook_name(manifest),
        report::REPORT_HTML.to_string(),
    ]
}

/// The workbook and the report of the folder's tables, read as `manifest` wrote them (its CSVs'
/// labels or codes) and presented as `presented` says.
fn render(
    dir: &Path,
    manifest: &Manifest,
    presented: &Manifest,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let file = |name: &str| std::fs::read(dir.join(name)).ok();
    let tables = report::read_tables(manifest, &file)?;
    let exact = report::read_exact_tables(manifest, &file)?;
    Ok(report::render(presented, &tables, &exact)?)
}

/// A presentation revision of the published folder `dir` with `plan`'s presentation and title:
/// the workbook, the report and the manifest rewritten (the old bytes' hashes kept in the
/// manifest's `revisions`), re-signed when the dataset is signed. The tables' files are never
/// touched, so a policy that would change them, or anything but the presentation and the title,
/// is refused. Under the ledger's lock, the revision is recorded first (its new manifest's hash,
/// its time) and its files written after; a run interrupted in between is completed by the same
/// command, which makes the same bytes again from the folder as it was.
fn revise(dir: &Path, plan: &Plan) -> Result<(), Error> {
    let mut locked = open_verified(plan)?;
    // Read under the lock: another revision may have finished since the command began.
    let (bytes, manifest) = read_manifest(dir)?;
    let (id, version) = (manifest.release.id.clone(), manifest.release.version);
    let integrity = |why: String| {
        Error::Integrity(format!(
            "release `{id}` version {version} in `{}`: {why}; nothing written (`safestat audit {}` shows every problem)",
            dir.display(),
            dir.display()
        ))
    };
    let recorded = recorded_state(&locked.ledger, plan, &manifest, dir, &integrity)?;
    let folder_sha = sha256_hex(&bytes);
    // A revision recorded whose files were not all written: the folder still holds the manifest
    // it replaces.
    let pending = recorded
        .revisions
        .last()
        .filter(|r| {
            folder_sha != recorded.state.manifest_sha256 && r.previous_manifest_sha256 == folder_sha
        })
        .cloned();
    if folder_sha != recorded.state.manifest_sha256 && pending.is_none() {
        return Err(integrity(format!(
            "its manifest.json is not the one ledger `{}` records for it (altered after publication)",
            plan.ledger.display()
        )));
    }
    if let Some(r) = pending {
        return finish_interrupted(dir, plan, (&manifest, &folder_sha), &r, &integrity);
    }
    presentation_only(plan, &manifest, &recorded.plan_sha256)?;
    // The tables are as published: the workbook and the report are made from them.
    tables_as_published(dir, &manifest)?;
    let key = signing_key(&manifest, plan)?;
    if manifest.presentation == plan.presentation && manifest.release.title == plan.title {
        drop(locked);
        let mut r = format!(
            "{}: already presented with policy `{}`'s labels, titles and texts; no revision made\n",
            dir.display(),
            plan.policy_path.display()
        );
        write_made(dir, None, &manifest, &manifest, &mut r)?;
        return print(&r);
    }
    let number = recorded.revisions.len() as u32 + 1;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let made = revision(
        dir,
        &manifest,
        &folder_sha,
        (&plan.presentation, &plan.title),
        (number, &now, true),
    )?;
    let state = &recorded.state;
    // Recorded first, then written: the ledger names every manifest the folder will ever hold.
    let entry = locked.append(Body::Revised(Box::new(Revision {
        publication: Publication {
            manifest_sha256: made.manifest_sha256.clone(),
            outputs: made.manifest.outputs.clone(),
            // What the folder held when the ledger recorded it (checked above): kept.
            content_sha256: Some(
                state
                    .content_sha256
                    .clone()
                    .unwrap_or_else(|| output::content_sha256(&manifest)),
            ),
            ..state.clone()
        },
        revision: number,
        revised_at: now,
        previous_manifest_sha256: folder_sha,
        policy_sha256: plan.policy_sha256.clone(),
        plan_sha256: plan.plan_sha256.clone(),
        title: plan.title.clone(),
        presentation: plan.presentation.clone(),
    })))?;
    let replaced = made.replaced.clone();
    write_revision(dir, made, key.as_ref(), &manifest)?;
    print(&revised_message(
        (dir, plan),
        (&id, version, number),
        &replaced,
        key.is_some(),
        entry.seq,
    ))
}

/// The policy's ledger, locked, a torn last line repaired, and verified.
fn open_verified(plan: &Plan) -> Result<LockedLedger, Error> {
    if !plan.ledger.exists() {
        return Err(Error::Usage(format!(
            "the policy's ledger `{}` does not exist, so release `{}` was not published from it; nothing written",
            plan.ledger.display(),
            plan.release_id
        )));
    }
    let mut locked = LockedLedger::open(&plan.ledger, None)?;
    locked.repair_torn()?;
    let findings = locked.ledger.verify();
    if !findings.is_empty() {
        return Err(LedgerError::Corrupt {
            path: plan.ledger.clone(),
            findings,
        }
        .into());
    }
    Ok(locked)
}

/// What the ledger records of the folder's release: its publication, its revisions and the plan
/// it is presented with now (the charge's, or the last revision's).
struct Recorded {
    state: Publication,
    revisions: Vec<Revision>,
    plan_sha256: String,
}

/// The ledger's record of `manifest`'s release, published in `dir` itself (not a copy).
fn recorded_state(
    ledger: &Ledger,
    plan: &Plan,
    manifest: &Manifest,
    dir: &Path,
    integrity: &dyn Fn(String) -> Error,
) -> Result<Recorded, Error> {
    let (id, version) = (&manifest.release.id, manifest.release.version);
    let charge = ledger
        .charges()
        .find(|c| {
            c.charge.dataset == manifest.dataset
                && c.charge.release_id == *id
                && c.charge.version == version
        })
        .ok_or_else(|| {
            Error::Usage(format!(
                "ledger `{}` (the policy's) has no charge for release `{id}` version {version}: it was published with another ledger, or the policy names the wrong one; nothing written",
                plan.ledger.display()
            ))
        })?;
    let state = ledger.publication_of(charge.seq).cloned().ok_or_else(|| {
        integrity(format!(
            "ledger line {} charged it but no publication is recorded (`safestat release` finishes it)",
            charge.line
        ))
    })?;
    let recorded = ledger.resolve(&state.out_dir);
    let same_folder = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_folder(&recorded, dir) {
        return Err(Error::Usage(format!(
            "ledger `{}` records release `{id}` version {version} in `{}`, not in `{}`: revise the published folder itself; nothing written",
            plan.ledger.display(),
            recorded.display(),
            dir.display()
        )));
    }
    let revisions: Vec<Revision> = ledger.revisions_of(charge.seq).cloned().collect();
    let plan_sha256 = revisions
        .last()
        .map_or(&charge.charge.plan_sha256, |r| &r.plan_sha256)
        .clone();
    Ok(Recorded {
        state,
        revisions,
        plan_sha256,
    })
}

/// A revision recorded but interrupted before its files were in place, made again from the
/// ledger's record (its presentation, title and time), whatever policy is given now: it must
/// come out as recorded.
fn finish_interrupted(
    dir: &Path,
    plan: &Plan,
    (manifest, folder_sha): (&Manifest, &str),
    r: &Revision,
    integrity: &dyn Fn(String) -> Error,
) -> Result<(), Error> {
    tables_as_published(dir, manifest)?;
    let key = signing_key(manifest, plan)?;
    // Made as this safestat makes a revision (stating its report format), or, for a revision an
    // earlier safestat recorded, keeping the manifest's: whichever the ledger recorded.
    let remake = |stamp: bool| {
        revision(
            dir,
            manifest,
            folder_sha,
            (&r.presentation, &r.title),
            (r.revision, &r.revised_at, stamp),
        )
    };
    let mut made = remake(true)?;
    if made.manifest_sha256 != r.publication.manifest_sha256 {
        made = remake(false)?;
    }
    if made.manifest_sha256 != r.publication.manifest_sha256 {
        return Err(integrity(format!(
            "presentation revision {} recorded in ledger `{}` was interrupted before its files were in place, and made again from the ledger's record it does not come out as recorded",
            r.revision,
            plan.ledger.display()
        )));
    }
    write_revision(dir, made, key.as_ref(), manifest)?;
    print(&format!(
        "{}: presentation revision {} of release `{}` version {} was recorded but its files were not all in place (an interrupted run); written now from the ledger's record. Nothing was drawn or charged\n",
        dir.display(),
        r.revision,
        manifest.release.id,
        manifest.release.version
    ))
}

/// The policy may change only how the release is presented, never its tables' files.
fn presentation_only(plan: &Plan, manifest: &Manifest, before: &str) -> Result<(), Error> {
    let (id, version) = (&manifest.release.id, manifest.release.version);
    if plan.identity_sha256(manifest.release.title.as_deref()) != before {
        return Err(Error::Usage(format!(
            "policy `{}` differs from release `{id}` version {version} in more than its presentation (its tables, categories, bounds, costs or budget); a revision only changes how the release is presented: publish a changed release with `safestat release --new-version` (fresh noise and a fresh charge); nothing written",
            plan.policy_path.display()
        )));
    }
    if let Some(what) = manifest.presentation.changes_tables(&plan.presentation) {
        return Err(Error::Usage(format!(
            "policy `{}` changes {what}: the tables' files are published and hashed, and a presentation revision never rewrites them; keep it as published, or publish a new version with `safestat release --new-version`; nothing written",
            plan.policy_path.display()
        )));
    }
    Ok(())
}

/// What `report --policy` says of a revision made.
fn revised_message(
    (dir, plan): (&Path, &Plan),
    (id, version, number): (&str, u32, u32),
    replaced: &[ReplacedFile],
    signed: bool,
    seq: u64,
) -> String {
    let mut r = format!(
        "{}: presentation revision {number} of release `{id}` version {version}, with policy `{}`; nothing was drawn or charged, the tables' files are as published\n",
        dir.display(),
        plan.policy_path.display()
    );
    for f in replaced {
        let _ = writeln!(
            r,
            "  {}: {}",
            f.path,
            if f.previous_sha256.is_some() {
                "rewritten"
            } else {
                "added"
            }
        );
    }
    let _ = writeln!(
        r,
        "  manifest.json: rewritten{} (the replaced files' hashes kept in its `revisions`)",
        if signed { " and signed again" } else { "" }
    );
    let _ = writeln!(
        r,
        "recorded at ledger line {seq} of `{}`",
        plan.ledger.display()
    );
    r
}

/// The key that signs a revision of a signed release: the policy's, which must be the one that
/// signed it.
fn signing_key(manifest: &Manifest, plan: &Plan) -> Result<Option<sign::SigningKey>, Error> {
    match (&manifest.signature, &plan.signing_key) {
        (None, _) => Ok(None),
        (Some(entry), Some(path)) => {
            let key = sign::SigningKey::load(path)?;
            if key.id != entry.key_id {
                return Err(Error::Usage(format!(
                    "the manifest is signed by key {}, but the policy's signing key `{}` is {}; a revision is signed by the key that signed the release; nothing written",
                    entry.key_id,
                    path.display(),
                    key.id
                )));
            }
            Ok(Some(key))
        }
        (Some(entry), None) => Err(Error::Usage(format!(
            "the manifest is signed by key {}, and the policy names no `signing_key` to sign the revision with; nothing written",
            entry.key_id
        ))),
    }
}

/// A revision made: the new manifest, its bytes and hash, the files it rewrites.
struct Made {
    manifest: Manifest,
    bytes: Vec<u8>,
    manifest_sha256: String,
    files: Vec<(String, Vec<u8>)>,
    replaced: Vec<ReplacedFile>,
}

/// Revision `number` (made at `at`) of the folder `dir` whose manifest is `manifest` (SHA-256
/// `previous`): its presentation and title those given, the workbook and the report made again,
/// what they replace listed. A function of its arguments: made again, the same bytes.
fn revision(
    dir: &Path,
    manifest: &Manifest,
    previous: &str,
    (presentation, title): (&Presentation, &Option<String>),
    (number, at, stamp): (u32, &str, bool),
) -> Result<Made, Error> {
    let mut revised = manifest.clone();
    // Its workbook and report are this safestat's from now on (`stamp`; not when a revision an
    // earlier safestat recorded is made again).
    if stamp {
        revised.tool.report_format = Some(output::REPORT_FORMAT);
    }
    revised.presentation = presentation.clone();
    revised.release.title = title.clone();
    let made = render(dir, manifest, &revised)?;
    let mut replaced = Vec::new();
    for (name, bytes) in &made {
        let sha256 = sha256_hex(bytes);
        let listed = revised.outputs.iter_mut().find(|o| o.path == *name);
        let previous_sha256 = listed.as_ref().map(|o| o.sha256.clone());
        if previous_sha256.as_deref() == Some(&sha256) {
            continue;
        }
        match listed {
            Some(o) => o.sha256 = sha256.clone(),
            None => revised.outputs.push(FileHash {
                path: name.clone(),
                sha256: sha256.clone(),
            }),
        }
        replaced.push(ReplacedFile {
            path: name.clone(),
            previous_sha256,
            sha256,
        });
    }
    revised.revisions.push(RevisionEntry {
        revision: number,
        revised_at: at.to_string(),
        previous_manifest_sha256: previous.to_string(),
        previous_title: manifest.release.title.clone(),
        replaced: replaced.clone(),
    });
    let mut bytes = serde_json::to_vec_pretty(&revised).expect("serialising to memory");
    bytes.push(b'\n');
    let files = made
        .into_iter()
        .filter(|(name, _)| replaced.iter().any(|r| r.path == *name))
        .collect();
    Ok(Made {
        manifest_sha256: sha256_hex(&bytes),
        manifest: revised,
        bytes,
        files,
        replaced,
    })
}

/// Writes a revision's files into the folder, each whole, the signature before the manifest and
/// the manifest last.
fn write_revision(
    dir: &Path,
    made: Made,
    key: Option<&sign::SigningKey>,
    before: &Manifest,
) -> Result<(), Error> {
    let mut files = made.files;
    if let Some(key) = key {
        let comment = format!(
            "safestat release {} version {} of dataset {}, presentation revision {}",
            before.release.id,
            before.release.version,
            before.dataset,
            made.manifest.revisions.len()
        );
        files.push((
            sign::SIGNATURE_FILE.to_string(),
            key.sign(&made.bytes, &comment).into_bytes(),
        ));
    }
    files.push(("manifest.json".to_string(), made.bytes));
    output::remove_partial_files(dir);
    output::replace_files(dir, &files)?;
    Ok(())
}
