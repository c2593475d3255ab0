//! Issue 25: the scheduler's contract. `--status-json` prints exactly one JSON object on stdout
//! (the report for people goes to stderr), whose `status` matches the exit code: 0 published,
//! already_released, resumed, planned, valid; 2 invalid; 3 refused_budget; 5 busy, unavailable;
//! 6 integrity.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::*;

/// Runs `args` with `--status-json`; checks the exit code, that stdout is one JSON object and
/// nothing else, and that its `exit_code` is the process's. Returns the object.
#[track_caller]
fn status(s: &Scratch, args: &[&str], env: &[(&str, &str)], code: i32) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--status-json");
    let run = s.run_with(&all, env);
    run.expect_code(code);
    let out = run.stdout();
    assert_eq!(out.lines().count(), 1, "stdout is one line:\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["exit_code"], code);
    assert!(v["messages"].is_array());
    v
}

fn simple() -> Scratch {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 0.3 }", GAUSS_TABLE),
    );
    s
}

#[test]
fn every_outcome_has_its_status_and_exit_code() {
    let s = simple();
    assert_eq!(
        status(&s, &["check", "policy.toml"], &[], 0)["status"],
        "valid"
    );
    let v = status(&s, &["plan", "policy.toml"], &[], 0);
    assert_eq!(v["status"], "planned");
    assert_eq!(v["unit"], "rho");
    let v = status(&s, &["release", "policy.toml"], &[], 0);
    assert_eq!(v["status"], "published");
    assert_eq!(
        (v["release"].as_str(), v["version"].as_u64()),
        (Some("r"), Some(1))
    );
    assert_close(v["charged"].as_f64().unwrap(), 0.125);
    assert_close(v["spent"].as_f64().unwrap(), 0.125);
    assert_close(v["remaining"].as_f64().unwrap(), 0.175);
    assert!(v["dir"].as_str().unwrap().ends_with("releases/r"));
    let v = status(&s, &["release", "policy.toml"], &[], 0);
    assert_eq!(v["status"], "already_released");
    assert_eq!(v["charged"], 0.0);
    let v = status(&s, &["budget"], &[], 0);
    assert_eq!(v["status"], "valid");
    assert_close(v["spent"].as_f64().unwrap(), 0.125);
    // Twice more does not fit: `plan` says so with exit 3, `release` refuses with exit 3.
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    let v = status(&s, &["plan", "policy.toml"], &[], 3);
    assert_eq!(v["status"], "refused_budget");
    let v = status(&s, &["release", "policy.toml", "--new-version"], &[], 3);
    assert_eq!(v["status"], "refused_budget");
    assert!(v["messages"].to_string().contains("over budget"));
    // A policy that is not valid.
    s.write("bad.toml", "[release]\nid = \"x\"\n");
    assert_eq!(
        status(&s, &["check", "bad.toml"], &[], 2)["status"],
        "invalid"
    );
    assert_eq!(
        status(&s, &["release", "bad.toml"], &[], 2)["status"],
        "invalid"
    );
}

/// A run that was charged but died before publishing is finished by the next: `resumed`,
/// nothing charged again.
#[test]
fn a_resumed_release_says_so() {
    let s = simple();
    // As a run killed after its charge leaves it: the charge, no folder, no publication.
    s.run(&["release", "policy.toml"]).expect_code(0);
    fs::remove_dir_all(s.path("releases/r")).unwrap();
    let mut lines = ledger_lines(&s);
    assert!(lines.pop().unwrap().contains("\"kind\":\"published\""));
    write_ledger(&s, &lines);
    let v = status(&s, &["release", "policy.toml"], &[], 0);
    assert_eq!(v["status"], "resumed");
    assert_eq!(v["charged"], 0.0);
    assert_close(v["spent"].as_f64().unwrap(), 0.125);
}

/// A ledger that fails verification is a person's job: 6 for `release` and `budget`.
#[test]
fn a_tampered_ledger_is_an_integrity_failure() {
    let s = simple();
    s.run(&["release", "policy.toml"]).expect_code(0);
    let mut lines = ledger_lines(&s);
    lines[0] = replace_once(&lines[0], "\"cost\":0.125", "\"cost\":0.0125");
    write_ledger(&s, &lines);
    let v = status(&s, &["release", "policy.toml", "--new-version"], &[], 6);
    assert_eq!(v["status"], "integrity");
    let v = status(&s, &["budget"], &[], 6);
    assert_eq!(v["status"], "integrity");
}

