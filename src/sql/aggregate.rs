//! The statements of aggregate reads: `count`, `exists`, and an
//! [`Aggregate`]'s grouped `count`/`sum`/`avg`/`min`/`max`. Each is one
//! statement; the filter is validated and bound as a `List`'s.

use tokio_postgres::types::Type;

use crate::error::{Error, Result};
use crate::schema::{
    quote_ident, validate_identifier, Aggregate, AggregateFn, AggregateOutput, Direction,
    FieldType, Filter, Value, MAX_AGGREGATES, MAX_GROUP_FIELDS,
};

use super::statement::{Param, Sql, Statement};
use super::table::Table;

/// An aggregate's statement, the names of the columns it answers (the
/// group fields, then the outputs), and, when the caller set no limit,
/// the most groups it may answer: the statement asks for one more, so a
/// larger answer is seen and refused rather than cut.
#[derive(Debug)]
pub(crate) struct Aggregation {
    pub(crate) stmt: Statement,
    pub(crate) names: Vec<String>,
    pub(crate) most: Option<u64>,
}

impl Table {
    /// The condition of the rows an aggregate read sees: those matching
    /// `filter` (checked as a `List`'s), every row without one, and on a
    /// soft-delete model only its live rows. The one place `count`,
    /// `exists` and aggregates choose their rows.
    fn rows_seen(&self, filter: Option<&Filter>, stmt: &mut Statement) -> Result<String> {
        let mut condition = match filter {
            Some(filter) => self.condition(filter, stmt, 0)?,
            None => "TRUE".into(),
        };
        // A soft-delete model's deleted rows are not counted.
        self.push_live(&mut condition);
        Ok(condition)
    }

    /// `SELECT count(*) FROM … WHERE <filter>`.
    pub(crate) fn count(&self, filter: &Filter) -> Result<Statement> {
        let mut stmt = Statement::new();
        let condition = self.rows_seen(Some(filter), &mut stmt)?;
        stmt.sql = Sql::Written(format!(
            "SELECT count(*) FROM {} WHERE {condition}",
            self.qualified
        ));
        stmt.checked()
    }

