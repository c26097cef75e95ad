//! A serde form of [`Value`] that keeps its variant: each value is written
//! as `{"Variant": payload}`, so a uuid stays a uuid and a timestamp a
//! timestamp, where [`Value`]'s own `Serialize` writes plain JSON for
//! users. It is what [`super::Query`] and [`super::Filter`] serialize
//! with, and how the `remote` feature sends records across nodes.
//!
//! Floats that JSON cannot write (NaN, infinities) go as their bits, a
//! `jsonb` tree as its JSON text (read back under serde_json's depth
//! limit, which [`super::MAX_JSON_DEPTH`] is below), a numeric as its
//! decimal text.

#[cfg(feature = "remote")]
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

#[cfg(feature = "remote")]
use super::record::Record;
use super::value::Value;

/// A value written with its variant.
pub(crate) struct Tagged<'a>(pub(crate) &'a Value);

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const NAME: &str = "Value";
        match self.0 {
            Value::Null => s.serialize_unit_variant(NAME, 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant(NAME, 1, "Bool", b),
            Value::I16(n) => s.serialize_newtype_variant(NAME, 2, "I16", n),
            Value::I32(n) => s.serialize_newtype_variant(NAME, 3, "I32", n),
            Value::I64(n) => s.serialize_newtype_variant(NAME, 4, "I64", n),
            Value::F32(f) if f.is_finite() => s.serialize_newtype_variant(NAME, 5, "F32", f),
            Value::F64(f) if f.is_finite() => s.serialize_newtype_variant(NAME, 6, "F64", f),
            Value::F32(f) => s.serialize_newtype_variant(NAME, 7, "F32Bits", &f.to_bits()),
            Value::F64(f) => s.serialize_newtype_variant(NAME, 8, "F64Bits", &f.to_bits()),
            Value::Numeric(d) => s.serialize_newtype_variant(NAME, 9, "Numeric", &d.to_string()),
            Value::Text(t) => s.serialize_newtype_variant(NAME, 10, "Text", t),
            Value::Bytes(b) => s.serialize_newtype_variant(NAME, 11, "Bytes", b),
            Value::Uuid(u) => s.serialize_newtype_variant(NAME, 12, "Uuid", u),
            Value::Timestamptz(t) => s.serialize_newtype_variant(NAME, 13, "Timestamptz", t),
            Value::Date(d) => s.serialize_newtype_variant(NAME, 14, "Date", d),
            Value::Timestamp(t) => s.serialize_newtype_variant(NAME, 15, "Timestamp", t),
            Value::Time(t) => s.serialize_newtype_variant(NAME, 16, "Time", t),
            Value::Inet(ip) => s.serialize_newtype_variant(NAME, 17, "Inet", ip),
            Value::Json(j) => s.serialize_newtype_variant(NAME, 18, "Json", &j.to_string()),
            Value::JsonText(t) => s.serialize_newtype_variant(NAME, 19, "JsonText", t),
            Value::Array(items) => s.serialize_newtype_variant(NAME, 20, "Array", &TaggedSeq(items)),
        }
    }
}

/// Values written with their variants, as a sequence.
struct TaggedSeq<'a>(&'a [Value]);

impl Serialize for TaggedSeq<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Tagged))
    }
}

/// What [`Tagged`] writes, read back.
#[derive(Deserialize)]
#[serde(rename = "Value")]
enum Owned {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    F32Bits(u32),
    F64Bits(u64),
    Numeric(String),
    Text(String),
    Bytes(Vec<u8>),
    Uuid(Uuid),
    Timestamptz(DateTime<Utc>),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
    Time(NaiveTime),
    Inet(IpAddr),
    Json(String),
    JsonText(String),
    Array(Vec<Owned>),
}

impl Owned {
    fn into_value<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(match self {
            Owned::Null => Value::Null,
            Owned::Bool(b) => Value::Bool(b),
            Owned::I16(n) => Value::I16(n),
            Owned::I32(n) => Value::I32(n),
            Owned::I64(n) => Value::I64(n),
            Owned::F32(f) => Value::F32(f),
            Owned::F64(f) => Value::F64(f),
            Owned::F32Bits(bits) => Value::F32(f32::from_bits(bits)),
            Owned::F64Bits(bits) => Value::F64(f64::from_bits(bits)),
            Owned::Numeric(text) => Value::Numeric(Decimal::from_str(&text).map_err(E::custom)?),
            Owned::Text(t) => Value::Text(t),
            Owned::Bytes(b) => Value::Bytes(b),
            Owned::Uuid(u) => Value::Uuid(u),
            Owned::Timestamptz(t) => Value::Timestamptz(t),
            Owned::Date(d) => Value::Date(d),
            Owned::Timestamp(t) => Value::Timestamp(t),
            Owned::Time(t) => Value::Time(t),
            Owned::Inet(ip) => Value::Inet(ip),
            Owned::Json(text) => Value::Json(serde_json::from_str(&text).map_err(E::custom)?),
            Owned::JsonText(t) => Value::JsonText(t),
            Owned::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(Owned::into_value)
                    .collect::<Result<_, E>>()?,
            ),
        })
    }
}

/// `#[serde(with)]` for a [`Value`] field.
pub(crate) mod value {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Value, s: S) -> Result<S::Ok, S::Error> {
        Tagged(value).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        Owned::deserialize(d)?.into_value()
    }
}

/// `#[serde(with)]` for a `Vec<Value>` field.
pub(crate) mod values {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(values: &[Value], s: S) -> Result<S::Ok, S::Error> {
        TaggedSeq(values).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
        Vec::<Owned>::deserialize(d)?
            .into_iter()
            .map(Owned::into_value)
            .collect()
    }
}

#[cfg(feature = "remote")]
/// `#[serde(with)]` for a [`Record`] field: a map of field to tagged value.
pub(crate) mod record {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(record: &Record, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(record.iter().map(|(field, value)| (field, Tagged(value))))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Record, D::Error> {
        let fields = BTreeMap::<String, Owned>::deserialize(d)?;
        let mut record = Record::new();
        for (field, value) in fields {
            record.set(field, value.into_value::<D::Error>()?);
        }
        Ok(record)
    }
}

#[cfg(feature = "remote")]
/// A record written as [`record`] writes it, in a sequence.
struct TaggedRecord<'a>(&'a Record);

#[cfg(feature = "remote")]
impl Serialize for TaggedRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        record::serialize(self.0, s)
    }
}

#[cfg(feature = "remote")]
/// A record read as [`record`] reads it, in a sequence.
struct OwnedRecord(Record);

#[cfg(feature = "remote")]
impl<'de> Deserialize<'de> for OwnedRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OwnedRecord, D::Error> {
        record::deserialize(d).map(OwnedRecord)
    }
}

#[cfg(feature = "remote")]
/// `#[serde(with)]` for a `Vec<Record>` field.
pub(crate) mod records {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(records: &[Record], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(records.iter().map(TaggedRecord))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Record>, D::Error> {
        let rows = Vec::<OwnedRecord>::deserialize(d)?;
        Ok(rows.into_iter().map(|row| row.0).collect())
    }
}
