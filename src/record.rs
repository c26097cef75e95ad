//! Records: the typed value maps that cross the API, with serde conversion.

use serde::de::DeserializeOwned;
use serde::Serialize;
use smol_str::SmolStr;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::value::{FromValue, Value};

/// A row as a map from column name to [`Value`].
///
/// ```
/// use pgactor::Record;
/// let row = Record::new().with("sku", "A-1").with("quantity", 3_i64);
/// assert_eq!(row.get::<i64>("quantity")?, 3);
/// assert_eq!(row.get::<String>("sku")?, "A-1");
/// assert!(row.get::<bool>("quantity").is_err());
/// # Ok::<(), pgactor::Error>(())
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Record {
    /// Sorted by name, each name once. A name of up to 23 bytes is held
    /// inline (setting a field allocates nothing for its name); a longer
    /// one is shared: every record a table's statements answer holds the
    /// table's own (see [`Columns`]).
    fields: Vec<(SmolStr, Value)>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Record {
        Record::default()
    }

    /// Set a field, builder style.
    pub fn with(mut self, field: impl AsRef<str>, value: impl Into<Value>) -> Record {
        self.set(field, value);
        self
    }

    /// Set a field, replacing any previous value.
    pub fn set(&mut self, field: impl AsRef<str>, value: impl Into<Value>) {
        let field = field.as_ref();
        match self.position(field) {
            Ok(at) => self.fields[at].1 = value.into(),
            Err(at) => self.fields.insert(at, (SmolStr::new(field), value.into())),
        }
    }

    /// Read a field as `T`. Fails with [`crate::ErrorKind::Decode`] when the
    /// field is missing or holds another type; read nullable fields as `Option<T>`.
    pub fn get<T: FromValue>(&self, field: &str) -> Result<T> {
        let value = self
            .value(field)
            .ok_or_else(|| Error::decode(format!("the record has no field \"{field}\"")))?;
        T::from_value(value).ok_or_else(|| {
            Error::decode(format!(
                "field \"{field}\" holds {} and cannot be read as {}",
                value.type_name(),
                std::any::type_name::<T>()
            ))
        })
    }

    /// The raw value of a field.
    pub fn value(&self, field: &str) -> Option<&Value> {
        let at = self.position(field).ok()?;
        Some(&self.fields[at].1)
    }

    /// Remove a field and return its value.
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        let at = self.position(field).ok()?;
        Some(self.fields.remove(at).1)
    }

    /// The fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (&**k, v))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields in name order, by value, names as held.
    pub(crate) fn into_fields(self) -> std::vec::IntoIter<(SmolStr, Value)> {
        self.fields.into_iter()
    }

    /// Where `field` is, or where it would go.
    fn position(&self, field: &str) -> std::result::Result<usize, usize> {
        self.fields
            .binary_search_by(|(name, _)| (**name).cmp(field))
    }

    /// The record of one row a table's statement answered: `value(i)` is
    /// the row's `i`-th column, in the order of `columns`' select list.
    pub(crate) fn from_row(
        columns: &Columns,
        mut value: impl FnMut(usize) -> Result<Value>,
    ) -> Result<Record> {
        let mut fields = Vec::with_capacity(columns.len());
        for &i in &columns.by_name {
            fields.push((columns.names[i].clone(), value(i)?));
        }
        Ok(Record { fields })
    }

    /// Build a record for `model` from any serde-serializable struct or map.
    ///
    /// Each field is read with the model's type for it (a `String` holding a
    /// uuid becomes a `uuid`, an RFC 3339 string a `timestamptz`); fields the
    /// model does not know are an [`crate::ErrorKind::InvalidInput`] error.
    pub fn from_serde<T: Serialize>(model: &Model, value: &T) -> Result<Record> {
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
                .ok_or_else(|| unknown_field(model, &field))?;
            let value = Value::from_json(ty, &field, json)?;
            record.set(field, value);
        }
        Ok(record)
    }

    /// Convert the record into any type serde can deserialize.
    ///
    /// Values are written as serde writes the matching Rust types (see
    /// [`Value::to_json`]), so structs with `Uuid`, `DateTime<Utc>`,
    /// `NaiveDate`, `Decimal`, `Vec<u8>` and `serde_json::Value` fields work.
    pub fn to_serde<T: DeserializeOwned>(&self) -> Result<T> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_json()))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| Error::decode(format!("cannot convert the record: {e}")))
    }
}

pub(crate) fn unknown_field(model: &Model, field: &str) -> Error {
    Error::invalid_input(format!("model \"{}\" has no field {field:?}", model.name()))
}

