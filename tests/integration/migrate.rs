//! AutoMigrate against the real primary: what open creates (columns, types,
//! NOT NULL, defaults, indexes) as the catalog shows it to an observer; that
//! a schema already up to date gets no DDL; how model changes between opens
//! are applied (new columns, new indexes) or only reported (removed fields,
//! changed types); `auto_migrate(false)`; and many adapters opening one new
//! schema at once.

use pgactor::{
    ConstraintKind, Db, ErrorKind, Field, FieldType, Index, Model, OpenOptions, PrimaryKey, Record,
};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::support::db::{in_schema, registry, unique_schema};
use crate::support::observer::{observer, tables_in};
use crate::support::topology::primary_url;

/// Open the primary in `schema` with `models`.
async fn open_in(schema: &str, models: Vec<Model>, auto_migrate: bool) -> pgactor::Result<Db> {
    OpenOptions::new(primary_url())
        .registry(registry(models))
        .session(in_schema(schema))
        .auto_migrate(auto_migrate)
        .open()
        .await
}

/// An observer connection and the schema it looks at.
struct Catalog {
    obs: tokio_postgres::Client,
    schema: String,
}

/// `(column, udt_name, is_nullable, column_default, character_maximum_length)`.
type Column = (String, String, String, Option<String>, Option<i32>);

impl Catalog {
    async fn new(schema: &str) -> Catalog {
        Catalog {
            obs: observer(&primary_url()).await,
            schema: schema.to_owned(),
        }
    }

    /// The first column of every row `sql` answers for this schema (`$1`)
    /// and, when the query takes one, a table name (`$2`).
    async fn strings(&self, sql: &str, table: &str) -> Vec<String> {
        let rows = if sql.contains("$2") {
            self.obs.query(sql, &[&self.schema, &table]).await
        } else {
            self.obs.query(sql, &[&self.schema]).await
        };
        rows.expect(sql).iter().map(|r| r.get(0)).collect()
    }

    async fn tables(&self) -> Vec<String> {
        tables_in(&self.obs, &self.schema).await
    }

    async fn columns(&self, table: &str) -> Vec<Column> {
        let rows = self
            .obs
            .query(
                "SELECT column_name::text, udt_name::text, is_nullable::text, \
                        column_default::text, character_maximum_length::int \
                 FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&self.schema, &table],
            )
            .await
            .expect("information_schema.columns");
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }

    /// Every index definition of `table`, the schema name left out.
    async fn indexes(&self, table: &str) -> Vec<String> {
        let defs = self
            .strings(
                "SELECT indexdef::text FROM pg_indexes \
                 WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname",
                table,
            )
            .await;
        let prefix = format!("{}.", self.schema);
        defs.iter().map(|d| d.replace(&prefix, "")).collect()
    }

    /// DDL statements naming the schema that pg_stat_statements saw complete.
    async fn ddl_count(&self) -> i64 {
        self.obs
            .query_one(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
                 WHERE strpos(query, $1) > 0 AND query ~* '^\\s*(create|alter|drop)\\M'",
                &[&format!("\"{}\"", self.schema)],
            )
            .await
            .expect("pg_stat_statements")
            .get(0)
    }

    /// No CREATE/ALTER/DROP completed since `before` was counted (a full
    /// pg_stat_statements may evict entries, so the count can only drop).
    async fn assert_no_ddl_since(&self, before: i64, what: &str) {
        let now = self.ddl_count().await;
        assert!(
            now <= before,
            "{what}: DDL reached the server ({before} -> {now})"
        );
    }
}

fn column(
    name: &str,
    udt: &str,
    nullable: bool,
    default: Option<&str>,
    len: Option<i32>,
) -> Column {
    let nullable = if nullable { "YES" } else { "NO" };
    (
        name.into(),
        udt.into(),
        nullable.into(),
        default.map(Into::into),
        len,
    )
}

fn stock_v1() -> Model {
    Model::new("Stock")
        .field(Field::new("sku", FieldType::Varchar(32)).unique())
        .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
}

