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
//! The public interface is: [`RelayId`], [`Side`], [`MediaCommand`], [`Clip`], [`MediaEvent`],
//! [`PortPool`],
//! [`RelayManager`], [`RelayStats`], [`RelayError`], and the [`sdp`] module (parse, render and
//! codec selection). Measured relay cost: `docs/PERFORMANCE.md`, "RTP relay".

pub mod audio;
pub mod conference;
pub mod dtmf;
pub mod pool;
pub mod process;
pub mod prompts;
pub mod relay;
pub mod sdp;

pub use pool::PortPool;
pub use relay::{RelayError, RelayManager, RelayStats};

use audio::mixer::MonitorMode;
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
    /// Stop relaying and free the sockets (also leaves a conference room).
    Close {
        /// The relay.
        relay: RelayId,
    },
    /// What one side negotiated, so the relay can decode its audio and read its DTMF.
    Codec {
        /// The relay.
        relay: RelayId,
        /// Which side.
        side: Side,
        /// The G.711 payload type in use (0 PCMU, 8 PCMA).
        audio_pt: u8,
        /// The telephone-event payload type, when negotiated.
        telephone_event_pt: Option<u8>,
        /// Scan the audio for DTMF tones (the fallback when no telephone-event was negotiated).
        inband_dtmf: bool,
    },
    /// Play clips to one side's phone instead of what the other side sends (prompts, music on
    /// hold). A later `Play` replaces an unfinished one.
    Play {
        /// The relay.
        relay: RelayId,
        /// Whose phone hears it.
        side: Side,
        /// What to play, in order.
        clips: Vec<Clip>,
        /// Start again at the end (music on hold) instead of reporting [`MediaEvent::PlayDone`].
        looped: bool,
    },
    /// Stop playing to one side; relaying resumes.
    StopPlay {
        /// The relay.
        relay: RelayId,
        /// Whose phone.
        side: Side,
    },
    /// Record both directions, mixed, into a G.711 WAV at `path` (relative to the recordings
    /// directory of the media driver).
    Record {
        /// The relay.
        relay: RelayId,
        /// e.g. `20261122/call-7.wav`.
        path: String,
    },
    /// Stop recording (also done by `Close`); reported as [`MediaEvent::Recorded`].
    StopRecord {
        /// The relay.
        relay: RelayId,
    },
    /// Send key presses to one side's phone as RFC 4733 telephone-events (100 ms each, 100 ms
    /// apart), on the box's own RTP stream towards that phone (IVR, issue 6).
    SendDigits {
        /// The relay.
        relay: RelayId,
        /// Whose phone receives them.
        side: Side,
        /// `0-9 * # A-D`; others are skipped.
        digits: String,
    },
    /// Connect a phone to a conference room mixed by the box: one port facing the phone.
    JoinRoom {
        /// The participant's relay id (the call id).
        relay: RelayId,
        /// The room number, e.g. 9201.
        room: u32,
        /// Local RTP port facing the phone (even); RTCP is `port + 1`.
        port: u16,
        /// Where the phone said (SDP) it receives RTP.
        remote: Option<SocketAddr>,
        /// The G.711 payload type in use.
        audio_pt: u8,
        /// The telephone-event payload type, when negotiated.
        telephone_event_pt: Option<u8>,
    },
    /// Connect a supervisor's phone to the room of an agent's call already in a `mode`
    /// (issue 6). Like [`MediaCommand::JoinRoom`], but the mode applies before the first mix,
    /// so not even one frame of the supervisor reaches a party that must not hear it.
    JoinRoomMonitoring {
        /// The supervisor's relay id (their call's id).
        relay: RelayId,
        /// The agent's call room.
        room: u32,
        /// Local RTP port facing the supervisor's phone (even); RTCP is `port + 1`.
        port: u16,
        /// Where the phone said (SDP) it receives RTP.
        remote: Option<SocketAddr>,
        /// The G.711 payload type in use.
        audio_pt: u8,
        /// The telephone-event payload type, when negotiated (mode keys 4/5/6).
        telephone_event_pt: Option<u8>,
        /// The agent's participant in that room.
        agent: RelayId,
        /// What the supervisor hears and who hears them.
        mode: MonitorMode,
    },
    /// Moves a two-party call from its relay into a room on the same two ports (a supervised
    /// call, issue 6): the relay closes, side A joins as `relay` and side B as `b_participant`,
    /// and a running recording goes on in the room, in the same file. The phones get no SIP
    /// message; only the SSRC of what they receive changes.
    MoveToRoom {
        /// The call's relay; side A's seat keeps this id.
        relay: RelayId,
        /// Side B's seat.
        b_participant: RelayId,
        /// The room.
        room: u32,
        /// The relay's ports, side A then side B (even; RTCP is `port + 1`).
        ports: [u16; 2],
        /// Where each phone said (SDP) it receives RTP.
        remotes: [Option<SocketAddr>; 2],
        /// The G.711 payload type in use.
        audio_pt: u8,
        /// The telephone-event payload type, when negotiated.
        telephone_event_pt: Option<u8>,
    },
    /// The reverse of [`MediaCommand::MoveToRoom`]: both seats leave the room (anyone else in
    /// it stays), the relay opens again on their ports and a recording the room kept for the
    /// call goes on in the relay, in the same file. The engine sends the `Codec`s afterwards.
    MoveToRelay {
        /// The call's relay (side A's seat).
        relay: RelayId,
        /// Side B's seat.
        b_participant: RelayId,
        /// The ports, side A then side B.
        ports: [u16; 2],
        /// Where each phone said (SDP) it receives RTP; the relay latches anew.
        remotes: [Option<SocketAddr>; 2],
    },
    /// Change a supervisor's mode towards an agent in the same room (issue 6).
    SetMonitor {
        /// The supervisor's relay id.
        relay: RelayId,
        /// The agent's participant.
        agent: RelayId,
        /// The new mode.
        mode: MonitorMode,
    },
}

