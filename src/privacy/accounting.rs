//! Budgets and how costs add up under them: pure DP, zCDP, or (epsilon, delta) through zCDP.
//!
//! Owns [`Budget`] (a dataset's total, as the policy states it) and [`Accounting`] (what it
//! means: which tables may be charged, how costs compose, whether a total fits). Composition and
//! conversion are opendp's (`CompositionMeasure::compose`, `ConcentratedMeasure::convert`): this
//! module never adds privacy costs with a formula of its own. Imports nothing of the crate but
//! [`super::cost`].

use std::sync::{Mutex, PoisonError};

use opendp::combinators::{CompositionMeasure, ConcentratedMeasure};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use serde::{Deserialize, Serialize};

use super::cost::{Cost, positive_finite, short_number};

/// opendp refused a composition or conversion; its message is kept (opendp's `Display` prints
/// only the variant).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AccountingError(pub String);

fn opendp_msg(e: opendp::error::Error) -> AccountingError {
    AccountingError(format!(
        "opendp: {}: {}",
        e.variant,
        e.message.unwrap_or_default()
    ))
}

/// A dataset's total privacy budget, and so how costs add up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
}

/// The three accounting definitions, and a dataset without a budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accounting {
    /// No budget (a dataset that publishes exact tables only): nothing can be charged.
    None,
    /// Pure DP: only pure-DP tables; costs add up in epsilon.
    Pure { epsilon: f64 },
    /// zCDP: pure-DP costs are cast to rho; costs add up in rho.
    Zcdp { rho: f64 },
    /// (epsilon, delta): costs add up in rho; the total, converted to (epsilon, delta) by opendp,
    /// must fit.
    Approx { epsilon: f64, delta: f64 },
}

impl Budget {
    /// No budget: a dataset that publishes exact tables only (the policy's `[dataset]` gives
    /// none). Written `{}`; a later release with differentially private tables sets it.
    pub const NONE: Budget = Budget {
        epsilon: None,
        rho: None,
        delta: None,
    };

    pub fn is_none(&self) -> bool {
        *self == Budget::NONE
    }

    /// Checks the combination of fields; the message names what is wrong.
    pub fn accounting(&self) -> Result<Accounting, String> {
        let pos = positive_finite;
        match (self.epsilon, self.rho, self.delta) {
            (None, None, None) => Ok(Accounting::None),
            (Some(e), None, None) => Ok(Accounting::Pure { epsilon: pos("epsilon", e)? }),
            (None, Some(r), None) => Ok(Accounting::Zcdp { rho: pos("rho", r)? }),
            (Some(e), None, Some(d)) => {
                let e = pos("epsilon", e)?;
                if !(d > 0.0 && d < 1.0) {
                    return Err(format!("`delta` must be strictly between 0 and 1, got `{d}`"));
                }
                Ok(Accounting::Approx { epsilon: e, delta: d })
            }
            _ => Err(
                "give `{ epsilon = ... }` (pure DP), `{ rho = ... }` (zCDP) or `{ epsilon = ..., delta = ... }`"
                    .to_string(),
            ),
        }
    }
}

