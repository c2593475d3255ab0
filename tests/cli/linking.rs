//! Exact tables linked to the same data wherever it is read: earlier releases whose dimensions
//! were renamed since, corrected data under a new name, inputs of one release that hold one data
//! (through an earlier table counted on both, or through dimensions named otherwise, or a count
//! of rows beside a count of persons), a release published while this one was being prepared.
//! Found by an adversarial review (issue 24, item 3): each case published a small cell of an
//! earlier table, or a cell that gives it back.
//!
//! The data: 274 persons, r4 holding 4 of them. A region x gender table (cells below 5 small)
//! hides r4's total; a later table by area (the same column renamed) x age that alone would
//! publish it (cells below 3 small) must keep it hidden.

use crate::common::*;

/// `pid,{region},gender,age[,kind]` for persons p1..p274 (r1: 120, r2: 90, r3: 60, r4: 4), in
/// reverse order with CRLF line ends when `copy`.
fn people(region: &str, kind: bool, copy: bool) -> String {
    let mut rows = Vec::new();
    let mut id = 0;
    for (r, n) in [("r1", 120), ("r2", 90), ("r3", 60), ("r4", 4)] {
        for _ in 0..n {
            id += 1;
            let gender = ["f", "m"][id % 2];
            let age = ["young", "old"][(id / 2) % 2];
            let mut row = format!("p{id},{r},{gender},{age}");
            if kind {
                row.push_str(&format!(",k{}", id % 3 + 1));
            }
            rows.push(row);
        }
    }
    let header = format!("pid,{region},gender,age{}", if kind { ",kind" } else { "" });
    if copy {
        rows.reverse();
        format!("{header}\r\n{}\r\n", rows.join("\r\n"))
    } else {
        format!("{header}\n{}\n", rows.join("\n"))
    }
}

/// A policy: release `id`, inputs (name, file), `[categories]` lines, tables (name, input, by,
/// statistic, smallest safe cell).
fn policy(
    id: &str,
    inputs: &[(&str, &str)],
    categories: &str,
    tables: &[(&str, &str, &str, &str, u32)],
) -> String {
    let mut p = format!(
        "[release]\nid = \"{id}\"\n[dataset]\nname = \"people\"\nprivacy_unit = \"pid\"\nbudget = {{ rho = 1 }}\n"
    );
    for (name, file) in inputs {
        p.push_str(&format!("[inputs.{name}]\npath = \"{file}\"\n"));
    }
    p.push_str(&format!("[categories]\n{categories}\n"));
    for (name, input, by, statistic, small) in tables {
        p.push_str(&format!(
            "[[table]]\nname = \"{name}\"\ninput = \"{input}\"\nstatistic = \"{statistic}\"\nby = {by}\nprotection = \"suppression\"\nprimary = {{ min_frequency = {small} }}\ninterval_percent = 20\n"
        ));
    }
    p
}

const REGIONS: &str = r#"["r1", "r2", "r3", "r4"]"#;
const REST: &str = "gender = [\"f\", \"m\"]\nage = [\"young\", \"old\"]";

/// Release `rel1`: region x gender of `people.csv`, cells below 5 small; r4's total is hidden.
fn first_release(s: &Scratch) -> Vec<HashMap<String, String>> {
    s.write("people.csv", &people("region", false, false));
    s.write(
        "rel1.toml",
        &policy(
            "rel1",
            &[("people", "people.csv")],
            &format!("region = {REGIONS}\n{REST}"),
            &[(
                "by_region_gender",
                "people",
                r#"["region", "gender"]"#,
                "count_units",
                5,
            )],
        ),
    );
    s.run(&["release", "rel1.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/rel1/by_region_gender.csv"));
    assert_eq!(status(&rows, "region", "r4", "gender"), "suppressed");
    rows
}

