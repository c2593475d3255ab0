//! What can go wrong reading an input: each error names the file, the line and the field (or
//! the server's statement), and knows whether the input or the machine is at fault.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open input `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read input `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: the header has no column `{column}` (needed by {needed_by}); columns are: {available}{suggestion}"
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        needed_by: String,
        available: String,
        /// `; did you mean ...?` when a column's name is close.
        suggestion: String,
    },
    #[error(
        "{path}: too many privacy units for one spill partition (at most 4,294,967,295); split the input"
    )]
    TooManyUnits { path: PathBuf },
    #[error("input `{path}` changed while it was being read; run again once it is complete")]
    Changed { path: PathBuf },
    #[error("{path}: the header names column `{column}` twice")]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("{path}:{line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// Every bad row found, grouped by kind (see `report_rows`).
    #[error("{message}")]
    BadRows { message: String },
    /// An SQL input's problem: connection, authentication, the relation, its columns or values,
    /// or the server going away. Never shows the connection string or its password.
    #[error("input `{input}` ({location}): {message}")]
    Sql {
        input: String,
        location: String,
        message: String,
        /// The server could not be reached or went away: retry later (exit 5).
        temporary: bool,
    },
    /// An exact `count_units` table counts each privacy unit in one cell, so that its margins
    /// are the sums of its cells; some units are in several (the message says which table).
    #[error("{0}")]
    UnitsInSeveralCells(String),
    /// An SQL input whose relation cannot count what was asked of it: a column missing or of
    /// another type, values that are not declared categories or not whole numbers.
    #[error("input `{input}` ({location}): {message}")]
    SqlData {
        input: String,
        location: String,
        message: String,
    },
    #[error("{path}:{line}: field `{field}`: {message}")]
    Value {
        path: PathBuf,
        line: u64,
        field: String,
        message: String,
    },
}

impl InputError {
    /// True when the failure is the machine's (I/O), not the data's.
    pub fn is_io(&self) -> bool {
        matches!(self, InputError::Io { .. })
    }

    /// True when the input cannot count the tables asked of it (a column missing, values that
    /// are not categories or not whole numbers, privacy units in several cells of a count of
    /// units): the data are not what the tables need. False for the machine's or the server's
    /// failures, or a file changing while it is read, which say nothing of the data.
    pub fn cannot_count(&self) -> bool {
        use InputError::*;
        matches!(
            self,
            MissingColumn { .. }
                | DuplicateColumn { .. }
                | Malformed { .. }
                | BadRows { .. }
                | SqlData { .. }
                | UnitsInSeveralCells(_)
                | Value { .. }
        )
    }

    /// A database that cannot be reached now: the same run may succeed later.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            InputError::Sql {
                temporary: true,
                ..
            }
        )
    }

    /// The same error about the file at `to`, where it named `from` (a decoded copy's errors
    /// name the original; its lines are the original's).
    pub(super) fn renamed(self, from: &Path, to: &Path) -> InputError {
        use InputError::*;
        let fix = |p: PathBuf| if p == from { to.to_path_buf() } else { p };
        match self {
            Open { path, source } => Open {
                path: fix(path),
                source,
            },
            Io { path, source } => Io {
                path: fix(path),
                source,
            },
            MissingColumn {
                path,
                column,
                needed_by,
                available,
                suggestion,
            } => MissingColumn {
                path: fix(path),
                column,
                needed_by,
                available,
                suggestion,
            },
            TooManyUnits { path } => TooManyUnits { path: fix(path) },
            Changed { path } => Changed { path: fix(path) },
            DuplicateColumn { path, column } => DuplicateColumn {
                path: fix(path),
                column,
            },
            Malformed {
                path,
                line,
                message,
            } => Malformed {
                path: fix(path),
                line,
                message,
            },
            Sql { .. } | SqlData { .. } | UnitsInSeveralCells(_) => self,
            BadRows { message } => BadRows {
                message: message.replace(&from.display().to_string(), &to.display().to_string()),
            },
            Value {
                path,
                line,
                field,
                message,
            } => Value {
                path: fix(path),
                line,
                field,
                message,
            },
        }
    }
}
