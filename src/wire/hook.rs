//! The application's connection hook ([`crate::OpenOptions::on_connect`]):
//! run on every new pooled connection after the session settings.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Role;

/// The error a connection hook fails with: anything that is an error, so
/// `?` works on the driver's errors and the application's own.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The future a connection hook returns: boxed, borrowing the connection.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'a>>;

/// A new pooled connection, handed to the connection hook once its session
/// settings are applied and before anything else runs on it.
pub struct NewConnection<'a> {
    role: Role,
    client: &'a tokio_postgres::Client,
}

impl<'a> NewConnection<'a> {
    /// The pool the connection belongs to.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The connection, to run statements on (`batch_execute` for settings,
    /// `prepare`, or a query of types to register). What it leaves behind
    /// stays for the connection's life: leave no transaction open.
    pub fn client(&self) -> &'a tokio_postgres::Client {
        self.client
    }
}

impl std::fmt::Debug for NewConnection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConnection")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The hook, shared by both pools.
type HookFn = dyn for<'a> Fn(NewConnection<'a>) -> HookFuture<'a> + Send + Sync;

/// The application's hook, or none.
#[derive(Clone, Default)]
pub(crate) struct ConnectHook(Option<Arc<HookFn>>);

impl ConnectHook {
    /// The hook `f`.
    pub(crate) fn new<F>(f: F) -> ConnectHook
    where
        F: for<'a> Fn(NewConnection<'a>) -> HookFuture<'a> + Send + Sync + 'static,
    {
        ConnectHook(Some(Arc::new(f)))
    }

    /// Whether there is a hook.
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Run the hook, if any, on the new connection `client` of `role`.
    pub(crate) async fn run(
        &self,
        role: Role,
        client: &tokio_postgres::Client,
    ) -> Result<(), HookError> {
        match &self.0 {
            Some(hook) => hook(NewConnection { role, client }).await,
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for ConnectHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "Some(<hook>)"
        } else {
            "None"
        })
    }
}