/// The status of `dim`'s category `value`'s total (over dimension `other`).
fn status(rows: &[HashMap<String, String>], dim: &str, value: &str, other: &str) -> String {
    rows.iter()
        .find(|r| r[dim] == value && r[other] == "total")
        .map(|r| r["status"].clone())
        .unwrap_or_else(|| panic!("no {dim} = {value} total in {rows:?}"))
}

/// The ledger's entries, in order.
fn entries(s: &Scratch) -> Vec<serde_json::Value> {
    ledger_lines(s)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The last entry of `kind` of release `id`.
fn last_entry(s: &Scratch, kind: &str, id: &str) -> Option<serde_json::Value> {
    entries(s)
        .into_iter()
        .rfind(|l| l["kind"] == kind && l["release_id"] == id)
}

fn charge_of(s: &Scratch, id: &str) -> serde_json::Value {
    last_entry(s, "charge", id).unwrap()
}

/// A run interrupted after its folder was in place, before the ledger recorded it: the
/// ledger's last line, a `published` one, is gone.
fn forget_last_publication(s: &Scratch) {
    let mut lines = ledger_lines(s);
    assert!(lines.pop().unwrap().contains("\"kind\":\"published\""));
    write_ledger(s, &lines);
}

/// A release by area x age of the renamed file, with `categories`.
fn by_area_age(s: &Scratch, categories: &str) -> Run {
    s.write("people_area.csv", &people("area", false, true));
    s.write(
        "rel2.toml",
        &policy(
            "rel2",
            &[("people", "people_area.csv")],
            categories,
            &[(
                "by_area_age",
                "people",
                r#"["area", "age"]"#,
                "count_units",
                3,
            )],
        ),
    );
    s.run(&["release", "rel2.toml"])
}

/// Two dimensions of region's categories (`area` and `zone`): each reading is tried, and the
/// one whose cells agree is linked (before, neither was: only a note, and r4's total published).
#[test]
fn a_renamed_dimension_is_found_among_two_of_its_categories() {
    let s = Scratch::new();
    first_release(&s);
    by_area_age(&s, &format!("area = {REGIONS}\nzone = {REGIONS}\n{REST}")).expect_code(0);
    let rows = read_csv(&s.path("releases/rel2/by_area_age.csv"));
    assert_eq!(status(&rows, "area", "r4", "age"), "suppressed");
    assert_eq!(
        charge_of(&s, "rel2")["exact_links"][0]["renamed"],
        serde_json::json!({ "region": "area" })
    );
    s.run(&["audit", "releases/rel2"]).expect_code(0);
}

/// A renamed dimension whose categories changed too (another order, one more) cannot be compared
/// and may count the same data: refused (before: only a note, and r4's total published).
#[test]
fn a_renamed_dimension_with_other_categories_is_refused() {
    for area in [
        r#"["r4", "r3", "r2", "r1"]"#,
        r#"["r1", "r2", "r3", "r4", "unknown"]"#,
    ] {
        let s = Scratch::new();
        first_release(&s);
        by_area_age(&s, &format!("area = {area}\n{REST}"))
            .expect_code(2)
            .stderr_has(&[
                "exact table `by_region_gender` of release `rel1` version 1",
                "declares its dimensions or their categories differently",
                "nothing was charged",
            ]);
        assert!(!s.path("releases/rel2").exists(), "{area}");
    }
}

/// Corrected data (one person added in r4) under a renamed dimension, as a new version: refused
/// as the same correction without the rename is (before: published, giving r4 back).
#[test]
fn a_correction_under_a_renamed_dimension_is_refused() {
    let s = Scratch::new();
    first_release(&s);
    let corrected = people("area", false, false) + "p999,r4,f,old\n";
    s.write("corrected.csv", &corrected);
    let v2 = policy(
        "rel1",
        &[("people", "corrected.csv")],
        &format!("area = {REGIONS}\n{REST}"),
        &[(
            "by_region_gender",
            "people",
            r#"["area", "gender"]"#,
            "count_units",
            5,
        )],
    );
    s.write("v2.toml", &v2);
    s.run(&["release", "v2.toml", "--new-version"])
        .expect_code(2)
        .stderr_has(&["has changed since it was published (an earlier version of this release)"]);
    assert!(!s.path("releases/rel1.v2").exists());
}

/// Two inputs of one release holding one data under two names of one column (`region` in one,
/// `area` in the other): their tables would be protected apart, so the release is refused
/// (before: r4's total hidden in one table, published in the other).
#[test]
fn one_data_under_two_dimension_names_in_one_release_is_refused() {
    let s = Scratch::new();
    s.write("people.csv", &people("region", false, false));
    s.write("copy.csv", &people("area", false, true));
    s.write(
        "policy.toml",
        &policy(
            "both",
            &[("people", "people.csv"), ("copy", "copy.csv")],
            &format!("region = {REGIONS}\narea = {REGIONS}\n{REST}"),
            &[
                (
                    "by_region_gender",
                    "people",
                    r#"["region", "gender"]"#,
                    "count_units",
                    5,
                ),
                (
                    "by_area_age",
                    "copy",
                    r#"["area", "age"]"#,
                    "count_units",
                    3,
                ),
            ],
        ),
    );
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&[
            "inputs `people` and `copy` hold the same data under other dimension names ([region] in `people`, [area] in `copy`",
            "Nothing was charged",
        ]);
    assert!(!s.path("releases/both").exists());
    // Another data under the other name is not refused.
    let mut other = people("area", false, false);
    other.push_str("p999,r4,f,old\n");
    s.write("copy.csv", &other);
    s.run(&["release", "policy.toml"]).expect_code(0);
}

