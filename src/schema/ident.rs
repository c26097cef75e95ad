//! SQL identifiers: the check every name from a model or a setting passes,
//! and the quoting that puts it (or a literal) into SQL text.

use crate::error::quoted_name;

/// Check a plain SQL identifier: `[A-Za-z_][A-Za-z0-9_$]*`, at most 63 bytes.
///
/// Identifiers that pass are always double-quoted in SQL, so their case is kept.
pub(crate) fn validate_identifier(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !first_ok || !rest_ok {
        return Err(format!(
            "{} is not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_$]*)",
            quoted_name(name)
        ));
    }
    if name.len() > 63 {
        return Err(format!(
            "{} is longer than PostgreSQL's 63-byte limit",
            quoted_name(name)
        ));
    }
    Ok(())
}

/// Check the SQL name of a type: `name` or `schema.name`, each part a
/// plain identifier ([`validate_identifier`]).
pub(crate) fn validate_type_name(name: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(format!(
            "{} is not a type name (name or schema.name)",
            quoted_name(name)
        ));
    }
    parts.into_iter().try_for_each(validate_identifier)
}

/// A type name that passed [`validate_type_name`], each part
/// double-quoted: `"public"."ltree"`.
pub(crate) fn quote_type_name(name: &str) -> String {
    name.split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// Double-quote an identifier that passed [`validate_identifier`].
pub(crate) fn quote_ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    push_ident(&mut quoted, name);
    quoted
}

/// [`quote_ident`], appended to `sql`.
pub(crate) fn push_ident(sql: &mut String, name: &str) {
    sql.push('"');
    sql.push_str(name);
    sql.push('"');
}

/// Append `value` to `sql` as a string literal, quoted as PostgreSQL's
/// `quote_literal` does: quotes doubled, and when a backslash is present
/// the `E'…'` form with backslashes doubled, so the literal means the same
/// whatever `standard_conforming_strings` says.
pub(crate) fn push_literal(sql: &mut String, value: &str) {
    if value.contains('\\') {
        sql.push('E');
    }
    sql.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            sql.push(c);
        }
        sql.push(c);
    }
    sql.push('\'');
}

/// FNV-1a, 64 bit: a stable hash for names and advisory-lock keys (std's
/// hasher may change between Rust releases; these values must not).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_documented_pattern() {
        for ok in ["orders", "_t", "A$1", "tenant_42"] {
            assert!(validate_identifier(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "a-b",
            "a\"b",
            "a;drop",
            "a b",
            "ａ",
            "é",
            &"x".repeat(64),
        ] {
            assert!(validate_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literals_stay_one_literal() {
        let quoted = |value: &str| {
            let mut sql = String::new();
            push_literal(&mut sql, value);
            sql
        };
        assert_eq!(quoted("UTC"), "'UTC'");
        assert_eq!(quoted(""), "''");
        assert_eq!(quoted("it's"), "'it''s'");
        assert_eq!(quoted(r"a\'; x"), r"E'a\\''; x'");
        assert_eq!(quoted("Europe/Zürich"), "'Europe/Zürich'");
    }
}
