//! Ending the adapter's server sessions from outside (`pg_terminate_backend`),
//! as a crash, an administrator or a failover would, and seeing them gone.

use super::wait::{eventually, ready};

/// Terminate, in one statement, the sessions named `app` that match
/// `condition` (SQL over `pg_stat_activity`, e.g. `state = 'idle'`;
/// `true` for all of them); answer their pids. They may not have gone
/// yet: see [`gone`].
pub async fn terminate_sessions(
    admin: &tokio_postgres::Client,
    app: &str,
    condition: &str,
) -> Vec<i32> {
    admin
        .query(
            &format!(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1 AND ({condition})"
            ),
            &[&app],
        )
        .await
        .expect("pg_terminate_backend")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Terminate the backends `pids`; answer how many of them the server
/// signalled. They may not have gone yet: see [`gone`].
pub async fn terminate(admin: &tokio_postgres::Client, pids: &[i32]) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) pid",
            &[&pids],
        )
        .await
        .expect("pg_terminate_backend")
        .iter()
        .filter(|r| r.get::<_, bool>(0))
        .count()
}

/// Wait until the backends `pids` are gone from the server.
pub async fn gone(admin: &tokio_postgres::Client, pids: &[i32]) {
    eventually("the terminated backends to go away", || async {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&pids],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        ready(left == 0, left)
    })
    .await;
}
