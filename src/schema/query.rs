//! What a `List` asks for: filters, sort order and a page window.

use super::cursor::Cursor;
use super::include::Included;
use super::value::Value;
use crate::error::{quoted_name, Error};

/// The page size a [`Query`] uses when it sets no limit (or
/// [`crate::OpenOptions::max_page`], when that is smaller).
pub const DEFAULT_LIMIT: u64 = 100;

/// The largest page a `List` answers unless [`crate::OpenOptions::max_page`]
/// says otherwise: a larger [`Query::limit`] is refused with
/// [`crate::ErrorKind::InvalidInput`] before any SQL is sent. A page is
/// held whole in memory, decoded rows and all (about 700 bytes a row of a
/// few short columns, several times its size on the server), so its size
/// is bounded; walk a larger result page by page.
pub const MAX_PAGE: u64 = 10_000;

/// A comparison operator for [`Filter::Compare`] and
/// [`Filter::CompareFields`].
///
/// An operator named by a string (from a request, a config file) is parsed
/// with [`str::parse`], which knows exactly the names below and refuses any
/// other with [`crate::ErrorKind::InvalidInput`]: a misspelt operator fails
/// closed, before any SQL, instead of being read as some other condition.
///
/// ```
/// use pgactor::{CmpOp, ErrorKind};
/// assert_eq!("ge".parse::<CmpOp>().unwrap(), CmpOp::Ge);
/// assert_eq!("gte".parse::<CmpOp>().unwrap(), CmpOp::Ge);
/// let err = "equals".parse::<CmpOp>().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// ```
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl std::str::FromStr for CmpOp {
    type Err = Error;

    /// `eq`, `ne` (or `neq`), `lt`, `le` (or `lte`), `gt`, `ge` (or `gte`),
    /// exactly: any other text, other case or surrounding space included, is
    /// refused with [`crate::ErrorKind::InvalidInput`].
    fn from_str(name: &str) -> Result<CmpOp, Error> {
        Ok(match name {
            "eq" => CmpOp::Eq,
            "ne" | "neq" => CmpOp::Ne,
            "lt" => CmpOp::Lt,
            "le" | "lte" => CmpOp::Le,
            "gt" => CmpOp::Gt,
            "ge" | "gte" => CmpOp::Ge,
            _ => {
                return Err(Error::invalid_input(format!(
                    "unknown comparison operator {}",
                    quoted_name(name)
                )))
            }
        })
    }
}

/// How [`Filter::Text`] matches its text against a field.
///
/// The text is a literal, never a pattern: `%`, `_` and `\` in it match
/// themselves. Matching ignores case (`ILIKE`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMatch {
    /// The field holds the text anywhere (`ILIKE '%text%'`).
    Contains,
    /// The field begins with the text (`ILIKE 'text%'`).
    StartsWith,
    /// The field ends with the text (`ILIKE '%text'`).
    EndsWith,
}

