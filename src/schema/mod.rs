//! What the adapter knows of the data: models and their registry, values,
//! records (rows), and queries (filters, sorts, pages).

mod aggregate;
mod bounds;
mod cursor;
mod enums;
mod ident;
mod include;
mod interval;
mod model;
mod query;
mod record;
pub(crate) mod tagged;
mod value;

pub use aggregate::{Aggregate, AggregateFn, AggregateOutput, MAX_AGGREGATES, MAX_GROUP_FIELDS};
pub use bounds::QueryBounds;
pub(crate) use cursor::Keyset;
pub use cursor::{Cursor, MAX_CURSOR_LEN};
#[doc(hidden)]
pub use enums::{enum_accepts, enum_from_sql};
pub use enums::{EnumType, PgEnum};
pub(crate) use ident::{fnv1a, push_ident, push_literal, quote_ident, validate_identifier};
pub use include::Included;
pub(crate) use include::{include_paths, record_of, Key, Related};
pub use interval::Interval;
pub use model::{
    ColumnDefault, Field, Index, Model, OnDelete, PrimaryKey, Reference, Registry, CREATED_AT,
    DEFAULT_SEARCH_LANGUAGE, DELETED_AT, ID, SEARCH_VECTOR, UPDATED_AT,
};
pub(crate) use query::DeletedRows;
pub use query::{CmpOp, Direction, Filter, Page, Query, Sort, TextMatch, DEFAULT_LIMIT, MAX_PAGE};
pub(crate) use record::Columns;
pub use record::{Record, RecordIntoIter};
pub use value::{ArrayElement, Elem, FieldType, FromValue, Value, MAX_JSON_DEPTH};
