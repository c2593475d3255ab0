//! `audit`: edited, deleted, swapped and inserted ledger lines, altered folders, and folders that
//! prove charges the ledger lacks.

use crate::common::*;

#[test]
fn audit_detects_an_edited_cost() {
    let s = two_releases();
    let mut lines = ledger_lines(&s);
    lines[0] = replace_once(&lines[0], "\"cost\":0.125", "\"cost\":0.0125");
    assert!(lines[0].contains("0.0125"));
    write_ledger(&s, &lines);
    let problems = audit_problems(&s, &[]);
    // Line 2 no longer chains to the edited line 1, and line 1's totals no longer add up.
    assert!(problems.iter().any(|p| p["line"] == 2 && p["message"].as_str().unwrap().contains("line 1 was edited")), "{problems:?}");
    assert!(problems.iter().any(|p| p["line"] == 1), "{problems:?}");
    // The release refuses to charge against a ledger that fails verification.
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(6)
        .stderr_has(&["failed verification"]);
}

#[test]
fn audit_detects_a_deleted_line() {
    let s = two_releases();
    let mut lines = ledger_lines(&s);
    lines.remove(1);
    write_ledger(&s, &lines);
    let problems = audit_problems(&s, &["releases/r"]);
    assert!(
        problems
            .iter()
            .any(|p| p["line"] == 2 && p["message"].as_str().unwrap().contains("deleted")),
        "{problems:?}"
    );
    // The deleted line was r's publication: the folder is no longer backed by the ledger.
    assert!(
        problems.iter().any(|p| p["scope"] == "release"
            && p["message"]
                .as_str()
                .unwrap()
                .contains("no `published` entry")),
        "{problems:?}"
    );
}

#[test]
fn audit_detects_swapped_lines() {
    let s = two_releases();
    let mut lines = ledger_lines(&s);
    lines.swap(2, 3);
    write_ledger(&s, &lines);
    let problems = audit_problems(&s, &[]);
    assert!(problems.iter().any(|p| p["line"] == 3 && p["message"].as_str().unwrap().contains("sequence number 4")), "{problems:?}");
    assert!(problems.iter().any(|p| p["line"] == 4), "{problems:?}");
}

#[test]
fn audit_detects_an_inserted_line() {
    let s = two_releases();
    let mut lines = ledger_lines(&s);
    let forged = lines[2].clone();
    lines.insert(2, forged);
    write_ledger(&s, &lines);
    // The copy of line 3 chains correctly; the original after it no longer does.
    let problems = audit_problems(&s, &[]);
    assert!(
        problems.iter().any(|p| p["line"] == 4
            && p["message"]
                .as_str()
                .unwrap()
                .contains("sequence number 3 where 4")),
        "{problems:?}"
    );
}

#[test]
fn audit_detects_an_edited_published_csv_and_unlisted_files() {
    let s = two_releases();
    let path = s.path("releases/r/by_kind.csv");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text + "c,1,published,1\n").unwrap();
    s.write("releases/r.v2/notes.txt", "who put this here");
    let problems = audit_problems(&s, &["releases/r", "releases/r.v2"]);
    assert!(
        problems
            .iter()
            .any(|p| p["file"] == "by_kind.csv" && p["path"] == "releases/r"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p["file"] == "notes.txt" && p["message"] == "not listed in the manifest"),
        "{problems:?}"
    );
    let text = s.run(&["audit", "releases/r"]).stdout();
    assert!(text.contains("PROBLEM releases/r/by_kind.csv"), "{text}");
}

#[test]
fn audit_of_a_folder_no_ledger_paid_for() {
    let s = two_releases();
    s.write(
        "other.toml",
        &replace_once(
            &ledger_policy("x", "{ rho = 1.0 }", GAUSS_TABLE),
            "name = \"people\"",
            "name = \"others\"",
        ),
    );
    s.run(&["release", "other.toml"]).expect_code(0);
    // Both ledgers (ledger/people.jsonl, ledger/others.jsonl) are found by default.
    s.run(&["audit", "releases/x", "releases/r"]).expect_code(0);
    let run = s.run(&[
        "audit",
        "--json",
        "--ledger",
        "ledger/people.jsonl",
        "releases/x",
    ]);
    run.expect_code(4);
    assert!(
        run.stdout()
            .contains("no ledger given holds dataset `others`"),
        "{}",
        run.stdout()
    );
}

/// Finding 7: deleting the ledger's last lines gave the budget back and `audit --ledger` passed.
/// The release folders witness their charges: `release` refuses and `audit` fails.
#[test]
fn a_ledger_whose_tail_was_cut_is_caught_by_the_folders_it_paid_for() {
    let s = two_releases();
    let lines = ledger_lines(&s);
    write_ledger(&s, &lines[..2]);
    let run = s.run(&["audit", "--json"]);
    run.expect_code(4);
    assert!(
        run.stdout().contains("the ledger lacks that line"),
        "{}",
        run.stdout()
    );
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(6)
        .stderr_has(&["lacks a charge that release folder"]);
    // Restored, everything holds again.
    write_ledger(&s, &lines);
    s.run(&["audit"]).expect_code(0);
}

/// Issue 29: `audit` with no folder named passed a tampered CSV of a folder its ledger records.
/// Now it checks every folder the ledger records as published, and says when one is gone.
#[test]
fn audit_without_folders_checks_every_folder_the_ledger_records() {
    let s = two_releases();
    let run = s.run(&["audit", "--json"]);
    run.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let checked: Vec<&str> = report["releases_checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(checked.len(), 2, "{checked:?}");
    assert!(checked[0].ends_with("releases/r") && checked[1].ends_with("releases/r.v2"));
    // A row added to version 2's table: caught without naming the folder.
    let csv = s.path("releases/r.v2/by_kind.csv");
    let text = fs::read_to_string(&csv).unwrap();
    fs::write(&csv, format!("{text}c,1,published,1,\n")).unwrap();
    let problems = audit_problems(&s, &[]);
    assert!(
        problems
            .iter()
            .any(|p| p["file"] == "by_kind.csv" && p["path"].as_str().unwrap().ends_with("r.v2")),
        "{problems:?}"
    );
    fs::write(&csv, text).unwrap();
    s.run(&["audit"]).expect_code(0);
    // A recorded folder that is gone is a problem, named.
    fs::rename(s.path("releases/r"), s.path("moved")).unwrap();
    let problems = audit_problems(&s, &[]);
    assert!(
        problems.iter().any(|p| p["message"]
            .as_str()
            .unwrap()
            .starts_with("no such release folder")),
        "{problems:?}"
    );
}
