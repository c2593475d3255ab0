//! Secondary suppression: the cells hidden besides the primary ones so that no primary cell's
//! interval falls short of its levels. Two methods: the exact minimum ([`exact`], a
//! Benders-style master problem with the attacker's cuts) and the LP heuristic ([`heuristic`]),
//! used beyond the exact method's limits and to complete a pattern it could not finish.

pub mod exact;
pub mod heuristic;

use super::attack::Interval;

/// What secondary suppression minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The number of hidden cells.
    Cells,
    /// The total value hidden.
    Value,
}

/// How far an attacker's interval must reach on each side of a primary cell's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub up: i64,
    pub down: i64,
}

/// Whether `interval` reaches `levels` around `value`.
pub fn protects(interval: Interval, value: i64, levels: Levels) -> bool {
    interval.lo <= value - levels.down && interval.hi.is_none_or(|hi| hi >= value + levels.up)
}

#[derive(Debug, thiserror::Error)]
#[error("secondary suppression could not be computed for cell {cell}: {message}")]
pub struct SecondaryError {
    pub cell: usize,
    pub message: String,
}
