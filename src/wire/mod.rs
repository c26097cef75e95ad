//! Talking to a server: DSNs (with libpq's environment variables and
//! password file) and TLS (`sslmode`), the session settings
//! every connection gets, CancelRequests, and what a transaction-pooling
//! PgBouncer needs instead of session settings.

mod cancel;
mod dsn;
mod environment;
mod hook;
mod options;
mod pooler;
mod session;
mod tls;

pub(crate) use cancel::{CancelTarget, CANCEL_GRACE};
pub(crate) use dsn::Dsn;
pub(crate) use hook::ConnectHook;
pub use hook::{HookError, HookFuture, NewConnection};
pub(crate) use pooler::{begin_sql, check_server_defaults, in_transaction};
pub(crate) use session::{
    apply_session, client_config, ensure_schema, read_settings, timeout_setting, MANAGED_SETTINGS,
};
pub(crate) use tls::Tls;
