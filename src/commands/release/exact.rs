//! A release's exact tables: counted exactly, protected by cell suppression before the ledger is
//! touched (a pattern that cannot be proven fails the release with nothing charged), then
//! published as CSV rows with every margin, and described in the manifest with the attacker's
//! interval of every suppressed cell.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::Error;
use crate::hash::sha256_hex;
use crate::input::{self, Counts, Fingerprints, InputData, ReadOptions};
use crate::ledger::{Ledger, LinkedTable};
use crate::output::{self, CellInterval, ExactPublished, ExactTableEntry, Files, PrimaryRule};
use crate::policy::{ExactSum, ExactTableSpec, MAX_FINEST_CELLS, Plan, SecondaryObjective};
use crate::protect::sdc::Method;
use crate::protect::sdc::tables::{self, ExactTable, Linked};

/// What the manifest says about the attacker's audit.
pub const AUDIT: &str = "for every suppressed cell, the least and greatest value consistent with every published cell of the release's exact tables (each table's margins, and the margins tables of the same input share), non-negativity, what the rules make public (a suppressed count is at least 1 where zeros are never suppressed) and whole numbers: linear programs through good_lp, and integer programs where an LP's optimum is fractional; every suppressed cell, small or secondary, is audited before the release is charged";
/// Who an exact table's pattern is proven against (the manifest's `attacker`).
pub const ATTACKER: &str = "an outsider, who knows every cell published by this and every earlier release of the dataset, the rules (a suppressed count is at least 1 where zeros are never suppressed) and that values are whole numbers of 0 or more; and each respondent, who knows besides its own contribution to every cell it is in and subtracts it from the suppressed ones: no respondent narrows a small cell it is not in below the cell's protection levels (against its own cell's other respondents, the sensitivity rules protect). The intervals below are the outsider's; the respondents' were checked at release with the data and are never published, and `safestat audit`, which has only the published files, re-checks the outsider's";
/// What the manifest says about secondary suppression by the exact method.
pub const OPTIMAL: &str = "the exact minimum (cells, or value, as the objective says) of the Fischetti-Salazar integer program, solved by cut generation: a 0/1 variable per cell that may be hidden, and for every primary cell and direction the cut the attacker's dual LP gives while the pattern leaves it short; the pattern found is then checked by the attacker's audit, with levels raised where whole numbers narrow an interval";
/// What the manifest says about a pattern the exact method could not finish within its limits.
pub const COMPLETED: &str = "not proven minimal: the exact method (the Fischetti-Salazar integer program by cut generation) reached its limits (rounds of cuts, or branch-and-bound nodes of a master problem), or a respondent knowing its own contributions could narrow a small cell in its pattern, and the heuristic (per short primary cell and direction, the cheapest change of the tables that moves it by its protection level, in that respondent's knowledge where one was short) completed the pattern; checked by the attacker's audit";
/// What the manifest says about secondary suppression by the heuristic (tables beyond the exact
/// method's limits).
pub const HEURISTIC: &str = "a heuristic, the table being beyond the exact method's limits: per primary cell and direction, the cheapest change of the tables that moves it by its protection level while keeping every margin and every cell non-negative (an LP; hidden cells are free, visible ones cost 1 each or their value); the visible cells it moves are suppressed; zeros are never suppressed as secondaries; checked by the attacker's audit, with levels raised where whole numbers narrow an interval";

/// What [`protect`] gives the ledger besides the tables.
pub struct Record {
    /// Per exact table, the digest of its exact cells ([`cells_digest`]).
    pub digests: BTreeMap<String, String>,
    /// Inputs that hold the same data as an earlier input of the plan ([`same_data`], and
    /// [`same_by_cells`]), by name.
    pub same_data: BTreeMap<String, String>,
    /// For the officer: inputs found to hold the same data by their cells.
    pub notes: Vec<String>,
}

/// Per input, the first input of the plan that holds the same data: the same bytes
/// (`fingerprints`) read the same way (kind, encoding, line breaks in fields). Two inputs on one
/// file count one population, and their exact tables must be protected as one.
pub fn same_data(plan: &Plan, fingerprints: &Fingerprints) -> Vec<usize> {
    let read_alike = |i: usize, j: usize| {
        let (a, b) = (&plan.inputs[i], &plan.inputs[j]);
        a.kind == b.kind
            && a.encoding == b.encoding
            && a.multiline == b.multiline
            && fingerprints.get(&a.name).is_some()
            && fingerprints.get(&a.name).map(|f| &f.now)
                == fingerprints.get(&b.name).map(|f| &f.now)
    };
    (0..plan.inputs.len())
        .map(|i| (0..i).find(|&j| read_alike(i, j)).unwrap_or(i))
        .collect()
}

/// Merges input `b`'s data into input `a`'s in `same` (per input, the first input of its data);
/// false when they were one data already.
fn merge(same: &mut [usize], a: usize, b: usize) -> bool {
    let (ra, rb) = (same[a], same[b]);
    if ra == rb {
        return false;
    }
    let (keep, merged) = (ra.min(rb), ra.max(rb));
    for s in same.iter_mut().filter(|s| **s == merged) {
        *s = keep;
    }
    true
}

/// Two inputs' tables to compare: the specs counted on each.
struct Comparison {
    left: usize,
    right: usize,
}

