//! SQL: each model's statements, built once at open from the registry,
//! values always bound as parameters.

mod statement;
mod table;

pub(crate) use statement::{Statement, Statements};
pub(crate) use table::{Catalog, Listing, Table};
