//! The sample release, `check`, `plan`, JSON output, and what a release folder may (not) hold.

use crate::common::*;

#[test]
fn sample_release_publishes_every_declared_cell_with_a_manifest() {
    let s = sample();
    let policy = s.path(SAMPLE_POLICY).display().to_string();
    let run = s.run(&["release", SAMPLE_POLICY]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("released `disung-2024`"),
        "{}",
        run.stdout()
    );
    let out = s.path("releases/disung-2024");
    let m = manifest(&out);
    assert_eq!(m["release"]["id"], "disung-2024");
    assert_eq!(m["tool"]["opendp_version"], "0.16.0");
    assert!(m["rng"]["noise"].as_str().unwrap().contains("OpenSSL"));
    assert_eq!(m["policy"]["file"], "disung-2024.toml");
    // Issue 24, item 8: the policy's hashes are not published (a plain hash of a guessable policy
    // or query text confirms the guess); the ledger keeps them, committed to by the charge line.
    let text = fs::read_to_string(out.join("manifest.json")).unwrap();
    let ledger = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap();
    let charge: serde_json::Value = serde_json::from_str(ledger.lines().next().unwrap()).unwrap();
    assert_eq!(
        charge["policy_sha256"].as_str().unwrap(),
        sha256(Path::new(&policy))
    );
    for hash in [&charge["policy_sha256"], &charge["plan_sha256"]] {
        assert!(
            !text.contains(hash.as_str().unwrap()),
            "{hash} is published"
        );
    }
    // The release folder is public: no input digest or path (exact functions of private data).
    for input in m["inputs"].as_array().unwrap() {
        let keys: Vec<&str> = input
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["contribution_bounds", "kind", "name"], "{input}");
    }
    // The ledger and the folder sit beside the policy's folder, as the policy says.
    assert!(s.path("ledger/disung-victims.jsonl").exists());
    // Every output is listed with its hash, and the folder holds nothing else.
    let mut listed: Vec<String> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let name = o["path"].as_str().unwrap();
            assert_eq!(o["sha256"], sha256(&out.join(name)), "{name}");
            name.to_string()
        })
        .collect();
    listed.push("manifest.json".into());
    listed.sort();
    let mut present: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(listed, present);

    let tables = m["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 8);
    let expected_cells = HashMap::from([
        ("victims_by_gender_age", 14),
        ("victims_by_gender", 2),
        ("victims_by_age", 7),
        ("victims_by_region", 17),
        ("victims_by_region_age", 119),
        ("reports_by_type", 9),
        ("services_by_region", 17),
        ("breakdown_by_gender_age", 14),
    ]);
    for t in tables {
        let name = t["name"].as_str().unwrap();
        let rows = read_csv(&out.join(format!("{name}.csv")));
        assert_eq!(rows.len(), expected_cells[name], "{name}");
        assert_eq!(t["cells"], expected_cells[name]);
        let mut suppressed = 0;
        for row in &rows {
            match row["status"].as_str() {
                // A count is published from the threshold up; a sum is published when its noisy
                // count of contributors is (its noisy value may be anything, even 0).
                "published" if t["statistic"] == "sum" => {
                    let n: i64 = row["contributors"].parse().unwrap();
                    assert!(n >= 10, "{name}: published with {n} contributors");
                    row["value"].parse::<i64>().unwrap();
                }
                "published" => {
                    let v: i64 = row["value"].parse().unwrap();
                    assert!(v >= 10, "{name}: published {v} below the threshold");
                }
                "suppressed" => {
                    assert_eq!(row["value"], "", "{name}: a suppressed cell shows a value");
                    suppressed += 1;
                }
                other => panic!("{name}: status {other}"),
            }
            assert_eq!(row["moe95"], t["margin_of_error"].to_string());
        }
        assert_eq!(t["suppression"]["cells_suppressed"], suppressed);
        let declared = name.starts_with("breakdown");
        assert_eq!(
            t["contribution_bounds"]["status"],
            if declared { "declared" } else { "enforced" }
        );
        // The cost opendp reports never exceeds the declared one.
        let cost = &t["privacy_cost"];
        let key = if cost["measure"] == "zcdp" {
            "rho"
        } else {
            "epsilon"
        };
        assert!(cost[key].as_f64().unwrap() <= cost["declared"][key].as_f64().unwrap());
    }
    let gender_age = read_csv(&out.join("victims_by_gender_age.csv"));
    assert_eq!(gender_age[0]["gender"], "female");
    assert_eq!(gender_age[0]["age_group"], "under_10");
    assert_eq!(gender_age[13]["gender"], "male");
    assert_eq!(gender_age[13]["age_group"], "unknown");
    assert_eq!(m["total_cost"]["measure"], "zcdp");
    // No temporary folder is left beside the release.
    assert_eq!(fs::read_dir(s.path("releases")).unwrap().count(), 1);
}

