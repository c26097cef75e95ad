//! Records: the typed value maps that cross the API, with serde conversion.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    values: BTreeMap<String, Value>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Record {
        Record::default()
    }

    /// Set a field, builder style.
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Record {
        self.set(field, value);
        self
    }

    /// Set a field, replacing any previous value.
    pub fn set(&mut self, field: impl Into<String>, value: impl Into<Value>) {
        self.values.insert(field.into(), value.into());
    }

    /// Read a field as `T`. Fails with [`crate::ErrorKind::Decode`] when the
    /// field is missing or holds another type; read nullable fields as `Option<T>`.
    pub fn get<T: FromValue>(&self, field: &str) -> Result<T> {
        let value = self
            .values
            .get(field)
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
        self.values.get(field)
    }

    /// Remove a field and return its value.
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        self.values.remove(field)
    }

    /// The fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
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
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| Error::decode(format!("cannot convert the record: {e}")))
    }
}

pub(crate) fn unknown_field(model: &Model, field: &str) -> Error {
    Error::invalid_input(format!("model \"{}\" has no field {field:?}", model.name()))
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Record {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Record {
        Record {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl IntoIterator for Record {
    type Item = (String, Value);
    type IntoIter = std::collections::btree_map::IntoIter<String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.values.into_iter()
    }
}

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
