//! DSN parsing (libpq URLs and key=value strings) with a password-free description.
//!
//! The TLS options are taken out first ([`Tls::extract`]); the driver parses
//! the rest.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::config::Host;

use super::tls::{Tls, URL_PREFIXES};
use crate::config::Role;
use crate::error::{describe, Error, Result};

/// A parsed connection string. Its `Debug` and `Display` never show the password.
#[derive(Clone)]
pub(crate) struct Dsn {
    pub(crate) config: tokio_postgres::Config,
    /// `user@host:port/dbname`, for messages.
    pub(crate) target: String,
    /// `sslmode`, `sslrootcert`, `sslcert` and `sslkey`.
    pub(crate) tls: Tls,
}

impl Dsn {
    /// Parse `dsn` for the pool of `role`.
    pub(crate) fn parse(dsn: &str, role: Role) -> Result<Dsn> {
        if dsn.trim().is_empty() {
            return Err(Error::config(format!("the {role} DSN is empty")));
        }
        let invalid = format!("invalid {role} DSN");
        check_url_shape(dsn).map_err(|e| e.prefixed(&invalid))?;
        let (tls, rest) = Tls::extract(dsn).map_err(|e| e.prefixed(&invalid))?;
        // The driver's parse errors name the offending option, never its value.
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| Error::config(format!("{invalid}: {}", describe(&e))))?;
        config.ssl_mode(tls.driver_mode());
        if config.get_hosts().is_empty() {
            return Err(Error::config(format!("the {role} DSN names no host")));
        }
        if config.get_ports().contains(&0) {
            // libpq: "invalid port number"; the driver would dial it.
            return Err(Error::config(format!("{invalid}: port 0")));
        }
        if let Some(option) = nul_in(&config) {
            // The startup packet's strings end at NUL: the driver would
            // send a corrupt packet. The value is not shown (the password).
            return Err(Error::config(format!(
                "{invalid}: {option} contains a NUL byte"
            )));
        }
        let target = target_of(&config);
        Ok(Dsn {
            config,
            target,
            tls,
        })
    }
}

/// Refuse a URL the driver would split in the wrong place, putting part of
/// the password (or a `password=` parameter) into the user, host or
/// database name, and so into every message that names the target. The
/// driver ends the credentials at the first `@`; it is right only when
/// that `@` is the only one and comes before the host. The error shows
/// nothing of the URL.
fn check_url_shape(dsn: &str) -> Result<()> {
    let Some(rest) = URL_PREFIXES.iter().find_map(|p| dsn.strip_prefix(p)) else {
        return Ok(());
    };
    let Some((credentials, after)) = rest.split_once('@') else {
        return Ok(());
    };
    let encode = "percent-encode @ as %40 and / as %2F in the user name and password";
    if after.contains('@') {
        return Err(Error::config(format!(
            "the URL holds more than one unencoded @ ({encode}, and @ elsewhere)"
        )));
    }
    let user = credentials.split(':').next().unwrap_or_default();
    if credentials.contains('/') || user.contains('?') {
        // libpq ends the host at the first `/`: an `@` after it is in the
        // database name or a parameter, not the end of credentials.
        return Err(Error::config(format!(
            "the URL's @ is not in its credentials, or they hold an unencoded / or ? ({encode})"
        )));
    }
    Ok(())
}

/// The first option whose value holds a NUL byte.
fn nul_in(config: &tokio_postgres::Config) -> Option<&'static str> {
    let has_nul = |s: Option<&str>| s.is_some_and(|s| s.contains('\0'));
    let hosts = config
        .get_hosts()
        .iter()
        .any(|h| matches!(h, Host::Tcp(name) if name.contains('\0')));
    [
        ("host", hosts),
        ("user", has_nul(config.get_user())),
        ("dbname", has_nul(config.get_dbname())),
        ("options", has_nul(config.get_options())),
        ("application_name", has_nul(config.get_application_name())),
        (
            "password",
            config.get_password().is_some_and(|p| p.contains(&0)),
        ),
    ]
    .into_iter()
    .find_map(|(option, nul)| nul.then_some(option))
}

