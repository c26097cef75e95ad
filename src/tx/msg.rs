//! The messages a transaction actor takes: [`TxMsg`] from ractor code, and
//! the jobs of [`super::Tx`] methods.

use ractor::RpcReplyPort;

use crate::error::{Error, Result};
use crate::messages::{ListRequest, ReadRequest, WriteRequest};
use crate::pool::ConsistencyToken;
use crate::schema::{Page, Record};

use super::handoff::Starter;
use super::state::TxState;

/// The messages a transaction actor takes. Each runs on the transaction's
/// one connection to the primary, in order, so a transaction reads its own
/// writes even when reads outside it go to a replica.
#[derive(Debug)]
pub enum TxMsg {
    /// Read one row by id.
    Read(ReadRequest, RpcReplyPort<Result<Record>>),
    /// List a page of rows.
    List(ListRequest, RpcReplyPort<Result<Page>>),
    /// Create, update or delete a row.
    Write(WriteRequest, RpcReplyPort<Result<Record>>),
    /// `SELECT … FOR UPDATE`: read the row and lock it until the transaction
    /// ends; [`crate::ErrorKind::NotFound`] when absent.
    LockForUpdate(ReadRequest, RpcReplyPort<Result<Record>>),
    /// Commit and end the transaction.
    Commit(RpcReplyPort<Result<()>>),
    /// Commit, end the transaction, and answer the primary's WAL position
    /// after the commit (see [`crate::ConsistencyToken`]).
    CommitWithToken(RpcReplyPort<Result<ConsistencyToken>>),
    /// Roll back and end the transaction.
    Rollback(RpcReplyPort<Result<()>>),
    /// A statement of a [`crate::Tx`] method, whose caller takes the answer
    /// itself (see `crate::handoff`); not for ractor code, which sends the
    /// variants above.
    #[doc(hidden)]
    Drive(Drive),
    /// A new transaction for a spare actor (internal).
    #[doc(hidden)]
    Adopt(Adopt),
    /// The actor's periodic look at an idle transaction (internal).
    #[doc(hidden)]
    Watch(Watch),
}

impl TxMsg {
    /// Answer `err` without running anything.
    pub(crate) fn refuse(self, err: Error) {
        match self {
            TxMsg::Read(_, reply) | TxMsg::LockForUpdate(_, reply) => drop(reply.send(Err(err))),
            TxMsg::Write(_, reply) => drop(reply.send(Err(err))),
            TxMsg::List(_, reply) => drop(reply.send(Err(err))),
            TxMsg::Commit(reply) | TxMsg::Rollback(reply) => drop(reply.send(Err(err))),
            TxMsg::CommitWithToken(reply) => drop(reply.send(Err(err))),
            TxMsg::Drive(Drive(job)) => match job {
                Job::Read(_, answer) | Job::LockForUpdate(_, answer) | Job::Write(_, answer) => {
                    answer.answer(Err(err))
                }
                Job::List(_, answer) => answer.answer(Err(err)),
                Job::Commit(answer) | Job::Rollback(answer) => answer.answer(Err(err)),
                Job::CommitWithToken(answer) => answer.answer(Err(err)),
            },
            // Dropping the transaction closes its connection.
            TxMsg::Adopt(_) | TxMsg::Watch(_) => {}
        }
    }

    /// Whether this message ends the transaction (COMMIT or ROLLBACK).
    pub(crate) fn ends_transaction(&self) -> bool {
        matches!(
            self,
            TxMsg::Commit(_) | TxMsg::CommitWithToken(_) | TxMsg::Rollback(_)
        )
    }
}

/// A statement sent by a [`Tx`] method (opaque).
#[doc(hidden)]
#[derive(Debug)]
pub struct Drive(pub(crate) Job);

/// The transaction actor's periodic look at its transaction (opaque): one
/// idle past the session's `idle_in_transaction_timeout`, or whose
/// connection the server closed, is ended.
#[doc(hidden)]
#[derive(Debug)]
pub struct Watch(pub(crate) ());

/// A transaction handed to a spare actor (opaque).
#[doc(hidden)]
pub struct Adopt(pub(crate) Box<TxState>);

impl std::fmt::Debug for Adopt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Adopt")
    }
}

/// What a [`Drive`] asks for, with the actor's end of its answer.
#[derive(Debug)]
pub(crate) enum Job {
    Read(ReadRequest, Starter<Record>),
    LockForUpdate(ReadRequest, Starter<Record>),
    Write(WriteRequest, Starter<Record>),
    List(ListRequest, Starter<Page>),
    Commit(Starter<()>),
    CommitWithToken(Starter<ConsistencyToken>),
    Rollback(Starter<()>),
}
