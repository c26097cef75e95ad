//! Pool statistics: what each pool holds now and what it has done.

use std::borrow::Cow;
use std::time::Duration;

/// A snapshot of the adapter's pools and transactions ([`crate::Db::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The write pool (the primary).
    pub write: PoolStats,
    /// The read pool: the replica's, the replicas' added together when
    /// there are several (each is in [`Stats::replicas`]), or the read
    /// pool on the primary when there is no read DSN.
    pub read: PoolStats,
    /// Transactions open now: each holds a write connection.
    pub open_transactions: u64,
    /// The replicas as last probed, together; `None` without a read DSN.
    /// With one replica, that replica.
    pub replica: Option<ReplicaStats>,
    /// Each replica as last probed, with its pool, in the order the read
    /// DSNs name them; empty without a read DSN.
    pub replicas: Vec<ReplicaServerStats>,
    /// The LISTEN/NOTIFY listener ([`crate::Db::subscribe`]).
    pub listener: ListenerStats,
}

/// The LISTEN/NOTIFY listener's health: whether its connection is up, what
/// it serves, and how often it reconnected or dropped notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Its connection is open and LISTENs on every channel with
    /// subscribers. `false` with `channels` above 0 means notifications are
    /// not being received: the listener is reconnecting (or cannot).
    /// `false` with no channels is normal: the listener connects on the
    /// first subscribe, and stays down while nobody is subscribed.
    pub connected: bool,
    /// Channels with subscribers now (at most
    /// [`crate::OpenOptions::max_channels`]).
    pub channels: usize,
    /// Subscriptions now: subscriber actors, counted once per channel.
    pub subscriptions: usize,
    /// Times the connection was opened again after being lost, since open.
    pub reconnects: u64,
    /// [`crate::Notification::Gap`]s sent, since open: one per subscription
    /// at each reconnection, and one per fall behind
    /// [`crate::OpenOptions::notification_buffer`].
    pub gaps: u64,
}

