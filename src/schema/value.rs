//! Typed column values: what crosses the API, how it binds, how it decodes.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::net::IpAddr;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, Kind, ToSql, Type};
use uuid::Uuid;

use super::enums::EnumType;
use super::ident::{quote_ident, quote_type_name};
use super::interval::Interval;
use crate::error::{Error, Result};

/// One column value. Every variant maps to one PostgreSQL type.
///
/// Build values with `From`: `Value::from(5_i64)`, `Value::from("text")`,
/// `Value::from(None::<i64>)` for NULL.
///
/// ```
/// use pgactor::Value;
/// assert_eq!(Value::from(7_i64), Value::I64(7));
/// assert_eq!(Value::from(Some("a")), Value::Text("a".into()));
/// assert_eq!(Value::from(None::<bool>), Value::Null);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `boolean`
    Bool(bool),
    /// `smallint`
    I16(i16),
    /// `integer`
    I32(i32),
    /// `bigint`
    I64(i64),
    /// `real`
    F32(f32),
    /// `double precision`
    F64(f64),
    /// `numeric` (NaN and infinities are not representable)
    Numeric(Decimal),
    /// `text` or `varchar`
    Text(String),
    /// `bytea`
    Bytes(Vec<u8>),
    /// `uuid`
    Uuid(Uuid),
    /// `timestamptz`
    Timestamptz(DateTime<Utc>),
    /// `date`
    Date(NaiveDate),
    /// `timestamp` (without time zone)
    Timestamp(NaiveDateTime),
    /// `time` (without time zone)
    Time(NaiveTime),
    /// `inet`: an address (a netmask the column holds is not kept)
    Inet(IpAddr),
    /// `interval`: months, days and microseconds
    Interval(Interval),
    /// `jsonb`, nested at most [`MAX_JSON_DEPTH`] levels (a deeper tree is
    /// refused with [`crate::ErrorKind::InvalidInput`] before anything is sent).
    Json(serde_json::Value),
    /// `jsonb` nested deeper than [`MAX_JSON_DEPTH`], kept as its JSON
    /// text: what a read answers for such a document (another client
    /// wrote it), and a way to write one. Not parsed into a tree:
    /// serde_json parses no deeper, and a tree that deep would risk the
    /// stack in its recursive `Drop`, `Clone` and `Debug`.
    JsonText(String),
    /// An array column (`bigint[]`, …): one dimension, its elements all of
    /// the field's [`Elem`] kind or NULL. Built from a `Vec` (`Value::from(vec![1_i64, 2])`);
    /// an array nested in one is refused with
    /// [`crate::ErrorKind::InvalidInput`].
    Array(Vec<Value>),
}

/// The deepest `jsonb` document held as a [`Value::Json`] tree: arrays and
/// objects nested 127 levels (serde_json's own parsing limit). Deeper ones
/// are read as [`Value::JsonText`] and written only as that.
pub const MAX_JSON_DEPTH: usize = 127;

/// How a [`Value::Timestamp`] is written as text (JSON, serde): ISO 8601
/// without an offset, as chrono's serde writes a `NaiveDateTime`
/// (`2025-07-01T12:30:05.250`), and read back.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f";

/// The column types a model field can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `boolean` ↔ `bool`
    Bool,
    /// `smallint` ↔ `i16`
    I16,
    /// `integer` ↔ `i32`
    I32,
    /// `bigint` ↔ `i64`
    I64,
    /// `real` ↔ `f32`
    F32,
    /// `double precision` ↔ `f64`
    F64,
    /// `numeric` ↔ [`rust_decimal::Decimal`]
    Numeric,
    /// `text` ↔ `String`
    Text,
    /// `varchar(n)` ↔ `String`, at most `n` characters
    Varchar(u32),
    /// `bytea` ↔ `Vec<u8>`
    Bytes,
    /// `uuid` ↔ [`uuid::Uuid`]
    Uuid,
    /// `timestamptz` ↔ `chrono::DateTime<Utc>`
    Timestamptz,
    /// `date` ↔ `chrono::NaiveDate`
    Date,
    /// `timestamp` (without time zone) ↔ `chrono::NaiveDateTime`,
    /// microsecond precision (finer digits are rounded by the server)
    Timestamp,
    /// `time` (without time zone) ↔ `chrono::NaiveTime`, microsecond
    /// precision (finer digits are rounded by the server)
    Time,
    /// `inet` ↔ [`std::net::IpAddr`]: a host address. A netmask written by
    /// another client (`10.0.0.0/8`) is dropped when the value is read.
    Inet,
    /// `interval` ↔ [`Interval`] (months, days and microseconds, kept
    /// apart). Its sorts and comparisons are PostgreSQL's: a month counts
    /// as 30 days and a day as 24 hours, so `P1M` and `P30D` compare equal.
    Interval,
    /// A PostgreSQL enum type ([`EnumType`], made by AutoMigrate in the
    /// adapter's schema) ↔ `String`, one of its labels (a Rust enum with
    /// `#[derive(pgactor::PgEnum)]`). Any other text is refused before
    /// SQL; sorts and comparisons follow the labels' order.
    Enum(&'static EnumType),
    /// `citext` (the extension's case-insensitive text, which AutoMigrate
    /// installs) ↔ `String`: equality, unique indexes, sorts and
    /// comparisons ignore case; the text reads back as written.
    Citext,
    /// A type the database has and pgactor does not know (an extension's,
    /// such as `ltree` or `hstore`, or your own), named as SQL names it,
    /// schema-qualified if needed (`"public.ltree"`; each part a plain
    /// identifier, quoted as written) ↔ `String`, the value's text form.
    /// Values travel as text and are cast to the type by the server, so
    /// its input and output functions decide what is valid; filters
    /// compare with the type's own operators. Not in a batch COPY
    /// (`create_many_count` inserts instead), nor in a cursor's sort key.
    Custom(&'static str),
    /// `jsonb` ↔ `serde_json::Value`
    Json,
    /// A one-dimensional array of `Elem` (`bigint[]` ↔ `Vec<i64>`), its
    /// elements NULL or not (`Vec<Option<i64>>`). Filters compare whole
    /// arrays; an `IN` list of arrays is refused.
    Array(Elem),
}

/// The element kinds of a [`FieldType::Array`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    /// `boolean[]` ↔ `Vec<bool>`
    Bool,
    /// `smallint[]` ↔ `Vec<i16>`
    I16,
    /// `integer[]` ↔ `Vec<i32>`
    I32,
    /// `bigint[]` ↔ `Vec<i64>`
    I64,
    /// `double precision[]` ↔ `Vec<f64>`
    F64,
    /// `numeric[]` ↔ `Vec<Decimal>`
    Numeric,
    /// `text[]` ↔ `Vec<String>`
    Text,
    /// `uuid[]` ↔ `Vec<Uuid>`
    Uuid,
    /// `timestamptz[]` ↔ `Vec<DateTime<Utc>>`
    Timestamptz,
    /// `date[]` ↔ `Vec<NaiveDate>`
    Date,
}

