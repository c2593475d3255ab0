//! Exact tables (`protection = "suppression"`): exact counts with every margin, small cells and
//! the cells that would give them back suppressed, the attacker's interval of every suppressed
//! cell in the manifest, re-checked by `audit` from the published files; marked not
//! differentially private and charged nothing.

use crate::common::*;

/// region (4) x gender (2) counts, one row per person: `r1,f` has 2 people and `r3,m` 3, every
/// other cell at least 20.
const COUNTS: [(&str, &str, usize); 8] = [
    ("r1", "f", 2),
    ("r1", "m", 30),
    ("r2", "f", 25),
    ("r2", "m", 40),
    ("r3", "f", 22),
    ("r3", "m", 3),
    ("r4", "f", 50),
    ("r4", "m", 45),
];

pub(crate) fn people(extra: &str) -> String {
    let mut rows = String::from("pid,region,gender,age\n");
    let mut id = 0;
    for (r, g, n) in COUNTS {
        for _ in 0..n {
            id += 1;
            let age = if id % 2 == 0 { "young" } else { "old" };
            rows.push_str(&format!("p{id},{r},{g},{age}\n"));
        }
    }
    rows.push_str(extra);
    rows
}

pub(crate) fn policy(tables: &str) -> String {
    format!(
        r#"
[release]
id = "exact"
[dataset]
name = "people"
privacy_unit = "pid"
budget = {{ rho = 1 }}
[inputs.people]
path = "people.csv"
[categories]
region = ["r1", "r2", "r3", "r4"]
gender = ["f", "m"]
age = ["young", "old"]
{tables}
"#
    )
}

pub(crate) const REGION_GENDER: &str = r#"
[[table]]
name = "by_region_gender"
input = "people"
statistic = "count_units"
by = ["region", "gender"]
protection = "suppression"
primary = { min_frequency = 5 }
interval_percent = 20
"#;

const DIR: &str = "releases/exact";

fn count(r: &str, g: &str) -> i64 {
    COUNTS
        .iter()
        .filter(|(a, b, _)| (r == "total" || *a == r) && (g == "total" || *b == g))
        .map(|x| x.2 as i64)
        .sum()
}

#[test]
fn small_cells_and_the_cells_that_give_them_back_are_suppressed_and_proven() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["check", "policy.toml"])
        .expect_code(0)
        .stdout_has(&[
            "by_region_gender",
            "exact values, cell suppression of cells of fewer than 5 pid (not differentially private)",
        ]);
    s.run(&["plan", "policy.toml"]).expect_code(0).stdout_has(&[
        "no differentially private tables: total cost none",
        "exact table `by_region_gender` by [region, gender]",
        "not differentially private; costs no budget",
    ]);
    let run = s.run(&["release", "policy.toml", "--json"]);
    run.expect_code(0).stdout_has(&[
        "by_region_gender",
        "cell suppression",
        "none (not DP)",
        "total cost: none (exact tables only, not differentially private); charged rho=0",
    ]);
    let rows = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
    // The whole grid: 5 x 3 rows, margins labelled `total`, each row saying it is exact.
    assert_eq!(rows.len(), 15);
    assert!(
        rows.iter()
            .all(|r| r["protection"]
                == "exact values, cell suppression (not differentially private)")
    );
    assert_eq!(
        (rows[2]["region"].as_str(), rows[2]["gender"].as_str()),
        ("r1", "total")
    );
    assert_eq!(
        (rows[14]["region"].as_str(), rows[14]["gender"].as_str()),
        ("total", "total")
    );
    let mut suppressed = Vec::new();
    for row in &rows {
        let (r, g) = (row["region"].as_str(), row["gender"].as_str());
        match row["status"].as_str() {
            // A published cell is exact.
            "published" => assert_eq!(row["value"], count(r, g).to_string(), "{row:?}"),
            "suppressed" => {
                assert_eq!(row["value"], "");
                suppressed.push((r.to_string(), g.to_string()));
            }
            other => panic!("status {other}"),
        }
    }
    // Both small cells, and at least enough others that neither comes back by subtraction.
    assert!(suppressed.contains(&("r1".into(), "f".into())));
    assert!(suppressed.contains(&("r3".into(), "m".into())));
    assert!(suppressed.len() >= 4, "{suppressed:?}");
    // The manifest: not DP, every suppressed cell with the attacker's interval, which holds the
    // true value and, for a small cell, reaches 20% (at least 1) above and below it.
    let m = manifest(&s.path(DIR));
    let t = &m["exact_tables"][0];
    assert_eq!(t["protection"], "cell_suppression");
    assert!(
        t["guarantee"]
            .as_str()
            .unwrap()
            .starts_with("not differentially private")
    );
    assert_eq!(t["cells_suppressed"], suppressed.len());
    // A small table: the exact method finds the minimum.
    assert!(
        t["secondary_method"]
            .as_str()
            .unwrap()
            .starts_with("the exact minimum"),
        "{}",
        t["secondary_method"]
    );
    let intervals = t["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), suppressed.len());
    for iv in intervals {
        let cell: Vec<&str> = iv["cell"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let v = count(cell[0], cell[1]);
        let lo = iv["lo"].as_i64().unwrap();
        let hi = iv["hi"].as_i64();
        assert!(lo <= v && hi.is_none_or(|h| h >= v), "{iv}");
        assert!(hi.is_none_or(|h| h > lo), "disclosed: {iv}");
        if v < 5 {
            assert!(lo < v && hi.is_none_or(|h| h > v), "{iv}");
        }
    }
    // Charged nothing; the ledger records the exact table.
    let b = budget_json(&s);
    assert_eq!(b["spent"], 0.0);
    assert_eq!(b["releases"][0]["exact_tables"][0], "by_region_gender");
    s.run(&["budget", "--ledger", "ledger/people.jsonl"])
        .expect_code(0)
        .stdout_has(&[
            "exact tables, not differentially private, charged nothing: by_region_gender",
        ]);
    // The audit re-runs the attacker's problem from the published files and agrees.
    s.run(&["audit", DIR]).expect_code(0);
    // The JSON has the same rows.
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(s.path(&format!("{DIR}/by_region_gender.json"))).unwrap())
            .unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 15);

    // The workbook has the table's sheet (values where published, the marker where not) and the
    // page its cross-table, both saying the values are exact and not differentially private.
    let bytes = fs::read(s.path(&format!("{DIR}/exact.xlsx"))).unwrap();
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    use calamine::Reader;
    let range = wb.worksheet_range("by_region_gender").unwrap();
    let cells: Vec<String> = range.rows().flatten().map(|c| c.to_string()).collect();
    assert!(
        cells
            .iter()
            .any(|c| c.contains("not differentially private"))
    );
    assert_eq!(cells.iter().filter(|c| *c == "x").count(), suppressed.len());
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    let start = html.find("id=\"by_region_gender\"").unwrap();
    let section = &html[start..start + html[start..].find("</section>").unwrap()];
    assert!(section.contains("not differentially private"));
    // The methodology states the rule and the audit.
    let method = &html[html.find("id=\"methodology\"").unwrap()..];
    assert!(
        method.contains("cells of fewer than 5 privacy units")
            && method.contains("20% (at least 1)")
    );
    let page: Vec<String> = section
        .split("data-value=\"")
        .skip(1)
        .map(|c| c[..c.find('"').unwrap()].to_string())
        .collect();
    let csv_values: Vec<String> = rows.iter().map(|r| r["value"].clone()).collect();
    assert_eq!(page, csv_values);

    // A suppressed cell published after all is caught, by its hash and by the attacker's audit.
    let csv_path = s.path(&format!("{DIR}/by_region_gender.csv"));
    let text = fs::read_to_string(&csv_path).unwrap();
    fs::write(
        &csv_path,
        text.replacen("r1,f,,suppressed", "r1,f,2,published", 1),
    )
    .unwrap();
    s.run(&["audit", DIR]).expect_code(4).stdout_has(&[
        "by_region_gender.csv",
        "altered",
        "the attacker's audit finds",
    ]);
}

#[test]
fn the_same_data_gives_the_same_pattern_byte_for_byte() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let first = fs::read(s.path(&format!("{DIR}/by_region_gender.csv"))).unwrap();
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    let second = fs::read(s.path("releases/exact.v2/by_region_gender.csv")).unwrap();
    assert_eq!(first, second);
    // Version 1 stays public, so version 2 was protected with it (the ledger says so) and the
    // audit re-proves the pair.
    let ledger = fs::read_to_string(s.path("ledger/people.jsonl")).unwrap();
    let v2: serde_json::Value = ledger
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["kind"] == "charge" && l["version"] == 2)
        .unwrap();
    assert_eq!(
        v2["exact_links"],
        serde_json::json!([{ "release_id": "exact", "version": 1, "table": "by_region_gender" }])
    );
    s.run(&["audit", "releases/exact.v2"]).expect_code(0);
    // A plain re-run is the ledger's to decide: already released, not linked to itself.
    s.run(&["release", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["already released"]);
}

#[test]
fn linked_exact_tables_are_protected_together_and_mixed_releases_say_so() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    let by_age = region_by_age(REGION_GENDER, "by_region_gender");
    let dp = r#"
