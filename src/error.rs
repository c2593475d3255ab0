//! The top-level error and its exit code.
//!
//! Owns the mapping from what went wrong to the documented exit codes (0 ok, 1 internal or I/O
//! failure, 2 bad usage, policy or input, 3 refused by the budget, 4 audit or verify found a
//! problem, 5 temporary: retry later, 6 integrity: a person must look) and the status word a
//! scheduler reads with `--status-json`.
//! Library modules keep their own error enums; this one only gathers them.

use crate::input::InputError;
use crate::ledger::LedgerError;
use crate::output::OutputError;
use crate::policy::PolicyError;
use crate::privacy::AccountingError;
use crate::protect::MechanismError;
use crate::protect::sdc::SdcError;
use crate::report::ReportError;
use crate::sign::SignError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Mechanism(#[from] MechanismError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Accounting(#[from] AccountingError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("exact tables: {0}")]
    Sdc(#[from] SdcError),
    #[error("{0}")]
    Usage(String),
    #[error("audit: {0}")]
    AuditFailed(String),
    #[error("verify: {0}")]
    VerifyFailed(String),
    /// A ledger or folder whose integrity fails: a person must look.
    #[error("{0}")]
    Integrity(String),
    /// `plan`: the release does not fit what the ledger has left.
    #[error("{0}")]
    WouldNotFit(String),
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Policy(PolicyError::Read { source, .. })
                if source.kind() != std::io::ErrorKind::NotFound =>
            {
                1
            }
            Error::Policy(_) => 2,
            Error::Input(e) if e.is_io() => 1,
            Error::Input(e) if e.is_temporary() => 5,
            Error::Input(_) => 2,
            Error::Output(OutputError::Exists(_)) => 2,
            Error::Output(OutputError::Io { .. }) => 1,
            Error::Mechanism(_) => 1,
            Error::Ledger(LedgerError::Io { .. }) => 1,
            Error::Ledger(LedgerError::Output(OutputError::Io { .. })) => 1,
            Error::Ledger(LedgerError::OverBudget { .. }) => 3,
            Error::Ledger(LedgerError::Busy { .. } | LedgerError::Moved(_)) => 5,
            Error::Ledger(LedgerError::Corrupt { .. } | LedgerError::Witness { .. }) => 6,
            Error::Ledger(_) | Error::Accounting(_) => 2,
            Error::Report(_) => 2,
            Error::Sign(SignError::Key { .. }) => 2,
            Error::Sign(SignError::Io { .. }) => 1,
            Error::Sdc(e) if e.is_input() => 2,
            Error::Sdc(_) => 1,
            Error::Usage(_) => 2,
            Error::AuditFailed(_) | Error::VerifyFailed(_) => 4,
            Error::Integrity(_) => 6,
            Error::WouldNotFit(_) => 3,
            Error::Stdout(_) => 1,
        }
    }

    /// The status word `--status-json` gives for this error, matching its exit code.
    pub fn status(&self) -> &'static str {
        match self.exit_code() {
            2 => "invalid",
            3 => "refused_budget",
            4 => "problems",
            5 if matches!(
                self,
                Error::Ledger(LedgerError::Busy { .. } | LedgerError::Moved(_))
            ) =>
            {
                "busy"
            }
            5 => "unavailable",
            6 => "integrity",
            _ => "internal",
        }
    }

    /// The message with its chain of causes, on one line: `a: b: c`.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        // A message that already ends with its source's (a `transparent` variant, or one that
        // prefixes it, as `exact tables: ...`) is not followed by it again.
        while let Some(s) = source {
            let text = s.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            source = s.source();
        }
        out
    }
}