impl Elem {
    const ALL: [Elem; 10] = [
        Elem::Bool,
        Elem::I16,
        Elem::I32,
        Elem::I64,
        Elem::F64,
        Elem::Numeric,
        Elem::Text,
        Elem::Uuid,
        Elem::Timestamptz,
        Elem::Date,
    ];

    /// The field type of one element.
    pub fn field_type(self) -> FieldType {
        match self {
            Elem::Bool => FieldType::Bool,
            Elem::I16 => FieldType::I16,
            Elem::I32 => FieldType::I32,
            Elem::I64 => FieldType::I64,
            Elem::F64 => FieldType::F64,
            Elem::Numeric => FieldType::Numeric,
            Elem::Text => FieldType::Text,
            Elem::Uuid => FieldType::Uuid,
            Elem::Timestamptz => FieldType::Timestamptz,
            Elem::Date => FieldType::Date,
        }
    }

    /// The element kind whose elements are sent as wire type `ty`.
    pub(crate) fn of_wire_type(ty: &Type) -> Option<Elem> {
        Elem::ALL
            .into_iter()
            .find(|elem| elem.field_type().pg_type() == *ty)
    }
}

impl FieldType {
    /// The type as written in DDL.
    pub(crate) fn sql(self) -> String {
        match self {
            FieldType::Bool => "boolean".into(),
            FieldType::I16 => "smallint".into(),
            FieldType::I32 => "integer".into(),
            FieldType::I64 => "bigint".into(),
            FieldType::F32 => "real".into(),
            FieldType::F64 => "double precision".into(),
            FieldType::Numeric => "numeric".into(),
            FieldType::Text => "text".into(),
            FieldType::Varchar(n) => format!("varchar({n})"),
            FieldType::Bytes => "bytea".into(),
            FieldType::Uuid => "uuid".into(),
            FieldType::Timestamptz => "timestamptz".into(),
            FieldType::Date => "date".into(),
            FieldType::Timestamp => "timestamp".into(),
            FieldType::Time => "time".into(),
            FieldType::Inet => "inet".into(),
            FieldType::Interval => "interval".into(),
            FieldType::Enum(ty) => quote_ident(ty.name()),
            FieldType::Citext => "citext".into(),
            FieldType::Custom(name) => quote_type_name(name),
            FieldType::Json => "jsonb".into(),
            FieldType::Array(elem) => format!("{}[]", elem.field_type().sql()),
        }
    }

    /// Whether values of the type travel as text and are cast to it in
    /// SQL (`$1::"schema"."mood"`), and read back as text (`"mood"::text`):
    /// the types whose wire type the driver would have to look up in the
    /// database (an enum's, citext's and a custom type's OID differ from
    /// one database to the next), which a transaction-pooling bouncer
    /// forbids (the lookup is a named statement).
    pub(crate) fn travels_as_text(self) -> bool {
        matches!(
            self,
            FieldType::Enum(_) | FieldType::Citext | FieldType::Custom(_)
        )
    }

    /// Whether the catalog's `format_type()` text `found` is this type:
    /// its catalog name, or for a named type (enum, citext, custom) the
    /// same name in any schema (the catalog qualifies a type that is not
    /// on the search path).
    pub(crate) fn catalog_matches(self, found: &str) -> bool {
        let last = |name: &str| {
            name.rsplit('.')
                .next()
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned()
        };
        found == self.catalog_name()
            || (self.travels_as_text() && last(found) == last(&self.catalog_name()))
    }

    /// The type as the catalog's `format_type()` spells it, to spot drift.
    pub(crate) fn catalog_name(self) -> String {
        match self {
            FieldType::Varchar(n) => format!("character varying({n})"),
            FieldType::Timestamptz => "timestamp with time zone".into(),
            FieldType::Timestamp => "timestamp without time zone".into(),
            FieldType::Time => "time without time zone".into(),
            FieldType::Enum(ty) => ty.name().into(),
            FieldType::Custom(name) => name.into(),
            FieldType::Array(elem) => format!("{}[]", elem.field_type().catalog_name()),
            other => other.sql(),
        }
    }

    /// The wire type a parameter of this field is bound as.
    pub(crate) fn pg_type(self) -> Type {
        match self {
            FieldType::Bool => Type::BOOL,
            FieldType::I16 => Type::INT2,
            FieldType::I32 => Type::INT4,
            FieldType::I64 => Type::INT8,
            FieldType::F32 => Type::FLOAT4,
            FieldType::F64 => Type::FLOAT8,
            FieldType::Numeric => Type::NUMERIC,
            FieldType::Text => Type::TEXT,
            FieldType::Varchar(_) => Type::VARCHAR,
            FieldType::Bytes => Type::BYTEA,
            FieldType::Uuid => Type::UUID,
            FieldType::Timestamptz => Type::TIMESTAMPTZ,
            FieldType::Date => Type::DATE,
            FieldType::Timestamp => Type::TIMESTAMP,
            FieldType::Time => Type::TIME,
            FieldType::Inet => Type::INET,
            FieldType::Interval => Type::INTERVAL,
            FieldType::Enum(_) | FieldType::Citext | FieldType::Custom(_) => Type::TEXT,
            FieldType::Json => Type::JSONB,
            // An element is a scalar, which has an array type.
            FieldType::Array(elem) => elem.field_type().pg_array_type().unwrap_or(Type::UNKNOWN),
        }
    }

    /// The array type used to bind an `IN` list of this field as one
    /// parameter; `None` for an array field (arrays of arrays are
    /// multidimensional in PostgreSQL, not lists of arrays).
    pub(crate) fn pg_array_type(self) -> Option<Type> {
        Some(match self {
            FieldType::Bool => Type::BOOL_ARRAY,
            FieldType::I16 => Type::INT2_ARRAY,
            FieldType::I32 => Type::INT4_ARRAY,
            FieldType::I64 => Type::INT8_ARRAY,
            FieldType::F32 => Type::FLOAT4_ARRAY,
            FieldType::F64 => Type::FLOAT8_ARRAY,
            FieldType::Numeric => Type::NUMERIC_ARRAY,
            FieldType::Text => Type::TEXT_ARRAY,
            FieldType::Varchar(_) => Type::VARCHAR_ARRAY,
            FieldType::Bytes => Type::BYTEA_ARRAY,
            FieldType::Uuid => Type::UUID_ARRAY,
            FieldType::Timestamptz => Type::TIMESTAMPTZ_ARRAY,
            FieldType::Date => Type::DATE_ARRAY,
            FieldType::Timestamp => Type::TIMESTAMP_ARRAY,
            FieldType::Time => Type::TIME_ARRAY,
            FieldType::Inet => Type::INET_ARRAY,
            FieldType::Interval => Type::INTERVAL_ARRAY,
            FieldType::Enum(_) | FieldType::Citext | FieldType::Custom(_) => Type::TEXT_ARRAY,
            FieldType::Json => Type::JSONB_ARRAY,
            FieldType::Array(_) => return None,
        })
    }

