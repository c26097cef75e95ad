//! Several read replicas: one pool and one watch each, reads spread by
//! operations in flight, a replica stopped, paused or promoted drained
//! while the others serve, token reads never stale, the primary only when
//! no replica can serve. Each test that stops, pauses or promotes servers
//! brings up a topology of its own with two replicas.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgactor::{
    Db, ErrorKind, OpenOptions, Query, Record, ReplicaConfig, ReplicaServerStats, WriteOp,
};

use crate::support::blocking::{pause_replay, resume_replay};
use crate::support::db::{create_stock, fast_probe, open_with_replicas};
use crate::support::observer::observer;
use crate::support::topology::{primary_url, replica_url, Topology};
use crate::support::wait::{eventually, ready, until};

/// The adapter reading from both replicas of `topo`.
async fn open_two(topo: &Topology, config: ReplicaConfig, schema: &str) -> Db {
    open_with_replicas(
        topo.primary(),
        &[topo.replica(), topo.replica2()],
        config,
        schema,
    )
    .await
}

/// The statistics of the replica on `port`.
fn replica_on(db: &Db, port: &str) -> ReplicaServerStats {
    let stats = db.stats();
    stats
        .replicas
        .into_iter()
        .find(|r| r.name.ends_with(&format!(":{port}")))
        .unwrap_or_else(|| panic!("no replica on port {port}"))
}

/// Until the server of `url` holds stock row `id` of `schema`.
async fn until_on(url: &str, schema: &str, id: uuid::Uuid) {
    let server = observer(url).await;
    let sql = format!("SELECT count(*) FROM \"{schema}\".stock_balance WHERE id = $1");
    until("the row to reach the replica", || async {
        let found = server.query_one(&sql, &[&id]).await;
        found.is_ok_and(|row| row.get::<_, i64>(0) == 1)
    })
    .await;
}

/// A row both replicas of `topo` hold.
async fn replicated_row(db: &Db, topo: &Topology, schema: &str) -> uuid::Uuid {
    let id = create_stock(db, "both").await;
    until_on(topo.replica(), schema, id).await;
    until_on(topo.replica2(), schema, id).await;
    id
}

