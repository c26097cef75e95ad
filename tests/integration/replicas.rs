//! Read replicas that are really used, lag made visible, read-your-writes
//! through consistency tokens, fallback while the replica is down, and
//! writes that follow a promoted standby. Each test stops, pauses or
//! promotes servers, so each brings up a topology of its own.

use std::time::Duration;

use pgactor::{ErrorKind, Record, ReplicaConfig, TxOptions, WriteOp};

use crate::support::blocking::{pause_replay, resume_replay};
use crate::support::db::{create_stock, fast_probe, open_with_replica};
use crate::support::observer::observer;
use crate::support::topology::{primary_url, replica_url, Topology};
use crate::support::wait::{eventually, read_when_replicated, ready};

#[tokio::test]
async fn paused_replay_shows_stale_reads_outside_a_transaction_and_tokens_fix_them() {
    let topo = Topology::up();
    let db = open_with_replica(topo.primary(), topo.replica(), fast_probe(), "replicas").await;
    let first = create_stock(&db, "first").await;
    read_when_replicated(&db, "StockBalance", first).await;

    let replica = pause_replay(topo.replica()).await;
    let (row, token) = db
        .write_with_token(
            "StockBalance",
            WriteOp::Create(Record::new().with("sku", "fresh")),
        )
        .await
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();

    // Outside a transaction, the replica's lag shows: the row is not there.
    let stale = db.read("StockBalance", id).await.unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::NotFound);
    // Inside a transaction everything runs on the primary.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    assert_eq!(tx.read("StockBalance", id).await.unwrap(), row);
    tx.rollback().await.unwrap();
    // With the write's token, the read goes to the primary while the
    // replica is behind it.
    assert_eq!(db.after(token).read("StockBalance", id).await.unwrap(), row);
    let stats = eventually("the probe sees the lag", || async {
        let stats = db.stats().replica.unwrap();
        ready(stats.lag > Duration::ZERO, stats)
    })
    .await;
    assert!(stats.up && stats.primary_reads >= 1, "{stats:?}");

    resume_replay(&replica).await;
    read_when_replicated(&db, "StockBalance", id).await;
    // Once the replica has replayed past the token, token reads use it again.
    eventually("token reads go back to the replica", || async {
        let before = db.stats().replica.unwrap().primary_reads;
        db.after(token).read("StockBalance", id).await.unwrap();
        ready(db.stats().replica.unwrap().primary_reads == before, ())
    })
    .await;
    db.close().await;
}

#[tokio::test]
async fn a_replica_past_max_lag_is_skipped_until_it_catches_up() {
    let topo = Topology::up();
    let config = ReplicaConfig {
        max_lag: Some(Duration::from_millis(200)),
        ..fast_probe()
    };
    let db = open_with_replica(topo.primary(), topo.replica(), config, "replicas").await;
    let first = create_stock(&db, "first").await;
    read_when_replicated(&db, "StockBalance", first).await;
    let replica = pause_replay(topo.replica()).await;
    let id = create_stock(&db, "behind").await;

    // Once the probe sees the replica too far behind, plain reads go to the primary.
    eventually("reads move to the primary", || db.read("StockBalance", id)).await;
    resume_replay(&replica).await;
    eventually("the replica catches up", || async {
        ready(db.stats().replica.unwrap().lag == Duration::ZERO, ())
    })
    .await;
    db.close().await;
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_while_the_replica_is_down_and_return() {
    let topo = Topology::up();
    let db = open_with_replica(topo.primary(), topo.replica(), fast_probe(), "replicas").await;
    let strict = open_with_replica(
        topo.primary(),
        topo.replica(),
        ReplicaConfig {
            fallback: false,
            ..fast_probe()
        },
        "replicas",
    )
    .await;
    let id = create_stock(&db, "a").await;
    read_when_replicated(&db, "StockBalance", id).await;

    let replica_data = topo.var("PGACTOR_REPLICA_DATA").to_owned();
    topo.pg_ctl(&replica_data, &["stop", "-m", "fast"]);
    db.read("StockBalance", id)
        .await
        .expect("served by the primary");
    assert!(!db.stats().replica.unwrap().up);
    let refused = strict.read("StockBalance", id).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::Unavailable,
        "fallback off: {refused}"
    );

    topo.pg_ctl(&replica_data, &["start"]);
    eventually("the replica is seen up again", || async {
        ready(db.stats().replica.unwrap().up, ())
    })
    .await;
    strict
        .read("StockBalance", id)
        .await
        .expect("the replica serves again");
    db.close().await;
    strict.close().await;
}

