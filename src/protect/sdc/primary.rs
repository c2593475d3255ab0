//! The primary rules: which cells are too risky to publish (too few privacy units, or a sum
//! dominated by its largest contributors), and how far an attacker's interval must reach around
//! each of them (its protection levels).

use super::secondary::{Levels, Objective};

/// The primary rule and the protection asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// A cell of fewer privacy units than this (and more than none) is hidden.
    pub min_frequency: i64,
    /// Whether a zero cell is primary too (by default it is not: a zero is published).
    pub zeros_primary: bool,
    /// The attacker's interval for a primary cell of value `v` must reach `v + U` and `v - L`
    /// with `U = max(1, ceil(v * interval_percent / 100))` and `L = min(v, U)`.
    pub interval_percent: f64,
    pub objective: Objective,
}

/// Whether a cell counted from `frequency` units is primary under `rules`.
pub fn primary(frequency: i64, rules: &Rules) -> bool {
    if frequency == 0 {
        rules.zeros_primary
    } else {
        frequency < rules.min_frequency
    }
}

/// A primary cell's protection levels (see [`Rules::interval_percent`]).
pub fn levels(value: i64, rules: &Rules) -> Levels {
    let up = ((value as f64 * rules.interval_percent / 100.0).ceil() as i64).max(1);
    Levels {
        up,
        down: value.min(up),
    }
}

/// The protection a sum's sensitivity rules ask of a cell of `value` whose largest units
/// contribute `largest` (largest first), or `None` when neither rule makes it primary. The
/// level is how far the attacker's interval must reach above the value (and below it, as far as
/// zero allows), the standard levels of the rules (Hundepool et al., *Statistical Disclosure
/// Control*, 2012, 4.2):
/// - (n,k)-dominance: primary when the `n` largest make more than `k`% of the value; safe once
///   the attacker's upper bound reaches `100 (x1 + ... + xn) / k`, so the level is that, rounded
///   up, minus the value.
/// - p%: primary when the rest (the value less the two largest) is under `p`% of the largest,
///   so that the second largest unit, subtracting its own contribution from the value, would
///   estimate the largest's within `p`%; the level is `p`% of the largest, rounded up, less the
///   rest.
///
/// Contributions are whole numbers of 0 or more; the arithmetic is exact (`i128`).
pub fn sensitive(value: i64, largest: &[i64], sum: &crate::policy::ExactSum) -> Option<i64> {
    let x = i128::from(value);
    if x <= 0 {
        return None;
    }
    let mut level = 0i128;
    if let Some(d) = sum.dominance {
        let top: i128 = largest
            .iter()
            .take(d.n as usize)
            .map(|&v| i128::from(v))
            .sum();
        let k = i128::from(d.k);
        if 100 * top > k * x {
            level = level.max(ceil_div(100 * top, k) - x);
        }
    }
    if let Some(p) = sum.p_percent {
        let x1 = i128::from(largest.first().copied().unwrap_or(0));
        let x2 = i128::from(largest.get(1).copied().unwrap_or(0));
        let rest = x - x1 - x2;
        let p = i128::from(p);
        if 100 * rest < p * x1 {
            level = level.max(ceil_div(p * x1, 100) - rest);
        }
    }
    (level > 0).then(|| level.min(i128::from(i64::MAX)) as i64)
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}
