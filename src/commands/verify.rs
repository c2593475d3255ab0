//! `safestat verify RELEASE_DIR... [--public-key FILE] [--json]`: what an outsider holding only the
//! published folders can check. Needs no ledger and no data; exit 4 on any problem.
//!
//! Per folder: the signature of `manifest.json` (against `--public-key` when given), every file's
//! hash, that the workbook and `report.html` are what `report` makes from the tables, that each
//! table's margins are the sums of its cells and a consistency group's tables agree, that the
//! exact tables' suppressed cells stay hidden from an attacker holding the published values, and
//! that the budget statement adds up within its budget. Across folders of one dataset: their
//! statements form one chain, with no gap, fork or overspend. Read-only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::audit::{ExactSource, Stated, check_exact};
use crate::console::print;
use crate::error::Error;
use crate::hash::sha256_hex;
use crate::ledger::GENESIS;
use crate::output::{self, BudgetStatement, Manifest};
use crate::report::{self, Table};
use crate::sign::{self, VerifyingKey};

/// One thing found wrong.
#[derive(Debug, Serialize)]
struct Problem {
    /// The release folder, or the dataset for a problem of the chain of statements.
    path: String,
    /// The file inside the folder, where one is concerned.
    file: Option<String>,
    message: String,
}

/// What was found about one folder.
#[derive(Debug, Serialize)]
struct Folder {
    path: String,
    dataset: Option<String>,
    release_id: Option<String>,
    version: Option<u32>,
    /// `verified` (with the given key), `signed` (key not checked), `unsigned` or `invalid`.
    signature: String,
    key_id: Option<String>,
    statement_sequence: Option<u64>,
    /// What was checked, in words.
    checked: Vec<String>,
    /// What could not be checked, and why (not problems).
    notes: Vec<String>,
}

/// A dataset's chain of budget statements, as the folders given show it.
#[derive(Debug, Serialize)]
struct Chain {
    dataset: String,
    /// The sequence numbers present, in order.
    sequences: Vec<u64>,
    unit: String,
    budget: crate::privacy::Budget,
    /// The total after the last statement given.
    spent: f64,
    complete: bool,
}

#[derive(Debug, Serialize)]
struct VerifyReport {
    ok: bool,
    public_key: Option<String>,
    folders: Vec<Folder>,
    chains: Vec<Chain>,
    /// What is worth knowing but not a problem.
    notes: Vec<String>,
    problems: Vec<Problem>,
}

pub fn run(dirs: &[PathBuf], public_key: Option<&Path>, json: bool) -> Result<(), Error> {
    let key = public_key
        .map(VerifyingKey::load)
        .transpose()
        .map_err(Error::Usage)?;
    let mut report = VerifyReport {
        ok: false,
        public_key: key.as_ref().map(|k| k.id.clone()),
        folders: Vec::new(),
        chains: Vec::new(),
        notes: Vec::new(),
        problems: Vec::new(),
    };
    let mut statements: Vec<(String, BudgetStatement)> = Vec::new();
    for dir in dirs {
        let path = dir.display().to_string();
        let (folder, found, statement) = check_folder(dir, key.as_ref());
        for (file, message) in found {
            report.problems.push(Problem {
                path: path.clone(),
                file,
                message,
            });
        }
        if let Some(s) = statement {
            statements.push((path, s));
        }
        report.folders.push(folder);
    }
    let (chains, found) = chains(statements);
    report.chains = chains;
    report.problems.extend(found);
    // Without a key to hold them to, folders of one dataset signed by different keys are worth
    // a look: the publisher changed keys, or someone else signed some of them.
    if key.is_none() {
        let mut keys: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for f in &report.folders {
            if let (Some(d), Some(k)) = (&f.dataset, &f.key_id) {
                let ids = keys.entry(d.as_str()).or_default();
                if !ids.contains(&k.as_str()) {
                    ids.push(k.as_str());
                }
            }
        }
        let mixed: Vec<String> = keys
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(d, ids)| {
                format!(
                    "note: the folders of dataset `{d}` are signed by {} different keys ({}); give --public-key to check which are the publisher's",
                    ids.len(),
                    ids.join(", ")
                )
            })
            .collect();
        report.notes.extend(mixed);
    }
    report.ok = report.problems.is_empty();
    if json {
        let mut text = serde_json::to_string_pretty(&report).expect("serialising to memory");
        text.push('\n');
        print(&text)?;
    } else {
        print(&text(&report))?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(Error::VerifyFailed(format!(
            "{} problem(s) found",
            report.problems.len()
        )))
    }
}

