//! The ledger held under an exclusive lock: durable creation, torn-line repair, fsynced appends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Body, Entry, GENESIS, Ledger, LedgerError, Repair};
use crate::hash::sha256_hex;

/// A ledger held under an exclusive lock for reading and appending. The lock is released when
/// this value is dropped.
pub struct LockedLedger {
    file: File,
    pub ledger: Ledger,
    /// This call created the file (a dataset's first ledger).
    pub created: bool,
}

/// Creates `path`'s missing folders and fsyncs each folder that gained an entry, so that a new
/// folder and a new file survive a power loss. Returns the folders it fsynced.
fn create_durably(path: &Path) -> std::io::Result<(File, bool, Vec<PathBuf>)> {
    let parent = super::folder_of(path);
    // The topmost missing folder: its parent is the first folder that gains an entry.
    let mut missing = Vec::new();
    let mut at = parent.clone();
    while !at.as_os_str().is_empty() && !at.exists() {
        missing.push(at.clone());
        at = match at.parent() {
            Some(p) => p.to_path_buf(),
            None => break,
        };
    }
    std::fs::create_dir_all(&parent)?;
    let created = !path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut synced = Vec::new();
    if created {
        // The new file's folder, then every new folder's parent, bottom up.
        let mut dirs = vec![parent];
        dirs.extend(missing.iter().filter_map(|m| {
            m.parent()
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    }
                })
                .map(Path::to_path_buf)
        }));
        dirs.dedup();
        for d in dirs {
            File::open(&d)?.sync_all()?;
            synced.push(d);
        }
    }
    Ok((file, created, synced))
}

/// The file beside a ledger in which the process holding its lock says who it is, for those
/// waiting (its content is a courtesy: the lock itself is the ledger file's).
pub fn holder_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".lock-holder");
    PathBuf::from(name)
}

/// Who holds a ledger's lock, as its holder file says (or that it does not say).
fn holder(ledger: &Path) -> String {
    let record = std::fs::read_to_string(holder_path(ledger))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match record {
        Some(r) => format!(
            "held by process {} since {}",
            r["pid"],
            r["since"].as_str().unwrap_or("?")
        ),
        None => "its holder has not said who it is".to_string(),
    }
}

/// How long to wait for the lock: `None` waits as long as it takes.
const TOLD_AFTER: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(50);

impl LockedLedger {
    /// Opens (creating it and its folder if needed, durably) and exclusively locks the ledger,
    /// then reads it. While another process holds the lock it waits, saying on stderr after a
    /// second who holds it; after `timeout` it gives up ([`LedgerError::Busy`]).
    pub fn open(path: &Path, timeout: Option<Duration>) -> Result<LockedLedger, LedgerError> {
        let io = |source| LedgerError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (mut file, created, _) = create_durably(path).map_err(io)?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::Error(e)) => return Err(io(e)),
                Err(TryLockError::WouldBlock) => {}
            }
            let waited = start.elapsed();
            if let Some(limit) = timeout
                && waited >= limit
            {
                return Err(LedgerError::Busy {
                    path: path.to_path_buf(),
                    holder: holder(path),
                    seconds: limit.as_secs_f64(),
                });
            }
            if !told && waited >= TOLD_AFTER {
                told = true;
                eprintln!(
                    "safestat: waiting for the lock of ledger `{}`: {}{}",
                    path.display(),
                    holder(path),
                    timeout.map_or(
                        " (no --lock-timeout: waiting as long as it takes)".to_string(),
                        |t| { format!(" (giving up after {} s)", t.as_secs_f64()) }
                    )
                );
            }
            std::thread::sleep(POLL);
        }
        // Say who holds it now, for whoever waits next.
        let record = serde_json::json!({
            "pid": std::process::id(),
            "since": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        });
        let _ = std::fs::write(holder_path(path), record.to_string());
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_to_end(&mut bytes).map_err(io)?;
        Ok(LockedLedger {
            file,
            ledger: Ledger::parse(path, &bytes),
            created,
        })
    }

    fn io(&self) -> impl Fn(std::io::Error) -> LedgerError + '_ {
        |source| LedgerError::Io {
            path: self.ledger.path.clone(),
            source,
        }
    }

    /// Removes a torn last line and records the repair. Safe because noise is drawn only after a
    /// charge line is complete and fsynced: an incomplete line never paid for any noise.
    pub fn repair_torn(&mut self) -> Result<Option<u64>, LedgerError> {
        if self.ledger.torn.is_empty() {
            return Ok(None);
        }
        let torn = std::mem::take(&mut self.ledger.torn);
        let keep: u64 = self
            .ledger
            .lines
            .iter()
            .map(|(b, _)| b.len() as u64 + 1)
            .sum();
        self.file.set_len(keep).map_err(self.io())?;
        self.file.sync_all().map_err(self.io())?;
        self.append(Body::Repair(Repair {
            discarded_bytes: torn.len() as u64,
            discarded_sha256: sha256_hex(&torn),
            reason:
                "torn last line (a write that crashed before completing) removed; it drew no noise"
                    .into(),
        }))?;
        Ok(Some(torn.len() as u64))
    }

    /// Appends one entry, chained to the last line, and fsyncs it before returning.
    pub fn append(&mut self, body: Body) -> Result<Entry, LedgerError> {
        let prev = self
            .ledger
            .lines
            .last()
            .map_or_else(|| GENESIS.to_string(), |(b, _)| sha256_hex(b));
        let entry = Entry {
            seq: self.ledger.lines.len() as u64 + 1,
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            body,
            prev_sha256: prev,
        };
        let bytes = serde_json::to_vec(&entry).expect("serialising to memory");
        let mut line = bytes.clone();
        line.push(b'\n');
        self.file.write_all(&line).map_err(self.io())?;
        self.file.flush().map_err(self.io())?;
        self.file.sync_all().map_err(self.io())?;
        self.ledger.lines.push((bytes, Ok(entry.clone())));
        Ok(entry)
    }

    /// SHA-256 of the last line (the one just appended).
    pub fn last_line_sha256(&self) -> String {
        self.ledger
            .lines
            .last()
            .map_or_else(|| GENESIS.to_string(), |(b, _)| sha256_hex(b))
    }
}

impl Drop for LockedLedger {
    /// Takes back the holder record it wrote (while it still holds the lock, so nobody else has
    /// written one since); the lock itself is released when the file closes.
    fn drop(&mut self) {
        let path = holder_path(&self.ledger.path);
        let ours = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|r| r["pid"] == std::process::id());
        if ours {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a new ledger's folder entry was never fsynced, so a first charge could vanish
    /// with its file on a power loss although the charge itself was fsynced.
    #[test]
    fn creating_a_ledger_fsyncs_every_folder_that_gained_an_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/ledger.jsonl");
        let (_, created, synced) = create_durably(&path).unwrap();
        assert!(created);
        assert_eq!(
            synced,
            [
                tmp.path().join("a/b"),
                tmp.path().join("a"),
                tmp.path().to_path_buf()
            ]
        );
        // Opening it again creates nothing and syncs nothing.
        let (_, created, synced) = create_durably(&path).unwrap();
        assert!(!created && synced.is_empty());
    }
}
