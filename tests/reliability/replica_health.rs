//! Scenarios 7d–7f: the replica watch's signals under faults that leave
//! the replica reachable (catalogue C2, H1).
//!
//! - 7d (private topology): the replica is cut off from its primary while
//!   it stays reachable (its `primary_conninfo` emptied and reloaded, so
//!   its WAL receiver stops). Its own positions freeze together, so it
//!   looks caught up; the watch must still see it fall behind, and with
//!   `max_lag` set, plain reads of rows written since must find them (on
//!   the primary). Before the cut, an idle primary must show no lag.
//! - 7e (same topology, still cut off): reads spilled onto the primary by
//!   the lag wait on a table lock there, while writes to another table go
//!   on: the spilled reads take at most `max_primary_reads` write
//!   connections, and no write fails.
//! - 7f (shared topology): the read pool is saturated by reads waiting on
//!   the replica for a table lock replayed from the primary. Pool
//!   exhaustion is not a failed replica: it stays up, no read goes to the
//!   primary, and writes go on.

use std::time::{Duration, Instant};

use pgactor::{Db, ErrorKind, PoolConfig, Record, ReplicaConfig};

use crate::figures::{self, Figures};
use crate::lanes::note_model;
use crate::support::blocking::{lock_table, lock_waiters};
use crate::support::db::{create_stock, registry, stock_model, tagged_session, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::{primary_url, replica_url, Topology};
use crate::support::wait::until;

/// The watch's probe interval.
const POLL: Duration = Duration::from_millis(200);

/// The `max_lag` of 7d.
const MAX_LAG: Duration = Duration::from_secs(1);

/// Open on `primary` with `replica` as read DSN, in a fresh schema that is
/// also the sessions' application_name.
async fn open(
    primary: &str,
    replica: &str,
    read: PoolConfig,
    config: ReplicaConfig,
) -> (Db, String) {
    let app = unique_schema("rh");
    let db = pgactor::OpenOptions::new(primary)
        .read_dsn(replica)
        .registry(registry([stock_model(), note_model()]))
        .write_pool(PoolConfig {
            max_open: Some(4),
            wait_timeout: Some(Duration::from_secs(1)),
            ..PoolConfig::default()
        })
        .read_pool(read)
        .replica(ReplicaConfig {
            poll_interval: POLL,
            ..config
        })
        .session(tagged_session(&app, &app))
        .open()
        .await
        .expect("open");
    (db, app)
}

/// Until `row` can be read on the replica through `replica`.
async fn on_replica(replica: &tokio_postgres::Client, app: &str, row: uuid::Uuid) {
    let sql = format!("SELECT count(*) FROM \"{app}\".stock_balance WHERE id = $1");
    until("the row reaches the replica", || async {
        match replica.query_one(&sql, &[&row]).await {
            Ok(found) => found.get::<_, i64>(0) == 1,
            Err(_) => false,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_cut_off_from_its_primary_reads_as_lagging_and_its_reads_spill_within_a_bound() {
    let _serial = figures::serial().await;
    let topo = tokio::task::block_in_place(Topology::up);
    let (db, app) = open(
        topo.primary(),
        topo.replica(),
        PoolConfig::default(),
        ReplicaConfig {
            max_lag: Some(MAX_LAG),
            ..ReplicaConfig::default()
        },
    )
    .await;
    let replica = observer(topo.replica()).await;
    let primary = observer(topo.primary()).await;
    let first = create_stock(&db, &uuid::Uuid::new_v4().to_string()).await;
    on_replica(&replica, &app, first).await;

    // An idle primary writes no WAL: no lag, and plain reads stay on the replica.
    until("the watch sees the replica caught up", || async {
        db.stats().replica.unwrap().lag == Duration::ZERO
    })
    .await;
    let before = db.stats().replica.unwrap();
    tokio::time::sleep(MAX_LAG * 2).await;
    for _ in 0..10 {
        db.read("StockBalance", first)
            .await
            .expect("read on the replica");
    }
    let idle = db.stats().replica.unwrap();
    assert_eq!(
        idle.lag,
        Duration::ZERO,
        "an idle primary shows lag: {idle:?}"
    );
    assert!(idle.up, "{idle:?}");
    assert_eq!(
        idle.primary_reads, before.primary_reads,
        "reads left an idle, caught-up replica"
    );

    // The cut: the replica stays reachable but stops receiving WAL.
    let conninfo: String = replica
        .query_one("SHOW primary_conninfo", &[])
        .await
        .unwrap()
        .get(0);
    replica
        .batch_execute("ALTER SYSTEM SET primary_conninfo = ''")
        .await
        .expect("cut the replica off");
    replica
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    until("the replica's WAL receiver stops", || async {
        let n: i64 = replica
            .query_one("SELECT count(*) FROM pg_stat_wal_receiver", &[])
            .await
            .unwrap()
            .get(0);
        n == 0
    })
    .await;

    // Writes for 3 s; after each, a plain read of a row written at least
    // MAX_LAG + 1 s earlier (the watch's resolution is one poll interval).
    let mut f = Figures::new(
        "7d",
        "replica cut off from its primary (reachable), max_lag 1 s",
    );
    let old_enough = MAX_LAG + Duration::from_secs(1);
    let (mut written, mut misses, mut reads) = (Vec::new(), 0_u64, 0_u64);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let row = db
            .create("Note", Record::new().with("body", "x"))
            .await
            .map(|_| ());
        f.outcome(&row);
        let result = db
            .create(
                "StockBalance",
                Record::new().with("sku", uuid::Uuid::new_v4().to_string()),
            )
            .await;
        f.outcome(&result);
        if let Ok(row) = result {
            written.push((Instant::now(), row.get::<uuid::Uuid>("id").unwrap()));
        }
        if let Some(&(_, id)) = written
            .iter()
            .rev()
            .find(|(at, _)| at.elapsed() >= old_enough)
        {
            reads += 1;
            match db.read("StockBalance", id).await {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    misses += 1;
                    f.operations += 1;
                    f.acknowledged += 1;
                }
                other => f.outcome(&other),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cut = db.stats().replica.unwrap();
    // Every row written during the cut, read plainly.
    let (mut late_misses, mut late_reads) = (0, 0);
    tokio::time::sleep(old_enough).await;
    for &(_, id) in &written {
        late_reads += 1;
        match db.read("StockBalance", id).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                late_misses += 1;
                f.operations += 1;
                f.acknowledged += 1;
            }
            other => f.outcome(&other),
        }
    }

    // 7e: still cut off, so plain reads run on the primary; there they
    // wait on a table lock while writes to the notes go on.
    let mut g = Figures::new(
        "7e",
        "reads spilled to the primary wait on a lock, writes go on",
    );
    let locker = lock_table(topo.primary(), &app, "stock_balance").await;
    let spilled: Vec<_> = (0..8)
        .map(|_| {
            let (db, id) = (db.clone(), first);
            tokio::spawn(async move { db.read("StockBalance", id).await })
        })
        .collect();
    let (mut most_waiting, mut slowest_write, mut failed_writes) = (0, Duration::ZERO, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let began = Instant::now();
        let wrote = db
            .create("Note", Record::new().with("body", "y"))
            .await
            .map(|_| ());
        slowest_write = slowest_write.max(began.elapsed());
        failed_writes += u64::from(wrote.is_err());
        g.outcome(&wrote);
        most_waiting = most_waiting.max(lock_waiters(&primary, &app).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(locker);
    for read in spilled {
        g.outcome(&read.await.unwrap());
    }

    // The cut healed: the replica catches up and reads come back.
    let escaped = conninfo.replace('\'', "''");
    replica
        .batch_execute(&format!("ALTER SYSTEM SET primary_conninfo = '{escaped}'"))
        .await
        .expect("restore the replica's primary_conninfo");
    replica
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    let healed = Instant::now();
    until("the watch sees the replica caught up again", || async {
        db.stats().replica.unwrap().lag == Duration::ZERO
    })
    .await;
    f.recovery = Some(healed.elapsed());
    f.note(format!(
        "idle before the cut: lag {} ms, reads on the replica 10 of 10",
        idle.lag.as_millis()
    ));
    f.note(format!(
        "during the cut: up {}, lag seen {} ms",
        cut.up,
        cut.lag.as_millis()
    ));
    f.note(format!(
        "plain reads of rows ≥ 2 s old missing {misses} of {reads}; all rows read afterwards missing {late_misses} of {late_reads}"
    ));
    f.publish();
    g.note(format!(
        "max_primary_reads 2 of 4 write connections; reads waiting on the lock at most {most_waiting}"
    ));
    g.note(format!("slowest write {} ms", slowest_write.as_millis()));
    g.publish();

    assert!(cut.up, "a reachable replica is up, only behind: {cut:?}");
    assert!(cut.lag > MAX_LAG, "the cut did not show as lag: {cut:?}");
    assert_eq!(misses, 0, "{}: stale plain reads with max_lag set", f.row());
    assert_eq!(late_misses, 0, "{}: stale plain reads", f.row());
    assert!(f.errors.is_empty(), "{}", f.row());
    assert_eq!(
        failed_writes,
        0,
        "{}: writes starved by spilled reads",
        g.row()
    );
    assert!(
        most_waiting <= 2,
        "{}: more spilled reads on the primary than max_primary_reads",
        g.row()
    );
    // The only errors: spilled reads refused a place (6 of 8 at most).
    let refused = g.errors.get("UNAVAILABLE").copied().unwrap_or(0);
    assert!(refused <= 6 && g.errors.len() <= 1, "{}", g.row());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturated_read_pool_leaves_the_replica_up_and_the_writes_alone() {
    let _serial = figures::serial().await;
    let read_pool = PoolConfig {
        max_open: Some(2),
        wait_timeout: Some(Duration::from_millis(500)),
        ..PoolConfig::default()
    };
    let (db, app) = open(
        &primary_url(),
        &replica_url(),
        read_pool,
        ReplicaConfig::default(),
    )
    .await;
    let replica = observer(&replica_url()).await;
    let row = create_stock(&db, &uuid::Uuid::new_v4().to_string()).await;
    on_replica(&replica, &app, row).await;
    until("the watch sees the replica caught up", || async {
        db.stats().replica.unwrap().lag == Duration::ZERO
    })
    .await;
    let before = db.stats().replica.unwrap();

    // A table lock on the primary, replayed on the replica: reads of the
    // table wait there, holding both read connections.
    let locker = lock_table(&primary_url(), &app, "stock_balance").await;
    let held = format!(
        "SELECT count(*) FROM pg_locks WHERE relation = '\"{app}\".stock_balance'::regclass \
         AND mode = 'AccessExclusiveLock'"
    );
    until("the lock is replayed on the replica", || async {
        let n: i64 = replica.query_one(&held, &[]).await.unwrap().get(0);
        n > 0
    })
    .await;

    let mut f = Figures::new(
        "7f",
        "read pool saturated (reads wait on the replica), writes go on",
    );
    let reads: Vec<_> = (0..12)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.read("StockBalance", row).await })
        })
        .collect();
    let (mut seen_down, mut slowest_write, mut writes) = (0, Duration::ZERO, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let began = Instant::now();
        let wrote = db
            .create("Note", Record::new().with("body", "z"))
            .await
            .map(|_| ());
        slowest_write = slowest_write.max(began.elapsed());
        writes += 1;
        f.outcome(&wrote);
        if !db.stats().replica.unwrap().up {
            seen_down += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(locker);
    let mut read_errors = 0;
    for read in reads {
        let result = read.await.unwrap();
        read_errors += u64::from(result.is_err());
        f.outcome(&result);
    }
    let after = db.stats().replica.unwrap();
    let spilled = after.primary_reads - before.primary_reads;
    f.note(format!(
        "writes {writes}, slowest {} ms; reads 12 on a read pool of 2 (wait 500 ms), {read_errors} refused",
        slowest_write.as_millis()
    ));
    f.note(format!(
        "replica seen down {seen_down} times; reads sent to the primary {spilled}"
    ));
    f.publish();

    assert_eq!(
        seen_down,
        0,
        "{}: pool exhaustion marked the replica down",
        f.row()
    );
    assert_eq!(spilled, 0, "{}: reads spilled onto the primary", f.row());
    assert_eq!(
        f.errors.keys().collect::<Vec<_>>(),
        if read_errors > 0 {
            vec!["UNAVAILABLE"]
        } else {
            vec![]
        },
        "{}",
        f.row()
    );
    assert_eq!(
        f.operations - f.acknowledged,
        read_errors,
        "{}: a write failed",
        f.row()
    );
    db.close().await;
}