[[table]]
name = "dp_by_region"
input = "people"
statistic = "count_units"
by = ["region"]
max_cells_per_unit = 1
cost = { rho = 0.1 }
"#;
    s.write(
        "policy.toml",
        &policy(&format!("{REGION_GENDER}{by_age}{dp}")),
    );
    s.run(&["release", "policy.toml"])
        .expect_code(0)
        .stdout_has(&[
            "not differentially private",
            "holds only relative to what the exact tables reveal",
        ]);
    // Both tables publish the same region totals, or hide the same ones.
    let a = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
    let b = read_csv(&s.path(&format!("{DIR}/by_region_age.csv")));
    for r in ["r1", "r2", "r3", "r4"] {
        let total = |rows: &[HashMap<String, String>], dim: &str| {
            rows.iter()
                .find(|x| x["region"] == r && x[dim] == "total")
                .unwrap()["value"]
                .clone()
        };
        assert_eq!(total(&a, "gender"), total(&b, "age"), "region {r}");
    }
    s.run(&["audit", DIR]).expect_code(0);
    let m = manifest(&s.path(DIR));
    assert_eq!(m["exact_tables"].as_array().unwrap().len(), 2);
    // Issue 24, item 7: said beyond stdout, in the manifest, the methodology of the workbook and
    // of the report, and by `budget`.
    let mixing = m["mixing"].as_str().unwrap();
    assert!(
        mixing.contains("`by_region_gender`, `by_region_age`")
            && mixing.contains("holds only relative to what the exact tables reveal"),
        "{mixing}"
    );
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    assert!(
        html.contains("Published with exact tables")
            && html.contains("The differential privacy guarantee holds only on top of what the exact tables reveal"),
        "report.html lacks the mixing note"
    );
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook(s.path(&format!("{DIR}/exact.xlsx"))).unwrap();
    let mut found = false;
    for name in calamine::Reader::sheet_names(&workbook) {
        let range = calamine::Reader::worksheet_range(&mut workbook, &name).unwrap();
        found |= range.rows().flatten().any(|c| {
            c.to_string()
                .contains("holds only on top of what the exact tables reveal")
        });
    }
    assert!(found, "the workbook's methodology lacks the mixing note");
    s.run(&["budget", "--ledger", "ledger/people.jsonl"])
        .expect_code(0)
        .stdout_has(&["1 published release(s) hold exact tables"]);
    let budget = budget_json(&s);
    assert_eq!(budget["exact_publications"], 1);
    // One secondary suppression for both: one objective.
    let both = format!("{REGION_GENDER}{by_age}");
    let value = both.replacen(
        "interval_percent = 20",
        "interval_percent = 20\nsecondary = \"value\"",
        1,
    );
    s.write(
        "other.toml",
        &policy(&value).once(r#"id = "exact""#, r#"id = "other""#),
    );
    s.run(&["check", "other.toml"]).expect_code(2).stderr_has(&[
        "field `secondary`: `cells`, but exact table `by_region_gender` says `value`",
    ]);
    // A one-dimensional exact table on the page: each row its region's label and value.
    let by_region = REGION_GENDER
        .once("by_region_gender", "by_region")
        .once(r#"by = ["region", "gender"]"#, r#"by = ["region"]"#);
    s.write(
        "one.toml",
        &policy(&by_region).once(r#"id = "exact""#, r#"id = "one""#),
    );
    s.run(&["release", "one.toml"]).expect_code(0);
    let html = fs::read_to_string(s.path("releases/one/report.html")).unwrap();
    let section = &html[html.find("id=\"by_region\"").unwrap()..];
    for (r, want) in [("r2", count("r2", "total")), ("r4", count("r4", "total"))] {
        assert!(
            section.contains(&format!(
                "<tr><th>{r}</th><td class=\"v\" data-value=\"{want}\">"
            )),
            "{r}"
        );
    }
    assert!(section.contains(&format!(
        "<tr><th>Total</th><td class=\"v\" data-value=\"{}\">",
        count("total", "total")
    )));
    assert_eq!(m["tables"].as_array().unwrap().len(), 1);
}

#[test]
fn a_person_in_two_cells_is_refused_with_nothing_charged() {
    let s = Scratch::new();
    // p1 is in r1 f; a second row puts them in r2.
    s.write("people.csv", &people("p1,r2,f,old\n"));
    s.write("policy.toml", &policy(REGION_GENDER));
    // `check` finds it before any release.
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["1 privacy unit(s) in more than one cell"]);
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&[
            "1 privacy unit(s) in more than one cell of exact table `by_region_gender`",
            "`region` or `gender`",
        ]);
    assert!(!s.path(DIR).exists());
    assert!(!s.path("ledger/people.jsonl").exists());
}

