//! Validation of exact tables: `[[table]]` sections with `protection = "suppression"`, published
//! with their exact values and protected by primary and secondary cell suppression (not
//! differentially private). They spend no budget, so every field of a DP table's privacy
//! (cost, mechanism, bounds, thresholds) is refused here, with the reason.

use std::collections::BTreeSet;

use super::fields::{Problems, TableProblems, check_name, input_of, total_label_of};
use super::file::{ExactTableSection, GroupSection, PrimarySection, Refused};
use super::names::{did_you_mean, nfc};
use super::plan::{
    DEFAULT_TOTAL, Dimension, Dominance, ExactSum, ExactTableSpec, Group, InputKind, InputSpec,
    MAX_DOMINANCE_N, SecondaryObjective, no_groups,
};

/// The most cells (with margins) an exact table may have: secondary suppression and the
/// attacker's audit solve LPs over all of them (a 250 x 20 table, 5,271 cells, takes about 3 s;
/// a three-way 40 x 12 x 4, 2,665 cells, minutes; BENCHMARKS.md), so a larger table is refused rather than left running for hours.
pub const MAX_EXACT_CELLS: usize = 20_000;

/// The most finest cells (a category of every dimension a data's exact tables are tabulated by)
/// whose respondents are each checked as an insider. The exact sums and counts of rows of one
/// data are also read by all those dimensions at once, so a policy beyond it is refused.
pub const MAX_FINEST_CELLS: usize = 1_000_000;

