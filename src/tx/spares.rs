//! Transaction actors between transactions, kept for the next one.

use std::sync::{Mutex, MutexGuard, PoisonError};

use ractor::ActorRef;

use super::msg::Inbox;

/// Transaction actors between transactions, ready for the next one: a
/// `begin` that finds one sends it the new transaction in a message, where
/// spawning an actor would create its channels and tasks and report its
/// start and its end to the supervisor. At most as many as the write pool
/// has connections (each open transaction holds one); more are stopped.
#[derive(Default)]
pub(crate) struct SpareActors {
    idle: Mutex<Vec<ActorRef<Inbox>>>,
    most: usize,
}

impl SpareActors {
    /// Keeping at most `most` actors.
    pub(crate) fn new(most: usize) -> SpareActors {
        SpareActors {
            idle: Mutex::default(),
            most,
        }
    }

    pub(super) fn take(&self) -> Option<ActorRef<Inbox>> {
        self.lock().pop()
    }

    /// Keep `actor`, whose transaction has ended and whose `Tx` handles
    /// are all gone; `false` if there are enough spares already.
    pub(crate) fn keep(&self, actor: &ActorRef<Inbox>) -> bool {
        let mut idle = self.lock();
        let room = idle.len() < self.most;
        if room {
            idle.push(actor.clone());
        }
        room
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ActorRef<Inbox>>> {
        // The list stays valid whatever a panicking holder did.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
