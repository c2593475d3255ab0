//! `safestat audit [--ledger FILE] [RELEASE_DIR...] [--json]`: verify everything an auditor
//! cares about; exit 4 on any problem.
//!
//! Owns the checks an auditor relies on: the hash chain and every recomputed total (through
//! [`Ledger::verify`]), the release folders that witness charges the ledger lacks, and each
//! release folder against the ledger entries that paid for and published it, file by file, its
//! manifest read back typed. Read-only: must never write to a ledger or a folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::budget::{BudgetReport, budget_report, ledger_files};
use crate::console::print;
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::ledger::{Charge, ChargeAt, Ledger, LinkedTable, Publication, Revision};
use crate::output::{self, Manifest};
use crate::privacy::short_number;
use crate::protect::sdc;
use crate::sign;

/// One thing an audit found wrong.
#[derive(Debug, Serialize)]
struct Problem {
    /// `ledger` or `release`.
    scope: &'static str,
    /// The ledger file or release folder.
    path: String,
    /// The ledger line, for ledger problems.
    line: Option<usize>,
    /// The file inside a release folder, where one is concerned.
    file: Option<String>,
    message: String,
}

#[derive(Debug, Serialize)]
struct Unpublished {
    ledger: String,
    line: usize,
    release_id: String,
    version: u32,
}

#[derive(Debug, Serialize)]
struct AuditReport {
    ok: bool,
    ledgers: Vec<BudgetReport>,
    releases_checked: Vec<String>,
    problems: Vec<Problem>,
    /// Charges with no `published` entry: budget spent conservatively by an interrupted run.
    /// Reported, not a failure.
    unpublished_charges: Vec<Unpublished>,
}

/// `safestat audit`: exit 0 when everything holds, 4 otherwise. With no folder named, every
/// folder the ledgers record as published is checked.
pub fn run(
    flag: Option<PathBuf>,
    policy: Option<PathBuf>,
    dirs: &[PathBuf],
    json: bool,
) -> Result<(), Error> {
    let ledgers = ledger_files(flag, policy)?
        .iter()
        .map(|path| Ledger::read(path))
        .collect::<Result<Vec<_>, _>>()?;
    let dirs: Vec<PathBuf> = if dirs.is_empty() {
        recorded_folders(&ledgers)
    } else {
        dirs.to_vec()
    };
    let mut report = AuditReport {
        ok: false,
        ledgers: Vec::new(),
        releases_checked: dirs.iter().map(|d| d.display().to_string()).collect(),
        problems: Vec::new(),
        unpublished_charges: Vec::new(),
    };
    for ledger in &ledgers {
        check_ledger(ledger, &dirs, &mut report);
        report.ledgers.push(budget_report(ledger)?);
    }
    for dir in &dirs {
        if !dir.is_dir() {
            report.problems.push(Problem {
                scope: "release",
                path: dir.display().to_string(),
                line: None,
                file: None,
                message: "no such release folder (a folder the ledger records as published was moved or deleted)".into(),
            });
            continue;
        }
        for (file, message) in check_release_dir(dir, &ledgers) {
            report.problems.push(Problem {
                scope: "release",
                path: dir.display().to_string(),
                line: None,
                file,
                message,
            });
        }
    }
    report.ok = report.problems.is_empty();
    if json {
        let mut text = serde_json::to_string_pretty(&report).expect("serialising to memory");
        text.push('\n');
        print(&text)?;
    } else {
        print(&text(&report, &ledgers))?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(Error::AuditFailed(format!(
            "{} problem(s) found",
            report.problems.len()
        )))
    }
}

