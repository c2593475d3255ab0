//! The budget ledger: charges, re-runs, versions, locking, accounting, and one ledger per dataset
//! wherever a job runs.

use crate::common::*;

#[test]
fn overspend_is_refused_before_any_noise_or_output() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 0.3 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    let before = fs::read(s.path("ledger/people.jsonl")).unwrap();
    // `plan` says so, and exits 3 (issue 25: a job can act on it).
    let plan = s.run(&["plan", "policy.toml"]);
    plan.expect_code(3);
    assert!(
        plan.stdout()
            .contains("spent rho=0.25, remaining rho=0.05; NOT ENOUGH"),
        "{}",
        plan.stdout()
    );
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(3)
        .stderr_has(&[
            "over budget",
            "spent rho=0.25",
            "needs rho=0.125",
            "only rho=0.05 remains",
        ]);
    assert_eq!(
        fs::read(s.path("ledger/people.jsonl")).unwrap(),
        before,
        "a refused release changed the ledger"
    );
    assert!(!s.path("releases/r.v3").exists());
    assert_eq!(fs::read_dir(s.path("releases")).unwrap().count(), 2);
}

#[test]
fn concurrent_releases_never_overspend() {
    // Budget 0.375 fits exactly three releases of 0.125 (binary-exact numbers, so the test does
    // not depend on float rounding).
    let s = small();
    for i in 0..8 {
        s.write(
            &format!("p{i}.toml"),
            &ledger_policy(&format!("r{i}"), "{ rho = 0.375 }", GAUSS_TABLE),
        );
    }
    let children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(BIN)
                .args(["release", &format!("p{i}.toml")])
                .current_dir(s.dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 3).count(), 5, "{codes:?}");
    let b = budget_json(&s);
    assert_close(b["spent"].as_f64().unwrap(), 0.375);
    assert_eq!(b["releases"].as_array().unwrap().len(), 3);
    assert_eq!(fs::read_dir(s.path("releases")).unwrap().count(), 3);
    let dirs: Vec<String> = fs::read_dir(s.path("releases"))
        .unwrap()
        .map(|e| format!("releases/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    let mut args = vec!["audit"];
    args.extend(dirs.iter().map(String::as_str));
    s.run(&args).expect_code(0);
}

#[test]
fn rerun_is_a_no_op_that_charges_nothing() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let csv = fs::read(s.path("releases/r/by_kind.csv")).unwrap();
    let manifest = fs::read(s.path("releases/r/manifest.json")).unwrap();
    let ledger = fs::read(s.path("ledger/people.jsonl")).unwrap();
    for _ in 0..2 {
        let run = s.run(&["release", "policy.toml"]);
        run.expect_code(0);
        assert!(
            run.stdout().contains("already released"),
            "{}",
            run.stdout()
        );
    }
    assert_eq!(fs::read(s.path("releases/r/by_kind.csv")).unwrap(), csv);
    assert_eq!(
        fs::read(s.path("releases/r/manifest.json")).unwrap(),
        manifest
    );
    assert_eq!(fs::read(s.path("ledger/people.jsonl")).unwrap(), ledger);
}

#[test]
fn deleted_or_altered_release_is_not_redrawn_without_new_version() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let ledger = fs::read(s.path("ledger/people.jsonl")).unwrap();

    fs::write(
        s.path("releases/r/by_kind.csv"),
        "kind,value,status,moe95\na,1000,published,1\n",
    )
    .unwrap();
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["by_kind.csv` was altered", "--new-version"]);

    fs::remove_dir_all(s.path("releases/r")).unwrap();
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["already published", "--new-version"]);
    assert!(!s.path("releases/r").exists());
    assert_eq!(
        fs::read(s.path("ledger/people.jsonl")).unwrap(),
        ledger,
        "a refused re-run charged"
    );

    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    assert!(s.path("releases/r.v2/manifest.json").exists());
    assert_eq!(manifest(&s.path("releases/r.v2"))["release"]["version"], 2);
    assert_close(budget_json(&s)["spent"].as_f64().unwrap(), 0.25);
}

