//! Through PgBouncer in transaction pooling mode (`PGACTOR_BOUNCER_URL`:
//! `pool_mode = transaction`, `PGACTOR_BOUNCER_POOL_SIZE` server connections
//! per database and user) with `PoolerMode::Transaction`: CRUD and
//! transactions work; no setting leaks to other clients of the bouncer,
//! while direct mode's session settings do; each transaction runs with the
//! configured settings; open checks the role's defaults.
//!
//! `pg_stat_activity` cannot tell the adapter's server sessions apart here
//! (PgBouncer hands them from client to client), so these tests look at the
//! server through the data (a column default that records the settings in
//! force) and through every server session of a bouncer pool at once.
//! Raw clients through the bouncer use the simple query protocol only:
//! tokio-postgres's `query(&str)` prepares named statements, which a
//! transaction-pooling bouncer does not keep.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pgactor::{
    Db, ErrorKind, OpenOptions, PoolConfig, PoolerMode, Record, Role, SessionConfig, TxOptions,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

use crate::crud::row_life;
use crate::support::blocking::lock_row_outside;
use crate::support::db::{named_session, registry, stock_model, unique_app_name, unique_schema};
use crate::support::logs::capturing_logs;
use crate::support::observer::observer;
use crate::support::topology::{
    bouncer_pool_size, bouncer_url, primary_url, replica_url, url_with_db, TempDatabase,
};
use crate::support::wait::{eventually, ready};
use crate::transactions::{
    a_conflicted_transfer_retried_applies_once, account_model, k_of_n_callers_reserve_a_unit,
    only_the_ok_body_is_committed, stock,
};

/// Options for pooler mode at `url`, in `schema`, with the stock and account models.
fn pooled(url: &str, schema: &str, session: SessionConfig) -> OpenOptions {
    OpenOptions::new(url)
        .pooler(PoolerMode::Transaction)
        .registry(registry([stock_model(), account_model()]))
        .session(SessionConfig {
            schema: Some(schema.into()),
            ..session
        })
}

/// Pooler mode through the bouncer, in a fresh schema.
async fn open_pooled(prefix: &str, session: SessionConfig) -> (Db, String) {
    let schema = unique_schema(prefix);
    let db = pooled(&bouncer_url(), &schema, session)
        .open()
        .await
        .expect("open through the bouncer");
    (db, schema)
}

/// A pooler-mode adapter through the bouncer on a database of the test's
/// own, and so on a bouncer pool (server sessions) of its own: no other
/// test's transaction can make a statement of ours wait in the bouncer's
/// queue, and nothing another test does lands on these server sessions.
struct OwnPool {
    temp: TempDatabase,
    /// The bouncer's URL for the database.
    url: String,
    schema: String,
    db: Db,
}

impl OwnPool {
    async fn open(prefix: &str, session: SessionConfig) -> OwnPool {
        let temp = TempDatabase::create(prefix).await;
        let url = url_with_db(&bouncer_url(), &temp.name);
        let schema = unique_schema(prefix);
        let db = pooled(&url, &schema, session).open().await.unwrap();
        OwnPool {
            temp,
            url,
            schema,
            db,
        }
    }

    /// A session straight on the primary that holds the row lock of
    /// `StockBalance` `id` until its ROLLBACK.
    async fn lock_row_outside(&self, id: uuid::Uuid) -> tokio_postgres::Client {
        lock_row_outside(&self.temp.url, &self.schema, id).await
    }

    async fn close(self) {
        self.db.close().await;
        self.temp.remove().await;
    }
}

/// Set the quantity of `StockBalance` `id` with a query timeout of
/// `millis`, expecting it to fail.
async fn hasty_update(db: &Db, id: uuid::Uuid, millis: u64) -> pgactor::Error {
    db.with_query_timeout(Duration::from_millis(millis))
        .update("StockBalance", id, Record::new().with("quantity", 2_i64))
        .await
        .unwrap_err()
}

/// Settings no server has by default, to recognise wherever they land.
fn marked_settings() -> SessionConfig {
    SessionConfig {
        statement_timeout: Some(Duration::from_millis(4321)),
        lock_timeout: Some(Duration::from_millis(1234)),
        idle_in_transaction_timeout: Some(Duration::from_millis(54321)),
        time_zone: Some("Asia/Kathmandu".into()),
        ..SessionConfig::default()
    }
}