async fn create(db: &Db, model: &str, record: Record) -> Uuid {
    db.create(model, record)
        .await
        .expect("create")
        .get("id")
        .expect("id")
}

#[tokio::test]
async fn open_creates_tables_with_declared_columns_defaults_and_indexes() {
    let stock = Model::new("Stock")
        .field(Field::new("sku", FieldType::Varchar(32)).unique())
        .field(Field::new("quantity", FieldType::I64).default_value(0_i64))
        .field(Field::new("label", FieldType::Text).default_value("it's"))
        .field(Field::new("ratio", FieldType::F64).default_value(1.5_f64))
        .field(Field::new("seen", FieldType::Timestamptz).default_now())
        .field(Field::new("note", FieldType::Text).nullable())
        .index(Index::on(["quantity", "sku"]));
    let ticket = Model::new("Ticket")
        .primary_key(PrimaryKey::Identity)
        .field(Field::new("title", FieldType::Text));
    let schema = unique_schema("mig_create");
    let db = open_in(&schema, vec![stock, ticket], true)
        .await
        .expect("open");
    let cat = Catalog::new(&schema).await;

    assert_eq!(cat.tables().await, ["stock", "ticket"]);
    let now = Some("now()");
    assert_eq!(
        cat.columns("stock").await,
        [
            column("id", "uuid", false, Some("gen_random_uuid()"), None),
            column("sku", "varchar", false, None, Some(32)),
            column("quantity", "int8", false, Some("0"), None),
            column("label", "text", false, Some("'it''s'::text"), None),
            column(
                "ratio",
                "float8",
                false,
                Some("'1.5'::double precision"),
                None
            ),
            column("seen", "timestamptz", false, now, None),
            column("note", "text", true, None, None),
            column("created_at", "timestamptz", false, now, None),
            column("updated_at", "timestamptz", false, now, None),
        ]
    );
    assert_eq!(
        cat.indexes("stock").await,
        [
            "CREATE INDEX \"stock_idx(quantity,sku)\" ON stock USING btree (quantity, sku)",
            "CREATE UNIQUE INDEX \"stock_key(sku)\" ON stock USING btree (sku)",
            "CREATE UNIQUE INDEX stock_pkey ON stock USING btree (id)",
        ]
    );
    assert_eq!(
        cat.columns("ticket").await[0],
        column("id", "int8", false, None, None)
    );
    let identity: String = cat
        .obs
        .query_one(
            "SELECT is_identity::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = 'ticket' AND column_name = 'id'",
            &[&schema],
        )
        .await
        .expect("is_identity")
        .get(0);
    assert_eq!(identity, "YES");

    let row = db
        .create("Stock", Record::new().with("sku", "A"))
        .await
        .expect("defaults fill what a create leaves out");
    assert_eq!(row.get::<i64>("quantity").expect("quantity"), 0);
    assert_eq!(row.get::<String>("label").expect("label"), "it's");
    assert_eq!(row.get::<f64>("ratio").expect("ratio"), 1.5);
    db.close().await;
}

