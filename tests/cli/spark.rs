//! Spark inputs end to end, against a real Spark Connect server (pyspark's, started by the tests,
//! `tests/support/spark.rs`): the sample policy released from Spark, its exact table equal to the
//! file's byte for byte, `safestat sql` printing Spark's statements, and every failure exiting
//! with nothing charged, drawn or written.

use crate::common::spark::{self, Server};
use crate::common::*;

const URL_ENV: &str = "SAFESTAT_SPARK_URL";

const INTEGERS: &[&str] = &["services"];

/// The sample, its `victims` input read from Spark by a query over a headerless copy of its
/// microdata (`columns` replaces the query's column list when given: a failure's variation).
fn sample_in_spark(edit: impl Fn(&str) -> String) -> Scratch {
    let s = sample();
    let data = fs::read_to_string(s.path("data/disung_2024_victims.csv")).unwrap();
    let query = Server::csv_query(s.dir.path(), "victims_spark", &data, INTEGERS);
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(
        &policy,
        "path = \"../data/disung_2024_victims.csv\"",
        &format!("spark = {{ url_env = \"{URL_ENV}\", {} }}", edit(&query)),
    );
    s.write(SAMPLE_POLICY, &policy);
    s
}

fn as_query(query: &str) -> String {
    format!("query = \"{query}\"")
}

fn url() -> String {
    spark::server().url()
}

/// Nothing charged, drawn or written: no ledger line, no release folder.
fn assert_nothing_spent(s: &Scratch) {
    let lines = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap_or_default();
    assert!(
        !lines.contains("\"charge\""),
        "a charge was written: {lines}"
    );
    assert!(!s.path("releases/disung-2024").exists());
}

#[test]
fn the_sample_policy_is_released_from_spark() {
    let s = sample_in_spark(as_query);
    let url = url();
    let env = [(URL_ENV, url.as_str())];
    s.run_with(&["release", SAMPLE_POLICY], &env)
        .expect_code(0)
        .stdout_has(&["released `disung-2024` version 1"]);
    let dir = s.path("releases/disung-2024");
    let source = &audited_and_rerun(&s, SAMPLE_POLICY, &env);
    let ledger = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap();
    // The ledger records Spark, the query and the SHA-256 of every statement, those `safestat
    // sql` prints; no snapshot (Spark has none, and says so).
    assert!(
        source["engine"]
            .as_str()
            .unwrap()
            .starts_with("Apache Spark 4."),
        "{source}"
    );
    assert!(
        source["relation"]
            .as_str()
            .unwrap()
            .starts_with("query `SELECT")
    );
    assert!(source["snapshot"].as_str().unwrap().starts_with("none"));
    let printed = s.run(&["sql", SAMPLE_POLICY]);
    printed.expect_code(0).stdout_has(&[
        "-- input `victims` (Apache Spark):",
        "no transaction",
        "sha2(concat(:key, encode(concat(id, ',', CAST(occ AS STRING)), 'UTF-8')), 256)",
        ":key = the input's secret key for row priorities: 32 fresh random bytes per release (binary)",
        ":values0 = the values of `gender`",
        "try_element_at(map_from_arrays(:values0, :codes0), CAST(s.`gender` AS STRING))",
        "SELECT /*+ REPARTITION(u) */ CAST(s.`victim_id` AS STRING) AS u,",
    ]);
    assert!(!printed.stdout().contains("random()") && !printed.stdout().contains("$1"));
    let recorded = recorded_as_printed(source, &printed);
    assert_eq!(
        recorded.len(),
        4 + 3 + 1,
        "version, probe, domain, totals, 2 tables drawn alone and 1 group's union table, totals again"
    );
    let m = manifest(&dir);
    let victims = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "victims")
        .unwrap();
    assert!(
        victims["bounded_in"]
            .as_str()
            .unwrap()
            .starts_with("the Apache Spark server"),
        "{victims}"
    );
    // The connection string is nowhere in the release or the ledger.
    for f in fs::read_dir(&dir).unwrap() {
        let bytes = fs::read(f.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("sc://"));
    }
    assert!(!ledger.contains("sc://"));
}

const EXACT_SERVICES: &str = r#"
[[table]]
name = "exact_services"
input = "victims"
statistic = "sum"
column = "services"
by = ["region", "gender"]
protection = "suppression"
primary = { min_frequency = 30, dominance = { n = 1, k = 10 }, p_percent = 10 }
interval_percent = 20
"#;

