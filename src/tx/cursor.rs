//! Streams inside a transaction ([`crate::Tx::stream`]): a cursor on the
//! transaction's connection, read [`FETCH_ROWS`] rows at a time, each FETCH
//! a statement of the transaction like any other (in order with the rest,
//! under its query timeout).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::error::{Error, Result};
use crate::pool::{Rows, Source};
use crate::raw::{Row, Sql};

/// Rows fetched per round trip: what a transaction's stream holds in memory
/// at most, besides the row being taken.
pub(crate) const FETCH_ROWS: usize = 1000;

/// Streams a transaction may have open at once (each holds a cursor).
pub(crate) const MAX_CURSORS: u32 = 64;

/// The cursor names in use in one transaction: slot `n` is the cursor
/// `pgactor_rows_n`. A slot is taken before DECLARE and given back once
/// the cursor is closed, so two streams never share a name, and the
/// statements' texts repeat (and stay in the statement cache).
#[derive(Debug, Default)]
pub(crate) struct CursorSlots(AtomicU64);

impl CursorSlots {
    fn take(&self) -> Result<u32> {
        let mut taken = 0;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                taken = (!used).trailing_zeros();
                (taken < MAX_CURSORS).then(|| used | (1 << taken))
            })
            .map_err(|_| {
                Error::invalid_input(format!(
                    "{MAX_CURSORS} streams are already open in this transaction; \
                     read or drop one first"
                ))
            })?;
        Ok(taken)
    }

    fn give_back(&self, slot: u32) {
        self.0.fetch_and(!(1 << slot), Ordering::AcqRel);
    }
}

/// What a cursor needs of its transaction: [`crate::Tx`].
pub(crate) trait CursorHost: Clone + Send + Sync + 'static {
    /// Run `sql` in the transaction and answer its rows.
    fn rows(&self, sql: Sql) -> impl Future<Output = Result<Vec<Row>>> + Send;
    /// The transaction's cursor names.
    fn slots(&self) -> &CursorSlots;
}

/// Declare a cursor for `sql` in `host`'s transaction and answer its rows
/// as a stream.
pub(crate) async fn declare<H: CursorHost>(host: H, sql: Sql) -> Result<Rows> {
    let slot = host.slots().take()?;
    let declare = sql.prefixed(&format!("DECLARE {} NO SCROLL CURSOR FOR ", name(slot)));
    if let Err(err) = host.rows(declare).await {
        host.slots().give_back(slot);
        return Err(err);
    }
    Ok(Rows::new(Box::new(Cursor {
        host,
        slot,
        batch: Vec::new().into_iter(),
        step: Step::Fetch,
    })))
}

fn name(slot: u32) -> String {
    format!("pgactor_rows_{slot}")
}

type Pending = Pin<Box<dyn Future<Output = Result<Vec<Row>>> + Send>>;

/// A declared cursor and the rows of its last FETCH.
struct Cursor<H: CursorHost> {
    host: H,
    slot: u32,
    batch: std::vec::IntoIter<Row>,
    step: Step,
}

enum Step {
    /// The next FETCH is due once the batch is taken.
    Fetch,
    Fetching(Pending),
    /// The last batch came: CLOSE once it is taken.
    Close,
    Closing(Pending),
    /// Closed, or failed: nothing more.
    Done,
}

impl<H: CursorHost> Cursor<H> {
    /// Run `sql` in the transaction, from a future of its own.
    fn start(&self, sql: String) -> Pending {
        let host = self.host.clone();
        Box::pin(async move { host.rows(Sql::new(sql)).await })
    }
}

impl<H: CursorHost> Source for Cursor<H> {
    fn poll_row(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Row>>> {
        loop {
            if let Some(row) = self.batch.next() {
                return Poll::Ready(Some(Ok(row)));
            }
            match &mut self.step {
                Step::Fetch => {
                    let fetch = format!("FETCH {FETCH_ROWS} FROM {}", name(self.slot));
                    self.step = Step::Fetching(self.start(fetch));
                }
                Step::Fetching(pending) => match pending.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(rows)) => {
                        let last = rows.len() < FETCH_ROWS;
                        self.step = if last { Step::Close } else { Step::Fetch };
                        self.batch = rows.into_iter();
                    }
                    // The transaction is aborted or over: so is its cursor.
                    Poll::Ready(Err(err)) => {
                        self.step = Step::Done;
                        self.host.slots().give_back(self.slot);
                        return Poll::Ready(Some(Err(err)));
                    }
                },
                Step::Close => {
                    let close = format!("CLOSE {}", name(self.slot));
                    self.step = Step::Closing(self.start(close));
                }
                Step::Closing(pending) => {
                    let Poll::Ready(closed) = pending.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    self.step = Step::Done;
                    self.host.slots().give_back(self.slot);
                    return Poll::Ready(closed.err().map(Err));
                }
                Step::Done => return Poll::Ready(None),
            }
        }
    }
}

/// A stream dropped before its end closes its cursor in a task of its own
/// (a statement already sent still runs to its end first), then gives its
/// name back. Without a runtime the name stays taken until the
/// transaction ends.
impl<H: CursorHost> Drop for Cursor<H> {
    fn drop(&mut self) {
        if matches!(self.step, Step::Done) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (host, slot) = (self.host.clone(), self.slot);
        runtime.spawn(async move {
            // Failing, the transaction has ended (or will roll back): its
            // cursors are gone with it.
            let _ = host.rows(Sql::new(format!("CLOSE {}", name(slot)))).await;
            host.slots().give_back(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_lowest_free_ones_and_bounded() {
        let slots = CursorSlots::default();
        assert_eq!(slots.take().unwrap(), 0);
        assert_eq!(slots.take().unwrap(), 1);
        slots.give_back(0);
        assert_eq!(slots.take().unwrap(), 0);
        for expected in 2..MAX_CURSORS {
            assert_eq!(slots.take().unwrap(), expected);
        }
        let full = slots.take().unwrap_err();
        assert_eq!(full.kind(), crate::ErrorKind::InvalidInput);
        slots.give_back(40);
        assert_eq!(slots.take().unwrap(), 40);
    }
}
