//! One statement: its text with `$n` placeholders and its bound
//! parameters (values are never spliced into the text), and how
//! statements reach the server.

use std::error::Error as StdError;
use std::sync::Arc;

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::error::{Error, Result};
use crate::schema::Value;
use crate::telemetry::bound_values_logged;

/// PostgreSQL's limit on bind parameters in one statement.
pub(crate) const MAX_PARAMS: usize = u16::MAX as usize;
/// A bound parameter: one value, or a list bound as one array (`= ANY($n)`).
pub(crate) enum Param {
    One(Value),
    List(Vec<Value>),
}

/// What the driver logs of a parameter: its type only (`<text>`, `NULL`,
/// `[3 values]`), unless [`crate::log_bound_values`] is on.
impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Param::One(value) if bound_values_logged() => value.fmt(f),
            Param::List(values) if bound_values_logged() => values.fmt(f),
            Param::One(Value::Null) => f.write_str("NULL"),
            Param::One(value) => write!(f, "<{}>", value.type_name()),
            Param::List(values) => write!(f, "[{} values]", values.len()),
        }
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Param::One(v) => v.to_sql(ty, out),
            Param::List(vs) => vs.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Append the placeholder `$n`: without `fmt`, since every write runs this
/// once per field.
pub(super) fn push_placeholder(sql: &mut String, n: usize) {
    sql.push('$');
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    sql.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// A statement's text: one its table keeps (shared, not copied for each
/// statement) or one written for this statement.
#[derive(Debug)]
pub(crate) enum Sql {
    Kept(Arc<str>),
    Written(String),
}

impl std::ops::Deref for Sql {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Sql::Kept(text) => text,
            Sql::Written(text) => text,
        }
    }
}

/// How statements reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Statements {
    /// Prepared once per connection (named, kept in the connection's
    /// bounded cache, see `super::prepared`) and then only bound and
    /// executed: half the server work of an unnamed statement for a
    /// primary-key read. For direct connections.
    Prepared,
    /// Unnamed (`query_typed`: parse, bind and execute in one round trip),
    /// nothing kept on the server between statements: safe behind a
    /// transaction-pooling PgBouncer.
    Unnamed,
}

/// One statement: text with `$n` placeholders, and its typed parameters.
#[derive(Debug)]
pub(crate) struct Statement {
    pub(crate) sql: Sql,
    pub(crate) params: Vec<(Param, Type)>,
}

impl Statement {
    /// No text yet, no parameters.
    pub(super) fn new() -> Statement {
        Statement {
            sql: Sql::Written(String::new()),
            params: Vec::new(),
        }
    }

    /// The value of its first parameter when that is one value (a read by
    /// id's key).
    pub(crate) fn first_value(&self) -> Option<&Value> {
        match self.params.first() {
            Some((Param::One(value), _)) => Some(value),
            _ => None,
        }
    }

    /// Add a parameter and return its placeholder.
    pub(super) fn bind(&mut self, param: Param, ty: Type) -> String {
        self.params.push((param, ty));
        format!("${}", self.params.len())
    }

    /// Add a parameter and append its placeholder to `sql`.
    pub(super) fn push_bound(&mut self, sql: &mut String, param: Param, ty: Type) {
        self.params.push((param, ty));
        push_placeholder(sql, self.params.len());
    }

    pub(super) fn checked(self) -> Result<Statement> {
        if self.params.len() > MAX_PARAMS {
            return Err(Error::invalid_input(format!(
                "the statement would need {} bind parameters; PostgreSQL allows {MAX_PARAMS}",
                self.params.len()
            )));
        }
        Ok(self)
    }
}

impl Param {
    pub(super) fn duplicate(&self) -> Param {
        match self {
            Param::One(v) => Param::One(v.clone()),
            Param::List(vs) => Param::List(vs.clone()),
        }
    }
}