    /// True for the types arithmetic applies to: integers, `numeric` and
    /// floating point.
    pub(crate) fn is_numeric(self) -> bool {
        use FieldType::*;
        matches!(self, I16 | I32 | I64 | Numeric | F32 | F64)
    }

    /// True for the types `LIKE` / `ILIKE` apply to.
    pub(crate) fn is_text(self) -> bool {
        matches!(self, FieldType::Text | FieldType::Varchar(_))
    }

    /// Check `value` against this type and return it in this type's exact
    /// variant. Integers widen or narrow when the number fits; integers become
    /// floats or numerics when exact. Everything else must match.
    pub(crate) fn coerce(self, field: &str, value: Value) -> Result<Value> {
        let mismatch = |value: &Value| {
            Error::invalid_input(format!(
                "field \"{field}\" is {} and cannot take {}",
                self.sql(),
                value.type_name()
            ))
        };
        // Messages name the field and its type, never the value: errors
        // are logged, and values are user data.
        let out_of_range = || {
            Error::invalid_input(format!(
                "the value is out of range for field \"{field}\" ({})",
                self.sql()
            ))
        };
        Ok(match (self, value) {
            (_, Value::Null) => Value::Null,
            (FieldType::Bool, v @ Value::Bool(_)) => v,
            (FieldType::I16 | FieldType::I32 | FieldType::I64, v) if v.as_i128().is_some() => {
                let n = v.as_i128().unwrap_or_default();
                match self {
                    FieldType::I16 => Value::I16(i16::try_from(n).map_err(|_| out_of_range())?),
                    FieldType::I32 => Value::I32(i32::try_from(n).map_err(|_| out_of_range())?),
                    _ => Value::I64(i64::try_from(n).map_err(|_| out_of_range())?),
                }
            }
            (FieldType::F32, Value::F32(f)) => Value::F32(f),
            (FieldType::F32, Value::F64(f)) if f.is_nan() || (f as f32) as f64 == f => {
                Value::F32(f as f32)
            }
            (FieldType::F64, Value::F64(f)) => Value::F64(f),
            (FieldType::F64, Value::F32(f)) => Value::F64(f as f64),
            (FieldType::F32 | FieldType::F64, v) if v.as_i128().is_some() => {
                let n = v.as_i128().unwrap_or_default();
                let exact = if self == FieldType::F32 {
                    1 << 24
                } else {
                    1 << 53
                };
                if n.abs() > exact {
                    return Err(Error::invalid_input(format!(
                        "the integer cannot be stored exactly in field \"{field}\" ({})",
                        self.sql()
                    )));
                }
                if self == FieldType::F32 {
                    Value::F32(n as f32)
                } else {
                    Value::F64(n as f64)
                }
            }
            (FieldType::Numeric, v @ Value::Numeric(_)) => v,
            (FieldType::Numeric, v) if v.as_i128().is_some() => {
                let n = v.as_i128().unwrap_or_default();
                Value::Numeric(Decimal::from_i128_with_scale(n, 0))
            }
            (FieldType::Text, Value::Text(s)) => Value::Text(checked_text(field, s)?),
            (FieldType::Varchar(max), Value::Text(s)) => {
                let s = checked_text(field, s)?;
                let len = s.chars().count();
                if len > max as usize {
                    return Err(Error::invalid_input(format!(
                        "field \"{field}\" is varchar({max}) and the value has {len} characters"
                    )));
                }
                Value::Text(s)
            }
            (FieldType::Bytes, v @ Value::Bytes(_)) => v,
            (FieldType::Uuid, v @ Value::Uuid(_)) => v,
            (FieldType::Timestamptz, v @ Value::Timestamptz(_)) => v,
            (FieldType::Date, v @ Value::Date(_)) => v,
            (FieldType::Timestamp, v @ Value::Timestamp(_)) => v,
            (FieldType::Time, v @ Value::Time(_)) => v,
            (FieldType::Inet, v @ Value::Inet(_)) => v,
            (FieldType::Interval, v @ Value::Interval(_)) => v,
            (FieldType::Enum(ty), Value::Text(s)) if ty.has(&s) => Value::Text(s),
            (FieldType::Enum(ty), Value::Text(_)) => {
                return Err(Error::invalid_input(format!(
                    "field \"{field}\": the text is no label of enum type \"{}\" ({})",
                    ty.name(),
                    ty.labels().join(", ")
                )))
            }
            (FieldType::Citext | FieldType::Custom(_), Value::Text(s)) => {
                Value::Text(checked_text(field, s)?)
            }
            (FieldType::Json, Value::Json(j)) => {
                // Checked first: the NUL check recurses.
                if tree_deeper_than(&j, MAX_JSON_DEPTH) {
                    return Err(Error::invalid_input(format!(
                        "field \"{field}\": jsonb nested deeper than {MAX_JSON_DEPTH} levels \
                         (MAX_JSON_DEPTH); write it as Value::JsonText"
                    )));
                }
                if json_has_nul(&j) {
                    return Err(Error::invalid_input(format!(
                        "field \"{field}\": jsonb cannot store a NUL character (\\u0000)"
                    )));
                }
                Value::Json(j)
            }
            (FieldType::Json, Value::JsonText(text)) => {
                if text.contains('\0') {
                    return Err(Error::invalid_input(format!(
                        "field \"{field}\": jsonb text cannot contain a NUL byte"
                    )));
                }
                Value::JsonText(text)
            }
            // An element's own type refuses a nested array: elements are scalars.
            (FieldType::Array(elem), Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .map(|item| elem.field_type().coerce(field, item))
                    .collect::<Result<_>>()?,
            ),
            (_, v) => return Err(mismatch(&v)),
        })
    }
}

fn checked_text(field: &str, s: String) -> Result<String> {
    if s.contains('\0') {
        return Err(Error::invalid_input(format!(
            "field \"{field}\": text cannot contain a NUL byte"
        )));
    }
    Ok(s)
}

/// Whether `tree` nests arrays and objects more than `max` levels (a lone
/// `[]` is one level). Iterative: the tree may be deeper than the stack.
fn tree_deeper_than(tree: &serde_json::Value, max: usize) -> bool {
    use serde_json::Value as J;
    let mut pending = vec![(tree, 0)];
    while let Some((value, above)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &J>> = match value {
            J::Array(items) => Box::new(items.iter()),
            J::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if above + 1 > max {
            return true;
        }
        pending.extend(children.map(|child| (child, above + 1)));
    }
    false
}

/// Whether the JSON `text` nests arrays and objects more than `max` levels.
fn text_deeper_than(text: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A `json` or `jsonb` column: a tree, or the text of a document nested
/// deeper than [`MAX_JSON_DEPTH`] (which serde_json refuses to parse).
fn json_from_sql(ty: &Type, raw: &[u8]) -> Result<Value, Box<dyn StdError + Sync + Send>> {
    match serde_json::Value::from_sql(ty, raw) {
        Ok(tree) => Ok(Value::Json(tree)),
        Err(err) => {
            // jsonb's binary form is a version byte, then the text.
            let text = if *ty == Type::JSONB {
                raw.get(1..).unwrap_or_default()
            } else {
                raw
            };
            if !text_deeper_than(text, MAX_JSON_DEPTH) {
                return Err(err);
            }
            Ok(Value::JsonText(String::from_utf8(text.to_vec())?))
        }
    }
}

fn json_has_nul(j: &serde_json::Value) -> bool {
    match j {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v))
        }
        _ => false,
    }
}

