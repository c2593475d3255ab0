//! The workbook: one sheet per table as a labelled cross-table (totals where the release has
//! them), the unit and the margin of error above it, the suppressed marker's footnote below it,
//! and a methodology sheet. Values are numbers, so Excel can add them; a suppressed cell is the
//! marker (text), which Excel's SUM leaves out rather than reading as 0.
//!
//! The same release gives the same bytes: the document's creation time is the manifest's.

use std::collections::BTreeMap;

use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError,
};

use super::view::{Cross, ExactTable, ReportError, Table, View};

fn err(e: XlsxError) -> ReportError {
    ReportError::Workbook(e.to_string())
}

/// Excel's sheet name for a table, from its title (what a reader looks for in the tabs): at most
/// 31 characters, none of `[]:*?/\`, no apostrophe at either end, not Excel's reserved
/// `History`, unique (`~2`, `~3`... where two would be the same).
fn sheet_name(title: &str, used: &mut Vec<String>) -> String {
    let mut clean: String = title
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .take(31)
        .collect::<String>()
        .trim_matches(|c: char| c == '\'' || c.is_whitespace())
        .to_string();
    if clean.is_empty() || clean.eq_ignore_ascii_case("history") {
        clean = format!("{clean}_");
    }
    let mut candidate = clean.clone();
    let mut n = 2;
    while used.iter().any(|u| u.eq_ignore_ascii_case(&candidate)) {
        let suffix = format!("~{n}");
        candidate = clean.chars().take(31 - suffix.len()).collect::<String>() + &suffix;
        n += 1;
    }
    used.push(candidate.clone());
    candidate
}

/// `2026-11-26T08:57:47Z` as Excel's date and time.
fn created(at: &str) -> Option<ExcelDateTime> {
    let n = |r: std::ops::Range<usize>| at.get(r)?.parse::<u16>().ok();
    ExcelDateTime::from_ymd(n(0..4)?, n(5..7)? as u8, n(8..10)? as u8)
        .ok()?
        .and_hms(n(11..13)?, n(14..16)? as u8, n(17..19)?)
        .ok()
}

pub fn write(
    v: &View,
    tables: &[Table],
    crosses: &BTreeMap<&str, Cross>,
    exact: &[ExactTable],
) -> Result<Vec<u8>, ReportError> {
    let mut wb = Workbook::new();
    let mut props = DocProperties::new()
        .set_title(
            v.manifest
                .release
                .title
                .as_deref()
                .unwrap_or(&v.manifest.release.id),
        )
        .set_author("safestat");
    if let Some(t) = created(&v.manifest.created_at) {
        props = props.set_creation_datetime(&t);
    }
    wb.set_properties(&props);
    let mut used = Vec::new();
    for t in tables {
        let ws = wb.add_worksheet();
        ws.set_name(sheet_name(&v.title(t.entry), &mut used))
            .map_err(err)?;
        sheet(ws, v, t, &crosses[t.entry.name.as_str()]).map_err(err)?;
    }
    for t in exact {
        let ws = wb.add_worksheet();
        ws.set_name(sheet_name(v.p.title(&t.entry.name), &mut used))
            .map_err(err)?;
        exact_sheet(ws, v, t).map_err(err)?;
    }
    let ws = wb.add_worksheet();
    ws.set_name(sheet_name(v.w.methodology, &mut used))
        .map_err(err)?;
    methodology(ws, v).map_err(err)?;
    wb.save_to_buffer().map_err(err)
}

/// The cell formats every table's sheet uses.
struct Styles {
    title: Format,
    head: Format,
    num: Format,
    marker: Format,
    label: Format,
}

impl Styles {
    fn new() -> Styles {
        Styles {
            title: Format::new().set_bold().set_font_size(13),
            head: Format::new()
                .set_bold()
                .set_align(FormatAlign::Center)
                .set_border(FormatBorder::Thin)
                .set_background_color("#E8EEF7"),
            num: Format::new()
                .set_num_format("#,##0")
                .set_border(FormatBorder::Thin),
            marker: Format::new()
                .set_align(FormatAlign::Right)
                .set_border(FormatBorder::Thin),
            label: Format::new().set_border(FormatBorder::Thin),
        }
    }
}

/// Excel's limits, less room for the title, the notes and the totals.
const MAX_COLUMNS: usize = 16_384 - 64;
const MAX_ROWS: usize = 1_048_576 - 64;

