//! Schema isolation: every table lives in the configured schema, which open
//! creates when missing, refuses when its name is not a plain identifier,
//! and leaves alone when it exists (so a role with USAGE but not CREATE on it
//! still connects). `public` is never created.
//!
//! Observed from outside with a superuser connection: `pg_namespace`,
//! `information_schema.tables`, privileges, and `pg_stat_statements` (which
//! statements reached the server, and as which role). Roles made here are
//! named `r_<random>` and dropped at the end.
//!
//! Also home of [`crud_round_trip`], which other modules run too.

use pgactor::{Db, ErrorKind, OpenOptions, Record, Registry, Result};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::open::unreachable_dsn;
use crate::support::db::{in_schema, registry, stock_model, unique_schema};
use crate::support::observer::{observer, rows_in, schema_exists, statements_mentioning};
use crate::support::topology::primary_url;
use crate::support::wait::eventually;

/// Create, read, update and delete a `StockBalance` through `db`.
pub(crate) async fn crud_round_trip(db: &Db) {
    let created = db
        .create("StockBalance", Record::new().with("sku", "RT-1"))
        .await
        .expect("create");
    let id: Uuid = created.get("id").unwrap();
    assert_eq!(db.read("StockBalance", id).await.expect("read"), created);
    let patch = Record::new().with("quantity", 9_i64);
    let updated = db.update("StockBalance", id, patch).await.expect("update");
    assert_eq!(updated.get::<i64>("quantity").unwrap(), 9);
    db.delete("StockBalance", id).await.expect("delete");
    let gone = db.read("StockBalance", id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
}

/// A LOGIN role of the test's own, with no privilege beyond PUBLIC's: in
/// particular no CREATE on the database, so it cannot create schemas.
struct TempRole {
    name: String,
    url: String,
}

impl TempRole {
    async fn create(admin: &Client) -> TempRole {
        let name = format!("r_{}", Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE ROLE \"{name}\" LOGIN"))
            .await
            .expect("create role");
        let may_create: bool = admin
            .query_one(
                "SELECT has_database_privilege($1, current_database(), 'CREATE')",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!may_create, "precondition: {name} cannot create schemas");
        TempRole {
            url: url_with_user(&primary_url(), &name),
            name,
        }
    }

    /// Revoke what was granted to the role, then drop it.
    async fn remove(self, admin: &Client) {
        let name = self.name;
        admin
            .batch_execute(&format!("DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\""))
            .await
            .expect("drop role");
    }

    /// The DDL (and privilege changes) that reached the server as this role.
    async fn ddl_sent(&self, admin: &Client) -> Vec<String> {
        let rows = admin
            .query(
                "SELECT s.query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid \
                 WHERE r.rolname = $1",
                &[&self.name],
            )
            .await
            .expect("pg_stat_statements");
        rows.iter()
            .map(|row| row.get::<_, String>(0))
            .filter(|q| {
                let verb = q.trim_start().to_ascii_uppercase();
                ["CREATE", "ALTER", "DROP", "GRANT", "REVOKE"]
                    .iter()
                    .any(|ddl| verb.starts_with(ddl))
            })
            .collect()
    }
}

/// `url` with its user replaced by `user` (no password: the topology trusts).
fn url_with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

async fn open_in(dsn: &str, schema: &str, models: Registry, auto_migrate: bool) -> Result<Db> {
    OpenOptions::new(dsn)
        .registry(models)
        .session(in_schema(schema))
        .auto_migrate(auto_migrate)
        .open()
        .await
}

/// Sessions waiting for a lock in a statement whose text contains `needle`.
async fn lock_waits_mentioning(client: &Client, needle: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0",
            &[&needle],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Owner, ACL and every relation of `schema`: what "left untouched" means.
async fn schema_state(admin: &Client, schema: &str) -> (String, Option<String>, Vec<String>) {
    let row = admin
        .query_one(
            "SELECT n.nspowner::regrole::text, n.nspacl::text, \
                    ARRAY(SELECT c.relname::text FROM pg_class c \
                          WHERE c.relnamespace = n.oid ORDER BY 1) \
             FROM pg_namespace n WHERE n.nspname = $1",
            &[&schema],
        )
        .await
        .expect("schema state");
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn a_missing_schema_is_created_at_open_with_its_exact_name_and_holds_the_tables() {
    // Mixed case and the full 63 bytes: the name is kept as given, not folded or cut.
    let schema = format!("T_Schema_{}", Uuid::new_v4().simple());
    let schema = format!("{schema}{}", "X".repeat(63 - schema.len()));
    let admin = observer(&primary_url()).await;
    assert!(!schema_exists(&admin, &schema).await);

    let db = open_in(&primary_url(), &schema, registry([stock_model()]), true)
        .await
        .expect("open");
    assert!(schema_exists(&admin, &schema).await, "created at open");
    let tables: Vec<String> = admin
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(tables, ["stock_balance"]);
    db.create("StockBalance", Record::new().with("sku", "S-1"))
        .await
        .unwrap();
    assert_eq!(
        rows_in(&admin, &schema, "stock_balance").await,
        1,
        "rows land in it"
    );
    db.close().await;
}

#[tokio::test]
async fn bad_schema_names_fail_open_with_config_before_any_sql() {
    let marker = format!("x{}", Uuid::new_v4().simple());
    let injection = format!("{marker}; DROP SCHEMA public");
    let too_long = "s".repeat(64);
    let bad = [
        "bad-name",
        "x; DROP SCHEMA public",
        &injection,
        "1abc",
        "",
        &too_long,
    ];
    let (unreachable, _) = unreachable_dsn();
    for name in bad {
        let err = open_in(&primary_url(), name, registry([stock_model()]), true)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name:?}: {err}");
        assert!(err.to_string().contains("schema"), "{name:?}: {err}");
        // Checked before connecting: against a server that is not there,
        // the answer is still Config, not Unavailable.
        let err = open_in(&unreachable, name, Registry::new(), true)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name:?}: {err}");
    }

    let admin = observer(&primary_url()).await;
    let namespaces: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE strpos(nspname, $1) > 0",
            &[&marker],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(namespaces, 0, "no schema named after the injection");
    assert!(schema_exists(&admin, "public").await);
    let sent = statements_mentioning(&admin, &marker).await;
    assert!(sent.is_empty(), "no statement carried the name: {sent:?}");
}

