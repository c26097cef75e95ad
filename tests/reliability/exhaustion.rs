//! Fault 6, pool exhaustion (catalogue H1, H2, E5): more callers than
//! connections. Waiters are served in arrival order while the wait timeout
//! lasts and answered `UNAVAILABLE` past it, never left waiting; and
//! 100,000 operations piled on a saturated pool stay within `max_queued`:
//! the rest are refused at once, counted, and memory stays bounded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgactor::{Db, PoolConfig, Record, TxOptions};

use crate::figures::{serial, Figures};
use crate::support::db::open_tagged;
use crate::support::wait::{eventually, ready};

/// Connections in the pool of the fairness scenarios.
const POOL: usize = 2;

/// Open with a write pool of `max_open` connections.
async fn open(prefix: &str, max_open: usize, wait: Duration, max_queued: usize) -> Db {
    let pool = PoolConfig {
        max_open: Some(max_open),
        wait_timeout: Some(wait),
        max_queued: Some(max_queued),
        ..PoolConfig::default()
    };
    open_tagged(prefix, pool).await.0
}

/// Take every connection of the write pool, each held by an open transaction.
async fn hold_all(db: &Db, n: usize) -> Vec<pgactor::Tx> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(
            db.begin(TxOptions::default())
                .await
                .expect("hold a connection"),
        );
    }
    held
}

