//! Consistent estimation in a release: the sample policy's five `count_units` tables of the
//! victims are one group whose margins add up exactly; the others are left alone; the opt-out.

use std::collections::HashMap;

use crate::common::*;

/// A table's published values by the labels of the given columns (suppressed cells as `None`).
fn values(dir: &Path, table: &str, cols: &[&str]) -> HashMap<Vec<String>, Option<i64>> {
    read_csv(&dir.join(format!("{table}.csv")))
        .into_iter()
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
    assert_eq!(m["manifest_format"], 5);
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
        "consistent: victims_by_gender_age, victims_by_gender, victims_by_age, victims_by_region, victims_by_region_age will be estimated together as one 238-cell table",
        "victims_by_age               ±7 (95%), drawn alone ±10",
    ]);
}
