//! The field's vocabulary: privacy costs, mechanisms, sensitivities and how they are shown.
//!
//! Imports nothing of the crate: every other layer speaks in these terms. Never computes a
//! privacy cost itself (opendp does, in `protect::dp` and [`super::accounting`]).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Discrete Laplace (geometric) noise, pure DP, calibrated to the L1 sensitivity.
    Laplace,
    /// Discrete Gaussian noise, zCDP, calibrated to the L2 sensitivity.
    Gaussian,
}

/// A privacy cost: epsilon under pure DP, or rho under zero-concentrated DP.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cost {
    Epsilon(f64),
    Rho(f64),
}

/// How far one privacy unit can move a table, in the two norms the mechanisms use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sensitivity {
    pub l1: f64,
    pub l2: f64,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::Laplace => "discrete laplace",
            Mechanism::Gaussian => "discrete gaussian",
        })
    }
}

impl Mechanism {
    /// The norm its noise is calibrated to: L1 for the discrete Laplace, L2 for the discrete
    /// Gaussian.
    pub fn norm(self) -> Norm {
        match self {
            Mechanism::Laplace => Norm::L1,
            Mechanism::Gaussian => Norm::L2,
        }
    }
}

/// The two norms sensitivities are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    L1,
    L2,
}

impl Norm {
    /// `l1` or `l2`, as the manifest writes it.
    pub fn name(self) -> &'static str {
        match self {
            Norm::L1 => "l1",
            Norm::L2 => "l2",
        }
    }
}

impl Sensitivity {
    /// The sensitivity in `norm`.
    pub fn in_norm(self, norm: Norm) -> f64 {
        match norm {
            Norm::L1 => self.l1,
            Norm::L2 => self.l2,
        }
    }
}

impl Cost {
    /// True when `self` is measured like `budget` and is at most it.
    pub fn fits_within(self, budget: Cost) -> bool {
        match (self, budget) {
            (Cost::Epsilon(a), Cost::Epsilon(b)) | (Cost::Rho(a), Cost::Rho(b)) => a <= b,
            _ => false,
        }
    }

    /// `(measure, epsilon, rho)` as the manifest writes them: `pure_dp` or `zcdp`, and the
    /// amount under its own name.
    pub fn parts(self) -> (&'static str, Option<f64>, Option<f64>) {
        match self {
            Cost::Epsilon(e) => ("pure_dp", Some(e), None),
            Cost::Rho(r) => ("zcdp", None, Some(r)),
        }
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cost::Epsilon(e) => write!(f, "epsilon={}", short_number(*e)),
            Cost::Rho(r) => write!(f, "rho={}", short_number(*r)),
        }
    }
}

/// A number for people to read: at most six decimals, trailing zeros dropped. Files (manifest,
/// ledger) always carry the full value.
pub fn short_number(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An integer with thousands separators: `3459` as `3,459`, `-1234567` as `-1,234,567`.
pub fn thousands(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `v` when it is a positive finite number, else the message saying so for the field `name`.
pub fn positive_finite(name: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "`{name}` must be a positive finite number, got `{v}`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(999i64), "999");
        assert_eq!(thousands(3459u64), "3,459");
        assert_eq!(thousands(-1234567i64), "-1,234,567");
        assert_eq!(thousands(i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }
}
