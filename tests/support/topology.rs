//! Where the servers are: the shared topology that `scripts/test.sh`
//! starts (a primary, a streaming replica and PgBouncer in transaction
//! pooling mode), databases of a test's own on its primary, and private
//! topologies (a primary and one or two streaming replicas) for tests that
//! stop, restart, pause or promote servers, which the shared one must not
//! see.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};

use super::observer::observer;

/// A variable of the shared topology's env file. Tests never skip: without
/// the topology they fail loudly.
pub fn shared_var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test.sh"))
}

/// The primary's URL.
pub fn primary_url() -> String {
    shared_var("PGACTOR_PRIMARY_URL")
}

/// The streaming replica's URL.
pub fn replica_url() -> String {
    shared_var("PGACTOR_REPLICA_URL")
}

/// The PgBouncer (transaction pooling) in front of the primary.
pub fn bouncer_url() -> String {
    shared_var("PGACTOR_BOUNCER_URL")
}

/// The bouncer's `default_pool_size`: server connections per database and user.
pub fn bouncer_pool_size() -> usize {
    shared_var("PGACTOR_BOUNCER_POOL_SIZE")
        .parse()
        .expect("PGACTOR_BOUNCER_POOL_SIZE is a number")
}

/// `url` pointing at database `db` instead (same server, user and options).
pub fn url_with_db(url: &str, db: &str) -> String {
    let (base, options) = url.split_once('?').unwrap_or((url, ""));
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
        .expect("a postgres:// URL with a database name");
    match options {
        "" => format!("{server}/{db}"),
        options => format!("{server}/{db}?{options}"),
    }
}

/// A database of the test's own on the shared primary;
/// [`TempDatabase::remove`] drops it (closing any connection still open to it).
pub struct TempDatabase {
    pub name: String,
    pub url: String,
}

impl TempDatabase {
    pub async fn create(prefix: &str) -> TempDatabase {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        admin_sql(&format!("CREATE DATABASE \"{name}\"")).await;
        TempDatabase {
            url: url_with_db(&primary_url(), &name),
            name,
        }
    }

    pub async fn remove(self) {
        admin_sql(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name)).await;
    }
}

async fn admin_sql(sql: &str) {
    observer(&primary_url())
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A primary and one or two streaming replicas of this test's own, torn
/// down on drop.
pub struct Topology {
    dir: String,
    env: HashMap<String, String>,
}

impl Topology {
    /// A primary and one streaming replica.
    pub fn up() -> Topology {
        Topology::start(1)
    }

    /// A primary and two streaming replicas ([`Topology::replica2`]).
    pub fn with_two_replicas() -> Topology {
        Topology::start(2)
    }

    fn start(replicas: u8) -> Topology {
        let dir = format!(
            "/tmp/pgr.{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        // A port window of this topology's own: while a test has a server
        // stopped, another topology starting meanwhile must not take its
        // port. Eight windows: more than the tests that start a topology.
        // A start that fails (a loaded machine, a port another process
        // took) is tried again in the next window.
        static STARTED: AtomicU16 = AtomicU16::new(0);
        let mut attempts = 0;
        let out = loop {
            let n = STARTED.fetch_add(1, Ordering::Relaxed) % 8;
            let base = 58_000 + (std::process::id() % 50) as u16 * 80 + n * 10;
            let out = Command::new(script())
                .args(["up", &dir, "--replicas", &replicas.to_string()])
                .env("PGACTOR_PORT_BASE", base.to_string())
                .env("PGACTOR_PORT_LIMIT", (base + 9).to_string())
                .output()
                .expect("run scripts/cluster.sh");
            attempts += 1;
            if out.status.success() || attempts == 3 {
                break out;
            }
            let _ = Command::new(script()).args(["down", &dir]).output();
        };
        assert!(
            out.status.success(),
            "cluster.sh up failed {attempts} times; last: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Topology { dir, env }
    }

    pub fn var(&self, name: &str) -> &str {
        &self.env[name]
    }

    pub fn primary(&self) -> &str {
        self.var("PGACTOR_PRIMARY_URL")
    }

    pub fn replica(&self) -> &str {
        self.var("PGACTOR_REPLICA_URL")
    }

    /// The second replica's URL (a topology [`Topology::with_two_replicas`]).
    pub fn replica2(&self) -> &str {
        self.var("PGACTOR_REPLICA2_URL")
    }

    /// Run pg_ctl on a data directory as the servers' OS user.
    pub fn pg_ctl(&self, data: &str, args: &[&str]) {
        let pg_ctl = format!("{}/pg_ctl", self.var("PGACTOR_PG_BIN"));
        let log = format!("{data}.pg_ctl.log");
        let mut cmd = if self.var("PGACTOR_PG_USER") == whoami() {
            Command::new(&pg_ctl)
        } else {
            let mut c = Command::new("runuser");
            c.args(["-u", self.var("PGACTOR_PG_USER"), "--", &pg_ctl]);
            c
        };
        // -l: a server started by pg_ctl must not keep our pipes open.
        let status = cmd
            .args(["-D", data, "-l", &log, "-w"])
            .args(args)
            .current_dir("/")
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} on {data} failed");
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["down", &self.dir]).output();
    }
}

fn script() -> String {
    format!("{}/scripts/cluster.sh", env!("CARGO_MANIFEST_DIR"))
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
