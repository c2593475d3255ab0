//! Tests of the SQL sources against real servers: a throwaway PostgreSQL cluster of the tests'
//! own (`tests/support/pg.rs`) and a local Spark Connect server (`tests/support/spark.rs`), each
//! test run against every engine this build has a client for. These reach the exact cells,
//! which only a test may see: nothing here goes through a release.

use super::answer::Masker;
use super::*;
use crate::hash::{Fingerprint, sha256_hex};
use crate::input::{Count, Counted, ReadOptions, read_input_with};
use crate::policy::{PolicyFile, validate};

#[cfg(feature = "postgres")]
#[path = "../../../tests/support/pg.rs"]
mod pg;
#[path = "../../../tests/support/process.rs"]
mod process;
#[cfg(feature = "spark")]
#[path = "../../../tests/support/spark.rs"]
mod spark_server;

/// Where a test's rows are: a database `t` table of the PostgreSQL cluster, or a Spark query.
enum Source {
    #[cfg(feature = "postgres")]
    Pg(String),
    #[cfg(feature = "spark")]
    Spark(String),
}

/// A plan whose input `in` is `path = "in.csv"` or `source` (the server's connection string in
/// a variable of the test's own), with `body` (categories and tables) appended.
fn plan(dir: &Path, source: Option<&Source>, body: &str) -> Plan {
    plan_by(dir, source, body, "id")
}