impl TextMatch {
    /// The `LIKE` pattern that matches `text` literally in this position,
    /// with `\` as the escape character.
    pub(crate) fn pattern(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 2);
        if self != TextMatch::StartsWith {
            out.push('%');
        }
        for c in text.chars() {
            if matches!(c, '%' | '_' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        if self != TextMatch::EndsWith {
            out.push('%');
        }
        out
    }
}

/// A condition on the rows of a `List`. Field names are checked against the
/// model; values are always bound as parameters, so filters of one shape
/// (the same operators on the same fields) are one SQL text whatever their
/// values, and the server's prepared statement is reused.
///
/// A NULL field never matches a comparison, `between`, `not_in` (with a
/// non-empty list), a text match or a field-to-field comparison: SQL's answer
/// for it is NULL, which a `WHERE` does not keep. Ask for NULL with
/// [`Filter::is_null`]. A NULL *value* in a comparison, a list or a bound
/// is refused with [`crate::ErrorKind::InvalidInput`] rather than silently
/// matching nothing.
///
/// ```
/// use pgactor::Filter;
/// let f = Filter::ge("quantity", 1_i64)
///     .and(Filter::ilike("sku", "a-%").or(Filter::is_null("note")));
/// # let _ = f;
/// ```
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub enum Filter {
    /// `field <op> value`
    Compare {
        /// The field.
        field: String,
        /// The operator.
        op: CmpOp,
        /// The value, bound as a parameter.
        #[serde(with = "super::tagged::value")]
        value: Value,
    },
    /// `field IN (values…)`, bound as one array parameter (`= ANY($n)`), so
    /// any number of values costs one parameter. An empty list matches nothing.
    In {
        /// The field.
        field: String,
        /// The values.
        #[serde(with = "super::tagged::values")]
        values: Vec<Value>,
    },
    /// `field NOT IN (values…)`, bound as one array parameter
    /// (`field <> ALL($n)`). An empty list matches every row (NULL fields
    /// too: there is nothing to differ from); with a non-empty list a NULL
    /// field does not match. NULL in the list is refused.
    NotIn {
        /// The field.
        field: String,
        /// The values the field must differ from.
        #[serde(with = "super::tagged::values")]
        values: Vec<Value>,
    },
    /// `field BETWEEN low AND high`: `low <= field AND field <= high`, both
    /// bounds included, each bound as a parameter. A `low` above `high`
    /// matches nothing (not `SYMMETRIC`); a NULL bound is refused.
    Between {
        /// The field.
        field: String,
        /// The smallest value matched.
        #[serde(with = "super::tagged::value")]
        low: Value,
        /// The largest value matched.
        #[serde(with = "super::tagged::value")]
        high: Value,
    },
    /// A case-insensitive match of literal `text` in a text field:
    /// `field ILIKE $n ESCAPE E'\\'` (the escape is one backslash however
    /// `standard_conforming_strings` is set), where `$n` is `text` with `%`,
    /// `_` and `\` escaped and the wildcards `mode` asks for around it. An
    /// empty `text` matches every non-NULL value.
    Text {
        /// The text field.
        field: String,
        /// The text, matched literally.
        text: String,
        /// Where in the field the text must be.
        mode: TextMatch,
    },
    /// `field <op> other`: two columns of the same row compared. Both must be
    /// fields of the model and hold the same kind of value: both numbers of
    /// the exact kinds (`smallint`, `integer`, `bigint`, `numeric`), both
    /// floating point (`real`, `double precision`), both text (`text`,
    /// `varchar(n)`), or otherwise the same type. Anything else (a float
    /// against an integer, a `date` against a `timestamptz`) is refused with
    /// [`crate::ErrorKind::InvalidInput`]. A row where either is NULL does
    /// not match.
    CompareFields {
        /// The field on the left.
        field: String,
        /// The operator.
        op: CmpOp,
        /// The field on the right.
        other: String,
    },
    /// `field LIKE pattern` or, case-insensitive, `ILIKE`: the pattern is
    /// raw, its `%` and `_` are wildcards and `\` escapes. To match a
    /// literal text, use [`Filter::Text`] ([`Filter::contains`] and
    /// friends).
    Like {
        /// The text field.
        field: String,
        /// The pattern with `%` and `_` wildcards.
        pattern: String,
        /// `ILIKE` instead of `LIKE`.
        case_insensitive: bool,
    },
    /// `value = ANY(field)`: the array field holds `value` among its
    /// elements. `value` has the element type; NULL is refused. A NULL
    /// array, or one without the value, does not match.
    Has {
        /// The array field.
        field: String,
        /// The element looked for, bound as a parameter.
        #[serde(with = "super::tagged::value")]
        value: Value,
    },
    /// A full-text match on the model's searchable fields
    /// ([`crate::Field::searchable`]): `search_vector @@
    /// websearch_to_tsquery('<language>', $n)`, `text` bound as a
    /// parameter. It selects the rows [`Query::search`] finds, without
    /// ordering them by rank: use it where a filter goes (`count`,
    /// `exists`, aggregates, `update_where`, `delete_where`, or ORed with
    /// other conditions). On a model without searchable fields, with an
    /// empty (or only white space) `text`, or with a `text` longer than
    /// [`crate::QueryBounds::max_search_len`], refused with
    /// [`crate::ErrorKind::InvalidInput`] before any SQL.
    Search {
        /// The search, in web search syntax (see [`Query::search`]).
        text: String,
    },
    /// `field IS NULL`, or `IS NOT NULL` when `negated`.
    IsNull {
        /// The field.
        field: String,
        /// `IS NOT NULL` instead.
        negated: bool,
    },
    /// All of the filters hold (an empty list always holds).
    And(Vec<Filter>),
    /// At least one of the filters holds (an empty list never holds).
    Or(Vec<Filter>),
}

impl Filter {
    fn compare(field: impl Into<String>, op: CmpOp, value: impl Into<Value>) -> Filter {
        Filter::Compare {
            field: field.into(),
            op,
            value: value.into(),
        }
    }

