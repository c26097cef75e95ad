//! Health checks: `Db::ping` and `DbMsg::Ping` answer each pool's round
//! trip, with the replica as the read pool; a pool that cannot answer
//! within the bound reports down, in time, while the other reports up.

use std::time::Duration;

use pgactor::{DbMsg, ErrorKind, PoolConfig};
use ractor::call;

use crate::support::db::{fast_probe, open_with_replica, unique_schema};
use crate::support::topology::{primary_url, replica_url};

fn port_of(url: &str) -> String {
    let after_host = url.split("127.0.0.1:").nth(1).expect("a 127.0.0.1 URL");
    after_host.split('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_ping_answers_both_pools_up_the_read_pool_on_the_replica() {
    let schema = unique_schema("health_up");
    let db = open_with_replica(&primary_url(), &replica_url(), fast_probe(), &schema).await;
    let health = db.ping(Duration::from_secs(5)).await;
    assert!(health.is_up(), "{health:?}");
    assert!(
        health.write.target.contains(&port_of(&primary_url())),
        "{health:?}"
    );
    assert!(
        health.read.target.contains(&port_of(&replica_url())),
        "{health:?}"
    );
    assert!(health.write.latency < Duration::from_secs(5));

    let by_message =
        call!(db.actor(), DbMsg::Ping, Duration::from_secs(5)).expect("ping by message");
    assert!(by_message.is_up(), "{by_message:?}");
    assert_eq!(by_message.read.target, health.read.target);
    db.close().await;
}

#[tokio::test]
async fn a_saturated_pool_reports_down_within_the_bound_and_the_other_up() {
    let schema = unique_schema("health_busy");
    let one = PoolConfig {
        max_open: Some(1),
        ..PoolConfig::default()
    };
    let db = pgactor::OpenOptions::new(primary_url())
        .read_dsn(replica_url())
        .write_pool(one)
        .session(crate::support::db::in_schema(&schema))
        .open()
        .await
        .expect("open");
    // The write pool's one connection is held by a transaction.
    let held = db
        .begin(pgactor::TxOptions::default())
        .await
        .expect("begin");
    held.execute("SELECT 1").await.expect("hold the connection");
    let within = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let health = db.ping(within).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the ping is bounded"
    );
    assert!(!health.is_up());
    let err = health.write.error.as_ref().expect("the write pool is down");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(health.write.latency >= within, "{health:?}");
    assert!(health.read.is_up(), "{health:?}");
    held.rollback().await.expect("rollback");
    // The connection is free again: the pool answers.
    assert!(db.ping(Duration::from_secs(5)).await.is_up());
    db.close().await;
}
