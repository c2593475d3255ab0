//! Exact tables against a respondent who knows its own contributions (issue 24's insider): a
//! released pattern is attacked by an integer program of this test's own (good_lp on microlp),
//! from the published files and, for each respondent, its own contribution to the cell it is in.

use crate::common::*;
use good_lp::{Expression, ProblemVariables, Solution, SolverModel, microlp, variable};

const REGIONS: [&str; 2] = ["r1", "r2"];
const KINDS: [&str; 3] = ["a", "b", "c"];

/// Per inner cell (region-major), its respondents' contributions: r1,a and r1,b one respondent
/// each (500 and 300: small cells), the others many.
fn contributions() -> Vec<Vec<i64>> {
    vec![
        vec![500],
        vec![300],
        vec![200; 10],
        vec![140; 5],
        vec![150; 6],
        vec![250; 6],
    ]
}

fn data() -> String {
    let mut rows = String::from("pid,region,kind,amount\n");
    let mut id = 0;
    for (i, cell) in contributions().iter().enumerate() {
        for &x in cell {
            id += 1;
            // Two rows per respondent: its contribution is their sum.
            rows.push_str(&format!(
                "p{id},{},{},{}\n",
                REGIONS[i / 3],
                KINDS[i % 3],
                x - x / 3
            ));
            rows.push_str(&format!(
                "p{id},{},{},{}\n",
                REGIONS[i / 3],
                KINDS[i % 3],
                x / 3
            ));
        }
    }
    rows
}

const POLICY: &str = r#"
[release]
id = "insiders"
[dataset]
name = "insiders"
privacy_unit = "pid"
budget = { rho = 1 }
[inputs.people]
path = "people.csv"
[categories]
region = ["r1", "r2"]
kind = ["a", "b", "c"]
[[table]]
name = "amount"
input = "people"
statistic = "sum"
column = "amount"
by = ["region", "kind"]
protection = "suppression"
primary = { min_frequency = 3 }
interval_percent = 20
"#;

/// The inner cells (region-major) under grid point `(r, k)` of the 2 x 3 table with margins
/// (region 2 and kind 3 are the totals).
fn under(r: usize, k: usize) -> Vec<usize> {
    (0..6)
        .filter(|i| (r == 2 || i / 3 == r) && (k == 3 || i % 3 == k))
        .collect()
}

/// The least and greatest whole-number value of inner cell `target` over every 2 x 3 table that
/// agrees with the `published` grid (`None` where hidden; region-major with totals last) and in
/// which inner cell `known.0` is at least `known.1` (the respondent's own contribution).
fn attack(published: &[Vec<Option<i64>>], target: usize, known: (usize, i64)) -> (i64, i64) {
    let solve = |maximise: bool| -> i64 {
        let mut vars = ProblemVariables::new();
        let x: Vec<_> = (0..6)
            .map(|i| {
                let least = if i == known.0 { known.1 } else { 0 };
                vars.add(variable().integer().min(least as f64).max(1e6))
            })
            .collect();
        let objective: Expression = x[target].into();
        let problem = if maximise {
            vars.maximise(objective)
        } else {
            vars.minimise(objective)
        };
        let mut model = problem.using(microlp);
        for (r, row) in published.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                let Some(v) = *v else { continue };
                let sum: Expression = under(r, k).iter().map(|&i| x[i]).sum();
                model = model.with(sum.eq(v as f64));
            }
        }
        let solution = model.solve().expect("the true table agrees");
        solution.value(x[target]).round() as i64
    };
    (solve(false), solve(true))
}

/// The protection levels of a small cell of `v` at 20%.
fn levels(v: i64) -> (i64, i64) {
    let up = ((v as f64 * 0.2).ceil() as i64).max(1);
    (v.min(up), up)
}

/// Issue 24's case: the least pattern against an outsider hides r1,a and r1,b with r2,a and
/// r2,b, and r1,a's respondent, subtracting its own 500 from r1's a + b = 800, learns r1,b = 300.
/// The release hides more: no respondent narrows the other small cell below its levels, the
/// manifest says who the pattern is proven against, and `audit` (the outsider) passes.
#[test]
fn a_respondent_cannot_subtract_its_way_into_another_small_cell() {
    let truth: Vec<i64> = contributions().iter().map(|c| c.iter().sum()).collect();
    let grid = |hidden: &[usize]| -> Vec<Vec<Option<i64>>> {
        (0..3)
            .map(|r| {
                (0..4)
                    .map(|k| {
                        let cells = under(r, k);
                        let single = cells.len() == 1 && hidden.contains(&cells[0]);
                        (!single).then(|| cells.iter().map(|&i| truth[i]).sum())
                    })
                    .collect()
            })
            .collect()
    };
    // This attacker opens the outsider's least pattern.
    let rectangle = grid(&[0, 1, 3, 4]);
    let (_, hi) = attack(&rectangle, 1, (0, 500));
    assert_eq!(hi, 300, "r1,b pinned from above by r1,a's respondent");

    let s = Scratch::new();
    s.write("people.csv", &data());
    s.write("policy.toml", POLICY);
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/insiders/amount.csv"));
    let mut published = vec![vec![None; 4]; 3];
    for row in &rows {
        let r = ["r1", "r2", "total"]
            .iter()
            .position(|x| *x == row["region"])
            .unwrap();
        let k = ["a", "b", "c", "total"]
            .iter()
            .position(|x| *x == row["kind"])
            .unwrap();
        published[r][k] = row["value"].parse::<i64>().ok();
        if let Some(v) = published[r][k] {
            // Published values are the exact sums.
            assert_eq!(
                v,
                under(r, k).iter().map(|&i| truth[i]).sum::<i64>(),
                "{row:?}"
            );
        }
    }
    let hidden: Vec<usize> = (0..6)
        .filter(|&i| published[i / 3][i % 3].is_none())
        .collect();
    assert!(hidden.contains(&0) && hidden.contains(&1), "{hidden:?}");
    assert!(
        rows.iter().filter(|r| r["value"].is_empty()).count() > 4,
        "more than the outsider's rectangle"
    );
    for &i in &hidden {
        // Its largest respondent, who knows the most of it.
        let own = *contributions()[i].iter().max().unwrap();
        for target in [0usize, 1].into_iter().filter(|&t| t != i) {
            let (lo, hi) = attack(&published, target, (i, own));
            let (down, up) = levels(truth[target]);
            assert!(
                lo <= truth[target] - down && hi >= truth[target] + up,
                "the respondent of cell {i} narrows cell {target} ({}) to {lo}..{hi}",
                truth[target]
            );
        }
    }
    let m = manifest(&s.path("releases/insiders"));
    assert!(
        m["exact_tables"][0]["attacker"]
            .as_str()
            .unwrap()
            .contains("its own contribution to every cell it is in"),
        "{}",
        m["exact_tables"][0]
    );
    assert_eq!(m["manifest_format"], 9);
    s.run(&["audit", "releases/insiders"]).expect_code(0);
    s.run(&["verify", "releases/insiders"]).expect_code(0);
}
