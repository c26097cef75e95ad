//! CancelRequests: sent to the one server a pool's DSN names, over the
//! pool's TLS connector, waiting (as libpq does) for the server to close the
//! cancel connection. tokio-postgres's own `cancel_query` closes it right
//! after writing, and PgBouncer 1.18 crashes on that (`FATAL … in function
//! disconnect_client(): bad client state: 0`, fixed after 1.18): the bouncer
//! frees the cancel client, then touches it again when the server finishes
//! the cancel.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use postgres_openssl::MakeTlsConnector;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::CancelToken;

/// How long to wait for a CancelRequest to be sent, and then for the
/// cancelled statement's answer.
pub(crate) const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// How the CancelRequests for a pool's connections are sent: to the one
/// server its DSN names, over the pool's TLS connector, so a cancel is
/// encrypted (and the server verified) exactly as the connection was.
#[derive(Clone)]
pub(crate) struct CancelTarget {
    /// Shared: every transaction's pool handle clones its target.
    to: Arc<Address>,
    tls: MakeTlsConnector,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    /// Where to connect (host name or address), the port, and the host
    /// name TLS verifies (none when the DSN gives only an address).
    Tcp {
        connect: String,
        port: u16,
        hostname: Option<String>,
    },
    /// The server's Unix socket.
    Unix(PathBuf),
    /// The DSN names several hosts and we cannot tell which one a
    /// connection reached: tokio-postgres's own cancel, which knows.
    Driver,
}

impl std::fmt::Debug for CancelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelTarget").field(&self.to).finish()
    }
}

impl CancelTarget {
    /// The target of connections made with `config` and `tls`.
    pub(crate) fn new(config: &tokio_postgres::Config, tls: MakeTlsConnector) -> CancelTarget {
        CancelTarget {
            to: Arc::new(Address::of(config)),
            tls,
        }
    }

    /// Send a CancelRequest for `token`'s connection and wait until the
    /// server has closed the cancel connection. Answers whether it did
    /// wait: `false` when the driver's own cancel sent it (several hosts),
    /// which closes the cancel connection right after writing, so the
    /// server may not have signalled the backend yet.
    pub(crate) async fn send(
        &self,
        token: CancelToken,
    ) -> std::result::Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let mut tls = self.tls.clone();
        match &*self.to {
            Address::Tcp {
                connect,
                port,
                hostname,
            } => {
                let stream = tokio::net::TcpStream::connect((connect.as_str(), *port)).await?;
                let tls =
                    MakeTlsConnect::<UntilServerCloses<tokio::net::TcpStream>>::make_tls_connect(
                        &mut tls,
                        hostname.as_deref().unwrap_or(""),
                    )?;
                token
                    .cancel_query_raw(UntilServerCloses(stream), tls)
                    .await?;
            }
            #[cfg(unix)]
            Address::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                let tls =
                    MakeTlsConnect::<UntilServerCloses<tokio::net::UnixStream>>::make_tls_connect(
                        &mut tls, "",
                    )?;
                token
                    .cancel_query_raw(UntilServerCloses(stream), tls)
                    .await?;
            }
            #[cfg(not(unix))]
            Address::Unix(_) => {
                token.cancel_query(tls).await?;
                return Ok(false);
            }
            Address::Driver => {
                token.cancel_query(tls).await?;
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Address {
    fn of(config: &tokio_postgres::Config) -> Address {
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => return Address::Driver,
        };
        let tcp = |connect: String, hostname: Option<&String>| Address::Tcp {
            connect,
            port,
            hostname: hostname.cloned(),
        };
        match (config.get_hostaddrs(), config.get_hosts()) {
            ([addr], [Host::Tcp(host)]) => tcp(addr.to_string(), Some(host)),
            ([addr], []) => tcp(addr.to_string(), None),
            ([], [Host::Tcp(host)]) => tcp(host.clone(), Some(host)),
            ([], [Host::Unix(dir)]) => Address::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            _ => Address::Driver,
        }
    }
}

/// A stream whose shutdown, instead of closing our side, waits for the
/// server to close its side: what libpq does after a CancelRequest.
#[derive(Debug)]
struct UntilServerCloses<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for UntilServerCloses<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for UntilServerCloses<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    /// Read until end of stream. The request is already written; an error
    /// here only ends the wait early.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 64];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.0).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => continue,
                Ok(()) | Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(dsn: &str) -> Address {
        Address::of(&dsn.parse().unwrap())
    }

    fn tcp(connect: &str, port: u16, hostname: Option<&str>) -> Address {
        Address::Tcp {
            connect: connect.into(),
            port,
            hostname: hostname.map(Into::into),
        }
    }

    #[test]
    fn a_cancel_goes_to_the_one_server_the_dsn_names() {
        assert_eq!(
            address("postgres://app@bouncer.internal:6432/shop"),
            tcp("bouncer.internal", 6432, Some("bouncer.internal"))
        );
        assert_eq!(
            address("host=db.internal hostaddr=10.0.0.7 user=app"),
            tcp("10.0.0.7", 5432, Some("db.internal"))
        );
        assert_eq!(
            address("hostaddr=10.0.0.7 user=app"),
            tcp("10.0.0.7", 5432, None)
        );
        assert_eq!(
            address("host=/run/postgresql port=5433 user=app"),
            Address::Unix("/run/postgresql/.s.PGSQL.5433".into())
        );
        assert_eq!(
            address("host=a.internal,b.internal user=app"),
            Address::Driver
        );
        assert_eq!(
            address("host=a.internal,b.internal port=5432,5433 user=app"),
            Address::Driver
        );
    }
}
