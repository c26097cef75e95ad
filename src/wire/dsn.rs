//! DSN parsing (libpq URLs and key=value strings) with a password-free
//! description, completed as libpq completes a DSN: `PG*` environment
//! variables fill what it leaves out, and `.pgpass` a missing password.
//!
//! The options the driver does not read are taken out first
//! ([`take_options`]); the driver parses the rest.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::config::Host;

use super::environment::{
    fill_from_environment, password_from_file, with_default_ports, Environment,
};
use super::options::{take_options, Ignored, URL_PREFIXES};
use super::tls::Tls;
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
    /// `application_name` (or `PGAPPNAME`, or `fallback_application_name`):
    /// the session's name when its settings give none.
    pub(crate) application_name: Option<String>,
    /// libpq options set and ignored, for one warning each at open.
    pub(crate) ignored: Vec<Ignored>,
}

impl Dsn {
    /// Parse `dsn` for the pool of `role`, completed from the process's
    /// environment.
    pub(crate) fn parse(dsn: &str, role: Role) -> Result<Dsn> {
        Dsn::parse_in(dsn, role, &Environment::process())
    }

    /// Parse `dsn` for the pool of `role`, completed from `env`.
    pub(crate) fn parse_in(dsn: &str, role: Role, env: &Environment) -> Result<Dsn> {
        if dsn.trim().is_empty() {
            return Err(Error::config(format!("the {role} DSN is empty")));
        }
        let invalid = format!("invalid {role} DSN");
        check_url_shape(dsn).map_err(|e| e.prefixed(&invalid))?;
        let (mut taken, rest) = take_options(dsn).map_err(|e| e.prefixed(&invalid))?;
        let rest = with_default_ports(rest, &taken, env);
        // The driver's parse errors name the offending option, never its value.
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| Error::config(format!("{invalid}: {}", describe(&e))))?;
        fill_from_environment(&mut taken, &mut config, env).map_err(|e| e.prefixed(&invalid))?;
        password_from_file(&mut taken, &mut config, env);
        if let Some(count) = &taken.keepalives_count {
            let retries = count.parse().map_err(|_| {
                Error::config(format!("{invalid}: keepalives_count is not a count"))
            })?;
            config.keepalives_retries(retries);
        }
        let tls =
            Tls::from_options(std::mem::take(&mut taken.tls)).map_err(|e| e.prefixed(&invalid))?;
        config.ssl_mode(tls.driver_mode());
        if config.get_hosts().is_empty() {
            return Err(Error::config(format!(
                "the {role} DSN names no host (and PGHOST is not set)"
            )));
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
        let application_name = config
            .get_application_name()
            .map(str::to_owned)
            .or(taken.fallback_application_name);
        Ok(Dsn {
            target: target_of(&config),
            config,
            tls,
            application_name,
            ignored: taken.ignored,
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

/// `host:port` of each host `config` names, in order.
fn endpoints(config: &tokio_postgres::Config) -> Vec<String> {
    config
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
        .collect()
}

fn target_of(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{}/{db}", endpoints(config).join(","))
}

/// `config` reduced to its host number `i` (with its `hostaddr` and port):
/// every other setting is copied as it is.
fn single_host(config: &tokio_postgres::Config, i: usize) -> tokio_postgres::Config {
    let mut one = tokio_postgres::Config::new();
    if let Some(user) = config.get_user() {
        one.user(user);
    }
    if let Some(password) = config.get_password() {
        one.password(password);
    }
    if let Some(dbname) = config.get_dbname() {
        one.dbname(dbname);
    }
    if let Some(options) = config.get_options() {
        one.options(options);
    }
    if let Some(name) = config.get_application_name() {
        one.application_name(name);
    }
    one.ssl_mode(config.get_ssl_mode())
        .ssl_negotiation(config.get_ssl_negotiation());
    match config.get_hosts().get(i) {
        Some(Host::Tcp(name)) => {
            one.host(name);
        }
        #[cfg(unix)]
        Some(Host::Unix(path)) => {
            one.host_path(path);
        }
        None => {}
    }
    if let Some(addr) = config.get_hostaddrs().get(i) {
        one.hostaddr(*addr);
    }
    let ports = config.get_ports();
    let port = match ports.len() {
        1 => ports.first(),
        _ => ports.get(i),
    };
    if let Some(port) = port {
        one.port(*port);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        one.connect_timeout(*timeout);
    }
    if let Some(timeout) = config.get_tcp_user_timeout() {
        one.tcp_user_timeout(*timeout);
    }
    one.keepalives(config.get_keepalives())
        .keepalives_idle(config.get_keepalives_idle());
    if let Some(interval) = config.get_keepalives_interval() {
        one.keepalives_interval(interval);
    }
    if let Some(retries) = config.get_keepalives_retries() {
        one.keepalives_retries(retries);
    }
    one.target_session_attrs(config.get_target_session_attrs())
        .channel_binding(config.get_channel_binding())
        .load_balance_hosts(config.get_load_balance_hosts());
    one
}

impl Dsn {
    /// One DSN per host this one names (libpq's multi-host `host=a,b
    /// port=1,2` or `postgres://a:1,b:2/db`), each with every other
    /// option of this one, and no ignored option (warned about once, for
    /// this one); a DSN of one host answers itself.
    pub(crate) fn per_host(&self) -> Vec<Dsn> {
        let hosts = self.config.get_hosts().len();
        if hosts <= 1 {
            return vec![self.clone()];
        }
        (0..hosts)
            .map(|i| {
                let config = single_host(&self.config, i);
                Dsn {
                    target: target_of(&config),
                    config,
                    tls: self.tls.clone(),
                    application_name: self.application_name.clone(),
                    ignored: Vec::new(),
                }
            })
            .collect()
    }

    /// `host:port` of its (first) host: how a replica is named in
    /// statistics, health checks and logs.
    pub(crate) fn endpoint(&self) -> String {
        endpoints(&self.config)
            .into_iter()
            .next()
            .unwrap_or_default()
    }
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
    fn a_multi_host_dsn_splits_into_one_dsn_per_host_with_every_other_option() {
        let options = "user=app password=s3cret dbname=shop sslmode=disable connect_timeout=7 \
            keepalives_idle=30 tcp_user_timeout=5000 target_session_attrs=read-write \
            application_name=api options=-cwork_mem=4MB";
        let env = Environment::of(&[]);
        let parse = |dsn: &str| Dsn::parse_in(dsn, Role::Read, &env).unwrap();
        let many = parse(&format!("host=a,b,c port=5433,5434,5435 {options}"));
        let each: Vec<Dsn> = many.per_host();
        assert_eq!(each.len(), 3);
        for (dsn, (host, port)) in each.iter().zip([("a", 5433), ("b", 5434), ("c", 5435)]) {
            let alone = parse(&format!("host={host} port={port} {options}"));
            assert!(dsn.config == alone.config, "{host}: {dsn:?}");
            assert_eq!(dsn.target, alone.target);
            assert_eq!(dsn.endpoint(), format!("{host}:{port}"));
        }
        // URLs too (a host without a port has the default); one port
        // for every host, as libpq reads it.
        let url = parse("postgres://app@a,b:6000/shop?sslmode=disable");
        let names: Vec<String> = url.per_host().iter().map(Dsn::endpoint).collect();
        assert_eq!(names, ["a:5432", "b:6000"]);
        let one_port = parse("host=a,b port=7000");
        let names: Vec<String> = one_port.per_host().iter().map(Dsn::endpoint).collect();
        assert_eq!(names, ["a:7000", "b:7000"]);
        // A single host answers itself.
        let single = parse("host=a port=1 user=app");
        assert_eq!(single.per_host().len(), 1);
        assert!(single.per_host()[0].config == single.config);
    }

    #[test]
    fn empty_dsns_are_refused() {
        let err = Dsn::parse("  ", Role::Write).unwrap_err();
        assert_eq!(err.to_string(), "the write DSN is empty");
    }

    fn parse_in(dsn: &str, env: &[(&str, &str)]) -> Result<Dsn> {
        Dsn::parse_in(dsn, Role::Write, &Environment::of(env))
    }

    const ENV: [(&str, &str); 9] = [
        ("PGHOST", "env.example"),
        ("PGPORT", "6432"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", "envs3cret"),
        ("PGDATABASE", "envdb"),
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", "/env/ca.pem"),
        ("PGAPPNAME", "env-app"),
        ("PGCONNECT_TIMEOUT", "7"),
    ];

    #[test]
    fn pg_variables_fill_what_the_dsn_leaves_out() {
        use tokio_postgres::config::SslMode;
        for dsn in ["postgresql://", "postgres:///", "application_name="] {
            let dsn = if dsn.ends_with('=') {
                "connect_timeout=7"
            } else {
                dsn
            };
            let parsed = parse_in(dsn, &ENV).unwrap_or_else(|e| panic!("{dsn}: {e}"));
            assert_eq!(parsed.target, "envuser@env.example:6432/envdb");
            assert_eq!(parsed.config.get_password(), Some(&b"envs3cret"[..]));
            assert_eq!(parsed.config.get_ssl_mode(), SslMode::Require);
            assert_eq!(parsed.application_name.as_deref(), Some("env-app"));
            assert_eq!(
                parsed.config.get_connect_timeout(),
                Some(&std::time::Duration::from_secs(7))
            );
        }
    }

    #[test]
    fn what_the_dsn_writes_wins_over_pg_variables() {
        use tokio_postgres::config::SslMode;
        for dsn in [
            "postgres://app:pw@db:5433/shop?sslmode=disable&application_name=mine",
            "host=db port=5433 user=app password=pw dbname=shop sslmode=disable application_name=mine",
        ] {
            let parsed = parse_in(dsn, &ENV).unwrap();
            assert_eq!(parsed.target, "app@db:5433/shop");
            assert_eq!(parsed.config.get_password(), Some(&b"pw"[..]));
            assert_eq!(parsed.config.get_ssl_mode(), SslMode::Disable);
            assert_eq!(parsed.application_name.as_deref(), Some("mine"));
        }
        // Only what is missing is filled: here the port and the database.
        let parsed = parse_in("postgres://app@db", &ENV).unwrap();
        assert_eq!(parsed.target, "app@db:6432/envdb");
        let parsed = parse_in("postgres://app@a:1,b,[::1]/x", &[("PGPORT", "7")]).unwrap();
        assert_eq!(parsed.target, "app@a:1,b:7,::1:7/x");
        let parsed = parse_in("postgres://app@a,b/x", &[("PGPORT", "7,8")]).unwrap();
        assert_eq!(parsed.target, "app@a:7,b:8/x");
    }

    #[test]
    fn a_bad_pg_variable_is_a_config_error_without_its_value() {
        let err = parse_in("postgres://app@db/x", &[("PGCONNECT_TIMEOUT", "s3cret")]).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Config);
        assert!(
            err.to_string().contains("PG* environment variable"),
            "{err}"
        );
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = parse_in("dbname=x", &[]).unwrap_err();
        assert!(err.to_string().contains("PGHOST"), "{err}");
    }

    #[test]
    fn harmless_libpq_options_are_ignored_and_named_for_a_warning() {
        let parsed = parse_in(
            "postgres://app@db/x?gssencmode=disable&sslcompression=0&sslsni=1",
            &[("PGGSSLIB", "gssapi")],
        )
        .unwrap();
        let ignored: Vec<_> = parsed.ignored.iter().map(|i| i.option.as_str()).collect();
        assert_eq!(
            ignored,
            ["gssencmode", "sslcompression", "sslsni", "PGGSSLIB"]
        );
        let parsed = parse_in(
            "host=db user=app client_encoding=UTF8 krbsrvname=postgres",
            &[],
        )
        .unwrap();
        assert_eq!(parsed.ignored.len(), 2);
        assert_eq!(parsed.target, "app@db:5432/app");
    }

    #[test]
    fn libpq_options_whose_ignoring_would_weaken_security_are_refused() {
        for (dsn, env) in [
            ("postgres://app@db/x?gssencmode=require", &[][..]),
            ("postgres://app@db/x?sslcrl=/crl.pem", &[]),
            ("host=db require_auth=scram-sha-256", &[]),
            ("host=db requirepeer=postgres", &[]),
            ("host=db sslpassword=k3y", &[]),
            ("host=db service=shop", &[]),
            ("host=db client_encoding=LATIN1", &[]),
            ("host=db ssl_min_protocol_version=TLSv1.3", &[]),
            ("host=db", &[("PGGSSENCMODE", "require")]),
            ("host=db", &[("PGSERVICE", "shop")]),
        ] {
            let err = parse_in(dsn, env).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{dsn}");
            assert!(err.to_string().contains("is not supported"), "{dsn}: {err}");
            assert!(!err.to_string().contains("k3y"), "{err}");
        }
    }

    #[test]
    fn libpq_names_the_driver_spells_otherwise_are_translated() {
        let parsed = parse_in(
            "postgres://app@db/x?keepalives_count=3&fallback_application_name=tool",
            &[],
        )
        .unwrap();
        assert_eq!(parsed.config.get_keepalives_retries(), Some(3));
        assert_eq!(parsed.application_name.as_deref(), Some("tool"));
        let parsed = parse_in(
            "postgres://app@db/x?fallback_application_name=tool&application_name=mine",
            &[],
        )
        .unwrap();
        assert_eq!(parsed.application_name.as_deref(), Some("mine"));
    }

    #[test]
    fn the_password_file_gives_a_missing_password_and_only_if_private() {
        let dir = std::env::temp_dir().join(format!("pgactor-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(".pgpass");
        std::fs::write(&file, "db:5432:shop:app:fromfile\n*:*:*:*:any\n").unwrap();
        let private = |mode| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        private(0o600);
        let home = dir.to_str().unwrap();
        let password = |dsn: &str, env: &[(&str, &str)]| {
            let parsed = parse_in(dsn, env).unwrap();
            let password = parsed
                .config
                .get_password()
                .map(|p| String::from_utf8(p.to_vec()).unwrap());
            (password, parsed.ignored)
        };
        assert_eq!(
            password("postgres://app@db/shop", &[("HOME", home)])
                .0
                .as_deref(),
            Some("fromfile")
        );
        assert_eq!(
            password("postgres://app@other/x", &[("HOME", home)])
                .0
                .as_deref(),
            Some("any")
        );
        let named = format!("postgres://app@db/shop?passfile={}", file.display());
        assert_eq!(password(&named, &[]).0.as_deref(), Some("fromfile"));
        let by_variable = [("PGPASSFILE", file.to_str().unwrap())];
        assert_eq!(
            password("host=db user=app dbname=shop", &by_variable)
                .0
                .as_deref(),
            Some("fromfile")
        );
        // A password given anywhere else wins.
        assert_eq!(
            password("postgres://app:pw@db/shop", &[("HOME", home)])
                .0
                .as_deref(),
            Some("pw")
        );
        let with_variable = [("HOME", home), ("PGPASSWORD", "envpw")];
        assert_eq!(
            password("postgres://app@db/shop", &with_variable)
                .0
                .as_deref(),
            Some("envpw")
        );
        // Readable by others: ignored, with a warning, as libpq does.
        private(0o644);
        let (found, ignored) = password("postgres://app@db/shop", &[("HOME", home)]);
        assert_eq!(found, None);
        assert!(ignored[0].why.contains("0600"), "{ignored:?}");
        // No file: nothing, and no warning.
        let (found, ignored) = password("postgres://app@db/shop", &[("HOME", "/nonexistent")]);
        assert_eq!((found, ignored.len()), (None, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
