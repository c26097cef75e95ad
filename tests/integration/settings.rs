//! The settings really in force on the adapter's connections, read back
//! from the server (`Db::settings_in_force`), after reconnects too; and the
//! capacity warning at open.

use std::collections::BTreeMap;
use std::time::Duration;

use pgactor::{Db, PoolConfig, Role, SessionConfig};

use crate::support::db::{registry, stock_model, unique_schema};
use crate::support::kill::terminate_sessions;
use crate::support::logs::capturing_logs;
use crate::support::observer::observer;
use crate::support::topology::primary_url;

fn custom_session(schema: &str) -> SessionConfig {
    SessionConfig {
        statement_timeout: Some(Duration::from_secs(12)),
        lock_timeout: Some(Duration::from_millis(1500)),
        idle_in_transaction_timeout: Some(Duration::from_secs(45)),
        application_name: Some(schema.to_owned()),
        time_zone: Some("Europe/Paris".into()),
        schema: Some(schema.to_owned()),
        ..SessionConfig::default()
    }
}

async fn in_force(db: &Db, role: Role) -> BTreeMap<String, String> {
    db.settings_in_force(role)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn expected(schema: &str, read_only: &str) -> BTreeMap<String, String> {
    [
        ("statement_timeout", "12s"),
        ("lock_timeout", "1500ms"),
        ("idle_in_transaction_session_timeout", "45s"),
        ("TimeZone", "Europe/Paris"),
        ("application_name", schema),
        ("search_path", &format!("\"{schema}\"")),
        ("default_transaction_read_only", read_only),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn every_setting_is_back_on_the_connection_that_replaces_a_terminated_one() {
    let schema = unique_schema("inforce");
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(custom_session(&schema))
        .open()
        .await
        .unwrap();
    assert_eq!(in_force(&db, Role::Write).await, expected(&schema, "off"));
    assert_eq!(in_force(&db, Role::Read).await, expected(&schema, "on"));

    let admin = observer(&primary_url()).await;
    let killed = terminate_sessions(&admin, &schema, "true").await;
    assert!(!killed.is_empty());
    // The pool notices the dead connections and opens new ones, which get
    // every setting again before their first use.
    let mut settings = None;
    for _ in 0..50 {
        if let Ok(found) = db.settings_in_force(Role::Write).await {
            settings = Some(found.into_iter().collect::<BTreeMap<_, _>>());
            break;
        }
    }
    assert_eq!(settings, Some(expected(&schema, "off")));
    db.close().await;
}

#[tokio::test]
async fn the_default_settings_are_the_documented_ones() {
    let schema = unique_schema("defaults");
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .session(SessionConfig {
            schema: Some(schema.clone()),
            ..SessionConfig::default()
        })
        .open()
        .await
        .unwrap();
    let found = in_force(&db, Role::Write).await;
    let get = |k: &str| found[k].as_str();
    assert_eq!(
        [
            get("statement_timeout"),
            get("lock_timeout"),
            get("idle_in_transaction_session_timeout")
        ],
        ["30s", "5s", "1min"]
    );
    assert_eq!(
        [get("TimeZone"), get("application_name")],
        ["UTC", "pgactor"]
    );
    db.close().await;
}

async fn open_capturing(write_max: usize, read_max: usize) -> String {
    let pool = |n| PoolConfig {
        max_open: Some(n),
        ..PoolConfig::default()
    };
    let opening = pgactor::OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .write_pool(pool(write_max))
        .read_pool(pool(read_max))
        .session(SessionConfig {
            schema: Some(unique_schema("cap")),
            ..SessionConfig::default()
        })
        .open();
    let (db, logs) = capturing_logs(opening).await;
    db.expect("a capacity warning never fails the open")
        .close()
        .await;
    logs
}

#[tokio::test]
async fn open_warns_when_the_pools_claim_more_than_half_of_max_connections() {
    let admin = observer(&primary_url()).await;
    let max: i32 = admin
        .query_one("SELECT current_setting('max_connections')::int", &[])
        .await
        .unwrap()
        .get(0);
    let half = max as usize / 2;
    let loud = open_capturing(half, 1).await;
    assert!(
        loud.contains("more than half of the server's max_connections"),
        "{loud}"
    );
    let quiet = open_capturing(half / 2, half / 2).await;
    assert!(!quiet.contains("max_connections"), "{quiet}");
    assert!(quiet.contains("pgactor open"), "the capture works: {quiet}");
}
