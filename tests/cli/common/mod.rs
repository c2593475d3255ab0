//! What every concern's tests share: a scratch folder the real executable runs in, its run's
//! exit code and output, fixtures (each edit of one asserts that the text it replaces occurs
//! exactly once), and readers of the files a release writes.

pub use std::collections::{BTreeMap, HashMap};
pub use std::fs;
pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Output};

pub use sha2::{Digest, Sha256};

#[cfg(feature = "postgres")]
#[path = "../../support/pg.rs"]
pub mod pg;
#[cfg(any(feature = "postgres", feature = "spark"))]
#[path = "../../support/process.rs"]
pub mod process;
#[cfg(feature = "spark")]
#[path = "../../support/spark.rs"]
pub mod spark;

pub const BIN: &str = env!("CARGO_BIN_EXE_safestat");

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A scratch folder the executable runs in.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
        self
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// [`Scratch::run`] with environment variables set (`SAFESTAT_DB_URL` for SQL inputs).
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(args, env).output().unwrap();
        Run(out)
    }

    /// The executable's command in this folder, to run or spawn.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Files and folders directly in the scratch folder.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

pub struct Run(pub Output);

/// The SHA-256 of every statement a database input's ledger `source` records, after asserting
/// that they are those `safestat sql` printed (`printed`, its run), in order.
#[cfg(any(feature = "postgres", feature = "spark"))]
pub fn recorded_as_printed(source: &serde_json::Value, printed: &Run) -> Vec<String> {
    let printed_hashes: Vec<String> = printed
        .stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("-- sha256 ").map(str::to_string))
        .collect();
    let recorded: Vec<String> = source["statements_sha256"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recorded, printed_hashes);
    recorded
}

/// After a release of the sample policy `policy` from a database input (`env` names its
/// server): every declared cell of `victims_by_region_age` is published (those the server
/// returned no row for included), the folder passes `audit`, and the same release run again is
/// recognised as already released. Gives the ledger's (private) record of the input `victims`,
/// from its first charge.
#[cfg(any(feature = "postgres", feature = "spark"))]
pub fn audited_and_rerun(s: &Scratch, policy: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = s.path("releases/disung-2024");
    assert_eq!(
        read_csv(&dir.join("victims_by_region_age.csv")).len(),
        17 * 7
    );
    s.run_with(&["audit", "releases/disung-2024"], env)
        .expect_code(0);
    s.run_with(&["release", policy], env)
        .expect_code(0)
        .stdout_has(&["already released"]);
    let ledger = fs::read_to_string(s.path("ledger/disung-victims.jsonl")).unwrap();
    let charge: serde_json::Value = serde_json::from_str(ledger.lines().next().unwrap()).unwrap();
    charge["sources"]["victims"].clone()
}

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    #[track_caller]
    pub fn stdout_has(&self, parts: &[&str]) -> &Self {
        let out = self.stdout();
        for p in parts {
            assert!(out.contains(p), "stdout lacks {p:?}:\n{out}");
        }
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, parts: &[&str]) -> &Self {
        let err = self.stderr();
        for p in parts {
            assert!(err.contains(p), "stderr lacks {p:?}:\n{err}");
        }
        self
    }
}

/// A scratch folder holding a copy of the repository's `policies/` and `data/`, so the sample
/// policy's ledger and release folders (beside the policy's folder) land in the scratch folder.
pub fn sample() -> Scratch {
    let s = Scratch::new();
    for folder in ["policies", "data"] {
        for entry in fs::read_dir(Path::new(ROOT).join(folder)).unwrap() {
            let entry = entry.unwrap();
            fs::create_dir_all(s.path(folder)).unwrap();
            fs::copy(entry.path(), s.path(folder).join(entry.file_name())).unwrap();
        }
    }
    s
}

pub const SAMPLE_POLICY: &str = "policies/disung-2024.toml";

pub fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

/// A published table's cells: its rows without a DP table's margins (status `total`, format 6),
/// as every test before margins were published read them.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    read_all_rows(path)
        .into_iter()
        .filter(|r| r.get("status").is_none_or(|s| s != "total"))
        .collect()
}

/// Every row of a CSV, a DP table's margins too.
pub fn read_all_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A small microdata policy; tests replace parts of it to break it.
pub const POLICY: &str = r#"
[release]
id = "small"

[dataset]
name = "people"
privacy_unit = "pid"
budget = { rho = 100.0 }

[inputs.people]
path = "people.csv"

[categories]
kind = ["a", "b", "c"]

[defaults]
suppress_below = 0

[[table]]
name = "by_kind"
input = "people"
statistic = "count_rows"
by = ["kind"]
max_rows_per_unit = 2
cost = { rho = 0.5 }

[[table]]
name = "amount_by_kind"
input = "people"
statistic = "sum"
column = "amount"
clamp = [0, 100]
max_rows_per_unit = 2
by = ["kind"]
cost = { epsilon = 1.0 }
"#;

pub const PEOPLE: &str = "pid,kind,amount\n1,a,5\n2,b,7\n2,c,9\n3,a,1000\n";

