//! Contribution bounding as a release shows it: near-exact noise lets the bounded exact cells
//! show through.

use crate::common::*;

#[test]
fn a_unit_with_fifty_rows_contributes_only_k_random_rows() {
    // At rho = 1e9 the noise shows the bounded exact cells: the discrete Gaussian's scale is
    // sigma = sensitivity / sqrt(2 rho), at most 200 * sqrt(3) / sqrt(2e9) < 0.008 (the sums'),
    // so a cell moves by 1 or more with probability below 2 exp(-1 / (2 sigma^2)) < 1e-3000; the
    // 8 runs' 1,200 cells together fail far below 1e-6.
    let s = heavy_and_light("light,c0,3\n", "1e9");
    let mut first_four_every_time = true;
    for run in 0..8 {
        let out = format!("r{run}");
        s.run(&["release", "policy.toml", "--out", &out, "--new-version"])
            .expect_code(0);
        let value = |table: &str| -> Vec<i64> {
            read_csv(&s.path(&format!("{out}/{table}.csv")))
                .iter()
                .map(|r| r["value"].parse().unwrap())
                .collect()
        };
        let rows = value("rows");
        // heavy keeps 4 of its 50 rows, light its 1.
        assert_eq!(rows.iter().sum::<i64>(), 5, "{rows:?}");
        let kept: Vec<usize> = (1..50).filter(|&c| rows[c] > 0).collect();
        if !kept.iter().all(|&c| c < 4) {
            first_four_every_time = false;
        }
        let units = value("units");
        assert_eq!(
            units.iter().sum::<i64>(),
            3,
            "two cells for heavy, one for light: {units:?}"
        );
        let sums = value("sums");
        // 3 rows of 1000 clamped to 200, plus light's 3.
        assert_eq!(sums.iter().sum::<i64>(), 603, "{sums:?}");
    }
    // Kept rows are random, not the first k: the chance that 8 uniform draws of 4 out of 50
    // rows all fall in rows 0-3 is below 1e-40.
    assert!(
        !first_four_every_time,
        "the first rows were kept every time"
    );
}

#[test]
fn aggregated_input_is_summed_per_cell_and_marked_declared() {
    let s = Scratch::new();
    s.write("agg.csv", "cell,n\nc1,5\nc1,7\nc3,40\n");
    // Two rows for one cell would count their people twice: refused unless declared.
    s.write("policy.toml", &aggregated_policy("1e9"));
    expect_refused(
        &s,
        &[
            "agg.csv:3",
            "a second row for the cell cell = `c1` (first at line 2)",
            "duplicates = \"add\"",
        ],
    );
    s.write(
        "policy.toml",
        &replace_once(
            &aggregated_policy("1e9"),
            "count_column = \"n\"\n",
            "count_column = \"n\"\nduplicates = \"add\"\n",
        ),
    );
    s.run(&["release", "policy.toml", "--out", "rel"])
        .expect_code(0)
        .stdout_has(&[
            "`agg` reads pre-counted input",
            "only if the declared bound holds",
        ]);
    let rows = read_csv(&s.path("rel/agg.csv"));
    assert_eq!(
        (
            rows[1]["value"].as_str(),
            rows[3]["value"].as_str(),
            rows[0]["value"].as_str()
        ),
        ("12", "40", "0")
    );
    let m = manifest(&s.path("rel"));
    assert_eq!(m["tables"][0]["contribution_bounds"]["status"], "declared");
    assert_eq!(
        m["tables"][0]["protection"],
        "differential_privacy_if_declared_bounds_hold"
    );
    assert!(
        m["tables"][0]["guarantee"]
            .as_str()
            .unwrap()
            .contains("only if the declared contribution bounds hold"),
        "{m}"
    );
    assert_eq!(m["inputs"][0]["kind"], "aggregated");
    assert_eq!(m["inputs"][0]["contribution_bounds"], "declared");
}

