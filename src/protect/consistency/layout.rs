//! Where each cell of a group's tables sits in the group's union table.
//!
//! A group's union table crosses every dimension any of its tables uses (first dimension slowest,
//! like every table here). Each table is a marginal of it: a table cell is the sum of the union
//! cells that agree with it on the table's dimensions.

/// A table of a group, as positions in the union's dimensions (in the table's own `by` order).
#[derive(Debug, Clone)]
pub struct Axes(pub Vec<usize>);

/// The union table and, for every table of the group, the table cell of each union cell.
pub(super) struct Layout {
    /// Per table, the table cell that each union cell adds to.
    pub cell_of: Vec<Vec<u32>>,
    /// Per table, its number of cells.
    pub cells: Vec<usize>,
}

impl Layout {
    /// `sizes` multiply to at most `u32::MAX` cells (the caller's size limit is far lower).
    pub fn new(sizes: &[usize], tables: &[&Axes]) -> Layout {
        let union: usize = sizes.iter().product();
        let mut cell_of = Vec::with_capacity(tables.len());
        let mut cells = Vec::with_capacity(tables.len());
        for axes in tables {
            // The stride, in table cells, of each union dimension (0 when the table sums it out).
            let mut stride = vec![0usize; sizes.len()];
            let mut s = 1usize;
            for &a in axes.0.iter().rev() {
                stride[a] = s;
                s *= sizes[a];
            }
            cells.push(s);
            let mut of = vec![0u32; union];
            for (u, slot) in of.iter_mut().enumerate() {
                let mut rest = u;
                let mut cell = 0usize;
                for d in (0..sizes.len()).rev() {
                    cell += (rest % sizes[d]) * stride[d];
                    rest /= sizes[d];
                }
                *slot = cell as u32;
            }
            cell_of.push(of);
        }
        Layout { cell_of, cells }
    }

    /// Table `j` summed from union values.
    pub fn marginal(&self, j: usize, union: &[f64]) -> Vec<f64> {
        let mut t = vec![0.0; self.cells[j]];
        for (u, &v) in union.iter().enumerate() {
            t[self.cell_of[j][u] as usize] += v;
        }
        t
    }

    /// Table `j` summed from integer union values (exactly, in i128).
    pub fn marginal_exact(&self, j: usize, union: &[i64]) -> Vec<i128> {
        let mut t = vec![0i128; self.cells[j]];
        for (u, &v) in union.iter().enumerate() {
            t[self.cell_of[j][u] as usize] += i128::from(v);
        }
        t
    }

    /// The union cells of every cell of table `j`.
    pub fn members(&self, j: usize) -> Vec<Vec<usize>> {
        let mut m = vec![Vec::new(); self.cells[j]];
        for (u, &c) in self.cell_of[j].iter().enumerate() {
            m[c as usize].push(u);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_in_its_own_order_is_a_marginal_of_the_union() {
        // Union a(2) x b(3) x c(2); table (c, a) sums b out and lists c slowest.
        let sizes = [2, 3, 2];
        let t = Axes(vec![2, 0]);
        let l = Layout::new(&sizes, &[&t]);
        assert_eq!(l.cells[0], 4);
        let union: Vec<f64> = (0..12).map(f64::from).collect();
        // Union cell (a, b, c) = 6a + 2b + c; table cell (c, a) = 2c + a.
        let mut want = [0.0; 4];
        for a in 0..2 {
            for b in 0..3 {
                for c in 0..2 {
                    want[2 * c + a] += f64::from((6 * a + 2 * b + c) as u32);
                }
            }
        }
        assert_eq!(l.marginal(0, &union), want);
    }
}
