//! Post-processing of noisy cells: clamping and small-cell suppression.
//!
//! Owns every decision taken after the noise. It takes noisy values only, by construction: its
//! functions never receive the exact cells, so a suppression decision cannot depend on a true
//! count (which would break differential privacy). Post-processing a DP output stays DP.

/// A published cell: its value, or `None` when suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub value: Option<i64>,
}

impl Cell {
    pub fn status(&self) -> &'static str {
        if self.value.is_some() {
            "published"
        } else {
            "suppressed"
        }
    }
}

/// Clamps negative noisy values to zero when the statistic cannot be negative, then suppresses
/// every cell whose (clamped) noisy value is below `suppress_below`. Returns the cells and how
/// many were suppressed.
pub fn finish_cells(
    noisy: Vec<i64>,
    non_negative: bool,
    suppress_below: i64,
) -> (Vec<Cell>, usize) {
    let mut suppressed = 0;
    let cells = noisy
        .into_iter()
        .map(|v| {
            let v = if non_negative { v.max(0) } else { v };
            if v < suppress_below {
                suppressed += 1;
                Cell { value: None }
            } else {
                Cell { value: Some(v) }
            }
        })
        .collect();
    (cells, suppressed)
}

/// A sum's cells, suppressed on the noisy count of their contributors (clamped at zero), never
/// on the noisy sum: noise can push a large sum below any threshold, and a reader takes a
/// suppressed cell for a small one. Returns the cells, each published cell's count of
/// contributors, and how many cells were suppressed.
pub fn finish_sum_cells(
    noisy: Vec<i64>,
    non_negative: bool,
    contributors: Vec<i64>,
    suppress_below: i64,
) -> (Vec<Cell>, Vec<Option<i64>>, usize) {
    let mut suppressed = 0;
    let (cells, counts) = noisy
        .into_iter()
        .zip(contributors)
        .map(|(v, n)| {
            let v = if non_negative { v.max(0) } else { v };
            let n = n.max(0);
            if n < suppress_below {
                suppressed += 1;
                (Cell { value: None }, None)
            } else {
                (Cell { value: Some(v) }, Some(n))
            }
        })
        .unzip();
    (cells, counts, suppressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_suppressed_on_their_contributors_only() {
        // A sum of 3 with 40 contributors is published; a sum of 9,000 with 4 is not.
        let (cells, counts, n) =
            finish_sum_cells(vec![3, 9_000, -5, 500], true, vec![40, 4, 12, -2], 10);
        let values: Vec<_> = cells.iter().map(|c| c.value).collect();
        assert_eq!(values, [Some(3), None, Some(0), None]);
        assert_eq!(counts, [Some(40), None, Some(12), None]);
        assert_eq!(n, 2);
    }

    #[test]
    fn suppresses_below_threshold_and_clamps_negatives() {
        let (cells, n) = finish_cells(vec![-3, 0, 9, 10, 250], true, 10);
        let values: Vec<_> = cells.iter().map(|c| c.value).collect();
        assert_eq!(values, [None, None, None, Some(10), Some(250)]);
        assert_eq!(n, 3);
    }

    #[test]
    fn zero_threshold_publishes_everything_and_keeps_zeros() {
        let (cells, n) = finish_cells(vec![-3, 0, 4], true, 0);
        let values: Vec<_> = cells.iter().map(|c| c.value).collect();
        assert_eq!(values, [Some(0), Some(0), Some(4)]);
        assert_eq!(n, 0);
    }

    #[test]
    fn signed_sums_are_not_clamped() {
        let (cells, _) = finish_cells(vec![-30], false, i64::MIN);
        assert_eq!(cells[0].value, Some(-30));
    }
}
