//! SQL: each model's statements, built once at open from the registry,
//! values always bound as parameters.

mod aggregate;
mod batch;
mod include;
mod search;
mod statement;
mod table;
mod types;

pub(crate) use aggregate::Aggregation;
pub use batch::{OnConflict, COPY_MIN_ROWS, MAX_BATCH_ROWS};
pub(crate) use include::{Includes, Step};
pub(crate) use search::search_vector_column;
pub(crate) use statement::{Param, Statement, Statements};
pub(crate) use table::{Catalog, Listing, Table};
pub(crate) use types::{citext_schema, TypeNames};
