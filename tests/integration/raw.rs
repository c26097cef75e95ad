//! Raw SQL beside the models: `Sql` statements with bound parameters on the
//! `Db` handle, inside transactions, on the read pool, through PgBouncer
//! and by message, with the same error kinds, deadlines and routing as the
//! model operations.

use std::time::Duration;

use pgactor::{
    column, quote_identifier, Call, DbMsg, ErrorKind, FromRow, OpenOptions, PoolerMode, Row,
    RowLayout, RowReader, Sql, TxMsg, TxOptions, Value, WriteOp,
};
use ractor::call;

use crate::support::blocking::{pause_replay, resume_replay};
use crate::support::db::{
    create_stock, fast_probe, in_schema, open_primary, open_with_replica, registry, stock_model,
    unique_schema,
};
use crate::support::topology::{bouncer_url, Topology};
use crate::support::wait::{read_when_replicated, until};

/// Insert a stock row by hand; answer how many rows the statement wrote.
fn insert(sku: &str, quantity: i64) -> Sql {
    Sql::new("INSERT INTO stock_balance (id, sku, quantity) VALUES ($1, $2, $3)")
        .bind(uuid::Uuid::new_v4())
        .bind(sku.to_owned())
        .bind(quantity)
}

/// The number of stock rows with this sku.
fn count_sku(sku: &str) -> Sql {
    Sql::new("SELECT count(*) FROM stock_balance WHERE sku = $1").bind(sku.to_owned())
}

/// How many rows a stream answers, each one a row.
async fn count<T>(mut rows: pgactor::Rows<T>) -> usize {
    let mut n = 0;
    while let Some(row) = rows.next().await {
        row.expect("a row");
        n += 1;
    }
    n
}

/// A struct of the caller's own, decoded by column name.
#[derive(Debug, PartialEq)]
struct Low {
    sku: String,
    quantity: i64,
}

impl FromRow for Low {
    fn from_row(row: &Row) -> pgactor::Result<Low> {
        Ok(Low {
            sku: column(row, "sku")?,
            quantity: column(row, "quantity")?,
        })
    }
}

#[tokio::test]
async fn raw_statements_write_and_read_with_typed_parameters_and_rows() {
    let (db, _schema) = open_primary("raw_crud", [stock_model()]).await;
    for (sku, quantity) in [("A", 3), ("B", 7), ("C", 1)] {
        assert_eq!(db.execute(insert(sku, quantity)).await.unwrap(), 1);
    }

    let low: Vec<(String, i64)> = db
        .query_as(
            Sql::new("SELECT sku, quantity FROM stock_balance WHERE quantity < $1 ORDER BY sku")
                .bind(5_i64),
        )
        .await
        .unwrap();
    assert_eq!(low, [("A".to_owned(), 3), ("C".to_owned(), 1)]);
    let mine: Vec<Low> = db
        .query_as("SELECT quantity, sku FROM stock_balance WHERE quantity > 5")
        .await
        .unwrap();
    assert_eq!(
        mine,
        [Low {
            sku: "B".into(),
            quantity: 7
        }]
    );
    // An aggregate and a self-join.
    let (rows, total): (i64, Option<i64>) = db
        .query_one_as("SELECT count(*), sum(quantity)::int8 FROM stock_balance")
        .await
        .unwrap();
    assert_eq!((rows, total), (3, Some(11)));
    let pairs: Vec<(String, String)> = db
        .query_as(
            "SELECT a.sku, b.sku FROM stock_balance a JOIN stock_balance b \
             ON b.quantity > a.quantity ORDER BY a.sku, b.sku",
        )
        .await
        .unwrap();
    assert_eq!(pairs.len(), 3, "{pairs:?}");

    // A row written by hand is a model row like any other.
    let id: uuid::Uuid = db
        .query_one_as::<(uuid::Uuid,)>("SELECT id FROM stock_balance WHERE sku = 'B'")
        .await
        .unwrap()
        .0;
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(row.get::<i64>("quantity").unwrap(), 7);

    let emptied = db
        .execute(Sql::new("UPDATE stock_balance SET quantity = 0 WHERE quantity < $1").bind(5_i64))
        .await
        .unwrap();
    assert_eq!(emptied, 2);
    // NULL binds as None, typed from the Rust type.
    let none: Option<String> = None;
    db.execute(Sql::new("UPDATE stock_balance SET note = $1").bind(none))
        .await
        .unwrap();
    let rows = db.query("SELECT note FROM stock_balance").await.unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(column::<Option<String>, _>(row, "note").unwrap(), None);
    }

    // One row, at most one row.
    let missing = db
        .query_one(Sql::new("SELECT id FROM stock_balance WHERE sku = $1").bind("Z"))
        .await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    let none = db
        .query_opt(Sql::new("SELECT id FROM stock_balance WHERE sku = $1").bind("Z"))
        .await
        .unwrap();
    assert!(none.is_none());
    let many = db
        .query_opt("SELECT id FROM stock_balance")
        .await
        .unwrap_err();
    assert_eq!(many.kind(), ErrorKind::Decode, "{many}");
    let many = db
        .query_one("SELECT id FROM stock_balance")
        .await
        .unwrap_err();
    assert_eq!(many.kind(), ErrorKind::Decode, "{many}");
    db.close().await;
}