    /// `field = value`
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::compare(field, CmpOp::Eq, value)
    }

    /// `field <> value`
    pub fn ne(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::compare(field, CmpOp::Ne, value)
    }

    /// `field < value`
    pub fn lt(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::compare(field, CmpOp::Lt, value)
    }

    /// `field <= value`
    pub fn le(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::compare(field, CmpOp::Le, value)
    }

    /// `field > value`
    pub fn gt(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::compare(field, CmpOp::Gt, value)
    }

    /// `field >= value`
    pub fn ge(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::compare(field, CmpOp::Ge, value)
    }

    /// `field IN (values…)`: an empty list matches nothing.
    pub fn is_in<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::In {
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `field NOT IN (values…)`: rows whose field differs from every value.
    /// An empty list matches every row; otherwise a NULL field does not
    /// match.
    ///
    /// ```
    /// use pgactor::Filter;
    /// let not_archived = Filter::not_in("status", ["archived", "deleted"]);
    /// # let _ = not_archived;
    /// ```
    pub fn not_in<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::NotIn {
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `field BETWEEN low AND high`: both bounds included.
    ///
    /// ```
    /// use pgactor::Filter;
    /// let teens = Filter::between("age", 13_i64, 19_i64); // 13 and 19 match
    /// # let _ = teens;
    /// ```
    pub fn between(
        field: impl Into<String>,
        low: impl Into<Value>,
        high: impl Into<Value>,
    ) -> Filter {
        Filter::Between {
            field: field.into(),
            low: low.into(),
            high: high.into(),
        }
    }

    fn text(field: impl Into<String>, text: impl Into<String>, mode: TextMatch) -> Filter {
        Filter::Text {
            field: field.into(),
            text: text.into(),
            mode,
        }
    }

    /// The text field holds `text` anywhere, ignoring case; `%`, `_` and
    /// `\` in `text` match themselves.
    ///
    /// ```
    /// use pgactor::Filter;
    /// let f = Filter::contains("note", "50%"); // "Save 50% now", not "500 g"
    /// # let _ = f;
    /// ```
    pub fn contains(field: impl Into<String>, text: impl Into<String>) -> Filter {
        Filter::text(field, text, TextMatch::Contains)
    }

    /// The text field begins with `text`, ignoring case; `%`, `_` and `\`
    /// in `text` match themselves.
    pub fn starts_with(field: impl Into<String>, text: impl Into<String>) -> Filter {
        Filter::text(field, text, TextMatch::StartsWith)
    }

    /// The text field ends with `text`, ignoring case; `%`, `_` and `\` in
    /// `text` match themselves.
    pub fn ends_with(field: impl Into<String>, text: impl Into<String>) -> Filter {
        Filter::text(field, text, TextMatch::EndsWith)
    }

    /// `field <op> other`, two fields of the same row (see
    /// [`Filter::CompareFields`] for which kinds compare).
    pub fn compare_fields(field: impl Into<String>, op: CmpOp, other: impl Into<String>) -> Filter {
        Filter::CompareFields {
            field: field.into(),
            op,
            other: other.into(),
        }
    }

    /// `field = other`, two fields of the same row.
    pub fn eq_field(field: impl Into<String>, other: impl Into<String>) -> Filter {
        Filter::compare_fields(field, CmpOp::Eq, other)
    }

    /// `field <> other`, two fields of the same row.
    pub fn ne_field(field: impl Into<String>, other: impl Into<String>) -> Filter {
        Filter::compare_fields(field, CmpOp::Ne, other)
    }

    /// `field < other`, two fields of the same row.
    pub fn lt_field(field: impl Into<String>, other: impl Into<String>) -> Filter {
        Filter::compare_fields(field, CmpOp::Lt, other)
    }

    /// `field <= other`, two fields of the same row.
    pub fn le_field(field: impl Into<String>, other: impl Into<String>) -> Filter {
        Filter::compare_fields(field, CmpOp::Le, other)
    }

    /// `field > other`, two fields of the same row.
    pub fn gt_field(field: impl Into<String>, other: impl Into<String>) -> Filter {
        Filter::compare_fields(field, CmpOp::Gt, other)
    }

    /// `field >= other`, two fields of the same row.
    ///
    /// ```
    /// use pgactor::Filter;
    /// let settled = Filter::ge_field("paid", "due"); // "paid" >= "due"
    /// # let _ = settled;
    /// ```
    pub fn ge_field(field: impl Into<String>, other: impl Into<String>) -> Filter {
        Filter::compare_fields(field, CmpOp::Ge, other)
    }

    /// `field LIKE pattern`: a raw pattern, `%` and `_` are wildcards.
    pub fn like(field: impl Into<String>, pattern: impl Into<String>) -> Filter {
        Filter::Like {
            field: field.into(),
            pattern: pattern.into(),
            case_insensitive: false,
        }
    }

    /// `field ILIKE pattern`: a raw pattern, `%` and `_` are wildcards;
    /// case is ignored.
    pub fn ilike(field: impl Into<String>, pattern: impl Into<String>) -> Filter {
        Filter::Like {
            field: field.into(),
            pattern: pattern.into(),
            case_insensitive: true,
        }
    }

    /// `value = ANY(field)`: the array `field` holds `value`.
    ///
    /// ```
    /// use pgactor::Filter;
    /// let tagged = Filter::has("tags", "sale");
    /// # let _ = tagged;
    /// ```
    pub fn has(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Has {
            field: field.into(),
            value: value.into(),
        }
    }

    /// The rows whose searchable fields match `text` (see
    /// [`Filter::Search`]).
    ///
    /// ```
    /// use pgactor::Filter;
    /// let boots = Filter::search("waterproof boots").and(Filter::gt("stock", 0_i64));
    /// # let _ = boots;
    /// ```
    pub fn search(text: impl Into<String>) -> Filter {
        Filter::Search { text: text.into() }
    }

    /// `field IS NULL`
    pub fn is_null(field: impl Into<String>) -> Filter {
        Filter::IsNull {
            field: field.into(),
            negated: false,
        }
    }

    /// `field IS NOT NULL`
    pub fn is_not_null(field: impl Into<String>) -> Filter {
        Filter::IsNull {
            field: field.into(),
            negated: true,
        }
    }

    /// Both this filter and `other`.
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut all) => {
                all.push(other);
                Filter::And(all)
            }
            one => Filter::And(vec![one, other]),
        }
    }

    /// This filter or `other`.
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut any) => {
                any.push(other);
                Filter::Or(any)
            }
            one => Filter::Or(vec![one, other]),
        }
    }
}