/// Exact tables read from Spark are counted as from the file: the same pattern, byte for byte
/// (an exact sum, with its dominant units, and a count of rows with a victim in several cells).
#[test]
fn exact_tables_are_counted_in_spark_as_from_the_file() {
    // Counts of rows by region and age group: the sample's victim V004750, in two age groups,
    // comes back apart (numbered, not named), as from the file.
    let rows = EXACT_SERVICES
        .replace("exact_services", "exact_rows_age")
        .replace(r#"["region", "gender"]"#, r#"["region", "age_group"]"#)
        .replace(
            "statistic = \"sum\"\ncolumn = \"services\"",
            "statistic = \"count_rows\"",
        )
        .replace(
            "primary = { min_frequency = 30, dominance = { n = 1, k = 10 }, p_percent = 10 }",
            "primary = { min_frequency = 30 }",
        );
    let tables = format!("{EXACT_SERVICES}{rows}");
    let with_exact = |s: &Scratch| {
        let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
        s.write(SAMPLE_POLICY, &format!("{policy}{tables}"));
    };
    let file = sample();
    with_exact(&file);
    file.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let s = sample_in_spark(as_query);
    with_exact(&s);
    let url = url();
    let env = [(URL_ENV, url.as_str())];
    s.run_with(&["release", SAMPLE_POLICY], &env).expect_code(0);
    for table in ["exact_services", "exact_rows_age"] {
        let name = format!("releases/disung-2024/{table}.csv");
        let from_file = fs::read_to_string(file.path(&name)).unwrap();
        let from_spark = fs::read_to_string(s.path(&name)).unwrap();
        assert_eq!(from_spark, from_file, "{table}");
    }
    assert!(
        fs::read_to_string(s.path("releases/disung-2024/exact_services.csv"))
            .unwrap()
            .contains("suppressed")
    );
    s.run_with(&["audit", "releases/disung-2024"], &env)
        .expect_code(0);
}

/// Each failure exits with a message that names the input and the cause (2: the policy, the
/// connection string or the data; 5: a server that cannot be reached, worth retrying), and
/// charges, draws and writes nothing.
#[test]
fn every_failure_exits_with_its_code_and_charges_nothing() {
    let good = url();
    let closed = format!("sc://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let rename =
        |from: &'static str, to: &'static str| move |q: &str| as_query(&q.replacen(from, to, 1));
    type Edit = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(Edit, Option<String>, i32, &str)> = vec![
        (
            Box::new(as_query),
            None,
            2,
            "environment variable `SAFESTAT_SPARK_URL` is not set",
        ),
        (
            Box::new(as_query),
            Some("postgresql://officer:hunter22@db/x".into()),
            2,
            "is not a Spark Connect connection string",
        ),
        (
            Box::new(as_query),
            Some(format!("{good}/;use_ssl=true")),
            2,
            "`use_ssl=true` asks for TLS, which this build's Spark Connect client does not have",
        ),
        (
            Box::new(as_query),
            Some(closed),
            5,
            "cannot reach the Spark Connect server",
        ),
        // A query that returns other rows each time it runs: caught by the fingerprint read
        // again at the end (the chance that two reads keep the same 99.9% of 16,833 rows is
        // below 1e-12).
        (
            Box::new(|q: &str| as_query(&format!("{q} WHERE rand() < 0.999"))),
            Some(good.clone()),
            2,
            "the relation changed during the read",
        ),
        (
            Box::new(|_: &str| "table = \"victimz\"".to_string()),
            Some(good.clone()),
            2,
            "TABLE_OR_VIEW_NOT_FOUND",
        ),
        (
            Box::new(rename("AS `gender`", "AS `sex`")),
            Some(good.clone()),
            2,
            "no column `gender` (a dimension)",
        ),
        (
            Box::new(rename(
                "AS BIGINT) AS `services`",
                "AS DOUBLE) AS `services`",
            )),
            Some(good.clone()),
            2,
            "column `services` is of type double, but a sum needs an integer column",
        ),
        (
            Box::new(rename(
                "CAST(_c3 AS STRING)",
                "replace(CAST(_c3 AS STRING), 'jeju', 'Jeju-do')",
            )),
            Some(good.clone()),
            2,
            "value `Jeju-do` is not a declared category of `region`",
        ),
        (
            Box::new(rename(
                "CAST(_c0 AS STRING)",
                "CAST(NULLIF(_c0, 'V000001') AS STRING)",
            )),
            Some(good.clone()),
            2,
            "rows have an empty or NULL privacy unit",
        ),
        // Only the 2 s limit ends this statement: a maximum over 10^12 rows (about 300 s on
        // this machine), used by the filter so that Spark cannot prune it away (a cross join with
        // an unused one-row aggregate is reduced to counting the rows, which takes 3 s):
        // interrupted, exit 2.
        (
            Box::new(|q: &str| {
                format!(
                    "{}, timeout_seconds = 2",
                    as_query(&format!(
                        "{q} CROSS JOIN (SELECT max(id) AS m FROM range(1000000000000)) z WHERE z.m >= 0"
                    ))
                )
            }),
            Some(good.clone()),
            2,
            "ran longer than `timeout_seconds` (2 s) and was interrupted",
        ),
    ];
    for (edit, url, code, message) in cases {
        let s = sample_in_spark(edit);
        let env: Vec<(&str, &str)> = url.iter().map(|u| (URL_ENV, u.as_str())).collect();
        let run = s.run_with(&["release", SAMPLE_POLICY], &env);
        run.expect_code(code)
            .stderr_has(&["input `victims` (", message]);
        assert!(!run.stderr().contains("hunter22"), "{}", run.stderr());
        assert_nothing_spent(&s);
    }
}
