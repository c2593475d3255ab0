//! Bad input: a clear message naming file, line and field; exit 2; no output folder; never a
//! panic.

use crate::common::*;

#[test]
fn missing_input_file() {
    let s = Scratch::new();
    s.write("policy.toml", POLICY);
    expect_refused(&s, &["cannot open input", "people.csv"]);
}

#[test]
fn missing_policy_file() {
    let s = Scratch::new();
    s.run(&["release", "nope.toml"])
        .expect_code(2)
        .stderr_has(&["cannot read policy `nope.toml`"]);
}

#[test]
fn csv_without_a_needed_column() {
    let s = small();
    s.write("people.csv", "pid,kind\n1,a\n");
    expect_refused(
        &s,
        &["people.csv", "no column `amount`", "table `amount_by_kind`"],
    );
}

#[test]
fn row_with_the_wrong_number_of_fields() {
    let s = small();
    s.write("people.csv", "pid,kind,amount\n1,a,5\n2,b\n");
    expect_refused(&s, &["people.csv:3", "2 fields", "header has 3"]);
}

#[test]
fn non_integer_value() {
    let s = small();
    s.write("people.csv", "pid,kind,amount\n1,a,5\n2,b,7.5\n");
    expect_refused(
        &s,
        &["people.csv:3", "field `amount`", "`7.5` is not an integer"],
    );
}

#[test]
fn undeclared_category() {
    let s = small();
    s.write("people.csv", "pid,kind,amount\n1,a,5\n2,zebra,7\n");
    expect_refused(
        &s,
        &[
            "people.csv:3",
            "field `kind`",
            "`zebra` is not a declared category",
        ],
    );
}

