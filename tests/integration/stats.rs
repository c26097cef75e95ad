//! Pool statistics are true: what is held, idle and waiting, as it happens.

use std::time::Duration;

use pgactor::{DbMsg, PoolConfig, SessionConfig, TxOptions};

use crate::support::db::{registry, stock_model, unique_schema};
use crate::support::topology::primary_url;
use crate::support::wait::{eventually, ready};

#[tokio::test]
async fn stats_count_connections_in_use_idle_and_waiting() {
    let schema = unique_schema("stats");
    let db = pgactor::OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .write_pool(PoolConfig {
            max_open: Some(3),
            max_idle: Some(3),
            wait_timeout: Some(Duration::from_secs(20)),
            ..PoolConfig::default()
        })
        .session(SessionConfig {
            schema: Some(schema),
            ..SessionConfig::default()
        })
        .open()
        .await
        .unwrap();

    // k = 2 connections held by transactions.
    let a = db.begin(TxOptions::default()).await.unwrap();
    let b = db.begin(TxOptions::default()).await.unwrap();
    let held = db.stats();
    assert_eq!(
        (held.write.in_use, held.open_transactions),
        (2, 2),
        "{held:?}"
    );
    assert_eq!(held.write.max_open, 3);

    a.commit().await.unwrap();
    b.rollback().await.unwrap();
    let released = db.stats();
    assert_eq!(
        (released.write.in_use, released.open_transactions),
        (0, 0),
        "{released:?}"
    );
    assert!(released.write.idle >= 2, "{released:?}");
    // Opening a connection is not waiting for one.
    assert_eq!(released.write.waits_total, 0, "{released:?}");

    // Starve the pool: three held, a fourth waits.
    let held: Vec<_> = futures_join(&db, 3).await;
    let waiter = {
        let db = db.clone();
        tokio::spawn(async move { db.begin(TxOptions::default()).await })
    };
    let starved = eventually("a caller waits for a connection", || async {
        let stats = db.stats();
        ready(stats.write.waiting > 0, stats)
    })
    .await;
    assert_eq!(starved.write.in_use, 3, "{starved:?}");
    // The supervisor answers the same numbers to ractor callers.
    let via_actor = ractor::call!(db.actor(), DbMsg::Stats).unwrap();
    assert_eq!(via_actor.write.waiting, starved.write.waiting);

    drop(held);
    let fourth = waiter.await.unwrap().unwrap();
    fourth.rollback().await.unwrap();
    let after = db.stats();
    assert_eq!(after.write.waiting, 0);
    assert_eq!(after.write.waits_total, 1, "{after:?}");
    assert!(after.write.wait_time_total > Duration::ZERO, "{after:?}");
    db.close().await;
}

/// Begin `n` transactions.
async fn futures_join(db: &pgactor::Db, n: usize) -> Vec<pgactor::Tx> {
    let mut txs = Vec::with_capacity(n);
    for _ in 0..n {
        txs.push(db.begin(TxOptions::default()).await.unwrap());
    }
    txs
}
