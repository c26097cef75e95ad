//! Rows as a stream: a raw statement whose rows are read as the caller
//! takes them, on a connection held for the stream's life.
//!
//! Memory stays flat however many rows the statement answers: the driver
//! hands over one batch of messages at a time (what one read of the socket
//! holds) and stops reading the socket until the batch is taken, so a slow
//! consumer leaves the rest in the kernel's buffers and then on the server,
//! whose backend waits to write them (`wait_event = ClientWrite`).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{FutureExt, Stream};
use ractor::DerivedActorRef;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};
use tokio_postgres::types::Type;
use tokio_postgres::{Row, RowStream};
use tracing::Instrument;

use super::actor::{Busy, PoolContext, RunOptions};
use super::connections::ConnectionPool;
use super::counters::Running;
use super::deadline::{self, Fate, Timer};
use super::plan::{send, Binds};
use super::replicas::{Reading, ReplicaSet, Tries};
use crate::config::Role;
use crate::error::{Error, ErrorKind, Result};
use crate::raw::{FromRow, Sql};
use crate::sql::Statements;
use crate::telemetry::Operation;

/// The rows of a statement as they come from the server, each decoded into
/// a `T` ([`Row`] itself by default): from [`crate::Db::stream`] and
/// [`crate::Db::stream_as`]. Take them with [`Rows::next`], or as a
/// [`futures_util::Stream`].
///
/// The stream holds one connection of its pool until it ends (its last
/// row was taken, or an error), or until it is dropped: then the
/// statement is cancelled on the server and the connection given back
/// once it is idle again (closed if that cannot be confirmed). The query
/// timeout bounds each wait for the server (for the statement's first
/// rows, then for each next batch), not the time the caller spends between
/// rows; the server's `statement_timeout` bounds the whole statement,
/// consumer's time included.
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
/// let mut rows = db.stream_as::<(String, i64)>("SELECT sku, quantity FROM stock_balance").await?;
/// while let Some(row) = rows.next().await {
///     let (sku, quantity) = row?;
/// #   let _ = (sku, quantity);
/// }
/// # Ok(()) }
/// ```
pub struct Rows<T = Row> {
    /// `None` once the stream has ended.
    source: Option<Box<dyn Source>>,
    decode: fn(Row) -> Result<T>,
}

/// Where the rows of a [`Rows`] come from: a statement on a connection of
/// a pool ([`open_stream`]), or a cursor of a transaction.
pub(crate) trait Source: Send {
    /// The next row; `Ready(None)` at the end. Not polled again after
    /// `None` or an error.
    fn poll_row(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Row>>>;
}

impl<T> std::fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("ended", &self.source.is_none())
            .finish()
    }
}

impl Rows<Row> {
    /// The rows of `source`, as they are.
    pub(crate) fn new(source: Box<dyn Source>) -> Rows {
        Rows {
            source: Some(source),
            decode: as_row,
        }
    }

    /// The same stream, each row decoded into a `T`.
    pub(crate) fn decoded<T: FromRow>(self) -> Rows<T> {
        Rows {
            source: self.source,
            decode: decoded::<T>,
        }
    }
}

impl<T> Rows<T> {
    /// The next row; `None` once every row was taken or after an error.
    pub async fn next(&mut self) -> Option<Result<T>> {
        poll_fn(|cx| self.poll_row(cx)).await
    }

