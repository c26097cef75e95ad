//! The options of a DSN that the driver does not read, taken out before it
//! parses the rest: libpq's TLS options, its password file, and libpq
//! options the driver does not know, each used, ignored with a warning when
//! ignoring it is harmless, or refused when ignoring it would weaken
//! security or change what the connection is.

use percent_encoding::percent_decode_str;

use crate::error::{redacted, Error, Result};

/// libpq's TLS options as written; the last of repeated ones wins, as in
/// the driver.
#[derive(Debug, Default)]
pub(crate) struct TlsOptions {
    pub(crate) sslmode: Option<String>,
    pub(crate) sslrootcert: Option<String>,
    pub(crate) sslcert: Option<String>,
    pub(crate) sslkey: Option<String>,
}

/// What a DSN (and then the environment) said that the driver will not
/// be told.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) tls: TlsOptions,
    /// `passfile`: where `.pgpass` is.
    pub(crate) passfile: Option<String>,
    /// `fallback_application_name`: the name when none is given.
    pub(crate) fallback_application_name: Option<String>,
    /// `keepalives_count`: libpq's name for the driver's `keepalives_retries`.
    pub(crate) keepalives_count: Option<String>,
    /// Every option key written, taken out or not: the environment fills
    /// only the others.
    pub(crate) written: Vec<String>,
    /// The options ignored, and why, for one warning each at open.
    pub(crate) ignored: Vec<Ignored>,
}

/// A libpq option that was set and is ignored, harmlessly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ignored {
    /// The option as written: a DSN key or an environment variable.
    pub(crate) option: String,
    /// Why ignoring it changes nothing that matters.
    pub(crate) why: &'static str,
}