impl Stats {
    /// The statistics in the Prometheus text exposition format, ready to be
    /// served on `/metrics`. Gauges for what is true now, counters
    /// (`_total`) for what happened since open; pool metrics carry a `role`
    /// label, closings a `reason` label.
    ///
    /// ```
    /// # fn demo(db: pgactor::Db) {
    /// let text = db.stats().to_prometheus();
    /// assert!(text.contains("pgactor_pool_in_use{role=\"write\"}"));
    /// # }
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        for family in self.families() {
            let name = family.prometheus_name();
            let kind = match family.kind {
                Kind::Gauge => "gauge",
                Kind::Counter | Kind::Seconds => "counter",
            };
            out.push_str(&format!(
                "# HELP {name} {}\n# TYPE {name} {kind}\n",
                family.help
            ));
            for sample in &family.samples {
                let labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(key, value)| format!("{key}=\"{}\"", escaped(value)))
                    .collect();
                let labels = match labels.is_empty() {
                    true => String::new(),
                    false => format!("{{{}}}", labels.join(",")),
                };
                out.push_str(&format!("{name}{labels} {}\n", sample.value));
            }
        }
        out
    }

    /// Every pool, with the labels of its samples: the write pool, then
    /// each replica's (`role="read"`, `replica="host:port"`), or the read
    /// pool on the primary when there is no replica.
    fn pools(&self) -> Vec<(Labels, &PoolStats)> {
        let role = |role: &'static str| vec![("role", Cow::Borrowed(role))];
        let mut pools = vec![(role("write"), &self.write)];
        if self.replicas.is_empty() {
            pools.push((role("read"), &self.read));
        }
        for replica in &self.replicas {
            let mut labels = role("read");
            labels.push(("replica", Cow::Owned(replica.name.clone())));
            pools.push((labels, &replica.pool));
        }
        pools
    }

    /// Every metric, once: what [`Stats::to_prometheus`] renders and the
    /// `metrics` feature publishes.
    pub(crate) fn families(&self) -> Vec<Family> {
        let pools = self.pools();
        let per_pool = |value: &dyn Fn(&PoolStats) -> f64| {
            pools
                .iter()
                .map(|(labels, stats)| Sample {
                    labels: labels.clone(),
                    value: value(stats),
                })
                .collect()
        };
        let per_replica = |value: &dyn Fn(&ReplicaServerStats) -> f64| {
            self.replicas
                .iter()
                .map(|replica| Sample {
                    labels: vec![("replica", Cow::Owned(replica.name.clone()))],
                    value: value(replica),
                })
                .collect()
        };
        let one = |value: f64| {
            vec![Sample {
                labels: Vec::new(),
                value,
            }]
        };
        let flag = |on: bool| f64::from(u8::from(on));
        let closed = pools
            .iter()
            .flat_map(|(labels, stats)| {
                let c = stats.closed;
                [
                    ("max_lifetime", c.max_lifetime),
                    ("max_idle_time", c.max_idle_time),
                    ("max_idle_count", c.max_idle_count),
                    ("broken", c.broken),
                ]
                .map(|(reason, n)| {
                    let mut labels = labels.clone();
                    labels.push(("reason", Cow::Borrowed(reason)));
                    Sample {
                        labels,
                        value: n as f64,
                    }
                })
            })
            .collect();
        let listener = &self.listener;
        let mut families = vec![
            Family::new(
                "pgactor.pool.max_open",
                Kind::Gauge,
                "Most connections the pool opens.",
                per_pool(&|p| p.max_open as f64),
            ),
            Family::new(
                "pgactor.pool.open",
                Kind::Gauge,
                "Connections open now.",
                per_pool(&|p| p.open as f64),
            ),
            Family::new(
                "pgactor.pool.in_use",
                Kind::Gauge,
                "Connections checked out now.",
                per_pool(&|p| p.in_use as f64),
            ),
            Family::new(
                "pgactor.pool.shared",
                Kind::Gauge,
                "Connections that reads outside transactions share now (counted in in_use).",
                per_pool(&|p| p.shared as f64),
            ),
            Family::new(
                "pgactor.pool.idle",
                Kind::Gauge,
                "Connections open and idle now.",
                per_pool(&|p| p.idle as f64),
            ),
            Family::new(
                "pgactor.pool.waiting",
                Kind::Gauge,
                "Callers waiting for a connection now.",
                per_pool(&|p| p.waiting as f64),
            ),
            Family::new(
                "pgactor.pool.waits",
                Kind::Counter,
                "Checkouts that had to wait.",
                per_pool(&|p| p.waits_total as f64),
            ),
            Family::new(
                "pgactor.pool.wait_seconds",
                Kind::Seconds,
                "Time spent waiting for connections.",
                per_pool(&|p| p.wait_time_total.as_secs_f64()),
            ),
            Family::new(
                "pgactor.pool.refused",
                Kind::Counter,
                "Operations refused because max_queued were already waiting.",
                per_pool(&|p| p.refused_total as f64),
            ),
            Family::new(
                "pgactor.pool.statements_evicted",
                Kind::Counter,
                "Prepared statements closed to keep a connection's statement cache within its size.",
                per_pool(&|p| p.statements_evicted as f64),
            ),
            Family::new(
                "pgactor.pool.reaper_up",
                Kind::Gauge,
                "1 while the pool's reaper task (closing expired and surplus idle connections) runs.",
                per_pool(&|p| flag(p.reaper_running)),
            ),
            Family::new(
                "pgactor.pool.closed",
                Kind::Counter,
                "Connections closed, by reason.",
                closed,
            ),
            Family::new(
                "pgactor.open_transactions",
                Kind::Gauge,
                "Transactions open now.",
                one(self.open_transactions as f64),
            ),
            Family::new(
                "pgactor.listener.connected",
                Kind::Gauge,
                "1 when the LISTEN connection is open and listens on every channel.",
                one(flag(listener.connected)),
            ),
            Family::new(
                "pgactor.listener.channels",
                Kind::Gauge,
                "Channels with subscribers.",
                one(listener.channels as f64),
            ),
            Family::new(
                "pgactor.listener.subscriptions",
                Kind::Gauge,
                "Subscriber actors, once per channel.",
                one(listener.subscriptions as f64),
            ),
            Family::new(
                "pgactor.listener.reconnects",
                Kind::Counter,
                "Times the LISTEN connection was opened again after being lost.",
                one(listener.reconnects as f64),
            ),
            Family::new(
                "pgactor.listener.gaps",
                Kind::Counter,
                "Gap messages sent to subscribers (notifications may have been lost).",
                one(listener.gaps as f64),
            ),
        ];
        if let Some(replica) = &self.replica {
            families.extend([
                Family::new(
                    "pgactor.replica.up",
                    Kind::Gauge,
                    "1 when the replica was reachable and following the primary at a recent probe.",
                    per_replica(&|r| flag(r.up)),
                ),
                Family::new(
                    "pgactor.replica.promoted",
                    Kind::Gauge,
                    "1 when the replica left recovery: it no longer follows the primary and serves no reads.",
                    per_replica(&|r| flag(r.promoted)),
                ),
                Family::new(
                    "pgactor.replica.lag_seconds",
                    Kind::Gauge,
                    "Time since the primary had flushed WAL the replica has not replayed.",
                    per_replica(&|r| r.lag.as_secs_f64()),
                ),
                Family::new(
                    "pgactor.replica.probe_age_seconds",
                    Kind::Gauge,
                    "Time since the last probe that reached the replica.",
                    per_replica(&|r| r.probe_age.as_secs_f64()),
                ),
                Family::new(
                    "pgactor.replica.in_flight",
                    Kind::Gauge,
                    "Operations running on the replica now.",
                    per_replica(&|r| r.in_flight as f64),
                ),
                Family::new(
                    "pgactor.replica.reads",
                    Kind::Counter,
                    "Operations sent to the replica.",
                    per_replica(&|r| r.reads as f64),
                ),
                Family::new(
                    "pgactor.replica.primary_reads",
                    Kind::Counter,
                    "Reads the primary served instead of a replica.",
                    one(replica.primary_reads as f64),
                ),
            ]);
        }
        families
    }
}