#[test]
fn undeclared_category_mapped_to_a_catch_all_is_accepted() {
    let s = small();
    s.write("people.csv", "pid,kind,amount\n1,a,5\n2,zebra,7\n");
    s.write(
        "policy.toml",
        &replace_once(
            POLICY,
            "[defaults]",
            "[catch_all]\nkind = \"c\"\n\n[defaults]",
        ),
    );
    s.run(&["release", "policy.toml", "--out", "rel"])
        .expect_code(0);
    let rows = read_csv(&s.path("rel/by_kind.csv"));
    assert_eq!(
        rows.iter().map(|r| r["kind"].as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[test]
fn byte_order_mark_before_the_header_is_ignored() {
    let s = small();
    s.write("people.csv", &format!("\u{feff}{PEOPLE}"));
    s.run(&["check", "policy.toml"]).expect_code(0);
}

#[test]
fn duplicate_header_column() {
    let s = small();
    s.write("people.csv", "pid,kind,kind,amount\n1,a,a,5\n");
    expect_refused(&s, &["people.csv", "names column `kind` twice"]);
}

#[test]
fn empty_input_file() {
    let s = small();
    s.write("people.csv", "");
    expect_refused(&s, &["people.csv", "no column `kind`"]);
}

#[test]
fn negative_count_in_an_aggregated_input() {
    let s = Scratch::new();
    s.write("agg.csv", "cell,n\nc1,5\nc2,-3\n");
    s.write("policy.toml", &aggregated_policy("1.0"));
    expect_refused(&s, &["agg.csv:3", "field `n`", "count `-3` is negative"]);
}

#[test]
fn bounds_above_the_slot_limit_or_sum_on_aggregated_input() {
    let s = small();
    s.write(
        "policy.toml",
        &replace_once(
            POLICY,
            "max_rows_per_unit = 2\ncost",
            "max_rows_per_unit = 5000\ncost",
        ),
    );
    expect_refused(
        &s,
        &[
            "table `by_kind`, field `max_rows_per_unit`",
            "above the limit of 1000",
        ],
    );
    s.write(
        "policy.toml",
        &replace_once(
            POLICY,
            "[inputs.people]\npath = \"people.csv\"",
            "[inputs.people]\npath = \"people.csv\"\naggregated = true\ncount_column = \"amount\"",
        ),
    );
    expect_refused(
        &s,
        &[
            "table `amount_by_kind`, field `statistic`",
            "`sum` needs microdata",
        ],
    );
}

#[test]
fn empty_privacy_unit() {
    let s = small();
    s.write("people.csv", "pid,kind,amount\n1,a,5\n,b,7\n");
    expect_refused(
        &s,
        &["people.csv:3", "field `pid`", "privacy unit is empty"],
    );
}

#[test]
fn unknown_policy_field() {
    let s = small();
    s.write(
        "policy.toml",
        &replace_once(
            POLICY,
            "max_rows_per_unit = 2\ncost",
            "max_row_per_unit = 2\ncost",
        ),
    );
    expect_refused(&s, &["policy.toml", "max_row_per_unit"]);
}

#[test]
fn negative_or_zero_cost() {
    let s = small();
    s.write(
        "policy.toml",
        &replace_once(POLICY, "rho = 0.5", "rho = -0.5"),
    );
    expect_refused(&s, &["table `by_kind`, field `cost`", "`-0.5`"]);
    s.write(
        "policy.toml",
        &replace_once(POLICY, "epsilon = 1.0", "epsilon = 0.0"),
    );
    expect_refused(&s, &["table `amount_by_kind`, field `cost`", "positive"]);
}

#[test]
fn clamp_lower_above_upper() {
    let s = small();
    s.write(
        "policy.toml",
        &replace_once(POLICY, "clamp = [0, 100]", "clamp = [100, 0]"),
    );
    expect_refused(
        &s,
        &[
            "table `amount_by_kind`, field `clamp`",
            "lower bound `100` is greater than upper bound `0`",
        ],
    );
}

#[test]
fn unknown_input_or_column() {
    let s = small();
    s.write(
        "policy.toml",
        &replace_once(
            POLICY,
            "input = \"people\"\nstatistic = \"sum\"",
            "input = \"persons\"\nstatistic = \"sum\"",
        ),
    );
    expect_refused(
        &s,
        &[
            "table `amount_by_kind`, field `input`",
            "unknown input `persons`",
        ],
    );
    s.write(
        "policy.toml",
        &replace_once(POLICY, "column = \"amount\"", "column = \"amont\""),
    );
    expect_refused(&s, &["people.csv", "no column `amont`"]);
    s.write(
        "policy.toml",
        &replace_once(
            POLICY,
            "by = [\"kind\"]\nmax_rows_per_unit = 2\ncost",
            "by = [\"knd\"]\nmax_rows_per_unit = 2\ncost",
        ),
    );
    expect_refused(
        &s,
        &[
            "table `by_kind`, field `by`",
            "column `knd` has no declared categories",
        ],
    );
}

#[test]
fn duplicate_table_names() {
    let s = small();
    s.write(
        "policy.toml",
        &replace_once(POLICY, "name = \"amount_by_kind\"", "name = \"by_kind\""),
    );
    expect_refused(&s, &["table `by_kind`, field `name`", "used twice"]);
}

/// Finding 11: a CP949 file (Korean Excel) passed `check` with "every value valid" when a
/// catch-all existed, and published everyone under it. Bytes that are not UTF-8 are never a
/// category; `encoding = "cp949"` reads the file correctly.
#[test]
fn a_cp949_file_is_refused_unless_its_encoding_is_declared() {
    let s = Scratch::new();
    let text = "pid,region,amount\n1,서울,5\n2,부산,7\n3,서울,1\n4,제주,2\n";
    let (cp949, _, lossy) = encoding_rs::EUC_KR.encode(text);
    assert!(!lossy);
    fs::write(s.path("people.csv"), &cp949).unwrap();
    s.write("policy.toml", &korean_policy(""));
    for command in ["check", "release"] {
        s.run(&[command, "policy.toml"])
            .expect_code(2)
            .stderr_has(&[
                "people.csv: 4 rows are not valid",
                "people.csv:2: field `region`: the value is not UTF-8 text",
                "encoding = \"cp949\"",
            ]);
    }
    assert!(!s.path("releases").exists());
    s.write("policy.toml", &korean_policy("encoding = \"cp949\""));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/k/by_region.csv"));
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["region"].as_str(), r["value"].as_str()))
        .collect();
    assert_eq!(got, [("서울", "2"), ("부산", "1"), ("기타", "1")]);
    // A byte sequence that is not CP949 either is named by line.
    let mut bad = cp949.into_owned();
    bad.extend_from_slice(b"5,\xff\xff,1\n");
    fs::write(s.path("people.csv"), &bad).unwrap();
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["people.csv:6:", "is not valid EUC-KR text"]);
}