impl Value {
    /// The name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::I16(_) => "i16",
            Value::I32(_) => "i32",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Numeric(_) => "numeric",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Uuid(_) => "uuid",
            Value::Timestamptz(_) => "timestamptz",
            Value::Date(_) => "date",
            Value::Timestamp(_) => "timestamp",
            Value::Time(_) => "time",
            Value::Inet(_) => "inet",
            Value::Interval(_) => "interval",
            Value::Json(_) => "json",
            Value::JsonText(_) => "json text",
            Value::Array(_) => "array",
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    fn as_i128(&self) -> Option<i128> {
        match self {
            Value::I16(n) => Some(*n as i128),
            Value::I32(n) => Some(*n as i128),
            Value::I64(n) => Some(*n as i128),
            _ => None,
        }
    }

    /// The value as JSON, the way serde would write the matching Rust type:
    /// uuids, numerics, dates, times, IP addresses and timestamps as strings
    /// (a `timestamptz` in RFC 3339, a `timestamp` as
    /// `2025-07-01T12:30:05.250`, a time as `12:30:05.250`), bytes as an
    /// array of numbers. NaN and infinities become `null`; a
    /// [`Value::JsonText`] (too deep for a tree) becomes its text as a JSON
    /// string.
    ///
    /// A numeric is written as its decimal text (`"12.50"`), never through a
    /// float, so every digit and the scale come back unchanged, whichever
    /// serde features of `rust_decimal` the application turns on: a
    /// `Decimal` field reads a string with or without them.
    pub fn to_json(&self) -> serde_json::Value {
        // Cannot fail: a value writes no map with keys other than strings.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The text serde writes for a value whose Rust type serializes as a
    /// string: a text itself, a numeric's decimal text, a uuid hyphenated,
    /// a `timestamptz` in RFC 3339, a `timestamp` as
    /// `YYYY-MM-DDTHH:MM:SS[.f]`, a date as `YYYY-MM-DD`, a time as
    /// `HH:MM:SS[.f]`, an address as `192.0.2.1` or `2001:db8::1`, a
    /// [`Value::JsonText`] its JSON text. `None` for the other variants.
    pub(crate) fn serde_str(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            Value::Text(s) | Value::JsonText(s) => Cow::Borrowed(s),
            // Written here, not by `Decimal`'s `Serialize`: exact whatever
            // rust_decimal's features are.
            Value::Numeric(d) => Cow::Owned(d.to_string()),
            Value::Uuid(u) => Cow::Owned(u.to_string()),
            Value::Timestamptz(t) => Cow::Owned(t.to_rfc3339()),
            Value::Date(d) => Cow::Owned(d.format("%Y-%m-%d").to_string()),
            Value::Timestamp(t) => Cow::Owned(t.format(TIMESTAMP_FORMAT).to_string()),
            Value::Time(t) => Cow::Owned(t.to_string()),
            Value::Inet(ip) => Cow::Owned(ip.to_string()),
            Value::Interval(interval) => Cow::Owned(interval.to_string()),
            _ => return None,
        })
    }

    /// Read a JSON value (as serde writes Rust types) into a value of the
    /// given field type: the inverse of [`Value::to_json`].
    pub(crate) fn from_json(ty: FieldType, field: &str, json: serde_json::Value) -> Result<Value> {
        use serde_json::Value as J;
        let plain = match (ty, json) {
            (_, J::Null) => Plain::Null,
            (FieldType::Json, j) => return ty.coerce(field, Value::Json(j)),
            (FieldType::Array(elem), J::Array(items)) => {
                let items = items
                    .into_iter()
                    .map(|item| Value::from_json(elem.field_type(), field, item))
                    .collect::<Result<_>>()?;
                return ty.coerce(field, Value::Array(items));
            }
            (_, J::Bool(b)) => Plain::Bool(b),
            (_, J::Number(n)) => match n.as_i64() {
                Some(i) => Plain::Int(i),
                None if n.as_u64().is_some() => Plain::OutOfRange,
                None => Plain::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            (_, J::String(s)) => Plain::Str(Cow::Owned(s)),
            (_, J::Array(items)) => items
                .iter()
                .map(|x| x.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .map_or(Plain::Array, |bytes| Plain::Bytes(Cow::Owned(bytes))),
            (_, J::Object(_)) => Plain::Object,
        };
        Value::from_plain(ty, field, plain)
    }

    /// Read a value as serde gives it (see [`Plain`]) into a value of the
    /// given field type: strings parse as uuids, timestamps, dates, times
    /// and IP addresses (as [`Value::serde_str`] writes them) and numerics, an array of bytes is a `bytea`,
    /// and numbers convert as [`FieldType::coerce`] converts them. A
    /// `jsonb` field takes any JSON and is read by [`Value::from_json`].
    pub(crate) fn from_plain(ty: FieldType, field: &str, plain: Plain<'_>) -> Result<Value> {
        let unreadable = |what: &str| {
            Error::invalid_input(format!(
                "field \"{field}\" is {} and cannot take {what}",
                ty.sql()
            ))
        };
        let value = match (ty, plain) {
            (_, Plain::Null) => Value::Null,
            (FieldType::Bool, Plain::Bool(b)) => Value::Bool(b),
            (_, Plain::Int(i)) => Value::I64(i),
            (_, Plain::OutOfRange) => return Err(unreadable("a number out of range")),
            (_, Plain::Float(f)) => Value::F64(f),
            (
                FieldType::Text
                | FieldType::Varchar(_)
                | FieldType::Enum(_)
                | FieldType::Citext
                | FieldType::Custom(_),
                Plain::Str(s),
            ) => Value::Text(s.into_owned()),
            (FieldType::Interval, Plain::Str(s)) => Value::Interval(s.parse().map_err(|_| {
                unreadable("a string that is not an ISO 8601 interval (P1Y2M3DT4H5M6S)")
            })?),
            (FieldType::Uuid, Plain::Str(s)) => Value::Uuid(
                Uuid::parse_str(&s).map_err(|_| unreadable("a string that is not a uuid"))?,
            ),
            (FieldType::Timestamptz, Plain::Str(s)) => Value::Timestamptz(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|_| unreadable("a string that is not an RFC 3339 timestamp"))?
                    .with_timezone(&Utc),
            ),
            (FieldType::Date, Plain::Str(s)) => Value::Date(
                NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|_| unreadable("a string that is not a YYYY-MM-DD date"))?,
            ),
            (FieldType::Timestamp, Plain::Str(s)) => {
                Value::Timestamp(NaiveDateTime::parse_from_str(&s, TIMESTAMP_FORMAT).map_err(
                    |_| unreadable("a string that is not a YYYY-MM-DDTHH:MM:SS timestamp"),
                )?)
            }
            (FieldType::Time, Plain::Str(s)) => Value::Time(
                s.parse()
                    .map_err(|_| unreadable("a string that is not an HH:MM:SS time"))?,
            ),
            (FieldType::Inet, Plain::Str(s)) => Value::Inet(
                s.parse()
                    .map_err(|_| unreadable("a string that is not an IP address"))?,
            ),
            (FieldType::Numeric, Plain::Str(s)) => Value::Numeric(
                s.parse()
                    .map_err(|_| unreadable("a string that is not a number"))?,
            ),
            (FieldType::Bytes, Plain::Bytes(b)) => Value::Bytes(b.into_owned()),
            (FieldType::Bytes, Plain::Array) => {
                return Err(unreadable("an array that is not a list of bytes"))
            }
            (_, other) => return Err(unreadable(&format!("JSON {}", other.kind()))),
        };
        match (ty, value) {
            // serde writes f64 fields with integral values as floats; narrow exactly.
            (FieldType::Numeric, Value::F64(f)) => Decimal::try_from(f)
                .map(Value::Numeric)
                .map_err(|_| unreadable("a float that is not a finite number")),
            (ty, v) => ty.coerce(field, v),
        }
    }
}