impl Accounting {
    pub fn name(&self) -> &'static str {
        match self {
            Accounting::None => "none",
            Accounting::Pure { .. } => "pure_dp",
            Accounting::Zcdp { .. } => "zcdp",
            Accounting::Approx { .. } => "approx_dp_via_zcdp",
        }
    }

    /// The unit costs are added in.
    pub fn unit(&self) -> &'static str {
        match self {
            Accounting::Pure { .. } => "epsilon",
            _ => "rho",
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Accounting::None => "no budget: exact tables only".to_string(),
            Accounting::Pure { epsilon } => format!("epsilon={} (pure DP)", short_number(epsilon)),
            Accounting::Zcdp { rho } => format!("rho={} (zCDP)", short_number(rho)),
            Accounting::Approx { epsilon, delta } => {
                format!(
                    "epsilon={} at delta={delta:e} (via zCDP)",
                    short_number(epsilon)
                )
            }
        }
    }

    /// What a table whose cost opendp maps to `cost` is charged in this accounting's unit;
    /// `as_rho` gives that cost cast to zCDP (called only when the accounting adds up rho).
    pub fn charge(
        &self,
        cost: Cost,
        as_rho: impl FnOnce() -> Result<f64, AccountingError>,
    ) -> Result<f64, AccountingError> {
        match (self, cost) {
            (Accounting::None, _) => Err(AccountingError(
                "the dataset has no privacy budget: give `[dataset]` a `budget` to publish differentially private tables".into(),
            )),
            (Accounting::Pure { .. }, Cost::Epsilon(e)) => Ok(e),
            (Accounting::Pure { .. }, Cost::Rho(_)) => Err(AccountingError(
                "a pure-DP budget can only be charged pure-DP tables (cost in epsilon)".into(),
            )),
            (_, Cost::Rho(r)) => Ok(r),
            (_, Cost::Epsilon(_)) => as_rho(),
        }
    }

    /// Composes costs in this accounting's unit (opendp's composition).
    pub fn compose(&self, costs: Vec<f64>) -> Result<f64, AccountingError> {
        match self {
            Accounting::Pure { .. } => MaxDivergence.compose(costs),
            _ => ZeroConcentratedDivergence.compose(costs),
        }
        .map_err(opendp_msg)
    }

    /// Whether a composed total fits the budget.
    pub fn fits(&self, total: f64) -> Result<bool, AccountingError> {
        match *self {
            Accounting::None => Ok(total <= 0.0),
            Accounting::Pure { epsilon } => Ok(total <= epsilon),
            Accounting::Zcdp { rho } => Ok(total <= rho),
            Accounting::Approx { epsilon, delta } => Ok(ZeroConcentratedDivergence::convert(total)
                .map_err(opendp_msg)?
                .delta(epsilon)
                .map_err(opendp_msg)?
                <= delta),
        }
    }

    /// The largest total that fits, in this accounting's unit. For (epsilon, delta) this is the
    /// largest rho whose opendp conversion fits, found by bisection over `fits`.
    pub fn capacity(&self) -> Result<f64, AccountingError> {
        match *self {
            Accounting::None => Ok(0.0),
            Accounting::Pure { epsilon } => Ok(epsilon),
            Accounting::Zcdp { rho } => Ok(rho),
            Accounting::Approx { .. } => {
                let (mut lo, mut hi) = (0.0f64, 1.0f64);
                while self.fits(hi)? {
                    lo = hi;
                    hi *= 2.0;
                    if hi > 1e12 {
                        return Ok(lo);
                    }
                }
                for _ in 0..200 {
                    let mid = lo + (hi - lo) / 2.0;
                    if mid == lo || mid == hi {
                        break;
                    }
                    if self.fits(mid)? {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                Ok(lo)
            }
        }
    }

    /// For (epsilon, delta) accounting, the epsilon a rho total amounts to at the budget's delta.
    pub fn approx_epsilon(&self, total: f64) -> Result<Option<f64>, AccountingError> {
        match *self {
            Accounting::Approx { delta, .. } => epsilon_at(total, delta).map(Some),
            _ => Ok(None),
        }
    }

    /// The budget's own delta, if it has one.
    pub fn delta(&self) -> Option<f64> {
        match *self {
            Accounting::Approx { delta, .. } => Some(delta),
            _ => None,
        }
    }

    pub fn amount(&self, x: f64) -> String {
        format!("{}={}", self.unit(), short_number(x))
    }
}

/// The epsilon that a rho-zCDP cost amounts to at `delta`, by opendp's conversion
/// (`ZeroConcentratedDivergence::convert`, the map of `make_zCDP_to_approxDP`). The conversion
/// is a search in arbitrary precision (milliseconds a call) and a release's report asks for the
/// same few costs again and again (every table's, in the workbook and in the report): each
/// answer is kept for the rest of the process, as the function depends on nothing else.
pub fn epsilon_at(rho: f64, delta: f64) -> Result<f64, AccountingError> {
    static KNOWN: Mutex<Vec<((u64, u64), f64)>> = Mutex::new(Vec::new());
    const KEPT: usize = 256;
    let key = (rho.to_bits(), delta.to_bits());
    let known = |k: &[((u64, u64), f64)]| k.iter().find(|(at, _)| *at == key).map(|&(_, e)| e);
    if let Some(epsilon) = known(&KNOWN.lock().unwrap_or_else(PoisonError::into_inner)) {
        return Ok(epsilon);
    }
    let epsilon = ZeroConcentratedDivergence::convert(rho)
        .map_err(opendp_msg)?
        .epsilon(delta)
        .map_err(opendp_msg)?;
    let mut kept = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() < KEPT {
        kept.push((key, epsilon));
    }
    Ok(epsilon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(epsilon: Option<f64>, rho: Option<f64>, delta: Option<f64>) -> Budget {
        Budget {
            epsilon,
            rho,
            delta,
        }
    }

    /// The kept answers are opendp's own, one per (rho, delta): a second delta for the same rho
    /// is converted again, never answered from the first.
    #[test]
    fn epsilon_at_keeps_opendps_answer_per_rho_and_delta() {
        let opendp = |rho: f64, delta: f64| {
            ZeroConcentratedDivergence::convert(rho)
                .unwrap()
                .epsilon(delta)
                .unwrap()
        };
        for _ in 0..2 {
            for (rho, delta) in [(0.0371, 1e-6), (0.0371, 1e-9), (0.0372, 1e-6)] {
                assert_eq!(epsilon_at(rho, delta).unwrap(), opendp(rho, delta));
            }
        }
        assert!(epsilon_at(0.0371, 1e-9).unwrap() > epsilon_at(0.0371, 1e-6).unwrap());
        assert!(epsilon_at(-1.0, 1e-6).is_err());
    }

    #[test]
    fn budget_forms() {
        assert!(matches!(
            budget(Some(3.0), None, None).accounting(),
            Ok(Accounting::Pure { .. })
        ));
        assert!(matches!(
            budget(None, Some(1.0), None).accounting(),
            Ok(Accounting::Zcdp { .. })
        ));
        assert!(matches!(
            budget(Some(4.0), None, Some(1e-7)).accounting(),
            Ok(Accounting::Approx { .. })
        ));
        assert_eq!(Budget::NONE.accounting(), Ok(Accounting::None));
        assert!(budget(None, None, Some(1e-7)).accounting().is_err());
        assert!(budget(None, Some(-1.0), None).accounting().is_err());
        assert!(budget(Some(1.0), Some(1.0), None).accounting().is_err());
        assert!(budget(None, Some(1.0), Some(1e-6)).accounting().is_err());
        assert!(budget(Some(1.0), None, Some(1.5)).accounting().is_err());
    }

    #[test]
    fn approx_capacity_is_the_largest_rho_that_converts_within_budget() {
        let acc = Accounting::Approx {
            epsilon: 4.0,
            delta: 1e-7,
        };
        let cap = acc.capacity().unwrap();
        assert!(acc.fits(cap).unwrap());
        assert!(!acc.fits(cap * (1.0 + 1e-9)).unwrap());
        // The classic bound eps = rho + 2 sqrt(rho ln(1/delta)) gives rho = 0.223 for (4, 1e-7);
        // opendp's tighter conversion allows a little more, never less.
        assert!(cap > 0.223 && cap < 0.35, "{cap}");
    }
}
