//! Printing: reports go to standard output, and a closed pipe (`safestat plan p | head`) is not
//! an error. Progress, notes, warnings and errors go to standard error.
//!
//! With `--status-json` a command's standard output is one JSON object for a scheduler (its
//! status word, exit code and figures, see [`status`]); the report for people then goes to
//! standard error with the notes.

use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

/// Whether this run answers with one JSON object on stdout.
static STATUS_JSON: AtomicBool = AtomicBool::new(false);
/// The fields a command has stated for its JSON object, and the notes it printed.
type Fields = serde_json::Map<String, serde_json::Value>;
static STATUS: Mutex<Option<(Fields, Vec<String>)>> = Mutex::new(None);

/// Writes a report to standard output (standard error under `--status-json`); a closed pipe is
/// not an error.
pub fn print(text: &str) -> Result<(), Error> {
    if STATUS_JSON.load(Ordering::Relaxed) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(Error::Stdout),
    }
}

/// Writes notes to standard error, each as `safestat: <note>` (and keeps them for the status
/// object's `messages`).
pub fn notes(notes: &[String]) {
    for note in notes {
        eprintln!("safestat: {note}");
    }
    if let Some((_, messages)) = STATUS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        messages.extend(notes.iter().cloned());
    }
}

/// Turns `--status-json` on for this run.
pub fn status_json() {
    STATUS_JSON.store(true, Ordering::Relaxed);
    *STATUS.lock().unwrap_or_else(|p| p.into_inner()) = Some(Default::default());
}

/// States one field of the status object (`status`, `release`, `spent`...); does nothing
/// without `--status-json`.
pub fn status(key: &str, value: impl Into<serde_json::Value>) {
    if let Some((fields, _)) = STATUS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        fields.insert(key.to_string(), value.into());
    }
}

/// Under `--status-json`, prints the one JSON object: the command's fields, or on failure the
/// error's status word; `exit_code` as the process exits; `messages`, the notes and the error.
pub fn finish(result: &Result<(), Error>) {
    let Some((mut fields, mut messages)) = STATUS.lock().unwrap_or_else(|p| p.into_inner()).take()
    else {
        return;
    };
    match result {
        Ok(()) => {
            fields.entry("status").or_insert_with(|| "ok".into());
            fields.insert("exit_code".into(), 0.into());
        }
        Err(e) => {
            fields.insert("status".into(), e.status().into());
            fields.insert("exit_code".into(), e.exit_code().into());
            messages.push(e.chain());
        }
    }
    fields.insert("messages".into(), messages.into());
    let mut text =
        serde_json::to_string(&serde_json::Value::Object(fields)).expect("serialising to memory");
    text.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}
