//! TLS with libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`, through
//! OpenSSL (postgres-openssl).
//!
//! tokio-postgres parses only `sslmode=disable|prefer|require` and knows no
//! certificate options, so these four options are taken out of a DSN
//! (`super::options`) before the driver parses the rest, and made into a
//! [`Tls`] here. The driver is then told
//! [`Tls::driver_mode`] and connects through [`Tls::connector`], an OpenSSL
//! connector set up for the mode. A pool uses one connector for its
//! connections and for the cancel requests of its query timeouts.
//!
//! | sslmode | TLS | what is verified |
//! |---|---|---|
//! | `disable` | never | nothing |
//! | `prefer` (the default) | when the server offers it, else plain text | nothing |
//! | `require` | always | nothing, or the chain when `sslrootcert` is a file (libpq's rule) |
//! | `verify-ca` | always | the chain, against `sslrootcert` or the system's CAs |
//! | `verify-full` | always | the chain, and that the certificate names the host |
//!
//! Nothing here ever falls back from TLS to plain text: `require` and
//! stricter fail against a server without TLS, and `prefer` goes plain only
//! when the server says it has no TLS, never after a failed handshake.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::error::ErrorStack;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;
use postgres_openssl::MakeTlsConnector;

use super::options::TlsOptions;
use crate::error::{redacted, Error, Result};

/// `sslmode`, with libpq's meanings. libpq's `allow` (plain text first, TLS
/// only if the server insists) is not offered: tokio-postgres cannot do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, its certificate not checked; plain
    /// text when the server has no TLS.
    Prefer,
    /// TLS or no connection; the certificate is checked only against an
    /// `sslrootcert` file given (then as in `VerifyCa`).
    Require,
    /// TLS; the server's certificate chain is verified, its host name is not.
    VerifyCa,
    /// TLS; the chain is verified and the certificate must name the host
    /// connected to (a DNS name or an IP address in its subjectAltName).
    VerifyFull,
}

impl SslMode {
    /// Every mode, with its `sslmode` value.
    const ALL: [(&'static str, SslMode); 5] = [
        ("disable", SslMode::Disable),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];

    /// The mode an `sslmode` value names. An unknown one is quoted only as
    /// a short redacted prefix: in a malformed DSN it can be part of the
    /// password.
    fn parse(value: &str) -> Result<SslMode> {
        if let Some((_, mode)) = SslMode::ALL.iter().find(|(name, _)| *name == value) {
            return Ok(*mode);
        }
        if value == "allow" {
            return Err(Error::config(
                "sslmode \"allow\" is not supported (it tries plain text first); \
                 use prefer or stricter",
            ));
        }
        Err(Error::config(format!(
            "unknown sslmode {} (expected disable, prefer, require, verify-ca or verify-full)",
            redacted(value)
        )))
    }

    /// The `sslmode` value of this mode.
    fn as_str(self) -> &'static str {
        SslMode::ALL
            .iter()
            .find(|(_, mode)| *mode == self)
            .map_or("?", |(name, _)| name)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of the server's certificate a connection checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: encryption without authentication of the server.
    Nothing,
    /// The chain up to a trusted CA.
    Chain,
    /// The chain, and the host name against the certificate's names.
    ChainAndHost,
}

/// The CA certificates a verifying connection trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// No `sslrootcert`: the system's trusted CAs (OpenSSL's default paths).
    /// libpq would read `~/.postgresql/root.crt` instead.
    Default,
    /// `sslrootcert=system`: the system's trusted CAs, asked for by name;
    /// as in libpq, only with `verify-full`.
    System,
    /// `sslrootcert=PATH`: the CAs in that PEM file, and no others.
    File(PathBuf),
}

/// A client certificate (`sslcert`, a PEM chain, leaf first) and its
/// unencrypted private key (`sslkey`), presented when the server asks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientCert {
    cert: PathBuf,
    key: PathBuf,
}

/// The TLS settings of one DSN. Paths only: files are read when the
/// connector is built, so a bad file fails `open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    mode: SslMode,
    roots: Roots,
    client: Option<ClientCert>,
}

/// The driver's answer when the server refuses the SSLRequest
/// (tokio-postgres `connect_tls`).
const NO_TLS_ON_SERVER: &str = "server does not support TLS";

/// OpenSSL's reason when the server's certificate failed verification
/// (`SSL_R_CERTIFICATE_VERIFY_FAILED`, the same text in OpenSSL 1.1 and 3).
const VERIFY_FAILED: &str = "certificate verify failed";

