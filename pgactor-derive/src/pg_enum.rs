//! What `#[derive(PgEnum)]` generates: `pgactor::PgEnum`, `From<T> for
//! pgactor::Value` and `FromSql`, after checking the enum and its labels.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr};

/// PostgreSQL's longest enum label and type name, in bytes.
const MAX_NAME: usize = 63;

/// `#[pgactor(type_name = "…")]` on the enum or `#[pgactor(label = "…")]`
/// on a variant: the one key `key` allows, if given.
fn name_attr(attrs: &[Attribute], key: &str) -> syn::Result<Option<LitStr>> {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("pgactor")) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident(key) {
                return Err(meta.error(format!(
                    "unknown pgactor attribute here; expected {key} = \"…\""
                )));
            }
            if found.is_some() {
                return Err(meta.error("this attribute is given twice"));
            }
            found = Some(meta.value()?.parse::<LitStr>()?);
            Ok(())
        })?;
    }
    Ok(found)
}

/// `SnakeCase` as `snake_case`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Expand the derive, or the errors on the input.
pub(crate) fn pg_enum(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(PgEnum)] takes an enum of unit variants (one per label)",
        ));
    };
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(PgEnum)] takes an enum without generic parameters",
        ));
    }
    if data.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            name,
            "an enum type needs one label at least: add a variant",
        ));
    }
    let type_name = match name_attr(&input.attrs, "type_name")? {
        Some(lit) => {
            let value = lit.value();
            let plain = value
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            if !plain || value.len() > MAX_NAME {
                return Err(syn::Error::new(
                    lit.span(),
                    "a type name is a plain SQL identifier ([A-Za-z_][A-Za-z0-9_$]*), at most 63 bytes",
                ));
            }
            value
        }
        None => snake_case(&name.unraw().to_string()),
    };
    let mut variants = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut error = |e: syn::Error| match &mut errors {
        Some(first) => first.combine(e),
        None => errors = Some(e),
    };
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            error(syn::Error::new_spanned(
                &variant.fields,
                "a PgEnum's variants hold no data: each is one label",
            ));
            continue;
        }
        let label = match name_attr(&variant.attrs, "label") {
            Ok(Some(lit)) => {
                let value = lit.value();
                if value.is_empty() || value.len() > MAX_NAME || value.contains('\0') {
                    error(syn::Error::new(
                        lit.span(),
                        "a label is 1 to 63 bytes, without NUL",
                    ));
                }
                (value, lit.span())
            }
            Ok(None) => (
                snake_case(&variant.ident.unraw().to_string()),
                variant.ident.span(),
            ),
            Err(e) => {
                error(e);
                continue;
            }
        };
        if labels.contains(&label.0) {
            error(syn::Error::new(
                label.1,
                format!("the label \"{}\" is given to two variants", label.0),
            ));
        }
        labels.push(label.0);
        variants.push(&variant.ident);
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    Ok(quote! {
        #[automatically_derived]
        impl ::pgactor::PgEnum for #name {
            const TYPE: &'static ::pgactor::EnumType =
                &::pgactor::EnumType::new(#type_name, &[#(#labels),*]);

            fn label(&self) -> &'static str {
                match self {
                    #(#name::#variants => #labels,)*
                }
            }

            fn from_label(label: &str) -> ::core::option::Option<Self> {
                match label {
                    #(#labels => ::core::option::Option::Some(#name::#variants),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        #[automatically_derived]
        impl ::core::convert::From<#name> for ::pgactor::Value {
            fn from(value: #name) -> ::pgactor::Value {
                ::pgactor::Value::Text(::std::string::String::from(
                    <#name as ::pgactor::PgEnum>::label(&value),
                ))
            }
        }

        #[automatically_derived]
        impl<'a> ::pgactor::types::FromSql<'a> for #name {
            fn from_sql(
                _: &::pgactor::types::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<
                Self,
                ::std::boxed::Box<dyn ::std::error::Error + ::core::marker::Sync + ::core::marker::Send>,
            > {
                ::pgactor::enum_from_sql(raw)
            }

            fn accepts(ty: &::pgactor::types::Type) -> bool {
                ::pgactor::enum_accepts(ty)
            }
        }
    })
}
