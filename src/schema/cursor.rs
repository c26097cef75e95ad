//! Keyset pagination: the [`Cursor`] a full page answers, and the sort
//! key it holds.
//!
//! A cursor holds the values of the last row's sort key (its sort fields,
//! then `id`) and a fingerprint of the sort they belong to (the model, the
//! fields and their directions). On the wire it is an opaque token:
//! base64url (no padding) of a small JSON array. A token is checked when it
//! is read ([`Cursor::parse`]: its length, its encoding) and again when a
//! `List` uses it (its sort, the number and types of its values), so a
//! garbled, tampered or foreign cursor is refused with
//! [`crate::ErrorKind::InvalidInput`] before any SQL is sent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value as Json;

use super::ident::fnv1a;
use super::model::{Model, ID};
use super::query::{Direction, Sort};
use super::value::{FieldType, Value};
use crate::error::{Error, Result};

/// The longest cursor token, in bytes: a longer token is refused by
/// [`Cursor::parse`] without being decoded, and a page whose last row's
/// sort key would encode longer answers no cursor (`Page::next` is `None`;
/// page by offset, or sort by shorter fields).
pub const MAX_CURSOR_LEN: usize = 4096;

/// Mixed into every fingerprint: a cursor of another encoding is refused.
const ENCODING: &[u8] = b"pgactor-cursor-1";

/// Where the next page of a `List` starts: after the row whose sort key
/// the cursor holds. A full page answers one in `Page::next`;
/// [`crate::Query::after`] continues from it.
///
/// Its token ([`Cursor::token`], `Display`, serde as a string) is safe to
/// hand to end users and take back from them: it is checked when read and
/// when used, and a cursor of another sort or model, of values of the wrong
/// type, or of garbage is refused with [`crate::ErrorKind::InvalidInput`].
/// It is not a secret nor signed: it holds the last row's sort values
/// (readable by anyone who decodes it), and an edited token only moves where
/// the page starts within what the query's filter already selects.
///
/// ```
/// use pgactor::{Cursor, ErrorKind};
/// let err = Cursor::parse("not a cursor!").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Cursor {
    token: String,
    /// The fingerprint of the sort the values belong to.
    shape: u64,
    /// The sort key's values, as the token encodes them.
    keys: Vec<Json>,
}

impl Cursor {
    /// Read a token a page answered. Refused with
    /// [`crate::ErrorKind::InvalidInput`] when longer than
    /// [`MAX_CURSOR_LEN`] or not a cursor's encoding; whether it fits the
    /// query is checked when a `List` uses it.
    pub fn parse(token: &str) -> Result<Cursor> {
        if token.len() > MAX_CURSOR_LEN {
            return Err(Error::invalid_input(format!(
                "a cursor is at most {MAX_CURSOR_LEN} bytes and this one has {}",
                token.len()
            )));
        }
        let garbled = || Error::invalid_input("the cursor is not one a page answered");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| garbled())?;
        let Ok(Json::Array(mut items)) = serde_json::from_slice::<Json>(&bytes) else {
            return Err(garbled());
        };
        let shape = match items.first().and_then(Json::as_u64) {
            Some(shape) if items.len() >= 2 => shape,
            _ => return Err(garbled()),
        };
        items.remove(0);
        Ok(Cursor {
            token: token.to_owned(),
            shape,
            keys: items,
        })
    }

    /// The token: what to hand to a client, and read back with
    /// [`Cursor::parse`].
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl std::str::FromStr for Cursor {
    type Err = Error;
    /// [`Cursor::parse`].
    fn from_str(token: &str) -> Result<Cursor> {
        Cursor::parse(token)
    }
}

impl std::fmt::Display for Cursor {
    /// The token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.token)
    }
}

impl std::fmt::Debug for Cursor {
    /// The token's length, not its values (user data).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cursor({} bytes)", self.token.len())
    }
}

impl serde::Serialize for Cursor {
    /// As its token.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.token)
    }
}

impl<'de> serde::Deserialize<'de> for Cursor {
    /// From its token, checked as [`Cursor::parse`] checks it.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Cursor, D::Error> {
        let token = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Cursor::parse(&token).map_err(serde::de::Error::custom)
    }
}

/// One field of a sort key.
#[derive(Debug)]
pub(crate) struct Key {
    pub(crate) field: String,
    pub(crate) ty: FieldType,
    pub(crate) direction: Direction,
    pub(crate) nullable: bool,
    /// Where the field stands in the table's select list.
    pub(crate) column: usize,
}