/// A count of rows on a copy beside a count of persons on the original: the same people, so
/// refused as on one input (before: published, the rows bounding r4's hidden persons).
#[test]
fn a_count_of_rows_on_a_copy_beside_a_count_of_persons_is_refused() {
    let s = Scratch::new();
    s.write("people.csv", &people("region", false, false));
    s.write("copy.csv", &people("region", true, true));
    s.write(
        "policy.toml",
        &policy(
            "both",
            &[("people", "people.csv"), ("copy", "copy.csv")],
            &format!("region = {REGIONS}\n{REST}"),
            &[
                (
                    "by_region_gender",
                    "people",
                    r#"["region", "gender"]"#,
                    "count_units",
                    5,
                ),
                (
                    "rows_by_region_age",
                    "copy",
                    r#"["region", "age"]"#,
                    "count_rows",
                    3,
                ),
            ],
        ),
    );
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["count the same people", "Nothing was charged"]);
    assert!(!s.path("releases/both").exists());
}

/// An earlier table counted the same on two inputs of this release tells that they hold one
/// data, though their tables share no dimension: they are protected as one (and the ledger
/// says so).
#[test]
fn an_earlier_table_counted_on_two_inputs_makes_them_one_data() {
    let s = Scratch::new();
    first_release(&s);
    s.write("copy.csv", &people("region", true, true));
    s.write(
        "rel2.toml",
        &policy(
            "rel2",
            &[("people", "people.csv"), ("copy", "copy.csv")],
            &format!("region = {REGIONS}\n{REST}\nkind = [\"k1\", \"k2\", \"k3\"]"),
            &[
                (
                    "by_region_age",
                    "people",
                    r#"["region", "age"]"#,
                    "count_units",
                    5,
                ),
                (
                    "by_gender_kind",
                    "copy",
                    r#"["gender", "kind"]"#,
                    "count_units",
                    5,
                ),
            ],
        ),
    );
    s.run(&["release", "rel2.toml"])
        .expect_code(0)
        .stderr_has(&[
            "inputs `people` and `copy` hold the same data (exact table `by_region_gender` of release `rel1` version 1 counts the same on both)",
        ]);
    assert_eq!(
        charge_of(&s, "rel2")["same_data"],
        serde_json::json!({ "people": "copy" })
    );
    s.run(&["audit", "releases/rel2"]).expect_code(0);
}

