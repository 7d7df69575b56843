//! One HTTP/1.1 connection and the watchdog that holds it to the limits.
//!
//! hyper's own header timeout starts whenever it waits for a request, so it
//! would also close a keep-alive connection after the header timeout; here
//! the two are apart. The connection is in one of three phases: reading a
//! request's headers (from the connection's start, or from the first byte
//! of a later request), handling a request (its body has its own deadline,
//! see [`super::deadline`]), or idle between requests. The watchdog sleeps
//! until the current phase's deadline and cuts the connection there.

use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::deadline::DeadlineBody;
use super::{Cut, ServerLimits};

/// Written when a request's headers did not arrive in time. No request was
/// read, so this cannot be mistaken for the answer to one.
pub(super) const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 79\r\n\r\n\
{\"error\":\"the request headers did not arrive in time\",\"code\":\"REQUEST_TIMEOUT\"}";
/// Written when a request's headers exceed `HTTP_MAX_HEADER_BYTES`.
pub(super) const HEADERS_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 94\r\n\r\n\
{\"error\":\"the request headers are larger than this server accepts\",\"code\":\"HEADERS_TOO_LARGE\"}";
/// hyper's own bound on its read buffer stays above ours (one read can
/// carry the end of the headers and the start of a body), as a backstop.
const HYPER_BUFFER_MARGIN: usize = 64 * 1024;
/// How long a connection cut for slow headers gets to take its 408.
const CUT_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's headers since `since`; `bytes` read so far.
    ReadingHead { since: Instant, bytes: usize },
    /// A request is being handled.
    InRequest,
    /// Between requests on a kept-alive connection since this instant.
    Idle(Instant),
}

struct Activity {
    phase: Mutex<Phase>,
    /// Wakes the watchdog whenever the phase changes, so that it sleeps
    /// until the new phase's deadline (or none, while a request runs).
    changed: Notify,
    /// Set by the watchdog: the next read answers 408 and fails.
    headers_timed_out: AtomicBool,
    max_header_bytes: usize,
}

impl Activity {
    fn set(&self, phase: Phase) {
        *self.phase.lock().expect("never poisoned: no panics inside") = phase;
        self.changed.notify_one();
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().expect("never poisoned: no panics inside")
    }

    fn bytes_arrived(&self, count: usize) {
        let mut phase = self.phase.lock().expect("never poisoned: no panics inside");
        match &mut *phase {
            Phase::Idle(_) => {
                *phase = Phase::ReadingHead {
                    since: Instant::now(),
                    bytes: count,
                };
                drop(phase);
                self.changed.notify_one();
            }
            Phase::ReadingHead { bytes, .. } => *bytes += count,
            Phase::InRequest => {}
        }
    }

    /// hyper asks for more while the headers are still incomplete, and it
    /// already has more than the bound: the headers are too large. Checked
    /// before a read rather than after, so that the end of small headers
    /// arriving with the start of a large body is never mistaken for it.
    fn headers_too_large(&self) -> bool {
        matches!(self.phase(), Phase::ReadingHead { bytes, .. } if bytes > self.max_header_bytes)
    }

    fn deadline(&self, limits: &ServerLimits) -> Option<(Instant, Cut)> {
        match self.phase() {
            Phase::ReadingHead { since, .. } => {
                Some((since + limits.header_timeout, Cut::HeaderTimeout))
            }
            Phase::Idle(since) => Some((since + limits.idle_timeout, Cut::IdleTimeout)),
            Phase::InRequest => None,
        }
    }
}

/// The socket, telling [`Activity`] when bytes arrive.
struct TrackedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.activity.headers_timed_out.load(Ordering::Relaxed) {
            return this.answer_and_fail(
                cx,
                REQUEST_TIMEOUT,
                "request headers did not arrive in time",
            );
        }
        if this.activity.headers_too_large() {
            Cut::HeaderTooLarge.count();
            return this.answer_and_fail(cx, HEADERS_TOO_LARGE, "request headers too large");
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if matches!(result, Poll::Ready(Ok(()))) && read > 0 {
            this.activity.bytes_arrived(read);
        }
        result
    }
}

impl TrackedIo {
    /// Answers a request whose headers were never handed to hyper (so the
    /// answer cannot be mistaken for another request's), and ends the
    /// connection.
    fn answer_and_fail(
        &mut self,
        cx: &mut Context<'_>,
        response: &[u8],
        why: &'static str,
    ) -> Poll<io::Result<()>> {
        // Best effort: a fresh small answer fits in the socket's send buffer.
        let _ = self.stream.try_write(response);
        let _ = Pin::new(&mut self.stream).poll_shutdown(cx);
        Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)))
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Serves one connection until the client closes it, a limit cuts it, or
/// `shutdown` lets its last request finish.
pub async fn serve(
    stream: TcpStream,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        phase: Mutex::new(Phase::ReadingHead {
            since: Instant::now(),
            bytes: 0,
        }),
        changed: Notify::new(),
        headers_timed_out: AtomicBool::new(false),
        max_header_bytes: limits.max_header_bytes,
    });
    let service = {
        let activity = activity.clone();
        let router = TowerToHyperService::new(router);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            activity.set(Phase::InRequest);
            let deadline = Instant::now() + limits.body_timeout;
            let response = router.call(request.map(|body| DeadlineBody::new(body, deadline)));
            let activity = activity.clone();
            async move {
                let response = response.await;
                activity.set(Phase::Idle(Instant::now()));
                response
            }
        })
    };
    let io = TokioIo::new(TrackedIo {
        stream,
        activity: activity.clone(),
    });
    let mut connection = pin!(
        http1::Builder::new()
            .max_buf_size(limits.max_header_bytes + HYPER_BUFFER_MARGIN)
            .serve_connection(io, service)
    );
    let mut draining = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = activity.changed.notified() => {}
            () = tokio::time::sleep_until(deadline.map_or_else(Instant::now, |(at, _)| at)), if deadline.is_some() => {
                let Some((at, cut)) = activity.deadline(&limits) else { continue };
                if Instant::now() < at {
                    continue;
                }
                cut.count();
                if cut == Cut::HeaderTimeout {
                    activity.headers_timed_out.store(true, Ordering::Relaxed);
                    let _ = tokio::time::timeout(CUT_GRACE, connection.as_mut()).await;
                }
                return;
            }
        }
    }
}