/// Regression: a total row mapped into a declared cell by `[catch_all]` was added to that
/// cell, counting its people twice against a declared bound of one cell per person.
#[test]
fn a_total_row_folded_into_a_cell_by_the_catch_all_is_refused() {
    let s = Scratch::new();
    s.write("agg.csv", "cell,n\nc1,5\nc2,7\nc49,3\nTotal,15\n");
    s.write(
        "policy.toml",
        &replace_once(
            &aggregated_policy("1e9"),
            "[defaults]",
            "[catch_all]\ncell = \"c49\"\n\n[defaults]",
        ),
    );
    expect_refused(
        &s,
        &[
            "agg.csv:5",
            "a second row for the cell cell = `c49` (first at line 4)",
        ],
    );
}

/// Finding 3: sums were added in i64 without overflow checks, so a wide clamp let the cell wrap
/// around (4,096 units of 2^52 summed to 2^64, published as about 0). Sums are exact in i128
/// and saturate at the ends of i64, which keeps the sensitivity.
#[test]
fn a_sum_beyond_i64_saturates_instead_of_wrapping() {
    let s = Scratch::new();
    let mut rows = String::from("pid,kind,amount\n");
    for i in 0..4096 {
        rows += &format!("{i},a,{}\n", 1u64 << 52);
    }
    s.write("people.csv", &rows);
    let table = r#"
[[table]]
name = "amount"
input = "people"
statistic = "sum"
column = "amount"
clamp = [0, 4503599627370496]
max_rows_per_unit = 1
by = ["kind"]
cost = { epsilon = 1e12 }
suppress_below = 0
"#;
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ epsilon = 1e12 }", table),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let rows = read_csv(&s.path("releases/r/amount.csv"));
    // Laplace noise of scale 2^52 / 1e12 (about 4,500) cannot move i64::MAX below 2^62.
    let a: i64 = rows[0]["value"].parse().unwrap();
    assert!(a > 1 << 62, "the sum wrapped: {a}");
    // A clamp whose worst case is no exact float is refused before anything is read.
    s.write(
        "policy.toml",
        &replace_once(
            &ledger_policy("r", "{ epsilon = 1e12 }", table),
            "max_rows_per_unit = 1",
            "max_rows_per_unit = 4",
        ),
    );
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["field `clamp`", "more than 2^53"]);
}

/// `check` tells the officer what each bound drops and each clamp cuts, exactly (the figures
/// below do not depend on which rows are kept), read in memory or spilled to disk, and writes
/// nothing.
#[test]
fn check_counts_the_rows_each_bound_drops_and_the_values_each_clamp_cuts() {
    let s = heavy_and_light("light,c0,3\nlight,c0,-5\nlight,c0,150\n", "1");
    for args in [
        &["check", "policy.toml"][..],
        &["check", "policy.toml", "--memory-limit", "0"],
    ] {
        let run = s.run(args);
        run.expect_code(0);
        let line = |table: &str| {
            run.stdout()
                .lines()
                .find(|l| l.trim_start().starts_with(table) && l.contains("max_"))
                .unwrap_or_else(|| panic!("no line for `{table}` in {}", run.stdout()))
                .to_string()
        };
        // heavy keeps 4 of its 50 rows (in 4 cells), light its 3, all in c0, of which one.
        assert!(
            line("rows").contains(
                "max_rows_per_unit = 4 drops 46 (86.79%) of 53 rows; max_rows_per_cell = 1 drops 2 (3.77%) more"
            ),
            "{}",
            line("rows")
        );
        assert!(
            line("sums").contains(
                "max_rows_per_unit = 3 drops 47 (88.68%) of 53 rows; clamp [0, 200] cuts 1 (1.89%) values below 0 and 50 (94.34%) above 200"
            ),
            "{}",
            line("sums")
        );
        assert!(
            line("units")
                .contains("max_cells_per_unit = 2 (the cells a unit loses are not counted)")
        );
    }
    assert_eq!(s.entries(), ["policy.toml", "rows.csv"]);
}

