//! Raw SQL as a request and a plan: run the way every model operation is
//! (routing, deadlines, the connection's statement mode, error kinds),
//! answering the rows or the number of rows changed.

use std::future::Future;
use std::marker::PhantomData;

use tokio_postgres::types::Type;
use tokio_postgres::{Row, RowStream};

use super::conn::Conn;
use super::plan::{collect, count, send, Binds, Plan, Request};
use crate::error::Result;
use crate::raw::Sql;
use crate::sql::{Catalog, Statements};

/// What a raw statement answers: its rows, or how many rows it changed.
pub(crate) trait Answer: Sized + Send + 'static {
    /// The operation, as spans name it.
    const OPERATION: &'static str;
    /// The answer of a statement whose rows come on `stream`.
    fn take(stream: RowStream, write: bool) -> impl Future<Output = Result<Self>> + Send;
    /// How many rows it holds or names, for spans.
    fn rows(&self) -> u64;
}

/// Every row, in order.
impl Answer for Vec<Row> {
    const OPERATION: &'static str = "query";
    fn take(stream: RowStream, write: bool) -> impl Future<Output = Result<Self>> + Send {
        collect(stream, write)
    }
    fn rows(&self) -> u64 {
        self.len() as u64
    }
}

/// The number of rows the statement inserted, updated, deleted or
/// answered; rows it answers are read and dropped as they come.
impl Answer for u64 {
    const OPERATION: &'static str = "execute";
    fn take(stream: RowStream, write: bool) -> impl Future<Output = Result<u64>> + Send {
        count(stream, write)
    }
    fn rows(&self) -> u64 {
        *self
    }
}

/// A statement written by hand, answering `A`.
pub(crate) struct RawRequest<A> {
    sql: Sql,
    /// Whether it runs where it may change data (the primary, a
    /// transaction): a lost answer is then an unknown outcome, and as a
    /// transaction's first statement it waits for BEGIN's answer.
    write: bool,
    answer: PhantomData<fn() -> A>,
}

impl<A> RawRequest<A> {
    pub(crate) fn new(sql: Sql, write: bool) -> RawRequest<A> {
        RawRequest {
            sql,
            write,
            answer: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for RawRequest<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.sql.fmt(f)
    }
}

impl<A: Answer> Request for RawRequest<A> {
    type Plan = RawPlan<A>;
    fn operation(&self) -> &'static str {
        A::OPERATION
    }
    /// Raw SQL names no model.
    fn model(&self) -> &str {
        ""
    }
    fn plan(self, catalog: &Catalog) -> Result<RawPlan<A>> {
        let sql = self.sql.checked()?;
        let mode = sql.mode(catalog.statements);
        let types = sql.wire_types(mode == Statements::Unnamed)?;
        Ok(RawPlan {
            sql,
            types,
            write: self.write,
            mode,
            answer: PhantomData,
        })
    }
}

/// A checked raw statement with its parameters' wire types.
pub(crate) struct RawPlan<A> {
    sql: Sql,
    types: Vec<Type>,
    write: bool,
    mode: Statements,
    answer: PhantomData<fn() -> A>,
}

impl<A: Answer> Plan for RawPlan<A> {
    type Output = A;
    fn statement(&self) -> &str {
        self.sql.text()
    }
    fn rows(answer: &A) -> u64 {
        answer.rows()
    }
    fn writes(&self) -> bool {
        self.write
    }
    async fn fetch(&self, client: &Conn) -> Result<A> {
        let values = self.sql.values();
        let text = self.sql.text();
        let stream = send(
            client,
            text,
            Binds::Apart(&self.types, &values),
            self.mode,
            self.write,
        )
        .await?;
        A::take(stream, self.write).await
    }
}
