//! The pools: one per role, each with its connections and their lifetimes,
//! the deadlines that cancel statements on the server, the plans that run
//! requests as SQL, the replica watches and the choice among replicas that
//! route reads, the shared-read
//! lanes, the counters behind [`crate::PoolStats`], and the pool actor that
//! runs the messages of its role.

mod actor;
mod aggregate;
mod batch;
mod conn;
mod connections;
mod counters;
mod deadline;
mod include;
mod lanes;
mod lifetime;
mod plan;
mod prepared;
mod raw;
mod replica;
mod replicas;
mod stream;

pub use actor::TypedRequest;
pub(crate) use actor::{serve, Deadline, PoolActor, PoolContext, PoolMsg, RunOptions};
pub(crate) use conn::{Object, Pool};
pub(crate) use connections::ConnectionPool;
pub(crate) use counters::InFlight;
pub(crate) use deadline::{bounded, Fate, Overrun, Timer};
pub(crate) use lanes::SharedReads;
pub(crate) use plan::{
    wal_position, AsType, Decoded, LockForUpdate, LockNext, LockNowait, Plan, Request,
    WriteWithToken,
};
pub use prepared::DEFAULT_STATEMENT_CACHE_SIZE;
pub(crate) use raw::{Answer, RawRequest};
pub use replica::ReplicaConfig;
pub(crate) use replica::{replayed_within, ProbeLink, ReplicaWatch, SCHEMA_REPLAY_WAIT};
pub use replicas::MAX_REPLICAS;
pub(crate) use replicas::{Replica, ReplicaSet};
pub(crate) use stream::{open_stream, Source};
pub use stream::{More, Rows, RowsMsg, BATCH_ROWS};