    /// `SELECT EXISTS (SELECT 1 FROM … WHERE <filter>)`: stops at the
    /// first matching row.
    pub(crate) fn exists(&self, filter: &Filter) -> Result<Statement> {
        let mut stmt = Statement::new();
        let condition = self.rows_seen(Some(filter), &mut stmt)?;
        stmt.sql = Sql::Written(format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE {condition})",
            self.qualified
        ));
        stmt.checked()
    }

    /// `SELECT <group fields>, <outputs> FROM … WHERE <filter> GROUP BY
    /// <group fields> ORDER BY <sort>, <group fields> LIMIT $n`, checked
    /// before any SQL (see [`Aggregate`]): at most `max_page` groups.
    pub(crate) fn aggregate(&self, aggregate: &Aggregate, max_page: u64) -> Result<Aggregation> {
        let model = self.model.name();
        let Aggregate {
            filter,
            group_by,
            outputs,
            sort,
            limit,
        } = aggregate;
        if group_by.is_empty() && outputs.is_empty() {
            return Err(Error::invalid_input(format!(
                "an aggregate of {model} asks for nothing: group by a field or add an output \
                 (count, sum, avg, min, max)"
            )));
        }
        for (n, most, what) in [
            (
                group_by.len(),
                MAX_GROUP_FIELDS,
                "group fields (MAX_GROUP_FIELDS)",
            ),
            (outputs.len(), MAX_AGGREGATES, "outputs (MAX_AGGREGATES)"),
        ] {
            if n > most {
                return Err(Error::invalid_input(format!(
                    "an aggregate of {model} with {n} {what} is above the maximum of {most}"
                )));
            }
        }
        let mut names: Vec<String> = Vec::with_capacity(group_by.len() + outputs.len());
        let mut select = Vec::with_capacity(names.capacity());
        for field in group_by {
            let ty = self.column_type(field)?;
            if names.contains(field) {
                return Err(Error::invalid_input(format!(
                    "an aggregate of {model} groups by \"{field}\" twice"
                )));
            }
            select.push(match ty.travels_as_text() {
                // Read as text, as a row's column is.
                true => format!("{}::text AS {}", quote_ident(field), quote_ident(field)),
                false => quote_ident(field),
            });
            names.push(field.clone());
        }
        for output in outputs {
            validate_identifier(&output.name)
                .map_err(|e| Error::invalid_input(format!("an aggregate output's name: {e}")))?;
            if names.contains(&output.name) {
                return Err(Error::invalid_input(format!(
                    "an aggregate of {model} names two columns \"{}\" (group fields and outputs \
                     answer under their names: name the output otherwise)",
                    output.name
                )));
            }
            select.push(format!(
                "{} AS {}",
                self.aggregate_expression(output)?,
                quote_ident(&output.name)
            ));
            names.push(output.name.clone());
        }
        let mut order = Vec::with_capacity(sort.len() + group_by.len());
        for key in sort {
            if !names.contains(&key.field) {
                return Err(Error::invalid_input(format!(
                    "an aggregate of {model} sorts by \"{}\", which is neither a group field \
                     nor an output",
                    key.field
                )));
            }
            let direction = match key.direction {
                Direction::Asc => "ASC",
                Direction::Desc => "DESC",
            };
            order.push(format!(
                "{} {direction}",
                self.group_order(&key.field, group_by)?
            ));
        }
        // The group fields break ties: the same groups come in the same order.
        for field in group_by
            .iter()
            .filter(|f| !sort.iter().any(|s| s.field == **f))
        {
            order.push(format!("{} ASC", self.group_order(field, group_by)?));
        }
        let (fetched, most) = match *limit {
            Some(limit) if limit > max_page => {
                return Err(Error::invalid_input(format!(
                    "an aggregate's limit {limit} is above the maximum of {max_page} groups \
                     (OpenOptions::max_page)"
                )))
            }
            Some(limit) => (limit, None),
            None => (max_page + 1, Some(max_page)),
        };
        let mut stmt = Statement::new();
        let condition = self.rows_seen(filter.as_ref(), &mut stmt)?;
        let mut sql = format!(
            "SELECT {} FROM {} WHERE {condition}",
            select.join(", "),
            self.qualified
        );
        if !group_by.is_empty() {
            let fields: Vec<String> = group_by.iter().map(|f| quote_ident(f)).collect();
            sql.push_str(" GROUP BY ");
            sql.push_str(&fields.join(", "));
        }
        if !order.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&order.join(", "));
        }
        let fetched = i64::try_from(fetched)
            .map_err(|_| Error::invalid_input(format!("limit {fetched} is too large")))?;
        sql.push_str(" LIMIT ");
        sql.push_str(&stmt.bind(Param::One(Value::I64(fetched)), Type::INT8));
        stmt.sql = Sql::Written(sql);
        Ok(Aggregation {
            stmt: stmt.checked()?,
            names,
            most,
        })
    }

    /// How an aggregate's ORDER BY names `name`: a group field in its
    /// type's order (an enum's labels', not the text it answers), else
    /// the output's name.
    fn group_order(&self, name: &str, group_by: &[String]) -> Result<String> {
        match group_by.iter().any(|f| f == name) {
            true => self.sort_column(name),
            false => Ok(quote_ident(name)),
        }
    }

    /// The SQL of one output, its field checked for its function: `sum`
    /// and `avg` of numbers only, `min` and `max` of ordered types only;
    /// `sum` of `bigint` cast back to `bigint` (PostgreSQL answers
    /// `numeric`).
    fn aggregate_expression(&self, output: &AggregateOutput) -> Result<String> {
        let function = output.function.name();
        let Some(field) = &output.field else {
            return match output.function {
                AggregateFn::Count => Ok("count(*)".into()),
                _ => Err(Error::invalid_input(format!(
                    "the aggregate output \"{}\" ({function}) needs a field",
                    output.name
                ))),
            };
        };
        let ty = self.column_type(field)?;
        let column = quote_ident(field);
        let refused = |takes: &str| {
            Err(Error::invalid_input(format!(
                "{function} needs {takes} and \"{field}\" of {} is {}",
                self.model.name(),
                ty.sql()
            )))
        };
        match output.function {
            AggregateFn::Sum | AggregateFn::Avg if !ty.is_numeric() => {
                refused("a numeric field (integer, numeric, floating point)")
            }
            AggregateFn::Min | AggregateFn::Max if !ordered(ty) => refused(
                "a field with an order (a number, text, citext, an enum, date, time, timestamp, \
                 timestamptz, interval or inet)",
            ),
            AggregateFn::Sum if ty == FieldType::I64 => {
                Ok(format!("CAST(sum({column}) AS bigint)"))
            }
            // Read as text, as a row's column is.
            _ if ty.travels_as_text() => Ok(format!(
                "{}({column})::text",
                self.types.function(ty, function)
            )),
            _ => Ok(format!("{function}({column})")),
        }
    }
}

