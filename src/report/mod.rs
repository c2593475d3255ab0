//! What a reader gets: the workbook (`<release>.xlsx`, one labelled cross-table per sheet and a
//! methodology sheet) and `report.html` (charts, cross-tables, methodology), made from a release
//! folder's published files only, the manifest and the table CSVs, never from the raw data: it is
//! post-processing, and costs no privacy.
//!
//! `release` makes them from the files it is about to write; `safestat report DIR` makes the same
//! bytes again from the folder (so a deleted or doubted file can be restored and checked).
//! Nothing here may depend on anything but the published values and the manifest.

use std::collections::BTreeMap;

use crate::output::Manifest;

mod html;
mod view;
mod words;
mod workbook;

pub use view::{Cross, ExactTable, ReportError, Table, View, read_exact_tables, read_tables};

/// The workbook's and the report's file names, and their bytes.
pub fn render(
    manifest: &Manifest,
    tables: &[Table],
    exact: &[ExactTable],
) -> Result<Vec<(String, Vec<u8>)>, ReportError> {
    let view = View::new(manifest);
    let crosses: BTreeMap<&str, Cross> = tables
        .iter()
        .map(|t| (t.entry.name.as_str(), Cross::of(t, tables)))
        .collect();
    // The two are made side by side: each takes some milliseconds, all of them after the
    // release has been paid for (one after the other if no thread can be started).
    let html = || html::write(&view, tables, &crosses, exact);
    let (workbook, html) = std::thread::scope(|s| {
        let side = std::thread::Builder::new().spawn_scoped(s, html);
        let workbook = workbook::write(&view, tables, &crosses, exact);
        let html = match side {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => html(),
        };
        (workbook, html)
    });
    Ok(vec![
        (workbook_name(manifest), workbook?),
        (REPORT_HTML.to_string(), html),
    ])
}

pub use crate::output::REPORT_HTML;

/// `<release id>.xlsx`.
pub fn workbook_name(manifest: &Manifest) -> String {
    crate::output::presentation_files(&manifest.release.id)[0].clone()
}
