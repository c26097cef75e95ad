//! Records: the typed value maps that cross the API, with serde conversion.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use smol_str::SmolStr;

use super::model::Model;
use super::value::{FromValue, Value};
use crate::error::{quoted_name, Error, Result};

mod de;
mod ser;

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
#[derive(Clone, Default)]
pub struct Record {
    /// The field names, sorted, each once.
    names: Names,
    /// The values, in the order of `names`.
    values: Vec<Value>,
}

/// A record's field names.
#[derive(Clone)]
enum Names {
    /// The columns of the statement that answered the row, shared by every
    /// record decoded from it: one reference count for the row, not one
    /// name per column. A record changed in its names takes its own copy.
    Columns(Arc<Columns>),
    /// Names of its own. A name of up to 23 bytes is held inline: setting
    /// a field allocates nothing for its name.
    Own(Vec<SmolStr>),
}

impl Default for Names {
    fn default() -> Names {
        Names::Own(Vec::new())
    }
}

impl Names {
    fn as_slice(&self) -> &[SmolStr] {
        match self {
            Names::Columns(columns) => &columns.sorted,
            Names::Own(names) => names,
        }
    }

    /// The names as the record's own, to add or remove one.
    fn to_mut(&mut self) -> &mut Vec<SmolStr> {
        if let Names::Columns(_) = self {
            *self = Names::Own(std::mem::take(self).into_vec());
        }
        match self {
            Names::Own(names) => names,
            Names::Columns(_) => unreachable!("made its own above"),
        }
    }

    fn into_vec(self) -> Vec<SmolStr> {
        match self {
            Names::Columns(columns) => columns.sorted.clone(),
            Names::Own(names) => names,
        }
    }
}

impl Record {
    /// An empty record.
    pub fn new() -> Record {
        Record::default()
    }

    /// An empty record with room for `len` fields.
    fn with_capacity(len: usize) -> Record {
        Record {
            names: Names::Own(Vec::with_capacity(len)),
            values: Vec::with_capacity(len),
        }
    }

    /// The record of `names` and `values`, the `i`-th value the field of
    /// the `i`-th name: what `#[derive(Entity)]` builds, its names in
    /// order. Names that are not strictly in order (or a count that differs
    /// from the values') are set one by one, as [`Record::with`] does.
    #[doc(hidden)]
    pub fn from_sorted_fields(names: &[&'static str], values: Vec<Value>) -> Record {
        let in_order = names.len() == values.len() && names.windows(2).all(|w| w[0] < w[1]);
        if !in_order {
            let mut record = Record::with_capacity(names.len());
            for (name, value) in names.iter().zip(values) {
                record.set(name, value);
            }
            return record;
        }
        Record {
            names: Names::Own(names.iter().map(|name| SmolStr::new_static(name)).collect()),
            values,
        }
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
            Ok(at) => self.values[at] = value.into(),
            Err(at) => {
                self.names.to_mut().insert(at, SmolStr::new(field));
                self.values.insert(at, value.into());
            }
        }
    }

    /// Read a field as `T`. Fails with [`crate::ErrorKind::Decode`] when the
    /// field is missing or holds another type; read nullable fields as `Option<T>`.
    pub fn get<T: FromValue>(&self, field: &str) -> Result<T> {
        let value = self.value(field).ok_or_else(|| {
            Error::decode(format!("the record has no field {}", quoted_name(field)))
        })?;
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
        Some(&self.values[at])
    }