/// A `RowReader` answers what `column` answers, read in order, out of
/// order, again, in another case, and for a column that is not there.
#[tokio::test]
async fn a_row_reader_reads_columns_in_any_order_as_column_does() {
    let (db, _schema) = open_primary("raw_reader", [stock_model()]).await;
    let row = db
        .query_one("SELECT 1::int8 AS a, 'two'::text AS b, NULL::int8 AS c, 4::int8 AS \"D\"")
        .await
        .unwrap();
    let mut read = RowReader::new(&row);
    assert_eq!(read.get::<i64>("a").unwrap(), 1);
    assert_eq!(read.get::<String>("b").unwrap(), "two");
    assert_eq!(read.get::<Option<i64>>("c").unwrap(), None);
    // Back to the start, then on from there.
    assert_eq!(read.get::<i64>("a").unwrap(), 1);
    assert_eq!(read.get::<String>("b").unwrap(), "two");
    // Skipping ahead, and a name in another case, as `column` finds it.
    let mut read = RowReader::new(&row);
    assert_eq!(read.get::<i64>("d").unwrap(), 4);
    assert_eq!(column::<i64, _>(&row, "d").unwrap(), 4);
    for (name, kind) in [
        ("missing", "column missing"),
        ("c", "column c"),
        ("b", "column b"),
    ] {
        // No such column, NULL into an integer, text into an integer.
        let err = RowReader::new(&row).get::<i64>(name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{name}: {err}");
        assert!(err.to_string().contains(kind), "{name}: {err}");
        let by_column = column::<i64, _>(&row, name).unwrap_err();
        assert_eq!(err.to_string(), by_column.to_string());
    }
    db.close().await;
}

#[tokio::test]
async fn a_row_layout_reads_many_rows_by_position_as_column_does() {
    let (db, _schema) = open_primary("raw_layout", [stock_model()]).await;
    let mut rows = db
        .query(
            "SELECT g AS a, 'n' || g AS b, NULL::int8 AS c, -g AS \"D\" \
             FROM generate_series(1::int8, 3) AS g ORDER BY g",
        )
        .await
        .unwrap();
    // Rows of another statement, the same names in another order.
    rows.extend(
        db.query("SELECT 'n9' AS b, 9::int8 AS a, 7::int8 AS c, -9::int8 AS d")
            .await
            .unwrap(),
    );
    let mut layout = RowLayout::new(["b", "a", "d", "c", "missing"]);
    let mut read = Vec::new();
    for row in &rows {
        let located = layout.locate(row);
        let b: String = located.get(0).unwrap();
        let a: i64 = located.get(1).unwrap();
        // "D" by the name "d", as `column` finds it.
        let d: i64 = located.get(2).unwrap();
        assert_eq!(d, column::<i64, _>(row, "d").unwrap());
        let c: Option<i64> = located.get(3).unwrap();
        read.push((a, b, c, d));
        // No such column, NULL into an integer, text into an integer: the
        // errors `column` gives.
        for (i, name) in [(4, "missing"), (0, "b")] {
            let err = located.get::<i64>(i).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode, "{name}: {err}");
            let by_column = column::<i64, _>(row, name).unwrap_err();
            assert_eq!(err.to_string(), by_column.to_string());
        }
        if c.is_none() {
            let err = located.get::<i64>(3).unwrap_err();
            assert_eq!(
                err.to_string(),
                column::<i64, _>(row, "c").unwrap_err().to_string()
            );
        }
        // A place past its names is refused, not a panic.
        let err = located.get::<i64>(5).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    }
    assert_eq!(
        read,
        [
            (1, "n1".to_owned(), None, -1),
            (2, "n2".to_owned(), None, -2),
            (3, "n3".to_owned(), None, -3),
            (9, "n9".to_owned(), Some(7), -9),
        ]
    );
    db.close().await;
}