#[tokio::test]
async fn a_multi_host_read_dsn_gives_a_replica_per_host_reads_go_to_the_least_busy_and_each_is_reported(
) {
    let topo = Topology::with_two_replicas();
    let (p1, p2) = (
        topo.var("PGACTOR_REPLICA_PORT").to_owned(),
        topo.var("PGACTOR_REPLICA2_PORT").to_owned(),
    );
    let schema = "many_replicas_busy";
    let multi = format!(
        "host=127.0.0.1,127.0.0.1 port={p1},{p2} user=postgres dbname=postgres sslmode=disable"
    );
    let db = open_with_replicas(topo.primary(), &[&multi], fast_probe(), schema).await;
    let names: Vec<String> = db.stats().replicas.iter().map(|r| r.name.clone()).collect();
    assert_eq!(
        names,
        [format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}")]
    );
    let id = replicated_row(&db, &topo, schema).await;

    // Health: one entry per replica, in order.
    let health = db.ping(Duration::from_secs(5)).await;
    assert!(health.is_up(), "{health:?}");
    let targets: Vec<&str> = health.read_pools().map(|h| h.target.as_str()).collect();
    assert_eq!(targets.len(), 2, "{health:?}");
    assert!(targets[0].contains(&format!(":{p1}/")), "{targets:?}");
    assert!(targets[1].contains(&format!(":{p2}/")), "{targets:?}");
    // Statistics and their Prometheus text: per replica, by name.
    let text = eventually("both replicas probed up", || async {
        let text = db.stats().to_prometheus();
        let up = |p: &str| {
            text.contains(&format!(
                "pgactor_replica_up{{replica=\"127.0.0.1:{p}\"}} 1"
            ))
        };
        ready(up(&p1) && up(&p2), text)
    })
    .await;
    for line in [
        format!("pgactor_pool_max_open{{role=\"read\",replica=\"127.0.0.1:{p2}\"}}"),
        format!("pgactor_replica_in_flight{{replica=\"127.0.0.1:{p1}\"}} 0"),
    ] {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }

    // Idle replicas take reads in turn (once each watch has seen its
    // replica replay what AutoMigrate did at open).
    eventually("ten reads split evenly", || async {
        let (r1, r2) = (replica_on(&db, &p1).reads, replica_on(&db, &p2).reads);
        for _ in 0..10 {
            db.read("StockBalance", id).await.expect("read");
        }
        let split = (
            replica_on(&db, &p1).reads - r1,
            replica_on(&db, &p2).reads - r2,
        );
        ready(split == (5, 5), split)
    })
    .await;

    // One replica busy with a statement that waits for an advisory lock
    // held from outside (advisory locks work on a standby): every read
    // goes to the other, which has fewer operations in flight.
    let holders = [
        observer(topo.replica()).await,
        observer(topo.replica2()).await,
    ];
    for holder in &holders {
        holder
            .execute("SELECT pg_advisory_lock(42)", &[])
            .await
            .unwrap();
    }
    let waiting = tokio::spawn({
        let db = db.clone();
        async move { db.replica().query("SELECT pg_advisory_xact_lock(42)").await }
    });
    let busy = eventually("a replica runs the waiting statement", || async {
        let busy: Vec<ReplicaServerStats> = db
            .stats()
            .replicas
            .into_iter()
            .filter(|r| r.in_flight == 1)
            .collect();
        ready(busy.len() == 1, busy)
    })
    .await;
    let busy_port = busy[0].name.rsplit(':').next().unwrap().to_owned();
    let idle_port = if busy_port == p1 { &p2 } else { &p1 };
    let (busy_reads, idle_reads) = (busy[0].reads, replica_on(&db, idle_port).reads);
    for _ in 0..10 {
        db.read("StockBalance", id).await.expect("read");
    }
    assert_eq!(
        replica_on(&db, &busy_port).reads,
        busy_reads,
        "none on the busy one"
    );
    assert_eq!(replica_on(&db, idle_port).reads - idle_reads, 10);
    for holder in &holders {
        holder
            .execute("SELECT pg_advisory_unlock(42)", &[])
            .await
            .unwrap();
    }
    waiting.await.unwrap().expect("the waiting statement ends");
    assert!(db.stats().replicas.iter().all(|r| r.in_flight == 0));
    db.close().await;
}

