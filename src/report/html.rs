//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched), per
//! table a bar chart with the margins of error (suppressed cells shown as such), the cross-table
//! and its notes; then the methodology, from the manifest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::view::{Cross, ExactTable, Table, View};
use crate::privacy::thousands;

/// Text for HTML, escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Tables with more cells get no chart (a bar per cell would be unreadable), and with more than
/// [`MAX_PAGE_CELLS`] no cross-table either: the page points to the CSV.
pub const MAX_CHART_CELLS: usize = 2_000;
pub const MAX_PAGE_CELLS: usize = 20_000;

const STYLE: &str = "body{font-family:'Noto Sans KR','Noto Sans CJK KR','Source Han Sans KR','NanumGothic','Nanum Gothic','UnDotum','Malgun Gothic','Apple SD Gothic Neo',sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.5}h1{font-size:1.6em}h2{margin-top:2.2em;border-bottom:2px solid #2b5797;padding-bottom:.2em}table.cross{border-collapse:collapse;margin:.8em 0}table.cross td,table.cross th{border:1px solid #bbb;padding:.2em .6em}table.cross th{background:#e8eef7}table.cross td.v,table.cross td.share,table.cross td.share-moe{text-align:right}table.cross td.unreliable{font-style:italic;background:#fff2cc}table.cross .total{font-weight:bold;background:#f3f3f3}.suppressed{color:#888;text-align:center!important}.note{color:#555;font-size:.9em}svg text{font-size:12px}dl.method dt{font-weight:bold;margin-top:.6em}";

pub fn write(
    v: &View,
    tables: &[Table],
    crosses: &BTreeMap<&str, Cross>,
    exact: &[ExactTable],
) -> Vec<u8> {
    let m = v.manifest;
    let w = v.w;
    let title = m
        .release
        .title
        .clone()
        .unwrap_or_else(|| m.release.id.clone());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"note\">{} {} v{} · {}{}</p>\n",
        if w.korean { "ko" } else { "en" },
        esc(&title),
        esc(&title),
        w.release,
        esc(&m.release.id),
        m.release.version,
        esc(&super::words::made_on(&m.created_at, w.korean)),
        v.p.period.as_ref().map_or(String::new(), |p| format!(
            " · {}: {}",
            w.period_word,
            esc(p)
        )),
    );
    for t in tables {
        h.push_str(&dp_section(v, t, &crosses[t.entry.name.as_str()]));
    }
    for t in exact {
        h.push_str(&exact_section(v, t));
    }
    let _ = write!(
        h,
        "<section id=\"methodology\">\n<h2>{}</h2>\n<dl class=\"method\">\n",
        w.methodology
    );
    for (k, text) in v.methodology() {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(&k), esc(&text));
    }
    h.push_str("</dl>\n</section>\n</body>\n</html>\n");
    h.into_bytes()
}

/// A DP table: its chart (when small enough), its cross-table and shares (or a pointer to its
/// CSV when too large), and the notes on its flags, suppressed cells and totals.
fn dp_section(v: &View, t: &Table, cross: &Cross) -> String {
    let w = v.w;
    let mut h = String::new();
    let _ = write!(
        h,
        "<section class=\"table\" id=\"{}\">\n<h2>{}</h2>\n<p>{}: {} · {}: {}</p>\n",
        esc(&t.entry.name),
        esc(&v.caption(&t.entry.name)),
        w.unit,
        esc(&v.unit(t.entry)),
        w.margin,
        esc(&v.margin(t.entry))
    );
    if t.values.len() <= MAX_CHART_CELLS {
        h.push_str(&chart(v, t));
        let _ = writeln!(h, "<p class=\"note\">{}</p>", w.chart_note);
    }
    if t.values.len() <= MAX_PAGE_CELLS {
        h.push_str(&cross_table(v, t, cross));
    } else {
        let _ = writeln!(
            h,
            "<p class=\"note\">{}</p>",
            esc(&w.too_large(&format!("{}.csv", t.entry.name)))
        );
    }
    if let Some(shares) = &t.shares
        && t.values.len() <= MAX_PAGE_CELLS
    {
        h.push_str(&share_table(v, t, shares));
    }
    if t.flags.iter().any(|&f| f) {
        let _ = writeln!(
            h,
            "<p class=\"note\">{}</p>",
            esc(&w.unreliable_text("†", v.p.unreliable_above, t.entry.contributors.is_some()))
        );
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">{}</p>",
        esc(&w.suppressed_text(&v.p.suppressed_marker, t.entry.contributors.is_some()))
    );
    if cross.has_totals() {
        let _ = writeln!(
            h,
            "<p class=\"note\">{}</p>",
            if t.entry.totals.is_some() {
                w.own_totals_note
            } else {
                w.totals_note
            }
        );
        if let Some(text) = v.total_margins(t.entry, cross) {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&text));
        }
    }
    h.push_str(&footer(v));
    h.push_str("</section>\n");
    h
}

