//! The `remote` feature: two `ractor_cluster` nodes on loopback in one
//! process, node `b` reaching the gateway on node `a` by message (every
//! request and answer crossing as bytes), against the real primary.
//! Run with `cargo test --features remote --test remote`.
//!
//! One test: process groups are global to a process, so two pairs of
//! nodes running at once would each see the other's leases.

#[path = "support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Instant;

use pgactor::remote::{Gateway, RemoteDb};
use pgactor::{ConstraintKind, Db, ErrorKind, Filter, PoolConfig, Query, Record, TxOptions};
use ractor::{Actor, ActorRef};
use ractor_cluster::{NodeServer, NodeServerMessage};

use support::db::open_tagged;
use support::observer::observer;
use support::topology::primary_url;
use support::wait::{eventually, ready, until};

const MODEL: &str = "StockBalance";
const GROUP: &str = "pgactor-remote-test";

/// A port free on loopback now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// A node listening on `port`.
async fn node(name: &str, port: u16) -> ActorRef<NodeServerMessage> {
    let server = NodeServer::new(
        port,
        "cookie".into(),
        name.into(),
        "127.0.0.1".into(),
        None,
        None,
    );
    let (node, _) = Actor::spawn(None, server, ()).await.expect("start a node");
    node
}

/// The gateway as the other node shows it: a member of the group that is
/// not an actor of this process's own node.
async fn remote_gateway() -> RemoteDb {
    let gateway = eventually("the gateway shows on the other node", || async {
        let members = ractor::pg::get_members(&GROUP.to_owned());
        let remote = members.into_iter().find(|m| !m.get_id().is_local());
        ready(remote.is_some(), remote)
    })
    .await
    .expect("a remote member");
    RemoteDb::new(gateway.into())
}

/// Sessions named `app` idle inside a transaction.
async fn idle_in_transaction(obs: &tokio_postgres::Client, app: &str) -> i64 {
    obs.query_one(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
        &[&app],
    )
    .await
    .expect("pg_stat_activity")
    .get(0)
}

