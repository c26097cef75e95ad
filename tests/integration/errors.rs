//! Errors a web layer maps without guessing: each failure the server can
//! produce for a single statement arrives as the documented `ErrorKind`,
//! HTTP status and code, with the constraint's table and columns, and
//! without the server's detail line (which holds row values) in `Display`.
//!
//! Foreign keys, check constraints and server-side NOT NULL are added by hand
//! from an observer connection, since models do not declare them. Conflicts
//! (serialization failures, deadlocks) need transactions and are not here.

use std::time::Duration;

use pgactor::{
    ConstraintKind, ConstraintViolation, Db, Error, ErrorKind, Field, FieldType, Index, Model,
    OpenOptions, PoolConfig, Record, SessionConfig,
};
use uuid::Uuid;

use crate::support::blocking::{lock_row_outside, until_lock_waiters};
use crate::support::db::{open_primary, registry, stock_model, unique_app_name, unique_schema};
use crate::support::observer::observer;
use crate::support::topology::primary_url;

/// Run `ddl` (with `{s}` standing for the schema) from an observer.
async fn by_hand(schema: &str, ddl: &str) {
    observer(&primary_url())
        .await
        .batch_execute(&ddl.replace("{s}", &format!("\"{schema}\"")))
        .await
        .unwrap_or_else(|e| panic!("{ddl}: {e}"));
}

async fn create_stock(db: &Db, sku: &str, quantity: i64) -> pgactor::Result<Record> {
    let row = Record::new().with("sku", sku).with("quantity", quantity);
    db.create("StockBalance", row).await
}

/// The HTTP status and code the documentation gives each constraint kind.
fn documented(kind: ConstraintKind) -> (u16, &'static str) {
    match kind {
        ConstraintKind::Unique => (409, "UNIQUE_VIOLATION"),
        ConstraintKind::ForeignKey => (422, "FOREIGN_KEY_VIOLATION"),
        ConstraintKind::NotNull => (422, "NOT_NULL_VIOLATION"),
        ConstraintKind::Check => (422, "CHECK_VIOLATION"),
    }
}

/// The error's constraint, after checking its kind, status and code, and
/// that neither `Display`, `Debug` nor the source chain shows the server's
/// detail line or `value`, a value of the offending row that the detail does
/// contain.
fn violation(err: &Error, kind: ConstraintKind, value: &str) -> ConstraintViolation {
    let v = err
        .constraint()
        .unwrap_or_else(|| panic!("not a constraint error: {err:?}"))
        .clone();
    assert_eq!(v.kind, kind, "{err:?}");
    assert_eq!((err.http_status(), err.code()), documented(kind), "{err:?}");
    let shown = err.to_string();
    let detail = v.detail.as_deref().expect("the server sends a detail line");
    assert!(
        detail.contains(value),
        "the detail names the value: {detail}"
    );
    assert!(
        !shown.contains(detail) && !shown.contains(value),
        "Display leaks the detail: {shown}"
    );
    // Nor its Debug, nor any error of its source chain, printed either way
    // (as `anyhow`'s `{:?}` does).
    let mut printed = format!("{err:?} {v:?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        printed.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(
        !printed.contains(value),
        "a print leaks the value: {printed}"
    );
    v
}

#[tokio::test]
async fn a_missing_id_is_not_found_for_read_update_and_delete() {
    let (db, _) = open_primary("err_notfound", [stock_model()]).await;
    let missing = Uuid::now_v7();
    let results = [
        db.read("StockBalance", missing).await,
        db.update(
            "StockBalance",
            missing,
            Record::new().with("quantity", 1_i64),
        )
        .await,
        db.delete("StockBalance", missing).await,
    ];
    for (op, result) in ["read", "update", "delete"].into_iter().zip(results) {
        let err = result.expect_err(op);
        assert_eq!(err.kind(), ErrorKind::NotFound, "{op}: {err:?}");
        assert_eq!((err.http_status(), err.code()), (404, "NOT_FOUND"), "{op}");
    }
    db.close().await;
}

