//! Consistent estimation in a release: the sample policy's five `count_units` tables of the
//! victims are one group whose margins add up exactly; the others are left alone; the opt-out.

use std::collections::HashMap;

use crate::common::*;

/// A table's published values by the labels of the given columns (suppressed cells as `None`).
fn values(dir: &Path, table: &str, cols: &[&str]) -> HashMap<Vec<String>, Option<i64>> {
    read_csv(&dir.join(format!("{table}.csv")))
        .into_iter()
        .filter(|row| row["status"] != "total")
        .map(|row| {
            let key = cols.iter().map(|c| row[*c].clone()).collect();
            (key, row["value"].parse().ok())
        })
        .collect()
}

/// Sums `fine` over the columns it has beyond `keep`, where every summed cell is published.
fn summed(
    fine: &HashMap<Vec<String>, Option<i64>>,
    pick: impl Fn(&[String]) -> Vec<String>,
) -> HashMap<Vec<String>, Option<i64>> {
    let mut out: HashMap<Vec<String>, Option<i64>> = HashMap::new();
    for (k, v) in fine {
        let e = out.entry(pick(k)).or_insert(Some(0));
        *e = match (*e, v) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    out
}

fn assert_adds_up(
    margin: &HashMap<Vec<String>, Option<i64>>,
    from: &HashMap<Vec<String>, Option<i64>>,
    what: &str,
) -> usize {
    let mut checked = 0;
    for (k, v) in from {
        if let (Some(sum), Some(m)) = (v, margin[k]) {
            assert_eq!(*sum, m, "{what} {k:?}");
            checked += 1;
        }
    }
    checked
}

#[test]
fn the_sample_release_publishes_margins_that_add_up_across_tables() {
    let s = sample();
    // Nothing suppressed, so that every sum can be checked.
    let policy = std::fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(&policy, "suppress_below = 10 ", "suppress_below = 0  ");
    s.write(SAMPLE_POLICY, &policy);
    let run = s.run(&["release", SAMPLE_POLICY]);
    run.expect_code(0).stdout_has(&[
        "consistent: victims_by_gender_age, victims_by_gender, victims_by_age, victims_by_region, victims_by_region_age estimated together as one 238-cell table",
    ]);
    let dir = s.path("releases/disung-2024");
    let ga = values(&dir, "victims_by_gender_age", &["gender", "age_group"]);
    let g = values(&dir, "victims_by_gender", &["gender"]);
    let a = values(&dir, "victims_by_age", &["age_group"]);
    let r = values(&dir, "victims_by_region", &["region"]);
    let ra = values(&dir, "victims_by_region_age", &["region", "age_group"]);
    let mut checked = 0;
    checked += assert_adds_up(&g, &summed(&ga, |k| vec![k[0].clone()]), "gender");
    checked += assert_adds_up(
        &a,
        &summed(&ga, |k| vec![k[1].clone()]),
        "age from gender x age",
    );
    checked += assert_adds_up(
        &a,
        &summed(&ra, |k| vec![k[1].clone()]),
        "age from region x age",
    );
    checked += assert_adds_up(&r, &summed(&ra, |k| vec![k[0].clone()]), "region");
    let total = |t: &HashMap<Vec<String>, Option<i64>>| t.values().map(|v| v.unwrap()).sum::<i64>();
    assert_eq!(total(&g), total(&a));
    assert_eq!(total(&g), total(&r));
    assert_eq!(checked, 2 + 7 + 7 + 17);
    // Non-negative integers everywhere.
    for t in [&ga, &g, &a, &r, &ra] {
        assert!(t.values().flatten().all(|&v| v >= 0));
    }
    // The manifest names the group, its method and solvers; tables outside it say so.
    let m = manifest(&dir);
    assert_eq!(m["manifest_format"], 9);
    let groups = m["consistency"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["status"], "estimated");
    assert_eq!(groups[0]["union_cells"], 238);
    assert!(groups[0]["solvers"].as_str().unwrap().contains("clarabel"));
    assert!(
        groups[0]["rounding"]
            .as_str()
            .unwrap()
            .starts_with("controlled")
    );
    for t in m["tables"].as_array().unwrap() {
        let in_group = t["name"].as_str().unwrap().starts_with("victims_by");
        assert_eq!(t.get("consistency_group").is_some(), in_group, "{t}");
        let method = t["margin_of_error_method"].as_str().unwrap();
        assert_eq!(method.starts_with("normal approximation"), in_group, "{t}");
    }
    s.run(&["audit", "releases/disung-2024"]).expect_code(0);
}

#[test]
fn consistent_false_publishes_the_tables_as_drawn() {
    let s = sample();
    let policy = std::fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(
        &policy,
        "confidence = 0.95           # margins of error are 95% half-widths",
        "confidence = 0.95\nconsistent = false",
    );
    let policy = replace_once(&policy, "suppress_below = 10 ", "suppress_below = 0  ");
    s.write(SAMPLE_POLICY, &policy);
    let run = s.run(&["release", SAMPLE_POLICY]);
    run.expect_code(0);
    assert!(!run.stdout().contains("consistent:"), "{}", run.stdout());
    let m = manifest(&s.path("releases/disung-2024"));
    assert_eq!(m["consistency"].as_array().unwrap().len(), 0);
    // Drawn independently, the tables disagree. Each of the 33 sums below matches its margin
    // with probability at most 0.06 (the difference of two independent discrete Gaussians with
    // a standard deviation of at least 6.7), so all match with probability below 1e-40.
    let dir = s.path("releases/disung-2024");
    let ga = values(&dir, "victims_by_gender_age", &["gender", "age_group"]);
    let ra = values(&dir, "victims_by_region_age", &["region", "age_group"]);
    let pairs = [
        (
            values(&dir, "victims_by_gender", &["gender"]),
            summed(&ga, |k| vec![k[0].clone()]),
        ),
        (
            values(&dir, "victims_by_age", &["age_group"]),
            summed(&ga, |k| vec![k[1].clone()]),
        ),
        (
            values(&dir, "victims_by_age", &["age_group"]),
            summed(&ra, |k| vec![k[1].clone()]),
        ),
        (
            values(&dir, "victims_by_region", &["region"]),
            summed(&ra, |k| vec![k[0].clone()]),
        ),
    ];
    let differ = pairs
        .iter()
        .flat_map(|(margin, sums)| sums.iter().map(move |(k, v)| (margin[k], *v)))
        .filter(|(m, v)| m != v)
        .count();
    assert!(
        differ > 0,
        "independently drawn tables agreed on all 33 sums"
    );
}

#[test]
fn plan_shows_the_group_and_its_margins_before_any_data_is_read() {
    let s = sample();
    std::fs::remove_dir_all(s.path("data")).unwrap();
    s.run(&["plan", SAMPLE_POLICY]).expect_code(0).stdout_has(&[
        "consistent: victims_by_gender_age, victims_by_gender, victims_by_age, victims_by_region, victims_by_region_age will be bounded once and estimated together as one 238-cell table",
        "drawn alone: `reports_by_type`: no other table of input `victims` measures the same quantity",
        "victims_by_age               ±7 (95%), drawn alone ±10",
    ]);
}

/// Intake records: 2,500 victims with one to three records each, each record in a cell of
/// channel x month of its own (no victim twice in one cell), from a fixed stream.
fn intake() -> Vec<(u32, usize, usize)> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut rows = Vec::new();
    for v in 0..2_500u32 {
        let records = 1 + next(3);
        let mut cells: Vec<(usize, usize)> = Vec::new();
        while cells.len() < records {
            // Channels and months of unequal size, a victim's records near each other.
            let cell = (next(4).min(next(4)), next(12));
            if !cells.contains(&cell) {
                cells.push(cell);
            }
        }
        rows.extend(cells.into_iter().map(|(c, m)| (v, c, m)));
    }
    rows
}