/// Every folder the ledgers record as published, once each, in ledger order: what `audit` checks
/// when no folder is named (a folder that was moved or deleted is reported as such).
fn recorded_folders(ledgers: &[Ledger]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for ledger in ledgers {
        for p in ledger.publications() {
            let dir = ledger.resolve(&p.out_dir);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// A ledger's own problems (chain, totals, budget, a torn line), the folders that prove charges
/// it lacks, and its unpublished charges (notes, not problems).
fn check_ledger(ledger: &Ledger, dirs: &[PathBuf], report: &mut AuditReport) {
    let path = ledger.path.display().to_string();
    for f in ledger.verify().into_iter().chain(ledger.torn_finding()) {
        report.problems.push(Problem {
            scope: "ledger",
            path: path.clone(),
            line: Some(f.line),
            file: None,
            message: f.message,
        });
    }
    let beside_dirs: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| d.parent().map(Path::to_path_buf))
        .collect();
    for missing in ledger.missing_witnessed_charges(&beside_dirs) {
        report.problems.push(Problem {
            scope: "ledger",
            path: path.clone(),
            line: None,
            file: None,
            message: format!(
                "release folder `{}`: release `{}` version {} was paid at ledger line {} (its manifest names that line's hash), but the ledger lacks that line: lines were cut from its end or the ledger was replaced",
                missing.folder.display(),
                missing.release_id,
                missing.version,
                missing.seq
            ),
        });
    }
    for c in ledger.unpublished_charges() {
        report.unpublished_charges.push(Unpublished {
            ledger: path.clone(),
            line: c.line,
            release_id: c.charge.release_id.clone(),
            version: c.charge.version,
        });
    }
}

/// The report for people.
fn text(report: &AuditReport, ledgers: &[Ledger]) -> String {
    let mut r = String::new();
    for (l, ledger) in report.ledgers.iter().zip(ledgers) {
        let _ = writeln!(
            r,
            "ledger {}: {} entries checked, {} releases, {}={} spent",
            l.ledger,
            ledger.lines.len(),
            l.releases.len(),
            l.unit.as_deref().unwrap_or("cost"),
            short_number(l.spent)
        );
    }
    for d in &report.releases_checked {
        let _ = writeln!(r, "release folder {d} checked");
    }
    for u in &report.unpublished_charges {
        let _ = writeln!(
            r,
            "note: {} line {}: `{}` version {} was charged but never published (an interrupted run; its budget stays spent)",
            u.ledger, u.line, u.release_id, u.version
        );
    }
    for p in &report.problems {
        let at = match (p.line, &p.file) {
            (Some(line), _) => format!("{} line {line}", p.path),
            (None, Some(f)) => format!("{}/{f}", p.path),
            (None, None) => p.path.clone(),
        };
        let _ = writeln!(r, "PROBLEM {at}: {}", p.message);
    }
    let _ = writeln!(
        r,
        "{}",
        if report.ok {
            "audit passed".to_string()
        } else {
            format!("audit FAILED: {} problem(s)", report.problems.len())
        }
    );
    r
}

/// Checks one release folder against the ledgers; returns (file, message) per problem.
fn check_release_dir(dir: &Path, ledgers: &[Ledger]) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let bytes = match std::fs::read(dir.join("manifest.json")) {
        Ok(b) => b,
        Err(e) => {
            out.push((
                Some("manifest.json".into()),
                format!("cannot read the manifest: {e}"),
            ));
            return out;
        }
    };
    let m: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            out.push((
                Some("manifest.json".into()),
                format!("not a safestat manifest: {e}"),
            ));
            return out;
        }
    };
    let (id, version, dataset) = (&m.release.id, m.release.version, &m.dataset);
    let Some(ledger) = ledgers
        .iter()
        .find(|l| l.identity().is_some_and(|(d, _)| d == dataset))
    else {
        out.push((None, format!("no ledger given holds dataset `{dataset}`")));
        return out;
    };
    let Some(charge) = ledger
        .charges()
        .find(|c| c.charge.release_id == *id && c.charge.version == version)
    else {
        out.push((None, format!("the ledger has no charge for `{id}` version {version}: published without being paid for")));
        return out;
    };
    out.extend(manifest_against_charge(&m, ledger, charge));
    out.extend(statement_and_signature(dir, &bytes, &m, ledger, charge));
    out.extend(exact_tables(dir, &m, ledger, charge.charge, charge.seq));
    out.extend(files_against_publication(dir, &bytes, ledger, charge));
    if let Err((file, why)) = output::read_published(dir) {
        out.push((file, format!("does not match its own manifest: {why}")));
    }
    for n in output::unlisted_files(dir, &m) {
        out.push((Some(n), "not listed in the manifest".into()));
    }
    out
}

