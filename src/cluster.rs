//! `ractor::Message` for every type pgactor sends to an actor, compiled
//! with the `cluster` feature only.
//!
//! Without ractor's `cluster` feature, ractor implements `Message` for every
//! `Any + Send + 'static` type; with it, that blanket impl is gone and each
//! message type needs its own. These impls keep ractor's defaults: the
//! messages are local-only (`serializable()` is false), so a pgactor actor
//! never receives anything over a `ractor_cluster` link, and carrying reply
//! ports, connections and actor references, they could not be sent as bytes
//! anyway.
//!
//! The types are the `Actor::Msg` of pgactor's actors and the public ones
//! ractor code sends: [`crate::DbMsg`] (the supervisor), `PoolMsg` (a pool),
//! `Inbox` (a transaction actor), [`crate::TxMsg`] (what
//! [`crate::Tx::actor`]'s `DerivedActorRef` takes), `ListenerMsg` (the
//! listener), [`crate::Notification`] (what a subscriber actor takes) and
//! [`crate::RowsMsg`] (what a stream's actor takes).
//! An application's own subscriber actor whose `Msg` is another type that
//! converts from `Notification` implements `Message` for that type itself.

impl ractor::Message for crate::supervisor::DbMsg {}
impl ractor::Message for crate::pool::PoolMsg {}
impl ractor::Message for crate::tx::Inbox {}
impl ractor::Message for crate::tx::TxMsg {}
impl ractor::Message for crate::listener::ListenerMsg {}
impl ractor::Message for crate::listener::Notification {}
impl ractor::Message for crate::pool::RowsMsg {}