/// `marked_settings` as `current_setting` shows them.
const MARKED: [(&str, &str); 4] = [
    ("statement_timeout", "4321ms"),
    ("lock_timeout", "1234ms"),
    ("idle_in_transaction_session_timeout", "54321ms"),
    ("TimeZone", "Asia/Kathmandu"),
];

#[tokio::test]
async fn a_row_goes_through_its_whole_life_through_the_bouncer() {
    let (db, _) = open_pooled("bnc_crud", SessionConfig::default()).await;
    assert_eq!(db.session().pooler, PoolerMode::Transaction);
    row_life(&db).await;
    db.close().await;
}

#[tokio::test]
async fn transactions_commit_and_roll_back_through_the_bouncer() {
    let (db, _) = open_pooled("bnc_tx", SessionConfig::default()).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let row = tx
        .create("StockBalance", Record::new().with("sku", "undone"))
        .await
        .unwrap();
    let undone: uuid::Uuid = row.get("id").unwrap();
    assert_eq!(
        tx.read("StockBalance", undone).await.unwrap(),
        row,
        "the transaction reads its own write"
    );
    tx.rollback().await.unwrap();
    let err = db.read("StockBalance", undone).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "rolled back");

    let tx = db.begin(TxOptions::default()).await.unwrap();
    let row = tx
        .create("StockBalance", Record::new().with("sku", "kept"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let kept: uuid::Uuid = row.get("id").unwrap();
    assert_eq!(db.read("StockBalance", kept).await.unwrap(), row);
    db.close().await;
}

#[tokio::test]
async fn with_transaction_commits_only_the_ok_body_through_the_bouncer() {
    let (db, _) = open_pooled("bnc_with", SessionConfig::default()).await;
    only_the_ok_body_is_committed(&db).await;
    db.close().await;
}

#[tokio::test]
async fn lock_for_update_serialises_k_of_n_callers_sharing_few_server_connections() {
    let (db, _) = open_pooled("bnc_lock", SessionConfig::default()).await;
    // 40 transactions, up to 20 client connections, 4 server connections.
    k_of_n_callers_reserve_a_unit(&db, 40, 12).await;
    db.close().await;
}

#[tokio::test]
async fn a_conflicted_transfer_is_retried_and_applied_once_through_the_bouncer() {
    let (db, schema) = open_pooled("bnc_retry", SessionConfig::default()).await;
    let admin = observer(&primary_url()).await;
    a_conflicted_transfer_retried_applies_once(&db, &schema, &admin).await;
    db.close().await;
}

/// What a server session runs with: its pid, the settings the adapter
/// manages, and how many named prepared statements it holds.
const SAMPLE: &str = "SELECT pg_backend_pid()::text AS pid, \
     current_setting('statement_timeout') AS statement_timeout, \
     current_setting('lock_timeout') AS lock_timeout, \
     current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction_session_timeout, \
     current_setting('TimeZone') AS \"TimeZone\", \
     current_setting('search_path') AS search_path, \
     current_setting('default_transaction_read_only') AS default_transaction_read_only, \
     (SELECT count(*) FROM pg_prepared_statements)::text AS prepared_statements";

type Sample = BTreeMap<String, String>;

/// Run `sql` (simple protocol) and answer its one row, column by column.
async fn sample(client: &tokio_postgres::Client, sql: &str) -> Sample {
    let messages = client.simple_query(sql).await.expect(sql);
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .expect("one row");
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name().to_owned(), row.get(i).unwrap_or("").to_owned()))
        .collect()
}

