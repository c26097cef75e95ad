//! [`Record::to_serde`]'s deserializer: serde reads the record's fields
//! straight from it, without building JSON first.
//!
//! Each value is given to serde as JSON would give it (see
//! [`Value::to_json`]): integers as `u64` when not negative (`i64`
//! otherwise), uuids, numerics, timestamps (RFC 3339) and dates as
//! strings, bytes as a sequence of numbers (or as bytes to a type that
//! asks for bytes), an array as a sequence of its elements, NaN and infinities as null, a `jsonb` tree through
//! serde_json's own deserializer.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StrDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde::forward_to_deserialize_any;
use smol_str::SmolStr;

use super::Record;
use crate::error::Error;
use crate::schema::value::Value;

/// `record` as a `T`.
pub(super) fn from_record<T: DeserializeOwned>(record: &Record) -> crate::Result<T> {
    T::deserialize(RecordDeserializer(record)).map_err(|err| {
        Error::decode(format!(
            "cannot convert the record: {}",
            without_values(&err.0)
        ))
    })
}

/// serde's reason a record did not convert, without the value it quotes
/// (`invalid type: string "078-05-1120", expected i64` becomes `invalid
/// type: string, expected i64`): the value is the caller's data, and errors
/// reach logs. Field names and what the type expected are kept; a message
/// of another shape (a type's own deserializer may quote what it found) is
/// replaced by a generic one.
fn without_values(message: &str) -> String {
    let named_field = ["missing field ", "unknown field ", "duplicate field "];
    if named_field.iter().any(|p| message.starts_with(p)) {
        return message.to_owned();
    }
    let quotes_a_value = ["invalid type: ", "invalid value: ", "invalid length "];
    match message.split_once(", expected ") {
        Some((found, expected)) if quotes_a_value.iter().any(|p| found.starts_with(p)) => {
            let kind = found.find(['`', '"']).map_or(found, |at| &found[..at]);
            format!("{}, expected {expected}", kind.trim_end())
        }
        _ => "a value does not fit the type it converts to".to_owned(),
    }
}

/// serde's reason, worded as serde_json words it (a null is `null`).
#[derive(Debug)]
struct DeError(String);

