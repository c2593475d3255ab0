//! SQL inputs end to end, against a real PostgreSQL server (a throwaway cluster the tests start,
//! `tests/support/pg.rs`): the sample policy released from a database table, `safestat sql`,
//! and every failure exiting 2 with nothing charged, drawn or written.

use std::time::{Duration, Instant};

use crate::common::pg::{self, OFFICER, OFFICER_PASSWORD};
use crate::common::*;

const URL_ENV: &str = "SAFESTAT_DB_URL";

/// The sample data loaded as table `victims` of a fresh database; the sample policy's `victims`
/// input rewritten to `sql` (with `sql_extra` inside the braces). Returns the scratch folder
/// and the officer's connection string.
fn sample_in_postgres(sql_extra: &str) -> (Scratch, String, String) {
    let cluster = pg::cluster();
    let (s, db) = sample_in(cluster, sql_extra);
    let url = cluster.url(&db, OFFICER, Some(OFFICER_PASSWORD));
    (s, url, db)
}

/// The sample with its microdata in a fresh database of `cluster`, and its policy reading it
/// from there (`sql_extra`: its table or query).
fn sample_in(cluster: &pg::Cluster, sql_extra: &str) -> (Scratch, String) {
    let s = sample();
    let db = cluster.fresh_database();
    cluster.load_csv(
        &db,
        "victims",
        &s.path("data/disung_2024_victims.csv"),
        &["services"],
    );
    let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let policy = replace_once(
        &policy,
        "path = \"../data/disung_2024_victims.csv\"",
        &format!("sql = {{ url_env = \"{URL_ENV}\", {sql_extra} }}"),
    );
    s.write(SAMPLE_POLICY, &policy);
    (s, db)
}

fn table_source() -> &'static str {
    "table = \"victims\""
}

/// A `query` source: `SELECT {rest}`.
fn query_source(rest: &str) -> String {
    format!("query = \"SELECT {rest}\"")
}

const COLUMNS: &str = "victim_id, gender, age_group, region, victim_type, services";

/// Nothing charged, drawn or written: no ledger line, no release folder.
fn assert_nothing_spent(s: &Scratch) {
    let ledger = s.path("ledger/disung-victims.jsonl");
    let lines = fs::read_to_string(&ledger).unwrap_or_default();
    assert!(
        !lines.contains("\"charge\""),
        "a charge was written: {lines}"
    );
    assert!(!s.path("releases/disung-2024").exists());
}

#[test]
fn the_sample_policy_is_released_from_a_postgresql_table() {
    let (s, url, _) = sample_in_postgres(table_source());
    let env = [(URL_ENV, url.as_str())];
    let run = s.run_with(&["release", SAMPLE_POLICY], &env);
    run.expect_code(0).stdout_has(&[
        "released `disung-2024` version 1",
        "consistent: victims_by_gender_age, victims_by_gender, victims_by_age, victims_by_region, victims_by_region_age estimated together",
    ]);
    let dir = s.path("releases/disung-2024");
    for table in [
        "victims_by_gender_age",
        "victims_by_region_age",
        "reports_by_type",
        "services_by_region",
    ] {
        let rows = read_csv(&dir.join(format!("{table}.csv")));
        assert!(!rows.is_empty(), "{table}");
    }
    let source = &audited_and_rerun(&s, SAMPLE_POLICY, &env);
    let ledger = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap();
    // The ledger (private) records the engine, the relation, the snapshot and the SHA-256 of
    // every statement, which are those `safestat sql` prints.
    assert!(source["engine"].as_str().unwrap().starts_with("PostgreSQL"));
    assert_eq!(source["relation"], "table victims");
    assert!(source["snapshot"].as_str().unwrap().contains(':'));
    let printed = s.run(&["sql", SAMPLE_POLICY]);
    printed.expect_code(0);
    let recorded = recorded_as_printed(source, &printed);
    assert_eq!(
        recorded.len(),
        6 + 3,
        "setup, probe, domain, totals, 2 tables drawn alone and 1 group's union table"
    );
    // The connection string and its password are nowhere: not in the ledger, the manifest, the
    // outputs or the messages.
    for f in fs::read_dir(&dir).unwrap() {
        // Bytes, since the workbook is a zip: its parts are compressed, so this also checks
        // the texts it was made from (the CSVs and the manifest, read as text here).
        let bytes = fs::read(f.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(OFFICER_PASSWORD) && !text.contains("host="));
    }
    assert!(!ledger.contains(OFFICER_PASSWORD) && !ledger.contains("host="));
    assert!(!run.stdout().contains(OFFICER_PASSWORD) && !run.stderr().contains(OFFICER_PASSWORD));
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
            .starts_with("the PostgreSQL server")
    );
}