/// The options the driver reads (tokio-postgres `Config::param`), besides
/// those [`Taken`] holds. Any other key is refused before the driver sees
/// it: the driver's error would quote it, and in a malformed DSN (an
/// unquoted space or an unencoded `&` in a password) a key can be part of
/// the password.
const DRIVER_OPTIONS: [&str; 18] = [
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// What becomes of a libpq option the driver does not know.
enum LibpqOnly {
    /// Harmless to ignore: warned about at open.
    Ignore(&'static str),
    /// Ignoring it would weaken security or change what the connection is.
    Refuse(&'static str),
}

/// The libpq options the driver does not know, by value where that decides.
fn libpq_only(key: &str, value: &str) -> Option<LibpqOnly> {
    use LibpqOnly::{Ignore, Refuse};
    const NO_GSS: &str = "GSSAPI is not used: TLS follows sslmode";
    Some(match (key, value) {
        ("gssencmode", "disable" | "prefer") => Ignore(NO_GSS),
        ("gssencmode", _) => Refuse("GSSAPI encryption is not available; use sslmode for encryption"),
        ("krbsrvname" | "gsslib" | "gssdelegation", _) => {
            Ignore("Kerberos/GSSAPI authentication is not available; a server asking for it refuses the connection")
        }
        ("sslcompression", _) => Ignore("TLS compression is never used (libpq ignores it too)"),
        ("sslsni", _) => Ignore("the host name is always sent in TLS SNI"),
        ("ssl_max_protocol_version", _) => Ignore("OpenSSL's highest TLS version is used"),
        ("sslkeylogfile", _) => Ignore("TLS keys are never logged"),
        ("sslcertmode", "allow") => Ignore("a client certificate is sent when sslcert and sslkey are set"),
        ("client_encoding", "UTF8" | "utf8" | "UTF-8" | "utf-8" | "auto") => {
            Ignore("the driver always speaks UTF8")
        }
        ("client_encoding", _) => Refuse("the driver speaks UTF8 only"),
        ("sslcertmode", _) => Refuse("only sslcertmode=allow is available"),
        ("sslcrl" | "sslcrldir", _) => Refuse("certificate revocation lists are not checked"),
        ("ssl_min_protocol_version", _) => {
            Refuse("a minimum TLS version is not enforced beyond OpenSSL's own")
        }
        ("sslpassword", _) => Refuse("encrypted client keys are not supported; decrypt sslkey"),
        ("requirepeer", _) => Refuse("the peer of a Unix socket is not checked"),
        ("require_auth", _) => Refuse("the authentication method is not restricted"),
        ("service", _) => Refuse("pg_service.conf is not read; write its options into the DSN"),
        ("replication", _) => Refuse("replication connections are not supported"),
        _ => return None,
    })
}

impl Taken {
    /// Take option `key` (named `option` in messages: the key, or the
    /// environment variable it came from) if it is not the driver's:
    /// true when taken (kept here or ignored), false when the driver
    /// reads it. A key nothing reads, or one whose ignoring would weaken
    /// security, is refused, its value quoted only as a redacted prefix.
    pub(crate) fn take(&mut self, option: &str, key: &str, value: &str) -> Result<bool> {
        let slot = match key {
            "sslmode" => &mut self.tls.sslmode,
            "sslrootcert" => &mut self.tls.sslrootcert,
            "sslcert" => &mut self.tls.sslcert,
            "sslkey" => &mut self.tls.sslkey,
            "passfile" => &mut self.passfile,
            "fallback_application_name" => &mut self.fallback_application_name,
            "keepalives_count" => &mut self.keepalives_count,
            _ if DRIVER_OPTIONS.contains(&key) => return Ok(false),
            _ => {
                return match libpq_only(key, value) {
                    Some(LibpqOnly::Ignore(why)) => {
                        self.ignored.push(Ignored {
                            option: option.to_owned(),
                            why,
                        });
                        Ok(true)
                    }
                    Some(LibpqOnly::Refuse(why)) => Err(Error::config(format!(
                        "{option}={} is not supported: {why}",
                        redacted(value)
                    ))),
                    None => Err(Error::config(format!("unknown option {}", redacted(key)))),
                };
            }
        };
        *slot = Some(value.to_owned());
        Ok(true)
    }

    /// Whether the DSN wrote option `key`.
    pub(crate) fn wrote(&self, key: &str) -> bool {
        self.written.iter().any(|k| k == key)
    }
}

/// Take the options the driver does not read out of `dsn` (a
/// `postgres://` URL or a key=value string): what they said, and the DSN
/// without them for the driver, every other option left as written.
pub(crate) fn take_options(dsn: &str) -> Result<(Taken, String)> {
    let mut taken = Taken::default();
    let rest = if URL_PREFIXES.iter().any(|p| dsn.starts_with(p)) {
        take_from_url(dsn, &mut taken)?
    } else {
        take_from_key_value(dsn, &mut taken)?
    };
    Ok((taken, rest))
}

/// The prefixes that make the driver read a DSN as a URL.
pub(crate) const URL_PREFIXES: [&str; 2] = ["postgres://", "postgresql://"];

/// Take the options the driver does not read out of a URL's query, as the driver reads it: the
/// credentials end at the first `@`, the query starts at the next `?`, and
/// its parameters are `key=value` pairs separated by `&`, both
/// percent-encoded. The driver's parameters are kept as written.
fn take_from_url(dsn: &str, taken: &mut Taken) -> Result<String> {
    let after_credentials = dsn.find('@').map_or(0, |at| at + 1);
    let Some(question) = dsn[after_credentials..].find('?') else {
        return Ok(dsn.to_owned());
    };
    let (head, mut query) = dsn.split_at(after_credentials + question);
    query = &query[1..];
    let (mut kept, mut took) = (Vec::new(), false);
    while !query.is_empty() {
        let Some(eq) = query.find('=') else {
            // The driver refuses this ("unterminated parameter").
            kept.push(query);
            break;
        };
        let end = query[eq + 1..]
            .find('&')
            .map_or(query.len(), |amp| eq + 1 + amp);
        let key = percent_decode_str(&query[..eq]).decode_utf8_lossy();
        taken.written.push(key.clone().into_owned());
        if DRIVER_OPTIONS.contains(&&*key) {
            // Kept undecoded: the driver decodes it (a password may be any bytes).
            kept.push(&query[..end]);
        } else {
            let value = percent_decode_str(&query[eq + 1..end])
                .decode_utf8()
                .map_err(|_| {
                    Error::config(format!(
                        "the value of {} is not UTF-8 once percent-decoded",
                        redacted(&key)
                    ))
                })?;
            taken.take(&key, &key, &value)?;
            took = true;
        }
        query = query.get(end + 1..).unwrap_or("");
    }
    Ok(if !took {
        dsn.to_owned()
    } else if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    })
}

/// Take the options the driver does not read out of a key=value string, reading it as the driver
/// does (keywords end at whitespace or `=`; values are bare with `\`
/// escapes, or single-quoted) and keeping every other pair byte for byte.
/// Errors give a byte position, never the text: it may hold the password.
fn take_from_key_value(dsn: &str, taken: &mut Taken) -> Result<String> {
    let mut cursor = Cursor { s: dsn, pos: 0 };
    let mut rest = String::with_capacity(dsn.len());
    let mut copied = 0;
    loop {
        cursor.skip_while(char::is_whitespace);
        let start = cursor.pos;
        let keyword = cursor.take_while(|c| !c.is_whitespace() && c != '=');
        if keyword.is_empty() {
            // The driver silently stops reading at a stray `=`, dropping
            // every option after it (a later sslmode too); libpq refuses it.
            if cursor.peek().is_some() {
                return Err(malformed("expected a keyword", start));
            }
            break;
        }
        if !keyword
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            // No option is named so; the driver's error would echo the
            // keyword, which here is likely a URL with its password.
            return Err(malformed(
                "a keyword that is not a plain word (a URL starts with postgres:// or postgresql://)",
                start,
            ));
        }
        cursor.skip_while(char::is_whitespace);
        if cursor.bump() != Some('=') {
            return Err(malformed("expected `=` after the keyword", start));
        }
        cursor.skip_while(char::is_whitespace);
        let value = cursor.value()?;
        taken.written.push(keyword.to_owned());
        if taken.take(keyword, keyword, &value)? {
            rest.push_str(&dsn[copied..start]);
            copied = cursor.pos;
        }
    }
    rest.push_str(&dsn[copied..]);
    Ok(rest)
}

fn malformed(what: &str, at: usize) -> Error {
    Error::config(format!("malformed key=value string: {what} at byte {at}"))
}

/// A position in a key=value string.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        &self.s[start..self.pos]
    }

    fn skip_while(&mut self, skip: impl Fn(char) -> bool) {
        self.take_while(skip);
    }

    /// A bare value (up to whitespace) or a single-quoted one, unescaped.
    fn value(&mut self) -> Result<String> {
        let start = self.pos;
        let quoted = self.peek() == Some('\'');
        if quoted {
            self.bump();
        }
        let mut value = String::new();
        loop {
            match self.peek() {
                None if quoted => return Err(malformed("unterminated quoted value", start)),
                Some('\'') if quoted => {
                    self.bump();
                    return Ok(value);
                }
                None => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some(_) => {
                    let c = self.bump();
                    // A backslash escapes the next character (a quote, a space, itself).
                    let c = if c == Some('\\') { self.bump() } else { c };
                    value.extend(c);
                }
            }
        }
        if value.is_empty() {
            return Err(malformed("a value is missing", start));
        }
        Ok(value)
    }
}
