//! What the officer asked for, turned into a validated [`Plan`]: the file as written ([`file`]),
//! its validation (one function per section and per field kind), the statistics and the
//! sensitivities their bounds imply, and how names are compared.
//!
//! Reads no data and spends nothing: it never imports `input`, `protect`, `output` or `ledger`
//! (a check in `.ci/run` holds it to that).

mod exact;
mod fields;
mod file;
mod labels;
mod names;
mod plan;
mod presentation;
mod statistic;
mod table;
mod together;
mod validate;

pub use exact::{CYCLE, MAX_FINEST_CELLS, UNITS_BESIDE_ROWS, margins_suffice};
pub use file::PolicyError;
pub use names::{did_you_mean, nfc};
pub use plan::{
    CostSource, Dimension, Dominance, Engine, ExactSum, ExactTableSpec, Group, InputKind, Plan,
    Relation, SecondaryObjective, TableSpec, no_groups,
};
pub use presentation::Presentation;
pub use statistic::{Bound, Statistic};
pub use together::{Grouping, Together, grouping};
pub use validate::load;
#[cfg(test)]
pub use {file::PolicyFile, validate::validate};