/// Inputs that hold the same data in other bytes (a re-exported copy: other row order, line ends
/// or encoding, or a database's copy of a file's rows), merged into `same` (per input, the first
/// input of its data). An attacker links published cells by their labels, not by the bytes
/// behind them. An earlier table `linked` on two inputs tells that they hold its data. Then, for
/// every two exact tables on inputs not known to hold the same data, with dimensions in common,
/// the table by those dimensions is counted on both inputs (of the tables' quantity, or, for two
/// quantities of record-level inputs, as counts of rows with their persons), and where the two
/// agree cell for cell (their digests) the inputs are taken to hold the same data, so their
/// tables are protected as one (and a count of persons beside a count of rows of them is
/// refused). Data that only happen to agree there are protected together too, which costs cells,
/// never a leak. Dimensions of the same categories under two names (`region` in one input,
/// `area` in the other) are compared too, and refused where they agree: the two would be
/// protected apart. A second pass over those inputs, only when a release has such tables.
/// Returns a note per link.
fn same_by_cells(
    plan: &Plan,
    same: &mut [usize],
    linked: &[(LinkedTable, Linked)],
    options: &ReadOptions,
) -> Result<Vec<String>, Error> {
    let mut notes = bridged_by_earlier(plan, same, linked);
    let ToCount {
        specs,
        comparisons,
        renamings,
    } = to_count(plan, same);
    for renaming in renamings {
        refuse_if_renamed(plan, renaming, options)?;
    }
    if comparisons.is_empty() {
        return Ok(notes);
    }
    let mut counting = plan.clone();
    counting.tables.clear();
    counting.exact_tables = specs.clone();
    let mut data = input::read_all(&counting, options)?;
    let digests = (0..specs.len())
        .map(|e| {
            let counts = data.take_exact_table(&counting, e)?;
            Ok(cells_digest(&counts, largest_of(&specs[e])))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    for c in comparisons {
        if digests[c.left] != digests[c.right] {
            continue;
        }
        let (a, b) = (specs[c.left].input, specs[c.right].input);
        if merge(same, a, b) {
            notes.push(format!(
                "note: inputs `{}` and `{}` hold the same data (their exact tables agree cell for cell by [{}]): their exact tables are protected as one",
                plan.inputs[a.min(b)].name,
                plan.inputs[a.max(b)].name,
                plan.dimension_names(&specs[c.left].dims).join(", ")
            ));
        }
    }
    Ok(notes)
}

/// Inputs an earlier table `linked` on both holds the same data of: merged in `same`, a note
/// each.
fn bridged_by_earlier(
    plan: &Plan,
    same: &mut [usize],
    linked: &[(LinkedTable, Linked)],
) -> Vec<String> {
    let mut notes = Vec::new();
    let mut bridged: BTreeMap<(&str, u32, &str), Vec<usize>> = BTreeMap::new();
    for (link, l) in linked {
        let key = (link.release_id.as_str(), link.version, link.table.as_str());
        bridged.entry(key).or_default().push(l.spec.input);
    }
    for ((release, version, table), inputs) in &bridged {
        for pair in inputs.windows(2) {
            if merge(same, pair[0], pair[1]) {
                notes.push(format!(
                    "note: inputs `{}` and `{}` hold the same data (exact table `{table}` of release `{release}` version {version} counts the same on both): their exact tables are protected as one",
                    plan.inputs[pair[0]].name, plan.inputs[pair[1]].name
                ));
            }
        }
    }
    notes
}

/// What [`same_by_cells`] counts: the tables to count, once each, and the comparisons between
/// them; and, apart, the tables by a dimension under two names (each pair counted on its own,
/// since an input may not be able to count the other's categories: then they are other data).
#[derive(Default)]
struct ToCount {
    specs: Vec<ExactTableSpec>,
    comparisons: Vec<Comparison>,
    renamings: Vec<Renaming>,
}

/// Two tables by a dimension of one input and a dimension of alike categories of another (`d`
/// and `e`), counted in `counting`, where the second input reads `e` with `d`'s categories.
struct Renaming {
    left: ExactTableSpec,
    right: ExactTableSpec,
    dims: (usize, usize),
    counting: Plan,
}

/// For every two exact tables on other inputs with a quantity they can both count, the tables
/// to count and compare.
fn to_count(plan: &Plan, same: &[usize]) -> ToCount {
    let quantity = |t: &ExactTableSpec| (t.statistic(), t.sum.as_ref().map(|s| s.column.clone()));
    let microdata = |i: usize| plan.inputs[i].kind == crate::policy::InputKind::Microdata;
    let rows = ExactSum {
        column: None,
        dominance: None,
        p_percent: None,
    };
    let mut out = ToCount::default();
    let tables = &plan.exact_tables;
    for (i, a) in tables.iter().enumerate() {
        for b in &tables[i + 1..] {
            if a.input == b.input {
                continue;
            }
            let sum = if quantity(a) == quantity(b) {
                a.sum.clone()
            } else if microdata(a.input) && microdata(b.input) {
                Some(rows.clone())
            } else {
                continue;
            };
            let common: Vec<usize> = a
                .dims
                .iter()
                .copied()
                .filter(|d| b.dims.contains(d))
                .collect();
            out.renamings.extend(renamings(plan, (a, b), &sum, &common));
            if common.is_empty() || same[a.input] == same[b.input] {
                continue;
            }
            let mut spec_on = |input: usize| {
                let s = counted_spec(plan, a, &sum, input, common.clone(), names(plan, &common));
                let found = out
                    .specs
                    .iter()
                    .position(|x| x.input == s.input && x.dims == s.dims && x.sum == s.sum);
                found.unwrap_or_else(|| {
                    out.specs.push(s);
                    out.specs.len() - 1
                })
            };
            let comparison = Comparison {
                left: spec_on(a.input),
                right: spec_on(b.input),
            };
            out.comparisons.push(comparison);
        }
    }
    out
}

/// The dimensions' names.
fn names(plan: &Plan, dims: &[usize]) -> Vec<String> {
    dims.iter()
        .map(|&d| plan.dimensions[d].name.clone())
        .collect()
}

/// Table `like`'s spec counted on `input` by `dims` (named `names`) with margins, of `sum`.
fn counted_spec(
    plan: &Plan,
    like: &ExactTableSpec,
    sum: &Option<ExactSum>,
    input: usize,
    dims: Vec<usize>,
    names: Vec<String>,
) -> ExactTableSpec {
    ExactTableSpec {
        name: format!("{} by [{}]", plan.inputs[input].name, names.join(", ")),
        input,
        groups: vec![Vec::new(); dims.len()],
        dims,
        margins: true,
        sum: sum.clone(),
        ..like.clone()
    }
}

/// A dimension under two names: every pair of a dimension of table `a` and one of table `b`
/// whose categories are alike (the same, in another order, or one held by the other), the
/// second read with the first's categories, beside their `common` dimensions. Compared even for
/// inputs known to hold one data (by an earlier table), where the two would be protected apart
/// all the same.
fn renamings(
    plan: &Plan,
    (a, b): (&ExactTableSpec, &ExactTableSpec),
    sum: &Option<ExactSum>,
    common: &[usize],
) -> Vec<Renaming> {
    let nested = |a: &[String], b: &[String]| a.iter().all(|c| b.contains(c));
    let mut out = Vec::new();
    for &d in a.dims.iter().filter(|d| !b.dims.contains(d)) {
        for &e in b.dims.iter().filter(|e| !a.dims.contains(e)) {
            let (dd, de) = (&plan.dimensions[d], &plan.dimensions[e]);
            if !(nested(&dd.categories, &de.categories) || nested(&de.categories, &dd.categories)) {
                continue;
            }
            let mut counting = plan.clone();
            counting.tables.clear();
            counting.dimensions.push(crate::policy::Dimension {
                name: de.name.clone(),
                categories: dd.categories.clone(),
                catch_all: dd.catch_all,
            });
            let read_as = counting.dimensions.len() - 1;
            let left: Vec<usize> = common.iter().copied().chain([d]).collect();
            let right: Vec<usize> = common.iter().copied().chain([read_as]).collect();
            let right_names = names(plan, common)
                .into_iter()
                .chain([de.name.clone()])
                .collect();
            out.push(Renaming {
                left: counted_spec(plan, a, sum, a.input, left.clone(), names(plan, &left)),
                right: counted_spec(plan, a, sum, b.input, right, right_names),
                dims: (d, e),
                counting,
            });
        }
    }
    out
}

/// Refuses two inputs whose tables by a dimension under two names agree cell for cell: they hold
/// the same data, which would be protected apart. An input that cannot count the other's
/// categories holds other data.
fn refuse_if_renamed(plan: &Plan, renaming: Renaming, options: &ReadOptions) -> Result<(), Error> {
    let Renaming {
        left,
        right,
        dims: (d, e),
        mut counting,
    } = renaming;
    let (a_name, b_name) = (
        &plan.inputs[left.input].name,
        &plan.inputs[right.input].name,
    );
    counting.exact_tables = vec![left, right];
    let counted = input::read_all(&counting, options).and_then(|mut data| {
        let l = data.take_exact_table(&counting, 0)?;
        let r = data.take_exact_table(&counting, 1)?;
        Ok((l, r))
    });
    let (l, r) = match counted {
        Ok(both) => both,
        Err(e) if e.cannot_count() => return Ok(()), // other data
        Err(e) => return Err(e.into()),
    };
    let k = largest_of(&counting.exact_tables[0]);
    if cells_digest(&l, k) == cells_digest(&r, k) {
        return Err(Error::Usage(format!(
            "exact tables: inputs `{a_name}` and `{b_name}` hold the same data under other dimension names ([{}] in `{a_name}`, [{}] in `{b_name}`: their cells agree): their tables would be protected apart, and a margin one hides the other could publish. Give the columns one name and the same categories in both inputs (one dimension), or read the tables from one input. Nothing was charged",
            plan.dimensions[d].name, plan.dimensions[e].name
        )));
    }
    Ok(())
}

/// Counts and protects the plan's exact tables (before any charge), with those `linked` from
/// earlier releases; `fingerprints` tell which inputs hold the same data. Returns them and what
/// the ledger records of them.
pub fn protect(
    plan: &Plan,
    data: &mut InputData,
    linked: &[(LinkedTable, Linked)],
    fingerprints: &Fingerprints,
    options: &ReadOptions,
) -> Result<(Vec<ExactTable>, Record), Error> {
    let counts = (0..plan.exact_tables.len())
        .map(|e| data.take_exact_table(plan, e))
        .collect::<Result<Vec<_>, _>>()?;
    let digests = plan
        .exact_tables
        .iter()
        .zip(&counts)
        .map(|(t, c)| (t.name.clone(), cells_digest(c, largest_of(t))))
        .collect();
    let mut same = same_data(plan, fingerprints);
    let notes = same_by_cells(plan, &mut same, linked, options)?;
    let linked: Vec<Linked> = linked.iter().map(|(_, l)| l.clone()).collect();
    let record = Record {
        notes,
        digests,
        same_data: same
            .iter()
            .enumerate()
            .filter(|&(i, &j)| i != j)
            .map(|(i, &j)| (plan.inputs[i].name.clone(), plan.inputs[j].name.clone()))
            .collect(),
    };
    Ok((
        tables::protect_tables(plan, &counts, &linked, &same)?,
        record,
    ))
}

/// SHA-256 of an exact table's cells: values, units, the `k` largest sums of the units in one of
/// its cells, and each unit in several of its cells with its sums there (in a canonical order),
/// exactly: what the table's own data gives, whichever other tables it was read with. Private
/// (the ledger keeps it): two reads whose tables have the same digest counted the same data,
/// whatever the files looked like (names, row order, line ends) or where the rows came from.
pub fn cells_digest(counts: &Counts, k: usize) -> String {
    let mut largest = counts.largest.clone();
    let mut spanning: Vec<Vec<(usize, i64)>> = Vec::new();
    for unit in &counts.spanning {
        match unit.cells[..] {
            [(cell, v)] => crate::input::keep_largest(&mut largest[cell], v, k),
            _ => spanning.push(unit.cells.clone()),
        }
    }
    spanning.sort_unstable();
    // Units in several cells are part of what was counted (tables read before they were
    // allowed have none, and keep their digests).
    let doc = if spanning.is_empty() {
        serde_json::json!([counts.values, counts.frequencies, largest])
    } else {
        serde_json::json!([counts.values, counts.frequencies, largest, spanning])
    };
    sha256_hex(&serde_json::to_vec(&doc).expect("serialising to memory"))
}

/// How many of each cell's largest contributions table `t`'s rules read (none for a count).
fn largest_of(t: &ExactTableSpec) -> usize {
    t.sum.as_ref().map_or(0, |s| s.largest() as usize)
}

/// The earlier exact tables this release is protected with, and notes for the officer.
#[derive(Default)]
pub struct Links {
    pub tables: Vec<(LinkedTable, Linked)>,
    pub notes: Vec<String>,
    /// The charges whose exact tables were considered ([`Ledger::published_exact`]); `None`
    /// without exact tables here.
    pub seen: Option<Vec<u64>>,
}

/// An earlier exact table, to be counted again on one of this release's inputs.
struct Candidate {
    link: LinkedTable,
    spec: ExactTableSpec,
    published: Vec<Option<i64>>,
    /// The digest of its cells when it was published (charges before digests have none).
    digest: Option<String>,
    /// Whether it was read from an input of this name with these very bytes (how charges without
    /// digests are linked).
    same_bytes: bool,
    /// Counted on an input that may not be able to count it (no exact table here covers its
    /// dimensions there): linked if the digest matches, passed over otherwise.
    extra: bool,
}

/// The exact tables that earlier releases of this dataset published from the same data, read
/// from their folders and counted again on this read's inputs (a second pass, only when there
/// are any): a new pattern must keep their published cells, keep their hidden cells hidden and
/// keep their small cells protected. "The same data" is decided by the tables' cells, not by the
/// files: each earlier table is counted on every input of this release that can count it (the
/// input of its name, and the input of any exact table here of the same statistic over its
/// dimensions), and linked where its cells' digest is the one its charge recorded, whatever the
/// input is called, how its rows are ordered or encoded, or whether they come from a file or a
/// database. An earlier table that the data now counts differently is refused when it shows a
/// correction of the data (an earlier version of this release, or every published cell the same
/// but a hidden one changed): the difference would single out who changed. Otherwise it is other
/// data (another period), said in a note. With `new_version`, the earlier versions of this very
/// release are among them (they stay public).
pub fn linked(
    plan: &Plan,
    ledger_file: &Path,
    fingerprints: &Fingerprints,
    options: &ReadOptions,
    new_version: bool,
) -> Result<Links, Error> {
    if plan.exact_tables.is_empty() {
        return Ok(Links::default());
    }
    let ledger = Ledger::read(ledger_file)?;
    let except = (!new_version).then_some(plan.release_id.as_str());
    let seen = Some(ledger.published_exact(&plan.dataset, except));
    let mut found = Found::default();
    for c in ledger.charges() {
        // A re-run of this very release is decided by the ledger (the same plan and inputs, or a
        // refusal), not linked to itself; a new version is published beside the earlier ones, so
        // it is protected with them.
        let itself = !new_version && c.charge.release_id == plan.release_id;
        if c.charge.exact_tables.is_empty() || c.charge.dataset != plan.dataset || itself {
            continue;
        }
        candidates_of(plan, (&ledger, c.seq, c.charge), fingerprints, &mut found)?;
    }
    let Found {
        candidates: found,
        mut notes,
        changed,
    } = found;
    if found.is_empty() {
        return Ok(Links {
            tables: Vec::new(),
            notes,
            seen,
        });
    }
    let (counted, not_compared) = count_again(plan, &found, options)?;
    notes.extend(not_compared);
    let tables = decide(plan, (found, counted), &changed, &mut notes)?;
    Ok(Links {
        tables,
        notes,
        seen,
    })
}

/// What the earlier releases offer to link: the candidates (each earlier exact table on each
/// input that may count it), notes, and the earlier tables a dimension here may stand for under
/// another name and other categories.
#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    notes: Vec<String>,
    changed: std::collections::BTreeSet<(String, u32, String)>,
}

/// The candidates of one earlier release's exact tables: its folder read and its manifest
/// checked against the ledger (a charge never published has nothing public).
fn candidates_of(
    plan: &Plan,
    (ledger, seq, charge): (&Ledger, u64, &crate::ledger::Charge),
    fingerprints: &Fingerprints,
    found: &mut Found,
) -> Result<(), Error> {
    let Some(publication) = ledger.publication_of(seq) else {
        return Ok(()); // charged, never published: nothing of it is public
    };
    let dir = ledger.resolve(&publication.out_dir);
    let cannot = |why: String| {
        Error::Usage(format!(
            "exact tables: release `{}` version {} published exact tables of this dataset, and this release must be protected together with those of them it counts from the same data, but its folder `{}` cannot be read ({why}); restore it from the ledger's records",
            charge.release_id,
            charge.version,
            dir.display()
        ))
    };
    let earlier = output::read_published(&dir).map_err(|(_, why)| cannot(why))?;
    // Its files are checked against its manifest above; the manifest against the ledger here,
    // so an edited manifest (other rules, other cells) is refused, never trusted.
    if earlier.manifest_sha256 != publication.manifest_sha256 {
        return Err(cannot(
            "its manifest.json differs from the one the ledger recorded when it was published"
                .into(),
        ));
    }
    for entry in &earlier.manifest.exact_tables {
        let bytes = std::fs::read(dir.join(format!("{}.csv", entry.name)))
            .map_err(|e| cannot(e.to_string()))?;
        let (categories, values) =
            output::read_exact(&bytes, entry, &earlier.manifest.presentation).map_err(&cannot)?;
        entry_candidates(
            plan,
            charge,
            (entry, &categories, values),
            fingerprints,
            found,
        )?;
    }
    Ok(())
}

/// The candidates of one earlier exact table (its published `categories` and `values`): every
/// reading of its dimensions here on every input that may count it. An earlier table that may
/// count the same data but cannot be compared is refused; one of other data gets a note.
fn entry_candidates(
    plan: &Plan,
    charge: &crate::ledger::Charge,
    (entry, categories, values): (&ExactTableEntry, &[Vec<String>], Vec<Option<i64>>),
    fingerprints: &Fingerprints,
    found: &mut Found,
) -> Result<(), Error> {
    let same_bytes = |input: &str| {
        charge
            .inputs
            .get(input)
            .zip(fingerprints.get(input))
            .is_some_and(|(recorded, read)| read.matches(recorded))
    };
    let digest = charge.exact_digests.get(&entry.name).cloned();
    let ways: Vec<_> = match_dimensions(plan, &entry.dimensions, categories)
        .into_iter()
        .filter(|(_, renamed)| renamed.is_empty() || digest.is_some())
        .collect();
    if ways.is_empty() {
        // It may count the same data as a table here: refused, since it cannot be
        // compared (other categories, or in another order) and so cannot be protected.
        if related(plan, entry, categories) || same_bytes(&entry.input) {
            return Err(Error::Usage(format!(
                "exact tables: exact table `{}` of release `{}` version {} (by [{}]) may count the same data as this release's exact tables, but this policy declares its dimensions or their categories differently (other categories, or another order), so the two cannot be compared or protected together. Declare them as that release did; nothing was charged",
                entry.name,
                charge.release_id,
                charge.version,
                entry.dimensions.join(", ")
            )));
        }
        found.notes.push(format!(
            "note: exact table `{}` of release `{}` version {} was not compared with this release's data: this policy declares its dimensions or categories differently",
            entry.name, charge.release_id, charge.version
        ));
        return Ok(());
    }
    let sum = (entry.statistic != "count_units").then(|| ExactSum {
        column: entry.column.clone(),
        dominance: entry.primary_rule.dominance,
        p_percent: entry.primary_rule.p_percent,
    });
    if renamed_with_other_categories(plan, entry, categories) {
        found.changed.insert((
            charge.release_id.clone(),
            charge.version,
            entry.name.clone(),
        ));
    }
    for (dims, renamed) in ways {
        let (inputs, tried) = inputs_to_count(plan, entry, &dims, digest.is_some());
        for (k, input) in inputs.into_iter().enumerate() {
            let digest = digest.clone();
            let same_bytes = plan.inputs[input].name == entry.input && same_bytes(&entry.input);
            if digest.is_none() && !same_bytes {
                continue; // a charge from before digests: linked only on the same bytes
            }
            let own_name = plan.inputs[input].name != entry.input;
            found.candidates.push(Candidate {
                link: LinkedTable {
                    release_id: charge.release_id.clone(),
                    version: charge.version,
                    table: entry.name.clone(),
                    counted_on: own_name.then(|| plan.inputs[input].name.clone()),
                    renamed: renamed.clone(),
                },
                spec: ExactTableSpec {
                    name: format!("{}/{}", charge.release_id, entry.name),
                    ..earlier_spec(entry, input, dims.clone(), sum.clone())
                },
                published: values.clone(),
                digest,
                same_bytes,
                extra: k >= tried,
            });
        }
    }
    Ok(())
}

/// The inputs that may count earlier exact table `entry` over this plan's dimensions `dims`: the
/// one of its name, and those of this release's exact tables of the same statistic over (at
/// least) its dimensions (the first of the list, how many of them it says); then, when the table
/// has a digest to be linked on, any other input of this release's exact tables, file or
/// database, which may hold the same data under other dimensions (a renamed input whose tables
/// share only a margin with it).
fn inputs_to_count(
    plan: &Plan,
    entry: &ExactTableEntry,
    dims: &[usize],
    digest: bool,
) -> (Vec<usize>, usize) {
    let mut inputs: Vec<usize> = plan
        .inputs
        .iter()
        .position(|i| i.name == entry.input)
        .into_iter()
        .collect();
    for t in &plan.exact_tables {
        let column = t.sum.as_ref().and_then(|s| s.column.clone());
        if t.statistic() == entry.statistic
            && column == entry.column
            && dims.iter().all(|d| t.dims.contains(d))
            && !inputs.contains(&t.input)
        {
            inputs.push(t.input);
        }
    }
    let extra: Vec<usize> = plan
        .exact_tables
        .iter()
        .map(|t| t.input)
        .filter(|i| !inputs.contains(i))
        .filter(|_| digest)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let tried = inputs.len();
    inputs.extend(extra);
    (inputs, tried)
}

/// Earlier exact table `entry` as a table of this plan, counted from `input` over `dims`: its
/// rules as its manifest entry states them.
fn earlier_spec(
    entry: &ExactTableEntry,
    input: usize,
    dims: Vec<usize>,
    sum: Option<ExactSum>,
) -> ExactTableSpec {
    ExactTableSpec {
        name: entry.name.clone(),
        input,
        dims,
        margins: entry.margins,
        sum,
        min_frequency: entry.primary_rule.min_frequency,
        zeros_primary: entry.primary_rule.zeros_suppressed,
        zeros_secondary: entry.primary_rule.zeros_as_secondary,
        interval_percent: entry.interval_percent,
        secondary: SecondaryObjective::Cells,
        total_label: entry.total_label.clone(),
        groups: entry.groups.clone(),
    }
}

/// Which candidates are linked: those counted here as they were published (their digest, or
/// for a charge without digests the same bytes). A candidate that counts otherwise is other data
/// (a note), unless every cell it published is unchanged or it is an earlier version of this
/// release: a correction, refused; so is an earlier table that may stand for a renamed dimension
/// here and is linked under no reading.
fn decide(
    plan: &Plan,
    (found, mut counted): (Vec<Candidate>, Vec<Option<Counts>>),
    changed: &std::collections::BTreeSet<(String, u32, String)>,
    notes: &mut Vec<String>,
) -> Result<Vec<(LinkedTable, Linked)>, Error> {
    let refuse_changed = |(release, version, table): &(String, u32, String)| {
        Error::Usage(format!(
            "exact tables: exact table `{table}` of release `{release}` version {version} may count the same data as this release's exact tables under a dimension renamed since, but this policy declares that dimension's categories differently (another order, or categories added or removed), so the two cannot be compared or protected together. Declare them as that release did; nothing was charged"
        ))
    };
    let key = |l: &LinkedTable| (l.release_id.clone(), l.version, l.table.clone());
    let same: Vec<bool> = found
        .iter()
        .zip(&counted)
        .map(|(c, counts)| match (&c.digest, counts) {
            (_, None) => false,
            (Some(d), Some(counts)) => cells_digest(counts, largest_of(&c.spec)) == *d,
            (None, Some(_)) => c.same_bytes,
        })
        .collect();
    // Tables linked on some input (or under some reading of renamed dimensions).
    let linked_somewhere: std::collections::BTreeSet<_> = found
        .iter()
        .zip(&same)
        .filter(|(_, same)| **same)
        .map(|(c, _)| key(&c.link))
        .collect();
    // Not linked under any reading, while a dimension here of other categories may be its own
    // renamed: it cannot be compared, and may count the same data.
    if let Some(key) = changed.iter().find(|k| !linked_somewhere.contains(*k)) {
        return Err(refuse_changed(key));
    }
    let mut tables = Vec::new();
    for ((candidate, counts), same) in found.into_iter().zip(counted.drain(..)).zip(same) {
        let Some(counts) = counts else {
            continue; // an input that cannot count it: other data
        };
        if same {
            tables.push((
                candidate.link,
                Linked {
                    spec: candidate.spec,
                    counts,
                    published: candidate.published,
                },
            ));
            continue;
        }
        let LinkedTable {
            release_id,
            version,
            table,
            ..
        } = &candidate.link;
        let grid = tables::published_grid(plan, &candidate.spec, &counts.values);
        // "Every published cell unchanged" means something only when it published a count:
        // a table that published nothing but zeros (a rare event) says nothing of its data.
        let published_agree = grid
            .iter()
            .zip(&candidate.published)
            .all(|(now, then)| then.is_none_or(|then| then == *now))
            && candidate.published.iter().flatten().any(|&v| v != 0);
        // Counted elsewhere (on another input, or under another reading of renamed dimensions)
        // as it was, or tried on the chance this input holds its data: a correction only when
        // every cell it published is unchanged.
        let elsewhere = candidate.extra || linked_somewhere.contains(&key(&candidate.link));
        if elsewhere && !published_agree {
            continue;
        }
        if *release_id == plan.release_id || published_agree {
            let what = if *release_id == plan.release_id {
                "an earlier version of this release"
            } else {
                "every cell it published is unchanged, but a cell it hid is not"
            };
            return Err(Error::Usage(format!(
                "exact tables: the data behind exact table `{table}` of release `{release_id}` version {version} has changed since it was published ({what}): exact tables of the corrected data beside it would publish the difference, a table of the few people who changed, and could give back cells it hid. Nothing was charged. Publish the corrected figures with differential privacy, or exact tables only of data that the earlier release did not count"
            )));
        }
        notes.push(format!(
            "note: exact table `{table}` of release `{release_id}` version {version} counts differently on this data (cells it published differ): taken as other data (another period or population), not linked"
        ));
    }
    Ok(tables)
}

/// At most this many ways of reading an earlier table's renamed dimensions are tried.
const MAX_RENAMINGS: usize = 16;

/// This policy's dimensions for an earlier table's (`names`, with their `categories`), each way
/// they can be read: each the dimension of its name (with the same categories), or, where this
/// policy has none of its name, a dimension of its very categories under another name (a column
/// renamed since: `region` then, `area` now), which the map names. Several dimensions of those
/// categories give several ways (at most [`MAX_RENAMINGS`]); none where a dimension of its name
/// has other categories, or no dimension has its categories.
fn match_dimensions(
    plan: &Plan,
    names: &[String],
    categories: &[Vec<String>],
) -> Vec<(Vec<usize>, BTreeMap<String, String>)> {
    let mut ways: Vec<(Vec<usize>, BTreeMap<String, String>)> = vec![(Vec::new(), BTreeMap::new())];
    for (name, cats) in names.iter().zip(categories) {
        let choices: Vec<usize> = match plan.dimensions.iter().position(|d| d.name == *name) {
            Some(d) if plan.dimensions[d].categories == *cats => vec![d],
            Some(_) => return Vec::new(),
            None => (0..plan.dimensions.len())
                .filter(|&d| {
                    let dim = &plan.dimensions[d];
                    dim.categories == *cats && !names.contains(&dim.name)
                })
                .collect(),
        };
        let mut next = Vec::new();
        for (dims, renamed) in &ways {
            for &d in choices.iter().filter(|d| !dims.contains(d)) {
                let mut renamed = renamed.clone();
                if plan.dimensions[d].name != *name {
                    renamed.insert(name.clone(), plan.dimensions[d].name.clone());
                }
                let mut dims = dims.clone();
                dims.push(d);
                next.push((dims, renamed));
            }
        }
        next.truncate(MAX_RENAMINGS);
        ways = next;
    }
    ways
}

/// Whether a dimension of an earlier exact table (`entry`, its dimensions' `categories`) that
/// this policy does not name may be one here under another name with other categories: a
/// dimension of an exact table of the same quantity whose categories hold its, or are held by
/// them, without being the same list.
fn renamed_with_other_categories(
    plan: &Plan,
    entry: &output::ExactTableEntry,
    categories: &[Vec<String>],
) -> bool {
    let nested = |a: &[String], b: &[String]| a.iter().all(|c| b.contains(c));
    let renamed: Vec<&Vec<String>> = entry
        .dimensions
        .iter()
        .zip(categories)
        .filter(|(name, _)| plan.dimensions.iter().all(|d| d.name != **name))
        .map(|(_, cats)| cats)
        .collect();
    plan.exact_tables.iter().any(|t| {
        t.statistic() == entry.statistic
            && t.sum.as_ref().and_then(|s| s.column.clone()) == entry.column
            && t.dims.iter().any(|&d| {
                let ours = &plan.dimensions[d].categories;
                renamed
                    .iter()
                    .any(|cats| *cats != ours && (nested(cats, ours) || nested(ours, cats)))
            })
    })
}

/// Whether an earlier exact table (`entry`, its dimensions' `categories`) may count the same
/// data as an exact table here: the same quantity, and a dimension of its name or of categories
/// that hold its, or that its hold (a dimension renamed, reordered or given a category since).
fn related(plan: &Plan, entry: &output::ExactTableEntry, categories: &[Vec<String>]) -> bool {
    let nested = |a: &[String], b: &[String]| a.iter().all(|c| b.contains(c));
    plan.exact_tables.iter().any(|t| {
        t.statistic() == entry.statistic
            && t.sum.as_ref().and_then(|s| s.column.clone()) == entry.column
            && t.dims.iter().any(|&d| {
                let dim = &plan.dimensions[d];
                entry.dimensions.iter().zip(categories).any(|(name, cats)| {
                    dim.name == *name
                        || nested(cats, &dim.categories)
                        || nested(&dim.categories, cats)
                })
            })
    })
}

/// The candidates' cells counted on this data: the earlier tables as this plan's exact tables,
/// in one pass for those an input of this release can count, and one pass per input for the
/// `extra` ones, where an input that cannot count a table (other columns or categories: other
/// data) gives `None` instead of an error. An input of the table's name that lacks one of its
/// columns holds other data too: `None`, with a note (the second list).
fn count_again(
    plan: &Plan,
    found: &[Candidate],
    options: &ReadOptions,
) -> Result<(Vec<Option<Counts>>, Vec<String>), Error> {
    let mut notes = Vec::new();
    let mut out: Vec<Option<Counts>> = (0..found.len()).map(|_| None).collect();
    // Tried on the chance it holds the same data: an input that cannot count it is other data.
    let tentative = |c: &Candidate| c.extra || !c.link.renamed.is_empty();
    let mut passes: Vec<(Vec<usize>, bool)> = vec![(
        (0..found.len())
            .filter(|&i| !tentative(&found[i]))
            .collect(),
        false,
    )];
    let mut tried_inputs: Vec<usize> = found
        .iter()
        .filter(|c| tentative(c))
        .map(|c| c.spec.input)
        .collect();
    tried_inputs.sort_unstable();
    tried_inputs.dedup();
    for input in tried_inputs {
        let members = (0..found.len())
            .filter(|&i| tentative(&found[i]) && found[i].spec.input == input)
            .collect();
        passes.push((members, true));
    }
    while let Some((members, tentative)) = passes.pop() {
        if members.is_empty() {
            continue;
        }
        let mut counting = plan.clone();
        counting.tables.clear();
        counting.exact_tables = members.iter().map(|&i| found[i].spec.clone()).collect();
        // Sums of one data are read by all their dimensions at once: tables of many
        // dimensions between them are counted one by one instead (each is at most 20,000 cells).
        if members.len() > 1 && finest_cells(plan, &counting.exact_tables) > MAX_FINEST_CELLS {
            passes.extend(members.iter().map(|&i| (vec![i], tentative)));
            continue;
        }
        let mut data = match input::read_all(&counting, options) {
            Ok(data) => data,
            // One table the input cannot count (another column) says nothing of the others.
            Err(e) if tentative && e.cannot_count() && members.len() > 1 => {
                passes.extend(members.iter().map(|&i| (vec![i], true)));
                continue;
            }
            Err(e) if tentative && e.cannot_count() => continue,
            // A column missing, or (a count of units) persons in several cells where the
            // earlier table had none: other data.
            Err(
                e @ (input::InputError::MissingColumn { .. }
                | input::InputError::UnitsInSeveralCells(_)),
            ) => {
                if members.len() > 1 {
                    passes.extend(members.iter().map(|&i| (vec![i], false)));
                } else {
                    let link = &found[members[0]].link;
                    notes.push(format!(
                        "note: exact table `{}` of release `{}` version {} was not compared with this release's data, which cannot count it ({e}): taken as other data",
                        link.table, link.release_id, link.version
                    ));
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for (e, &i) in members.iter().enumerate() {
            match data.take_exact_table(&counting, e) {
                Ok(counts) => out[i] = Some(counts),
                Err(_) if tentative => {}
                // Persons in several cells of a count of persons that had none: other data.
                Err(err @ input::InputError::UnitsInSeveralCells(_)) => {
                    let link = &found[i].link;
                    notes.push(format!(
                        "note: exact table `{}` of release `{}` version {} was not compared with this release's data, which cannot count it ({err}): taken as other data",
                        link.table, link.release_id, link.version
                    ));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok((out, notes))
}

/// The most combinations of categories by which the sums of one data among `tables` are read
/// together (see [`input::reading_plan`]).
fn finest_cells(plan: &Plan, tables: &[ExactTableSpec]) -> usize {
    let mut data: BTreeMap<(usize, Option<String>), Vec<usize>> = BTreeMap::new();
    for t in tables {
        if let Some(sum) = &t.sum {
            data.entry((t.input, sum.column.clone()))
                .or_default()
                .extend(&t.dims);
        }
    }
    data.into_values()
        .map(|mut dims| {
            dims.sort_unstable();
            dims.dedup();
            dims.iter().fold(1usize, |p, &d| {
                p.saturating_mul(plan.dimensions[d].categories.len())
            })
        })
        .max()
        .unwrap_or(0)
}

/// The exact tables' files, manifest entries and summary lines.
pub fn publish(
    plan: &Plan,
    protected: &[ExactTable],
    json: bool,
) -> (Files, Vec<ExactTableEntry>, String) {
    let mut files = Files::new();
    let mut entries = Vec::new();
    let mut lines = String::new();
    for (t, table) in plan.exact_tables.iter().zip(protected) {
        let published = ExactPublished {
            dimensions: plan.dimension_names(&t.dims),
            categories: plan.dimension_categories(&t.dims),
            margins: t.margins,
            total: &t.total_label,
            groups: t
                .groups
                .iter()
                .map(|g| g.iter().map(|g| g.name.as_str()).collect())
                .collect(),
            values: &table.values,
        };
        let mut names = vec![format!("{}.csv", t.name)];
        let csv = output::published_csv(
            published.to_csv(),
            &published.dimensions,
            &plan.presentation,
        );
        files.push((names[0].clone(), csv));
        if json {
            names.push(format!("{}.json", t.name));
            files.push((names[1].clone(), exact_json(&t.name, &published)));
        }
        lines.push_str(&summary_lines(t, table));
        entries.push(exact_entry(plan, (t, table), &published, names));
    }
    (files, entries, lines)
}

/// Exact table `t`'s lines in the release's summary: its row, how many of its cells were
/// suppressed and why, and, when the pattern is not proven minimal, a bound on every pattern's
/// cost (for the officer only: never published).
fn summary_lines(t: &ExactTableSpec, table: &ExactTable) -> String {
    let mut lines = String::new();
    let suppressed = table.values.iter().filter(|v| v.is_none()).count();
    let _ = writeln!(
        lines,
        "  {:<28} {:>6} {:>11}  {:<18} {:<22} {:>8}",
        t.name,
        table.values.len(),
        suppressed,
        "cell suppression",
        "none (not DP)",
        "exact"
    );
    if suppressed > 0 {
        let _ = writeln!(
            lines,
            "    {}: {} small or sensitive (primary) and {} secondary cells suppressed; the published files mark both alike",
            t.name,
            table.primary,
            suppressed - table.primary
        );
    }
    // The bound is the cost of a set of hidden cells (with `secondary = "value"`, a sum of their
    // values).
    if let Method::Completed { at_least } = table.method {
        let bound = match t.secondary {
            SecondaryObjective::Cells => format!("has at least {at_least} secondary cells"),
            SecondaryObjective::Value => {
                format!("hides at least {at_least} in value in its secondary cells")
            }
        };
        let _ = writeln!(
            lines,
            "    {}: not proven minimal (the exact method reached its limits, or the respondents' own contributions asked for more); every pattern that protects the small cells {bound} (not published)",
            t.name
        );
    }
    lines
}

/// Exact table `t`'s manifest entry: its files (`names`), what it counts, its rules, how its
/// secondary cells were chosen, and the attacker's interval of each suppressed cell.
fn exact_entry(
    plan: &Plan,
    (t, table): (&ExactTableSpec, &ExactTable),
    published: &ExactPublished,
    names: Vec<String>,
) -> ExactTableEntry {
    let intervals = table
        .intervals
        .iter()
        .enumerate()
        .filter_map(|(i, iv)| {
            iv.map(|iv| CellInterval {
                cell: published.labels(i).iter().map(|s| s.to_string()).collect(),
                lo: iv.lo,
                hi: iv.hi,
            })
        })
        .collect();
    ExactTableEntry {
        name: t.name.clone(),
        files: names,
        input: plan.inputs[t.input].name.clone(),
        statistic: t.statistic().into(),
        column: t.sum.as_ref().and_then(|s| s.column.clone()),
        dimensions: published.dimensions.iter().map(|d| d.to_string()).collect(),
        cells: table.values.len(),
        margins: t.margins,
        protection: "cell_suppression".into(),
        guarantee: format!(
            "not differentially private: {} {}; {} are suppressed, with further cells{} so that no combination of the published cells narrows it below its protection interval",
            t.values_phrase(&plan.privacy_unit),
            t.margins_phrase(),
            t.rules_phrase(&plan.privacy_unit),
            if t.zeros_secondary {
                " (zero cells among them, so a suppressed cell may be 0)"
            } else {
                ""
            }
        ),
        total_label: t.total_label.clone(),
        groups: t.groups.clone(), // absent from the JSON when there are none
        primary_rule: PrimaryRule {
            min_frequency: t.min_frequency,
            zeros_suppressed: t.zeros_primary,
            zeros_as_secondary: t.zeros_secondary,
            dominance: t.sum.as_ref().and_then(|s| s.dominance),
            p_percent: t.sum.as_ref().and_then(|s| s.p_percent),
        },
        interval_percent: t.interval_percent,
        secondary_objective: t.secondary.name().into(),
        secondary_method: match table.method {
            Method::Optimal => OPTIMAL.into(),
            Method::Completed { .. } => COMPLETED.into(),
            Method::Heuristic => HEURISTIC.into(),
        },
        cells_suppressed: table.values.iter().filter(|v| v.is_none()).count(),
        attacker: ATTACKER.into(),
        audit: AUDIT.into(),
        intervals,
    }
}

/// `{"table", "columns", "rows"}` as the DP tables' JSON, suppressed values `null`.
fn exact_json(name: &str, t: &ExactPublished) -> Vec<u8> {
    let mut columns: Vec<&str> = t.dimensions.clone();
    columns.extend(["value", "status", "protection"]);
    let rows: Vec<serde_json::Value> = t
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut row: Vec<serde_json::Value> = t.labels(i).into_iter().map(Into::into).collect();
            row.push(v.map_or(serde_json::Value::Null, Into::into));
            row.push(
                if v.is_some() {
                    "published"
                } else {
                    "suppressed"
                }
                .into(),
            );
            row.push(crate::output::EXACT_PROTECTION.into());
            serde_json::Value::Array(row)
        })
        .collect();
    let doc = serde_json::json!({ "table": name, "columns": columns, "rows": rows });
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("serialising to memory");
    bytes.push(b'\n');
    bytes
}
