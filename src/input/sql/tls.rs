//! TLS to the PostgreSQL server, as libpq does it: `sslmode` (`disable`, `prefer`, `require`,
//! `verify-ca`, `verify-full`) and `sslrootcert` from the connection string, through the OpenSSL
//! opendp already links.
//!
//! The `postgres` crate parses only `sslmode=disable|prefer|require` and refuses `sslrootcert`,
//! so both are read off the connection string first ([`split`]), in either of its forms (a
//! `postgresql://` URL, or `key=value` pairs), and the rest is left to it. What each mode
//! protects against:
//!
//! - `disable`: nothing; the connection is plain text.
//! - `prefer` (libpq's default, and safestat's for a connection over TCP): encrypted when the
//!   server offers TLS, plain text when it does not; the server's certificate is not checked, so
//!   it stops a passive eavesdropper only. safestat says so on stderr at every connection.
//! - `require`: always encrypted (a server without TLS is refused), the certificate not checked:
//!   an eavesdropper is stopped, an impostor in the middle is not. Also said on stderr.
//! - `verify-ca`: encrypted, and the server's certificate is signed by an authority of
//!   `sslrootcert` (required: the system's public authorities sign anyone's certificate, so
//!   without the host name they would prove nothing).
//! - `verify-full`: the certificate is signed by an authority of `sslrootcert` (or of the system's
//!   store when it is absent or `system`) and names the host connected to: the only mode that
//!   stops an impostor with a certificate of its own.
//!
//! Over a Unix socket TLS is not used, whatever the mode (libpq ignores `sslmode` there too).

use std::path::PathBuf;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use postgres_openssl::MakeTlsConnector;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Mode, String> {
        MODES
            .iter()
            .find(|(name, _)| *name == value)
            .map(|&(_, mode)| mode)
            .ok_or_else(|| {
                format!(
                    "`sslmode={value}` is not a mode: use disable, prefer, require, verify-ca or verify-full"
                )
            })
    }

    /// The `postgres` crate's mode for it: the checks of the two verifying modes are the
    /// connector's ([`connector`]); the crate only needs to know that TLS is required.
    pub(super) fn as_postgres(self) -> postgres::config::SslMode {
        use postgres::config::SslMode;
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// What the mode does not check, said to the officer at each connection over TCP.
    pub(super) fn caveat(self) -> Option<&'static str> {
        match self {
            Mode::Disable => Some(
                "`sslmode=disable`: the connection is not encrypted; use `sslmode=verify-full` (with `sslrootcert`) over a network",
            ),
            Mode::Prefer => Some(
                "`sslmode=prefer` (the default): encrypted only if the server offers TLS, and the server's certificate is not checked; use `sslmode=verify-full` (with `sslrootcert`) to be sure of both",
            ),
            Mode::Require => Some(
                "`sslmode=require`: encrypted, but the server's certificate is not checked, so an impostor in the middle is not stopped; use `sslmode=verify-full` (with `sslrootcert`)",
            ),
            Mode::VerifyCa | Mode::VerifyFull => None,
        }
    }
}

/// What a connection string asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tls {
    pub(super) mode: Mode,
    /// `sslrootcert`: a file of trusted authorities' certificates (PEM); `None` for the
    /// system's store (absent, or `system`).
    pub(super) root: Option<PathBuf>,
}

/// The connection string without `sslmode` and `sslrootcert`, and what they ask (`prefer` and the
/// system's store when absent).
pub(super) fn split(url: &str) -> Result<(String, Tls), String> {
    let (rest, fields) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)?
    } else {
        split_pairs(url)?
    };
    let mut tls = Tls {
        mode: Mode::Prefer,
        root: None,
    };
    let mut root_given = None;
    for (key, value) in fields {
        match key.as_str() {
            "sslmode" => tls.mode = Mode::parse(&value)?,
            _ => root_given = Some(value),
        }
    }
    match (tls.mode, root_given.as_deref()) {
        // libpq reads a root certificate under `require` too (then verifies as verify-ca); a root
        // given with a mode that would not check it is refused rather than ignored.
        (Mode::Disable | Mode::Prefer | Mode::Require, Some(_)) => {
            return Err(format!(
                "`sslrootcert` is given, but `sslmode` is `{}`, which does not check the server's certificate: use `sslmode=verify-full`",
                mode_name(tls.mode)
            ));
        }
        // Any public authority signs certificates for anyone's domain: trusting all of them
        // without the host name proves nothing (libpq refuses `system` here too).
        (Mode::VerifyCa, None | Some("system")) => {
            return Err(
                "`sslmode=verify-ca` needs `sslrootcert`, a file of the authorities that sign your server's certificate: without the host name check, the system's public authorities would vouch for anyone's server. Use `sslmode=verify-full` with the system's store"
                    .to_string(),
            );
        }
        (_, Some(root)) if root != "system" => tls.root = Some(PathBuf::from(root)),
        _ => {}
    }
    Ok((rest, tls))
}

/// Each `sslmode` by its name, as libpq spells them.
const MODES: [(&str, Mode); 5] = [
    ("disable", Mode::Disable),
    ("prefer", Mode::Prefer),
    ("require", Mode::Require),
    ("verify-ca", Mode::VerifyCa),
    ("verify-full", Mode::VerifyFull),
];

fn mode_name(mode: Mode) -> &'static str {
    MODES
        .iter()
        .find(|&&(_, m)| m == mode)
        .map(|&(name, _)| name)
        .expect("every mode has its name")
}