#[test]
fn check_reads_a_postgresql_input_and_spends_nothing() {
    let (s, url, _) = sample_in_postgres(table_source());
    s.run_with(&["check", SAMPLE_POLICY], &[(URL_ENV, url.as_str())])
        .expect_code(0)
        .stdout_has(&[
            "victims      table victims, server in $SAFESTAT_DB_URL: 16833 rows, microdata, 10305 distinct `victim_id`",
        ]);
    assert_nothing_spent(&s);
}

#[test]
fn sql_prints_every_statement_without_connecting() {
    let (s, _, _) = sample_in_postgres(table_source());
    // No connection string at all: `sql` never connects.
    let run = s.run(&["sql", SAMPLE_POLICY]);
    run.expect_code(0).stdout_has(&[
        "-- input `victims`: table victims, server named by $SAFESTAT_DB_URL",
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        "SET LOCAL statement_timeout = 3600000;",
        "-- [9] table `victims_by_gender_age, victims_by_gender, victims_by_age, victims_by_region, victims_by_region_age (bounded together)`: bounded per privacy unit",
        "row_number() OVER (PARTITION BY u ORDER BY prio)",
        "sha256($1::bytea || convert_to(id || ',' || occ, 'UTF8'))",
        "LEAST(GREATEST(s.\"services\"::int8, '0'::int8), '60'::int8) AS v",
        "$1 = the input's secret key for row priorities: 32 fresh random bytes per release",
        // The count of rows ranks only the units of more than 4 rows in several cells.
        "HAVING count(*) > 1 AND sum(n) > 4",
        "WHERE s.\"victim_id\"::text COLLATE \"C\" IN (SELECT u FROM safestat_heavy)",
    ]);
    assert!(!run.stdout().contains("random()"));
    // The totals as the release sends them: with the fingerprint before 2026-12-05 too (MD5)
    // only when the ledger holds this release's charge in that scheme, as format 6's does.
    assert!(
        run.stdout()
            .contains("hashtextextended(ROW(s.*)::text COLLATE \"C\", 0)")
    );
    assert!(!run.stdout().contains("md5("));
    fs::copy(
        Path::new(ROOT).join("tests/fixtures/format-6/ledger/disung-victims.jsonl"),
        s.path("old.jsonl"),
    )
    .unwrap();
    s.run(&["sql", SAMPLE_POLICY, "--ledger", "old.jsonl"])
        .expect_code(0)
        .stdout_has(&[
            "-- the ledger `old.jsonl` holds a charge this release is compared with that was fingerprinted before 2026-12-05",
            "COALESCE(sum(('x' || substr(md5(s::text), 1, 16))::bit(64)::int8), 0) AS h_legacy",
        ]);
    // A policy without an SQL input has nothing to print.
    let file_policy = fs::read_to_string(Path::new(ROOT).join(SAMPLE_POLICY)).unwrap();
    s.write("policies/files.toml", &file_policy);
    s.run(&["sql", "policies/files.toml"])
        .expect_code(2)
        .stderr_has(&["has no SQL input"]);
}