fn target_of(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{}/{db}", hosts.join(","))
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({})", self.target)
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_key_value_strings_parse() {
        let url = Dsn::parse(
            "postgres://app:s3cret@db.example:6432/shop?sslmode=disable",
            Role::Write,
        )
        .unwrap();
        assert_eq!(url.target, "app@db.example:6432/shop");
        let kv = Dsn::parse(
            "host=127.0.0.1 port=5433 user=app password=s3cret dbname=shop",
            Role::Read,
        )
        .unwrap();
        assert_eq!(kv.target, "app@127.0.0.1:5433/shop");
    }

    #[test]
    fn passwords_never_show() {
        let dsn = Dsn::parse("postgres://app:s3cret@h/db", Role::Write).unwrap();
        assert!(!format!("{dsn:?} {dsn}").contains("s3cret"));
        for bad in [
            "postgres://app:s3cret@h/db?sslmode=bogus",
            "host=h password=s3cret port=notaport",
            "postgres:/app:s3cret@h/db?sslmode=disable",
            "postgresql+psycopg://app:s3cret@h/db?sslmode=disable",
            "jdbc:postgresql://h/db?user=app&password=s3cret",
            "postgres://app:s3@cret@h/db",
            "postgres://app:s3@cret/x@h/db",
            "postgres://h/db?user=app&password=s3cret&application_name=a@b",
            "postgres://h?password=s3cret@b",
            "postgres://h?user=a&password=x:s3cret@b",
            "postgres://app@h/db?password=x&s3cret=1",
            "host=h password=x s3cret=1",
            "postgres://app@h/db?sslmode=s3cret",
        ] {
            let err = Dsn::parse(bad, Role::Write).unwrap_err();
            assert!(!format!("{err} {err:?}").contains("s3cret"), "{err}");
            assert_eq!(err.kind(), crate::error::ErrorKind::Config);
        }
    }

    #[test]
    fn a_single_at_sign_ending_the_credentials_still_parses() {
        for (dsn, password) in [
            (
                "postgres://app:s3%40cret@h/db?application_name=a%40b",
                "s3@cret",
            ),
            ("postgres://app:p?w:x&y=z@h/db", "p?w:x&y=z"),
            ("postgres://h/db?user=app&password=s3cret", "s3cret"),
        ] {
            let parsed = Dsn::parse(dsn, Role::Write).unwrap_or_else(|e| panic!("{dsn}: {e}"));
            assert_eq!(parsed.config.get_password(), Some(password.as_bytes()));
            assert_eq!(parsed.target, "app@h:5432/db");
        }
    }

    #[test]
    fn tls_options_are_taken_out_before_the_driver_parses() {
        use tokio_postgres::config::SslMode;
        for dsn in [
            "postgres://app:s3cret@db/shop?sslmode=verify-full&sslrootcert=/ca.pem",
            "host=db user=app password=s3cret dbname=shop sslmode=verify-full sslrootcert=/ca.pem",
        ] {
            let dsn = Dsn::parse(dsn, Role::Write).unwrap();
            assert_eq!(dsn.config.get_ssl_mode(), SslMode::Require);
            assert_eq!(dsn.config.get_password(), Some(&b"s3cret"[..]));
            assert_eq!(dsn.target, "app@db:5432/shop");
        }
        let err = Dsn::parse("host=db sslmode=verify-fool", Role::Read).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid read DSN: unknown sslmode \"ver…\" (11 bytes)"),
            "{err}"
        );
    }

    #[test]
    fn port_0_nul_bytes_and_stray_equals_are_refused() {
        for bad in [
            "postgres://app@h:0/db",
            "host=h port=0",
            "postgres://app@h/db?application_name=a%00b",
            "postgres://app:s3%00cret@h/db",
            "host=h dbname=a\0b",
            "host=h =x sslmode=verify-full",
        ] {
            let err = Dsn::parse(bad, Role::Write).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{bad}: {err}");
            assert!(!err.to_string().contains("s3"), "{err}");
        }
    }

    #[test]
    fn empty_dsns_are_refused() {
        let err = Dsn::parse("  ", Role::Write).unwrap_err();
        assert_eq!(err.to_string(), "the write DSN is empty");
    }
}
