//! The HTTP/1.1 server loop of every server the binary starts (`lti serve`,
//! `lti platform`, `lti demo`): hyper with a timer, so that no client can hold
//! a connection or a worker for long.
//!
//! - Header-read timeout: a request head (request line and headers) must
//!   arrive within it, counted from when the connection starts waiting for a
//!   request; a keep-alive connection that sends no next request is closed
//!   after it too (hyper's `header_read_timeout`).
//! - Request timeout: from the head to the response head, including reading the
//!   body in the handler; past it the request is answered `408
//!   request_timeout` and the connection closed.
//! - Idle timeout: a connection on which no byte moves either way for this long,
//!   while no request is being handled, is dropped (a client that stops
//!   reading its response).
//! - Connection limit: at most this many connections are served at once;
//!   further ones wait in the listen backlog until one closes (they cost the
//!   server no file descriptor meanwhile).
//!
//! Shutdown is graceful: the listener closes, idle connections close, requests
//! in flight finish (each within its timeouts).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

use crate::error::AppError;

/// Default header-read timeout: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default request timeout: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle timeout: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default connection limit: 512.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The timeouts and connection limit of a server (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time for a request head to arrive (and for a kept-alive connection to
    /// send its next request).
    pub header_read_timeout: Duration,
    /// Time from a request head to its response head.
    pub request_timeout: Duration,
    /// Time a connection may move no byte before it is dropped.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    /// 10 s header read, 30 s request, 60 s idle, 512 connections.
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes,
/// then drains the connections (graceful shutdown).
///
/// # Errors
/// [`AppError::Io`] when accepting fails for a reason other than a transient
/// one (a connection reset before it was accepted, descriptors exhausted).
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A slot first: at the limit, connections wait in the listen backlog.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if transient(&e) => {
                    tracing::debug!(error = %e, "accept failed; retrying");
                    // Out of descriptors: give connections a moment to close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => {
                    return Err(AppError::io(
                        "accepting on",
                        addr.map(|a| a.to_string()).unwrap_or_default(),
                        e,
                    ));
                }
            },
        };
        // Every response goes out as one write; with Nagle's algorithm on, a
        // response written while the client has not yet acknowledged the previous
        // one would wait for that (possibly delayed) acknowledgement.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
        let router = router.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, router, limits, stop).await;
            tracing::trace!(%peer, "connection closed");
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: all slots back means all done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Accept errors that concern one connection or a momentary shortage, not the
/// listener.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error().is_some_and(|code| {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux and the BSDs.
        matches!(code, 24 | 23 | 105 | 55 | 12)
    })
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        start,
        activity: Arc::clone(&activity),
    });
    let request_timeout = limits.request_timeout;
    let counter = Arc::clone(&in_flight);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        let busy = InFlight::enter(&counter);
        // The path only: query values (launch ids, hints) never reach the log.
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path()
        );
        async move {
            let started = Instant::now();
            let response = answer_within(router, req, request_timeout).await;
            drop(busy);
            tracing::info!(
                target: "lti_app::request",
                status = response.status().as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
            Ok::<_, Infallible>(response)
        }
        .instrument(span)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    let last_active = || {
        let last = start + Duration::from_millis(activity.load(Ordering::Relaxed));
        // A request being handled is governed by the request timeout.
        if in_flight.load(Ordering::Relaxed) > 0 {
            Instant::now()
        } else {
            last
        }
    };
    loop {
        let idle_deadline = last_active() + limits.idle_timeout;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                if Instant::now() >= last_active() + limits.idle_timeout {
                    tracing::debug!("idle timeout: connection dropped");
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The router's response to `req`, or `408 request_timeout` (closing the
/// connection) when it takes longer than `timeout`.
async fn answer_within(
    router: Router,
    req: Request<Incoming>,
    timeout: Duration,
) -> Response<Body> {
    let json = lti_axum::wants_json(req.headers());
    match tokio::time::timeout(timeout, router.oneshot(req.map(Body::new))).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            tracing::info!(
                code = "request_timeout",
                timeout_secs = timeout.as_secs(),
                "request not completed in time"
            );
            let message = format!(
                "request timeout: expected the request to be received and answered within {} s, found it took longer",
                timeout.as_secs()
            );
            let (content_type, body) = if json {
                (
                    "application/json",
                    lti_tool::web::error_json("request_timeout", &message),
                )
            } else {
                (
                    "text/html; charset=utf-8",
                    lti_tool::web::error_page(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        &message,
                    ),
                )
            };
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Counts a request as in flight until dropped (when its response is ready,
/// or when hyper drops the request's future).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that records when a byte last moved (milliseconds since
/// `start`), for the idle timeout.
struct Tracked {
    inner: TcpStream,
    start: Instant,
    activity: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(elapsed, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