#[test]
fn changed_policy_or_input_under_the_same_id_needs_new_version() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.write("people.csv", &format!("{PEOPLE}4,b,3\n"));
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["different inputs", "--new-version"]);
    s.write("people.csv", PEOPLE);
    s.write(
        "policy.toml",
        &ledger_policy(
            "r",
            "{ rho = 1.0 }",
            &replace_once(GAUSS_TABLE, "0.125", "0.25"),
        ),
    );
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["different policy", "--new-version"]);
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    let b = budget_json(&s);
    assert_close(b["spent"].as_f64().unwrap(), 0.375);
    assert_eq!(b["releases"][1]["version"], 2);
}

#[test]
fn the_budget_cannot_change_under_an_existing_ledger() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.write(
        "policy.toml",
        &ledger_policy("r2", "{ rho = 5.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["budget", "fixed by its first charge"]);
}

#[test]
fn a_ledger_of_another_dataset_is_refused() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.write(
        "other.toml",
        &replace_once(
            &ledger_policy("x", "{ rho = 1.0 }", GAUSS_TABLE),
            "name = \"people\"",
            "name = \"others\"",
        ),
    );
    let before = fs::read(s.path("ledger/people.jsonl")).unwrap();
    s.run(&["release", "other.toml", "--ledger", "ledger/people.jsonl"])
        .expect_code(2)
        .stderr_has(&["belongs to dataset `people`, not `others`"]);
    assert_eq!(fs::read(s.path("ledger/people.jsonl")).unwrap(), before);
    assert!(!s.path("releases/x").exists());
}

#[test]
fn pure_budget_refuses_zcdp_tables() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ epsilon = 3.0 }", GAUSS_TABLE),
    );
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["table `by_kind`, field `cost`", "pure DP"]);
}

#[test]
fn budget_and_audit_match_hand_computed_totals_under_each_accounting() {
    // Pure DP: two releases of epsilon 0.5 against 3.0: spent 1.0, remaining 2.0.
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ epsilon = 3.0 }", LAPLACE_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    let b = budget_json(&s);
    assert_eq!(
        (b["accounting"].as_str(), b["unit"].as_str()),
        (Some("pure_dp"), Some("epsilon"))
    );
    assert_close(b["spent"].as_f64().unwrap(), 1.0);
    assert_close(b["remaining"].as_f64().unwrap(), 2.0);
    let text = s
        .run(&["budget", "--ledger", "ledger/people.jsonl"])
        .stdout();
    assert!(
        text.contains("spent       epsilon=1\n") && text.contains("remaining   epsilon=2\n"),
        "{text}"
    );
    let audit = s.run(&["audit", "--json", "releases/r", "releases/r.v2"]);
    audit.expect_code(0);
    let a: serde_json::Value = serde_json::from_str(&audit.stdout()).unwrap();
    assert_eq!(a["ok"], true);
    assert_close(a["ledgers"][0]["spent"].as_f64().unwrap(), 1.0);

    // zCDP: a Gaussian table (rho 0.125) and a Laplace table (epsilon 0.5, so rho 0.5^2/2 =
    // 0.125) cost 0.25 per release; two releases against 1.0: spent 0.5, remaining 0.5.
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy(
            "r",
            "{ rho = 1.0 }",
            &format!("{GAUSS_TABLE}{LAPLACE_TABLE}"),
        ),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    let b = budget_json(&s);
    assert_eq!(b["accounting"], "zcdp");
    assert_close(b["spent"].as_f64().unwrap(), 0.5);
    assert_close(b["remaining"].as_f64().unwrap(), 0.5);
    assert_close(b["releases"][0]["cost"].as_f64().unwrap(), 0.25);
    s.run(&["audit", "releases/r", "releases/r.v2"])
        .expect_code(0);

    // (epsilon, delta) = (4, 1e-7) via zCDP: one release of rho 0.125. Hand computation: the
    // classic conversion epsilon = rho + 2 sqrt(rho ln(1/delta)) = 2.9635 is an upper bound on
    // opendp's (tighter) one, and a release of rho 0.125 + 0.125 still fits, since the largest
    // rho that fits is above 0.223 (the classic bound's answer).
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ epsilon = 4.0, delta = 1e-7 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let b = budget_json(&s);
    assert_eq!(b["accounting"], "approx_dp_via_zcdp");
    assert_close(b["spent"].as_f64().unwrap(), 0.125);
    let eps = b["spent_epsilon_at_delta"].as_f64().unwrap();
    let classic = 0.125 + 2.0 * (0.125 * 1e7f64.ln()).sqrt();
    assert!(eps <= classic && eps > 0.8 * classic, "{eps} vs {classic}");
    let remaining = b["remaining"].as_f64().unwrap();
    assert!(
        remaining > 0.223 - 0.125 && remaining < 0.35 - 0.125,
        "{remaining}"
    );
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    s.run(&["audit", "releases/r", "releases/r.v2"])
        .expect_code(0);
    // A third (total rho 0.375) no longer converts within (4, 1e-7): opendp gives 0.266.
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(3);
}

