//! The linear structure an attacker knows: every published cell of a set of linked tables (their
//! inner cells and their margins) and the equations that tie a margin to the cells it adds up.
//!
//! A cell is named by the categories of the dimensions it does not sum over (a margin drops the
//! dimensions it adds up), so the same quantity in two tables is one cell: region x age's
//! `(seoul, total)` and region x gender's `(seoul, total)` are both `{region: seoul}`. Tables of
//! one release that share a margin are therefore linked by construction, and so are a table and
//! last year's table of the same cells once their values are fixed (see [`super::attack`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A cell's name: `(dimension, category)` for every dimension it does not sum over, by dimension;
/// a group of categories is `GROUP` plus its number.
pub type Key = Vec<(usize, u32)>;

/// Where groups' numbers start in a [`Key`].
pub const GROUP: u32 = 1 << 31;

/// The last entry of every stored key, `(SPACE, space)`, names the table's quantity (its input,
/// and what is counted or summed): tables in different spaces share no cell, not even the grand
/// total, whose key is otherwise empty. [`Structure::key`] leaves it out.
const SPACE: usize = usize::MAX;

/// One dimension of a table with margins: its number of categories and its groups of them (each
/// a list of category positions), published after the categories and before the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub categories: usize,
    pub groups: Vec<Vec<usize>>,
}

impl Layout {
    /// A dimension of `n` categories without groups.
    pub fn flat(n: usize) -> Layout {
        Layout {
            categories: n,
            groups: Vec::new(),
        }
    }

    /// Grid positions with margins: categories, groups, total.
    pub fn positions(&self) -> usize {
        self.categories + self.groups.len() + 1
    }
}

/// One equation: `total` is the sum of `parts`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Equation {
    pub total: usize,
    pub parts: Vec<usize>,
}

impl Equation {
    /// Its cells with their signs in `total - sum(parts) = 0`.
    pub fn terms(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        std::iter::once((self.total, 1.0)).chain(self.parts.iter().map(|&c| (c, -1.0)))
    }
}

/// The cells of linked tables and their equations.
#[derive(Debug, Clone, Default)]
pub struct Structure {
    keys: Vec<Key>,
    index: HashMap<Key, usize>,
    equations: BTreeSet<Equation>,
    /// Each group of categories, by dimension and members, and its number.
    groups: BTreeMap<(usize, Vec<usize>), u32>,
    /// Per cell, the least value it can have if hidden, as the rules make public (1 for a count
    /// whose zeros are never hidden; 0 otherwise, the default).
    floors: Vec<i64>,
    /// Per cell, whether it may be hidden as a secondary cell when it is zero (the policy's
    /// `zeros_as_secondary`; by default zeros are never hidden as secondaries).
    zeros_hideable: Vec<bool>,
}

impl Structure {
    pub fn new() -> Structure {
        Structure::default()
    }

    /// The cell named `key`, added if new.
    fn cell(&mut self, key: Key) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.keys.push(key.clone());
        self.floors.push(0);
        self.zeros_hideable.push(false);
        self.index.insert(key, self.keys.len() - 1);
        self.keys.len() - 1
    }

    /// The least value cell `c` can have if hidden, as the rules make public.
    pub fn floor(&self, c: usize) -> i64 {
        self.floors[c]
    }

    /// Every cell's [`Structure::floor`].
    pub fn floors(&self) -> &[i64] {
        &self.floors
    }

    /// Sets every cell's least value if hidden (one per cell): what the rules make public.
    pub fn set_floors(&mut self, floors: Vec<i64>) {
        assert_eq!(floors.len(), self.keys.len(), "one floor per cell");
        self.floors = floors;
    }

    /// Sets cell `c`'s least value if hidden (an attacker who knows more than the rules say).
    pub fn set_floor(&mut self, c: usize, floor: i64) {
        self.floors[c] = floor;
    }

    /// Whether cell `c` may be hidden as a secondary cell when it is zero.
    pub fn zero_hideable(&self, c: usize) -> bool {
        self.zeros_hideable[c]
    }

    /// Sets, per cell, whether a zero may be hidden as a secondary cell.
    pub fn set_zeros_hideable(&mut self, hideable: Vec<bool>) {
        assert_eq!(hideable.len(), self.keys.len(), "one flag per cell");
        self.zeros_hideable = hideable;
    }

    /// A group of `dim`'s categories `members` as a cell key's category: the same group (the
    /// same members, in any order) is the same in every table.
    fn group(&mut self, dim: usize, members: &[usize]) -> u32 {
        let next = self.groups.len() as u32;
        let mut members = members.to_vec();
        members.sort_unstable();
        GROUP + *self.groups.entry((dim, members)).or_insert(next)
    }

    /// The categories of a group key's category `c` of `dim` (`None` for a category).
    pub fn group_members(&self, dim: usize, c: u32) -> Option<&[usize]> {
        let id = c.checked_sub(GROUP)?;
        self.groups
            .iter()
            .find(|(k, g)| k.0 == dim && **g == id)
            .map(|((_, m), _)| m.as_slice())
    }

    /// Adds a table over `dims` (dimension ids) laid out as `layouts` (each dimension's
    /// categories and groups), and all its margins: every combination of categories, groups and
    /// totals. Returns the cell of each point of its grid, which has each dimension's
    /// categories, then its groups, then its total, first dimension slowest.
    pub fn add_table(&mut self, space: u32, dims: &[usize], layouts: &[Layout]) -> Vec<usize> {
        assert_eq!(dims.len(), layouts.len());
        let extent: Vec<usize> = layouts.iter().map(Layout::positions).collect();
        let group_ids: Vec<Vec<u32>> = dims
            .iter()
            .zip(layouts)
            .map(|(&d, l)| l.groups.iter().map(|g| self.group(d, g)).collect())
            .collect();
        let points: usize = extent.iter().product();
        let mut grid = Vec::with_capacity(points);
        for p in 0..points {
            let coords = unravel(p, &extent);
            let mut key: Key = Vec::new();
            for (j, (&d, l)) in dims.iter().zip(layouts).enumerate() {
                let c = coords[j];
                if c < l.categories {
                    key.push((d, c as u32));
                } else if c < l.categories + l.groups.len() {
                    key.push((d, group_ids[j][c - l.categories]));
                }
            }
            key.sort_unstable();
            key.push((SPACE, space));
            grid.push(self.cell(key));
        }
        // Along each dimension, the total position is the sum of the category positions, and
        // each group's position the sum of its categories'.
        for (j, l) in layouts.iter().enumerate() {
            let all: Vec<usize> = (0..l.categories).collect();
            for (p, &total) in grid.iter().enumerate() {
                let coords = unravel(p, &extent);
                let members = match coords[j].checked_sub(l.categories) {
                    None => continue,
                    Some(g) if g < l.groups.len() => &l.groups[g],
                    Some(_) => &all,
                };
                let parts = members
                    .iter()
                    .map(|&c| {
                        let mut q = coords.clone();
                        q[j] = c;
                        grid[ravel(&q, &extent)]
                    })
                    .collect();
                self.equations.insert(Equation { total, parts });
            }
        }
        grid
    }

    /// Adds a table over `dims` without its margins: its inner cells only, which no equation
    /// ties together (first dimension slowest).
    pub fn add_inner(&mut self, space: u32, dims: &[usize], sizes: &[usize]) -> Vec<usize> {
        let points: usize = sizes.iter().product();
        (0..points)
            .map(|p| {
                let mut key: Key = dims
                    .iter()
                    .zip(unravel(p, sizes))
                    .map(|(&d, c)| (d, c as u32))
                    .collect();
                key.sort_unstable();
                key.push((SPACE, space));
                self.cell(key)
            })
            .collect()
    }

    pub fn cells(&self) -> usize {
        self.keys.len()
    }

    /// The categories naming `cell` (empty: a grand total), its space left out.
    pub fn key(&self, cell: usize) -> &[(usize, u32)] {
        let key = &self.keys[cell];
        &key[..key.len() - 1]
    }

    /// The cell of `space` named `key`, if the structure has it.
    pub fn find(&self, space: u32, key: &[(usize, u32)]) -> Option<usize> {
        let mut key = key.to_vec();
        key.push((SPACE, space));
        self.index.get(&key).copied()
    }

    /// Every equation, in a fixed order (sorted): the same structure gives the same order.
    pub fn equations(&self) -> impl Iterator<Item = &Equation> {
        self.equations.iter()
    }
}

