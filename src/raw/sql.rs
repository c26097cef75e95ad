//! [`Sql`]: a statement the application writes itself, with its bound
//! parameters, and the checks it passes before it is sent.

use std::any::Any;
use std::error::Error as StdError;

use bytes::BytesMut;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type};

use crate::error::{Error, Result};
use crate::schema::{quote_ident, validate_identifier, Elem, FieldType, Value};
use crate::sql::Statements;
use crate::telemetry::bound_values_logged;

/// PostgreSQL's limit on bind parameters in one statement.
const MAX_PARAMS: usize = u16::MAX as usize;

/// A statement written by hand: SQL text with `$1`, `$2`, … placeholders
/// and the values bound to them, in order. Values are always sent as
/// parameters, never spliced into the text; splice an identifier only
/// through [`quote_identifier`].
///
/// Each parameter is typed from its Rust type, as sqlx does: `i64` is sent
/// as `int8`, `String` and `&str` as `text`, `Uuid` as `uuid`,
/// `DateTime<Utc>` as `timestamptz`, `Vec<i64>` as `int8[]`, and so on
/// (PostgreSQL compares `int4` columns with `int8` values using their
/// indexes). A column of another type takes a cast in the SQL
/// (`$1::citext`, `$1::mood`). A type that cannot be told from the Rust
/// type (an application's own `ToSql` type, such as a Postgres enum) is
/// left for the server to infer on a direct connection; behind a
/// transaction-pooling PgBouncer it must be named with [`Sql::bind_as`] or
/// bound as text with a cast.
///
/// ```
/// use pgactor::Sql;
/// let sql = Sql::new("SELECT sku, quantity FROM stock_balance WHERE quantity >= $1 AND sku = ANY($2)")
///     .bind(5_i64)
///     .bind(vec!["A-1".to_owned(), "B-2".to_owned()]);
/// assert_eq!(sql.params(), 2);
/// ```
pub struct Sql {
    text: String,
    params: Vec<Bound>,
}

impl Sql {
    /// A statement with no parameters bound yet.
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// Bind the next parameter (`$1` first), typed from its Rust type.
    pub fn bind<T: ToSql + Send + Sync + 'static>(mut self, value: T) -> Sql {
        let ty = wire_type(&value);
        self.push(Box::new(value), ty, std::any::type_name::<T>());
        self
    }

    /// Bind the next parameter as PostgreSQL type `ty`: for a value whose
    /// Rust type names no single PostgreSQL type.
    ///
    /// ```
    /// use pgactor::{types::Type, Sql};
    /// let sql = Sql::new("SELECT $1::text").bind_as("7".to_owned(), Type::VARCHAR);
    /// assert_eq!(sql.params(), 1);
    /// ```
    pub fn bind_as<T: ToSql + Send + Sync + 'static>(mut self, value: T, ty: Type) -> Sql {
        self.push(Box::new(value), Some(ty), std::any::type_name::<T>());
        self
    }

    fn push(&mut self, value: Box<dyn ToSql + Send + Sync>, ty: Option<Type>, rust: &'static str) {
        let at = self.params.len() + 1;
        self.params.push(Bound {
            value,
            ty,
            rust,
            at,
        });
    }

    /// The SQL text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many parameters are bound.
    pub fn params(&self) -> usize {
        self.params.len()
    }

    /// How the statement is sent on a connection whose statements go as
    /// `pool` says: so, unless it is a `FETCH`, which is never kept
    /// prepared. The server describes a prepared statement's rows once,
    /// from the cursor of that moment, and a cursor declared again under
    /// the same name with other columns would be read with the old
    /// description.
    pub(crate) fn mode(&self, pool: Statements) -> Statements {
        let first = self
            .text
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next();
        match first {
            Some(word) if word.eq_ignore_ascii_case("fetch") => Statements::Unnamed,
            _ => pool,
        }
    }

    /// The same statement behind `prefix` (`DECLARE … CURSOR FOR `), its
    /// parameters kept.
    pub(crate) fn prefixed(mut self, prefix: &str) -> Sql {
        self.text.insert_str(0, prefix);
        self
    }

    /// Refuse what the server would refuse anyway, before anything is
    /// sent: an empty text, a NUL byte in it, more parameters than
    /// PostgreSQL takes.
    pub(crate) fn checked(self) -> Result<Sql> {
        if self.text.trim().is_empty() {
            return Err(Error::invalid_input("the SQL text is empty"));
        }
        if self.text.contains('\0') {
            return Err(Error::invalid_input(
                "the SQL text contains a NUL byte, which PostgreSQL does not accept",
            ));
        }
        if self.params.len() > MAX_PARAMS {
            return Err(Error::invalid_input(format!(
                "{} parameters are bound; PostgreSQL allows {MAX_PARAMS}",
                self.params.len()
            )));
        }
        Ok(self)
    }

    /// The parameters' types as sent: each unknown one left for the server
    /// to infer ([`unspecified`]), unless `unnamed` (an unnamed statement,
    /// behind a transaction-pooling PgBouncer, needs every type up front:
    /// refused then).
    pub(crate) fn wire_types(&self, unnamed: bool) -> Result<Vec<Type>> {
        self.params
            .iter()
            .map(|p| match &p.ty {
                Some(ty) => Ok(ty.clone()),
                None if !unnamed => Ok(unspecified()),
                None => Err(Error::invalid_input(format!(
                    "parameter ${} ({}) has no PostgreSQL type pgactor can tell, and unnamed \
                     statements (behind a transaction-pooling PgBouncer) need one: bind it with \
                     Sql::bind_as, or bind it as text and cast it in the SQL (${}::type)",
                    p.at, p.rust, p.at
                ))),
            })
            .collect()
    }

    /// The parameters, in the form the driver takes.
    pub(crate) fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The type of a parameter left for the server to infer (OID 0 in the
/// Parse message).
pub(crate) fn unspecified() -> Type {
    Type::new("unspecified".into(), 0, Kind::Pseudo, "pg_catalog".into())
}

impl From<&str> for Sql {
    fn from(text: &str) -> Sql {
        Sql::new(text)
    }
}

impl From<String> for Sql {
    fn from(text: String) -> Sql {
        Sql::new(text)
    }
}

/// Shows the text and each parameter's type, not its value (unless
/// [`crate::log_bound_values`] is on).
impl std::fmt::Debug for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sql")
            .field("text", &self.text)
            .field("params", &self.params)
            .finish()
    }
}

