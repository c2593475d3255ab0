//! The only place exact values are transformed. Differentially private tables: noise from
//! opendp's mechanisms ([`dp`]), then post-processing that reads noisy values only: tables of the
//! same quantity estimated together ([`consistency`]), their margins ([`totals`]), then clamping
//! and suppression ([`postprocess`]); how each published value errs ([`accuracy`]). Exact tables: cell suppression ([`sdc`]), the small cells
//! and the cells that would give them back hidden, each proven against an attacker who knows the
//! rules, the respondents' own contributions and the earlier releases.

pub mod accuracy;
pub mod consistency;
pub mod dp;
pub mod postprocess;
pub mod sdc;
pub mod totals;

pub use dp::{MechanismError, NoiseMechanism};

use crate::policy::Plan;
use crate::privacy::{Accounting, AccountingError, Cost};

/// What one table draws: noise for its values, and for a sum that measures them, noise for the
/// count of its contributors (which decides the sum's suppression and flags).
#[derive(Clone)]
pub struct TableNoise {
    pub values: NoiseMechanism,
    pub contributors: Option<NoiseMechanism>,
}

impl TableNoise {
    /// Every measurement the table makes.
    pub fn all(&self) -> Vec<&NoiseMechanism> {
        std::iter::once(&self.values)
            .chain(self.contributors.as_ref())
            .collect()
    }

    /// The table's cost, its measurements composed by opendp.
    pub fn cost(&self) -> Result<Cost, MechanismError> {
        dp::compose(&self.all())
    }

    /// What the table is charged under `accounting`: its measurements' charges, composed.
    pub fn charge(&self, accounting: &Accounting) -> Result<f64, AccountingError> {
        let charges = self
            .all()
            .into_iter()
            .map(|m| m.charge(accounting))
            .collect::<Result<Vec<_>, _>>()?;
        accounting.compose(charges)
    }
}

/// Calibrates every table's mechanisms (no data needed): what the release will draw, and so what
/// it costs.
pub fn calibrate(plan: &Plan) -> Result<Vec<TableNoise>, MechanismError> {
    plan.tables
        .iter()
        .map(|t| {
            let values = NoiseMechanism::calibrate(t.mechanism, t.statistic.sensitivity(), t.cost)?;
            let contributors = match (t.statistic.contributors(), t.contributors_cost) {
                (Some(s), Some(cost)) => Some(NoiseMechanism::calibrate(
                    t.mechanism,
                    s.sensitivity(),
                    cost,
                )?),
                _ => None,
            };
            Ok(TableNoise {
                values,
                contributors,
            })
        })
        .collect()
}

/// Every measurement of a release, for composing its total.
pub fn measurements(noise: &[TableNoise]) -> Vec<&NoiseMechanism> {
    noise.iter().flat_map(TableNoise::all).collect()
}