/// The manifest says what its charge says: the charge line (sequence number and hash, which
/// binds the release to the inputs' fingerprints), the plan, the cost and the tables.
fn manifest_against_charge(
    m: &Manifest,
    ledger: &Ledger,
    ChargeAt { line, seq, charge }: ChargeAt,
) -> Vec<(Option<String>, String)> {
    let charge_sha = sha256_hex(&ledger.lines[line - 1].0);
    let mut differs = Vec::new();
    if m.ledger.charge_seq != seq || m.ledger.charge_sha256 != charge_sha {
        differs.push("its ledger charge (sequence number or line hash; the charge or the manifest was edited)");
    }
    // Format 7 publishes no plan hash (the charge line, checked above, commits to it).
    if m.policy
        .plan_sha256
        .as_ref()
        .is_some_and(|p| *p != charge.plan_sha256)
    {
        differs.push("the plan's hash");
    }
    if m.ledger.charged != charge.cost {
        differs.push("the release cost");
    }
    if !m
        .tables
        .iter()
        .map(|t| &t.name)
        .eq(charge.tables.iter().map(|t| &t.name))
    {
        differs.push("the list of tables");
    }
    if !m
        .exact_tables
        .iter()
        .map(|t| &t.name)
        .eq(charge.exact_tables.iter())
    {
        differs.push("the list of exact tables");
    }
    differs
        .into_iter()
        .map(|what| {
            (
                Some("manifest.json".to_string()),
                format!("{what} differs from ledger line {line}"),
            )
        })
        .collect()
}

/// The manifest's budget statement is the one the ledger's charges make, and its signature is
/// by the key the charge recorded (checked with that key's public half, which the ledger holds).
fn statement_and_signature(
    dir: &Path,
    manifest_bytes: &[u8],
    m: &Manifest,
    ledger: &Ledger,
    charge: ChargeAt,
) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let in_manifest = |message: String| (Some("manifest.json".to_string()), message);
    match (&m.statement, ledger.statement_of(charge.seq)) {
        (Some(stated), Some(made)) if *stated != made => out.push(in_manifest(format!(
            "its budget statement (sequence {}, total after {}) is not the one the ledger's charges make (sequence {}, total after {})",
            stated.sequence, stated.total_after, made.sequence, made.total_after
        ))),
        (None, _) if m.manifest_format >= 7 => {
            out.push(in_manifest("has no budget statement".into()))
        }
        _ => {}
    }
    let signature = std::fs::read_to_string(dir.join(sign::SIGNATURE_FILE));
    match (&charge.charge.signing_key, &m.signature) {
        (None, None) => {}
        (None, Some(s)) => out.push(in_manifest(format!(
            "names signing key {}, but ledger line {} charged an unsigned release",
            s.key_id, charge.line
        ))),
        (Some(key), None) => out.push(in_manifest(format!(
            "names no signing key, but ledger line {} charged a release signed by key {}",
            charge.line, key.id
        ))),
        (Some(key), Some(s)) => {
            if s.key_id != key.id {
                out.push(in_manifest(format!(
                    "names signing key {}, but ledger line {} records key {}",
                    s.key_id, charge.line, key.id
                )));
            }
            let checked = signature
                .map_err(|e| format!("cannot be read: {e}"))
                .and_then(|sig| {
                    sign::VerifyingKey::from_base64(&key.public_key)?.verify(manifest_bytes, &sig)
                });
            if let Err(why) = checked {
                out.push((
                    Some(sign::SIGNATURE_FILE.into()),
                    format!("does not verify with key {} (the ledger's): {why}", key.id),
                ));
            }
        }
    }
    out
}

