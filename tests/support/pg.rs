//! A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary folder (as `nobody`
//! when the tests run as root, since PostgreSQL refuses to run as root), a Unix socket in that
//! folder and no TCP port ([`cluster`]; [`tls_cluster`] and [`plain_tcp_cluster`] also listen
//! on 127.0.0.1 at a free port, with TLS from a CA made in the test or without it), each
//! started once per test process and shut down when the process ends
//! (the server gets SIGINT, a fast shutdown, when the thread that started it dies, and that
//! thread lives as long as the process). Folders left by earlier processes are removed at start.
//!
//! Needs PostgreSQL's server programs (`apt-get install -y postgresql`; `.ci/run` installs them).
//! Shared by the unit tests (`src/input/sql/tests.rs`) and the CLI tests (`tests/cli/sql.rs`).

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::process::{free_port, spawn_for_life};

/// The running cluster: its socket folder and the superuser's name.
pub struct Cluster {
    pub socket_dir: PathBuf,
    pub port: u16,
    /// The superuser, who connects over the socket without a password.
    pub superuser: String,
    /// Whether it also listens on 127.0.0.1 (at `port`), where everyone gives a password.
    pub tcp: bool,
    /// Its certificates, when it offers TLS.
    pub certs: Option<Certs>,
}

/// A TLS cluster's certificates (PEM files): the authority that signed the server's
/// certificate (which names `localhost` only), and another authority that signed nothing.
pub struct Certs {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
}

/// How a cluster listens besides its Unix socket.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listen {
    SocketOnly,
    Tcp { tls: bool },
}

/// A user with a password, who must give it (scram-sha-256): for the refused-login tests.
pub const OFFICER: &str = "officer";
pub const OFFICER_PASSWORD: &str = "correct horse battery";

const PREFIX: &str = "safestat-pg-";

/// The cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| start(Listen::SocketOnly))
}

/// A cluster that also listens on 127.0.0.1 with `ssl = on`, its certificate signed by a CA made
/// for it ([`Certs`]), started on first use.
pub fn tls_cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| start(Listen::Tcp { tls: true }))
}

/// A cluster that also listens on 127.0.0.1 in plain text only, started on first use.
pub fn plain_tcp_cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| start(Listen::Tcp { tls: false }))
}

impl Cluster {
    /// A key=value connection string for `user` (and `password`) on database `db`.
    pub fn url(&self, db: &str, user: &str, password: Option<&str>) -> String {
        let mut url = format!(
            "host={} port={} user={user} dbname={db}",
            self.socket_dir.display(),
            self.port
        );
        if let Some(p) = password {
            url.push_str(&format!(" password='{p}'"));
        }
        url
    }

    /// A key=value connection string for `officer` on database `db` over TCP to `host` (which
    /// reaches 127.0.0.1), with `extra` fields.
    pub fn tcp_url(&self, host: &str, db: &str, extra: &str) -> String {
        assert!(self.tcp, "a cluster that listens on TCP");
        format!(
            "host={host} port={} user={OFFICER} dbname={db} password='{OFFICER_PASSWORD}' {extra}",
            self.port
        )
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.socket_dir.join("server.log")).unwrap_or_default()
    }

    /// The superuser's connection string for `db`.
    pub fn admin_url(&self, db: &str) -> String {
        self.url(db, &self.superuser, None)
    }

    pub fn connect(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.admin_url(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"))
    }

    /// A fresh, empty database (its name unique in this process) that `officer` may read.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = self.connect("postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let mut db = self.connect(&name);
        db.batch_execute(&format!(
            "GRANT CONNECT ON DATABASE {name} TO {OFFICER};
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {OFFICER};"
        ))
        .expect("grant");
        name
    }

    /// Creates table `name` in `db` from a CSV file's header and rows (every column `text`,
    /// but those listed in `integers`, which are `bigint`).
    pub fn load_csv(&self, db: &str, name: &str, csv: &Path, integers: &[&str]) {
        let text = std::fs::read_to_string(csv).expect("read csv");
        let header = text.lines().next().expect("header");
        let columns: Vec<String> = header
            .split(',')
            .map(|c| {
                let ty = if integers.contains(&c) {
                    "bigint"
                } else {
                    "text"
                };
                format!("\"{c}\" {ty}")
            })
            .collect();
        let mut client = self.connect(db);
        client
            .batch_execute(&format!("CREATE TABLE {name} ({})", columns.join(", ")))
            .expect("create table");
        let mut writer = client
            .copy_in(&format!("COPY {name} FROM STDIN (FORMAT csv, HEADER true)"))
            .expect("copy");
        std::io::Write::write_all(&mut writer, text.as_bytes()).expect("copy rows");
        writer.finish().expect("copy finish");
    }
}

