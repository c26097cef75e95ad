//! The `#[pgactor(…)]` attributes, on the struct and on its fields.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, UnOp};

/// The struct's attributes.
#[derive(Default)]
pub(crate) struct StructAttrs {
    /// `model = "…"`
    pub(crate) model: Option<LitStr>,
    /// `table = "…"`
    pub(crate) table: Option<LitStr>,
    /// `index(…)` and `unique_index(…)`, in order.
    pub(crate) indexes: Vec<IndexAttr>,
    /// `soft_delete`
    pub(crate) soft_delete: Option<Span>,
    /// `search_language = "…"`
    pub(crate) search_language: Option<LitStr>,
}

/// One `index(a, b)` or `unique_index(a, b)`.
pub(crate) struct IndexAttr {
    pub(crate) unique: bool,
    /// The column names, each with its span.
    pub(crate) columns: Vec<(String, Span)>,
}

/// A field's attributes; each key's span, for errors about it.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// `column = "…"`
    pub(crate) column: Option<LitStr>,
    /// `unique`
    pub(crate) unique: Option<Span>,
    /// `default = <literal>`
    pub(crate) default: Option<DefaultLit>,
    /// `default_now`
    pub(crate) default_now: Option<Span>,
    /// `varchar = n`
    pub(crate) varchar: Option<(u32, Span)>,
    /// `skip`
    pub(crate) skip: Option<Span>,
    /// `text`
    pub(crate) text: Option<Span>,
    /// `version`
    pub(crate) version: Option<Span>,
    /// `references = "Model"`
    pub(crate) references: Option<LitStr>,
    /// `on_delete = "cascade"`
    pub(crate) on_delete: Option<LitStr>,
    /// `searchable`
    pub(crate) searchable: Option<Span>,
    /// `pg_enum`
    pub(crate) pg_enum: Option<Span>,
    /// `citext`
    pub(crate) citext: Option<Span>,
    /// `sql_type = "…"`
    pub(crate) sql_type: Option<LitStr>,
}

impl FieldAttrs {
    /// The span of the first attribute that only a declared field takes.
    pub(crate) fn declared_only(&self) -> Option<Span> {
        self.unique
            .or(self.default.as_ref().map(|d| d.span))
            .or(self.default_now)
            .or(self.varchar.map(|(_, span)| span))
            .or(self.text)
            .or(self.version)
            .or(self.references.as_ref().map(LitStr::span))
            .or(self.on_delete.as_ref().map(LitStr::span))
            .or(self.searchable)
            .or(self.pg_enum)
            .or(self.citext)
            .or(self.sql_type.as_ref().map(LitStr::span))
    }
}

/// `default = <literal>`: the literal, and whether a `-` stood before it.
pub(crate) struct DefaultLit {
    pub(crate) negative: bool,
    pub(crate) lit: Lit,
    pub(crate) span: Span,
}

/// Set `slot` once; a second `key` is an error.
fn once<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error("this attribute is given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn pgactor_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("pgactor"))
}

/// The key of a nested meta, for messages.
fn key(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(|i| i.unraw().to_string())
        .unwrap_or_else(|| "this path".to_owned())
}

impl StructAttrs {
    /// Parse every `#[pgactor(…)]` on the struct.
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<StructAttrs> {
        let mut out = StructAttrs::default();
        for attr in pgactor_attrs(attrs) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("model") {
                    let lit: LitStr = meta.value()?.parse()?;
                    once(&mut out.model, lit, &meta)
                } else if meta.path.is_ident("table") {
                    let lit: LitStr = meta.value()?.parse()?;
                    once(&mut out.table, lit, &meta)
                } else if meta.path.is_ident("soft_delete") {
                    once(&mut out.soft_delete, meta.path.span(), &meta)
                } else if meta.path.is_ident("search_language") {
                    let lit: LitStr = meta.value()?.parse()?;
                    once(&mut out.search_language, lit, &meta)
                } else if meta.path.is_ident("index") || meta.path.is_ident("unique_index") {
                    let unique = meta.path.is_ident("unique_index");
                    let mut columns = Vec::new();
                    meta.parse_nested_meta(|column| {
                        let ident: &Ident = column
                            .path
                            .get_ident()
                            .ok_or_else(|| column.error("expected a column name"))?;
                        columns.push((ident.unraw().to_string(), ident.span()));
                        Ok(())
                    })?;
                    if columns.is_empty() {
                        return Err(meta.error("an index needs at least one column"));
                    }
                    out.indexes.push(IndexAttr { unique, columns });
                    Ok(())
                } else {
                    Err(meta.error(format!(
                        "unknown pgactor attribute `{}` on a struct; expected model = \"…\", \
                         table = \"…\", index(…), unique_index(…), soft_delete or \
                         search_language = \"…\"",
                        key(&meta)
                    )))
                }
            })?;
        }
        Ok(out)
    }
}