#[test]
fn exact_table_fields_are_validated() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    for (edit, problem) in [
        (
            (
                "interval_percent = 20",
                "interval_percent = 20\ncost = { rho = 0.1 }",
            ),
            "field `cost`: does not apply to an exact table",
        ),
        (
            ("primary = { min_frequency = 5 }\n", ""),
            "field `primary`: an exact table needs its primary rule",
        ),
        (
            (
                "primary = { min_frequency = 5 }",
                "primary = { min_frequency = 1 }",
            ),
            "protects nobody",
        ),
        (("interval_percent = 20\n", ""), "field `interval_percent`"),
        (
            ("statistic = \"count_units\"", "statistic = \"count_row\""),
            "`count_row` is none of them; did you mean `count_rows`",
        ),
        (
            ("statistic = \"count_units\"", "statistic = \"sum\""),
            "field `column`: an exact sum needs its column",
        ),
        (
            (
                "statistic = \"count_units\"",
                "statistic = \"count_units\"\ncolumn = \"age\"",
            ),
            "field `column`: a count (`count_units`) sums no column",
        ),
        (
            (
                "primary = { min_frequency = 5 }",
                "primary = { min_frequency = 5, dominance = { n = 1, k = 80 } }",
            ),
            "field `primary`: the dominance and p% rules are for sums and counts of rows",
        ),
        (
            (
                "statistic = \"count_units\"",
                "statistic = \"sum\"\ncolumn = \"region\"",
            ),
            "field `column`: `region` is the privacy unit or a dimension",
        ),
        (
            (
                "statistic = \"count_units\"\nby = [\"region\", \"gender\"]\nprotection = \"suppression\"\nprimary = { min_frequency = 5 }",
                "statistic = \"sum\"\ncolumn = \"age\"\nby = [\"region\", \"gender\"]\nprotection = \"suppression\"\nprimary = { min_frequency = 5, dominance = { n = 1, k = 100 }, p_percent = 0 }",
            ),
            "`k` from 1 to 99 percent",
        ),
        (
            (
                "statistic = \"count_units\"\nby = [\"region\", \"gender\"]\nprotection = \"suppression\"\nprimary = { min_frequency = 5 }",
                "statistic = \"sum\"\ncolumn = \"age\"\nby = [\"region\", \"gender\"]\nprotection = \"suppression\"\nprimary = { min_frequency = 5, p_percent = 0 }",
            ),
            "`p_percent` must be from 1 to 100, got 0",
        ),
        (
            (
                "protection = \"suppression\"",
                "protection = \"supression\"",
            ),
            "did you mean `suppression`",
        ),
        (
            (
                "interval_percent = 20",
                "interval_percent = 20\ntotal_label = \"r2\"",
            ),
            "field `total_label`: `r2` is a category of `region`",
        ),
        (
            (
                "interval_percent = 20",
                "interval_percent = 20\ntotal_label = \" \"",
            ),
            "field `total_label`: ` ` cannot label a margin",
        ),
        (
            (
                "interval_percent = 20",
                "interval_percent = 20\ntotal_label = \"all\"\nmargins = false",
            ),
            "field `total_label`: labels the margins, and this table publishes none",
        ),
    ] {
        assert_eq!(REGION_GENDER.matches(edit.0).count(), 1, "{}", edit.0);
        s.write("policy.toml", &policy(&REGION_GENDER.once(edit.0, edit.1)));
        s.run(&["check", "policy.toml"])
            .expect_code(2)
            .stderr_has(&[problem]);
    }
    // Too many cells for the solvers.
    let mut big = policy(REGION_GENDER);
    big = big.once(
        r#"age = ["young", "old"]"#,
        &format!(
            "age = [\"young\", \"old\"]\nid2 = [{}]\nid3 = [{}]",
            (0..200)
                .map(|i| format!("\"a{i}\""))
                .collect::<Vec<_>>()
                .join(", "),
            (0..200)
                .map(|i| format!("\"b{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    big = big.once(r#"by = ["region", "gender"]"#, r#"by = ["id2", "id3"]"#);
    s.write("policy.toml", &big);
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["40401 cells, more than the 20000 an exact table may have"]);
    // DP tables do not take suppression rules or groups (their margins take a label).
    for (line, field) in [
        ("interval_percent = 20", "interval_percent"),
        (
            "groups = [{ dimension = \"region\", name = \"n\", categories = [\"r1\"] }]",
            "groups",
        ),
    ] {
        let dp = format!(
            "[[table]]\nname = \"d\"\ninput = \"people\"\nstatistic = \"count_units\"\nby = [\"region\"]\nmax_cells_per_unit = 1\ncost = {{ rho = 0.1 }}\n{line}\n"
        );
        s.write("policy.toml", &policy(&dp));
        s.run(&["check", "policy.toml"])
            .expect_code(2)
            .stderr_has(&[&format!("table `d`, field `{field}`: does not apply here")]);
    }
}

/// A later release of exact tables from the same data is protected together with the earlier
/// one's: what it published is a fact, what it hid stays hidden, and `audit` re-proves the pair.
#[test]
fn a_later_release_of_the_same_data_is_protected_with_the_earlier_one() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let first = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
    // A second release (another id) of region x age shares the region totals and the grand total.
    let by_age = region_by_age(REGION_GENDER, "by_region_gender");
    release_second_by_age(&s, REGION_GENDER, "by_region_gender");
    // The link is in the (private) ledger, never in the public manifest: that two releases were
    // read from the same data is a fact about the data.
    let charge = |id: &str| charge_of(&s, id);
    assert_eq!(
        charge("second")["exact_links"],
        serde_json::json!([{ "release_id": "exact", "version": 1, "table": "by_region_gender" }])
    );
    assert!(charge("exact").get("exact_links").is_none());
    let m = fs::read_to_string(s.path("releases/second/manifest.json")).unwrap();
    assert!(
        !m.contains("exact_links") && !m.contains("by_region_gender"),
        "{m}"
    );
    let second = read_csv(&s.path("releases/second/by_region_age.csv"));
    assert_region_totals_agree(&first, &second);
    s.run(&["audit", "releases/second", DIR]).expect_code(0);
    // Other data (one more person) is not linked: its fingerprint differs.
    s.write("people.csv", &people("p999,r4,m,old\n"));
    s.write(
        "third.toml",
        &policy(&by_age).once(r#"id = "exact""#, r#"id = "third""#),
    );
    s.run(&["release", "third.toml"]).expect_code(0);
    assert!(charge("third").get("exact_links").is_none());
    // An earlier folder whose manifest was edited (its tables' files untouched, so the folder
    // still agrees with the manifest's hashes) is refused, checked against the ledger: an edited
    // manifest once reached the linking of its tables and panicked there.
    s.write("people.csv", &people(""));
    let manifest_path = s.path(&format!("{DIR}/manifest.json"));
    let original = fs::read_to_string(&manifest_path).unwrap();
    let edited = replace_once(
        &original,
        "\"interval_percent\": 20.0",
        "\"interval_percent\": 21.0",
    );
    fs::write(&manifest_path, &edited).unwrap();
    s.write(
        "edited.toml",
        &policy(&by_age).once(r#"id = "exact""#, r#"id = "edited""#),
    );
    s.run(&["release", "edited.toml"])
        .expect_code(2)
        .stderr_has(&[
            "release `exact` version 1 published exact tables of this dataset",
            "its manifest.json differs from the one the ledger recorded",
        ]);
    assert!(!s.path("releases/edited").exists());
    assert!(
        !fs::read_to_string(s.path("ledger/people.jsonl"))
            .unwrap()
            .contains("\"edited\""),
        "nothing charged"
    );
    fs::write(&manifest_path, &original).unwrap();
    // An earlier folder that cannot be read stops a release that must be protected with it.
    fs::remove_dir_all(s.path(DIR)).unwrap();
    s.write(
        "fourth.toml",
        &policy(&by_age).once(r#"id = "exact""#, r#"id = "fourth""#),
    );
    // The audit of the second release, which leaned on the first, cannot be re-run without it.
    s.run(&["audit", "releases/second"])
        .expect_code(4)
        .stdout_has(&["exact table `by_region_gender` of release `exact` version 1"]);
    s.run(&["release", "fourth.toml"])
        .expect_code(2)
        .stderr_has(&[
            "release `exact` version 1 published exact tables of this dataset",
            "cannot be read",
        ]);
    assert!(!s.path("releases/fourth").exists());
}

/// `margins = false`: the inner cells alone; with no total to subtract from, only the small cells
/// are suppressed, and the attacker can bound them by nothing but what the rules make public: a
/// hidden count is at least 1 (zeros are never hidden).
#[test]
fn a_table_without_margins_hides_only_its_small_cells() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    let table = REGION_GENDER.once(
        "interval_percent = 20",
        "interval_percent = 20\nmargins = false",
    );
    s.write("policy.toml", &policy(&table));
    s.run(&["check", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["by_region_gender", "without margins"]);
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
    assert_eq!(rows.len(), 8);
    assert!(
        rows.iter()
            .all(|r| r["region"] != "total" && r["gender"] != "total")
    );
    let hidden: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["status"] == "suppressed")
        .map(|r| (r["region"].as_str(), r["gender"].as_str()))
        .collect();
    assert_eq!(hidden, [("r1", "f"), ("r3", "m")]);
    let m = manifest(&s.path(DIR));
    let t = &m["exact_tables"][0];
    assert_eq!(t["margins"], false);
    for iv in t["intervals"].as_array().unwrap() {
        assert_eq!(
            (iv["lo"].as_i64(), iv["hi"].as_i64()),
            (Some(1), None),
            "{iv}"
        );
    }
    s.run(&["audit", DIR]).expect_code(0);
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    let section = &html[html.find("id=\"by_region_gender\"").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    assert_eq!(section.matches("data-value=").count(), 8);
}

/// The margins' label is the policy's (`total_label`): the rows, the manifest, the audit and the
/// report all use it.
#[test]
fn the_margins_label_is_configurable() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    let table = REGION_GENDER.once(
        "interval_percent = 20",
        "interval_percent = 20\ntotal_label = \"계\"",
    );
    s.write("policy.toml", &policy(&table));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
    let labelled = |r: &str, g: &str| {
        rows.iter()
            .filter(|x| x["region"] == r && x["gender"] == g)
            .count()
    };
    assert_eq!(labelled("계", "계"), 1);
    assert_eq!(labelled("r4", "계"), 1);
    assert!(
        rows.iter()
            .all(|x| x["region"] != "total" && x["gender"] != "total")
    );
    let grand = rows
        .iter()
        .find(|x| x["region"] == "계" && x["gender"] == "계")
        .unwrap();
    assert_eq!(grand["value"], count("total", "total").to_string());
    assert_eq!(
        manifest(&s.path(DIR))["exact_tables"][0]["total_label"],
        "계"
    );
    s.run(&["audit", DIR]).expect_code(0);
    s.run(&["report", DIR]).expect_code(0);
}

/// A dimension's groups publish their subtotals (after its categories, before its total), are
/// protected like every margin, and are read back by `audit` and `report` from the manifest.
#[test]
fn groups_publish_protected_subtotals() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    let table = REGION_GENDER.once(
        "interval_percent = 20",
        "interval_percent = 20\ngroups = [{ dimension = \"region\", name = \"north\", categories = [\"r1\", \"r3\"] }]",
    );
    s.write("policy.toml", &policy(&table));
    s.run(&["check", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["with every margin and the subtotals of `north`"]);
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
    // 4 regions, north, total x 2 genders, total.
    assert_eq!(rows.len(), 6 * 3);
    let order: Vec<&str> = rows
        .iter()
        .step_by(3)
        .map(|r| r["region"].as_str())
        .collect();
    assert_eq!(order, ["r1", "r2", "r3", "r4", "north", "total"]);
    let cell = |r: &str, g: &str| {
        rows.iter()
            .find(|x| x["region"] == r && x["gender"] == g)
            .unwrap()
    };
    // north = r1 + r3: 2 + 22 women, 30 + 3 men. Each is either published exactly or hidden.
    for (g, want) in [("f", 24), ("m", 33), ("total", 57)] {
        let row = cell("north", g);
        if row["status"] == "published" {
            assert_eq!(row["value"], want.to_string(), "north, {g}");
        }
    }
    // r1,f (2) and r3,m (3) are hidden; north's columns cannot give them back: with r1,f
    // hidden, north,f or r3,f is hidden too (north,f - r3,f = r1,f).
    assert_eq!(cell("r1", "f")["status"], "suppressed");
    assert!(
        cell("north", "f")["status"] == "suppressed" || cell("r3", "f")["status"] == "suppressed"
    );
    assert!(
        cell("north", "m")["status"] == "suppressed" || cell("r1", "m")["status"] == "suppressed"
    );
    let m = manifest(&s.path(DIR));
    assert_eq!(m["exact_tables"][0]["groups"][0][0]["name"], "north");
    assert_eq!(m["exact_tables"][0]["cells"], 18);
    s.run(&["audit", DIR]).expect_code(0);
    s.run(&["report", DIR]).expect_code(0);
    // A group's subtotal is labelled like a category (another release of the same data).
    s.write(
        "labelled.toml",
        &format!(
            "{}\n[labels.region]\ncategories = {{ r1 = \"일\", north = \"북부\" }}\n",
            policy(&table).once(r#"id = "exact""#, r#"id = "labelled""#)
        ),
    );
    s.run(&["release", "labelled.toml"]).expect_code(0);
    let page = fs::read_to_string(s.path("releases/labelled/report.html")).unwrap();
    assert!(
        page.contains("<th>북부</th>") && page.contains("<th>일</th>"),
        "{page}"
    );
    // The audit notices a subtotal that gives a hidden cell away: publish the hidden one of
    // north,f and r3,f, and north,f - r3,f pins r1,f at 2.
    let path = s.path(&format!("{DIR}/by_region_gender.csv"));
    let text = fs::read_to_string(&path).unwrap();
    let (from, to) = if cell("north", "f")["status"] == "suppressed" {
        ("north,f,,suppressed", "north,f,24,published")
    } else {
        ("r3,f,,suppressed", "r3,f,22,published")
    };
    let edited = replace_once(&text, from, to);
    assert_ne!(edited, text);
    fs::write(&path, edited).unwrap();
    s.run(&["audit", DIR])
        .expect_code(4)
        .stdout_has(&["suppressed cell (r1, f) is disclosed: the published cells fix it at 2"]);
    // Validation.
    for (groups, problem) in [
        (
            r#"[{ dimension = "region", name = "north", categories = ["r1", "r9"] }]"#,
            "`r9` is not a category of `region`",
        ),
        (
            r#"[{ dimension = "region", name = "r2", categories = ["r1"] }]"#,
            "`r2` is already a category or the total's label of `region`",
        ),
        (
            r#"[{ dimension = "age", name = "x", categories = ["young"] }]"#,
            "`age` is not one of this table's dimensions",
        ),
        (
            r#"[{ dimension = "region", name = "x", categories = [] }]"#,
            "group `x` has no categories",
        ),
        (
            r#"[{ dimension = "region", name = "a", categories = ["r1", "r2"] }, { dimension = "region", name = "b", categories = ["r2", "r1"] }]"#,
            "group `b` has the same categories as group `a`",
        ),
    ] {
        let t = REGION_GENDER.once(
            "interval_percent = 20",
            &format!("interval_percent = 20\ngroups = {groups}"),
        );
        s.write("policy.toml", &policy(&t));
        s.run(&["check", "policy.toml"])
            .expect_code(2)
            .stderr_has(&[problem]);
    }
    let t = REGION_GENDER.once(
        "interval_percent = 20",
        "interval_percent = 20\nmargins = false\ngroups = [{ dimension = \"region\", name = \"n\", categories = [\"r1\"] }]",
    );
    s.write("policy.toml", &policy(&t));
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["field `groups`: a group's subtotal is a margin"]);
}

/// An exact table of a pre-counted breakdown: its counts are published as given (the frequency
/// rule on them), small cells and those that would give them back hidden, proven by the audit.
#[test]
fn an_exact_table_of_a_pre_counted_breakdown() {
    let s = sample();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    s.write(
        SAMPLE_POLICY,
        &format!(
            "{policy}{}",
            r#"
[[table]]
name = "exact_gender_age"
input = "breakdown"
statistic = "count_units"
by = ["gender", "age_group"]
protection = "suppression"
primary = { min_frequency = 100 }    # male 50_plus (41), under_10 (47) and unknown (73)
interval_percent = 20

[[table]]
name = "exact_gender"                # another input: other people, so no cell is shared
input = "victims"
statistic = "count_units"
by = ["gender"]
protection = "suppression"
primary = { min_frequency = 5 }
interval_percent = 20
"#
        ),
    );
    // One more in the breakdown than in the microdata, so that the two grand totals differ.
    let breakdown = fs::read_to_string(s.path("data/disung_2024_breakdown.csv")).unwrap();
    s.write(
        "data/disung_2024_breakdown.csv",
        &replace_once(&breakdown, "female,10s,2054", "female,10s,2055"),
    );
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let dir = s.path("releases/disung-2024");
    let rows = read_csv(&dir.join("exact_gender_age.csv"));
    assert_eq!(rows.len(), 3 * 8);
    let breakdown = read_csv(&s.path("data/disung_2024_breakdown.csv"));
    for b in &breakdown {
        let row = rows
            .iter()
            .find(|r| r["gender"] == b["gender"] && r["age_group"] == b["age_group"])
            .unwrap();
        let n: i64 = b["victims"].parse().unwrap();
        if n < 100 {
            assert_eq!(row["status"], "suppressed", "{b:?}");
        } else if row["status"] == "published" {
            assert_eq!(row["value"], b["victims"], "{b:?}");
        }
    }
    // The grand total, where published, is the breakdown's sum; the audit proves every hidden
    // cell's interval from the published values.
    let grand = rows
        .iter()
        .find(|r| r["gender"] == "total" && r["age_group"] == "total")
        .unwrap();
    let sum: i64 = breakdown
        .iter()
        .map(|b| b["victims"].parse::<i64>().unwrap())
        .sum();
    assert_eq!(grand["value"], sum.to_string());
    // The microdata's table has its own grand total: its distinct victims.
    let victims: std::collections::BTreeSet<String> =
        read_csv(&s.path("data/disung_2024_victims.csv"))
            .into_iter()
            .map(|r| r["victim_id"].clone())
            .collect();
    let by_gender = read_csv(&dir.join("exact_gender.csv"));
    let grand = by_gender.iter().find(|r| r["gender"] == "total").unwrap();
    assert_eq!(grand["value"], victims.len().to_string());
    s.run(&["audit", "releases/disung-2024"]).expect_code(0);
    // A breakdown has no unit's contributions: no sums, no dominance or p% rules.
    for (from, to, problem) in [
        (
            "statistic = \"count_units\"\nby = [\"gender\", \"age_group\"]\nprotection",
            "statistic = \"sum\"\ncolumn = \"victims\"\nby = [\"gender\", \"age_group\"]\nprotection",
            "a pre-counted breakdown has no unit's rows or contributions (`sum`)",
        ),
        (
            "primary = { min_frequency = 100 }",
            "primary = { min_frequency = 100, p_percent = 10 }",
            "a pre-counted breakdown has no unit's contributions: only the frequency rule",
        ),
    ] {
        let text = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
        s.write("other.toml", &replace_once(&text, from, to));
        s.run(&["check", "other.toml"])
            .expect_code(2)
            .stderr_has(&[problem]);
    }
}

/// region x gender sums of `amount`, one row per person (amount 10 each) except: in `r2,f` one
/// person has 5000 (dominant: 5000 of 5240), and so does the margin `r2` (5000 of 5640) and the
/// margin `f` (5000 of 5980); in `r4,m` two have 2000 and 1500 and the other 43 have 1 each (the
/// second largest would estimate the largest within 10%: the rest, 43, is under 200). `r1,f` and
/// `r3,m` are small (2 and 3 people).
fn amounts(negative: bool) -> String {
    let mut rows = String::from("pid,region,gender,age,amount\n");
    let mut id = 0;
    for (r, g, n) in COUNTS {
        for i in 0..n {
            id += 1;
            let amount = match (r, g, i) {
                ("r2", "f", 0) => 5000,
                ("r4", "m", 0) => 2000,
                ("r4", "m", 1) => 1500,
                ("r4", "m", _) => 1,
                _ => 10,
            };
            // A second row of the same person and cell adds to the person's contribution.
            let (first, second) = if negative && id == 7 {
                (amount, -3)
            } else {
                (amount - amount / 2, amount / 2)
            };
            rows.push_str(&format!("p{id},{r},{g},young,{first}\n"));
            rows.push_str(&format!("p{id},{r},{g},young,{second}\n"));
        }
    }
    rows
}

const REGION_GENDER_SUM: &str = r#"
[[table]]
name = "amount_by_region_gender"
input = "people"
statistic = "sum"
column = "amount"
by = ["region", "gender"]
protection = "suppression"
primary = { min_frequency = 5, dominance = { n = 1, k = 80 }, p_percent = 10 }
interval_percent = 1
"#;

/// An exact sum: cells of few people, cells one person dominates and cells whose largest
/// contribution the second largest could estimate are hidden (margins too), each with an
/// attacker's interval reaching its rule's protection level, proven by `audit`; published cells
/// are the exact sums of every row.
#[test]
fn exact_sums_hide_dominated_cells() {
    let s = Scratch::new();
    s.write("people.csv", &amounts(false));
    // With a count of the same dimensions: another quantity, never linked to the sum's cells.
    s.write(
        "policy.toml",
        &policy(&format!("{REGION_GENDER}{REGION_GENDER_SUM}")),
    );
    s.run(&["check", "policy.toml"]).expect_code(0).stdout_has(&[
        "sum(amount) (exact)",
        "cells of fewer than 5 pid, or whose largest pid makes more than 80% of the cell, or in which the second largest pid could estimate the largest's contribution within 10%",
    ]);
    s.run(&["plan", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["exact sums of amount"]);
    s.run(&["release", "policy.toml", "--json"]).expect_code(0);
    let sum = |r: &str, g: &str| -> i64 {
        let mut total = 0;
        for (rr, gg, n) in COUNTS {
            if (r == "total" || r == rr) && (g == "total" || g == gg) {
                total += (0..n)
                    .map(|i| match (rr, gg, i) {
                        ("r2", "f", 0) => 5000,
                        ("r4", "m", 0) => 2000,
                        ("r4", "m", 1) => 1500,
                        ("r4", "m", _) => 1,
                        _ => 10,
                    })
                    .sum::<i64>();
            }
        }
        total
    };
    let rows = read_csv(&s.path(&format!("{DIR}/amount_by_region_gender.csv")));
    assert_eq!(rows.len(), 15);
    let mut hidden = Vec::new();
    for row in &rows {
        let (r, g) = (row["region"].as_str(), row["gender"].as_str());
        if row["status"] == "published" {
            assert_eq!(row["value"], sum(r, g).to_string(), "{row:?}");
        } else {
            hidden.push((r, g));
        }
    }
    // Frequency (r1,f and r3,m), dominance (r2,f and the margins r2 and f) and p% (r4,m).
    for cell in [
        ("r1", "f"),
        ("r3", "m"),
        ("r2", "f"),
        ("r2", "total"),
        ("total", "f"),
        ("r4", "m"),
    ] {
        assert!(hidden.contains(&cell), "{cell:?} published: {hidden:?}");
    }
    // The count's published cells are counts of people.
    for row in read_csv(&s.path(&format!("{DIR}/by_region_gender.csv"))) {
        if row["status"] == "published" {
            let (r, g) = (row["region"].as_str(), row["gender"].as_str());
            assert_eq!(row["value"], count(r, g).to_string(), "{row:?}");
        }
    }
    let m = manifest(&s.path(DIR));
    let t = &m["exact_tables"][1];
    assert_eq!(m["exact_tables"][0]["statistic"], "count_units");
    assert_eq!(t["statistic"], "sum");
    assert_eq!(t["column"], "amount");
    assert_eq!(t["primary_rule"]["dominance"]["n"], 1);
    assert_eq!(t["primary_rule"]["dominance"]["k"], 80);
    assert_eq!(t["primary_rule"]["p_percent"], 10);
    assert!(
        t["guarantee"]
            .as_str()
            .unwrap()
            .contains("exact sums of amount"),
        "{}",
        t["guarantee"]
    );
    // The rules' protection levels (interval_percent = 1 asks far less): the dominance level
    // of r2,f is 100 * 5000 / 80 - 5240 = 1010, the p% level of r4,m is 10% of 2000 less the
    // rest, 200 - 43 = 157.
    let interval = |cell: [&str; 2]| {
        let iv = t["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|iv| iv["cell"] == serde_json::json!(cell))
            .unwrap_or_else(|| panic!("{cell:?}"));
        (iv["lo"].as_i64().unwrap(), iv["hi"].as_i64())
    };
    let (lo, hi) = interval(["r2", "f"]);
    assert!(
        lo <= 5240 - 1010 && hi.is_none_or(|h| h >= 5240 + 1010),
        "{lo} {hi:?}"
    );
    let (lo, hi) = interval(["r4", "m"]);
    assert!(
        lo <= 3543 - 157 && hi.is_none_or(|h| h >= 3543 + 157),
        "{lo} {hi:?}"
    );
    s.run(&["audit", DIR]).expect_code(0);
    let report = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    assert!(
        report.contains("largest unit makes more than 80%"),
        "report"
    );
}

/// A negative value in an exact sum's column is refused, naming the file, line and field;
/// nothing is written and nothing charged.
#[test]
fn an_exact_sum_refuses_negative_values() {
    let s = Scratch::new();
    s.write("people.csv", &amounts(true));
    s.write("policy.toml", &policy(REGION_GENDER_SUM));
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["people.csv:15", "amount", "`-3` is negative"]);
    assert!(!s.path(DIR).exists());
    assert!(!s.path("ledger/people.jsonl").exists());
}

/// An exact count of rows: each row counts 1, the frequency rule counts people, and the
/// dominance rule sees each person's rows (one person with 100 rows dominates `r4,f`).
#[test]
fn an_exact_count_of_rows_counts_every_row() {
    let s = Scratch::new();
    // Two rows per person (`amounts`), and 100 more for the first person of r4,f.
    let mut data = amounts(false);
    let first_r4f = (COUNTS
        .iter()
        .take_while(|c| c.0 != "r4")
        .map(|c| c.2)
        .sum::<usize>())
        + 1;
    for _ in 0..100 {
        data.push_str(&format!("p{first_r4f},r4,f,young,0\n"));
    }
    s.write("people.csv", &data);
    let table = r#"
[[table]]
name = "rows_by_region_gender"
input = "people"
statistic = "count_rows"
by = ["region", "gender"]
protection = "suppression"
primary = { min_frequency = 5, dominance = { n = 1, k = 50 } }
interval_percent = 10
"#;
    s.write("policy.toml", &policy(table));
    s.run(&["check", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["count_rows (exact)"]);
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path(&format!("{DIR}/rows_by_region_gender.csv")));
    let mut hidden = Vec::new();
    for row in &rows {
        let (r, g) = (row["region"].as_str(), row["gender"].as_str());
        let extra = if (r == "r4" || r == "total") && (g == "f" || g == "total") {
            100
        } else {
            0
        };
        if row["status"] == "published" {
            assert_eq!(
                row["value"],
                (2 * count(r, g) + extra).to_string(),
                "{row:?}"
            );
        } else {
            hidden.push((r, g));
        }
    }
    // 102 of r4,f's 200 rows are one person's: more than 50%.
    for cell in [("r1", "f"), ("r3", "m"), ("r4", "f")] {
        assert!(hidden.contains(&cell), "{cell:?} published: {hidden:?}");
    }
    let m = manifest(&s.path(DIR));
    let t = &m["exact_tables"][0];
    assert_eq!(t["statistic"], "count_rows");
    assert!(t.get("column").is_none());
    assert!(
        t["guarantee"]
            .as_str()
            .unwrap()
            .contains("exact counts of rows")
    );
    s.run(&["audit", DIR]).expect_code(0);
}

/// A later release's sum is protected with an earlier release's sum of the same data and column
/// (region x age shares the region totals with region x gender), read back from its folder with
/// its rules; the audit re-runs the attacker over both.
#[test]
fn a_later_sum_is_protected_with_the_earlier_one() {
    let s = Scratch::new();
    s.write("people.csv", &amounts(false));
    s.write("policy.toml", &policy(REGION_GENDER_SUM));
    s.run(&["release", "policy.toml"]).expect_code(0);
    release_second_by_age(&s, REGION_GENDER_SUM, "amount_by_region_gender");
    assert_eq!(
        charge_of(&s, "second")["exact_links"],
        serde_json::json!([{ "release_id": "exact", "version": 1, "table": "amount_by_region_gender" }])
    );
    let first = read_csv(&s.path(&format!("{DIR}/amount_by_region_gender.csv")));
    let later = read_csv(&s.path("releases/second/amount_by_region_age.csv"));
    // r2's total is dominated (5000 of 5640): hidden in both; every region total agrees.
    assert_region_totals_agree(&first, &later);
    let r2 = later
        .iter()
        .find(|x| x["region"] == "r2" && x["age"] == "total")
        .unwrap();
    assert_eq!(r2["status"], "suppressed");
    s.run(&["audit", "releases/second", DIR]).expect_code(0);
}

/// Release `id`'s charge in the ledger.
fn charge_of(s: &Scratch, id: &str) -> serde_json::Value {
    fs::read_to_string(s.path("ledger/people.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["kind"] == "charge" && l["release_id"] == id)
        .unwrap()
}

/// A release `id` of one exact count table `id` over pre-counted `counts.csv` (the count in `n`),
/// each dimension `(name, categories)`, small cells below 5, intervals of `interval_percent`.
fn counted_policy(id: &str, dims: &[(&str, Vec<String>)], interval_percent: u32) -> String {
    let quoted = |cats: &[String]| {
        let q: Vec<String> = cats.iter().map(|c| format!("\"{c}\"")).collect();
        q.join(", ")
    };
    let categories: String = dims
        .iter()
        .map(|(d, cats)| format!("{d} = [{}]\n", quoted(cats)))
        .collect();
    let by: Vec<String> = dims.iter().map(|(d, _)| format!("\"{d}\"")).collect();
    format!(
        r#"
[release]
id = "{id}"
[dataset]
name = "{id}"
privacy_unit = "person"
budget = {{ rho = 1 }}
[inputs.counts]
path = "counts.csv"
aggregated = true
count_column = "n"
[categories]
{categories}[[table]]
name = "{id}"
input = "counts"
statistic = "count_units"
by = [{}]
protection = "suppression"
primary = {{ min_frequency = 5 }}
interval_percent = {interval_percent}
"#,
        by.join(", ")
    )
}

/// Categories `{prefix}0` to `{prefix}{n - 1}`.
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// A region x gender table and a region x age table publish (or hide) every region total, and
/// the grand total, alike.
fn assert_region_totals_agree(
    by_gender: &[HashMap<String, String>],
    by_age: &[HashMap<String, String>],
) {
    for r in ["r1", "r2", "r3", "r4", "total"] {
        let total = |rows: &[HashMap<String, String>], dim: &str| {
            let row = rows
                .iter()
                .find(|x| x["region"] == r && x[dim] == "total")
                .unwrap();
            (row["status"].clone(), row["value"].clone())
        };
        assert_eq!(
            total(by_gender, "gender"),
            total(by_age, "age"),
            "region {r}"
        );
    }
}

/// The benchmark's skewed 17 x 7 x 2 table (`safestat-bench sdc`), pre-counted, asked for
/// intervals of 50%: the exact method's master problem needs more branch-and-bound nodes than it
/// may take, the heuristic completes its last pattern, and the officer (only) is told the lower
/// bound that pattern gives; the manifest says the pattern is not proven minimal, the audit passes.
#[test]
fn a_pattern_the_exact_method_could_not_finish_is_marked_and_bounded() {
    let s = Scratch::new();
    let bench = Command::new(env!("CARGO_BIN_EXE_safestat-bench"))
        .args(["sdc", &s.path("bench").to_string_lossy(), "17x7x2"])
        .output()
        .unwrap();
    assert!(bench.status.success(), "{bench:?}");
    let cells = fs::read_to_string(s.path("bench/sdc_17x7x2.csv")).unwrap();
    s.write("counts.csv", &format!("a,b,c,n\n{cells}"));
    s.write(
        "policy.toml",
        &counted_policy(
            "skewed",
            &[
                ("a", numbered("c", 17)),
                ("b", numbered("c", 7)),
                ("c", numbered("c", 2)),
            ],
            50,
        ),
    );
    let run = s.run(&["release", "policy.toml"]);
    run.expect_code(0).stdout_has(&[
        "skewed: not proven minimal (the exact method reached its limits, or the respondents' own contributions asked for more); every pattern that protects the small cells has at least 57 secondary cells (not published)",
    ]);
    let dir = s.path("releases/skewed");
    let m = manifest(&dir);
    let t = &m["exact_tables"][0];
    assert!(
        t["secondary_method"]
            .as_str()
            .unwrap()
            .starts_with("not proven minimal"),
        "{}",
        t["secondary_method"]
    );
    // The bound is the officer's: no published file says it.
    for f in ["manifest.json", "skewed.csv"] {
        let text = fs::read_to_string(dir.join(f)).unwrap();
        assert!(!text.contains("at least 57"), "{f}");
    }
    // The 83 small cells and at least the bound's 57 secondary cells are hidden (69; the bound
    // was 52 before the attacker knew that a hidden count is at least 1), and the audit
    // re-derives every interval from the published cells.
    let rows = read_csv(&dir.join("skewed.csv"));
    let hidden = rows.iter().filter(|r| r["status"] == "suppressed").count();
    assert!(hidden >= 83 + 57, "{hidden}");
    s.run(&["audit", "releases/skewed"]).expect_code(0);
}

/// Issue 24's first finding, end to end: two small counts of 1 in one row with the row's total
/// published. An attacker who knows that zeros are never hidden reads every hidden count as at
/// least 1, so the pattern must leave each of the ones room above 1; the manifest's intervals are
/// that attacker's, and `audit` re-derives them from the published files.
#[test]
fn hidden_counts_are_at_least_one_to_the_attacker_and_the_pattern_holds() {
    let s = Scratch::new();
    let mut counts = String::from("a,b,n\n");
    for (i, n) in [1, 1, 212, 40, 35, 60, 55, 45, 70].iter().enumerate() {
        counts.push_str(&format!("r{},c{},{n}\n", i / 3, i % 3));
    }
    s.write("counts.csv", &counts);
    s.write(
        "policy.toml",
        &counted_policy(
            "ones",
            &[("a", numbered("r", 3)), ("b", numbered("c", 3))],
            20,
        ),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let m = manifest(&s.path("releases/ones"));
    let t = &m["exact_tables"][0];
    assert!(t["audit"].as_str().unwrap().contains("at least 1"), "{t}");
    let intervals = t["intervals"].as_array().unwrap();
    for iv in intervals {
        let (lo, hi) = (iv["lo"].as_i64().unwrap(), iv["hi"].as_i64());
        assert!(lo >= 1, "{iv}");
        assert!(hi.is_none_or(|h| h > lo), "disclosed: {iv}");
    }
    for cell in [["r0", "c0"], ["r0", "c1"]] {
        let iv = intervals
            .iter()
            .find(|iv| iv["cell"] == serde_json::json!(cell))
            .unwrap();
        // A cell of 1 is protected upwards: its interval reaches 2.
        assert!(iv["hi"].as_i64().is_none_or(|h| h >= 2), "{iv}");
    }
    s.run(&["audit", "releases/ones"]).expect_code(0);
}

/// Issue 24, item 8: an exact cell (a margin included) beyond 2^53 would let `value + level`
/// wrap and the attacker's problems lose whole units; it is refused as the input's fault (exit 2,
/// nothing charged), naming the cell.
#[test]
fn an_exact_cell_beyond_two_to_the_53_is_refused() {
    let s = Scratch::new();
    s.write(
        "counts.csv",
        "a,n\nr0,4503599627370496\nr1,4503599627370497\nr2,3\n",
    );
    s.write(
        "policy.toml",
        &counted_policy("huge", &[("a", numbered("r", 3))], 20),
    );
    // The cells fit; their total, 2^53 + 4, does not.
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["cell (the grand total) is 9007199254740996, beyond 2^53"]);
    assert!(!s.path("releases/huge").exists());
    assert!(!s.path("ledger/huge.jsonl").exists());
}

/// Issue 24, item 3: earlier exact tables are linked by their cells, not by the input's name or
/// bytes. The same table published again without margins, from a renamed input whose rows are
/// re-exported in another order with CRLF line ends, once gave back the first release's small
/// cells (its published margins minus the second's published cells); now it is linked, keeps
/// them hidden, and `audit` re-proves both folders.
#[test]
fn an_earlier_exact_table_is_linked_whatever_its_input_is_called_or_looks_like() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let first = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
    let hidden_first: Vec<(String, String)> = first
        .iter()
        .filter(|r| r["status"] == "suppressed")
        .map(|r| (r["region"].clone(), r["gender"].clone()))
        .collect();
    assert!(hidden_first.contains(&("r1".into(), "f".into())));
    // The same rows, reversed, with CRLF line ends, under another input name and file.
    let text = people("");
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    let reexport = std::iter::once(header)
        .chain(lines)
        .map(|l| format!("{l}\r\n"))
        .collect::<String>();
    s.write("export.csv", &reexport);
    let again = policy(&REGION_GENDER.once(
        "interval_percent = 20",
        "interval_percent = 20\nmargins = false",
    ))
    .once(r#"id = "exact""#, r#"id = "again""#)
    .once(
        "[inputs.people]\npath = \"people.csv\"",
        "[inputs.export]\npath = \"export.csv\"",
    )
    .once("input = \"people\"", "input = \"export\"");
    s.write("again.toml", &again);
    s.run(&["release", "again.toml"]).expect_code(0);
    assert_eq!(
        charge_of(&s, "again")["exact_links"],
        serde_json::json!([{ "release_id": "exact", "version": 1, "table": "by_region_gender", "counted_on": "export" }])
    );
    let second = read_csv(&s.path("releases/again/by_region_gender.csv"));
    for (r, g) in &hidden_first {
        if r == "total" || g == "total" {
            continue;
        }
        let row = second
            .iter()
            .find(|x| x["region"] == *r && x["gender"] == *g)
            .unwrap();
        assert_eq!(
            row["status"], "suppressed",
            "({r}, {g}) given back: {row:?}"
        );
    }
    s.run(&["audit", "releases/again", DIR]).expect_code(0);
}

/// Issue 24, item 4: `--new-version` on corrected data (one person added) published the
/// difference of one person and pinned a primary cell of version 1. Now it is refused with the
/// reason, and nothing is charged; other data under another release id is not linked, and the
/// officer is told.
#[test]
fn corrected_data_behind_earlier_exact_tables_is_refused() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.write("people.csv", &people("p999,r1,f,old\n"));
    let before = fs::read_to_string(s.path("ledger/people.jsonl")).unwrap();
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(2)
        .stderr_has(&[
            "the data behind exact table `by_region_gender` of release `exact` version 1 has changed",
            "an earlier version of this release",
            "Nothing was charged",
        ]);
    assert_eq!(
        fs::read_to_string(s.path("ledger/people.jsonl")).unwrap(),
        before
    );
    assert!(!s.path("releases/exact.v2").exists());
    // A table without margins whose hidden cell alone changed, under another release id: every
    // cell it published is the same, so this is a correction, refused too.
    let no_margins = REGION_GENDER.once(
        "interval_percent = 20",
        "interval_percent = 20\nmargins = false",
    );
    s.write("people.csv", &people(""));
    s.write(
        "inner.toml",
        &policy(&no_margins).once(r#"id = "exact""#, r#"id = "inner""#),
    );
    s.run(&["release", "inner.toml"]).expect_code(0);
    s.write("people.csv", &people("p999,r1,f,old\n"));
    s.write(
        "later.toml",
        &policy(&no_margins).once(r#"id = "exact""#, r#"id = "later""#),
    );
    s.run(&["release", "later.toml"])
        .expect_code(2)
        .stderr_has(&[
            "exact table `by_region_gender` of release `inner` version 1 has changed",
            "a cell it hid is not",
        ]);
    assert!(!s.path("releases/later").exists());
}

/// Issue 24, item 3: two inputs on one file in one release count one population. The same table
/// without margins from the second input once published the first's secondary cells, giving its
/// small cells back through its margins; now both are protected as one, and `audit` agrees. So
/// are two inputs of the same data in other bytes (a re-exported copy: rows in another order,
/// CRLF line ends), which were protected apart until a review published a margin through them.
#[test]
fn two_inputs_on_one_file_are_protected_as_one() {
    let rows = people("");
    let mut lines: Vec<&str> = rows.lines().collect();
    lines[1..].reverse();
    let copy = lines.join("\r\n") + "\r\n";
    for (alias, file) in [("people.csv", &rows), ("copy.csv", &copy)] {
        let s = Scratch::new();
        s.write("people.csv", &rows);
        s.write("copy.csv", file);
        let inner = REGION_GENDER
            .once("by_region_gender", "inner_cells")
            .once("input = \"people\"", "input = \"alias\"")
            .once(
                "interval_percent = 20",
                "interval_percent = 20\nmargins = false",
            );
        let both = policy(&format!("{REGION_GENDER}\n{inner}")).once(
            "[categories]",
            &format!("[inputs.alias]\npath = \"{alias}\"\n[categories]"),
        );
        s.write("policy.toml", &both);
        let run = s.run(&["release", "policy.toml"]);
        run.expect_code(0);
        let full = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
        let inner = read_csv(&s.path(&format!("{DIR}/inner_cells.csv")));
        let mut hidden = 0;
        for row in full.iter().filter(|r| r["status"] == "suppressed") {
            if row["region"] == "total" || row["gender"] == "total" {
                continue;
            }
            let twin = inner
                .iter()
                .find(|x| x["region"] == row["region"] && x["gender"] == row["gender"])
                .unwrap();
            assert_eq!(
                twin["status"], "suppressed",
                "{alias}: {twin:?} gives {row:?} back"
            );
            hidden += 1;
        }
        // Secondary cells of the full table too, not only its small ones.
        let small = COUNTS.iter().filter(|c| (1..5).contains(&c.2)).count();
        assert!(hidden > small, "{alias}: {hidden} hidden, {small} small");
        // Inputs in name order: `people` holds the data `alias` does.
        assert_eq!(
            charge_of(&s, "exact")["same_data"],
            serde_json::json!({ "people": "alias" }),
            "{alias}"
        );
        if alias == "copy.csv" {
            run.stderr_has(&[
                "inputs `alias` and `people` hold the same data (their exact tables agree cell for cell by [region, gender])",
            ]);
        }
        s.run(&["audit", DIR]).expect_code(0);
    }
}

/// Issue 24, item 3: a dimension renamed since an earlier release (the column `region` is now
/// `area`, with the same categories) once lost the link: refused beside a dimension of its name
/// (`gender`), or only noted as not compared without one, while `area`'s margin is `region`'s.
/// Now the earlier table is matched by its categories, counted on this data and linked on its
/// digest: the same table keeps its pattern, the ledger names the rename, and `audit` agrees.
#[test]
fn an_earlier_table_of_a_renamed_dimension_is_linked_by_its_categories() {
    // Region x gender with cells below 26 small hides the totals of r2 and r3 (25): a table by
    // area x age, which alone hides nothing, must keep them hidden.
    for (by, name, small) in [
        (r#"["area", "gender"]"#, "by_area_gender", 5),
        (r#"["area", "age"]"#, "by_area_age", 26),
    ] {
        let s = Scratch::new();
        s.write("people.csv", &people(""));
        let first = REGION_GENDER.once("min_frequency = 5", &format!("min_frequency = {small}"));
        s.write("policy.toml", &policy(&first));
        s.run(&["release", "policy.toml"]).expect_code(0);
        let first = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
        s.write(
            "people.csv",
            &people("").replacen("pid,region,", "pid,area,", 1),
        );
        let renamed = REGION_GENDER
            .once("by_region_gender", name)
            .once(r#"by = ["region", "gender"]"#, &format!("by = {by}"));
        let later = policy(&renamed)
            .once(r#"id = "exact""#, r#"id = "later""#)
            .once("region = [", "area = [");
        s.write("later.toml", &later);
        s.run(&["release", "later.toml"]).expect_code(0);
        assert_eq!(
            charge_of(&s, "later")["exact_links"],
            serde_json::json!([{
                "release_id": "exact",
                "version": 1,
                "table": "by_region_gender",
                "renamed": { "region": "area" }
            }]),
            "{name}"
        );
        let later = read_csv(&s.path(&format!("releases/later/{name}.csv")));
        let status = |area: &str, d: &str, c: &str| {
            let row = later.iter().find(|x| x["area"] == area && x[d] == c);
            row.unwrap()["status"].clone()
        };
        for row in &first {
            if name == "by_area_gender" {
                assert_eq!(
                    status(&row["region"], "gender", &row["gender"]),
                    row["status"],
                    "{row:?}"
                );
            } else if row["gender"] == "total" && row["status"] == "suppressed" {
                assert_eq!(
                    status(&row["region"], "age", "total"),
                    "suppressed",
                    "{row:?}"
                );
            }
        }
        s.run(&["audit", "releases/later"]).expect_code(0);
    }
}

/// A copy of the same data whose table shares only a margin with the other input's (region x
/// gender there, region x age here) is found by that margin and protected as one; other data
/// (another year, whose margin differs) is not linked.
#[test]
fn a_copy_sharing_only_a_margin_is_the_same_data_and_another_year_is_not() {
    let rows = people("");
    let mut lines: Vec<&str> = rows.lines().collect();
    lines[1..].reverse();
    let copy = lines.join("\n") + "\n";
    let other_year = people("p900,r2,m,old\n");
    for (file, same) in [(&copy, true), (&other_year, false)] {
        let s = Scratch::new();
        s.write("people.csv", &rows);
        s.write("copy.csv", file);
        let by_age = REGION_GENDER
            .once("by_region_gender", "by_region_age")
            .once("input = \"people\"", "input = \"alias\"")
            .once(r#"by = ["region", "gender"]"#, r#"by = ["region", "age"]"#);
        let both = policy(&format!("{REGION_GENDER}\n{by_age}")).once(
            "[categories]",
            "[inputs.alias]\npath = \"copy.csv\"\n[categories]",
        );
        s.write("policy.toml", &both);
        s.run(&["release", "policy.toml"]).expect_code(0);
        let recorded = &charge_of(&s, "exact")["same_data"];
        if same {
            assert_eq!(*recorded, serde_json::json!({ "people": "alias" }));
            // Each region's total is published in both tables or hidden in both.
            let full = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")));
            let aged = read_csv(&s.path(&format!("{DIR}/by_region_age.csv")));
            for r in ["r1", "r2", "r3", "r4", "total"] {
                let total = |t: &[std::collections::HashMap<String, String>], d: &str| {
                    t.iter()
                        .find(|x| x["region"] == r && x[d] == "total")
                        .unwrap()["status"]
                        .clone()
                };
                assert_eq!(total(&full, "gender"), total(&aged, "age"), "{r}");
            }
        } else {
            assert!(
                recorded.as_object().is_none_or(|m| m.is_empty()),
                "{recorded}"
            );
        }
        s.run(&["audit", DIR]).expect_code(0);
    }
}

/// A review found a table without margins never tied to the sums of another table's cells: a
/// region x gender x age table without margins published beside (or after) region x gender gave
/// its small cells back (`r1,f = r1 total - r1,m,young - r1,m,old`). Until the model states those
/// sums, such a pair is refused, in one release or across releases of the same data.
#[test]
fn a_table_without_margins_beside_other_dimensions_is_refused() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    let finer = REGION_GENDER
        .once("by_region_gender", "by_region_gender_age")
        .once(
            r#"by = ["region", "gender"]"#,
            r#"by = ["region", "gender", "age"]"#,
        )
        .once(
            "interval_percent = 20",
            "interval_percent = 20\nmargins = false",
        );
    s.write("both.toml", &policy(&format!("{REGION_GENDER}{finer}")));
    let refused = s.run(&["release", "both.toml"]);
    refused.expect_code(2).stderr_has(&[
        "`by_region_gender_age` (without margins, by [region, gender, age]) and `by_region_gender`",
        "Nothing was charged",
    ]);
    // Said once, not once more as the error's source.
    assert_eq!(
        refused.stderr().matches("Nothing was charged").count(),
        1,
        "{}",
        refused.stderr()
    );
    assert!(!s.path("releases").exists());
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.write(
        "later.toml",
        &policy(&finer).once(r#"id = "exact""#, r#"id = "later""#),
    );
    s.run(&["release", "later.toml"])
        .expect_code(2)
        .stderr_has(&["by different dimensions"]);
    assert!(!s.path("releases/later").exists());
    // Categories declared otherwise (another order) cannot be compared: refused, not noted.
    let reordered = policy(&REGION_GENDER.once(
        "interval_percent = 20",
        "interval_percent = 20\nmargins = false",
    ))
    .once(r#"id = "exact""#, r#"id = "reordered""#)
    .once(r#"gender = ["f", "m"]"#, r#"gender = ["m", "f"]"#);
    s.write("reordered.toml", &reordered);
    s.run(&["release", "reordered.toml"])
        .expect_code(2)
        .stderr_has(&[
            "exact table `by_region_gender` of release `exact` version 1",
            "declares its dimensions or their categories differently",
        ]);
}

/// A rare event: a year whose table published nothing but a zero is not taken for a correction
/// when the next year's data counts it differently.
#[test]
fn a_new_year_of_a_rare_event_is_other_data() {
    let s = Scratch::new();
    let rows = |counts: [usize; 4]| {
        let mut out = String::from("pid,region,gender,age\n");
        let mut id = 0;
        for (r, n) in ["r1", "r2", "r3", "r4"].iter().zip(counts) {
            for _ in 0..n {
                id += 1;
                out.push_str(&format!("p{id},{r},f,old\n"));
            }
        }
        out
    };
    let by_region = REGION_GENDER
        .once("by_region_gender", "by_region")
        .once(r#"by = ["region", "gender"]"#, r#"by = ["region"]"#);
    s.write("people.csv", &rows([1, 2, 1, 0]));
    s.write(
        "y2024.toml",
        &policy(&by_region).once(r#"id = "exact""#, r#"id = "y2024""#),
    );
    s.run(&["release", "y2024.toml"]).expect_code(0);
    s.write("people.csv", &rows([2, 1, 1, 0]));
    s.write(
        "y2025.toml",
        &policy(&by_region).once(r#"id = "exact""#, r#"id = "y2025""#),
    );
    s.run(&["release", "y2025.toml"])
        .expect_code(0)
        .stderr_has(&["taken as other data"]);
}

/// The review's case: an earlier region x gender table, then region x age from a renamed input
/// holding the same rows (reversed, CRLF). No exact table here covers region x gender, so the
/// earlier table is counted on the renamed input on the chance it is the same data; its digest
/// matches and it is linked: the second release no longer publishes a region total the first
/// hid (which with its published cells gave r1,f = 2 back).
#[test]
fn an_earlier_table_is_linked_on_a_renamed_input_of_other_dimensions() {
    let s = Scratch::new();
    let cells = [
        ("r1", "f", "young", 1),
        ("r1", "f", "old", 1),
        ("r2", "f", "young", 10),
        ("r2", "f", "old", 10),
        ("r2", "m", "young", 10),
        ("r2", "m", "old", 12),
        ("r3", "f", "young", 11),
        ("r3", "f", "old", 10),
        ("r3", "m", "young", 10),
        ("r3", "m", "old", 10),
        ("r4", "f", "young", 20),
        ("r4", "f", "old", 20),
        ("r4", "m", "young", 20),
        ("r4", "m", "old", 20),
    ];
    let mut rows = Vec::new();
    let mut id = 0;
    for (r, g, a, n) in cells {
        for _ in 0..n {
            id += 1;
            rows.push(format!("p{id},{r},{g},{a}"));
        }
    }
    let csv = |rows: &[String], eol: &str| {
        std::iter::once("pid,region,gender,age".to_string())
            .chain(rows.iter().cloned())
            .map(|l| format!("{l}{eol}"))
            .collect::<String>()
    };
    s.write("people.csv", &csv(&rows, "\n"));
    rows.reverse();
    s.write("export.csv", &csv(&rows, "\r\n"));
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let first = read_all_rows(&s.path(&format!("{DIR}/by_region_gender.csv")));
    let by_age = REGION_GENDER
        .once("by_region_gender", "by_region_age")
        .once(r#"by = ["region", "gender"]"#, r#"by = ["region", "age"]"#)
        .once("input = \"people\"", "input = \"export\"");
    let second = policy(&by_age)
        .once(r#"id = "exact""#, r#"id = "second""#)
        .once(
            "[inputs.people]\npath = \"people.csv\"",
            "[inputs.export]\npath = \"export.csv\"",
        );
    s.write("second.toml", &second);
    s.run(&["release", "second.toml"]).expect_code(0);
    assert_eq!(
        charge_of(&s, "second")["exact_links"],
        serde_json::json!([{ "release_id": "exact", "version": 1, "table": "by_region_gender", "counted_on": "export" }])
    );
    let later = read_all_rows(&s.path("releases/second/by_region_age.csv"));
    for r in ["r1", "r2", "r3", "r4"] {
        let total = |rows: &[HashMap<String, String>], dim: &str| {
            rows.iter()
                .find(|x| x["region"] == r && x[dim] == "total")
                .unwrap()["status"]
                .clone()
        };
        if total(&first, "gender") == "suppressed" {
            assert_eq!(total(&later, "age"), "suppressed", "region {r} total given");
        }
    }
    s.run(&["audit", "releases/second", DIR]).expect_code(0);
}

/// A finer table after region x gender has no room to protect r3,m within the earlier pattern
/// (its published cells fixed, r1,f's two age cells at least 1 each): the releases together
/// cannot be protected, the policy's matter (exit 2 with the reason), not an internal error.
#[test]
fn a_table_the_earlier_pattern_leaves_no_room_for_is_refused_with_the_reason() {
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let finer = REGION_GENDER
        .once("by_region_gender", "by_region_gender_age")
        .once(
            r#"by = ["region", "gender"]"#,
            r#"by = ["region", "gender", "age"]"#,
        );
    s.write(
        "finer.toml",
        &policy(&finer).once(r#"id = "exact""#, r#"id = "finer""#),
    );
    s.run(&["release", "finer.toml"])
        .expect_code(2)
        .stderr_has(&[
            "no pattern of this release's tables protects this cell",
            "Nothing was charged",
        ]);
    assert!(!s.path("releases/finer").exists());
}

/// Issue 24, item 1's other way: with `zeros_as_secondary = true` a zero may be hidden as a
/// secondary cell, so nobody can count on a hidden count being at least 1: the manifest says so,
/// intervals may reach 0, `audit` agrees. Against an outsider alone two hidden 1s of a row then
/// needed no third cell (4 cells hidden against the default's 6); but each of their respondents
/// knows its own cell holds at least 1 and would pin the other from above, so the release hides
/// as many as the default here, and never more.
#[test]
fn zeros_as_secondary_cells_are_hidden_and_audited() {
    let suppressed = |zeros: bool| {
        let s = Scratch::new();
        let mut counts = String::from("a,b,n\n");
        for (i, n) in [1, 1, 212, 40, 35, 60, 55, 45, 70, 0, 0, 9]
            .iter()
            .enumerate()
        {
            counts.push_str(&format!("r{},c{},{n}\n", i / 3, i % 3));
        }
        s.write("counts.csv", &counts);
        let mut policy = counted_policy(
            "ones",
            &[("a", numbered("r", 4)), ("b", numbered("c", 3))],
            20,
        );
        if zeros {
            policy = replace_once(
                &policy,
                "primary = { min_frequency = 5 }",
                "primary = { min_frequency = 5, zeros_as_secondary = true }",
            );
        }
        s.write("policy.toml", &policy);
        s.run(&["release", "policy.toml"]).expect_code(0);
        s.run(&["audit", "releases/ones"]).expect_code(0);
        let m = manifest(&s.path("releases/ones"));
        let t = m["exact_tables"][0].clone();
        assert_eq!(
            t["primary_rule"]["zeros_as_secondary"]
                .as_bool()
                .unwrap_or(false),
            zeros
        );
        for iv in t["intervals"].as_array().unwrap() {
            let (lo, hi) = (iv["lo"].as_i64().unwrap(), iv["hi"].as_i64());
            assert!(lo >= if zeros { 0 } else { 1 }, "{iv}");
            assert!(hi.is_none_or(|h| h > lo), "disclosed: {iv}");
        }
        t["cells_suppressed"].as_u64().unwrap()
    };
    let (default, with_zeros) = (suppressed(false), suppressed(true));
    eprintln!("hidden: default {default}, zeros as secondaries {with_zeros}");
    assert!(
        with_zeros <= default,
        "zeros as secondaries hid {with_zeros} cells, the default {default}"
    );
}

/// `csv_labels = true`: the exact table's CSV names regions and genders by their labels, holds
/// the very pattern the codes give, and every reader turns it back into codes: `audit`,
/// `verify`, and a later release protected with it (whose own CSV has codes).
#[test]
fn labelled_csvs_of_exact_tables_are_read_back_by_every_reader() {
    const LABELS: &str = r#"
[publication]
csv_labels = true
[labels.region]
label = "지역"
categories = { r1 = "서울", r2 = "부산", r3 = "대구, 경북", r4 = "인천" }
[labels.gender]
label = "성별"
categories = { f = "여성", m = "남성" }
"#;
    let coded = Scratch::new();
    coded.write("people.csv", &people(""));
    coded.write("policy.toml", &policy(REGION_GENDER));
    coded.run(&["release", "policy.toml"]).expect_code(0);
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(&format!("{REGION_GENDER}{LABELS}")));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let text = fs::read_to_string(s.path(&format!("{DIR}/by_region_gender.csv"))).unwrap();
    assert!(
        text.starts_with("지역,성별,value,status,protection\n서울,여성,"),
        "{text}"
    );
    assert!(text.contains("\"대구, 경북\",남성,"), "{text}");
    // The same pattern and values as the coded release, cell for cell.
    let code = |v: &str| -> String {
        [
            ("서울", "r1"),
            ("부산", "r2"),
            ("대구, 경북", "r3"),
            ("인천", "r4"),
            ("여성", "f"),
            ("남성", "m"),
        ]
        .iter()
        .find(|(l, _)| *l == v)
        .map_or(v, |(_, c)| c)
        .to_string()
    };
    let labelled: Vec<Vec<String>> = read_csv(&s.path(&format!("{DIR}/by_region_gender.csv")))
        .iter()
        .map(|r| {
            vec![
                code(&r["지역"]),
                code(&r["성별"]),
                r["value"].clone(),
                r["status"].clone(),
            ]
        })
        .collect();
    let codes: Vec<Vec<String>> = read_csv(&coded.path(&format!("{DIR}/by_region_gender.csv")))
        .iter()
        .map(|r| {
            ["region", "gender", "value", "status"]
                .iter()
                .map(|c| r[*c].clone())
                .collect()
        })
        .collect();
    assert_eq!(labelled, codes);
    assert!(codes.iter().any(|r| r[3] == "suppressed"));
    s.run(&["audit", DIR]).expect_code(0);
    s.run(&["verify", DIR]).expect_code(0);
    // A later release of the same data, with codes, is protected with the labelled one.
    release_second_by_age(&s, REGION_GENDER, "by_region_gender");
    assert_eq!(
        charge_of(&s, "second")["exact_links"][0]["table"],
        "by_region_gender"
    );
    s.run(&["audit", "releases/second", DIR]).expect_code(0);

    // Labels a reader could not turn back into codes are refused before anything is read.
    let refused = |labels: &str, parts: &[&str]| {
        s.write("bad.toml", &policy(&format!("{REGION_GENDER}{labels}")));
        s.run(&["check", "bad.toml"])
            .expect_code(2)
            .stderr_has(parts);
    };
    refused(
        &LABELS.once("r2 = \"부산\"", "r2 = \"서울\""),
        &[
            "[labels.region]",
            "`region` category `r2` would show as `서울`, as `r1` does",
        ],
    );
    // Two categories shown alike are refused with codes in the CSVs too: the workbook would
    // show two rows alike. A suppressed marker with a digit reads as a number.
    refused(
        &LABELS
            .once("csv_labels = true", "")
            .once("r2 = \"부산\"", "r2 = \"서울\""),
        &["`region` category `r2` would show as `서울`, as `r1` does"],
    );
    refused(
        &LABELS.once("csv_labels = true", "suppressed_marker = \"12명\""),
        &["`12명` must be visible text without a digit"],
    );
    refused(
        &LABELS.once("r4 = \"인천\"", "r4 = \"total\""),
        &["`region` category `r4` would show as `total`, as the table's total does"],
    );
    refused(
        &LABELS.once("label = \"지역\"", "label = \"status\""),
        &["dimension `region` would be headed `status`, which is another column's name"],
    );
    refused(
        &LABELS.once("label = \"지역\"", "label = \"성별\""),
        &["dimension `gender` would be headed `성별`, which heads another dimension"],
    );
    // Groups of two tables shown alike: one label, two codes (a reader has one map per
    // dimension).
    let grouped = |table: &str, name: &str, categories: &str| {
        REGION_GENDER.once("by_region_gender", table).once(
            "interval_percent = 20",
            &format!(
                "interval_percent = 20\ngroups = [{{ dimension = \"region\", name = \"{name}\", categories = {categories} }}]"
            ),
        )
    };
    s.write(
        "bad.toml",
        &policy(&format!(
            "{}{}{}",
            grouped("north_table", "north", r#"["r1", "r3"]"#),
            grouped("south_table", "south", r#"["r2", "r4"]"#),
            LABELS.once(
                "r4 = \"인천\" }",
                "r4 = \"인천\", north = \"권역\", south = \"권역\" }"
            )
        )),
    );
    s.run(&["check", "bad.toml"])
        .expect_code(2)
        .stderr_has(&["`region` category `south` would show as `권역`, as `north` does"]);
}

/// Exact table `tables` (of region x gender, named `name`) by region x age instead, named with
/// `age` for `gender`.
fn region_by_age(tables: &str, name: &str) -> String {
    tables
        .once(name, &name.replace("gender", "age"))
        .once(r#"by = ["region", "gender"]"#, r#"by = ["region", "age"]"#)
}

/// Releases `second` (`second.toml`): exact table `tables` (of region x gender, named `name`)
/// by region x age instead, under the name with `age` for `gender`, on the same data.
fn release_second_by_age(s: &Scratch, tables: &str, name: &str) {
    let by_age = region_by_age(tables, name);
    s.write(
        "second.toml",
        &policy(&by_age).once(r#"id = "exact""#, r#"id = "second""#),
    );
    s.run(&["release", "second.toml"]).expect_code(0);
}

/// A count of persons and a count of rows of the same people, exact: the rows published bound
/// the persons suppressed, which the attacker's model does not state, so the pair is refused:
/// in one release (by `check` and `release`), and across releases (the earlier table counted
/// again on this data), nothing charged.
#[test]
fn a_count_of_persons_beside_a_count_of_rows_is_refused() {
    let rows = REGION_GENDER
        .once("name = \"by_region_gender\"", "name = \"rows_by_gender\"")
        .once("statistic = \"count_units\"", "statistic = \"count_rows\"")
        .once(r#"by = ["region", "gender"]"#, r#"by = ["gender"]"#);
    let s = Scratch::new();
    s.write("people.csv", &people(""));
    s.write("policy.toml", &policy(&format!("{REGION_GENDER}{rows}")));
    for command in ["check", "release"] {
        s.run(&[command, "policy.toml"]).expect_code(2).stderr_has(&[
            "exact tables `by_region_gender` (count_units) and `rows_by_gender` (count_rows) count the same people",
            "Publish one of them exactly and the other with differential privacy",
        ]);
    }
    assert!(!s.path(DIR).exists());
    s.write("policy.toml", &policy(REGION_GENDER));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let before = fs::read_to_string(s.path("ledger/people.jsonl")).unwrap();
    s.write(
        "rows.toml",
        &policy(&rows).once("id = \"exact\"", "id = \"rows\""),
    );
    s.run(&["release", "rows.toml"]).expect_code(2).stderr_has(&[
        "exact tables `exact/by_region_gender` (count_units) and `rows_by_gender` (count_rows) count the same people",
        "Nothing was charged",
    ]);
    assert_eq!(
        fs::read_to_string(s.path("ledger/people.jsonl")).unwrap(),
        before
    );
    assert!(!s.path("releases/rows").exists());
}

/// Issue 24, item 8: a release of exact tables only, from a pre-counted input, needs no budget.
/// The dataset then has none (the ledger and manifest say so, and nothing can be spent); a later
/// release with differentially private tables sets it once, and a later policy without one is
/// recorded against the dataset's. A differentially private table without a budget, and an empty
/// `budget = {}`, are refused by `check`.
#[test]
fn a_release_of_exact_tables_only_needs_no_budget() {
    let s = Scratch::new();
    let cells: String = COUNTS
        .iter()
        .map(|(r, g, n)| format!("{r},{g},{n}\n"))
        .collect();
    s.write("counts.csv", &format!("region,gender,n\n{cells}"));
    let dims = [
        ("region", numbered("r", 5)[1..].to_vec()),
        ("gender", vec!["f".to_string(), "m".to_string()]),
    ];
    let exact = counted_policy("counted", &dims, 20).once("budget = { rho = 1 }\n", "");
    s.write("policy.toml", &exact);
    s.run(&["check", "policy.toml"]).expect_code(0);
    s.run(&["plan", "policy.toml"]).expect_code(0).stdout_has(&[
        "budget: none (the dataset publishes exact tables only: nothing is charged)",
    ]);
    s.run(&["release", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["the dataset has no privacy budget: it publishes exact tables only"]);
    let dir = s.path("releases/counted");
    let ledger = &manifest(&dir)["ledger"];
    assert_eq!(ledger["budget"], serde_json::json!({}), "{ledger}");
    assert_eq!(ledger["accounting"], "none", "{ledger}");
    assert!(
        read_csv(&dir.join("counted.csv"))
            .iter()
            .any(|r| r["status"] == "suppressed")
    );
    s.run(&["audit", "releases/counted"]).expect_code(0);
    s.run(&["verify", "releases/counted"]).expect_code(0);
    s.run(&["budget", "--policy", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["no budget: exact tables only", "spent       nothing"]);

    // Refused: a DP table without a budget, and an empty budget.
    let dp_table = r#"
[[table]]
name = "dp_region"
input = "counts"
statistic = "count_units"
by = ["region"]
mechanism = "gaussian"
cost = { rho = 0.1 }
max_cells_per_unit = 1
"#;
    let dp = format!("{exact}{dp_table}").once(r#"id = "counted""#, r#"id = "dp""#);
    s.write("dp.toml", &dp);
    s.run(&["check", "dp.toml"]).expect_code(2).stderr_has(&[
        "table `dp_region`",
        "a differentially private table spends a privacy budget, and `[dataset]` gives none",
    ]);
    s.write(
        "empty.toml",
        &exact.once("privacy_unit = ", "budget = {}\nprivacy_unit = "),
    );
    s.run(&["check", "empty.toml"])
        .expect_code(2)
        .stderr_has(&["[dataset] field `budget`", "leave `budget` out"]);

    // A budget set later, once; a policy without one then records the dataset's.
    s.write(
        "dp.toml",
        &dp.once("privacy_unit = ", "budget = { rho = 1 }\nprivacy_unit = "),
    );
    s.run(&["release", "dp.toml"]).expect_code(0);
    s.write(
        "again.toml",
        &exact.once(r#"id = "counted""#, r#"id = "again""#),
    );
    s.run(&["plan", "again.toml"])
        .expect_code(0)
        .stdout_has(&["budget: rho=1 (zCDP); this release charges rho=0"]);
    s.run(&["release", "again.toml"]).expect_code(0);
    let ledger = &manifest(&s.path("releases/again"))["ledger"];
    assert_eq!(
        ledger["budget"],
        serde_json::json!({ "rho": 1.0 }),
        "{ledger}"
    );
    assert!(ledger["total_after"].as_f64().unwrap() > 0.0, "{ledger}");
    s.run(&[
        "verify",
        "releases/counted",
        "releases/dp",
        "releases/again",
    ])
    .expect_code(0)
    .stdout_has(&["statements 1 to 3, no gap"]);
    s.run(&["audit", "releases/again"]).expect_code(0);
    // The budget, once set, never changes.
    s.write(
        "more.toml",
        &dp.once(r#"id = "dp""#, r#"id = "more""#)
            .once("privacy_unit = ", "budget = { rho = 2 }\nprivacy_unit = "),
    );
    s.run(&["release", "more.toml"])
        .expect_code(2)
        .stderr_has(&["a dataset's budget is fixed by its first charge"]);
}
