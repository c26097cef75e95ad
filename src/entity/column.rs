//! [`Column`]: a model's column as a typed constant, so that a filter or a
//! sort naming a column that does not exist fails to compile.

use std::error::Error as StdError;
use std::fmt::Display;
use std::marker::PhantomData;
use std::str::FromStr;

use tokio_postgres::types::{FromSql, Type};

use crate::schema::{ArrayElement, Filter, Value};

/// Column `name` of entity `E`, holding values of type `V`. The derive
/// makes one constant per field (`StockBalance::QUANTITY`); it stands
/// wherever a field name does (`Filter::eq(StockBalance::SKU, "A-1")`,
/// `Query::sort_desc(StockBalance::QUANTITY)`), and builds filters whose
/// values have the column's type:
///
/// ```
/// use pgactor::{Filter, Query};
///
/// #[derive(pgactor::Entity)]
/// struct StockBalance {
///     sku: String,
///     quantity: i64,
/// }
///
/// let low = StockBalance::QUANTITY.lt(5);
/// assert_eq!(low, Filter::lt("quantity", 5_i64));
/// let sorted = Query::new().sort_desc(StockBalance::QUANTITY);
/// # let _ = sorted;
/// ```
pub struct Column<E, V> {
    name: &'static str,
    nullable: bool,
    types: PhantomData<fn() -> (E, V)>,
}

impl<E, V> Column<E, V> {
    /// The column `name` (what the derive writes; not checked here), `NOT
    /// NULL`.
    pub const fn new(name: &'static str) -> Column<E, V> {
        Column {
            name,
            nullable: false,
            types: PhantomData,
        }
    }

    /// The same column, one that may hold NULL (the derive marks an
    /// `Option` field's so; a [`crate::Partial`] reads it into an
    /// `Option` only).
    pub const fn nullable(self) -> Column<E, V> {
        Column {
            nullable: true,
            ..self
        }
    }

    /// The column's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the column may hold NULL.
    pub const fn is_nullable(&self) -> bool {
        self.nullable
    }
}

impl<E, V: Into<Value>> Column<E, V> {
    /// `column = value`.
    pub fn eq(self, value: impl Into<V>) -> Filter {
        Filter::eq(self.name, value.into())
    }

    /// `column <> value`.
    pub fn ne(self, value: impl Into<V>) -> Filter {
        Filter::ne(self.name, value.into())
    }

    /// `column < value`.
    pub fn lt(self, value: impl Into<V>) -> Filter {
        Filter::lt(self.name, value.into())
    }

    /// `column <= value`.
    pub fn le(self, value: impl Into<V>) -> Filter {
        Filter::le(self.name, value.into())
    }

    /// `column > value`.
    pub fn gt(self, value: impl Into<V>) -> Filter {
        Filter::gt(self.name, value.into())
    }

    /// `column >= value`.
    pub fn ge(self, value: impl Into<V>) -> Filter {
        Filter::ge(self.name, value.into())
    }

    /// `column IN (values…)`; an empty list matches nothing.
    pub fn is_in(self, values: impl IntoIterator<Item: Into<V>>) -> Filter {
        Filter::is_in(self.name, values.into_iter().map(|v| v.into().into()))
    }
}

impl<E, T: ArrayElement> Column<E, Vec<T>> {
    /// The array column holds `value` (`value = ANY(column)`).
    pub fn has(self, value: impl Into<T::Item>) -> Filter {
        Filter::has(self.name, value.into())
    }
}

impl<E, T: ArrayElement> Column<E, Option<Vec<T>>> {
    /// The array column holds `value` (`value = ANY(column)`); a NULL
    /// array does not.
    pub fn has(self, value: impl Into<T::Item>) -> Filter {
        Filter::has(self.name, value.into())
    }
}

impl<E, V> Clone for Column<E, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E, V> Copy for Column<E, V> {}

impl<E, V> std::fmt::Debug for Column<E, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Column({:?})", self.name)
    }
}

/// A column names its field wherever a field name is taken.
impl<E, V> From<Column<E, V>> for String {
    fn from(column: Column<E, V>) -> String {
        column.name.to_owned()
    }
}

