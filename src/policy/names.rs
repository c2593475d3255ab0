//! Names as the policy writes them: which are safe as file names, how text is compared (Unicode
//! NFC), near-miss suggestions for typos, and encoding labels.

/// Characters allowed in names that become file or folder names.
pub(super) fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(super) const SAFE_NAME_RULE: &str =
    "use 1-100 ASCII letters, digits, `-`, `_` or `.`, not starting with `.`";

/// A name or category in Unicode normalisation form C, so that text typed on a Mac (decomposed
/// Hangul) and text from elsewhere compare equal.
pub fn nfc(s: String) -> String {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        s
    } else {
        s.nfc().collect()
    }
}

/// `; did you mean `x`?` for the candidate nearest to `given`, when one is near enough to be a
/// likely typo (the same but for case, or at least 70% alike by Damerau-Levenshtein distance);
/// empty otherwise.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let given_lower = given.to_lowercase();
    let best = candidates
        .into_iter()
        .filter(|&c| c != given)
        .map(|c| {
            let lower = c.to_lowercase();
            let alike = if lower == given_lower {
                2.0 // same but for case: the best possible match
            } else {
                strsim::normalized_damerau_levenshtein(&given_lower, &lower)
            };
            (c, alike)
        })
        .filter(|&(_, alike)| alike >= 0.7)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    best.map_or_else(String::new, |(c, _)| format!("; did you mean `{c}`?"))
}

/// Encodings are named as the WHATWG Encoding Standard labels them (`euc-kr`, `windows-1252`,
/// `shift_jis`, ...), plus `cp949`/`ms949`/`uhc` for Korean Windows (a superset that encoding_rs
/// decodes as `EUC-KR`). `None` is UTF-8, the default.
pub(super) fn parse_encoding(
    label: &str,
) -> Result<Option<&'static encoding_rs::Encoding>, String> {
    let lower = label.trim().to_ascii_lowercase();
    let label = match lower.as_str() {
        "cp949" | "ms949" | "uhc" | "x-windows-949" => "windows-949",
        other => other,
    };
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        Some(e) if e == encoding_rs::UTF_8 => Ok(None),
        Some(e) => Ok(Some(e)),
        None => Err(format!(
            "unknown encoding `{label}`; use a WHATWG label such as `utf-8`, `cp949` (Korean Excel), `euc-kr`, `windows-1252` or `shift_jis`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_near_misses_only() {
        let names = ["region", "age_group", "gender"];
        assert_eq!(did_you_mean("regoin", names), "; did you mean `region`?");
        assert_eq!(did_you_mean("Region", names), "; did you mean `region`?");
        assert_eq!(
            did_you_mean("agegroup", names),
            "; did you mean `age_group`?"
        );
        assert_eq!(did_you_mean("zebra", names), "");
        assert_eq!(did_you_mean("zebra", ["x"]), "");
        assert_eq!(did_you_mean("region", names), "");
    }
}
