//! `plan` from the accuracy needed: target margins of error, costs as (epsilon, delta), and the
//! warning against the cell size the officer expects. Reads no data (the sample's `data/` is
//! removed first).

use crate::common::*;

/// The sample policy with `data/` removed: `plan` must not need it.
fn sample_without_data() -> Scratch {
    let s = sample();
    fs::remove_dir_all(s.path("data")).unwrap();
    s
}

/// The cost `plan --target-moe` prints for `table` ("rho=0.06284" → "rho = 0.06284").
fn needed_cost(plan_out: &str, table: &str) -> String {
    let line = plan_out
        .lines()
        .skip_while(|l| !l.starts_with("for the margins asked"))
        .find(|l| l.trim_start().starts_with(&format!("{table} ")))
        .unwrap_or_else(|| panic!("no target line for {table}: {plan_out}"));
    let cost = line
        .split_whitespace()
        .find(|w| w.starts_with("rho=") || w.starts_with("epsilon="))
        .unwrap();
    cost.replace('=', " = ")
}

/// The margin `plan` prints for `table` as it will be published: once estimated with its group
/// (the group's lines), else as drawn (its line in the table list).
fn margin(plan_out: &str, table: &str) -> i64 {
    let line = plan_out
        .lines()
        .find(|l| l.starts_with(&format!("  {table} ")) && l.contains("drawn alone ±"))
        .or_else(|| {
            plan_out
                .lines()
                .find(|l| l.starts_with(&format!("{table} ")))
        })
        .unwrap();
    let at = line.find('±').unwrap();
    line[at + '±'.len_utf8()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_target_margin_gives_the_cost_that_then_meets_it() {
    let s = sample_without_data();
    let run = s.run(&[
        "plan",
        SAMPLE_POLICY,
        "--target-moe",
        "5",
        "--target-moe",
        "victims_by_region_age=3",
    ]);
    run.expect_code(0).stdout_has(&[
        "for the margins asked",
        "victims_by_region_age            ±3 (95%)",
        "reports_by_type                  ±5 (95%)",
        "NOT ENOUGH: `release` would be refused",
    ]);
    let out = run.stdout();
    // Declaring the costs it printed, the plan's margins are the targets (or better).
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let mut edited = policy.clone();
    // Every targeted table of the group: each was priced with the others at their new costs.
    for (table, old) in [
        ("victims_by_gender_age", "cost = { rho = 0.05 }"),
        ("victims_by_gender", "cost = { rho = 0.02 }"),
        ("victims_by_age", "cost = { rho = 0.02 }"),
        ("victims_by_region", "cost = { rho = 0.02 }"),
        ("victims_by_region_age", "cost = { rho = 0.05 }"),
        ("reports_by_type", "cost = { rho = 0.05 }"),
    ] {
        let block_at = edited.find(&format!("name = \"{table}\"")).unwrap();
        let cost_at = block_at + edited[block_at..].find(old).unwrap();
        let (kind, value) = needed_cost(&out, table)
            .split_once(" = ")
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        edited.replace_range(
            cost_at..cost_at + old.len(),
            &format!("cost = {{ {kind} = {value} }}"),
        );
    }
    s.write(SAMPLE_POLICY, &edited);
    let after = s.run(&["plan", SAMPLE_POLICY]);
    after.expect_code(0);
    let after = after.stdout();
    for t in [
        "victims_by_gender_age",
        "victims_by_gender",
        "victims_by_age",
        "victims_by_region",
    ] {
        assert!(margin(&after, t) <= 5, "{t}: {after}");
    }
    assert!(margin(&after, "victims_by_region_age") <= 3, "{after}");
    assert!(margin(&after, "reports_by_type") <= 5, "{after}");
    // And they were above before.
    assert!(margin(&out, "victims_by_region_age") > 3, "{out}");
    // Priced by its margin once estimated, a grouped table needs less than the same table drawn
    // alone (the pre-counted `breakdown_by_gender_age`: the same cells and sensitivity).
    let rho = |t: &str| -> f64 {
        needed_cost(&out, t)
            .strip_prefix("rho = ")
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        rho("victims_by_gender_age") < rho("breakdown_by_gender_age"),
        "{out}"
    );
}

#[test]
fn a_target_relative_to_the_expected_cell_size_prices_a_sum_on_its_own_scale() {
    // The sample's sum declares `expected_cell_size = 20000`.
    let s = sample_without_data();
    // 5% of 20,000 services: a margin of ±1,000, not a count's ±5.
    let run = s.run(&[
        "plan",
        SAMPLE_POLICY,
        "--target-moe",
        "services_by_region=5%",
    ]);
    run.expect_code(0)
        .stdout_has(&["services_by_region            ±1000 (95%)"]);
    let cost = needed_cost(&run.stdout(), "services_by_region");
    // The sample's rho = 0.125 gives ±941: ±1,000 needs a little less.
    let rho: f64 = cost.strip_prefix("rho = ").unwrap().parse().unwrap();
    assert!(rho > 0.08 && rho < 0.125, "{cost}");
    // Without a size, a relative target is an error naming the field.
    s.run(&["plan", SAMPLE_POLICY, "--target-moe", "reports_by_type=5%"])
        .expect_code(2)
        .stderr_has(&["relative margin needs the table's `expected_cell_size`"]);
}

#[test]
fn zcdp_costs_are_shown_as_epsilon_delta_at_a_stated_delta() {
    let s = sample_without_data();
    // The sample's sum priced in epsilon instead (the same share of the budget: epsilon^2 / 2 =
    // 0.125 and 0.005), so that a pure-DP cost is shown too.
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(
        &policy,
        "cost = { rho = 0.125 }",
        "cost = { epsilon = 0.5 }\nmechanism = \"laplace\"",
    );
    let policy = replace_once(
        &policy,
        "contributors_cost = { rho = 0.005 }",
        "contributors_cost = { epsilon = 0.1 }",
    );
    s.write(SAMPLE_POLICY, &policy);
    let run = s.run(&["plan", SAMPLE_POLICY, "--delta", "1e-6"]);
    // rho = 0.05 is epsilon = 1.4716 at delta = 1e-6 by opendp's conversion, tighter than the
    // textbook bound rho + 2 sqrt(rho ln(1/delta)) = 1.712.
    run.expect_code(0).stdout_has(&[
        "rho=0.05           ±6 (95%)  ε=1.471595 at δ=1e-6",
        "epsilon=0.5      ±1438 (95%)  ε=0.5 (pure)",
        // A sum's count of contributors has its own row, and counts in the total.
        "  contributors               count of units               17  4 rows/unit (enforced)         discrete laplace           L1=4     40.000  epsilon=0.1      ±120 (95%)  ε=0.1 (pure)",
        "total cost: rho=0.39 (composed by opendp); as (ε, δ): ε=4.53945",
    ]);
    // Without a delta (a zCDP budget has none), the plan says how to see it.
    s.run(&["plan", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["add --delta D to see it as (ε, δ)"]);
    s.run(&["plan", SAMPLE_POLICY, "--delta", "2"])
        .expect_code(2)
        .stderr_has(&["--delta must be strictly between 0 and 1"]);
}

#[test]
fn bad_targets_are_refused_naming_them() {
    let s = sample_without_data();
    s.run(&["plan", SAMPLE_POLICY, "--target-moe", "victims_by_regon=3"])
        .expect_code(2)
        .stderr_has(&[
            "no table `victims_by_regon`",
            "did you mean `victims_by_region`?",
        ]);
    for bad in ["0", "-2", "x", "victims_by_age=1.5"] {
        s.run(&["plan", SAMPLE_POLICY, &format!("--target-moe={bad}")])
            .expect_code(2)
            .stderr_has(&["the margin must be a whole number of at least 1"]);
    }
}

#[test]
fn plan_warns_when_the_margin_exceeds_the_expected_cell_size() {
    let s = sample_without_data();
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(
        &policy,
        "name = \"victims_by_region_age\"   # the table with small cells: suppression matters here\n",
        "name = \"victims_by_region_age\"\nexpected_cell_size = 4\n",
    );
    let policy = replace_once(
        &policy,
        "name = \"victims_by_gender\"\n",
        "name = \"victims_by_gender\"\nexpected_cell_size = 5000\n",
    );
    s.write(SAMPLE_POLICY, &policy);
    let run = s.run(&["plan", SAMPLE_POLICY]);
    run.expect_code(0).stdout_has(&[
        "warning: `victims_by_region_age`: its margin of error ±6 is larger than the cell size you expect (4)",
    ]);
    assert!(!run.stdout().contains("warning: `victims_by_gender`"));
    let bad = replace_once(&policy, "expected_cell_size = 4", "expected_cell_size = 0");
    s.write(SAMPLE_POLICY, &bad);
    s.run(&["plan", SAMPLE_POLICY])
        .expect_code(2)
        .stderr_has(&["field `expected_cell_size`: must be at least 1"]);
}