/// A label value as the text format writes it: backslash, double quote
/// and newline escaped.
fn escaped(value: &str) -> Cow<'_, str> {
    match value.contains(['\\', '"', '\n']) {
        false => Cow::Borrowed(value),
        true => Cow::Owned(
            value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n"),
        ),
    }
}

/// What one metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// What is true now.
    Gauge,
    /// A count since open.
    Counter,
    /// Seconds since open: a counter in the text; a gauge in the `metrics`
    /// facade, whose counters count whole units.
    Seconds,
}

/// One metric and its samples.
#[derive(Debug)]
pub(crate) struct Family {
    /// Its name in the `metrics` facade (`pgactor.pool.in_use`).
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
    pub(crate) samples: Vec<Sample>,
}

/// A sample's labels: names, and values mostly fixed (a replica's name is not).
pub(crate) type Labels = Vec<(&'static str, Cow<'static, str>)>;

/// One value of a [`Family`], with its labels.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) labels: Labels,
    pub(crate) value: f64,
}

impl Family {
    fn new(name: &'static str, kind: Kind, help: &'static str, samples: Vec<Sample>) -> Family {
        Family {
            name,
            kind,
            help,
            samples,
        }
    }

    /// Its name in the Prometheus text: dots become underscores, and a
    /// counter's ends in `_total` (`pgactor_pool_waits_total`).
    fn prometheus_name(&self) -> String {
        let name = self.name.replace('.', "_");
        match self.kind {
            Kind::Gauge => name,
            Kind::Counter | Kind::Seconds => name + "_total",
        }
    }
}

/// The replicas as last seen, together ([`Stats::replica`]); with one
/// replica, that replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStats {
    /// A replica is up: the last probe reached it, it was following the
    /// primary, and that probe is recent (no older than the watch's
    /// staleness bound: a monitor that stopped probing reads down, never
    /// healthy). With several replicas, at least one is.
    pub up: bool,
    /// How far its replay is behind the primary: the time since the
    /// primary had flushed WAL the replica has not replayed (zero when it
    /// had replayed all of it at the last probe). With several replicas,
    /// the least lag among those up (among all when none is).
    pub lag: Duration,
    /// Reads outside transactions served by the primary instead: no
    /// replica up, within `max_lag` and at a read's consistency token.
    pub primary_reads: u64,
    /// Time since the last probe that reached the replica (with several,
    /// any of them).
    pub probe_age: Duration,
}