async fn quantity(db: &Db, id: uuid::Uuid) -> i64 {
    let row = db.read(MODEL, id).await.expect("read on a");
    row.get("quantity").expect("quantity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_reads_lists_writes_and_runs_transactions_by_message() {
    let pool = PoolConfig {
        max_open: Some(4),
        ..PoolConfig::default()
    };
    let (db, app) = open_tagged("remote", pool).await;
    Gateway::new(GROUP)
        .max_transactions(2)
        .spawn(&db)
        .await
        .expect("start the gateway");
    let (port_a, port_b) = (free_port(), free_port());
    let a = node("a", port_a).await;
    let b = node("b", port_b).await;
    ractor_cluster::client_connect(&b, ("127.0.0.1", port_a))
        .await
        .expect("b connects to a");
    let remote = remote_gateway().await;

    // Writes, reads and lists by message, every value keeping its type.
    let created = remote
        .create(
            MODEL,
            Record::new().with("sku", "R-1").with("quantity", 5_i64),
        )
        .await
        .expect("create from b");
    let id: uuid::Uuid = created.get("id").expect("a uuid id, still a uuid");
    assert_eq!(db.read(MODEL, id).await.expect("on a"), created);
    assert_eq!(remote.read(MODEL, id).await.expect("read from b"), created);
    let updated = remote
        .update(MODEL, id, Record::new().with("note", "from b"))
        .await
        .expect("update from b");
    assert_eq!(updated.get::<String>("note").unwrap(), "from b");
    let page = remote
        .list(
            MODEL,
            Query::new()
                .filter(Filter::is_in("sku", ["R-1", "R-2"]))
                .sort_asc("sku")
                .limit(1),
        )
        .await
        .expect("list from b");
    assert_eq!(page.rows, vec![updated.clone()]);
    assert_eq!(page.total, Some(1));
    let next = page.next.expect("a full page answers a cursor");
    let after = remote
        .list(MODEL, Query::new().sort_asc("sku").limit(1).after(next))
        .await
        .expect("the next page from b, by the cursor");
    assert!(after.rows.is_empty());

    // Errors keep their kind and constraint across the wire.
    let local = db
        .create(MODEL, Record::new().with("sku", "R-1"))
        .await
        .unwrap_err();
    let dup = remote
        .create(MODEL, Record::new().with("sku", "R-1"))
        .await
        .unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::Constraint(ConstraintKind::Unique));
    assert_eq!(dup.constraint(), local.constraint());
    assert!(dup.constraint().unwrap().constraint.is_some());
    assert_eq!(dup.to_string(), local.to_string());
    let missing = remote.read(MODEL, uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let unknown = remote.read("Nope", id).await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::InvalidInput);

    // A transaction driven from b: lock, write, commit; seen on a.
    let tx = remote
        .begin(TxOptions::default())
        .await
        .expect("begin from b");
    let locked = tx.lock_for_update(MODEL, id).await.expect("lock from b");
    let left: i64 = locked.get("quantity").unwrap();
    tx.update(MODEL, id, Record::new().with("quantity", left - 1))
        .await
        .expect("write in the transaction");
    assert_eq!(quantity(&db, id).await, 5, "uncommitted: a does not see it");
    assert_eq!(
        tx.read(MODEL, id)
            .await
            .unwrap()
            .get::<i64>("quantity")
            .unwrap(),
        4
    );
    tx.commit().await.expect("commit from b");
    assert_eq!(quantity(&db, id).await, 4);

    // A write in a transaction that breaks a constraint: the kind crosses,
    // the transaction is aborted, a rollback ends it.
    let tx = remote.begin(TxOptions::default()).await.unwrap();
    let err = tx
        .create(MODEL, Record::new().with("sku", "R-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Constraint(ConstraintKind::Unique));
    tx.rollback().await.expect("rollback from b");

    // The gateway holds at most two open transactions.
    let first = remote.begin(TxOptions::default()).await.unwrap();
    let second = remote.begin(TxOptions::default()).await.unwrap();
    let third = remote.begin(TxOptions::default()).await.unwrap_err();
    assert_eq!(third.kind(), ErrorKind::Unavailable);
    first.rollback().await.unwrap();
    // Dropped without an end: its lease stops, the gateway rolls it back.
    drop(second);
    let again = eventually("a slot frees when a lease ends", || async {
        remote.begin(TxOptions::default()).await
    })
    .await;
    again.rollback().await.unwrap();
    let ended = tx_after_end(&remote).await;
    assert_eq!(ended, ErrorKind::TxClosed);

    // What a message costs: remote reads against local ones (printed, not
    // asserted; docs/actors.md quotes a run).
    const READS: u32 = 200;
    let started = Instant::now();
    for _ in 0..READS {
        db.read(MODEL, id).await.unwrap();
    }
    let local_each = started.elapsed() / READS;
    let started = Instant::now();
    for _ in 0..READS {
        remote.read(MODEL, id).await.unwrap();
    }
    let remote_each = started.elapsed() / READS;
    eprintln!("one read: local {local_each:?}, from the other node {remote_each:?}");

    // Node b disconnects mid-transaction: rolled back, nothing held.
    let obs = observer(&primary_url()).await;
    let in_use_before = db.stats().write.in_use;
    let tx = remote.begin(TxOptions::default()).await.unwrap();
    tx.lock_for_update(MODEL, id).await.unwrap();
    tx.update(MODEL, id, Record::new().with("quantity", 0_i64))
        .await
        .unwrap();
    assert_eq!(idle_in_transaction(&obs, &app).await, 1);
    b.stop_and_wait(Some("disconnect".into()), None)
        .await
        .expect("stop node b");
    until(
        "the transaction of the gone node is rolled back",
        || async {
            idle_in_transaction(&obs, &app).await == 0
                && db.stats().write.in_use == in_use_before
                && db.stats().open_transactions == 0
        },
    )
    .await;
    assert_eq!(quantity(&db, id).await, 4, "the row is unchanged");
    // The handle on b answers that its gateway is gone.
    let gone = tx.read(MODEL, id).await.unwrap_err();
    assert!(
        matches!(gone.kind(), ErrorKind::Unavailable | ErrorKind::TxClosed),
        "{gone:?}"
    );
    drop(tx);
    a.stop_and_wait(None, None).await.expect("stop node a");
    db.close().await;
}

/// The kind a message for an ended transaction answers.
async fn tx_after_end(remote: &RemoteDb) -> ErrorKind {
    let tx = remote.begin(TxOptions::default()).await.unwrap();
    let id = tx.id();
    tx.commit().await.unwrap();
    let answer: pgactor::Result<()> =
        ractor::call!(remote.gateway(), pgactor::remote::RemoteMsg::Commit, id)
            .expect("the gateway answers");
    answer.unwrap_err().kind()
}