#[tokio::test]
async fn one_of_two_replicas_stopped_under_load_costs_no_read_error_and_both_down_fall_back() {
    let topo = Topology::with_two_replicas();
    let schema = "many_replicas_stop";
    let db = open_two(&topo, fast_probe(), schema).await;
    let strict = open_two(
        &topo,
        ReplicaConfig {
            fallback: false,
            ..fast_probe()
        },
        schema,
    )
    .await;
    let id = replicated_row(&db, &topo, schema).await;
    let (p1, p2) = (
        topo.var("PGACTOR_REPLICA_PORT").to_owned(),
        topo.var("PGACTOR_REPLICA2_PORT").to_owned(),
    );

    // Readers by id and by page, until told to stop; every error kept.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let (db, stop, done) = (db.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let outcome = match i % 2 {
                        0 => db.read("StockBalance", id).await.map(drop),
                        _ => db.list("StockBalance", Query::new()).await.map(drop),
                    };
                    if let Err(err) = outcome {
                        errors.push(err.to_string());
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                errors
            })
        })
        .collect();
    eventually("both replicas serve the load", || async {
        ready(
            replica_on(&db, &p1).reads > 20 && replica_on(&db, &p2).reads > 20,
            (),
        )
    })
    .await;

    let replica_data = topo.var("PGACTOR_REPLICA_DATA").to_owned();
    topo.pg_ctl(&replica_data, &["stop", "-m", "fast"]);
    eventually("the stopped replica is seen down", || async {
        ready(!replica_on(&db, &p1).up, ())
    })
    .await;
    // Down, it is left out: its reads go to the other.
    let (r1, r2) = (replica_on(&db, &p1).reads, replica_on(&db, &p2).reads);
    let before = done.load(Ordering::Relaxed);
    until("the load goes on", || async {
        done.load(Ordering::Relaxed) > before + 100
    })
    .await;
    assert_eq!(
        replica_on(&db, &p1).reads,
        r1,
        "none to the stopped replica"
    );
    assert!(replica_on(&db, &p2).reads > r2 + 50);

    // Started again, it comes back by itself.
    topo.pg_ctl(&replica_data, &["start"]);
    eventually("the replica is up again", || async {
        ready(replica_on(&db, &p1).up, ())
    })
    .await;
    let r1 = replica_on(&db, &p1).reads;
    eventually("reads go back to it", || async {
        ready(replica_on(&db, &p1).reads > r1 + 20, ())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let errors = reader.await.unwrap();
        assert!(errors.is_empty(), "read errors under load: {errors:?}");
    }

    // Both down: reads fall back to the primary (each a bounded wait
    // within its places there), or fail at once with fallback off.
    let replica2_data = topo.var("PGACTOR_REPLICA2_DATA").to_owned();
    topo.pg_ctl(&replica_data, &["stop", "-m", "fast"]);
    topo.pg_ctl(&replica2_data, &["stop", "-m", "fast"]);
    let spilled = db.stats().replica.unwrap().primary_reads;
    for _ in 0..5 {
        let row = db
            .read("StockBalance", id)
            .await
            .expect("served by the primary");
        assert_eq!(row.get::<uuid::Uuid>("id").unwrap(), id);
    }
    let stats = db.stats();
    assert!(
        stats.replica.unwrap().primary_reads >= spilled + 5,
        "{stats:?}"
    );
    assert!(!stats.replica.unwrap().up, "{stats:?}");
    let refused = strict.read("StockBalance", id).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::Unavailable,
        "fallback off: {refused}"
    );
    db.close().await;
    strict.close().await;
}

#[tokio::test]
async fn replay_paused_on_one_moves_its_reads_to_the_other_and_token_reads_are_never_stale() {
    let topo = Topology::with_two_replicas();
    let schema = "many_replicas_paused";
    let lag_bound = ReplicaConfig {
        max_lag: Some(Duration::from_millis(200)),
        ..fast_probe()
    };
    let bounded = open_two(&topo, lag_bound, schema).await;
    let plain = open_two(&topo, fast_probe(), schema).await;
    // Probed once at open and then not for an hour: what it knows of the
    // replicas' positions is old, so a token read must ask a replica.
    let asking = open_two(
        &topo,
        ReplicaConfig {
            poll_interval: Duration::from_secs(3600),
            ..ReplicaConfig::default()
        },
        schema,
    )
    .await;
    let p1 = topo.var("PGACTOR_REPLICA_PORT").to_owned();
    replicated_row(&plain, &topo, schema).await;

    let paused = pause_replay(topo.replica()).await;
    // Token reads see every write, whichever replica they go to.
    let mut last = None;
    for i in 0..20 {
        let (row, token) = plain
            .write_with_token(
                "StockBalance",
                WriteOp::Create(Record::new().with("sku", format!("fresh-{i}"))),
            )
            .await
            .unwrap();
        let id: uuid::Uuid = row.get("id").unwrap();
        for db in [&plain, &bounded, &asking] {
            assert_eq!(db.after(token).read("StockBalance", id).await.unwrap(), row);
            let page = db
                .after(token)
                .list("StockBalance", Query::new())
                .await
                .unwrap();
            assert!(page.rows.contains(&row), "a page without the row written");
        }
        last = Some((id, token));
    }
    let (id, token) = last.unwrap();
    // The paused replica falls past max_lag: plain reads leave it.
    eventually("the paused replica is past max_lag", || async {
        ready(
            replica_on(&bounded, &p1).lag > Duration::from_millis(200),
            (),
        )
    })
    .await;
    // Once the other replica has the last row, a read of it that finds
    // none could only have gone to the paused one.
    until_on(topo.replica2(), schema, id).await;
    let r1 = replica_on(&bounded, &p1).reads;
    for _ in 0..10 {
        bounded
            .read("StockBalance", id)
            .await
            .expect("not on the paused replica");
    }
    assert_eq!(
        replica_on(&bounded, &p1).reads,
        r1,
        "none to the lagging replica"
    );
    // A token read the watch cannot place is asked of a replica, which
    // serves it once it has replayed the token: not the primary.
    eventually("a replica serves the token read", || async {
        let spilled = asking.stats().replica.unwrap().primary_reads;
        let row = asking.after(token).read("StockBalance", id).await.unwrap();
        let served = asking.stats().replica.unwrap().primary_reads == spilled;
        ready(served && row.get::<uuid::Uuid>("id").unwrap() == id, ())
    })
    .await;

    resume_replay(&paused).await;
    eventually("the replica catches up", || async {
        ready(replica_on(&bounded, &p1).lag == Duration::ZERO, ())
    })
    .await;
    let r1 = replica_on(&bounded, &p1).reads;
    eventually("reads go back to it", || async {
        bounded.read("StockBalance", id).await.unwrap();
        ready(replica_on(&bounded, &p1).reads > r1, ())
    })
    .await;
    for db in [bounded, plain, asking] {
        db.close().await;
    }
}

