//! Exact tables protected by cell suppression (statistical disclosure control), the one
//! protection that is not differential privacy: exact values are published, the risky ones are
//! hidden, and every pattern is proven by an attacker's audit before it is written.
//!
//! Where each rule lives:
//! 1. [`structure`]: the cells of linked tables (inner cells and every margin) and the equations
//!    between them, as the attacker knows them; [`tables`] builds it from the plan's exact tables
//!    and the earlier releases linked to them.
//! 2. `primary.rs`, the primary rules ([`primary`], [`sensitive`]): a cell counted from fewer
//!    than `min_frequency` privacy units (and more than none; zeros only when the policy says so),
//!    or a sum dominated by its largest contributors, is hidden, and must keep an attacker's
//!    interval reaching its protection levels ([`levels`]).
//! 3. [`secondary`]: further cells hidden so that subtraction, margins and linked tables cannot
//!    narrow a primary cell's interval below its levels; [`secondary::exact`] finds the minimum,
//!    [`secondary::heuristic`] is the LP heuristic beyond its limits.
//! 4. [`attack`] (with its warm-started sweep): for every hidden cell, the smallest and largest
//!    value consistent with everything published, whole numbers and non-negativity included.
//! 5. `pattern.rs` ([`protect`], [`protect_cells`]): the above in order. A pattern in which a
//!    primary cell's interval falls short, for an outsider or a respondent who knows its own
//!    contributions ([`Insider`]), is never returned: the levels are raised and the cells
//!    suppressed again, or it errs.
//!
//! `solver.rs` names the solver (HiGHS with the `highs` feature, else microlp) and spreads
//! independent problems over the cores. This file holds only what they all return.

pub mod attack;
mod pattern;
mod primary;
pub mod secondary;
mod solver;
pub mod structure;
pub mod tables;

pub use attack::{Interval, attack};
pub use pattern::{Insider, MAX_INSIDER_PROBLEMS, protect, protect_cells, protect_with};
pub use primary::{Rules, levels, primary, sensitive};
pub use secondary::{Levels, Objective, protects};
pub use structure::{Key, Structure};

/// A protected structure: which cells are hidden (primary or secondary) and what the attacker
/// can infer about each hidden cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Protected {
    pub primary: Vec<bool>,
    pub hidden: Vec<bool>,
    /// Per hidden cell, in cell order, its attacker's interval.
    pub intervals: Vec<(usize, Interval)>,
    /// Rounds of secondary suppression it took (1 unless whole numbers narrowed an interval).
    pub rounds: usize,
    /// How the secondary cells were chosen.
    pub method: Method,
}

/// How a pattern's secondary cells were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The exact minimum ([`secondary::exact`]).
    Optimal,
    /// The exact method's last pattern, out of rounds or nodes, completed by the heuristic: any
    /// pattern that protects the primary cells has at least `at_least` secondary cells (or that
    /// much value hidden, as the objective says). A sum of hidden values: never published.
    Completed { at_least: i64 },
    /// The LP heuristic ([`secondary::heuristic`]), for structures beyond the exact method's limits.
    Heuristic,
}

#[derive(Debug, thiserror::Error)]
pub enum SdcError {
    #[error(transparent)]
    Attack(#[from] attack::AttackError),
    #[error(transparent)]
    Secondary(#[from] secondary::SecondaryError),
    /// A primary cell an earlier release already published exactly: hiding it now protects
    /// nothing.
    #[error("cell {cell} is primary but an earlier release published it")]
    AlreadyPublished { cell: usize },
    /// A bug, never an input problem: the pattern found leaves a primary cell short.
    #[error(
        "the suppression pattern leaves cell {cell} exposed: the attacker's interval is {lo}..{hi} around its value"
    )]
    Exposed { cell: usize, lo: i64, hi: String },
    /// The pattern protects every primary cell against an outsider, but a respondent who knows
    /// its own contribution to other hidden cells narrows this one's interval, and hiding what
    /// the heuristic asks in its model did not help within the rounds allowed.
    #[error(
        "no pattern found protects cell {cell} against a respondent who knows its own contribution to the other suppressed cells it is in: it narrows the cell to {lo}..{hi}"
    )]
    Insider { cell: usize, lo: i64, hi: String },
    /// A cell too large for the attacker's problems to stay exact (the input's fault: publish
    /// it in larger units).
    #[error(
        "cell {cell} is {value}, beyond 2^53 = {MAX_EXACT_VALUE}, where the attacker's linear programs can no longer tell one unit from the next; publish the table in larger units"
    )]
    TooLarge { cell: usize, value: i64 },
    /// One of the above, its cell named by its categories; `input` when the policy or data is at
    /// fault.
    #[error("{message}")]
    Described { message: String, input: bool },
}

/// The largest value of an exact table's cell (margins included): 2^53, as for a DP sum's
/// sensitivity, so that every value, level and bound is an exact float in the attacker's
/// problems and `value + level` never wraps.
pub const MAX_EXACT_VALUE: i64 = 1 << 53;

impl SdcError {
    /// Whether the policy or data is at fault (a primary cell published before); otherwise the
    /// error is safestat's or its solver's.
    pub fn is_input(&self) -> bool {
        match self {
            SdcError::AlreadyPublished { .. }
            | SdcError::TooLarge { .. }
            | SdcError::Insider { .. } => true,
            SdcError::Described { input, .. } => *input,
            SdcError::Attack(_) | SdcError::Secondary(_) | SdcError::Exposed { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests;
