//! The only place exact values are transformed: noise from opendp's mechanisms ([`dp`]), then
//! post-processing that reads noisy values only: tables of the same quantity estimated together
//! ([`consistency`]), then clamping and suppression ([`postprocess`]).

pub mod consistency;
pub mod dp;
pub mod postprocess;

pub use dp::{MechanismError, NoiseMechanism};

use crate::policy::Plan;

/// Calibrates every table's mechanism (no data needed): what the release will draw, and so what
/// it costs.
pub fn calibrate(plan: &Plan) -> Result<Vec<NoiseMechanism>, MechanismError> {
    plan.tables
        .iter()
        .map(|t| NoiseMechanism::calibrate(t.mechanism, t.statistic.sensitivity(), t.cost))
        .collect()
}