/// What every server session of the bouncer's pool for `url` (one database,
/// one user) runs with. `size` clients each hold a transaction at the same
/// time, so each sits on a server session of its own and together they
/// cover the whole pool; the pids prove it. Nothing else may hold a server
/// session of this pool meanwhile.
async fn every_server_session(url: &str, size: usize) -> Vec<Sample> {
    let barrier = Arc::new(tokio::sync::Barrier::new(size));
    let clients: Vec<_> = (0..size)
        .map(|_| {
            let (url, barrier) = (url.to_owned(), barrier.clone());
            tokio::spawn(async move {
                let client = observer(&url).await;
                client.batch_execute("BEGIN").await.unwrap();
                let found = sample(&client, SAMPLE).await;
                // Not a timing assertion: a guard against hanging forever.
                tokio::time::timeout(Duration::from_secs(60), barrier.wait())
                    .await
                    .expect("every client on a server session at once");
                client.batch_execute("COMMIT").await.unwrap();
                found
            })
        })
        .collect();
    let mut sessions = Vec::new();
    for client in clients {
        sessions.push(client.await.unwrap());
    }
    let mut pids: Vec<_> = sessions.iter().map(|s| s["pid"].clone()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(
        pids.len(),
        size,
        "one server session per client: {sessions:?}"
    );
    for session in &mut sessions {
        session.remove("pid");
    }
    sessions
}

/// A session `SET` through a transaction-pooling bouncer stays on the server
/// session that ran it and reaches the next client there: direct mode's
/// settings leak, pooler mode's never do.
#[tokio::test]
async fn pooler_mode_leaves_other_clients_at_the_server_defaults_where_direct_mode_leaks() {
    // A database of its own: a bouncer pool (server sessions) of its own.
    let temp = TempDatabase::create("bnc_leak").await;
    let url = url_with_db(&bouncer_url(), &temp.name);
    let size = bouncer_pool_size();
    let mut defaults = sample(&observer(&temp.url).await, SAMPLE).await;
    defaults.remove("pid");
    for (name, marked) in MARKED {
        assert_ne!(defaults[name], marked, "the server's own {name}");
    }

    // Pooler mode, three times more busy clients than server sessions,
    // in and out of transactions.
    let schema = unique_schema("bnc_leak");
    let clients = PoolConfig {
        max_open: Some(3 * size),
        ..PoolConfig::default()
    };
    let db = pooled(&url, &schema, marked_settings())
        .write_pool(clients.clone())
        .read_pool(clients)
        .open()
        .await
        .unwrap();
    let work: Vec<_> = (0..3 * size)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let id = stock(&db, 5).await;
                db.with_transaction(TxOptions::default(), |tx| async move {
                    let row = tx.lock_for_update("StockBalance", id).await?;
                    let quantity: i64 = row.get("quantity")?;
                    tx.update(
                        "StockBalance",
                        id,
                        Record::new().with("quantity", quantity - 1),
                    )
                    .await
                })
                .await
                .unwrap();
                db.read("StockBalance", id).await.unwrap()
            })
        })
        .collect();
    for task in work {
        assert_eq!(task.await.unwrap().get::<i64>("quantity").unwrap(), 4);
    }
    db.close().await;
    for session in every_server_session(&url, size).await {
        assert_eq!(session, defaults, "pooler mode left nothing behind");
    }

    // Direct mode through the same bouncer: opening it is enough (both
    // pools' connection hooks run; nothing is written).
    let direct = OpenOptions::new(url.as_str())
        .read_dsn(url.as_str())
        .auto_migrate(false)
        .session(SessionConfig {
            schema: Some(schema.clone()),
            ..marked_settings()
        })
        .open()
        .await
        .unwrap();
    direct.close().await;
    let sessions = every_server_session(&url, size).await;
    // (TimeZone does not: PgBouncer tracks it, with application_name,
    // client_encoding, DateStyle and standard_conforming_strings, and sets
    // each client's own value on the server session it hands it.)
    assert!(
        sessions.iter().any(|s| s["statement_timeout"] == "4321ms"
            && s["lock_timeout"] == "1234ms"
            && s["idle_in_transaction_session_timeout"] == "54321ms"
            && s["search_path"] == format!("\"{schema}\"")),
        "direct mode's session settings stay behind for the next client: {sessions:?}"
    );
    assert!(
        sessions
            .iter()
            .any(|s| s["default_transaction_read_only"] == "on"),
        "even the read pool's read-only setting, which then fails other clients' writes: {sessions:?}"
    );
    assert!(
        sessions.iter().all(|s| s["prepared_statements"] == "0"),
        "no named statement was prepared on any server session: {sessions:?}"
    );
    temp.remove().await;
}