#[test]
fn check_validates_the_sample_and_writes_nothing() {
    let s = sample();
    let before = s.entries();
    let run = s.run(&["check", SAMPLE_POLICY]);
    run.expect_code(0);
    assert!(run.stdout().contains("is valid"), "{}", run.stdout());
    assert!(run.stdout().contains("16833 rows"), "{}", run.stdout());
    // Progress is for terminals only: a job's log gets nothing on stderr.
    assert_eq!(run.stderr(), "");
    assert_eq!(s.entries(), before);
    s.run(&["check", SAMPLE_POLICY, "--quiet"]).expect_code(0);
}

#[test]
fn plan_reads_no_data() {
    // The inputs do not exist: `plan` must still work, since it reads no data.
    let s = Scratch::new();
    s.write("policy.toml", POLICY);
    let run = s.run(&["plan", "policy.toml"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("by_kind") && out.contains("discrete gaussian"),
        "{out}"
    );
    assert!(
        out.contains("amount_by_kind") && out.contains("discrete laplace"),
        "{out}"
    );
    assert!(
        out.contains("L1=200"),
        "sum sensitivity is 2 rows x 100: {out}"
    );
    assert!(out.contains("total cost: rho=1"), "0.5 + 1^2/2: {out}");
}

#[test]
fn a_memory_limit_spills_to_disk_and_still_releases() {
    let s = sample();
    let policy = SAMPLE_POLICY;
    let run = s.run(&["release", policy, "--memory-limit", "1"]);
    run.expect_code(0)
        .stderr_has(&["spilling to temporary files"]);
    assert_eq!(
        read_csv(&s.path("releases/disung-2024/victims_by_region_age.csv")).len(),
        119
    );
    s.run(&["check", policy, "--memory-limit", "0"])
        .expect_code(0);
}

#[test]
fn json_output_on_request() {
    let s = small();
    s.run(&["release", "policy.toml", "--out", "rel", "--json"])
        .expect_code(0);
    let doc: serde_json::Value =
        serde_json::from_slice(&fs::read(s.path("rel/by_kind.json")).unwrap()).unwrap();
    assert_eq!(
        doc["columns"],
        serde_json::json!(["kind", "value", "status", "moe95", "flag"])
    );
    // The three cells, then the grand total.
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3][0], "total");
    assert_eq!(rows[3][2], "total");
    let sum: i64 = rows[..3].iter().map(|r| r[1].as_i64().unwrap()).sum();
    assert_eq!(rows[3][1].as_i64().unwrap(), sum);
    assert_eq!(
        manifest(&s.path("rel"))["tables"][0]["files"],
        serde_json::json!(["by_kind.csv", "by_kind.json"])
    );
}

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new();
    s.run(&["release"]).expect_code(2);
    s.run(&["frobnicate"]).expect_code(2);
    s.run(&["--help"]).expect_code(0);
}

