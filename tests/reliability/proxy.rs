//! A fault-injecting TCP proxy in front of the primary (catalogue §2.6, the
//! few Toxiproxy toxics the network scenarios need), switched between modes
//! at runtime through a `tokio::sync::watch` channel.
//!
//! Every connection the adapter opens through it is two pumps (client →
//! server, server → client) that look at the mode before each read and
//! again before each write, so a chunk read just before a pause is held
//! too. The CancelRequest of a query timeout opens a new TCP connection to
//! the same address, so it goes through the proxy as well (and stalls with
//! everything else). Plain TCP: DSNs through it say `sslmode=disable`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgactor::{Db, PoolConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::support::db::{stock_model, tagged_options, unique_schema};
use crate::support::topology::primary_url;

/// What the proxy does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Forward, sleeping this long before each chunk (latency).
    Delay(Duration),
    /// Forward nothing either way; sockets stay open (the proxy still ACKs,
    /// so keepalives see nothing wrong) and new connections are accepted
    /// but held until the mode changes. A stalled network or server.
    Pause,
    /// Reset (RST) every connection, current and new, until the mode changes.
    ResetAll,
    /// Reset each new connection as soon as it is accepted, before any
    /// byte: what a client sees as a refused connection. Current ones go on.
    RefuseNew,
    /// Accept new connections and never connect them upstream (a connect
    /// that hangs). Current ones go on.
    BlackholeNew,
}

impl Mode {
    /// Whether established connections move bytes in this mode.
    fn flows(self) -> bool {
        !matches!(self, Mode::Pause | Mode::ResetAll)
    }
}

/// The proxy. Dropping it stops accepting and closes every forwarded
/// connection (blackholed ones stay until their client gives up).
pub struct Proxy {
    port: u16,
    mode: watch::Sender<Mode>,
    counts: Arc<Counts>,
    accept: JoinHandle<()>,
}

/// Connections seen, for figures.
#[derive(Default)]
struct Counts {
    /// Accepted since start.
    accepted: AtomicUsize,
    /// Connected upstream and not closed yet.
    live: AtomicUsize,
    /// Blackholed and not closed by the client yet, and the most at once.
    blackholed: AtomicUsize,
    blackholed_peak: AtomicUsize,
}

impl Proxy {
    /// A proxy on `127.0.0.1:<any port>` to the server of `url` (a
    /// `postgres://…@host:port/…` URL), in [`Mode::Pass`].
    pub async fn start(url: &str) -> Proxy {
        let config: tokio_postgres::Config = url.parse().expect("a server URL");
        let host = match config.get_hosts() {
            [tokio_postgres::config::Host::Tcp(host)] => host.clone(),
            other => panic!("the proxy needs one TCP host, got {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolve the upstream")
            .next()
            .expect("an upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let local = listener.local_addr().expect("the proxy's address").port();
        let (mode, watching) = watch::channel(Mode::Pass);
        let counts = Arc::new(Counts::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, watching, counts.clone()));
        Proxy {
            port: local,
            mode,
            counts,
            accept,
        }
    }

    /// Switch to `mode`; every connection sees it at its next read or write.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Connections accepted since start (the cancel requests' included).
    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::Relaxed)
    }

    /// Connections forwarded upstream and still open.
    pub fn live(&self) -> usize {
        self.counts.live.load(Ordering::Relaxed)
    }

    /// The most blackholed connections pending at once since start.
    pub fn blackholed_peak(&self) -> usize {
        self.counts.blackholed_peak.load(Ordering::Relaxed)
    }

    /// `url` with its host and port replaced by the proxy's, `sslmode=disable`.
    pub fn dsn(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
        let (user, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
        let path = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let query: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("sslmode="))
            .chain(["sslmode=disable"])
            .collect();
        let at = if user.is_empty() { "" } else { "@" };
        format!(
            "{scheme}://{user}{at}127.0.0.1:{}{path}?{}",
            self.port,
            query.join("&")
        )
    }

    /// [`crate::support::db::open_tagged`] through this proxy, reads by id
    /// not coalesced: the faults here are counted per connection, and each
    /// read in flight holds one of its own.
    pub async fn open_tagged(&self, prefix: &str, pool: PoolConfig) -> (Db, String) {
        let schema = unique_schema(prefix);
        let url = self.dsn(&primary_url());
        let db = tagged_options(&url, [stock_model()], pool, &schema, &schema)
            .coalesce_reads(false)
            .open()
            .await
            .expect("open");
        (db, schema)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Connection tasks end when the mode's sender goes (with `self.mode`).
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<Mode>,
    counts: Arc<Counts>,
) {
    while let Ok((client, _)) = listener.accept().await {
        counts.accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(client, upstream, mode.clone(), counts.clone()));
    }
}

/// One client connection, from admission to close.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    counts: Arc<Counts>,
) {
    // Admission: held while paused, then judged by the mode of that moment.
    let admitted = match mode.wait_for(|m| *m != Mode::Pause).await {
        Ok(m) => *m,
        Err(_) => return,
    };
    match admitted {
        Mode::ResetAll | Mode::RefuseNew => return reset(client),
        Mode::BlackholeNew => {
            let now = counts.blackholed.fetch_add(1, Ordering::Relaxed) + 1;
            counts.blackholed_peak.fetch_max(now, Ordering::Relaxed);
            drain(client).await;
            counts.blackholed.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        Mode::Pass | Mode::Delay(_) | Mode::Pause => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    counts.live.fetch_add(1, Ordering::Relaxed);
    let was_reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        tokio::select! {
            () = pump(client_read, server_write, mode.clone()) => false,
            () = pump(server_read, client_write, mode.clone()) => false,
            reset = mode.wait_for(|m| *m == Mode::ResetAll) => reset.is_ok(),
        }
    };
    counts.live.fetch_sub(1, Ordering::Relaxed);
    if was_reset {
        reset(client);
        reset(server);
    }
    // Otherwise both close normally (FIN) when dropped here.
}

/// Copy `from` to `to` while the mode lets bytes flow; end at end of
/// stream, on an error, or when the proxy is gone.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        if mode.wait_for(|m| m.flows()).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Look again: a chunk read just before a pause waits for its end.
        let now = match mode.wait_for(|m| m.flows()).await {
            Ok(m) => *m,
            Err(_) => return,
        };
        if let Mode::Delay(d) = now {
            tokio::time::sleep(d).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Close with a RST instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Swallow what the client sends until it gives up and closes.
async fn drain(mut client: TcpStream) {
    let mut sink = [0_u8; 1024];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
}