fn sheet(ws: &mut Worksheet, v: &View, t: &Table, cross: &Cross) -> Result<(), XlsxError> {
    if cross.columns.len() + t.entry.dimensions.len() > MAX_COLUMNS || cross.rows.len() > MAX_ROWS {
        ws.write_string(0, 0, v.title(t.entry))?;
        ws.write_string(1, 0, v.w.too_large(&format!("{}.csv", t.entry.name)))?;
        return Ok(());
    }
    let styles = Styles::new();
    let grid = header(ws, v, t, cross, &styles)?;
    let r = body(ws, v, t, cross, &grid, &styles)?;
    let mut r = notes(ws, v, t, cross, r + 1)?;
    if let Some(shares) = &t.shares {
        let formats = (&styles.head, &styles.label, &styles.marker);
        r = share_block(ws, v, t, shares, r + 1, formats)?;
    }
    for line in v.footer() {
        ws.write_string(r, 0, line)?;
        r += 1;
    }
    let bold = Format::new().set_bold();
    ws.write_string_with_format(r + 1, 0, v.w.methodology, &bold)?;
    ws.write_string(r + 2, 0, v.w.margin_text)?;
    for k in 0..grid.first_col {
        ws.set_column_width(k, 16)?;
    }
    for c in 0..=cross.columns.len() as u16 {
        ws.set_column_width(grid.first_col + c, 11)?;
    }
    ws.set_freeze_panes(grid.top + 1, grid.first_col)?;
    Ok(())
}

/// Where a sheet's table sits: its header row, the first column of values, the categories'
/// first column and the totals' column (계 before the categories, as Korean statistical tables
/// print them, or after).
struct Grid {
    top: u32,
    first_col: u16,
    cat_col: u16,
    total_col: u16,
}

/// The caption, the unit and margin line, and the header row: the row dimensions' labels, then
/// the columns' categories (or the unit) and the total.
fn header(
    ws: &mut Worksheet,
    v: &View,
    t: &Table,
    cross: &Cross,
    styles: &Styles,
) -> Result<Grid, XlsxError> {
    let w = v.w;
    ws.write_string_with_format(0, 0, v.caption(&t.entry.name), &styles.title)?;
    ws.write_string(
        1,
        0,
        format!(
            "{}: {}    {}: {}",
            w.unit,
            v.unit(t.entry),
            w.margin,
            v.margin(t.entry)
        ),
    )?;
    let top = 3u32;
    for (k, d) in cross.row_dims.iter().enumerate() {
        ws.write_string_with_format(top, k as u16, v.p.dimension(d), &styles.head)?;
    }
    let first_col = cross.row_dims.len().max(1) as u16;
    let (cat_col, total_col) = if v.p.totals_first && cross.row_totals.is_some() {
        (first_col + 1, first_col)
    } else {
        (first_col, first_col + cross.columns.len() as u16)
    };
    for (c, cat) in cross.columns.iter().enumerate() {
        let text = v.column_header(cross, t.entry, cat);
        ws.write_string_with_format(top, cat_col + c as u16, text, &styles.head)?;
    }
    if cross.row_totals.is_some() {
        ws.write_string_with_format(top, total_col, w.total, &styles.head)?;
    }
    Ok(Grid {
        top,
        first_col,
        cat_col,
        total_col,
    })
}

