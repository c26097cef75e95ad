//! What `#[derive(Partial)]` generates: compile-time checks of each field
//! against the entity's column constants, then `Partial` and `FromRow`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{DeriveInput, Path};

use crate::expand::{named_fields, reading, Read};
use crate::types::option_inner;

/// Expand the derive, or the errors on the input.
pub(crate) fn partial(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let fields = named_fields(&input, "Partial", "each field is a column of the entity")?;
    let of = entity_of(&input)?;
    let mut checks = Vec::new();
    let mut names = Vec::new();
    let mut read = Vec::new();
    for field in fields {
        let Some(ident) = &field.ident else { continue };
        let text = text_attr(field)?;
        let constant = format_ident!("{}", ident.unraw().to_string().to_uppercase());
        let ty = &field.ty;
        let value_ty = option_inner(ty).unwrap_or(ty);
        let nullable = option_inner(ty).is_some();
        let column_ty = if text {
            quote!(::pgactor::AsText<#value_ty>)
        } else {
            quote!(#value_ty)
        };
        // The entity has the field, of this type (errors on the type).
        checks.push(quote_spanned! {ty.span()=>
            let _: ::pgactor::Column<#of, #column_ty> = <#of>::#constant;
        });
        if !nullable {
            let message = format!(
                "field `{}` of {} reads a column that may hold NULL: make it an Option",
                ident.unraw(),
                name
            );
            checks.push(quote_spanned! {ty.span()=>
                ::core::assert!(!<#of>::#constant.is_nullable(), #message);
            });
        }
        let column = quote!(<#of>::#constant.name());
        read.push(Read {
            field: ident,
            column: column.clone(),
            ty: value_ty,
            text,
            nullable,
        });
        names.push(column);
    }
    let body = reading(name, &read, &[]);
    Ok(quote! {
        // Each field is a column of the entity, of the column's type, and
        // an Option when the column may hold NULL.
        const _: () = {
            #(#checks)*
        };

        #[automatically_derived]
        impl ::pgactor::Partial for #name {
            type Of = #of;
            const FIELDS: &'static [&'static str] = &[#(#names),*];
        }

        #[automatically_derived]
        impl ::pgactor::FromRow for #name {
            #body
        }
    })
}

/// The entity of `#[pgactor(of = Entity)]`, which the struct must have.
fn entity_of(input: &DeriveInput) -> syn::Result<Path> {
    let mut of = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("pgactor")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("of") && of.is_none() {
                of = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("a Partial takes one attribute on the struct: of = Entity"))
            }
        })?;
    }
    of.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "#[derive(Partial)] needs #[pgactor(of = Entity)]: the entity whose fields it holds",
        )
    })
}

/// Whether the field is `#[pgactor(text)]`, the one attribute a partial's
/// field takes.
fn text_attr(field: &syn::Field) -> syn::Result<bool> {
    let mut text = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("pgactor")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("text") && !text {
                text = true;
                Ok(())
            } else {
                Err(meta.error(
                    "a Partial's field takes one attribute: text (as the entity's field has it); \
                     its column is the entity's field of the same name",
                ))
            }
        })?;
    }
    Ok(text)
}