#[test]
fn torn_last_line_is_reported_then_repaired_by_the_next_release() {
    let s = two_releases();
    let mut bytes = fs::read(s.path("ledger/people.jsonl")).unwrap();
    bytes.extend_from_slice(br#"{"seq":5,"time":"2026-"#);
    fs::write(s.path("ledger/people.jsonl"), &bytes).unwrap();
    let problems = audit_problems(&s, &[]);
    assert!(
        problems
            .iter()
            .any(|p| p["line"] == 5 && p["message"].as_str().unwrap().contains("torn")),
        "{problems:?}"
    );

    s.write(
        "p2.toml",
        &ledger_policy("other", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "p2.toml"])
        .expect_code(0)
        .stderr_has(&["repaired ledger", "torn last line"]);
    let lines = ledger_lines(&s);
    assert!(lines[4].contains("\"kind\":\"repair\""), "{}", lines[4]);
    s.run(&["audit", "releases/r", "releases/r.v2", "releases/other"])
        .expect_code(0);
    // The torn line drew no noise and is not counted: 3 releases of 0.125.
    assert_close(budget_json(&s)["spent"].as_f64().unwrap(), 0.375);
}

/// Finding 6: without `ledger =`, the ledger was `ledger/<dataset>.jsonl` under the folder the
/// command ran in: the same policy run from a second folder got a fresh, full budget and drew a
/// second version 1. Relative defaults now resolve from the policy file's folder.
#[test]
fn the_same_policy_run_from_another_folder_uses_the_same_ledger() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"])
        .expect_code(0)
        .stderr_has(&["starting a new budget ledger"]);
    fs::create_dir(s.path("elsewhere")).unwrap();
    let run = Command::new(BIN)
        .args(["release", "../policy.toml"])
        .current_dir(s.path("elsewhere"))
        .output()
        .unwrap();
    let run = Run(run);
    run.expect_code(0).stdout_has(&["already released"]);
    assert!(
        !run.stderr().contains("new budget ledger"),
        "{}",
        run.stderr()
    );
    assert_eq!(fs::read_dir(s.path("elsewhere")).unwrap().count(), 0);
    assert_eq!(ledger_lines(&s).len(), 2);
    // A ledger that does not know the dataset's existing release folders is never started
    // silently in its place: the folders prove the budget it would forget.
    fs::rename(s.path("ledger"), s.path("ledger.bak")).unwrap();
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(6)
        .stderr_has(&["lacks a charge that release folder", "releases/r", "line 1"]);
    assert!(!s.path("releases/r.v2").exists());
}

/// Finding 8: a re-run compared the policy's bytes, so a comment forced `--new-version` and a
/// second charge. A release is identified by the plan's meaning and the inputs' fingerprints.
#[test]
fn a_comment_or_reordering_in_the_policy_is_the_same_release() {
    let s = small();
    let policy = ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE);
    s.write("policy.toml", &policy);
    s.run(&["release", "policy.toml"]).expect_code(0);
    let edited = format!(
        "# reviewed by the data officer\n{}",
        replace_once(
            &policy,
            "privacy_unit = \"pid\"\nbudget = { rho = 1.0 }",
            "budget = { rho = 1.0 }   # for ever\nprivacy_unit = \"pid\"",
        )
    );
    s.write("policy.toml", &edited);
    s.run(&["release", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["already released"]);
    assert_eq!(ledger_lines(&s).len(), 2);
}
