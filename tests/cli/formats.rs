//! Release folders made by earlier safestats (`tests/fixtures/format-6`, `format-7`: each made by
//! the commit its `MADE.md` names, from that commit's sample policy and data): `audit`, `verify`,
//! `report` and `budget` read them as auditors will meet them, and a golden test holds the
//! workbook's and report's bytes to `REPORT_FORMAT`.

use crate::common::*;

/// A scratch copy of fixture folder `name` (its ledger, release folder, policy and public key).
fn fixture(name: &str) -> Scratch {
    let s = Scratch::new();
    copy_tree(
        &Path::new(ROOT).join("tests/fixtures").join(name),
        s.dir.path(),
    );
    s
}

const DIR: &str = "releases/disung-2024";
const LEDGER: &str = "ledger/disung-victims.jsonl";

#[test]
fn audit_and_budget_read_folders_of_manifest_formats_6_and_7() {
    for name in ["format-6", "format-7"] {
        let s = fixture(name);
        s.run(&["audit", "--ledger", LEDGER, DIR])
            .expect_code(0)
            .stdout_has(&["audit passed"]);
        // With no folder named, the one the ledger records (a path relative to the ledger).
        s.run(&["audit", "--ledger", LEDGER])
            .expect_code(0)
            .stdout_has(&["audit passed"]);
        s.run(&["budget", "--ledger", LEDGER])
            .expect_code(0)
            .stdout_has(&["disung-2024", "published"]);
    }
}

#[test]
fn verify_checks_an_earlier_folder_and_its_workbook_by_hash_without_calling_it_altered() {
    let s = fixture("format-7");
    let run = s.run(&["verify", DIR, "--public-key", "keys/release.key.pub"]);
    run.expect_code(0).stdout_has(&[
        "signed",
        "not compared with what `report` makes",
        "before report formats were recorded",
        "1 exact table(s): the attacker's audit re-run",
    ]);
    let s = fixture("format-6");
    s.run(&["verify", DIR])
        .expect_code(0)
        .stdout_has(&["unsigned", "before report formats were recorded"]);
}

#[test]
fn an_earlier_folder_altered_is_still_caught() {
    for name in ["format-6", "format-7"] {
        let s = fixture(name);
        let csv = s.path(&format!("{DIR}/victims_by_gender.csv"));
        let text = fs::read_to_string(&csv).unwrap();
        fs::write(&csv, text.replacen(",published,", ",published ,", 1)).unwrap();
        s.run(&["verify", DIR]).expect_code(4);
        s.run(&["audit", "--ledger", LEDGER, DIR]).expect_code(4);
        // The workbook replaced by another: its listed hash no longer holds.
        let s = fixture(name);
        fs::write(s.path(&format!("{DIR}/report.html")), "<html></html>").unwrap();
        s.run(&["verify", DIR])
            .expect_code(4)
            .stdout_has(&["report.html"]);
    }
}

#[test]
fn report_remakes_an_earlier_folder_elsewhere_and_says_why_it_will_not_in_place() {
    for name in ["format-6", "format-7"] {
        let s = fixture(name);
        s.run(&["report", DIR, "--out", "remade"])
            .expect_code(0)
            .stdout_has(&["remade/report.html: written"]);
        let run = s.run(&["report", DIR]);
        run.expect_code(2)
            .stderr_has(&["before report formats were recorded", "--out"]);
        assert!(
            !run.stderr().contains("the manifest was altered"),
            "{}",
            run.stderr()
        );
    }
}

#[test]
fn an_earlier_folder_revised_is_this_safestats_and_still_audits() {
    let s = fixture("format-6");
    let policy = "policies/disung-2024.toml";
    let text = fs::read_to_string(s.path(policy)).unwrap();
    s.write(
        policy,
        &replace_once(&text, "language = \"ko\"", "language = \"en\""),
    );
    s.run(&["report", DIR, "--policy", policy])
        .expect_code(0)
        .stdout_has(&["presentation revision 1", "report.html: rewritten"]);
    let m = manifest(&s.path(DIR));
    assert_eq!(m["tool"]["report_format"], 1);
    assert_eq!(m["manifest_format"], 6);
    s.run(&["audit", "--ledger", LEDGER, DIR])
        .expect_code(0)
        .stdout_has(&["audit passed"]);
    // Its workbook and report are now what this safestat makes, so they are compared again.
    s.run(&["verify", DIR])
        .expect_code(0)
        .stdout_has(&["made again from the tables, byte for byte"]);
}

/// The workbook and `report.html` that this safestat makes of a fixed folder. When this test
/// fails, what `safestat report` makes of the same folder changed: raise `REPORT_FORMAT` in
/// `src/output/manifest.rs` (so that `verify` does not call the folders of the previous format
/// altered) and write the new hashes here.
#[test]
fn the_report_format_changes_when_the_workbook_or_report_bytes_do() {
    let s = fixture("format-7");
    s.run(&["report", DIR, "--out", "remade"]).expect_code(0);
    let made = [
        sha256(&s.path("remade/disung-2024.xlsx")),
        sha256(&s.path("remade/report.html")),
    ];
    let source = fs::read_to_string(Path::new(ROOT).join("src/output/manifest.rs")).unwrap();
    assert!(source.contains("pub const REPORT_FORMAT: u32 = 1;"));
    assert_eq!(
        made,
        [
            "a428b21b5ad9daed9886bdb83b2802ccf34dd7d0f28d1df0bfe7a766282a30e2".to_string(),
            "a3b6687b48410e59125d4fb8ab844011cfc72b4db5b58c90f63f1cc18d483782".to_string(),
        ],
        "the workbook or report.html of the same folder changed: raise REPORT_FORMAT and update these hashes"
    );
}

