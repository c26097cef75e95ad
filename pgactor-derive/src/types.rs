//! Which column type a field's Rust type is, read from its path.

use syn::{GenericArgument, PathArguments, PathSegment, Type};

/// A column type, as `pgactor::FieldType` names it (without `Varchar`,
/// which an attribute chooses for a `String`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    Numeric,
    Text,
    Bytes,
    Uuid,
    Timestamptz,
    Date,
    Timestamp,
    Time,
    Inet,
    Interval,
    Json,
    /// A `#[pgactor(pg_enum)]` field: a `pgactor::PgEnum`, whatever its
    /// path (never chosen by [`kind`]).
    Enum,
}

impl Kind {
    /// The `pgactor::FieldType` variant's name.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Kind::Bool => "Bool",
            Kind::I16 => "I16",
            Kind::I32 => "I32",
            Kind::I64 => "I64",
            Kind::F32 => "F32",
            Kind::F64 => "F64",
            Kind::Numeric => "Numeric",
            Kind::Text => "Text",
            Kind::Bytes => "Bytes",
            Kind::Uuid => "Uuid",
            Kind::Timestamptz => "Timestamptz",
            Kind::Date => "Date",
            Kind::Timestamp => "Timestamp",
            Kind::Time => "Time",
            Kind::Inet => "Inet",
            Kind::Interval => "Interval",
            Kind::Json => "Json",
            Kind::Enum => "Enum",
        }
    }
}

/// What the error on a type without a column type says.
pub(crate) const MAPPED: &str = "a field's type must be one of bool, i16, i32, i64, f32, f64, \
     Decimal, String, Vec<u8>, Uuid, DateTime<Utc>, NaiveDateTime, NaiveDate, NaiveTime, IpAddr, \
     pgactor's Interval, serde_json's Value (or JsonValue), a Vec (or Vec of Options) of bool, \
     i16, i32, i64, f64, Decimal, String, Uuid, DateTime<Utc> or NaiveDate, or an Option of one; \
     store a #[derive(pgactor::PgEnum)] enum in its enum type with #[pgactor(pg_enum)], a type \
     that implements Display and FromStr as its text with #[pgactor(text)]; leave any other \
     field out of the model with #[pgactor(skip)]";

/// The last segment of a path type without qualified self (`a::b::C<T>`).
fn last_segment(ty: &Type) -> Option<&PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

/// The type arguments of a segment (`<A, B>`), none if it has other kinds.
fn type_args(segment: &PathSegment) -> Vec<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `T` when `ty` is `Option<T>`.
pub(crate) fn option_inner(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    let args = type_args(segment);
    match args.as_slice() {
        [inner] if segment.ident == "Option" => Some(inner),
        _ => None,
    }
}

/// The column type of a (non-`Option`) Rust type, if it has one.
pub(crate) fn kind(ty: &Type) -> Option<Kind> {
    let segment = last_segment(ty)?;
    let args = type_args(segment);
    let name = segment.ident.to_string();
    let plain = segment.arguments.is_none();
    Some(match name.as_str() {
        "bool" if plain => Kind::Bool,
        "i16" if plain => Kind::I16,
        "i32" if plain => Kind::I32,
        "i64" if plain => Kind::I64,
        "f32" if plain => Kind::F32,
        "f64" if plain => Kind::F64,
        "Decimal" if plain => Kind::Numeric,
        "String" if plain => Kind::Text,
        "Uuid" if plain => Kind::Uuid,
        "NaiveDate" if plain => Kind::Date,
        "NaiveDateTime" if plain => Kind::Timestamp,
        "NaiveTime" if plain => Kind::Time,
        "IpAddr" if plain => Kind::Inet,
        "Interval" if plain => Kind::Interval,
        "Value" | "JsonValue" if plain => Kind::Json,
        "Vec" => match args.as_slice() {
            [inner]
                if last_segment(inner)
                    .is_some_and(|s| s.ident == "u8" && s.arguments.is_none()) =>
            {
                Kind::Bytes
            }
            _ => return None,
        },
        "DateTime" => match args.as_slice() {
            [zone] if last_segment(zone).is_some_and(|s| s.ident == "Utc") => Kind::Timestamptz,
            _ => return None,
        },
        _ => return None,
    })
}

/// The element kind of an array column's Rust type: `Vec<T>` or
/// `Vec<Option<T>>` with `T` one of `pgactor::Elem`'s kinds (`Vec<u8>` is
/// `bytea`, not an array).
pub(crate) fn array_elem(ty: &Type) -> Option<Kind> {
    let segment = last_segment(ty)?;
    let [inner] = type_args(segment)[..] else {
        return None;
    };
    if segment.ident != "Vec" {
        return None;
    }
    let elem = kind(option_inner(inner).unwrap_or(inner))?;
    use Kind::*;
    matches!(
        elem,
        Bool | I16 | I32 | I64 | F64 | Numeric | Text | Uuid | Timestamptz | Date
    )
    .then_some(elem)
}