    /// Remove a field and return its value.
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        let at = self.position(field).ok()?;
        self.names.to_mut().remove(at);
        Some(self.values.remove(at))
    }

    /// The fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        let names = self.names.as_slice().iter().map(SmolStr::as_str);
        names.zip(&self.values)
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The fields in name order, by value.
    pub(crate) fn into_fields(self) -> Fields {
        self.names.into_vec().into_iter().zip(self.values)
    }

    /// The values in name order, the names dropped: a batch keeps its
    /// rows' values where they are.
    pub(crate) fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// Where `field` is, or where it would go.
    fn position(&self, field: &str) -> std::result::Result<usize, usize> {
        self.names
            .as_slice()
            .binary_search_by(|name| name.as_str().cmp(field))
    }

    /// The record of one row a table's statement answered: `value(i)` is
    /// the row's `i`-th column, in the order of `columns`' select list.
    pub(crate) fn from_row(
        columns: &Arc<Columns>,
        mut value: impl FnMut(usize) -> Result<Value>,
    ) -> Result<Record> {
        let mut values = Vec::with_capacity(columns.len());
        for &i in &columns.selected {
            values.push(value(i)?);
        }
        Ok(Record {
            names: Names::Columns(columns.clone()),
            values,
        })
    }

    /// Build a record for `model` from any serde-serializable struct or map.
    ///
    /// Each field is read with the model's type for it, as it would be
    /// from the JSON serde_json writes for the value: a string holding a
    /// uuid becomes a `uuid`, an RFC 3339 string a `timestamptz`, a
    /// `YYYY-MM-DD` string a `date`, a decimal string or a number a
    /// `numeric`; a `Vec<u8>` (or bytes) a `bytea`; `None`, NaN and
    /// infinities NULL; an integer becomes the field's integer, float or
    /// numeric type when it fits exactly.
    /// A `jsonb` field takes any serializable value as its JSON. Fields
    /// the model does not know, values the field's type refuses, and
    /// values that are not structs or maps are
    /// [`crate::ErrorKind::InvalidInput`] errors, which name the field and
    /// never quote the value.
    ///
    /// The value is serialized straight into the record, field by field:
    /// no JSON is built but for `jsonb` fields. It costs about twice what
    /// building the record by hand with [`Record::with`] costs (the
    /// strings parsed, the model's field looked up by name).
    pub fn from_serde<T: Serialize>(model: &Model, value: &T) -> Result<Record> {
        ser::to_record(model, value)
    }

    /// Convert the record into any type serde can deserialize.
    ///
    /// Values are given to serde as serde writes the matching Rust types
    /// (as [`Value::to_json`] writes them), so structs with `Uuid`,
    /// `DateTime<Utc>`, `NaiveDateTime`, `NaiveDate`, `NaiveTime`,
    /// `IpAddr`, `Decimal`, `Vec<u8>` and `serde_json::Value` fields work, a `jsonb` field also reads as any
    /// type its document deserializes to, NULL reads as `None`, and
    /// integers read as any integer type they fit. Fields the type does
    /// not name are skipped (unless it denies unknown fields). A value
    /// that does not fit, or a missing field, is a
    /// [`crate::ErrorKind::Decode`] error that names the field or the
    /// expected type and never quotes the value.
    ///
    /// The record is read in place: no JSON is built, and each field's
    /// value is visited once (a numeric, uuid, timestamp, date, time or
    /// address is formatted as its text for serde to parse). It costs about three times
    /// what reading the fields with [`Record::get`] costs.
    ///
    /// A [`Value::JsonText`] (a document nested deeper than
    /// [`crate::MAX_JSON_DEPTH`]) has no tree to give: converting a record
    /// holding one fails with [`crate::ErrorKind::Decode`] naming the field;
    /// read it from the record instead.
    pub fn to_serde<T: DeserializeOwned>(&self) -> Result<T> {
        if let Some((field, _)) = self.iter().find(|(_, v)| matches!(v, Value::JsonText(_))) {
            return Err(Error::decode(format!(
                "field \"{field}\" holds jsonb nested deeper than MAX_JSON_DEPTH, \
                 kept as text (Value::JsonText); read it from the record"
            )));
        }
        de::from_record(self)
    }
}

/// The columns a table's statements answer: their names in name order,
/// shared by every record decoded from them, and where each stands in the
/// select list.
#[derive(Debug)]
pub(crate) struct Columns {
    sorted: Vec<SmolStr>,
    /// For each name of `sorted`, its column's index in the select list.
    selected: Vec<usize>,
}

impl Columns {
    /// The columns of a select list, in its order.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Columns {
        let mut columns: Vec<(SmolStr, usize)> = names
            .into_iter()
            .enumerate()
            .map(|(at, name)| (SmolStr::new(name), at))
            .collect();
        columns.sort();
        let (sorted, selected) = columns.into_iter().unzip();
        Columns { sorted, selected }
    }

    /// How many columns a row holds.
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }
}

/// A record's fields by value, in name order.
pub(crate) type Fields = std::iter::Zip<std::vec::IntoIter<SmolStr>, std::vec::IntoIter<Value>>;