/// Sort direction.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// One sort key of a [`Query`].
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The field to sort by.
    pub field: String,
    /// The direction.
    pub direction: Direction,
}

/// A `List` request: filter, multi-column sort, limit, and where the page
/// starts (an offset, or after a [`Cursor`]).
///
/// Rows are always ordered: after the given sort keys comes `id`, so pages
/// are stable. Without [`Query::limit`] a page holds [`DEFAULT_LIMIT`] rows;
/// a limit above the adapter's maximum page ([`MAX_PAGE`] by default) is
/// refused.
///
/// A page counts every matching row too ([`Page::total`]), unless
/// [`Query::without_total`] says not to. Deep pages cost less walked by
/// cursor ([`Query::after`]) than by offset, which reads and drops every
/// row it skips.
///
/// ```
/// use pgactor::{Filter, Query};
/// let q = Query::new()
///     .filter(Filter::gt("quantity", 0_i64))
///     .sort_desc("quantity")
///     .sort_asc("sku")
///     .limit(50)
///     .offset(100);
/// # let _ = q;
/// ```
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub(crate) filter: Option<Filter>,
    pub(crate) sort: Vec<Sort>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: u64,
    /// Boxed: a query rides in every list message, most without one.
    pub(crate) after: Option<Box<Cursor>>,
    pub(crate) without_total: bool,
    pub(crate) deleted: DeletedRows,
    /// The full-text search ([`Query::search`]).
    pub(crate) search: Option<String>,
    /// Its subset and includes; boxed, as most queries have neither.
    pub(crate) shape: Option<Box<Shape>>,
}