#[tokio::test]
async fn a_schema_that_is_up_to_date_gets_no_ddl() {
    let models = || vec![stock_v1().index(Index::on(["quantity"]))];
    let schema = unique_schema("mig_noop");
    let first = open_in(&schema, models(), true).await.expect("first open");
    let cat = Catalog::new(&schema).await;
    let ddl = cat.ddl_count().await;
    assert!(ddl >= 3, "the first open's DDL is visible ({ddl})");

    let second = open_in(&schema, models(), true).await.expect("second open");
    let report = second.migrate().await.expect("migrate");
    assert!(report.statements.is_empty(), "{:?}", report.statements);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(first
        .migrate()
        .await
        .expect("migrate")
        .statements
        .is_empty());
    cat.assert_no_ddl_since(ddl, "second open").await;
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn a_field_added_to_the_model_becomes_a_column_and_rows_keep_their_data() {
    let schema = unique_schema("mig_add");
    let v1 = open_in(&schema, vec![stock_v1()], true).await.expect("v1");
    let id = create(
        &v1,
        "Stock",
        Record::new().with("sku", "A").with("quantity", 9_i64),
    )
    .await;
    v1.close().await;

    let stock_v2 = stock_v1()
        .field(Field::new("colour", FieldType::Text).default_value("red"))
        .field(Field::new("rating", FieldType::I32).nullable());
    let v2 = open_in(&schema, vec![stock_v2], true).await.expect("v2");
    let cat = Catalog::new(&schema).await;
    let columns = cat.columns("stock").await;
    assert!(columns.contains(&column("colour", "text", false, Some("'red'::text"), None)));
    assert!(columns.contains(&column("rating", "int4", true, None, None)));

    let row = v2.read("Stock", id).await.expect("read");
    assert_eq!(row.get::<String>("sku").expect("sku"), "A");
    assert_eq!(row.get::<i64>("quantity").expect("quantity"), 9);
    assert_eq!(row.get::<String>("colour").expect("colour"), "red");
    assert_eq!(row.get::<Option<i32>>("rating").expect("rating"), None);
    assert!(v2.migrate().await.expect("migrate").statements.is_empty());
    v2.close().await;
}

#[tokio::test]
async fn a_required_field_that_existing_rows_cannot_fill_fails_open_and_changes_nothing() {
    let schema = unique_schema("mig_required");
    let v1 = open_in(&schema, vec![stock_v1()], true).await.expect("v1");
    create(&v1, "Stock", Record::new().with("sku", "A")).await;
    v1.close().await;

    let stock_v2 = stock_v1().field(Field::new("weight", FieldType::I64));
    let extra = Model::new("Extra").field(Field::new("x", FieldType::Text));
    let err = open_in(&schema, vec![stock_v2, extra], true)
        .await
        .expect_err("existing rows have no weight");
    let cat = Catalog::new(&schema).await;
    assert_eq!(
        cat.tables().await,
        ["stock"],
        "the migration is all or nothing"
    );
    assert!(cat.columns("stock").await.iter().all(|c| c.0 != "weight"));
    assert_eq!(err.kind(), ErrorKind::Database, "{err:?}");
    assert_eq!(
        err.sqlstate().map(|s| s.code()),
        Some("23502"),
        "not_null_violation"
    );
    assert!(
        err.to_string().contains("\"weight\""),
        "the message says why: {err}"
    );
}

#[tokio::test]
async fn a_field_removed_from_the_model_keeps_its_column_and_data_with_a_warning() {
    let schema = unique_schema("mig_remove");
    let with_legacy = stock_v1().field(Field::new("legacy", FieldType::Text).nullable());
    let v1 = open_in(&schema, vec![with_legacy], true).await.expect("v1");
    let id = create(
        &v1,
        "Stock",
        Record::new().with("sku", "A").with("legacy", "keep me"),
    )
    .await;
    v1.close().await;

    let v2 = open_in(&schema, vec![stock_v1()], true).await.expect("v2");
    let report = v2.migrate().await.expect("migrate");
    assert!(report.statements.is_empty(), "{:?}", report.statements);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("\"legacy\""),
        "{:?}",
        report.warnings
    );

    let cat = Catalog::new(&schema).await;
    let sql = format!("SELECT legacy FROM \"{schema}\".stock WHERE id = $1");
    let legacy: String = cat
        .obs
        .query_one(&sql, &[&id])
        .await
        .expect("legacy")
        .get(0);
    assert_eq!(legacy, "keep me", "the data is intact");
    let row = v2.read("Stock", id).await.expect("read without the column");
    assert_eq!(row.value("legacy"), None);
    create(&v2, "Stock", Record::new().with("sku", "B")).await;
    v2.close().await;
}

