//! LISTEN/NOTIFY as actor messages: subscriber actors get each NOTIFY sent
//! from an outside session, in order; a lost listener connection comes back
//! with a `Gap`; the listener's session is found in `pg_stat_activity` by a
//! unique `application_name` and by its `LISTEN` statement. Every test uses
//! channels of its own, since tests share one server.

use std::time::Duration;

use pgactor::{
    Db, DbMsg, ErrorKind, ListenerStats, Notification, OpenOptions, PoolConfig, TxOptions,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::support::db::{named_session, unique_app_name};
use crate::support::kill::terminate;
use crate::support::observer::{observer, session_pids, sessions_named};
use crate::support::topology::{primary_url, Topology};
use crate::support::wait::{eventually, ready};

/// A subscriber actor that forwards what it receives to the test.
struct Forward;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Forward {
    type Msg = Notification;
    type State = UnboundedSender<Notification>;
    type Arguments = UnboundedSender<Notification>;

    async fn pre_start(
        &self,
        _: ActorRef<Notification>,
        tx: UnboundedSender<Notification>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _: ActorRef<Notification>,
        msg: Notification,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send(msg);
        Ok(())
    }
}

/// A subscriber actor and what it receives.
pub(crate) async fn subscriber() -> (ActorRef<Notification>, UnboundedReceiver<Notification>) {
    let (tx, rx) = unbounded_channel();
    let (actor, _) = Actor::spawn(None, Forward, tx).await.expect("spawn");
    (actor, rx)
}

/// A subscriber of `channels`.
async fn subscribed(
    db: &Db,
    channels: &[&str],
) -> (ActorRef<Notification>, UnboundedReceiver<Notification>) {
    let (actor, rx) = subscriber().await;
    for channel in channels {
        db.subscribe(channel, actor.clone())
            .await
            .expect("subscribe");
    }
    (actor, rx)
}

/// How long to wait for a notification that must come: generous, for a
/// loaded machine and a reconnect backoff of up to 5 s. Never a timing check.
const PATIENCE: Duration = Duration::from_secs(30);

async fn next(rx: &mut UnboundedReceiver<Notification>) -> Notification {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("no notification came")
        .expect("the subscriber stopped")
}

/// A channel name no other test uses.
fn unique_channel(prefix: &str) -> String {
    unique_app_name(prefix)
}

/// An adapter on the primary whose sessions carry `app` as application_name.
async fn open(app: &str) -> Db {
    OpenOptions::new(primary_url())
        .session(named_session(app))
        .open()
        .await
        .expect("open")
}

/// An outside session that sends notifications, and its backend pid.
async fn sender() -> (tokio_postgres::Client, i32) {
    let client = observer(&primary_url()).await;
    let pid = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    (client, pid)
}

async fn notify(client: &tokio_postgres::Client, channel: &str, payload: &str) {
    client
        .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
        .await
        .expect("pg_notify");
}

fn message(channel: &str, payload: &str, process_id: i32) -> Notification {
    Notification::Message {
        channel: channel.into(),
        payload: payload.into(),
        process_id,
        backlog: Default::default(),
    }
}

/// The listener's sessions among those named `app`: their last statement
/// was a LISTEN or UNLISTEN.
async fn listener_sessions(obs: &tokio_postgres::Client, app: &str) -> Vec<(i32, String)> {
    let mut sessions = sessions_named(obs, app).await;
    sessions.retain(|(_, query)| query.contains("LISTEN "));
    sessions
}

async fn listener_pids(obs: &tokio_postgres::Client, app: &str) -> Vec<i32> {
    let sessions = listener_sessions(obs, app).await;
    sessions.into_iter().map(|(pid, _)| pid).collect()
}

/// Wait until no listener session named `app` is left.
async fn no_listener_left(app: &str) {
    let obs = observer(&primary_url()).await;
    eventually("the listener session ends", || async {
        let left = listener_pids(&obs, app).await;
        ready(left.is_empty(), left)
    })
    .await;
}

#[tokio::test]
async fn each_notify_reaches_the_subscriber_in_order_with_channel_and_payload() {
    let db = open("pgactor_listen").await;
    let channel = unique_channel("orders");
    let (sub, mut rx) = subscriber().await;
    db.subscribe(&channel, sub.clone())
        .await
        .expect("subscribe");
    // Subscribing twice is one subscription: each NOTIFY arrives once.
    db.subscribe(&channel, sub).await.expect("subscribe again");

    let (client, pid) = sender().await;
    for payload in ["one", "two", "", "three: with spaces, 'quotes' and é"] {
        notify(&client, &channel, payload).await;
    }
    for payload in ["one", "two", "", "three: with spaces, 'quotes' and é"] {
        assert_eq!(next(&mut rx).await, message(&channel, payload, pid));
    }
    // A NOTIFY inside a transaction arrives at commit, and not at all on rollback.
    client
        .batch_execute(&format!(
            "BEGIN; NOTIFY \"{channel}\", 'rolled back'; ROLLBACK; \
             BEGIN; NOTIFY \"{channel}\", 'committed'; COMMIT;"
        ))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, message(&channel, "committed", pid));
    db.close().await;
}