/// The table's rows under the header, with the total row first or last; returns the row after
/// the last.
fn body(
    ws: &mut Worksheet,
    v: &View,
    t: &Table,
    cross: &Cross,
    grid: &Grid,
    styles: &Styles,
) -> Result<u32, XlsxError> {
    let Styles {
        head,
        num,
        marker,
        label,
        ..
    } = styles;
    let total = num.clone().set_bold().set_background_color("#F3F3F3");
    let flagged = num.clone().set_italic().set_background_color("#FFF2CC");
    let w = v.w;
    let dims = &t.entry.dimensions;
    let Grid {
        top,
        first_col,
        cat_col,
        total_col,
    } = *grid;
    let put = |ws: &mut Worksheet, r: u32, c: u16, value: Option<i64>, f: &Format| match value {
        Some(x) => ws.write_number_with_format(r, c, x as f64, f).map(|_| ()),
        None => ws
            .write_string_with_format(r, c, &v.p.suppressed_marker, marker)
            .map(|_| ()),
    };
    let total_row = |ws: &mut Worksheet, r: u32| -> Result<(), XlsxError> {
        ws.write_string_with_format(r, 0, w.total, head)?;
        for k in 1..first_col {
            ws.write_string_with_format(r, k, "", head)?;
        }
        if let Some(totals) = &cross.column_totals {
            for (c, value) in totals.iter().enumerate() {
                put(ws, r, cat_col + c as u16, *value, &total)?;
            }
            if let Some(g) = cross.grand_total {
                put(ws, r, total_col, g, &total)?;
            }
        } else if let Some(g) = cross.grand_total {
            put(ws, r, first_col, g, &total)?;
        }
        Ok(())
    };
    let first = v.p.totals_first;
    let mut r = top + 1;
    if first && cross.has_total_row() {
        total_row(ws, r)?;
        r += 1;
    }
    for (i, row) in cross.rows.iter().enumerate() {
        if cross.row_dims.is_empty() {
            ws.write_string_with_format(r, 0, w.total, label)?;
        }
        for (k, cat) in row.iter().enumerate() {
            ws.write_string_with_format(r, k as u16, v.category(&dims[k], cat), label)?;
        }
        for (c, value) in cross.values[i].iter().enumerate() {
            let f = if cross.flags[i][c] { &flagged } else { num };
            put(ws, r, cat_col + c as u16, *value, f)?;
        }
        if let Some(totals) = &cross.row_totals {
            put(ws, r, total_col, totals[i], &total)?;
        }
        r += 1;
    }
    if !first && cross.has_total_row() {
        total_row(ws, r)?;
        r += 1;
    }
    Ok(r)
}

/// The notes under the table from row `r` on: suppression, Excel's sums, unreliable cells and
/// the totals' margins; returns the next free row.
fn notes(
    ws: &mut Worksheet,
    v: &View,
    t: &Table,
    cross: &Cross,
    mut r: u32,
) -> Result<u32, XlsxError> {
    let w = v.w;
    ws.write_string(
        r,
        0,
        w.suppressed_text(&v.p.suppressed_marker, t.entry.contributors.is_some()),
    )?;
    ws.write_string(r + 1, 0, w.excel_sum_note)?;
    r += 2;
    if cross.flags.iter().flatten().any(|&f| f) {
        let mark = if w.korean {
            "노란 기울임 칸"
        } else {
            "Yellow italic cells"
        };
        ws.write_string(
            r,
            0,
            w.unreliable_text(mark, v.p.unreliable_above, t.entry.contributors.is_some()),
        )?;
        r += 1;
    }
    if cross.has_totals() {
        ws.write_string(
            r,
            0,
            if t.entry.totals.is_some() {
                w.own_totals_note
            } else {
                w.totals_note
            },
        )?;
        r += 1;
        if let Some(text) = v.total_margins(t.entry, cross) {
            ws.write_string(r, 0, text)?;
            r += 1;
        }
    }
    Ok(r)
}

/// The shares of the table's total from row `r` on, one row per cell (its labels, the share and
/// its margin in percent, as published); returns the next free row.
fn share_block(
    ws: &mut Worksheet,
    v: &View,
    t: &Table,
    shares: &[Option<(f64, f64)>],
    mut r: u32,
    (head, label, marker): (&Format, &Format, &Format),
) -> Result<u32, XlsxError> {
    let pct = Format::new()
        .set_num_format("0.0")
        .set_border(FormatBorder::Thin);
    let dims = &t.entry.dimensions;
    let n = dims.len().max(1) as u16;
    for (k, d) in dims.iter().enumerate() {
        ws.write_string_with_format(r, k as u16, v.p.dimension(d), head)?;
    }
    if dims.is_empty() {
        ws.write_string_with_format(r, 0, "", head)?;
    }
    ws.write_string_with_format(r, n, v.w.share, head)?;
    ws.write_string_with_format(r, n + 1, v.w.share_margin, head)?;
    r += 1;
    for (i, share) in shares.iter().enumerate() {
        for (k, c) in t.labels(i).iter().enumerate() {
            ws.write_string_with_format(r, k as u16, v.category(&dims[k], c), label)?;
        }
        if dims.is_empty() {
            ws.write_string_with_format(r, 0, v.w.total, label)?;
        }
        match share {
            Some((p, m)) => {
                ws.write_number_with_format(r, n, *p, &pct)?;
                ws.write_number_with_format(r, n + 1, *m, &pct)?;
            }
            None => {
                ws.write_string_with_format(r, n, &v.p.suppressed_marker, marker)?;
                ws.write_string_with_format(r, n + 1, &v.p.suppressed_marker, marker)?;
            }
        }
        r += 1;
    }
    ws.write_string(r, 0, v.w.share_note)?;
    Ok(r + 1)
}

