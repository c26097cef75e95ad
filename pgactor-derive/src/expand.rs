//! What `#[derive(Entity)]` generates: the checks, then the three impls.

use std::collections::HashMap;

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::token::Comma;
use syn::{Data, DeriveInput, Fields, Ident, Lit, Type};

use crate::attrs::{DefaultLit, FieldAttrs, StructAttrs};
use crate::types::{array_elem, kind, option_inner, Kind, MAPPED};

/// The adapter's own columns: the key, the timestamps and, on a
/// soft-delete model, the deletion's.
const ID: &str = "id";
const TIMESTAMPS: [&str; 2] = ["created_at", "updated_at"];
const DELETED_AT: &str = "deleted_at";

/// Errors gathered over the whole struct, reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// An error spanning all of `tokens` (a whole type, not its first token).
    fn spanned(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// One column of the struct.
struct Column<'a> {
    field: &'a Ident,
    name: String,
    /// The type the column constant compares with: the field's, without
    /// `Option`.
    value_ty: &'a Type,
    /// Whether the field is `Option<value_ty>`.
    nullable: bool,
    /// `#[pgactor(text)]`: the value is stored as its text
    /// (`pgactor::AsText`).
    text: bool,
    /// The `pgactor::Field` it declares, unless it is `id`, `created_at`
    /// or `updated_at`.
    declared: Option<TokenStream>,
}

