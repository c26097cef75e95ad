//! What the examples share: where to connect, and a `main` that opens the
//! adapter for them and cleans up after them.
//!
//! With `DATABASE_URL` set (and optionally `DATABASE_READ_URL`, a replica) an
//! example works there, in a fresh schema that is dropped at the end.
//! Otherwise it starts a throwaway primary + streaming replica with
//! `scripts/cluster.sh` and always tears it down again, also on error, panic
//! or Ctrl-C. `RUST_LOG` sets the library's log level (default info, or
//! what the example passes to [`main_with`]).
//!
//! Each example includes this file with
//! `#[path = "support/cluster.rs"] mod cluster;`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use pgactor::{Db, OpenOptions, Registry, SessionConfig};
use tracing_subscriber::EnvFilter;

pub type BoxError = Box<dyn std::error::Error>;

/// Where to connect, and in which schema (`None`: `public`).
pub struct Target {
    pub write: String,
    pub read: String,
    pub schema: Option<String>,
}

impl Target {
    /// `DATABASE_URL` and `DATABASE_READ_URL`, in a schema of our own so
    /// nothing already there is touched.
    fn from_env(example: &str) -> Option<Target> {
        let write = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let read = std::env::var("DATABASE_READ_URL").unwrap_or_default();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let schema = format!("{example}_{}", &suffix[..12]);
        println!("using DATABASE_URL, in a fresh schema {schema} (dropped at the end)");
        Some(Target {
            write,
            read,
            schema: Some(schema),
        })
    }

    /// Options to open the adapter here: both DSNs, the schema, and
    /// `application_name` (shown in `pg_stat_activity`).
    fn options(&self, application_name: &str) -> OpenOptions {
        OpenOptions::new(self.write.as_str())
            .read_dsn(self.read.as_str())
            .session(SessionConfig {
                schema: self.schema.clone(),
                application_name: Some(application_name.into()),
                ..SessionConfig::default()
            })
    }
}

/// Open the adapter with `registry` on `DATABASE_URL` or a throwaway
/// cluster (AutoMigrate creates the tables), run `example`, then close it
/// and clean up: the example's exit code.
pub async fn main<F, Fut>(
    name: &str,
    registry: fn() -> pgactor::Result<Registry>,
    example: F,
) -> ExitCode
where
    F: FnOnce(Db, Target) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let configure = |options: OpenOptions| Ok(options.registry(registry()?));
    main_with(name, "info", configure, example).await
}

/// [`main`] for an example that sets more than the models: `configure` gets
/// the options [`main`] would open with (both DSNs, the schema,
/// `application_name`) and may change any of them, e.g. pool sizes or
/// where reads go; `log` is the log level when `RUST_LOG` is unset.
pub async fn main_with<C, F, Fut>(name: &str, log: &str, configure: C, example: F) -> ExitCode
where
    C: FnOnce(OpenOptions) -> pgactor::Result<OpenOptions>,
    F: FnOnce(Db, Target) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    // Catch Ctrl-C from the start, so an interrupted run still drops (and
    // tears down) its cluster instead of dying with the servers running.
    let interrupted = tokio::spawn(tokio::signal::ctrl_c());
    let outcome: Result<(), BoxError> = async {
        let (target, _cluster) = match Target::from_env(name) {
            Some(target) => (target, None),
            None => Cluster::up().map(|(target, cluster)| (target, Some(cluster)))?,
        };
        let cleanup = target.schema.clone().map(|s| (target.write.clone(), s));
        let run = async {
            let application_name = format!("pgactor-{name}");
            let options = configure(target.options(&application_name))?;
            let db = options.open().await?;
            let result = example(db.clone(), target).await;
            db.close().await; // stop the actors and close the pools, whatever happened
            result
        };
        let result = tokio::select! {
            result = run => result,
            Ok(Ok(())) = interrupted => Err("interrupted".into()),
        };
        if let Some((url, schema)) = cleanup {
            drop_schema(&url, &schema).await;
        }
        result
    }
    .await;
    if let Err(err) = outcome {
        eprintln!("{name} failed: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A throwaway cluster. Dropping it tears the cluster down, so that happens
/// on success, on error and on panic alike.
struct Cluster(PathBuf);

impl Cluster {
    fn up() -> Result<(Target, Cluster), BoxError> {
        // Short on purpose: DIR/s/.s.PGSQL.NNNNN must fit a 107-byte socket path.
        let cluster = Cluster(format!("/tmp/pgaq.{}", std::process::id()).into());
        let dir = &cluster.0;
        println!(
            "no DATABASE_URL: starting a throwaway cluster in {}",
            dir.display()
        );
        // The guard exists before the script runs: a half-started cluster goes too.
        let status = cluster_sh("up", dir)?;
        if !status.success() {
            return Err(format!("scripts/cluster.sh up failed ({status})").into());
        }
        let env = std::fs::read_to_string(dir.join("env"))?;
        let var = |key: &str| {
            env.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} is missing from {}/env", dir.display()))
        };
        let (write, read) = (var("PGACTOR_PRIMARY_URL")?, var("PGACTOR_REPLICA_URL")?);
        Ok((
            Target {
                write,
                read,
                schema: None,
            },
            cluster,
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        println!("tearing down the throwaway cluster");
        if !matches!(cluster_sh("down", &self.0), Ok(s) if s.success()) {
            let dir = self.0.display();
            eprintln!("warning: teardown failed; run scripts/cluster.sh down {dir}");
        }
    }
}

/// `scripts/cluster.sh CMD DIR`. Its progress goes to our stderr; `up` also
/// prints the env file on stdout, which we read from DIR/env instead.
fn cluster_sh(cmd: &str, dir: &Path) -> std::io::Result<ExitStatus> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh");
    let mut command = Command::new(script);
    command.arg(cmd).arg(dir).stdout(Stdio::null()).status()
}

/// The schema is ours alone (a random name): drop it to leave nothing
/// behind. pgactor has no raw-SQL call, so the driver runs this one statement.
async fn drop_schema(url: &str, schema: &str) {
    // Quietly: the NOTICE listing what cascades is noise here. IF EXISTS:
    // Ctrl-C may come before the adapter created the schema.
    let sql = format!(
        "SET client_min_messages = warning; SET lock_timeout = '10s'; \
         DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    );
    let dropped = async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        // After Ctrl-C, statements the example had sent (AutoMigrate, say)
        // still run on the server and may deadlock with the drop: retry.
        for _ in 0..5 {
            match client.batch_execute(&sql).await {
                Err(e) if e.as_db_error().is_some() => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                done => return done,
            }
        }
        client.batch_execute(&sql).await
    };
    match dropped.await {
        Ok(()) => println!("dropped schema {schema}"),
        Err(e) => {
            let why = e
                .as_db_error()
                .map_or(e.to_string(), |db| db.message().into());
            eprintln!("warning: could not drop schema {schema}: {why}");
        }
    }
}