/// Whether PostgreSQL has `min` and `max` of the type (`boolean`, `bytea`,
/// `uuid` and `jsonb` have none; an array's order, element by element, is
/// refused as rarely what is meant).
fn ordered(ty: FieldType) -> bool {
    use FieldType::*;
    ty.is_numeric()
        || ty.is_text()
        || matches!(
            ty,
            Date | Time | Timestamp | Timestamptz | Inet | Interval | Enum(_) | Citext
        )
}

#[cfg(test)]
mod tests {
    use crate::schema::{Field, Model, Registry, Value};
    use crate::sql::statement::Param;
    use crate::sql::{Catalog, Statements};
    use crate::{Aggregate, ErrorKind, FieldType, Filter, MAX_AGGREGATES, MAX_GROUP_FIELDS};

    fn catalog() -> Catalog {
        let registry = Registry::new()
            .with(
                Model::new("Item")
                    .field(Field::new("category", FieldType::Text))
                    .field(Field::new("shelf", FieldType::I32))
                    .field(Field::new("quantity", FieldType::I64))
                    .field(Field::new("price", FieldType::Numeric).nullable())
                    .field(Field::new("flag", FieldType::Bool))
                    .field(Field::new("doc", FieldType::Json).nullable()),
            )
            .unwrap();
        Catalog::new(&registry, "shop", Statements::Unnamed)
    }

    fn sql(aggregate: Aggregate) -> String {
        let catalog = catalog();
        let aggregation = catalog
            .table("Item")
            .unwrap()
            .aggregate(&aggregate, 100)
            .unwrap();
        aggregation.stmt.sql.to_string()
    }

    fn refused(aggregate: Aggregate) -> String {
        let catalog = catalog();
        let err = catalog
            .table("Item")
            .unwrap()
            .aggregate(&aggregate, 100)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        err.to_string()
    }

    #[test]
    fn count_and_exists_bind_the_filter() {
        let catalog = catalog();
        let table = catalog.table("Item").unwrap();
        let count = table.count(&Filter::eq("category", "tools")).unwrap();
        assert_eq!(
            &*count.sql,
            "SELECT count(*) FROM \"shop\".\"item\" WHERE \"category\" = $1"
        );
        assert_eq!(count.params.len(), 1);
        let exists = table.exists(&Filter::And(vec![])).unwrap();
        assert_eq!(
            &*exists.sql,
            "SELECT EXISTS (SELECT 1 FROM \"shop\".\"item\" WHERE TRUE)"
        );
    }

