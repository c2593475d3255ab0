//! Contribution bounding: turns a stream of (unit, cell, value) observations into exact cells in
//! which no privacy unit weighs more than the policy allows.
//!
//! Owns the per-unit state and the random choice of which contributions to keep. The choice is a
//! *bottom-k sample by random priority*: every row gets an independent priority from a
//! cryptographically secure generator and a unit keeps its `k` lowest-priority rows (a uniform
//! k-subset of its rows); for `count_units`, each distinct (unit, cell) gets a priority from a
//! keyed mix of the unit and the cell (SplitMix64's finaliser under a fresh secret 128-bit key
//! per table and read, drawn from the same generator; duplicates agree) and the unit keeps its `c` lowest cells (a uniform
//! c-subset of its cells).
//! What a unit keeps depends only on its own rows and their priorities, never on the order in
//! which they arrive (the parallel readers deliver a unit's rows in any order), and so never on
//! other units' rows. The exact cells this module produces must never leave
//! memory: they go straight to the mechanisms.
//!
//! Memory: every unit has one fixed-size record of 64-bit words holding the caller's words for
//! it (the reader keeps the unit's key there; its keyed hash is not kept but handed in with each
//! row) and every table's kept slots: a
//! kept cell in a quarter of a word (half a word for tables of more than 65,535 cells), a kept
//! row's priority in a word (shared by the rows tables with the same `k`, which keep the same
//! rows), a kept value in half a word when the clamp fits in 32 bits and a word otherwise; an
//! exact table's sum or count of rows ([`Statistic::Total`], never noised) keeps no sample but
//! the unit's first cell and the sum of all its rows there, in two words, and its sum in each
//! other cell it has rows in (a unit may be in any number) in a map keyed by (unit, cell). One
//! record per unit keeps a row's lookup and its updates for all tables within a few cache lines.

use crate::input::{Whole, keep_largest};
use crate::policy::{Bound, Statistic};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `count_units`: keep `slots` distinct cells per unit.
    Units,
    /// `count_rows` / `sum`: keep `slots` rows per unit, at most `per_cell` of them in one cell.
    Rows { per_cell: u32 },
    /// An exact table's sum ([`Statistic::Total`]): the unit's first cell and the sum of its rows
    /// there, its sums in other cells apart ([`Bounder::whole`]).
    Whole { largest: usize },
}

/// Where a `sum` table keeps its rows' values.
#[derive(Debug, Clone, Copy)]
enum Values {
    /// Not a sum: every kept row adds 1.
    Ones,
    /// Half-words from this half-word on (the clamp fits in an `i32`).
    Narrow(usize),
    /// Words from this word on.
    Wide(usize),
    /// The unit's sum in its first cell, an `i128` in the two words from this word on.
    Total(usize),
}

/// One table's place in the unit records.
#[derive(Debug, Clone)]
struct TableSlots {
    kind: Kind,
    slots: usize,
    cells: usize,
    /// Secret key of the `count_units` priorities ([`cell_priority`]), so tables choose
    /// independently.
    key: [u64; 2],
    /// The kept cells, each `cell + 1` (0 when empty): in quarter-words (16 bits) from this
    /// quarter-word (counted from the record's start) on when `cell + 1` fits, else in
    /// half-words from this half-word on.
    cell_at: usize,
    narrow_cells: bool,
    /// Rows tables: first word of the kept rows' priorities.
    prio_at: usize,
    values: Values,
}

/// The rows tables with the same `k`. They see the same rows with the same priorities, so they
/// keep the same rows in the same slots: they share one set of priority words and one decision
/// per row.
#[derive(Debug, Clone)]
struct Group {
    slots: usize,
    prio_at: usize,
    tables: Vec<usize>,
}

impl TableSlots {
    /// How many of a unit's kept rows may count in one cell (its slots, when there is no cap).
    fn per_cell(&self) -> usize {
        match self.kind {
            Kind::Rows { per_cell } => per_cell as usize,
            Kind::Units | Kind::Whole { .. } => self.slots,
        }
    }

    /// The unit's kept cells (each `cell + 1`) with how many of its kept slots hold each, in
    /// `per_cell` (cleared first); returns how many slots are kept.
    fn kept_per_cell(&self, rec: &[u64], per_cell: &mut Vec<(u32, u32)>) -> usize {
        per_cell.clear();
        let mut n = 0;
        while n < self.slots && self.cell(rec, n) != 0 {
            let code = self.cell(rec, n);
            match per_cell.iter_mut().find(|(c, _)| *c == code) {
                Some((_, k)) => *k += 1,
                None => per_cell.push((code, 1)),
            }
            n += 1;
        }
        n
    }

    /// Kept cell `i` (`cell + 1`, or 0 when empty).
    fn cell(&self, rec: &[u64], i: usize) -> u32 {
        if self.narrow_cells {
            quarter(rec, self.cell_at + i)
        } else {
            half(rec, self.cell_at + i)
        }
    }

    fn set_cell(&self, rec: &mut [u64], i: usize, code: u32) {
        if self.narrow_cells {
            set_quarter(rec, self.cell_at + i, code as u16);
        } else {
            set_half(rec, self.cell_at + i, code);
        }
    }
}

/// Quarter-word `q` of a record, counted from its start.
fn quarter(rec: &[u64], q: usize) -> u32 {
    u32::from((rec[q / 4] >> (16 * (q % 4))) as u16)
}

fn set_quarter(rec: &mut [u64], q: usize, v: u16) {
    let shift = 16 * (q % 4);
    let w = &mut rec[q / 4];
    *w = (*w & !(0xFFFFu64 << shift)) | (u64::from(v) << shift);
}

/// Half-word `h` of a record, counted from its start.
fn half(rec: &[u64], h: usize) -> u32 {
    (rec[h / 2] >> (32 * (h % 2))) as u32
}

