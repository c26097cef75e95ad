//! libpq's `PG*` environment variables against a real server: a DSN that
//! names nothing opens with host, port, user, password, database, sslmode
//! and application name from the environment. A binary of its own with one
//! test: the variables are the process's, and no other test may see them.
//!
//! Run by `scripts/test.sh`, which starts the servers (the role that logs
//! in with a password only is in its env file).

use pgactor::{OpenOptions, Registry};

fn shared_var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test.sh"))
}

#[tokio::test]
async fn a_dsn_that_names_nothing_opens_with_what_the_pg_variables_say() {
    let vars = [
        ("PGHOST", "127.0.0.1".to_owned()),
        ("PGPORT", shared_var("PGACTOR_PRIMARY_PORT")),
        ("PGUSER", shared_var("PGACTOR_PASSWORD_USER")),
        ("PGPASSWORD", shared_var("PGACTOR_PASSWORD")),
        ("PGDATABASE", "postgres".to_owned()),
        ("PGSSLMODE", "disable".to_owned()),
        ("PGAPPNAME", "pgactor-from-env".to_owned()),
    ];
    for (name, value) in &vars {
        // The only test of this binary: nothing else reads the environment meanwhile.
        std::env::set_var(name, value);
    }
    let db = OpenOptions::new("postgresql://")
        .registry(Registry::new())
        .open()
        .await
        .expect("open from the PG* variables");
    let (user, app, ssl): (String, String, bool) = db
        .query_one_as(
            "SELECT current_user::text, current_setting('application_name'), \
             (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
        )
        .await
        .expect("query");
    assert_eq!(user, shared_var("PGACTOR_PASSWORD_USER"));
    assert_eq!(app, "pgactor-from-env");
    assert!(!ssl, "PGSSLMODE=disable connects in plain text");
    db.close().await;
}