/// The columns a table's statements answer, in select-list order, with
/// their names as every record decoded from them holds them (a clone of a
/// name is a copy of it when short, a reference count when long, never an
/// allocation).
#[derive(Debug)]
pub(crate) struct Columns {
    names: Vec<SmolStr>,
    /// Indices into `names`, in name order: the order of a record's fields.
    by_name: Vec<usize>,
}

impl Columns {
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Columns {
        let names: Vec<SmolStr> = names.into_iter().map(SmolStr::new).collect();
        let mut by_name: Vec<usize> = (0..names.len()).collect();
        by_name.sort_by(|&a, &b| names[a].cmp(&names[b]));
        Columns { names, by_name }
    }

    /// How many columns a row holds.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: Into<Value>> FromIterator<(K, V)> for Record {
    /// A field given twice keeps its last value.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Record {
        let mut record = Record::new();
        for (field, value) in iter {
            record.set(field, value);
        }
        record
    }
}

impl IntoIterator for Record {
    type Item = (String, Value);
    type IntoIter = RecordIntoIter;

    /// The fields in name order.
    fn into_iter(self) -> RecordIntoIter {
        RecordIntoIter(self.fields.into_iter())
    }
}

/// A record's fields by value, in name order: what iterating over a
/// [`Record`] (not a reference to one) yields.
#[derive(Debug)]
pub struct RecordIntoIter(std::vec::IntoIter<(SmolStr, Value)>);

impl Iterator for RecordIntoIter {
    type Item = (String, Value);

    fn next(&mut self) -> Option<(String, Value)> {
        let (name, value) = self.0.next()?;
        Some((name.into(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for RecordIntoIter {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Field, FieldType};
    use chrono::{DateTime, Utc};
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Stock {
        sku: String,
        quantity: i64,
        seen: DateTime<Utc>,
        note: Option<String>,
    }

    fn model() -> Model {
        Model::new("Stock")
            .field(Field::new("sku", FieldType::Text))
            .field(Field::new("quantity", FieldType::I32))
            .field(Field::new("seen", FieldType::Timestamptz))
            .field(Field::new("note", FieldType::Text).nullable())
    }

    #[test]
    fn fields_stay_in_name_order_and_a_name_holds_one_value() {
        let mut record = Record::new()
            .with("b", 1_i64)
            .with("a", 2_i64)
            .with("c", 3_i64);
        record.set("b", 4_i64);
        assert_eq!(
            record.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(record.get::<i64>("b").unwrap(), 4);
        assert_eq!(record.remove("a"), Some(Value::I64(2)));
        assert_eq!(record.remove("a"), None);
        assert_eq!(record.len(), 2);
        assert_eq!(format!("{record:?}"), r#"{"b": I64(4), "c": I64(3)}"#);
        let owned: Vec<(String, Value)> = record.into_iter().collect();
        assert_eq!(
            owned,
            [("b".into(), Value::I64(4)), ("c".into(), Value::I64(3))]
        );
        let collected: Record = [("x", 1_i64), ("x", 2_i64)].into_iter().collect();
        assert_eq!(collected, Record::new().with("x", 2_i64));
    }

    #[test]
    fn a_row_decodes_into_fields_in_name_order() {
        let columns = Columns::new(["id", "sku", "created_at"]);
        let row = [Value::I64(7), Value::from("A-1"), Value::Null];
        let record = Record::from_row(&columns, |i| Ok(row[i].clone())).unwrap();
        assert_eq!(
            record,
            Record::new()
                .with("sku", "A-1")
                .with("id", 7_i64)
                .with("created_at", Value::Null)
        );
        assert_eq!(
            record.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["created_at", "id", "sku"]
        );
    }

    #[test]
    fn structs_round_trip_through_records() {
        let stock = Stock {
            sku: "A".into(),
            quantity: 4,
            seen: Utc::now(),
            note: None,
        };
        let record = Record::from_serde(&model(), &stock).unwrap();
        assert_eq!(record.get::<i32>("quantity").unwrap(), 4);
        assert_eq!(record.value("note"), Some(&Value::Null));
        assert_eq!(record.to_serde::<Stock>().unwrap(), stock);
    }

    #[test]
    fn unknown_struct_fields_are_refused() {
        #[derive(Serialize)]
        struct Other {
            sku: String,
            colour: String,
        }
        let err = Record::from_serde(
            &model(),
            &Other {
                sku: "a".into(),
                colour: "red".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
