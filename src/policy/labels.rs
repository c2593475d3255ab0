//! Validation of how a release is presented: `[publication]` and `[labels]` become a
//! [`Presentation`], and the labels a workbook or a labelled CSV shows are checked distinct.

use std::collections::BTreeMap;

use super::fields::Problems;
use super::file::{LabelSection, PublicationSection};
use super::names::{did_you_mean, nfc};
use super::plan::Dimension;
use super::presentation::{DimensionLabels, LANGUAGES, Presentation};

/// The columns a table's CSV has besides its dimensions (the margins' and shares' columns are
/// named after the confidence: `moe95`, `share_pct_moe95`...).
const CSV_COLUMNS: [&str; 6] = [
    "value",
    "status",
    "protection",
    "flag",
    "share_pct",
    "contributors",
];

/// A table as its CSV shows it: its name, its dimensions (indices), its total's label and, per
/// dimension, the groups whose subtotals it publishes.
pub(super) type CsvTable<'a> = (&'a str, &'a [usize], &'a str, Vec<Vec<&'a str>>);

/// A dimension's shown categories and groups (of every table) are distinct: two rows of a
/// workbook, or two categories of a labelled CSV (read back with one label-to-code map per
/// dimension), never show alike.
pub(super) fn check_labels_distinct(
    p: &Presentation,
    dimensions: &[Dimension],
    tables: &[CsvTable],
    problems: &mut Problems,
) {
    for (d, dim) in dimensions.iter().enumerate() {
        let mut codes: Vec<&str> = dim.categories.iter().map(String::as_str).collect();
        for (_, dims, _, groups) in tables {
            if let Some(k) = dims.iter().position(|&x| x == d) {
                for &g in groups.get(k).into_iter().flatten() {
                    if !codes.contains(&g) {
                        codes.push(g);
                    }
                }
            }
        }
        let mut shown: Vec<(&str, &str)> = Vec::new();
        for code in codes {
            let label = p.category(&dim.name, code);
            if let Some((other, _)) = shown.iter().find(|(_, l)| *l == label) {
                problems.add(
                    &format!("[labels.{}]", dim.name),
                    format!(
                        "`{}` category `{code}` would show as `{label}`, as `{other}` does; give them distinct labels",
                        dim.name
                    ),
                );
            }
            shown.push((code, label));
        }
    }
}

/// With `csv_labels = true` every CSV must still read back to codes (`audit`, `verify` and
/// `report` read them): no category shows as the total label of a table by it, and a table's
/// dimensions' shown names are distinct and none is another column's name.
pub(super) fn check_csv_labels(
    p: &Presentation,
    dimensions: &[Dimension],
    tables: &[CsvTable],
    problems: &mut Problems,
) {
    for (name, dims, total, groups) in tables {
        let at = format!("[publication] field `csv_labels` (table `{name}`)");
        let mut headers: Vec<&str> = Vec::new();
        for (k, &d) in dims.iter().enumerate() {
            let dim = &dimensions[d];
            let header = p.dimension(&dim.name);
            let reserved = CSV_COLUMNS.contains(&header)
                || header.starts_with("moe")
                || header.contains("_moe");
            if reserved || headers.contains(&header) {
                problems.add(
                    &at,
                    format!(
                        "dimension `{}` would be headed `{header}`, which {} in its CSV; give it another label",
                        dim.name,
                        if reserved { "is another column's name" } else { "heads another dimension" }
                    ),
                );
            }
            headers.push(header);
            let codes = dim
                .categories
                .iter()
                .map(String::as_str)
                .chain(groups.get(k).into_iter().flatten().copied());
            for code in codes {
                if p.category(&dim.name, code) == *total {
                    problems.add(
                        &at,
                        format!(
                            "`{}` category `{code}` would show as `{total}`, as the table's total does; give it another label",
                            dim.name
                        ),
                    );
                }
            }
        }
    }
}

/// The free text of `[publication]`: source, organisation, contact, period.
type FreeText = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// `[publication]` and `[labels]`; table titles and units are added by the table sections.
/// `groups`: `(dimension, name)` of every group an exact table declares, whose subtotals may be
/// labelled like categories.
pub(super) fn presentation_sections(
    publication: PublicationSection,
    labels: BTreeMap<String, LabelSection>,
    (dimensions, privacy_unit): (&[Dimension], &str),
    groups: &std::collections::BTreeSet<(String, String)>,
    problems: &mut Problems,
) -> Presentation {
    let mut p = publication_section(publication, problems);
    for (name, section) in labels {
        label_section(
            &mut p,
            (nfc(name), section),
            (dimensions, privacy_unit),
            groups,
            problems,
        );
    }
    p
}

