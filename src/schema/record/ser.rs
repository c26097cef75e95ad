//! [`Record::from_serde`]'s serializer: a struct or map written straight
//! into a record, each field read with the model's type for it as it is
//! serialized, without building JSON first.
//!
//! What a field takes is what it takes from JSON ([`Value::from_plain`]):
//! a string becomes a `uuid`, `timestamptz`, `timestamp`, `date`, `time`,
//! `inet` or `numeric` when the field has that type, a sequence of bytes a
//! `bytea`, a sequence an array (each element read with the element's
//! type), NaN and infinities NULL. A `jsonb` field takes the value as serde_json writes it.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{self, Impossible, Serialize, Serializer};

use super::Record;
use crate::error::Error;
use crate::schema::model::Model;
use crate::schema::value::{Elem, FieldType, Plain, Value};

/// `value` as a record of `model`'s fields.
pub(super) fn to_record<T: Serialize + ?Sized>(model: &Model, value: &T) -> crate::Result<Record> {
    value
        .serialize(RecordSerializer { model })
        .map_err(SerError::into_error)
}

/// Why a value did not serialize into a record.
#[derive(Debug)]
enum SerError {
    /// pgactor's own: a field the model does not know, a value its type
    /// refuses, a value that is not a struct or map.
    Record(Error),
    /// A `Serialize` impl's (or serde_json's, for a `jsonb` field).
    Custom(String),
}

impl SerError {
    fn into_error(self) -> Error {
        match self {
            SerError::Record(err) => err,
            SerError::Custom(reason) => {
                Error::invalid_input(format!("cannot serialize to a record: {reason}"))
            }
        }
    }

    fn json(err: serde_json::Error) -> SerError {
        SerError::Custom(err.to_string())
    }

    fn not_a_record() -> SerError {
        SerError::Record(Error::invalid_input(
            "only structs and maps convert to records",
        ))
    }
}

