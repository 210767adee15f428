//! The SIP socket drivers: one UDP socket and one TCP listener on the SIP port.
//!
//! They only move bytes: every received message goes to the engine's inbox as
//! [`Inbound`]; the engine's `Transmit` outputs come back through [`SipSockets::send`].
//! TCP connections are named by their peer address, so the engine needs no connection ids.

use super::message::MAX_SIP_MESSAGE;
use super::{Peer, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Largest datagram read (the UDP maximum).
const UDP_BUFFER: usize = 65_535;
/// Largest message assembled from a TCP stream; a peer that sends more in one message is
/// disconnected. Between [`MAX_SIP_MESSAGE`] and this the engine answers 513.
pub const MAX_TCP_MESSAGE: usize = 65_535;
/// Most TCP connections at once; more are refused at accept (bounded memory).
pub const MAX_TCP_CONNECTIONS: usize = 1024;
/// Messages queued for writing on one TCP connection before it is considered stuck and closed.
const TCP_WRITE_QUEUE: usize = 256;
/// A TCP connection with no traffic for this long is closed (phones re-register well within it).
const TCP_IDLE: Duration = Duration::from_secs(2 * 3600);

/// One message for the engine.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it.
    pub peer: Peer,
    /// The bytes (one datagram, or one framed stream message).
    pub data: Vec<u8>,
}

type Connections = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// The bound SIP sockets.
#[derive(Clone)]
pub struct SipSockets {
    udp: Arc<UdpSocket>,
    tcp: Connections,
    inbox: mpsc::Sender<Inbound>,
}

impl SipSockets {
    /// Binds UDP and TCP on `addr` and starts the receive tasks, which feed `inbox`.
    pub async fn bind(addr: SocketAddr, inbox: mpsc::Sender<Inbound>) -> std::io::Result<SipSockets> {
        let udp = Arc::new(UdpSocket::bind(addr).await?);
        let listener = TcpListener::bind(addr).await?;
        let sockets = SipSockets { udp: udp.clone(), tcp: Arc::default(), inbox: inbox.clone() };
        tokio::spawn(udp_receive(udp, inbox));
        tokio::spawn(tcp_accept(listener, sockets.clone()));
        Ok(sockets)
    }

    /// Sends a message; errors are logged, never fatal (the transaction layer retransmits).
    pub async fn send(&self, peer: Peer, data: Vec<u8>) {
        match peer.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.try_send_to(&data, peer.addr) {
                    if e.kind() == std::io::ErrorKind::WouldBlock {
                        let _ = self.udp.send_to(&data, peer.addr).await;
                    } else {
                        log::debug!("udp send to {} failed: {e}", peer.addr);
                    }
                }
            }
            Transport::Tcp => {
                let existing = self.tcp.lock().ok().and_then(|m| m.get(&peer.addr).cloned());
                match existing {
                    Some(tx) => {
                        if tx.try_send(data).is_err() {
                            log::warn!("tcp connection to {} is stuck; closing it", peer.addr);
                            if let Ok(mut m) = self.tcp.lock() {
                                m.remove(&peer.addr);
                            }
                        }
                    }
                    None => {
                        // The phone's connection is gone: open a new one (RFC 3261 §18.1.1).
                        let sockets = self.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(peer.addr))
                                .await
                            {
                                Ok(Ok(stream)) => {
                                    let tx = sockets.clone().adopt(stream, peer.addr);
                                    let _ = tx.try_send(data);
                                }
                                _ => log::info!("cannot connect to {} over tcp", peer.addr),
                            }
                        });
                    }
                }
            }
        }
    }

    /// Registers a TCP stream and starts its reader and writer; returns its write queue.
    fn adopt(self, stream: TcpStream, addr: SocketAddr) -> mpsc::Sender<Vec<u8>> {
        let (tx, rx) = mpsc::channel(TCP_WRITE_QUEUE);
        if let Ok(mut m) = self.tcp.lock() {
            m.insert(addr, tx.clone());
        }
        let (read, write) = stream.into_split();
        tokio::spawn(tcp_write(write, rx));
        tokio::spawn(tcp_read(read, addr, self));
        tx
    }

    fn tcp_count(&self) -> usize {
        self.tcp.lock().map(|m| m.len()).unwrap_or(0)
    }
}