/// [`plan`] with privacy unit column `unit`.
fn plan_by(dir: &Path, source: Option<&Source>, body: &str, unit: &str) -> Plan {
    // Each read its own variable, so that tests running at once never mix them.
    static VARS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let var = format!(
        "SAFESTAT_TEST_SOURCE_{}",
        VARS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let input = match source {
        #[cfg(feature = "postgres")]
        Some(Source::Pg(db)) => {
            // SAFETY: every test sets only its own variable, before reading it.
            unsafe { std::env::set_var(&var, pg::cluster().admin_url(db)) };
            format!("sql = {{ url_env = \"{var}\", table = \"t\" }}")
        }
        #[cfg(feature = "spark")]
        Some(Source::Spark(query)) => {
            // SAFETY: as above.
            unsafe { std::env::set_var(&var, spark_server::server().url()) };
            format!("spark = {{ url_env = \"{var}\", query = \"{query}\" }}")
        }
        None => "path = \"in.csv\"".to_string(),
    };
    let text = format!(
        "[release]\nid = \"r\"\n[dataset]\nname = \"d\"\nprivacy_unit = \"{unit}\"\nbudget = {{ rho = 1.0 }}\n[inputs.in]\n{input}\n{body}"
    );
    let path = dir.join("p.toml");
    validate(PolicyFile::parse(&text, &path).unwrap(), &path).unwrap()
}

use std::path::Path;

/// Reads every table of input 0, as a release does.
fn read(plan: &Plan) -> InputResult {
    read_asked(plan, false, false)
}

/// Reads every table of input 0, fingerprinted in the legacy scheme too if `legacy`, counting
/// the distinct units if `units` (as `check` does).
fn read_asked(plan: &Plan, legacy: bool, units: bool) -> InputResult {
    let tables: Vec<Count> = plan.tables.iter().map(Count::of).collect();
    let options = ReadOptions {
        threads: 2,
        min_chunk_bytes: 1 << 20,
        memory_limit: u64::MAX,
        filing_budget: u64::MAX,
        progress: false,
        bounding_effect: false,
        legacy_fingerprints: legacy,
        distinct_units: units,
    };
    read_input_with(plan, 0, &tables, options).unwrap_or_else(|e| panic!("{e}"))
}

/// `data` as `in.csv` in `dir` and in `engine`: table `t` of a fresh database, or a query
/// over a headerless copy.
fn load(engine: Engine, dir: &Path, data: &str, integers: &[&str]) -> Source {
    std::fs::write(dir.join("in.csv"), data).unwrap();
    match engine {
        #[cfg(feature = "postgres")]
        Engine::Postgres => {
            let c = pg::cluster();
            let db = c.fresh_database();
            c.load_csv(&db, "t", &dir.join("in.csv"), integers);
            Source::Pg(db)
        }
        #[cfg(feature = "spark")]
        Engine::Spark => Source::Spark(spark_server::Server::csv_query(
            dir, "spark", data, integers,
        )),
        #[allow(unreachable_patterns)]
        _ => unreachable!("no client for {}", engine.name()),
    }
}

/// Declares `$name` a test of every engine this build has a client for, each running
/// `$body(engine)`.
macro_rules! each_engine {
    ($name:ident, $body:ident) => {
        mod $name {
            #[cfg(feature = "postgres")]
            #[test]
            fn postgres() {
                super::$body(crate::policy::Engine::Postgres);
            }
            #[cfg(feature = "spark")]
            #[test]
            fn spark() {
                super::$body(crate::policy::Engine::Spark);
            }
        }
    };
}

each_engine!(
    exact_cells_equal_the_csv_path_when_bounds_bind_nobody,
    exact_cells_equal_the_csv_path
);

/// With bounds that bind nobody, every table's exact cells from SQL equal the CSV path's: on the
/// sample data, and on values that only match a category after Unicode NFC or fall to the
/// catch-all.
fn exact_cells_equal_the_csv_path(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/disung_2024_victims.csv"),
    )
    .unwrap();
    let db = load(engine, dir.path(), &sample, &["services"]);
    let body = r#"
        [categories]
        gender = ["female", "male"]
        age_group = ["under_10", "10s", "20s", "30s", "40s", "50_plus", "unknown"]
        victim_type = ["distribution_fear", "illegal_filming", "distribution", "distribution_threat", "synthesis", "grooming", "sextortion", "harassment", "other"]
        region = ["seoul", "busan", "daegu", "incheon", "gwangju", "daejeon", "ulsan", "sejong", "gyeonggi", "gangwon", "chungbuk", "chungnam", "jeonbuk", "jeonnam", "gyeongbuk", "gyeongnam", "jeju"]
        [[table]]
        name = "units_gender_age"
        input = "in"
        statistic = "count_units"
        by = ["gender", "age_group"]
        max_cells_per_unit = 14
        cost = { rho = 0.1 }
        [[table]]
        name = "units_region"
        input = "in"
        statistic = "count_units"
        by = ["region"]
        max_cells_per_unit = 17
        cost = { rho = 0.1 }
        [[table]]
        name = "rows_type"
        input = "in"
        statistic = "count_rows"
        by = ["victim_type"]
        max_rows_per_unit = 1000
        max_rows_per_cell = 1000
        cost = { rho = 0.1 }
        [[table]]
        name = "sum_region_gender"
        input = "in"
        statistic = "sum"
        contributors_cost = { rho = 0.01 }
        column = "services"
        clamp = [-1000000, 1000000]
        max_rows_per_unit = 1000
        by = ["region", "gender"]
        cost = { rho = 0.1 }
        [[table]]
        name = "rows_total"
        input = "in"
        statistic = "count_rows"
        max_rows_per_unit = 1000
        cost = { rho = 0.1 }
    "#;
    let from_csv = read(&plan_by(dir.path(), None, body, "victim_id"));
    let from_sql = read(&plan_by(dir.path(), Some(&db), body, "victim_id"));
    assert_eq!(from_sql.counted, from_csv.counted);
    assert_eq!(from_sql.rows, from_csv.rows);
    // The distinct units only when asked (by `check`): a release has no use for them.
    assert_eq!(from_sql.units, None);
    let as_check = read_asked(
        &plan_by(dir.path(), Some(&db), body, "victim_id"),
        false,
        true,
    );
    assert_eq!(
        (as_check.units, as_check.counted),
        (from_csv.units, from_csv.counted.clone())
    );
    assert!(from_csv.counted[3].values().iter().any(|&c| c > 0));
    let record = from_sql.sql.expect("an SQL read record");
    assert!(
        record.engine.starts_with(engine.name()),
        "{}",
        record.engine
    );
    assert_eq!(
        record.relation,
        plan_by(dir.path(), Some(&db), body, "victim_id").inputs[0]
            .sql
            .as_ref()
            .unwrap()
            .relation
            .describe()
    );
    // The statements recorded are exactly those `safestat sql` prints.
    let by_id = plan_by(dir.path(), Some(&db), body, "victim_id");
    let counts: Vec<Count> = by_id.tables.iter().map(Count::of).collect();
    let printed: Vec<String> = script(&by_id, 0, &counts, false)
        .iter()
        .map(|s| sha256_hex(s.sql.as_bytes()))
        .collect();
    assert_eq!(record.statements, printed);

    // Decomposed Hangul (NFD) of a declared category, and an undeclared value to the catch-all.
    let nfd = "\u{1109}\u{1165}\u{110B}\u{116E}\u{11AF}"; // 서울, decomposed
    let data = format!("id,city,v\na,{nfd},3\nb,서울,4\nc,부산,5\nd,other place,6\ne,기타,7\n");
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = load(engine, dir2.path(), &data, &["v"]);
    let body2 = r#"
        [categories]
        city = ["서울", "부산", "기타"]
        [catch_all]
        city = "기타"
        [[table]]
        name = "units"
        input = "in"
        statistic = "count_units"
        by = ["city"]
        max_cells_per_unit = 3
        cost = { rho = 0.1 }
        [[table]]
        name = "sums"
        input = "in"
        statistic = "sum"
        contributors_cost = { rho = 0.01 }
        column = "v"
        clamp = [0, 100]
        max_rows_per_unit = 5
        by = ["city"]
        cost = { rho = 0.1 }
        [[table]]
        name = "rows"
        input = "in"
        statistic = "count_rows"
        by = ["city"]
        max_rows_per_unit = 3
        max_rows_per_cell = 1
        cost = { rho = 0.1 }
    "#;
    let from_csv = read(&plan(dir2.path(), None, body2));
    let from_sql = read(&plan(dir2.path(), Some(&db2), body2));
    // Then the sum's contributors: one unit per row here.
    assert_eq!(
        from_csv.counted,
        vec![
            Counted::Cells(vec![2, 1, 2]),
            Counted::Sum {
                values: vec![7, 5, 13],
                contributors: vec![2, 1, 2]
            },
            Counted::Cells(vec![2, 1, 2]),
        ]
    );
    assert_eq!(from_sql.counted, from_csv.counted);
    assert_eq!(
        from_sql.fingerprint,
        read_fingerprint(dir2.path(), &db2, body2)
    );
    legacy_fingerprint_is_the_earlier_scheme(&plan(dir2.path(), Some(&db2), body2), &db2);
    // One value changed: another fingerprint. Also with a column named `s`, the statements'
    // alias for the relation (which PostgreSQL would take for that column before the row).
    let with_s: String = data
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{l},{}\n", if i == 0 { "s" } else { "x" }))
        .collect();
    for data in [data.clone(), with_s] {
        let fingerprint = |data: &str| {
            let dir = tempfile::tempdir().unwrap();
            read_fingerprint(dir.path(), &load(engine, dir.path(), data, &["v"]), body2).now
        };
        let changed = data.replace("c,부산,5", "c,부산,6");
        assert_ne!(changed, data);
        assert_ne!(fingerprint(&changed), fingerprint(&data), "{data}");
    }

    // A column whose collation ignores case (and, as ICU's do, tells NFD from NFC apart no
    // better): values are still compared byte for byte, as the CSV path compares them. `Seoul`
    // is not `seoul` and falls to the catch-all; NFD 서울 is found undeclared and mapped to 서울
    // as the CSV path maps it; an empty value (NULL here) goes to the catch-all. Units of one
    // value are counted from their aggregates (`a`, `b`, `d`, `e`, `f`, and `h` of NULLs only);
    // `c` (two values the collation calls equal), `g` (NULL and a value) and `i` are ranked,
    // but for the count of rows, which counts every unit of at most 3 rows in all from its
    // cells: `i`'s two undeclared values are one cell, the catch-all, and keep one row there
    // (m = 1), not two.
    // In Spark, the column's collation is its session's default (byte order); the values are
    // the same test.
    let data = format!(
        "id,city,v\na,seoul,1\nb,Seoul,2\nc,seoul,3\nc,SEOUL,4\nd,busan,5\ne,{nfd},6\nf,서울,7\ng,,8\ng,seoul,9\nh,,10\ni,x1,1\ni,x2,1\ni,busan,1\n"
    );
    let dir3 = tempfile::tempdir().unwrap();
    let db3 = load(engine, dir3.path(), &data, &["v"]);
    #[cfg(feature = "postgres")]
    #[allow(irrefutable_let_patterns)]
    if let Source::Pg(db3) = &db3 {
        pg::cluster()
            .connect(db3)
            .batch_execute(
                "CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
                 ALTER TABLE t ALTER COLUMN city TYPE text COLLATE nocase;",
            )
            .unwrap();
    }
    let body3 = body2
        .replace(
            "\"서울\", \"부산\", \"기타\"",
            "\"seoul\", \"busan\", \"서울\", \"other\"",
        )
        .replace("city = \"기타\"", "city = \"other\"");
    let from_csv = read(&plan(dir3.path(), None, &body3));
    let from_sql = read(&plan(dir3.path(), Some(&db3), &body3));
    assert_eq!(from_csv.counted[0], Counted::Cells(vec![3, 2, 2, 5]));
    assert_eq!(from_csv.counted[2], Counted::Cells(vec![3, 2, 2, 5]));
    assert_eq!(from_sql.counted, from_csv.counted);

    // An empty relation: a sum of no dimension is 0 (SQL's sum of no rows is NULL).
    let dir4 = tempfile::tempdir().unwrap();
    let db4 = load(engine, dir4.path(), "id,v\n", &["v"]);
    let body4 = r#"
        [[table]]
        name = "sum_all"
        input = "in"
        statistic = "sum"
        contributors_cost = { rho = 0.01 }
        column = "v"
        clamp = [0, 100]
        max_rows_per_unit = 5
        cost = { rho = 0.1 }
    "#;
    let from_csv = read(&plan(dir4.path(), None, body4));
    let from_sql = read(&plan(dir4.path(), Some(&db4), body4));
    assert_eq!(from_sql.counted, from_csv.counted);
}

