//! What leaves the building: the published tables ([`tables`]), the manifest, written and read
//! back typed ([`manifest`]) and built from the plan, the mechanisms and what post-processing made
//! ([`describe`]), and the atomic placement of a release folder ([`folder`]).
//!
//! Never imports `input` (a check in `.ci/run` holds it to that): it formats what protection
//! made publishable, the noisy, post-processed values of differentially private tables and the
//! exact tables' values once cell suppression has hidden what the rules protect, and never an
//! exact cell of a differentially private table.

use std::path::PathBuf;

mod describe;
mod folder;
mod labels;
mod manifest;
mod tables;

pub use describe::{Drawn, build_manifest, dp_table_entry, group_entry};
pub use folder::{
    ensure_absent, finish_partial, partial_folders, remove_partial_files, replace_files,
    write_folder_atomically,
};
pub use labels::{coded_csv, published_csv};
pub use manifest::*;
pub use tables::{
    Contributors, EXACT_PROTECTION, ExactPublished, PublishedTable, TOTAL_STATUS, Totals,
    cell_labels, read_exact,
};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "output folder `{0}` already exists; refusing to overwrite a release (choose another --out, or remove it if it was never published)"
    )]
    Exists(PathBuf),
    #[error("cannot write the release to `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A release folder's files: (name, bytes).
pub type Files = Vec<(String, Vec<u8>)>;
