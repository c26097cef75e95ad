//! Shoppers reserving one stock concurrently, through transactions.
//!
//! Eight `Shopper` actors (ractor) are each told to reserve 5 units of a
//! stock of 25. Every unit is one transaction: `lock_for_update` the stock
//! row (`SELECT … FOR UPDATE`), refuse when it is empty, else take a unit and
//! record a reservation, then commit. The row lock makes the shoppers take
//! turns, so the stock never goes negative and no unit is lost: reserved +
//! remaining == initial.
//!
//! It connects like the quickstart: `DATABASE_URL` (in a fresh schema,
//! dropped at the end) or a throwaway cluster (`examples/support/cluster.rs`).

#[path = "support/cluster.rs"]
mod cluster;

use std::process::ExitCode;

use cluster::{BoxError, Target};
use pgactor::{Db, Field, FieldType, Model, Query, Record, Registry, TxOptions};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use uuid::Uuid;

const SHOPPERS: u32 = 8;
/// Units each shopper is told to reserve.
const WANTED: u32 = 5;
/// Less than the demand, `SHOPPERS * WANTED`.
const INITIAL: i64 = 25;

fn registry() -> pgactor::Result<Registry> {
    let mut registry = Registry::new();
    registry.register(
        Model::new("StockBalance")
            .field(Field::new("sku", FieldType::Text).unique())
            .field(Field::new("quantity", FieldType::I64)),
    )?;
    registry.register(
        Model::new("Reservation")
            .field(Field::new("stock_id", FieldType::Uuid))
            .field(Field::new("shopper", FieldType::Text)),
    )?;
    Ok(registry)
}

/// One unit, in one transaction: lock the stock row, take a unit if one is
/// left. `Ok(false)`: out of stock.
async fn reserve_one(db: &Db, stock: Uuid, shopper: &str) -> pgactor::Result<bool> {
    // Commits when the body returns Ok, rolls back on Err or panic.
    db.with_transaction(TxOptions::default(), |tx| async move {
        // Other shoppers' lock_for_update waits here until we commit.
        let row = tx.lock_for_update("StockBalance", stock).await?;
        let quantity: i64 = row.get("quantity")?;
        if quantity < 1 {
            return Ok(false);
        }
        let left = Record::new().with("quantity", quantity - 1);
        tx.update("StockBalance", stock, left).await?;
        let reservation = Record::new()
            .with("stock_id", stock)
            .with("shopper", shopper);
        tx.create("Reservation", reservation).await?;
        Ok(true)
    })
    .await
}

/// What a shopper got: units reserved, and units refused as out of stock.
#[derive(Debug, Default)]
struct Tally {
    reserved: u32,
    refused: u32,
}

#[derive(Debug)]
enum ShopperMsg {
    /// Reserve this many units of the stock, one at a time.
    Reserve(u32, RpcReplyPort<pgactor::Result<Tally>>),
}

// An application built with ractor's `cluster` feature (and pgactor's, see
// README.md "Feature flags") implements `ractor::Message` for its own
// message types: ractor has no blanket impl then.
#[cfg(feature = "cluster")]
impl ractor::Message for ShopperMsg {}

struct Shopper;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Shopper {
    type Msg = ShopperMsg;
    /// The adapter, and the stock row to reserve from.
    type State = (Db, Uuid);
    type Arguments = (Db, Uuid);

    async fn pre_start(
        &self,
        _: ActorRef<ShopperMsg>,
        args: (Db, Uuid),
    ) -> Result<(Db, Uuid), ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<ShopperMsg>,
        ShopperMsg::Reserve(units, reply): ShopperMsg,
        (db, stock): &mut (Db, Uuid),
    ) -> Result<(), ActorProcessingErr> {
        let name = myself.get_name().unwrap_or_default();
        let mut tally = Tally::default();
        let mut outcome = Ok(());
        for _ in 0..units {
            match reserve_one(db, *stock, &name).await {
                Ok(true) => tally.reserved += 1,
                Ok(false) => tally.refused += 1,
                Err(err) => {
                    outcome = Err(err);
                    break;
                }
            }
        }
        let _ = reply.send(outcome.map(|()| tally));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    cluster::main("inventory", registry, shop).await
}

async fn shop(db: Db, _: Target) -> Result<(), BoxError> {
    let stock = Record::new()
        .with("sku", "WIDGET-1")
        .with("quantity", INITIAL);
    let stock: Uuid = db.create("StockBalance", stock).await?.get("id")?;
    let demand = SHOPPERS * WANTED;
    println!(
        "stock WIDGET-1: {INITIAL} units; {SHOPPERS} shoppers want {WANTED} each ({demand} in all)"
    );

    let mut shoppers = Vec::new();
    for i in 1..=SHOPPERS {
        let name = format!("shopper-{i}");
        let (actor, _) = Actor::spawn(Some(name), Shopper, (db.clone(), stock)).await?;
        shoppers.push(actor);
    }
    // Tell every shopper at once, then collect the answers in order.
    let calls: Vec<_> = shoppers
        .iter()
        .map(|shopper| {
            let shopper = shopper.clone();
            tokio::spawn(async move { ractor::call!(shopper, ShopperMsg::Reserve, WANTED) })
        })
        .collect();
    let (mut reserved, mut refused) = (0, 0);
    for (shopper, call) in shoppers.iter().zip(calls) {
        // The task, the actor call, the reservations.
        let tally = call.await???;
        let name = shopper.get_name().unwrap_or_default();
        println!(
            "  {name}: reserved {} of {WANTED}, refused {} as out of stock",
            tally.reserved, tally.refused
        );
        reserved += tally.reserved;
        refused += tally.refused;
        shopper.stop(None);
    }

    // Read back inside a transaction: on the primary, even with a replica.
    let tx = db
        .begin(TxOptions {
            read_only: true,
            ..TxOptions::default()
        })
        .await?;
    let remaining: i64 = tx.read("StockBalance", stock).await?.get("quantity")?;
    let recorded = tx.list("Reservation", Query::new().limit(1)).await?.total;
    let recorded = recorded.ok_or("the list was counted")?;
    tx.commit().await?;
    println!("reserved {reserved}, refused {refused}, remaining {remaining}, reservation rows {recorded}");

    if i64::from(reserved) + remaining != INITIAL || recorded != u64::from(reserved) {
        return Err("the books do not balance".into());
    }
    println!("reserved {reserved} + remaining {remaining} == initial {INITIAL}");
    Ok(())
}
