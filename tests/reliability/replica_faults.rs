//! Scenario 7, replica faults under load (catalogue C1, C2, C3), on a
//! private topology (primary + streaming replica) opened with the replica
//! as read DSN. Writers (`write_with_token`) and readers (each read twice:
//! with the write's token through `Db::after`, and plain) run throughout.
//!
//! - 7a (C1): the replica is stopped (`pg_ctl stop -m fast`) for 3 s, then
//!   started. Reads fall back to the primary: no read or write fails. The
//!   recovery is the time from the replica's start until the replica is
//!   seen (from its own `pg_stat_activity`) running our reads again.
//! - 7b (C2): replay is paused on the replica for 3 s while writes go on:
//!   plain reads show the lag (rows missing), reads with the write's token
//!   are never stale.
//! - 7c (C3, last: it ends the topology's replication): the replica is
//!   promoted while the primary runs on. No write started after the
//!   promotion is on the promoted node, all are on the primary; reads keep
//!   working, tokens are never stale, and once the watch has noticed the
//!   promotion (its recovery figure) plain reads no longer miss rows.
//!
//! In every phase each acknowledged write is on the primary (lost = 0).
//! Figures: operations = writes + reads (a read pair counts as two);
//! errors labelled `read CODE` / `write CODE`; a plain read that misses a
//! row is not an error but the lag made visible (a figure).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgactor::{ConsistencyToken, Db, ErrorKind, Record, ReplicaConfig, WriteOp};