/// An exact table's sheet: its cross-table with every margin (계), the marker where suppressed,
/// and the note that its values are exact and not differentially private.
fn exact_sheet(ws: &mut Worksheet, v: &View, t: &ExactTable) -> Result<(), XlsxError> {
    let (rows, cols) = t.shape();
    let dims = &t.entry.dimensions;
    let row_dims = if dims.len() == 1 { 1 } else { dims.len() - 1 };
    if rows + 8 > MAX_ROWS || cols + row_dims > MAX_COLUMNS {
        ws.write_string(0, 0, v.p.title(&t.entry.name))?;
        ws.write_string(1, 0, v.w.too_large(&format!("{}.csv", t.entry.name)))?;
        return Ok(());
    }
    let Styles {
        title,
        head,
        num,
        marker,
        label,
    } = Styles::new();
    ws.write_string_with_format(0, 0, v.caption(&t.entry.name), &title)?;
    ws.write_string(1, 0, v.w.exact_note)?;
    let top = 3u32;
    for (k, d) in dims.iter().take(row_dims).enumerate() {
        ws.write_string_with_format(top, k as u16, v.p.dimension(d), &head)?;
    }
    for c in 0..cols {
        let text = v.exact_column(t, c);
        ws.write_string_with_format(top, (row_dims + c) as u16, text, &head)?;
    }
    for r in 0..rows {
        let at = top + 1 + r as u32;
        for (k, c) in t.row_labels(r).iter().enumerate() {
            ws.write_string_with_format(
                at,
                k as u16,
                v.grid_label(&dims[k], c, &t.entry.total_label),
                &label,
            )?;
        }
        for c in 0..cols {
            let col = (row_dims + c) as u16;
            match t.values[r * cols + c] {
                Some(x) => ws.write_number_with_format(at, col, x as f64, &num)?,
                None => ws.write_string_with_format(at, col, &v.p.suppressed_marker, &marker)?,
            };
        }
    }
    let below = top + 2 + rows as u32;
    ws.write_string(
        below,
        0,
        format!("{}: {}", v.p.suppressed_marker, v.w.exact_note),
    )?;
    for (k, line) in v.footer().into_iter().enumerate() {
        ws.write_string(below + 1 + k as u32, 0, line)?;
    }
    for k in 0..row_dims as u16 {
        ws.set_column_width(k, 16)?;
    }
    Ok(())
}

fn methodology(ws: &mut Worksheet, v: &View) -> Result<(), XlsxError> {
    let head = Format::new()
        .set_bold()
        .set_border(FormatBorder::Thin)
        .set_background_color("#E8EEF7");
    let wrap = Format::new().set_text_wrap().set_border(FormatBorder::Thin);
    let title = Format::new().set_bold().set_font_size(13);
    ws.write_string_with_format(0, 0, v.w.methodology, &title)?;
    ws.write_string_with_format(2, 0, v.w.item, &head)?;
    ws.write_string_with_format(2, 1, v.w.content, &head)?;
    for (i, (k, text)) in v.methodology().iter().enumerate() {
        let r = 3 + i as u32;
        ws.write_string_with_format(r, 0, k, &wrap)?;
        ws.write_string_with_format(r, 1, text, &wrap)?;
    }
    ws.set_column_width(0, 28)?;
    ws.set_column_width(1, 100)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sheet_name;

    #[test]
    fn sheet_names_come_from_titles_within_excels_rules() {
        let mut used = Vec::new();
        assert_eq!(sheet_name("성별 피해자 수", &mut used), "성별 피해자 수");
        // Excel's forbidden characters, 31 characters, unique ignoring case.
        let long = "Victims by region/gender: 2024 [final] and more";
        let first = sheet_name(long, &mut used);
        // The 31st character is a space, trimmed.
        assert_eq!(first, "Victims by region_gender_ 2024");
        let second = sheet_name(&long.to_uppercase(), &mut used);
        assert!(
            second.ends_with("~2") && second.chars().count() == 31,
            "{second}"
        );
        assert_eq!(sheet_name("'quoted'", &mut used), "quoted");
        assert_eq!(sheet_name("History", &mut used), "History_");
        assert_eq!(sheet_name("   ", &mut used), "_");
    }
}