/// A value as serde's data model gives it, before it is read with a
/// field's type by [`Value::from_plain`]: a JSON value, or one field of a
/// struct serialized straight into a record, come down to this.
#[derive(Debug)]
pub(crate) enum Plain<'a> {
    /// A null, unit or `None`; also a NaN or infinite float, which JSON
    /// writes as null.
    Null,
    /// A bool.
    Bool(bool),
    /// An integer that fits an `i64`.
    Int(i64),
    /// An integer past `i64`.
    OutOfRange,
    /// A finite float.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// Bytes, or an array of numbers that are all bytes.
    Bytes(Cow<'a, [u8]>),
    /// An array that is not a list of bytes.
    Array,
    /// A map, a struct, or an enum variant holding data.
    Object,
}

impl Plain<'_> {
    /// A float as JSON holds it: NaN and infinities are null.
    pub(crate) fn float(f: f64) -> Plain<'static> {
        if f.is_finite() {
            Plain::Float(f)
        } else {
            Plain::Null
        }
    }

    /// The JSON kind, for error messages.
    fn kind(&self) -> &'static str {
        match self {
            Plain::Null => "null",
            Plain::Bool(_) => "bool",
            Plain::Int(_) | Plain::OutOfRange | Plain::Float(_) => "number",
            Plain::Str(_) => "string",
            Plain::Bytes(_) | Plain::Array => "array",
            Plain::Object => "object",
        }
    }
}

impl serde::Serialize for Value {
    /// The value as serde writes the matching Rust type (what
    /// [`Value::to_json`] gives as JSON): NULL as `None`, uuids, numerics,
    /// dates, times, IP addresses and timestamps as strings, bytes as bytes (JSON
    /// writes them as an array of numbers), NaN and infinities as `None`, a
    /// [`Value::JsonText`] as its text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::I16(n) => s.serialize_i16(*n),
            Value::I32(n) => s.serialize_i32(*n),
            Value::I64(n) => s.serialize_i64(*n),
            Value::F32(f) if f.is_finite() => s.serialize_f32(*f),
            Value::F64(f) if f.is_finite() => s.serialize_f64(*f),
            Value::F32(_) | Value::F64(_) => s.serialize_none(),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Json(j) => j.serialize(s),
            Value::Array(items) => s.collect_seq(items),
            Value::Numeric(_)
            | Value::Text(_)
            | Value::Uuid(_)
            | Value::Timestamptz(_)
            | Value::Date(_)
            | Value::Timestamp(_)
            | Value::Time(_)
            | Value::Inet(_)
            | Value::Interval(_)
            | Value::JsonText(_) => s.serialize_str(&self.serde_str().unwrap_or_default()),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(v.into())
            }
        }
    )*};
}

value_from!(
    bool => Bool, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64,
    Decimal => Numeric, String => Text, &str => Text, Vec<u8> => Bytes, &[u8] => Bytes,
    Uuid => Uuid, DateTime<Utc> => Timestamptz, NaiveDate => Date, serde_json::Value => Json,
    NaiveDateTime => Timestamp, NaiveTime => Time, IpAddr => Inet, Interval => Interval,
);

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// A `Vec` of elements is a [`Value::Array`] (`Vec<u8>` stays `bytea`).
///
/// ```
/// use pgactor::Value;
/// assert_eq!(Value::from(vec![1_i64, 2]), Value::Array(vec![Value::I64(1), Value::I64(2)]));
/// assert_eq!(Value::from(vec![Some(true), None]), Value::Array(vec![Value::Bool(true), Value::Null]));
/// ```
impl<T: ArrayElement> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The Rust types of a [`FieldType::Array`]'s elements, as a `Vec` of
/// them converts to and from a [`Value::Array`]: `bool`, `i16`, `i32`,
/// `i64`, `f64`, `Decimal`, `String`, `Uuid`, `DateTime<Utc>`,
/// `NaiveDate`, and an `Option` of one for an array holding NULLs.
pub trait ArrayElement: sealed::Sealed + Into<Value> + FromValue {
    /// The element's value without NULL: the type itself, or the type an
    /// `Option` holds (what [`crate::Column::has`] looks for).
    type Item: Into<Value>;
}

macro_rules! array_element {
    ($($t:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl ArrayElement for $t {
            type Item = $t;
        }
        impl sealed::Sealed for Option<$t> {}
        impl ArrayElement for Option<$t> {
            type Item = $t;
        }
    )*};
}

array_element!(
    bool,
    i16,
    i32,
    i64,
    f64,
    Decimal,
    String,
    Uuid,
    DateTime<Utc>,
    NaiveDate
);

/// Rust types a [`Value`] can be read as, used by [`crate::Record::get`].
///
/// Integers read as any wider integer type; `Option<T>` reads NULL as `None`.
pub trait FromValue: Sized {
    /// The value as `Self`, or `None` when the types do not match.
    fn from_value(value: &Value) -> Option<Self>;
}

macro_rules! from_value {
    ($($t:ty => |$v:ident| $body:expr),* $(,)?) => {$(
        impl FromValue for $t {
            fn from_value($v: &Value) -> Option<Self> {
                $body
            }
        }
    )*};
}

