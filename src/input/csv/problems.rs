//! The bad rows of a read, collected by kind so that one run reports every kind of problem
//! ([`Problems`]), and where a byte offset or a column is, for the errors that name them.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::layout::Layout;
use crate::input::InputError;
use crate::privacy::thousands;

/// Kinds of bad rows reported at once; rows of further kinds are only counted.
pub(super) const MAX_PROBLEM_KINDS: usize = 20;
/// Kinds a reader tells apart before it only counts (bounds memory on a file full of errors).
pub(super) const MAX_TRACKED_KINDS: usize = 10_000;
/// The bad rows a reader found, grouped by kind (a column and what is wrong with it, and for a
/// category the value), each with its count and its first row. Reading goes on past a bad row,
/// so that one run reports every kind of problem, not only the first.
#[derive(Default)]
pub(super) struct Problems {
    pub(super) kinds: HashMap<String, ProblemKind>,
    /// Rows with at least one problem.
    pub(super) rows: u64,
    /// Problems of kinds beyond [`MAX_TRACKED_KINDS`].
    pub(super) untracked: u64,
    /// The current row has a problem.
    pub(super) in_row: bool,
}

pub(super) struct ProblemKind {
    pub(super) count: u64,
    /// The first row with it: its byte offset, the field, the message.
    pub(super) byte: u64,
    pub(super) field: Option<usize>,
    pub(super) message: String,
}

impl Problems {
    /// Records a problem of kind `group` in the row at `byte`; `message` is made only for the
    /// first row of its kind.
    #[cold]
    pub(super) fn add(
        &mut self,
        byte: u64,
        field: Option<usize>,
        group: String,
        message: impl FnOnce() -> String,
    ) {
        self.in_row = true;
        if let Some(kind) = self.kinds.get_mut(&group) {
            kind.count += 1;
            if byte < kind.byte {
                (kind.byte, kind.field, kind.message) = (byte, field, message());
            }
        } else if self.kinds.len() < MAX_TRACKED_KINDS {
            self.kinds.insert(
                group,
                ProblemKind {
                    count: 1,
                    byte,
                    field,
                    message: message(),
                },
            );
        } else {
            self.untracked += 1;
        }
    }

    /// Ends a row; true when it had a problem.
    pub(super) fn end_row(&mut self) -> bool {
        let bad = std::mem::take(&mut self.in_row);
        self.rows += u64::from(bad);
        bad
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds another reader's problems.
    pub(super) fn merge(&mut self, other: Problems) {
        self.rows += other.rows;
        self.untracked += other.untracked;
        for (group, kind) in other.kinds {
            match self.kinds.get_mut(&group) {
                Some(mine) => {
                    mine.count += kind.count;
                    if kind.byte < mine.byte {
                        (mine.byte, mine.field, mine.message) =
                            (kind.byte, kind.field, kind.message);
                    }
                }
                None => {
                    self.kinds.insert(group, kind);
                }
            }
        }
    }
}

/// The bad rows as one error: the kinds in the order of their first row, at most
/// [`MAX_PROBLEM_KINDS`], each at its first row with how many rows share it. A single bad row
/// reads as it always did: `file:line: field `x`: what is wrong`.
pub(super) fn report_rows(path: &Path, layout: &Layout, problems: Problems) -> InputError {
    let mut kinds: Vec<ProblemKind> = problems.kinds.into_values().collect();
    kinds.sort_by_key(|k| k.byte);
    let shown = &kinds[..kinds.len().min(MAX_PROBLEM_KINDS)];
    let lines = lines_of(path, &shown.iter().map(|k| k.byte).collect::<Vec<_>>());
    let at = |k: &ProblemKind, line: u64| match k.field {
        Some(col) => format!(
            "{}:{line}: field `{}`: {}",
            path.display(),
            column_name(layout, col),
            k.message
        ),
        None => format!("{}:{line}: {}", path.display(), k.message),
    };
    if problems.rows == 1 && kinds.len() == 1 {
        return InputError::BadRows {
            message: at(&kinds[0], lines[0]),
        };
    }
    let mut message = format!(
        "{}: {} rows are not valid, with {} kind(s) of problem{}:",
        path.display(),
        thousands(problems.rows),
        kinds.len() + usize::from(problems.untracked > 0),
        if kinds.len() > MAX_PROBLEM_KINDS {
            format!("; the first {MAX_PROBLEM_KINDS} kinds are shown")
        } else {
            String::new()
        }
    );
    for (k, &line) in shown.iter().zip(&lines) {
        message.push_str("\n  - ");
        message.push_str(&at(k, line));
        if k.count > 1 {
            message.push_str(&format!(
                " ({} rows like this; the first is shown)",
                thousands(k.count)
            ));
        }
    }
    if problems.untracked > 0 {
        message.push_str(&format!(
            "\n  - and {} more problems of other kinds",
            thousands(problems.untracked)
        ));
    }
    InputError::BadRows { message }
}

/// The header's name for column `col`, or its number when the row has more fields than the
/// header (a quoted field can be reported in such a row).
pub(super) fn column_name(layout: &Layout, col: usize) -> String {
    layout.headers.get(col).map_or_else(
        || {
            format!(
                "#{} (beyond the header's {} columns)",
                col + 1,
                layout.headers.len()
            )
        },
        |h| String::from_utf8_lossy(h).into_owned(),
    )
}

/// The lines of several records at once (see [`line_of`]), in one pass over the file.
pub(super) fn lines_of(path: &Path, bytes: &[u64]) -> Vec<u64> {
    let mut order: Vec<usize> = (0..bytes.len()).collect();
    order.sort_by_key(|&i| bytes[i]);
    let mut lines = vec![0; bytes.len()];
    let Ok(file) = File::open(path) else {
        return lines;
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let (mut at, mut line) = (0u64, 1u64);
    let mut next = order.iter().peekable();
    let mut buf = [0u8; 1 << 16];
    'read: loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            while let Some(&&i) = next.peek() {
                if at >= bytes[i] && !matches!(b, b'\n' | b'\r') {
                    lines[i] = line;
                    next.next();
                } else {
                    break;
                }
            }
            if next.peek().is_none() {
                break 'read;
            }
            line += u64::from(b == b'\n');
            at += 1;
        }
    }
    for &i in next {
        lines[i] = line;
    }
    lines
}

/// The 1-based line of the record at byte `byte` of the file. The csv crate places a record
/// before the line ends and blank lines that precede it (so a CRLF file's records start at the
/// previous line's `\n`): those are passed over.
pub(super) fn line_of(path: &Path, byte: u64) -> u64 {
    lines_of(path, &[byte])[0]
}
