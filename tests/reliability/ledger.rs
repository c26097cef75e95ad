//! The ledger, journal and checker of catalogue §2.7: what "nothing lost"
//! means, concretely, for any scenario that writes through a fault.
//!
//! Every write a scenario makes is a row of [`MODEL`] carrying a fresh
//! `op_id`. Before the write is sent the [`Ledger`] journals the op as
//! [`Outcome::Unknown`]; once the adapter answers, the answer's error class
//! settles it ([`outcome_of`]). After the fault, [`Ledger::check`] reads
//! the table from an observer connection and tells apart:
//!
//! - **lost**: acknowledged, yet missing (must be 0);
//! - **phantom**: the adapter said "not applied", yet present (must be 0);
//! - **dup**: an op applied more than once (must be 0). `op_id` carries a
//!   plain index, *not* a unique one: a unique constraint would turn a
//!   double apply into an error and hide it; the checker counts it instead;
//! - **stray**: a row whose op the journal never saw (must be 0);
//! - **unknown present / absent**: how the ambiguous answers resolved
//!   (reported, not judged).
//!
//! [`leaks`] adds the catalogue's `leaked_conns` and `idle_in_tx_after`:
//! once quiesced, no adapter session may be busy or inside a transaction,
//! and the pools may lend no connection.
//!
//! # Which answers promise "not applied"
//!
//! Read from src/error.rs, src/exec.rs, src/deadline.rs, src/pool_actor.rs,
//! src/handle.rs and src/tx_actor.rs:
//!
//! | answer | journal | why |
//! |---|---|---|
//! | `Ok` | Acked | |
//! | `OUTCOME_UNKNOWN` | Unknown | sent, answer lost (or a session-ending SQLSTATE while it ran) |
//! | `DECODE` | Unknown | the row came back, so a write *was* applied |
//! | `TX_CLOSED` | Unknown | the transaction had already ended: whatever ended it decided |
//! | `UNAVAILABLE` | NotApplied | checkout/connect failed before sending; for a write, a lost connection is `OUTCOME_UNKNOWN` instead; inside a transaction a lost connection means nothing was committed (tx_actor `settle`); 25006 is a refusal |
//! | `CLOSED` | NotApplied | the message was never delivered, or the caller stopped waiting before the statement started (a lost *answer* to a write is `OUTCOME_UNKNOWN`) |
//! | `TX_ABORTED` | NotApplied | the transaction failed before COMMIT; its connection is discarded, the server rolls back |
//! | `TIMEOUT` | NotApplied | the server refused the statement (57014, 55P03), or our cancel was confirmed; an unconfirmed cancel of a write is `OUTCOME_UNKNOWN` (deadline.rs) |
//! | constraint, `CONFLICT`, `DATABASE`, `INVALID_INPUT`, `NOT_FOUND`, `CONFIG` | NotApplied | refused before sending, or a server error that rolled the statement (or transaction) back |
//!
//! Anything else (a kind added later) is Unknown: only a documented
//! promise makes an error NotApplied. A phantom is therefore the adapter
//! breaking one of these promises.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgactor::{Db, ErrorKind, Field, FieldType, Index, Model, Record, Result};
use uuid::Uuid;

use crate::figures::Figures;
use crate::support::db::{tagged_options, unique_schema};

/// The ledger's model name.
pub const MODEL: &str = "LedgerEntry";

/// The ledger's model: one row per write, `op_id` (indexed, not unique),
/// the writing `worker` and its `seq`.
pub fn model() -> Model {
    Model::new(MODEL)
        .field(Field::new("op_id", FieldType::Uuid))
        .field(Field::new("worker", FieldType::I32))
        .field(Field::new("seq", FieldType::I64))
        .index(Index::on(["op_id"]))
}

/// Open the adapter at `url` with the ledger's model (and `extra` models)
/// in a fresh schema (`t_<prefix>_…`) whose name is also the sessions'
/// application_name, so pg_stat_activity can tell them apart. Both pools
/// use `pool`. Answers the handle and the schema (= application_name).
pub async fn open(
    url: &str,
    prefix: &str,
    pool: pgactor::PoolConfig,
    extra: impl IntoIterator<Item = Model>,
) -> (Db, String) {
    let schema = unique_schema(prefix);
    let models = std::iter::once(model()).chain(extra);
    let db = tagged_options(url, models, pool, &schema, &schema)
        .open()
        .await
        .expect("open the ledger's adapter");
    (db, schema)
}

/// What the journal knows about one op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The adapter answered success.
    Acked,
    /// The adapter's answer promises the write was not applied.
    NotApplied,
    /// Sent (or about to be) and the answer does not say: in flight, lost,
    /// or an error that may follow an applied write.
    Unknown,
}

/// How an answer settles the ops it covers (see the module's table).
pub fn outcome_of<T>(result: &Result<T>) -> Outcome {
    let Err(err) = result else {
        return Outcome::Acked;
    };
    match err.kind() {
        ErrorKind::Unavailable
        | ErrorKind::Closed
        | ErrorKind::TxAborted
        | ErrorKind::Timeout
        | ErrorKind::Constraint(_)
        | ErrorKind::Conflict
        | ErrorKind::Database
        | ErrorKind::InvalidInput
        | ErrorKind::NotFound
        | ErrorKind::Config => Outcome::NotApplied,
        _ => Outcome::Unknown,
    }
}