#[tokio::test]
async fn a_changed_field_type_is_reported_and_never_altered() {
    let cases = [
        (FieldType::I32, FieldType::Text, "int4"),
        (FieldType::I64, FieldType::I32, "int8"),
        (FieldType::Varchar(5), FieldType::Varchar(10), "varchar"),
    ];
    for (before, after, udt) in cases {
        let what = format!("{before:?} -> {after:?}");
        let model = |ty| Model::new("Stock").field(Field::new("code", ty).nullable());
        let schema = unique_schema("mig_drift");
        let v1 = open_in(&schema, vec![model(before)], true)
            .await
            .expect("v1");
        v1.close().await;
        let cat = Catalog::new(&schema).await;
        let ddl = cat.ddl_count().await;
        let original = cat.columns("stock").await;

        let v2 = open_in(&schema, vec![model(after)], true)
            .await
            .expect("v2");
        let report = v2.migrate().await.expect("migrate");
        assert!(
            report.statements.is_empty(),
            "{what}: {:?}",
            report.statements
        );
        assert_eq!(
            report.warnings.len(),
            1,
            "{what}: a drift warning {:?}",
            report.warnings
        );
        assert!(
            report.warnings[0].contains("\"code\""),
            "{what}: {:?}",
            report.warnings
        );
        assert_eq!(
            cat.columns("stock").await,
            original,
            "{what}: column unchanged"
        );
        assert_eq!(cat.columns("stock").await[1].1, udt);
        cat.assert_no_ddl_since(ddl, &what).await;
        v2.close().await;
    }
}

