//! Actors as the only callers: everything below is done by messages
//! (`DbMsg` to the supervisor, `TxMsg` to a transaction's actor) sent from
//! ractor actors or with `call!`; the `Db` handle only opens, sets up rows
//! and closes.

use std::time::Duration;

use pgactor::{
    Call, DbMsg, ErrorKind, ListRequest, Page, Query, ReadRequest, Record, TxMsg, TxOptions,
    WriteOp, WriteRequest,
};
use ractor::{call, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::support::blocking::{lock_stock_table, pause_replay, resume_replay};
use crate::support::db::{
    create_stock, fast_probe, open_primary, open_with_replica, registry, stock_model,
};
use crate::support::logs::capturing_logs;
use crate::support::topology::Topology;
use crate::support::wait::{eventually, read_when_replicated, ready, until};

fn read(id: uuid::Uuid) -> ReadRequest {
    ReadRequest {
        model: "StockBalance".into(),
        id: id.into(),
    }
}

fn write(op: WriteOp) -> WriteRequest {
    WriteRequest {
        model: "StockBalance".into(),
        op,
    }
}

fn list_all() -> ListRequest {
    ListRequest {
        model: "StockBalance".into(),
        query: Query::new(),
    }
}

/// An actor that takes one unit of a stock row, by messages only: a
/// transaction begun with `DbMsg::Begin`, the row locked with
/// `TxMsg::LockForUpdate`, decremented with `TxMsg::Write`, committed with
/// `TxMsg::Commit`. Answers whether it got a unit.
struct Reserver;

enum ReserverMsg {
    Reserve(uuid::Uuid, RpcReplyPort<bool>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for ReserverMsg {}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Reserver {
    type Msg = ReserverMsg;
    type State = ActorRef<DbMsg>;
    type Arguments = ActorRef<DbMsg>;

    async fn pre_start(
        &self,
        _: ActorRef<ReserverMsg>,
        db: ActorRef<DbMsg>,
    ) -> Result<ActorRef<DbMsg>, ActorProcessingErr> {
        Ok(db)
    }

    async fn handle(
        &self,
        _: ActorRef<ReserverMsg>,
        msg: ReserverMsg,
        db: &mut ActorRef<DbMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let ReserverMsg::Reserve(id, reply) = msg;
        let _ = reply.send(reserve(db, id).await?);
        Ok(())
    }
}

async fn reserve(db: &ActorRef<DbMsg>, id: uuid::Uuid) -> Result<bool, ActorProcessingErr> {
    // Kept until the commit: dropping the last `Tx` rolls back.
    let tx = call!(db, DbMsg::Begin, TxOptions::default(), Call::here())??;
    let actor = tx.actor();
    let row = call!(actor, TxMsg::LockForUpdate, read(id))??;
    let quantity: i64 = row.get("quantity")?;
    if quantity <= 0 {
        call!(actor, TxMsg::Rollback)??;
        return Ok(false);
    }
    let patch = Record::new().with("quantity", quantity - 1);
    call!(
        actor,
        TxMsg::Write,
        write(WriteOp::Update {
            id: id.into(),
            patch
        })
    )??;
    call!(actor, TxMsg::Commit)??;
    Ok(true)
}

#[tokio::test]
async fn fifty_actors_reserve_twenty_units_by_messages_and_none_is_sold_twice() {
    const ACTORS: usize = 50;
    const UNITS: i64 = 20;
    let (db, _) = open_primary("actor_reserve", [stock_model()]).await;
    let stock = db
        .create(
            "StockBalance",
            Record::new().with("sku", "R-1").with("quantity", UNITS),
        )
        .await
        .unwrap();
    let id: uuid::Uuid = stock.get("id").unwrap();
    let mut reservers = Vec::new();
    for _ in 0..ACTORS {
        let (actor, _) = Actor::spawn(None, Reserver, db.actor()).await.unwrap();
        reservers.push(actor);
    }

    let asks: Vec<_> = reservers
        .iter()
        .cloned()
        .map(|actor| tokio::spawn(async move { call!(actor, ReserverMsg::Reserve, id).unwrap() }))
        .collect();
    let mut reserved = 0;
    for ask in asks {
        reserved += usize::from(ask.await.unwrap());
    }

    assert_eq!(reserved, UNITS as usize, "one reservation per unit");
    let left = call!(db.actor(), DbMsg::Read, read(id), Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(
        left.get::<i64>("quantity").unwrap(),
        0,
        "no unit sold twice"
    );
    let stats = call!(db.actor(), DbMsg::Stats).unwrap();
    assert_eq!(stats.open_transactions, 0, "{stats:?}");
    for actor in reservers {
        actor.stop(None);
    }
    db.close().await;
}

#[tokio::test]
async fn a_token_from_a_message_write_makes_a_message_read_see_it_through_a_paused_replica() {
    let topo = Topology::up();
    let db = open_with_replica(topo.primary(), topo.replica(), fast_probe(), "actor_tokens").await;
    let first = create_stock(&db, "first").await;
    read_when_replicated(&db, "StockBalance", first).await;
    let replica = pause_replay(topo.replica()).await;

    let create = write(WriteOp::Create(Record::new().with("sku", "fresh")));
    let (row, token) = call!(db.actor(), DbMsg::WriteWithToken, create, Call::here())
        .unwrap()
        .unwrap();
    let id: uuid::Uuid = row.get("id").unwrap();
    // Without the token the read goes to the replica, which has not replayed the write.
    let stale = call!(db.actor(), DbMsg::Read, read(id), Call::here())
        .unwrap()
        .unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::NotFound);
    // With it, the read goes where the write is visible.
    let fresh = call!(db.actor(), DbMsg::Read, read(id), Call::here().after(token))
        .unwrap()
        .unwrap();
    assert_eq!(fresh, row);

    resume_replay(&replica).await;
    db.close().await;
}

#[tokio::test]
async fn a_messages_own_query_timeout_bounds_it_and_cancels_it_on_the_server() {
    let (db, schema) = open_primary("actor_timeout", [stock_model()]).await;
    let locker = lock_stock_table(&schema).await;

    let call = Call::here().query_timeout(Duration::from_millis(200));
    let err = call!(db.actor(), DbMsg::List, list_all(), call)
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // This call's own bound fired (not the session's query timeout, nor
    // the server's lock_timeout), and its statement was cancelled, not
    // left waiting for the lock.
    let said = err.to_string();
    assert!(
        said.contains("200ms query timeout") && said.contains("cancelled on the server"),
        "{said}"
    );
    until("the connection is back in the pool", || async {
        db.stats().read.in_use == 0
    })
    .await;

    drop(locker);
    let page = call!(db.actor(), DbMsg::List, list_all(), Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(page.total, Some(0));
    db.close().await;
}

/// An actor that holds a transaction it began by message and wrote in,
/// then fails in the way it is told.
struct Holder;

enum HolderMsg {
    /// Begin, create a row with this sku, keep the transaction open.
    Open(String, RpcReplyPort<()>),
    Panic,
}

#[cfg(feature = "cluster")]
impl ractor::Message for HolderMsg {}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Holder {
    type Msg = HolderMsg;
    type State = (ActorRef<DbMsg>, Option<pgactor::Tx>);
    type Arguments = ActorRef<DbMsg>;

    async fn pre_start(
        &self,
        _: ActorRef<HolderMsg>,
        db: ActorRef<DbMsg>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((db, None))
    }

    async fn handle(
        &self,
        _: ActorRef<HolderMsg>,
        msg: HolderMsg,
        (db, held): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            HolderMsg::Open(sku, reply) => {
                let tx = call!(db, DbMsg::Begin, TxOptions::default(), Call::here())??;
                let create = write(WriteOp::Create(Record::new().with("sku", sku)));
                call!(tx.actor(), TxMsg::Write, create)??;
                *held = Some(tx);
                let _ = reply.send(());
            }
            HolderMsg::Panic => panic!("the holder fails with its transaction open"),
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_actor_that_panics_or_is_killed_mid_transaction_leaves_nothing_committed_or_held() {
    let (db, _) = open_primary("actor_dies", [stock_model()]).await;
    for (end, sku) in [("panics", "after-panic"), ("killed", "after-kill")] {
        let (holder, handle) = Actor::spawn(None, Holder, db.actor()).await.unwrap();
        call!(holder, HolderMsg::Open, sku.to_string()).unwrap();
        assert_eq!(
            db.stats().open_transactions,
            1,
            "{end}: the transaction is open"
        );
        match end {
            "panics" => holder.send_message(HolderMsg::Panic).unwrap(),
            _ => holder.kill(),
        }
        handle.await.unwrap();
        eventually(&format!("{end}: the transaction ends"), || async {
            let stats = db.stats();
            ready(
                stats.open_transactions == 0 && stats.write.in_use == 0,
                stats,
            )
        })
        .await;
        let page = call!(db.actor(), DbMsg::List, list_all(), Call::here())
            .unwrap()
            .unwrap();
        assert_eq!(
            page.total,
            Some(0),
            "{end}: nothing of the transaction was committed"
        );
    }
    db.close().await;
}

/// An actor that asks for a page without waiting for it: the answer comes
/// back as a message of its own (`call_and_forward`), and meanwhile its
/// mailbox keeps flowing.
struct Watcher;

enum WatcherMsg {
    Fetch,
    Listed(pgactor::Result<Page>),
    Ping(RpcReplyPort<&'static str>),
    Got(RpcReplyPort<Option<u64>>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for WatcherMsg {}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Watcher {
    type Msg = WatcherMsg;
    type State = (ActorRef<DbMsg>, Option<u64>);
    type Arguments = ActorRef<DbMsg>;

    async fn pre_start(
        &self,
        _: ActorRef<WatcherMsg>,
        db: ActorRef<DbMsg>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((db, None))
    }

    async fn handle(
        &self,
        myself: ActorRef<WatcherMsg>,
        msg: WatcherMsg,
        (db, got): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WatcherMsg::Fetch => {
                db.call_and_forward(
                    |reply| DbMsg::List(list_all(), Call::here(), reply),
                    &myself,
                    WatcherMsg::Listed,
                    Some(Duration::from_secs(30)),
                )?;
            }
            WatcherMsg::Listed(page) => *got = page?.total,
            WatcherMsg::Ping(reply) => drop(reply.send("pong")),
            WatcherMsg::Got(reply) => drop(reply.send(*got)),
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_actor_gets_its_answer_as_a_message_while_its_mailbox_keeps_flowing() {
    let (db, schema) = open_primary("actor_forward", [stock_model()]).await;
    create_stock(&db, "one").await;
    let locker = lock_stock_table(&schema).await;
    let (watcher, _) = Actor::spawn(None, Watcher, db.actor()).await.unwrap();

    watcher.send_message(WatcherMsg::Fetch).unwrap();
    // The list waits for the lock; the watcher answers other messages meanwhile.
    for _ in 0..3 {
        assert_eq!(call!(watcher, WatcherMsg::Ping).unwrap(), "pong");
    }
    assert_eq!(call!(watcher, WatcherMsg::Got).unwrap(), None);

    drop(locker);
    until("the page arrives as the watcher's own message", || async {
        call!(watcher, WatcherMsg::Got).unwrap() == Some(1)
    })
    .await;
    watcher.stop(None);
    db.close().await;
}

#[tokio::test]
async fn a_ractor_callers_span_is_the_parent_of_its_operations_span() {
    let (db, _) = open_primary("actor_span", [stock_model()]).await;
    let ((), text) = capturing_logs(async {
        let sender = tracing::info_span!("sender");
        let call = {
            let _entered = sender.enter();
            Call::here()
        };
        // Only the message holds the sender's span from here on.
        drop(sender);
        call!(db.actor(), DbMsg::List, list_all(), call)
            .unwrap()
            .unwrap();
    })
    .await;
    let nested = text.lines().any(|l| {
        l.contains("close") && l.contains("sender:db{") && l.contains("db.operation.name=\"list\"")
    });
    assert!(nested, "no list span inside the sender's in\n{text}");
    db.close().await;
}

#[tokio::test]
async fn a_transaction_begun_by_message_nests_under_the_senders_span() {
    let (db, _) = open_primary("actor_tx_span", [stock_model()]).await;
    let ((), text) = capturing_logs(async {
        let sender = tracing::info_span!("sender");
        let call = {
            let _entered = sender.enter();
            Call::here()
        };
        drop(sender);
        let tx = call!(db.actor(), DbMsg::Begin, TxOptions::default(), call)
            .unwrap()
            .unwrap();
        call!(tx.actor(), TxMsg::List, list_all()).unwrap().unwrap();
        call!(tx.actor(), TxMsg::Commit).unwrap().unwrap();
    })
    .await;
    let closes: Vec<&str> = text.lines().filter(|l| l.contains("close")).collect();
    assert!(
        closes.iter().any(|l| l.contains("sender:tx{")),
        "no tx span inside the sender's in\n{text}"
    );
    assert!(
        closes.iter().any(|l| l.contains("sender:tx{")
            && l.contains(":db{")
            && l.contains("db.operation.name=\"list\"")),
        "no list span inside the tx span in\n{text}"
    );
    db.close().await;
}

/// An application's supervisor: keeps the supervision events of its
/// children.
struct AppSupervisor;

enum AppMsg {
    Events(RpcReplyPort<Vec<String>>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for AppMsg {}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for AppSupervisor {
    type Msg = AppMsg;
    type State = Vec<String>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<AppMsg>,
        (): (),
    ) -> Result<Vec<String>, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(
        &self,
        _: ActorRef<AppMsg>,
        msg: AppMsg,
        events: &mut Vec<String>,
    ) -> Result<(), ActorProcessingErr> {
        let AppMsg::Events(reply) = msg;
        let _ = reply.send(events.clone());
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<AppMsg>,
        event: ractor::SupervisionEvent,
        events: &mut Vec<String>,
    ) -> Result<(), ActorProcessingErr> {
        let seen = match event {
            ractor::SupervisionEvent::ActorStarted(cell) => format!("started {}", cell.get_id()),
            ractor::SupervisionEvent::ActorTerminated(cell, ..) => {
                format!("terminated {}", cell.get_id())
            }
            ractor::SupervisionEvent::ActorFailed(cell, _) => format!("failed {}", cell.get_id()),
            _ => return Ok(()),
        };
        events.push(seen);
        Ok(())
    }
}

#[tokio::test]
async fn the_adapters_supervisor_can_live_under_the_applications_supervisor() {
    let (app, _) = Actor::spawn(None, AppSupervisor, ()).await.unwrap();
    let schema = crate::support::db::unique_schema("actor_linked");
    let db = pgactor::OpenOptions::new(crate::support::topology::primary_url())
        .registry(registry([stock_model()]))
        .session(crate::support::db::in_schema(&schema))
        .linked_to(app.get_cell())
        .open()
        .await
        .unwrap();
    let supervisor = db.actor().get_id();
    assert!(
        app.get_children().iter().any(|c| c.get_id() == supervisor),
        "the adapter's supervisor is a child of the application's"
    );
    create_stock(&db, "linked").await;

    db.close().await;
    until(
        "the application sees the adapter's supervisor stop",
        || async {
            call!(app, AppMsg::Events)
                .unwrap()
                .contains(&format!("terminated {supervisor}"))
        },
    )
    .await;
    app.stop(None);
}