from_value!(
    bool => |v| match v { Value::Bool(b) => Some(*b), _ => None },
    i16 => |v| match v { Value::I16(n) => Some(*n), _ => None },
    i32 => |v| match v { Value::I16(n) => Some(*n as i32), Value::I32(n) => Some(*n), _ => None },
    i64 => |v| v.as_i128().map(|n| n as i64),
    f32 => |v| match v { Value::F32(f) => Some(*f), _ => None },
    f64 => |v| match v { Value::F32(f) => Some(*f as f64), Value::F64(f) => Some(*f), _ => None },
    Decimal => |v| match v { Value::Numeric(d) => Some(*d), _ => None },
    String => |v| match v { Value::Text(s) => Some(s.clone()), _ => None },
    Vec<u8> => |v| match v { Value::Bytes(b) => Some(b.clone()), _ => None },
    Uuid => |v| match v { Value::Uuid(u) => Some(*u), _ => None },
    DateTime<Utc> => |v| match v { Value::Timestamptz(t) => Some(*t), _ => None },
    NaiveDate => |v| match v { Value::Date(d) => Some(*d), _ => None },
    NaiveDateTime => |v| match v { Value::Timestamp(t) => Some(*t), _ => None },
    NaiveTime => |v| match v { Value::Time(t) => Some(*t), _ => None },
    IpAddr => |v| match v { Value::Inet(ip) => Some(*ip), _ => None },
    Interval => |v| match v { Value::Interval(i) => Some(*i), _ => None },
    serde_json::Value => |v| match v { Value::Json(j) => Some(j.clone()), _ => None },
    Value => |v| Some(v.clone()),
);