impl From<Error> for SerError {
    fn from(err: Error) -> SerError {
        SerError::Record(err)
    }
}

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerError::Record(err) => err.fmt(f),
            SerError::Custom(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> SerError {
        SerError::Custom(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, SerError>;

/// `fn $method(self, _: $arg) -> Result<$ok> { Err($err) }` for each.
macro_rules! refuse {
    ($err:expr; $($method:ident($($arg:ty),*) -> $ok:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ok> {
            Err($err)
        }
    )*};
}

/// The whole value: a struct or map becomes the record, its fields the
/// record's. A newtype struct or `Some` is what it holds; an enum variant
/// holding data is a record of one field named after the variant, as in
/// JSON. Anything else is refused.
struct RecordSerializer<'m> {
    model: &'m Model,
}

impl<'m> Serializer for RecordSerializer<'m> {
    type Ok = Record;
    type Error = SerError;
    type SerializeSeq = Impossible<Record, SerError>;
    type SerializeTuple = Impossible<Record, SerError>;
    type SerializeTupleStruct = Impossible<Record, SerError>;
    type SerializeTupleVariant =
        JsonVariant<'m, <serde_json::value::Serializer as Serializer>::SerializeTupleVariant>;
    type SerializeMap = Fields<'m>;
    type SerializeStruct = Fields<'m>;
    type SerializeStructVariant =
        JsonVariant<'m, <serde_json::value::Serializer as Serializer>::SerializeStructVariant>;

    refuse! { SerError::not_a_record();
        serialize_bool(bool) -> Record;
        serialize_i8(i8) -> Record;
        serialize_i16(i16) -> Record;
        serialize_i32(i32) -> Record;
        serialize_i64(i64) -> Record;
        serialize_i128(i128) -> Record;
        serialize_u8(u8) -> Record;
        serialize_u16(u16) -> Record;
        serialize_u32(u32) -> Record;
        serialize_u64(u64) -> Record;
        serialize_u128(u128) -> Record;
        serialize_f32(f32) -> Record;
        serialize_f64(f64) -> Record;
        serialize_char(char) -> Record;
        serialize_str(&str) -> Record;
        serialize_bytes(&[u8]) -> Record;
        serialize_none() -> Record;
        serialize_unit() -> Record;
        serialize_unit_struct(&'static str) -> Record;
        serialize_unit_variant(&'static str, u32, &'static str) -> Record;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Record> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Record> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Record> {
        let mut fields = Fields::new(self.model, 1);
        fields.set(variant, value)?;
        Ok(fields.record)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        let json = serde_json::value::Serializer
            .serialize_tuple_variant(name, index, variant, len)
            .map_err(SerError::json)?;
        Ok(JsonVariant::new(self.model, variant, json))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Fields<'m>> {
        Ok(Fields::new(self.model, len.unwrap_or_default()))
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Fields<'m>> {
        Ok(Fields::new(self.model, len))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        let json = serde_json::value::Serializer
            .serialize_struct_variant(name, index, variant, len)
            .map_err(SerError::json)?;
        Ok(JsonVariant::new(self.model, variant, json))
    }
}

/// The fields of a struct or map as they are serialized.
struct Fields<'m> {
    model: &'m Model,
    record: Record,
    /// A map's key, until its value comes.
    key: Option<String>,
}

impl<'m> Fields<'m> {
    fn new(model: &'m Model, len: usize) -> Fields<'m> {
        Fields {
            model,
            record: Record::with_capacity(len),
            key: None,
        }
    }

    /// Serialize `value` as the model's field `field` and set it.
    fn set<T: Serialize + ?Sized>(&mut self, field: &str, value: &T) -> Result<()> {
        let ty = self
            .model
            .column_type(field)
            .ok_or_else(|| Error::unknown_field(self.model.name(), field))?;
        let value = match ty {
            FieldType::Json => {
                let json = serde_json::to_value(value).map_err(SerError::json)?;
                Value::from_json(ty, field, json)?
            }
            _ => value.serialize(FieldSerializer { ty, field })?,
        };
        self.record.set(field, value);
        Ok(())
    }

    /// The record of an enum variant holding data, from serde_json's
    /// `{variant: data}`.
    fn variant(mut self, variant: &str, json: serde_json::Value) -> Result<Record> {
        let data = match json {
            serde_json::Value::Object(mut map) => map.remove(variant),
            _ => None,
        };
        self.set(variant, &data)?;
        Ok(self.record)
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = Record;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.set(key, value)
    }

    fn end(self) -> Result<Record> {
        Ok(self.record)
    }
}

impl ser::SerializeMap for Fields<'_> {
    type Ok = Record;
    type Error = SerError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <SerError as ser::Error>::custom("a map value came without its key"))?;
        self.set(&key, value)
    }

    fn end(self) -> Result<Record> {
        Ok(self.record)
    }
}

/// An enum variant holding a tuple or struct, built as JSON by
/// serde_json's compound `C`: the record's one field, named after the
/// variant, holds that JSON.
struct JsonVariant<'m, C> {
    fields: Fields<'m>,
    variant: &'static str,
    json: C,
}

impl<'m, C> JsonVariant<'m, C> {
    fn new(model: &'m Model, variant: &'static str, json: C) -> JsonVariant<'m, C> {
        JsonVariant {
            fields: Fields::new(model, 1),
            variant,
            json,
        }
    }
}

impl<C> ser::SerializeTupleVariant for JsonVariant<'_, C>
where
    C: ser::SerializeTupleVariant<Ok = serde_json::Value, Error = serde_json::Error>,
{
    type Ok = Record;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.json.serialize_field(value).map_err(SerError::json)
    }

    fn end(self) -> Result<Record> {
        let json = self.json.end().map_err(SerError::json)?;
        self.fields.variant(self.variant, json)
    }
}

impl<C> ser::SerializeStructVariant for JsonVariant<'_, C>
where
    C: ser::SerializeStructVariant<Ok = serde_json::Value, Error = serde_json::Error>,
{
    type Ok = Record;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.json
            .serialize_field(key, value)
            .map_err(SerError::json)
    }

    fn end(self) -> Result<Record> {
        let json = self.json.end().map_err(SerError::json)?;
        self.fields.variant(self.variant, json)
    }
}