#[tokio::test]
async fn without_auto_migrate_open_creates_no_tables_and_reads_name_the_missing_relation() {
    let schema = unique_schema("mig_off");
    let db = open_in(&schema, vec![stock_v1()], false)
        .await
        .expect("open");
    let cat = Catalog::new(&schema).await;
    assert!(cat.tables().await.is_empty());

    let err = db
        .read("Stock", Uuid::now_v7())
        .await
        .expect_err("no table");
    assert_eq!(err.kind(), ErrorKind::Database, "{err:?}");
    assert_eq!((err.http_status(), err.code()), (500, "DATABASE"));
    assert_eq!(
        err.sqlstate().map(|s| s.code()),
        Some("42P01"),
        "undefined_table"
    );
    assert!(
        err.to_string()
            .contains(&format!("\"{schema}.stock\" does not exist")),
        "{err}"
    );

    let report = db.migrate().await.expect("migrate on demand");
    assert!(!report.statements.is_empty());
    assert_eq!(cat.tables().await, ["stock"]);
    let err = db.read("Stock", Uuid::now_v7()).await.expect_err("no row");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn eight_adapters_opening_one_new_schema_at_once_all_succeed() {
    // Each open creates the schema if missing and then migrates under an
    // advisory lock: both steps race here.
    let models = || {
        let tenant = Model::new("TenantStock")
            .field(Field::new("tenant", FieldType::Text))
            .field(Field::new("sku", FieldType::Text))
            .index(Index::on(["tenant", "sku"]).unique());
        vec![stock_v1().index(Index::on(["quantity"])), tenant]
    };
    let schema = unique_schema("mig_race");
    let mut opens = JoinSet::new();
    for _ in 0..8 {
        let schema = schema.clone();
        opens.spawn(async move { open_in(&schema, models(), true).await });
    }
    let mut dbs = Vec::new();
    while let Some(result) = opens.join_next().await {
        dbs.push(result.expect("task").expect("every open succeeds"));
    }

    let cat = Catalog::new(&schema).await;
    assert_eq!(cat.tables().await, ["stock", "tenant_stock"]);
    assert_eq!(cat.indexes("stock").await.len(), 3, "pkey, sku, quantity");
    assert_eq!(
        cat.indexes("tenant_stock").await.len(),
        2,
        "pkey, tenant+sku"
    );
    for db in &dbs {
        assert!(db.migrate().await.expect("migrate").statements.is_empty());
        db.close().await;
    }
}

#[tokio::test]
async fn indexes_declared_later_are_created_on_the_next_open() {
    let schema = unique_schema("mig_index");
    let plain = || {
        Model::new("Stock")
            .field(Field::new("tenant", FieldType::Text))
            .field(Field::new("sku", FieldType::Text))
            .field(Field::new("quantity", FieldType::I64))
    };
    let v1 = open_in(&schema, vec![plain()], true).await.expect("v1");
    v1.close().await;
    let cat = Catalog::new(&schema).await;
    assert_eq!(cat.indexes("stock").await.len(), 1, "only the primary key");

    let indexed = plain()
        .index(Index::on(["quantity"]))
        .index(Index::on(["tenant", "sku"]).unique());
    let v2 = open_in(&schema, vec![indexed], true).await.expect("v2");
    assert_eq!(
        cat.indexes("stock").await,
        [
            "CREATE INDEX \"stock_idx(quantity)\" ON stock USING btree (quantity)",
            "CREATE UNIQUE INDEX \"stock_key(tenant,sku)\" ON stock USING btree (tenant, sku)",
            "CREATE UNIQUE INDEX stock_pkey ON stock USING btree (id)",
        ]
    );
    let row = || {
        Record::new()
            .with("tenant", "t")
            .with("sku", "A")
            .with("quantity", 1_i64)
    };
    create(&v2, "Stock", row()).await;
    let err = v2
        .create("Stock", row())
        .await
        .expect_err("the new index is enforced");
    assert_eq!(
        err.constraint().map(|c| c.kind),
        Some(ConstraintKind::Unique)
    );
    v2.close().await;
}

#[tokio::test]
async fn a_unique_field_is_never_left_unenforced_by_an_index_name_clash() {
    // Table "stock" + field "balance_sku" and table "stock_balance" + field
    // "sku" once both got the index name "stock_balance_sku_key", and the
    // second index was skipped. Index names keep table and columns apart.
    let stock = Model::new("Stock").field(Field::new("balance_sku", FieldType::Text).unique());
    let balance = Model::new("StockBalance").field(Field::new("sku", FieldType::Text).unique());
    let schema = unique_schema("mig_collide");
    let db = open_in(&schema, vec![stock, balance], true)
        .await
        .expect("open");
    for (model, field) in [("Stock", "balance_sku"), ("StockBalance", "sku")] {
        create(&db, model, Record::new().with(field, "A")).await;
        assert_unique_violation(
            db.create(model, Record::new().with(field, "A")).await,
            &format!("{model}.{field} is declared unique"),
        );
    }
    db.close().await;
}

/// A model whose unique field `a_b` and composite unique index on `(a, b)`
/// were once given one name.
fn pair() -> Model {
    Model::new("Pair")
        .field(Field::new("a", FieldType::I64))
        .field(Field::new("b", FieldType::I64))
        .field(Field::new("a_b", FieldType::Text))
        .index(Index::on(["a_b"]).unique())
        .index(Index::on(["a", "b"]).unique())
}

fn pair_row(a: i64, b: i64, a_b: &str) -> Record {
    Record::new().with("a", a).with("b", b).with("a_b", a_b)
}

/// Whether `create` was refused by a unique index.
fn assert_unique_violation(result: pgactor::Result<Record>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(
        err.constraint().map(|c| c.kind),
        Some(ConstraintKind::Unique),
        "{what}: {err:?}"
    );
}

#[tokio::test]
async fn a_composite_unique_index_and_a_unique_field_whose_names_join_alike_are_both_enforced() {
    let schema = unique_schema("mig_join");
    let db = open_in(&schema, vec![pair()], true).await.expect("open");
    let cat = Catalog::new(&schema).await;
    assert_eq!(cat.indexes("pair").await.len(), 3, "pkey, (a_b), (a, b)");
    db.create("Pair", pair_row(1, 1, "x")).await.expect("first");
    assert_unique_violation(
        db.create("Pair", pair_row(1, 1, "y")).await,
        "(a, b) is declared unique",
    );
    assert_unique_violation(
        db.create("Pair", pair_row(2, 2, "x")).await,
        "a_b is declared unique",
    );
    db.close().await;
}

#[tokio::test]
async fn an_object_that_holds_a_declared_index_name_but_is_not_that_index_fails_open() {
    // Each case replaces the index AutoMigrate made (found by its columns)
    // with something else of the same name, then opens again.
    let cases = [
        ("non-unique", "CREATE INDEX {name} ON {s}.pair (a, b)"),
        (
            "other columns",
            "CREATE UNIQUE INDEX {name} ON {s}.pair (b, a)",
        ),
        (
            "partial",
            "CREATE UNIQUE INDEX {name} ON {s}.pair (a, b) WHERE a > 0",
        ),
        (
            "on another table",
            "CREATE UNIQUE INDEX {name} ON {s}.other (a, b)",
        ),
        ("a sequence", "CREATE SEQUENCE {name}"),
    ];
    let pair = || {
        Model::new("Pair")
            .field(Field::new("a", FieldType::I64))
            .field(Field::new("b", FieldType::I64))
            .index(Index::on(["a", "b"]).unique())
    };
    for (what, ddl) in cases {
        let schema = unique_schema("mig_impostor");
        let db = open_in(&schema, vec![pair()], true)
            .await
            .expect("first open");
        db.close().await;
        let cat = Catalog::new(&schema).await;
        let name: String = cat
            .obs
            .query_one(
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 \
                 AND tablename = 'pair' AND indexdef LIKE '%(a, b)'",
                &[&schema],
            )
            .await
            .expect("the (a, b) index")
            .get(0);
        let quoted = format!("\"{schema}\".\"{name}\"");
        let ddl = ddl
            .replace("{name}", &format!("\"{name}\""))
            .replace("{s}", &format!("\"{schema}\""))
            .replace(
                "CREATE SEQUENCE \"",
                &format!("CREATE SEQUENCE \"{schema}\".\""),
            );
        cat.obs
            .batch_execute(&format!(
                "SET search_path = \"{schema}\"; CREATE TABLE other (a bigint, b bigint); \
                 DROP INDEX {quoted}; {ddl}"
            ))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let err = open_in(&schema, vec![pair()], true).await.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Config, "{what}: {err:?}");
        assert!(err.to_string().contains(&name), "{what}: {err}");
    }
}

