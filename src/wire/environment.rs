//! libpq's conventions outside the DSN: the `PG*` environment variables
//! fill the options a DSN leaves out, and the password file (`.pgpass`)
//! supplies a password none of them gives.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use tokio_postgres::config::Host;
use tokio_postgres::Config;

use super::options::{Ignored, Taken, URL_PREFIXES};
use crate::error::{describe, Error, Result};

/// Where `PG*` variables (and `HOME`) are read: the process's environment,
/// or, in tests, a fixed set.
pub(crate) struct Environment {
    fixed: Option<HashMap<String, String>>,
}

impl Environment {
    /// The process's environment.
    pub(crate) fn process() -> Environment {
        Environment { fixed: None }
    }

    /// A fixed environment of `pairs`, and nothing else.
    #[cfg(test)]
    pub(crate) fn of(pairs: &[(&str, &str)]) -> Environment {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Environment {
            fixed: Some(vars.collect()),
        }
    }

    /// The value of `name`; an empty or non-UTF-8 value counts as unset, as
    /// libpq's reading of an empty variable does.
    fn var(&self, name: &str) -> Option<String> {
        let value = match &self.fixed {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.is_empty())
    }
}

/// The variables libpq reads, and the option each stands for.
const VARIABLES: [(&str, &str); 34] = [
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLCRLDIR", "sslcrldir"),
    ("PGSSLCOMPRESSION", "sslcompression"),
    ("PGSSLSNI", "sslsni"),
    ("PGSSLCERTMODE", "sslcertmode"),
    ("PGSSLMINPROTOCOLVERSION", "ssl_min_protocol_version"),
    ("PGSSLMAXPROTOCOLVERSION", "ssl_max_protocol_version"),
    ("PGSSLKEYLOGFILE", "sslkeylogfile"),
    ("PGGSSENCMODE", "gssencmode"),
    ("PGKRBSRVNAME", "krbsrvname"),
    ("PGGSSLIB", "gsslib"),
    ("PGGSSDELEGATION", "gssdelegation"),
    ("PGREQUIREPEER", "requirepeer"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGCLIENTENCODING", "client_encoding"),
    ("PGSERVICE", "service"),
];

/// Fill from `env` each option neither the DSN (`taken`, `config`) wrote:
/// options the driver reads go into `config`, the others into `taken`
/// under the same rules as in a DSN (used, ignored with a warning, or
/// refused).
pub(crate) fn fill_from_environment(
    taken: &mut Taken,
    config: &mut Config,
    env: &Environment,
) -> Result<()> {
    let mut for_driver = String::new();
    let mut keys = Vec::new();
    for (var, key) in VARIABLES {
        if taken.wrote(key) || written_in(config, key) {
            continue;
        }
        let Some(value) = env.var(var) else { continue };
        if !taken.take(var, key, &value)? {
            // Quoted as in a key=value string, so the driver parses the
            // value exactly as a DSN's.
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            for_driver.push_str(&format!("{key}='{quoted}' "));
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    // The driver's errors name the option, never its value.
    let from_env = Config::from_str(&for_driver).map_err(|e| {
        Error::config(format!(
            "invalid PG* environment variable: {}",
            describe(&e)
        ))
    })?;
    for key in keys {
        copy_option(&from_env, config, key);
    }
    Ok(())
}

/// `url` (a DSN the driver will parse as a URL) with `PGPORT`'s ports
/// written into its hosts that name none: the driver gives such a host
/// 5432, where libpq gives it `PGPORT`. A list of ports goes host by host.
pub(crate) fn with_default_ports(url: String, taken: &Taken, env: &Environment) -> String {
    let Some(after_prefix) = URL_PREFIXES.iter().find_map(|p| url.strip_prefix(p)) else {
        return url;
    };
    let (Some(ports), false) = (env.var("PGPORT"), taken.wrote("port")) else {
        return url;
    };
    let start = url.len() - after_prefix.len() + after_prefix.find('@').map_or(0, |at| at + 1);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |at| start + at);
    if start == end {
        return url;
    }
    let ports: Vec<&str> = ports.split(',').collect();
    let hosts: Vec<String> = url[start..end]
        .split(',')
        .enumerate()
        .map(|(n, host)| {
            let named = match host.strip_prefix('[') {
                Some(v6) => v6.split_once(']').is_some_and(|(_, rest)| !rest.is_empty()),
                None => host.contains(':'),
            };
            match ports.get(if ports.len() == 1 { 0 } else { n }) {
                Some(port) if !named => format!("{host}:{port}"),
                _ => host.to_owned(),
            }
        })
        .collect();
    format!("{}{}{}", &url[..start], hosts.join(","), &url[end..])
}

/// Whether `config` holds option `key` from the DSN's URL form, where
/// the user, password, hosts, ports and database are not parameters.
fn written_in(config: &Config, key: &str) -> bool {
    match key {
        "host" => !config.get_hosts().is_empty(),
        "port" => !config.get_ports().is_empty(),
        "user" => config.get_user().is_some(),
        "password" => config.get_password().is_some(),
        "dbname" => config.get_dbname().is_some(),
        _ => false,
    }
}

/// Copy option `key`, which `from` was parsed with, into `to`.
fn copy_option(from: &Config, to: &mut Config, key: &str) {
    match key {
        "host" => {
            for host in from.get_hosts() {
                match host {
                    Host::Tcp(name) => to.host(name),
                    #[cfg(unix)]
                    Host::Unix(path) => to.host_path(path),
                };
            }
        }
        "hostaddr" => from.get_hostaddrs().iter().for_each(|a| {
            to.hostaddr(*a);
        }),
        "port" => from.get_ports().iter().for_each(|p| {
            to.port(*p);
        }),
        "user" => {
            from.get_user().map(|v| to.user(v));
        }
        "password" => {
            from.get_password().map(|v| to.password(v));
        }
        "dbname" => {
            from.get_dbname().map(|v| to.dbname(v));
        }
        "options" => {
            from.get_options().map(|v| to.options(v));
        }
        "application_name" => {
            from.get_application_name().map(|v| to.application_name(v));
        }
        "connect_timeout" => {
            from.get_connect_timeout().map(|v| to.connect_timeout(*v));
        }
        "target_session_attrs" => {
            to.target_session_attrs(from.get_target_session_attrs());
        }
        "channel_binding" => {
            to.channel_binding(from.get_channel_binding());
        }
        "load_balance_hosts" => {
            to.load_balance_hosts(from.get_load_balance_hosts());
        }
        "sslnegotiation" => {
            to.ssl_negotiation(from.get_ssl_negotiation());
        }
        _ => unreachable!("{key} is not an option the environment gives the driver"),
    }
}

/// The largest password file read; a larger one is ignored with a warning.
const MAX_PASSFILE_BYTES: u64 = 1 << 20;

/// The password of the password file's first line matching the DSN's first
/// host, port, database and user, when no password was given: the file
/// `passfile` names (or `PGPASSFILE`), else `~/.pgpass`. A file that is
/// missing gives nothing; one that others may read (group or world
/// permissions), is not a regular file or is over [`MAX_PASSFILE_BYTES`]
/// is ignored with a warning, as libpq ignores the first two.
pub(crate) fn password_from_file(taken: &mut Taken, config: &mut Config, env: &Environment) {
    if config.get_password().is_some() {
        return;
    }
    let path = match taken.passfile.clone() {
        Some(path) => PathBuf::from(path),
        None => match env.var("HOME") {
            Some(home) => PathBuf::from(home).join(".pgpass"),
            None => return,
        },
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return;
    };
    let mut ignore = |why| {
        taken.ignored.push(Ignored {
            option: format!("password file {}", path.display()),
            why,
        })
    };
    if !meta.is_file() {
        return ignore("it is not a regular file");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return ignore("others may read it: its permissions should be u=rw (0600) or less");
        }
    }
    if meta.len() > MAX_PASSFILE_BYTES {
        return ignore("it is over 1 MiB");
    }
    let Ok(text) = std::fs::read_to_string(&path) else {
        return ignore("it cannot be read as UTF-8 text");
    };
    let Some(user) = config.get_user().map(str::to_owned) else {
        return;
    };
    let host = match (config.get_hosts().first(), config.get_hostaddrs().first()) {
        (Some(Host::Tcp(name)), _) => name.clone(),
        // libpq matches a Unix socket as "localhost".
        #[cfg(unix)]
        (Some(Host::Unix(_)), _) => "localhost".into(),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => return,
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let dbname = config.get_dbname().unwrap_or(&user).to_owned();
    if let Some(password) = find_password(&text, [&host, &port, &dbname, &user]) {
        config.password(password);
    }
}

/// The password of the first line of a password file whose first four
/// fields (`hostname:port:database:username`, `*` matching anything)
/// match `wanted`. `\` escapes `:` and itself, and the password ends at
/// the next unescaped `:`, as in libpq; lines starting with `#` are
/// comments.
fn find_password(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields = split_fields(line.trim_end_matches('\r'));
            let [host, port, db, user, password, ..] = &fields[..] else {
                return None;
            };
            let matches = [host, port, db, user]
                .iter()
                .zip(wanted)
                .all(|(field, want)| *field == "*" || *field == want);
            matches.then(|| password.clone())
        })
}

/// A line's fields: split at unescaped `:`, unescaped.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_lines_match_field_by_field_with_wildcards_and_escapes() {
        let file = "# comment\n\
                    other:5432:shop:app:wrong\n\
                    db.example:*:shop:app:s3cret\n\
                    *:*:*:app:fallback\n\
                    db\\:x:5432:*:we\\:ird:p\\\\w:with:colons\r\n";
        let find = |host, port, db, user| find_password(file, [host, port, db, user]);
        assert_eq!(
            find("db.example", "6432", "shop", "app").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            find("elsewhere", "5432", "shop", "app").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            find("db:x", "5432", "any", "we:ird").as_deref(),
            Some("p\\w")
        );
        assert_eq!(find("db.example", "5432", "shop", "nobody"), None);
        assert_eq!(
            find_password("too:few:fields", ["too", "few", "fields", "x"]),
            None
        );
    }
}