async fn udp_receive(udp: Arc<UdpSocket>, inbox: mpsc::Sender<Inbound>) {
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let msg =
                    Inbound { peer: Peer { transport: Transport::Udp, addr: from }, data: buf[..n].to_vec() };
                // A full inbox means overload: dropping a datagram is what UDP does anyway, and
                // the sender's transaction layer retransmits.
                if let Err(mpsc::error::TrySendError::Closed(_)) = inbox.try_send(msg) {
                    return;
                }
            }
            // ICMP port unreachable surfaces as an error on some systems; keep serving.
            Err(e) => log::debug!("udp receive error: {e}"),
        }
    }
}

async fn tcp_accept(listener: TcpListener, sockets: SipSockets) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else { continue };
        if sockets.tcp_count() >= MAX_TCP_CONNECTIONS {
            log::warn!("ALARM: too many SIP TCP connections; refusing {addr}");
            continue;
        }
        let _ = stream.set_nodelay(true);
        sockets.clone().adopt(stream, addr);
    }
}

async fn tcp_write(mut write: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(data) = rx.recv().await {
        if write.write_all(&data).await.is_err() {
            break;
        }
    }
}

async fn tcp_read(mut read: tokio::net::tcp::OwnedReadHalf, addr: SocketAddr, sockets: SipSockets) {
    let peer = Peer { transport: Transport::Tcp, addr };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout(TCP_IDLE, read.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match next_stream_message(&buf) {
                StreamFrame::Complete(len) => {
                    let data: Vec<u8> = buf.drain(..len).collect();
                    if sockets.inbox.send(Inbound { peer, data }).await.is_err() {
                        return;
                    }
                }
                StreamFrame::Incomplete => break,
                StreamFrame::TooLarge => {
                    log::info!("closing tcp {addr}: message over {MAX_TCP_MESSAGE} bytes");
                    if let Ok(mut m) = sockets.tcp.lock() {
                        m.remove(&addr);
                    }
                    return;
                }
            }
        }
    }
    if let Ok(mut m) = sockets.tcp.lock() {
        m.remove(&addr);
    }
}

/// What the front of a stream buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum StreamFrame {
    /// A whole message (or a CRLF keep-alive) of this many bytes.
    Complete(usize),
    /// Not enough bytes yet.
    Incomplete,
    /// More than [`MAX_TCP_MESSAGE`] for one message.
    TooLarge,
}

/// Frames one message on a stream by its Content-Length (RFC 3261 §18.3; on streams the header
/// is mandatory, a missing one counts as 0).
fn next_stream_message(buf: &[u8]) -> StreamFrame {
    // Keep-alives: CRLFCRLF ping (RFC 5626) or stray CRLF between messages.
    if buf.starts_with(b"\r\n\r\n") {
        return StreamFrame::Complete(4);
    }
    if buf.starts_with(b"\r\n") && buf.len() >= 3 && buf[2] != b'\r' {
        return StreamFrame::Complete(2);
    }
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_TCP_MESSAGE { StreamFrame::TooLarge } else { StreamFrame::Incomplete };
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut length = 0usize;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let total = head_end.saturating_add(4).saturating_add(length);
    if total > MAX_TCP_MESSAGE.max(MAX_SIP_MESSAGE) {
        return StreamFrame::TooLarge;
    }
    if buf.len() < total {
        StreamFrame::Incomplete
    } else {
        StreamFrame::Complete(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_framing_follows_content_length() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabcOPT";
        assert_eq!(next_stream_message(m), StreamFrame::Complete(m.len() - 3));
        assert_eq!(next_stream_message(&m[..20]), StreamFrame::Incomplete);
        assert_eq!(next_stream_message(b"\r\n\r\nX"), StreamFrame::Complete(4));
        let huge = b"INVITE sip:a SIP/2.0\r\nContent-Length: 999999\r\n\r\n";
        assert_eq!(next_stream_message(huge), StreamFrame::TooLarge);
    }
}