/// A bound parameter: its value, its type (when known before the server
/// is asked), and where it stands, for errors.
struct Bound {
    value: Box<dyn ToSql + Send + Sync>,
    ty: Option<Type>,
    /// The Rust type's name.
    rust: &'static str,
    /// Its placeholder's number.
    at: usize,
}

/// What the driver logs of a parameter: its type, unless
/// [`crate::log_bound_values`] is on.
impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if bound_values_logged() {
            return self.value.fmt(f);
        }
        match &self.ty {
            Some(ty) => write!(f, "<{ty}>"),
            None => write!(f, "<{}>", self.rust),
        }
    }
}

impl ToSql for Bound {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        self.to_sql_checked(ty, out)
    }

    /// The value checks the type itself, in `to_sql_checked`.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        self.value.encode_format(ty)
    }

    /// The value's own check and encoding; a refusal is a [`BindError`],
    /// told apart from the driver's other errors: nothing was sent.
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        self.value.to_sql_checked(ty, out).map_err(|cause| {
            Box::new(BindError(format!(
                "parameter ${} ({}) cannot be sent as {ty}: {cause}",
                self.at, self.rust
            ))) as Box<dyn StdError + Sync + Send>
        })
    }
}

/// A parameter the driver could not encode for the type the statement
/// takes: the statement was not sent.
#[derive(Debug)]
pub(crate) struct BindError(String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for BindError {}

impl BindError {
    /// The [`BindError`] behind a driver error, if that is what it is.
    pub(crate) fn behind(err: &tokio_postgres::Error) -> Option<&BindError> {
        StdError::source(err).and_then(|cause| cause.downcast_ref::<BindError>())
    }
}

/// The types a Rust value is sent as, most specific first: the first one
/// its `ToSql` takes.
const WIRE_TYPES: &[Type] = &[
    Type::BOOL,
    Type::INT8,
    Type::INT4,
    Type::INT2,
    Type::FLOAT8,
    Type::FLOAT4,
    Type::NUMERIC,
    Type::TEXT,
    Type::BYTEA,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMP,
    Type::DATE,
    Type::TIME,
    Type::JSONB,
    Type::INET,
    Type::INTERVAL,
    Type::CHAR,
    Type::OID,
    Type::BOOL_ARRAY,
    Type::INT8_ARRAY,
    Type::INT4_ARRAY,
    Type::INT2_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::NUMERIC_ARRAY,
    Type::TEXT_ARRAY,
    Type::BYTEA_ARRAY,
    Type::UUID_ARRAY,
    Type::TIMESTAMPTZ_ARRAY,
    Type::TIMESTAMP_ARRAY,
    Type::DATE_ARRAY,
    Type::TIME_ARRAY,
    Type::JSONB_ARRAY,
    Type::INET_ARRAY,
];

/// The type `value` is sent as: by its variant for a [`Value`] (none for
/// NULL), else the first of [`WIRE_TYPES`] its Rust type takes. A type that
/// takes any type (a wrapper that defers the check) tells nothing.
fn wire_type<T: ToSql + 'static>(value: &T) -> Option<Type> {
    if let Some(value) = (value as &dyn Any).downcast_ref::<Value>() {
        return value_type(value);
    }
    if T::accepts(&Type::BOOL) && T::accepts(&Type::UUID) {
        return None;
    }
    WIRE_TYPES.iter().find(|ty| T::accepts(ty)).cloned()
}

