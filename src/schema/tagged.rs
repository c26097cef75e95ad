//! A serde form of [`Value`] that keeps its variant: each value is written
//! as `{"Variant": payload}`, so a uuid stays a uuid and a timestamp a
//! timestamp, where [`Value`]'s own `Serialize` writes plain JSON for
//! users. It is what [`super::Query`] and [`super::Filter`] serialize
//! with, what the requests ([`crate::ReadRequest`], [`crate::WriteRequest`])
//! serialize their ids and records with, and how the `remote` feature sends
//! records across nodes.
//!
//! Floats that JSON cannot write (NaN, infinities) go as their bits, a
//! `jsonb` tree as its JSON text (read back under serde_json's depth
//! limit, which [`super::MAX_JSON_DEPTH`] is below), a numeric as its
//! decimal text.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::interval::Interval;
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
            Value::Array(items) => {
                s.serialize_newtype_variant(NAME, 20, "Array", &TaggedSeq(items))
            }
            Value::Interval(i) => s.serialize_newtype_variant(NAME, 21, "Interval", i),
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
    Interval(Interval),
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
            Owned::Interval(i) => Value::Interval(i),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Filter, Query};

    #[test]
    fn every_variant_comes_back_as_it_went() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::I16(-2),
            Value::I32(3),
            Value::I64(i64::MIN),
            Value::F32(1.5),
            Value::F64(f64::NEG_INFINITY),
            Value::Numeric(Decimal::from_str("12.50").unwrap()),
            Value::Text("a\"b".into()),
            Value::Bytes(vec![0, 255]),
            Value::Interval(Interval::new(-1, 2, 3)),
            Value::Uuid(Uuid::new_v4()),
            Value::Timestamptz(Utc::now()),
            Value::Date(NaiveDate::from_ymd_opt(2025, 7, 1).unwrap()),
            Value::Timestamp(
                NaiveDate::from_ymd_opt(2025, 7, 1)
                    .unwrap()
                    .and_hms_micro_opt(1, 2, 3, 4)
                    .unwrap(),
            ),
            Value::Time(NaiveTime::from_hms_micro_opt(1, 2, 3, 4).unwrap()),
            Value::Inet("2001:db8::1".parse().unwrap()),
            Value::Json(serde_json::json!({"a": [1, "x", null]})),
            Value::JsonText("[[1]]".into()),
            Value::Array(vec![Value::I64(1), Value::Null]),
        ];
        let filter = Filter::Or(
            values
                .iter()
                .map(|v| Filter::Compare {
                    field: "f".into(),
                    op: crate::CmpOp::Eq,
                    value: v.clone(),
                })
                .collect(),
        );
        let query = Query::new().filter(filter).sort_desc("f").limit(5);
        let text = serde_json::to_string(&query).unwrap();
        assert_eq!(serde_json::from_str::<Query>(&text).unwrap(), query);
        // NaN is not equal to itself: compared by its bits.
        let nan = serde_json::to_string(&Tagged(&Value::F64(f64::NAN))).unwrap();
        let back = value::deserialize(&mut serde_json::Deserializer::from_str(&nan)).unwrap();
        assert!(matches!(back, Value::F64(f) if f.is_nan()));
    }

    #[test]
    fn a_value_that_is_not_its_variant_is_refused() {
        for bad in [
            r#"{"Uuid":"nope"}"#,
            r#"{"Numeric":"1e"}"#,
            r#"{"Json":"{"}"#,
            r#"{"Nope":1}"#,
        ] {
            let read = value::deserialize(&mut serde_json::Deserializer::from_str(bad));
            assert!(read.is_err(), "{bad}");
        }
    }
}