/// A release published while this one was being prepared (here: an interrupted run's, rolled
/// forward by this one under the lock) stops this one with exit 5 and nothing charged; run
/// again, it is protected with it (before: released unprotected, r4's total published).
#[test]
fn a_release_published_meanwhile_stops_this_one_until_it_runs_again() {
    let s = Scratch::new();
    first_release(&s);
    // The run was interrupted after its folder was in place, before the ledger recorded it.
    forget_last_publication(&s);
    let run = by_area_age(&s, &format!("area = {REGIONS}\n{REST}"));
    run.expect_code(5).stderr_has(&[
        "release `rel1` version 1 published exact tables of dataset `people` after this release read the ledger",
        "run it again. Nothing was charged",
    ]);
    assert!(!s.path("releases/rel2").exists());
    assert!(last_entry(&s, "charge", "rel2").is_none());
    s.run(&["release", "rel2.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/rel2/by_area_age.csv"));
    assert_eq!(status(&rows, "area", "r4", "age"), "suppressed");
}

/// Data where a person is now in two cells of the earlier count of persons: other data, said in
/// a note (before: an error naming a table this policy does not have).
#[test]
fn persons_now_in_two_cells_of_an_earlier_count_are_other_data() {
    let s = Scratch::new();
    first_release(&s);
    s.write(
        "people.csv",
        &(people("region", false, false) + "p1,r1,f,young\n"),
    );
    s.write(
        "rel2.toml",
        &policy(
            "rel2",
            &[("people", "people.csv")],
            &format!("region = {REGIONS}\n{REST}"),
            &[(
                "by_region_age",
                "people",
                r#"["region", "age"]"#,
                "count_units",
                5,
            )],
        ),
    );
    s.run(&["release", "rel2.toml"])
        .expect_code(0)
        .stderr_has(&[
            "note: exact table `by_region_gender` of release `rel1` version 1 was not compared with this release's data, which cannot count it",
            "taken as other data",
        ]);
}

/// `people(region, ..)` with one more column, `zone`: a region of each person's own (`r{id % 4
/// + 1}`), of region's categories but other data.
fn with_zone(region: &str) -> String {
    let mut out = String::new();
    for (i, line) in people(region, false, false).lines().enumerate() {
        if i == 0 {
            out.push_str(&format!("{line},zone\n"));
        } else {
            out.push_str(&format!("{line},r{}\n", i % 4 + 1));
        }
    }
    out
}