/// `note` records the settings in force when a row is inserted.
async fn record_settings_on_insert(admin: &tokio_postgres::Client, schema: &str) {
    admin
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".stock_balance ALTER COLUMN note SET DEFAULT \
             concat_ws(' ', current_setting('statement_timeout'), current_setting('lock_timeout'), \
             current_setting('idle_in_transaction_session_timeout'), current_setting('TimeZone'))"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn transactions_run_with_the_configured_settings_autocommit_with_the_servers() {
    // A pool of its own: our statements wait on the lock, never in the
    // bouncer's queue.
    let session = SessionConfig {
        lock_timeout: Some(Duration::from_millis(250)),
        ..marked_settings()
    };
    let own = OwnPool::open("bnc_local", session).await;
    let db = &own.db;
    let admin = observer(&own.temp.url).await;
    record_settings_on_insert(&admin, &own.schema).await;
    let note = |row: &Record| row.get::<Option<String>>("note").unwrap().unwrap();

    let inside = db
        .with_transaction(TxOptions::default(), |tx| async move {
            tx.create("StockBalance", Record::new().with("sku", "inside"))
                .await
        })
        .await
        .unwrap();
    assert_eq!(note(&inside), "4321ms 250ms 54321ms Asia/Kathmandu");

    let outside = db
        .create("StockBalance", Record::new().with("sku", "outside"))
        .await
        .unwrap();
    let server: String = admin
        .query_one(
            "SELECT concat_ws(' ', current_setting('statement_timeout'), current_setting('lock_timeout'), \
             current_setting('idle_in_transaction_session_timeout'), current_setting('TimeZone'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(note(&outside), server, "the server's defaults for the role");

    // A row lock held by a session outside: the transaction's lock_timeout
    // ends its wait on the server.
    let id: uuid::Uuid = inside.get("id").unwrap();
    let holder = own.lock_row_outside(id).await;
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let err = tx.lock_for_update("StockBalance", id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.sqlstate(), Some(&SqlState::LOCK_NOT_AVAILABLE), "{err}");
    tx.rollback().await.unwrap();
    // Outside a transaction the server's lock_timeout (none) applies: only
    // the client's deadline ends the wait, with a cancel through the bouncer.
    let err = hasty_update(db, id, 300).await;
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.sqlstate(), None, "{err}");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(
        row.get::<i64>("quantity").unwrap(),
        0,
        "the cancelled update did not apply"
    );
    own.close().await;
}

#[tokio::test]
async fn a_time_zone_the_server_refuses_fails_the_open_in_pooler_mode_too() {
    let session = SessionConfig {
        time_zone: Some("Mars/Olympus_Mons".into()),
        ..SessionConfig::default()
    };
    let err = pooled(&bouncer_url(), &unique_schema("bnc_tz"), session)
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("Mars/Olympus_Mons"), "{err}");
}

/// Pooler mode sends the transaction settings as `SET LOCAL` text behind
/// BEGIN: a value with quotes and a backslash in it stays one literal, and
/// the statement it tries to smuggle in never runs. (The server takes both
/// values as POSIX time zones, so they make it to a transaction.)
#[tokio::test]
async fn a_setting_value_cannot_smuggle_statements_into_pooler_mode_transactions() {
    for zone in [
        r"UTC'; SET LOCAL statement_timeout = '1",
        r"UTC\'; SET LOCAL statement_timeout = '1",
    ] {
        let schema = unique_schema("bnc_quote");
        let session = SessionConfig {
            time_zone: Some(zone.into()),
            ..marked_settings()
        };
        let db = pooled(&bouncer_url(), &schema, session)
            .open()
            .await
            .unwrap();
        record_settings_on_insert(&observer(&primary_url()).await, &schema).await;
        let row = db
            .with_transaction(TxOptions::default(), |tx| async move {
                tx.create("StockBalance", Record::new().with("sku", "quoted"))
                    .await
            })
            .await
            .unwrap();
        let note: String = row.get::<Option<String>>("note").unwrap().unwrap();
        assert_eq!(
            note.to_uppercase(),
            format!("4321MS 1234MS 54321MS {}", zone.to_uppercase()),
            "{zone}"
        );
        db.close().await;
    }
}

/// A login role of the test's own, with `defaults` set on it by `ALTER ROLE`.
struct TempRole {
    name: String,
}

impl TempRole {
    async fn create(defaults: &[(&str, &str)]) -> TempRole {
        let name = format!(
            "pga_role_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut sql = format!(
            "CREATE ROLE \"{name}\" LOGIN; GRANT CREATE ON DATABASE postgres TO \"{name}\";"
        );
        for (setting, value) in defaults {
            sql += &format!("ALTER ROLE \"{name}\" SET {setting} = '{value}';");
        }
        observer(&primary_url())
            .await
            .batch_execute(&sql)
            .await
            .unwrap();
        TempRole { name }
    }

