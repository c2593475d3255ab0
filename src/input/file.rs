//! An input file opened, and checked unchanged after every pass over it: what separate passes
//! read (the counts, the fingerprint) must describe the same bytes.

use std::fs::File;
use std::path::Path;

use super::error::InputError;

/// Opens an input and notes its size and modification time, for [`ensure_unchanged`].
pub(super) fn open_input(path: &Path) -> Result<(File, std::fs::Metadata), InputError> {
    let file = File::open(path).map_err(|source| InputError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let before = file.metadata().map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((file, before))
}

/// Refuses an input whose size or modification time changed since `before`: what was read of
/// it in separate passes (the counts, the fingerprint) would describe different bytes.
pub(super) fn ensure_unchanged(path: &Path, before: &std::fs::Metadata) -> Result<(), InputError> {
    let after = std::fs::metadata(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if after.len() != before.len() || after.modified().ok() != before.modified().ok() {
        return Err(InputError::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}
