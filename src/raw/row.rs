//! [`FromRow`]: how a row of a query's answer becomes a Rust value.

use std::fmt::Display;

use tokio_postgres::row::RowIndex;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::error::{Error, ErrorKind, Result};

/// A Rust value one row of an answer decodes into, for
/// [`crate::Db::query_as`] and its kin. Tuples of up to twelve columns
/// decode by position; implement it for a struct of your own with
/// [`column()`] (by name, so the SELECT's column order does not matter).
///
/// ```
/// use pgactor::{column, FromRow, Row};
/// struct Stock {
///     sku: String,
///     quantity: i64,
/// }
/// impl FromRow for Stock {
///     fn from_row(row: &Row) -> pgactor::Result<Stock> {
///         Ok(Stock { sku: column(row, "sku")?, quantity: column(row, "quantity")? })
///     }
/// }
/// ```
pub trait FromRow: Sized {
    /// Decode one row; [`crate::ErrorKind::Decode`] when a column is missing
    /// or holds another type.
    fn from_row(row: &Row) -> Result<Self>;
}

/// The value of column `index` (a name or a position) of `row` as a `T`;
/// [`crate::ErrorKind::Decode`], naming the column, when there is no such
/// column or its type does not convert (`NULL` converts only into an
/// `Option`).
///
/// ```no_run
/// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
/// let row = db.query_one("SELECT count(*) AS n FROM stock_balance").await?;
/// let n: i64 = pgactor::column(&row, "n")?;
/// # let _ = n; Ok(()) }
/// ```
pub fn column<'a, T, I>(row: &'a Row, index: I) -> Result<T>
where
    T: FromSql<'a>,
    I: RowIndex + Display,
{
    row.try_get(&index).map_err(|e| undecoded(&index, &e))
}

/// The error of column `index` that did not decode.
fn undecoded(index: &dyn Display, err: &tokio_postgres::Error) -> Error {
    Error::decode(format!("column {index}: {}", crate::error::describe(err)))
}

/// Reads the columns of one row by name, fastest in the order the
/// statement answers them: each name is first looked for just after the
/// column read before it, so a row read in its SELECT's order costs one
/// comparison of names per column, where [`column()`] by name searches
/// the row's columns from the first. Asked out of order, a name is
/// searched as [`column()`] searches it, with the same answers and errors.
/// What `#[derive(Entity)]` and `#[derive(Partial)]` decode rows with.
///
/// ```
/// use pgactor::{FromRow, Row, RowReader};
/// struct Stock {
///     sku: String,
///     quantity: i64,
/// }
/// impl FromRow for Stock {
///     fn from_row(row: &Row) -> pgactor::Result<Stock> {
///         let mut read = RowReader::new(row);
///         Ok(Stock { sku: read.get("sku")?, quantity: read.get("quantity")? })
///     }
/// }
/// ```
#[derive(Debug)]
pub struct RowReader<'a> {
    row: &'a Row,
    /// Where the next name is looked for first.
    next: usize,
}

impl<'a> RowReader<'a> {
    /// A reader of `row`, which looks for the first name in its first column.
    pub fn new(row: &'a Row) -> RowReader<'a> {
        RowReader { row, next: 0 }
    }

    /// The value of column `name` as a `T`, as [`column()`] answers it.
    pub fn get<T: FromSql<'a>>(&mut self, name: &str) -> Result<T> {
        let columns = self.row.columns();
        let at = match columns.get(self.next) {
            Some(next) if next.name() == name => self.next,
            _ => match columns.iter().position(|c| c.name() == name) {
                Some(at) => at,
                // Not there by its exact name: tokio-postgres' own search
                // (which also matches ignoring ASCII case) says what it is.
                None => return column(self.row, name),
            },
        };
        self.next = at + 1;
        self.row.try_get(at).map_err(|e| undecoded(&name, &e))
    }
}

macro_rules! tuples_from_row {
    ($($n:literal => ($($t:ident $i:tt),+);)+) => {$(
        /// The first columns of the row, by position.
        impl<$($t),+> FromRow for ($($t,)+)
        where
            $($t: for<'a> FromSql<'a>),+
        {
            fn from_row(row: &Row) -> Result<Self> {
                if row.len() != $n {
                    return Err(Error::decode(format!(
                        "the row has {} columns where {} were asked for",
                        row.len(),
                        $n
                    )));
                }
                Ok(($(column::<$t, usize>(row, $i)?,)+))
            }
        }
    )+};
}

tuples_from_row! {
    1 => (A 0);
    2 => (A 0, B 1);
    3 => (A 0, B 1, C 2);
    4 => (A 0, B 1, C 2, D 3);
    5 => (A 0, B 1, C 2, D 3, E 4);
    6 => (A 0, B 1, C 2, D 3, E 4, F 5);
    7 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6);
    8 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
    9 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
    10 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
    11 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
    12 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
}

/// The one row of `rows`: [`ErrorKind::NotFound`] when there is none,
/// [`ErrorKind::Decode`] when there are more.
pub(crate) fn exactly_one(rows: Vec<Row>) -> Result<Row> {
    match at_most_one(rows)? {
        Some(row) => Ok(row),
        None => Err(Error::new(ErrorKind::NotFound, "the query answered no row")),
    }
}

/// The row of `rows`, if any: [`ErrorKind::Decode`] when there are more.
pub(crate) fn at_most_one(rows: Vec<Row>) -> Result<Option<Row>> {
    if rows.len() > 1 {
        return Err(Error::decode(format!(
            "the query answered {} rows where at most one was expected",
            rows.len()
        )));
    }
    Ok(rows.into_iter().next())
}

/// Each row decoded into a `T`.
pub(crate) fn decode_all<T: FromRow>(rows: &[Row]) -> Result<Vec<T>> {
    rows.iter().map(T::from_row).collect()
}
