//! [`Record::to_serde`]'s deserializer: serde reads the record's fields
//! straight from it, without building JSON first.
//!
//! Each value is given to serde as JSON would give it (see
//! [`Value::to_json`]): integers as `u64` when not negative (`i64`
//! otherwise), uuids, numerics, timestamps (RFC 3339) and dates as
//! strings, bytes as a sequence of numbers (or as bytes to a type that
//! asks for bytes), NaN and infinities as null, a `jsonb` tree through
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
            Value::Bytes(bytes) => {
                let mut seq = ByteSeq(bytes.iter());
                let value = visitor.visit_seq(&mut seq)?;
                match seq.0.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(
                        bytes.len(),
                        &"fewer elements in array",
                    )),
                }
            }
            Value::Json(json) => json.deserialize_any(visitor).map_err(DeError::json),
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
            Value::Bytes(_) => Unexpected::Seq,
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

/// A `bytea` value as JSON gives it: a sequence of numbers.
struct ByteSeq<'de>(std::slice::Iter<'de, u8>);

impl<'de> SeqAccess<'de> for ByteSeq<'de> {
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