/// One replica as last seen, with its pool ([`Stats::replicas`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaServerStats {
    /// `host:port`, as its read DSN names it (the `replica` label of its
    /// metrics).
    pub name: String,
    /// The last probe reached it, it was following the primary, and that
    /// probe is recent.
    pub up: bool,
    /// It was a standby and left recovery: it no longer follows the
    /// primary, and serves no reads while it stays out of recovery.
    pub promoted: bool,
    /// The time since the primary had flushed WAL it has not replayed.
    pub lag: Duration,
    /// Time since the last probe that reached it.
    pub probe_age: Duration,
    /// Operations running on it now: reads, raw queries and streams
    /// outside transactions. Reads go to the replica with the fewest.
    pub in_flight: usize,
    /// Operations sent to it since open.
    pub reads: u64,
    /// Its pool.
    pub pool: PoolStats,
}

/// One pool's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Most connections open at once (`max_open`).
    pub max_open: usize,
    /// Connections open now.
    pub open: usize,
    /// Connections checked out now (running a statement, held by a
    /// transaction, or serving shared reads).
    pub in_use: usize,
    /// Of those, connections that reads outside transactions share now
    /// ([`crate::OpenOptions::shared_reads`]; always 0 without it).
    pub shared: usize,
    /// Connections open and idle now.
    pub idle: usize,
    /// Callers waiting for a connection now.
    pub waiting: usize,
    /// Checkouts that found no idle connection and had to wait, since open.
    pub waits_total: u64,
    /// Time spent in those waits, since open.
    pub wait_time_total: Duration,
    /// Operations refused at once because `max_queued` were already
    /// waiting for a connection, since open.
    pub refused_total: u64,
    /// Connections closed since open, by reason.
    pub closed: ClosedStats,
    /// Prepared statements closed on the server to keep a connection's
    /// statement cache within [`crate::OpenOptions::statement_cache_size`],
    /// since open. Steady growth means more distinct statement texts
    /// (filter or patch shapes) than the cache holds.
    pub statements_evicted: u64,
    /// Whether the pool's reaper task runs: the task that closes idle
    /// connections past `max_lifetime` or `max_idle_time` and beyond
    /// `max_idle` between checkouts. `false` only if it stopped while the
    /// pool is open (it panicked; an ERROR is logged): idle connections
    /// are then closed only when a checkout finds them expired.
    pub reaper_running: bool,
}

impl PoolStats {
    /// The numbers of two pools together (several replicas' read pools):
    /// each count added, the reaper running only if it runs in both.
    pub(crate) fn plus(mut self, other: &PoolStats) -> PoolStats {
        self.max_open += other.max_open;
        self.open += other.open;
        self.in_use += other.in_use;
        self.shared += other.shared;
        self.idle += other.idle;
        self.waiting += other.waiting;
        self.waits_total += other.waits_total;
        self.wait_time_total += other.wait_time_total;
        self.refused_total += other.refused_total;
        self.closed.max_lifetime += other.closed.max_lifetime;
        self.closed.max_idle_time += other.closed.max_idle_time;
        self.closed.max_idle_count += other.closed.max_idle_count;
        self.closed.broken += other.closed.broken;
        self.statements_evicted += other.statements_evicted;
        self.reaper_running &= other.reaper_running;
        self
    }
}