impl MediaCommand {
    /// The relay (or room participant) a command is for.
    pub fn relay(&self) -> RelayId {
        match self {
            MediaCommand::Open { relay, .. }
            | MediaCommand::SetRemote { relay, .. }
            | MediaCommand::Close { relay }
            | MediaCommand::Codec { relay, .. }
            | MediaCommand::Play { relay, .. }
            | MediaCommand::StopPlay { relay, .. }
            | MediaCommand::Record { relay, .. }
            | MediaCommand::StopRecord { relay }
            | MediaCommand::SendDigits { relay, .. }
            | MediaCommand::JoinRoom { relay, .. }
            | MediaCommand::JoinRoomMonitoring { relay, .. }
            | MediaCommand::MoveToRoom { relay, .. }
            | MediaCommand::MoveToRelay { relay, .. }
            | MediaCommand::SetMonitor { relay, .. } => *relay,
        }
    }
}

/// Something to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clip {
    /// An embedded voice prompt (`sounds/`).
    Prompt {
        /// Its id, e.g. `rec.announce`.
        id: String,
        /// Its language.
        lang: prompts::Lang,
    },
    /// The music on hold: the admin's file (`[media] music_on_hold_file`) or the built-in tune.
    MusicOnHold,
    /// The ringback tone (呼出音) a caller hears while the far end rings, generated: one
    /// 3-second cycle to loop.
    Ringback,
    /// An admin audio file by name (`DATA/audio/NAME.wav`, imported with `audio import`).
    AudioFile(String),
    /// Silence, in milliseconds (gaps between prompt pieces).
    Silence(u32),
    /// A WAV file the box wrote itself, by full path (voicemail takes and messages; 8 kHz mono,
    /// G.711 or 16-bit). Not cached: each is played about once.
    File(std::path::PathBuf),
}

/// What the media drivers report back to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key press on one side (RFC 4733 or in-band; INFO digits reach the engine directly).
    Digit {
        /// The relay.
        relay: RelayId,
        /// Which side's phone pressed it.
        side: Side,
        /// The press.
        event: dtmf::DigitEvent,
    },
    /// A non-looped `Play` finished.
    PlayDone {
        /// The relay.
        relay: RelayId,
        /// Whose phone heard it.
        side: Side,
    },
    /// A recording was finished and closed.
    Recorded {
        /// The relay.
        relay: RelayId,
        /// The path given in `Record`.
        path: String,
        /// Bytes written to the data partition (header + audio).
        bytes: u64,
    },
}