/// The manifest and every output are as the ledger's `published` entry recorded them.
fn files_against_publication(
    dir: &Path,
    manifest_bytes: &[u8],
    ledger: &Ledger,
    charge: ChargeAt,
) -> Vec<(Option<String>, String)> {
    let Some(publication) = ledger.publication_of(charge.seq) else {
        return vec![(
            None,
            format!(
                "ledger line {} charged this release but no `published` entry records it (the next release of this dataset records it)",
                charge.line
            ),
        )];
    };
    let mut out = Vec::new();
    let altered = "altered since publication (hash differs from the ledger)";
    let folder_sha = sha256_hex(manifest_bytes);
    let revisions: Vec<_> = ledger.revisions_of(charge.seq).collect();
    if publication.manifest_sha256 != folder_sha {
        // A presentation revision recorded whose files were not all written says so.
        let pending = revisions
            .last()
            .filter(|r| r.previous_manifest_sha256 == folder_sha);
        out.push((
            Some("manifest.json".into()),
            match pending {
                Some(r) => format!(
                    "is the one presentation revision {} replaces: that revision, recorded in the ledger, was interrupted before its files were in place; run `safestat report {} --policy POLICY` again with the policy that made it",
                    r.revision,
                    dir.display()
                ),
                None => altered.into(),
            },
        ));
    } else if let Ok(m) = serde_json::from_slice::<Manifest>(manifest_bytes) {
        let messages = manifest_against_publication(&m, publication, &revisions);
        out.extend(
            messages
                .into_iter()
                .map(|m| (Some("manifest.json".into()), m)),
        );
    }
    for o in &publication.outputs {
        match std::fs::read(dir.join(&o.path)) {
            Ok(b) if sha256_hex(&b) == o.sha256 => {}
            Ok(_) => out.push((Some(o.path.clone()), altered.into())),
            Err(_) => out.push((Some(o.path.clone()), "missing".into())),
        }
    }
    out
}

/// What a manifest whose bytes the ledger recorded says against what the ledger recorded of its
/// publication: the presentation revisions it lists (each replacing the one before), its files,
/// everything but its presentation (since revisions), and each table's files its own.
fn manifest_against_publication(
    m: &Manifest,
    publication: &Publication,
    revisions: &[&Revision],
) -> Vec<String> {
    let mut out = Vec::new();
    let listed: Vec<&str> = m
        .revisions
        .iter()
        .map(|r| r.previous_manifest_sha256.as_str())
        .collect();
    let recorded: Vec<&str> = revisions
        .iter()
        .map(|r| r.previous_manifest_sha256.as_str())
        .collect();
    if listed != recorded {
        out.push(format!(
            "lists {} presentation revision(s) and the ledger records {}, not the same",
            listed.len(),
            recorded.len()
        ));
    }
    let sorted = |o: &[output::FileHash]| {
        let mut o = o.to_vec();
        o.sort_by(|a, b| a.path.cmp(&b.path));
        o
    };
    if sorted(&m.outputs) != sorted(&publication.outputs) {
        out.push("lists other files than the ledger recorded".into());
    }
    if let Some(content) = &publication.content_sha256
        && output::content_sha256(m) != *content
    {
        out.push("says other things than the ledger recorded when it was published (a revision may change only its presentation)".into());
    }
    for t in &m.tables {
        let own = [format!("{}.csv", t.name), format!("{}.json", t.name)];
        if t.files.iter().any(|f| !own.contains(f)) {
            out.push(format!(
                "table `{}` names files not its own: {:?}",
                t.name, t.files
            ));
        }
    }
    out
}

