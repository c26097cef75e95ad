//! The connection hook (`OpenOptions::on_connect`): it runs on every new
//! connection of both pools, after the session settings, and a hook that
//! fails fails its connection (closed, never used) and the operation that
//! wanted it, with the hook's error in the message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pgactor::{ErrorKind, OpenOptions, PoolConfig, Registry, Role, SessionConfig};

use crate::support::topology::{primary_url, replica_url};

/// What a hook saw of the connection it was given.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    role: Role,
    statement_timeout: String,
}

#[tokio::test]
async fn the_hook_runs_on_each_new_connection_of_both_pools_after_the_session_settings() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let db = OpenOptions::new(primary_url())
        .read_dsn(replica_url())
        .registry(Registry::new())
        .session(SessionConfig {
            statement_timeout: Some(std::time::Duration::from_secs(7)),
            ..SessionConfig::default()
        })
        .on_connect({
            let seen = seen.clone();
            move |conn| {
                let seen = seen.clone();
                Box::pin(async move {
                    conn.client()
                        .batch_execute("SET pgactor_test.tag = 'from the hook'")
                        .await?;
                    let row = conn
                        .client()
                        .query_one("SELECT current_setting('statement_timeout')", &[])
                        .await?;
                    seen.lock().unwrap().push(Seen {
                        role: conn.role(),
                        statement_timeout: row.get(0),
                    });
                    Ok(())
                })
            }
        })
        .open()
        .await
        .expect("open");
    let tag = "SELECT current_setting('pgactor_test.tag')";
    let (on_primary,): (String,) = db.query_one_as(tag).await.expect("primary");
    let (on_replica,): (String,) = db.replica().query_one_as(tag).await.expect("replica");
    assert_eq!(
        (on_primary.as_str(), on_replica.as_str()),
        ("from the hook", "from the hook")
    );
    let seen = seen.lock().unwrap().clone();
    for role in [Role::Write, Role::Read] {
        let of_role: Vec<_> = seen.iter().filter(|s| s.role == role).collect();
        assert!(
            !of_role.is_empty(),
            "the hook ran on the {role} pool: {seen:?}"
        );
        assert!(
            of_role.iter().all(|s| s.statement_timeout == "7s"),
            "{seen:?}"
        );
    }
    db.close().await;
}

#[tokio::test]
async fn a_hook_that_fails_fails_the_open_with_its_error() {
    let err = OpenOptions::new(primary_url())
        .registry(Registry::new())
        .on_connect(|conn| {
            Box::pin(async move {
                conn.client()
                    .batch_execute("SELECT no_such_function()")
                    .await?;
                Ok(())
            })
        })
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("connection hook failed"), "{err}");
    assert!(err.to_string().contains("no_such_function"), "{err}");
}

#[tokio::test]
async fn a_connection_whose_hook_fails_is_never_used_and_the_next_one_serves() {
    // The hook fails every other write connection after the first (open's own).
    let made = Arc::new(AtomicUsize::new(0));
    let one = PoolConfig {
        max_open: Some(1),
        // Each connection is too old to serve again: every operation opens one.
        max_lifetime: Some(std::time::Duration::from_millis(1)),
        ..PoolConfig::default()
    };
    let db = OpenOptions::new(primary_url())
        .registry(Registry::new())
        .write_pool(one)
        .on_connect({
            let made = made.clone();
            move |conn| {
                let write = conn.role() == Role::Write;
                let n = if write {
                    made.fetch_add(1, Ordering::SeqCst)
                } else {
                    0
                };
                Box::pin(async move {
                    if n % 2 == 1 {
                        return Err("refused on purpose".into());
                    }
                    Ok(())
                })
            }
        })
        .open()
        .await
        .expect("open");
    let mut refused = 0;
    let mut served = 0;
    for _ in 0..6 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        match db.execute("SELECT 1").await {
            Ok(_) => served += 1,
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
                assert!(err.to_string().contains("refused on purpose"), "{err}");
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0 && served > 0,
        "refused {refused}, served {served}"
    );
    let stats = db.stats();
    assert_eq!(stats.write.in_use, 0, "{stats:?}");
    assert!(stats.write.open <= 1, "{stats:?}");
    db.close().await;
}
