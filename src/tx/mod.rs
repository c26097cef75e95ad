//! Transactions: one actor per open transaction, holding one write
//! connection from BEGIN to COMMIT or ROLLBACK; the `Tx` handle whose
//! methods send it their statements; the messages it takes; the spare
//! actors kept for the next transaction.

mod actor;
mod cursor;
mod handle;
mod handoff;
mod msg;
mod options;
mod spares;
mod state;
mod steps;

pub(crate) use actor::begin;
pub use handle::Tx;
#[cfg(feature = "cluster")]
pub(crate) use msg::Inbox;
pub use msg::TxMsg;
pub use options::{IsolationLevel, TxOptions};
pub(crate) use spares::SpareActors;
pub use steps::TypedTxRequest;