/// 16 callers arrive 20 ms apart at a pool whose connections are all held;
/// once they are released, each caller takes a connection for 30 ms. The
/// order of service is the order of arrival, give or take the callers that
/// the pool's connections serve at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_arrival_order_and_refused_past_the_wait_timeout() {
    let _serial = serial().await;
    let mut figures = Figures::new(
        "6a",
        "16 callers on a held pool of 2, then 8 past a 1 s wait",
    );
    let db = open("exhaust_fifo", POOL, Duration::from_secs(10), 100).await;

    let held = hold_all(&db, POOL).await;
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut callers = Vec::new();
    for arrival in 0..16_usize {
        let (db, served) = (db.clone(), served.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
        callers.push(tokio::spawn(async move {
            let tx = db.begin(TxOptions::default()).await;
            if tx.is_ok() {
                served.lock().unwrap().push(arrival);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            let outcome = match tx {
                Ok(tx) => tx.commit().await,
                Err(e) => Err(e),
            };
            outcome
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for tx in held {
        tx.commit().await.expect("release");
    }
    for caller in callers {
        figures.outcome(&caller.await.expect("caller task"));
    }
    let order = served.lock().unwrap().clone();
    // Served at the same moment by different connections, two callers may
    // record themselves in either order: at most POOL - 1 places apart.
    let out_of_order = order
        .iter()
        .enumerate()
        .filter(|(place, arrival)| place.abs_diff(**arrival) >= POOL)
        .count();
    assert_eq!(
        figures.acknowledged, 16,
        "every waiter is served: {figures:?}"
    );
    assert_eq!(out_of_order, 0, "served out of arrival order: {order:?}");
    figures.note(format!("served out of order: {out_of_order}"));

    // Past the wait timeout: Unavailable, not a wait without end.
    let db = open("exhaust_wait", POOL, Duration::from_secs(1), 100).await;
    let held = hold_all(&db, POOL).await;
    let mut waiters = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        waiters.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer =
                tokio::time::timeout(Duration::from_secs(30), db.begin(TxOptions::default()))
                    .await
                    .expect("a waiter is answered, never left waiting");
            (answer.map(drop), started.elapsed())
        }));
    }
    let mut longest = Duration::ZERO;
    for waiter in waiters {
        let (answer, waited) = waiter.await.expect("waiter task");
        longest = longest.max(waited);
        let err = answer.as_ref().expect_err("no connection was free");
        assert_eq!(err.code(), "UNAVAILABLE", "{err}");
        figures.outcome(&answer);
    }
    figures.note(format!(
        "longest wait past a 1 s wait_timeout: {} ms",
        longest.as_millis()
    ));
    drop(held);
    let stats = db.stats();
    assert_eq!(stats.write.waiting, 0, "{stats:?}");
    figures.publish();
}

/// The process's resident memory now, in KiB (Linux).
pub(crate) fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// What piling `OPS` creates on a pool of one held connection did.
struct Pile {
    refused: u64,
    acknowledged: u64,
    other_errors: u64,
    rss_growth_kib: u64,
}

const OPS: usize = 100_000;

/// Submit `OPS` creates while the only connection is held, note the memory
/// once every one is answered or waiting, then release it and collect.
async fn pile_up(prefix: &str, max_queued: usize, baseline_kib: u64) -> Pile {
    let db = open(prefix, 1, Duration::from_secs(120), max_queued).await;
    let held = hold_all(&db, 1).await;
    let mut ops = Vec::with_capacity(OPS);
    for i in 0..OPS {
        let db = db.clone();
        let row = Record::new().with("sku", format!("pile-{i}"));
        ops.push(tokio::spawn(
            async move { db.create("StockBalance", row).await },
        ));
    }
    let waiting = OPS.min(max_queued) as u64;
    let refused = (OPS as u64).saturating_sub(waiting);
    eventually("every operation is refused or waiting", || {
        let db = db.clone();
        async move {
            let s = db.stats().write;
            ready(
                s.refused_total == refused && s.waiting as u64 == waiting,
                (),
            )
            .map_err(|_| format!("{s:?}"))
        }
    })
    .await;
    let rss_growth_kib = rss_kib().saturating_sub(baseline_kib);
    for tx in held {
        tx.commit().await.expect("release");
    }
    let mut pile = Pile {
        refused: 0,
        acknowledged: 0,
        other_errors: 0,
        rss_growth_kib,
    };
    for op in ops {
        match op.await.expect("operation task") {
            Ok(_) => pile.acknowledged += 1,
            Err(e) if e.code() == "UNAVAILABLE" => pile.refused += 1,
            Err(_) => pile.other_errors += 1,
        }
    }
    assert_eq!(db.stats().write.refused_total, refused);
    db.close_within(Duration::from_secs(5)).await;
    pile
}

/// 100,000 operations on a saturated pool: with `max_queued` 1,000 the
/// surplus is refused at once; without a cap (one above 100,000) every one
/// waits. The memory difference between the two is what a queued
/// operation costs, which documents `max_queued`'s bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_refuses_past_max_queued_and_memory_stays_bounded() {
    let _serial = serial().await;
    let mut figures = Figures::new(
        "6b",
        "100,000 creates on a held pool of 1, max_queued 1,000",
    );
    let baseline = rss_kib();

    let capped = pile_up("exhaust_capped", 1_000, baseline).await;
    assert_eq!(capped.refused, (OPS - 1_000) as u64);
    assert_eq!(capped.acknowledged, 1_000);
    assert_eq!(capped.other_errors, 0);
    figures.operations = OPS as u64;
    figures.acknowledged = capped.acknowledged;
    figures.errors.insert("UNAVAILABLE".into(), capped.refused);

    let uncapped = pile_up("exhaust_uncapped", OPS + 1, baseline).await;
    assert_eq!(
        (
            uncapped.refused,
            uncapped.acknowledged,
            uncapped.other_errors
        ),
        (0, OPS as u64, 0)
    );
    let per_op = uncapped
        .rss_growth_kib
        .saturating_sub(capped.rss_growth_kib)
        .saturating_mul(1024)
        / (OPS - 1_000) as u64;
    figures.note(format!(
        "RSS growth {} MiB capped vs {} MiB with all 100,000 queued (≈{per_op} B per queued operation)",
        capped.rss_growth_kib / 1024,
        uncapped.rss_growth_kib / 1024
    ));
    figures.publish();
}