#[tokio::test]
async fn raw_errors_have_their_kinds_and_leave_the_connection_usable() {
    let (db, _schema) = open_primary("raw_errors", [stock_model()]).await;
    db.execute(insert("dup", 1)).await.unwrap();

    let dup = db.execute(insert("dup", 2)).await.unwrap_err();
    assert_eq!(
        dup.kind(),
        ErrorKind::Constraint(pgactor::ConstraintKind::Unique)
    );
    let violation = dup.constraint().expect("the constraint it broke");
    assert_eq!(violation.columns, ["sku"]);
    assert_eq!(violation.table.as_deref(), Some("stock_balance"));

    // Caught before anything is sent.
    for (sql, says) in [(Sql::new("  "), "empty"), (Sql::new("SELECT 1\0"), "NUL")] {
        let err = db.query(sql).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
    // Caught by the driver against the server's parameter types.
    let count = db
        .query(Sql::new("SELECT $1::int8, $2::int8").bind(1_i64))
        .await
        .unwrap_err();
    assert_eq!(count.kind(), ErrorKind::InvalidInput, "{count}");
    let mistyped = db
        .query(Sql::new("SELECT $1::int8").bind_as("seven".to_owned(), pgactor::types::Type::INT8))
        .await
        .unwrap_err();
    assert_eq!(mistyped.kind(), ErrorKind::InvalidInput, "{mistyped}");
    assert!(mistyped.to_string().contains("$1"), "{mistyped}");
    // Caught by the server: a data exception, a syntax error.
    let bad_value = db
        .query(Sql::new("SELECT $1::text::int8").bind("seven"))
        .await
        .unwrap_err();
    assert_eq!(bad_value.kind(), ErrorKind::InvalidInput, "{bad_value}");
    let syntax = db.query("SELEC 1").await.unwrap_err();
    assert_eq!(syntax.kind(), ErrorKind::Database, "{syntax}");
    assert_eq!(
        syntax.sqlstate(),
        Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR)
    );
    // A decoded column of the wrong Rust type, or a tuple of the wrong size.
    let wrong: pgactor::Error = db
        .query_one_as::<(String,)>("SELECT 1::int8")
        .await
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Decode, "{wrong}");
    let short = db
        .query_one_as::<(i64,)>("SELECT 1::int8, 2::int8")
        .await
        .unwrap_err();
    assert_eq!(short.kind(), ErrorKind::Decode, "{short}");

    // After every failure above, the pool's connections still work.
    for _ in 0..4 {
        let (n,): (i64,) = db.query_one_as(count_sku("dup")).await.unwrap();
        assert_eq!(n, 1);
    }
    assert_eq!(db.stats().write.in_use, 0);
    db.close().await;
}

#[tokio::test]
async fn a_raw_statements_query_timeout_cancels_it_on_the_server() {
    let (db, _schema) = open_primary("raw_timeout", [stock_model()]).await;
    let err = db
        .with_query_timeout(Duration::from_millis(200))
        .query("SELECT pg_sleep(30)")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let said = err.to_string();
    assert!(
        said.contains("200ms query timeout") && said.contains("cancelled on the server"),
        "{said}"
    );
    until("the connection is back in the pool", || async {
        db.stats().write.in_use == 0
    })
    .await;
    let (one,): (i32,) = db.query_one_as("SELECT 1").await.unwrap();
    assert_eq!(one, 1);
    db.close().await;
}

#[tokio::test]
async fn raw_statements_in_a_transaction_read_its_writes_and_roll_back_with_it() {
    let (db, _schema) = open_primary("raw_tx", [stock_model()]).await;

    let tx = db.begin(TxOptions::default()).await.unwrap();
    assert_eq!(tx.execute(insert("kept-out", 1)).await.unwrap(), 1);
    let model = tx
        .create("StockBalance", pgactor::Record::new().with("sku", "model"))
        .await
        .unwrap();
    let inside: Vec<(String,)> = tx
        .query_as("SELECT sku FROM stock_balance ORDER BY sku")
        .await
        .unwrap();
    assert_eq!(inside, [("kept-out".to_owned(),), ("model".to_owned(),)]);
    let (outside,): (i64,) = db
        .query_one_as("SELECT count(*) FROM stock_balance")
        .await
        .unwrap();
    assert_eq!(outside, 0, "uncommitted rows are not seen outside");
    tx.rollback().await.unwrap();
    let (after,): (i64,) = db
        .query_one_as("SELECT count(*) FROM stock_balance")
        .await
        .unwrap();
    assert_eq!(after, 0);
    assert_eq!(
        db.read("StockBalance", model.get::<uuid::Uuid>("id").unwrap())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );

    // A raw statement that fails aborts the transaction, like any other.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.execute(insert("first", 1)).await.unwrap();
    let dup = tx.execute(insert("first", 2)).await.unwrap_err();
    assert!(matches!(dup.kind(), ErrorKind::Constraint(_)), "{dup}");
    let aborted = tx.query("SELECT 1").await.unwrap_err();
    assert_eq!(aborted.kind(), ErrorKind::TxAborted, "{aborted}");
    tx.rollback().await.unwrap();

    // Committed, it is there.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.execute(insert("committed", 5)).await.unwrap();
    tx.commit().await.unwrap();
    let (n,): (i64,) = db.query_one_as(count_sku("committed")).await.unwrap();
    assert_eq!(n, 1);
    db.close().await;
}