    /// `url` (of the postgres superuser) as this role.
    fn url(&self, url: &str) -> String {
        let as_role = url.replacen("://postgres@", &format!("://{}@", self.name), 1);
        assert_ne!(as_role, url, "a URL of the postgres user");
        as_role
    }

    async fn remove(self) {
        let admin = observer(&primary_url()).await;
        admin
            .execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = $1",
                &[&self.name],
            )
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                "DROP OWNED BY \"{0}\"; DROP ROLE \"{0}\"",
                self.name
            ))
            .await
            .unwrap();
    }
}

/// What open checks: these settings, configured, against the role's defaults.
fn checked_settings(schema: &str) -> SessionConfig {
    SessionConfig {
        statement_timeout: Some(Duration::from_secs(12)),
        lock_timeout: Some(Duration::from_millis(1500)),
        idle_in_transaction_timeout: Some(Duration::from_secs(45)),
        time_zone: Some("Europe/Paris".into()),
        schema: Some(schema.into()),
        ..SessionConfig::default()
    }
}

/// The (pool, setting) of each pooler-mode warning in `logs`.
fn warnings(logs: &str) -> Vec<(String, String)> {
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .unwrap_or_default()
            .to_owned()
    };
    let mut found: Vec<_> = logs
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("pooler mode:"))
        .map(|line| (field(line, "pool="), field(line, "setting=")))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn open_warns_for_each_setting_the_role_does_not_default_to() {
    let bare = TempRole::create(&[]).await;
    let schema = unique_schema("bnc_warn");
    let url = bare.url(&bouncer_url());
    // Far more client connections than half the server's max_connections:
    // behind the bouncer they take no server slot, and nothing says they do.
    let many = PoolConfig {
        max_open: Some(500),
        ..PoolConfig::default()
    };
    let opening = pooled(&url, &schema, checked_settings(&schema))
        .read_dsn(url.as_str())
        .write_pool(many)
        .open();
    let (db, logs) = capturing_logs(opening).await;
    db.expect("a warning never fails the open").close().await;
    assert!(!logs.contains("max_connections"), "{logs}");

    let mut expected = Vec::new();
    for pool in ["read", "write"] {
        for setting in [
            "TimeZone",
            "idle_in_transaction_session_timeout",
            "lock_timeout",
            "statement_timeout",
        ] {
            expected.push((pool.to_owned(), setting.to_owned()));
        }
    }
    expected.push(("read".into(), "transaction_read_only".into()));
    expected.sort();
    assert_eq!(warnings(&logs), expected, "{logs}");
    for fix in [
        format!("ALTER ROLE \"{}\" SET statement_timeout = '12s'", bare.name),
        format!("ALTER ROLE \"{}\" SET TimeZone = 'Europe/Paris'", bare.name),
        format!(
            "ALTER ROLE \"{}\" SET default_transaction_read_only = on",
            bare.name
        ),
    ] {
        assert!(
            logs.contains(&fix),
            "the warning names the fix {fix}: {logs}"
        );
    }
    bare.remove().await;
}

#[tokio::test]
async fn open_is_quiet_once_alter_role_set_the_defaults() {
    let tuned = TempRole::create(&[
        ("statement_timeout", "12s"),
        ("lock_timeout", "1500ms"),
        ("idle_in_transaction_session_timeout", "45s"),
        ("TimeZone", "Europe/Paris"),
    ])
    .await;
    // Reads go straight to the replica (a standby is read-only), as the
    // same role: wait until the role and its defaults have replicated.
    let replica = observer(&replica_url()).await;
    eventually("the role's defaults reach the replica", || async {
        let rows = replica
            .query(
                "SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolconfig IS NOT NULL",
                &[&tuned.name],
            )
            .await
            .unwrap();
        ready(!rows.is_empty(), ())
    })
    .await;

    let schema = unique_schema("bnc_quiet");
    let opening = pooled(
        &tuned.url(&bouncer_url()),
        &schema,
        checked_settings(&schema),
    )
    .read_dsn(tuned.url(&replica_url()))
    .open();
    let (db, logs) = capturing_logs(opening).await;
    let db = db.unwrap();
    assert_eq!(warnings(&logs), [], "{logs}");
    assert!(logs.contains("pgactor open"), "the capture works: {logs}");

    // Statements outside transactions now run with the configured values.
    let in_force: BTreeMap<_, _> = db
        .settings_in_force(Role::Write)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for (name, value) in [
        ("statement_timeout", "12s"),
        ("lock_timeout", "1500ms"),
        ("idle_in_transaction_session_timeout", "45s"),
        ("TimeZone", "Europe/Paris"),
    ] {
        assert_eq!(in_force[name], value, "{name}");
    }
    db.close().await;
    tuned.remove().await;
}