#[tokio::test]
async fn a_promoted_replica_is_drained_and_never_written_to() {
    let topo = Topology::with_two_replicas();
    let schema = "many_replicas_promoted";
    let db = open_two(&topo, fast_probe(), schema).await;
    let id = replicated_row(&db, &topo, schema).await;
    let p2 = topo.var("PGACTOR_REPLICA2_PORT").to_owned();

    let promoted = observer(topo.replica2()).await;
    let done: bool = promoted
        .query_one("SELECT pg_promote()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(done, "pg_promote");
    let seen = eventually("the watch sees the promotion", || async {
        let r2 = replica_on(&db, &p2);
        ready(r2.promoted && !r2.up, r2)
    })
    .await;
    let text = db.stats().to_prometheus();
    assert!(
        text.contains(&format!(
            "pgactor_replica_promoted{{replica=\"127.0.0.1:{p2}\"}} 1"
        )),
        "{text}"
    );

    // Writes go to the primary only; reads to the replica that still follows it.
    let mut written = Vec::new();
    for i in 0..5 {
        written.push(create_stock(&db, &format!("after-{i}")).await);
    }
    for _ in 0..10 {
        db.read("StockBalance", id).await.expect("read");
    }
    assert_eq!(
        replica_on(&db, &p2).reads,
        seen.reads,
        "none to the promoted replica"
    );
    let sql = format!("SELECT count(*) FROM \"{schema}\".stock_balance WHERE id = ANY($1)");
    let on_promoted: i64 = promoted.query_one(&sql, &[&written]).await.unwrap().get(0);
    assert_eq!(on_promoted, 0, "nothing written to the promoted replica");
    db.close().await;
}

#[tokio::test]
async fn the_replicas_are_bounded_in_number_and_each_named_once() {
    let hosts = vec!["127.0.0.1"; pgactor::MAX_REPLICAS + 1].join(",");
    let ports: Vec<String> = (1..=pgactor::MAX_REPLICAS + 1)
        .map(|p| p.to_string())
        .collect();
    let too_many = format!("host={hosts} port={} user=app dbname=app", ports.join(","));
    let err = OpenOptions::new(primary_url())
        .read_dsn(too_many)
        .open()
        .await
        .expect_err("17 replicas");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("at most 16"), "{err}");

    let err = OpenOptions::new(primary_url())
        .read_dsns([replica_url(), replica_url()])
        .open()
        .await
        .expect_err("a replica twice");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("twice"), "{err}");

    // An empty read DSN replaces those given before: reads on the primary.
    let db = OpenOptions::new(primary_url())
        .read_dsns([replica_url()])
        .read_dsn("")
        .open()
        .await
        .expect("open");
    let stats = db.stats();
    assert!(
        stats.replica.is_none() && stats.replicas.is_empty(),
        "{stats:?}"
    );
    assert!(db.ping(Duration::from_secs(5)).await.replicas.is_empty());
    db.close().await;
}