type Found = Vec<(Option<String>, String)>;

/// Checks one folder; returns what it found, its problems, and its budget statement (once its
/// signature and files hold, or when there is no key to hold them to).
fn check_folder(
    dir: &Path,
    key: Option<&VerifyingKey>,
) -> (Folder, Found, Option<BudgetStatement>) {
    let mut folder = Folder {
        path: dir.display().to_string(),
        dataset: None,
        release_id: None,
        version: None,
        signature: "unsigned".into(),
        key_id: None,
        statement_sequence: None,
        checked: Vec::new(),
        notes: Vec::new(),
    };
    let mut found: Found = Vec::new();
    let in_manifest = |message: String| (Some("manifest.json".to_string()), message);
    let bytes = match std::fs::read(dir.join("manifest.json")) {
        Ok(b) => b,
        Err(e) => {
            found.push(in_manifest(format!("cannot be read: {e}")));
            return (folder, found, None);
        }
    };
    let m: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            found.push(in_manifest(format!("is not a safestat manifest: {e}")));
            return (folder, found, None);
        }
    };
    folder.dataset = Some(m.dataset.clone());
    folder.release_id = Some(m.release.id.clone());
    folder.version = Some(m.release.version);
    signature(dir, &bytes, &m, key, &mut folder, &mut found);
    let before = found.len();
    files(dir, &m, &mut found);
    if found.len() == before {
        folder.checked.push(format!(
            "{} files' SHA-256 as the manifest lists them, and no other file",
            m.outputs.len()
        ));
    }
    // The tables are read once, for the workbook and report and for their sums.
    let file = |name: &str| std::fs::read(dir.join(name)).ok();
    match report::read_tables(&m, &file) {
        Ok(tables) => {
            presentation(&m, &tables, &file, &mut folder, &mut found);
            sums(&m, &tables, &mut folder, &mut found);
        }
        Err(e) => found.push((None, format!("the tables cannot be read back: {e}"))),
    }
    if !m.exact_tables.is_empty() {
        let sources: Vec<_> = m
            .exact_tables
            .iter()
            .map(|t| ExactSource::new(t, dir, &m.presentation))
            .collect();
        let before = found.len();
        found.extend(check_exact(&sources, &m, Stated::Within));
        if found.len() == before {
            folder.checked.push(format!(
                "{} exact table(s): the attacker's audit re-run on the published values pins no suppressed cell, and finds no interval narrower than the manifest states",
                m.exact_tables.len()
            ));
        }
    }
    let statement = match &m.statement {
        Some(s) => {
            found.extend(statement_holds(s, &m));
            folder.statement_sequence = Some(s.sequence);
            Some(s.clone())
        }
        None if m.manifest_format >= 7 => {
            found.push(in_manifest("has no budget statement".into()));
            None
        }
        None => {
            folder.notes.push(format!(
                "no budget statement: made before manifest format 7 (this one is format {}), so it is not part of a chain",
                m.manifest_format
            ));
            None
        }
    };
    (folder, found, statement)
}