#[tokio::test]
async fn a_duplicate_unique_field_is_a_409_naming_table_and_column() {
    let (db, _) = open_primary("err_unique", [stock_model()]).await;
    create_stock(&db, "SKU-SECRET-1", 1).await.expect("first");
    let err = create_stock(&db, "SKU-SECRET-1", 2)
        .await
        .expect_err("duplicate");
    let v = violation(&err, ConstraintKind::Unique, "SKU-SECRET-1");
    assert_eq!(v.table.as_deref(), Some("stock_balance"));
    assert_eq!(v.columns, ["sku"]);
    assert_eq!(v.constraint.as_deref(), Some("stock_balance_key(sku)"));

    let other = create_stock(&db, "SKU-2", 1).await.expect("other");
    let id: Uuid = other.get("id").expect("id");
    let err = db
        .update(
            "StockBalance",
            id,
            Record::new().with("sku", "SKU-SECRET-1"),
        )
        .await
        .expect_err("duplicate by update");
    violation(&err, ConstraintKind::Unique, "SKU-SECRET-1");
    db.close().await;
}

#[tokio::test]
async fn a_duplicate_composite_unique_index_names_every_column() {
    let model = Model::new("TenantStock")
        .field(Field::new("tenant", FieldType::Text))
        .field(Field::new("sku", FieldType::Text))
        .index(Index::on(["tenant", "sku"]).unique());
    let (db, _) = open_primary("err_composite", [model]).await;
    let row = |tenant: &str| Record::new().with("tenant", tenant).with("sku", "A-1");
    db.create("TenantStock", row("acme")).await.expect("first");
    db.create("TenantStock", row("other"))
        .await
        .expect("other tenant, same sku");
    let err = db
        .create("TenantStock", row("acme"))
        .await
        .expect_err("duplicate");
    let v = violation(&err, ConstraintKind::Unique, "acme");
    assert_eq!(v.table.as_deref(), Some("tenant_stock"));
    assert_eq!(v.columns, ["tenant", "sku"]);
    db.close().await;
}

#[tokio::test]
async fn a_foreign_key_violation_is_a_422() {
    let movement = Model::new("Movement").field(Field::new("stock_id", FieldType::Uuid));
    let (db, schema) = open_primary("err_fk", [stock_model(), movement]).await;
    by_hand(
        &schema,
        "ALTER TABLE {s}.movement ADD CONSTRAINT movement_stock_fk \
         FOREIGN KEY (stock_id) REFERENCES {s}.stock_balance (id)",
    )
    .await;

    let orphan = Uuid::new_v4();
    let err = db
        .create("Movement", Record::new().with("stock_id", orphan))
        .await
        .expect_err("no such parent");
    let v = violation(&err, ConstraintKind::ForeignKey, &orphan.to_string());
    assert_eq!(v.table.as_deref(), Some("movement"));
    assert_eq!(v.columns, ["stock_id"]);
    assert_eq!(v.constraint.as_deref(), Some("movement_stock_fk"));

    let parent = create_stock(&db, "P", 1).await.expect("parent");
    let parent_id: Uuid = parent.get("id").expect("id");
    db.create("Movement", Record::new().with("stock_id", parent_id))
        .await
        .expect("child of an existing parent");
    let err = db
        .delete("StockBalance", parent_id)
        .await
        .expect_err("still referenced");
    let v = violation(&err, ConstraintKind::ForeignKey, &parent_id.to_string());
    assert_eq!(v.columns, ["id"]);
    assert_eq!(v.constraint.as_deref(), Some("movement_stock_fk"));
    db.close().await;
}

#[tokio::test]
async fn a_check_constraint_violation_is_a_422() {
    let (db, schema) = open_primary("err_check", [stock_model()]).await;
    by_hand(
        &schema,
        "ALTER TABLE {s}.stock_balance ADD CONSTRAINT quantity_not_negative CHECK (quantity >= 0)",
    )
    .await;
    let err = create_stock(&db, "CHECK-SKU-9", -1)
        .await
        .expect_err("negative");
    let v = violation(&err, ConstraintKind::Check, "CHECK-SKU-9");
    assert_eq!(v.table.as_deref(), Some("stock_balance"));
    assert_eq!(v.constraint.as_deref(), Some("quantity_not_negative"));

    let row = create_stock(&db, "OK-SKU", 3).await.expect("positive");
    let id: Uuid = row.get("id").expect("id");
    let err = db
        .update("StockBalance", id, Record::new().with("quantity", -5_i64))
        .await
        .expect_err("negative by update");
    violation(&err, ConstraintKind::Check, "OK-SKU");
    db.close().await;
}