impl Tls {
    /// The settings `sslmode`, `sslrootcert`, `sslcert` and `sslkey` make.
    pub(crate) fn from_options(written: TlsOptions) -> Result<Tls> {
        // libpq treats an empty sslrootcert, sslcert or sslkey as unset.
        let given = |value: Option<String>| value.filter(|v| !v.is_empty());
        let roots = match given(written.sslrootcert) {
            None => Roots::Default,
            Some(value) if value == "system" => Roots::System,
            Some(path) => Roots::File(path.into()),
        };
        let mode = match written.sslmode.as_deref() {
            Some(value) => SslMode::parse(value)?,
            // libpq 16: sslrootcert=system makes verify-full the default.
            None if roots == Roots::System => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if roots == Roots::System && mode != SslMode::VerifyFull {
            return Err(Error::config(format!(
                "sslrootcert=system needs sslmode=verify-full, not {mode}"
            )));
        }
        let client = match (given(written.sslcert), given(written.sslkey)) {
            (Some(cert), Some(key)) => Some(ClientCert {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => None,
            (Some(_), None) => return Err(Error::config("sslcert is set but sslkey is not")),
            (None, Some(_)) => return Err(Error::config("sslkey is set but sslcert is not")),
        };
        Ok(Tls {
            mode,
            roots,
            client,
        })
    }

    /// The mode the driver is told: it knows only whether TLS is off,
    /// optional or required; the checks are the connector's.
    pub(crate) fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }

    fn check(&self) -> Check {
        match self.mode {
            SslMode::Disable | SslMode::Prefer => Check::Nothing,
            // libpq: "if a root CA file exists, the behavior of
            // sslmode=require will be the same as that of verify-ca".
            SslMode::Require if matches!(self.roots, Roots::File(_)) => Check::Chain,
            SslMode::Require => Check::Nothing,
            SslMode::VerifyCa => Check::Chain,
            SslMode::VerifyFull => Check::ChainAndHost,
        }
    }

    /// The OpenSSL connector for these settings, reading the certificate
    /// and key files (a `Config` error naming the file when one cannot be
    /// used). With `disable` the driver never calls it.
    ///
    /// Settings that verify nothing and present no certificate read no
    /// file, so they share one connector per process: OpenSSL's builder
    /// loads the system's CA store whether it is used or not (about 30 ms
    /// here), and every pool and listener would pay that at each open.
    pub(crate) fn connector(&self) -> Result<MakeTlsConnector> {
        static UNVERIFIED: OnceLock<MakeTlsConnector> = OnceLock::new();
        let check = self.check();
        let client = self
            .client
            .as_ref()
            .filter(|_| self.mode != SslMode::Disable);
        if check != Check::Nothing || client.is_some() {
            return self.build(check, client);
        }
        if let Some(shared) = UNVERIFIED.get() {
            return Ok(shared.clone());
        }
        let built = self.build(check, None)?;
        Ok(UNVERIFIED.get_or_init(|| built).clone())
    }

    fn build(&self, check: Check, client: Option<&ClientCert>) -> Result<MakeTlsConnector> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| Error::config(format!("cannot set up OpenSSL: {e}")))?;
        if check == Check::Nothing {
            builder.set_verify(SslVerifyMode::NONE);
        } else {
            builder.set_verify(SslVerifyMode::PEER);
            if let Roots::File(path) = &self.roots {
                // Replaces the system store: only this file's CAs are trusted.
                builder.set_cert_store(trusted_cas(path)?);
            }
        }
        if let Some(client) = client {
            client.install(&mut builder)?;
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        let host_checked = check == Check::ChainAndHost;
        connector.set_callback(move |connection, _host| {
            // OpenSSL checks the name (or IP address) the driver connects to
            // unless told not to; only verify-full wants that.
            connection.set_verify_hostname(host_checked);
            Ok(())
        });
        Ok(connector)
    }

    /// What the settings make of a failed connection, when TLS is the
    /// reason: the server has no TLS (and the mode needs it), or its
    /// certificate failed verification. `None` for any other failure.
    pub(crate) fn refusal(&self, err: &(dyn StdError + 'static)) -> Option<String> {
        let mut cause = Some(err);
        while let Some(err) = cause {
            if err.to_string() == NO_TLS_ON_SERVER {
                return Some(format!(
                    "the server does not accept TLS, and sslmode={} never falls back to plain text",
                    self.mode
                ));
            }
            if verification_failed(err) {
                return Some(format!(
                    "certificate verification failed (sslmode={}: {})",
                    self.mode,
                    self.what_is_verified()
                ));
            }
            cause = err.source();
        }
        None
    }

    /// For messages: what a verifying connection checks, against what.
    fn what_is_verified(&self) -> String {
        let against = match &self.roots {
            Roots::File(path) => format!("the CAs in sslrootcert \"{}\"", path.display()),
            Roots::Default | Roots::System => "the system's trusted CAs".to_owned(),
        };
        match self.check() {
            Check::ChainAndHost => {
                format!("the chain against {against}, and that the certificate names the host")
            }
            Check::Chain | Check::Nothing => format!("the chain against {against}"),
        }
    }
}

/// True when `err` is OpenSSL saying the server's certificate failed
/// verification (postgres-openssl's message then adds why: "self-signed
/// certificate in certificate chain", "hostname mismatch", ...).
fn verification_failed(err: &(dyn StdError + 'static)) -> bool {
    err.downcast_ref::<openssl::ssl::Error>()
        .and_then(openssl::ssl::Error::ssl_error)
        .is_some_and(|stack| {
            stack
                .errors()
                .iter()
                .any(|e| e.reason() == Some(VERIFY_FAILED))
        })
}

/// The certificates of the PEM file `path` (named by `option`), at least one.
fn certificates(option: &str, path: &Path) -> Result<Vec<X509>> {
    let certs = read_pem(option, path, X509::stack_from_pem)?;
    if certs.is_empty() {
        return Err(file_error(option, path, "it holds no PEM certificate"));
    }
    Ok(certs)
}

/// A store trusting exactly the CA certificates of `path` (`sslrootcert`).
fn trusted_cas(path: &Path) -> Result<X509Store> {
    let failed = |e: ErrorStack| file_error("sslrootcert", path, e);
    let mut store = X509StoreBuilder::new().map_err(failed)?;
    for cert in certificates("sslrootcert", path)? {
        store.add_cert(cert).map_err(failed)?;
    }
    Ok(store.build())
}

impl ClientCert {
    /// Present this certificate and key on every connection of `builder`.
    fn install(&self, builder: &mut SslConnectorBuilder) -> Result<()> {
        let cert_failed = |e: ErrorStack| file_error("sslcert", &self.cert, e);
        let mut chain = certificates("sslcert", &self.cert)?.into_iter();
        if let Some(leaf) = chain.next() {
            builder.set_certificate(&leaf).map_err(cert_failed)?;
        }
        for intermediate in chain {
            builder
                .add_extra_chain_cert(intermediate)
                .map_err(cert_failed)?;
        }
        // An empty passphrase: an encrypted key fails here instead of
        // OpenSSL prompting on the terminal (sslpassword is not supported).
        let key = read_pem("sslkey", &self.key, |pem| {
            PKey::private_key_from_pem_passphrase(pem, b"")
        })?;
        builder
            .set_private_key(&key)
            .map_err(|e| file_error("sslkey", &self.key, e))?;
        builder.check_private_key().map_err(|_| {
            let cert = self.cert.display();
            file_error(
                "sslkey",
                &self.key,
                format!("it does not match sslcert \"{cert}\""),
            )
        })
    }
}

/// Read the PEM file `path`, named by DSN option `option`, and parse it.
fn read_pem<T>(
    option: &str,
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, ErrorStack>,
) -> Result<T> {
    let pem = std::fs::read(path).map_err(|e| file_error(option, path, e))?;
    parse(&pem).map_err(|e| file_error(option, path, e))
}

/// A `Config` error naming the option and its file (paths are not secret).
fn file_error(option: &str, path: &Path, why: impl fmt::Display) -> Error {
    Error::config(format!("cannot use {option} \"{}\": {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_extract(dsn: &str) -> Result<(Tls, String)> {
        let (taken, rest) = super::super::options::take_options(dsn)?;
        Ok((Tls::from_options(taken.tls)?, rest))
    }

    fn extract(dsn: &str) -> (Tls, String) {
        try_extract(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"))
    }

    fn file(path: &str) -> Roots {
        Roots::File(path.into())
    }

    #[test]
    fn every_mode_parses_in_urls_and_key_value_strings() {
        for (name, mode) in SslMode::ALL {
            let (tls, rest) = extract(&format!("postgres://app@db/shop?sslmode={name}"));
            assert_eq!((tls.mode, rest.as_str()), (mode, "postgres://app@db/shop"));
            let (tls, rest) = extract(&format!("host=db sslmode={name} user=app"));
            assert_eq!((tls.mode, rest.as_str()), (mode, "host=db  user=app"));
            assert_eq!(mode.to_string(), name);
        }
    }

    #[test]
    fn prefer_is_the_default_as_in_libpq() {
        for dsn in ["postgres://app@db/shop", "host=db user=app"] {
            let (tls, rest) = extract(dsn);
            assert_eq!(tls.mode, SslMode::Prefer);
            assert_eq!(rest, dsn, "nothing taken out");
        }
    }

    #[test]
    fn the_driver_is_told_whether_tls_is_off_optional_or_required() {
        use tokio_postgres::config::SslMode as Driver;
        let driver = |mode: &str| extract(&format!("host=h sslmode={mode}")).0.driver_mode();
        assert_eq!(driver("disable"), Driver::Disable);
        assert_eq!(driver("prefer"), Driver::Prefer);
        for strict in ["require", "verify-ca", "verify-full"] {
            assert_eq!(driver(strict), Driver::Require, "{strict}");
        }
    }

    #[test]
    fn certificate_options_are_taken_out_of_urls() {
        let (tls, rest) = extract(
            "postgres://app:pw@db:5433/shop?application_name=api&sslmode=verify-full\
             &sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem&connect_timeout=3",
        );
        assert_eq!(
            tls,
            Tls {
                mode: SslMode::VerifyFull,
                roots: file("/etc/ca.pem"),
                client: Some(ClientCert {
                    cert: "/c.pem".into(),
                    key: "/k.pem".into()
                }),
            }
        );
        assert_eq!(
            rest,
            "postgres://app:pw@db:5433/shop?application_name=api&connect_timeout=3"
        );
    }

    #[test]
    fn url_paths_and_keys_are_percent_decoded() {
        let (tls, rest) = extract(
            "postgresql://db/shop?ssl%6Dode=verify-ca&sslrootcert=%2Fmy%20certs%2Fca%E2%9C%93.pem",
        );
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.roots, file("/my certs/ca\u{2713}.pem"));
        assert_eq!(rest, "postgresql://db/shop");
    }

    #[test]
    fn certificate_options_are_taken_out_of_key_value_strings() {
        let (tls, rest) = extract(
            "host=db sslmode = verify-ca password='p w\\'x' sslrootcert='/my certs/ca.pem' \
             sslcert=/c\\ d.pem sslkey=/k.pem dbname=shop",
        );
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.roots, file("/my certs/ca.pem"));
        assert_eq!(
            tls.client,
            Some(ClientCert {
                cert: "/c d.pem".into(),
                key: "/k.pem".into()
            })
        );
        assert_eq!(rest, "host=db  password='p w\\'x'    dbname=shop");
    }

    #[test]
    fn the_rest_still_parses_with_password_and_options_intact() {
        for dsn in [
            "postgres://app:p%40ss@db:5433/shop?sslmode=require&application_name=api&sslrootcert=/ca.pem",
            "host=db port=5433 user=app password='p@ss' sslmode=require dbname=shop \
             application_name=api sslrootcert=/ca.pem",
        ] {
            let (tls, rest) = extract(dsn);
            assert_eq!((tls.mode, tls.check()), (SslMode::Require, Check::Chain));
            let config: tokio_postgres::Config = rest.parse().expect(&rest);
            assert_eq!(config.get_password(), Some(&b"p@ss"[..]));
            assert_eq!(config.get_user(), Some("app"));
            assert_eq!(config.get_dbname(), Some("shop"));
            assert_eq!(config.get_ports(), &[5433]);
            assert_eq!(config.get_application_name(), Some("api"));
        }
    }

    #[test]
    fn the_last_of_repeated_options_wins() {
        let (tls, _) = extract("postgres://db?sslmode=disable&sslmode=verify-full");
        assert_eq!(tls.mode, SslMode::VerifyFull);
        let (tls, _) = extract("host=db sslmode=verify-full sslmode=disable");
        assert_eq!(tls.mode, SslMode::Disable);
    }

    #[test]
    fn unknown_modes_are_config_errors_quoting_a_short_prefix() {
        for dsn in [
            "postgres://db?sslmode=bogus",
            "host=db sslmode=bogus",
            "host=db sslmode='bogus'",
        ] {
            let err = try_extract(dsn).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config);
            assert!(
                err.to_string().contains("sslmode \"bo…\" (5 bytes)"),
                "{err}"
            );
        }
        let err = try_extract("host=db sslmode=allow").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = try_extract("postgres://db?sslmode=").unwrap_err();
        assert!(err.to_string().contains("sslmode \"…\" (0 bytes)"), "{err}");
    }

    #[test]
    fn unknown_options_are_refused_quoting_a_short_prefix() {
        for dsn in ["postgres://db?s3cret=1", "host=db s3cret=1"] {
            let err = try_extract(dsn).unwrap_err();
            assert_eq!(err.to_string(), "unknown option \"s3c…\" (6 bytes)");
        }
    }

    #[test]
    fn what_each_mode_checks_follows_libpq() {
        let check = |dsn: &str| extract(dsn).0.check();
        assert_eq!(
            check("host=h sslmode=disable sslrootcert=/ca"),
            Check::Nothing
        );
        assert_eq!(
            check("host=h sslmode=prefer sslrootcert=/ca"),
            Check::Nothing
        );
        assert_eq!(check("host=h sslmode=require"), Check::Nothing);
        assert_eq!(
            check("host=h sslmode=require sslrootcert=/ca"),
            Check::Chain
        );
        assert_eq!(check("host=h sslmode=verify-ca"), Check::Chain);
        assert_eq!(check("host=h sslmode=verify-full"), Check::ChainAndHost);
        // An empty value is unset, as in libpq.
        assert_eq!(
            check("postgres://h?sslmode=require&sslrootcert="),
            Check::Nothing
        );
    }

    #[test]
    fn sslrootcert_system_means_verify_full_and_nothing_weaker() {
        let (tls, _) = extract("host=h sslrootcert=system");
        assert_eq!(
            (tls.mode, &tls.roots),
            (SslMode::VerifyFull, &Roots::System)
        );
        let err = try_extract("host=h sslrootcert=system sslmode=verify-ca").unwrap_err();
        assert!(
            err.to_string().contains("verify-full, not verify-ca"),
            "{err}"
        );
    }

    #[test]
    fn a_client_certificate_needs_both_files() {
        let err = try_extract("host=h sslcert=/c.pem").unwrap_err();
        assert_eq!(err.to_string(), "sslcert is set but sslkey is not");
        let err = try_extract("postgres://h?sslkey=/k.pem").unwrap_err();
        assert_eq!(err.to_string(), "sslkey is set but sslcert is not");
    }

    #[test]
    fn malformed_key_value_strings_never_show_their_text() {
        for (dsn, what) in [
            ("s3cret", "expected `=`"),
            ("host=h password='s3cret", "unterminated"),
            ("host=h password=", "a value is missing"),
        ] {
            let err = try_extract(dsn).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn other_url_parameters_are_left_to_the_driver() {
        for dsn in [
            "postgres://db/shop?",
            "postgres://db/shop?application_name=a%26b&",
            "postgres://u:p?w@db/shop?x",
        ] {
            let (_, rest) = extract(dsn);
            assert_eq!(rest, dsn);
        }
        // `?` in the credentials is not the query.
        let (tls, rest) = extract("postgres://u:p?w@db/shop?sslmode=require");
        assert_eq!(
            (tls.mode, rest.as_str()),
            (SslMode::Require, "postgres://u:p?w@db/shop")
        );
    }

    /// A file of its own under the temporary directory holding `text`.
    fn temp_file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("pgactor-tls-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_unusable_sslrootcert_is_a_config_error_naming_the_path() {
        let not_pem = temp_file("not a certificate\n");
        let missing = std::env::temp_dir().join("pgactor-no-such-ca.pem");
        for (path, why) in [(&missing, "No such file"), (&not_pem, "no PEM certificate")] {
            let dsn = format!(
                "host=h sslmode=verify-full sslrootcert='{}'",
                path.display()
            );
            let err = extract(&dsn).0.connector().err().expect("refused");
            assert_eq!(err.kind(), crate::error::ErrorKind::Config);
            let shown = err.to_string();
            assert!(
                shown.contains(&format!("sslrootcert \"{}\"", path.display())),
                "{shown}"
            );
            assert!(shown.contains(why), "{shown}");
        }
        std::fs::remove_file(not_pem).unwrap();
    }

    #[test]
    fn unusable_client_certificates_are_config_errors_naming_the_file() {
        let not_pem = temp_file("garbage\n");
        let dsn = format!(
            "host=h sslmode=require sslcert={} sslkey=/nonexistent/key.pem",
            not_pem.display()
        );
        let err = extract(&dsn).0.connector().err().expect("refused");
        assert!(err.to_string().starts_with("cannot use sslcert"), "{err}");
        std::fs::remove_file(not_pem).unwrap();
    }

    #[test]
    fn unused_files_are_not_read() {
        // disable never uses TLS, prefer never verifies: sslrootcert is unused.
        for mode in ["disable", "prefer"] {
            let dsn = format!("host=h sslmode={mode} sslrootcert=/nonexistent/ca.pem");
            extract(&dsn).0.connector().expect("nothing to read");
        }
    }
}