fn set_half(rec: &mut [u64], h: usize, v: u32) {
    let shift = 32 * (h % 2);
    let w = &mut rec[h / 2];
    *w = (*w & !(0xFFFF_FFFFu64 << shift)) | (u64::from(v) << shift);
}

/// A `count_units` priority for (unit, cell): SplitMix64's finaliser (a bijection with full
/// avalanche) of the unit's hash, the cell and the table's secret 128-bit `key`, so the same
/// (unit, cell) always gets the same priority and a unit's distinct cells get distinct,
/// well-spread ones. A keyed mix, not a cryptographic pseudo-random function: none is needed,
/// since the priorities are never shown and what a unit keeps depends only on its own rows
/// whatever they are (the uniformity is tested statistically). A real PRF (SipHash-1-3, AES)
/// here cost 5-8% of a 10-million-row release.
pub fn cell_priority(unit_hash: u64, key: [u64; 2], cell: u32) -> u64 {
    let mut z = unit_hash
        ^ key[0]
        ^ key[1].wrapping_add(u64::from(cell).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The bounded contributions of every unit of one input, for all the tables reading it.
#[derive(Debug, Clone)]
pub struct Bounder {
    tables: Vec<TableSlots>,
    /// The `count_units` tables.
    units_tables: Vec<usize>,
    /// The exact tables' sums ([`Statistic::Total`]).
    whole_tables: Vec<usize>,
    /// Per table of [`Bounder::whole_tables`], each unit's sum in each cell it has rows in but
    /// its first (in the record), by `(unit id << 32) | cell`.
    whole: Vec<WholeSums>,
    groups: Vec<Group>,
    /// Words per unit record: the caller's words, the groups' priorities, wide
    /// values, then half-words (narrow values, cells of very large tables), then quarter-words
    /// (the other tables' cells).
    stride: usize,
    /// The caller's words per unit.
    head: usize,
    words: Vec<u64>,
    /// Units recorded (`words.len() / stride`, kept apart: a division on every new unit was
    /// a visible cost).
    count: usize,
    /// Words of `words`' allocation already mapped ([`Bounder::populate_ahead`]).
    populated: usize,
    /// Words mapped at a time: [`POPULATE_WORDS`], or less under a small memory limit.
    populate_words: usize,
}

impl TableSlots {
    /// A table's slots in a unit's record, before they are placed: how it bounds (its kind and
    /// how many slots that keeps), what values it keeps, its cells and its key.
    fn of(statistic: &Statistic, cells: usize, key: [u64; 2]) -> TableSlots {
        let (kind, slots) = match statistic.bound() {
            Bound::Cells(c) => (Kind::Units, c),
            Bound::Rows { per_unit, per_cell } => (Kind::Rows { per_cell }, per_unit),
            Bound::Whole => {
                let largest = match statistic {
                    Statistic::Total { largest, .. } => *largest as usize,
                    _ => 0,
                };
                (Kind::Whole { largest }, 1)
            }
        };
        let values = match statistic {
            Statistic::Sum { lo, hi, .. }
                if i32::try_from(*lo).is_ok() && i32::try_from(*hi).is_ok() =>
            {
                Values::Narrow(0)
            }
            Statistic::Sum { .. } => Values::Wide(0),
            Statistic::Total { .. } => Values::Total(0),
            _ => Values::Ones,
        };
        TableSlots {
            kind,
            slots: slots as usize,
            cells,
            key,
            cell_at: 0,
            narrow_cells: cells <= usize::from(u16::MAX),
            prio_at: 0,
            values,
        }
    }
}

impl Bounder {
    /// One table per `(statistic, cells, key)` (`key`: the secret of its `count_units`
    /// priorities); every unit record also keeps `head` words for the caller (see
    /// [`Bounder::add_unit`]).
    // About 75 lines on purpose: it lays out one record's words, half-words and quarter-words
    // in a single pass whose offsets depend on each other; read top to bottom it is the
    // record's map.
    pub fn new(tables: &[(Statistic, usize, [u64; 2])], head: usize) -> Bounder {
        let mut tables: Vec<TableSlots> = tables
            .iter()
            .map(|(statistic, cells, key)| TableSlots::of(statistic, *cells, *key))
            .collect();
        // Words: head, then priorities per group, then wide values.
        let mut word = head;
        let mut groups: Vec<Group> = Vec::new();
        for (t, table) in tables.iter_mut().enumerate() {
            if !matches!(table.kind, Kind::Rows { .. }) {
                continue;
            }
            let group = match groups.iter_mut().find(|g| g.slots == table.slots) {
                Some(g) => g,
                None => {
                    groups.push(Group {
                        slots: table.slots,
                        prio_at: word,
                        tables: Vec::new(),
                    });
                    word += table.slots;
                    groups.last_mut().expect("just pushed")
                }
            };
            group.tables.push(t);
            table.prio_at = group.prio_at;
        }
        for table in &mut tables {
            match &mut table.values {
                Values::Wide(at) => {
                    *at = word;
                    word += table.slots;
                }
                Values::Total(at) => {
                    *at = word;
                    word += 2;
                }
                _ => {}
            }
        }
        // Half-words: narrow values, then the cells of tables with more than 65,535 cells; then
        // quarter-words: the other tables' cells.
        let mut h = 2 * word;
        for table in &mut tables {
            if let Values::Narrow(at) = &mut table.values {
                *at = h;
                h += table.slots;
            }
        }
        for table in tables.iter_mut().filter(|t| !t.narrow_cells) {
            table.cell_at = h;
            h += table.slots;
        }
        let mut q = 2 * h;
        for table in tables.iter_mut().filter(|t| t.narrow_cells) {
            table.cell_at = q;
            q += table.slots;
        }
        let units_tables = (0..tables.len())
            .filter(|&t| tables[t].kind == Kind::Units)
            .collect();
        let whole_tables: Vec<usize> = (0..tables.len())
            .filter(|&t| matches!(tables[t].kind, Kind::Whole { .. }))
            .collect();
        Bounder {
            whole: vec![WholeSums::default(); whole_tables.len()],
            tables,
            units_tables,
            whole_tables,
            groups,
            stride: q.div_ceil(4).max(1),
            head,
            words: Vec::new(),
            count: 0,
            populated: 0,
            populate_words: POPULATE_WORDS,
        }
    }

    /// Bytes one unit takes (its record).
    pub fn bytes_per_unit(&self) -> usize {
        self.stride * 8
    }

    pub fn units(&self) -> usize {
        self.count
    }

    /// Reserves room for `units` more units (address space only until used).
    pub fn reserve(&mut self, units: usize) {
        self.words.reserve(units.saturating_mul(self.stride));
    }

    /// Adds a unit with the caller's words `head` (as many as given to [`Bounder::new`]);
    /// returns its id.
    pub fn add_unit(&mut self, head: &[u64]) -> u32 {
        debug_assert_eq!(head.len(), self.head);
        let id = self.count as u32;
        self.count += 1;
        if self.words.len() + self.stride > self.populated.min(self.words.capacity()) {
            self.populate_ahead();
        }
        self.words.extend_from_slice(head);
        self.words
            .resize(self.words.len() + self.stride - self.head, 0);
        id
    }

    /// Maps at most `bytes` of records ahead of the units (their memory limit's share).
    pub fn limit_populate(&mut self, bytes: u64) {
        self.populate_words = self.populate_words.min((bytes / 8) as usize);
    }

    /// Bytes of the records' allocation mapped ahead of the units ([`Bounder::populate_ahead`]):
    /// memory the units take before they hold anything.
    pub fn populated_ahead(&self) -> usize {
        self.populated
            .min(self.words.capacity())
            .saturating_sub(self.words.len())
            * 8
    }

    /// Asks the kernel to map the next `populate_words` of the reserved records at once, so
    /// that new units do not take one page fault per page (the page faults were 0.34 s of the
    /// release's 0.50 s of system time on a virtual machine; BENCHMARKS.md, issue 27). Only
    /// ever within the vector's allocation; the pages keep their contents, so the effect is
    /// only on speed.
    fn populate_ahead(&mut self) {
        let (from, capacity) = (self.words.len(), self.words.capacity());
        let to = (from + self.populate_words).min(capacity);
        self.populated = to.max(from + self.stride);
        #[cfg(target_os = "linux")]
        if to > from {
            // SAFETY: sysconf only reads a constant of the system.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
                .ok()
                .filter(|p| p.is_power_of_two())
                .unwrap_or(4096);
            let base = self.words.as_ptr() as usize;
            let (start, end) = (
                (base + from * 8) & !(page - 1),
                (base + to * 8) & !(page - 1),
            );
            if end > start {
                // SAFETY: every page of [start, end) holds bytes of the vector's allocation:
                // `end` is at most its end (`to` is at most its capacity), and `start` is the
                // first byte of the page that holds word `from`, which is in it. The range may
                // begin before the allocation, in that page, and that page may hold another
                // allocation's bytes: MADV_POPULATE_WRITE only maps pages in, as a write would,
                // never changing what they hold. A kernel without it (before 5.14) fails the
                // call, which changes nothing.
                unsafe {
                    libc::madvise(
                        start as *mut libc::c_void,
                        end - start,
                        libc::MADV_POPULATE_WRITE,
                    );
                }
            }
        }
    }

    /// The caller's words of `unit`.
    pub fn head(&self, unit: u32) -> &[u64] {
        let start = unit as usize * self.stride;
        &self.words[start..start + self.head]
    }

    /// Starts loading `unit`'s record into the cache, so that a later lookup or update of it does
    /// not wait on memory.
    pub fn prefetch(&self, unit: u32) {
        let start = unit as usize * self.stride;
        if let Some(rec) = self.words.get(start..start + self.stride) {
            for line in rec.chunks(8) {
                prefetch(line.as_ptr());
            }
        }
    }

    /// Records one row of `unit`, whose keyed hash is `unit_hash` (the same for all its rows):
    /// for table `t`, a contribution of `values[t]` (1 for counts) to `cells[t]`. `row_prio` is
    /// the row's random priority.
    pub fn observe_row(
        &mut self,
        (unit, unit_hash): (u32, u64),
        row_prio: u64,
        cells: &[u32],
        values: &[i64],
    ) {
        let start = unit as usize * self.stride;
        let rec = &mut self.words[start..start + self.stride];
        for &t in &self.units_tables {
            observe_cell(rec, &self.tables[t], cells[t], unit_hash);
        }
        for (&t, others) in self.whole_tables.iter().zip(&mut self.whole) {
            let table = &self.tables[t];
            let Values::Total(at) = table.values else {
                unreachable!("a whole table")
            };
            let v = i128::from(values[t]);
            match table.cell(rec, 0) {
                0 => table.set_cell(rec, 0, cells[t] + 1),
                first if first == cells[t] + 1 => {}
                _ => {
                    *others
                        .entry((u64::from(unit) << 32) | u64::from(cells[t]))
                        .or_default() += v;
                    continue;
                }
            }
            let sum = total(rec, at) + v;
            rec[at] = sum as u64;
            rec[at + 1] = (sum >> 64) as u64;
        }
        for group in &self.groups {
            // The group's tables fill and replace their slots together.
            let first = &self.tables[group.tables[0]];
            let slot = match (0..group.slots).find(|&i| first.cell(rec, i) == 0) {
                Some(i) => i,
                None => {
                    let prios = &rec[group.prio_at..group.prio_at + group.slots];
                    let (worst, &worst_prio) = prios
                        .iter()
                        .enumerate()
                        .max_by_key(|&(_, p)| p)
                        .expect("slots >= 1");
                    if row_prio >= worst_prio {
                        continue;
                    }
                    worst
                }
            };
            rec[group.prio_at + slot] = row_prio;
            for &t in &group.tables {
                let table = &self.tables[t];
                table.set_cell(rec, slot, cells[t] + 1);
                match table.values {
                    Values::Ones | Values::Total(_) => {}
                    Values::Narrow(at) => set_half(rec, at + slot, values[t] as i32 as u32),
                    Values::Wide(at) => rec[at + slot] = values[t] as u64,
                }
            }
        }
    }

    /// Per table of rows (`count_rows`, `sum`): how many rows its units keep under
    /// `max_rows_per_unit` (each unit its `k` slots, at most) and then under `max_rows_per_cell`
    /// too (at most `m` of those in one cell); `None` for other tables. For `check`'s figures:
    /// which rows a unit keeps is random, so the second depends on the draw when both bind.
    pub fn kept_rows(&self) -> Vec<Option<[u64; 2]>> {
        let mut per_cell: Vec<(u32, u32)> = Vec::new();
        self.tables
            .iter()
            .map(|table| {
                let Kind::Rows { per_cell: m } = table.kind else {
                    return None;
                };
                let (mut slots, mut kept) = (0u64, 0u64);
                for rec in self.words.chunks_exact(self.stride) {
                    slots += table.kept_per_cell(rec, &mut per_cell) as u64;
                    kept += per_cell
                        .iter()
                        .map(|&(_, n)| u64::from(n.min(m)))
                        .sum::<u64>();
                }
                Some([slots, kept])
            })
            .collect()
    }

    /// Per exact sum table ([`Statistic::Total`], in table order), what its units contributed
    /// ([`Whole`]): per cell, its units and the largest sums of those in no other cell, and
    /// each unit in several cells with its sum in each. Ties keep equal values, so the lists do
    /// not depend on the order of the units.
    pub fn whole(&self) -> Vec<Whole> {
        self.whole_tables
            .iter()
            .zip(&self.whole)
            .map(|(&t, others)| {
                let table = &self.tables[t];
                let (Kind::Whole { largest: k }, Values::Total(at)) = (table.kind, table.values)
                else {
                    unreachable!("a whole table")
                };
                // The units with other cells, in unit order, beside the records.
                let mut more: Vec<(u64, i128)> = others.iter().map(|(&k, &v)| (k, v)).collect();
                more.sort_unstable_by_key(|e| e.0);
                let mut more = more.into_iter().peekable();
                let mut out = Whole {
                    units: vec![0; table.cells],
                    largest: vec![Vec::new(); table.cells],
                    spanning: Vec::new(),
                };
                for (unit, rec) in self.words.chunks_exact(self.stride).enumerate() {
                    let code = table.cell(rec, 0);
                    if code == 0 {
                        continue;
                    }
                    let (first, sum) = (code - 1, total(rec, at));
                    out.units[first as usize] += 1;
                    let mut cells = Vec::new();
                    while let Some(&(key, v)) = more.peek().filter(|e| e.0 >> 32 == unit as u64) {
                        let cell = (key & u64::from(u32::MAX)) as u32;
                        out.units[cell as usize] += 1;
                        cells.push((cell, v));
                        more.next();
                    }
                    if cells.is_empty() {
                        keep_largest(&mut out.largest[first as usize], sum, k);
                    } else {
                        cells.push((first, sum));
                        out.spanning.push(cells);
                    }
                }
                out
            })
            .collect()
    }

    /// Applies the per-cell caps and adds every unit's kept contributions into exact cells, one
    /// vector per table, then one per `sum` table (in table order) counting each cell's
    /// contributors: the distinct units among its kept rows. Cells are `i128`: a sum of up to
    /// 2^64 clamped `i64` values cannot wrap.
    pub fn finish(self) -> Vec<Vec<i128>> {
        let mut out = self.zero_cells();
        self.add_cells(&mut out);
        out
    }

    /// [`Bounder::finish`]'s vectors, every cell zero.
    pub fn zero_cells(&self) -> Vec<Vec<i128>> {
        let contributors = self
            .tables
            .iter()
            .filter(|t| matches!(t.values, Values::Narrow(_) | Values::Wide(_)));
        self.tables
            .iter()
            .chain(contributors)
            .map(|t| vec![0; t.cells])
            .collect()
    }

    /// Adds the units' kept contributions into `out` ([`Bounder::zero_cells`]'s shape), as
    /// [`Bounder::finish`] counts them.
    pub fn add_cells(&self, out: &mut [Vec<i128>]) {
        let (out, contributors) = out.split_at_mut(self.tables.len());
        // Per sum table (in table order), its contributors.
        let mut sums = 0;
        let contributor_of: Vec<Option<usize>> = self
            .tables
            .iter()
            .map(|t| {
                matches!(t.values, Values::Narrow(_) | Values::Wide(_)).then(|| {
                    sums += 1;
                    sums - 1
                })
            })
            .collect();
        let mut scratch: SumScratch = Default::default();
        // Table by table over blocks of records that stay in the cache: each table's loop then
        // takes one path, instead of every record going through every table's branches.
        for block in self.words.chunks(self.stride * FINISH_BLOCK) {
            for (t, (table, out)) in self.tables.iter().zip(out.iter_mut()).enumerate() {
                let records = block.chunks_exact(self.stride);
                match (table.kind, table.values) {
                    (_, Values::Total(at)) => {
                        for rec in records {
                            if let code @ 1.. = table.cell(rec, 0) {
                                out[code as usize - 1] += total(rec, at);
                            }
                        }
                    }
                    // Every kept cell (or kept row of a count whose per-cell cap cannot bind)
                    // adds one.
                    (Kind::Units, _) | (Kind::Rows { .. }, Values::Ones)
                        if table.per_cell() >= table.slots =>
                    {
                        for rec in records {
                            for i in 0..table.slots {
                                match table.cell(rec, i) {
                                    0 => break,
                                    code => out[code as usize - 1] += 1,
                                }
                            }
                        }
                    }
                    // A count adds, per cell, its kept rows up to the cap: which of them are
                    // kept does not change the count.
                    (_, Values::Ones) => {
                        let m = table.per_cell() as u32;
                        let per_cell = &mut scratch.1;
                        for rec in records {
                            table.kept_per_cell(rec, per_cell);
                            for &(code, n) in per_cell.iter() {
                                out[code as usize - 1] += i128::from(n.min(m));
                            }
                        }
                    }
                    (_, values) => {
                        let contributors =
                            &mut contributors[contributor_of[t].expect("a sum has contributors")];
                        for rec in records {
                            finish_sum(table, values, rec, out, contributors, &mut scratch);
                        }
                    }
                }
            }
        }
        for (&t, others) in self.whole_tables.iter().zip(&self.whole) {
            for (&key, &v) in others {
                out[t][(key & u64::from(u32::MAX)) as usize] += v;
            }
        }
    }

    /// Forgets every unit, keeping the memory, and makes room for `units` units.
    pub fn clear(&mut self, units: usize) {
        self.words.clear();
        self.count = 0;
        for w in &mut self.whole {
            w.clear();
        }
        let needed = units.saturating_mul(self.stride);
        if self.words.capacity() < needed {
            // A new allocation: none of it mapped yet.
            self.words = Vec::with_capacity(needed);
            self.populated = 0;
        }
    }

    /// Bytes the exact sums' maps take beyond the unit records (an estimate: a map entry of a
    /// key, a sum and the map's overhead).
    pub fn whole_bytes(&self) -> usize {
        self.whole.iter().map(|m| m.capacity() * 32).sum()
    }
}

/// The `i128` in the two words of `rec` from `at` on.
fn total(rec: &[u64], at: usize) -> i128 {
    i128::from(rec[at]) | (i128::from(rec[at + 1] as i64) << 64)
}

/// Each unit's sum per cell of one exact table but its first, by `(unit id << 32) | cell`.
type WholeSums = std::collections::HashMap<u64, i128, foldhash::fast::FixedState>;

/// Adds a unit's `kept` rows (sorted by priority) into `out`, at most `m` per cell; `per_cell`
/// lists each cell and how many rows it kept.
fn keep_per_cell(
    kept: &[(u64, u32, i128)],
    m: u32,
    per_cell: &mut Vec<(u32, u32)>,
    out: &mut [i128],
) {
    for &(_, c, v) in kept {
        let slot = match per_cell.iter_mut().find(|(cell, _)| *cell == c) {
            Some(slot) => slot,
            None => {
                per_cell.push((c, 0));
                per_cell.last_mut().expect("just pushed")
            }
        };
        if slot.1 < m {
            slot.1 += 1;
            out[c as usize] += v;
        }
    }
}

/// Records [`Bounder::finish`] takes at a time, table by table (a block of them stays in the
/// cache while every table reads it).
const FINISH_BLOCK: usize = 256;

/// Adds one unit's kept rows of a `sum` table (`values`: where its record keeps them) into
/// `out`, at most `m` in a cell, the lowest-priority ones; and the unit once into
/// `contributors` in each cell where it kept a row. `scratch` is room for its kept cells and,
/// when the cap binds, its kept rows.
fn finish_sum(
    table: &TableSlots,
    values: Values,
    rec: &[u64],
    out: &mut [i128],
    contributors: &mut [i128],
    scratch: &mut SumScratch,
) {
    let value = |i: usize| match values {
        Values::Narrow(at) => i128::from(half(rec, at + i) as i32),
        Values::Wide(at) => i128::from(rec[at + i] as i64),
        Values::Ones | Values::Total(_) => unreachable!("a sum"),
    };
    let (kept, per_cell) = scratch;
    let n = table.kept_per_cell(rec, per_cell);
    for &(code, _) in per_cell.iter() {
        contributors[code as usize - 1] += 1;
    }
    let m = table.per_cell();
    if n <= m {
        for i in 0..n {
            out[table.cell(rec, i) as usize - 1] += value(i);
        }
        return;
    }
    // Lowest priorities first: each cell keeps a uniform m-subset of its rows.
    kept.clear();
    kept.extend((0..n).map(|i| (rec[table.prio_at + i], table.cell(rec, i) - 1, value(i))));
    kept.sort_unstable_by_key(|&(p, _, _)| p);
    per_cell.clear();
    keep_per_cell(kept, m as u32, per_cell, out);
}

/// A unit's kept rows of a `sum` table (priority, cell, value) and, per cell, how many count.
type SumScratch = (Vec<(u64, u32, i128)>, Vec<(u32, u32)>);

/// Words of unit records mapped at a time (8 MiB).
const POPULATE_WORDS: usize = 1 << 20;

/// Asks the CPU to start loading the cache line holding `p`. Only a hint: it never faults and
/// never changes a result, so its only effect is on speed.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing into the program and cannot fault, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `count_units`: keep `cell` if it is new and among the `c` lowest-priority cells of the unit
/// with keyed hash `hash`.
fn observe_cell(rec: &mut [u64], table: &TableSlots, cell: u32, hash: u64) {
    let code = cell + 1;
    let mut n = 0;
    while n < table.slots {
        match table.cell(rec, n) {
            0 => break,
            c if c == code => return,
            _ => n += 1,
        }
    }
    if n < table.slots {
        table.set_cell(rec, n, code);
        return;
    }
    let (mut worst, mut worst_prio) = (0, 0u64);
    for i in 0..table.slots {
        let p = cell_priority(hash, table.key, table.cell(rec, i) - 1);
        if i == 0 || p > worst_prio {
            (worst, worst_prio) = (i, p);
        }
    }
    if cell_priority(hash, table.key, cell) < worst_prio {
        table.set_cell(rec, worst, code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn rows(k: u32, m: u32) -> Statistic {
        Statistic::CountRows {
            max_rows_per_unit: k,
            max_rows_per_cell: m,
        }
    }

    fn units(c: u32) -> Statistic {
        Statistic::CountUnits {
            max_cells_per_unit: c,
        }
    }

    /// A single-table bounder and a helper to feed it.
    fn one(stat: Statistic, cells: usize) -> Bounder {
        Bounder::new(&[(stat, cells, [99, 98])], 0)
    }

    fn feed(b: &mut Bounder, unit: (u32, u64), prio: u64, cell: u32, value: i64) {
        b.observe_row(unit, prio, &[cell], &[value]);
    }

    /// Adds a unit with keyed hash `hash`: its id and hash, as [`Bounder::observe_row`] takes
    /// them.
    fn add(b: &mut Bounder, hash: u64, head: &[u64]) -> (u32, u64) {
        (b.add_unit(head), hash)
    }

    #[test]
    fn a_unit_with_fifty_rows_keeps_exactly_k() {
        let mut rng = StdRng::from_entropy();
        let mut b = one(rows(4, 4), 50);
        let (u, v) = (add(&mut b, 1, &[]), add(&mut b, 2, &[]));
        for cell in 0..50 {
            feed(&mut b, u, rng.r#gen(), cell, 1);
        }
        feed(&mut b, v, rng.r#gen(), 7, 1);
        let cells = b.finish().remove(0);
        assert_eq!(cells.iter().sum::<i128>(), 5);
        assert!(cells.iter().all(|&c| c <= 2));
    }

    #[test]
    fn kept_rows_counts_what_each_bound_leaves() {
        // k = 10, m = 3: a unit with 50 rows in one cell keeps 10, then 3; one with 2 rows in
        // two cells keeps both; a count of units has no rows to count.
        let mut b = Bounder::new(&[(rows(10, 3), 4, [1, 2]), (units(1), 4, [3, 4])], 0);
        let u = add(&mut b, 1, &[]);
        for p in 0..50 {
            b.observe_row(u, p, &[0, 0], &[1, 1]);
        }
        let v = add(&mut b, 2, &[]);
        b.observe_row(v, 7, &[1, 1], &[1, 1]);
        b.observe_row(v, 8, &[2, 2], &[1, 1]);
        assert_eq!(b.kept_rows(), [Some([12, 5]), None]);
    }

    #[test]
    fn per_cell_cap_applies_after_the_row_cap() {
        let mut rng = StdRng::from_entropy();
        let mut b = one(rows(4, 1), 3);
        let u = add(&mut b, 1, &[]);
        for _ in 0..10 {
            feed(&mut b, u, rng.r#gen(), 0, 1);
        }
        feed(&mut b, u, rng.r#gen(), 1, 1);
        let cells = b.finish().remove(0);
        assert!(cells[0] <= 1 && cells[1] <= 1 && cells[2] == 0, "{cells:?}");
    }

    #[test]
    fn count_units_counts_each_unit_once_per_cell_and_at_most_c_cells() {
        let mut b = one(units(2), 5);
        let (u, v) = (add(&mut b, 12345, &[]), add(&mut b, 777, &[]));
        for cell in [0, 0, 1, 2, 3, 4, 0] {
            feed(&mut b, u, 0, cell, 1);
        }
        feed(&mut b, v, 0, 3, 1);
        feed(&mut b, v, 0, 3, 1);
        let cells = b.finish().remove(0);
        assert_eq!(cells.iter().sum::<i128>(), 3);
        assert!(cells.iter().all(|&c| c <= 2));
    }

    #[test]
    fn sums_keep_their_values_and_tables_share_a_record() {
        let sum = Statistic::Sum {
            column: "x".into(),
            lo: -100,
            hi: 100,
            max_rows_per_unit: 2,
            max_rows_per_cell: 2,
        };
        let mut b = Bounder::new(
            &[
                (sum, 2, [1, 0]),
                (units(1), 3, [2, 0]),
                (rows(3, 3), 2, [3, 0]),
            ],
            2,
        );
        // Head, priorities for k = 2 and k = 3, the sum's 2 narrow values in half-words,
        // then cells 2 + 1 + 3 in quarter-words.
        assert_eq!(b.bytes_per_unit(), 8 * (2 + 2 + 3 + 1 + 2));
        let u = add(&mut b, 5, &[17, 19]);
        b.observe_row(u, 5, &[0, 2, 1], &[40, 1, 1]);
        b.observe_row(u, 1, &[1, 2, 1], &[-30, 1, 1]);
        b.observe_row(u, 9, &[1, 2, 0], &[100, 1, 1]); // highest priority: dropped by the sum
        assert_eq!(b.head(u.0), [17, 19]);
        let out = b.finish();
        // Then the sum's contributors: the unit kept a row in each of its cells.
        assert_eq!(out, [vec![40, -30], vec![0, 0, 1], vec![1, 2], vec![1, 1]]);
    }

    /// A sum's contributors count each unit once in every cell where it kept a row, after both
    /// caps: never its rows, and never a cell whose rows were all dropped.
    #[test]
    fn contributors_count_units_not_rows_after_the_caps() {
        let sum = Statistic::Sum {
            column: "x".into(),
            lo: 0,
            hi: 10,
            max_rows_per_unit: 3,
            max_rows_per_cell: 2,
        };
        let mut b = one(sum, 4);
        let (u, v, w) = (
            add(&mut b, 1, &[]),
            add(&mut b, 2, &[]),
            add(&mut b, 3, &[]),
        );
        // u: three rows in cell 0 (the cap keeps 2) and one in cell 1 (kept: the 3 lowest
        // priorities are 1, 2, 3, cell 1's row among them).
        for (prio, cell) in [(1, 0), (2, 0), (3, 1), (4, 0)] {
            feed(&mut b, u, prio, cell, 5);
        }
        // v: one row in cell 1; w: its row in cell 3 loses to three better rows in cell 2.
        feed(&mut b, v, 1, 1, 7);
        for (prio, cell) in [(1, 2), (2, 2), (3, 2), (9, 3)] {
            feed(&mut b, w, prio, cell, 1);
        }
        let out = b.finish();
        assert_eq!(out[0], [10, 12, 2, 0]);
        assert_eq!(out[1], [1, 2, 1, 0]);
    }

    /// Values whose clamp does not fit in 32 bits are kept whole, negative ones included.
    #[test]
    fn wide_sums_keep_their_values() {
        let sum = Statistic::Sum {
            column: "x".into(),
            lo: -(1 << 40),
            hi: 1 << 40,
            max_rows_per_unit: 3,
            max_rows_per_cell: 3,
        };
        let mut b = one(sum, 2);
        let u = add(&mut b, 3, &[]);
        feed(&mut b, u, 1, 0, -(1 << 40));
        feed(&mut b, u, 2, 1, (1 << 35) + 7);
        feed(&mut b, u, 3, 1, 5);
        assert_eq!(b.finish().remove(0), [-(1 << 40), (1 << 35) + 12]);
    }

    /// Tables of more than 65,535 cells keep their cells in half-words, beside tables that keep
    /// theirs in quarter-words: the highest cells of each are counted where they belong.
    #[test]
    fn cells_of_small_and_very_large_tables() {
        let big = 100_000;
        let tables = [
            (units(2), big, [1, 0]),
            (units(1), 65_535, [2, 0]),
            (rows(3, 3), 65_536, [3, 0]),
            (rows(3, 3), 7, [4, 0]),
        ];
        let mut b = Bounder::new(&tables, 0);
        let (u, v) = (add(&mut b, 1, &[]), add(&mut b, 2, &[]));
        b.observe_row(u, 1, &[big as u32 - 1, 65_534, 65_535, 6], &[1; 4]);
        b.observe_row(u, 2, &[big as u32 - 2, 65_534, 0, 6], &[1; 4]);
        b.observe_row(v, 3, &[0, 0, 65_535, 5], &[1; 4]);
        let out = b.finish();
        let nonzero = |t: usize| -> Vec<(usize, i128)> {
            out[t]
                .iter()
                .copied()
                .enumerate()
                .filter(|&(_, c)| c != 0)
                .collect()
        };
        assert_eq!(nonzero(0), [(0, 1), (big - 2, 1), (big - 1, 1)]);
        assert_eq!(nonzero(1), [(0, 1), (65_534, 1)]);
        assert_eq!(nonzero(2), [(0, 1), (65_535, 2)]);
        assert_eq!(nonzero(3), [(5, 1), (6, 2)]);
    }

    /// Rows tables with the same `k` share their priorities and so keep the same rows: a count
    /// and a sum over the same 50 rows agree on which 4 they kept.
    #[test]
    fn rows_tables_with_the_same_k_keep_the_same_rows() {
        let mut rng = StdRng::from_entropy();
        let sum = Statistic::Sum {
            column: "x".into(),
            lo: 0,
            hi: 1000,
            max_rows_per_unit: 4,
            max_rows_per_cell: 4,
        };
        for _ in 0..100 {
            let mut b = Bounder::new(&[(rows(4, 4), 50, [1, 0]), (sum.clone(), 50, [2, 0])], 0);
            let u = add(&mut b, 1, &[]);
            for cell in 0..50 {
                b.observe_row(u, rng.r#gen(), &[cell, cell], &[1, i64::from(cell) + 1]);
            }
            let out = b.finish();
            assert_eq!(out[0].iter().sum::<i128>(), 4);
            for (cell, (&count, &sum)) in out[0].iter().zip(&out[1]).enumerate() {
                assert_eq!(sum, count * (cell as i128 + 1));
            }
        }
    }

    /// A unit's rows reach its record in whatever order the readers deliver them (its own
    /// chunk's rows and other chunks' rows interleaved), so what is kept must not depend on the
    /// order: any permutation of the same rows gives the same exact cells.
    #[test]
    fn what_is_kept_does_not_depend_on_row_order() {
        use rand::seq::SliceRandom;
        let mut rng = StdRng::from_entropy();
        let tables = [
            (rows(4, 4), 6, [1, 0]),
            (rows(5, 2), 6, [2, 0]),
            (units(3), 6, [3, 0]),
        ];
        let bounded = |obs: &[(u32, u64, u32)]| {
            let mut b = Bounder::new(&tables, 1);
            for u in 0..3u64 {
                b.add_unit(&[u]);
            }
            for &(u, p, c) in obs {
                let hash = u64::from(u) * 0x1234_5678_9ABC;
                b.observe_row((u, hash), p, &[c, c, c], &[1, 1, 1]);
            }
            b.finish()
        };
        for _ in 0..500 {
            let mut obs: Vec<(u32, u64, u32)> = (0..rng.gen_range(1..40))
                .map(|_| (rng.gen_range(0..3), rng.r#gen(), rng.gen_range(0..6)))
                .collect();
            let first = bounded(&obs);
            obs.shuffle(&mut rng);
            assert_eq!(bounded(&obs), first);
        }
    }

    /// Each of a unit's 50 rows must be kept with probability k/50, whatever its position in the
    /// file. Over N trials a row's keep count is Binomial(N, p); Hoeffding bounds the chance that
    /// any of the 50 rows strays by more than t*N from N*p by 50 * 2 * exp(-2 N t^2). With
    /// N = 20,000 and t = 0.03 that is 100 * exp(-36) < 3e-14: the false-failure probability.
    /// A "keep the first k" bug gives row 0 a frequency of 1.0 instead of 0.08 and fails.
    #[test]
    fn kept_rows_are_a_uniform_sample() {
        let mut rng = StdRng::from_entropy();
        let (n_rows, k, trials) = (50u32, 4u32, 20_000u32);
        let mut kept = vec![0u32; n_rows as usize];
        for _ in 0..trials {
            let mut b = one(rows(k, k), n_rows as usize);
            let u = add(&mut b, 0, &[]);
            for row in 0..n_rows {
                feed(&mut b, u, rng.r#gen(), row, 1);
            }
            for (row, c) in b.finish().remove(0).into_iter().enumerate() {
                kept[row] += c as u32;
            }
        }
        let p = f64::from(k) / f64::from(n_rows);
        for (row, &c) in kept.iter().enumerate() {
            let freq = f64::from(c) / f64::from(trials);
            assert!(
                (freq - p).abs() < 0.03,
                "row {row} kept with frequency {freq}, expected {p}"
            );
        }
    }

    /// Same check for the cells a `count_units` unit keeps (each of 10 cells with probability
    /// 3/10), with a fresh unit hash per trial as a fresh unit would get. The first cell is seen
    /// 5 times, to show duplicates do not raise a cell's chances. False-failure probability
    /// 10 * 2 * exp(-2 * 20,000 * 0.03^2) < 5e-15.
    #[test]
    fn kept_cells_are_a_uniform_sample() {
        let mut rng = StdRng::from_entropy();
        let trials = 20_000u32;
        let mut kept = [0u32; 10];
        for _ in 0..trials {
            let mut b = Bounder::new(&[(units(3), 10, rng.r#gen())], 0);
            let u = add(&mut b, rng.r#gen(), &[]);
            for cell in [0, 0, 0, 0].into_iter().chain(0..10) {
                feed(&mut b, u, 0, cell, 1);
            }
            for (cell, c) in b.finish().remove(0).into_iter().enumerate() {
                kept[cell] += c as u32;
            }
        }
        for (cell, &c) in kept.iter().enumerate() {
            let freq = f64::from(c) / f64::from(trials);
            assert!(
                (freq - 0.3).abs() < 0.03,
                "cell {cell} kept with frequency {freq}"
            );
        }
    }

    /// Every table kind against the bounding rules applied directly to each unit's rows: a rows
    /// table keeps the unit's `k` lowest-priority rows, then in each cell the `m` lowest of
    /// those, and a sum's contributors are the cells among its `k` rows; a `count_units` table
    /// keeps the unit's `c` cells of lowest [`cell_priority`]. Random units of up to 12 rows in
    /// up to 5 cells, priorities distinct, caps that bind and caps that do not.
    #[test]
    fn finish_follows_the_bounding_rules_on_random_units() {
        use rand::seq::SliceRandom;
        /// A row: its priority, cell and value.
        type Row = (u64, u32, i64);
        let mut rng = StdRng::from_entropy();
        let sum = |k, m, lo: i64, hi: i64| Statistic::Sum {
            column: "x".into(),
            lo,
            hi,
            max_rows_per_unit: k,
            max_rows_per_cell: m,
        };
        let total = Statistic::Total {
            column: None,
            largest: 0,
        };
        let wide = 1i64 << 40;
        let tables = [
            (rows(4, 1), 5, [1, 0]),
            (rows(4, 4), 5, [2, 0]),
            (rows(3, 2), 5, [3, 0]),
            (sum(4, 4, 0, 200), 5, [4, 0]),
            (sum(4, 2, -50, 50), 5, [5, 0]),
            (sum(3, 1, -wide, wide), 5, [6, 0]),
            (units(1), 5, [7, 0]),
            (units(2), 70_000, [8, 0]),
            (total, 5, [9, 0]),
        ];
        for _ in 0..300 {
            let mut b = Bounder::new(&tables, 0);
            let n_units = rng.gen_range(1..40);
            // Per unit: its hash and its rows.
            let mut units_rows: Vec<(u64, Vec<Row>)> = Vec::new();
            let mut prios: Vec<u64> = (0..n_units as u64 * 12).collect();
            prios.shuffle(&mut rng);
            for u in 0..n_units {
                let hash = rng.r#gen();
                let n = rng.gen_range(1..=12);
                let rows = (0..n)
                    .map(|i| {
                        (
                            prios[u * 12 + i],
                            rng.gen_range(0..5),
                            rng.gen_range(-50..=50),
                        )
                    })
                    .collect();
                units_rows.push((hash, rows));
            }
            let mut expected: Vec<Vec<i128>> = tables.iter().map(|t| vec![0; t.1]).collect();
            let mut contributors = vec![vec![0i128; 5]; 3];
            for (hash, rows) in &units_rows {
                let unit = add(&mut b, *hash, &[]);
                for &(p, c, v) in rows {
                    let value = |t: usize| if t == 5 { v * (wide / 50) } else { v };
                    let values: Vec<i64> = (0..tables.len()).map(value).collect();
                    b.observe_row(unit, p, &[c; 9], &values);
                }
                let mut by_prio = rows.clone();
                by_prio.sort_unstable();
                for (t, (stat, _, key)) in tables.iter().enumerate() {
                    match stat.bound() {
                        Bound::Rows { per_unit, per_cell } => {
                            let kept = &by_prio[..by_prio.len().min(per_unit as usize)];
                            let mut in_cell = [0u32; 5];
                            for &(_, c, v) in kept {
                                in_cell[c as usize] += 1;
                                if in_cell[c as usize] <= per_cell {
                                    let v = if t == 5 { v * (wide / 50) } else { v };
                                    let counted = if t < 3 { 1 } else { v };
                                    expected[t][c as usize] += i128::from(counted);
                                }
                            }
                            if t >= 3 {
                                for c in 0..5 {
                                    contributors[t - 3][c] += i128::from(in_cell[c] > 0);
                                }
                            }
                        }
                        Bound::Cells(c) => {
                            let mut cells: Vec<u32> = rows.iter().map(|r| r.1).collect();
                            cells.sort_unstable();
                            cells.dedup();
                            cells.sort_by_key(|&cell| cell_priority(*hash, *key, cell));
                            for &cell in cells.iter().take(c as usize) {
                                expected[t][cell as usize] += 1;
                            }
                        }
                        Bound::Whole => {
                            for &(_, c, v) in rows {
                                expected[t][c as usize] += i128::from(v);
                            }
                        }
                    }
                }
            }
            expected.extend(contributors);
            assert_eq!(b.finish(), expected);
        }
    }
}