/// Each failure exits 2 with a message that names the input and the cause, and charges,
/// draws and writes nothing.
#[test]
fn every_failure_exits_2_and_charges_nothing() {
    struct Case {
        source: String,
        url: Option<String>,
        message: &'static str,
    }
    let (_, good, db) = sample_in_postgres(table_source());
    let cluster = pg::cluster();
    let wrong_password = cluster.url(&db, OFFICER, Some("not the password"));
    let mut null_unit = cluster.connect(&db);
    null_unit
        .batch_execute(
            "CREATE VIEW victims_null_unit AS SELECT * FROM victims UNION ALL SELECT NULL, 'male', '20s', 'seoul', 'other', 1;
             GRANT SELECT ON victims_null_unit TO officer;",
        )
        .unwrap();
    let cases = [
        Case {
            source: table_source().into(),
            url: None,
            message: "environment variable `SAFESTAT_DB_URL` is not set",
        },
        Case {
            source: table_source().into(),
            url: Some("host=/nowhere port=notaport password=hunter22".into()),
            message: "is not a valid connection string",
        },
        Case {
            source: table_source().into(),
            url: Some(wrong_password),
            message: "password authentication failed for user \"officer\"",
        },
        Case {
            source: "table = \"victimz\"".into(),
            url: Some(good.clone()),
            message: "relation \"victimz\" does not exist",
        },
        Case {
            source: query_source(
                "victim_id, gender AS sex, age_group, region, victim_type, services FROM victims",
            ),
            url: Some(good.clone()),
            message: "no column `gender` (a dimension)",
        },
        Case {
            source: query_source(
                "victim_id, gender, age_group, region, victim_type, services::text AS services FROM victims",
            ),
            url: Some(good.clone()),
            message: "column `services` is of type text, but a sum needs an integer column",
        },
        Case {
            source: query_source(
                "victim_id, gender, age_group, CASE WHEN region = 'jeju' THEN 'Jeju-do' ELSE region END AS region, victim_type, services FROM victims",
            ),
            url: Some(good.clone()),
            message: "value `Jeju-do` is not a declared category of `region`",
        },
        Case {
            source: "table = \"victims_null_unit\"".into(),
            url: Some(good.clone()),
            message: "1 rows have an empty or NULL privacy unit",
        },
        // The statement would sleep a minute: only the 1 s timeout ends it (no race between the
        // two under any load, and the test stays bounded if the timeout were ignored).
        Case {
            source: format!(
                "{}, timeout_seconds = 1",
                query_source(&format!("{COLUMNS} FROM victims, pg_sleep(60) AS z"))
            ),
            url: Some(good.clone()),
            message: "canceling statement due to statement timeout",
        },
    ];
    for case in cases {
        let (s, _, _) = sample_in_postgres(&case.source);
        let env: Vec<(&str, &str)> = case.url.iter().map(|u| (URL_ENV, u.as_str())).collect();
        let run = s.run_with(&["release", SAMPLE_POLICY], &env);
        run.expect_code(2)
            .stderr_has(&["input `victims` (", case.message]);
        for secret in [OFFICER_PASSWORD, "not the password", "hunter22"] {
            assert!(!run.stderr().contains(secret), "{}", run.stderr());
        }
        assert_nothing_spent(&s);
    }
}

