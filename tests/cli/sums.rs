//! A sum's noisy count of contributors: what decides its suppression and flags, published beside
//! it, charged with it.

use crate::common::*;

/// Kind `a`: 3 people with 2 rows of 100 each (a large sum, few contributors); `b`: 200 people
/// with 0 (a zero sum, many contributors); `c`: 50 people with 10.
fn people() -> String {
    let mut rows = String::from("pid,kind,amount\n");
    for p in 0..3 {
        rows.push_str(&format!("a{p},a,100\na{p},a,100\n"));
    }
    for p in 0..200 {
        rows.push_str(&format!("b{p},b,0\n"));
    }
    for p in 0..50 {
        rows.push_str(&format!("c{p},c,10\n"));
    }
    rows
}

const SUM: &str = r#"
[[table]]
name = "amount"
input = "people"
statistic = "sum"
column = "amount"
clamp = [0, 100]
max_rows_per_unit = 2
by = ["kind"]
cost = { rho = 1e6 }
contributors_cost = { rho = 1e6 }
suppress_below = 10
shares = true
"#;

/// Costs this large leave almost no noise: sigma = 200 / sqrt(2e6) = 0.14 for the sum and
/// sqrt(2) / sqrt(2e6) = 0.001 for the count, margins of 0. Each check is `|published - exact| <=
/// published margin`, which fails only when a draw is not 0: P < 2 exp(-1 / (2 * 0.14^2)) = 3e-11
/// per cell, so the test fails by chance with probability below 1e-10.
#[test]
fn a_large_sum_with_few_contributors_is_suppressed_and_a_zero_sum_with_many_is_not() {
    let s = Scratch::new();
    s.write("people.csv", &people());
    s.write("policy.toml", &ledger_policy("r", "{ rho = 1e7 }", SUM));
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/r/amount.csv"));
    let m = manifest(&s.path("releases/r"));
    let t = &m["tables"][0];
    let c = &t["contributors"];
    let (moe, c_moe) = (
        t["margin_of_error"].as_i64().unwrap(),
        c["margin_of_error"].as_i64().unwrap(),
    );
    assert!(moe <= 1 && c_moe <= 1, "{t}");
    let near = |text: &str, exact: i64, margin: i64| {
        (text.parse::<i64>().unwrap() - exact).abs() <= margin
    };
    // `a`: a sum of 600 from 3 people is suppressed, and so is its count.
    assert_eq!(
        (rows[0]["value"].as_str(), rows[0]["status"].as_str()),
        ("", "suppressed")
    );
    assert_eq!(rows[0]["contributors"], "");
    // `b`: a zero sum from 200 people is published with its count.
    assert_eq!(rows[1]["status"], "published");
    assert!(near(&rows[1]["value"], 0, moe), "{:?}", rows[1]);
    assert!(near(&rows[1]["contributors"], 200, c_moe), "{:?}", rows[1]);
    assert!(near(&rows[2]["value"], 500, moe) && near(&rows[2]["contributors"], 50, c_moe));
    assert_eq!(rows[1]["contributors_moe95"], c_moe.to_string());
    // Shares are of the table's whole total, the suppressed cell's value included (it adds up
    // with the published cells), and a suppressed cell shows none.
    assert_eq!(rows[0]["share_pct"], "");
    let total = t["shares"]["total"].as_i64().unwrap();
    assert!((total - 1100).abs() <= 3 * moe.max(1), "{total}");
    let share: f64 = rows[2]["share_pct"].parse().unwrap();
    let value: f64 = rows[2]["value"].parse().unwrap();
    assert!((share - 100.0 * value / total as f64).abs() <= 0.05 + 1e-9);
    // The manifest says what decided, and what the count costs.
    assert_eq!(
        t["suppression"]["decided_on"],
        "noisy counts of contributors"
    );
    assert_eq!(t["suppression"]["cells_suppressed"], 1);
    // opendp's map reports at most the declared cost (a few parts in 10^13 below it).
    let about = |v: &serde_json::Value, x: f64| {
        let v = v.as_f64().unwrap();
        v <= x && v > x * (1.0 - 1e-9)
    };
    assert!(about(&c["privacy_cost"]["rho"], 1e6), "{c}");
    assert!(about(&t["privacy_cost"]["rho"], 1e6), "{t}");
    // Both measurements are charged: the ledger's total is their composition.
    let b = budget_json(&s);
    assert!(about(&b["spent"], 2e6), "{b}");
    assert!(about(&m["total_cost"]["rho"], 2e6));
}

/// Without `contributors_cost` a sum must not suppress, and is never flagged on its noisy value.
#[test]
fn a_sum_without_its_contributors_suppresses_nothing_and_flags_nothing() {
    let s = Scratch::new();
    s.write("people.csv", &people());
    let table = SUM
        .once("contributors_cost = { rho = 1e6 }\n", "")
        .once("cost = { rho = 1e6 }", "cost = { rho = 1e-4 }");
    s.write("policy.toml", &ledger_policy("r", "{ rho = 1 }", &table));
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["field `contributors_cost`", "suppress_below = 0"]);
    s.write(
        "policy.toml",
        &ledger_policy(
            "r",
            "{ rho = 1 }",
            &table.once("suppress_below = 10", "suppress_below = 0"),
        ),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/r/amount.csv"));
    // A margin in the thousands against values of at most 600: every cell published, none
    // flagged, and no contributors columns.
    assert!(
        rows.iter()
            .all(|r| r["status"] == "published" && r["flag"].is_empty())
    );
    assert!(!rows[0].contains_key("contributors"));
    let m = manifest(&s.path("releases/r"));
    assert!(m["tables"][0]["reliability"]["unreliable_above"].is_null());
    assert!(m["tables"][0].get("contributors").is_none());
}