impl PartialEq for Record {
    /// Equal when they hold the same fields with the same values, however
    /// their names are held.
    fn eq(&self, other: &Record) -> bool {
        self.names.as_slice() == other.names.as_slice() && self.values == other.values
    }
}

impl Serialize for Record {
    /// A map of field to value, in name order, each value as
    /// [`Value`]'s `Serialize` writes it (as [`Value::to_json`] gives it
    /// in JSON).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
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
        RecordIntoIter(self.into_fields())
    }
}

/// A record's fields by value, in name order: what iterating over a
/// [`Record`] (not a reference to one) yields.
#[derive(Debug)]
pub struct RecordIntoIter(Fields);

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

    #[test]
    fn a_record_from_sorted_fields_is_the_record_with_builds_in_order_or_not() {
        let by_hand = Record::new().with("qty", 3_i64).with("sku", "A-1");
        let values = || vec![Value::I64(3), Value::Text("A-1".into())];
        let sorted = Record::from_sorted_fields(&["qty", "sku"], values());
        assert_eq!(sorted, by_hand);
        assert_eq!(sorted.get::<String>("sku").unwrap(), "A-1");
        // Out of order, or a name twice: set one by one, the last value kept.
        let values = vec![Value::Text("A-1".into()), Value::I64(3)];
        assert_eq!(Record::from_sorted_fields(&["sku", "qty"], values), by_hand);
        let twice = vec![Value::I64(1), Value::I64(3), Value::Text("A-1".into())];
        assert_eq!(
            Record::from_sorted_fields(&["qty", "qty", "sku"], twice),
            by_hand
        );
    }

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
        let columns = Arc::new(Columns::new(["id", "sku", "created_at"]));
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
    fn a_decoded_record_changes_like_any_other() {
        let columns = Arc::new(Columns::new(["sku", "id"]));
        let row = [Value::from("A-1"), Value::I64(7)];
        let decoded = || Record::from_row(&columns, |i| Ok(row[i].clone())).unwrap();
        let mut changed = decoded();
        changed.set("sku", "B-2");
        changed.set("note", "new");
        assert_eq!(changed.remove("id"), Some(Value::I64(7)));
        assert_eq!(
            changed,
            Record::new().with("sku", "B-2").with("note", "new")
        );
        // The records decoded from the same columns keep their names.
        let fresh = decoded();
        assert_eq!(fresh, Record::new().with("id", 7_i64).with("sku", "A-1"));
        let owned: Vec<(String, Value)> = fresh.into_iter().collect();
        assert_eq!(
            owned,
            [
                ("id".into(), Value::I64(7)),
                ("sku".into(), Value::from("A-1"))
            ]
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
    fn numeric_fields_round_trip_through_records_exactly() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Price {
            amount: rust_decimal::Decimal,
        }
        let model = Model::new("Price").field(Field::new("amount", FieldType::Numeric));
        for text in ["1234567890123456.789012345678", "12.50", "-0.001"] {
            let price = Price {
                amount: text.parse().unwrap(),
            };
            let record = Record::from_serde(&model, &price).unwrap();
            assert_eq!(record.value("amount"), Some(&Value::Numeric(price.amount)));
            let back = record.to_serde::<Price>().unwrap();
            assert_eq!(back, price);
            assert_eq!(back.amount.to_string(), text, "scale kept");
        }
    }

    #[test]
    fn a_record_that_does_not_convert_is_not_quoted_in_the_error() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Person {
            ssn: i64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Tier {
            Gold,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Member {
            tier: Tier,
            id: uuid::Uuid,
        }
        let wrong_type = Record::new().with("ssn", "SECRET-078-05-1120");
        let err = wrong_type.to_serde::<Person>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot convert the record: invalid type: string, expected i64"
        );
        let records = [
            Record::new()
                .with("tier", "SECRET")
                .with("id", uuid::Uuid::nil()),
            Record::new().with("tier", "Gold").with("id", "SECRET"),
        ];
        for record in records {
            let err = record.to_serde::<Member>().unwrap_err();
            assert!(!format!("{err} {err:?}").contains("SECRET"), "{err:?}");
        }
        let missing = Record::new().with("tier", "Gold");
        let err = missing.to_serde::<Member>().unwrap_err();
        assert!(err.to_string().contains("missing field `id`"), "{err}");
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