/// The server goes away in the middle of a release (its backend is terminated while a table's
/// statement runs): exit 2, nothing charged, nothing written.
#[test]
fn a_server_that_goes_away_mid_release_charges_nothing() {
    // Each statement waits 2 s inside the server, so that there is time to cut it off.
    let (s, url, db) = sample_in_postgres(&query_source(&format!(
        "{COLUMNS} FROM victims, pg_sleep(2) AS z"
    )));
    let child = s
        .command(&["release", SAMPLE_POLICY], &[(URL_ENV, url.as_str())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut admin = pg::cluster().connect(&db);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // A table's statement (only those begin with `WITH`; the server keeps only a
        // statement's first kilobyte here) is running: cut the connection.
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'safestat' AND datname = current_database() AND query LIKE 'WITH %'",
                &[],
            )
            .unwrap();
        if !killed.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no table statement ever ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let run = Run(out);
    // Issue 25: a server that went away is temporary (5), not the input's fault.
    run.expect_code(5)
        .stderr_has(&["input `victims` (", "nothing was charged"]);
    assert_nothing_spent(&s);
}

const EXACT_REGION_GENDER: &str = r#"
[[table]]
name = "exact_region_gender"
input = "victims"
statistic = "count_units"
by = ["region", "gender"]
protection = "suppression"
primary = { min_frequency = 40 }     # the sample's smallest region x gender cells: 20 and 37
interval_percent = 20
"#;

/// Issue 24, item 3: an earlier exact table of the file is counted again on a database input of
/// another name whose exact table here shares only a margin with it (region x gender then, region
/// now), and linked on its digest, so its hidden cells stay hidden. Database inputs
/// were never tried for such a table: the link was lost.
#[test]
fn an_earlier_table_of_the_file_is_linked_on_a_database_input_of_another_name() {
    let (s, url, _) = sample_in_postgres(table_source());
    let env = [(URL_ENV, url.as_str())];
    let from_sql = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
    let from_file = replace_once(
        &from_sql,
        &format!("sql = {{ url_env = \"{URL_ENV}\", {} }}", table_source()),
        "path = \"../data/disung_2024_victims.csv\"",
    );
    s.write(
        "policies/first.toml",
        &format!("{from_file}{EXACT_REGION_GENDER}"),
    );
    s.run(&["release", "policies/first.toml"]).expect_code(0);
    let renamed = replace_once(&from_sql, "[inputs.victims]", "[inputs.cases]")
        .replace("input = \"victims\"", "input = \"cases\"");
    let renamed = replace_once(
        &renamed,
        "id = \"disung-2024\"",
        "id = \"disung-2024-region\"",
    );
    let by_region = EXACT_REGION_GENDER
        .once("exact_region_gender", "exact_region")
        .once("input = \"victims\"", "input = \"cases\"")
        .once(r#"["region", "gender"]"#, r#"["region"]"#);
    s.write("policies/second.toml", &format!("{renamed}{by_region}"));
    s.run_with(&["release", "policies/second.toml"], &env)
        .expect_code(0);
    let ledger = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap();
    let links = ledger
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|l| l.get("exact_links").cloned())
        .next_back()
        .unwrap();
    assert_eq!(
        links,
        serde_json::json!([{
            "release_id": "disung-2024",
            "version": 1,
            "table": "exact_region_gender",
            "counted_on": "cases"
        }])
    );
    s.run_with(&["audit", "releases/disung-2024-region"], &env)
        .expect_code(0);
}

/// An exact table read from PostgreSQL is counted as from the file: the same counts give the
/// same pattern, byte for byte; and a victim in two cells is refused there too.
#[test]
fn an_exact_table_is_counted_in_postgresql_as_from_the_file() {
    let file = sample();
    let with_exact = |s: &Scratch, table: &str| {
        let policy = fs::read_to_string(s.path(SAMPLE_POLICY)).unwrap();
        s.write(SAMPLE_POLICY, &format!("{policy}{table}"));
    };
    with_exact(&file, EXACT_REGION_GENDER);
    file.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let from_file = fs::read(file.path("releases/disung-2024/exact_region_gender.csv")).unwrap();

    let (s, url, _) = sample_in_postgres(table_source());
    let env = [(URL_ENV, url.as_str())];
    with_exact(&s, EXACT_REGION_GENDER);
    s.run(&["sql", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["exact_region_gender"]);
    s.run_with(&["release", SAMPLE_POLICY], &env).expect_code(0);
    let from_sql = fs::read(s.path("releases/disung-2024/exact_region_gender.csv")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&from_sql),
        String::from_utf8_lossy(&from_file)
    );
    assert!(String::from_utf8_lossy(&from_sql).contains("suppressed"));
    s.run_with(&["audit", "releases/disung-2024"], &env)
        .expect_code(0);

    // An exact sum of services: every row of a victim counts, and each cell's largest victims'
    // sums are the file's (daejeon's women are dominated by one victim: more than 10%).
    let sums = EXACT_REGION_GENDER
        .once("exact_region_gender", "exact_services")
        .once(
            "statistic = \"count_units\"",
            "statistic = \"sum\"\ncolumn = \"services\"",
        )
        .once(
            "primary = { min_frequency = 40 }",
            "primary = { min_frequency = 30, dominance = { n = 1, k = 10 }, p_percent = 10 }",
        );
    let file = sample();
    with_exact(&file, &sums);
    file.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let from_file =
        fs::read_to_string(file.path("releases/disung-2024/exact_services.csv")).unwrap();
    let (s, url, _) = sample_in_postgres(table_source());
    let env = [(URL_ENV, url.as_str())];
    with_exact(&s, &sums);
    s.run(&["sql", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["an empty key (bytea): an exact table's sum keeps every row"]);
    s.run_with(&["release", SAMPLE_POLICY], &env).expect_code(0);
    let from_sql = fs::read_to_string(s.path("releases/disung-2024/exact_services.csv")).unwrap();
    assert_eq!(from_sql, from_file);
    let rows = read_csv(&s.path("releases/disung-2024/exact_services.csv"));
    let daejeon = rows
        .iter()
        .find(|r| r["region"] == "daejeon" && r["gender"] == "female")
        .unwrap();
    assert_eq!(daejeon["status"], "suppressed");
    s.run_with(&["audit", "releases/disung-2024"], &env)
        .expect_code(0);
    // An exact count of rows: 1 per row, on the server as in the file.
    let rows = sums.once("exact_services", "exact_rows").once(
        "statistic = \"sum\"\ncolumn = \"services\"",
        "statistic = \"count_rows\"",
    );
    let file = sample();
    with_exact(&file, &rows);
    file.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let from_file = fs::read_to_string(file.path("releases/disung-2024/exact_rows.csv")).unwrap();
    let (s, url, _) = sample_in_postgres(table_source());
    let env = [(URL_ENV, url.as_str())];
    with_exact(&s, &rows);
    s.run_with(&["release", SAMPLE_POLICY], &env).expect_code(0);
    let from_sql = fs::read_to_string(s.path("releases/disung-2024/exact_rows.csv")).unwrap();
    assert_eq!(from_sql, from_file);
    assert!(from_sql.contains("suppressed"));
    // A sum by region x age beside one by region x gender: the sample's victim V004750, in two
    // age groups, comes back from the server apart (numbered, not named), as from the file, and
    // both tables' patterns are the file's, byte for byte.
    let spanning = format!(
        "{sums}{}",
        sums.once("exact_services", "exact_services_age")
            .once(r#"["region", "gender"]"#, r#"["region", "age_group"]"#)
    );
    let file = sample();
    with_exact(&file, &spanning);
    file.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let (s, url, _) = sample_in_postgres(table_source());
    let env = [(URL_ENV, url.as_str())];
    with_exact(&s, &spanning);
    s.run(&["sql", SAMPLE_POLICY])
        .expect_code(0)
        .stdout_has(&["each privacy unit with rows in several cells, numbered (not named)"]);
    s.run_with(&["release", SAMPLE_POLICY], &env).expect_code(0);
    // The same cells, units, largest sums and units in several cells: the same digests.
    let digests = |s: &Scratch| {
        let ledger = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap();
        ledger
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|l| l.get("exact_digests").cloned())
            .next_back()
            .unwrap()
    };
    assert_eq!(digests(&s), digests(&file));
    assert_eq!(digests(&s).as_object().unwrap().len(), 2);
    for table in ["exact_services", "exact_services_age"] {
        let path = format!("releases/disung-2024/{table}.csv");
        assert_eq!(
            fs::read_to_string(s.path(&path)).unwrap(),
            fs::read_to_string(file.path(&path)).unwrap(),
            "{table}"
        );
    }
    s.run_with(&["audit", "releases/disung-2024"], &env)
        .expect_code(0);

    // A negative value is refused there as in a file, with nothing charged.
    let (s, url, _) = sample_in_postgres(&query_source(
        "victim_id, gender, age_group, region, victim_type, services - 100 AS services FROM victims",
    ));
    let env = [(URL_ENV, url.as_str())];
    with_exact(&s, &sums);
    s.run_with(&["release", SAMPLE_POLICY], &env)
        .expect_code(2)
        .stderr_has(&[
            "table `exact_services`",
            "column `services` holds a negative value",
        ]);
    assert_nothing_spent(&s);

    // Region x age: the sample's victim V004750 is in two age groups; the server's count finds
    // it as the file's does, and nothing is charged.
    let (s, url, _) = sample_in_postgres(table_source());
    let env = [(URL_ENV, url.as_str())];
    with_exact(
        &s,
        &EXACT_REGION_GENDER
            .once("exact_region_gender", "exact_region_age")
            .once(r#"["region", "gender"]"#, r#"["region", "age_group"]"#),
    );
    s.run_with(&["release", SAMPLE_POLICY], &env)
        .expect_code(2)
        .stderr_has(&["1 privacy unit(s) in more than one cell of exact table `exact_region_age`"]);
    assert_nothing_spent(&s);
}

/// Issue 28: TLS as libpq does it. `verify-full` with the CA that signed the server's
/// certificate connects; a wrong CA, a host name the certificate does not name, and a plain-text
/// server under `require` are refused (exit 2, a message naming the cause, nothing charged);
/// `verify-ca` does not check the host name; `prefer` over TCP says what it does not check. The
/// TLS cluster refuses plain-text connections, so every connection that succeeds there was
/// encrypted (and its log says so).
#[test]
fn postgresql_over_tls_verifies_as_sslmode_says() {
    let cluster = pg::tls_cluster();
    let certs = cluster.certs.as_ref().expect("a TLS cluster");
    let (s, db) = sample_in(cluster, table_source());
    let ca = certs.ca.display().to_string();
    let url = |host: &str, extra: &str| cluster.tcp_url(host, &db, extra);

    let full = url(
        "localhost",
        &format!("sslmode=verify-full sslrootcert='{ca}'"),
    );
    s.run_with(&["release", SAMPLE_POLICY], &[(URL_ENV, full.as_str())])
        .expect_code(0);
    assert!(s.path("releases/disung-2024/manifest.json").exists());
    // The server saw TLS: it logs each of safestat's connections as encrypted.
    let authorized = |log: &str, tls: bool| {
        log.lines()
            .filter(|l| {
                l.contains(&format!(
                    "user={OFFICER} database={db} application_name=safestat"
                ))
            })
            .filter(|l| l.contains("SSL enabled") == tls)
            .count()
    };
    assert!(authorized(&cluster.log(), true) >= 1, "{}", cluster.log());
    assert_eq!(authorized(&cluster.log(), false), 0, "{}", cluster.log());
    let seen = s.run_with(&["check", SAMPLE_POLICY], &[(URL_ENV, full.as_str())]);
    seen.expect_code(0);
    assert!(!seen.stderr().contains("not checked"), "{}", seen.stderr());

    let refused = |url: String, parts: &[&str]| {
        let t = sample_in(cluster, table_source()).0;
        let run = t.run_with(&["release", SAMPLE_POLICY], &[(URL_ENV, url.as_str())]);
        run.expect_code(2).stderr_has(parts);
        assert!(!run.stderr().contains(OFFICER_PASSWORD), "{}", run.stderr());
        assert_nothing_spent(&t);
    };
    let other = certs.other_ca.display().to_string();
    let wrong_ca = ["certificate verify failed", "unable to get local issuer"];
    refused(
        url(
            "localhost",
            &format!("sslmode=verify-full sslrootcert='{other}'"),
        ),
        &[&wrong_ca[..], &["nothing was charged"]].concat(),
    );
    refused(
        url(
            "localhost",
            &format!("sslmode=verify-ca sslrootcert='{other}'"),
        ),
        &wrong_ca,
    );
    // The system's store does not hold the test's authority.
    refused(url("localhost", "sslmode=verify-full"), &wrong_ca);
    // The certificate names `localhost`, not the address.
    refused(
        url(
            "127.0.0.1",
            &format!("sslmode=verify-full sslrootcert='{ca}'"),
        ),
        &["certificate verify failed", "IP address mismatch"],
    );
    refused(
        url(
            "localhost",
            "sslmode=verify-full sslrootcert=/nonexistent/root.pem",
        ),
        &["`sslrootcert` file `/nonexistent/root.pem`"],
    );
    refused(
        url("localhost", "sslmode=verify-ca"),
        &["`sslmode=verify-ca` needs `sslrootcert`"],
    );
    // verify-ca checks the chain only.
    let ca_only = url(
        "127.0.0.1",
        &format!("sslmode=verify-ca sslrootcert='{ca}'"),
    );
    s.run_with(&["check", SAMPLE_POLICY], &[(URL_ENV, ca_only.as_str())])
        .expect_code(0);
    // The URL form, the password percent-encoded.
    let as_url = format!(
        "postgresql://{OFFICER}:{}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={ca}",
        OFFICER_PASSWORD.replace(' ', "%20"),
        cluster.port
    );
    s.run_with(&["check", SAMPLE_POLICY], &[(URL_ENV, as_url.as_str())])
        .expect_code(0);
    // prefer (the default) over TCP: encrypted here, and said to be unchecked.
    s.run_with(
        &["check", SAMPLE_POLICY],
        &[(URL_ENV, url("localhost", "").as_str())],
    )
    .expect_code(0)
    .stderr_has(&["`sslmode=prefer` (the default)", "not checked"]);

    // A server without TLS: refused under require, plain text (and said) under prefer.
    let plain = pg::plain_tcp_cluster();
    let (p, plain_db) = sample_in(plain, table_source());
    let require = plain.tcp_url("localhost", &plain_db, "sslmode=require");
    p.run_with(&["release", SAMPLE_POLICY], &[(URL_ENV, require.as_str())])
        .expect_code(2)
        .stderr_has(&["server does not support TLS", "nothing was charged"]);
    assert_nothing_spent(&p);
    let prefer = plain.tcp_url("localhost", &plain_db, "");
    p.run_with(&["check", SAMPLE_POLICY], &[(URL_ENV, prefer.as_str())])
        .expect_code(0)
        .stderr_has(&["encrypted only if the server offers TLS"]);
}