const CHANNELS: [&str; 4] = ["phone", "web", "visit", "referral"];

/// The intake policy of issue 23: the records counted by channel x month, by channel, by month
/// and in total, all four with `bounds`, at a confidence whose margins a published value leaves
/// with probability 1e-8.
fn intake_policy(statistic: &str, bounds: &str) -> String {
    let months: Vec<String> = (1..=12).map(|m| format!("\"m{m:02}\"")).collect();
    let mut p = format!(
        r#"
[release]
id = "intake"

[dataset]
name = "intake"
privacy_unit = "victim_id"
budget = {{ rho = 100.0 }}

[inputs.records]
path = "records.csv"

[categories]
channel = ["phone", "web", "visit", "referral"]
month = [{}]

[defaults]
mechanism = "gaussian"
suppress_below = 0
confidence = 0.99999999
"#,
        months.join(", ")
    );
    for (name, by) in [
        ("by_channel_month", r#"["channel", "month"]"#),
        ("by_channel", r#"["channel"]"#),
        ("by_month", r#"["month"]"#),
        ("in_total", "[]"),
    ] {
        p.push_str(&format!(
            "\n[[table]]\nname = \"{name}\"\ninput = \"records\"\nstatistic = \"{statistic}\"\nby = {by}\n{bounds}\ncost = {{ rho = 0.5 }}\n"
        ));
    }
    p
}

/// Releases the intake records under `statistic` and `bounds`; returns the scratch folder and
/// the release's stdout.
fn release_intake(statistic: &str, bounds: &str) -> (Scratch, String) {
    let s = Scratch::new();
    let mut csv = String::from("victim_id,channel,month\n");
    for (v, c, m) in intake() {
        csv.push_str(&format!("v{v},{},m{:02}\n", CHANNELS[c], m + 1));
    }
    s.write("records.csv", &csv);
    s.write("intake.toml", &intake_policy(statistic, bounds));
    let run = s.run(&["release", "intake.toml"]);
    run.expect_code(0);
    let out = run.stdout();
    (s, out)
}

/// Each table's published grand total (its `total` row) and that row's margin of error.
fn grand_totals(dir: &Path) -> BTreeMap<String, (i64, i64)> {
    ["by_channel_month", "by_channel", "by_month", "in_total"]
        .into_iter()
        .map(|t| {
            let rows = read_all_rows(&dir.join(format!("{t}.csv")));
            // A table of no dimension is its own total: its one cell.
            let total = rows
                .iter()
                .find(|r| {
                    ["channel", "month"]
                        .iter()
                        .all(|c| r.get(*c).is_none_or(|v| v == "total"))
                })
                .unwrap_or_else(|| panic!("{t} has no grand total row"));
            let value = total["value"].parse().unwrap();
            (
                t.to_string(),
                (value, total["moe99.999999"].parse().unwrap()),
            )
        })
        .collect()
}

/// Every published grand total lies within its own stated margin of error of its own true
/// bounded total. Each margin is a 1 - 1e-8 interval (normal approximation of Gaussian noise
/// plus the measured rounding and clamping), so the four hold together but with probability
/// below 4e-8.
fn assert_totals_within_margins(dir: &Path, truth: [(&str, i64); 4]) {
    let got = grand_totals(dir);
    for (table, true_total) in truth {
        let (value, moe) = got[table];
        assert!(
            (value - true_total).abs() <= moe,
            "{table}: published total {value} ± {moe}, true bounded total {true_total}"
        );
    }
}

/// Per victim, its records, its distinct channels and its distinct months.
fn per_victim() -> Vec<(i64, i64, i64)> {
    let mut v: BTreeMap<u32, (Vec<usize>, Vec<usize>, i64)> = BTreeMap::new();
    for (id, c, m) in intake() {
        let e = v.entry(id).or_default();
        e.2 += 1;
        if !e.0.contains(&c) {
            e.0.push(c);
        }
        if !e.1.contains(&m) {
            e.1.push(m);
        }
    }
    v.into_values()
        .map(|(c, m, n)| (n, c.len() as i64, m.len() as i64))
        .collect()
}

#[test]
fn tables_with_a_binding_per_cell_cap_are_drawn_alone_and_each_total_is_its_own() {
    let (s, out) = release_intake("count_rows", "max_rows_per_unit = 3\nmax_rows_per_cell = 1");
    // Not estimated together: each measures another total.
    assert!(!out.contains("consistent:"), "{out}");
    assert!(
        out.contains(
            "drawn alone: `by_channel`: max_rows_per_cell = 1 binds below max_rows_per_unit = 3"
        ),
        "{out}"
    );
    let v = per_victim();
    let records: i64 = v.iter().map(|x| x.0).sum();
    let channels: i64 = v.iter().map(|x| x.1).sum();
    let months: i64 = v.iter().map(|x| x.2).sum();
    // The fixture makes the four totals differ widely (the issue's 4,113 / 3,623 / 4,002 / 2,500).
    assert!(records > channels + 300 && records > months && months > 2_500 + 1_000);
    let dir = s.path("releases/intake");
    assert_totals_within_margins(
        &dir,
        [
            ("by_channel_month", records),
            ("by_channel", channels),
            ("by_month", months),
            ("in_total", 2_500),
        ],
    );
    let m = manifest(&dir);
    for t in m["tables"].as_array().unwrap() {
        assert!(t.get("consistency_group").is_none(), "{t}");
        let why = t["drawn_alone"].as_str().unwrap();
        assert!(why.contains("max_rows_per_cell = 1 binds"), "{why}");
    }
    s.run(&["plan", "intake.toml"]).expect_code(0).stdout_has(&[
        "drawn alone: `by_channel_month`: max_rows_per_cell = 1 binds below max_rows_per_unit = 3",
        "drawn alone: `in_total`: max_rows_per_cell = 1 binds",
    ]);
}

#[test]
fn units_in_several_cells_are_drawn_alone_and_each_total_is_its_own() {
    let (s, out) = release_intake("count_units", "max_cells_per_unit = 2");
    assert!(!out.contains("consistent:"), "{out}");
    assert!(
        out.contains("drawn alone: `by_month`: max_cells_per_unit = 2"),
        "{out}"
    );
    let v = per_victim();
    let two = |n: i64| n.min(2);
    assert_totals_within_margins(
        &s.path("releases/intake"),
        [
            ("by_channel_month", v.iter().map(|x| two(x.0)).sum()),
            ("by_channel", v.iter().map(|x| two(x.1)).sum()),
            ("by_month", v.iter().map(|x| two(x.2)).sum()),
            ("in_total", 2_500),
        ],
    );
}

/// Checks that the four intake tables add up exactly: channel and month are sums of channel x
/// month, and every table's grand total is the one table `in_total`.
fn assert_intake_adds_up(dir: &Path) {
    let cm = values(dir, "by_channel_month", &["channel", "month"]);
    let c = values(dir, "by_channel", &["channel"]);
    let m = values(dir, "by_month", &["month"]);
    assert_eq!(
        assert_adds_up(&c, &summed(&cm, |k| vec![k[0].clone()]), "channel"),
        4
    );
    assert_eq!(
        assert_adds_up(&m, &summed(&cm, |k| vec![k[1].clone()]), "month"),
        12
    );
    let totals = grand_totals(dir);
    let all: Vec<i64> = totals.values().map(|&(v, _)| v).collect();
    assert!(all.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
    // Each table's own total rows are the other tables' cells.
    let rows = read_all_rows(&dir.join("by_channel_month.csv"));
    assert_eq!(rows.len(), 48 + 4 + 12 + 1);
    for row in rows {
        if row["status"] == "total" && row["month"] == "total" && row["channel"] != "total" {
            assert_eq!(
                Some(row["value"].parse().unwrap()),
                c[&vec![row["channel"].clone()]]
            );
        }
    }
}

#[test]
fn tables_that_are_margins_of_one_bounded_table_are_estimated_together_and_add_up() {
    // Rows: no binding per-cell cap, so the four tables are margins of channel x month.
    let (s, out) = release_intake("count_rows", "max_rows_per_unit = 3");
    assert!(
        out.contains("consistent: by_channel_month, by_channel, by_month, in_total estimated together as one 48-cell table"),
        "{out}"
    );
    let records: i64 = per_victim().iter().map(|x| x.0).sum();
    let dir = s.path("releases/intake");
    assert_intake_adds_up(&dir);
    assert_totals_within_margins(
        &dir,
        [
            ("by_channel_month", records),
            ("by_channel", records),
            ("by_month", records),
            ("in_total", records),
        ],
    );
    // Units: each victim kept in one cell of channel x month, bounded once for all four.
    let (s, out) = release_intake("count_units", "max_cells_per_unit = 1");
    assert!(out.contains("consistent: by_channel_month"), "{out}");
    let dir = s.path("releases/intake");
    assert_intake_adds_up(&dir);
    assert_totals_within_margins(
        &dir,
        [
            ("by_channel_month", 2_500),
            ("by_channel", 2_500),
            ("by_month", 2_500),
            ("in_total", 2_500),
        ],
    );
    s.run(&["audit", "releases/intake"]).expect_code(0);
}