/// The sort key of a `List`: its sort fields up to `id`, then `id` (the
/// tie-breaker every list sorts by last), when a cursor can follow it.
#[derive(Debug)]
pub(crate) struct Keyset {
    pub(crate) keys: Vec<Key>,
    shape: u64,
}

impl Keyset {
    /// The key of `sort` on `model`; refused when a field is unknown or of
    /// a type whose values do not read back exactly (`jsonb`, arrays,
    /// `inet`) or whose order pgactor does not know (a custom type), so a
    /// cursor cannot hold them.
    pub(crate) fn new(model: &Model, sort: &[Sort]) -> Result<Keyset> {
        let columns: Vec<&str> = model.column_names().collect();
        let id = Sort {
            field: ID.into(),
            direction: Direction::Asc,
        };
        let until_id = sort.iter().position(|s| s.field == ID);
        let sort = match until_id {
            Some(at) => &sort[..=at],
            None => sort,
        };
        let mut hash = ENCODING.to_vec();
        hash.extend_from_slice(model.name().as_bytes());
        let mut keys = Vec::with_capacity(sort.len() + 1);
        for s in sort.iter().chain(until_id.is_none().then_some(&id)) {
            let ty = model
                .column_type(&s.field)
                .ok_or_else(|| Error::unknown_field(model.name(), &s.field))?;
            if matches!(
                ty,
                FieldType::Json | FieldType::Array(_) | FieldType::Inet | FieldType::Custom(_)
            ) {
                return Err(Error::invalid_input(format!(
                    "a cursor cannot follow a sort on \"{}\" ({}): page by offset",
                    s.field,
                    ty.sql()
                )));
            }
            let column = columns.iter().position(|c| *c == s.field).unwrap_or(0);
            let direction = match s.direction {
                Direction::Asc => b'a',
                Direction::Desc => b'd',
            };
            hash.extend_from_slice(&[0]);
            hash.extend_from_slice(s.field.as_bytes());
            hash.extend_from_slice(&[0, direction]);
            keys.push(Key {
                field: s.field.clone(),
                ty,
                direction: s.direction,
                nullable: model.column_is_nullable(&s.field),
                column,
            });
        }
        Ok(Keyset {
            keys,
            shape: fnv1a(&hash),
        })
    }

