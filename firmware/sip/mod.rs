//! SIP: the wire format, digest authentication, transactions and the socket drivers.
//!
//! Layers, bottom up:
//! - [`message`]: two-stage parser (frame, then checked [`message::Request`]/[`message::Response`]).
//! - [`writer`]: builds outgoing messages as bytes.
//! - [`auth`]: RFC 8760/7616 digest (MD5, SHA-256) with stateless nonces, and the failed-auth
//!   guard per source address.
//! - [`transaction`]: RFC 3261 §17 transactions as sans-IO state with timers as data.
//! - [`transport`]: the tokio UDP and TCP drivers (the only code here that does I/O).
//!
//! Why not rsipstack's parser and transactions: see `docs/design.md` ("SIP stack").

pub mod auth;
pub mod message;
pub mod transaction;
pub mod transport;
pub mod writer;

use std::fmt;
use std::net::SocketAddr;

/// The transport a message arrived on or leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// A TCP stream (the connection is identified by the peer address).
    Tcp,
}

impl Transport {
    /// The Via / `transport=` token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// True for transports that retransmit themselves (RFC 3261 §17: no timer A/E/G on TCP).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
}

/// The other end of a SIP hop: where a message came from, or where to send one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    /// UDP or TCP.
    pub transport: Transport,
    /// The remote socket address (for TCP, it names the connection).
    pub addr: SocketAddr,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_str().to_ascii_lowercase(),
            self.addr
        )
    }
}
