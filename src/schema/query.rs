//! What a `List` asks for: filters, sort order and a page window.

use super::value::Value;

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

/// A comparison operator for [`Filter::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A condition on the rows of a `List`. Field names are checked against the
/// model; values are always bound as parameters.
///
/// ```
/// use pgactor::Filter;
/// let f = Filter::ge("quantity", 1_i64)
///     .and(Filter::ilike("sku", "a-%").or(Filter::is_null("note")));
/// # let _ = f;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `field <op> value`
    Compare {
        /// The field.
        field: String,
        /// The operator.
        op: CmpOp,
        /// The value, bound as a parameter.
        value: Value,
    },
    /// `field IN (values…)`, bound as one array parameter (`= ANY($n)`), so
    /// any number of values costs one parameter. An empty list matches nothing.
    In {
        /// The field.
        field: String,
        /// The values.
        values: Vec<Value>,
    },
    /// `field LIKE pattern` or, case-insensitive, `ILIKE`.
    Like {
        /// The text field.
        field: String,
        /// The pattern with `%` and `_` wildcards.
        pattern: String,
        /// `ILIKE` instead of `LIKE`.
        case_insensitive: bool,
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

    /// `field IN (values…)`
    pub fn is_in<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::In {
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `field LIKE pattern`
    pub fn like(field: impl Into<String>, pattern: impl Into<String>) -> Filter {
        Filter::Like {
            field: field.into(),
            pattern: pattern.into(),
            case_insensitive: false,
        }
    }

    /// `field ILIKE pattern`
    pub fn ilike(field: impl Into<String>, pattern: impl Into<String>) -> Filter {
        Filter::Like {
            field: field.into(),
            pattern: pattern.into(),
            case_insensitive: true,
        }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// One sort key of a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The field to sort by.
    pub field: String,
    /// The direction.
    pub direction: Direction,
}

/// A `List` request: filter, multi-column sort, limit and offset.
///
/// Rows are always ordered: after the given sort keys comes `id`, so pages
/// are stable. Without [`Query::limit`] a page holds [`DEFAULT_LIMIT`] rows;
/// a limit above the adapter's maximum page ([`MAX_PAGE`] by default) is
/// refused.
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub(crate) filter: Option<Filter>,
    pub(crate) sort: Vec<Sort>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: u64,
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

    /// Skip the first `offset` matching rows.
    pub fn offset(mut self, offset: u64) -> Query {
        self.offset = offset;
        self
    }
}

/// One page of a `List`, with the number of rows matching the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The rows of this page, in the query's order.
    pub rows: Vec<super::record::Record>,
    /// How many rows match the filter across all pages.
    pub total: u64,
    /// The page size used.
    pub limit: u64,
    /// The offset used.
    pub offset: u64,
}
