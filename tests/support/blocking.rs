//! Holding the adapter's statements up from outside: a session of the
//! test's own holding a table or row lock, a trigger that makes updates
//! slow; and the adapter's sessions seen waiting for a lock.

use super::observer::observer;
use super::topology::primary_url;
use super::wait::until;

/// A session holding an ACCESS EXCLUSIVE lock on `schema`'s stock_balance
/// table on the primary, which every statement on it waits for, until it
/// rolls back.
pub async fn lock_stock_table(schema: &str) -> tokio_postgres::Client {
    lock_table(&primary_url(), schema, "stock_balance").await
}

/// A session on the server of `url` holding an ACCESS EXCLUSIVE lock on
/// `schema`.`table` until it rolls back (or is dropped).
pub async fn lock_table(url: &str, schema: &str, table: &str) -> tokio_postgres::Client {
    let locker = observer(url).await;
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{schema}\".{table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .expect("lock the table");
    locker
}

/// A session on the server of `url` holding the row lock of `schema`'s
/// stock_balance row `id` (`SELECT … FOR UPDATE`) until it rolls back (or
/// is dropped: the connection closes and its transaction rolls back).
pub async fn lock_row_outside(url: &str, schema: &str, id: uuid::Uuid) -> tokio_postgres::Client {
    let holder = observer(url).await;
    holder.batch_execute("BEGIN").await.expect("begin");
    let locked = holder
        .query_typed(
            &format!("SELECT 1 FROM \"{schema}\".stock_balance WHERE id = $1 FOR UPDATE"),
            &[(&id, tokio_postgres::types::Type::UUID)],
        )
        .await
        .expect("lock the row");
    assert_eq!(locked.len(), 1, "the row to lock exists");
    holder
}

/// A table whose updates sleep `quantity` milliseconds in a trigger: a slow
/// statement on demand.
pub async fn make_updates_slow(admin: &tokio_postgres::Client, schema: &str) {
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION \"{schema}\".slow() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(NEW.quantity / 1000.0); RETURN NEW; END $$;
             CREATE TRIGGER slow BEFORE UPDATE ON \"{schema}\".stock_balance
             FOR EACH ROW EXECUTE FUNCTION \"{schema}\".slow();"
        ))
        .await
        .expect("create the slow trigger");
}

/// Sessions named `app` that wait for a lock now.
pub async fn lock_waiters(client: &tokio_postgres::Client, app: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
            &[&app],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Wait (bounded, see [`until`]) until exactly `n` sessions named `app`
/// wait for a lock.
pub async fn until_lock_waiters(client: &tokio_postgres::Client, app: &str, n: i64) {
    until(
        &format!("{n} sessions of {app} to wait for a lock"),
        || async { lock_waiters(client, app).await == n },
    )
    .await;
}

/// A session on the replica at `url` that has paused its replay of the
/// primary's WAL: writes made from now on are not visible there until
/// [`resume_replay`].
pub async fn pause_replay(url: &str) -> tokio_postgres::Client {
    let replica = observer(url).await;
    replica
        .execute("SELECT pg_wal_replay_pause()", &[])
        .await
        .expect("pause replay");
    replica
}

/// Resume the replay [`pause_replay`] paused.
pub async fn resume_replay(replica: &tokio_postgres::Client) {
    replica
        .execute("SELECT pg_wal_replay_resume()", &[])
        .await
        .expect("resume replay");
}