    fn poll_row(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let Some(source) = self.source.as_mut() else {
            return Poll::Ready(None);
        };
        match source.poll_row(cx) {
            Poll::Ready(Some(Ok(row))) => Poll::Ready(Some((self.decode)(row))),
            // An error, or the end: what the source held goes now.
            Poll::Ready(Some(Err(err))) => {
                self.source = None;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                self.source = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Stream for Rows<T> {
    type Item = Result<T>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.get_mut().poll_row(cx)
    }
}

/// A statement running on a connection of a pool; `None` once it ended.
struct OnConnection(Option<Open>);

/// A statement that has not ended. Its fields drop in order: the driver's
/// stream first (the rest of the rows are then read and dropped), then
/// the connection, whose drop cancels the statement if it still runs.
struct Open {
    rows: Pin<Box<RowStream>>,
    conn: Busy<ConnectionPool>,
    /// The statement may change data (on the primary).
    write: bool,
    /// The query timeout, for each wait for the server.
    limit: Option<Duration>,
    /// The running wait's end, kept from wait to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    /// A wait for the server is running (its end is set).
    waiting: bool,
    /// The rows taken so far, for the span.
    taken: u64,
    /// The statement, for the operation's end.
    sql: Sql,
    op: Operation,
    /// What the stream holds while it runs: its replica's count of
    /// operations in flight, or a place among the reads on the primary.
    _held: Held,
    /// Counted among the operations graceful shutdown waits for.
    _running: Running,
}

impl Source for OnConnection {
    fn poll_row(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Row>>> {
        let Some(open) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        match open.rows.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(row))) => {
                open.waiting = false;
                open.taken += 1;
                Poll::Ready(Some(Ok(row)))
            }
            Poll::Ready(Some(Err(e))) => {
                let err = Error::from_statement(e, open.write);
                Poll::Ready(self.finish(Err(err), false).err().map(Err))
            }
            Poll::Ready(None) => Poll::Ready(self.finish(Ok(()), false).err().map(Err)),
            Poll::Pending => {
                let Some(limit) = open.limit else {
                    return Poll::Pending;
                };
                if !open.waiting {
                    open.waiting = true;
                    let end = Instant::now() + limit;
                    match &mut open.sleep {
                        Some(sleep) => sleep.as_mut().reset(end),
                        None => open.sleep = Some(Box::pin(tokio::time::sleep_until(end))),
                    }
                }
                let sleep = open.sleep.as_mut().expect("set above");
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Dropped by `finish`, the connection cancels the statement.
                let err = Error::overran(
                    limit,
                    open.write,
                    "its statement is being cancelled on the server",
                );
                Poll::Ready(self.finish(Err(err), true).err().map(Err))
            }
        }
    }
}

impl OnConnection {
    /// End the statement with `end`, recorded on its span, and answer it.
    /// Its connection goes back to the pool, or is closed when the error
    /// says the session is unusable; one whose statement `still_runs`
    /// (past the query timeout) is dropped, which cancels the statement on
    /// the server first.
    fn finish(&mut self, end: Result<()>, still_runs: bool) -> Result<()> {
        let Some(Open {
            rows,
            conn,
            taken,
            sql,
            op,
            ..
        }) = self.0.take()
        else {
            return end;
        };
        let end = op.end(end, |()| taken, sql.text());
        drop(rows);
        match &end {
            _ if still_runs => drop(conn),
            Ok(()) => conn.release(false),
            Err(err) => conn.release(err.is_read_only_server() || err.ended_session()),
        }
        end
    }
}

/// The rows as they are.
fn as_row(row: Row) -> Result<Row> {
    Ok(row)
}

/// Each row decoded into a `T`.
fn decoded<T: FromRow>(row: Row) -> Result<T> {
    T::from_row(&row)
}

/// Rows sent to an actor per [`RowsMsg::Batch`] at most.
pub const BATCH_ROWS: usize = 1000;

/// A statement's rows delivered to an actor (see [`crate::DbMsg::Stream`]),
/// a batch at a time, each batch only once the actor asked for it: a slow
/// actor holds the server back, not the heap.
#[derive(Debug)]
pub enum RowsMsg {
    /// Up to [`BATCH_ROWS`] rows, in order (those the server had sent, at
    /// least one), and the way to ask for the next batch: call
    /// [`More::more`] when ready for it, or drop it to stop the stream (the
    /// statement is cancelled on the server and nothing more comes). Not
    /// asked for within the stream's query timeout, the stream stops with
    /// [`RowsMsg::End`]`(Err(Timeout))`.
    Batch(Vec<Row>, More),
    /// The stream's end: the number of rows sent, or the error that ended
    /// it (then after the rows sent before it).
    End(Result<u64>),
}

/// The demand for the next [`RowsMsg::Batch`].
#[derive(Debug)]
pub struct More(oneshot::Sender<()>);

impl More {
    /// Ask for the next batch (or [`RowsMsg::End`]).
    pub fn more(self) {
        // A stream that stopped meanwhile has already said why.
        let _ = self.0.send(());
    }
}

/// Open `sql` on the pool of `ctx` and send its rows to `to` in a task of
/// its own, each batch on demand; every failure reaches `to` as
/// [`RowsMsg::End`].
pub(crate) fn spawn_feed(
    ctx: &Arc<PoolContext>,
    sql: Sql,
    call: RunOptions,
    to: DerivedActorRef<RowsMsg>,
) {
    let ctx = ctx.clone();
    let running = ctx.in_flight.start();
    tokio::spawn(async move {
        let write = ctx.pool.role == Role::Write;
        match open_stream(&ctx, sql, write, &call, running).await {
            Ok(rows) => feed(rows, &to, call.deadline).await,
            Err(err) => drop(to.send_message(RowsMsg::End(Err(err)))),
        }
    });
}

/// Send the rows of `rows` to `to`, a batch whenever it asks, waiting at
/// most `wait` for each ask.
async fn feed(mut rows: Rows, to: &DerivedActorRef<RowsMsg>, wait: Option<Duration>) {
    let mut sent = 0_u64;
    let end = loop {
        let first = match rows.next().await {
            Some(Ok(row)) => row,
            Some(Err(err)) => break Err(err),
            None => break Ok(sent),
        };
        // With the first row, whatever else has come already.
        let mut batch = vec![first];
        let mut ended = None;
        while batch.len() < BATCH_ROWS {
            match rows.next().now_or_never() {
                Some(Some(Ok(row))) => batch.push(row),
                Some(Some(Err(err))) => {
                    ended = Some(Err(err));
                    break;
                }
                Some(None) => {
                    ended = Some(Ok(()));
                    break;
                }
                // Nothing more has come yet.
                None => break,
            }
        }
        sent += batch.len() as u64;
        let (more, asked) = oneshot::channel();
        if to.send_message(RowsMsg::Batch(batch, More(more))).is_err() {
            // The actor has stopped: dropping the rows cancels the statement.
            return;
        }
        if let Some(end) = ended {
            break end.map(|()| sent);
        }
        let asked = match wait {
            None => Some(asked.await),
            Some(limit) => tokio::time::timeout(limit, asked).await.ok(),
        };
        match asked {
            Some(Ok(())) => continue,
            // It dropped its `More`: it wants no more.
            Some(Err(_)) => return,
            None => {
                break Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the actor did not ask for the next batch within the {:?} query timeout; \
                         the stream was stopped and its statement cancelled",
                        wait.unwrap_or_default()
                    ),
                ))
            }
        }
    };
    let _ = to.send_message(RowsMsg::End(end));
}