#[tokio::test]
async fn raw_queries_on_the_read_pool_follow_the_replica_its_lag_and_tokens() {
    let topo = Topology::up();
    let schema = unique_schema("raw_replica");
    let db = open_with_replica(topo.primary(), topo.replica(), fast_probe(), &schema).await;
    let first = create_stock(&db, "first").await;
    read_when_replicated(&db, "StockBalance", first).await;

    let (on_replica,): (bool,) = db
        .replica()
        .query_one_as("SELECT pg_is_in_recovery()")
        .await
        .unwrap();
    assert!(on_replica);
    let (on_primary,): (bool,) = db.query_one_as("SELECT pg_is_in_recovery()").await.unwrap();
    assert!(!on_primary);
    let refused = db.replica().execute(insert("nope", 1)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");

    let replica = pause_replay(topo.replica()).await;
    let (_, token) = db
        .write_with_token(
            "StockBalance",
            WriteOp::Create(pgactor::Record::new().with("sku", "fresh")),
        )
        .await
        .unwrap();
    let (stale,): (i64,) = db.replica().query_one_as(count_sku("fresh")).await.unwrap();
    assert_eq!(stale, 0, "the paused replica has not replayed the write");
    let (fresh,): (i64,) = db
        .after(token)
        .replica()
        .query_one_as(count_sku("fresh"))
        .await
        .unwrap();
    assert_eq!(fresh, 1, "the token sends the query to the primary");
    // The same by message.
    let by_message = call!(
        db.actor(),
        DbMsg::Query,
        count_sku("fresh"),
        Call::here().on_replica().after(token)
    )
    .unwrap()
    .unwrap();
    assert_eq!(column::<i64, _>(&by_message[0], 0).unwrap(), 1);
    let stale = call!(
        db.actor(),
        DbMsg::Query,
        count_sku("fresh"),
        Call::here().on_replica()
    )
    .unwrap()
    .unwrap();
    assert_eq!(column::<i64, _>(&stale[0], 0).unwrap(), 0);

    resume_replay(&replica).await;
    db.close().await;
}

#[tokio::test]
async fn without_a_replica_the_read_pool_runs_raw_queries_read_only() {
    let (db, _schema) = open_primary("raw_readonly", [stock_model()]).await;
    let (read_only,): (String,) = db
        .replica()
        .query_one_as("SELECT current_setting('transaction_read_only')")
        .await
        .unwrap();
    assert_eq!(read_only, "on");
    let refused = db.replica().execute(insert("nope", 1)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");
    assert_eq!(db.execute(insert("yes", 1)).await.unwrap(), 1);
    db.close().await;
}

#[tokio::test]
async fn raw_queries_run_by_message_on_the_pools_and_in_a_transaction() {
    let (db, _schema) = open_primary("raw_messages", [stock_model()]).await;
    let wrote = call!(db.actor(), DbMsg::Execute, insert("msg", 4), Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(wrote, 1);
    let rows = call!(db.actor(), DbMsg::Query, count_sku("msg"), Call::here())
        .unwrap()
        .unwrap();
    assert_eq!(column::<i64, _>(&rows[0], 0).unwrap(), 1);
    let timed_out = call!(
        db.actor(),
        DbMsg::Query,
        Sql::new("SELECT pg_sleep(30)"),
        Call::here().query_timeout(Duration::from_millis(200))
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(timed_out.kind(), ErrorKind::Timeout, "{timed_out}");

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let actor = tx.actor();
    let wrote = call!(actor, TxMsg::Execute, insert("in-tx", 2))
        .unwrap()
        .unwrap();
    assert_eq!(wrote, 1);
    let rows = call!(actor, TxMsg::Query, count_sku("in-tx"))
        .unwrap()
        .unwrap();
    assert_eq!(
        column::<i64, _>(&rows[0], 0).unwrap(),
        1,
        "the transaction reads its write"
    );
    call!(actor, TxMsg::Commit).unwrap().unwrap();
    let (n,): (i64,) = db.query_one_as(count_sku("in-tx")).await.unwrap();
    assert_eq!(n, 1);
    db.close().await;
}

#[tokio::test]
async fn through_pgbouncer_raw_queries_run_as_unnamed_statements() {
    let schema = unique_schema("raw_bouncer");
    let db = OpenOptions::new(bouncer_url())
        .pooler(PoolerMode::Transaction)
        .registry(registry([stock_model()]))
        .session(in_schema(&schema))
        .open()
        .await
        .expect("open through the bouncer");
    // Outside a transaction a statement runs with the role's search_path
    // (no session state behind a transaction-pooling bouncer): name the
    // schema. Many times, over the bouncer's shared server sessions: a
    // named statement would be missing on the next one.
    let table = format!("{}.stock_balance", quote_identifier(&schema).unwrap());
    for i in 0..20_i64 {
        let insert = Sql::new(format!(
            "INSERT INTO {table} (id, sku, quantity) VALUES ($1, $2, $3)"
        ))
        .bind(uuid::Uuid::new_v4())
        .bind(format!("b{i}"))
        .bind(i);
        assert_eq!(db.execute(insert).await.unwrap(), 1);
        let (n,): (i64,) = db
            .query_one_as(
                Sql::new(format!("SELECT count(*) FROM {table} WHERE quantity <= $1")).bind(i),
            )
            .await
            .unwrap();
        assert_eq!(n, i + 1);
    }
    let unqualified = db.query(count_sku("b1")).await.unwrap_err();
    assert_eq!(unqualified.kind(), ErrorKind::Database, "{unqualified}");
    // A transaction sets the configured schema's search_path for itself.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    tx.execute(insert("in-tx", 0)).await.unwrap();
    let (n,): (i64,) = tx.query_one_as(count_sku("in-tx")).await.unwrap();
    assert_eq!(n, 1);
    // Streams: a cursor in the transaction, a statement on the pool.
    let rows = tx
        .stream_as::<(i64,)>("SELECT quantity FROM stock_balance")
        .await
        .unwrap();
    assert_eq!(count(rows).await, 21);
    tx.commit().await.unwrap();
    let rows = db
        .stream_as::<(String,)>(format!("SELECT sku FROM {table}"))
        .await
        .unwrap();
    assert_eq!(count(rows).await, 21);

    // A parameter whose type the Rust value does not name cannot be sent
    // unnamed: refused before anything is sent, saying what to do.
    let untyped = db
        .query(Sql::new("SELECT $1::int8 IS NULL").bind(Value::Null))
        .await
        .unwrap_err();
    assert_eq!(untyped.kind(), ErrorKind::InvalidInput, "{untyped}");
    assert!(untyped.to_string().contains("bind_as"), "{untyped}");
    let typed = db
        .query_one_as::<(bool,)>(
            Sql::new("SELECT $1::int8 IS NULL").bind_as(Value::Null, pgactor::types::Type::INT8),
        )
        .await
        .unwrap();
    assert!(typed.0);
    db.close().await;
}

#[tokio::test]
async fn quoted_identifiers_keep_their_case_and_refuse_what_is_not_a_plain_name() {
    let (db, _schema) = open_primary("raw_ident", [stock_model()]).await;
    let table = quote_identifier("Ledger").unwrap();
    db.execute(format!("CREATE TABLE {table} (n int8)"))
        .await
        .unwrap();
    db.execute(Sql::new(format!("INSERT INTO {table} VALUES ($1)")).bind(9_i64))
        .await
        .unwrap();
    let (n,): (i64,) = db
        .query_one_as(format!("SELECT n FROM {table}"))
        .await
        .unwrap();
    assert_eq!(n, 9);
    // Unquoted, the name folds to lower case: another table.
    let folded = db.query("SELECT n FROM Ledger").await.unwrap_err();
    assert_eq!(folded.kind(), ErrorKind::Database, "{folded}");
    for bad in [
        "",
        "a\0b",
        "x\"; DROP TABLE stock_balance; --",
        "two words",
        &"x".repeat(64),
    ] {
        let err = quote_identifier(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    db.close().await;
}