#[test]
fn existing_output_folder_is_refused_and_left_untouched() {
    let s = small();
    s.write("rel/keep.txt", "mine");
    s.run(&["release", "policy.toml", "--out", "rel"])
        .expect_code(2)
        .stderr_has(&["`rel` already exists"]);
    assert_eq!(fs::read_to_string(s.path("rel/keep.txt")).unwrap(), "mine");
    assert_eq!(fs::read_dir(s.path("rel")).unwrap().count(), 1);
}

#[test]
fn unwritable_output_location_is_an_io_error_with_no_debris() {
    let s = small();
    s.write("blocker", "a file where a folder should be");
    s.run(&["release", "policy.toml", "--out", "blocker/rel"])
        .expect_code(1)
        .stderr_has(&["cannot write the release"]);
    assert_eq!(
        fs::read_to_string(s.path("blocker")).unwrap(),
        "a file where a folder should be"
    );
}

/// Finding 1: the manifest carried the SHA-256 of every input, an exact function of the data
/// (a brute force over the noisy ranges recovered a small breakdown's exact counts from it). The
/// manifest now names inputs only; the charge line it points to carries a secret nonce.
#[test]
fn the_public_manifest_carries_no_digest_or_path_of_private_data() {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    let text = fs::read_to_string(s.path("releases/r/manifest.json")).unwrap();
    let bytes = fs::read(s.path("people.csv")).unwrap();
    let digest = format!("blake3:{}", blake3::hash(&bytes).to_hex());
    assert!(!text.contains(&digest[7..]), "the input's digest is public");
    assert!(!text.contains(&sha256(&s.path("people.csv"))));
    assert!(!text.contains("people.csv"), "the input's path is public");
    assert!(!text.contains(&s.path("").display().to_string()));
    // The charge line the manifest names holds the (private) fingerprint and a 256-bit nonce,
    // so its hash, which is public, is no function of the data alone.
    let charge = &ledger_lines(&s)[0];
    let entry: serde_json::Value = serde_json::from_str(charge).unwrap();
    assert_eq!(entry["inputs"]["people"], digest.as_str());
    assert_eq!(entry["nonce"].as_str().unwrap().len(), 64);
    let m = manifest(&s.path("releases/r"));
    assert_eq!(
        m["ledger"]["charge_sha256"],
        hex_sha256(charge.as_bytes()).as_str()
    );
    // Same data, same policy, another ledger: another charge hash.
    let t = small();
    t.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    t.run(&["release", "policy.toml"]).expect_code(0);
    assert_ne!(
        manifest(&t.path("releases/r"))["ledger"]["charge_sha256"],
        m["ledger"]["charge_sha256"]
    );
}

/// Finding 12: a file with a header and no rows divided by zero (exit 101). Zero rows is valid
/// data: it is released, noise only, with a warning in the summary.
#[test]
fn a_header_only_input_is_released_with_a_warning() {
    let s = small();
    s.write("people.csv", "pid,kind,amount\n");
    s.run(&["check", "policy.toml"])
        .expect_code(0)
        .stdout_has(&["0 rows"]);
    s.run(&["release", "policy.toml", "--out", "rel"])
        .expect_code(0)
        .stdout_has(&["warning: input `people` has no rows"]);
    assert_eq!(read_csv(&s.path("rel/by_kind.csv")).len(), 3);
}

/// The sample policy's identity (`plan_sha256`, what tells a re-run from a changed release) is
/// fixed: a change to how a plan is hashed (its fields, their JSON, the hash) would make every
/// published release's re-run a "different policy". Golden: the hash the sample has had since
/// its identity last changed on purpose.
#[test]
fn the_sample_policy_keeps_its_identity() {
    let s = sample();
    s.run(&["release", SAMPLE_POLICY]).expect_code(0);
    let ledger = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap();
    let charge: serde_json::Value = serde_json::from_str(ledger.lines().next().unwrap()).unwrap();
    assert_eq!(charge["kind"], "charge");
    assert_eq!(
        charge["plan_sha256"],
        "9aa5aab2a8a241e856bdea015c6663ce8938b610d7d9a46b584d3616b7482379"
    );
}