/// The fields a `List`'s rows hold and the relations it loads.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Default)]
pub(crate) struct Shape {
    /// The fields the page's rows hold ([`Query::select`]); `None`: all.
    pub(crate) select: Option<Vec<String>>,
    /// The relations loaded beside the page ([`Query::include`]).
    pub(crate) include: Vec<String>,
}

/// Which rows of a soft-delete model a [`Query`] sees.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DeletedRows {
    /// Live rows only (`deleted_at IS NULL`), the default.
    #[default]
    Hidden,
    /// Live and deleted rows ([`Query::with_deleted`]).
    Included,
    /// Deleted rows only ([`Query::only_deleted`]).
    Only,
}

impl Query {
    /// Every row, first page.
    pub fn new() -> Query {
        Query::default()
    }

    /// Keep only rows matching `filter` (combined with AND when called twice).
    pub fn filter(mut self, filter: Filter) -> Query {
        self.filter = Some(match self.filter.take() {
            Some(existing) => existing.and(filter),
            None => filter,
        });
        self
    }

    /// Sort by `field`, ascending, after any earlier sort keys.
    pub fn sort_asc(self, field: impl Into<String>) -> Query {
        self.sort_by(field, Direction::Asc)
    }

    /// Sort by `field`, descending, after any earlier sort keys.
    pub fn sort_desc(self, field: impl Into<String>) -> Query {
        self.sort_by(field, Direction::Desc)
    }

    /// Sort by `field` in `direction`, after any earlier sort keys.
    pub fn sort_by(mut self, field: impl Into<String>, direction: Direction) -> Query {
        self.sort.push(Sort {
            field: field.into(),
            direction,
        });
        self
    }

    /// At most `limit` rows per page; above the adapter's maximum page
    /// ([`MAX_PAGE`] by default, see [`crate::OpenOptions::max_page`]) the
    /// `List` is refused with [`crate::ErrorKind::InvalidInput`].
    pub fn limit(mut self, limit: u64) -> Query {
        self.limit = Some(limit);
        self
    }

    /// Skip the first `offset` matching rows. The server still reads every
    /// row it skips: a deep page costs as much as all the pages before it
    /// (see [`Query::after`]).
    pub fn offset(mut self, offset: u64) -> Query {
        self.offset = offset;
        self
    }

