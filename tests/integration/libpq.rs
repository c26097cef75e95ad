//! libpq's conventions against a real server: a role that logs in with a
//! password (scram) only gets it from a password file, which is used only
//! while no one else may read it, and a DSN setting a libpq option the
//! driver does not know opens when ignoring it is harmless and is refused
//! when it is not. (The `PG*` variables are proven in `tests/environment.rs`,
//! a binary of its own, since they are the process's.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pgactor::{Db, ErrorKind, OpenOptions, Registry, Result};

use crate::support::topology::shared_var;

/// A password file in a directory of its own, removed with it when dropped.
struct PasswordFile {
    dir: PathBuf,
    file: PathBuf,
}

impl Drop for PasswordFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A password file holding `line`, with `mode`.
fn password_file(name: &str, line: &str, mode: u32) -> PasswordFile {
    let dir = std::env::temp_dir().join(format!("pgactor-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("pgpass");
    std::fs::write(&file, format!("# test\n{line}\n")).expect("write pgpass");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    PasswordFile { dir, file }
}

/// The password role's DSN on the primary, its password left out.
fn password_role_dsn(extra: &str) -> String {
    format!(
        "postgres://{}@127.0.0.1:{}/postgres?sslmode=disable{extra}",
        shared_var("PGACTOR_PASSWORD_USER"),
        shared_var("PGACTOR_PRIMARY_PORT"),
    )
}

async fn open_with_passfile(passfile: &PasswordFile) -> Result<Db> {
    let dsn = password_role_dsn(&format!("&passfile={}", passfile.file.display()));
    OpenOptions::new(dsn).registry(Registry::new()).open().await
}

/// The line a password file needs for the password role on the primary.
fn line_for(password: &str) -> String {
    format!(
        "127.0.0.1:{}:postgres:{}:{password}",
        shared_var("PGACTOR_PRIMARY_PORT"),
        shared_var("PGACTOR_PASSWORD_USER"),
    )
}

#[tokio::test]
async fn a_password_role_logs_in_with_the_password_its_password_file_holds() {
    let file = password_file(
        "pgpass-ok",
        &line_for(&shared_var("PGACTOR_PASSWORD")),
        0o600,
    );
    let db = open_with_passfile(&file)
        .await
        .expect("open with the password file");
    let (user,): (String,) = db
        .query_one_as("SELECT current_user::text")
        .await
        .expect("query");
    assert_eq!(user, shared_var("PGACTOR_PASSWORD_USER"));
    db.close().await;
}

#[tokio::test]
async fn a_password_file_others_may_read_or_a_wrong_password_does_not_log_in() {
    let readable = password_file(
        "pgpass-open",
        &line_for(&shared_var("PGACTOR_PASSWORD")),
        0o644,
    );
    let err = open_with_passfile(&readable).await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Config, "{err}");
    let wrong = password_file("pgpass-wrong", &line_for("not-the-password"), 0o600);
    let err = open_with_passfile(&wrong).await.unwrap_err();
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    assert_ne!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn harmless_libpq_options_open_and_weakening_ones_are_refused_before_connecting() {
    let url = shared_var("PGACTOR_PRIMARY_URL");
    let harmless = format!("{url}&gssencmode=disable&sslcompression=0&keepalives_count=3");
    let db = OpenOptions::new(harmless)
        .registry(Registry::new())
        .open()
        .await
        .expect("open with ignored libpq options");
    db.close().await;
    for weakening in [
        "gssencmode=require",
        "sslcrl=/nonexistent/crl.pem",
        "require_auth=scram-sha-256",
    ] {
        let err = OpenOptions::new(format!("{url}&{weakening}"))
            .registry(Registry::new())
            .open()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{weakening}: {err}");
        assert!(err.to_string().contains("is not supported"), "{err}");
    }
}
