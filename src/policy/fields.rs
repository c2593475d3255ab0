//! What the validation of every section shares: where problems are collected ([`Problems`],
//! [`TableProblems`]), the `[defaults]` the tables fall back on, and the field kinds that both
//! kinds of table check alike (names, inputs, mechanisms, costs, a margin's label). Below
//! `validate`, `table`, `exact` and `labels`, so that none of them imports another's helpers.

use std::collections::BTreeSet;

use super::file::CostSection;
use super::names::{SAFE_NAME_RULE, did_you_mean, is_safe_name, nfc};
use super::plan::{DEFAULT_TOTAL, Dimension, InputSpec};
use crate::privacy::{Cost, Mechanism, positive_finite};

/// Problems found in a policy, each prefixed by where it is.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<String>);

impl Problems {
    pub(super) fn add(&mut self, at: &str, message: String) {
        self.0.push(format!("{at}: {message}"));
    }
}

/// `[defaults]`, as the tables fall back on them.
#[derive(Clone, Copy)]
pub(super) struct Defaults {
    pub mechanism: Option<Mechanism>,
    pub suppress_below: Option<i64>,
    pub confidence: Option<f64>,
    pub consistent: Option<bool>,
}

/// The problems of one table: each is placed at `table `name`, field `f``, and any of them
/// makes the table invalid.
pub(super) struct TableProblems<'a> {
    pub(super) problems: &'a mut Problems,
    pub(super) label: String,
    pub(super) ok: bool,
}

impl TableProblems<'_> {
    pub(super) fn fail(&mut self, field: &str, message: String) {
        self.ok = false;
        let at = if field.is_empty() {
            self.label.clone()
        } else {
            format!("{}, field `{field}`", self.label)
        };
        self.problems.add(&at, message);
    }

    /// A field that must not be given for this statistic.
    pub(super) fn forbid(&mut self, field: &str, present: bool, why: &str) {
        if present {
            self.fail(field, format!("does not apply here: {why}"));
        }
    }
}

pub(super) fn check_name(name: &str, names: &mut BTreeSet<String>, at: &mut TableProblems) {
    if !is_safe_name(name) {
        at.fail(
            "name",
            format!("`{name}` cannot name an output file; {SAFE_NAME_RULE}"),
        );
    } else if !names.insert(name.to_ascii_lowercase()) {
        at.fail("name", format!("the table name `{name}` is used twice"));
    }
}

pub(super) fn input_of(input: &str, inputs: &[InputSpec], at: &mut TableProblems) -> Option<usize> {
    let index = inputs.iter().position(|i| i.name == input);
    if index.is_none() {
        let known: Vec<_> = inputs.iter().map(|i| format!("`{}`", i.name)).collect();
        at.fail(
            "input",
            format!(
                "unknown input `{input}`; the policy declares {}{}",
                known.join(", "),
                did_you_mean(input, inputs.iter().map(|i| i.name.as_str()))
            ),
        );
    }
    index
}

pub(super) fn parse_mechanism(m: &str) -> Result<Mechanism, String> {
    match m {
        "laplace" => Ok(Mechanism::Laplace),
        "gaussian" => Ok(Mechanism::Gaussian),
        other => Err(format!(
            "unknown mechanism `{other}`; use `laplace` (discrete Laplace, pure DP) or `gaussian` (discrete Gaussian, zCDP){}",
            did_you_mean(other, ["laplace", "gaussian"])
        )),
    }
}

pub(super) fn cost_from_section(c: &CostSection) -> Result<Cost, String> {
    let CostSection { epsilon, rho } = *c;
    match (epsilon, rho) {
        (Some(e), None) => positive_finite("epsilon", e).map(Cost::Epsilon),
        (None, Some(r)) => positive_finite("rho", r).map(Cost::Rho),
        (Some(_), Some(_)) => {
            Err("give either `epsilon` (pure DP) or `rho` (zCDP), not both".into())
        }
        (None, None) => Err("give `epsilon` (pure DP) or `rho` (zCDP)".into()),
    }
}

/// A table's `total_label` (default [`DEFAULT_TOTAL`]): the word in a margin's rows where a
/// dimension is summed out, so it must not be one of the table's categories.
pub(super) fn total_label_of(
    total_label: Option<String>,
    dims: &[usize],
    dimensions: &[Dimension],
    at: &mut TableProblems,
) -> String {
    let total_label = total_label.map_or_else(|| DEFAULT_TOTAL.to_string(), nfc);
    if total_label.trim().is_empty() || total_label.trim() != total_label {
        at.fail(
            "total_label",
            format!(
                "`{total_label}` cannot label a margin: give a word such as `total` or `계`, without surrounding spaces"
            ),
        );
    } else if let Some(d) = dims
        .iter()
        .find(|&&d| dimensions[d].categories.contains(&total_label))
    {
        at.fail(
            "total_label",
            format!(
                "`{total_label}` is a category of `{}`: a margin's rows could not be told from that category's; choose another label with `total_label`",
                dimensions[*d].name
            ),
        );
    }
    total_label
}
