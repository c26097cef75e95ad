//! The actor face: `DbMsg`s sent with `call!` from ractor actors, routed by
//! the supervisor, and pool actors that never serialise their callers.

use pgactor::{
    Call, DbMsg, ErrorKind, ListRequest, Query, ReadRequest, Record, WriteOp, WriteRequest,
};
use ractor::{call, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::support::db::{open_primary, open_split, stock_model};
use crate::support::observer::observer;
use crate::support::topology::primary_url;
use crate::support::wait::until;

/// A caller that is itself an actor: it creates a stock row through the
/// adapter's supervisor and answers the created row's sku.
struct Shopkeeper;

enum ShopMsg {
    Stock(String, RpcReplyPort<Result<String, String>>),
}

// Built with the `cluster` feature, ractor has no blanket `Message` impl:
// the suite's own message types implement it.
#[cfg(feature = "cluster")]
impl ractor::Message for ShopMsg {}

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Shopkeeper {
    type Msg = ShopMsg;
    type State = ActorRef<DbMsg>;
    type Arguments = ActorRef<DbMsg>;

    async fn pre_start(
        &self,
        _: ActorRef<ShopMsg>,
        db: ActorRef<DbMsg>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(db)
    }

    async fn handle(
        &self,
        _: ActorRef<ShopMsg>,
        msg: ShopMsg,
        db: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ShopMsg::Stock(sku, reply) = msg;
        let req = WriteRequest {
            model: "StockBalance".into(),
            op: WriteOp::Create(Record::new().with("sku", sku)),
        };
        let answer = match call!(db, DbMsg::Write, req, Call::here()) {
            Ok(Ok(row)) => row.get::<String>("sku").map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let _ = reply.send(answer);
        Ok(())
    }
}

#[tokio::test]
async fn a_ractor_actor_writes_with_call() {
    let (db, _) = open_primary("actor_call", [stock_model()]).await;
    let (shop, _) = Actor::spawn(None, Shopkeeper, db.actor()).await.unwrap();
    let sku = call!(shop, ShopMsg::Stock, "A-7".to_string()).unwrap();
    assert_eq!(sku.as_deref(), Ok("A-7"));
    let page = db.list("StockBalance", Query::new()).await.unwrap();
    assert_eq!(page.total, Some(1));
    shop.stop(None);
    db.close().await;
}

#[tokio::test]
async fn the_supervisor_routes_reads_to_the_read_pool_and_writes_to_the_write_pool() {
    let (db, w, r) = open_split("actors").await;
    let sup = db.actor();

    let write = WriteRequest {
        model: "StockBalance".into(),
        op: WriteOp::Create(Record::new().with("sku", "written")),
    };
    let written = call!(sup, DbMsg::Write, write, Call::here())
        .unwrap()
        .unwrap();
    let id: uuid::Uuid = written.get("id").unwrap();

    // The row is in the write database only, so a read through the supervisor misses it.
    let read = ReadRequest {
        model: "StockBalance".into(),
        id: id.into(),
    };
    let missed = call!(sup, DbMsg::Read, read, Call::here())
        .unwrap()
        .unwrap_err();
    assert_eq!(missed.kind(), ErrorKind::NotFound);
    let list = ListRequest {
        model: "StockBalance".into(),
        query: Query::new(),
    };
    assert_eq!(
        call!(sup, DbMsg::List, list, Call::here())
            .unwrap()
            .unwrap()
            .total,
        Some(0)
    );

    db.close().await;
    w.remove().await;
    r.remove().await;
}

#[tokio::test]
async fn a_blocked_write_does_not_hold_up_other_callers() {
    let (db, schema) = open_primary("no_serialise", [stock_model()]).await;
    let a = db
        .create("StockBalance", Record::new().with("sku", "a"))
        .await
        .unwrap();
    let b = db
        .create("StockBalance", Record::new().with("sku", "b"))
        .await
        .unwrap();
    let a_id: uuid::Uuid = a.get("id").unwrap();

    // An outside session locks row a until we let go.
    let mut outside = observer(&primary_url()).await;
    let tx = outside.transaction().await.unwrap();
    tx.execute(
        &format!("SELECT 1 FROM \"{schema}\".stock_balance WHERE id = $1 FOR UPDATE"),
        &[&a_id],
    )
    .await
    .unwrap();

    let blocked = {
        let db = db.clone();
        tokio::spawn(async move {
            db.update("StockBalance", a_id, Record::new().with("quantity", 9_i64))
                .await
        })
    };
    // Wait until the update is really waiting on the lock, seen from the server.
    let admin = observer(&primary_url()).await;
    until("the update waits on the lock", || async {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                &[&format!("UPDATE \"{schema}\"%")],
            )
            .await
            .unwrap()
            .get(0);
        waiting > 0
    })
    .await;

    // Other writes and reads on the same pool actors are served meanwhile.
    let b_id: uuid::Uuid = b.get("id").unwrap();
    db.update("StockBalance", b_id, Record::new().with("quantity", 1_i64))
        .await
        .unwrap();
    assert_eq!(
        db.read("StockBalance", b_id)
            .await
            .unwrap()
            .get::<i64>("quantity")
            .unwrap(),
        1
    );
    assert!(
        !blocked.is_finished(),
        "the blocked update is still waiting on the lock"
    );

    tx.rollback().await.unwrap();
    let updated = blocked.await.unwrap().unwrap();
    assert_eq!(updated.get::<i64>("quantity").unwrap(), 9);
    db.close().await;
}

#[tokio::test]
async fn calls_after_close_fail_as_closed() {
    let (db, _) = open_primary("closed", [stock_model()]).await;
    let clone = db.clone();
    db.close().await;
    let err = clone.list("StockBalance", Query::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(err.http_status(), 503);
}