    #[test]
    fn an_aggregate_groups_names_and_orders_its_columns() {
        let text = sql(Aggregate::new()
            .filter(Filter::gt("quantity", 0_i64))
            .group_by("category")
            .group_by("shelf")
            .count()
            .sum("quantity")
            .sum_as("shelves", "shelf")
            .avg("price")
            .min("created_at")
            .max("category")
            .count_of("price")
            .sort_desc("count"));
        assert_eq!(
            text,
            "SELECT \"category\", \"shelf\", count(*) AS \"count\", \
             CAST(sum(\"quantity\") AS bigint) AS \"sum_quantity\", sum(\"shelf\") AS \"shelves\", \
             avg(\"price\") AS \"avg_price\", min(\"created_at\") AS \"min_created_at\", \
             max(\"category\") AS \"max_category\", count(\"price\") AS \"count_price\" \
             FROM \"shop\".\"item\" WHERE \"quantity\" > $1 GROUP BY \"category\", \"shelf\" \
             ORDER BY \"count\" DESC, \"category\" ASC, \"shelf\" ASC LIMIT $2"
        );
    }

    #[test]
    fn without_a_limit_one_group_more_than_the_bound_is_fetched() {
        let catalog = catalog();
        let table = catalog.table("Item").unwrap();
        let unbounded = table
            .aggregate(&Aggregate::new().group_by("shelf"), 100)
            .unwrap();
        assert_eq!(unbounded.most, Some(100));
        assert_eq!(unbounded.names, ["shelf"]);
        let limited = table
            .aggregate(&Aggregate::new().group_by("shelf").limit(5), 100)
            .unwrap();
        assert_eq!(limited.most, None);
        let fetched = |a: &super::Aggregation| match a.stmt.params.last() {
            Some((Param::One(Value::I64(n)), _)) => *n,
            other => panic!("the limit is bound last: {other:?}"),
        };
        assert_eq!(fetched(&unbounded), 101);
        assert_eq!(fetched(&limited), 5);
    }

    #[test]
    fn bad_aggregates_are_refused_before_any_sql() {
        assert!(refused(Aggregate::new()).contains("asks for nothing"));
        assert!(refused(Aggregate::new().group_by("nope")).contains("nope"));
        assert!(refused(Aggregate::new().sum("nope")).contains("nope"));
        assert!(refused(Aggregate::new().sum("category")).contains("numeric field"));
        assert!(refused(Aggregate::new().avg("flag")).contains("numeric field"));
        assert!(refused(Aggregate::new().min("flag")).contains("order"));
        assert!(refused(Aggregate::new().max("doc")).contains("order"));
        assert!(refused(Aggregate::new().max("id")).contains("order"));
        assert!(refused(Aggregate::new().group_by("shelf").group_by("shelf")).contains("twice"));
        assert!(refused(
            Aggregate::new()
                .group_by("shelf")
                .sum_as("shelf", "quantity")
        )
        .contains("two columns"));
        assert!(refused(Aggregate::new().count().count()).contains("two columns"));
        assert!(refused(Aggregate::new().count_as("a b")).contains("identifier"));
        assert!(refused(Aggregate::new().count_as("x\"; DROP")).contains("identifier"));
        assert!(
            refused(Aggregate::new().output("s", crate::AggregateFn::Sum, None))
                .contains("needs a field")
        );
        assert!(refused(Aggregate::new().count().sort_asc("quantity")).contains("neither"));
        assert!(refused(Aggregate::new().count().limit(101)).contains("maximum of 100 groups"));
        assert!(
            refused(Aggregate::new().count().filter(Filter::eq("nope", 1_i64))).contains("nope")
        );
        let mut wide = Aggregate::new();
        for n in 0..=MAX_GROUP_FIELDS {
            wide = wide.group_by(if n % 2 == 0 { "shelf" } else { "category" });
        }
        assert!(refused(wide).contains("MAX_GROUP_FIELDS"));
        let mut many = Aggregate::new();
        for n in 0..=MAX_AGGREGATES {
            many = many.count_as(&format!("c{n}"));
        }
        assert!(refused(many).contains("MAX_AGGREGATES"));
    }
}
