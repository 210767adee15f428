//! The socket drivers: the HTTPS listener (TLS handshake, then HTTP/1.1 into the router) and
//! the plain-HTTP listener that only redirects to HTTPS.
//!
//! Every stage has a bound: [`MAX_CONNECTIONS`] at once (more are closed at accept),
//! [`HANDSHAKE_TIMEOUT`], [`HEADER_TIMEOUT`] per request head, [`MAX_HEADER_BYTES`], and
//! [`CONNECTION_LIFETIME`] for a whole keep-alive connection. A client that stalls anywhere
//! costs one permit for a bounded time, never a worker thread.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Connections served at once, HTTPS and HTTP redirect each. A LAN admin page has a handful
/// of users with a few connections each; the bound keeps a flood from taking the box's RAM.
pub const MAX_CONNECTIONS: usize = 64;

/// Time a client gets to finish the TLS handshake: a LAN handshake takes milliseconds.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client gets to send a request head, also between keep-alive requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest request head buffered (hyper's minimum is 8 KiB; cookies and a few headers fit).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A connection is closed after this long whatever it does: bounds a slow-drip client.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Pause after a failed accept (out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The client's address, put into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Serves one established stream (TLS or plain) with `app` until it closes or times out.
async fn serve_stream<S>(io: S, peer: SocketAddr, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), svc);
    match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::debug!("web: connection from {peer}: {e}"),
        Err(_) => log::debug!("web: connection from {peer} closed after {CONNECTION_LIFETIME:?}"),
    }
}

/// Accepts on `listener` forever; `tls` present = HTTPS.
pub async fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, app: Router) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                log::warn!("web: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            log::warn!("web: {MAX_CONNECTIONS} connections open; closing the one from {peer}");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => serve_stream(stream, peer, app).await,
                    Ok(Err(e)) => log::debug!("web: TLS handshake with {peer} failed: {e}"),
                    Err(_) => log::debug!("web: TLS handshake with {peer} timed out"),
                },
                None => serve_stream(tcp, peer, app).await,
            }
        });
    }
}