/// The signature: present when the manifest names a key, by the given key when one is given.
fn signature(
    dir: &Path,
    bytes: &[u8],
    m: &Manifest,
    key: Option<&VerifyingKey>,
    folder: &mut Folder,
    found: &mut Found,
) {
    let file = Some(sign::SIGNATURE_FILE.to_string());
    let text = match signature_text(dir) {
        Ok(Some(text)) => text,
        Ok(None) => {
            if let Some(s) = &m.signature {
                found.push((
                    file,
                    format!(
                        "is missing, but the manifest says key {} signed it",
                        s.key_id
                    ),
                ));
            } else if key.is_some() {
                found.push((
                    file,
                    "is missing: the folder is unsigned, so nothing shows it comes from the holder of the given key".into(),
                ));
            }
            return;
        }
        Err(why) => {
            folder.signature = "invalid".into();
            found.push((file, why));
            return;
        }
    };
    let info = match sign::read_signature(&text) {
        Ok(info) => info,
        Err(why) => {
            folder.signature = "invalid".into();
            found.push((file, why));
            return;
        }
    };
    folder.key_id = Some(info.key_id.clone());
    match &m.signature {
        Some(s) if s.key_id == info.key_id => {}
        Some(s) => found.push((
            file.clone(),
            format!(
                "is by key {}, but the manifest names key {}",
                info.key_id, s.key_id
            ),
        )),
        None => found.push((
            file.clone(),
            "is not named in the manifest (a signed release names its key)".into(),
        )),
    }
    match key {
        Some(key) => match key.verify(bytes, &text) {
            Ok(()) => {
                folder.signature = "verified".into();
                folder.checked.push(format!(
                    "the signature of manifest.json by key {} (trusted comment: {})",
                    key.id, info.trusted_comment
                ));
            }
            Err(why) => {
                folder.signature = "invalid".into();
                found.push((
                    file,
                    format!(
                        "does not verify with the given public key {}: {why}",
                        key.id
                    ),
                ));
            }
        },
        None => {
            folder.signature = "signed".into();
            folder.notes.push(format!(
                "signed by key ID {}; the key was not checked (give --public-key FILE, the publisher's public key)",
                info.key_id
            ));
        }
    }
}

/// The folder's signature file's text: `None` when there is none, an error when it is not a
/// regular file or cannot be read as text.
fn signature_text(dir: &Path) -> Result<Option<String>, String> {
    let path = dir.join(sign::SIGNATURE_FILE);
    match std::fs::symlink_metadata(&path) {
        Err(_) => Ok(None),
        Ok(meta) if !meta.is_file() => Err("is not a regular file".into()),
        Ok(_) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| format!("cannot be read as a signature: {e}")),
    }
}

/// Every file the manifest lists has its hash, and the folder holds nothing else.
fn files(dir: &Path, m: &Manifest, found: &mut Found) {
    for o in &m.outputs {
        let path = dir.join(&o.path);
        // Only a regular file is read (a pipe would hang the check, a device exhaust memory).
        if std::fs::symlink_metadata(&path).is_ok_and(|meta| !meta.is_file()) {
            found.push((Some(o.path.clone()), "is not a regular file".into()));
            continue;
        }
        match std::fs::read(&path) {
            Ok(b) if sha256_hex(&b) == o.sha256 => {}
            Ok(_) => found.push((
                Some(o.path.clone()),
                "differs from the SHA-256 its manifest lists (altered after publication)".into(),
            )),
            Err(_) => found.push((Some(o.path.clone()), "is missing".into())),
        }
    }
    for n in output::unlisted_files(dir, m) {
        found.push((Some(n), "is not listed in the manifest".into()));
    }
}

/// The workbook and `report.html` are what `safestat report` makes from the folder's tables.
fn presentation(
    m: &Manifest,
    tables: &[Table],
    file: &dyn Fn(&str) -> Option<Vec<u8>>,
    folder: &mut Folder,
    found: &mut Found,
) {
    let made =
        report::read_exact_tables(m, file).and_then(|exact| report::render(m, tables, &exact));
    let made = match made {
        Ok(made) => made,
        Err(e) => {
            found.push((None, format!("the tables cannot be read back: {e}")));
            return;
        }
    };
    let mut checked = Vec::new();
    if m.manifest_format >= 9 && m.tool.report_format.is_none_or(|f| f == 0) {
        found.push((
            Some("manifest.json".into()),
            "states no report format (`tool.report_format`, which every manifest of format 9 or later states), so its workbook and report could not be compared".into(),
        ));
        return;
    }
    for (name, bytes) in made {
        let Some(listed) = m.outputs.iter().find(|o| o.path == name) else {
            continue;
        };
        if sha256_hex(&bytes) == listed.sha256 {
            checked.push(name);
        } else if m.tool.report_format != Some(output::REPORT_FORMAT) {
            folder.notes.push(format!(
                "`{name}` not compared with what `report` makes: {}; its hash is checked",
                output::made_by(&m.tool)
            ));
        } else {
            found.push((
                Some(name),
                "is not what `safestat report` makes from the folder's tables and manifest".into(),
            ));
        }
    }
    if !checked.is_empty() {
        folder.checked.push(format!(
            "{} made again from the tables, byte for byte",
            checked.join(" and ")
        ));
    }
}