/// Refuses exact sums and counts of rows of one data (input and column) whose dimensions
/// together have more than [`MAX_FINEST_CELLS`] combinations of categories.
pub fn check_finest_cells(
    tables: &[ExactTableSpec],
    dimensions: &[Dimension],
    problems: &mut Problems,
) {
    let mut seen: Vec<(usize, Option<String>)> = Vec::new();
    for t in tables {
        let Some(sum) = &t.sum else { continue };
        let data = (t.input, sum.column.clone());
        if seen.contains(&data) {
            continue;
        }
        let of_data: Vec<&ExactTableSpec> = tables
            .iter()
            .filter(|u| {
                u.input == t.input && u.sum.as_ref().map(|s| &s.column) == Some(&sum.column)
            })
            .collect();
        let mut dims: Vec<usize> = of_data.iter().flat_map(|u| u.dims.clone()).collect();
        dims.sort_unstable();
        dims.dedup();
        let finest = dims.iter().try_fold(1usize, |p, &d| {
            p.checked_mul(dimensions[d].categories.len())
        });
        if finest.is_none_or(|f| f > MAX_FINEST_CELLS) {
            problems.add(
                &format!("table `{}`", t.name),
                format!(
                    "exact tables {} together tabulate their data by [{}], more than {MAX_FINEST_CELLS} combinations of categories: too many for safestat to read each person's sum in each combination and check each combination's respondents, who know their own contributions, against the suppression pattern. Publish fewer dimensions, or some of these tables with differential privacy",
                    of_data
                        .iter()
                        .map(|u| format!("`{}`", u.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                    dims.iter()
                        .map(|&d| dimensions[d].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        seen.push(data);
    }
}

/// Why a count of units and a count of rows of the same data cannot be published exactly side
/// by side: a cell's rows are at least its units, so a published count of rows bounds a hidden
/// count of units from above (and a cell with rows has a unit), which the attacker's model does
/// not state.
pub const UNITS_BESIDE_ROWS: &str = "count the same people: a cell's rows are at least its persons, so a published count of rows bounds a suppressed count of persons (and the other way), which safestat cannot yet state in the attacker's model, so the pair cannot be proven safe. Publish one of them exactly and the other with differential privacy, or from other data";

/// Refuses an exact count of units beside an exact count of rows of the same input.
pub fn check_units_beside_rows(tables: &[ExactTableSpec], problems: &mut Problems) {
    for t in tables.iter().filter(|t| t.statistic() == "count_units") {
        if let Some(u) = tables
            .iter()
            .find(|u| u.input == t.input && u.statistic() == "count_rows")
        {
            problems.add(
                &format!("table `{}`", t.name),
                format!(
                    "exact tables `{}` (count_units) and `{}` (count_rows) {UNITS_BESIDE_ROWS}",
                    t.name, u.name
                ),
            );
        }
    }
}

/// Whether tables of one data whose dimensions are `sets` can be protected by linking them
/// through their shared margins alone: when their dimension sets form an acyclic hypergraph
/// (Graham's reduction leaves at most one set), any tables that agree on their shared margins
/// come from some table of every dimension, of whole numbers of 0 or more, so the attacker's model
/// of shared margins is exact. Region x gender, region x kind and gender x kind form a cycle:
/// the finest cells (region x gender x kind) cannot be negative, which tells an attacker more
/// than the three tables' margins do.
pub fn margins_suffice(sets: &[Vec<usize>]) -> bool {
    let mut sets: Vec<Vec<usize>> = sets
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect();
    loop {
        let before: usize = sets.iter().map(Vec::len).sum::<usize>() + sets.len();
        // A dimension in one set only goes.
        let all: Vec<usize> = sets.iter().flatten().copied().collect();
        for set in &mut sets {
            set.retain(|d| all.iter().filter(|&&e| e == *d).count() > 1);
        }
        // A set inside another goes.
        let mut i = 0;
        while i < sets.len() {
            let inside = (0..sets.len()).any(|j| {
                j != i
                    && sets[i].iter().all(|d| sets[j].contains(d))
                    && (sets[i] != sets[j] || j < i)
            });
            if inside {
                sets.remove(i);
            } else {
                i += 1;
            }
        }
        let after: usize = sets.iter().map(Vec::len).sum::<usize>() + sets.len();
        if sets.len() <= 1 {
            return true;
        }
        if after == before {
            return false;
        }
    }
}

/// What is said of exact tables of one data whose dimensions form a cycle ([`margins_suffice`]).
pub const CYCLE: &str = "tabulate the same data by dimensions that form a cycle (each pair shares a dimension the third lacks): whole tables of every dimension at once, whose cells cannot be negative, tell an attacker more than these tables' shared margins, which is all safestat's attacker's model links them by, so the tables cannot be proven safe together. Publish fewer of them exactly (the others with differential privacy), or one table by all their dimensions";

/// Refuses the exact tables of one input and quantity whose dimensions form a cycle.
pub fn check_cycles(tables: &[ExactTableSpec], problems: &mut Problems) {
    let mut seen: Vec<(usize, &str, Option<&str>)> = Vec::new();
    for t in tables {
        let key = (
            t.input,
            t.statistic(),
            t.sum.as_ref().and_then(|s| s.column.as_deref()),
        );
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let of_data: Vec<&ExactTableSpec> = tables
            .iter()
            .filter(|u| {
                (
                    u.input,
                    u.statistic(),
                    u.sum.as_ref().and_then(|s| s.column.as_deref()),
                ) == key
            })
            .collect();
        let sets: Vec<Vec<usize>> = of_data.iter().map(|u| u.dims.clone()).collect();
        if !margins_suffice(&sets) {
            problems.add(
                &format!("table `{}`", t.name),
                format!(
                    "exact tables {} {CYCLE}",
                    of_data
                        .iter()
                        .map(|u| format!("`{}`", u.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
}

/// A table that publishes no margins (`margins = false`) has no total to label and no group's
/// subtotal.
fn refuse_without_margins(total_label: &str, groups: &[Vec<Group>], at: &mut TableProblems) {
    if total_label != DEFAULT_TOTAL {
        at.fail(
            "total_label",
            "labels the margins, and this table publishes none (`margins = false`)".to_string(),
        );
    }
    if !no_groups(groups) {
        at.fail(
            "groups",
            "a group's subtotal is a margin, and this table publishes none (`margins = false`)"
                .to_string(),
        );
    }
}

/// Validates one exact table's section (with the fields its kind refused); `None` when it has
/// problems (all reported).
pub(super) fn exact_table(
    (section, refused): (ExactTableSection, Vec<Refused>),
    inputs: &[InputSpec],
    dimensions: &[Dimension],
    privacy_unit: &str,
    names: &mut BTreeSet<String>,
    problems: &mut Problems,
) -> Option<ExactTableSpec> {
    let label = if section.name.is_empty() {
        "[[table]] (exact)".to_string()
    } else {
        format!("table `{}`", section.name)
    };
    let mut at = TableProblems {
        problems,
        label,
        ok: true,
    };
    for (field, message) in refused {
        at.fail(field, message);
    }
    let ExactTableSection {
        name,
        input,
        statistic,
        by,
        column,
        total_label,
        margins,
        primary,
        interval_percent,
        secondary,
        groups,
    } = section;
    check_name(&name, names, &mut at);
    let input_index = input_of(&input, inputs, &mut at);
    let breakdown = input_index.is_some_and(|i| inputs[i].kind != InputKind::Microdata);
    let (summing, column) = quantity(&statistic, column, (breakdown, privacy_unit, &by), &mut at);
    let dims = exact_dimensions(
        by,
        input_index.map(|i| &inputs[i].kind),
        dimensions,
        privacy_unit,
        &mut at,
    );
    let rules = primary_rules(primary, summing, breakdown, &mut at);
    let interval_percent = interval_percent_of(interval_percent, &mut at);
    let secondary = secondary_of(secondary.as_deref(), &mut at);
    let margins = margins.unwrap_or(true);
    let total_label = total_label_of(total_label, &dims, dimensions, &mut at);
    let groups = groups_of(
        groups.unwrap_or_default(),
        (&dims, dimensions),
        &total_label,
        &mut at,
    );
    if !margins {
        refuse_without_margins(&total_label, &groups, &mut at);
    }
    let (min_frequency, zeros_primary, zeros_secondary, dominance, p_percent) = rules;
    match (at.ok, input_index) {
        (true, Some(input)) => Some(ExactTableSpec {
            name,
            input,
            dims,
            margins,
            sum: summing.then_some(ExactSum {
                column,
                dominance,
                p_percent,
            }),
            min_frequency,
            zeros_primary,
            zeros_secondary,
            interval_percent,
            secondary,
            total_label,
            groups,
        }),
        _ => None,
    }
}

/// What an exact table adds up: `(summing, column)`, a count of units (not summing), a count of
/// rows (summing 1 per row) or a sum of a column; `count_rows` and `sum` need each unit's rows.
fn quantity(
    statistic: &str,
    column: Option<String>,
    (breakdown, privacy_unit, by): (bool, &str, &[String]),
    at: &mut TableProblems,
) -> (bool, Option<String>) {
    let (summing, rows) = match statistic {
        "count_units" => (false, false),
        "count_rows" => (true, true),
        "sum" => (true, false),
        other => {
            at.fail(
                "statistic",
                format!(
                    "an exact table counts privacy units (`count_units`) or rows (`count_rows`), or sums a column (`sum`); `{other}` is none of them{}",
                    did_you_mean(other, ["count_units", "count_rows", "sum"])
                ),
            );
            (false, false)
        }
    };
    let column = column.map(nfc);
    if summing && breakdown {
        at.fail(
            "statistic",
            format!("a pre-counted breakdown has no unit's rows or contributions (`{statistic}`): an exact table of it counts (`count_units`), protected by the frequency rule alone"),
        );
    } else if summing && !rows && column.is_none() {
        at.fail(
            "column",
            "an exact sum needs its column: `column = \"amount\"` (whole numbers, 0 or more)"
                .to_string(),
        );
    } else if (!summing || rows) && column.is_some() {
        at.fail(
            "column",
            format!("a count (`{statistic}`) sums no column; use `statistic = \"sum\"` to sum it"),
        );
    }
    if let Some(c) = column
        .as_ref()
        .filter(|c| c.as_str() == privacy_unit || by.contains(c))
    {
        at.fail(
            "column",
            format!("`{c}` is the privacy unit or a dimension; sum a column of values"),
        );
    }
    (summing, column)
}

/// The `by` columns as indices into the plan's dimensions, and the table's size with its margins
/// within [`MAX_EXACT_CELLS`].
fn exact_dimensions(
    by: Vec<String>,
    input_kind: Option<&InputKind>,
    dimensions: &[Dimension],
    privacy_unit: &str,
    at: &mut TableProblems,
) -> Vec<usize> {
    let mut dims = Vec::new();
    for b in by.into_iter().map(nfc) {
        if b == privacy_unit {
            at.fail("by", format!("`{b}` is the privacy unit"));
            continue;
        }
        if let Some(InputKind::Aggregated { count_column, .. }) = input_kind
            && b == *count_column
        {
            at.fail("by", format!("`{b}` is the input's count column"));
            continue;
        }
        match dimensions.iter().position(|d| d.name == b) {
            Some(d) if dims.contains(&d) => at.fail("by", format!("column `{b}` is listed twice")),
            Some(d) => dims.push(d),
            None => at.fail(
                "by",
                format!(
                    "column `{b}` has no declared categories; add `{b} = [...]` under [categories]{}",
                    did_you_mean(&b, dimensions.iter().map(|d| d.name.as_str()))
                ),
            ),
        }
    }
    if dims.is_empty() {
        at.fail(
            "by",
            "an exact table needs at least one dimension (a grand total alone is one cell)"
                .to_string(),
        );
    }
    let cells = dims.iter().try_fold(1usize, |n, &d| {
        n.checked_mul(dimensions[d].categories.len() + 1)
    });
    if cells.is_none_or(|n| n > MAX_EXACT_CELLS) {
        at.fail(
            "by",
            format!(
                "with its margins the table would have {} cells, more than the {MAX_EXACT_CELLS} an exact table may have (cell suppression solves LPs over every cell); split it or coarsen its categories",
                cells.map_or("too many".to_string(), |n| n.to_string())
            ),
        );
    }
    dims
}

/// The primary rules: `(min_frequency, zeros_primary, zeros_secondary, dominance, p_percent)`.
fn primary_rules(
    primary: Option<PrimarySection>,
    summing: bool,
    breakdown: bool,
    at: &mut TableProblems,
) -> (i64, bool, bool, Option<Dominance>, Option<u32>) {
    let (dominance, p_percent) = primary.as_ref().map_or((None, None), |p| {
        sensitivity_rules(p, summing, breakdown, at)
    });
    let zeros_secondary = primary
        .as_ref()
        .and_then(|p| p.zeros_as_secondary)
        .unwrap_or(false);
    let (min_frequency, zeros_primary) = match primary {
        Some(PrimarySection {
            min_frequency: Some(n),
            zeros,
            ..
        }) if n >= 2 => (n, zeros.unwrap_or(false)),
        Some(PrimarySection {
            min_frequency: Some(n),
            ..
        }) => {
            at.fail(
                "primary",
                format!(
                    "`min_frequency = {n}` protects nobody; give 2 or more (3 and 5 are common)"
                ),
            );
            (0, false)
        }
        _ => {
            at.fail(
                "primary",
                "an exact table needs its primary rule: `primary = { min_frequency = 5 }` (a cell of fewer privacy units is hidden; add `zeros = true` to hide zero cells too)".to_string(),
            );
            (0, false)
        }
    };
    (
        min_frequency,
        zeros_primary,
        zeros_secondary,
        dominance,
        p_percent,
    )
}

/// How far an attacker's interval for a hidden cell must reach, in percent of its value.
fn interval_percent_of(interval_percent: Option<f64>, at: &mut TableProblems) -> f64 {
    match interval_percent {
        Some(p) if p.is_finite() && (0.0..=100.0).contains(&p) => p,
        Some(p) => {
            at.fail(
                "interval_percent",
                format!("must be between 0 and 100, got `{p}`"),
            );
            0.0
        }
        None => {
            at.fail(
                "interval_percent",
                "say how far an attacker's interval for a hidden small cell must reach, in percent of its value: `interval_percent = 20` (at least 1 either way whatever the percentage)".to_string(),
            );
            0.0
        }
    }
}

/// What secondary suppression minimises (default: cells).
fn secondary_of(secondary: Option<&str>, at: &mut TableProblems) -> SecondaryObjective {
    match secondary {
        None | Some("cells") => SecondaryObjective::Cells,
        Some("value") => SecondaryObjective::Value,
        Some(other) => {
            at.fail(
                "secondary",
                format!(
                    "`{other}`: secondary suppression minimises `cells` (how many are hidden) or `value` (the total hidden){}",
                    did_you_mean(other, ["cells", "value"])
                ),
            );
            SecondaryObjective::Cells
        }
    }
}

/// Per dimension (in `by` order), its groups of categories, each checked against the dimension's
/// categories, the total's label and the other groups, and the table's size with them.
fn groups_of(
    sections: Vec<GroupSection>,
    (dims, dimensions): (&[usize], &[Dimension]),
    total_label: &str,
    at: &mut TableProblems,
) -> Vec<Vec<Group>> {
    let mut grouped: Vec<Vec<Group>> = vec![Vec::new(); dims.len()];
    for (k, g) in sections.into_iter().enumerate() {
        let field = format!("groups[{k}]");
        let name = nfc(g.name);
        let Some(j) = dims
            .iter()
            .position(|&d| dimensions[d].name == nfc(g.dimension.clone()))
        else {
            at.fail(
                &field,
                format!(
                    "`{}` is not one of this table's dimensions (`by`)",
                    g.dimension
                ),
            );
            continue;
        };
        let members: Vec<String> = g.categories.into_iter().map(nfc).collect();
        check_group(
            &field,
            (&name, &members),
            &dimensions[dims[j]],
            (total_label, &grouped[j]),
            at,
        );
        grouped[j].push(Group {
            name,
            categories: members,
        });
    }
    let with_groups = dims.iter().zip(&grouped).try_fold(1usize, |n, (&d, g)| {
        n.checked_mul(dimensions[d].categories.len() + g.len() + 1)
    });
    if !no_groups(&grouped) && with_groups.is_none_or(|n| n > MAX_EXACT_CELLS) {
        at.fail(
            "groups",
            format!(
                "with its margins and subtotals the table would have {} cells, more than the {MAX_EXACT_CELLS} an exact table may have",
                with_groups.map_or("too many".to_string(), |n| n.to_string())
            ),
        );
    }
    grouped
}

/// One group `(name, members)` of dimension `dim`: a name that is no category, total or other
/// group's, members that are the dimension's categories once each, and not another group's
/// members again.
fn check_group(
    field: &str,
    (name, members): (&str, &[String]),
    dim: &Dimension,
    (total_label, others): (&str, &[Group]),
    at: &mut TableProblems,
) {
    if name.trim().is_empty() || name.trim() != name {
        at.fail(
            field,
            format!("`{name}` cannot name a group: give a word, without surrounding spaces"),
        );
    } else if name == total_label || dim.categories.iter().any(|c| c == name) {
        at.fail(
            field,
            format!(
                "`{name}` is already a category or the total's label of `{}`: its rows could not be told apart",
                dim.name
            ),
        );
    } else if others.iter().any(|x| x.name == name) {
        at.fail(
            field,
            format!("`{}` has two groups named `{name}`", dim.name),
        );
    }
    if members.is_empty() {
        at.fail(field, format!("group `{name}` has no categories"));
    }
    for (i, m) in members.iter().enumerate() {
        if !dim.categories.contains(m) {
            at.fail(
                field,
                format!(
                    "`{m}` is not a category of `{}`{}",
                    dim.name,
                    did_you_mean(m, dim.categories.iter().map(String::as_str))
                ),
            );
        } else if members[..i].contains(m) {
            at.fail(field, format!("group `{name}` lists `{m}` twice"));
        }
    }
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    if let Some(same) = others.iter().find(|x| {
        let mut theirs = x.categories.clone();
        theirs.sort_unstable();
        theirs == sorted
    }) {
        at.fail(
            field,
            format!(
                "group `{name}` has the same categories as group `{}`: one subtotal, published twice",
                same.name
            ),
        );
    }
}

/// The primary rules of a sum that need each unit's contribution: (n,k)-dominance and p%.
fn sensitivity_rules(
    primary: &PrimarySection,
    summing: bool,
    breakdown: bool,
    at: &mut TableProblems,
) -> (Option<Dominance>, Option<u32>) {
    if primary.dominance.is_none() && primary.p_percent.is_none() {
        return (None, None);
    }
    if breakdown || !summing {
        let why = if breakdown {
            "a pre-counted breakdown has no unit's contributions: only the frequency rule (`min_frequency`) applies"
        } else {
            "the dominance and p% rules are for sums and counts of rows (`statistic = \"sum\"` or `\"count_rows\"`); a count of units is protected by `min_frequency`"
        };
        at.fail("primary", why.to_string());
        return (None, None);
    }
    let dominance = primary.dominance.as_ref().and_then(|d| match (d.n, d.k) {
        (Some(n), Some(k)) if (1..=MAX_DOMINANCE_N).contains(&n) && (1..=99).contains(&k) => {
            Some(Dominance {
                n: n as u32,
                k: k as u32,
            })
        }
        (n, k) => {
            at.fail(
                "primary",
                format!(
                    "`dominance` needs `n` from 1 to {MAX_DOMINANCE_N} units and `k` from 1 to 99 percent (`{{ n = 1, k = 80 }}`: hidden when the largest unit makes more than 80% of the cell), got n = {}, k = {}",
                    n.map_or("none".into(), |n| n.to_string()),
                    k.map_or("none".into(), |k| k.to_string())
                ),
            );
            None
        }
    });
    let p_percent = primary.p_percent.and_then(|p| {
        if (1..=100).contains(&p) {
            Some(p as u32)
        } else {
            at.fail(
                "primary",
                format!("`p_percent` must be from 1 to 100, got {p} (10 is common)"),
            );
            None
        }
    });
    (dominance, p_percent)
}

#[cfg(test)]
mod tests {
    use super::margins_suffice;

    /// Known cases: a triangle and a
    /// square are cycles, anything a single table covers, chains and stars are not.
    #[test]
    fn cycles_of_dimensions_are_found() {
        let (r, g, k, a) = (0, 1, 2, 3);
        assert!(!margins_suffice(&[vec![r, g], vec![r, k], vec![g, k]]));
        assert!(!margins_suffice(&[
            vec![g, r],
            vec![r, g],
            vec![r, k],
            vec![k, g]
        ]));
        assert!(!margins_suffice(&[
            vec![r, g],
            vec![g, k],
            vec![k, a],
            vec![a, r]
        ]));
        assert!(margins_suffice(&[
            vec![r, g],
            vec![r, k],
            vec![g, k],
            vec![r, g, k]
        ]));
        assert!(margins_suffice(&[vec![r, g], vec![g, k], vec![k, a]]));
        assert!(margins_suffice(&[vec![r, g], vec![r, k], vec![r, a]]));
        assert!(margins_suffice(&[vec![r], vec![r, g], vec![g]]));
        assert!(margins_suffice(&[vec![r, g], vec![g, r]]));
        assert!(margins_suffice(&[vec![r, g, k], vec![k, a], vec![g, k, a]]));
    }
}
