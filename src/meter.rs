//! The `metrics` feature: each operation's duration in a histogram, and
//! the pool statistics as gauges and counters, through the `metrics`
//! crate facade to whatever recorder the application installs.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use metrics::{Label, Unit};

use crate::error::Error;
use crate::stats::{Kind, Stats};

/// The histogram of operation durations, in seconds: the OpenTelemetry
/// database client metric.
pub(crate) const OPERATION_DURATION: &str = "db.client.operation.duration";

/// How often the pool statistics are published: gauges are at most this
/// old when read.
pub const METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// Record one operation's duration `took`, labelled by what it was and,
/// when it failed, how (`error`).
pub(crate) fn operation(
    name: &'static str,
    table: &str,
    role: &'static str,
    namespace: &Arc<str>,
    took: Duration,
    error: Option<&Error>,
) {
    let mut labels = Vec::with_capacity(7);
    labels.push(Label::from_static_parts("db.system.name", "postgresql"));
    labels.push(Label::new("db.namespace", namespace.clone()));
    labels.push(Label::from_static_parts("db.operation.name", name));
    if !table.is_empty() {
        labels.push(Label::new("db.collection.name", table.to_owned()));
    }
    labels.push(Label::from_static_parts("pgactor.role", role));
    if let Some(err) = error {
        labels.push(Label::from_static_parts("error.type", err.code()));
        if let Some(state) = err.sqlstate() {
            labels.push(Label::new(
                "db.response.status_code",
                state.code().to_owned(),
            ));
        }
    }
    metrics::histogram!(OPERATION_DURATION, labels).record(took.as_secs_f64());
}

/// Publish `stats()` every [`METRICS_INTERVAL`] until it answers `None`
/// (the adapter is closing or gone), on a task of its own, each sample
/// labelled with the adapter's `namespace` too (two adapters in one
/// process publish apart).
pub(crate) fn spawn_publisher(
    namespace: Arc<str>,
    stats: impl Fn() -> Option<Stats> + Send + 'static,
) {
    tokio::spawn(async move {
        let mut described = false;
        let mut ticks = tokio::time::interval(METRICS_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(stats) = stats() else { break };
            if !described {
                describe(&stats);
                described = true;
            }
            publish(&stats, &namespace);
        }
    });
}

/// Give the recorder every metric's unit and description, once.
fn describe(stats: &Stats) {
    metrics::describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "Duration of database client operations."
    );
    for family in stats.families() {
        match family.kind {
            Kind::Gauge => metrics::describe_gauge!(family.name, family.help),
            Kind::Counter => metrics::describe_counter!(family.name, family.help),
            Kind::Seconds => metrics::describe_gauge!(family.name, Unit::Seconds, family.help),
        }
    }
}

/// Set every gauge and counter to its value in `stats`.
fn publish(stats: &Stats, namespace: &Arc<str>) {
    for family in stats.families() {
        for sample in family.samples {
            let labels: Vec<Label> = sample
                .labels
                .into_iter()
                .map(|(key, value)| match value {
                    Cow::Borrowed(value) => Label::from_static_parts(key, value),
                    Cow::Owned(value) => Label::new(key, value),
                })
                .chain([Label::new("db.namespace", namespace.clone())])
                .collect();
            match family.kind {
                Kind::Counter => {
                    metrics::counter!(family.name, labels).absolute(sample.value as u64)
                }
                Kind::Gauge | Kind::Seconds => {
                    metrics::gauge!(family.name, labels).set(sample.value)
                }
            }
        }
    }
}
