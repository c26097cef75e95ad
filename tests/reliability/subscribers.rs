//! A subscriber slower than its notifications (catalogue: buffers between
//! a fast producer and a slow consumer): a ractor mailbox has no bound, so
//! the listener counts each subscription's notifications sent and not yet
//! taken. Past `notification_buffer` the subscriber gets a `Gap` and
//! nothing more until it has caught up, and the process's memory stays
//! flat however many notifications come.

use std::time::Duration;

use pgactor::{Notification, OpenOptions, SessionConfig};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use crate::common::{observer, primary_url, unique_schema};
use crate::exhaustion::rss_kib;
use crate::figures::{serial, Figures};

/// Notifications a subscription may have sent and not yet taken, here.
const BUFFER: usize = 100;
/// Notifications sent while the slow subscriber is stuck.
const SENT: usize = 20_000;
/// Bytes of each payload.
const PAYLOAD: usize = 1_000;
/// A guard against hanging forever, never a timing check.
const PATIENCE: Duration = Duration::from_secs(60);
/// Times the listener's connection is cut while the subscriber is stuck.
const RECONNECTS: usize = 3;

/// What a subscriber saw: the payload of a message (the message itself,
/// and its place in the backlog, dropped at once), or a gap.
#[derive(Debug, PartialEq)]
enum Seen {
    Message(String),
    Gap,
}

/// A subscriber that takes nothing until its gate opens, then reports
/// each notification to the test.
struct Gated;

impl Actor for Gated {
    type Msg = Notification;
    type State = (watch::Receiver<bool>, UnboundedSender<Seen>);
    type Arguments = (watch::Receiver<bool>, UnboundedSender<Seen>);

    async fn pre_start(
        &self,
        _: ActorRef<Notification>,
        args: Self::State,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _: ActorRef<Notification>,
        msg: Notification,
        (gate, tx): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = gate.wait_for(|open| *open).await;
        let seen = match msg {
            Notification::Message { payload, .. } => Seen::Message(payload),
            Notification::Gap { .. } => Seen::Gap,
            _ => return Ok(()),
        };
        let _ = tx.send(seen);
        Ok(())
    }
}

async fn gated(gate: watch::Receiver<bool>) -> (ActorRef<Notification>, UnboundedReceiver<Seen>) {
    let (tx, rx) = unbounded_channel();
    let (actor, _) = Actor::spawn(None, Gated, (gate, tx)).await.expect("spawn");
    (actor, rx)
}

async fn next(rx: &mut UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a notification must come")
        .expect("the subscriber stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_subscriber_holds_at_most_the_notification_buffer_and_gets_a_gap() {
    let _serial = serial().await;
    let mut figures = Figures::new(
        "9a",
        "20,000 notifications of 1 KB to a stuck subscriber, notification_buffer 100, 3 reconnections",
    );
    let mut bounded = flood(BUFFER).await;
    let mut slow_seen = bounded.seen;
    figures.operations = SENT as u64;
    // Each reconnection owes the subscriber a Gap; the one it has not
    // taken yet covers them.
    for _ in 0..RECONNECTS {
        let killed: i64 = bounded
            .sender
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1 AND query LIKE 'LISTEN%'",
                &[&bounded.app],
            )
            .await
            .expect("terminate the listener")
            .get(0);
        assert_eq!(killed, 1, "one listener session");
        assert_eq!(next(&mut bounded.barrier).await, Seen::Gap);
    }

    // Let it take what it was sent: BUFFER messages, in order, then the Gap.
    bounded.open_gate.send(true).expect("open the gate");
    let mut messages = 0;
    while let Seen::Message(payload) = next(&mut slow_seen).await {
        messages += 1;
        assert!(
            messages <= BUFFER,
            "the stuck subscriber was sent more than {BUFFER} notifications"
        );
        assert_eq!(
            payload,
            format!("{messages:x>PAYLOAD$}"),
            "messages arrive in order"
        );
    }
    figures.acknowledged = messages as u64;
    assert_eq!(messages, BUFFER, "{BUFFER} notifications before the Gap");
    // One Gap: the reconnections' were covered by it.
    // Caught up, it gets what comes next.
    bounded
        .sender
        .execute("SELECT pg_notify($1, 'after the gap')", &[&bounded.channel])
        .await
        .expect("notify");
    assert_eq!(
        next(&mut slow_seen).await,
        Seen::Message("after the gap".into())
    );
    bounded.db.close().await;
    // The same flood without a bound, for the memory it takes.
    let unbounded = flood(usize::MAX).await;
    unbounded.db.close().await;
    figures.note(format!(
        "delivered before the Gap {messages}, dropped {}, Gaps 1 (listener reconnected {RECONNECTS} times meanwhile), next notification delivered: yes; \
         RSS growth {} KiB vs {} KiB with no bound",
        SENT - messages,
        bounded.growth_kib,
        unbounded.growth_kib
    ));
    figures.publish();
}

/// An adapter with a stuck subscriber, after `SENT` notifications to it.
struct Flood {
    db: pgactor::Db,
    channel: String,
    sender: tokio_postgres::Client,
    open_gate: watch::Sender<bool>,
    seen: UnboundedReceiver<Seen>,
    /// What the subscriber of the marker channel sees.
    barrier: UnboundedReceiver<Seen>,
    /// The adapter's application_name.
    app: String,
    /// The process's RSS growth while the listener handed them out.
    growth_kib: u64,
}

/// Send `SENT` notifications to a subscriber that takes none, with the
/// adapter's `notification_buffer` at `buffer`; answer once the listener
/// has handed every one of them out.
async fn flood(buffer: usize) -> Flood {
    let channel = unique_schema("slow");
    let marker = unique_schema("marker");
    let app = unique_schema("subs");
    let db = OpenOptions::new(primary_url())
        .session(SessionConfig {
            application_name: Some(app.clone()),
            ..SessionConfig::default()
        })
        .notification_buffer(buffer)
        .open()
        .await
        .expect("open");
    let (open_gate, gate) = watch::channel(false);
    let (slow, slow_seen) = gated(gate).await;
    db.subscribe(&channel, slow.clone())
        .await
        .expect("subscribe");
    // On a channel of its own: once it has its one notification, the
    // listener has handed out every one sent before it.
    let (_, always_open) = watch::channel(true);
    let (barrier, mut barrier_seen) = gated(always_open).await;
    db.subscribe(&marker, barrier.clone())
        .await
        .expect("subscribe");

    let sender = observer(&primary_url()).await;
    let before = rss_kib();
    sender
        .execute(
            "SELECT pg_notify($1, lpad(i::text, $2::int, 'x')) FROM generate_series(1, $3::int) AS i",
            &[&channel, &(PAYLOAD as i32), &(SENT as i32)],
        )
        .await
        .expect("notify");
    sender
        .execute("SELECT pg_notify($1, 'done')", &[&marker])
        .await
        .expect("marker");
    assert_eq!(next(&mut barrier_seen).await, Seen::Message("done".into()));
    let growth_kib = rss_kib().saturating_sub(before);
    Flood {
        db,
        channel,
        sender,
        open_gate,
        seen: slow_seen,
        barrier: barrier_seen,
        app,
        growth_kib,
    }
}