#[tokio::test]
async fn a_not_null_the_model_does_not_know_about_is_a_422_naming_the_column() {
    let (db, schema) = open_primary("err_notnull", [stock_model()]).await;
    by_hand(
        &schema,
        "ALTER TABLE {s}.stock_balance ALTER COLUMN note SET NOT NULL",
    )
    .await;
    let err = create_stock(&db, "NN-SKU-7", 1)
        .await
        .expect_err("note is NULL");
    let v = violation(&err, ConstraintKind::NotNull, "NN-SKU-7");
    assert_eq!(v.table.as_deref(), Some("stock_balance"));
    assert_eq!(v.columns, ["note"]);
    db.close().await;
}

/// Open on the primary in a fresh schema with the given pool and session.
async fn open_with(prefix: &str, pool: PoolConfig, session: SessionConfig) -> (Db, String) {
    let schema = unique_schema(prefix);
    let db = OpenOptions::new(primary_url())
        .registry(registry([stock_model()]))
        .write_pool(pool)
        .session(SessionConfig {
            schema: Some(schema.clone()),
            ..session
        })
        .open()
        .await
        .expect("open");
    (db, schema)
}

#[tokio::test]
async fn a_write_waiting_past_lock_timeout_is_a_504() {
    let session = SessionConfig {
        lock_timeout: Some(Duration::from_millis(200)),
        ..SessionConfig::default()
    };
    let (db, schema) = open_with("err_timeout", PoolConfig::default(), session).await;
    let row = create_stock(&db, "LOCKED", 1).await.expect("create");
    let id: Uuid = row.get("id").expect("id");
    let holder = lock_row_outside(&primary_url(), &schema, id).await;

    let err = db
        .update("StockBalance", id, Record::new().with("quantity", 2_i64))
        .await
        .expect_err("blocked by the observer's lock");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert_eq!((err.http_status(), err.code()), (504, "TIMEOUT"));
    assert_eq!(
        err.sqlstate().map(|s| s.code()),
        Some("55P03"),
        "lock_not_available"
    );
    holder.batch_execute("ROLLBACK").await.expect("release");
    let read = db.read("StockBalance", id).await.expect("read");
    assert_eq!(
        read.get::<i64>("quantity").expect("quantity"),
        1,
        "the write did not happen"
    );
    db.close().await;
}

#[tokio::test]
async fn a_pool_with_no_free_connection_answers_503() {
    let app = unique_app_name("busy");
    let pool = PoolConfig {
        max_open: Some(1),
        wait_timeout: Some(Duration::from_millis(200)),
        ..PoolConfig::default()
    };
    let session = SessionConfig {
        lock_timeout: Some(Duration::from_secs(120)),
        statement_timeout: Some(Duration::from_secs(120)),
        application_name: Some(app.clone()),
        ..SessionConfig::default()
    };
    let (db, schema) = open_with("err_busy", pool, session).await;
    let row = create_stock(&db, "BUSY", 1).await.expect("create");
    let id: Uuid = row.get("id").expect("id");
    let holder = lock_row_outside(&primary_url(), &schema, id).await;

    // The write pool's only connection blocks on the observer's lock.
    let blocked = tokio::spawn({
        let db = db.clone();
        async move {
            db.update("StockBalance", id, Record::new().with("quantity", 2_i64))
                .await
        }
    });
    until_lock_waiters(&observer(&primary_url()).await, &app, 1).await;

    let err = create_stock(&db, "NEVER-SENT", 1)
        .await
        .expect_err("no connection");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert_eq!((err.http_status(), err.code()), (503, "UNAVAILABLE"));

    holder.batch_execute("ROLLBACK").await.expect("release");
    let updated = blocked
        .await
        .expect("task")
        .expect("the blocked write completes");
    assert_eq!(updated.get::<i64>("quantity").expect("quantity"), 2);
    let sql = format!("SELECT count(*) FROM \"{schema}\".stock_balance WHERE sku = 'NEVER-SENT'");
    let count: i64 = holder.query_one(&sql, &[]).await.expect("count").get(0);
    assert_eq!(count, 0, "the refused create was never applied");
    db.close().await;
}