impl DeError {
    fn json(err: serde_json::Error) -> DeError {
        DeError(err.to_string())
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> DeError {
        DeError(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> DeError {
        DeError(format!("invalid type: {}, expected {exp}", AsJson(unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> DeError {
        DeError(format!("invalid value: {}, expected {exp}", AsJson(unexp)))
    }
}

/// What was found, as JSON calls it: a unit is `null`.
struct AsJson<'a>(Unexpected<'a>);

impl fmt::Display for AsJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unexpected::Unit => f.write_str("null"),
            other => other.fmt(f),
        }
    }
}

type Result<T> = std::result::Result<T, DeError>;

/// The record: a map of its fields, in name order.
struct RecordDeserializer<'de>(&'de Record);

impl<'de> RecordDeserializer<'de> {
    fn fields(&self) -> Fields<'de> {
        Fields {
            fields: self.0.names.as_slice().iter().zip(&self.0.values),
            value: None,
        }
    }
}

impl<'de> Deserializer<'de> for RecordDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let mut fields = self.fields();
        let value = visitor.visit_map(&mut fields)?;
        match fields.fields.len() {
            0 => Ok(value),
            _ => Err(de::Error::invalid_length(
                self.0.len(),
                &"fewer elements in map",
            )),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    /// A record of one field is that variant, as a JSON map of one key.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if self.0.len() != 1 {
            return Err(de::Error::invalid_value(
                Unexpected::Map,
                &"map with a single key",
            ));
        }
        visitor.visit_enum(MapAccessDeserializer::new(self.fields()))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// The record's fields as serde reads a map.
struct Fields<'de> {
    fields: std::iter::Zip<std::slice::Iter<'de, SmolStr>, std::slice::Iter<'de, Value>>,
    /// The value of the key just read.
    value: Option<&'de Value>,
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some((name, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(BorrowedStrDeserializer::new(name.as_str()))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a value was read before its key"))?;
        seed.deserialize(ValueDeserializer(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

/// One field's value.
struct ValueDeserializer<'de>(&'de Value);

impl<'de> ValueDeserializer<'de> {
    /// Whether JSON holds the value as null: NULL, NaN and infinities.
    fn is_null(&self) -> bool {
        match self.0 {
            Value::Null => true,
            Value::F32(f) => !f.is_finite(),
            Value::F64(f) => !f.is_finite(),
            _ => false,
        }
    }
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::I16(n) => visit_int(i64::from(*n), visitor),
            Value::I32(n) => visit_int(i64::from(*n), visitor),
            Value::I64(n) => visit_int(*n, visitor),
            Value::F32(f) if f.is_finite() => visitor.visit_f64(f64::from(*f)),
            Value::F64(f) if f.is_finite() => visitor.visit_f64(*f),
            Value::Bytes(bytes) => visit_elements(bytes, visitor),
            Value::Json(json) => json.deserialize_any(visitor).map_err(DeError::json),
            Value::Array(items) => visit_elements(items, visitor),
            other => match other.serde_str() {
                Some(Cow::Borrowed(text)) => visitor.visit_borrowed_str(text),
                Some(Cow::Owned(text)) => visitor.visit_str(&text),
                // NULL, NaN and infinities.
                None => visitor.visit_unit(),
            },
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Json(json) => json.deserialize_option(visitor).map_err(DeError::json),
            _ if self.is_null() => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// Bytes as bytes to a type that asks for them; anything else as
    /// [`Deserializer::deserialize_any`] gives it.
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Bytes(bytes) => visitor.visit_borrowed_bytes(bytes),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Value::Json(json) => json
                .deserialize_newtype_struct(name, visitor)
                .map_err(DeError::json),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    /// A string is a unit variant's name; a `jsonb` value is read by
    /// serde_json.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if let Value::Json(json) = self.0 {
            return json
                .deserialize_enum(name, variants, visitor)
                .map_err(DeError::json);
        }
        match self.0.serde_str() {
            Some(text) => visitor.visit_enum(StrDeserializer::<DeError>::new(&text)),
            None => Err(de::Error::invalid_type(self.unexpected(), &"string or map")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

impl ValueDeserializer<'_> {
    /// What the value is, for a type that refuses it.
    fn unexpected(&self) -> Unexpected<'_> {
        if self.is_null() {
            return Unexpected::Unit;
        }
        match self.0 {
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::I16(n) => int_unexpected(i64::from(*n)),
            Value::I32(n) => int_unexpected(i64::from(*n)),
            Value::I64(n) => int_unexpected(*n),
            Value::F32(f) => Unexpected::Float(f64::from(*f)),
            Value::F64(f) => Unexpected::Float(*f),
            Value::Bytes(_) | Value::Array(_) => Unexpected::Seq,
            Value::Json(_) => Unexpected::Other("JSON"),
            _ => Unexpected::Other("string"),
        }
    }
}

/// An integer as JSON gives it: `u64` when not negative.
fn visit_int<'de, V: Visitor<'de>>(n: i64, visitor: V) -> Result<V::Value> {
    match u64::try_from(n) {
        Ok(u) => visitor.visit_u64(u),
        Err(_) => visitor.visit_i64(n),
    }
}

fn int_unexpected(n: i64) -> Unexpected<'static> {
    match u64::try_from(n) {
        Ok(u) => Unexpected::Unsigned(u),
        Err(_) => Unexpected::Signed(n),
    }
}

/// `items` as a sequence the visitor must take whole, as JSON's is.
fn visit_elements<'de, T, V>(items: &'de [T], visitor: V) -> Result<V::Value>
where
    V: Visitor<'de>,
    Elements<'de, T>: SeqAccess<'de, Error = DeError>,
{
    let mut seq = Elements(items.iter());
    let value = visitor.visit_seq(&mut seq)?;
    match seq.0.len() {
        0 => Ok(value),
        _ => Err(de::Error::invalid_length(
            items.len(),
            &"fewer elements in array",
        )),
    }
}

/// A `bytea` value's bytes (as JSON gives them: numbers), or an array's
/// elements (each as [`ValueDeserializer`] gives it).
struct Elements<'de, T>(std::slice::Iter<'de, T>);

impl<'de> SeqAccess<'de> for Elements<'de, Value> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.0
            .next()
            .map(|item| seed.deserialize(ValueDeserializer(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<'de> SeqAccess<'de> for Elements<'de, u8> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.0.next() {
            Some(&byte) => seed
                .deserialize(u64::from(byte).into_deserializer())
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;
    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use uuid::Uuid;

    /// `T` from the record as the JSON round trip reads it: what the
    /// deserializer must match, message included.
    fn via_json<T: DeserializeOwned>(record: &Record) -> crate::Result<T> {
        let map = record
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_json()))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
            Error::decode(format!(
                "cannot convert the record: {}",
                without_values(&e.to_string())
            ))
        })
    }

    /// `record` converts to `T` as the JSON round trip converts it.
    fn same_as_json<T: DeserializeOwned + PartialEq + fmt::Debug>(
        record: &Record,
    ) -> crate::Result<T> {
        let (direct, json) = (from_record::<T>(record), via_json::<T>(record));
        match (&direct, &json) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), b.kind());
                assert_eq!(a.to_string(), b.to_string());
            }
            _ => panic!("direct {direct:?}, through JSON {json:?}"),
        }
        direct
    }

    #[derive(Deserialize, Serialize, Debug, PartialEq)]
    struct Nested {
        tags: Vec<String>,
        n: Option<i64>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Typed {
        flag: bool,
        small: i16,
        medium: i32,
        big: i64,
        single: f32,
        double: f64,
        price: Decimal,
        name: String,
        payload: Vec<u8>,
        id: Uuid,
        at: DateTime<Utc>,
        on: NaiveDate,
        meta: serde_json::Value,
        nested: Nested,
        note: Option<String>,
    }

    fn typed_record() -> Record {
        Record::new()
            .with("flag", true)
            .with("small", -3_i16)
            .with("medium", 7_i32)
            .with("big", i64::MIN)
            .with("single", 1.5_f32)
            .with("double", -2.25_f64)
            .with("price", "12.50".parse::<Decimal>().unwrap())
            .with("name", "A-1")
            .with("payload", vec![0_u8, 1, 255])
            .with("id", Uuid::nil())
            .with(
                "at",
                "2025-06-30T23:59:59.999999Z"
                    .parse::<DateTime<Utc>>()
                    .unwrap(),
            )
            .with("on", NaiveDate::from_ymd_opt(2025, 7, 1).unwrap())
            .with("meta", json!({"k": [1, null]}))
            .with("nested", json!({"tags": ["x"], "n": null}))
            .with("note", Value::Null)
            .with("extra", "ignored")
    }

    #[test]
    fn timestamps_times_and_addresses_read_as_their_rust_types() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Stamps {
            local: chrono::NaiveDateTime,
            clock: chrono::NaiveTime,
            addr: std::net::IpAddr,
            none: Option<std::net::IpAddr>,
        }
        let local = NaiveDate::from_ymd_opt(2025, 7, 1)
            .unwrap()
            .and_hms_micro_opt(12, 30, 5, 250)
            .unwrap();
        let addr: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let record = Record::new()
            .with("local", local)
            .with("clock", local.time())
            .with("addr", addr)
            .with("none", Value::Null);
        let stamps: Stamps = same_as_json(&record).unwrap();
        let expected = Stamps {
            local,
            clock: local.time(),
            addr,
            none: None,
        };
        assert_eq!(stamps, expected);
    }

    #[test]
    fn arrays_read_as_vecs() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Lists {
            counts: Vec<i64>,
            tags: Vec<Option<String>>,
            none: Option<Vec<i64>>,
            empty: Vec<bool>,
        }
        let record = Record::new()
            .with("counts", vec![1_i64, -2])
            .with("tags", vec![Some("a".to_owned()), None])
            .with("none", Value::Null)
            .with("empty", Vec::<bool>::new());
        let lists: Lists = same_as_json(&record).unwrap();
        let expected = Lists {
            counts: vec![1, -2],
            tags: vec![Some("a".into()), None],
            none: None,
            empty: vec![],
        };
        assert_eq!(lists, expected);
        // A NULL element into a Vec of plain values: a decode error
        // without the value.
        let nulls = Record::new().with("counts", vec![Some(1_i64), None]);
        #[derive(Deserialize, Debug, PartialEq)]
        struct Counts {
            counts: Vec<i64>,
        }
        let err = same_as_json::<Counts>(&nulls).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
    }

    #[test]
    fn every_type_reads_as_its_rust_type() {
        let typed: Typed = same_as_json(&typed_record()).unwrap();
        assert_eq!(typed.price.to_string(), "12.50");
        assert_eq!(typed.payload, [0, 1, 255]);
        assert_eq!(typed.id, Uuid::nil());
        assert_eq!(typed.meta, json!({"k": [1, null]}));
        assert_eq!(
            typed.nested,
            Nested {
                tags: vec!["x".into()],
                n: None
            }
        );
        assert_eq!(typed.note, None);
        // Integers widen and narrow as serde's visitors allow; numerics,
        // uuids, timestamps and dates read as their text.
        #[derive(Deserialize, Debug, PartialEq)]
        struct Loose {
            small: i64,
            medium: u8,
            single: f64,
            double: f32,
            price: String,
            id: String,
            at: String,
            on: String,
        }
        let loose: Loose = same_as_json(&typed_record()).unwrap();
        assert_eq!(loose.small, -3);
        assert_eq!(loose.price, "12.50");
        assert_eq!(loose.at, "2025-06-30T23:59:59.999999+00:00");
        assert_eq!(loose.on, "2025-07-01");
    }

    #[test]
    fn bytes_read_as_a_sequence_or_as_bytes() {
        /// Reads bytes only through `deserialize_byte_buf`.
        #[derive(Debug, PartialEq)]
        struct ByteBuf(Vec<u8>);
        impl<'de> Deserialize<'de> for ByteBuf {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<ByteBuf, D::Error> {
                struct Bytes;
                impl<'de> Visitor<'de> for Bytes {
                    type Value = ByteBuf;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E: de::Error>(
                        self,
                        v: &[u8],
                    ) -> std::result::Result<ByteBuf, E> {
                        Ok(ByteBuf(v.to_vec()))
                    }
                }
                d.deserialize_byte_buf(Bytes)
            }
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Payload {
            payload: ByteBuf,
        }
        let record = Record::new().with("payload", vec![0_u8, 255]);
        let payload: Payload = from_record(&record).unwrap();
        assert_eq!(payload.payload, ByteBuf(vec![0, 255]));
        #[derive(Deserialize, Debug, PartialEq)]
        struct Fixed {
            payload: [u8; 2],
        }
        let fixed: Fixed = same_as_json(&record).unwrap();
        assert_eq!(fixed.payload, [0, 255]);
        let short = Record::new().with("payload", vec![0_u8, 1, 2]);
        assert!(same_as_json::<Fixed>(&short).is_err());
    }

    #[test]
    fn null_nan_and_infinity_read_as_none() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Maybe {
            a: Option<i64>,
            b: Option<f64>,
            c: Option<f32>,
            d: Option<serde_json::Value>,
            e: Option<String>,
        }
        let record = Record::new()
            .with("a", Value::Null)
            .with("b", f64::NAN)
            .with("c", f32::NEG_INFINITY)
            .with("d", Value::Null)
            .with("e", "x");
        let maybe: Maybe = same_as_json(&record).unwrap();
        assert_eq!(
            maybe,
            Maybe {
                a: None,
                b: None,
                c: None,
                d: None,
                e: Some("x".into())
            }
        );
        // A JSON null in a jsonb field reads as None too; absent options
        // are None.
        let json_null = Record::new().with("d", json!(null));
        let maybe: Maybe = same_as_json(&json_null).unwrap();
        assert_eq!(maybe.d, None);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_a_decode_error_that_quotes_nothing() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Strict {
            n: i64,
        }
        let cases = [
            (Value::from("SECRET"), "invalid type: string, expected i64"),
            (Value::Null, "invalid type: null, expected i64"),
            (
                Value::F64(0.5),
                "invalid type: floating point, expected i64",
            ),
            (Value::Bool(true), "invalid type: boolean, expected i64"),
            (
                Value::Bytes(vec![1]),
                "invalid type: sequence, expected i64",
            ),
            (
                Value::Json(json!({"SECRET": 1})),
                "invalid type: map, expected i64",
            ),
            (
                Value::Uuid(Uuid::nil()),
                "invalid type: string, expected i64",
            ),
        ];
        for (value, reason) in cases {
            let record = Record::new().with("n", value.clone());
            let err = same_as_json::<Strict>(&record).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode);
            assert_eq!(
                err.to_string(),
                format!("cannot convert the record: {reason}"),
                "{value:?}"
            );
            assert!(!format!("{err:?}").contains("SECRET"));
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Small {
            n: u8,
        }
        let big = Record::new().with("n", 300_i64);
        let err = same_as_json::<Small>(&big).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot convert the record: invalid value: integer, expected u8"
        );
        let err = same_as_json::<Strict>(&Record::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot convert the record: missing field `n`"
        );
    }

    #[test]
    fn extra_fields_are_ignored_unless_the_type_denies_them() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Open {
            n: i64,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Closed {
            n: i64,
        }
        let record = Record::new().with("n", 1_i64).with("other", "SECRET");
        assert_eq!(same_as_json::<Open>(&record).unwrap(), Open { n: 1 });
        let err = same_as_json::<Closed>(&record).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot convert the record: unknown field `other`, expected `n`"
        );
    }

    #[test]
    fn enums_maps_and_wrappers_read_as_from_json() {
        #[derive(Deserialize, Debug, PartialEq)]
        enum Tier {
            Gold,
            Silver(i64),
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Member {
            tier: Tier,
        }
        let gold = Record::new().with("tier", "Gold");
        assert_eq!(
            same_as_json::<Member>(&gold).unwrap(),
            Member { tier: Tier::Gold }
        );
        let silver = Record::new().with("tier", json!({"Silver": 2}));
        assert_eq!(
            same_as_json::<Member>(&silver).unwrap(),
            Member {
                tier: Tier::Silver(2)
            }
        );
        for tier in [Value::from("SECRET"), Value::I64(1), Value::Null] {
            let record = Record::new().with("tier", tier);
            let err = same_as_json::<Member>(&record).unwrap_err();
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        // The record itself as an enum (one field) or a map.
        assert_eq!(
            same_as_json::<Tier>(&Record::new().with("Silver", 3_i64)).unwrap(),
            Tier::Silver(3)
        );
        assert!(same_as_json::<Tier>(&Record::new()).is_err());
        let map: std::collections::BTreeMap<String, serde_json::Value> =
            same_as_json(&typed_record()).unwrap();
        assert_eq!(map.len(), typed_record().len());
        #[derive(Deserialize, Debug, PartialEq)]
        struct Wrapped(Option<Member>);
        assert_eq!(
            same_as_json::<Wrapped>(&gold).unwrap(),
            Wrapped(Some(Member { tier: Tier::Gold }))
        );
    }

    #[test]
    fn records_and_pages_serialize_as_json_writes_their_values() {
        let record = typed_record().with("nan", f64::NAN);
        let json = serde_json::to_value(&record).unwrap();
        let expected: serde_json::Map<_, _> = record
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_json()))
            .collect();
        assert_eq!(json, serde_json::Value::Object(expected));
        assert_eq!(json["price"], json!("12.50"));
        assert_eq!(json["payload"], json!([0, 1, 255]));
        assert_eq!(json["at"], json!("2025-06-30T23:59:59.999999+00:00"));
        assert_eq!(json["nan"], json!(null));
        let page = crate::Page {
            rows: vec![Record::new().with("n", 1_i64)],
            total: Some(7),
            limit: 1,
            offset: 2,
            next: None,
            included: Default::default(),
        };
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({"rows": [{"n": 1}], "total": 7, "limit": 1, "offset": 2, "next": null})
        );
    }
}