#[tokio::test]
async fn a_declared_index_found_under_another_name_gets_no_ddl_and_a_missing_one_is_created() {
    // A schema made by an earlier pgactor, which named indexes
    // `<table>_<columns>_key` and so gave (a_b) and (a, b) one name: only the
    // first was made. Its (a_b) index is recognised by what it is; the
    // missing (a, b) index is created and enforced from then on.
    let schema = unique_schema("mig_legacy");
    let obs = observer(&primary_url()).await;
    obs.batch_execute(&format!(
        "CREATE SCHEMA \"{schema}\"; SET search_path = \"{schema}\"; \
         CREATE TABLE pair (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), a bigint NOT NULL, \
           b bigint NOT NULL, a_b text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), \
           updated_at timestamptz NOT NULL DEFAULT now()); \
         CREATE UNIQUE INDEX pair_a_b_key ON pair (a_b); \
         INSERT INTO pair (a, b, a_b) VALUES (4242, 1, 'x'), (4242, 1, 'y');"
    ))
    .await
    .expect("legacy schema");
    let cat = Catalog::new(&schema).await;

    // Rows that break the declared (a, b) constraint: open fails, naming why.
    let err = open_in(&schema, vec![pair()], true)
        .await
        .expect_err("duplicate (a, b) rows cannot get a unique index");
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("23505"), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("could not create unique index \"pair_key(a,b)\""),
        "{text}"
    );
    assert!(
        !text.contains("4242"),
        "no stored value in the message: {text}"
    );
    assert_eq!(cat.indexes("pair").await.len(), 2, "nothing half done");

    obs.batch_execute(&format!("DELETE FROM \"{schema}\".pair WHERE a_b = 'y'"))
        .await
        .expect("dedupe");
    let db = open_in(&schema, vec![pair()], true).await.expect("open");
    let indexes = cat.indexes("pair").await;
    assert_eq!(indexes.len(), 3, "{indexes:?}");
    assert!(
        indexes.contains(&"CREATE UNIQUE INDEX pair_a_b_key ON pair USING btree (a_b)".to_owned()),
        "the legacy index is kept: {indexes:?}"
    );
    assert!(db.migrate().await.expect("migrate").statements.is_empty());
    assert_unique_violation(
        db.create("Pair", pair_row(4242, 1, "z")).await,
        "(a, b) is enforced",
    );
    assert_unique_violation(
        db.create("Pair", pair_row(3, 3, "x")).await,
        "a_b is enforced by the legacy index",
    );
    db.close().await;
}