#[tokio::test]
async fn writes_follow_a_promoted_standby_without_reopening() {
    let topo = Topology::up();
    let (p, r) = (
        topo.var("PGACTOR_PRIMARY_PORT"),
        topo.var("PGACTOR_REPLICA_PORT"),
    );
    let write = format!(
        "host=127.0.0.1,127.0.0.1 port={p},{r} user=postgres dbname=postgres target_session_attrs=read-write"
    );
    let db = open_with_replica(&write, "", ReplicaConfig::default(), "replicas").await;
    create_stock(&db, "before").await;

    topo.pg_ctl(topo.var("PGACTOR_PRIMARY_DATA"), &["stop", "-m", "fast"]);
    topo.pg_ctl(topo.var("PGACTOR_REPLICA_DATA"), &["promote"]);
    // The old connections are gone; new ones find the promoted server.
    let row = eventually("writes resume on the promoted standby", || async {
        db.create("StockBalance", Record::new().with("sku", "after"))
            .await
    })
    .await;
    let promoted = observer(topo.replica()).await;
    let in_recovery: bool = promoted
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!in_recovery);
    let found: i64 = promoted
        .query_one(
            "SELECT count(*) FROM replicas.stock_balance WHERE id = $1",
            &[&row.get::<uuid::Uuid>("id").unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, 1);
    db.close().await;
}

/// Reads spilled to the primary need at least one place there.
#[tokio::test]
async fn no_place_for_reads_on_the_primary_is_refused_at_open() {
    let err = pgactor::OpenOptions::new(primary_url())
        .read_dsn(replica_url())
        .replica(ReplicaConfig {
            max_primary_reads: Some(0),
            ..ReplicaConfig::default()
        })
        .open()
        .await
        .expect_err("max_primary_reads 0");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("max_primary_reads"), "{err}");
}

#[tokio::test]
async fn a_table_automigrate_just_created_is_read_on_the_primary_until_the_replica_has_replayed_it()
{
    let topo = Topology::up();
    let replica = pause_replay(topo.replica()).await;
    // Open creates the schema and its table; the replica has neither yet.
    let db = open_with_replica(topo.primary(), topo.replica(), fast_probe(), "replicas").await;
    let id = create_stock(&db, "fresh").await;
    let row = db
        .read("StockBalance", id)
        .await
        .expect("read while replay is paused");
    assert_eq!(row.get::<String>("sku").unwrap(), "fresh");
    let page = db
        .list("StockBalance", pgactor::Query::default())
        .await
        .expect("list while replay is paused");
    assert_eq!(page.rows.len(), 1);
    // Still behind once the watch has probed it: the reads stay on the primary.
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.read("StockBalance", id)
        .await
        .expect("read after probes");
    let spilled = db.stats().replica.unwrap().primary_reads;
    assert!(spilled >= 3, "reads that went to the primary: {spilled}");

    resume_replay(&replica).await;
    // Once the replica has replayed the migration, plain reads use it again.
    eventually("reads go back to the replica", || async {
        let before = db.stats().replica.unwrap().primary_reads;
        db.read("StockBalance", id).await.unwrap();
        ready(db.stats().replica.unwrap().primary_reads == before, ())
    })
    .await;
    db.close().await;
}
