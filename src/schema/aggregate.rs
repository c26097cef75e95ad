//! [`Aggregate`]: what an aggregate query asks for — a filter, the fields
//! rows are grouped by, and the aggregates (count, sum, avg, min, max)
//! each group answers.

use super::query::{Direction, Filter, Sort};

/// The most fields an [`Aggregate`] groups by; more are refused with
/// [`crate::ErrorKind::InvalidInput`] before any SQL.
pub const MAX_GROUP_FIELDS: usize = 16;

/// The most aggregates (outputs) one [`Aggregate`] asks for; more are
/// refused with [`crate::ErrorKind::InvalidInput`] before any SQL.
pub const MAX_AGGREGATES: usize = 16;

/// An aggregate function of an [`Aggregate`]'s output.
///
/// What each answers, by the field's type (PostgreSQL's answer but for
/// `sum` of `bigint`, cast back to `bigint`):
///
/// | function | field type | answer ([`crate::Value`]) |
/// |---|---|---|
/// | `count` (rows, or non-NULL values of a field) | any | `bigint` (`I64`) |
/// | `sum` | `smallint`, `integer`, `bigint` | `bigint` (`I64`); a total beyond `i64` is refused by the server (SQLSTATE 22003) |
/// | `sum` | `numeric` / `real` / `double precision` | the field's type (`Numeric` / `F32` / `F64`) |
/// | `avg` | `smallint`, `integer`, `bigint`, `numeric` | `numeric` (`Numeric`) |
/// | `avg` | `real`, `double precision` | `double precision` (`F64`) |
/// | `min`, `max` | numbers, text, `date`, `time`, `timestamp`, `timestamptz`, `inet` | the field's type (`varchar` as text) |
///
/// `sum`, `avg`, `min` and `max` skip NULLs and answer NULL when a group
/// has no non-NULL value (as a group without rows does: an aggregate with
/// no group fields over no rows answers one row, `count` 0, the others
/// NULL). `sum`/`avg` of any other type, and `min`/`max` of `boolean`,
/// `bytea`, `uuid`, `jsonb` or an array, are refused before any SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFn {
    /// `count(*)`, or `count(field)`: the rows, or the field's non-NULL values.
    Count,
    /// `sum(field)`.
    Sum,
    /// `avg(field)`.
    Avg,
    /// `min(field)`.
    Min,
    /// `max(field)`.
    Max,
}

impl AggregateFn {
    /// `count`, `sum`, `avg`, `min` or `max`: its SQL name, and the prefix
    /// of an output's default name.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFn::Count => "count",
            AggregateFn::Sum => "sum",
            AggregateFn::Avg => "avg",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
        }
    }
}

/// One output of an [`Aggregate`]: a function of a field (of every row
/// for `count` without a field), under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateOutput {
    /// The output's column (and record field) name.
    pub name: String,
    /// The aggregate function.
    pub function: AggregateFn,
    /// The field it aggregates; `None` only for `count(*)`.
    pub field: Option<String>,
}

/// An aggregate query: rows matching a filter, grouped by some fields,
/// each group answering its group fields' values and the outputs asked
/// for ([`crate::Db::aggregate`]).
///
/// Output names: `count` for [`Aggregate::count`], `<function>_<field>`
/// for the others (`count_email`, `sum_quantity`, `avg_price`,
/// `min_created_at`, `max_price`), or the name given to an `_as` method.
/// A name is a plain identifier (`[A-Za-z_][A-Za-z0-9_$]*`, at most 63
/// bytes), differs from every other output's and group field's, and is
/// the answer's column name: a record field, or the column a
/// [`crate::FromRow`] type reads (by name, or by position: the group
/// fields first, then the outputs, in the order they were added).
///
/// Groups are answered in the order of the sort given (by group fields
/// or output names), else by the group fields ascending. Without a
/// [`Aggregate::limit`], more groups than the adapter's maximum page
/// ([`crate::OpenOptions::max_page`]) is an error, not a partial answer;
/// with one, the first `limit` groups are answered.
///
/// ```
/// use pgactor::{Aggregate, Filter};
/// let by_category = Aggregate::new()
///     .filter(Filter::gt("quantity", 0_i64))
///     .group_by("category")
///     .count()
///     .sum("quantity")
///     .avg_as("mean_price", "price")
///     .max("created_at")
///     .sort_desc("count")
///     .limit(10);
/// # let _ = by_category;
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Aggregate {
    pub(crate) filter: Option<Filter>,
    pub(crate) group_by: Vec<String>,
    pub(crate) outputs: Vec<AggregateOutput>,
    pub(crate) sort: Vec<Sort>,
    pub(crate) limit: Option<u64>,
}