/// The exact tables, checked from the published files alone: each CSV is a whole grid of
/// categories and totals, every margin whose cells are all published adds up, and the attacker's
/// audit re-run on the published values finds for every suppressed cell the interval the manifest
/// states, none of them a single value.
fn exact_tables(
    dir: &Path,
    m: &Manifest,
    ledger: &Ledger,
    charge: &Charge,
    seq: u64,
) -> Vec<(Option<String>, String)> {
    // A resumed run protected with more than its charge records says so in its publication.
    let publication = ledger.publication_of(seq);
    let links = publication
        .and_then(|p| p.exact_links.as_ref())
        .unwrap_or(&charge.exact_links);
    let same_data = publication
        .and_then(|p| p.same_data.as_ref())
        .unwrap_or(&charge.same_data);
    let mut out = Vec::new();
    // This release's exact tables, then those of earlier releases it was protected with.
    let mut sources: Vec<ExactSource> = m
        .exact_tables
        .iter()
        .map(|t| ExactSource::new(t, dir, &m.presentation))
        .collect();
    for link in links {
        match linked_source(ledger, link) {
            Ok(source) => sources.push(source),
            Err(why) => {
                out.push((Some("manifest.json".into()), why));
                return out;
            }
        }
    }
    // Inputs that held the same data were protected as one: their tables are of one input.
    for source in &mut sources {
        if let Some(same) = same_data.get(&source.entry.input) {
            source.entry.input = same.clone();
        }
    }
    out.extend(check_exact(&sources, m, Stated::Exactly));
    out
}

/// How the intervals a manifest states must compare with those the attacker finds.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Stated {
    /// Equal: the attacker knew everything the release was protected with (`audit`, with the
    /// ledger's links to earlier releases).
    Exactly,
    /// Within: the attacker knows only the folder (`verify`), so it may find wider intervals than
    /// the release, which was also protected against the exact tables of earlier releases of the
    /// same data; never narrower ones.
    Within,
}

/// An exact table, the folder it was published in and the presentation its CSV was written with.
pub(super) struct ExactSource {
    pub entry: output::ExactTableEntry,
    pub dir: PathBuf,
    pub presentation: crate::policy::Presentation,
    /// Its dimensions that the release it is checked with names otherwise (a linked earlier
    /// table's `renamed`): earlier name to that release's.
    pub renamed: BTreeMap<String, String>,
}

impl ExactSource {
    pub(super) fn new(
        entry: &output::ExactTableEntry,
        dir: &Path,
        presentation: &crate::policy::Presentation,
    ) -> ExactSource {
        ExactSource {
            entry: entry.clone(),
            dir: dir.to_path_buf(),
            presentation: presentation.clone(),
            renamed: BTreeMap::new(),
        }
    }
}

/// The exact tables of `sources` (the manifest's own first), checked from their published files:
/// each CSV is a whole grid of categories and totals, every margin whose cells are all published
/// adds up, no suppressed cell is pinned to one value, and each interval the manifest states is
/// the attacker's (`Stated`).
pub(super) fn check_exact(
    sources: &[ExactSource],
    m: &Manifest,
    compare: Stated,
) -> Vec<(Option<String>, String)> {
    let read = match read_sources(sources) {
        Ok(read) => read,
        Err(problem) => return vec![problem],
    };
    let ReadSources {
        shapes,
        published,
        categories,
    } = read;
    if shapes.is_empty() {
        return Vec::new();
    }
    let linked = sdc::tables::link(shapes);
    let mut out = margins_add_up(&linked, &published);
    let found = match sdc::tables::attack_published(&linked, &published) {
        Ok(f) => f,
        Err(e) => {
            out.push((
                None,
                format!("the attacker's audit could not be re-run: {e}"),
            ));
            return out;
        }
    };
    for (((t, intervals), values), cats) in m
        .exact_tables
        .iter()
        .zip(&found)
        .zip(&published)
        .zip(&categories)
    {
        out.extend(intervals_as_stated(t, (cats, values), intervals, compare));
    }
    out
}