/// Read in the legacy scheme too, `plan`'s input (in `db`) has the fingerprint of before
/// 2026-12-05: PostgreSQL's SHA-256 over the relation, its rows and the MD5 digest (computed
/// here by the formula the totals statement used; only when asked, since it costs), Spark's
/// over its unchanged `xxhash64` digest (always); the current one is the same as without.
fn legacy_fingerprint_is_the_earlier_scheme(plan: &Plan, db: &Source) {
    let without = read(plan).fingerprint;
    let with = read_asked(plan, true, false);
    assert_eq!(with.fingerprint.now, without.now);
    let (scheme, hex) = without.now.split_once(':').unwrap();
    let expected = match db {
        #[cfg(feature = "postgres")]
        Source::Pg(db) => {
            assert_eq!(scheme, "postgres-hashtext64");
            let relation = plan.inputs[0].sql.as_ref().unwrap().relation.describe();
            let digest: String = pg::cluster()
                .connect(db)
                .query_one(
                    "SELECT COALESCE(sum(('x' || substr(md5(s::text), 1, 16))::bit(64)::int8), 0)::text FROM t s",
                    &[],
                )
                .unwrap()
                .get(0);
            let legacy =
                sha256_hex(format!("postgres\n{relation}\n{}\n{digest}", with.rows).as_bytes());
            assert_ne!(hex, legacy, "the current scheme is not the legacy one");
            assert_eq!(without.legacy, None);
            legacy
        }
        #[cfg(feature = "spark")]
        Source::Spark(_) => {
            assert_eq!(scheme, "spark-xxhash64");
            assert_eq!(without.legacy.as_deref(), Some(hex));
            hex.to_string()
        }
    };
    assert_eq!(with.fingerprint.legacy, Some(expected));
}