/// Finding 11: header names and categories typed on a Mac (decomposed Hangul) did not match the
/// policy's composed ones.
#[test]
fn decomposed_hangul_in_the_file_matches_the_policy() {
    use unicode_normalization::UnicodeNormalization;
    let s = Scratch::new();
    let composed = "pid,지역,amount\n1,서울,5\n2,부산,7\n";
    let text: String = composed.nfd().collect();
    assert_ne!(text.as_bytes(), composed.as_bytes());
    s.write("people.csv", &text);
    let policy = replace_once(&korean_policy(""), "[catch_all]\nregion = \"기타\"\n", "");
    let policy = replace_once(&policy, "region = [", "\"지역\" = [");
    s.write(
        "policy.toml",
        &replace_once(&policy, "by = [\"region\"]", "by = [\"지역\"]"),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/k/by_region.csv"));
    assert_eq!(rows[0]["value"], "1");
    assert_eq!(rows[1]["value"], "1");
}

/// Finding 13: reading stopped at the first bad row. Every kind of problem is reported at once,
/// with counts and the first line of each, and near misses get a suggestion.
#[test]
fn every_kind_of_bad_row_is_reported_at_once_with_suggestions() {
    let s = small();
    let mut rows = String::from("pid,kind,amount\n");
    for i in 0..3459 {
        rows += &format!("{i},A,5\n");
    }
    rows += "x,b,7.5\nx,b,oops\ny,a\n";
    s.write("people.csv", &rows);
    expect_refused(
        &s,
        &[
            "people.csv: 3,462 rows are not valid, with 3 kind(s) of problem:",
            "people.csv:2: field `kind`: value `A` is not a declared category of `kind` (declared: a, b, c); did you mean `a`?",
            "(3,459 rows like this; the first is shown)",
            "people.csv:3461: field `amount`: `7.5` is not an integer",
            "(2 rows like this; the first is shown)",
            "people.csv:3463: the row has 2 fields but the header has 3",
        ],
    );
    s.write("people.csv", "pid,knd,amount\n1,a,5\n");
    expect_refused(&s, &["no column `kind`", "did you mean `knd`?"]);
    s.write("people.csv", PEOPLE);
    s.write(
        "policy.toml",
        &replace_once(
            POLICY,
            "statistic = \"count_rows\"",
            "statistic = \"count_row\"",
        ),
    );
    expect_refused(
        &s,
        &[
            "unknown statistic `count_row`",
            "did you mean `count_rows`?",
        ],
    );
}

/// Finding 12: no input of any kind may end safestat with an exit code other than the documented
/// ones (a panic's 101 above all). 300 random files built from the bytes that trouble CSV readers
/// (quotes, separators, line ends, BOMs, bytes that are not UTF-8, digits, signs, categories),
/// read by `check` and `release`: each exits 0 or 2, and a refused release writes nothing.
#[test]
fn random_garbage_inputs_exit_only_with_documented_codes() {
    use rand::Rng;
    use rand::seq::SliceRandom;
    let pieces: [&[u8]; 20] = [
        b"\"",
        b",",
        b"\n",
        b"\r\n",
        b"\r",
        b"\xef\xbb\xbf",
        b"\xff",
        b"\xc3",
        b"a",
        b"b",
        b"c",
        b"1",
        b"-",
        b"9223372036854775807",
        b"pid",
        b"kind",
        b"amount",
        b" ",
        b"\"\"",
        b"\xea\xb0\x80",
    ];
    let mut rng = rand::thread_rng();
    let s = small();
    for i in 0..300 {
        let mut data: Vec<u8> = if rng.gen_bool(0.5) {
            b"pid,kind,amount\n".to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..rng.gen_range(0..60) {
            data.extend_from_slice(pieces.choose(&mut rng).unwrap());
        }
        fs::write(s.path("people.csv"), &data).unwrap();
        let command = if i % 2 == 0 { "check" } else { "release" };
        let run =
            s.run(&[command, "policy.toml", "--out", "rel"][..if i % 2 == 0 { 2 } else { 4 }]);
        let code = run.code();
        assert!(
            code == 0 || code == 2,
            "exit {code} on {:?}:\n{}",
            String::from_utf8_lossy(&data),
            run.stderr()
        );
        if command == "release" && code == 2 {
            assert!(!s.path("rel").exists());
        }
        let _ = fs::remove_dir_all(s.path("rel"));
    }
}

/// Regression (found by the garbage test above): a line break inside a quoted field beyond the
/// header's last column panicked while its column was named.
#[test]
fn a_quoted_line_break_beyond_the_header_is_an_error_not_a_panic() {
    let s = small();
    s.write("people.csv", "pid,kind,amount\n1,a,5,\"x\ny\"\n");
    expect_refused(
        &s,
        &[
            "people.csv:2: field `#4 (beyond the header's 3 columns)`",
            "line break",
        ],
    );
}
