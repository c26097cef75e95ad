//! What `#[derive(pgactor::Entity)]` refuses at compile time, and what it
//! says: each `tests/ui/*.rs` fails to compile with its `.stderr`.
//! Regenerate those with `TRYBUILD=overwrite cargo test --test derive_fail`
//! and read them before committing.
#![cfg(feature = "derive")]

#[test]
fn refused_at_compile_time() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