/// The exact tables as published: each table's shape for linking (its quantity's space, its
/// dimensions as ids shared by the tables of one input and quantity, its layouts, margins and
/// floor), its values and its categories.
struct ReadSources {
    shapes: Vec<sdc::tables::Shape>,
    published: Vec<Vec<Option<i64>>>,
    categories: Vec<Vec<Vec<String>>>,
}

/// Reads every source's CSV; the first that cannot be read is the problem.
fn read_sources(sources: &[ExactSource]) -> Result<ReadSources, (Option<String>, String)> {
    // A dimension of one input and one quantity (a count, or a sum of a column): tables of
    // different inputs or quantities are never linked.
    let mut ids: Vec<(String, String, Option<String>, String)> = Vec::new();
    let mut spaces: Vec<(String, String, Option<String>)> = Vec::new();
    let mut shapes = Vec::new();
    let mut published = Vec::new();
    let mut categories = Vec::new();
    for source in sources {
        let (t, dir, presentation) = (&source.entry, &source.dir, &source.presentation);
        let file = format!("{}.csv", t.name);
        let read = std::fs::read(dir.join(&file))
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|bytes| output::read_exact(&bytes, t, presentation));
        match read {
            Ok((cats, values)) => {
                let layouts = cats
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        let groups = t.groups.get(k).map_or(&[][..], Vec::as_slice);
                        sdc::tables::layout(c, groups)
                    })
                    .collect::<Option<Vec<_>>>();
                let Some(layouts) = layouts else {
                    return Err((
                        Some("manifest.json".into()),
                        format!(
                            "exact table `{}`: a group names a category its file does not have",
                            t.name
                        ),
                    ));
                };
                categories.push(cats);
                let dims = t
                    .dimensions
                    .iter()
                    .map(|d| {
                        let key = (
                            t.input.clone(),
                            t.statistic.clone(),
                            t.column.clone(),
                            source.renamed.get(d).unwrap_or(d).clone(),
                        );
                        ids.iter().position(|k| *k == key).unwrap_or_else(|| {
                            ids.push(key);
                            ids.len() - 1
                        })
                    })
                    .collect();
                let quantity = (t.input.clone(), t.statistic.clone(), t.column.clone());
                let space = spaces
                    .iter()
                    .position(|q| *q == quantity)
                    .unwrap_or_else(|| {
                        spaces.push(quantity);
                        spaces.len() - 1
                    });
                let counts = t.statistic != "sum";
                let zeros_secondary = t.primary_rule.zeros_as_secondary;
                let floor =
                    sdc::tables::floor(counts, t.primary_rule.zeros_suppressed || zeros_secondary);
                shapes.push((
                    space as u32,
                    dims,
                    layouts,
                    t.margins,
                    floor,
                    zeros_secondary,
                ));
                published.push(values);
            }
            Err(why) => return Err((Some(file), why)),
        }
    }
    Ok(ReadSources {
        shapes,
        published,
        categories,
    })
}

/// Arithmetic: a margin whose cells are all published is their sum.
fn margins_add_up(
    (structure, grids): &(sdc::Structure, Vec<Vec<usize>>),
    published: &[Vec<Option<i64>>],
) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut value = vec![None; structure.cells()];
    for (grid, values) in grids.iter().zip(published) {
        for (&c, v) in grid.iter().zip(values) {
            value[c] = *v;
        }
    }
    for e in structure.equations() {
        if let (Some(total), Some(parts)) = (
            value[e.total],
            e.parts
                .iter()
                .map(|&p| value[p])
                .collect::<Option<Vec<i64>>>(),
        ) && total != parts.iter().sum::<i64>()
        {
            out.push((
                None,
                format!(
                    "an exact table's margin {total} is not the sum of its published cells ({})",
                    parts.iter().sum::<i64>()
                ),
            ));
        }
    }
    out
}