pub fn small() -> Scratch {
    let s = Scratch::new();
    s.write("policy.toml", POLICY).write("people.csv", PEOPLE);
    s
}

pub fn near_exact_policy(extra: &str) -> String {
    format!(
        r#"
[release]
id = "bounding"
[dataset]
name = "d"
privacy_unit = "pid"
budget = {{ rho = 1e12 }}
[inputs.rows]
path = "rows.csv"
[categories]
cell = [{cells}]
[defaults]
suppress_below = 0
{extra}
"#,
        cells = (0..50)
            .map(|i| format!("\"c{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A policy with one `count_units` table by `cell` over the aggregated input `agg.csv` (counts in
/// `n`), at cost `rho`.
pub fn aggregated_policy(rho: &str) -> String {
    let policy = near_exact_policy(&format!(
        r#"
[inputs.agg]
path = "agg.csv"
aggregated = true
count_column = "n"

[[table]]
name = "agg"
input = "agg"
statistic = "count_units"
by = ["cell"]
max_cells_per_unit = 1
cost = {{ rho = {rho} }}
"#
    ));
    replace_once(&policy, "[inputs.rows]\npath = \"rows.csv\"\n", "")
}

/// Replaces the one occurrence of `from` in `text`; a fixture edit that matched nothing (or
/// twice) would test something else than it says.
/// [`replace_once`] as a method, for chains of fixture edits: `t.once(a, b).once(c, d)`.
pub trait Once {
    fn once(&self, from: &str, to: &str) -> String;
}

impl Once for str {
    #[track_caller]
    fn once(&self, from: &str, to: &str) -> String {
        replace_once(self, from, to)
    }
}

#[track_caller]
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` must occur exactly once"
    );
    text.replacen(from, to, 1)
}

#[track_caller]
pub fn expect_refused(s: &Scratch, parts: &[&str]) {
    let before = s.entries();
    s.run(&["release", "policy.toml", "--out", "rel"])
        .expect_code(2)
        .stderr_has(parts);
    assert_eq!(s.entries(), before, "a refused release left files behind");
    assert!(!s.path("rel").exists());
}

/// A one-input policy with release id `id`, dataset budget `budget` (TOML inline table) and the
/// given tables (TOML).
pub fn ledger_policy(id: &str, budget: &str, tables: &str) -> String {
    format!(
        r#"
[release]
id = "{id}"
[dataset]
name = "people"
privacy_unit = "pid"
budget = {budget}
[inputs.people]
path = "people.csv"
[categories]
kind = ["a", "b", "c"]
{tables}
"#
    )
}

pub const GAUSS_TABLE: &str = r#"
[[table]]
name = "by_kind"
input = "people"
statistic = "count_units"
by = ["kind"]
max_cells_per_unit = 1
cost = { rho = 0.125 }
"#;

pub const LAPLACE_TABLE: &str = r#"
[[table]]
name = "amount"
input = "people"
statistic = "sum"
column = "amount"
clamp = [0, 100]
max_rows_per_unit = 2
by = ["kind"]
cost = { epsilon = 0.5 }
suppress_below = 0
"#;

pub fn budget_json(s: &Scratch) -> serde_json::Value {
    let run = s.run(&["budget", "--json", "--ledger", "ledger/people.jsonl"]);
    run.expect_code(0);
    serde_json::from_str::<serde_json::Value>(&run.stdout()).unwrap()[0].clone()
}

pub fn ledger_lines(s: &Scratch) -> Vec<String> {
    fs::read_to_string(s.path("ledger/people.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

pub fn write_ledger(s: &Scratch, lines: &[String]) {
    fs::write(
        s.path("ledger/people.jsonl"),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[track_caller]
pub fn assert_close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

pub fn two_releases() -> Scratch {
    let s = small();
    s.write(
        "policy.toml",
        &ledger_policy("r", "{ rho = 1.0 }", GAUSS_TABLE),
    );
    s.run(&["release", "policy.toml"]).expect_code(0);
    s.run(&["release", "policy.toml", "--new-version"])
        .expect_code(0);
    s.run(&["audit", "releases/r", "releases/r.v2"])
        .expect_code(0);
    s
}

pub fn audit_problems(s: &Scratch, dirs: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["audit", "--json"];
    args.extend(dirs);
    let run = s.run(&args);
    run.expect_code(4);
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["ok"], false);
    report["problems"].as_array().unwrap().clone()
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A policy over `people.csv` (`pid,region,amount`) with Korean region names, a catch-all, and
/// one near-exact count per region.
pub fn korean_policy(input_extra: &str) -> String {
    format!(
        r#"
[release]
id = "k"
[dataset]
name = "people"
privacy_unit = "pid"
budget = {{ rho = 1e12 }}
[inputs.people]
path = "people.csv"
{input_extra}
[categories]
region = ["서울", "부산", "기타"]
[catch_all]
region = "기타"
[defaults]
suppress_below = 0
[[table]]
name = "by_region"
input = "people"
statistic = "count_units"
by = ["region"]
max_cells_per_unit = 1
cost = {{ rho = 1e9 }}
"#
    )
}

/// Copies folder `from`'s files and folders into `to` (made if missing), recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
