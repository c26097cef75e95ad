//! Raw SQL: statements the application writes itself ([`Sql`]), and how
//! the rows they answer become Rust values ([`FromRow`]). They run on the
//! same pools, transactions, timeouts and error kinds as the model
//! operations (see `crate::pool::raw`).

mod row;
mod sql;

pub(crate) use row::{at_most_one, exactly_one};
pub use row::{column, FromRow, LocatedRow, RowLayout, RowReader};
pub use sql::{quote_identifier, Sql};
pub(crate) use sql::{unspecified, BindError};
pub use tokio_postgres::Row;

/// The raw query methods over the `rows` method of the handle they are
/// expanded in (`Db` and `Tx` share them); `$place` says where they run,
/// for the docs.
macro_rules! raw_queries {
    ($place:literal) => {
        #[doc = concat!("Run a statement written by hand ", $place, " and answer every row it returns.")]
        ///
        /// ```no_run
        /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
        /// use pgactor::Sql;
        /// let rows = db
        ///     .query(Sql::new("SELECT sku, quantity FROM stock_balance WHERE quantity < $1").bind(5_i64))
        ///     .await?;
        /// for row in &rows {
        ///     let sku: String = pgactor::column(row, "sku")?;
        /// #   let _ = sku;
        /// }
        /// # Ok(()) }
        /// ```
        pub async fn query(&self, sql: impl Into<$crate::Sql>) -> $crate::Result<Vec<$crate::Row>> {
            self.rows(sql.into()).await
        }

        #[doc = concat!("Run a statement ", $place, " that answers exactly one row: [`crate::ErrorKind::NotFound`] when it answers none, [`crate::ErrorKind::Decode`] when more.")]
        pub async fn query_one(&self, sql: impl Into<$crate::Sql>) -> $crate::Result<$crate::Row> {
            $crate::raw::exactly_one(self.rows(sql.into()).await?)
        }

        #[doc = concat!("Run a statement ", $place, " that answers at most one row: [`crate::ErrorKind::Decode`] when it answers more.")]
        pub async fn query_opt(&self, sql: impl Into<$crate::Sql>) -> $crate::Result<Option<$crate::Row>> {
            $crate::raw::at_most_one(self.rows(sql.into()).await?)
        }

        #[doc = concat!("[`Self::query`] ", $place, ", each row decoded into a `T` (a tuple, or a type that implements [`crate::FromRow`]).")]
        ///
        /// ```no_run
        /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
        /// let low: Vec<(String, i64)> = db
        ///     .query_as("SELECT sku, quantity FROM stock_balance WHERE quantity < 5 ORDER BY sku")
        ///     .await?;
        /// # let _ = low; Ok(()) }
        /// ```
        pub async fn query_as<T: $crate::FromRow>(&self, sql: impl Into<$crate::Sql>) -> $crate::Result<Vec<T>> {
            T::from_rows(&self.rows(sql.into()).await?)
        }

        #[doc = concat!("[`Self::query_one`] ", $place, ", the row decoded into a `T`.")]
        pub async fn query_one_as<T: $crate::FromRow>(&self, sql: impl Into<$crate::Sql>) -> $crate::Result<T> {
            T::from_row(&self.query_one(sql).await?)
        }

        #[doc = concat!("[`Self::query_opt`] ", $place, ", the row decoded into a `T`.")]
        pub async fn query_opt_as<T: $crate::FromRow>(&self, sql: impl Into<$crate::Sql>) -> $crate::Result<Option<T>> {
            self.query_opt(sql).await?.as_ref().map(T::from_row).transpose()
        }
    };
}
pub(crate) use raw_queries;