/// An input large enough that the release files its rows in several partitions and counts each
/// in several groups (the sizes a user gets: 400,000 rows, 5.6 MB), with every unit's rows
/// scattered through the file: each of 100,000 units has 1 to 7 rows, in as many cells. `check`
/// finds every unit once and drops exactly the rows beyond 4 per unit, and the near-exact
/// release's tables add up to what the bounds keep, filed or streamed (`SAFESTAT_FILING_MIB=0`).
/// The noise: as in `a_unit_with_fifty_rows_contributes_only_k_random_rows`, no cell of the
/// 3 x 50 moves by 1 or more but with probability below 1e-3000.
#[test]
fn rows_filed_by_unit_meet_their_units_at_scale() {
    let s = Scratch::new();
    let units = 100_000usize;
    let rows_of = |u: usize| 1 + u % 7;
    let mut all: Vec<(usize, usize)> = (0..units)
        .flat_map(|u| (0..rows_of(u)).map(move |j| (u, j)))
        .collect();
    // Scattered: a fixed permutation of the rows.
    let n = all.len();
    all = (0..n).map(|i| all[(i * 7_919) % n]).collect();
    assert_ne!(
        n % 7_919,
        0,
        "7,919 is prime: i * 7,919 mod n permutes the rows"
    );
    let mut data = String::from("pid,cell,x\n");
    for &(u, j) in &all {
        data += &format!("p{u},c{},1\n", (u + j) % 50);
    }
    s.write("rows.csv", &data);
    s.write("policy.toml", &near_exact_policy(&three_tables("1e9")));
    let kept = |k: usize| (0..units).map(|u| rows_of(u).min(k) as i64).sum::<i64>();
    let dropped = n as i64 - kept(4);
    let check = s.run(&["check", "policy.toml"]);
    check.expect_code(0).stdout_has(&[
        &format!("{n} rows, microdata, {units} distinct `pid`"),
        &format!(
            "max_rows_per_unit = 4 drops {}",
            safestat::privacy::thousands(dropped)
        ),
    ]);
    for (run, filing) in [(0, "1024"), (1, "0")] {
        let out = format!("r{run}");
        s.run_with(
            &["release", "policy.toml", "--out", &out, "--new-version"],
            &[("SAFESTAT_FILING_MIB", filing)],
        )
        .expect_code(0);
        let total = |table: &str| -> i64 {
            read_csv(&s.path(&format!("{out}/{table}.csv")))
                .iter()
                .map(|r| r["value"].parse::<i64>().unwrap())
                .sum()
        };
        assert_eq!(
            (total("rows"), total("units"), total("sums")),
            (kept(4), kept(2), kept(3)),
            "filing budget {filing} MiB"
        );
    }
}

/// A unit `heavy` with 50 rows (one in each of cells c0..c49, each of 1000), then `light_rows`,
/// in `rows.csv`; and [`three_tables`] of it at cost `{ rho = cost }`.
fn heavy_and_light(light_rows: &str, cost: &str) -> Scratch {
    let s = Scratch::new();
    let mut rows = String::from("pid,cell,x\n");
    for i in 0..50 {
        rows += &format!("heavy,c{i},1000\n");
    }
    rows += light_rows;
    s.write("rows.csv", &rows);
    s.write("policy.toml", &near_exact_policy(&three_tables(cost)));
    s
}

/// Three tables by `cell` of the input `rows` (unit `pid`), each at cost `{ rho = cost }`:
/// `rows` (count_rows, 4 rows a unit, 1 a cell), `units` (count_units, 2 cells a unit), `sums`
/// (sum of x clamped to [0, 200], 3 rows a unit).
fn three_tables(cost: &str) -> String {
    r#"
[[table]]
name = "rows"
input = "rows"
statistic = "count_rows"
by = ["cell"]
max_rows_per_unit = 4
max_rows_per_cell = 1
cost = { rho = COST }

[[table]]
name = "units"
input = "rows"
statistic = "count_units"
by = ["cell"]
max_cells_per_unit = 2
cost = { rho = COST }

[[table]]
name = "sums"
input = "rows"
statistic = "sum"
column = "x"
clamp = [0, 200]
max_rows_per_unit = 3
by = ["cell"]
cost = { rho = COST }
"#
    .replace("COST", cost)
}
