//! What `tracing` logs on a test's thread, captured in memory, for tests
//! that check what operators see (and never see, like a password).

use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Everything `tracing` writes on one test's thread, kept in memory.
///
/// One fmt subscriber, installed once as the global default (and as the
/// `log` crate's logger, so the driver's records come too), writes each
/// event and span close (every level, plain text) to the capture of the
/// thread it happens on, if any: a `#[tokio::test]` runtime and the tasks it
/// spawns run on the test's thread. Thread-local subscribers
/// (`set_default`) are not used: tracing caches each callsite's interest
/// globally, and a callsite first hit on a thread without a subscriber while
/// another test installs one can stay cached as "never", losing events.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// The global subscriber's writer: this thread's capture, or nowhere.
struct ThreadCapture;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadCapture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(CAPTURE.with(|c| c.borrow().clone()))
    }
}

struct CaptureWriter(Option<Captured>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(captured) = &self.0 {
            captured.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Ends a capture when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

impl Captured {
    /// Capture what this thread logs until the guard is dropped.
    pub fn install(&self) -> CaptureGuard {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_span_events(FmtSpan::CLOSE)
                .with_writer(ThreadCapture)
                .with_ansi(false)
                .finish();
            // try_init also forwards the `log` crate's records (the
            // driver's, tokio-postgres logs through `log`) to it.
            subscriber
                .try_init()
                .expect("no other global subscriber or logger in the test binary");
        });
        // A callsite another thread registered while the global subscriber
        // was being installed may still be cached as uninterested.
        tracing::callsite::rebuild_interest_cache();
        CAPTURE.with(|c| *c.borrow_mut() = Some(self.clone()));
        CaptureGuard(())
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Run `body` with everything `tracing` logs [`Captured`]; answer `body`'s
/// output and the text.
pub async fn capturing_logs<T>(body: impl std::future::Future<Output = T>) -> (T, String) {
    let captured = Captured::default();
    let guard = captured.install();
    let output = body.await;
    drop(guard);
    (output, captured.text())
}