/// The content fingerprint does not depend on the key or the order of reading.
fn read_fingerprint(dir: &Path, db: &Source, body: &str) -> Fingerprint {
    read(&plan(dir, Some(db), body)).fingerprint
}

/// Counts within 6 standard deviations of a binomial mean: the exact two-sided binomial tail
/// beyond them is at most 3.5e-9 per check for the tests' n = 3,000 and p from 1/7 to 5/6
/// (computed in exact rational arithmetic; a normal tail would be 2.0e-9).
fn assert_near(what: &str, got: i128, n: f64, p: f64) {
    let (mean, sd) = (n * p, (n * p * (1.0 - p)).sqrt());
    assert!(
        (got as f64 - mean).abs() <= 6.0 * sd,
        "{what}: {got}, expected {mean} ± 6 × {sd:.1}"
    );
}

each_engine!(
    binding_bounds_keep_at_most_k_and_choose_uniformly,
    binding_bounds_choose_uniformly
);

/// With binding bounds, no unit keeps more than k rows (m per cell, c cells), and what it keeps
/// is uniform: each check is a count of 3,000 independent units, within 6 standard deviations
/// of its binomial mean. 16 such checks: the false-failure probability is below 16 × 3.5e-9 =
/// 5.6e-8 ([`assert_near`]). The last check asks two reads to differ: with fresh keys, the
/// chance that 50 cell counts agree by accident is far below 1e-20.
fn binding_bounds_choose_uniformly(engine: Engine) {
    let units = 3000;
    let mut data = String::from("id,cell,v\n");
    for u in 0..units {
        // Five rows in five cells, two of them identical rows in cell `a` plus three more.
        for cell in ["a", "a", "b", "c", "d"] {
            data.push_str(&format!("u{u},{cell},1\n"));
        }
        // Two rows in the per-unit cell of a 50-cell dimension (for the fresh-key check).
        data.push_str(&format!("u{u},k{},1\n", u % 50));
        data.push_str(&format!("u{u},k{},1\n", (u * 7 + 3) % 50));
    }
    // Units in cell `f` only, with values above the clamp: 1,000 of one row and 1,000 of two
    // identical rows (no choice under most bounds: counted from their aggregates) and 500 of
    // three rows (ranked, but by the counts of rows, which count every unit of one cell). What
    // every bound keeps of them is certain, so `f` is checked exactly.
    for (prefix, units, rows) in [("f", 1000, 1), ("g", 1000, 2), ("h", 500, 3)] {
        for u in 0..units {
            for _ in 0..rows {
                data.push_str(&format!("{prefix}{u},f,5\n"));
            }
        }
    }
    // Units of three rows in two cells, `x`, `x`, `y`: one row over k = 2, so ranked there.
    for u in 0..1000 {
        data.push_str(&format!("z{u},x,1\nz{u},x,1\nz{u},y,1\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = load(engine, dir.path(), &data, &["v"]);
    let cells: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|c| format!("\"{c}\""))
        .chain((0..50).map(|i| format!("\"k{i}\"")))
        .chain(["\"f\"", "\"x\"", "\"y\""].map(String::from))
        .collect();
    let body = format!(
        r#"
        [categories]
        cell = [{}]
        [[table]]
        name = "k2"
        input = "in"
        statistic = "count_rows"
        by = ["cell"]
        max_rows_per_unit = 2
        max_rows_per_cell = 2
        cost = {{ rho = 0.1 }}
        [[table]]
        name = "k7m1"
        input = "in"
        statistic = "count_rows"
        by = ["cell"]
        max_rows_per_unit = 7
        max_rows_per_cell = 1
        cost = {{ rho = 0.1 }}
        [[table]]
        name = "c1"
        input = "in"
        statistic = "count_units"
        by = ["cell"]
        max_cells_per_unit = 1
        cost = {{ rho = 0.1 }}
        [[table]]
        name = "c2"
        input = "in"
        statistic = "count_units"
        by = ["cell"]
        max_cells_per_unit = 2
        cost = {{ rho = 0.1 }}
        [[table]]
        name = "sum_k1"
        input = "in"
        statistic = "sum"
        contributors_cost = {{ rho = 0.01 }}
        column = "v"
        clamp = [0, 1]
        max_rows_per_unit = 1
        by = ["cell"]
        cost = {{ rho = 0.1 }}
        [[table]]
        name = "k6m1"
        input = "in"
        statistic = "count_rows"
        by = ["cell"]
        max_rows_per_unit = 6
        max_rows_per_cell = 1
        cost = {{ rho = 0.1 }}
        [[table]]
        name = "sum_k3m1"
        input = "in"
        statistic = "sum"
        contributors_cost = {{ rho = 0.01 }}
        column = "v"
        clamp = [0, 1]
        max_rows_per_unit = 3
        max_rows_per_cell = 1
        by = ["cell"]
        cost = {{ rho = 0.1 }}
        [[table]]
        name = "sum_k2"
        input = "in"
        statistic = "sum"
        contributors_cost = {{ rho = 0.01 }}
        column = "v"
        clamp = [0, 1]
        max_rows_per_unit = 2
        by = ["cell"]
        cost = {{ rho = 0.1 }}
        "#,
        cells.join(", ")
    );
    let p = plan(dir.path(), Some(&db), &body);
    let r = read(&p);
    let n = f64::from(units);
    // k = 2 of 7 rows: exactly 2 per unit; cell a holds 2 of the 7 rows, b, c, d one each.
    // Cell `f` (index 54): 1 + 2 + 2 rows per unit under k = 2; 1 + 1 + 1 under m = 1 or k = 1;
    // each of the 2,500 units once under c = 1 and c = 2; the sum's values clamped to 1.
    let f = 54;
    let (k2, k7, c1, c2, sum_k1) = (
        r.counted[0].values(),
        r.counted[1].values(),
        r.counted[2].values(),
        r.counted[3].values(),
        r.counted[4].values(),
    );
    assert_eq!(
        [k2[f], k7[f], c1[f], c2[f], sum_k1[f]],
        [4000, 2500, 2500, 2500, 2500]
    );
    assert_eq!(r.counted[4].contributors().unwrap()[f], 2500);
    let (k2, k7, c1, c2, sum_k1) = (&k2[..f], &k7[..f], &c1[..f], &c2[..f], &sum_k1[..f]);
    assert_eq!(k2.iter().sum::<i128>(), 2 * i128::from(units));
    // P(a row is kept) = 2/7; cell a keeps 0, 1 or 2 rows: E = 2 · 2/7 per unit. Check b, c, d
    // (one row each, kept with probability 2/7) and a's count of units keeping both rows
    // indirectly through its total.
    for (i, c) in ["b", "c", "d"].iter().enumerate() {
        assert_near(&format!("k2 cell {c}"), k2[i + 1], n, 2.0 / 7.0);
    }
    // k = 7 keeps every row, m = 1 keeps one row per cell: exact.
    assert_eq!(&k7[..4], &[i128::from(units); 4]);
    // c = 1 of the unit's distinct cells: a, b, c, d and two k-cells (k{u%50} and k{(7u+3)%50}
    // never coincide, since 6u + 3 is odd; the formulas below allow for it). Every unit is
    // counted once.
    assert_eq!(c1.iter().sum::<i128>(), i128::from(units));
    let distinct_k = |u: u32| if u % 50 == (u * 7 + 3) % 50 { 1 } else { 2 };
    let two = (0..units).filter(|&u| distinct_k(u) == 2).count() as f64;
    let one = n - two;
    // a, b, c, d each: P = 1/6 for units with 6 distinct cells, 1/5 for those with 5.
    for (i, c) in ["a", "b", "c", "d"].iter().enumerate() {
        let p_mix = (two / 6.0 + one / 5.0) / n;
        assert_near(&format!("c1 cell {c}"), c1[i], n, p_mix);
    }
    // c = 2 of 5 or 6 distinct cells (the window path; c = 1 takes DISTINCT ON).
    assert_eq!(c2.iter().sum::<i128>(), 2 * i128::from(units));
    for (i, c) in ["a", "b", "c", "d"].iter().enumerate() {
        let p_mix = (two * 2.0 / 6.0 + one * 2.0 / 5.0) / n;
        assert_near(&format!("c2 cell {c}"), c2[i], n, p_mix);
    }
    // k = 1 row of 7: cell a holds two identical rows, so it is kept with probability 2/7 (it
    // would be 1/6 if identical rows shared one priority).
    assert_eq!(sum_k1.iter().sum::<i128>(), i128::from(units));
    assert_near("sum_k1 cell a (identical rows)", sum_k1[0], n, 2.0 / 7.0);
    for (i, c) in ["b", "c", "d"].iter().enumerate() {
        assert_near(&format!("sum_k1 cell {c}"), sum_k1[i + 1], n, 1.0 / 7.0);
    }
    // Its contributors: every unit kept one row, so it contributes to exactly one cell, the one
    // its value went to (each row's value is 1).
    assert_eq!(r.counted[4].contributors().map(|c| &c[..f]), Some(sum_k1));
    // k = 6 of 7 rows, then m = 1 per cell: one row is dropped. Every unit has 6 distinct cells
    // (above): it keeps 6 only when the row dropped is one of cell a's two (probability 2/7),
    // else 5. (Counting 7 rows as free would keep 6 always.)
    assert_eq!(one, 0.0);
    let k6 = r.counted[5].values();
    assert_eq!(k6[f], 2500);
    let six = k6[..f].iter().sum::<i128>() - 5 * i128::from(units);
    assert_near("k6m1 units keeping 6 cells", six, two, 2.0 / 7.0);
    // `x`, `x`, `y`: k = 6 keeps all three rows, m = 1 one of the two in `x`; k = 2 (m = 2)
    // keeps two of the three whichever they are (counting the unit as free would keep three).
    assert_eq!((k6[f + 1], k6[f + 2]), (1000, 1000));
    let k2 = r.counted[0].values();
    assert_eq!(k2[f + 1] + k2[f + 2], 2000);
    // A sum of k = 3, m = 1: all three rows pass k, but only one of `x`'s two is kept (summing
    // the unit as one with no choice would add both); `f`'s units keep one row each.
    let sum_k3 = &r.counted[6];
    assert_eq!(
        [
            sum_k3.values()[f],
            sum_k3.values()[f + 1],
            sum_k3.values()[f + 2]
        ],
        [2500, 1000, 1000]
    );
    assert_eq!(
        sum_k3.contributors().map(|c| [c[f], c[f + 1], c[f + 2]]),
        Some([2500, 1000, 1000])
    );
    // A sum of k = 2 (m = 2): no cell of `x`, `x`, `y` is over m, but the unit is over k and
    // keeps two of its three rows; `f`'s units keep 1, 2 and 2 rows.
    let sum_k2 = r.counted[7].values();
    assert_eq!((sum_k2[f], sum_k2[f + 1] + sum_k2[f + 2]), (4000, 2000));
    // A fresh key per read: another read chooses differently.
    let again = read(&p);
    assert_ne!(again.counted[2].values()[4..f], c1[4..]);
    assert_eq!(
        again.fingerprint, r.fingerprint,
        "the fingerprint is the content's"
    );
}

#[test]
fn masker_hides_the_url_and_its_password() {
    let m = Masker::new("postgresql://officer:s3cret@db.example:5432/reg");
    assert_eq!(
        m.mask("cannot reach postgresql://officer:s3cret@db.example:5432/reg"),
        "cannot reach ***"
    );
    assert_eq!(m.mask("password s3cret refused"), "password *** refused");
    let m = Masker::new("host=db user=officer password=hunter22");
    assert_eq!(m.mask("bad password hunter22"), "bad password ***");
}