/// Point `p`'s coordinates in a grid of `extent`, first dimension slowest.
fn unravel(mut p: usize, extent: &[usize]) -> Vec<usize> {
    let mut coords = vec![0; extent.len()];
    for j in (0..extent.len()).rev() {
        coords[j] = p % extent[j];
        p /= extent[j];
    }
    coords
}

fn ravel(coords: &[usize], extent: &[usize]) -> usize {
    coords.iter().zip(extent).fold(0, |p, (c, n)| p * n + c)
}

/// Layouts without groups, for `sizes` categories.
pub fn flat(sizes: &[usize]) -> Vec<Layout> {
    sizes.iter().map(|&n| Layout::flat(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_way_table_has_its_margins_and_their_equations() {
        let mut s = Structure::new();
        let grid = s.add_table(0, &[0, 1], &flat(&[2, 3]));
        // 3 x 4 grid points, all distinct cells.
        assert_eq!(grid.len(), 12);
        assert_eq!(s.cells(), 12);
        // Down the first dimension: each of the 4 columns (3 and the row totals) sums its 2 rows;
        // along the second: each of the 3 rows (2 and the column totals) sums its 3 columns.
        assert_eq!(s.equations().count(), 7);
        assert!(
            s.equations()
                .any(|e| e.total == grid[11] && e.parts.len() == 3)
        );
        assert!(
            s.equations()
                .any(|e| e.total == grid[11] && e.parts.len() == 2)
        );
    }

    #[test]
    fn tables_of_different_quantities_share_no_cell() {
        let mut s = Structure::new();
        let counts = s.add_table(0, &[0, 1], &flat(&[2, 3]));
        let sums = s.add_table(1, &[0, 1], &flat(&[2, 3]));
        assert_eq!(s.cells(), 24);
        // Not even the grand total, whose categories are none in both.
        assert!(s.key(counts[11]).is_empty() && s.key(sums[11]).is_empty());
        assert_ne!(counts[11], sums[11]);
        assert_eq!(s.find(1, &[]), Some(sums[11]));
    }

    #[test]
    fn linked_tables_share_their_common_margins() {
        let mut s = Structure::new();
        let ra = s.add_table(0, &[0, 1], &flat(&[2, 3])); // region x age
        let rg = s.add_table(0, &[0, 2], &flat(&[2, 2])); // region x gender
        // The region totals and the grand total are the same cells.
        assert_eq!(ra[3], rg[2]); // (region 0, total)
        assert_eq!(ra[11], rg[8]); // grand total
        // 12 + 9 - 3 shared.
        assert_eq!(s.cells(), 18);
        // The equation "grand total = sum of regions" is stated once.
        let region_totals = vec![ra[3], ra[7]];
        let regions: Vec<_> = s
            .equations()
            .filter(|e| e.total == ra[11] && e.parts == region_totals)
            .collect();
        assert_eq!(regions.len(), 1);
    }
}