/// A [`Value::Array`] whose elements all read as `T`; an array holding
/// NULL reads only as a `Vec` of `Option`s.
impl<T: ArrayElement> FromValue for Vec<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Array(items) => items.iter().map(T::from_value).collect(),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(v) => v.to_sql(ty, out),
            Value::I16(v) => v.to_sql(ty, out),
            Value::I32(v) => v.to_sql(ty, out),
            Value::I64(v) => v.to_sql(ty, out),
            Value::F32(v) => v.to_sql(ty, out),
            Value::F64(v) => v.to_sql(ty, out),
            Value::Numeric(v) => v.to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Bytes(v) => v.to_sql(ty, out),
            Value::Uuid(v) => v.to_sql(ty, out),
            Value::Timestamptz(v) => v.to_sql(ty, out),
            Value::Date(v) => v.to_sql(ty, out),
            Value::Timestamp(v) => v.to_sql(ty, out),
            Value::Time(v) => v.to_sql(ty, out),
            Value::Inet(v) => v.to_sql(ty, out),
            Value::Interval(v) => v.to_sql(ty, out),
            Value::Json(v) => v.to_sql(ty, out),
            Value::JsonText(text) => {
                if *ty == Type::JSONB {
                    // jsonb's binary format version.
                    out.extend_from_slice(&[1]);
                }
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            // Checked: an array bound as a type that is not one is an
            // error, not the driver's panic.
            Value::Array(items) => items.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Values are coerced to their field's type before binding, and bound
        // with that type through `query_typed`.
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, Box<dyn StdError + Sync + Send>> {
        Ok(match *ty {
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::I16(i16::from_sql(ty, raw)?),
            Type::INT4 => Value::I32(i32::from_sql(ty, raw)?),
            Type::INT8 => Value::I64(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::F32(f32::from_sql(ty, raw)?),
            Type::FLOAT8 => Value::F64(f64::from_sql(ty, raw)?),
            Type::NUMERIC => Value::Numeric(Decimal::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                Value::Text(String::from_sql(ty, raw)?)
            }
            Type::BYTEA => Value::Bytes(Vec::<u8>::from_sql(ty, raw)?),
            Type::UUID => Value::Uuid(Uuid::from_sql(ty, raw)?),
            Type::TIMESTAMPTZ => Value::Timestamptz(DateTime::<Utc>::from_sql(ty, raw)?),
            Type::DATE => Value::Date(NaiveDate::from_sql(ty, raw)?),
            Type::TIMESTAMP => Value::Timestamp(NaiveDateTime::from_sql(ty, raw)?),
            Type::TIME => Value::Time(NaiveTime::from_sql(ty, raw)?),
            Type::INET => Value::Inet(IpAddr::from_sql(ty, raw)?),
            Type::INTERVAL => Value::Interval(Interval::from_sql(ty, raw)?),
            Type::JSON | Type::JSONB => json_from_sql(ty, raw)?,
            // What raw SQL reads of an enum or citext column (pgactor's own
            // statements read them as text): the label or the text.
            _ if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" => {
                Value::Text(String::from_utf8(raw.to_vec())?)
            }
            _ if matches!(ty.kind(), Kind::Array(member) if Elem::of_wire_type(member).is_some()) => {
                Value::Array(Vec::<Value>::from_sql(ty, raw)?)
            }
            _ => return Err(format!("pgactor cannot decode column type {ty}").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, Box<dyn StdError + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_fit_or_are_refused() {
        assert_eq!(
            FieldType::I16.coerce("q", Value::I64(7)).unwrap(),
            Value::I16(7)
        );
        let err = FieldType::I16.coerce("q", Value::I64(70_000)).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        assert_eq!(
            FieldType::I64.coerce("q", Value::I16(-3)).unwrap(),
            Value::I64(-3)
        );
    }

    #[test]
    fn wrong_types_are_refused() {
        let err = FieldType::I64
            .coerce("quantity", Value::Text("5".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field \"quantity\" is bigint and cannot take text"
        );
        assert!(FieldType::Uuid.coerce("id", Value::I64(1)).is_err());
    }

    #[test]
    fn nul_bytes_are_refused_in_text_and_json() {
        assert!(FieldType::Text
            .coerce("n", Value::Text("a\0b".into()))
            .is_err());
        let j = serde_json::json!({"k": ["x\u{0}"]});
        assert!(FieldType::Json.coerce("j", Value::Json(j)).is_err());
    }

    #[test]
    fn max_json_depth_is_what_serde_json_parses() {
        let text = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let deepest: serde_json::Value = serde_json::from_str(&text(MAX_JSON_DEPTH)).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&text(MAX_JSON_DEPTH + 1)).is_err());
        assert!(!tree_deeper_than(&deepest, MAX_JSON_DEPTH));
        assert!(tree_deeper_than(&deepest, MAX_JSON_DEPTH - 1));
        assert!(!text_deeper_than(
            text(MAX_JSON_DEPTH).as_bytes(),
            MAX_JSON_DEPTH
        ));
        assert!(text_deeper_than(
            text(MAX_JSON_DEPTH + 1).as_bytes(),
            MAX_JSON_DEPTH
        ));
        // Brackets inside strings, escaped quotes included, do not count.
        let quoted = format!("[\"\\\"{}\"]", "[".repeat(200));
        assert!(!text_deeper_than(quoted.as_bytes(), 1));
        let objects = format!("{}{}", "{\"k\":".repeat(3), "1}}}");
        assert!(text_deeper_than(objects.as_bytes(), 2));
        assert!(!text_deeper_than(objects.as_bytes(), 3));
    }

    #[test]
    fn jsonb_of_any_depth_decodes_and_a_too_deep_tree_is_refused() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let mut raw = vec![1_u8];
        raw.extend_from_slice(deep.as_bytes());
        assert_eq!(
            Value::from_sql(&Type::JSONB, &raw).unwrap(),
            Value::JsonText(deep.clone())
        );
        assert_eq!(
            Value::from_sql(&Type::JSON, deep.as_bytes()).unwrap(),
            Value::JsonText(deep)
        );
        assert!(Value::from_sql(&Type::JSONB, b"\x01[1").is_err());
        let tree = (0..=MAX_JSON_DEPTH).fold(serde_json::json!(1), |t, _| serde_json::json!([t]));
        let err = FieldType::Json
            .coerce("doc", Value::Json(tree))
            .unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
        assert!(FieldType::Json
            .coerce("doc", Value::JsonText("[\"a\0\"]".into()))
            .is_err());
    }

    #[test]
    fn varchar_counts_characters() {
        assert!(FieldType::Varchar(3)
            .coerce("v", Value::Text("äöü".into()))
            .is_ok());
        assert!(FieldType::Varchar(3)
            .coerce("v", Value::Text("abcd".into()))
            .is_err());
    }

    #[test]
    fn json_round_trips_each_type() {
        let now = Utc::now();
        let cases = [
            (FieldType::Uuid, Value::Uuid(Uuid::nil())),
            (FieldType::Timestamptz, Value::Timestamptz(now)),
            (
                FieldType::Date,
                Value::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
            ),
            (FieldType::Numeric, Value::Numeric("12.50".parse().unwrap())),
            (FieldType::Bytes, Value::Bytes(vec![0, 255])),
            (FieldType::F64, Value::F64(2.5)),
            (FieldType::I32, Value::I32(-4)),
            (FieldType::Timestamp, Value::Timestamp(now.naive_utc())),
            (FieldType::Time, Value::Time(now.time())),
            (FieldType::Inet, Value::Inet("2001:db8::1".parse().unwrap())),
        ];
        for (ty, v) in cases {
            assert_eq!(Value::from_json(ty, "f", v.to_json()).unwrap(), v, "{ty:?}");
        }
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn timestamps_times_and_addresses_are_written_as_serde_writes_them() {
        let t = at("2025-07-01 12:30:05.25");
        let cases = [
            (
                FieldType::Timestamp,
                Value::Timestamp(t),
                "2025-07-01T12:30:05.250",
            ),
            (
                FieldType::Timestamp,
                Value::Timestamp(at("2025-07-01 00:00:00")),
                "2025-07-01T00:00:00",
            ),
            (FieldType::Time, Value::Time(t.time()), "12:30:05.250"),
            (
                FieldType::Inet,
                Value::Inet("192.0.2.1".parse().unwrap()),
                "192.0.2.1",
            ),
            (
                FieldType::Inet,
                Value::Inet("2001:db8::1".parse().unwrap()),
                "2001:db8::1",
            ),
        ];
        for (ty, value, text) in cases {
            let json = serde_json::Value::String(text.into());
            assert_eq!(value.to_json(), json, "{ty:?}");
            assert_eq!(Value::from_json(ty, "f", json).unwrap(), value, "{ty:?}");
        }
        // chrono's and std's own serde agree.
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            Value::Timestamp(t).to_json()
        );
        assert_eq!(
            serde_json::to_value(t.time()).unwrap(),
            Value::Time(t.time()).to_json()
        );
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(serde_json::to_value(ip).unwrap(), Value::Inet(ip).to_json());
    }

    #[test]
    fn unreadable_timestamps_times_and_addresses_are_refused_without_the_value() {
        for (ty, text) in [
            (FieldType::Timestamp, "2025-13-01T00:00:00"),
            (FieldType::Timestamp, "2025-07-01T12:00:00+02:00"),
            (FieldType::Time, "25:00:00"),
            (FieldType::Inet, "300.1.1.1"),
            (FieldType::Inet, "10.0.0.0/8"),
        ] {
            let err =
                Value::from_json(ty, "f", serde_json::Value::String(text.into())).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput, "{text}");
            assert!(!err.to_string().contains(text), "{err}");
            assert!(err.to_string().contains("field \"f\""), "{err}");
        }
    }

    #[test]
    fn timestamps_times_and_addresses_take_only_their_own_values() {
        let t = at("2025-07-01 12:30:05");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            FieldType::Timestamp.coerce("f", t.into()).unwrap(),
            Value::Timestamp(t)
        );
        assert_eq!(
            FieldType::Time.coerce("f", t.time().into()).unwrap(),
            Value::Time(t.time())
        );
        assert_eq!(
            FieldType::Inet.coerce("f", ip.into()).unwrap(),
            Value::Inet(ip)
        );
        assert_eq!(
            FieldType::Inet.coerce("f", Value::Null).unwrap(),
            Value::Null
        );
        for (ty, value) in [
            (FieldType::Timestamp, Value::Timestamptz(t.and_utc())),
            (FieldType::Timestamptz, Value::Timestamp(t)),
            (FieldType::Time, Value::Text("12:30:05".into())),
            (FieldType::Inet, Value::Text("192.0.2.1".into())),
            (FieldType::Text, Value::Inet(ip)),
        ] {
            let err = ty.coerce("f", value.clone()).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
            assert_eq!(
                err.to_string(),
                format!(
                    "field \"f\" is {} and cannot take {}",
                    ty.sql(),
                    value.type_name()
                )
            );
        }
        assert_eq!(NaiveDateTime::from_value(&Value::Timestamp(t)), Some(t));
        assert_eq!(
            NaiveTime::from_value(&Value::Time(t.time())),
            Some(t.time())
        );
        assert_eq!(IpAddr::from_value(&Value::Inet(ip)), Some(ip));
        assert_eq!(IpAddr::from_value(&Value::Text("192.0.2.1".into())), None);
    }

    #[test]
    fn timestamps_times_and_addresses_bind_and_decode_as_their_types() {
        let t = at("2025-07-01 12:30:05.123456");
        for (ty, value) in [
            (FieldType::Timestamp, Value::Timestamp(t)),
            (FieldType::Time, Value::Time(t.time())),
            (FieldType::Inet, Value::Inet("192.0.2.1".parse().unwrap())),
            (FieldType::Inet, Value::Inet("2001:db8::1".parse().unwrap())),
        ] {
            let mut raw = BytesMut::new();
            value.to_sql(&ty.pg_type(), &mut raw).unwrap();
            assert_eq!(Value::from_sql(&ty.pg_type(), &raw).unwrap(), value);
        }
        assert_eq!(FieldType::Timestamp.sql(), "timestamp");
        assert_eq!(
            FieldType::Timestamp.catalog_name(),
            "timestamp without time zone"
        );
        assert_eq!(FieldType::Time.catalog_name(), "time without time zone");
        assert_eq!(FieldType::Inet.catalog_name(), "inet");
    }

    #[test]
    fn arrays_coerce_element_by_element_and_refuse_nesting() {
        let ty = FieldType::Array(Elem::I32);
        assert_eq!(ty.sql(), "integer[]");
        assert_eq!(
            FieldType::Array(Elem::Timestamptz).catalog_name(),
            "timestamp with time zone[]"
        );
        assert_eq!(ty.pg_type(), Type::INT4_ARRAY);
        assert_eq!(ty.pg_array_type(), None);
        assert_eq!(
            ty.coerce("f", Value::from(vec![Some(1_i64), None]))
                .unwrap(),
            Value::Array(vec![Value::I32(1), Value::Null])
        );
        assert_eq!(
            ty.coerce("f", Value::Array(vec![])).unwrap(),
            Value::Array(vec![])
        );
        for value in [
            Value::Array(vec![Value::from("SECRET")]),
            Value::Array(vec![Value::I64(1 << 40)]),
            Value::Array(vec![Value::from(vec![1_i32])]),
            Value::I32(1),
        ] {
            let err = ty.coerce("f", value).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
            assert!(!err.to_string().contains("SECRET"), "{err}");
            assert!(err.to_string().contains("field \"f\""), "{err}");
        }
        let err = FieldType::I64
            .coerce("f", Value::from(vec![1_i64]))
            .unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
    }

    #[test]
    fn arrays_convert_from_and_to_vecs() {
        let days = vec![Some(NaiveDate::from_ymd_opt(2025, 7, 1).unwrap()), None];
        let value = Value::from(days.clone());
        assert_eq!(Vec::<Option<NaiveDate>>::from_value(&value), Some(days));
        // A NULL element reads only as an Option.
        assert_eq!(Vec::<NaiveDate>::from_value(&value), None);
        assert_eq!(
            Vec::<i64>::from_value(&Value::from(vec![1_i32])),
            Some(vec![1])
        );
        assert_eq!(Vec::<i64>::from_value(&Value::I64(1)), None);
        // Bytes stay bytes.
        assert_eq!(Value::from(vec![1_u8]), Value::Bytes(vec![1]));
        assert_eq!(Vec::<u8>::from_value(&Value::Bytes(vec![1])), Some(vec![1]));
    }

    #[test]
    fn arrays_are_json_arrays() {
        let ty = FieldType::Array(Elem::Uuid);
        let value = Value::from(vec![Some(Uuid::nil()), None]);
        let json = serde_json::json!(["00000000-0000-0000-0000-000000000000", null]);
        assert_eq!(value.to_json(), json);
        assert_eq!(Value::from_json(ty, "f", json).unwrap(), value);
        for bad in [
            serde_json::json!([["00000000-0000-0000-0000-000000000000"]]),
            serde_json::json!(["SECRET"]),
            serde_json::json!("SECRET"),
        ] {
            let err = Value::from_json(ty, "f", bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn arrays_bind_and_decode_as_their_array_types() {
        for elem in Elem::ALL {
            let ty = FieldType::Array(elem);
            let value = Value::Array(vec![Value::Null]);
            let mut raw = BytesMut::new();
            value.to_sql(&ty.pg_type(), &mut raw).unwrap();
            assert_eq!(
                Value::from_sql(&ty.pg_type(), &raw).unwrap(),
                value,
                "{elem:?}"
            );
        }
        let value = Value::from(vec![Some("a".to_owned()), None]);
        let mut raw = BytesMut::new();
        value.to_sql(&Type::TEXT_ARRAY, &mut raw).unwrap();
        assert_eq!(Value::from_sql(&Type::TEXT_ARRAY, &raw).unwrap(), value);
        // An array bound as a type that is not one is an error, not a panic.
        assert!(value
            .to_sql_checked(&Type::TEXT, &mut BytesMut::new())
            .is_err());
        // An array of a kind that is no element kind is not decoded.
        assert!(Value::from_sql(&Type::JSONB_ARRAY, &raw).is_err());
    }

    #[test]
    fn enums_take_their_labels_and_intervals_their_own_values() {
        static MOOD: EnumType = EnumType::new("mood", &["sad", "ok"]);
        let ty = FieldType::Enum(&MOOD);
        assert_eq!(
            ty.coerce("m", "ok".into()).unwrap(),
            Value::Text("ok".into())
        );
        let err = ty.coerce("m", "SECRET".into()).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("sad, ok"), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
        assert!(ty.coerce("m", Value::I64(1)).is_err());
        assert!(FieldType::Citext.coerce("c", "a\0".into()).is_err());
        let wait = Value::Interval(Interval::new(1, 2, 3));
        assert_eq!(FieldType::Interval.coerce("w", wait.clone()).unwrap(), wait);
        assert!(FieldType::Interval.coerce("w", "P1D".into()).is_err());
        assert_eq!(
            Value::from_json(FieldType::Interval, "w", wait.to_json()).unwrap(),
            wait
        );
        let err =
            Value::from_json(FieldType::Interval, "w", serde_json::json!("1 day")).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
        let mut raw = BytesMut::new();
        wait.to_sql(&Type::INTERVAL, &mut raw).unwrap();
        assert_eq!(Value::from_sql(&Type::INTERVAL, &raw).unwrap(), wait);
        // What raw SQL reads of an enum column: its label.
        let mood = Type::new("mood".into(), 1, Kind::Enum(vec!["ok".into()]), "s".into());
        assert_eq!(
            Value::from_sql(&mood, b"ok").unwrap(),
            Value::Text("ok".into())
        );
    }

    #[test]
    fn numerics_round_trip_through_json_exactly() {
        // 28 significant digits and trailing zeros: a trip through f64 would
        // lose digits, and a normalising one the scale.
        for text in [
            "1234567890123456.789012345678",
            "-0.0000000000000000000000000001",
            "79228162514264337593543950335",
            "12.50",
            "0.00",
        ] {
            let d: Decimal = text.parse().unwrap();
            let json = Value::Numeric(d).to_json();
            assert_eq!(json, serde_json::Value::String(text.into()));
            let back = Value::from_json(FieldType::Numeric, "f", json).unwrap();
            match back {
                Value::Numeric(b) => {
                    assert_eq!(b, d);
                    assert_eq!(b.to_string(), text, "scale kept");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn decimal_keeps_its_default_serde_for_the_application() {
        // The application's own `Decimal` fields read JSON numbers and
        // strings alike: pgactor turns on no rust_decimal serde feature
        // (`serde-str` would refuse the number).
        let number: Decimal = serde_json::from_str("12.5").unwrap();
        let string: Decimal = serde_json::from_str("\"12.50\"").unwrap();
        assert_eq!(number, "12.5".parse::<Decimal>().unwrap());
        assert_eq!(string.to_string(), "12.50");
    }
}
