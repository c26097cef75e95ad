//! Bounds on a query's shape: how many conditions, OR groups and branches,
//! list values, sort fields, selected fields and includes a filter or a
//! `List` may hold, and how long a search text may be, checked before any
//! SQL is written, and how many related rows an include may load.

use crate::error::{Error, Result};

use super::include::include_paths;
use super::query::{Filter, Query};

/// How large a query's shape may be, so that filters and sorts built from
/// end users' input can neither exhaust the server nor grow the statement
/// cache without limit (every OR of another size is another statement
/// text). A `List`, `lock_next`, `update_where`, `delete_where`, an
/// increment's guard, `count`, `exists` or an aggregate past a bound is
/// refused with
/// [`crate::ErrorKind::InvalidInput`] naming it, before any SQL.
///
/// Set for a whole adapter with [`crate::OpenOptions::query_bounds`], and
/// for one model with [`crate::OpenOptions::model_query_bounds`]. Besides
/// these, filters nest at most 32 levels deep, a page holds at most
/// [`crate::OpenOptions::max_page`] rows, and a statement at most 65,535
/// bound values.
///
/// | field | default |
/// |---|---|
/// | `max_conditions` | 256 |
/// | `max_or_groups` | 32 |
/// | `max_or_branches` | 64 |
/// | `max_list_values` | 100,000 |
/// | `max_sort_fields` | 8 |
/// | `max_search_len` | 1,024 bytes |
/// | `max_selected_fields` | 64 |
/// | `max_includes` | 8 |
/// | `max_include_depth` | 3 |
/// | `max_included_rows` | 10,000 |
///
/// ```
/// use pgactor::{Filter, Query, QueryBounds};
/// let tight = QueryBounds { max_or_branches: 2, ..QueryBounds::default() };
/// let three = Filter::eq("sku", "a").or(Filter::eq("sku", "b")).or(Filter::eq("sku", "c"));
/// assert!(tight.check(&Query::new().filter(three)).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBounds {
    /// Conditions in one filter: comparisons, lists, ranges, text matches
    /// and NULL tests (AND and OR themselves are not counted).
    pub max_conditions: usize,
    /// OR groups in one filter.
    pub max_or_groups: usize,
    /// Branches of one OR group.
    pub max_or_branches: usize,
    /// Values of one IN or NOT IN list (bound as one array parameter).
    pub max_list_values: usize,
    /// Sort fields of one `List`.
    pub max_sort_fields: usize,
    /// Bytes of one search text ([`crate::Query::search`],
    /// [`crate::Filter::search`]): a search box's input, bounded so that
    /// no request parses and matches pages of text.
    pub max_search_len: usize,
    /// Fields of one [`Query::select`] (or a read of some fields), as
    /// given: each subset is a statement text of its own.
    pub max_selected_fields: usize,
    /// Relations one `List` includes ([`Query::include`]), each path's
    /// prefixes counted once: one statement each.
    pub max_includes: usize,
    /// Steps of one include path (`"a.b.c"` has 3): one round trip each.
    pub max_include_depth: usize,
    /// Related rows one included relation may load for a page; a relation
    /// with more is refused once read (its rows are held in memory with
    /// the page's).
    pub max_included_rows: usize,
}

impl Default for QueryBounds {
    fn default() -> QueryBounds {
        QueryBounds {
            max_conditions: 256,
            max_or_groups: 32,
            max_or_branches: 64,
            max_list_values: 100_000,
            max_sort_fields: 8,
            max_search_len: 1024,
            max_selected_fields: 64,
            max_includes: 8,
            max_include_depth: 3,
            max_included_rows: 10_000,
        }
    }
}

impl QueryBounds {
    /// Check `query`'s filter, sort, search, selected fields and includes
    /// against these bounds.
    pub fn check(&self, query: &Query) -> Result<()> {
        if query.sort.len() > self.max_sort_fields {
            return Err(past("sort fields", self.max_sort_fields, "max_sort_fields"));
        }
        if let Some(text) = &query.search {
            self.check_search(text)?;
        }
        if let Some(fields) = query.selected() {
            self.check_selected(fields.len())?;
        }
        if !query.includes().is_empty() {
            self.check_includes(query)?;
        }
        match &query.filter {
            Some(filter) => self.check_filter(filter),
            None => Ok(()),
        }
    }