impl FieldAttrs {
    /// Parse every `#[pgactor(…)]` on a field.
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<FieldAttrs> {
        let mut out = FieldAttrs::default();
        for attr in pgactor_attrs(attrs) {
            attr.parse_nested_meta(|meta| {
                let span = meta.path.span();
                if meta.path.is_ident("column") {
                    let lit: LitStr = meta.value()?.parse()?;
                    once(&mut out.column, lit, &meta)
                } else if meta.path.is_ident("unique") {
                    once(&mut out.unique, span, &meta)
                } else if meta.path.is_ident("default_now") {
                    once(&mut out.default_now, span, &meta)
                } else if meta.path.is_ident("skip") {
                    once(&mut out.skip, span, &meta)
                } else if meta.path.is_ident("text") {
                    once(&mut out.text, span, &meta)
                } else if meta.path.is_ident("version") {
                    once(&mut out.version, span, &meta)
                } else if meta.path.is_ident("searchable") {
                    once(&mut out.searchable, span, &meta)
                } else if meta.path.is_ident("pg_enum") {
                    once(&mut out.pg_enum, span, &meta)
                } else if meta.path.is_ident("citext") {
                    once(&mut out.citext, span, &meta)
                } else if meta.path.is_ident("sql_type") {
                    let lit: LitStr = meta.value()?.parse()?;
                    once(&mut out.sql_type, lit, &meta)
                } else if meta.path.is_ident("references") {
                    let lit: LitStr = meta.value()?.parse()?;
                    once(&mut out.references, lit, &meta)
                } else if meta.path.is_ident("on_delete") {
                    let lit: LitStr = meta.value()?.parse()?;
                    once(&mut out.on_delete, lit, &meta)
                } else if meta.path.is_ident("varchar") {
                    let lit: LitInt = meta.value()?.parse()?;
                    let n: u32 = lit.base10_parse()?;
                    if n == 0 {
                        return Err(syn::Error::new(lit.span(), "varchar(0) cannot hold text"));
                    }
                    once(&mut out.varchar, (n, span), &meta)
                } else if meta.path.is_ident("default") {
                    let expr: Expr = meta.value()?.parse()?;
                    let default = default_literal(expr)?;
                    once(&mut out.default, default, &meta)
                } else {
                    Err(meta.error(format!(
                        "unknown pgactor attribute `{}` on a field; expected column = \"…\", \
                         unique, default = <literal>, default_now, varchar = <n>, text, pg_enum, \
                         citext, sql_type = \"…\", version, references = \"Model\", \
                         on_delete = \"…\", searchable or skip",
                        key(&meta)
                    )))
                }
            })?;
        }
        Ok(out)
    }
}

/// The literal of `default = …`: a literal, or `-` and a number.
fn default_literal(expr: Expr) -> syn::Result<DefaultLit> {
    let span = expr.span();
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Ok(DefaultLit {
            negative: false,
            lit,
            span,
        }),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match *expr {
            Expr::Lit(ExprLit {
                lit: lit @ (Lit::Int(_) | Lit::Float(_)),
                ..
            }) => Ok(DefaultLit {
                negative: true,
                lit,
                span,
            }),
            _ => Err(syn::Error::new(span, "a default is a literal")),
        },
        _ => Err(syn::Error::new(
            span,
            "a default is a literal: an integer, a float, true or false, or a string",
        )),
    }
}