/// One write to make: its op id and the row that carries it.
#[derive(Debug, Clone)]
pub struct Op {
    /// The op's id, as stored in the row's `op_id`.
    pub id: Uuid,
    /// The row to create.
    pub record: Record,
}

/// The journal of every op a scenario made. Cheap to clone: clones share it.
#[derive(Clone, Default)]
pub struct Ledger {
    journal: Arc<Mutex<HashMap<Uuid, Outcome>>>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A new op of `worker`'s `seq`-th write, journalled as Unknown until
    /// [`Ledger::settle`]: an op whose caller panics or hangs stays Unknown.
    pub fn op(&self, worker: i32, seq: i64) -> Op {
        let id = Uuid::new_v4();
        self.journal.lock().unwrap().insert(id, Outcome::Unknown);
        let record = Record::new()
            .with("op_id", id)
            .with("worker", worker)
            .with("seq", seq);
        Op { id, record }
    }

    /// Settle `ops` with the answer that covers them all (one autocommit
    /// write, or every write of one transaction with its COMMIT's answer).
    pub fn settle<T>(&self, ops: &[&Op], result: &Result<T>) {
        let outcome = outcome_of(result);
        let mut journal = self.journal.lock().unwrap();
        for op in ops {
            journal.insert(op.id, outcome);
        }
    }

    /// One autocommit create of a new op, journalled and settled.
    pub async fn append(&self, db: &Db, worker: i32, seq: i64) -> Result<Record> {
        let op = self.op(worker, seq);
        let result = db.create(MODEL, op.record.clone()).await;
        self.settle(&[&op], &result);
        result
    }

    /// Compare the journal with the ledger table of `schema`, read through
    /// `observer` (a connection outside the adapter). Run it once the load
    /// has stopped.
    pub async fn check(&self, observer: &tokio_postgres::Client, schema: &str) -> Check {
        let sql = format!(
            "SELECT op_id, count(*) FROM \"{schema}\".\"{}\" GROUP BY op_id",
            model().table()
        );
        let rows = observer.query(&sql, &[]).await.expect("read the ledger");
        let stored: HashMap<Uuid, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let journal = self.journal.lock().unwrap();
        let mut check = Check::default();
        for (id, outcome) in journal.iter() {
            let present = stored.contains_key(id);
            match (outcome, present) {
                (Outcome::Acked, true) => check.acked += 1,
                (Outcome::Acked, false) => {
                    check.acked += 1;
                    check.lost += 1;
                }
                (Outcome::NotApplied, false) => check.not_applied += 1,
                (Outcome::NotApplied, true) => {
                    check.not_applied += 1;
                    check.phantom += 1;
                }
                (Outcome::Unknown, true) => check.unknown_present += 1,
                (Outcome::Unknown, false) => check.unknown_absent += 1,
            }
        }
        for (id, n) in &stored {
            check.dup += (*n - 1) as u64;
            if !journal.contains_key(id) {
                check.stray += 1;
            }
        }
        check
    }
}

/// What [`Ledger::check`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Check {
    /// Ops answered with success.
    pub acked: u64,
    /// Ops answered with an error that promises "not applied".
    pub not_applied: u64,
    /// Acked ops missing from the table.
    pub lost: u64,
    /// NotApplied ops present in the table.
    pub phantom: u64,
    /// Extra rows of ops applied more than once.
    pub dup: u64,
    /// Rows whose op the journal never recorded.
    pub stray: u64,
    /// Unknown ops that turned out applied.
    pub unknown_present: u64,
    /// Unknown ops that turned out not applied.
    pub unknown_absent: u64,
}

impl Check {
    /// Put the check into a scenario's figures: `lost`, and the rest as notes.
    pub fn report(&self, figures: &mut Figures) {
        figures.lost = self.lost;
        figures.note(format!(
            "ledger: acked {}, not applied {}, phantom {}, dup {}, unknown {} (present {}, absent {})",
            self.acked,
            self.not_applied,
            self.phantom,
            self.dup,
            self.unknown_present + self.unknown_absent,
            self.unknown_present,
            self.unknown_absent
        ));
    }

    /// Fail unless nothing was lost, invented or applied twice.
    pub fn assert_consistent(&self) {
        assert_eq!(
            (self.lost, self.phantom, self.dup, self.stray),
            (0, 0, 0, 0),
            "ledger (lost, phantom, dup, stray) must all be 0: {self:?}"
        );
    }
}

/// How long [`leaks`] lets the adapter quiesce.
const QUIESCE: Duration = Duration::from_secs(5);

/// Once the load has stopped: the adapter sessions (`application_name` =
/// `app`) that are not idle (busy, or inside a transaction), plus the
/// connections the pools still lend and the transactions still open. Waits
/// up to [`QUIESCE`] for them to reach 0, then answers what is left.
pub async fn leaks(db: &Db, observer: &tokio_postgres::Client, app: &str) -> u64 {
    leaks_within(db, observer, app, QUIESCE).await
}

/// [`leaks`], waiting up to `within` for them to reach 0.
pub async fn leaks_within(
    db: &Db,
    observer: &tokio_postgres::Client,
    app: &str,
    within: Duration,
) -> u64 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let busy: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND state IS DISTINCT FROM 'idle'",
                &[&app],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        let stats = db.stats();
        let lent = stats.write.in_use + stats.read.in_use;
        let leaked = busy as u64 + lent as u64 + stats.open_transactions;
        if leaked == 0 || tokio::time::Instant::now() >= deadline {
            return leaked;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
