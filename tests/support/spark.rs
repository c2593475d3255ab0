//! A throwaway Spark Connect server for the tests: PyPI's `pyspark` (4.x ships the server),
//! started once per test process on Debian's Java 17 with `--master local[2]`, listening on
//! 127.0.0.1 at a free port, and stopped when the process ends (the server gets SIGTERM when the
//! thread that started it dies, and that thread lives as long as the process).
//!
//! Spark is found at `SPARK_HOME`, else in the virtual environment `.ci/spark` makes
//! (`target/pyspark`). The tests' data reach it as headerless CSV files read by a `query`
//! ([`Server::csv_query`]), so that no client is needed to load them.
//! Shared by the unit tests (`src/input/sql/tests.rs`) and the CLI tests (`tests/cli/spark.rs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::process::{free_port, spawn_for_life};

/// The running server.
pub struct Server {
    pub port: u16,
    pub log: PathBuf,
}

/// The server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

impl Server {
    /// The Spark Connect connection string.
    pub fn url(&self) -> String {
        format!("sc://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `data` (a CSV text with a header line) written without its header to `dir/name.csv`,
    /// and a query that reads it with the header's column names, the `integers` as `BIGINT`
    /// and the others as strings (an empty field is NULL, as PostgreSQL's CSV reads it).
    pub fn csv_query(dir: &Path, name: &str, data: &str, integers: &[&str]) -> String {
        let (header, rows) = data.split_once('\n').unwrap_or((data, ""));
        let columns = |from: &dyn Fn(usize) -> String| {
            header
                .split(',')
                .enumerate()
                .map(|(i, c)| {
                    let ty = if integers.contains(&c) {
                        "BIGINT"
                    } else {
                        "STRING"
                    };
                    format!("CAST({} AS {ty}) AS `{c}`", from(i))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if rows.trim().is_empty() {
            // Spark reads no columns from an empty file: no rows of the same columns.
            return format!("SELECT {} FROM range(0)", columns(&|_| "NULL".to_string()));
        }
        let path = dir.join(format!("{name}.csv"));
        std::fs::write(&path, rows).unwrap();
        format!(
            "SELECT {} FROM csv.`{}`",
            columns(&|i| format!("_c{i}")),
            path.display()
        )
    }
}

/// Where pyspark is: `SPARK_HOME`, else `.ci/spark`'s virtual environment.
fn spark_home() -> PathBuf {
    if let Some(home) = std::env::var_os("SPARK_HOME") {
        return PathBuf::from(home);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyspark/lib");
    let found = std::fs::read_dir(&venv).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages/pyspark"))
            .find(|p| p.join("bin/spark-submit").exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "no Spark: set SPARK_HOME or run `bash .ci/spark` (installs pyspark into {})",
            venv.parent().unwrap().display()
        )
    })
}

fn start() -> Server {
    let home = spark_home();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("safestat-spark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("server folder");
    let log = dir.join("server.log");
    let mut cmd = Command::new(home.join("bin/spark-submit"));
    cmd.env("SPARK_HOME", &home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args([
            "--class",
            "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--name",
            "safestat tests",
            "--master",
            "local[2]",
            "--driver-memory",
            "1g",
        ])
        .args(
            [
                "spark.connect.grpc.binding.address=127.0.0.1".to_string(),
                format!("spark.connect.grpc.binding.port={port}"),
                "spark.ui.enabled=false".into(),
                "spark.sql.shuffle.partitions=4".into(),
                format!("spark.local.dir={}", dir.display()),
                format!(
                    "spark.sql.warehouse.dir={}",
                    dir.join("warehouse").display()
                ),
                format!(
                    "spark.driver.extraJavaOptions=-Dderby.system.home={}",
                    dir.display()
                ),
            ]
            .iter()
            .flat_map(|c| ["--conf".to_string(), c.clone()]),
        )
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    spawn_for_life(cmd, libc::SIGTERM)
        .unwrap_or_else(|e| panic!("cannot start Spark at {}: {e}", home.display()));
    let server = Server { port, log };
    let deadline = Instant::now() + Duration::from_secs(180);
    while !server.log().contains("Spark Connect server started") {
        assert!(
            Instant::now() < deadline,
            "the Spark Connect server did not start within 3 minutes; log: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}
