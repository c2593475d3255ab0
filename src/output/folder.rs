//! Where a release folder comes from: written whole in a temporary sibling folder, fsynced, then
//! renamed into place; an interrupted write leaves only a `.<leaf>.partial-*` folder, which the
//! next release completes or removes.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::OutputError;

/// Refuses early when the release folder already exists.
pub fn ensure_absent(dir: &Path) -> Result<(), OutputError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => Err(OutputError::Exists(dir.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(OutputError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Writes `files` (name, bytes) into a new folder `dir`, atomically: all files are written and
/// fsynced in a temporary sibling folder, which is renamed to `dir` only when complete. On any
/// error nothing is left behind.
pub fn write_folder_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    let (parent, leaf) = parent_and_leaf(dir);
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{leaf}.partial-"))
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    for (name, bytes) in files {
        let path = tmp.path().join(name);
        let mut f = File::create(&path).map_err(io(&path))?;
        f.write_all(bytes).map_err(io(&path))?;
        f.flush().map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
    }
    ensure_absent(dir)?;
    fs::rename(tmp.path(), dir).map_err(io(dir))?;
    // The temporary folder is now `dir`; stop `tmp` from deleting anything on drop.
    let _ = tmp.keep();
    if let Ok(d) = File::open(&parent) {
        d.sync_all().map_err(io(&parent))?;
    }
    Ok(())
}

/// Replaces (or adds) `files` (name, bytes) in the existing folder `dir`, one at a time and in
/// order, each written and fsynced under a temporary name and renamed over the old one, so that
/// every file is always whole: either its old bytes or its new ones. The folder is fsynced last.
/// Put the file that commits the change (the manifest) last.
pub fn replace_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    for (name, bytes) in files {
        let path = dir.join(name);
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempfile_in(dir)
            .map_err(io(dir))?;
        tmp.write_all(bytes).map_err(io(&path))?;
        // A temporary file is private (0600); the file it replaces keeps its permissions, a new
        // one gets the folder's manifest's.
        let permissions = fs::metadata(&path)
            .or_else(|_| fs::metadata(dir.join("manifest.json")))
            .map(|m| m.permissions());
        if let Ok(p) = permissions {
            tmp.as_file().set_permissions(p).map_err(io(&path))?;
        }
        tmp.as_file().sync_all().map_err(io(&path))?;
        tmp.persist(&path).map_err(|e| OutputError::Io {
            path: path.clone(),
            source: e.error,
        })?;
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Temporary files an interrupted [`replace_files`] left in `dir`: removed.
pub fn remove_partial_files(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".partial-") && e.path().is_file() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The unfinished folders an interrupted [`write_folder_atomically`] of `dir` may have left.
pub fn partial_folders(dir: &Path) -> Vec<PathBuf> {
    let (parent, leaf) = parent_and_leaf(dir);
    let prefix = format!(".{leaf}.partial-");
    let mut found: Vec<PathBuf> = fs::read_dir(&parent)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn parent_and_leaf(dir: &Path) -> (PathBuf, String) {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let leaf = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "release".into());
    (parent, leaf)
}

/// Renames a whole unfinished folder into place (an interrupted run's, completed by the next
/// one) and fsyncs the parent.
pub fn finish_partial(partial: &Path, dir: &Path) -> Result<(), OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    ensure_absent(dir)?;
    fs::rename(partial, dir).map_err(io(dir))?;
    let (parent, _) = parent_and_leaf(dir);
    File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(io(&parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_refuses_an_existing_folder_and_leaves_no_debris() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r");
        write_folder_atomically(&dir, &[("a.csv".into(), b"x".to_vec())]).unwrap();
        assert_eq!(fs::read(dir.join("a.csv")).unwrap(), b"x");
        let err = write_folder_atomically(&dir, &[("b.csv".into(), b"y".to_vec())]).unwrap_err();
        assert!(matches!(err, OutputError::Exists(_)));
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["r"]);
        assert!(!dir.join("b.csv").exists());
    }
}