/// A value stored as its text: a Rust type (typically an enum) that
/// implements [`Display`] to write it and [`FromStr`] to read it back, in a
/// `text` or `varchar` column.
///
/// It is what the derive uses for a field marked `#[pgactor(text)]`: the
/// field's column constant is a `Column<S, AsText<T>>`, whose filters take
/// a `T` and compare with its text. By hand, `Value::from(AsText(x))` is
/// `Value::Text(x.to_string())`, and [`crate::column()`] reads an
/// `AsText<T>` by parsing the column's text: a text that does not parse is
/// [`crate::ErrorKind::Decode`], naming the column and carrying the
/// `FromStr` error's message.
///
/// ```
/// use std::fmt;
/// use std::str::FromStr;
/// use pgactor::{AsText, Filter, Value};
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// enum Status { Open, Closed }
///
/// impl fmt::Display for Status {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str(match self { Status::Open => "open", Status::Closed => "closed" })
///     }
/// }
///
/// impl FromStr for Status {
///     type Err = String;
///     fn from_str(s: &str) -> Result<Status, String> {
///         match s {
///             "open" => Ok(Status::Open),
///             "closed" => Ok(Status::Closed),
///             _ => Err("not a status".into()),
///         }
///     }
/// }
///
/// #[derive(pgactor::Entity)]
/// struct Ticket {
///     #[pgactor(text)]
///     status: Status,
/// }
///
/// assert_eq!(Ticket::STATUS.eq(Status::Open), Filter::eq("status", "open"));
/// assert_eq!(Value::from(AsText(Status::Closed)), Value::Text("closed".into()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AsText<T>(pub T);

impl<T> AsText<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for AsText<T> {
    fn from(value: T) -> AsText<T> {
        AsText(value)
    }
}

impl<T: Display> From<AsText<T>> for Value {
    fn from(value: AsText<T>) -> Value {
        Value::Text(value.0.to_string())
    }
}

impl<'a, T> FromSql<'a> for AsText<T>
where
    T: FromStr,
    T::Err: Display,
{
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<AsText<T>, Box<dyn StdError + Sync + Send>> {
        let text = <&str as FromSql>::from_sql(ty, raw)?;
        text.parse().map(AsText).map_err(|e: T::Err| {
            format!(
                "the text does not parse as {}: {e}",
                std::any::type_name::<T>()
            )
            .into()
        })
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Side {
        Buy,
        Sell,
    }

    impl Display for Side {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                Side::Buy => "buy",
                Side::Sell => "sell",
            })
        }
    }

    impl FromStr for Side {
        type Err = &'static str;
        fn from_str(s: &str) -> Result<Side, &'static str> {
            match s {
                "buy" => Ok(Side::Buy),
                "sell" => Ok(Side::Sell),
                _ => Err("expected buy or sell"),
            }
        }
    }

    #[test]
    fn a_text_backed_value_writes_its_text_and_parses_it_back() {
        assert_eq!(Value::from(AsText(Side::Sell)), Value::Text("sell".into()));
        assert_eq!(Value::from(None::<AsText<Side>>), Value::Null);
        let read = AsText::<Side>::from_sql(&Type::TEXT, b"buy").unwrap();
        assert_eq!(read.into_inner(), Side::Buy);
        assert!(<AsText<Side> as FromSql>::accepts(&Type::VARCHAR));
        assert!(!<AsText<Side> as FromSql>::accepts(&Type::INT8));
    }

    #[test]
    fn a_text_that_does_not_parse_is_an_error_with_the_parse_message() {
        let err = AsText::<Side>::from_sql(&Type::TEXT, b"hold").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("expected buy or sell"), "{message}");
        assert!(message.contains("Side"), "{message}");
        assert!(!message.contains("hold"), "{message}");
    }

    #[test]
    fn a_text_backed_columns_filters_take_the_type_and_compare_its_text() {
        struct Order;
        const SIDE: Column<Order, AsText<Side>> = Column::new("side");
        assert_eq!(SIDE.eq(Side::Buy), Filter::eq("side", "buy"));
        assert_eq!(
            SIDE.is_in([Side::Buy, Side::Sell]),
            Filter::is_in("side", ["buy", "sell"])
        );
    }
}
