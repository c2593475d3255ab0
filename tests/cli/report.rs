//! The reader's outputs: the workbook (read back with calamine), `report.html` (rendered by
//! headless Chromium and compared with the CSV files), `safestat report`, the byte-order mark,
//! and the labels' validation.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};

use crate::common::*;

const DIR: &str = "releases/disung-2024";

fn released() -> Scratch {
    let s = sample();
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    s
}

/// A table's CSV values by its category labels joined with `|` (`None`: suppressed).
fn csv_values(s: &Scratch, table: &str) -> Vec<(Vec<String>, Option<i64>)> {
    let path = s.path(&format!("{DIR}/{table}.csv"));
    let text = fs::read_to_string(&path).unwrap();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let n = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "value")
        .unwrap();
    // The cells, not the margins after them (status `total`).
    r.records()
        .map(|rec| rec.unwrap())
        .filter(|rec| &rec[n + 1] != "total")
        .map(|rec| {
            let cats = (0..n).map(|i| rec[i].to_string()).collect();
            (cats, rec[n].parse().ok())
        })
        .collect()
}

#[test]
fn totals_last_puts_the_total_row_and_column_after_the_categories() {
    let s = sample();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(
        &policy,
        "language = \"ko\"                # or \"en\"",
        "language = \"ko\"\ntotals = \"last\"  # set",
    );
    // A table's own number replaces its place.
    let policy = replace_once(
        &policy,
        "title = \"성별·연령대별 피해자 수\"\n",
        "title = \"성별·연령대별 피해자 수\"\nnumber = \"2-1\"\n",
    );
    s.write(SAMPLE_POLICY, &policy);
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let g = sheet(&s, "victims_by_gender_age");
    assert_eq!(g[0][0], "표 2-1. 성별·연령대별 피해자 수");
    assert_eq!(g[3][0], "성별");
    assert_eq!(g[3][1], "10세 미만");
    assert_eq!(g[3][8], "계");
    assert_eq!(g[4][0], "여성");
    assert_eq!(g[6][0], "계");
    let by_gender = csv_values(&s, "victims_by_gender");
    assert_eq!(g[4][8], by_gender[0].1.unwrap().to_string());
    // The report's table likewise: the total column's header after the last age.
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    let start = html.find("id=\"victims_by_gender_age\"").unwrap();
    let section = &html[start..];
    let head = &section[section.find("<thead>").unwrap()..section.find("</thead>").unwrap()];
    assert!(head.ends_with("<th>미상</th><th>계</th></tr>"), "{head}");
    // A word other than first or last is refused, naming the field.
    let policy = replace_once(&policy, "totals = \"last\"  # set", "totals = \"top\"");
    s.write(SAMPLE_POLICY, &policy);
    s.run(&["check", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["[publication] field `totals`", "`first`", "`last`"]);
}

/// The sheet of table `name`: named by its title (the sample's are short and plain).
fn sheet_of(m: &serde_json::Value, name: &str) -> String {
    m["presentation"]["tables"][name]["title"]
        .as_str()
        .unwrap_or(name)
        .to_string()
}

/// A table's sheet as text cells, by row and column.
fn sheet(s: &Scratch, name: &str) -> Vec<Vec<String>> {
    sheet_named(s, &sheet_of(&manifest(&s.path(DIR)), name))
}

/// The sheet named `name` as text cells, by row and column.
fn sheet_named(s: &Scratch, name: &str) -> Vec<Vec<String>> {
    let bytes = fs::read(s.path(&format!("{DIR}/disung-2024.xlsx"))).unwrap();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range(name).unwrap();
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|c| match c {
                    Data::Float(f) => format!("{}", *f as i64),
                    Data::Int(i) => i.to_string(),
                    Data::String(s) => s.clone(),
                    Data::Empty => String::new(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_release_writes_a_labelled_workbook_whose_numbers_are_the_csvs() {
    let s = released();
    let m = manifest(&s.path(DIR));
    let outputs: Vec<&str> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert!(outputs.contains(&"disung-2024.xlsx") && outputs.contains(&"report.html"));
    assert_eq!(m["manifest_format"], 9);
    assert_eq!(m["presentation"]["language"], "ko");
    s.run(&["audit", DIR]).expect_code(0);

    let bytes = fs::read(s.path(&format!("{DIR}/disung-2024.xlsx"))).unwrap();
    let wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let names = wb.sheet_names();
    assert_eq!(names.len(), 9, "{names:?}");
    assert_eq!(names[8], "작성 방법");
    // A one-dimensional table's column names what it measures, in the privacy unit's label.
    let gender = sheet(&s, "victims_by_gender");
    assert!(
        gender.iter().flatten().any(|c| c == "피해자 수 (명)"),
        "{gender:?}"
    );
    let method = sheet_named(&s, "작성 방법");
    assert!(
        method.iter().flatten().any(|c| c == "피해자 (victim_id)"),
        "{method:?}"
    );
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    assert!(html.contains("<th>피해자 수 (명)</th>"), "report");
    // Sheets are named by the tables' titles, as a reader looks for them.
    assert!(
        names.iter().any(|n| n == "성별·연령대별 피해자 수")
            && !names.iter().any(|n| n == "victims_by_gender_age"),
        "{names:?}"
    );

    // gender x age: Hangul labels round-trip; rows are genders, columns ages, totals (계) first,
    // as Korean tables print them: the table's own margins, which equal the gender and age tables
    // of the same group.
    let g = sheet(&s, "victims_by_gender_age");
    // Numbered, as a publication's tables are (표 1, 표 2...), with the footnotes and the source
    // under the table, and the reference period, publisher and contact in the report.
    assert_eq!(g[0][0], "표 1. 성별·연령대별 피해자 수");
    let column: Vec<&str> = g.iter().map(|r| r[0].as_str()).collect();
    assert!(
        column.contains(&"주 1) 가상의 표본 자료로 만든 예시입니다.")
            && column.contains(&"자료: 디지털성범죄피해자지원센터 연간 보고서 표본 (가상 자료)"),
        "{column:?}"
    );
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    for text in [
        "기준 기간: 2024년 1월~12월",
        "<h2>표 1. 성별·연령대별 피해자 수</h2>",
        "<dt>작성 기관</dt><dd>예시 지원센터 통계팀</dd>",
        "<dt>문의</dt><dd>통계팀 02-000-0000</dd>",
        "주 2) 차분 프라이버시로 보호한 표의 값에는 잡음이 더해져 있습니다.",
    ] {
        assert!(html.contains(text), "report lacks {text}");
    }
    assert!(
        g[1][0].contains("단위: 명") && g[1][0].contains("±"),
        "{:?}",
        g[1]
    );
    assert_eq!(
        g[3],
        [
            "성별",
            "계",
            "10세 미만",
            "10대",
            "20대",
            "30대",
            "40대",
            "50대 이상",
            "미상"
        ]
    );
    let values = csv_values(&s, "victims_by_gender_age");
    let ages = ["under_10", "10s", "20s", "30s", "40s", "50_plus", "unknown"];
    for (r, (gender, label)) in [("female", "여성"), ("male", "남성")].iter().enumerate() {
        let row = &g[5 + r];
        assert_eq!(row[0], *label);
        for (c, age) in ages.iter().enumerate() {
            let v = values
                .iter()
                .find(|(k, _)| k[0] == *gender && k[1] == *age)
                .unwrap()
                .1;
            assert_eq!(row[2 + c], v.map_or("x".to_string(), |v| v.to_string()));
        }
    }
    let by_gender = csv_values(&s, "victims_by_gender");
    assert_eq!(g[5][1], by_gender[0].1.unwrap().to_string());
    assert_eq!(g[6][1], by_gender[1].1.unwrap().to_string());
    assert_eq!(g[4][0], "계");
    let by_age = csv_values(&s, "victims_by_age");
    for (c, (_, v)) in by_age.iter().enumerate() {
        assert_eq!(g[4][2 + c], v.unwrap().to_string());
    }
    let grand: i64 = by_gender.iter().map(|(_, v)| v.unwrap()).sum();
    assert_eq!(g[4][1], grand.to_string());
    // The totals' own margins of error, as the CSV's total rows state them.
    let rows = read_all_rows(&s.path(&format!("{DIR}/victims_by_gender_age.csv")));
    let moe = |gender: &str, age: &str| {
        rows.iter()
            .find(|r| r["gender"] == gender && r["age_group"] == age && r["status"] == "total")
            .unwrap()["moe95"]
            .clone()
    };
    let line = format!(
        "계의 오차 범위(95%): 성별 계 ±{}, 연령대 계 ±{}, 총계 ±{}",
        moe("female", "total"),
        moe("total", "10s"),
        moe("total", "total")
    );
    assert!(g.iter().flatten().any(|c| *c == line), "no `{line}`");

    // region x age has suppressed cells: the marker, never a number or an empty cell.
    let ra = sheet(&s, "victims_by_region_age");
    let values = csv_values(&s, "victims_by_region_age");
    let suppressed = values.iter().filter(|(_, v)| v.is_none()).count();
    assert!(suppressed > 0);
    let markers: usize = ra[5..5 + 17]
        .iter()
        .map(|row| row[2..9].iter().filter(|c| *c == "x").count())
        .sum();
    assert_eq!(markers, suppressed);
    assert!(
        ra.iter()
            .flatten()
            .any(|c| c.starts_with("x: 잡음을 더한 값이"))
    );

    // The methodology sheet, from the manifest.
    let method = sheet(&s, "작성 방법");
    let text: String = method
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    for part in [
        "보호 단위",
        "victim_id",
        "차분 프라이버시",
        "오차 범위의 뜻",
        "보호 단위당 최대 4건, 칸당 1건",
        "각 값은 [0, 60]로 제한",
        "자료에서 강제함",
        "신고된 값",
        "프라이버시 예산",
        "남은 예산 0.6100",
        "rho = 0.0500 (ε = 1.4716, δ = 1e-6)",
    ] {
        assert!(text.contains(part), "lacks {part}: {text}");
    }
}

#[test]
fn report_remakes_the_same_bytes_from_the_folder_alone() {
    let s = released();
    // Without the raw data: `report` reads only the folder.
    fs::remove_dir_all(s.path("data")).unwrap();
    let html = s.path(&format!("{DIR}/report.html"));
    let xlsx = s.path(&format!("{DIR}/disung-2024.xlsx"));
    let (html_sha, xlsx_sha) = (sha256(&html), sha256(&xlsx));
    s.run(&["report", DIR])
        .expect_code(0)
        .stdout_has(&["report.html: unchanged (matches the manifest)"]);
    fs::remove_file(&html).unwrap();
    fs::remove_file(&xlsx).unwrap();
    s.run(&["report", DIR])
        .expect_code(0)
        .stdout_has(&["report.html: written", "disung-2024.xlsx: written"]);
    assert_eq!(
        (sha256(&html), sha256(&xlsx)),
        (html_sha.clone(), xlsx_sha.clone())
    );
    s.run(&["audit", DIR]).expect_code(0);
    // Elsewhere, with --out.
    s.run(&["report", DIR, "--out", "copy"]).expect_code(0);
    assert_eq!(sha256(&s.path("copy/report.html")), html_sha);
    // A table edited after publication: named, and nothing is made from it.
    let csv = s.path(&format!("{DIR}/victims_by_gender.csv"));
    let text = fs::read_to_string(&csv).unwrap();
    let edited = text.replacen(",published,", "1,published,", 1);
    fs::write(&csv, edited).unwrap();
    s.run(&["report", DIR]).expect_code(2).stderr_has(&[
        "`victims_by_gender.csv`",
        "differs from the SHA-256 its manifest lists",
    ]);
    assert_eq!(
        (sha256(&html), sha256(&xlsx)),
        (html_sha.clone(), xlsx_sha.clone())
    );
    // The tables as published but the manifest's record of the workbook edited: this version of
    // safestat made it, so the manifest was altered.
    fs::write(&csv, &text).unwrap();
    let m_path = s.path(&format!("{DIR}/manifest.json"));
    let original = fs::read(&m_path).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&original).unwrap();
    for o in m["outputs"].as_array_mut().unwrap() {
        if o["path"] == "report.html" {
            o["sha256"] = "0".repeat(64).into();
        }
    }
    fs::write(&m_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    s.run(&["report", DIR])
        .expect_code(2)
        .stderr_has(&["`report.html`", "the manifest was altered"]);
    fs::write(&m_path, original).unwrap();
    s.run(&["report", "nowhere"]).expect_code(2);
    // A release from before workbooks: its manifest lists neither file, so `report` will not
    // put unlisted files into it (its audit would fail), but writes them elsewhere.
    let m_path = s.path(&format!("{DIR}/manifest.json"));
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&m_path).unwrap()).unwrap();
    fs::write(&csv, text).unwrap();
    m["outputs"]
        .as_array_mut()
        .unwrap()
        .retain(|o| o["path"] != "report.html" && o["path"] != "disung-2024.xlsx");
    fs::write(&m_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    fs::remove_file(&html).unwrap();
    s.run(&["report", DIR])
        .expect_code(2)
        .stderr_has(&["does not list `disung-2024.xlsx`", "use --out DIR"]);
    assert!(!html.exists());
    s.run(&["report", DIR, "--out", "old"]).expect_code(0);
    assert_eq!(sha256(&s.path("old/report.html")), html_sha);
}

/// A Korean publication's CSVs start with a byte-order mark (Korean Excel reads them as UTF-8);
/// `csv_bom = false` leaves it out, and nothing else changes. Its report dates it in Korean.
#[test]
fn a_korean_publication_writes_a_byte_order_mark_unless_told_not_to() {
    let header = b"gender,value,status,moe95,flag\n";
    let s = sample();
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let with = fs::read(s.path(&format!("{DIR}/victims_by_gender.csv"))).unwrap();
    assert!(with.starts_with(b"\xEF\xBB\xBF") && with[3..].starts_with(header));
    s.run(&["audit", DIR]).expect_code(0);
    s.run(&["report", DIR]).expect_code(0);
    // The report dates the release in Korean, by the day in Seoul (UTC+9).
    let m = manifest(&s.path(DIR));
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    let date = korean_date(&m);
    assert!(html.contains(&date), "{date} not in the report");
    let s = sample();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(&policy, "# csv_bom = false ", "csv_bom = false   ");
    // Unnumbered tables keep their titles alone.
    let policy = replace_once(&policy, "# table_numbers = false", "table_numbers = false");
    s.write(SAMPLE_POLICY, &policy);
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let without = fs::read(s.path(&format!("{DIR}/victims_by_gender.csv"))).unwrap();
    assert!(without.starts_with(header));
    assert_eq!(sheet(&s, "victims_by_gender")[0][0], "성별 피해자 수");
    s.run(&["audit", DIR]).expect_code(0);
}

/// `csv_labels = true` on the sample: the DP tables' CSVs name dimensions and categories as the
/// workbook does, the numbers are those the workbook shows, and every reader takes them back;
/// a label the CSVs show cannot change in a presentation revision.
#[test]
fn labelled_csvs_are_what_people_read_and_what_machines_read_back() {
    let s = sample();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let labelled = replace_once(&policy, "# csv_labels = true ", "csv_labels = true   ");
    s.write(SAMPLE_POLICY, &labelled);
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let bytes = fs::read(s.path(&format!("{DIR}/victims_by_gender_age.csv"))).unwrap();
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    assert!(
        text.starts_with("성별,연령대,value,status,moe95,flag\n여성,10세 미만,"),
        "{text}"
    );
    // The workbook's cross-table shows the same numbers under the same labels.
    let sheet = sheet_named(&s, "성별·연령대별 피해자 수");
    let rows = read_all_rows(&s.path(&format!("{DIR}/victims_by_gender_age.csv")));
    let cell = rows
        .iter()
        .find(|r| r["성별"] == "남성" && r["연령대"] == "20대")
        .unwrap();
    let header = sheet
        .iter()
        .position(|r| r.iter().any(|c| c == "20대"))
        .unwrap();
    let column = sheet[header].iter().position(|c| c == "20대").unwrap();
    let row = sheet
        .iter()
        .find(|r| r.first().is_some_and(|c| c == "남성"))
        .unwrap();
    assert_eq!(row[column], cell["value"]);
    s.run(&["audit", DIR]).expect_code(0);
    s.run(&["verify", DIR]).expect_code(0);
    s.run(&["report", DIR])
        .expect_code(0)
        .stdout_has(&["unchanged"]);
    s.write(
        SAMPLE_POLICY,
        &replace_once(&labelled, "unknown = \"미상\"", "unknown = \"연령 미상\""),
    );
    s.run(&["report", DIR, "--policy", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["which the CSV files show under `csv_labels = true`"]);
    // Elsewhere, the new label is shown: the CSVs are read with the folder's own labels.
    assert!(presented_elsewhere(&s, "elsewhere").contains("연령 미상"));
}

/// `report DIR --policy SAMPLE_POLICY --out OUT`: the report it writes there.
fn presented_elsewhere(s: &Scratch, out: &str) -> String {
    s.run(&["report", DIR, "--policy", SAMPLE_POLICY, "--out", out])
        .expect_code(0);
    fs::read_to_string(s.path(&format!("{out}/report.html"))).unwrap()
}

#[test]
fn labels_and_publication_fields_are_validated() {
    let s = sample();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let bad = replace_once(&policy, "language = \"ko\"", "language = \"kr\"");
    let bad = replace_once(&bad, "[labels.region]", "[labels.regoin]");
    let bad = replace_once(&bad, "seoul = \"서울\"", "soul = \"서울\"");
    let bad = replace_once(
        &bad,
        "suppressed_marker = \"x\"",
        "suppressed_marker = \"0\"",
    );
    s.write(SAMPLE_POLICY, &bad);
    s.run(&["check", SAMPLE_POLICY]).expect_code(2).stderr_has(&[
        "[publication] field `language`: `kr` is not a language safestat writes; use `ko` or `en`",
        "[labels.regoin]: `regoin` is not a dimension with declared [categories] nor the privacy unit `victim_id`; did you mean `region`?",
        "[publication] field `suppressed_marker`: `0` must be visible text",
    ]);
    // Every wrong category of a section is named, not only the first.
    let bad = replace_once(&policy, "seoul = \"서울\"", "soul = \"서울\"");
    let bad = replace_once(&bad, "busan = \"부산\"", "pusan = \"부산\"");
    s.write(SAMPLE_POLICY, &bad);
    s.run(&["check", SAMPLE_POLICY]).expect_code(2).stderr_has(&[
        "[labels.region] field `categories`: `pusan` is not a declared category of `region`; did you mean `busan`?",
        "[labels.region] field `categories`: `soul` is not a declared category of `region`; did you mean `seoul`?",
    ]);
    // The privacy unit is shown by its label alone: none, or categories, are refused.
    s.write(
        SAMPLE_POLICY,
        &replace_once(&policy, "label = \"피해자\"\n", ""),
    );
    s.run(&["check", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["the privacy unit `victim_id` needs a `label` to be shown by"]);
    s.write(
        SAMPLE_POLICY,
        &replace_once(
            &policy,
            "label = \"피해자\"\n",
            "label = \"피해자\"\ncategories = { V000001 = \"홍길동\" }\n",
        ),
    );
    s.run(&["check", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["`victim_id` is the privacy unit, whose values are never published"]);
    // Publication texts may not be empty; a table's own number neither.
    let bad = replace_once(&policy, "period = \"2024년 1월~12월\"", "period = \" \"");
    let bad = replace_once(&bad, "\"가상의 표본 자료로 만든 예시입니다.\"", "\"\"");
    let bad = replace_once(
        &bad,
        "title = \"성별 피해자 수\"",
        "title = \"성별 피해자 수\"\nnumber = \"\"",
    );
    s.write(SAMPLE_POLICY, &bad);
    s.run(&["check", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&[
            "[publication] field `period`: is empty",
            "[publication] field `notes`: note 1 is empty",
            "[[table]] `victims_by_gender` field `number`: is empty",
        ]);
    // The privacy unit takes a label, never categories (its values are never published).
    let bad = replace_once(
        &policy,
        "label = \"피해자\"",
        "label = \"피해자\"\ncategories = { v1 = \"someone\" }",
    );
    s.write(SAMPLE_POLICY, &bad);
    s.run(&["check", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["[labels.victim_id] field `categories`: `victim_id` is the privacy unit"]);
}

/// Headless Chromium (Debian's `chromium`; `.ci/run` installs it) with a fresh profile.
fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("Debian's `chromium` is needed for this test: apt-get install -y chromium (.ci/run installs it)")
}

#[test]
fn the_report_renders_in_a_browser_with_the_csvs_numbers() {
    let s = released();
    let url = format!("file://{}", s.path(&format!("{DIR}/report.html")).display());
    let dom = chromium(&["--dump-dom", &url]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8(dom.stdout).unwrap();
    let m = manifest(&s.path(DIR));
    for table in m["tables"].as_array().unwrap() {
        let name = table["name"].as_str().unwrap();
        let start = dom
            .find(&format!("<section class=\"table\" id=\"{name}\">"))
            .unwrap_or_else(|| panic!("no section for {name}"));
        let section = &dom[start..start + dom[start..].find("</section>").unwrap()];
        // One chart per table, one bar or marker per cell.
        assert_eq!(section.matches("<svg").count(), 1, "{name}");
        let values = csv_values(&s, name);
        assert_eq!(
            section.matches("class=\"bar").count(),
            values.len(),
            "{name}"
        );
        // The cross-table's cells, in order, are the CSV's values (totals aside).
        let table_html = &section[section.find("<table class=\"cross\">").unwrap()..];
        let cells: Vec<Option<i64>> = table_html
            .split("<td class=\"v")
            .skip(1)
            .filter(|c| !c.starts_with(" total") && !c.starts_with(" suppressed total"))
            .map(|c| {
                let at = c.find("data-value=\"").unwrap() + 12;
                c[at..at + c[at..].find('"').unwrap()].parse().ok()
            })
            .collect();
        let expected: Vec<Option<i64>> = values.iter().map(|(_, v)| *v).collect();
        assert_eq!(cells, expected, "{name}");
    }
    assert!(dom.contains("<h2>작성 방법</h2>") && dom.contains("남은 예산"));
    // As the browser builds the page: numbered tables, footnotes, the source, the reference
    // period, the unit's label and the date in Korean.
    for part in [
        "표 1. 성별·연령대별 피해자 수",
        "주 1)",
        "자료: 디지털성범죄피해자지원센터 연간 보고서 표본 (가상 자료)",
        "2024년 1월~12월",
        "피해자 (victim_id)",
    ] {
        assert!(dom.contains(part), "the browser's page lacks `{part}`");
    }
    let date = korean_date(&m);
    assert!(dom.contains(&date), "no `{date}` in the browser's page");
    // And a screenshot of it.
    let shot = s.path("report.png");
    let out = chromium(&[
        "--window-size=1000,1400",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn cells_whose_margin_is_large_against_their_value_are_flagged_in_every_output() {
    let s = sample();
    let run = s.run(&["release", SAMPLE_POLICY, "--json"]);
    run.expect_code(0);
    let m = manifest(&s.path(DIR));
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    let mut flagged_total = 0;
    for table in m["tables"].as_array().unwrap() {
        let name = table["name"].as_str().unwrap();
        let moe = table["margin_of_error"].as_i64().unwrap();
        let rows = read_csv(&s.path(&format!("{DIR}/{name}.csv")));
        let sum = table["statistic"] == "sum";
        let share = 0.5;
        let mut flagged = 0;
        for row in &rows {
            // The flag is a function of published values and margins only (never of an exact
            // value); a sum's also of its noisy count of contributors, never of its value alone.
            let over = |v: &str, moe: i64| {
                v.parse::<i64>()
                    .is_ok_and(|v| moe as f64 > share * v.abs() as f64)
            };
            let expect = if row["value"].is_empty() {
                false
            } else if sum {
                let c = &table["contributors"];
                assert!(c.is_object(), "the sample's sum counts its contributors");
                let c_moe = c["margin_of_error"].as_i64().unwrap();
                assert_eq!(row["contributors_moe95"], c_moe.to_string());
                over(&row["contributors"], c_moe) || over(&row["value"], moe)
            } else {
                over(&row["value"], moe)
            };
            assert_eq!(row["flag"] == "unreliable", expect, "{name} {row:?}");
            flagged += usize::from(expect);
        }
        let r = &table["reliability"];
        assert_eq!(r["cells_flagged"], flagged, "{name}");
        if sum {
            assert_eq!(r["unreliable_above"], share);
            assert!(
                r["rule"]
                    .as_str()
                    .unwrap()
                    .contains("count of contributors")
            );
            assert_eq!(
                table["suppression"]["decided_on"],
                "noisy counts of contributors"
            );
            // A suppressed sum hides its count too; a published one shows it.
            for row in &rows {
                assert_eq!(
                    row["value"].is_empty(),
                    row["contributors"].is_empty(),
                    "{row:?}"
                );
            }
        }
        // The JSON carries the same flags.
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(s.path(&format!("{DIR}/{name}.json"))).unwrap())
                .unwrap();
        let json_flags = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r.as_array().unwrap().contains(&"unreliable".into()))
            .count();
        assert_eq!(json_flags, flagged, "{name}");
        // The report marks them, in that table's section.
        let start = html.find(&format!("id=\"{name}\"")).unwrap();
        let section = &html[start..start + html[start..].find("</section>").unwrap()];
        assert_eq!(
            section.matches("class=\"v unreliable\"").count(),
            flagged,
            "{name}"
        );
        if flagged > 0 {
            run.stdout_has(&[&format!(
                "reliability: `{name}`: {flagged} of {} published cells have a margin of error",
                table["cells"].as_u64().unwrap()
                    - table["suppression"]["cells_suppressed"].as_u64().unwrap()
            )]);
            assert!(section.contains(if sum {
                "기여자 수의 오차 범위가 기여자 수의 50%보다 커서"
            } else {
                "오차 범위가 공표 값의 50%보다 커서"
            }));
            if sum {
                assert!(section.contains("잡음을 더한 기여자 수가 공표 기준보다 작아"));
            }
        }
        flagged_total += flagged;
    }
    // With margins of ±6 and suppression below 10, the small region x age cells are flagged.
    assert!(flagged_total > 0);
    let ra = sheet(&s, "victims_by_region_age");
    assert!(
        ra.iter()
            .flatten()
            .any(|c| c.starts_with("노란 기울임 칸: 오차 범위가"))
    );
    // The share is validated.
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    s.write(
        SAMPLE_POLICY,
        &replace_once(
            &policy,
            "suppressed_marker = \"x\"",
            "unreliable_above = -1",
        ),
    );
    s.run(&["check", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["[publication] field `unreliable_above`: must be a positive share"]);
}

/// Every file of the release folder but the manifest, the workbook and the report, with its
/// SHA-256: what a presentation revision must leave as it is.
fn tables_bytes(s: &Scratch) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(s.path(DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .map(|p| (p.display().to_string(), sha256(&p)))
        .collect();
    out.sort();
    assert!(out.len() >= 4, "{out:?}");
    out
}

/// The day a manifest was made, in Seoul (UTC+9), as Korean writes it: `2026년 12월 4일`.
fn korean_date(m: &serde_json::Value) -> String {
    let utc = humantime::parse_rfc3339(m["created_at"].as_str().unwrap()).unwrap();
    let kst = humantime::format_rfc3339(utc + std::time::Duration::from_secs(9 * 3600)).to_string();
    let day = |r: std::ops::Range<usize>| kst[r].parse::<u32>().unwrap();
    format!("{}년 {}월 {}일", day(0..4), day(5..7), day(8..10))
}

fn write_sample_ledger(s: &Scratch, lines: &[String]) {
    fs::write(
        s.path("ledger/disung-victims.jsonl"),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// Appends to `ledger` (the sample's lines) a hand-written `revised` line: revision 3 after the
/// last line's, chained to it, edited by `edit`.
fn append_forged_revision(
    s: &Scratch,
    ledger: &[String],
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let last: serde_json::Value = serde_json::from_str(ledger.last().unwrap()).unwrap();
    let mut forged = last.clone();
    forged["seq"] = (last["seq"].as_u64().unwrap() + 1).into();
    forged["revision"] = 3.into();
    forged["previous_manifest_sha256"] = last["manifest_sha256"].clone();
    forged["prev_sha256"] = hex_sha256(ledger.last().unwrap().as_bytes()).into();
    edit(&mut forged);
    let mut lines = ledger.to_vec();
    lines.push(forged.to_string());
    write_sample_ledger(s, &lines);
}

fn sample_ledger(s: &Scratch) -> Vec<String> {
    fs::read_to_string(s.path("ledger/disung-victims.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_label_fixed_after_publication_is_presented_without_a_new_release() {
    let s = released();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let relabelled = replace_once(&policy, "unknown = \"미상\"", "unknown = \"연령 미상\"");
    s.write(SAMPLE_POLICY, &relabelled);
    // The same release: nothing to draw, nothing to charge.
    s.run(&["release", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["already released"]);
    // Elsewhere with --out: the published folder keeps its own files.
    assert!(presented_elsewhere(&s, "relabelled").contains("연령 미상"));
    let published = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    assert!(!published.contains("연령 미상"));
    s.run(&["audit", DIR]).expect_code(0);
    // A policy of another release is refused.
    s.write(
        "policies/other.toml",
        &replace_once(&policy, "id = \"disung-2024\"", "id = \"disung-2025\""),
    );
    s.run(&[
        "report",
        DIR,
        "--policy",
        "policies/other.toml",
        "--out",
        "x",
    ])
    .expect_code(2)
    .stderr_has(&["is for release `disung-2025`"]);
}

#[test]
fn a_presentation_revision_rewrites_the_workbook_and_report_and_charges_nothing() {
    let s = released();
    let tables = tables_bytes(&s);
    let old_manifest = fs::read(s.path(&format!("{DIR}/manifest.json"))).unwrap();
    let old_workbook = sha256(&s.path(&format!("{DIR}/disung-2024.xlsx")));
    let old_report = sha256(&s.path(&format!("{DIR}/report.html")));
    let lines = sample_ledger(&s).len();
    // The release's title in Korean, a category's label and a note: presentation only. The title
    // is part of what identifies a release, so `release` refuses it and says how to revise.
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let revised = replace_once(
        &replace_once(
            &policy,
            "title = \"Digital sex crime victim support, 2024\"",
            "title = \"디지털성범죄 피해자 지원 현황, 2024년\"",
        ),
        "unknown = \"미상\"",
        "unknown = \"연령 미상\"",
    );
    s.write(SAMPLE_POLICY, &revised);
    s.run(&["release", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&[
            "--new-version",
            "safestat report RELEASE_DIR --policy POLICY",
        ]);
    s.run(&["report", DIR, "--policy", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&[
            "presentation revision 1",
            "nothing was drawn or charged",
            "disung-2024.xlsx: rewritten",
            "report.html: rewritten",
        ]);
    // The tables' bytes are as published; the workbook and the report show the new texts.
    assert_eq!(tables_bytes(&s), tables);
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    assert!(html.contains("연령 미상") && html.contains("디지털성범죄 피해자 지원 현황, 2024년"));
    assert!(
        sheet_named(&s, "성별·연령대별 피해자 수")
            .iter()
            .flatten()
            .any(|c| c == "연령 미상")
    );
    // The manifest records the revision and the bytes it replaced; the ledger records it too,
    // and nothing more was spent.
    let m = manifest(&s.path(DIR));
    assert_eq!(
        m["release"]["title"],
        "디지털성범죄 피해자 지원 현황, 2024년"
    );
    let r = &m["revisions"][0];
    assert_eq!(r["revision"], 1);
    assert_eq!(r["previous_manifest_sha256"], hex_sha256(&old_manifest));
    assert_eq!(
        r["previous_title"],
        "Digital sex crime victim support, 2024"
    );
    let replaced: Vec<(&str, &str)> = r["replaced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap(),
                f["previous_sha256"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replaced,
        [
            ("disung-2024.xlsx", old_workbook.as_str()),
            ("report.html", old_report.as_str())
        ]
    );
    let ledger = sample_ledger(&s);
    assert_eq!(ledger.len(), lines + 1);
    let last: serde_json::Value = serde_json::from_str(ledger.last().unwrap()).unwrap();
    assert_eq!(last["kind"], "revised");
    assert_eq!(last["revision"], 1);
    assert_eq!(
        last["manifest_sha256"],
        sha256(&s.path(&format!("{DIR}/manifest.json")))
    );
    let spent = |s: &Scratch| {
        let run = s.run(&["budget", "--json", "--policy", SAMPLE_POLICY]);
        run.expect_code(0);
        serde_json::from_str::<serde_json::Value>(&run.stdout()).unwrap()[0]["spent"].clone()
    };
    let before = spent(&s);
    // Auditors and anyone with the folder accept it; the revised policy is the release's own,
    // so a scheduled re-run is "already released", and the same revision again makes none.
    s.run(&["audit", DIR]).expect_code(0);
    s.run(&["verify", DIR]).expect_code(0);
    s.run(&["release", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["already released"]);
    s.run(&["report", DIR, "--policy", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["no revision made"]);
    assert_eq!(sample_ledger(&s).len(), lines + 1);
    assert_eq!(spent(&s), before);

    // What is not presentation is refused, and nothing is written: other bounds, or a
    // presentation field that the tables' CSV files carry.
    let manifest_now = sha256(&s.path(&format!("{DIR}/manifest.json")));
    s.write(
        "policies/bounds.toml",
        &replace_once(&revised, "budget = { rho = 1.0 }", "budget = { rho = 2.0 }"),
    );
    s.run(&["report", DIR, "--policy", "policies/bounds.toml"])
        .expect_code(2)
        .stderr_has(&["in more than its presentation", "--new-version"]);
    s.write(
        "policies/bom.toml",
        &replace_once(&revised, "# csv_bom = false", "csv_bom = false"),
    );
    s.run(&["report", DIR, "--policy", "policies/bom.toml"])
        .expect_code(2)
        .stderr_has(&["`csv_bom`", "never rewrites them"]);
    assert_eq!(
        sha256(&s.path(&format!("{DIR}/manifest.json"))),
        manifest_now
    );
    assert_eq!(tables_bytes(&s), tables);

    // A second revision, interrupted after its ledger line and before its files were in place
    // (the folder's files put back by hand): audit names it, and running the command again
    // writes the very bytes recorded.
    s.write("policies/first.toml", &revised);
    let second = revised.once("unknown = \"연령 미상\"", "unknown = \"연령 모름\"");
    s.write(SAMPLE_POLICY, &second);
    let names = ["manifest.json", "disung-2024.xlsx", "report.html"];
    let saved: Vec<Vec<u8>> = names
        .iter()
        .map(|n| fs::read(s.path(&format!("{DIR}/{n}"))).unwrap())
        .collect();
    s.run(&["report", DIR, "--policy", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["presentation revision 2"]);
    let done: Vec<Vec<u8>> = names
        .iter()
        .map(|n| fs::read(s.path(&format!("{DIR}/{n}"))).unwrap())
        .collect();
    for (n, bytes) in names.iter().zip(&saved) {
        fs::write(s.path(&format!("{DIR}/{n}")), bytes).unwrap();
    }
    let ledger = sample_ledger(&s);
    s.run(&["audit", DIR])
        .expect_code(4)
        .stdout_has(&["is the one presentation revision 2 replaces", "interrupted"]);
    // Even with another policy at hand (the one that made it edited or lost), the revision is
    // made again from the ledger's record.
    s.run(&["report", DIR, "--policy", "policies/first.toml"])
        .expect_code(0)
        .stdout_has(&[
            "was recorded but its files were not all in place",
            "written now from the ledger's record",
        ]);
    for (n, bytes) in names.iter().zip(&done) {
        assert_eq!(
            &fs::read(s.path(&format!("{DIR}/{n}"))).unwrap(),
            bytes,
            "{n}"
        );
    }
    assert_eq!(sample_ledger(&s), ledger, "nothing more recorded");
    s.run(&["audit", DIR]).expect_code(0);

    // A copy of the folder is not the published one: refused, nothing recorded.
    copy_tree(&s.path(DIR), &s.path("copy"));
    s.write(SAMPLE_POLICY, &revised);
    s.run(&["report", "copy", "--policy", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["not in `copy`", "revise the published folder itself"]);
    assert_eq!(sample_ledger(&s), ledger);

    // A `revised` line written by hand that changes a table's file fails the ledger's audit.
    append_forged_revision(&s, &ledger, |forged| {
        forged["outputs"][0]["sha256"] = "0".repeat(64).into();
    });
    s.run(&["audit", DIR])
        .expect_code(4)
        .stdout_has(&["changes a file other than the workbook and the report"]);
    // So does a forged revision that keeps every file but changes what the manifest says of a
    // table (its margin of error), with a `revised` line and a `revisions` entry to match.
    let manifest_path = s.path(&format!("{DIR}/manifest.json"));
    let genuine = fs::read(&manifest_path).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&genuine).unwrap();
    m["tables"][0]["margin_of_error"] = 1.into();
    let mut entry = m["revisions"][1].clone();
    entry["revision"] = 3.into();
    entry["previous_manifest_sha256"] = hex_sha256(&genuine).into();
    m["revisions"].as_array_mut().unwrap().push(entry);
    let mut bytes = serde_json::to_vec_pretty(&m).unwrap();
    bytes.push(b'\n');
    fs::write(&manifest_path, &bytes).unwrap();
    append_forged_revision(&s, &ledger, |forged| {
        forged["manifest_sha256"] = hex_sha256(&bytes).into();
    });
    s.run(&["audit", DIR])
        .expect_code(4)
        .stdout_has(&["says other things than the ledger recorded when it was published"]);
    fs::write(&manifest_path, &genuine).unwrap();
    write_sample_ledger(&s, &ledger);
    s.run(&["audit", DIR]).expect_code(0);
    s.write(SAMPLE_POLICY, &second);

    // A manifest edited by hand (a label swapped) is not revised from: a person must look.
    let path = s.path(&format!("{DIR}/manifest.json"));
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, replace_once(&text, "\"연령 모름\"", "\"10세 미만\"")).unwrap();
    s.run(&["report", DIR, "--policy", SAMPLE_POLICY])
        .expect_code(6)
        .stderr_has(&["not the one ledger", "altered after publication"]);
}

#[test]
fn a_table_too_large_for_a_sheet_or_a_page_points_to_its_csv() {
    let s = Scratch::new();
    let wide: Vec<String> = (0..16_400).map(|i| format!("\"c{i}\"")).collect();
    s.write("in.csv", "id,g,k\n1,a,c0\n2,b,c16399\n");
    s.write(
        "p.toml",
        &format!(
            r#"
            [release]
            id = "wide"
            [dataset]
            name = "d"
            privacy_unit = "id"
            budget = {{ rho = 1.0 }}
            [inputs.in]
            path = "in.csv"
            [categories]
            g = ["a", "b"]
            k = [{}]
            [[table]]
            name = "g_by_k"
            input = "in"
            statistic = "count_units"
            by = ["g", "k"]
            max_cells_per_unit = 1
            cost = {{ rho = 0.5 }}
            "#,
            wide.join(", ")
        ),
    );
    s.run(&["release", "p.toml"]).expect_code(0);
    let dir = "releases/wide";
    // 16,400 columns do not fit a sheet (Excel has 16,384): the sheet says where the values are.
    let bytes = fs::read(s.path(&format!("{dir}/wide.xlsx"))).unwrap();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range("g_by_k").unwrap();
    let cells: Vec<String> = range.cells().map(|(_, _, c)| c.to_string()).collect();
    assert!(
        cells
            .iter()
            .any(|c| c.contains("every value is in g_by_k.csv")),
        "{cells:?}"
    );
    // 32,800 cells: no chart and no cross-table on the page, the same pointer instead.
    let html = fs::read_to_string(s.path(&format!("{dir}/report.html"))).unwrap();
    assert!(!html.contains("<svg") && !html.contains("<table class=\"cross\">"));
    assert!(html.contains("every value is in g_by_k.csv"));
    s.run(&["audit", dir]).expect_code(0);
}

#[test]
fn a_paid_release_is_published_even_when_its_workbook_cannot_be_made() {
    let s = sample();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    // Excel refuses a cell of more than 32,767 characters.
    let long = "가".repeat(40_000);
    s.write(
        SAMPLE_POLICY,
        &replace_once(
            &policy,
            "title = \"성별 피해자 수\"",
            &format!("title = \"{long}\""),
        ),
    );
    let run = s.run(&["release", SAMPLE_POLICY]);
    run.expect_code(0).stdout_has(&[
        "warning: the workbook and report.html could not be made",
        "the tables are published without them",
    ]);
    assert!(!s.path(&format!("{DIR}/disung-2024.xlsx")).exists());
    assert!(!s.path(&format!("{DIR}/report.html")).exists());
    assert!(s.path(&format!("{DIR}/victims_by_gender.csv")).exists());
    s.run(&["audit", DIR]).expect_code(0);
}

/// Shares of a table's total, with their margins, in the CSV, the JSON, the workbook and the
/// page: computed from the published values only, suppressed cells showing none.
#[test]
fn shares_of_the_total_are_published_with_margins_in_every_output() {
    let s = sample();
    s.run(&["release", SAMPLE_POLICY, "--json"]).expect_code(0);
    let m = manifest(&s.path(DIR));
    let html = fs::read_to_string(s.path(&format!("{DIR}/report.html"))).unwrap();
    let bytes = fs::read(s.path(&format!("{DIR}/disung-2024.xlsx"))).unwrap();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    for name in ["victims_by_age", "reports_by_type"] {
        let entry = m["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap();
        let total = entry["shares"]["total"].as_i64().unwrap();
        let rows = read_csv(&s.path(&format!("{DIR}/{name}.csv")));
        // The total is the table's: the sum of its published values (none is suppressed here).
        let values: Vec<i64> = rows.iter().map(|r| r["value"].parse().unwrap()).collect();
        assert_eq!(values.iter().sum::<i64>(), total, "{name}");
        let mut shares = Vec::new();
        for (row, v) in rows.iter().zip(&values) {
            let p: f64 = row["share_pct"].parse().unwrap();
            let margin: f64 = row["share_pct_moe95"].parse().unwrap();
            assert!(
                (p - 100.0 * *v as f64 / total as f64).abs() <= 0.05 + 1e-9,
                "{name} {row:?}"
            );
            // A margin in points, at least the cell's own noise relative to the total.
            let own = entry["margin_of_error"].as_f64().unwrap() / total as f64 * 100.0;
            assert!(margin > 0.0 && margin + 0.1 >= own * 0.5, "{name} {row:?}");
            shares.push((p, margin));
        }
        let sum: f64 = shares.iter().map(|s| s.0).sum();
        assert!(
            (sum - 100.0).abs() <= 0.05 * rows.len() as f64,
            "{name}: {sum}"
        );
        // The JSON's last two columns.
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(s.path(&format!("{DIR}/{name}.json"))).unwrap())
                .unwrap();
        for (row, (p, margin)) in json["rows"].as_array().unwrap().iter().zip(&shares) {
            let row = row.as_array().unwrap();
            assert_eq!(row[row.len() - 2].as_f64().unwrap(), *p);
            assert_eq!(row[row.len() - 1].as_f64().unwrap(), *margin);
        }
        // The workbook: a block headed 구성비(%), its numbers the CSV's.
        let range = wb.worksheet_range(&sheet_of(&m, name)).unwrap();
        let cells: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
        let head = cells
            .iter()
            .position(|r| r.iter().any(|c| *c == "구성비(%)"))
            .unwrap_or_else(|| panic!("{name}: no share block"));
        for (i, (p, margin)) in shares.iter().enumerate() {
            let row = &cells[head + 1 + i];
            assert_eq!(row[1], Data::Float(*p), "{name} {row:?}");
            assert_eq!(row[2], Data::Float(*margin), "{name} {row:?}");
        }
        // The page: the share table's cells, in order.
        let start = html.find(&format!("id=\"{name}\"")).unwrap();
        let section = &html[start..start + html[start..].find("</section>").unwrap()];
        let page: Vec<f64> = section
            .split("data-share=\"")
            .skip(1)
            .map(|c| c[..c.find('"').unwrap()].parse().unwrap())
            .collect();
        assert_eq!(
            page,
            shares.iter().map(|s| s.0).collect::<Vec<_>>(),
            "{name}"
        );
    }
    // A table without `shares` has no share columns.
    assert!(
        !read_csv(&s.path(&format!("{DIR}/victims_by_region.csv")))[0].contains_key("share_pct")
    );
    // Shares need values that cannot be negative.
    s.write(
        "policy.toml",
        &ledger_policy(
            "r",
            "{ rho = 1 }",
            &LAPLACE_TABLE
                .once("clamp = [0, 100]", "clamp = [-5, 100]")
                .once("suppress_below = 0", "suppress_below = 0\nshares = true"),
        ),
    );
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["table `amount`, field `shares`", "cannot be negative"]);
}
