//! PostgreSQL enum types declared in Rust: [`EnumType`], and [`PgEnum`]
//! for the Rust enums that are one.

use std::error::Error as StdError;

use tokio_postgres::types::{Kind, Type};

use super::ident::validate_identifier;

/// The longest label PostgreSQL takes (NAMEDATALEN - 1 bytes).
const MAX_LABEL: usize = 63;

/// A PostgreSQL enum type (`CREATE TYPE mood AS ENUM ('sad', 'ok',
/// 'happy')`): its name and its labels, in their order (the order sorts
/// and comparisons follow). A field of type [`crate::FieldType::Enum`]
/// holds one of the labels as a [`crate::Value::Text`]; any other text is
/// refused with [`crate::ErrorKind::InvalidInput`] before any SQL.
///
/// AutoMigrate creates the type in the adapter's schema, and adds the
/// labels a later version declares (`ALTER TYPE … ADD VALUE`, each where
/// the declared order puts it); a label the database has and the type no
/// longer declares, or labels in another order, are reported as drift and
/// left alone (PostgreSQL cannot drop a label).
///
/// A `static` (or a `const`) declares it once for every field that uses
/// it; a Rust enum gets one from `#[derive(pgactor::PgEnum)]`
/// ([`PgEnum::TYPE`]).
///
/// ```
/// use pgactor::{EnumType, Field, FieldType, Model};
///
/// static MOOD: EnumType = EnumType::new("mood", &["sad", "ok", "happy"]);
///
/// let entry = Model::new("Entry").field(Field::new("mood", FieldType::Enum(&MOOD)));
/// assert_eq!(MOOD.labels(), ["sad", "ok", "happy"]);
/// # let _ = entry;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EnumType {
    name: &'static str,
    labels: &'static [&'static str],
}

impl EnumType {
    /// The enum type `name` with `labels`, in order. Checked when a model
    /// using it is registered: a plain identifier for the name, one label
    /// at least, each label 1 to 63 bytes without NUL, no label twice.
    pub const fn new(name: &'static str, labels: &'static [&'static str]) -> EnumType {
        EnumType { name, labels }
    }

    /// The type's name (in the adapter's schema).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The labels, in their order.
    pub fn labels(&self) -> &'static [&'static str] {
        self.labels
    }

    /// Whether `label` is one of its labels.
    pub fn has(&self, label: &str) -> bool {
        self.labels.contains(&label)
    }

    /// The checks [`EnumType::new`] promises, as a message.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        validate_identifier(self.name).map_err(|e| format!("enum type: {e}"))?;
        if self.labels.is_empty() {
            return Err(format!("enum type \"{}\" has no label", self.name));
        }
        for (at, label) in self.labels.iter().enumerate() {
            if label.is_empty() || label.len() > MAX_LABEL || label.contains('\0') {
                return Err(format!(
                    "enum type \"{}\": label {at} is empty, longer than {MAX_LABEL} bytes, \
                     or holds a NUL",
                    self.name
                ));
            }
            if self.labels[..at].contains(label) {
                return Err(format!(
                    "enum type \"{}\" has the label \"{label}\" twice",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// A Rust enum stored in a PostgreSQL enum type, one label per variant:
/// what `#[derive(pgactor::PgEnum)]` implements on an enum of unit
/// variants. A field of it in a `#[derive(pgactor::Entity)]` struct,
/// marked `#[pgactor(pg_enum)]`, is a [`crate::FieldType::Enum`] column.
///
/// The derive also implements `From<T> for pgactor::Value` (the label as
/// a [`crate::Value::Text`]) and `FromSql` (a row's label, read as text or
/// as the enum type; a label of no variant is a decode error).
///
/// ```
/// #[derive(Debug, Clone, Copy, PartialEq, pgactor::PgEnum)]
/// #[pgactor(type_name = "mood")]
/// enum Mood {
///     Sad,
///     #[pgactor(label = "meh")]
///     Ok,
///     Happy,
/// }
///
/// use pgactor::PgEnum;
/// assert_eq!(Mood::TYPE.labels(), ["sad", "meh", "happy"]);
/// assert_eq!(Mood::Ok.label(), "meh");
/// assert_eq!(Mood::from_label("happy"), Some(Mood::Happy));
/// assert_eq!(pgactor::Value::from(Mood::Sad), pgactor::Value::Text("sad".into()));
/// ```
pub trait PgEnum: Sized {
    /// The enum type: its name and its labels, in the variants' order.
    const TYPE: &'static EnumType;

    /// The label of this variant.
    fn label(&self) -> &'static str;

    /// The variant of `label`, if it is one of the type's labels.
    fn from_label(label: &str) -> Option<Self>;
}

/// Whether a `FromSql` of a [`PgEnum`] reads a column of type `ty`: text,
/// or an enum type.
#[doc(hidden)]
pub fn enum_accepts(ty: &Type) -> bool {
    matches!(ty.kind(), Kind::Enum(_))
        || [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty)
}

/// A [`PgEnum`]'s `FromSql`: the label's variant, or an error naming the
/// type (not the label: values are user data).
#[doc(hidden)]
pub fn enum_from_sql<T: PgEnum>(raw: &[u8]) -> Result<T, Box<dyn StdError + Sync + Send>> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(T::from_label)
        .ok_or_else(|| format!("the text is no label of enum type \"{}\"", T::TYPE.name).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_types_are_checked() {
        assert!(EnumType::new("mood", &["a", "b"]).validate().is_ok());
        for (ty, says) in [
            (EnumType::new("mo od", &["a"]), "identifier"),
            (EnumType::new("mood", &[]), "no label"),
            (EnumType::new("mood", &["a", ""]), "label 1"),
            (EnumType::new("mood", &["a", "a"]), "twice"),
            (EnumType::new("mood", &["a\0"]), "NUL"),
        ] {
            let err = ty.validate().unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        let long: &'static str = Box::leak("x".repeat(64).into_boxed_str());
        let labels: &'static [&'static str] = Box::leak(Box::new([long]));
        assert!(EnumType::new("mood", labels).validate().is_err());
    }

    #[derive(Debug, PartialEq)]
    enum Side {
        Buy,
    }

    impl PgEnum for Side {
        const TYPE: &'static EnumType = &EnumType::new("side", &["buy"]);
        fn label(&self) -> &'static str {
            "buy"
        }
        fn from_label(label: &str) -> Option<Side> {
            (label == "buy").then_some(Side::Buy)
        }
    }

    #[test]
    fn a_pg_enum_reads_its_labels_only() {
        assert_eq!(enum_from_sql::<Side>(b"buy").unwrap(), Side::Buy);
        let err = enum_from_sql::<Side>(b"SECRET").unwrap_err().to_string();
        assert!(err.contains("\"side\"") && !err.contains("SECRET"), "{err}");
        assert!(enum_from_sql::<Side>(&[0xff]).is_err());
        assert!(enum_accepts(&Type::TEXT));
        assert!(!enum_accepts(&Type::INT4));
        let mood = Type::new("mood".into(), 1, Kind::Enum(vec!["buy".into()]), "s".into());
        assert!(enum_accepts(&mood));
    }
}
