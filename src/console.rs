//! Printing: reports go to standard output, and a closed pipe (`safestat plan p | head`) is not
//! an error. Progress, notes, warnings and errors go to standard error.

use std::io::Write as _;

use crate::error::Error;

/// Writes a report to standard output; a closed pipe is not an error.
pub fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(Error::Stdout),
    }
}

/// Writes notes to standard error, each as `safestat: <note>`.
pub fn notes(notes: &[String]) {
    for note in notes {
        eprintln!("safestat: {note}");
    }
}