    /// Start after the row `cursor` was made from: the page after the one
    /// whose [`Page::next`] it is (keyset pagination). The server seeks to
    /// the cursor's sort key instead of reading and dropping the rows
    /// before it, so every page costs about the same, and rows inserted or
    /// deleted before the cursor do not shift the pages after it.
    ///
    /// Use it with the sort (and the model) the cursor was made for and no
    /// offset: another sort, an offset above 0 or a tampered cursor is
    /// refused with [`crate::ErrorKind::InvalidInput`] before any SQL. The
    /// filter may change between pages. NULLs sort as PostgreSQL sorts them
    /// by default (last when ascending, first when descending), and a
    /// cursor after a NULL continues among the NULLs and past them. A sort
    /// on a `jsonb`, array or `inet` field makes no cursor.
    ///
    /// ```no_run
    /// # async fn walk(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Query;
    /// let query = Query::new().sort_desc("quantity").limit(100).without_total();
    /// let mut page = db.list("StockBalance", query.clone()).await?;
    /// loop {
    ///     // … use page.rows …
    ///     let Some(next) = page.next else { break };
    ///     page = db.list("StockBalance", query.clone().after(next)).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn after(mut self, cursor: Cursor) -> Query {
        self.after = Some(Box::new(cursor));
        self
    }

    /// Do not count the matching rows: [`Page::total`] is `None`, and the
    /// page costs one statement instead of two. Counting reads every
    /// matching row (or index entry), however small the page: with many
    /// matches it costs far more than the page itself.
    pub fn without_total(mut self) -> Query {
        self.without_total = true;
        self
    }

    /// Find the rows whose searchable fields ([`crate::Field::searchable`])
    /// match `text`, most relevant first: `search_vector @@
    /// websearch_to_tsquery('<language>', $n)`, ANDed with the filter and
    /// the soft-delete scope, the text bound as a parameter. Without a
    /// sort the rows come by rank (`ts_rank`, highest first, then `id`);
    /// with one, in the sort's order. The page's total counts every match.
    ///
    /// `text` is web search syntax, as a search box takes it: words (all
    /// must match, each reduced to its stem in the model's language, stop
    /// words left out), `"a quoted phrase"`, `or` between alternatives,
    /// `-word` to exclude. Any text is valid: stray quotes and signs are
    /// ignored, never an error; a text of stop words or punctuation only
    /// matches no row.
    ///
    /// Refused with [`crate::ErrorKind::InvalidInput`] before any SQL: a
    /// model without searchable fields; an empty (or only white space)
    /// `text` (leave the search out to list every row); a `text` longer
    /// than [`crate::QueryBounds::max_search_len`] (1 KiB by default); a
    /// cursor ([`Query::after`]) on a search ordered by rank, which pages by
    /// offset (a search with a sort pages by cursor as any list does).
    /// Called twice, the last text is searched.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::{Filter, Query};
    /// let hits = db
    ///     .list("Product", Query::new().search("\"trail running\" shoes -kids").filter(Filter::gt("stock", 0_i64)).limit(20))
    ///     .await?;
    /// # let _ = hits; Ok(()) }
    /// ```
    pub fn search(mut self, text: impl Into<String>) -> Query {
        self.search = Some(text.into());
        self
    }

    /// See soft-deleted rows too, beside live ones, on a soft-delete model
    /// ([`crate::Model::soft_delete`]); a list of any other model is
    /// refused with [`crate::ErrorKind::InvalidInput`] before any SQL.
    /// Without it (or [`Query::only_deleted`]) a list sees live rows only.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Query;
    /// let every = db.list("Doc", Query::new().with_deleted()).await?;
    /// # let _ = every; Ok(()) }
    /// ```
    pub fn with_deleted(mut self) -> Query {
        self.deleted = DeletedRows::Included;
        self
    }

    /// See soft-deleted rows only (a trash bin), on a soft-delete model;
    /// refused as [`Query::with_deleted`] is on any other model.
    ///
    /// ```no_run
    /// # async fn demo(db: pgactor::Db) -> pgactor::Result<()> {
    /// use pgactor::Query;
    /// let trash = db.list("Doc", Query::new().only_deleted().sort_desc("deleted_at")).await?;
    /// # let _ = trash; Ok(()) }
    /// ```
    pub fn only_deleted(mut self) -> Query {
        self.deleted = DeletedRows::Only;
        self
    }
}

/// One page of a `List`: its rows as [`super::record::Record`]s, or as the
/// model's own type through [`crate::Db::typed`], the number of rows
/// matching the filter, and a cursor to the next page.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page<T = super::record::Record> {
    /// The rows of this page, in the query's order.
    pub rows: Vec<T>,
    /// How many rows match the filter across all pages (whatever the
    /// offset or cursor); `None` when the query said
    /// [`Query::without_total`].
    pub total: Option<u64>,
    /// The page size used.
    pub limit: u64,
    /// The offset used (`0` for a page after a cursor).
    pub offset: u64,
    /// Where the next page starts, for [`Query::after`]: present when this
    /// page is full (it holds `limit` rows; the next may still be empty).
    /// `None` on a page with fewer rows (the last), and when no cursor can
    /// follow the sort: a sort on a `jsonb`, array, `inet` or custom-typed
    /// field, or a
    /// last row whose sort key encodes longer than
    /// [`super::cursor::MAX_CURSOR_LEN`].
    pub next: Option<Cursor>,
    /// The related rows [`Query::include`] loaded beside the page, by
    /// relation; empty without includes (and then not serialized).
    #[serde(skip_serializing_if = "Included::is_empty")]
    pub included: Included,
}