/// The TLS fields safestat reads itself.
const FIELDS: [&str; 2] = ["sslmode", "sslrootcert"];

/// A URL's query without [`FIELDS`] (each percent-decoded), and those fields. The query is found
/// as the `postgres` crate finds it: after the user and password (up to the first `@`), from the
/// first `?`.
fn split_url(url: &str) -> Result<(String, Vec<(String, String)>), String> {
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(q) = url[after_credentials..].find('?') else {
        return Ok((url.to_string(), Vec::new()));
    };
    let (base, query) = (
        &url[..after_credentials + q],
        &url[after_credentials + q + 1..],
    );
    let mut kept = Vec::new();
    let mut fields = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "the connection string's query is not UTF-8".to_string())
        };
        let key_text = decode(key)?;
        if FIELDS.contains(&key_text.as_str()) {
            fields.push((key_text, decode(value)?));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, fields))
}

/// `key=value` pairs (values quoted with `'`, `\` escaping, as libpq reads them) without
/// [`FIELDS`], written back quoted, and those fields.
fn split_pairs(text: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut kept = Vec::new();
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The word is not named: it may be the tail of an unquoted password.
            return Err(
                "a word of the connection string has no `=` and value (quote values with spaces: `password='...'`)"
                    .to_string(),
            );
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "the value of `{key}` in the connection string has no closing quote"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if FIELDS.contains(&key.as_str()) {
            fields.push((key, value));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Ok((kept.join(" "), fields))
}

/// The OpenSSL connector for `tls`: no check under `prefer` and `require` (libpq's meaning),
/// the chain to `tls.root` under `verify-ca`, and the chain to it (or to the system's store)
/// with the host name under `verify-full`.
pub(super) fn connector(tls: &Tls) -> Result<MakeTlsConnector, String> {
    let ssl = |e: openssl::error::ErrorStack| format!("OpenSSL: {e}");
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(ssl)?;
    let verify = matches!(tls.mode, Mode::VerifyCa | Mode::VerifyFull);
    if !verify {
        builder.set_verify(SslVerifyMode::NONE);
    } else if let Some(root) = &tls.root {
        let pem = std::fs::read(root)
            .map_err(|e| format!("`sslrootcert` file `{}`: {e}", root.display()))?;
        let certs = X509::stack_from_pem(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                format!(
                    "`sslrootcert` file `{}` holds no certificate in PEM form",
                    root.display()
                )
            })?;
        // Only the given authorities: the system's store is not consulted (as libpq).
        let mut store = X509StoreBuilder::new().map_err(ssl)?;
        for cert in certs {
            store.add_cert(cert).map_err(ssl)?;
        }
        builder.set_cert_store(store.build());
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    let host_name = tls.mode == Mode::VerifyFull;
    connector.set_callback(move |config, _| {
        config.set_verify_hostname(host_name);
        Ok(())
    });
    Ok(connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_fields_are_read_off_both_forms_of_connection_string() {
        let (rest, tls) = split(
            "postgresql://officer:pw@db.example:5433/registers?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca%20dir%2Froot.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://officer:pw@db.example:5433/registers?application_name=x"
        );
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root, Some(PathBuf::from("/etc/ca dir/root.pem")));

        let (rest, tls) = split(
            "host=db.example port=5433 sslmode = verify-ca user=officer password='it\\'s a secret' sslrootcert='/etc/ca dir/root.pem'",
        )
        .unwrap();
        assert_eq!(
            rest,
            "host='db.example' port='5433' user='officer' password='it\\'s a secret'"
        );
        assert_eq!(tls.mode, Mode::VerifyCa);
        assert_eq!(tls.root, Some(PathBuf::from("/etc/ca dir/root.pem")));
        // What is left parses as the postgres crate reads it, the password intact.
        let config: postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"it's a secret"[..]));

        // The default is prefer, with the system's store.
        let (rest, tls) = split("postgresql://db.example/registers").unwrap();
        assert_eq!(rest, "postgresql://db.example/registers");
        assert_eq!((tls.mode, tls.root), (Mode::Prefer, None));
        let (_, tls) = split("host=db sslmode=verify-full sslrootcert=system").unwrap();
        assert_eq!((tls.mode, tls.root), (Mode::VerifyFull, None));
        // A `?` in the password is not the query's start (the credentials end at the first `@`).
        let (rest, tls) =
            split("postgresql://u:pa?ss@db/x?sslmode=require&connect_timeout=5").unwrap();
        assert_eq!(rest, "postgresql://u:pa?ss@db/x?connect_timeout=5");
        assert_eq!(tls.mode, Mode::Require);
    }

    #[test]
    fn a_bad_mode_or_a_root_that_would_not_be_checked_is_refused() {
        let err = split("host=db sslmode=verify_full").unwrap_err();
        assert!(err.contains("`sslmode=verify_full` is not a mode"), "{err}");
        let err = split("postgresql://db/x?sslmode=require&sslrootcert=/ca.pem").unwrap_err();
        assert!(
            err.contains("does not check the server's certificate"),
            "{err}"
        );
        let err = split("host=db password='open").unwrap_err();
        assert!(err.contains("no closing quote"), "{err}");
        for url in [
            "host=db sslmode=prefer sslrootcert=system",
            "host=db sslmode=verify-ca",
            "host=db sslmode=verify-ca sslrootcert=system",
        ] {
            assert!(split(url).is_err(), "{url}");
        }
        // An unquoted password's tail is not repeated in the message.
        let err = split("host=db password=my secret").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }
}