/// One table's hidden cells: none pinned by the published cells, and each interval as the
/// manifest states it (`compare`).
fn intervals_as_stated(
    t: &output::ExactTableEntry,
    (cats, values): (&[Vec<String>], &[Option<i64>]),
    intervals: &[Option<sdc::Interval>],
    compare: Stated,
) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let file = format!("{}.csv", t.name);
    let table = output::ExactPublished {
        total: &t.total_label,
        groups: t.group_names(),
        dimensions: t.dimensions.iter().map(String::as_str).collect(),
        categories: cats.iter().map(Vec::as_slice).collect(),
        margins: t.margins,
        values,
    };
    let mut stated = t.intervals.iter();
    for (i, iv) in intervals.iter().enumerate() {
        let Some(iv) = iv else { continue };
        let cell: Vec<String> = table.labels(i).into_iter().map(String::from).collect();
        if iv.hi == Some(iv.lo) {
            out.push((
                Some(file.clone()),
                format!(
                    "suppressed cell ({}) is disclosed: the published cells fix it at {}",
                    cell.join(", "),
                    iv.lo
                ),
            ));
        }
        let holds = |s: &output::CellInterval| match compare {
            Stated::Exactly => s.lo == iv.lo && s.hi == iv.hi,
            Stated::Within => {
                iv.lo <= s.lo
                    && match (iv.hi, s.hi) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(found), Some(stated)) => found >= stated,
                    }
            }
        };
        match stated.next() {
            Some(s) if s.cell == cell && holds(s) => {}
            Some(s) => out.push((
                Some("manifest.json".into()),
                format!(
                    "exact table `{}`: the manifest states {}..{} for cell ({}), the attacker's audit finds {}..{}{}",
                    t.name,
                    s.lo,
                    s.hi.map_or("unbounded".into(), |h| h.to_string()),
                    s.cell.join(", "),
                    iv.lo,
                    iv.hi.map_or("unbounded".into(), |h| h.to_string()),
                    if compare == Stated::Within { " (narrower than stated: the published values reveal more than the manifest says)" } else { "" }
                ),
            )),
            None => out.push((
                Some("manifest.json".into()),
                format!("exact table `{}`: suppressed cell ({}) has no interval in the manifest", t.name, cell.join(", ")),
            )),
        }
    }
    if stated.next().is_some() {
        out.push((
            Some("manifest.json".into()),
            format!(
                "exact table `{}`: the manifest states intervals for cells that are published",
                t.name
            ),
        ));
    }
    out
}

/// An earlier release's exact table that a release was protected with, found through the ledger.
fn linked_source(ledger: &Ledger, link: &LinkedTable) -> Result<ExactSource, String> {
    let what = format!(
        "exact table `{}` of release `{}` version {} (which this release was protected with)",
        link.table, link.release_id, link.version
    );
    let charge = ledger
        .charges()
        .find(|c| c.charge.release_id == link.release_id && c.charge.version == link.version)
        .ok_or_else(|| format!("the ledger has no charge for the {what}"))?;
    let publication = ledger
        .publication_of(charge.seq)
        .ok_or_else(|| format!("the ledger records no publication of the {what}"))?;
    let dir = ledger.resolve(&publication.out_dir);
    let earlier = output::read_published(&dir)
        .map_err(|(_, why)| format!("the {what} cannot be read in `{}`: {why}", dir.display()))?;
    let mut entry = earlier
        .manifest
        .exact_tables
        .into_iter()
        .find(|t| t.name == link.table)
        .ok_or_else(|| format!("the {what} is not in its release's manifest"))?;
    // Counted on an input of another name, it is a table of that input's data.
    if let Some(input) = &link.counted_on {
        entry.input = input.clone();
    }
    Ok(ExactSource {
        entry,
        dir,
        presentation: earlier.manifest.presentation,
        renamed: link.renamed.clone(),
    })
}