/// While every server session is busy, a statement waits in the bouncer's
/// queue, where PgBouncer 1.18 drops a CancelRequest for it: past its query
/// timeout a write is then in doubt, never reported as cancelled.
#[tokio::test]
async fn a_write_queued_in_the_bouncer_past_its_query_timeout_is_outcome_unknown() {
    let own = OwnPool::open("bnc_queue", SessionConfig::default()).await;
    let db = &own.db;
    let id = stock(db, 1).await;

    // Every server session of this pool held in a transaction.
    let mut holders = Vec::new();
    for _ in 0..bouncer_pool_size() {
        let client = observer(&own.url).await;
        client.batch_execute("BEGIN; SELECT 1").await.unwrap();
        holders.push(client);
    }
    let err = hasty_update(db, id, 300).await;
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    for holder in &holders {
        holder.batch_execute("COMMIT").await.unwrap();
    }
    // The connection whose cancel was not confirmed was closed, not reused.
    assert_eq!(db.stats().write.closed.broken, 1);
    db.read("StockBalance", id).await.unwrap();
    own.close().await;
}

/// tokio-postgres's own cancel closes its socket as soon as the request is
/// written, which crashes PgBouncer 1.18 (pgbouncer issue 801); pgactor's
/// waits for the server to close it, like libpq.
#[tokio::test]
async fn query_timeouts_cancel_through_the_bouncer_and_the_bouncer_survives_them() {
    let own = OwnPool::open("bnc_cancel", SessionConfig::default()).await;
    let db = &own.db;
    let id = stock(db, 1).await;
    let holder = own.lock_row_outside(id).await;
    for _ in 0..10 {
        let err = hasty_update(db, id, 100).await;
        assert_eq!(
            err.kind(),
            ErrorKind::Timeout,
            "cancelled on the server: {err}"
        );
    }
    holder.batch_execute("ROLLBACK").await.unwrap();
    let fresh = observer(&own.url).await;
    fresh
        .simple_query("SELECT 1")
        .await
        .expect("the bouncer still serves new clients");
    let row = db.read("StockBalance", id).await.unwrap();
    assert_eq!(
        row.get::<i64>("quantity").unwrap(),
        1,
        "no cancelled update applied"
    );
    assert_eq!(
        db.stats().write.closed.broken,
        0,
        "each cancel was confirmed"
    );
    own.close().await;
}

/// The bouncer's client connections carrying `application_name` `app`,
/// from its admin console (`SHOW CLIENTS`).
async fn bouncer_clients_named(app: &str) -> usize {
    let console = observer(&url_with_db(&bouncer_url(), "pgbouncer")).await;
    let messages = console.simple_query("SHOW CLIENTS").await.unwrap();
    messages
        .iter()
        .filter(|m| match m {
            SimpleQueryMessage::Row(row) => row.get("application_name") == Some(app),
            _ => false,
        })
        .count()
}

/// A LISTEN through a transaction-pooling bouncer would sit on a server
/// connection other clients get next: pooler mode refuses to subscribe,
/// before opening anything.
#[tokio::test]
async fn subscribe_is_refused_in_pooler_mode_and_opens_no_connection() {
    let app = unique_app_name("bnc_listen");
    let (db, _) = open_pooled("bnc_listen", named_session(&app)).await;
    let before = bouncer_clients_named(&app).await;
    assert!(
        before >= 1,
        "the adapter's pools are among the bouncer's clients"
    );
    let (subscriber, _) = crate::listen::subscriber().await;
    let err = db
        .subscribe("orders", subscriber.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("PgBouncer"), "{err}");
    assert_eq!(
        bouncer_clients_named(&app).await,
        before,
        "no listener connection"
    );
    subscriber.stop(None);
    db.close().await;
}
