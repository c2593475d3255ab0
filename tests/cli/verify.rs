//! Issue 29: anyone can verify a release. Signed folders (`key new`, `signing_key`,
//! `manifest.json.minisig`, checked by Debian's `minisign` too), the public chain of budget
//! statements, `safestat verify` with nothing but the folders, and finding a policy's ledger.

use crate::common::*;

/// `small()` with a key made by `key new` and a policy that signs with it.
fn signed() -> Scratch {
    let s = small();
    s.run(&["key", "new", "--out", "keys/office.key"])
        .expect_code(0)
        .stdout_has(&["key ID", "keys/office.key.pub"]);
    s.write(
        "policy.toml",
        &replace_once(
            &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
            "privacy_unit = \"pid\"",
            "privacy_unit = \"pid\"\nsigning_key = \"keys/office.key\"",
        ),
    );
    s
}

fn verify_json(s: &Scratch, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["verify", "--json"];
    all.extend(args);
    let run = s.run(&all);
    run.expect_code(code);
    serde_json::from_str(&run.stdout()).unwrap()
}

fn messages(report: &serde_json::Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}: {}",
                p["path"].as_str().unwrap(),
                p["file"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[track_caller]
fn has_problem(report: &serde_json::Value, parts: &[&str]) {
    let all = messages(report);
    assert!(
        all.iter().any(|m| parts.iter().all(|p| m.contains(p))),
        "no problem with {parts:?} in {all:#?}"
    );
}

/// Debian's `minisign`, the standard verifier (`.ci/test` installs it).
fn minisign(s: &Scratch, dir: &str) -> Output {
    Command::new("minisign")
        .args(["-Vm", "manifest.json", "-p"])
        .arg(s.path("keys/office.key.pub"))
        .current_dir(s.path(dir))
        .output()
        .expect("Debian's `minisign` must be installed (`.ci/test` installs it)")
}

/// Rewrites `file` in folder `dir` and the manifest's hash of it: a forgery that every hash in
/// the folder agrees with.
fn forge(s: &Scratch, dir: &str, file: &str, edit: impl Fn(&str) -> String) {
    let path = s.path(&format!("{dir}/{file}"));
    let forged = edit(&fs::read_to_string(&path).unwrap());
    fs::write(&path, &forged).unwrap();
    let mut m = manifest(&s.path(dir));
    for o in m["outputs"].as_array_mut().unwrap() {
        if o["path"] == file {
            o["sha256"] = hex_sha256(forged.as_bytes()).into();
        }
    }
    write_manifest(s, dir, &m);
}

fn write_manifest(s: &Scratch, dir: &str, m: &serde_json::Value) {
    let mut bytes = serde_json::to_vec_pretty(m).unwrap();
    bytes.push(b'\n');
    fs::write(s.path(&format!("{dir}/manifest.json")), bytes).unwrap();
}

/// The workbook and page rebuilt from the forged tables by `report --out`, copied into the
/// folder with their hashes: the forgery is consistent in every file.
fn rebuild_presentation(s: &Scratch, dir: &str) {
    s.run(&["report", dir, "--out", "rebuilt"]).expect_code(0);
    for name in ["r.xlsx", "report.html"] {
        let bytes = fs::read(s.path(&format!("rebuilt/{name}"))).unwrap();
        fs::write(s.path(&format!("{dir}/{name}")), &bytes).unwrap();
        let mut m = manifest(&s.path(dir));
        for o in m["outputs"].as_array_mut().unwrap() {
            if o["path"] == name {
                o["sha256"] = hex_sha256(&bytes).into();
            }
        }
        write_manifest(s, dir, &m);
    }
}

#[test]
fn a_signed_release_verifies_with_safestat_and_with_minisign() {
    let s = signed();
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(s.path("keys/office.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600, "the secret key is readable by its owner only");
    s.run(&["check", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["releases are signed by key"]);
    s.run(&["release", "policy.toml"]).expect_code(0);
    assert!(s.path("releases/r/manifest.json.minisig").exists());
    let m = manifest(&s.path("releases/r"));
    let key_id = m["signature"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(key_id.len(), 16);
    assert_eq!(m["statement"]["sequence"], 1);
    assert_eq!(m["statement"]["spent_before"], 0.0);
    assert_eq!(m["statement"]["previous_sha256"], "0".repeat(64));
    // The public statement holds nothing private: no fingerprint, no path.
    let statement = m["statement"].to_string();
    assert!(!statement.contains("people.csv") && !statement.contains("releases"));

    let out = minisign(&s, "releases/r");
    assert!(
        out.status.success(),
        "minisign: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = verify_json(
        &s,
        &["releases/r", "--public-key", "keys/office.key.pub"],
        0,
    );
    assert_eq!(report["ok"], true);
    assert_eq!(report["folders"][0]["signature"], "verified");
    assert_eq!(report["folders"][0]["key_id"], key_id.as_str());
    // Without the key it says who signed and that the key was not checked.
    s.run(&["verify", "releases/r"])
        .expect_code(0)
        .stdout_has(&[
            &format!("signed by key {key_id}, key not checked"),
            "verify passed",
        ]);
    // The office's audit checks the signature with the public key its ledger recorded.
    s.run(&["audit"]).expect_code(0);
}

/// A presentation revision of a signed release is signed again by the release's key, so the
/// folder verifies with safestat and with minisign; a policy without that key cannot revise it.
#[test]
fn a_presentation_revision_of_a_signed_release_is_signed_again() {
    let s = signed();
    s.run(&["release", "policy.toml"]).expect_code(0);
    let dir = "releases/r";
    let old_signature = fs::read(s.path(&format!("{dir}/manifest.json.minisig"))).unwrap();
    let policy = fs::read_to_string(s.path("policy.toml")).unwrap();
    let labelled = format!("{policy}\n[labels.kind]\nlabel = \"Kind of case\"\n");
    // Without the key the revision cannot be signed: refused, nothing written.
    s.write(
        "unsigned.toml",
        &replace_once(&labelled, "signing_key = \"keys/office.key\"\n", ""),
    );
    s.run(&["report", dir, "--policy", "unsigned.toml"])
        .expect_code(2)
        .stderr_has(&["is signed by key", "names no `signing_key`"]);
    assert_eq!(
        fs::read(s.path(&format!("{dir}/manifest.json.minisig"))).unwrap(),
        old_signature
    );
    s.write("policy.toml", &labelled);
    s.run(&["report", dir, "--policy", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["presentation revision 1", "signed again"]);
    assert_ne!(
        fs::read(s.path(&format!("{dir}/manifest.json.minisig"))).unwrap(),
        old_signature
    );
    let html = fs::read_to_string(s.path(&format!("{dir}/report.html"))).unwrap();
    assert!(html.contains("Kind of case"));
    let out = minisign(&s, dir);
    assert!(
        out.status.success(),
        "minisign: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = verify_json(&s, &[dir, "--public-key", "keys/office.key.pub"], 0);
    assert_eq!(report["folders"][0]["signature"], "verified");
    s.run(&["audit"]).expect_code(0);
}

/// The review's forgery: one CSV cell changed, the manifest's hashes updated, the workbook and
/// page rebuilt with `report --out`. Every hash agrees; only the signature tells.
#[test]
fn a_consistent_forgery_fails_the_signature_and_one_re_signed_fails_the_key() {
    let s = signed();
    s.run(&["release", "policy.toml"]).expect_code(0);
    let dir = "releases/r";
    // The grand total's row (the sample's small cells are suppressed).
    let csv = fs::read_to_string(s.path(&format!("{dir}/by_kind.csv"))).unwrap();
    let line = csv.lines().last().unwrap().to_string();
    assert!(line.starts_with("total,"), "{line}");
    let value: i64 = line.split(',').nth(1).unwrap().parse().unwrap();
    let forged_line = line.replacen(&format!(",{value},"), &format!(",{},", value + 100), 1);
    forge(&s, dir, "by_kind.csv", |t| {
        replace_once(t, &line, &forged_line)
    });
    rebuild_presentation(&s, dir);
    // `report` finds nothing wrong with the folder itself: it is consistent.
    s.run(&["report", dir])
        .expect_code(0)
        .stdout_has(&["unchanged"]);

    let report = verify_json(&s, &[dir, "--public-key", "keys/office.key.pub"], 4);
    has_problem(
        &report,
        &[
            "manifest.json.minisig",
            "does not verify with the given public key",
        ],
    );
    assert!(
        !minisign(&s, dir).status.success(),
        "minisign accepted a forgery"
    );
    // The office's audit finds it from the ledger as well.
    s.run(&["audit"]).expect_code(4);

    // Re-signed with the forger's own key: the signature is valid, but not the publisher's.
    s.run(&["key", "new", "--out", "forger/k"]).expect_code(0);
    let forger = fs::read_to_string(s.path("forger/k.pub")).unwrap();
    let forger_id = forger
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let mut m = manifest(&s.path(dir));
    m["signature"]["key_id"] = forger_id.clone().into();
    write_manifest(&s, dir, &m);
    // Debian's minisign signs with a key `key new` wrote.
    let sig = sign_with(&s, "forger/k", &s.path(&format!("{dir}/manifest.json")));
    fs::write(s.path(&format!("{dir}/manifest.json.minisig")), sig).unwrap();
    let report = verify_json(&s, &[dir, "--public-key", "keys/office.key.pub"], 4);
    has_problem(
        &report,
        &["manifest.json.minisig", "does not verify", &forger_id],
    );
    // Without the publisher's key, nothing but the key ID tells: it is reported, not trusted.
    let report = verify_json(&s, &[dir], 0);
    assert_eq!(report["folders"][0]["signature"], "signed");
    assert_eq!(report["folders"][0]["key_id"], forger_id.as_str());
}

/// Signs `file` with minisign (Debian's) and the secret key at `key` (unencrypted, as `key new`
/// writes it); returns the signature file's text.
fn sign_with(s: &Scratch, key: &str, file: &Path) -> String {
    let sig = s.path("forged.minisig");
    let out = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(s.path(key))
        .arg("-m")
        .arg(file)
        .arg("-x")
        .arg(&sig)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "minisign -S: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(sig).unwrap()
}

#[test]
fn a_secret_key_others_can_read_is_refused_before_anything_is_charged() {
    use std::os::unix::fs::PermissionsExt;
    let s = signed();
    fs::set_permissions(s.path("keys/office.key"), fs::Permissions::from_mode(0o644)).unwrap();
    s.run(&["release", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["keys/office.key", "group or others may use it", "chmod 600"]);
    s.run(&["check", "policy.toml"])
        .expect_code(2)
        .stderr_has(&["group or others may use it"]);
    assert!(!s.path("ledger").exists(), "nothing may be charged");
    assert!(!s.path("releases").exists());
    // A missing key is refused the same way.
    s.run_with(
        &["release", "policy.toml"],
        &[("SAFESTAT_SIGNING_KEY", "nowhere.key")],
    )
    .expect_code(2)
    .stderr_has(&["nowhere.key", "cannot read it"]);
    assert!(!s.path("ledger").exists());
}

#[test]
fn a_signed_dataset_stays_signed() {
    let s = signed();
    s.run(&["release", "policy.toml"]).expect_code(0);
    // The environment names the key as well as the policy does.
    let unsigned = ledger_policy("r2", "{ rho = 1.0 }", GAUSS_TABLE);
    s.write("unsigned.toml", &unsigned);
    let before = ledger_lines(&s);
    s.run(&["release", "unsigned.toml"])
        .expect_code(2)
        .stderr_has(&["is signed", "signing_key", "Nothing was charged"]);
    assert_eq!(ledger_lines(&s), before);
    s.run_with(
        &["release", "unsigned.toml"],
        &[("SAFESTAT_SIGNING_KEY", "keys/office.key")],
    )
    .expect_code(0);
    assert!(s.path("releases/r2/manifest.json.minisig").exists());
    s.run(&[
        "verify",
        "releases/r",
        "releases/r2",
        "--public-key",
        "keys/office.key.pub",
    ])
    .expect_code(0)
    .stdout_has(&["statements 1 to 2, no gap"]);
}

/// Three releases of one dataset: their statements chain 1, 2, 3. A missing middle one is a gap;
/// two histories grown from one ledger fork at 2.
#[test]
fn budget_statements_chain_and_a_gap_or_a_fork_is_reported() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    // A copy of the office as it stood after the first release: a second history grows there.
    let fork = Scratch::new();
    copy_tree(s.dir.path(), fork.dir.path());
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    s.write(
        "other.toml",
        &ledger_policy("q", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "other.toml"]).expect_code(0);

    let report = verify_json(&s, &["releases/r", "releases/r.v2", "releases/q"], 0);
    let chain = &report["chains"][0];
    assert_eq!(chain["sequences"], serde_json::json!([1, 2, 3]));
    assert_eq!(chain["complete"], true);
    assert_close(chain["spent"].as_f64().unwrap(), 0.375);
    let statements: Vec<serde_json::Value> = ["r", "r.v2", "q"]
        .iter()
        .map(|d| manifest(&s.path(&format!("releases/{d}")))["statement"].clone())
        .collect();
    assert_eq!(statements[2]["spent_before"], statements[1]["total_after"]);
    // Each names the one before by the SHA-256 of its compact JSON, keys sorted.
    for k in 1..3 {
        let before = serde_json::to_vec(&statements[k - 1]).unwrap();
        assert_eq!(
            statements[k]["previous_sha256"],
            hex_sha256(&before).as_str()
        );
    }
    // The office's audit agrees with each folder's statement.
    s.run(&["audit"]).expect_code(0);

    let report = verify_json(&s, &["releases/r", "releases/q"], 4);
    has_problem(&report, &["gap", "statement 2 is missing"]);

    fork.write(
        "third.toml",
        &ledger_policy("t", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    fork.run(&["release", "third.toml"]).expect_code(0);
    let t = fork.path("releases/t");
    let report = verify_json(
        &s,
        &[
            "releases/r",
            "releases/r.v2",
            t.to_str().unwrap(),
            "releases/q",
        ],
        4,
    );
    has_problem(&report, &["fork", "statement 2"]);

    // A statement edited to hide spending no longer adds up, and its successor no longer names it.
    let mut m = manifest(&s.path("releases/r.v2"));
    m["statement"]["cost"] = 0.0.into();
    write_manifest(&s, "releases/r.v2", &m);
    let report = verify_json(&s, &["releases/r", "releases/r.v2", "releases/q"], 4);
    has_problem(&report, &["releases/r.v2", "not spent before"]);
    has_problem(&report, &["statement 3", "does not name statement 2"]);
    // The office's audit names the statement that differs from its ledger.
    let problems = audit_problems(&s, &["releases/r.v2"]);
    assert!(
        problems
            .iter()
            .any(|p| p["message"].as_str().unwrap().contains("budget statement")),
        "{problems:?}"
    );
}

/// A table of a consistency group changed (and its hash with it) no longer agrees with the
/// tables estimated with it, nor with its own total; the workbook no longer comes out of it.
#[test]
fn verify_checks_the_sums_of_the_published_tables() {
    let s = sample();
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let dir = "releases/disung-2024";
    let report = verify_json(&s, &[dir], 0);
    let checked = report["folders"][0]["checked"].to_string();
    assert!(
        checked.contains("sums") && checked.contains("made again"),
        "{checked}"
    );
    let csv = fs::read_to_string(s.path(&format!("{dir}/victims_by_gender.csv"))).unwrap();
    let line = csv.lines().nth(1).unwrap().to_string();
    let value: i64 = line.split(',').nth(1).unwrap().parse().unwrap();
    let forged = line.replacen(&format!(",{value},"), &format!(",{},", value + 1), 1);
    forge(&s, dir, "victims_by_gender.csv", |t| {
        replace_once(t, &line, &forged)
    });
    let report = verify_json(&s, &[dir], 4);
    has_problem(
        &report,
        &["victims_by_gender.csv", "the total (total)", "add up"],
    );
    has_problem(
        &report,
        &["victims_by_gender.csv", "estimated with it as one table"],
    );
    has_problem(
        &report,
        &["disung-2024.xlsx", "is not what `safestat report` makes"],
    );
}

/// Exact tables: the attacker re-run on the published values alone; a manifest that claims more
/// protection than the published cells give is caught.
#[test]
fn verify_re_runs_the_exact_tables_attacker() {
    let s = Scratch::new();
    s.write("people.csv", &crate::sdc::people(""));
    s.write(
        "policy.toml",
        &crate::sdc::policy(crate::sdc::REGION_GENDER),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let dir = "releases/exact";
    let report = verify_json(&s, &[dir], 0);
    assert!(
        report["folders"][0]["checked"]
            .to_string()
            .contains("exact table")
    );
    let mut m = manifest(&s.path(dir));
    let interval = &mut m["exact_tables"][0]["intervals"][0];
    let lo = interval["lo"].as_i64().unwrap();
    interval["lo"] = (lo - 1000).into();
    write_manifest(&s, dir, &m);
    let report = verify_json(&s, &[dir], 4);
    has_problem(&report, &["narrower than stated"]);
}

/// A policy without a `ledger` line writes `policies/ledger/`; `budget` and `audit` run from the
/// project root find it (they looked only in `ledger/`), or say where the policies' ledgers are.
#[test]
fn budget_and_audit_find_the_ledgers_of_the_policies() {
    let s = small();
    let policy = ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE)
        .once("path = \"people.csv\"", "path = \"../people.csv\"");
    s.write("policies/p.toml", &policy);
    s.run(&["budget"]).expect_code(2).stderr_has(&[
        "no ledger found",
        "policies/p.toml",
        "ledger/people.jsonl",
        "not written yet",
    ]);
    s.run(&["release", "policies/p.toml"]).expect_code(0);
    assert!(s.path("policies/ledger/people.jsonl").exists());
    s.run(&["budget"])
        .expect_code(0)
        .stdout_has(&["dataset `people`", "policies/ledger/people.jsonl"]);
    s.run(&["budget", "--policy", "policies/p.toml"])
        .expect_code(0)
        .stdout_has(&["dataset `people`"]);
    s.run(&["audit"])
        .expect_code(0)
        .stdout_has(&["audit passed", "policies/releases/r"]);
    s.run(&["audit", "--policy", "policies/p.toml"])
        .expect_code(0);
}

#[test]
fn report_names_the_file_that_differs() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let path = s.path("releases/r/by_kind.csv");
    let csv = fs::read_to_string(&path).unwrap();
    fs::write(&path, csv.replacen("\ntotal,", "\ntotal,1", 1)).unwrap();
    let run = s.run(&["report", "releases/r"]);
    run.expect_code(2)
        .stderr_has(&["`by_kind.csv`", "differs from"]);
    assert!(
        !run.stderr().contains("another version"),
        "{}",
        run.stderr()
    );
}

/// Two runs charged from one ledger state (a ledger restored from a backup between them) state
/// the same budget figures; the charge lines they name differ, so the chain shows the fork.
#[test]
fn a_release_drawn_twice_from_a_restored_ledger_is_a_fork() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    let twin = Scratch::new();
    copy_tree(s.dir.path(), twin.dir.path());
    s.run(&["release", "policy.toml"]).expect_code(0);
    twin.run(&["release", "policy.toml"]).expect_code(0);
    let other = twin.path("releases/r");
    let report = verify_json(&s, &["releases/r", other.to_str().unwrap()], 4);
    has_problem(&report, &["fork", "statement 1"]);
}

/// A signature file that is not one (its last line cut short) is a problem reported, never a
/// crash, in `verify` and `audit` alike.
#[test]
fn a_malformed_signature_is_reported() {
    let s = signed();
    s.run(&["release", "policy.toml"]).expect_code(0);
    let path = s.path("releases/r/manifest.json.minisig");
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[3] = "AAAA";
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let report = verify_json(
        &s,
        &["releases/r", "--public-key", "keys/office.key.pub"],
        4,
    );
    has_problem(
        &report,
        &["manifest.json.minisig", "not a minisign signature"],
    );
    let problems = audit_problems(&s, &[]);
    assert!(
        problems
            .iter()
            .any(|p| p["file"] == "manifest.json.minisig"),
        "{problems:?}"
    );
}

/// A statement that understates what the release's tables cost (the `ledger` section edited to
/// agree with it) is caught against the manifest's own `total_cost`.
#[test]
fn a_statement_must_state_what_the_tables_cost() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let mut m = manifest(&s.path("releases/r"));
    for (section, field) in [
        ("statement", "cost"),
        ("statement", "total_after"),
        ("ledger", "charged"),
        ("ledger", "total_after"),
    ] {
        m[section][field] = 0.01.into();
    }
    write_manifest(&s, "releases/r", &m);
    let report = verify_json(&s, &["releases/r"], 4);
    has_problem(&report, &["is not what its tables cost"]);
}

#[test]
fn budget_refuses_both_a_policy_and_a_ledger() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.run_with(
        &["budget", "--policy", "policy.toml"],
        &[("SAFESTAT_LEDGER", "ledger/people.jsonl")],
    )
    .expect_code(2)
    .stderr_has(&["both --policy", "give one"]);
}

/// Pure-DP tables under a zCDP budget: `total_cost` is in epsilon, the statement in rho (each
/// table cast); an honest folder verifies.
#[test]
fn a_pure_dp_release_under_a_zcdp_budget_verifies() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", LAPLACE_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let m = manifest(&s.path("releases/r"));
    assert!(m["total_cost"]["epsilon"].is_number() && m["statement"]["unit"] == "rho");
    s.run(&["verify", "releases/r"]).expect_code(0);
}
