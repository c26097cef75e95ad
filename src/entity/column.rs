//! [`Column`]: a model's column as a typed constant, so that a filter or a
//! sort naming a column that does not exist fails to compile.

use std::marker::PhantomData;

use crate::schema::{Filter, Value};

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
    types: PhantomData<fn() -> (E, V)>,
}

impl<E, V> Column<E, V> {
    /// The column `name` (what the derive writes; not checked here).
    pub const fn new(name: &'static str) -> Column<E, V> {
        Column {
            name,
            types: PhantomData,
        }
    }

    /// The column's name.
    pub const fn name(&self) -> &'static str {
        self.name
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
    pub fn is_in(self, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::is_in(self.name, values.into_iter().map(Into::into))
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