/// Expand the derive, or the errors on the input.
pub(crate) fn entity(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let fields = named_fields(&input, "Entity", "each field is a column")?;

    let mut errors = Errors::default();
    let attrs = StructAttrs::parse(&input.attrs).unwrap_or_else(|e| {
        errors.push(e);
        StructAttrs::default()
    });
    let soft_delete = attrs.soft_delete.is_some();
    // Whether a column is one the adapter keeps.
    let kept = |column: &str| {
        column == ID || TIMESTAMPS.contains(&column) || (soft_delete && column == DELETED_AT)
    };
    let mut key = None;
    let mut version: Option<String> = None;
    let mut columns: Vec<Column<'_>> = Vec::new();
    let mut skipped = Vec::new();
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    let mut searchable = false;

    for field in fields {
        let Some(ident) = &field.ident else { continue };
        let field_attrs = match FieldAttrs::parse(&field.attrs) {
            Ok(attrs) => attrs,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if field_attrs.skip.is_some() {
            let other = field_attrs.column.as_ref().map(|c| c.span());
            if let Some(span) = other.or(field_attrs.declared_only()) {
                errors.at(
                    span,
                    "a skipped field is no column and takes no other attribute",
                );
            }
            skipped.push(ident);
            continue;
        }
        let (column, column_span) = match &field_attrs.column {
            Some(lit) => (lit.value(), lit.span()),
            None => (ident.unraw().to_string(), ident.span()),
        };
        if let Err(message) = check_identifier(&column) {
            errors.at(column_span, format!("column {message}"));
        }
        if let Some(first) = seen.insert(column.clone(), ident) {
            errors.at(
                column_span,
                format!(
                    "field `{}` would be column `{column}`, which is field `{first}`: \
                     each column is one field",
                    ident.unraw()
                ),
            );
        }
        let ty = &field.ty;
        let adapters = kept(&column);
        if adapters {
            if let Some(span) = field_attrs.declared_only() {
                errors.at(
                    span,
                    format!("`{column}` is the adapter's column and takes no such attribute"),
                );
            }
        }
        searchable |= field_attrs.searchable.is_some() && !adapters;
        let declared = if column == ID {
            match kind(ty) {
                Some(Kind::Uuid) => key = Some(quote!(::pgactor::PrimaryKey::Uuid)),
                Some(Kind::I64) => key = Some(quote!(::pgactor::PrimaryKey::Identity)),
                _ => errors.spanned(
                    ty,
                    "`id` is the primary key: uuid::Uuid (a uuid key, the default) or i64 \
                     (an identity key)",
                ),
            }
            None
        } else if adapters && column == DELETED_AT {
            if option_inner(ty).and_then(kind) != Some(Kind::Timestamptz) {
                errors.spanned(
                    ty,
                    "`deleted_at` is kept by the adapter as an Option<chrono::DateTime<Utc>> \
                     (None while the row is live)",
                );
            }
            None
        } else if adapters {
            if kind(ty) != Some(Kind::Timestamptz) {
                errors.spanned(
                    ty,
                    format!("`{column}` is kept by the adapter as a chrono::DateTime<Utc>"),
                );
            }
            None
        } else {
            if let Some(span) = field_attrs.version {
                match &version {
                    Some(first) => errors.at(
                        span,
                        format!("a model has one version column, and `{first}` is already marked version"),
                    ),
                    None => version = Some(column.clone()),
                }
            }
            match declared_field(&column, ty, &field_attrs) {
                Ok(tokens) => Some(tokens),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        };
        columns.push(Column {
            field: ident,
            name: column,
            value_ty: option_inner(ty).unwrap_or(ty),
            nullable: option_inner(ty).is_some(),
            text: field_attrs.text.is_some(),
            declared,
        });
    }

    if let Some(table) = &attrs.table {
        if let Err(message) = check_identifier(&table.value()) {
            errors.at(table.span(), format!("table {message}"));
        }
    }
    if let Some(language) = &attrs.search_language {
        let value = language.value();
        let plain = check_identifier(&value).is_ok()
            && !value.contains('$')
            && !value.bytes().any(|b| b.is_ascii_uppercase());
        if !plain {
            errors.at(
                language.span(),
                "a search language is a lower-case plain identifier: a text search \
                 configuration such as \"english\" or \"simple\"",
            );
        } else if !searchable {
            errors.at(
                language.span(),
                "search_language needs a #[pgactor(searchable)] field",
            );
        }
    }
    let mut indexes = Vec::new();
    for index in &attrs.indexes {
        for (column, span) in &index.columns {
            let known = columns.iter().any(|c| c.name == *column) || kept(column);
            if !known {
                errors.at(
                    *span,
                    format!(
                        "no column `{column}` in {name}: an index names columns (a field's \
                         name, or its `column = \"…\"`), or id, created_at, updated_at \
                         (and deleted_at with soft_delete)"
                    ),
                );
            }
        }
        let names = index.columns.iter().map(|(c, _)| c);
        let unique = index.unique.then(|| quote!(.unique()));
        indexes.push(quote!(::pgactor::Index::on([#(#names),*]) #unique));
    }
    errors.finish()?;

    let model = match &attrs.model {
        Some(lit) => lit.value(),
        None => name.unraw().to_string(),
    };
    let table = attrs.table.as_ref().map(|t| quote!(.table_name(#t)));
    let key = key.map(|k| quote!(.primary_key(#k)));
    let soft_delete = soft_delete.then(|| quote!(.soft_delete()));
    let search_language = attrs
        .search_language
        .as_ref()
        .map(|l| quote!(.search_language(#l)));
    let version = version.map(|column| {
        quote!(const VERSION: ::core::option::Option<&'static str> = ::core::option::Option::Some(#column);)
    });
    let declared: Vec<_> = columns.iter().filter_map(|c| c.declared.as_ref()).collect();
    // In name order, as a record holds its fields: the record is built
    // whole, without a search per field.
    let mut written: Vec<_> = columns.iter().filter(|c| c.declared.is_some()).collect();
    written.sort_by(|a, b| a.name.cmp(&b.name));
    let record_names = written.iter().map(|c| &c.name);
    let record_values = written.iter().map(|c| {
        let (field, ty) = (c.field, c.value_ty);
        // A text-backed value's errors (no Display) point at its type.
        let value = match (c.text, c.nullable) {
            (false, _) => quote!(::core::clone::Clone::clone(&self.#field)),
            (true, false) => quote_spanned!(ty.span()=> ::pgactor::AsText(&self.#field)),
            (true, true) => quote_spanned! {ty.span()=>
                ::core::option::Option::as_ref(&self.#field).map(::pgactor::AsText)
            },
        };
        quote_spanned!(field.span()=> ::core::convert::Into::<::pgactor::Value>::into(#value))
    });
    let read: Vec<_> = columns
        .iter()
        .map(|c| {
            let column = &c.name;
            Read {
                field: c.field,
                column: quote!(#column),
                ty: c.value_ty,
                text: c.text,
                nullable: c.nullable,
            }
        })
        .collect();
    let vis = &input.vis;
    let constants = columns.iter().map(|c| {
        let constant = format_ident!("{}", c.field.unraw().to_string().to_uppercase());
        let (column, ty) = (&c.name, c.value_ty);
        let ty = if c.text {
            quote!(::pgactor::AsText<#ty>)
        } else {
            quote!(#ty)
        };
        let doc = format!("Column `{column}`.");
        let nullable = c.nullable.then(|| quote!(.nullable()));
        quote! {
            #[doc = #doc]
            #vis const #constant: ::pgactor::Column<#name, #ty> = ::pgactor::Column::new(#column) #nullable;
        }
    });

    let body = reading(name, &read, &skipped);
    Ok(quote! {
        #[automatically_derived]
        impl ::pgactor::Entity for #name {
            const MODEL: &'static str = #model;
            #version

            fn model() -> ::pgactor::Model {
                ::pgactor::Model::new(<Self as ::pgactor::Entity>::MODEL)
                    #table
                    #key
                    #soft_delete
                    #search_language
                    #(.field(#declared))*
                    #(.index(#indexes))*
            }

            fn to_record(&self) -> ::pgactor::Record {
                ::pgactor::Record::from_sorted_fields(
                    &[#(#record_names),*],
                    ::std::vec![#(#record_values),*],
                )
            }
        }

        #[automatically_derived]
        impl ::pgactor::FromRow for #name {
            #body
        }

        // A struct need not use every one of its columns.
        #[allow(dead_code)]
        #[automatically_derived]
        impl #name {
            #(#constants)*
        }
    })
}

/// The named fields of the struct `#[derive(<derive>)]` is on; an error
/// on anything else (generics, tuple structs, enums, unions). `each`
/// says what a field stands for.
pub(crate) fn named_fields<'a>(
    input: &'a DeriveInput,
    derive: &str,
    each: &str,
) -> syn::Result<&'a Punctuated<syn::Field, Comma>> {
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            format!("#[derive({derive})] takes a struct without generic parameters"),
        ));
    }
    let named = format!("#[derive({derive})] takes a struct with named fields");
    match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => Ok(&named.named),
            _ => Err(syn::Error::new(
                data.struct_token.span,
                format!("{named} ({each})"),
            )),
        },
        Data::Enum(data) => Err(syn::Error::new(
            data.enum_token.span,
            format!("{named}, not an enum"),
        )),
        Data::Union(data) => Err(syn::Error::new(
            data.union_token.span,
            format!("{named}, not a union"),
        )),
    }
}

/// A field a derived `FromRow` reads from a column.
pub(crate) struct Read<'a> {
    pub(crate) field: &'a Ident,
    /// The column's name: an expression of a `&'static str`.
    pub(crate) column: TokenStream,
    /// The field's type without `Option`, which `nullable` says it had.
    pub(crate) ty: &'a Type,
    /// Read as a text-backed value, parsed from its text.
    pub(crate) text: bool,
    pub(crate) nullable: bool,
}

/// The items of a `FromRow` impl for the struct `name`, whose `fields` are
/// read from columns and whose `defaulted` fields take their default: one
/// row read by a `RowReader`, in the order of the fields; many rows by a
/// `RowLayout`, which finds the columns in the first row only.
pub(crate) fn reading(name: &Ident, fields: &[Read], defaulted: &[&Ident]) -> TokenStream {
    let reader = quote!(__pgactor_read);
    let by_name = fields.iter().map(|f| {
        let column = &f.column;
        decoded_field(f, &reader, column)
    });
    let row = quote!(__pgactor_row);
    let by_place = fields
        .iter()
        .enumerate()
        .map(|(i, f)| decoded_field(f, &row, &quote!(#i)));
    let columns = fields.iter().map(|f| &f.column);
    let n = fields.len();
    quote! {
        fn from_row(row: &::pgactor::Row) -> ::pgactor::Result<Self> {
            #[allow(unused_mut)]
            let mut #reader = ::pgactor::RowReader::new(row);
            ::core::result::Result::Ok(#name {
                #(#by_name,)*
                #(#defaulted: ::core::default::Default::default(),)*
            })
        }

        fn from_rows(
            rows: &[::pgactor::Row],
        ) -> ::pgactor::Result<::std::vec::Vec<Self>> {
            let mut layout = ::pgactor::RowLayout::<#n>::new([#(#columns),*]);
            let mut all = ::std::vec::Vec::with_capacity(rows.len());
            for row in rows {
                #[allow(unused_variables)]
                let #row = layout.locate(row);
                all.push(#name {
                    #(#by_place,)*
                    #(#defaulted: ::core::default::Default::default(),)*
                });
            }
            ::core::result::Result::Ok(all)
        }
    }
}

/// `field: <its value>`, read by `reader.get(key)`: a text-backed value
/// parsed from its text.
fn decoded_field(read: &Read, reader: &TokenStream, key: &TokenStream) -> TokenStream {
    let (field, ty) = (read.field, read.ty);
    let value = match (read.text, read.nullable) {
        (false, _) => quote!(#reader.get(#key)?),
        (true, false) => quote_spanned! {ty.span()=>
            #reader.get::<::pgactor::AsText<#ty>>(#key)?.into_inner()
        },
        (true, true) => quote_spanned! {ty.span()=>
            #reader.get::<::core::option::Option<::pgactor::AsText<#ty>>>(#key)?
                .map(::pgactor::AsText::into_inner)
        },
    };
    quote!(#field: #value)
}

/// `[A-Za-z_][A-Za-z0-9_$]*`, at most 63 bytes, as the registry checks.
fn check_identifier(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        return Err(format!(
            "`{name}` is not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_$]*)"
        ));
    }
    if name.len() > 63 {
        return Err(format!(
            "`{name}` is longer than PostgreSQL's 63-byte limit"
        ));
    }
    Ok(())
}

/// A type's SQL name: `name` or `schema.name`, each part a plain
/// identifier, as the registry checks.
fn check_type_name(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(format!("`{name}` is not a type name (name or schema.name)"));
    }
    parts
        .into_iter()
        .try_for_each(check_identifier)
        .map_err(|message| format!("sql_type: {message}"))
}

/// The `pgactor::Field` of a declared field.
fn declared_field(column: &str, ty: &Type, attrs: &FieldAttrs) -> syn::Result<TokenStream> {
    let inner = option_inner(ty);
    let value_ty = inner.unwrap_or(ty);
    // A text-backed field is a text column, whatever its Rust type; a
    // pg_enum one the enum type of its PgEnum.
    let (kind, array) = match (attrs.text, attrs.pg_enum) {
        (Some(_), Some(span)) => {
            return Err(syn::Error::new(
                span,
                "a field is stored as its text (text) or in its enum type (pg_enum), not both",
            ))
        }
        (_, Some(_)) => (Some(Kind::Enum), false),
        (Some(_), None) => (Some(Kind::Text), false),
        (None, None) => match array_elem(value_ty) {
            Some(elem) => (Some(elem), true),
            None => (kind(value_ty), false),
        },
    };
    let Some(kind) = kind else {
        return Err(syn::Error::new_spanned(
            value_ty,
            format!("no column type for this type: {MAPPED}"),
        ));
    };
    let mut errors = Errors::default();
    let variant = format_ident!("{}", kind.variant());
    let text = kind == Kind::Text && !array;
    // A text column of another SQL type: citext, or a custom type.
    let named = match (attrs.citext, &attrs.sql_type) {
        (Some(span), Some(_)) => {
            errors.at(span, "a column is citext or of its sql_type, not both");
            None
        }
        (Some(span), None) => Some((span, quote!(::pgactor::FieldType::Citext))),
        (None, Some(lit)) => {
            if let Err(message) = check_type_name(&lit.value()) {
                errors.at(lit.span(), message);
            }
            Some((lit.span(), quote!(::pgactor::FieldType::Custom(#lit))))
        }
        (None, None) => None,
    };
    let field_type = match (attrs.varchar, named) {
        (Some((_, span)), Some(_)) => {
            errors.at(
                span,
                "varchar makes a varchar column: not with citext or sql_type",
            );
            quote!()
        }
        (None, Some((span, _))) if !text => {
            errors.at(
                span,
                "citext and sql_type fit only a String field or a #[pgactor(text)] one",
            );
            quote!()
        }
        (None, Some((_, field_type))) => field_type,
        (Some((n, _)), None) if text => quote!(::pgactor::FieldType::Varchar(#n)),
        (Some((_, span)), None) => {
            errors.at(
                span,
                "varchar fits only a String field or a #[pgactor(text)] one",
            );
            quote!()
        }
        (None, None) if kind == Kind::Enum => {
            quote_spanned!(value_ty.span()=> ::pgactor::FieldType::Enum(<#value_ty as ::pgactor::PgEnum>::TYPE))
        }
        (None, None) if array => quote!(::pgactor::FieldType::Array(::pgactor::Elem::#variant)),
        (None, None) => quote!(::pgactor::FieldType::#variant),
    };
    let mut field = quote!(::pgactor::Field::new(#column, #field_type));
    if inner.is_some() {
        field.extend(quote!(.nullable()));
    }
    if attrs.unique.is_some() {
        field.extend(quote!(.unique()));
    }
    if let Some(span) = attrs.searchable {
        if text && attrs.citext.is_none() && attrs.sql_type.is_none() {
            field.extend(quote!(.searchable()));
        } else {
            errors.at(
                span,
                "searchable fits only a text column: a String field or a #[pgactor(text)] one",
            );
        }
    }
    if let Some(span) = attrs.version {
        let integer = matches!(kind, Kind::I64 | Kind::I32) && !array && attrs.text.is_none();
        if !integer || inner.is_some() {
            errors.at(
                span,
                "a version column is an i64 or i32 field (not an Option)",
            );
        } else if attrs.unique.is_some() || attrs.references.is_some() {
            errors.at(span, "a version column is neither unique nor a reference");
        } else {
            field.extend(quote!(.version()));
        }
    }
    match (&attrs.references, &attrs.on_delete) {
        (Some(model), on_delete) => {
            let key = matches!(kind, Kind::Uuid | Kind::I64) && !array && attrs.text.is_none();
            if !key {
                errors.at(
                    model.span(),
                    "a reference holds the referenced model's id: a Uuid or i64 field",
                );
            }
            let action = match on_delete.as_ref().map(|lit| (lit.value(), lit)) {
                None => Some(quote!(NoAction)),
                Some((value, lit)) => match value.as_str() {
                    "no_action" => Some(quote!(NoAction)),
                    "restrict" => Some(quote!(Restrict)),
                    "cascade" => Some(quote!(Cascade)),
                    "set_null" if inner.is_none() => {
                        errors.at(lit.span(), "on_delete = \"set_null\" needs an Option field");
                        None
                    }
                    "set_null" => Some(quote!(SetNull)),
                    _ => {
                        errors.at(
                            lit.span(),
                            "on_delete is \"no_action\", \"restrict\", \"cascade\" or \"set_null\"",
                        );
                        None
                    }
                },
            };
            if let Some(action) = action {
                field.extend(quote!(.references(#model, ::pgactor::OnDelete::#action)));
            }
        }
        (None, Some(lit)) => errors.at(lit.span(), "on_delete needs references = \"Model\""),
        (None, None) => {}
    }
    let default_span = attrs.default.as_ref().map(|d| d.span);
    if let (true, Some(span)) = (array, default_span.or(attrs.default_now)) {
        errors.at(span, "an array field takes no default");
    } else if let Some(default) = &attrs.default {
        if let Some(span) = attrs.default_now {
            errors.at(span, "a field has one default: default or default_now");
        }
        let varchar = attrs.varchar.map(|(n, _)| n);
        match default_value(kind, varchar, value_ty, default) {
            Ok(value) => field.extend(quote!(.default_value(#value))),
            Err(e) => errors.push(e),
        }
    } else if let Some(span) = attrs.default_now {
        if matches!(
            kind,
            Kind::Timestamptz | Kind::Date | Kind::Timestamp | Kind::Time
        ) {
            field.extend(quote!(.default_now()));
        } else {
            errors.at(
                span,
                "default_now fits only a DateTime<Utc>, NaiveDateTime, NaiveDate or NaiveTime field",
            );
        }
    }
    errors.finish()?;
    Ok(field)
}

/// The default's value, typed as the field's Rust type (`0_i64`,
/// `String::from("x")`), or an error on a literal that does not fit it.
fn default_value(
    kind: Kind,
    varchar: Option<u32>,
    ty: &Type,
    default: &DefaultLit,
) -> syn::Result<TokenStream> {
    let span = default.span;
    let unfit = |what: &str| {
        syn::Error::new(
            span,
            format!(
                "{what} does not fit this field's type ({})",
                kind_name(kind)
            ),
        )
    };
    let sign = if default.negative { "-" } else { "" };
    let integer = |digits: &str| -> syn::Result<i128> {
        format!("{sign}{digits}")
            .parse::<i128>()
            .map_err(|_| syn::Error::new(span, "this integer is out of range"))
    };
    let out_of_range = || syn::Error::new(span, format!("out of range for {}", kind_name(kind)));
    Ok(match (&default.lit, kind) {
        (Lit::Bool(b), Kind::Bool) if !default.negative => quote!(#b),
        // A label, checked against the type's labels when the model is
        // registered.
        (Lit::Str(s), Kind::Enum) if !default.negative => quote!(::std::string::String::from(#s)),
        (Lit::Str(s), Kind::Text) if !default.negative => {
            if let Some(n) = varchar {
                if s.value().chars().count() > n as usize {
                    return Err(syn::Error::new(
                        span,
                        format!("this default is longer than varchar({n})"),
                    ));
                }
            }
            quote!(::std::string::String::from(#s))
        }
        (Lit::Int(lit), Kind::I16 | Kind::I32 | Kind::I64 | Kind::Numeric) => {
            check_suffix(lit.suffix(), kind, span)?;
            let n = integer(lit.base10_digits())?;
            let literal = match kind {
                Kind::I16 => Literal::i16_suffixed(n.try_into().map_err(|_| out_of_range())?),
                Kind::I32 => Literal::i32_suffixed(n.try_into().map_err(|_| out_of_range())?),
                _ => Literal::i64_suffixed(n.try_into().map_err(|_| out_of_range())?),
            };
            if kind == Kind::Numeric {
                quote!(<#ty as ::core::convert::From<i64>>::from(#literal))
            } else {
                quote!(#literal)
            }
        }
        (Lit::Int(lit), Kind::F32 | Kind::F64) => {
            check_suffix(lit.suffix(), kind, span)?;
            let n = integer(lit.base10_digits())?;
            float(kind, n as f64, Some(n), span)?
        }
        (Lit::Float(lit), Kind::F32 | Kind::F64) => {
            check_suffix(lit.suffix(), kind, span)?;
            let x: f64 = format!("{sign}{}", lit.base10_digits())
                .parse()
                .map_err(|_| syn::Error::new(span, "not a float"))?;
            float(kind, x, None, span)?
        }
        (Lit::Int(_), _) => return Err(unfit("an integer")),
        (Lit::Float(_), _) => return Err(unfit("a float")),
        (Lit::Bool(_), _) => return Err(unfit("a bool")),
        (Lit::Str(_), _) => return Err(unfit("a string")),
        _ => {
            return Err(syn::Error::new(
                span,
                "a default is an integer, a float, true or false, or a string",
            ))
        }
    })
}

/// A float literal of the field's type, refused when it is not finite in
/// that type or, written as the integer `from_int`, would be rounded.
fn float(kind: Kind, x: f64, from_int: Option<i128>, span: Span) -> syn::Result<TokenStream> {
    let narrowed = x as f32;
    let fits = match kind {
        Kind::F32 => narrowed.is_finite() && from_int.is_none_or(|n| narrowed as i128 == n),
        _ => x.is_finite() && from_int.is_none_or(|n| x as i128 == n),
    };
    if !fits {
        return Err(syn::Error::new(
            span,
            format!("not exactly a finite {}", kind_name(kind)),
        ));
    }
    Ok(match kind {
        Kind::F32 => {
            let literal = Literal::f32_suffixed(narrowed);
            quote!(#literal)
        }
        _ => {
            let literal = Literal::f64_suffixed(x);
            quote!(#literal)
        }
    })
}

/// A literal's suffix (`5_i32`) must be the field's type.
fn check_suffix(suffix: &str, kind: Kind, span: Span) -> syn::Result<()> {
    if suffix.is_empty() || suffix == kind_name(kind) {
        return Ok(());
    }
    Err(syn::Error::new(
        span,
        format!(
            "this literal is a {suffix}, the field a {}",
            kind_name(kind)
        ),
    ))
}

/// The Rust type of a kind, for messages.
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "bool",
        Kind::I16 => "i16",
        Kind::I32 => "i32",
        Kind::I64 => "i64",
        Kind::F32 => "f32",
        Kind::F64 => "f64",
        Kind::Numeric => "Decimal",
        Kind::Text => "String",
        Kind::Bytes => "Vec<u8>",
        Kind::Uuid => "Uuid",
        Kind::Timestamptz => "DateTime<Utc>",
        Kind::Date => "NaiveDate",
        Kind::Timestamp => "NaiveDateTime",
        Kind::Time => "NaiveTime",
        Kind::Inet => "IpAddr",
        Kind::Interval => "Interval",
        Kind::Json => "serde_json::Value",
        Kind::Enum => "PgEnum",
    }
}