    /// Check `filter` against these bounds. The walk keeps its own stack
    /// (any depth is safe) and stops at the first bound passed. AND groups
    /// are not counted: their parts are.
    pub fn check_filter(&self, filter: &Filter) -> Result<()> {
        let (mut conditions, mut or_groups) = (0, 0);
        let mut pending = vec![filter];
        while let Some(next) = pending.pop() {
            match next {
                Filter::And(parts) => pending.extend(parts),
                Filter::Or(parts) => {
                    or_groups += 1;
                    if or_groups > self.max_or_groups {
                        return Err(past("OR groups", self.max_or_groups, "max_or_groups"));
                    }
                    if parts.len() > self.max_or_branches {
                        let bound = self.max_or_branches;
                        return Err(past("branches in one OR group", bound, "max_or_branches"));
                    }
                    pending.extend(parts);
                }
                leaf => {
                    conditions += 1;
                    if conditions > self.max_conditions {
                        return Err(past("conditions", self.max_conditions, "max_conditions"));
                    }
                    if let Filter::In { values, .. } | Filter::NotIn { values, .. } = leaf {
                        if values.len() > self.max_list_values {
                            let bound = self.max_list_values;
                            return Err(past("values in one list", bound, "max_list_values"));
                        }
                    }
                    if let Filter::Search { text } = leaf {
                        self.check_search(text)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A search text of at most `max_search_len` bytes.
    fn check_search(&self, text: &str) -> Result<()> {
        if text.len() > self.max_search_len {
            return Err(Error::invalid_input(format!(
                "the search text has {} bytes, more than {} (the bound QueryBounds::max_search_len)",
                text.len(),
                self.max_search_len
            )));
        }
        Ok(())
    }
}

impl QueryBounds {
    /// Refuse a subset of more than `max_selected_fields` fields.
    pub(crate) fn check_selected(&self, fields: usize) -> Result<()> {
        if fields > self.max_selected_fields {
            let bound = self.max_selected_fields;
            return Err(past("selected fields", bound, "max_selected_fields"));
        }
        Ok(())
    }

    /// Refuse includes of more relations or deeper paths than the bounds.
    fn check_includes(&self, query: &Query) -> Result<()> {
        if let Some(deep) = query
            .includes()
            .iter()
            .find(|p| p.split('.').count() > self.max_include_depth)
        {
            return Err(Error::invalid_input(format!(
                "the include {} has more than {} steps (the bound QueryBounds::max_include_depth)",
                crate::error::quoted_name(deep),
                self.max_include_depth
            )));
        }
        // Checked on the paths as given first, so a hostile list is not
        // expanded whole.
        if query.includes().len() > self.max_includes
            || include_paths(query)?.len() > self.max_includes
        {
            return Err(past(
                "included relations",
                self.max_includes,
                "max_includes",
            ));
        }
        Ok(())
    }
}

/// The refusal of a shape with more than `bound` of `what` (the field
/// `name` of [`QueryBounds`] bounds it).
fn past(what: &str, bound: usize, name: &str) -> Error {
    Error::invalid_input(format!(
        "the query has more than {bound} {what} (the bound QueryBounds::{name})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(n: usize) -> Filter {
        Filter::eq("n", n as i64)
    }

    #[test]
    fn each_bound_is_named_when_passed_and_holds_at_its_value() {
        let b = QueryBounds {
            max_conditions: 4,
            max_or_groups: 2,
            max_or_branches: 3,
            max_list_values: 5,
            max_sort_fields: 2,
            max_search_len: 6,
            max_selected_fields: 2,
            max_includes: 2,
            max_include_depth: 2,
            max_included_rows: 1,
        };
        let refused = |q: Query, name: &str| {
            let err = b.check(&q).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        };
        let ands = |n: usize| Filter::And((0..n).map(eq).collect());
        b.check(&Query::new().filter(ands(4))).unwrap();
        refused(Query::new().filter(ands(5)), "max_conditions");
        b.check(&Query::new().filter(Filter::Or((0..3).map(eq).collect())))
            .unwrap();
        refused(
            Query::new().filter(Filter::Or((0..4).map(eq).collect())),
            "max_or_branches",
        );
        let or = || Filter::Or(vec![eq(0)]);
        b.check(&Query::new().filter(Filter::And(vec![or(), or()])))
            .unwrap();
        refused(
            Query::new().filter(Filter::And(vec![or(), or(), or()])),
            "max_or_groups",
        );
        b.check(&Query::new().filter(Filter::is_in("n", 0..5_i64)))
            .unwrap();
        refused(
            Query::new().filter(Filter::not_in("n", 0..6_i64)),
            "max_list_values",
        );
        b.check(&Query::new().sort_asc("a").sort_desc("b")).unwrap();
        refused(
            Query::new().sort_asc("a").sort_asc("b").sort_asc("c"),
            "max_sort_fields",
        );
        // Bytes, not characters: "héllo" is 6 bytes.
        b.check(&Query::new().search("héllo")).unwrap();
        refused(Query::new().search("héllo!"), "max_search_len");
        let deep = Filter::Or(vec![eq(0), Filter::search("héllo!")]);
        refused(Query::new().filter(deep), "max_search_len");
        b.check(&Query::new().select(["a", "b"])).unwrap();
        refused(Query::new().select(["a", "b", "c"]), "max_selected_fields");
        // "a.b" and "a" are two relations; "a.b.c" is three steps.
        b.check(&Query::new().include("a.b").include("a")).unwrap();
        refused(Query::new().include("a.b").include("c"), "max_includes");
        refused(Query::new().include("a.b.c"), "max_include_depth");
    }

    #[test]
    fn a_deep_or_wide_filter_is_refused_without_walking_all_of_it() {
        let b = QueryBounds::default();
        let mut deep = eq(0);
        for _ in 0..100_000 {
            deep = Filter::And(vec![deep]);
        }
        // Nested ANDs of one part hold one condition: within every bound.
        b.check_filter(&deep).unwrap();
        let wide = Filter::And((0..1_000_000).map(eq).collect());
        assert!(b.check_filter(&wide).is_err());
        // The deep filter is dropped part by part, not recursively.
        while let Filter::And(mut parts) = deep {
            deep = parts.pop().unwrap();
        }
    }
}