    /// The values of `cursor`, one per key, each of its field's type;
    /// refused when the cursor was made for another sort or model, or its
    /// values are not of the key's types (NULL only in nullable fields).
    pub(crate) fn values(&self, cursor: &Cursor) -> Result<Vec<Value>> {
        if cursor.shape != self.shape || cursor.keys.len() != self.keys.len() {
            return Err(Error::invalid_input(
                "the cursor was made for another sort or model than this query's",
            ));
        }
        self.keys
            .iter()
            .zip(&cursor.keys)
            .map(|(key, json)| {
                let value = match (key.ty, json) {
                    (FieldType::F32, Json::String(s)) => s.parse::<f32>().ok().map(Value::F32),
                    (FieldType::F64, Json::String(s)) => s.parse::<f64>().ok().map(Value::F64),
                    (FieldType::F32 | FieldType::F64, _) => None,
                    (ty, json) => Value::from_json(ty, &key.field, json.clone()).ok(),
                };
                match value {
                    Some(Value::Null) if !key.nullable => None,
                    other => other,
                }
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "the cursor's value of \"{}\" is not a {}",
                        key.field,
                        key.ty.sql()
                    ))
                })
            })
            .collect()
    }

    /// The cursor after a row whose key values `read` gives (by column
    /// index); `None` when it would be longer than [`MAX_CURSOR_LEN`].
    pub(crate) fn cursor(
        &self,
        mut read: impl FnMut(usize) -> Result<Value>,
    ) -> Result<Option<Cursor>> {
        let mut items = Vec::with_capacity(self.keys.len() + 1);
        items.push(Json::from(self.shape));
        for key in &self.keys {
            items.push(match read(key.column)? {
                // Exact both ways (shortest digits that read back the same),
                // and NaN and the infinities, which JSON numbers cannot hold.
                Value::F32(f) => Json::String(f.to_string()),
                Value::F64(f) => Json::String(f.to_string()),
                other => other.to_json(),
            });
        }
        let json = serde_json::to_vec(&items).map_err(|e| Error::decode(e.to_string()))?;
        // base64 writes 4 bytes for every 3.
        if json.len().div_ceil(3) * 4 > MAX_CURSOR_LEN {
            return Ok(None);
        }
        let shape = items.remove(0).as_u64().unwrap_or_default();
        Ok(Some(Cursor {
            token: URL_SAFE_NO_PAD.encode(&json),
            shape,
            keys: items,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, Query};
    use crate::ErrorKind;

    fn model() -> Model {
        Model::new("Item")
            .field(Field::new("name", FieldType::Text))
            .field(Field::new("score", FieldType::F32))
            .field(Field::new("due", FieldType::Date).nullable())
            .field(Field::new("doc", FieldType::Json))
    }

    fn keyset(query: Query) -> Result<Keyset> {
        Keyset::new(&model(), &query.sort)
    }

    /// A cursor for `values` (by key order) as a page would make it.
    fn made(keyset: &Keyset, values: Vec<Value>) -> Cursor {
        let by_column: Vec<(usize, Value)> =
            keyset.keys.iter().map(|k| k.column).zip(values).collect();
        let read = |at| Ok(by_column.iter().find(|(c, _)| *c == at).unwrap().1.clone());
        keyset.cursor(read).unwrap().expect("short enough")
    }

    #[test]
    fn a_cursor_reads_back_its_exact_values_through_its_token() {
        let k = keyset(
            Query::new()
                .sort_desc("score")
                .sort_asc("due")
                .sort_asc("name"),
        )
        .unwrap();
        let fields: Vec<&str> = k.keys.iter().map(|k| k.field.as_str()).collect();
        assert_eq!(fields, ["score", "due", "name", "id"]);
        for score in [0.1_f32, f32::NAN, f32::NEG_INFINITY, -0.0, f32::MAX] {
            let values = vec![
                Value::F32(score),
                Value::Null,
                Value::from("a\"b'c"),
                Value::from(uuid::Uuid::now_v7()),
            ];
            let cursor = made(&k, values.clone());
            let back = Cursor::parse(&cursor.to_string()).unwrap();
            assert_eq!(back, cursor);
            let read = k.values(&back).unwrap();
            assert!(
                matches!(read[0], Value::F32(back) if back.to_bits() == score.to_bits()),
                "{score}"
            );
            assert_eq!(read[1..], values[1..]);
        }
    }

    #[test]
    fn the_key_stops_at_id_and_refuses_fields_that_do_not_read_back() {
        let k = keyset(Query::new().sort_desc("id").sort_asc("name")).unwrap();
        assert_eq!(k.keys.len(), 1);
        for bad in ["doc", "missing"] {
            let err = keyset(Query::new().sort_asc(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    fn garbled_foreign_or_mistyped_cursors_are_refused() {
        let by_name = keyset(Query::new().sort_asc("name")).unwrap();
        let good = made(
            &by_name,
            vec![Value::from("x"), Value::from(uuid::Uuid::nil())],
        );
        let encode = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let shape = by_name.shape;
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        for token in [
            "",
            "!!!",
            &long,
            &encode("{}"),
            &encode("[1]"),
            &encode("[\"x\", 1]"),
            &encode("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
        ] {
            let err = Cursor::parse(token).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{token:?}: {err}");
        }
        let nil = uuid::Uuid::nil();
        for json in [
            format!("[{shape}, 5, \"{nil}\"]"),          // a number for a text
            format!("[{shape}, \"x\", \"not-a-uuid\"]"), // a bad id
            format!("[{shape}, null, \"{nil}\"]"),       // NULL in a NOT NULL field
            format!("[{shape}, \"x\"]"),                 // too few values
            format!("[{shape}, \"x\", \"{nil}\", 1]"),   // too many
            format!("[{}, \"x\", \"{nil}\"]", shape ^ 1), // another sort
        ] {
            let cursor = Cursor::parse(&encode(&json)).expect("well formed");
            let err = by_name.values(&cursor).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{json}: {err}");
        }
        // The same fields, another direction or model: another sort.
        let desc = keyset(Query::new().sort_desc("name")).unwrap();
        assert!(desc.values(&good).is_err());
        let other = Model::new("Other").field(Field::new("name", FieldType::Text));
        let other = Keyset::new(&other, &Query::new().sort_asc("name").sort).unwrap();
        assert!(other.values(&good).is_err());
        assert!(by_name.values(&good).is_ok());
    }

    #[test]
    fn a_key_too_long_for_a_cursor_makes_none() {
        let k = keyset(Query::new().sort_asc("name")).unwrap();
        let long = Value::from("x".repeat(MAX_CURSOR_LEN));
        let read = |at| {
            Ok(if at == 0 {
                Value::from(uuid::Uuid::nil())
            } else {
                long.clone()
            })
        };
        assert!(k.cursor(read).unwrap().is_none());
    }
}
