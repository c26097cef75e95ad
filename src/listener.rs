//! LISTEN/NOTIFY as actor messages: one listener actor per adapter, on one
//! dedicated connection to the primary (never a pooled one), fanning each
//! notification out to the subscriber actors of its channel.
//!
//! The supervisor spawns the listener on the first subscribe, so an adapter
//! that never subscribes opens no connection for it. The connection is
//! driven by a task of its own: tokio-postgres hands notifications out only
//! through `Connection::poll_message`, and the task puts each one in a
//! bounded [`Inbox`] with a [`ListenerMsg::Drain`] to the listener (one at
//! a time), then tells it when the connection ends. The
//! listener then reconnects with backoff (a `send_after` timer, never a
//! sleep in `handle`), LISTENs again on every channel that has subscribers
//! ([`LISTEN_CHUNK`] per round trip, each bounded by the connect timeout
//! and cancelled on the server past it), and sends each subscriber
//! [`Notification::Gap`].
//!
//! Every bound: at most `max_channels` channels; each subscription's
//! backlog within `notification_buffer`; stopped subscribers forgotten
//! every [`SUBSCRIBER_SWEEP`]; callers of subscribe and unsubscribe
//! answered within [`ListenerContext::answer_within`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use postgres_openssl::MakeTlsConnector;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_postgres::{AsyncMessage, Client, Connection};

use crate::config::{PoolerMode, SessionSettings};
use crate::error::{describe, Error, ErrorKind, Result};
use crate::retry::RetryPolicy;
use crate::schema::{quote_ident, validate_identifier};
use crate::stats::ListenerStats;
use crate::wire::{client_config, CancelTarget, Dsn, CANCEL_GRACE};

/// What a subscriber actor receives from [`crate::Db::subscribe`].
///
/// A subscriber is any ractor actor whose message type is `Notification`:
///
/// ```no_run
/// use pgactor::Notification;
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
///
/// struct OrderWatcher;
///
/// #[cfg_attr(feature = "async-trait", ractor::async_trait)]
/// impl Actor for OrderWatcher {
///     type Msg = Notification;
///     type State = ();
///     type Arguments = ();
///
///     async fn pre_start(&self, _: ActorRef<Notification>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
///
///     async fn handle(
///         &self,
///         _: ActorRef<Notification>,
///         msg: Notification,
///         _: &mut (),
///     ) -> Result<(), ActorProcessingErr> {
///         match msg {
///             Notification::Message { channel, payload, .. } => println!("{channel}: {payload}"),
///             // Some notifications may have been lost: re-read what they describe.
///             Notification::Gap { channel, .. } => println!("{channel}: re-reading the orders"),
///             _ => {}
///         }
///         Ok(())
///     }
/// }
///
/// # async fn demo(db: pgactor::Db) -> Result<(), Box<dyn std::error::Error>> {
/// let (watcher, _) = Actor::spawn(None, OrderWatcher, ()).await?;
/// db.subscribe("orders", watcher.clone()).await?;
/// // Any session: SELECT pg_notify('orders', 'A-1 shipped')
/// db.unsubscribe("orders", &watcher).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// A `NOTIFY` (or `pg_notify`) on a channel the actor subscribed to,
    /// delivered after the sending transaction committed, in commit order.
    Message {
        /// The channel, as subscribed.
        channel: String,
        /// The payload (`""` when none was given).
        payload: String,
        /// The backend process id of the session that sent it.
        process_id: i32,
        /// This message's place in its subscriber's backlog, freed when
        /// the message is dropped (match with `..` and ignore it).
        backlog: Backlog,
    },
    /// Notifications on `channel` may have been lost: re-read the state
    /// they describe. Sent when the listener's connection was lost and is
    /// back, LISTENing on `channel` again (every notification committed
    /// after the `Gap` arrives is delivered), and when this subscriber fell
    /// [`crate::OpenOptions::notification_buffer`] notifications behind on
    /// `channel`. Until it has taken the `Gap` (and everything sent before
    /// it), the listener sends it nothing more on `channel`, no other `Gap`
    /// included: the re-read on this one covers whatever is dropped
    /// meanwhile. So a slow subscriber cannot make the adapter's memory
    /// grow without bound.
    Gap {
        /// The channel, as subscribed.
        channel: String,
        /// This `Gap`'s place in its subscriber's backlog, as a message's.
        backlog: Backlog,
    },
}

/// A notification's place in its subscriber's backlog: the listener counts
/// the notifications of each subscription that were sent and not yet
/// dropped, and past [`crate::OpenOptions::notification_buffer`] sends a
/// [`Notification::Gap`] and nothing more until the subscriber has caught up. A message is dropped
/// once the subscriber's `handle` is done with it, unless the subscriber
/// keeps it (or its `Backlog`): then it still counts.
///
/// All `Backlog`s compare equal, so messages compare by their contents;
/// `Backlog::default()` counts in no backlog.
#[derive(Clone, Default)]
pub struct Backlog {
    _place: Option<Arc<Place>>,
}

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Backlog")
    }
}

impl PartialEq for Backlog {
    fn eq(&self, _: &Backlog) -> bool {
        true
    }
}

impl Eq for Backlog {}