impl Aggregate {
    /// Every row, no group, no output yet.
    pub fn new() -> Aggregate {
        Aggregate::default()
    }

    /// Only rows matching `filter` (validated and bound as a `List`'s);
    /// given twice, rows must match both.
    pub fn filter(mut self, filter: Filter) -> Aggregate {
        self.filter = Some(match self.filter.take() {
            Some(existing) => existing.and(filter),
            None => filter,
        });
        self
    }

    /// Group rows by `field` too (after the fields given before); each
    /// group answers the field's value under the field's name.
    pub fn group_by(mut self, field: impl Into<String>) -> Aggregate {
        self.group_by.push(field.into());
        self
    }

    /// Add an output of any function: `field` `None` only for `count(*)`.
    pub fn output(
        mut self,
        name: impl Into<String>,
        function: AggregateFn,
        field: Option<&str>,
    ) -> Aggregate {
        self.outputs.push(AggregateOutput {
            name: name.into(),
            function,
            field: field.map(str::to_owned),
        });
        self
    }

    /// `function` of `field`, named `<function>_<field>`.
    fn of(self, function: AggregateFn, field: &str) -> Aggregate {
        let name = format!("{}_{field}", function.name());
        self.output(name, function, Some(field))
    }

    /// `count(*)`, the rows of each group, named `count`.
    pub fn count(self) -> Aggregate {
        self.count_as("count")
    }

    /// `count(*)` named `name`.
    pub fn count_as(self, name: &str) -> Aggregate {
        self.output(name, AggregateFn::Count, None)
    }

    /// `count(field)`, the non-NULL values of `field`, named `count_<field>`.
    pub fn count_of(self, field: &str) -> Aggregate {
        self.of(AggregateFn::Count, field)
    }

    /// `sum(field)` of a numeric field, named `sum_<field>`.
    pub fn sum(self, field: &str) -> Aggregate {
        self.of(AggregateFn::Sum, field)
    }

    /// `sum(field)` named `name`.
    pub fn sum_as(self, name: &str, field: &str) -> Aggregate {
        self.output(name, AggregateFn::Sum, Some(field))
    }

    /// `avg(field)` of a numeric field, named `avg_<field>`.
    pub fn avg(self, field: &str) -> Aggregate {
        self.of(AggregateFn::Avg, field)
    }

    /// `avg(field)` named `name`.
    pub fn avg_as(self, name: &str, field: &str) -> Aggregate {
        self.output(name, AggregateFn::Avg, Some(field))
    }

    /// `min(field)` of an ordered field, named `min_<field>`.
    pub fn min(self, field: &str) -> Aggregate {
        self.of(AggregateFn::Min, field)
    }

    /// `min(field)` named `name`.
    pub fn min_as(self, name: &str, field: &str) -> Aggregate {
        self.output(name, AggregateFn::Min, Some(field))
    }

    /// `max(field)` of an ordered field, named `max_<field>`.
    pub fn max(self, field: &str) -> Aggregate {
        self.of(AggregateFn::Max, field)
    }

    /// `max(field)` named `name`.
    pub fn max_as(self, name: &str, field: &str) -> Aggregate {
        self.output(name, AggregateFn::Max, Some(field))
    }

    /// Order groups by `name` (a group field or an output), ascending,
    /// after any earlier sort keys.
    pub fn sort_asc(self, name: impl Into<String>) -> Aggregate {
        self.sort_by(name, Direction::Asc)
    }

    /// Order groups by `name` (a group field or an output), descending.
    pub fn sort_desc(self, name: impl Into<String>) -> Aggregate {
        self.sort_by(name, Direction::Desc)
    }

    /// Order groups by `name` in `direction`, after any earlier sort keys.
    pub fn sort_by(mut self, name: impl Into<String>, direction: Direction) -> Aggregate {
        self.sort.push(Sort {
            field: name.into(),
            direction,
        });
        self
    }

    /// Answer only the first `limit` groups (at most the adapter's maximum
    /// page); without it, more groups than that is an error.
    pub fn limit(mut self, limit: u64) -> Aggregate {
        self.limit = Some(limit);
        self
    }
}
