//! Across nodes: a pgactor node serves reads, lists, writes and
//! transactions to the other nodes of a `ractor_cluster`, by message
//! (the `remote` feature; docs/actors.md, "Across nodes").
//!
//! On the pgactor node, [`Gateway`] starts an actor that joins a process
//! group; on another node, [`RemoteDb::lookup`] finds it there once the
//! nodes are connected, and its calls send [`RemoteMsg`]s, which cross as
//! bytes. Errors keep their [`crate::ErrorKind`].

mod client;
mod gateway;
mod msg;

pub use client::{LeaseMsg, RemoteDb, RemoteTx, DEFAULT_CALL_TIMEOUT};
pub use gateway::{Gateway, DEFAULT_MAX_REMOTE_TRANSACTIONS};
pub use msg::{RemoteMsg, TxId};