/// One field's value, read with the field's type (not `jsonb`: that
/// field takes JSON).
struct FieldSerializer<'f> {
    ty: FieldType,
    field: &'f str,
}

impl FieldSerializer<'_> {
    fn read(self, plain: Plain<'_>) -> Result<Value> {
        Ok(Value::from_plain(self.ty, self.field, plain)?)
    }

    fn int(self, n: impl TryInto<i64>) -> Result<Value> {
        self.read(n.try_into().map_or(Plain::OutOfRange, Plain::Int))
    }
}

impl<'f> Serializer for FieldSerializer<'f> {
    type Ok = Value;
    type Error = SerError;
    type SerializeSeq = Seq<'f>;
    type SerializeTuple = Seq<'f>;
    type SerializeTupleStruct = Seq<'f>;
    type SerializeTupleVariant = Object<'f>;
    type SerializeMap = Object<'f>;
    type SerializeStruct = Object<'f>;
    type SerializeStructVariant = Object<'f>;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        self.read(Plain::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value> {
        self.int(v)
    }

    fn serialize_i16(self, v: i16) -> Result<Value> {
        self.int(v)
    }

    fn serialize_i32(self, v: i32) -> Result<Value> {
        self.int(v)
    }

    fn serialize_i64(self, v: i64) -> Result<Value> {
        self.int(v)
    }

    fn serialize_i128(self, v: i128) -> Result<Value> {
        self.int(v)
    }

    fn serialize_u8(self, v: u8) -> Result<Value> {
        self.int(v)
    }

    fn serialize_u16(self, v: u16) -> Result<Value> {
        self.int(v)
    }

    fn serialize_u32(self, v: u32) -> Result<Value> {
        self.int(v)
    }

    fn serialize_u64(self, v: u64) -> Result<Value> {
        self.int(v)
    }

    fn serialize_u128(self, v: u128) -> Result<Value> {
        self.int(v)
    }

    fn serialize_f32(self, v: f32) -> Result<Value> {
        self.read(Plain::float(f64::from(v)))
    }

    fn serialize_f64(self, v: f64) -> Result<Value> {
        self.read(Plain::float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value> {
        self.read(Plain::Str(Cow::Borrowed(v.encode_utf8(&mut [0; 4]))))
    }

    fn serialize_str(self, v: &str) -> Result<Value> {
        self.read(Plain::Str(Cow::Borrowed(v)))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        self.read(Plain::Bytes(Cow::Borrowed(v)))
    }

    fn serialize_none(self) -> Result<Value> {
        self.read(Plain::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value> {
        self.read(Plain::Null)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<Value> {
        self.read(Plain::Null)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value> {
        self.read(Plain::Str(Cow::Borrowed(variant)))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Value> {
        self.read(Plain::Object)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'f>> {
        Ok(Seq::new(self))
    }

    fn serialize_tuple(self, _: usize) -> Result<Seq<'f>> {
        Ok(Seq::new(self))
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'f>> {
        Ok(Seq::new(self))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Object<'f>> {
        Ok(Object(self))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Ok(Object(self))
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Ok(Object(self))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Ok(Object(self))
    }
}

/// A sequence given to a field: an array field's elements, each read with
/// the element's type; for any other field, bytes when every element is a
/// number from 0 to 255 (serde writes a `Vec<u8>` so), which a `bytea`
/// field takes.
struct Seq<'f> {
    field: FieldSerializer<'f>,
    items: Items,
}

enum Items {
    /// An array field's elements so far.
    Elements(Elem, Vec<Value>),
    /// The bytes so far; `None` once an element is not a byte.
    Bytes(Option<Vec<u8>>),
}

impl<'f> Seq<'f> {
    fn new(field: FieldSerializer<'f>) -> Seq<'f> {
        let items = match field.ty {
            FieldType::Array(elem) => Items::Elements(elem, Vec::new()),
            _ => Items::Bytes(Some(Vec::new())),
        };
        Seq { field, items }
    }

    fn push<T: Serialize + ?Sized>(&mut self, element: &T) -> Result<()> {
        match &mut self.items {
            Items::Elements(elem, items) => {
                let ty = elem.field_type();
                // A nested sequence is read with the scalar type, which refuses it.
                items.push(element.serialize(FieldSerializer {
                    ty,
                    field: self.field.field,
                })?);
            }
            Items::Bytes(bytes @ Some(_)) => {
                let json = serde_json::to_value(element).map_err(SerError::json)?;
                match (
                    bytes.as_mut(),
                    json.as_u64().and_then(|b| u8::try_from(b).ok()),
                ) {
                    (Some(bytes), Some(byte)) => bytes.push(byte),
                    _ => *bytes = None,
                }
            }
            Items::Bytes(None) => {}
        }
        Ok(())
    }

    fn end(self) -> Result<Value> {
        let plain = match self.items {
            // Each element was read with the element's type.
            Items::Elements(_, items) => return Ok(Value::Array(items)),
            Items::Bytes(Some(bytes)) => Plain::Bytes(Cow::Owned(bytes)),
            Items::Bytes(None) => Plain::Array,
        };
        self.field.read(plain)
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }

    fn end(self) -> Result<Value> {
        Seq::end(self)
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }

    fn end(self) -> Result<Value> {
        Seq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }

    fn end(self) -> Result<Value> {
        Seq::end(self)
    }
}

/// A map, struct or enum variant with fields given to a field: only
/// `jsonb` takes one, and that field is written as JSON instead, so its
/// contents are skipped and the field's type refuses it at the end.
struct Object<'f>(FieldSerializer<'f>);

impl ser::SerializeMap for Object<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<()> {
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<()> {
        Ok(())
    }

    fn end(self) -> Result<Value> {
        self.0.read(Plain::Object)
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, _: &T) -> Result<()> {
        Ok(())
    }

    fn end(self) -> Result<Value> {
        self.0.read(Plain::Object)
    }
}

impl ser::SerializeStructVariant for Object<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, _: &T) -> Result<()> {
        Ok(())
    }

    fn end(self) -> Result<Value> {
        self.0.read(Plain::Object)
    }
}

impl ser::SerializeTupleVariant for Object<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<()> {
        Ok(())
    }

    fn end(self) -> Result<Value> {
        self.0.read(Plain::Object)
    }
}

/// A map's key, as JSON takes one: a string, char, bool, integer or unit
/// variant, as its text.
struct KeySerializer;

fn key_must_be_a_string() -> SerError {
    SerError::Custom("key must be a string".to_owned())
}

impl Serializer for KeySerializer {
    type Ok = String;
    type Error = SerError;
    type SerializeSeq = Impossible<String, SerError>;
    type SerializeTuple = Impossible<String, SerError>;
    type SerializeTupleStruct = Impossible<String, SerError>;
    type SerializeTupleVariant = Impossible<String, SerError>;
    type SerializeMap = Impossible<String, SerError>;
    type SerializeStruct = Impossible<String, SerError>;
    type SerializeStructVariant = Impossible<String, SerError>;

    fn serialize_bool(self, v: bool) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_i128(self, v: i128) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_u128(self, v: u128) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_owned())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String> {
        Ok(variant.to_owned())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String> {
        value.serialize(self)
    }

    refuse! { key_must_be_a_string();
        serialize_f32(f32) -> String;
        serialize_f64(f64) -> String;
        serialize_bytes(&[u8]) -> String;
        serialize_none() -> String;
        serialize_unit() -> String;
        serialize_unit_struct(&'static str) -> String;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String> {
        Err(key_must_be_a_string())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::Field;
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;
    use serde::Serialize;
    use serde_json::json;
    use uuid::Uuid;

    fn model() -> Model {
        Model::new("All")
            .field(Field::new("flag", FieldType::Bool))
            .field(Field::new("small", FieldType::I16))
            .field(Field::new("medium", FieldType::I32))
            .field(Field::new("big", FieldType::I64))
            .field(Field::new("single", FieldType::F32))
            .field(Field::new("double", FieldType::F64))
            .field(Field::new("price", FieldType::Numeric))
            .field(Field::new("name", FieldType::Text))
            .field(Field::new("code", FieldType::Varchar(4)))
            .field(Field::new("payload", FieldType::Bytes))
            .field(Field::new("at", FieldType::Timestamptz))
            .field(Field::new("on", FieldType::Date))
            .field(Field::new("meta", FieldType::Json))
            .field(Field::new("note", FieldType::Text).nullable())
            .field(Field::new("local", FieldType::Timestamp))
            .field(Field::new("clock", FieldType::Time))
            .field(Field::new("addr", FieldType::Inet).nullable())
            .field(Field::new("counts", FieldType::Array(crate::Elem::I64)))
            .field(Field::new("tags", FieldType::Array(crate::Elem::Text)).nullable())
    }

    /// The record as the JSON round trip builds it: what the serializer
    /// must match.
    fn via_json<T: Serialize>(model: &Model, value: &T) -> crate::Result<Record> {
        let json = serde_json::to_value(value)
            .map_err(|e| Error::invalid_input(format!("cannot serialize to a record: {e}")))?;
        let serde_json::Value::Object(map) = json else {
            return Err(Error::invalid_input(
                "only structs and maps convert to records",
            ));
        };
        let mut record = Record::new();
        for (field, json) in map {
            let ty = model
                .column_type(&field)
                .ok_or_else(|| Error::unknown_field(model.name(), &field))?;
            record.set(&field, Value::from_json(ty, &field, json)?);
        }
        Ok(record)
    }

    #[test]
    fn timestamps_times_and_addresses_serialize_as_their_values() {
        #[derive(Serialize)]
        struct Stamps {
            local: chrono::NaiveDateTime,
            clock: chrono::NaiveTime,
            addr: Option<std::net::IpAddr>,
        }
        let local = NaiveDate::from_ymd_opt(2025, 7, 1)
            .unwrap()
            .and_hms_micro_opt(12, 30, 5, 250)
            .unwrap();
        let addr: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let stamps = Stamps {
            local,
            clock: local.time(),
            addr: Some(addr),
        };
        let record = same_as_json(&stamps).unwrap();
        let expected = Record::new()
            .with("local", local)
            .with("clock", local.time())
            .with("addr", addr);
        assert_eq!(record, expected);
        let err = same_as_json(&json!({"addr": "not an address"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.to_string().contains("not an address"), "{err}");
    }

    #[test]
    fn vecs_serialize_as_arrays_of_the_element_type() {
        #[derive(Serialize)]
        struct Lists {
            counts: Vec<i16>,
            tags: Option<Vec<Option<String>>>,
            payload: Vec<u8>,
        }
        let lists = Lists {
            counts: vec![1, 2],
            tags: Some(vec![Some("a".into()), None]),
            payload: vec![1, 2],
        };
        let record = same_as_json(&lists).unwrap();
        let expected = Record::new()
            .with("counts", vec![1_i64, 2])
            .with("tags", vec![Some("a".to_owned()), None])
            .with("payload", vec![1_u8, 2]);
        assert_eq!(record, expected);
        let empty = same_as_json(&json!({"counts": [], "tags": null})).unwrap();
        assert_eq!(empty.value("counts"), Some(&Value::Array(vec![])));
        assert_eq!(empty.value("tags"), Some(&Value::Null));
        for bad in [
            json!({"counts": [[1]]}),
            json!({"tags": ["SECRET", 7]}),
            json!({"counts": "SECRET"}),
        ] {
            let err = same_as_json(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
    }

    /// `value` converts as the JSON round trip converts it, to the same
    /// record or the same error.
    fn same_as_json<T: Serialize>(value: &T) -> crate::Result<Record> {
        let (direct, json) = (to_record(&model(), value), via_json(&model(), value));
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

    /// A `Vec<u8>` that serializes as bytes, not as a sequence.
    struct AsBytes(Vec<u8>);

    impl Serialize for AsBytes {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    #[test]
    fn every_type_converts_from_its_rust_type_and_from_strings() {
        #[derive(Serialize)]
        struct Typed {
            flag: bool,
            small: i16,
            medium: u8,
            big: i64,
            single: f32,
            double: f64,
            price: Decimal,
            name: String,
            code: char,
            payload: Vec<u8>,
            at: DateTime<Utc>,
            on: NaiveDate,
            meta: serde_json::Value,
            note: Option<String>,
        }
        let at = DateTime::parse_from_rfc3339("2025-06-30T23:59:59.999999Z")
            .unwrap()
            .with_timezone(&Utc);
        let on = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
        let typed = Typed {
            flag: true,
            small: -3,
            medium: 200,
            big: i64::MIN,
            single: 1.5,
            double: -2.25,
            price: "12.50".parse().unwrap(),
            name: "A-1".into(),
            code: 'é',
            payload: vec![0, 1, 255],
            at,
            on,
            meta: json!({"tags": ["x"], "n": {"m": 1}}),
            note: None,
        };
        let record = same_as_json(&typed).unwrap();
        let expected = Record::new()
            .with("flag", true)
            .with("small", -3_i16)
            .with("medium", 200_i32)
            .with("big", i64::MIN)
            .with("single", 1.5_f32)
            .with("double", -2.25_f64)
            .with("price", "12.50".parse::<Decimal>().unwrap())
            .with("name", "A-1")
            .with("code", "é")
            .with("payload", vec![0_u8, 1, 255])
            .with("at", at)
            .with("on", on)
            .with("meta", json!({"tags": ["x"], "n": {"m": 1}}))
            .with("note", Value::Null);
        assert_eq!(record, expected);

        // As JSON gives them: strings for uuids, numerics, timestamps,
        // dates; numbers for numerics and floats.
        let id = Uuid::now_v7();
        let strings = json!({
            "id": id.to_string(),
            "price": "-0.001",
            "at": "2025-06-30T23:59:59.999999+02:00",
            "on": "2025-07-01",
            "payload": [7, 8],
            "double": 3,
            "single": 0.5,
        });
        let record = same_as_json(&strings).unwrap();
        assert_eq!(record.value("id"), Some(&Value::Uuid(id)));
        assert_eq!(
            record.get::<Decimal>("price").unwrap().to_string(),
            "-0.001"
        );
        assert_eq!(
            record.get::<DateTime<Utc>>("at").unwrap(),
            at - chrono::Duration::hours(2)
        );
        assert_eq!(record.value("payload"), Some(&Value::Bytes(vec![7, 8])));
        assert_eq!(record.value("double"), Some(&Value::F64(3.0)));
        assert_eq!(record.value("single"), Some(&Value::F32(0.5)));
        let numeric = same_as_json(&json!({"price": 2.5})).unwrap();
        assert_eq!(
            numeric.value("price"),
            Some(&Value::Numeric("2.5".parse().unwrap()))
        );
    }

    #[test]
    fn bytes_serialized_as_bytes_are_a_bytea() {
        let record = to_record(&model(), &json!({})).unwrap();
        assert!(record.is_empty());
        let mut map = std::collections::BTreeMap::new();
        map.insert("payload", AsBytes(vec![9, 0, 255]));
        let record = to_record(&model(), &map).unwrap();
        assert_eq!(
            record.value("payload"),
            Some(&Value::Bytes(vec![9, 0, 255]))
        );
        let mut map = std::collections::BTreeMap::new();
        map.insert("name", AsBytes(vec![9]));
        let err = to_record(&model(), &map).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field \"name\" is text and cannot take JSON array"
        );
    }

    #[test]
    fn nulls_nan_and_options_are_null() {
        #[derive(Serialize)]
        struct Nulls {
            note: Option<String>,
            double: f64,
            single: Option<f32>,
            meta: Option<serde_json::Value>,
            name: Option<String>,
        }
        let nulls = Nulls {
            note: None,
            double: f64::NAN,
            single: Some(f32::INFINITY),
            meta: None,
            name: Some("x".into()),
        };
        let record = same_as_json(&nulls).unwrap();
        for field in ["note", "double", "single", "meta"] {
            assert_eq!(record.value(field), Some(&Value::Null), "{field}");
        }
        assert_eq!(record.value("name"), Some(&Value::from("x")));
        // JSON null inside a jsonb document stays in the document.
        let record = same_as_json(&json!({"meta": {"k": null}})).unwrap();
        assert_eq!(record.value("meta"), Some(&Value::Json(json!({"k": null}))));
    }

    #[test]
    fn values_the_field_type_refuses_are_errors_that_quote_nothing() {
        let cases = [
            (json!({"big": "SECRET"}), "field \"big\" is bigint and cannot take JSON string"),
            (json!({"small": 70000}), "the value is out of range for field \"small\" (smallint)"),
            (json!({"big": u64::MAX}), "field \"big\" is bigint and cannot take a number out of range"),
            (json!({"id": "SECRET"}), "field \"id\" is uuid and cannot take a string that is not a uuid"),
            (json!({"on": "SECRET"}), "field \"on\" is date and cannot take a string that is not a YYYY-MM-DD date"),
            (json!({"at": "SECRET"}), "field \"at\" is timestamptz and cannot take a string that is not an RFC 3339 timestamp"),
            (json!({"price": "SECRET"}), "field \"price\" is numeric and cannot take a string that is not a number"),
            (json!({"payload": [1, 256]}), "field \"payload\" is bytea and cannot take an array that is not a list of bytes"),
            (json!({"name": [1]}), "field \"name\" is text and cannot take JSON array"),
            (json!({"name": {"SECRET": 1}}), "field \"name\" is text and cannot take JSON object"),
            (json!({"flag": 1}), "field \"flag\" is boolean and cannot take i64"),
            (json!({"name": true}), "field \"name\" is text and cannot take JSON bool"),
            (json!({"code": "SECRET"}), "field \"code\" is varchar(4) and the value has 6 characters"),
            (json!({"colour": "SECRET"}), "model \"All\" has no field \"colour\""),
        ];
        for (json, message) in cases {
            let err = same_as_json(&json).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{json}");
            assert_eq!(err.to_string(), message, "{json}");
            assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
        }
        let err = same_as_json(&u64::MAX).unwrap_err();
        assert_eq!(err.to_string(), "only structs and maps convert to records");
        assert!(same_as_json(&["a"]).is_err());
    }

    #[test]
    fn extra_fields_and_enum_shapes_convert_as_in_json() {
        #[derive(Serialize)]
        struct Extra {
            name: String,
            colour: String,
        }
        let extra = Extra {
            name: "a".into(),
            colour: "red".into(),
        };
        let err = same_as_json(&extra).unwrap_err();
        assert_eq!(err.to_string(), "model \"All\" has no field \"colour\"");

        #[derive(Serialize)]
        enum Shape {
            #[serde(rename = "name")]
            Named(String),
            #[serde(rename = "meta")]
            Fields {
                x: i32,
            },
            #[serde(rename = "note")]
            Pair(i32, i32),
            Unit,
        }
        let named = same_as_json(&Shape::Named("n".into())).unwrap();
        assert_eq!(named, Record::new().with("name", "n"));
        let fields = same_as_json(&Shape::Fields { x: 1 }).unwrap();
        assert_eq!(fields, Record::new().with("meta", json!({"x": 1})));
        assert!(same_as_json(&Shape::Pair(1, 2)).is_err());
        assert!(same_as_json(&Shape::Unit).is_err());

        #[derive(Serialize)]
        struct Wrapped(Option<Extra>);
        assert!(same_as_json(&Wrapped(Some(extra))).is_err());
        let mut keyed = std::collections::BTreeMap::new();
        keyed.insert(1, "x");
        assert!(same_as_json(&keyed).is_err());
        let mut keyed = std::collections::BTreeMap::new();
        keyed.insert(Some("name"), "x");
        let err = to_record(&model(), &keyed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot serialize to a record: key must be a string"
        );
    }
}
