//! Core's HTTP listener, with the limits a server reachable by others
//! needs: a cap on open connections (from the process's descriptor limit,
//! so sockets can never use up the descriptors Core needs for its own
//! files), a deadline for reading a request's headers (a client that opens
//! a socket and says nothing, or trickles a byte at a time, is dropped),
//! and graceful shutdown of the connections in flight.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tower::ServiceExt as _;

/// A request's headers must arrive within this long (also between requests
/// on a kept-alive connection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections in flight get to finish when Core stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Connections served at once: half the descriptors Core may open (the
/// soft limit raised to the hard one first), between 16 and 8192. Past it,
/// new connections wait in the kernel's backlog.
pub(crate) fn connection_limit() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    let descriptors = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 256;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    (descriptors / 2).clamp(16, 8192) as usize
}

/// Serves `app` on `listener` until `stop` fires.
pub(crate) async fn serve(listener: TcpListener, app: Router, stop: oneshot::Receiver<()>) {
    let limit = connection_limit();
    tracing::debug!(limit, "serving HTTP");
    let permits = Arc::new(Semaphore::new(limit));
    let (closing, closing_seen) = watch::channel(false);
    let mut stop = pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("holds because the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, say: wait a moment instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let service =
            TowerToHyperService::new(app.clone().map_request(|request: Request<Incoming>| request.map(Body::new)));
        let mut closing_seen = closing_seen.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service).with_upgrades());
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = closing_seen.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(closing_seen);
    let _ = closing.send(true);
    // Every connection task holds a receiver: when they are all gone, done.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, closing.closed()).await;
}