/// A folder of this safestat states its report format, and verify compares its workbook and
/// report; a manifest of format 9 that states none (or 0) is a problem, not a folder of an
/// earlier safestat to be noted.
#[test]
fn a_current_folder_states_its_report_format_and_cannot_drop_it() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let dir = "releases/r";
    let m = manifest(&s.path(dir));
    assert_eq!(m["manifest_format"], 9);
    assert_eq!(m["tool"]["report_format"], 1);
    s.run(&["verify", dir])
        .expect_code(0)
        .stdout_has(&["made again from the tables, byte for byte"]);
    let path = s.path(&format!("{dir}/manifest.json"));
    for format in [None, Some(0)] {
        let mut edited = m.clone();
        match format {
            None => edited["tool"]
                .as_object_mut()
                .unwrap()
                .remove("report_format"),
            Some(f) => edited["tool"]
                .as_object_mut()
                .unwrap()
                .insert("report_format".into(), f.into()),
        };
        fs::write(&path, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
        s.run(&["verify", dir])
            .expect_code(4)
            .stdout_has(&["states no report format"]);
    }
}

/// A revision an earlier safestat recorded in the ledger but did not finish writing is finished
/// as recorded (its manifest without a report format), and the folder then audits.
#[test]
fn an_earlier_safestats_interrupted_revision_is_finished_as_recorded() {
    let s = fixture("format-8-interrupted");
    s.run(&["audit", "--ledger", LEDGER, DIR]).expect_code(4);
    s.run(&["report", DIR, "--policy", "policies/disung-2024.toml"])
        .expect_code(0)
        .stdout_has(&["was recorded but its files were not all in place"]);
    let m = manifest(&s.path(DIR));
    assert!(m["tool"].get("report_format").is_none(), "{}", m["tool"]);
    assert!(
        m["release"]["title"]
            .as_str()
            .unwrap()
            .ends_with("(revised)")
    );
    s.run(&["audit", "--ledger", LEDGER, DIR])
        .expect_code(0)
        .stdout_has(&["audit passed"]);
}

/// A release charged by an earlier safestat, whose ledger fingerprints its inputs by SHA-256
/// (format 6's, before fingerprints named their scheme), is still the same release to today's,
/// which fingerprints files by BLAKE3: a re-run (a scheduled retry after an upgrade) publishes and
/// charges nothing; one value changed is refused as different inputs; a new version records the
/// new scheme.
#[test]
fn a_release_fingerprinted_in_the_legacy_scheme_is_recognised_after_an_upgrade() {
    let s = fixture("format-6");
    copy_tree(&Path::new(ROOT).join("data"), &s.path("data"));
    let policy = "policies/disung-2024.toml";
    let victims = s.path("data/disung_2024_victims.csv");
    let lines = || -> Vec<String> {
        let text = fs::read_to_string(s.path(LEDGER)).unwrap();
        text.lines().map(String::from).collect()
    };
    let recorded: serde_json::Value = serde_json::from_str(&lines()[0]).unwrap();
    assert_eq!(
        recorded["inputs"]["victims"],
        sha256(&victims),
        "made in the legacy scheme"
    );
    let before = lines();
    s.run(&["release", policy])
        .expect_code(0)
        .stdout_has(&["already released", "nothing charged"]);
    assert_eq!(lines(), before);

    // One service count one higher: other data.
    let text = fs::read_to_string(&victims).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    let (first, others) = rest.split_once('\n').unwrap();
    let (head, value) = first.rsplit_once(',').unwrap();
    let changed = format!("{head},{}", value.parse::<u32>().unwrap() + 1);
    fs::write(&victims, format!("{header}\n{changed}\n{others}")).unwrap();
    s.run(&["release", policy])
        .expect_code(2)
        .stderr_has(&["was made from different inputs", "--new-version"]);
    assert_eq!(lines(), before);

    s.run(&["release", policy, "--new-version"]).expect_code(0);
    let charge: serde_json::Value = serde_json::from_str(&lines()[2]).unwrap();
    assert_eq!(charge["version"], 2);
    let bytes = fs::read(&victims).unwrap();
    assert_eq!(
        charge["inputs"]["victims"],
        format!("blake3:{}", blake3::hash(&bytes).to_hex()).as_str()
    );
}

/// Another release of the same data as format 6's (whose ledger fingerprints by SHA-256 and
/// records no digest of the exact table's cells) protects its exact table together with the one
/// published there, found through the same bytes in the legacy scheme: otherwise the two would be
/// protected apart, and their differences could open each other's hidden cells.
#[test]
fn exact_tables_are_linked_with_an_earlier_release_fingerprinted_in_the_legacy_scheme() {
    let s = fixture("format-6");
    copy_tree(&Path::new(ROOT).join("data"), &s.path("data"));
    let policy = fs::read_to_string(s.path("policies/disung-2024.toml")).unwrap();
    s.write(
        "policies/later.toml",
        &replace_once(&policy, "id = \"disung-2024\"", "id = \"disung-2024-b\""),
    );
    s.run(&["release", "policies/later.toml"]).expect_code(0);
    let text = fs::read_to_string(s.path(LEDGER)).unwrap();
    let charge: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    assert_eq!(charge["release_id"], "disung-2024-b");
    assert_eq!(
        charge["exact_links"],
        serde_json::json!([{"release_id": "disung-2024", "version": 1, "table": "victims_exact_by_gender_region"}])
    );
}
