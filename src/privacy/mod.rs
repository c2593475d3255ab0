//! The field's vocabulary, at the bottom of the house: costs, mechanisms, sensitivities, budgets
//! and accounting. Imports nothing else of the crate (a check in `.ci/run` holds it to that).

mod accounting;
mod cost;

pub use accounting::{Accounting, AccountingError, Budget, epsilon_at};
pub use cost::{Cost, Mechanism, Sensitivity, positive_finite, short_number, thousands};