/// One counted notification of a [`Queue`]: uncounted when the last clone
/// of its [`Backlog`] is dropped.
struct Place(Arc<Queue>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the listener knows of one subscription's backlog.
#[derive(Default)]
struct Queue {
    /// Notifications sent and not yet dropped by the subscriber.
    queued: AtomicUsize,
    /// The subscriber was sent a `Gap`, the last thing sent to it: nothing
    /// more is sent while `queued` is above 0 (the `Gap` not yet taken).
    /// Only the listener sets it.
    behind: AtomicBool,
}

/// Notifications each subscription may have sent and not yet taken unless
/// [`crate::OpenOptions::notification_buffer`] says otherwise; also how many
/// may wait for the listener actor itself before it stops reading its
/// connection.
pub const DEFAULT_NOTIFICATION_BUFFER: usize = 1024;

/// Channels the listener LISTENs on at most unless
/// [`crate::OpenOptions::max_channels`] says otherwise: past it a subscribe
/// to one more channel answers [`ErrorKind::Unavailable`].
pub const DEFAULT_MAX_CHANNELS: usize = 10_000;

/// Channels LISTENed per round trip when the listener (re)connects, each
/// round trip bounded by the connect timeout. PostgreSQL's LISTEN cost in
/// one session grows with the channels it already listens on (measured:
/// 5,000 channels in one batch 0.15 s, 20,000 1.28 s, 40,000 4.8 s), so one
/// batch of every channel could outlast any bound; 500 at a time stay far
/// below it.
pub(crate) const LISTEN_CHUNK: usize = 500;

/// How often the listener forgets the subscribers whose actors have
/// stopped, UNLISTENing channels left without any.
pub const SUBSCRIBER_SWEEP: Duration = Duration::from_secs(1);

/// What [`crate::Db::subscribe`] and [`crate::Db::unsubscribe`] wait for the
/// listener beyond twice the connect timeout (one connection attempt, then
/// the LISTEN).
pub(crate) const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Check a channel name before any SQL: a plain identifier
/// (`[A-Za-z_][A-Za-z0-9_$]*`, at most 63 bytes). It reaches `LISTEN` quoted,
/// so it is case-sensitive, exactly as `pg_notify`'s first argument is.
pub(crate) fn check_channel(channel: &str) -> Result<()> {
    validate_identifier(channel).map_err(|e| Error::invalid_input(format!("channel: {e}")))
}

/// The backoff between reconnection attempts: from 100 ms, doubling, at
/// most 5 s, with full jitter so many instances do not reconnect in step.
const RECONNECT: RetryPolicy = RetryPolicy {
    max_attempts: u32::MAX,
    base_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(5),
};

/// TCP keepalives of the listener's connection, unless the DSN sets its
/// own: a connection that only receives would otherwise never notice that
/// a firewall or NAT dropped it (the driver's default waits 2 h before the
/// first probe). A dead peer is noticed in about a minute.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// What the listener needs, kept by the supervisor so that a listener it
/// restarts takes over every subscription.
pub(crate) struct ListenerContext {
    /// The primary's driver configuration: the write DSN's, with the
    /// session's `application_name`, the connect timeout and keepalives.
    config: tokio_postgres::Config,
    /// The write pool's TLS connector: the listener's connection is
    /// encrypted and verified as the pool's are.
    connector: MakeTlsConnector,
    /// `user@host:port/db`, for messages.
    target: String,
    /// Bound on opening the connection, and on each LISTEN or UNLISTEN.
    timeout: Duration,
    /// `false` where LISTEN cannot work (behind a transaction-pooling
    /// bouncer): subscribe then answers [`ErrorKind::Config`].
    pub(crate) listen_allowed: bool,
    /// Who listens to what. Only the listener actor changes it, never
    /// across an await; it lives here rather than in the actor's state so
    /// that it outlives a listener that fails.
    subscriptions: Mutex<Subscriptions>,
    /// Most notifications a subscription may have sent and not yet taken,
    /// and most that wait for the listener actor.
    pub(crate) buffer: usize,
    /// Most channels with subscribers.
    pub(crate) max_channels: usize,
    /// Where a LISTEN that ran past its bound is cancelled.
    cancel: CancelTarget,
    /// The health figures ([`ListenerStats`]).
    figures: Figures,
}

/// What the listener has done, for [`ListenerStats`].
#[derive(Default)]
struct Figures {
    /// The connection is open and LISTENs on every channel.
    connected: AtomicBool,
    /// A connection was ever open: the next ones are reconnections.
    ever_connected: AtomicBool,
    reconnects: AtomicU64,
    gaps: AtomicU64,
}

impl ListenerContext {
    /// The listener of the primary at `dsn`, opening its connection within `connect_timeout`.
    pub(crate) fn new(
        dsn: &Dsn,
        connector: MakeTlsConnector,
        session: &SessionSettings,
        connect_timeout: Duration,
    ) -> ListenerContext {
        let mut config = client_config(dsn, session, connect_timeout);
        if config.get_keepalives_idle() == tokio_postgres::Config::new().get_keepalives_idle() {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
        ListenerContext {
            cancel: CancelTarget::new(&config, connector.clone()),
            config,
            connector,
            target: dsn.target.clone(),
            timeout: connect_timeout,
            listen_allowed: session.pooler == PoolerMode::Direct,
            subscriptions: Mutex::default(),
            buffer: DEFAULT_NOTIFICATION_BUFFER,
            max_channels: DEFAULT_MAX_CHANNELS,
            figures: Figures::default(),
        }
    }

    /// How long a caller of subscribe or unsubscribe waits for the
    /// listener: one connection attempt and one LISTEN, each bounded by
    /// the connect timeout, and [`ANSWER_GRACE`].
    pub(crate) fn answer_within(&self) -> Duration {
        self.timeout.saturating_mul(2).saturating_add(ANSWER_GRACE)
    }

    /// Cancel on the server what the connection of `token` runs: its
    /// client stopped waiting and is closing it, and the backend would
    /// otherwise run on (a batch of LISTENs for seconds) before it noticed.
    /// Sent from a task of its own, within [`CANCEL_GRACE`]; answers whether
    /// the server took the request.
    fn cancel_abandoned(&self, token: tokio_postgres::CancelToken) -> JoinHandle<bool> {
        let target = self.cancel.clone();
        tokio::spawn(async move {
            // Bounded: the cancel's own connection may hang too.
            let sent = tokio::time::timeout(CANCEL_GRACE, target.send(token)).await;
            let sent = matches!(sent, Ok(Ok(_)));
            if !sent {
                tracing::warn!(
                    target: "pgactor.listener",
                    "could not cancel the listener's statements that ran past the connect timeout"
                );
            }
            sent
        })
    }

    /// The listener's health now.
    pub(crate) fn stats(&self) -> ListenerStats {
        let (channels, subscriptions) = {
            let table = self.table();
            let subscriptions = table.channels.values().map(Vec::len).sum();
            (table.channels.len(), subscriptions)
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerStats {
            connected: self.figures.connected.load(Ordering::Relaxed),
            channels,
            subscriptions,
            reconnects: load(&self.figures.reconnects),
            gaps: load(&self.figures.gaps),
        }
    }

    /// Whether a subscription to `channel` may be taken: a valid name, and
    /// a connection where LISTEN works.
    pub(crate) fn admit(&self, channel: &str) -> Result<()> {
        check_channel(channel)?;
        if !self.listen_allowed {
            return Err(Error::config(
                "LISTEN/NOTIFY needs a direct connection to the primary; \
                 it does not work through a transaction-pooling PgBouncer",
            ));
        }
        Ok(())
    }

    /// Record a subscription without LISTEN, as a failed listener leaves them.
    #[cfg(test)]
    pub(crate) fn keep_for_test(&self, channel: &str, subscriber: ActorRef<Notification>) {
        self.table().add(channel.into(), subscriber);
    }

    /// Whether any actor is subscribed to anything.
    pub(crate) fn has_subscriptions(&self) -> bool {
        !self.table().channels.is_empty()
    }

    fn table(&self) -> MutexGuard<'_, Subscriptions> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The subscribers of each channel. A channel is present only while it
/// has subscribers, and while the listener is connected every present
/// channel is LISTENed to.
#[derive(Default)]
struct Subscriptions {
    channels: HashMap<String, Vec<Subscriber>>,
}

/// A subscriber actor on one channel, and its backlog there.
#[derive(Clone)]
struct Subscriber {
    actor: ActorRef<Notification>,
    queue: Arc<Queue>,
}

impl Subscriber {
    /// A counted place in this subscriber's backlog.
    fn place(&self) -> Backlog {
        self.queue.queued.fetch_add(1, Ordering::Relaxed);
        Backlog {
            _place: Some(Arc::new(Place(self.queue.clone()))),
        }
    }

    /// Whether a `Gap` sent earlier is still waiting to be taken; then it
    /// is the last thing sent, and everything sent after it is dropped.
    fn gap_pending(&self) -> bool {
        self.queue.behind.load(Ordering::Relaxed) && self.queue.queued.load(Ordering::Relaxed) > 0
    }

    /// Send a `Gap` on `channel`, unless one is still pending (its re-read
    /// comes later and covers this one's), counting it in `gaps`; `false`
    /// when the actor is gone.
    fn gap(&self, channel: &str, gaps: &AtomicU64) -> bool {
        if self.gap_pending() {
            return true;
        }
        self.queue.behind.store(true, Ordering::Relaxed);
        let gap = Notification::Gap {
            channel: channel.to_owned(),
            backlog: self.place(),
        };
        let sent = self.send_message(gap).is_ok();
        if sent {
            gaps.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }
}

impl std::ops::Deref for Subscriber {
    type Target = ActorRef<Notification>;
    fn deref(&self) -> &ActorRef<Notification> {
        &self.actor
    }
}

impl Subscriptions {
    /// Add `subscriber` to `channel`, once however often it subscribes.
    fn add(&mut self, channel: String, subscriber: ActorRef<Notification>) {
        let subscribers = self.channels.entry(channel).or_default();
        if !subscribers
            .iter()
            .any(|s| s.get_id() == subscriber.get_id())
        {
            subscribers.push(Subscriber {
                actor: subscriber,
                queue: Arc::default(),
            });
        }
    }

    /// Remove the subscriber `id` from `channel`; `true` when that left the
    /// channel without subscribers.
    fn remove(&mut self, channel: &str, id: ActorId) -> bool {
        let Some(subscribers) = self.channels.get_mut(channel) else {
            return false;
        };
        subscribers.retain(|s| s.get_id() != id);
        if subscribers.is_empty() {
            self.channels.remove(channel);
            return true;
        }
        false
    }

    /// Whether the actor `id` is subscribed to `channel`.
    fn has(&self, channel: &str, id: ActorId) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|subs| subs.iter().any(|s| s.get_id() == id))
    }

    /// The subscribers whose actors have stopped, with their channel.
    fn stopped(&self) -> Vec<(String, ActorId)> {
        self.channels
            .iter()
            .flat_map(|(c, subs)| {
                subs.iter()
                    .filter(|s| s.get_status() == ractor::ActorStatus::Stopped)
                    .map(move |s| (c.clone(), s.get_id()))
            })
            .collect()
    }

    fn of(&self, channel: &str) -> Vec<Subscriber> {
        self.channels.get(channel).cloned().unwrap_or_default()
    }

    fn every(&self) -> Vec<(String, Subscriber)> {
        self.channels
            .iter()
            .flat_map(|(c, subs)| subs.iter().map(|s| (c.clone(), s.clone())))
            .collect()
    }
}

/// The listener's messages: from the supervisor (subscribe, unsubscribe),
/// from its connection task, and from its backoff timer.
pub(crate) enum ListenerMsg {
    /// Answered once LISTEN on the channel is in force.
    Subscribe(String, ActorRef<Notification>, RpcReplyPort<Result<()>>),
    Unsubscribe(String, ActorId, RpcReplyPort<Result<()>>),
    /// The connection of this generation is open; its task drives it,
    /// handing notifications over through the inbox.
    Connected(u64, Client, Inbox),
    /// The connection of this generation could not be opened.
    ConnectFailed(u64, Error),
    /// Notifications wait in the inbox of the connection of this generation.
    Drain(u64),
    /// The connection of this generation ended, for this reason.
    Ended(u64, String),
    /// The backoff timer: connect again if still down.
    Reconnect,
    /// The sweep timer: forget the subscribers that have stopped.
    Sweep,
    /// LISTEN on the next chunk of channels on the connection of this
    /// generation, after the notifications that came meanwhile.
    Relisten(u64),
}

/// A subscribe waiting for the connection to open.
type Waiting = (String, ActorRef<Notification>, RpcReplyPort<Result<()>>);

/// The notifications one connection received, waiting for the listener:
/// at most `notification_buffer` of them. The connection task stops
/// reading its connection while the inbox is full, so the server's
/// notification queue holds the rest.
pub(crate) struct Inbox {
    notifications: mpsc::Receiver<tokio_postgres::Notification>,
    /// A [`ListenerMsg::Drain`] is on its way: the connection task sends
    /// no other until the listener takes it, so they never pile up.
    drain_sent: Arc<AtomicBool>,
}

enum Link {
    /// No connection and none being opened (a reconnect may be scheduled).
    Down,
    /// The connection task is connecting.
    Connecting(AbortHandle),
    /// LISTEN and UNLISTEN run on the client; the task drives the
    /// connection, and its notifications wait in the inbox.
    Up(Client, AbortHandle, Inbox),
}

pub(crate) struct ListenerState {
    ctx: Arc<ListenerContext>,
    link: Link,
    /// Numbers the connections, so that news of an old one is not taken
    /// for news of the current one.
    generation: u64,
    /// Connection attempts failed in a row, for the backoff.
    failures: u32,
    /// Subscribes that came while there was no connection (or while it
    /// was LISTENing again): answered when it opens (`Ok`, once LISTEN is
    /// in force) or fails (`Unavailable`).
    waiting: Vec<Waiting>,
    /// A new connection LISTENing again on every channel, one chunk per
    /// message; `None` once it is done (or when there is no connection).
    relisten: Option<Relisten>,
}

/// The LISTENs a new connection still owes, one [`LISTEN_CHUNK`] per
/// [`ListenerMsg::Relisten`]: between two, the listener takes the
/// notifications that came meanwhile (on the channels already LISTENed
/// again), so its connection task, which stops reading past
/// `notification_buffer` of them, is never stuck behind the next answer.
struct Relisten {
    /// Channels still to LISTEN on.
    pending: BTreeSet<String>,
    /// The subscriptions when the connection opened: each gets a `Gap` once
    /// every channel is LISTENed again.
    before: Vec<(String, Subscriber)>,
}

/// Whatever way the listener goes (stop, kill, panic), an open
/// connection closes when its `Client` is dropped with the state: the task
/// then sends Terminate and ends. One still being opened is abandoned.
impl Drop for ListenerState {
    fn drop(&mut self) {
        self.ctx.figures.connected.store(false, Ordering::Relaxed);
        if let Link::Connecting(task) = &self.link {
            task.abort();
        }
    }
}

pub(crate) struct Listener;

#[cfg_attr(feature = "async-trait", ractor::async_trait)]
impl Actor for Listener {
    type Msg = ListenerMsg;
    type State = ListenerState;
    type Arguments = Arc<ListenerContext>;

    async fn pre_start(
        &self,
        _: ActorRef<ListenerMsg>,
        ctx: Arc<ListenerContext>,
    ) -> Result<ListenerState, ActorProcessingErr> {
        Ok(ListenerState {
            ctx,
            link: Link::Down,
            generation: 0,
            failures: 0,
            waiting: Vec::new(),
            relisten: None,
        })
    }

    /// A listener started in place of one that failed finds subscriptions
    /// already there: it connects at once, and they get a `Gap`.
    async fn post_start(
        &self,
        myself: ActorRef<ListenerMsg>,
        state: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        if state.ctx.has_subscriptions() {
            state.connect(&myself);
        }
        myself.send_after(SUBSCRIBER_SWEEP, || ListenerMsg::Sweep);
        Ok(())
    }

    /// Handled in order. The awaits here are LISTEN and UNLISTEN on the
    /// listener's own connection, each bounded by the connect timeout;
    /// connecting happens in the connection task. Failures are answered,
    /// never returned (an `Err` would kill the actor).
    async fn handle(
        &self,
        myself: ActorRef<ListenerMsg>,
        msg: ListenerMsg,
        state: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ListenerMsg::Subscribe(channel, subscriber, reply) => {
                state.subscribe(&myself, channel, subscriber, reply).await;
            }
            ListenerMsg::Unsubscribe(channel, id, reply) => {
                state.unsubscribe(&myself, &channel, id).await;
                let _ = reply.send(Ok(()));
            }
            ListenerMsg::Connected(generation, client, inbox) => {
                state.connected(&myself, generation, client, inbox).await;
            }
            ListenerMsg::ConnectFailed(generation, err) => {
                state.connect_failed(&myself, generation, err);
            }
            ListenerMsg::Drain(generation) => state.drain(&myself, generation).await,
            ListenerMsg::Ended(generation, reason) => {
                if generation == state.generation && matches!(state.link, Link::Up(..)) {
                    state.lost(&myself, &reason);
                }
            }
            ListenerMsg::Reconnect => {
                if matches!(state.link, Link::Down) && state.ctx.has_subscriptions() {
                    state.connect(&myself);
                }
            }
            ListenerMsg::Relisten(generation) => {
                state.relisten(&myself, generation).await;
            }
            ListenerMsg::Sweep => {
                state.sweep(&myself).await;
                // The next one once this one is done: never a pile of them.
                myself.send_after(SUBSCRIBER_SWEEP, || ListenerMsg::Sweep);
            }
        }
        Ok(())
    }
}

impl ListenerState {
    /// Start opening a connection in a task of its own.
    fn connect(&mut self, myself: &ActorRef<ListenerMsg>) {
        self.generation += 1;
        let task = tokio::spawn(run_connection(
            self.ctx.clone(),
            myself.clone(),
            self.generation,
        ));
        self.link = Link::Connecting(task.abort_handle());
    }

    /// Subscribe, unless the caller has given up already (then nothing is
    /// done) or the channel would be one past `max_channels`. A
    /// subscription whose caller gave up while its LISTEN ran is undone.
    async fn subscribe(
        &mut self,
        myself: &ActorRef<ListenerMsg>,
        channel: String,
        subscriber: ActorRef<Notification>,
        reply: RpcReplyPort<Result<()>>,
    ) {
        if reply.is_closed() {
            return;
        }
        if self.at_limit(&channel) {
            // Stopped subscribers may hold channels nobody needs any more.
            self.sweep(myself).await;
            if self.at_limit(&channel) {
                let _ = reply.send(Err(Error::unavailable(format!(
                    "the listener already listens on {} channels (max_channels); \
                     unsubscribe from one first",
                    self.ctx.max_channels
                ))));
                return;
            }
        }
        if let Some(relisten) = &mut self.relisten {
            // Answered once every channel is LISTENed again, this one included.
            relisten.pending.insert(channel.clone());
            self.waiting.push((channel, subscriber, reply));
            return;
        }
        match self.link {
            Link::Up(..) => {
                // A channel with subscribers is already LISTENed to.
                let listening = self.ctx.table().channels.contains_key(&channel);
                let result = match listening {
                    true => Ok(()),
                    false => self.execute(myself, &listen(&channel)).await,
                };
                let id = subscriber.get_id();
                let added = result.is_ok() && !self.ctx.table().has(&channel, id);
                if result.is_ok() {
                    self.ctx.table().add(channel.clone(), subscriber);
                }
                if reply.send(result).is_err() && added {
                    // Nobody learns of it: not kept.
                    self.unsubscribe(myself, &channel, id).await;
                }
            }
            Link::Connecting(_) => self.waiting.push((channel, subscriber, reply)),
            Link::Down => {
                self.waiting.push((channel, subscriber, reply));
                self.connect(myself);
            }
        }
    }

    /// Whether `channel` would be one past `max_channels`: a new channel
    /// (neither subscribed nor waiting) with `max_channels` wanted already.
    fn at_limit(&self, channel: &str) -> bool {
        let table = self.ctx.table();
        if table.channels.contains_key(channel) {
            return false;
        }
        // A cheap bound first: the subscribes waiting are usually few.
        if table.channels.len() + self.waiting.len() < self.ctx.max_channels {
            return false;
        }
        let waiting: HashSet<&str> = self
            .waiting
            .iter()
            .map(|(c, _, _)| c.as_str())
            .filter(|c| !table.channels.contains_key(*c))
            .collect();
        !waiting.contains(channel) && table.channels.len() + waiting.len() >= self.ctx.max_channels
    }

    /// Forget the subscribers whose actors have stopped, UNLISTENing the
    /// channels left without any (in chunks, each bounded), so that the
    /// subscriptions of short-lived actors on quiet channels do not pile up.
    async fn sweep(&mut self, myself: &ActorRef<ListenerMsg>) {
        let stopped = self.ctx.table().stopped();
        if stopped.is_empty() {
            return;
        }
        let emptied: Vec<String> = {
            let mut table = self.ctx.table();
            stopped
                .into_iter()
                .filter(|(channel, id)| table.remove(channel, *id))
                .map(|(channel, _)| channel)
                .collect()
        };
        tracing::debug!(
            target: "pgactor.listener",
            channels = emptied.len(),
            "forgot stopped subscribers"
        );
        for chunk in emptied.chunks(LISTEN_CHUNK) {
            if !matches!(self.link, Link::Up(..)) {
                // The next connection LISTENs only on the channels still wanted.
                return;
            }
            let sql = chunk.iter().map(|c| unlisten(c)).collect::<Vec<_>>();
            let sql = sql.join("; ");
            let _ = self.execute(myself, &sql).await;
        }
    }

    /// Remove a subscriber; UNLISTEN when its channel has no other. A
    /// failed UNLISTEN is not the caller's problem: notifications on a
    /// channel without subscribers are dropped.
    async fn unsubscribe(&mut self, myself: &ActorRef<ListenerMsg>, channel: &str, id: ActorId) {
        // A subscribe still waiting for the connection took effect and was
        // undone at once.
        for (_, _, reply) in extract(&mut self.waiting, |(c, s, _)| {
            c == channel && s.get_id() == id
        }) {
            let _ = reply.send(Ok(()));
        }
        let emptied = self.ctx.table().remove(channel, id);
        if emptied && matches!(self.link, Link::Up(..)) {
            let _ = self.execute(myself, &unlisten(channel)).await;
        }
    }

    /// The connection is open: LISTEN on every channel wanted,
    /// [`LISTEN_CHUNK`] per round trip, each bounded by the connect timeout
    /// (see [`Relisten`]), then `Gap` to those who were subscribed before
    /// and `Ok` to those who were waiting (and still are).
    async fn connected(
        &mut self,
        myself: &ActorRef<ListenerMsg>,
        generation: u64,
        client: Client,
        inbox: Inbox,
    ) {
        if generation != self.generation || !matches!(self.link, Link::Connecting(_)) {
            // A connection nobody waits for any more: dropping the client closes it.
            return;
        }
        if let Link::Connecting(task) = std::mem::replace(&mut self.link, Link::Down) {
            self.link = Link::Up(client, task, inbox);
        }
        // Those who gave up waiting get nothing, and their channels no LISTEN.
        self.waiting.retain(|(_, _, reply)| !reply.is_closed());
        let before = self.ctx.table().every();
        let pending = before
            .iter()
            .map(|(c, _)| c.clone())
            .chain(self.waiting.iter().map(|(c, _, _)| c.clone()))
            .collect();
        self.relisten = Some(Relisten { pending, before });
        self.relisten(myself, generation).await;
    }

    /// LISTEN on the next chunk of channels still wanted; then ask for the
    /// next one, or, when none is left, tell the subscribers.
    async fn relisten(&mut self, myself: &ActorRef<ListenerMsg>, generation: u64) {
        if generation != self.generation || !matches!(self.link, Link::Up(..)) {
            return;
        }
        let Some(relisten) = &mut self.relisten else {
            return;
        };
        let mut chunk = Vec::with_capacity(LISTEN_CHUNK);
        {
            let table = self.ctx.table();
            let waiting: HashSet<&str> = self.waiting.iter().map(|(c, _, _)| c.as_str()).collect();
            while chunk.len() < LISTEN_CHUNK {
                let Some(channel) = relisten.pending.pop_first() else {
                    break;
                };
                // Unsubscribed meanwhile: no LISTEN.
                if table.channels.contains_key(&channel) || waiting.contains(channel.as_str()) {
                    chunk.push(channel);
                }
            }
        }
        let more = !relisten.pending.is_empty();
        if !chunk.is_empty() {
            let sql: String = chunk.iter().map(|c| listen(c)).collect();
            if let Err(err) = self.execute(myself, &sql).await {
                // Not every channel is listened to: this connection will not do.
                if matches!(self.link, Link::Up(..)) {
                    self.lost(myself, &err.to_string());
                }
                self.fail_waiting(&err);
                return;
            }
        }
        if more {
            let _ = myself.send_message(ListenerMsg::Relisten(generation));
            return;
        }
        let Some(Relisten { before, .. }) = self.relisten.take() else {
            return;
        };
        self.failures = 0;
        let figures = &self.ctx.figures;
        figures.connected.store(true, Ordering::Relaxed);
        if figures.ever_connected.swap(true, Ordering::Relaxed) {
            figures.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(
            target: "pgactor.listener",
            target_db = %self.ctx.target,
            subscriptions = before.len(),
            "listener connected"
        );
        for (channel, subscriber) in before {
            let id = subscriber.get_id();
            let still = self.ctx.table().has(&channel, id);
            if still && !subscriber.gap(&channel, &self.ctx.figures.gaps) {
                self.unsubscribe(myself, &channel, id).await;
            }
        }
        for (channel, subscriber, reply) in std::mem::take(&mut self.waiting) {
            let id = subscriber.get_id();
            let added = !self.ctx.table().has(&channel, id);
            self.ctx.table().add(channel.clone(), subscriber);
            if reply.send(Ok(())).is_err() && added {
                // Its caller gave up meanwhile: not kept.
                self.unsubscribe(myself, &channel, id).await;
            }
        }
    }

    fn connect_failed(&mut self, myself: &ActorRef<ListenerMsg>, generation: u64, err: Error) {
        if generation != self.generation || !matches!(self.link, Link::Connecting(_)) {
            return;
        }
        self.link = Link::Down;
        tracing::warn!(target: "pgactor.listener", error = %err, "listener cannot connect");
        self.fail_waiting(&err);
        self.retry_later(myself);
    }

    /// The connection is gone (or no longer trusted): close it, and
    /// reconnect after a backoff while anyone is subscribed.
    fn lost(&mut self, myself: &ActorRef<ListenerMsg>, reason: &str) {
        self.ctx.figures.connected.store(false, Ordering::Relaxed);
        if self.relisten.take().is_some() {
            // Subscribes that came during the re-LISTEN wait for no other connection.
            let err = Error::unavailable(format!("the listener's connection was lost: {reason}"));
            self.fail_waiting(&err);
        }
        if let Link::Up(_, task, _) = std::mem::replace(&mut self.link, Link::Down) {
            task.abort();
        }
        tracing::warn!(target: "pgactor.listener", reason, "listener connection lost");
        self.retry_later(myself);
    }

    fn retry_later(&mut self, myself: &ActorRef<ListenerMsg>) {
        if !self.ctx.has_subscriptions() {
            // Nobody to serve: the next subscribe connects.
            return;
        }
        self.failures = self.failures.saturating_add(1);
        myself.send_after(RECONNECT.backoff(self.failures), || ListenerMsg::Reconnect);
    }

    /// Answer every waiting subscribe with `err`'s kind and message.
    fn fail_waiting(&mut self, err: &Error) {
        for (_, _, reply) in std::mem::take(&mut self.waiting) {
            let _ = reply.send(Err(Error::new(err.kind(), err.to_string())));
        }
    }

    /// Hand the notifications waiting in the inbox of the connection of
    /// `generation` to their subscribers; then forget the subscribers
    /// found gone.
    async fn drain(&mut self, myself: &ActorRef<ListenerMsg>, generation: u64) {
        let Link::Up(_, _, inbox) = &mut self.link else {
            return;
        };
        if generation != self.generation {
            return;
        }
        // Cleared first: a notification that comes after the last one
        // taken here sends another Drain.
        inbox.drain_sent.store(false, Ordering::Relaxed);
        let mut gone = false;
        while let Ok(notification) = inbox.notifications.try_recv() {
            gone |= !deliver(&self.ctx, &notification);
        }
        if gone {
            self.sweep(myself).await;
        }
    }

    /// Run LISTEN or UNLISTEN statements on the connection, bounded by the
    /// timeout: a connection that breaks or does not answer in time is
    /// closed and replaced, and statements that ran past the bound are
    /// cancelled on the server (a backend busy with them would otherwise
    /// run on, unaware that its client left, and slow the next connection).
    ///
    /// Meanwhile the notifications that come are delivered: the answer
    /// follows them on the connection, and the connection task reads no
    /// further than a full inbox.
    async fn execute(&mut self, myself: &ActorRef<ListenerMsg>, sql: &str) -> Result<()> {
        let ctx = &self.ctx;
        let Link::Up(client, _, inbox) = &mut self.link else {
            return Err(Error::unavailable("the listener has no connection"));
        };
        let client: &Client = client;
        let outcome = {
            let running = client.batch_execute(sql);
            // Bounded: one round trip on a healthy connection.
            let bound = tokio::time::sleep(ctx.timeout);
            tokio::pin!(running, bound);
            loop {
                tokio::select! {
                    biased;
                    answer = &mut running => break Some(answer),
                    Some(notification) = inbox.notifications.recv() => {
                        // A subscriber found gone is left to the sweep.
                        deliver(ctx, &notification);
                    }
                    _ = &mut bound => break None,
                }
            }
        };
        let err = match outcome {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => Error::from_statement(e, false),
            None => {
                ctx.cancel_abandoned(client.cancel_token());
                Error::unavailable(format!(
                    "the listener's connection did not answer within {:?}",
                    ctx.timeout
                ))
            }
        };
        let broken = err.kind() == ErrorKind::Unavailable || client.is_closed();
        if broken {
            self.lost(myself, &err.to_string());
        }
        Err(err.prefixed("listener"))
    }
}

/// Hand a notification to each subscriber of its channel, within its
/// backlog; `false` when some subscriber's actor is gone.
///
/// A subscriber with `buffer` notifications sent and not yet taken gets a
/// `Gap` instead, and nothing more until it has taken them all and the
/// `Gap` (a re-read on it covers every notification dropped before). So
/// its mailbox holds at most `buffer` notifications and one `Gap`.
fn deliver(ctx: &ListenerContext, notification: &tokio_postgres::Notification) -> bool {
    let channel = notification.channel();
    let mut all_there = true;
    for subscriber in ctx.table().of(channel) {
        let sent = if subscriber.gap_pending() {
            continue;
        } else if subscriber.queue.queued.load(Ordering::Relaxed) >= ctx.buffer {
            tracing::warn!(
                target: "pgactor.listener",
                channel,
                subscriber = %subscriber.get_id(),
                buffer = ctx.buffer,
                "a subscriber fell behind: its notifications are dropped until it catches up, and it gets a Gap"
            );
            subscriber.gap(channel, &ctx.figures.gaps)
        } else {
            subscriber.queue.behind.store(false, Ordering::Relaxed);
            let message = Notification::Message {
                channel: channel.to_owned(),
                payload: notification.payload().to_owned(),
                process_id: notification.process_id(),
                backlog: subscriber.place(),
            };
            subscriber.send_message(message).is_ok()
        };
        all_there &= sent;
    }
    all_there
}

/// Take the items that match out of `items`.
fn extract<T>(items: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> Vec<T> {
    let (taken, kept) = std::mem::take(items)
        .into_iter()
        .partition(|item| matches(item));
    *items = kept;
    taken
}

fn listen(channel: &str) -> String {
    format!("LISTEN {};", quote_ident(channel))
}

fn unlisten(channel: &str) -> String {
    format!("UNLISTEN {}", quote_ident(channel))
}

/// Open the listener's connection, then drive it until it ends, telling
/// the listener each step.
async fn run_connection(
    ctx: Arc<ListenerContext>,
    listener: ActorRef<ListenerMsg>,
    generation: u64,
) {
    let connecting = ctx.config.connect(ctx.connector.clone());
    // Bounded as a whole: the driver's connect_timeout covers only the TCP connect.
    let (client, connection) = match tokio::time::timeout(ctx.timeout, connecting).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            let message = format!(
                "the listener cannot connect to {}: {}",
                ctx.target,
                describe(&e)
            );
            let err = Error::unavailable(message).with_source(e);
            let _ = listener.send_message(ListenerMsg::ConnectFailed(generation, err));
            return;
        }
        Err(_) => {
            let err = Error::unavailable(format!(
                "the listener's connection to {} took longer than {:?}",
                ctx.target, ctx.timeout
            ));
            let _ = listener.send_message(ListenerMsg::ConnectFailed(generation, err));
            return;
        }
    };
    let (inbox, notifications) = mpsc::channel(ctx.buffer.clamp(1, Semaphore::MAX_PERMITS));
    let drain_sent = Arc::new(AtomicBool::new(false));
    let inbox_end = Inbox {
        notifications,
        drain_sent: drain_sent.clone(),
    };
    if listener
        .send_message(ListenerMsg::Connected(generation, client, inbox_end))
        .is_err()
    {
        // The listener is gone; dropping the connection closes it.
        return;
    }
    let drains = Drains {
        listener: &listener,
        generation,
        sent: &drain_sent,
    };
    let reason = drive(connection, &inbox, &drains).await;
    let _ = listener.send_message(ListenerMsg::Ended(generation, reason));
}

/// How the connection task tells the listener that notifications wait.
struct Drains<'a> {
    listener: &'a ActorRef<ListenerMsg>,
    generation: u64,
    sent: &'a AtomicBool,
}

impl Drains<'_> {
    /// Send a [`ListenerMsg::Drain`] unless one is on its way; `false` when
    /// the listener is gone.
    fn send(&self) -> bool {
        self.sent.swap(true, Ordering::Relaxed)
            || self
                .listener
                .send_message(ListenerMsg::Drain(self.generation))
                .is_ok()
    }
}

