//! Connection lifetimes enforced and counted, seen from outside: the
//! adapter's backend pids in `pg_stat_activity` change, and the pool's
//! statistics name the reason.

use std::collections::BTreeSet;
use std::time::Duration;

use pgactor::{Db, PoolConfig, Query, TxOptions};

use crate::support::db::open_tagged;
use crate::support::observer::{observer, session_pids};
use crate::support::topology::primary_url;
use crate::support::wait::{eventually, ready};

/// Check out `n` write connections at once (each held by a transaction),
/// then give them all back.
async fn use_connections(db: &Db, n: usize) {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(db.begin(TxOptions::default()).await.unwrap());
    }
    for tx in held {
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn connections_older_than_max_lifetime_are_replaced() {
    let (db, app) = open_tagged(
        "life",
        PoolConfig {
            max_lifetime: Some(Duration::from_secs(1)),
            ..PoolConfig::default()
        },
    )
    .await;
    let admin = observer(&primary_url()).await;
    db.create("StockBalance", pgactor::Record::new().with("sku", "a"))
        .await
        .unwrap();
    let before: BTreeSet<i32> = session_pids(&admin, &app).await.into_iter().collect();
    assert!(!before.is_empty());

    eventually(
        "every first connection has been closed for its age",
        || async {
            // Keep using the pool: expired connections are refused at checkout too.
            db.list("StockBalance", Query::new()).await.unwrap();
            let now: BTreeSet<i32> = session_pids(&admin, &app).await.into_iter().collect();
            ready(now.is_disjoint(&before), ())
        },
    )
    .await;
    let stats = db.stats();
    assert!(
        stats.write.closed.max_lifetime + stats.read.closed.max_lifetime >= 1,
        "{stats:?}"
    );
    db.close().await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_max_idle_time_without_any_checkout() {
    let (db, schema) = open_tagged(
        "life",
        PoolConfig {
            max_idle_time: Some(Duration::from_secs(1)),
            ..PoolConfig::default()
        },
    )
    .await;
    let admin = observer(&primary_url()).await;
    use_connections(&db, 3).await;
    assert!(session_pids(&admin, &schema).await.len() >= 3);

    eventually("the idle connections are closed", || async {
        ready(session_pids(&admin, &schema).await.is_empty(), ())
    })
    .await;
    let stats = db.stats();
    assert_eq!((stats.write.open, stats.read.open), (0, 0), "{stats:?}");
    assert!(stats.write.closed.max_idle_time >= 3, "{stats:?}");
    // The pool opens new connections on demand afterwards.
    db.list("StockBalance", Query::new()).await.unwrap();
    db.close().await;
}

#[tokio::test]
async fn the_idle_set_is_trimmed_to_max_idle() {
    let (db, _) = open_tagged(
        "life",
        PoolConfig {
            max_open: Some(6),
            max_idle: Some(2),
            ..PoolConfig::default()
        },
    )
    .await;
    use_connections(&db, 6).await;
    let stats = eventually("the idle write connections are trimmed to 2", || async {
        let stats = db.stats();
        ready(stats.write.idle == 2, stats)
    })
    .await;
    assert_eq!(stats.write.open, 2, "{stats:?}");
    assert_eq!(stats.write.closed.max_idle_count, 4, "{stats:?}");
    assert_eq!(
        stats.read.open, 1,
        "the read pool keeps its one connection: {stats:?}"
    );
    db.close().await;
}