#[tokio::test]
async fn a_model_whose_table_is_named_like_another_models_primary_key_is_refused() {
    // "Order" gets table "order", whose primary key PostgreSQL names
    // "order_pkey": the table of "OrderPkey".
    let cases = [
        (PrimaryKey::Uuid, "OrderPkey", "order_pkey"),
        (PrimaryKey::Identity, "OrderIdSeq", "order_id_seq"),
    ];
    for (key, other, name) in cases {
        let order = Model::new("Order")
            .primary_key(key)
            .field(Field::new("total", FieldType::I64));
        let clash = Model::new(other).field(Field::new("note", FieldType::Text));
        let mut models = pgactor::Registry::new();
        models.register(order).expect("valid model");
        let err = match models.register(clash) {
            Err(err) => err,
            Ok(()) => {
                let schema = unique_schema("mig_pkey");
                let opened = OpenOptions::new(primary_url())
                    .registry(models)
                    .session(in_schema(&schema))
                    .open()
                    .await;
                let db = match opened {
                    Err(err) => err,
                    Ok(db) => {
                        let answer = db.list(other, Default::default()).await;
                        db.close().await;
                        panic!("{other}: open succeeded; a list answered {answer:?}");
                    }
                };
                db
            }
        };
        assert_eq!(err.kind(), ErrorKind::Config, "{other}: {err:?}");
        assert!(err.to_string().contains(name), "{other}: {err}");
    }
}

#[tokio::test]
async fn a_relation_that_is_not_a_table_or_view_under_a_models_table_name_fails_open() {
    for (kind, ddl) in [
        ("sequence", "CREATE SEQUENCE stock"),
        (
            "index",
            "CREATE TABLE other (x int); CREATE INDEX stock ON other (x)",
        ),
        ("composite type", "CREATE TYPE stock AS (x int)"),
    ] {
        let schema = unique_schema("mig_relkind");
        let obs = observer(&primary_url()).await;
        obs.batch_execute(&format!(
            "CREATE SCHEMA \"{schema}\"; SET search_path = \"{schema}\"; {ddl}"
        ))
        .await
        .expect(kind);
        let stock = Model::new("Stock").field(Field::new("sku", FieldType::Text));
        let err = open_in(&schema, vec![stock], true).await.expect_err(kind);
        assert_eq!(err.kind(), ErrorKind::Config, "{kind}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("\"stock\"") && text.contains(kind),
            "{kind}: {text}"
        );
    }
}

#[tokio::test]
async fn a_view_under_a_models_table_name_is_left_alone_but_a_declared_index_it_lacks_fails_open() {
    // A model may be served by a view made by hand (AutoMigrate makes
    // tables only); a unique index it declares can never be on the view.
    let schema = unique_schema("mig_view");
    let obs = observer(&primary_url()).await;
    obs.batch_execute(&format!(
        "CREATE SCHEMA \"{schema}\"; SET search_path = \"{schema}\"; \
         CREATE TABLE rows (id uuid PRIMARY KEY, sku text NOT NULL, \
           created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now()); \
         CREATE VIEW stock AS SELECT * FROM rows"
    ))
    .await
    .expect("view");
    let plain = || Model::new("Stock").field(Field::new("sku", FieldType::Text));
    let db = open_in(&schema, vec![plain()], true)
        .await
        .expect("a view is the model's relation");
    assert!(db.migrate().await.expect("migrate").statements.is_empty());
    create(&db, "Stock", Record::new().with("sku", "A")).await;
    db.close().await;

    let unique = Model::new("Stock").field(Field::new("sku", FieldType::Text).unique());
    let err = open_in(&schema, vec![unique], true)
        .await
        .expect_err("a unique field the view cannot enforce");
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    assert!(err.to_string().contains("is a view"), "{err}");
}