/// Poll the connection, putting every notification in the inbox and
/// telling the listener, until it ends; answer why it ended.
///
/// At most the inbox's capacity (`notification_buffer`) wait for the
/// listener: past that, the connection is not read until the listener
/// takes one, so the server's notification queue holds the rest. While
/// the listener waits for a LISTEN's answer it takes them as they come.
async fn drive<S, T>(
    mut connection: Connection<S, T>,
    inbox: &mpsc::Sender<tokio_postgres::Notification>,
    drains: &Drains<'_>,
) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(notification))) => {
                if inbox.send(notification).await.is_err() || !drains.send() {
                    return "the listener stopped".into();
                }
            }
            Some(Ok(AsyncMessage::Notice(notice))) => {
                tracing::debug!(target: "pgactor.listener", notice = notice.message(), "server notice");
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return describe(&e),
            None => return "the connection closed".into(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{Role, SessionConfig};

    pub(crate) fn context(dsn: &str) -> ListenerContext {
        let session = SessionConfig {
            application_name: Some("orders-api".into()),
            ..SessionConfig::default()
        };
        let dsn = Dsn::parse(dsn, Role::Write).unwrap();
        ListenerContext::new(
            &dsn,
            dsn.tls.connector().unwrap(),
            &session.resolve().unwrap(),
            Duration::from_secs(3),
        )
    }

    /// A server that takes the connection and never answers: connecting
    /// to it takes the whole connect timeout.
    async fn silent_server() -> (tokio::net::TcpListener, String) {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        (server, format!("postgres://app@127.0.0.1:{port}/db"))
    }

    /// A subscriber that ignores what it gets.
    pub(crate) async fn sink() -> ActorRef<Notification> {
        struct Sink;
        #[cfg_attr(feature = "async-trait", ractor::async_trait)]
        impl Actor for Sink {
            type Msg = Notification;
            type State = ();
            type Arguments = ();
            async fn pre_start(
                &self,
                _: ActorRef<Notification>,
                _: (),
            ) -> Result<(), ActorProcessingErr> {
                Ok(())
            }
        }
        Actor::spawn(None, Sink, ()).await.unwrap().0
    }

    async fn spawn(ctx: ListenerContext) -> (ActorRef<ListenerMsg>, ActorRef<Notification>) {
        let (listener, _) = Actor::spawn(None, Listener, Arc::new(ctx)).await.unwrap();
        (listener, sink().await)
    }

    #[tokio::test]
    async fn a_connection_that_never_opens_fails_the_waiting_subscribe() {
        let (_server, url) = silent_server().await;
        let mut ctx = context(&url);
        ctx.timeout = Duration::from_millis(200);
        let (listener, sink) = spawn(ctx).await;
        let answer = ractor::call!(listener, ListenerMsg::Subscribe, "c".into(), sink).unwrap();
        let err = answer.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("took longer than"), "{err}");
        listener.stop(None);
    }

    #[tokio::test]
    async fn unsubscribing_a_waiting_subscribe_answers_both() {
        let (_server, url) = silent_server().await;
        let (listener, sink) = spawn(context(&url)).await;
        let (tx, rx) = ractor::concurrency::oneshot();
        let subscribe = ListenerMsg::Subscribe("c".into(), sink.clone(), tx.into());
        listener.send_message(subscribe).unwrap();
        let unsubscribed = ractor::call!(
            listener,
            ListenerMsg::Unsubscribe,
            "c".into(),
            sink.get_id()
        );
        assert!(unsubscribed.unwrap().is_ok());
        // Answered by the unsubscribe: the failed connection would answer Unavailable.
        assert!(rx.await.unwrap().is_ok());
        listener.stop(None);
    }

    #[test]
    fn channel_names_are_plain_identifiers() {
        for ok in ["orders", "Orders_2", "_x$y"] {
            assert!(check_channel(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a-b",
            "1x",
            "x\"; DROP TABLE t; --",
            "sp ace",
            &"n".repeat(64),
        ] {
            let err = check_channel(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn the_connection_is_the_sessions_with_keepalives() {
        let ctx = context("postgres://app:pw@db/shop");
        assert_eq!(ctx.config.get_application_name(), Some("orders-api"));
        assert_eq!(
            ctx.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(ctx.config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(ctx.config.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        // The DSN's own keepalive settings win.
        let own = context("host=db user=app keepalives_idle=600 keepalives_interval=5");
        assert_eq!(own.config.get_keepalives_idle(), Duration::from_secs(600));
        assert_eq!(
            own.config.get_keepalives_interval(),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn behind_a_pooler_subscribing_is_a_config_error() {
        let mut ctx = context("postgres://app@db/shop");
        assert!(ctx.admit("orders").is_ok());
        ctx.listen_allowed = false;
        assert_eq!(ctx.admit("orders").unwrap_err().kind(), ErrorKind::Config);
        // A bad name is still bad input first.
        assert_eq!(
            ctx.admit("a-b").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}

/// The listener's own queue, against the real primary of the test
/// topology (`scripts/cluster.sh`; `PGACTOR_PRIMARY_URL`).
#[cfg(test)]
mod queue_tests {
    use super::*;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

    /// A listener that never takes a notification from its inbox; it
    /// reports each Drain it is sent.
    struct Hoarder;

    #[cfg_attr(feature = "async-trait", ractor::async_trait)]
    impl Actor for Hoarder {
        type Msg = ListenerMsg;
        type State = UnboundedSender<()>;
        type Arguments = UnboundedSender<()>;

        async fn pre_start(
            &self,
            _: ActorRef<ListenerMsg>,
            tx: UnboundedSender<()>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(tx)
        }

        async fn handle(
            &self,
            _: ActorRef<ListenerMsg>,
            msg: ListenerMsg,
            tx: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            if let ListenerMsg::Drain(_) = msg {
                let _ = tx.send(());
            }
            Ok(())
        }
    }

    async fn connect() -> (
        Client,
        Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ) {
        let url = std::env::var("PGACTOR_PRIMARY_URL")
            .expect("PGACTOR_PRIMARY_URL: start the topology with scripts/cluster.sh");
        tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to the primary")
    }

    #[tokio::test]
    async fn a_listener_that_takes_nothing_gets_at_most_its_buffer_and_the_server_keeps_the_rest() {
        const BUFFER: usize = 10;
        let (tx, mut drains) = unbounded_channel();
        let (hoarder, _) = Actor::spawn(None, Hoarder, tx).await.unwrap();
        let (client, connection) = connect().await;
        let (inbox, mut waiting) = mpsc::channel(BUFFER);
        let driven = tokio::spawn(async move {
            let sent = AtomicBool::new(false);
            let drains = Drains {
                listener: &hoarder,
                generation: 1,
                sent: &sent,
            };
            drive(connection, &inbox, &drains).await
        });
        let channel = format!("hoard_{}", uuid::Uuid::new_v4().simple());
        client.batch_execute(&listen(&channel)).await.unwrap();
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);

        let (sender, sending) = connect().await;
        tokio::spawn(sending);
        sender
            .execute(
                "SELECT pg_notify($1, lpad(i::text, 1000, 'x')) FROM generate_series(1, 20000) AS i",
                &[&channel],
            )
            .await
            .unwrap();
        // Guards against hanging, not timing checks.
        let patience = Duration::from_secs(30);
        let first = tokio::time::timeout(patience, drains.recv()).await;
        first.expect("notifications reach the listener").unwrap();
        // The listening backend ends up blocked writing to a client that
        // stopped reading.
        let mut blocked = false;
        for _ in 0..600 {
            let wait: Option<String> = sender
                .query_one(
                    "SELECT wait_event FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if wait.as_deref() == Some("ClientWrite") {
                blocked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut most = 0;
        while waiting.try_recv().is_ok() {
            most += 1;
        }
        assert_eq!(most, BUFFER, "notifications waiting for the listener");
        // One Drain on its way is enough: they do not pile up either.
        let mut sent = 1;
        while drains.try_recv().is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 1, "Drain messages");
        assert!(
            blocked,
            "the listener's connection was read past its buffer"
        );
        driven.abort();
    }

    fn primary() -> Arc<ListenerContext> {
        let url = std::env::var("PGACTOR_PRIMARY_URL")
            .expect("PGACTOR_PRIMARY_URL: start the topology with scripts/cluster.sh");
        Arc::new(tests::context(&url))
    }

    #[tokio::test]
    async fn a_subscriber_that_stops_on_a_quiet_channel_is_forgotten_without_another_subscribe() {
        let ctx = primary();
        let (listener, _) = Actor::spawn(None, Listener, ctx.clone()).await.unwrap();
        let gone = tests::sink().await;
        let quiet = ractor::call!(
            listener,
            ListenerMsg::Subscribe,
            "quiet".into(),
            gone.clone()
        );
        quiet.unwrap().unwrap();
        assert_eq!(ctx.stats().channels, 1);
        gone.stop_and_wait(None, None).await.unwrap();
        // No notification, no subscribe: the sweep alone forgets it.
        let mut forgotten = false;
        for _ in 0..100 {
            if ctx.stats().channels == 0 {
                forgotten = true;
                break;
            }
            tokio::time::sleep(SUBSCRIBER_SWEEP / 10).await;
        }
        assert!(
            forgotten,
            "still subscribed after {:?}",
            SUBSCRIBER_SWEEP * 10
        );
        assert_eq!(ctx.stats().subscriptions, 0);
        listener.stop(None);
    }

    #[tokio::test]
    async fn past_max_channels_a_subscribe_first_forgets_stopped_subscribers_then_is_refused() {
        let mut ctx = tests::context(&std::env::var("PGACTOR_PRIMARY_URL").unwrap());
        ctx.max_channels = 2;
        let ctx = Arc::new(ctx);
        let (listener, _) = Actor::spawn(None, Listener, ctx.clone()).await.unwrap();
        let (gone, live) = (tests::sink().await, tests::sink().await);
        for (channel, actor) in [("one", &gone), ("two", &live)] {
            let answer = ractor::call!(
                listener,
                ListenerMsg::Subscribe,
                channel.into(),
                actor.clone()
            );
            answer.unwrap().unwrap();
        }
        gone.stop_and_wait(None, None).await.unwrap();
        // At the limit, the stopped subscriber's channel is freed first.
        let three = ractor::call!(
            listener,
            ListenerMsg::Subscribe,
            "three".into(),
            live.clone()
        );
        three.unwrap().unwrap();
        // A channel already listened to takes no more room.
        let other = tests::sink().await;
        let again = ractor::call!(listener, ListenerMsg::Subscribe, "two".into(), other);
        again.unwrap().unwrap();
        let four = ractor::call!(
            listener,
            ListenerMsg::Subscribe,
            "four".into(),
            live.clone()
        );
        let err = four.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("max_channels"), "{err}");
        let mut channels: Vec<String> = ctx.table().channels.keys().cloned().collect();
        channels.sort();
        assert_eq!(channels, ["three", "two"]);
        listener.stop(None);
    }

    #[tokio::test]
    async fn a_statement_of_the_listener_past_its_bound_is_cancelled_on_the_server() {
        let ctx = primary();
        let (client, connection) = ctx.config.connect(ctx.connector.clone()).await.unwrap();
        tokio::spawn(connection);
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let slow = client.batch_execute("SELECT pg_sleep(60)");
        assert!(tokio::time::timeout(Duration::from_millis(300), slow)
            .await
            .is_err());
        let token = client.cancel_token();
        // Abandoned as the listener abandons it: the client goes away.
        drop(client);
        assert!(ctx.cancel_abandoned(token).await.unwrap(), "cancel sent");
        let (observer, observing) = connect().await;
        tokio::spawn(observing);
        let mut sleeping = true;
        for _ in 0..100 {
            let row = observer
                .query_opt(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                    &[&pid],
                )
                .await
                .unwrap();
            if row.is_none() {
                sleeping = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!sleeping, "the abandoned backend still runs its statement");
    }

    #[tokio::test]
    async fn a_listener_that_cannot_connect_reads_down_in_its_stats() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let mut ctx = tests::context(&format!("postgres://app@127.0.0.1:{port}/db"));
        ctx.timeout = Duration::from_millis(100);
        let ctx = Arc::new(ctx);
        // A subscription taken over from a listener that failed.
        ctx.keep_for_test("kept", tests::sink().await);
        let (listener, _) = Actor::spawn(None, Listener, ctx.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stats = ctx.stats();
        assert!(!stats.connected, "{stats:?}");
        assert_eq!((stats.channels, stats.subscriptions), (1, 1));
        listener.stop(None);
    }
}