/// `[publication]`: the language, the marker of a hidden cell, the CSVs' byte-order mark and
/// labels, the share above which a margin flags a value, where totals go, and the free text.
fn publication_section(publication: PublicationSection, problems: &mut Problems) -> Presentation {
    let PublicationSection {
        language,
        suppressed_marker,
        csv_bom,
        csv_labels,
        unreliable_above,
        totals,
        source,
        organisation,
        contact,
        period,
        notes,
        table_numbers,
    } = publication;
    let mut p = Presentation::default();
    if let Some(l) = language {
        if LANGUAGES.contains(&l.as_str()) {
            p.language = l;
        } else {
            problems.add(
                "[publication] field `language`",
                format!(
                    "`{l}` is not a language safestat writes; use `ko` or `en`{}",
                    did_you_mean(&l, LANGUAGES)
                ),
            );
        }
    }
    if let Some(m) = suppressed_marker {
        if m.trim().is_empty() || m.chars().any(char::is_numeric) {
            problems.add(
                "[publication] field `suppressed_marker`",
                format!("`{m}` must be visible text without a digit, which could be read as a number (e.g. `x`, `-`, `…`)"),
            );
        } else {
            p.suppressed_marker = m;
        }
    }
    // Korean Excel opens a CSV without a byte-order mark as CP949 (Hangul as mojibake): a
    // Korean publication's CSVs carry one unless the policy says otherwise.
    p.csv_bom = csv_bom.unwrap_or(p.language == "ko");
    p.csv_labels = csv_labels.unwrap_or(false);
    match unreliable_above {
        Some(share) if !(share.is_finite() && share > 0.0) => problems.add(
            "[publication] field `unreliable_above`",
            format!("must be a positive share of the value (0.5 flags a margin above half the value), not `{share}`"),
        ),
        Some(share) => p.unreliable_above = share,
        None => {}
    }
    match totals.as_deref() {
        None | Some("first") => p.totals_first = true,
        Some("last") => p.totals_first = false,
        Some(other) => problems.add(
            "[publication] field `totals`",
            format!(
                "`{other}`: a cross-table's totals go `first` (before the categories, as Korean statistical tables print them) or `last`{}",
                did_you_mean(other, ["first", "last"])
            ),
        ),
    }
    free_text(
        &mut p,
        (source, organisation, contact, period),
        notes,
        problems,
    );
    p.table_numbers = table_numbers.unwrap_or(true);
    p
}

/// The publication's free text (source, organisation, contact, period) and notes, shown as
/// given; an empty one is a mistake, not a wish for nothing.
fn free_text(
    p: &mut Presentation,
    (source, organisation, contact, period): FreeText,
    notes: Option<Vec<String>>,
    problems: &mut Problems,
) {
    for (field, value) in [
        ("source", &source),
        ("organisation", &organisation),
        ("contact", &contact),
        ("period", &period),
    ] {
        if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
            problems.add(
                &format!("[publication] field `{field}`"),
                "is empty: give the text, or leave the field out".to_string(),
            );
        }
    }
    let notes = notes.unwrap_or_default();
    if let Some(k) = notes.iter().position(|n| n.trim().is_empty()) {
        problems.add(
            "[publication] field `notes`",
            format!("note {} is empty", k + 1),
        );
    }
    (p.source, p.organisation, p.contact, p.period, p.notes) =
        (source, organisation, contact, period, notes);
}

/// One `[labels.NAME]`: the privacy unit's label, or a dimension's label and its categories'
/// (declared categories, or groups' subtotals).
fn label_section(
    p: &mut Presentation,
    (name, section): (String, LabelSection),
    (dimensions, privacy_unit): (&[Dimension], &str),
    groups: &std::collections::BTreeSet<(String, String)>,
    problems: &mut Problems,
) {
    let at = format!("[labels.{name}]");
    if name == privacy_unit && !dimensions.iter().any(|d| d.name == name) {
        // The privacy unit's name in the reader's words: a label, no categories.
        match (section.label, section.categories.is_empty()) {
            (Some(label), true) if !label.trim().is_empty() => {
                p.privacy_unit_label = Some(label);
            }
            (_, false) => problems.add(
                &format!("{at} field `categories`"),
                format!("`{name}` is the privacy unit, whose values are never published: give it a `label` only"),
            ),
            _ => problems.add(
                &format!("{at} field `label`"),
                format!("the privacy unit `{name}` needs a `label` to be shown by (e.g. `label = \"피해자\"`)"),
            ),
        }
        return;
    }
    let Some(dim) = dimensions.iter().find(|d| d.name == name) else {
        problems.add(
            &at,
            format!(
                "`{name}` is not a dimension with declared [categories] nor the privacy unit `{privacy_unit}`{}",
                did_you_mean(&name, dimensions.iter().map(|d| d.name.as_str()))
            ),
        );
        return;
    };
    let LabelSection { label, categories } = section;
    let mut labels = DimensionLabels {
        label,
        categories: BTreeMap::new(),
    };
    for (category, text) in categories {
        let category = nfc(category);
        let group = groups.contains(&(name.clone(), category.clone()));
        if !dim.categories.contains(&category) && !group {
            problems.add(
                &format!("{at} field `categories`"),
                format!(
                    "`{category}` is not a declared category of `{name}`{}",
                    did_you_mean(&category, dim.categories.iter().map(String::as_str))
                ),
            );
            continue;
        }
        labels.categories.insert(category, text);
    }
    p.dimensions.insert(name, labels);
}
