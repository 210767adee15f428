//! Media: SDP, the RTP port pool and the RTP/RTCP relay.
//!
//! Layers:
//! - [`sdp`]: parse an SDP body into a checked [`sdp::Sdp`], render our own offers and answers
//!   (sans-IO, never panics on input).
//! - [`pool`]: which RTP ports are free (pure data, owned by the engine).
//! - [`relay`]: the driver: tokio UDP sockets that relay RTP and RTCP between the two legs of a
//!   call, latching to the first packet's source (symmetric RTP) for NAT.
//!
//! The engine never touches a socket: it emits [`MediaCommand`]s that the relay executes.
//!
//! The public interface is: [`RelayId`], [`Side`], [`MediaCommand`], [`PortPool`],
//! [`RelayManager`], [`RelayStats`], [`RelayError`], and the [`sdp`] module (parse, render and
//! codec selection). Measured relay cost: `docs/PERFORMANCE.md`, "RTP relay".

pub mod audio;
pub mod dtmf;
pub mod pool;
pub mod prompts;
pub mod relay;
pub mod sdp;

pub use pool::PortPool;
pub use relay::{RelayError, RelayManager, RelayStats};

use std::net::SocketAddr;

/// Identifies one relay (one per call bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayId(pub u64);

/// Which side of a relay: `A` faces the caller, `B` the callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg.
    A,
    /// The callee's leg.
    B,
}

/// What the engine asks of the media relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// Bind `a_port` (+1 for RTCP) facing the caller and `b_port` (+1) facing the callee and start
    /// relaying. A remote of `None` is learnt from the first packet (latching).
    Open {
        /// The relay.
        relay: RelayId,
        /// Local RTP port facing the caller (even); RTCP is `a_port + 1`.
        a_port: u16,
        /// Local RTP port facing the callee (even); RTCP is `b_port + 1`.
        b_port: u16,
        /// Where the caller said (SDP) it receives RTP.
        a_remote: Option<SocketAddr>,
        /// Where the callee said (SDP) it receives RTP.
        b_remote: Option<SocketAddr>,
    },
    /// The SDP of one side changed (re-INVITE): send to this address until a packet re-latches.
    SetRemote {
        /// The relay.
        relay: RelayId,
        /// Which side changed.
        side: Side,
        /// The new RTP address from SDP.
        remote: SocketAddr,
    },
    /// Stop relaying and free the sockets.
    Close {
        /// The relay.
        relay: RelayId,
    },
}