/// Start `sql` on the pool of `ctx` (a read on the replica the way a read
/// goes, falling back to the primary as one does) and answer its rows as a
/// stream. `write` says whether it runs where data may change.
pub(crate) async fn open_stream(
    ctx: &PoolContext,
    sql: Sql,
    write: bool,
    call: &RunOptions,
    running: Running,
) -> Result<Rows> {
    let op = ctx.operation(call, "stream", "");
    let sql = match sql.checked() {
        Ok(sql) => sql,
        Err(err) => return op.end(Err(err), |_| 0, ""),
    };
    let started = async {
        let mode = sql.mode(ctx.catalog.statements);
        let types = sql.wire_types(mode == Statements::Unnamed)?;
        let statement = Statement {
            sql: &sql,
            types: &types,
            mode,
            write,
            limit: call.deadline,
        };
        match &ctx.replica {
            Some(set) => statement.start_on_replicas(set, &op, call).await,
            None => {
                op.runs_on(&ctx.pool.server);
                Ok((statement.start(&ctx.pool).await?, Held::Nothing))
            }
        }
    }
    .instrument(op.span.clone())
    .await;
    let ((rows, conn), held) = match started {
        Ok(started) => started,
        Err(err) => return op.end(Err(err), |_| 0, sql.text()),
    };
    Ok(Rows::new(Box::new(OnConnection(Some(Open {
        rows,
        conn,
        write,
        limit: call.deadline,
        sleep: None,
        waiting: false,
        taken: 0,
        sql,
        op,
        _held: held,
        _running: running,
    })))))
}