#[tokio::test]
async fn two_subscribers_of_a_channel_both_get_it_and_another_channel_does_not() {
    let db = open("pgactor_listen").await;
    let (shared, other) = (unique_channel("shared"), unique_channel("other"));
    let (_a, mut rx_a) = subscribed(&db, &[&shared]).await;
    let (_c, mut rx_c) = subscribed(&db, &[&other]).await;
    // The same through the supervisor's messages, as ractor code sends them.
    let (b, mut rx_b) = subscriber().await;
    ractor::call!(db.actor(), DbMsg::Subscribe, shared.clone(), b)
        .expect("the supervisor answers")
        .expect("subscribe");

    let (client, pid) = sender().await;
    notify(&client, &shared, "for a and b").await;
    notify(&client, &other, "for c").await;
    assert_eq!(next(&mut rx_a).await, message(&shared, "for a and b", pid));
    assert_eq!(next(&mut rx_b).await, message(&shared, "for a and b", pid));
    // Sent after the first and delivered in order: c's first message shows
    // it did not get the other channel's.
    assert_eq!(next(&mut rx_c).await, message(&other, "for c", pid));
    db.close().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_to_that_subscriber_only() {
    let db = open("pgactor_listen").await;
    let (channel, control) = (unique_channel("data"), unique_channel("control"));
    let (a, mut rx_a) = subscribed(&db, &[&channel, &control]).await;
    let (b, mut rx_b) = subscribed(&db, &[&channel]).await;
    let (client, pid) = sender().await;
    notify(&client, &channel, "before").await;
    assert_eq!(next(&mut rx_a).await, message(&channel, "before", pid));
    assert_eq!(next(&mut rx_b).await, message(&channel, "before", pid));

    db.unsubscribe(&channel, &a).await.expect("unsubscribe");
    notify(&client, &channel, "after").await;
    notify(&client, &control, "marker").await;
    // a still gets its other channel, and nothing of the one it left.
    assert_eq!(next(&mut rx_a).await, message(&control, "marker", pid));
    assert_eq!(next(&mut rx_b).await, message(&channel, "after", pid));

    // The last subscriber leaving UNLISTENs; unsubscribing again is fine.
    db.unsubscribe(&channel, &b).await.unwrap();
    db.unsubscribe(&channel, &b).await.unwrap();
    notify(&client, &channel, "nobody").await;
    notify(&client, &control, "marker 2").await;
    assert_eq!(next(&mut rx_a).await, message(&control, "marker 2", pid));
    b.stop(None);
    db.close().await;
}

#[tokio::test]
async fn subscribers_that_stopped_are_dropped_and_the_others_still_get_it() {
    let app = unique_app_name("listen_gone");
    let db = open(&app).await;
    let channel = unique_channel("stops");
    let (gone, _rx_gone) = subscribed(&db, &[&channel]).await;
    let (stays, mut rx) = subscribed(&db, &[&channel]).await;
    gone.stop_and_wait(None, None).await.unwrap();
    let (client, pid) = sender().await;
    notify(&client, &channel, "one").await;
    notify(&client, &channel, "two").await;
    assert_eq!(next(&mut rx).await, message(&channel, "one", pid));
    assert_eq!(next(&mut rx).await, message(&channel, "two", pid));

    // Once the last one is gone too, the next notification finds nobody:
    // the listener drops the channel and UNLISTENs.
    stays.stop_and_wait(None, None).await.unwrap();
    notify(&client, &channel, "three").await;
    let obs = observer(&primary_url()).await;
    let unlisten = format!("UNLISTEN \"{channel}\"");
    eventually("the listener UNLISTENs", || async {
        let last: Vec<String> = listener_sessions(&obs, &app)
            .await
            .into_iter()
            .map(|(_, query)| query)
            .collect();
        ready(last == [unlisten.clone()], last)
    })
    .await;
    db.close().await;
}

#[tokio::test]
async fn bad_channel_names_are_invalid_input_and_send_no_sql() {
    let app = unique_app_name("listen_badchan");
    let db = open(&app).await;
    let obs = observer(&primary_url()).await;
    let before = sessions_named(&obs, &app).await;
    let (sub, _rx) = subscriber().await;
    let long = "c".repeat(64);
    for bad in ["", "bad-name", "1st", "x\"; NOTIFY y; --", "sp ace", &long] {
        let err = db.subscribe(bad, sub.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
        let err = db.unsubscribe(bad, &sub).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    // No new session, no statement on the old ones.
    assert_eq!(
        sessions_named(&obs, &app).await,
        before,
        "refused names sent SQL"
    );
    // The witness works: a valid name opens the listener.
    db.subscribe(&unique_channel("ok"), sub).await.unwrap();
    assert_ne!(sessions_named(&obs, &app).await, before);
    db.close().await;
}

#[tokio::test]
async fn the_listener_opens_on_the_first_subscribe_with_the_sessions_application_name() {
    let app = unique_app_name("listen_lazy");
    let db = open(&app).await;
    let obs = observer(&primary_url()).await;
    let pools = session_pids(&obs, &app).await;
    assert!(listener_pids(&obs, &app).await.is_empty());
    let (sub, _rx) = subscriber().await;
    db.subscribe(&unique_channel("first"), sub.clone())
        .await
        .unwrap();
    let listeners = listener_pids(&obs, &app).await;
    assert_eq!(listeners.len(), 1, "one listener session named {app}");
    let now = session_pids(&obs, &app).await;
    let mut expected: Vec<i32> = pools.into_iter().chain(listeners.clone()).collect();
    expected.sort();
    assert_eq!(now, expected, "the pools' sessions and one more");
    // More channels share the one connection.
    db.subscribe(&unique_channel("second"), sub).await.unwrap();
    assert_eq!(listener_pids(&obs, &app).await, listeners);
    db.close().await;
}

#[tokio::test]
async fn a_terminated_listener_session_comes_back_with_a_gap_then_notifications() {
    let app = unique_app_name("listen_gap");
    let db = open(&app).await;
    let channel = unique_channel("gap");
    let (_sub, mut rx) = subscribed(&db, &[&channel]).await;
    let obs = observer(&primary_url()).await;
    let killed = listener_pids(&obs, &app).await;
    assert_eq!(killed.len(), 1);
    assert_eq!(terminate(&obs, &killed).await, 1);

    assert_eq!(
        next(&mut rx).await,
        Notification::Gap {
            channel: channel.clone(),
            backlog: Default::default(),
        }
    );
    // The Gap comes once LISTEN is in force again: nothing sent now is lost.
    let (client, pid) = sender().await;
    notify(&client, &channel, "after the gap").await;
    assert_eq!(next(&mut rx).await, message(&channel, "after the gap", pid));
    let now = listener_pids(&obs, &app).await;
    assert!(now.len() == 1 && now != killed, "a new session: {now:?}");
    db.close().await;
}

#[tokio::test]
async fn close_leaves_no_listener_session() {
    let app = unique_app_name("listen_close");
    let db = open(&app).await;
    let (_sub, _rx) = subscribed(&db, &[&unique_channel("closing")]).await;
    let obs = observer(&primary_url()).await;
    assert_eq!(listener_pids(&obs, &app).await.len(), 1);
    db.close().await;
    no_listener_left(&app).await;
    let (other, _rx) = subscriber().await;
    let err = db
        .subscribe(&unique_channel("late"), other)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn during_a_graceful_shutdown_subscribers_still_get_notifications_and_subscribes_are_refused()
{
    let app = unique_app_name("listen_shut");
    let db = open(&app).await;
    let channel = unique_channel("shut");
    let (_sub, mut rx) = subscribed(&db, &[&channel]).await;
    // An open transaction keeps the shutdown in its grace period.
    let tx = db.begin(TxOptions::default()).await.unwrap();
    let closing = {
        let db = db.clone();
        tokio::spawn(async move { db.close_within(Duration::from_secs(20)).await })
    };
    let (late, _rx) = subscriber().await;
    eventually("subscribes are refused", || async {
        match db.subscribe(&channel, late.clone()).await {
            Err(err) if err.kind() == ErrorKind::Closed => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (client, pid) = sender().await;
    notify(&client, &channel, "while closing").await;
    assert_eq!(next(&mut rx).await, message(&channel, "while closing", pid));
    tx.commit().await.unwrap();
    closing.await.unwrap();
    no_listener_left(&app).await;
}

/// Restarting the primary: the listener reconnects after it is back and
/// sends a Gap; a subscribe while it is down is refused as Unavailable,
/// and not kept.
#[tokio::test]
async fn the_listener_follows_a_primary_restart() {
    let topo = Topology::up();
    let db = OpenOptions::new(topo.primary()).open().await.expect("open");
    let channel = unique_channel("restart");
    let (_sub, mut rx) = subscribed(&db, &[&channel]).await;

    let data = topo.var("PGACTOR_PRIMARY_DATA").to_owned();
    topo.pg_ctl(&data, &["stop", "-m", "fast"]);
    // A channel not yet listened to: the subscribe needs the connection.
    let fresh = unique_channel("fresh");
    let (during, mut rx_during) = subscriber().await;
    let refused = db.subscribe(&fresh, during.clone()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");
    topo.pg_ctl(&data, &["start"]);

    assert_eq!(
        next(&mut rx).await,
        Notification::Gap {
            channel: channel.clone(),
            backlog: Default::default(),
        }
    );
    let client = observer(topo.primary()).await;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let control = unique_channel("control");
    db.subscribe(&control, during).await.unwrap();
    notify(&client, &channel, "back").await;
    notify(&client, &fresh, "not subscribed").await;
    notify(&client, &control, "marker").await;
    assert_eq!(next(&mut rx).await, message(&channel, "back", pid));
    // The refused subscription was not kept: its first message is the marker.
    assert_eq!(next(&mut rx_during).await, message(&control, "marker", pid));
    db.close().await;
}

/// A subscriber actor that stops while its channel is quiet is forgotten
/// by the listener's periodic sweep (every `SUBSCRIBER_SWEEP`), and its
/// channel UNLISTENed, without any notification or subscribe to notice it.
#[tokio::test]
async fn a_subscriber_that_stops_on_a_quiet_channel_is_unlistened_without_another_subscribe_or_notification(
) {
    let app = unique_app_name("listen_sweep");
    let db = open(&app).await;
    let channel = unique_channel("quiet");
    let (sub, _rx) = subscribed(&db, &[&channel]).await;
    let stats = db.stats().listener;
    assert_eq!((stats.channels, stats.subscriptions), (1, 1), "{stats:?}");
    sub.stop_and_wait(None, None).await.unwrap();

    let obs = observer(&primary_url()).await;
    let unlisten = format!("UNLISTEN \"{channel}\"");
    eventually(
        "the listener UNLISTENs the stopped subscriber's channel",
        || async {
            let last: Vec<String> = listener_sessions(&obs, &app)
                .await
                .into_iter()
                .map(|(_, query)| query)
                .collect();
            let channels = db.stats().listener.channels;
            ready(
                last == [unlisten.clone()] && channels == 0,
                (last, channels),
            )
        },
    )
    .await;
    db.close().await;
}

/// The listener's health in `Stats`: down before anything subscribes, then
/// connected with its channels and subscriptions; a lost connection counts
/// one reconnection and a `Gap` per subscription.
#[tokio::test]
async fn listener_stats_show_its_connection_channels_subscriptions_reconnects_and_gaps() {
    let app = unique_app_name("listen_stats");
    let db = open(&app).await;
    assert_eq!(db.stats().listener, ListenerStats::default());
    let (a, b) = (unique_channel("sa"), unique_channel("sb"));
    let (_x, mut rx_x) = subscribed(&db, &[&a, &b]).await;
    let (_y, mut rx_y) = subscribed(&db, &[&a]).await;
    let up = ListenerStats {
        connected: true,
        channels: 2,
        subscriptions: 3,
        reconnects: 0,
        gaps: 0,
    };
    assert_eq!(db.stats().listener, up);

    let obs = observer(&primary_url()).await;
    let killed = listener_pids(&obs, &app).await;
    assert_eq!(killed.len(), 1);
    terminate(&obs, &killed).await;
    for rx in [&mut rx_x, &mut rx_y] {
        assert!(matches!(next(rx).await, Notification::Gap { .. }));
    }
    assert!(matches!(next(&mut rx_x).await, Notification::Gap { .. }));
    let back = ListenerStats {
        reconnects: 1,
        gaps: 3,
        ..up
    };
    assert_eq!(db.stats().listener, back);
    // The same through the supervisor's message, and as metrics.
    let stats = ractor::call!(db.actor(), DbMsg::Stats).expect("stats");
    assert_eq!(stats.listener, back);
    let text = stats.to_prometheus();
    for line in [
        "pgactor_listener_connected 1",
        "pgactor_listener_channels 2",
        "pgactor_listener_subscriptions 3",
        "pgactor_listener_reconnects_total 1",
        "pgactor_listener_gaps_total 3",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
    db.close().await;
    eventually("the closed listener reads down", || async {
        let stats = db.stats().listener;
        ready(!stats.connected, stats)
    })
    .await;
}

/// `subscribe` waits for the listener at most twice `connect_timeout` plus
/// 1 s, even when the listener has thousands of LISTENs to run before it:
/// then it answers `Timeout`, and the listener skips the subscribe when it
/// gets to it (not kept). `unsubscribe` is bounded the same way.
#[tokio::test]
async fn a_subscribe_queued_behind_a_busy_listener_answers_timeout_within_its_bound_and_is_not_kept(
) {
    const QUEUED: usize = 30_000;
    let connect_timeout = Duration::from_millis(500);
    let bound = connect_timeout * 2 + Duration::from_secs(1);
    let db = OpenOptions::new(primary_url())
        .write_pool(PoolConfig {
            connect_timeout: Some(connect_timeout),
            ..PoolConfig::default()
        })
        .max_channels(QUEUED + 2)
        .open()
        .await
        .expect("open");
    let (sub, mut rx) = subscriber().await;
    let first = unique_channel("first");
    db.subscribe(&first, sub.clone()).await.expect("subscribe");
    // Thousands of subscribes ahead, each a LISTEN round trip.
    let prefix = unique_channel("queued");
    let mut answers = Vec::with_capacity(QUEUED);
    for i in 0..QUEUED {
        let (tx, answer) = ractor::concurrency::oneshot();
        let msg = DbMsg::Subscribe(format!("{prefix}_{i}"), sub.clone(), tx.into());
        db.actor().send_message(msg).expect("queued");
        answers.push(answer);
    }
    let late = unique_channel("late");
    let started = std::time::Instant::now();
    let err = db.subscribe(&late, sub.clone()).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("not kept"), "{err}");
    // The bound, and the timer's own lateness on a loaded machine.
    let slack = Duration::from_millis(500);
    assert!(waited <= bound + slack, "answered after {waited:?}");
    let started = std::time::Instant::now();
    let err = db.unsubscribe(&first, &sub).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() <= bound + slack);

    // Every queued subscribe is answered in turn, the late one was skipped,
    // and the unsubscribe was done after them.
    for answer in answers {
        let answered = tokio::time::timeout(PATIENCE, answer).await;
        answered
            .expect("answered")
            .expect("a reply")
            .expect("subscribed");
    }
    eventually("the unsubscribe is done", || async {
        let channels = db.stats().listener.channels;
        ready(channels == QUEUED, channels)
    })
    .await;
    let (client, pid) = sender().await;
    notify(&client, &late, "not subscribed").await;
    notify(&client, &format!("{prefix}_0"), "marker").await;
    let marker = message(&format!("{prefix}_0"), "marker", pid);
    assert_eq!(next(&mut rx).await, marker, "the late subscribe was kept");
    db.close().await;
}