/// The ledger's lock held by another process: after a second stderr says who holds it (from its
/// holder record), and `--lock-timeout` gives up with exit 5, nothing charged.
#[test]
fn a_held_lock_is_named_and_given_up_on_after_the_timeout() {
    let s = simple();
    s.run(&["release", "policy.toml"]).expect_code(0);
    let before = ledger_lines(&s);
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time\nf = open('ledger/people.jsonl', 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)",
        ])
        .current_dir(s.dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    fs::write(
        s.path("ledger/people.jsonl.lock-holder"),
        r#"{"pid": 4242, "since": "2026-12-03T10:00:00Z"}"#,
    )
    .unwrap();
    let mut args = vec![
        "release",
        "policy.toml",
        "--new-version",
        "--lock-timeout",
        "1.5",
    ];
    args.push("--status-json");
    let run = s.run(&args);
    let _ = holder.kill();
    let _ = holder.wait();
    run.expect_code(5).stderr_has(&[
        "waiting for the lock of ledger",
        "held by process 4242 since 2026-12-03T10:00:00Z",
        "gave up after 1.5 s",
        "Nothing was charged",
    ]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(v["status"], "busy");
    assert_eq!(ledger_lines(&s), before, "nothing charged");
    // Once the lock is free, the same command goes through: it replaces the stale holder record
    // with its own, and takes that back when done.
    s.run(&[
        "release",
        "policy.toml",
        "--new-version",
        "--lock-timeout",
        "1.5",
    ])
    .expect_code(0);
    assert!(!s.path("ledger/people.jsonl.lock-holder").exists());
}

/// A small release of a table in a database that cannot be reached (port 9), the connection
/// string in the environment `release_from_database` passes: its status line, exit `code`
/// expected, and that nothing was charged.
fn release_from_database(code: i32) -> serde_json::Value {
    let s = small();
    let policy = ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE).once(
        "path = \"people.csv\"",
        "sql = { url_env = \"SAFESTAT_DB_URL\", table = \"people\" }",
    );
    s.write("policy.toml", &policy);
    let v = status(
        &s,
        &["release", "policy.toml"],
        &[(
            "SAFESTAT_DB_URL",
            "postgresql://nobody@127.0.0.1:9/none?connect_timeout=5",
        )],
        code,
    );
    assert!(!s.path("ledger/people.jsonl").exists() || ledger_lines(&s).is_empty());
    if cfg!(not(feature = "postgres")) {
        // The statements need no client.
        s.run(&["sql", "policy.toml"])
            .expect_code(0)
            .stdout_has(&["BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"]);
    }
    v
}

/// A database that cannot be reached: retry later (5), nothing charged.
#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_database_is_temporary() {
    let v = release_from_database(5);
    assert_eq!(v["status"], "unavailable");
}

/// A build without the `postgres` feature (the README's first command) refuses an SQL input
/// (and without `spark`, a Spark input) before anything is read: exit 2 (not 5: retrying cannot help), a message saying how to build
/// it, nothing charged; `safestat sql` still shows the statements.
#[cfg(not(feature = "postgres"))]
#[test]
fn an_sql_input_is_refused_by_a_build_without_the_postgres_client() {
    let v = release_from_database(2);
    assert!(
        v["messages"].to_string().contains("--features postgres"),
        "{v}"
    );
    // Refused before any input is read: a bad CSV input listed first is not read (its error
    // would come first otherwise), and `plan`, which reads no data, says so in advance.
    let s = small();
    s.write("aaa.csv", "pid,kind\n1,a\n2,no-such-kind\n");
    let table = GAUSS_TABLE.once("name = \"by_kind\"", "name = \"by_kind_csv\"");
    let table = table.once("input = \"people\"", "input = \"aaa\"");
    let policy = ledger_policy("r", "{ rho = 1.0 }", &format!("{GAUSS_TABLE}{table}"))
        .once(
            "path = \"people.csv\"",
            "sql = { url_env = \"SAFESTAT_DB_URL\", table = \"people\" }\n[inputs.aaa]\npath = \"aaa.csv\"",
        );
    s.write("policy.toml", &policy);
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["input `people`", "--features postgres"]);
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["--features postgres"]);
    s.run(&["plan", "policy.toml"]).expect_code(0).stdout_has(&[
        "note: `release` and `check` will refuse this policy",
        "--features postgres",
    ]);
    assert!(!s.path("ledger/people.jsonl").exists() || ledger_lines(&s).is_empty());
    // A Spark input alike, naming its own feature; its statements are shown all the same.
    let s = small();
    let policy = ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE).once(
        "path = \"people.csv\"",
        "spark = { url_env = \"SAFESTAT_SPARK_URL\", table = \"people\" }",
    );
    s.write("policy.toml", &policy);
    s.run_with(
        &["release", "policy.toml"],
        &[("SAFESTAT_SPARK_URL", "sc://127.0.0.1:9")],
    )
    .expect_code(2)
    .stderr_has(&["input `people`", "--features spark"]);
    s.run(&["sql", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["(Apache Spark)", "sha2(concat(:key"]);
    assert!(!s.path("ledger/people.jsonl").exists() || ledger_lines(&s).is_empty());
}