/// The type a [`Value`] is sent as.
fn value_type(value: &Value) -> Option<Type> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(_) => Type::BOOL,
        Value::I16(_) => Type::INT2,
        Value::I32(_) => Type::INT4,
        Value::I64(_) => Type::INT8,
        Value::F32(_) => Type::FLOAT4,
        Value::F64(_) => Type::FLOAT8,
        Value::Numeric(_) => Type::NUMERIC,
        Value::Text(_) => Type::TEXT,
        Value::Bytes(_) => Type::BYTEA,
        Value::Uuid(_) => Type::UUID,
        Value::Timestamptz(_) => Type::TIMESTAMPTZ,
        Value::Date(_) => Type::DATE,
        Value::Timestamp(_) => Type::TIMESTAMP,
        Value::Time(_) => Type::TIME,
        Value::Inet(_) => Type::INET,
        Value::Interval(_) => Type::INTERVAL,
        Value::Json(_) | Value::JsonText(_) => Type::JSONB,
        // Typed by its first element that is not NULL; an empty or
        // all-NULL array is left to the server, as NULL is.
        Value::Array(items) => {
            let member = items.iter().find_map(value_type)?;
            FieldType::Array(Elem::of_wire_type(&member)?).pg_type()
        }
    })
}

/// `name` double-quoted as an SQL identifier, for a table or column name
/// that must be spliced into [`Sql`] text (values never are: bind them).
/// Only plain identifiers pass (`[A-Za-z_][A-Za-z0-9_$]*`, at most 63
/// bytes); anything else is [`crate::ErrorKind::InvalidInput`]. Quoted, the
/// name keeps its case.
///
/// ```
/// use pgactor::{quote_identifier, Sql};
/// let column = quote_identifier("quantity")?;
/// let sql = Sql::new(format!("SELECT sum({column}) FROM stock_balance"));
/// assert_eq!(sql.text(), "SELECT sum(\"quantity\") FROM stock_balance");
/// assert!(quote_identifier("x\"; DROP TABLE t; --").is_err());
/// # Ok::<(), pgactor::Error>(())
/// ```
pub fn quote_identifier(name: &str) -> Result<String> {
    validate_identifier(name).map_err(Error::invalid_input)?;
    Ok(quote_ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_statements_are_never_kept_prepared() {
        let mode = |text: &str| Sql::new(text).mode(Statements::Prepared);
        for text in ["FETCH 10 FROM c", "  fetch next from c", "Fetch\tall in c"] {
            assert_eq!(mode(text), Statements::Unnamed, "{text:?}");
        }
        for text in [
            "SELECT 1",
            "fetcher",
            "WITH f AS (SELECT 1) SELECT * FROM f",
        ] {
            assert_eq!(mode(text), Statements::Prepared, "{text:?}");
        }
    }
    use chrono::{DateTime, NaiveDateTime, Utc};
    use uuid::Uuid;

    fn sent_as<T: ToSql + Send + Sync + 'static>(value: T) -> Option<Type> {
        Sql::new("x").bind(value).params[0].ty.clone()
    }

    #[test]
    fn parameters_are_typed_from_their_rust_type() {
        assert_eq!(sent_as(1_i64), Some(Type::INT8));
        assert_eq!(sent_as(1_i32), Some(Type::INT4));
        assert_eq!(sent_as(1_i16), Some(Type::INT2));
        assert_eq!(sent_as(1.5_f64), Some(Type::FLOAT8));
        assert_eq!(sent_as(true), Some(Type::BOOL));
        assert_eq!(sent_as("a"), Some(Type::TEXT));
        assert_eq!(sent_as(String::from("a")), Some(Type::TEXT));
        assert_eq!(sent_as(vec![1_u8]), Some(Type::BYTEA));
        assert_eq!(sent_as(Uuid::nil()), Some(Type::UUID));
        assert_eq!(sent_as(DateTime::<Utc>::MIN_UTC), Some(Type::TIMESTAMPTZ));
        assert_eq!(sent_as(NaiveDateTime::MIN), Some(Type::TIMESTAMP));
        assert_eq!(sent_as(serde_json::json!({})), Some(Type::JSONB));
        assert_eq!(sent_as(vec![1_i64]), Some(Type::INT8_ARRAY));
        assert_eq!(sent_as(vec!["a".to_owned()]), Some(Type::TEXT_ARRAY));
        assert_eq!(sent_as(None::<i32>), Some(Type::INT4));
        assert_eq!(sent_as(Value::I32(1)), Some(Type::INT4));
        assert_eq!(sent_as(Value::Null), None);
    }

    #[test]
    fn unnamed_statements_need_every_type_and_say_which_is_missing() {
        let sql = Sql::new("SELECT $1, $2").bind(1_i64).bind(Value::Null);
        let err = sql.wire_types(true).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("parameter $2"), "{err}");
        // On a direct connection the server infers it.
        assert_eq!(sql.wire_types(false).unwrap(), [Type::INT8, unspecified()]);
    }

    #[test]
    fn a_statement_the_server_would_refuse_is_refused_before_sending() {
        for text in ["", "   ", "SELECT '\0'"] {
            let err = Sql::new(text).checked().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{text:?}");
        }
        assert!(Sql::new("SELECT 1").checked().is_ok());
    }

    #[test]
    fn parameter_values_stay_out_of_debug() {
        let sql = Sql::new("SELECT $1").bind("secret-token");
        let shown = format!("{sql:?}");
        assert!(
            shown.contains("<text>") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
