//! One physical connection ([`Conn`]: the driver's client and its bounded
//! statement cache) and the deadpool manager that opens and recycles them.

use std::sync::Arc;

use deadpool::managed::{Metrics, RecycleResult};
use deadpool_postgres::{ClientWrapper, Manager};
use tokio_postgres::types::Type;
use tokio_postgres::Statement;

use super::counters::Counters;
use super::prepared::Prepared;

/// A pool of the adapter's connections.
pub(crate) type Pool = deadpool::managed::Pool<Connector>;
/// A connection checked out of a [`Pool`].
pub(crate) type Object = deadpool::managed::Object<Connector>;
/// A hook of a [`Pool`].
pub(crate) type Hook = deadpool::managed::Hook<Connector>;

/// One physical connection: deadpool-postgres's client, and the prepared
/// statements of its session, at most the pool's statement cache size.
pub(crate) struct Conn {
    client: ClientWrapper,
    pub(crate) prepared: Prepared,
    /// The pool's counters, where statement evictions are counted.
    counters: Arc<Counters>,
}

impl Conn {
    /// Keep `statement`, just prepared for `sql` and `types`, in this
    /// connection's cache (see [`Prepared::insert`]), counting an eviction;
    /// answer the statement to run.
    pub(crate) fn keep(&self, sql: &str, types: &[Type], statement: Statement) -> Statement {
        let (kept, evicted) = self.prepared.insert(sql, types, statement);
        if evicted {
            self.counters.statement_evicted();
        }
        kept
    }
}

impl std::ops::Deref for Conn {
    type Target = ClientWrapper;
    fn deref(&self) -> &ClientWrapper {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut ClientWrapper {
        &mut self.client
    }
}

/// Opens and recycles [`Conn`]s: deadpool-postgres's manager, with a
/// bounded statement cache for each connection it opens.
pub(crate) struct Connector {
    manager: Manager,
    /// Prepared statements kept per connection.
    statements: usize,
    /// The pool's counters, where statement evictions are counted.
    counters: Arc<Counters>,
}

impl Connector {
    /// `manager`'s connections, each keeping at most `statements` prepared
    /// statements, evictions counted on `counters`.
    pub(crate) fn new(manager: Manager, statements: usize, counters: Arc<Counters>) -> Connector {
        Connector {
            manager,
            statements,
            counters,
        }
    }
}

impl deadpool::managed::Manager for Connector {
    /// Boxed: the pool moves a connection several times on each checkout
    /// and return, and a pointer moves cheaper than the connection.
    type Type = Box<Conn>;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Box<Conn>, tokio_postgres::Error> {
        Ok(Box::new(Conn {
            client: self.manager.create().await?,
            prepared: Prepared::new(self.statements),
            counters: self.counters.clone(),
        }))
    }

    async fn recycle(
        &self,
        conn: &mut Box<Conn>,
        metrics: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        self.manager.recycle(&mut conn.client, metrics).await
    }

    fn detach(&self, conn: &mut Box<Conn>) {
        deadpool::managed::Manager::detach(&self.manager, &mut conn.client);
    }
}