/// An exact table: its cross-table with every margin (the marker where suppressed) and the note
/// that its values are exact and not differentially private.
fn exact_section(v: &View, t: &ExactTable) -> String {
    let (rows, cols) = t.shape();
    let dims = &t.entry.dimensions;
    let row_dims = if dims.len() == 1 { 1 } else { dims.len() - 1 };
    let mut s = format!(
        "<section class=\"table exact\" id=\"{}\">\n<h2>{}</h2>\n<p class=\"note\"><strong>{}</strong></p>\n",
        esc(&t.entry.name),
        esc(&v.caption(&t.entry.name)),
        esc(v.w.exact_note)
    );
    if t.values.len() > MAX_PAGE_CELLS {
        let _ = writeln!(
            s,
            "<p class=\"note\">{}</p>\n</section>",
            esc(&v.w.too_large(&format!("{}.csv", t.entry.name)))
        );
        return s;
    }
    s.push_str("<table class=\"cross\">\n<thead><tr>");
    for d in dims.iter().take(row_dims) {
        let _ = write!(s, "<th>{}</th>", esc(v.p.dimension(d)));
    }
    for c in 0..cols {
        let text = v.exact_column(t, c);
        let _ = write!(s, "<th>{}</th>", esc(&text));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for r in 0..rows {
        s.push_str("<tr>");
        for (k, c) in t.row_labels(r).iter().enumerate() {
            let _ = write!(
                s,
                "<th>{}</th>",
                esc(&v.grid_label(&dims[k], c, &t.entry.total_label))
            );
        }
        for c in 0..cols {
            match t.values[r * cols + c] {
                Some(x) => {
                    let _ = write!(
                        s,
                        "<td class=\"v\" data-value=\"{x}\">{}</td>",
                        thousands(x)
                    );
                }
                None => {
                    let _ = write!(
                        s,
                        "<td class=\"v suppressed\" data-value=\"\">{}</td>",
                        esc(&v.p.suppressed_marker)
                    );
                }
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s.push_str(&footer(v));
    s.push_str("</section>\n");
    s
}

/// The footnotes and the source line under a table ([`View::footer`]).
fn footer(v: &View) -> String {
    v.footer()
        .iter()
        .map(|line| format!("<p class=\"note source\">{}</p>\n", esc(line)))
        .collect()
}

/// A horizontal bar per cell, with its margin of error as a line; a suppressed cell shows the
/// marker and no bar.
fn chart(v: &View, t: &Table) -> String {
    let moe = t.entry.margin_of_error;
    // In floats: a value near i64::MAX plus its margin must not overflow.
    let moe_f = moe as f64;
    let max = t
        .values
        .iter()
        .flatten()
        .map(|&x| x as f64 + moe_f)
        .fold(1.0, f64::max);
    let (label_w, bar_w, row_h) = (260.0, 560.0, 20.0);
    let height = 10.0 + row_h * t.values.len() as f64;
    let mut s = format!(
        "<svg class=\"chart\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">\n",
        label_w + bar_w + 80.0,
        label_w + bar_w + 80.0
    );
    let x = |value: f64| label_w + bar_w * value.max(0.0) / max;
    for (i, value) in t.values.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let labels: Vec<String> = t
            .labels(i)
            .iter()
            .zip(&t.entry.dimensions)
            .map(|(c, d)| v.category(d, c))
            .collect();
        let name = if labels.is_empty() {
            v.w.total.to_string()
        } else {
            labels.join(" · ")
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(&name)
        );
        match value {
            Some(val) => {
                let _ = writeln!(
                    s,
                    "<rect class=\"bar\" data-value=\"{val}\" x=\"{label_w}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#2b5797\"/><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#d9534f\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{}\">{}</text>",
                    y + 3.0,
                    x(*val as f64) - label_w,
                    row_h - 6.0,
                    x(*val as f64 - moe_f),
                    x(*val as f64 + moe_f),
                    y + row_h / 2.0,
                    y + row_h / 2.0,
                    x(*val as f64 + moe_f) + 4.0,
                    y + 14.0,
                    thousands(*val)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "<rect class=\"bar suppressed\" x=\"{label_w}\" y=\"{}\" width=\"40\" height=\"{}\" fill=\"none\" stroke=\"#999\" stroke-dasharray=\"3 2\"/><text class=\"suppressed\" x=\"{}\" y=\"{}\">{}</text>",
                    y + 3.0,
                    row_h - 6.0,
                    label_w + 14.0,
                    y + 14.0,
                    esc(&v.p.suppressed_marker)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The shares of the table's total, one row per cell: its labels, the share and its margin in
/// percent, as published.
fn share_table(v: &View, t: &Table, shares: &[Option<(f64, f64)>]) -> String {
    let dims = &t.entry.dimensions;
    let mut s = String::from("<table class=\"cross shares\">\n<thead><tr>");
    for d in dims {
        let _ = write!(s, "<th>{}</th>", esc(v.p.dimension(d)));
    }
    if dims.is_empty() {
        s.push_str("<th></th>");
    }
    let _ = write!(
        s,
        "<th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
        v.w.share, v.w.share_margin
    );
    for (i, share) in shares.iter().enumerate() {
        s.push_str("<tr>");
        for (k, c) in t.labels(i).iter().enumerate() {
            let _ = write!(s, "<th>{}</th>", esc(&v.category(&dims[k], c)));
        }
        if dims.is_empty() {
            let _ = write!(s, "<th>{}</th>", v.w.total);
        }
        match share {
            Some((p, m)) => {
                let _ = write!(
                    s,
                    "<td class=\"share\" data-share=\"{p:.1}\">{p:.1}</td><td class=\"share-moe\">±{m:.1}</td>"
                );
            }
            None => {
                let marker = esc(&v.p.suppressed_marker);
                let _ = write!(
                    s,
                    "<td class=\"share suppressed\" data-share=\"\">{marker}</td><td class=\"suppressed\">{marker}</td>"
                );
            }
        }
        s.push_str("</tr>\n");
    }
    let _ = write!(
        s,
        "</tbody>\n</table>\n<p class=\"note\">{}</p>\n",
        esc(v.w.share_note)
    );
    s
}

/// A value's cell, `class` its classes after `v` (` unreliable` adds the dagger), the marker
/// where suppressed.
fn value_cell(v: &View, value: Option<i64>, class: &str) -> String {
    match value {
        Some(x) if class == " unreliable" => format!(
            "<td class=\"v unreliable\" data-value=\"{x}\">{}<sup>†</sup></td>",
            thousands(x)
        ),
        Some(x) => format!(
            "<td class=\"v{class}\" data-value=\"{x}\">{}</td>",
            thousands(x)
        ),
        None => format!(
            "<td class=\"v suppressed{class}\" data-value=\"\">{}</td>",
            esc(&v.p.suppressed_marker)
        ),
    }
}

/// The cross-table's row of column totals and its grand total (first or last as the
/// presentation says), or nothing when it shows none.
fn total_row(v: &View, cross: &Cross) -> String {
    let mut total_row = String::new();
    if !cross.has_total_row() {
        return total_row;
    }
    let first = v.p.totals_first;
    let cell = |value: Option<i64>| value_cell(v, value, " total");
    let _ = write!(
        total_row,
        "<tr class=\"total\"><th colspan=\"{}\">{}</th>",
        cross.row_dims.len().max(1),
        v.w.total
    );
    let grand = cross.grand_total.map(cell);
    match &cross.column_totals {
        Some(totals) => {
            if first {
                total_row.extend(grand.clone());
            }
            for value in totals {
                total_row.push_str(&cell(*value));
            }
            if !first {
                total_row.extend(grand);
            }
        }
        None => total_row.push_str(&cell(cross.grand_total.flatten())),
    }
    total_row.push_str("</tr>\n");
    total_row
}

/// A DP table as a cross-table: rows by every dimension but the last, columns by the last, with
/// its totals where shown, flagged cells with a dagger, suppressed ones with the marker.
fn cross_table(v: &View, t: &Table, cross: &Cross) -> String {
    let dims = &t.entry.dimensions;
    let cell = |value: Option<i64>, class: &str| value_cell(v, value, class);
    let mut s = String::from("<table class=\"cross\">\n<thead><tr>");
    if cross.row_dims.is_empty() {
        s.push_str("<th></th>");
    }
    for d in &cross.row_dims {
        let _ = write!(s, "<th>{}</th>", esc(v.p.dimension(d)));
    }
    // Totals first (계 before the categories, as Korean statistical tables print them) or last.
    let first = v.p.totals_first;
    let total_head = format!("<th>{}</th>", v.w.total);
    if first && cross.row_totals.is_some() {
        s.push_str(&total_head);
    }
    for c in &cross.columns {
        let _ = write!(s, "<th>{}</th>", esc(&v.column_header(cross, t.entry, c)));
    }
    if !first && cross.row_totals.is_some() {
        s.push_str(&total_head);
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    let total_row = total_row(v, cross);
    if first {
        s.push_str(&total_row);
    }
    for (i, row) in cross.rows.iter().enumerate() {
        s.push_str("<tr>");
        if row.is_empty() {
            let _ = write!(s, "<th>{}</th>", v.w.total);
        }
        for (k, c) in row.iter().enumerate() {
            let _ = write!(s, "<th>{}</th>", esc(&v.category(&dims[k], c)));
        }
        let row_total = cross.row_totals.as_ref().map(|t| cell(t[i], " total"));
        if first {
            s.extend(row_total.clone());
        }
        for (value, &flag) in cross.values[i].iter().zip(&cross.flags[i]) {
            s.push_str(&cell(*value, if flag { " unreliable" } else { "" }));
        }
        if !first {
            s.extend(row_total);
        }
        s.push_str("</tr>\n");
    }
    if !first {
        s.push_str(&total_row);
    }
    s.push_str("</tbody>\n</table>\n");
    s
}