use crate::figures::{self, Figures};
use crate::support::db::{registry, stock_model, tagged_session, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::Topology;
use crate::support::wait::until;

/// The replica watch's probe interval.
const POLL: Duration = Duration::from_millis(200);

/// One acknowledged write.
#[derive(Clone, Copy)]
struct Ack {
    id: uuid::Uuid,
    token: ConsistencyToken,
    /// The phase the write started in (see [`Load::phase`]).
    phase: u8,
}

/// What the load did since the last [`Load::take`].
#[derive(Default)]
struct Tally {
    writes: u64,
    reads: u64,
    errors: BTreeMap<String, u64>,
    /// Reads with the write's token that missed it (must stay 0).
    stale_token_reads: u64,
    /// Plain reads that missed a row the primary has.
    plain_misses: u64,
    /// Writes acknowledged.
    acked: Vec<Ack>,
}

/// Writers and readers running until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU8>,
    tally: Arc<Mutex<Tally>>,
    latest: Arc<Mutex<Option<Ack>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(db: &Db, writers: usize, readers: usize) -> Load {
        let mut load = Load {
            stop: Arc::default(),
            phase: Arc::default(),
            tally: Arc::default(),
            latest: Arc::default(),
            tasks: Vec::new(),
        };
        for _ in 0..writers {
            load.tasks.push(tokio::spawn(load.writer(db.clone())));
        }
        for _ in 0..readers {
            load.tasks.push(tokio::spawn(load.reader(db.clone())));
        }
        load
    }

    fn writer(&self, db: Db) -> impl std::future::Future<Output = ()> {
        let (stop, phase) = (self.stop.clone(), self.phase.clone());
        let (tally, latest) = (self.tally.clone(), self.latest.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let started_in = phase.load(Ordering::SeqCst);
                let row = Record::new().with("sku", uuid::Uuid::new_v4().to_string());
                let result = db
                    .write_with_token("StockBalance", WriteOp::Create(row))
                    .await;
                {
                    let mut t = tally.lock().unwrap();
                    t.writes += 1;
                    match result {
                        Ok((row, token)) => {
                            let ack = Ack {
                                id: row.get("id").unwrap(),
                                token,
                                phase: started_in,
                            };
                            t.acked.push(ack);
                            *latest.lock().unwrap() = Some(ack);
                        }
                        Err(e) => *t.errors.entry(format!("write {}", e.code())).or_default() += 1,
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Reads the latest acknowledged row, with its token and plain.
    fn reader(&self, db: Db) -> impl std::future::Future<Output = ()> {
        let (stop, tally, latest) = (self.stop.clone(), self.tally.clone(), self.latest.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let ack = *latest.lock().unwrap();
                if let Some(ack) = ack {
                    let with_token = db.after(ack.token).read("StockBalance", ack.id).await;
                    let plain = db.read("StockBalance", ack.id).await;
                    let mut t = tally.lock().unwrap();
                    t.reads += 2;
                    for (result, token) in [(with_token, true), (plain, false)] {
                        match result {
                            Ok(_) => {}
                            Err(e) if e.kind() == ErrorKind::NotFound && token => {
                                t.stale_token_reads += 1
                            }
                            Err(e) if e.kind() == ErrorKind::NotFound => t.plain_misses += 1,
                            Err(e) => {
                                *t.errors.entry(format!("read {}", e.code())).or_default() += 1
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// What the load did since the last call, and a fresh count from now.
    fn take(&self) -> Tally {
        std::mem::take(&mut *self.tally.lock().unwrap())
    }

    /// Writes starting from now on are tagged `phase`.
    fn phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Stop, and answer what the load did since the last [`Load::take`].
    async fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            task.await.expect("a load task panicked");
        }
        self.take()
    }
}

/// The topology, the adapter and observers on both servers.
struct Rig {
    topo: Topology,
    db: Db,
    app: String,
    primary: tokio_postgres::Client,
}

impl Rig {
    fn replica_data(&self) -> String {
        self.topo.var("PGACTOR_REPLICA_DATA").to_owned()
    }

    /// `pg_ctl` on the replica, without stalling the load's tasks.
    fn pg_ctl_replica(&self, args: &[&str]) {
        let data = self.replica_data();
        tokio::task::block_in_place(|| self.topo.pg_ctl(&data, args));
    }

    /// How many of `ids` the server behind `client` has.
    async fn present(&self, client: &tokio_postgres::Client, ids: &[uuid::Uuid]) -> i64 {
        client
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{}\".stock_balance WHERE id = ANY($1)",
                    self.app
                ),
                &[&ids],
            )
            .await
            .expect("count rows")
            .get(0)
    }

    /// The phase's figures from its tally: the counts, and acknowledged
    /// writes missing on the primary as lost.
    async fn figures(&self, id: &str, scenario: &str, tally: &Tally) -> Figures {
        let mut f = Figures::new(id, scenario);
        let write_errors: u64 = tally
            .errors
            .iter()
            .filter(|(k, _)| k.starts_with("write"))
            .map(|(_, n)| n)
            .sum();
        f.operations = tally.writes + tally.reads;
        f.acknowledged = f.operations - tally.errors.values().sum::<u64>();
        f.errors = tally.errors.clone();
        let ids: Vec<_> = tally.acked.iter().map(|a| a.id).collect();
        f.lost = ids.len() as u64 - self.present(&self.primary, &ids).await as u64;
        f.note(format!(
            "writes {} ({} failed), reads {}",
            tally.writes, write_errors, tally.reads
        ));
        f.note(format!("stale token reads {}", tally.stale_token_reads));
        f.note(format!("plain reads missing a row {}", tally.plain_misses));
        f
    }
}

fn merged(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut all = a.clone();
    for (k, n) in b {
        *all.entry(k.clone()).or_default() += n;
    }
    all
}

/// Assert what every phase must hold, after publishing it.
fn assert_phase(f: &Figures, tally: &Tally) {
    assert_eq!(f.lost, 0, "{}: acknowledged writes missing", f.row());
    assert_eq!(tally.stale_token_reads, 0, "{}: stale token reads", f.row());
    assert!(tally.errors.is_empty(), "{}: errors", f.row());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_stopped_lagging_and_promoted_under_load() {
    let _serial = figures::serial().await;
    let topo = tokio::task::block_in_place(Topology::up);
    let app = unique_schema("rf");
    let db = pgactor::OpenOptions::new(topo.primary())
        .read_dsn(topo.replica())
        .registry(registry([stock_model()]))
        .replica(ReplicaConfig {
            poll_interval: POLL,
            ..ReplicaConfig::default()
        })
        .session(tagged_session(&app, &app))
        .open()
        .await
        .expect("open");
    let rig = Rig {
        primary: observer(topo.primary()).await,
        topo,
        db,
        app,
    };
    let replica = observer(rig.topo.replica()).await;
    let table = format!("SELECT count(*) FROM \"{}\".stock_balance", rig.app);
    until("the table reaches the replica", || async {
        replica.query_one(&table, &[]).await.is_ok()
    })
    .await;
    let load = Load::start(&rig.db, 2, 3);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 7a: the replica stopped, then started.
    load.take();
    let primary_reads = rig.db.stats().replica.unwrap().primary_reads;
    rig.pg_ctl_replica(&["stop", "-m", "fast"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    rig.pg_ctl_replica(&["start"]);
    let started = Instant::now();
    let replica = observer(rig.topo.replica()).await;
    // Our reads run on the replica again: one of our sessions there last ran one.
    until("reads on the replica again", || async {
        let n: i64 = replica
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND query LIKE 'SELECT%stock_balance%'",
                &[&rig.app],
            )
            .await
            .unwrap()
            .get(0);
        n > 0
    })
    .await;
    let back = started.elapsed();
    let up = rig.db.stats().replica.unwrap().up;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tally = load.take();
    let mut f = rig
        .figures("7a", "replica stopped 3 s under load, then started", &tally)
        .await;
    f.recovery = Some(back);
    f.note(format!("the watch saw it up then: {up}"));
    f.note(format!(
        "primary served {} reads",
        rig.db.stats().replica.unwrap().primary_reads - primary_reads
    ));
    f.publish();
    assert_phase(&f, &tally);

    // 7b: replay paused while writes go on.
    let paused_for = Duration::from_secs(3);
    replica
        .execute("SELECT pg_wal_replay_pause()", &[])
        .await
        .unwrap();
    tokio::time::sleep(paused_for).await;
    let lag = rig.db.stats().replica.unwrap().lag;
    replica
        .execute("SELECT pg_wal_replay_resume()", &[])
        .await
        .unwrap();
    let tally = load.take();
    let caught_up = until("the replica catches up", || async {
        rig.db.stats().replica.unwrap().lag == Duration::ZERO
    })
    .await;
    let mut f = rig
        .figures("7b", "replica replay paused 3 s under load", &tally)
        .await;
    f.recovery = Some(caught_up);
    f.note(format!("lag seen {} ms", lag.as_millis()));
    f.publish();
    assert_phase(&f, &tally);
    assert!(
        tally.plain_misses > 0,
        "the pause must show: plain reads miss rows while replay is paused"
    );

    // 7c: the replica promoted while the primary runs on. Writes started
    // from now on are phase 1.
    load.take();
    rig.pg_ctl_replica(&["promote"]);
    load.phase(1);
    let noticed = until("the watch notices the promotion", || async {
        !rig.db.stats().replica.unwrap().up
    })
    .await;
    let before = load.take();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = load.stop().await;
    let tally = Tally {
        writes: before.writes + after.writes,
        reads: before.reads + after.reads,
        errors: merged(&before.errors, &after.errors),
        stale_token_reads: before.stale_token_reads + after.stale_token_reads,
        plain_misses: before.plain_misses + after.plain_misses,
        acked: [before.acked, after.acked].concat(),
    };
    let mut f = rig
        .figures("7c", "replica promoted under load", &tally)
        .await;
    let later: Vec<_> = tally
        .acked
        .iter()
        .filter(|a| a.phase == 1)
        .map(|a| a.id)
        .collect();
    let on_promoted = rig.present(&replica, &later).await;
    f.recovery = Some(noticed);
    f.note(format!(
        "writes after promotion {}, on the promoted node {on_promoted}",
        later.len()
    ));
    f.note(format!(
        "plain misses before the promotion was noticed {}, after {}",
        before.plain_misses, after.plain_misses
    ));
    f.publish();
    assert_phase(&f, &tally);
    assert!(after.errors.is_empty(), "{:?}", after.errors);
    assert_eq!(on_promoted, 0, "a write reached the promoted node");
    assert!(!later.is_empty(), "writes went on after the promotion");
    assert_eq!(
        after.plain_misses, 0,
        "plain reads still go to the promoted node"
    );
    rig.db.close().await;
}