/// Connections closed, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedStats {
    /// Older than `max_lifetime` (less its jitter).
    pub max_lifetime: u64,
    /// Idle longer than `max_idle_time`.
    pub max_idle_time: u64,
    /// Beyond `max_idle` idle connections.
    pub max_idle_count: u64,
    /// Found closed, or discarded because its state was unknown (a cancel not
    /// confirmed, a transaction not ended cleanly).
    pub broken: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_one_family_per_metric_with_labels() {
        let pool = PoolStats {
            max_open: 20,
            open: 3,
            in_use: 2,
            shared: 1,
            idle: 1,
            waiting: 0,
            waits_total: 4,
            wait_time_total: Duration::from_millis(1500),
            refused_total: 7,
            closed: ClosedStats {
                broken: 2,
                ..ClosedStats::default()
            },
            statements_evicted: 5,
            reaper_running: true,
        };
        let replica = |name: &str, lag_ms| ReplicaServerStats {
            name: name.into(),
            up: true,
            promoted: false,
            lag: Duration::from_millis(lag_ms),
            probe_age: Duration::from_millis(500),
            in_flight: 3,
            reads: 11,
            pool: PoolStats {
                max_open: 40,
                ..pool.clone()
            },
        };
        let stats = Stats {
            write: pool.clone(),
            read: PoolStats {
                max_open: 80,
                ..pool.clone()
            },
            open_transactions: 1,
            replica: Some(ReplicaStats {
                up: true,
                lag: Duration::from_millis(250),
                primary_reads: 9,
                probe_age: Duration::from_millis(500),
            }),
            replicas: vec![replica("r1:5432", 250), replica("r\"2:5432", 750)],
            listener: ListenerStats {
                connected: true,
                channels: 3,
                subscriptions: 4,
                reconnects: 2,
                gaps: 6,
            },
        };
        let text = stats.to_prometheus();
        for line in [
            "# TYPE pgactor_pool_in_use gauge",
            "pgactor_pool_in_use{role=\"write\"} 2",
            "pgactor_pool_shared{role=\"read\",replica=\"r1:5432\"} 1",
            "pgactor_pool_max_open{role=\"read\",replica=\"r1:5432\"} 40",
            "pgactor_pool_max_open{role=\"read\",replica=\"r\\\"2:5432\"} 40",
            "pgactor_pool_wait_seconds_total{role=\"write\"} 1.5",
            "pgactor_pool_refused_total{role=\"read\",replica=\"r1:5432\"} 7",
            "pgactor_pool_statements_evicted_total{role=\"write\"} 5",
            "pgactor_pool_closed_total{role=\"read\",replica=\"r1:5432\",reason=\"broken\"} 2",
            "pgactor_pool_reaper_up{role=\"write\"} 1",
            "pgactor_open_transactions 1",
            "pgactor_replica_up{replica=\"r1:5432\"} 1",
            "pgactor_replica_promoted{replica=\"r1:5432\"} 0",
            "pgactor_replica_lag_seconds{replica=\"r1:5432\"} 0.25",
            "pgactor_replica_lag_seconds{replica=\"r\\\"2:5432\"} 0.75",
            "pgactor_replica_in_flight{replica=\"r1:5432\"} 3",
            "pgactor_replica_reads_total{replica=\"r1:5432\"} 11",
            "pgactor_replica_primary_reads_total 9",
            "pgactor_replica_probe_age_seconds{replica=\"r1:5432\"} 0.5",
            "pgactor_listener_connected 1",
            "pgactor_listener_channels 3",
            "pgactor_listener_subscriptions 4",
            "pgactor_listener_reconnects_total 2",
            "pgactor_listener_gaps_total 6",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(text.matches("# TYPE pgactor_pool_in_use ").count(), 1);
        // The read pools summed are not a sample of their own beside each replica's.
        assert!(
            !text.contains("pgactor_pool_max_open{role=\"read\"}"),
            "{text}"
        );
        // Without a replica, the read pool on the primary.
        let alone = Stats {
            replica: None,
            replicas: Vec::new(),
            ..stats
        };
        let text = alone.to_prometheus();
        assert!(
            text.contains("pgactor_pool_max_open{role=\"read\"} 80\n"),
            "{text}"
        );
        assert!(!text.contains("pgactor_replica"), "{text}");
    }

    #[test]
    fn two_pools_add_up() {
        let pool = PoolStats {
            max_open: 4,
            open: 3,
            in_use: 2,
            shared: 1,
            idle: 1,
            waiting: 1,
            waits_total: 4,
            wait_time_total: Duration::from_millis(1500),
            refused_total: 7,
            closed: ClosedStats {
                broken: 2,
                max_lifetime: 1,
                max_idle_time: 3,
                max_idle_count: 4,
            },
            statements_evicted: 5,
            reaper_running: true,
        };
        let stopped = PoolStats {
            reaper_running: false,
            ..pool.clone()
        };
        let both = pool.clone().plus(&stopped);
        assert_eq!(
            both,
            PoolStats {
                max_open: 8,
                open: 6,
                in_use: 4,
                shared: 2,
                idle: 2,
                waiting: 2,
                waits_total: 8,
                wait_time_total: Duration::from_secs(3),
                refused_total: 14,
                closed: ClosedStats {
                    broken: 4,
                    max_lifetime: 2,
                    max_idle_time: 6,
                    max_idle_count: 8,
                },
                statements_evicted: 10,
                reaper_running: false,
            }
        );
    }
}