/// A second review: one data under two names of a column, in one release, once went
/// unnoticed when the two inputs were already known to hold one data (an earlier table counted
/// the same on both), when the renamed column's categories were declared in another order or
/// with one more, or when another column of its categories was tried first. Each is refused.
#[test]
fn one_data_under_two_names_is_refused_however_it_is_declared() {
    let two = |categories: &str, copy_by: &str| {
        policy(
            "rel1",
            &[("people", "people.csv"), ("copy", "copy.csv")],
            categories,
            &[
                (
                    "by_region_gender",
                    "people",
                    r#"["region", "gender"]"#,
                    "count_units",
                    5,
                ),
                ("by_copy", "copy", copy_by, "count_units", 5),
            ],
        )
    };
    let cases = [
        // Known to hold one data through an earlier table by gender.
        (
            format!("region = {REGIONS}\narea = {REGIONS}\n{REST}"),
            r#"["area", "age"]"#,
            true,
            people("area", false, true),
        ),
        (
            format!("region = {REGIONS}\narea = [\"r4\", \"r3\", \"r2\", \"r1\"]\n{REST}"),
            r#"["area", "age"]"#,
            false,
            people("area", false, true),
        ),
        (
            format!("region = {REGIONS}\narea = [\"r1\", \"r2\", \"r3\", \"r4\", \"r5\"]\n{REST}"),
            r#"["area", "age"]"#,
            false,
            people("area", false, true),
        ),
        // `zone` (other data of region's categories) beside `area` (region renamed).
        (
            format!("region = {REGIONS}\narea = {REGIONS}\nzone = {REGIONS}\n{REST}"),
            r#"["zone", "area"]"#,
            false,
            with_zone("area"),
        ),
    ];
    for (categories, copy_by, bridged, copy) in cases {
        let s = Scratch::new();
        s.write("people.csv", &people("region", false, false));
        s.write("copy.csv", &copy);
        if bridged {
            s.write(
                "rel0.toml",
                &policy(
                    "rel0",
                    &[("people", "people.csv")],
                    &format!("region = {REGIONS}\n{REST}"),
                    &[("by_gender", "people", r#"["gender"]"#, "count_units", 5)],
                ),
            );
            s.run(&["release", "rel0.toml"]).expect_code(0);
        }
        s.write("rel1.toml", &two(&categories, copy_by));
        s.run(&["release", "rel1.toml"])
            .expect_code(2)
            .stderr_has(&[
                "inputs `people` and `copy` hold the same data under other dimension names ([region] in `people`, [area] in `copy`",
            ]);
        assert!(!s.path("releases/rel1").exists(), "{categories}");
    }
}

/// A second review: across releases, a dimension of the renamed one's exact categories (`zone`,
/// other data) hid the renamed one declared in another order (`area`): `zone` was tried, did
/// not agree, and the earlier table went unlinked. Now it is refused, as without `zone`.
#[test]
fn a_renamed_dimension_with_other_categories_is_refused_beside_a_decoy() {
    let s = Scratch::new();
    first_release(&s);
    s.write("people_area.csv", &with_zone("area"));
    s.write(
        "rel2.toml",
        &policy(
            "rel2",
            &[("people", "people_area.csv")],
            &format!("area = [\"r4\", \"r3\", \"r2\", \"r1\"]\nzone = {REGIONS}\n{REST}"),
            &[(
                "by_zone_area",
                "people",
                r#"["zone", "area"]"#,
                "count_units",
                3,
            )],
        ),
    );
    s.run(&["release", "rel2.toml"])
        .expect_code(2)
        .stderr_has(&[
            "exact table `by_region_gender` of release `rel1` version 1 may count the same data as this release's exact tables under a dimension renamed since",
        ]);
    assert!(!s.path("releases/rel2").exists());
}

/// A second review: a run charged and interrupted before it published, resumed after another
/// release published exact tables of the data, is protected with those too; its charge cannot
/// say so (it was written before), so its publication does, and `audit` re-checks those links.
#[test]
fn a_resumed_release_records_the_tables_published_in_between() {
    let s = Scratch::new();
    first_release(&s);
    let by = |id: &str, name: &str, by: &str| {
        policy(
            id,
            &[("people", "people.csv")],
            &format!("region = {REGIONS}\n{REST}"),
            &[(name, "people", by, "count_units", 5)],
        )
    };
    s.write(
        "rel2.toml",
        &by("rel2", "by_region_age", r#"["region", "age"]"#),
    );
    s.run(&["release", "rel2.toml"]).expect_code(0);
    // Interrupted after its charge: no folder, no `published` line.
    forget_last_publication(&s);
    fs::remove_dir_all(s.path("releases/rel2")).unwrap();
    s.write("rel3.toml", &by("rel3", "by_region", r#"["region"]"#));
    s.run(&["release", "rel3.toml"]).expect_code(0);
    s.run(&["release", "rel2.toml"])
        .expect_code(0)
        .stderr_has(&["resuming `rel2` version 1"]);
    let published = last_entry(&s, "published", "rel2").unwrap();
    let tables: Vec<&str> = published["exact_links"]
        .as_array()
        .unwrap_or_else(|| panic!("{published}"))
        .iter()
        .map(|l| l["release_id"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["rel1", "rel3"], "{published}");
    s.run(&["audit", "releases/rel2"]).expect_code(0);
}
