//! The bytes of a published table's CSV as readers get them, and back: codes (the default, for
//! machines) or, with `csv_labels = true`, the dimensions' and categories' labels (for people who
//! open the file directly), with a byte-order mark where the presentation asks for one. One pair
//! of functions, so that what is written is exactly what every reader (`audit`, `verify`,
//! `report`, a later release) turns back into codes.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::policy::Presentation;

const BOM: &str = "\u{feff}";

/// The CSV `coded` (dimension names and category codes in its first `dimensions.len()` columns)
/// as published under `presentation`: labelled if it says `csv_labels`, after a byte-order mark
/// if it says `csv_bom`.
pub fn published_csv(coded: Vec<u8>, dimensions: &[&str], presentation: &Presentation) -> Vec<u8> {
    let mut out = if presentation.csv_labels {
        rewrite(&coded, dimensions.len(), |k, field, header| {
            let dim = dimensions[k];
            if header {
                presentation.dimension(dim).to_string()
            } else {
                presentation.category(dim, field).to_string()
            }
        })
        .expect("a CSV this tool wrote reads back")
    } else {
        coded
    };
    if presentation.csv_bom {
        out.splice(0..0, BOM.bytes());
    }
    out
}

/// The published CSV `bytes` with its codes again (what [`published_csv`] was given), without a
/// byte-order mark. A label it does not know is left as it is, for the reader's own checks to
/// name.
pub fn coded_csv<'a>(
    bytes: &'a [u8],
    dimensions: &[&str],
    presentation: &Presentation,
) -> Result<Cow<'a, [u8]>, String> {
    let bytes = bytes.strip_prefix(BOM.as_bytes()).unwrap_or(bytes);
    if !presentation.csv_labels {
        return Ok(Cow::Borrowed(bytes));
    }
    // Validation made the labels shown in one table's dimension distinct, so each has one code.
    let codes: Vec<HashMap<&str, &str>> = dimensions
        .iter()
        .map(|dim| {
            presentation
                .dimensions
                .get(*dim)
                .map(|d| {
                    d.categories
                        .iter()
                        .map(|(code, label)| (label.as_str(), code.as_str()))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    rewrite(bytes, dimensions.len(), |k, field, header| {
        let dim = dimensions[k];
        if header {
            if field == presentation.dimension(dim) {
                dim.to_string()
            } else {
                field.to_string()
            }
        } else {
            codes[k].get(field).copied().unwrap_or(field).to_string()
        }
    })
    .map(Cow::Owned)
}

/// `bytes` with the first `columns` fields of the header and of every record replaced by
/// `map(column, field, is_header)`, written as the tables are (the csv crate's defaults).
fn rewrite(
    bytes: &[u8],
    columns: usize,
    map: impl Fn(usize, &str, bool) -> String,
) -> Result<Vec<u8>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        let fields: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(k, f)| {
                if k < columns {
                    map(k, f, n == 0)
                } else {
                    f.to_string()
                }
            })
            .collect();
        writer.write_record(&fields).map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn korean() -> Presentation {
        let mut p = serde_json::to_value(Presentation::default()).unwrap();
        p["csv_labels"] = true.into();
        p["csv_bom"] = true.into();
        p["dimensions"] = serde_json::json!({
            "gender": { "label": "성별", "categories": { "female": "여성", "male": "남성, 기타" } }
        });
        serde_json::from_value(p).unwrap()
    }

    #[test]
    fn labelled_csvs_read_back_to_the_bytes_they_were_made_from() {
        let coded = b"gender,age,value,status\nfemale,20s,12,published\nmale,20s,,suppressed\ntotal,20s,30,total\n".to_vec();
        let p = korean();
        let published = published_csv(coded.clone(), &["gender", "age"], &p);
        let text = String::from_utf8(published.clone()).unwrap();
        assert_eq!(
            text,
            "\u{feff}성별,age,value,status\n여성,20s,12,published\n\"남성, 기타\",20s,,suppressed\ntotal,20s,30,total\n"
        );
        assert_eq!(
            coded_csv(&published, &["gender", "age"], &p).unwrap(),
            coded.as_slice()
        );
        // Codes (the default): the same bytes, the mark aside.
        let plain = Presentation::default();
        assert_eq!(
            published_csv(coded.clone(), &["gender", "age"], &plain),
            coded
        );
        assert_eq!(
            coded_csv(&coded, &["gender", "age"], &plain).unwrap(),
            coded.as_slice()
        );
    }
}
