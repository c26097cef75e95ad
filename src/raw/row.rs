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

    /// Decode every row of one answer, in order, stopping at the first
    /// error. The default decodes each with [`FromRow::from_row`]; the
    /// derived ones find their columns in the first row once, with a
    /// [`RowLayout`], and read the others by position.
    fn from_rows(rows: &[Row]) -> Result<Vec<Self>> {
        rows.iter().map(Self::from_row).collect()
    }
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
#[cold]
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

/// Where `N` named columns are in the rows of one answer: looked for by
/// name once, in its first row, then read by position in every row, as
/// fast as reading by position. Rows of another statement are looked at
/// afresh; a name that is not there (or is there only in another ASCII
/// case) is read as [`column()`] reads it, with the same answers and
/// errors. What `#[derive(Entity)]` and `#[derive(Partial)]` decode many
/// rows with ([`FromRow::from_rows`]).
///
/// ```
/// use pgactor::{FromRow, Row, RowLayout, RowReader};
/// struct Stock {
///     sku: String,
///     quantity: i64,
/// }
/// impl FromRow for Stock {
///     fn from_row(row: &Row) -> pgactor::Result<Stock> {
///         let mut read = RowReader::new(row);
///         Ok(Stock { sku: read.get("sku")?, quantity: read.get("quantity")? })
///     }
///     fn from_rows(rows: &[Row]) -> pgactor::Result<Vec<Stock>> {
///         let mut layout = RowLayout::new(["sku", "quantity"]);
///         rows.iter()
///             .map(|row| {
///                 let row = layout.locate(row);
///                 Ok(Stock { sku: row.get(0)?, quantity: row.get(1)? })
///             })
///             .collect()
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RowLayout<const N: usize> {
    names: [&'static str; N],
    /// The address of the columns the positions are of: those of the
    /// statement of the row located last (`None` before the first).
    of: Option<usize>,
    /// Where each name is, [`RowLayout::MISSING`] where it is not by its
    /// exact name.
    at: [usize; N],
}

impl<const N: usize> RowLayout<N> {
    const MISSING: usize = usize::MAX;

    /// A layout of the columns `names`, to be found in the first row
    /// located.
    pub fn new(names: [&'static str; N]) -> RowLayout<N> {
        RowLayout {
            names,
            of: None,
            at: [Self::MISSING; N],
        }
    }

    /// `row`, to read by the positions of the names: found now if `row`
    /// is the first or of another statement than the row before.
    #[inline]
    pub fn locate<'l, 'a>(&'l mut self, row: &'a Row) -> LocatedRow<'l, 'a, N> {
        let of = row.columns().as_ptr() as usize;
        if self.of != Some(of) {
            self.find(row);
            self.of = Some(of);
        }
        LocatedRow { layout: self, row }
    }

    /// Where each name is in `row`'s columns.
    fn find(&mut self, row: &Row) {
        let columns = row.columns();
        for (at, name) in self.at.iter_mut().zip(self.names) {
            *at = columns
                .iter()
                .position(|c| c.name() == name)
                .unwrap_or(Self::MISSING);
        }
    }
}

/// A row whose columns a [`RowLayout`] has found: read them by their
/// place in the layout's names.
#[derive(Debug, Clone, Copy)]
pub struct LocatedRow<'l, 'a, const N: usize> {
    layout: &'l RowLayout<N>,
    row: &'a Row,
}

impl<'a, const N: usize> LocatedRow<'_, 'a, N> {
    /// The value of the layout's `i`-th name as a `T`, as [`column()`]
    /// answers it; [`crate::ErrorKind::Decode`] when the layout has no
    /// `i`-th name.
    #[inline(always)]
    pub fn get<T: FromSql<'a>>(&self, i: usize) -> Result<T> {
        let (Some(&name), Some(&at)) = (self.layout.names.get(i), self.layout.at.get(i)) else {
            return Err(Error::decode(format!(
                "the row layout has {N} columns, no column {i}"
            )));
        };
        if at == RowLayout::<N>::MISSING {
            // Not there by its exact name: tokio-postgres' own search
            // (which also matches ignoring ASCII case) says what it is.
            return column(self.row, name);
        }
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