#[tokio::test]
async fn an_existing_schema_is_used_as_is_by_a_role_with_usage_but_not_create() {
    let admin = observer(&primary_url()).await;
    let role = TempRole::create(&admin).await;
    let schema = unique_schema("schema_usage");
    admin
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    // The owner's deployment creates the tables…
    open_in(&primary_url(), &schema, registry([stock_model()]), true)
        .await
        .expect("open as the owner")
        .close()
        .await;
    // …and grants the application role what it needs, and no CREATE.
    admin
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA \"{schema}\" TO \"{r}\"; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON \"{schema}\".stock_balance TO \"{r}\"",
            r = role.name
        ))
        .await
        .unwrap();
    let before = schema_state(&admin, &schema).await;

    // AutoMigrate off, as when a migration tool owns the schema.
    let db = open_in(&role.url, &schema, registry([stock_model()]), false)
        .await
        .expect("a role with USAGE opens");
    crud_round_trip(&db).await;
    db.close().await;
    // AutoMigrate on: the tables are up to date, so it has nothing to do.
    let db = open_in(&role.url, &schema, registry([stock_model()]), true)
        .await
        .expect("AutoMigrate with nothing to do needs no CREATE");
    let report = db.migrate().await.expect("migrate");
    assert!(report.statements.is_empty(), "{report:?}");
    crud_round_trip(&db).await;
    db.close().await;

    assert_eq!(schema_state(&admin, &schema).await, before, "untouched");
    assert_eq!(role.ddl_sent(&admin).await, Vec::<String>::new());
    admin
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
    role.remove(&admin).await;
}

#[tokio::test]
async fn a_role_without_create_cannot_get_a_missing_schema_and_open_names_it() {
    let admin = observer(&primary_url()).await;
    let role = TempRole::create(&admin).await;
    let schema = unique_schema("schema_denied");

    let err = open_in(&role.url, &schema, registry([stock_model()]), true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains(&format!("\"{schema}\"")), "{err}");
    assert!(!schema_exists(&admin, &schema).await);
    role.remove(&admin).await;
    // Clear means saying why, too.
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("42501"), "{err:?}");
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn open_succeeds_when_another_session_creates_the_schema_at_the_same_moment() {
    // Another instance (or a migration tool) is creating the schema and has
    // not committed yet: open finds no schema and goes to create it.
    let schema = unique_schema("schema_race");
    let other = observer(&primary_url()).await;
    other
        .batch_execute(&format!("BEGIN; CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    let opening = tokio::spawn({
        let schema = schema.clone();
        async move { open_in(&primary_url(), &schema, registry([stock_model()]), true).await }
    });
    let watcher = observer(&primary_url()).await;
    eventually(
        "the adapter to wait for the other session's schema",
        || async {
            match lock_waits_mentioning(&watcher, &schema).await {
                1 => Ok(()),
                n => Err(n),
            }
        },
    )
    .await;
    other.batch_execute("COMMIT").await.unwrap();

    let db = opening
        .await
        .unwrap()
        .expect("the schema exists now: open goes on");
    crud_round_trip(&db).await;
    db.close().await;
}

#[tokio::test]
async fn the_public_schema_is_never_created() {
    let admin = observer(&primary_url()).await;
    let role = TempRole::create(&admin).await;

    // `public` is the default schema. The role could not run CREATE SCHEMA
    // (not even IF NOT EXISTS: the privilege is checked first), so opening
    // proves none was sent.
    let db = OpenOptions::new(&role.url)
        .open()
        .await
        .expect("open in public without CREATE on the database");
    assert_eq!(db.session().schema, "public");
    db.close().await;
    assert_eq!(role.ddl_sent(&admin).await, Vec::<String>::new());
    role.remove(&admin).await;
}