/// Each table's margins and grand total are the sums of its published cells, and the tables of
/// a consistency group agree wherever they publish the same quantity.
fn sums(m: &Manifest, tables: &[Table], folder: &mut Folder, found: &mut Found) {
    let before = found.len();
    let mut compared = 0usize;
    for t in tables {
        let Some(label) = t.entry.totals.as_ref().map(|x| x.label.as_str()) else {
            continue;
        };
        for (labels, &(value, _, _)) in &t.totals {
            let mut sum = Some(0i64);
            for i in 0..t.values.len() {
                let cell = t.labels(i);
                if labels.iter().zip(&cell).all(|(l, c)| l == label || l == c) {
                    sum = sum.zip(t.values[i]).map(|(a, b)| a + b);
                }
            }
            if let Some(sum) = sum {
                compared += 1;
                if sum != value {
                    found.push((
                        Some(csv_of(t)),
                        format!(
                            "the total ({}) is {value}, but its published cells add up to {sum}",
                            labels.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    for (g, group) in m.consistency.iter().enumerate() {
        if group.status != "estimated" {
            continue;
        }
        let members: Vec<&Table> = tables
            .iter()
            .filter(|t| t.entry.consistency_group == Some(g))
            .collect();
        for small in &members {
            for big in &members {
                if small.entry.name == big.entry.name
                    || !small
                        .entry
                        .dimensions
                        .iter()
                        .all(|d| big.entry.dimensions.contains(d))
                {
                    continue;
                }
                compared += agree(small, big, found);
            }
        }
    }
    if found.len() == before && compared > 0 {
        folder.checked.push(format!(
            "{compared} sums: every published margin and total is the sum of its published cells, and the tables estimated together agree"
        ));
    }
}

/// Every value of `small` that `big` also publishes (as a cell or a margin) is the same there.
/// Returns how many were compared.
fn agree(small: &Table, big: &Table, found: &mut Found) -> usize {
    let total = |t: &Table| {
        t.entry
            .totals
            .as_ref()
            .map_or(String::new(), |x| x.label.clone())
    };
    let (small_total, big_total) = (total(small), total(big));
    let mut rows: Vec<(Vec<String>, Option<i64>)> = (0..small.values.len())
        .map(|i| {
            let labels = small.labels(i).into_iter().map(String::from).collect();
            (labels, small.values[i])
        })
        .collect();
    rows.extend(small.totals.iter().map(|(l, v)| (l.clone(), Some(v.0))));
    let mut compared = 0;
    for (labels, value) in rows {
        let Some(value) = value else { continue };
        let at: Vec<String> = big
            .entry
            .dimensions
            .iter()
            .map(
                |d| match small.entry.dimensions.iter().position(|x| x == d) {
                    Some(k) if labels[k] != small_total => labels[k].clone(),
                    _ => big_total.clone(),
                },
            )
            .collect();
        let other = if at.contains(&big_total) {
            big.totals.get(&at).map(|v| v.0)
        } else {
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            big.at(&at).flatten()
        };
        if let Some(other) = other {
            compared += 1;
            if other != value {
                found.push((
                    Some(csv_of(small)),
                    format!(
                        "({}) is {value} here but {other} in `{}`, estimated with it as one table",
                        labels.join(", "),
                        csv_of(big)
                    ),
                ));
            }
        }
    }
    compared
}

fn csv_of(t: &Table) -> String {
    t.entry
        .files
        .iter()
        .find(|f| f.ends_with(".csv"))
        .cloned()
        .unwrap_or_else(|| format!("{}.csv", t.entry.name))
}

/// A statement agrees with its manifest, adds up (opendp's composition) and fits its budget.
fn statement_holds(s: &BudgetStatement, m: &Manifest) -> Found {
    let mut found = Found::new();
    let mut wrong = |message: String| found.push((Some("manifest.json".to_string()), message));
    if s.dataset != m.dataset || s.release_id != m.release.id || s.version != m.release.version {
        wrong("its budget statement is about another release".into());
    }
    if s.cost != m.ledger.charged
        || s.total_after != m.ledger.total_after
        || s.charge_sha256 != m.ledger.charge_sha256
    {
        wrong(
            "its budget statement's cost, total or charge differs from its `ledger` section".into(),
        );
    }
    // The cost the statement states is what the release's tables cost (opendp's composition,
    // in the manifest's `total_cost`): none for a release of exact tables only. Pure-DP tables
    // under a zCDP budget compose in epsilon but are charged each cast to rho, so their
    // `total_cost` is not in the budget's unit and is not compared here.
    let tables_cost = match s.unit.as_str() {
        _ if m.tables.is_empty() => Some(0.0),
        "rho" => m.total_cost.rho,
        "epsilon" => m.total_cost.epsilon,
        _ => None,
    };
    if let Some(c) = tables_cost
        && (c - s.cost).abs() > 1e-9 * c.abs().max(1e-12)
    {
        wrong(format!(
            "its budget statement's cost ({}) is not what its tables cost ({c}, `total_cost`)",
            s.cost
        ));
    }
    match s.budget.accounting() {
        Err(e) => wrong(format!("its budget statement's budget is not valid: {e}")),
        Ok(acc) => {
            if acc.name() != s.accounting || acc.unit() != s.unit {
                wrong("its budget statement's accounting does not match its budget".into());
            }
            match acc.compose(vec![s.spent_before, s.cost]) {
                Ok(t) if t == s.total_after => {}
                Ok(t) => wrong(format!(
                    "its budget statement's total after ({}) is not spent before ({}) and cost ({}) composed ({t})",
                    s.total_after, s.spent_before, s.cost
                )),
                Err(e) => wrong(e.to_string()),
            }
            if !acc.fits(s.total_after).unwrap_or(false) {
                wrong(format!(
                    "its budget statement overspends: {} {} after it, of a budget of {}",
                    s.unit,
                    s.total_after,
                    acc.describe()
                ));
            }
        }
    }
    if s.sequence == 1 && (s.previous_sha256 != GENESIS || s.spent_before != 0.0) {
        wrong("its budget statement is the dataset's first, but names a previous one or spending before it".into());
    }
    if s.sequence == 0 {
        wrong("its budget statement has sequence number 0 (they start at 1)".into());
    }
    found
}

/// The statements of each dataset form one chain: 1..n without a gap, one statement per number
/// (a fork is two), each naming the one before by its hash, with one budget.
fn chains(statements: Vec<(String, BudgetStatement)>) -> (Vec<Chain>, Vec<Problem>) {
    let mut by_dataset: BTreeMap<String, BTreeMap<u64, Vec<(String, BudgetStatement)>>> =
        BTreeMap::new();
    for (path, s) in statements {
        by_dataset
            .entry(s.dataset.clone())
            .or_default()
            .entry(s.sequence)
            .or_default()
            .push((path, s));
    }
    let mut chains = Vec::new();
    let mut problems = Vec::new();
    for (dataset, by_sequence) in by_dataset {
        let (chain, messages) = chain_of(&dataset, &by_sequence);
        chains.push(chain);
        problems.extend(messages.into_iter().map(|message| Problem {
            path: format!("dataset `{dataset}`"),
            file: None,
            message,
        }));
    }
    (chains, problems)
}

/// One dataset's chain of budget statements, by sequence (each as stated by one or more folders,
/// with their paths), and what is wrong with it: forks, gaps, a budget that changed, and
/// statements that do not follow the one before (its hash, its total).
fn chain_of(
    dataset: &str,
    by_sequence: &BTreeMap<u64, Vec<(String, BudgetStatement)>>,
) -> (Chain, Vec<String>) {
    let mut problems = Vec::new();
    let mut problem = |message: String| problems.push(message);
    let mut previous: Option<&BudgetStatement> = None;
    let mut expected = 1u64;
    let mut complete = true;
    // The dataset's budget: the first statement's, or (statements of exact tables only
    // before it) the first one stated; a budget never changes once stated.
    let first = by_sequence
        .values()
        .map(|folders| &folders[0].1)
        .find(|s| !s.budget.is_none())
        .unwrap_or(
            &by_sequence
                .values()
                .next()
                .expect("a dataset has a statement")[0]
                .1,
        );
    for (&sequence, folders) in by_sequence {
        let s = &folders[0].1;
        if folders.iter().any(|(_, other)| other != s) {
            let paths: Vec<&str> = folders.iter().map(|(p, _)| p.as_str()).collect();
            problem(format!(
                "fork: statement {sequence} is stated differently by {} (two releases charged as one)",
                paths.join(" and ")
            ));
        }
        if sequence > expected {
            complete = false;
            let missing = if sequence - 1 == expected {
                format!("statement {expected} is")
            } else {
                format!("statements {expected} to {} are", sequence - 1)
            };
            problem(format!(
                "gap: {missing} missing before {} ({}): a release of this dataset that charged its budget is not among the folders given",
                sequence, folders[0].0
            ));
        }
        let stated_before = s.sequence < first.sequence && s.budget.is_none();
        if !stated_before && (s.budget != first.budget || s.accounting != first.accounting) {
            problem(format!(
                "statement {sequence} ({}) states another budget than statement {}",
                folders[0].0, first.sequence
            ));
        }
        if let Some(p) = previous.filter(|p| p.sequence + 1 == sequence) {
            if s.previous_sha256 != p.sha256() {
                problem(format!(
                    "statement {sequence} ({}) does not name statement {} by its hash: one of them was altered, or they belong to different histories",
                    folders[0].0, p.sequence
                ));
            }
            if s.spent_before != p.total_after {
                problem(format!(
                    "statement {sequence} ({}) says {} was spent before it, but statement {} ends at {}",
                    folders[0].0, s.spent_before, p.sequence, p.total_after
                ));
            }
        }
        previous = Some(s);
        expected = sequence + 1;
    }
    let last = previous.expect("a dataset has a statement");
    let chain = Chain {
        dataset: dataset.to_string(),
        sequences: by_sequence.keys().copied().collect(),
        unit: last.unit.clone(),
        budget: last.budget,
        spent: last.total_after,
        complete,
    };
    (chain, problems)
}

/// The report for people.
fn text(report: &VerifyReport) -> String {
    let mut r = String::new();
    for f in &report.folders {
        let what = match (&f.release_id, f.version) {
            (Some(id), Some(v)) => format!("`{id}` version {v}"),
            _ => "(unreadable)".into(),
        };
        let signature = match (f.signature.as_str(), &f.key_id) {
            ("verified", Some(id)) => format!("signed by key {id}, verified"),
            ("signed", Some(id)) => format!("signed by key {id}, key not checked"),
            ("invalid", _) => "signature INVALID".into(),
            _ => "unsigned".into(),
        };
        let _ = writeln!(r, "{}: {what}, {signature}", f.path);
        for c in &f.checked {
            let _ = writeln!(r, "  checked: {c}");
        }
        for n in &f.notes {
            let _ = writeln!(r, "  note: {n}");
        }
    }
    for c in &report.chains {
        let sequences = match (c.sequences.first(), c.sequences.last()) {
            (Some(a), Some(b)) if a == b => format!("statement {a}"),
            (Some(a), Some(b)) => format!("statements {a} to {b}"),
            _ => String::new(),
        };
        let budget = c
            .budget
            .accounting()
            .map(|a| a.describe())
            .unwrap_or_default();
        let _ = writeln!(
            r,
            "dataset `{}`: {sequences}{}; {}={} spent of {budget}",
            c.dataset,
            if c.complete {
                ", no gap"
            } else {
                ", INCOMPLETE"
            },
            c.unit,
            crate::privacy::short_number(c.spent)
        );
    }
    for n in &report.notes {
        let _ = writeln!(r, "{n}");
    }
    for p in &report.problems {
        let at = match &p.file {
            Some(f) => format!("{}/{f}", p.path),
            None => p.path.clone(),
        };
        let _ = writeln!(r, "PROBLEM {at}: {}", p.message);
    }
    let _ = writeln!(
        r,
        "{}",
        if report.ok {
            "verify passed".to_string()
        } else {
            format!("verify FAILED: {} problem(s)", report.problems.len())
        }
    );
    r
}
