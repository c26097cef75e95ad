//! TLS through `sslmode`, proven from outside: `pg_stat_ssl` says whether the
//! adapter's sessions are encrypted (and with which client certificate),
//! refusals name the pool, the host and the reason, and a query timeout's
//! cancel request goes over TLS (seen by a proxy in front of the primary).
//!
//! The topology (scripts/cluster.sh): the primary has TLS, with a
//! certificate for `localhost` and `127.0.0.1` signed by a throw-away CA
//! (`PGACTOR_CA_FILE`), and still accepts plain connections; the replica
//! has no TLS. `PGACTOR_OTHER_CA_FILE` is a CA that signed nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgactor::{ErrorKind, OpenOptions, PoolConfig, Record};
use tokio::io::{copy_bidirectional, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::open::{assert_open_error, PASSWORD};
use crate::schema::crud_round_trip;
use crate::support::blocking::make_updates_slow;
use crate::support::db::{named_session, registry, stock_model, tagged_session, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::{primary_url, replica_url, shared_var};
use crate::transactions::{active_sleeps, slow_patch};

fn primary_port() -> String {
    shared_var("PGACTOR_PRIMARY_PORT")
}

/// The CA that signed the primary's certificate.
fn ca() -> String {
    shared_var("PGACTOR_CA_FILE")
}

/// A key=value DSN (with a password, which no error may show) for the
/// server on `port`, reached as `host`, with `options`.
fn dsn(host: &str, port: &str, options: &str) -> String {
    format!("host={host} port={port} user=postgres password={PASSWORD} dbname=postgres {options}")
}

/// Options for `write_dsn` in a fresh schema; every session is tagged with
/// the schema's name as its application_name, returned too.
fn tagged(write_dsn: String) -> (OpenOptions, String) {
    let tag = unique_schema("tls");
    let options = OpenOptions::new(write_dsn)
        .registry(registry([stock_model()]))
        .session(tagged_session(&tag, &tag));
    (options, tag)
}

/// For each session tagged `tag` on the server at `url`: is it encrypted?
async fn encrypted(url: &str, tag: &str) -> Vec<bool> {
    observer(url)
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&tag],
        )
        .await
        .expect("pg_stat_ssl")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Open on `write_dsn` (both pools), run CRUD, and say for each of the
/// adapter's sessions on the primary whether it is encrypted.
async fn sessions_encrypted(write_dsn: String) -> Vec<bool> {
    let (options, tag) = tagged(write_dsn);
    let db = options.open().await.expect("open");
    crud_round_trip(&db).await;
    let seen = encrypted(&primary_url(), &tag).await;
    db.close().await;
    assert!(!seen.is_empty(), "no session of the adapter on the primary");
    seen
}

fn all(seen: &[bool], ssl: bool) -> bool {
    seen.iter().all(|s| *s == ssl)
}

#[tokio::test]
async fn require_connects_encrypted_in_urls_and_key_value_strings() {
    let port = primary_port();
    for dsn in [
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=require"),
        dsn("127.0.0.1", &port, "sslmode=require"),
    ] {
        let seen = sessions_encrypted(dsn).await;
        assert!(all(&seen, true), "{seen:?}");
    }
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects_encrypted_by_name_and_by_address() {
    // The certificate names both: DNS localhost and IP 127.0.0.1.
    for host in ["localhost", "127.0.0.1"] {
        let options = format!("sslmode=verify-full sslrootcert={}", ca());
        let seen = sessions_encrypted(dsn(host, &primary_port(), &options)).await;
        assert!(all(&seen, true), "{host}: {seen:?}");
    }
    // The URL form, the CA's path percent-encoded.
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        primary_port(),
        ca().replace('/', "%2F")
    );
    let seen = sessions_encrypted(url).await;
    assert!(all(&seen, true), "{seen:?}");
}

#[tokio::test]
async fn prefer_the_default_uses_tls_when_the_server_offers_it() {
    for options in ["sslmode=prefer", ""] {
        let seen = sessions_encrypted(dsn("127.0.0.1", &primary_port(), options)).await;
        assert!(all(&seen, true), "{options:?}: {seen:?}");
    }
}

#[tokio::test]
async fn disable_connects_in_plain_text() {
    let seen = sessions_encrypted(dsn("127.0.0.1", &primary_port(), "sslmode=disable")).await;
    assert!(all(&seen, false), "{seen:?}");
}

#[tokio::test]
async fn a_certificate_from_a_ca_not_trusted_is_refused() {
    let (port, other_ca) = (primary_port(), shared_var("PGACTOR_OTHER_CA_FILE"));
    let address = format!("127.0.0.1:{port}");
    // require with an sslrootcert verifies the chain too (libpq's rule).
    for mode in ["verify-full", "verify-ca", "require"] {
        let options = format!("sslmode={mode} sslrootcert={other_ca}");
        let (open, _) = tagged(dsn("127.0.0.1", &port, &options));
        let err = open.open().await.unwrap_err();
        let mentions = [
            "write pool",
            address.as_str(),
            "certificate verification failed",
            &format!("sslmode={mode}"),
            &other_ca,
        ];
        assert_open_error(&err, ErrorKind::Config, &mentions);
    }
    // Without sslrootcert the system's CAs are trusted, and the test CA is not one.
    let (open, _) = tagged(dsn("127.0.0.1", &port, "sslmode=verify-full"));
    let err = open.open().await.unwrap_err();
    let mentions = ["certificate verification failed", "system's trusted CAs"];
    assert_open_error(&err, ErrorKind::Config, &mentions);
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    // Connect to 127.0.0.1, but as a name the certificate does not carry.
    let stranger = "not-in-the-certificate.invalid";
    let port = primary_port();
    let with_mode = |mode: &str| {
        let options = format!("hostaddr=127.0.0.1 sslmode={mode} sslrootcert={}", ca());
        dsn(stranger, &port, &options)
    };
    let (open, _) = tagged(with_mode("verify-full"));
    let err = open.open().await.unwrap_err();
    let mentions = [
        "write pool",
        &format!("{stranger}:{port}"),
        "certificate verification failed",
        "hostname mismatch",
    ];
    assert_open_error(&err, ErrorKind::Config, &mentions);

    let seen = sessions_encrypted(with_mode("verify-ca")).await;
    assert!(all(&seen, true), "{seen:?}");
}

#[tokio::test]
async fn require_and_stricter_never_fall_back_to_plain_text() {
    let replica_port = shared_var("PGACTOR_REPLICA_PORT");
    let address = format!("127.0.0.1:{replica_port}");
    for mode in ["require", "verify-ca", "verify-full"] {
        let read_dsn = dsn("127.0.0.1", &replica_port, &format!("sslmode={mode}"));
        let (open, _) = tagged(dsn("127.0.0.1", &primary_port(), "sslmode=require"));
        let err = open.read_dsn(read_dsn).open().await.unwrap_err();
        let mentions = [
            "read pool",
            address.as_str(),
            "does not accept TLS",
            &format!("sslmode={mode}"),
        ];
        assert_open_error(&err, ErrorKind::Config, &mentions);
    }
}

#[tokio::test]
async fn prefer_connects_in_plain_text_to_a_server_without_tls() {
    let replica_port = shared_var("PGACTOR_REPLICA_PORT");
    let (open, tag) = tagged(dsn("127.0.0.1", &primary_port(), "sslmode=require"));
    let db = open
        .read_dsn(dsn("127.0.0.1", &replica_port, "sslmode=prefer"))
        .open()
        .await
        .expect("open");
    // `open` connected each pool once: the read pool's session is on the replica.
    let on_replica = encrypted(&replica_url(), &tag).await;
    assert!(
        !on_replica.is_empty() && all(&on_replica, false),
        "{on_replica:?}"
    );
    let on_primary = encrypted(&primary_url(), &tag).await;
    assert!(
        !on_primary.is_empty() && all(&on_primary, true),
        "{on_primary:?}"
    );
    db.close().await;
}

#[tokio::test]
async fn a_unix_socket_has_no_tls_so_require_fails_there_and_prefer_goes_plain() {
    let socket_dir = shared_var("PGACTOR_SOCKET_DIR");
    let (open, _) = tagged(dsn(&socket_dir, &primary_port(), "sslmode=require"));
    let err = open.open().await.unwrap_err();
    let mentions = ["write pool", socket_dir.as_str(), "does not accept TLS"];
    assert_open_error(&err, ErrorKind::Config, &mentions);

    let seen = sessions_encrypted(dsn(&socket_dir, &primary_port(), "sslmode=prefer")).await;
    assert!(all(&seen, false), "{seen:?}");
}

#[tokio::test]
async fn a_client_certificate_logs_in_where_the_server_demands_one() {
    // pg_hba: this role logs in over TLS with a certificate (`cert`), only.
    let user = shared_var("PGACTOR_CERT_USER");
    let base = format!(
        "host=localhost port={} user={user} dbname=postgres sslmode=verify-full sslrootcert={}",
        primary_port(),
        ca()
    );
    let tag = unique_schema("tls_cert");
    // `public`, which exists: the role may not create schemas.
    let open = |dsn: String| {
        OpenOptions::new(dsn)
            .auto_migrate(false)
            .session(named_session(&tag))
            .open()
    };

    let err = open(base.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("client certificate"), "{err}");

    let with_cert = format!(
        "{base} sslcert={} sslkey={}",
        shared_var("PGACTOR_CLIENT_CERT"),
        shared_var("PGACTOR_CLIENT_KEY")
    );
    let db = open(with_cert)
        .await
        .expect("open with the client certificate");
    let sessions = observer(&primary_url())
        .await
        .query(
            "SELECT a.usename, s.ssl, s.client_dn FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&tag],
        )
        .await
        .unwrap();
    assert!(!sessions.is_empty());
    for session in sessions {
        let seen: (String, bool, Option<String>) = (session.get(0), session.get(1), session.get(2));
        assert_eq!(seen, (user.clone(), true, Some(format!("/CN={user}"))));
    }
    db.close().await;
}

/// The first word of an SSLRequest (protocol docs: 1234 << 16 | 5679).
const SSL_REQUEST: u32 = 80_877_103;

/// A TCP proxy to the primary that records how each connection through it
/// begins: the code of its first message (an SSLRequest, a CancelRequest,
/// or the protocol version of a plain startup).
struct Proxy {
    port: u16,
    openings: Arc<Mutex<Vec<u32>>>,
}

impl Proxy {
    async fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let openings = Arc::new(Mutex::new(Vec::new()));
        let seen = openings.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    // Length (4 bytes), then the code: an SSLRequest is exactly this.
                    let mut first = [0_u8; 8];
                    if client.read_exact(&mut first).await.is_err() {
                        return;
                    }
                    let code = u32::from_be_bytes([first[4], first[5], first[6], first[7]]);
                    seen.lock().unwrap().push(code);
                    let mut server = TcpStream::connect(("127.0.0.1", target_port))
                        .await
                        .expect("the primary");
                    if server.write_all(&first).await.is_ok() {
                        let _ = copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Proxy { port, openings }
    }

    fn openings(&self) -> Vec<u32> {
        self.openings.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_query_timeout_cancels_the_statement_over_tls() {
    let proxy = Proxy::start(primary_port().parse().unwrap()).await;
    let options = format!("sslmode=verify-full sslrootcert={}", ca());
    let (open, tag) = tagged(dsn("127.0.0.1", &proxy.port.to_string(), &options));
    // One connection per pool: no connection opens but the cancel's.
    let one = PoolConfig {
        max_open: Some(1),
        ..PoolConfig::default()
    };
    let db = open
        .write_pool(one.clone())
        .read_pool(one)
        .open()
        .await
        .expect("open");
    let admin = observer(&primary_url()).await;
    let row = db
        .create("StockBalance", Record::new().with("sku", "S-1"))
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    make_updates_slow(&admin, &tag).await;
    let before = proxy.openings();
    assert!(
        !before.is_empty() && before.iter().all(|code| *code == SSL_REQUEST),
        "{before:?}"
    );

    let err = db
        .with_query_timeout(Duration::from_millis(200))
        .update("StockBalance", id, slow_patch())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // Said only when the server answered "canceling statement due to user request".
    assert!(err.to_string().contains("cancelled on the server"), "{err}");
    assert_eq!(
        active_sleeps(&admin, &tag).await,
        0,
        "no statement is left running"
    );
    let after = proxy.openings();
    assert_eq!(
        after.len(),
        before.len() + 1,
        "the cancel request came through the proxy: {after:?}"
    );
    assert!(
        after.iter().all(|code| *code == SSL_REQUEST),
        "every connection, the cancel request's too, began with an SSLRequest: {after:?}"
    );
    db.close().await;
}