/// The folder of PostgreSQL's server programs: `SAFESTAT_PG_BIN`, else Debian's
/// `/usr/lib/postgresql/<newest>/bin`, else whatever folder of `PATH` holds `initdb`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SAFESTAT_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").exists())
        .expect(
            "PostgreSQL's server programs (initdb, postgres) are not installed: `apt-get install -y postgresql`, or set SAFESTAT_PG_BIN",
        )
}

/// The unprivileged user the server runs as when the tests run as root: `nobody`.
fn server_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } == 0).then_some((65534, 65534))
}

/// Removes the folders of clusters whose test process is gone.
fn remove_stale(tmp: &Path) {
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start(listen: Listen) -> Cluster {
    let bin = bin_dir();
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    let dir = tmp.join(format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir(&dir).expect("cluster folder");
    let ids = server_ids();
    if let Some((uid, gid)) = ids {
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), uid, gid) }, 0, "chown");
    }
    let data = dir.join("data");
    let superuser = "postgres".to_string();
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            &superuser,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ])
        .stdout(Stdio::null());
    if let Some((uid, gid)) = ids {
        initdb.uid(uid).gid(gid);
    }
    let out = initdb.output().expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The superuser trusts the socket; everyone else gives a password, on TCP too, where a
    // cluster with TLS refuses every connection without it.
    let tcp = match listen {
        Listen::Tcp { tls: true } => {
            "hostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n"
        }
        _ => "host all all 127.0.0.1/32 scram-sha-256\n",
    };
    std::fs::write(
        data.join("pg_hba.conf"),
        format!("local all {superuser} trust\nlocal all all scram-sha-256\n{tcp}"),
    )
    .expect("pg_hba.conf");
    let (port, mut settings) = match listen {
        Listen::SocketOnly => (5432, vec!["listen_addresses=".to_string()]),
        Listen::Tcp { .. } => (
            free_port(),
            // Each connection logged, with whether it was encrypted (`SSL enabled`).
            vec![
                "listen_addresses=127.0.0.1".into(),
                "log_connections=on".into(),
            ],
        ),
    };
    let certs = (listen == Listen::Tcp { tls: true }).then(|| {
        let (certs, server) = make_certs(&dir, ids);
        settings.push("ssl=on".into());
        settings.push(format!("ssl_cert_file={}", server.0.display()));
        settings.push(format!("ssl_key_file={}", server.1.display()));
        certs
    });
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .args(["-p", &port.to_string()])
        .args(settings.iter().flat_map(|c| ["-c", c.as_str()]))
        .args(["-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).expect("log"));
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid);
    }
    // SIGINT: PostgreSQL's fast shutdown.
    spawn_for_life(cmd, libc::SIGINT).unwrap_or_else(|e| panic!("cannot start postgres: {e}"));
    let cluster = Cluster {
        socket_dir: dir.clone(),
        port,
        superuser,
        tcp: listen != Listen::SocketOnly,
        certs,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match postgres::Client::connect(&cluster.admin_url("postgres"), postgres::NoTls) {
            Ok(mut c) => {
                c.batch_execute(&format!(
                    "CREATE ROLE {OFFICER} LOGIN PASSWORD '{OFFICER_PASSWORD}'"
                ))
                .expect("create role");
                break;
            }
            Err(e) if Instant::now() > deadline => panic!(
                "the test cluster did not start: {e}; log: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    cluster
}

/// Makes, with the `openssl` command, a CA and a server certificate it signs for `localhost`
/// (the key readable by the server's user only), and another CA: the certificates, and the
/// server's certificate and key files.
fn make_certs(dir: &Path, ids: Option<(u32, u32)>) -> (Certs, (PathBuf, PathBuf)) {
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).expect("certs folder");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .expect("run openssl (apt-get install -y openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, subject) in [
        ("ca", "/CN=safestat test CA"),
        ("other_ca", "/CN=another CA"),
    ] {
        let (k, c) = (format!("{name}.key"), format!("{name}.pem"));
        openssl(
            &[
                &["req", "-x509"][..],
                &key,
                &["-keyout", &k, "-out", &c, "-days", "2", "-subj", subject],
            ]
            .concat(),
        );
    }
    openssl(
        &[
            &["req"][..],
            &key,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(certs.join("san.ext"), "subjectAltName=DNS:localhost\n").expect("san.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let server_key = certs.join("server.key");
    std::fs::set_permissions(
        &server_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("key mode");
    if let Some((uid, gid)) = ids {
        for f in ["server.key", "server.pem"] {
            let c = std::ffi::CString::new(certs.join(f).as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), uid, gid) }, 0, "chown");
        }
    }
    (
        Certs {
            ca: certs.join("ca.pem"),
            other_ca: certs.join("other_ca.pem"),
        },
        (certs.join("server.pem"), server_key),
    )
}