/// What a stream holds while it runs, besides its connection.
enum Held {
    Nothing,
    /// Counted among its replica's operations in flight.
    Reading {
        _in_flight: Reading,
    },
    /// A place among the reads on the primary instead of a replica.
    Spilled {
        _place: OwnedSemaphorePermit,
    },
}

/// A statement started: its rows, on its connection.
type Started = (Pin<Box<RowStream>>, Busy<ConnectionPool>);

/// A checked statement, ready to start on a pool.
struct Statement<'a> {
    sql: &'a Sql,
    types: &'a [Type],
    mode: Statements,
    write: bool,
    limit: Option<Duration>,
}

impl Statement<'_> {
    /// Start on the replica `set` chooses, on another one when it turns
    /// out unreachable (marked down), else on the primary (with fallback
    /// on, or when no replica is known to be at the call's token), as a
    /// read does. A stream is never sent to a replica to ask whether it
    /// has replayed the token: that replica may hold a stream long.
    async fn start_on_replicas(
        &self,
        set: &ReplicaSet,
        op: &Operation,
        call: &RunOptions,
    ) -> Result<(Started, Held)> {
        let mut tries = Tries::default();
        while let Some(placed) = set.place(call.after, false, &tries) {
            op.runs_on(&placed.replica.pool.server);
            match self.start(&placed.replica.pool).await {
                Ok(started) => {
                    let held = Held::Reading {
                        _in_flight: placed.reading,
                    };
                    return Ok((started, held));
                }
                Err(err) => set.failed(&mut tries, &placed, err)?,
            }
        }
        op.runs_on(&set.primary.server);
        let spilled = set.instead(tries).await?;
        let held = Held::Spilled { _place: spilled };
        Ok((self.start(&set.primary).await?, held))
    }

    /// Take a connection of `pool` (within its wait timeout) and send the
    /// statement on it (within the query timeout; past it, the statement
    /// is cancelled on the server).
    async fn start(&self, pool: &ConnectionPool) -> Result<Started> {
        let mut timer = Timer::default();
        let conn = Busy::new(pool.clone(), pool.checkout(&mut timer).await?);
        let values = self.sql.values();
        let sent = send(
            &conn,
            self.sql.text(),
            Binds::Apart(self.types, &values),
            self.mode,
            self.write,
        );
        let sent = match self.limit {
            None => sent.await,
            Some(limit) => match timer.within(limit, sent).await {
                Some(sent) => sent,
                // Cancelled and confirmed here, so the answer says
                // whether the statement ran to its end.
                None => {
                    return match deadline::abandon(&conn, &pool.cancel).await {
                        Fate::Reusable => {
                            conn.release(false);
                            Err(Error::cancelled_past(limit))
                        }
                        Fate::Discard => {
                            conn.release(true);
                            Err(Error::overran(
                                limit,
                                self.write,
                                "its cancel was not confirmed",
                            ))
                        }
                    }
                }
            },
        };
        match sent {
            Ok(rows) => Ok((Box::pin(rows), conn)),
            Err(err) => {
                conn.release(err.is_read_only_server() || err.ended_session());
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream can move to another task (a spawned exporter, an actor).
    #[test]
    fn rows_are_send() {
        fn send<T: Send>() {}
        send::<Rows>();
        send::<Rows<(String, i64)>>();
    }
}
