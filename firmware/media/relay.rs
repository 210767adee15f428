//! The RTP/RTCP relay driver: executes the engine's [`MediaCommand`]s with tokio UDP sockets.
//!
//! One relay = four sockets (RTP and RTCP facing the caller, side A; RTP and RTCP facing the
//! callee, side B) and one tokio task. A datagram that arrives on side A's RTP socket leaves
//! through side B's RTP socket towards B's remote, and vice versa; RTCP likewise on port + 1.
//!
//! Symmetric RTP (RFC 4961, and what every PBX does for phones behind NAT): each side *latches*
//! its remote to the source of the first valid packet received on that side's socket. Until then
//! it sends to the address from SDP. After the latch, packets from any other source are dropped
//! (they are either stale packets of an older call or injection attempts). `SetRemote` (a
//! re-INVITE) replaces the SDP address and allows one new latch. RTCP latches on its own; before
//! it does, RTCP goes to the RTP remote's port + 1 (`a=rtcp` is not carried by the command).
//!
//! One stream per phone: RTP towards a phone is rewritten onto that phone's `OutStream` (one
//! SSRC, sequence numbers +1, timestamps going on), whether it was forwarded or made by the
//! box's player, so a switch of source (music → agent, a transfer) is not an SSRC change for
//! the phone. A re-open of the same call on the same port continues the stream. RTCP is
//! forwarded as it came. Details: `docs/media.md`, "One RTP stream per phone".
//!
//! Bounded by construction: one receive buffer per relay (the task reads its four sockets in
//! turn), no queues. A datagram that cannot be sent at once (socket buffer full) is dropped,
//! which is what a router would do to real-time media.
//!
//! Counting: every datagram received counts in `a_rx_*`/`b_rx_*` and then in exactly one of
//! `forwarded` or `dropped`, so `a_rx_packets + b_rx_packets == forwarded + dropped`.
//!
//! Close is synchronous: the sockets are dropped (ports re-bindable) before `execute` returns.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::audio::{FRAME_SAMPLES, SAMPLE_RATE_HZ};
use super::process::{Outgoing, Processing};
use super::{MediaCommand, MediaEvent, RelayId, Side};
use std::path::PathBuf;
use std::task::Waker;
use std::time::Instant;

/// Media events queued for the engine; beyond this they are dropped (and logged): a stalled
/// engine must not make the media tasks wait.
pub const EVENT_QUEUE: usize = 4096;
/// The media tick of relays that play, record or detect DTMF.
const TICK: std::time::Duration = std::time::Duration::from_millis(20);

/// Largest datagram relayed. Voice RTP is far smaller (G.711 20 ms = 172 bytes); anything
/// beyond an Ethernet MTU would have been fragmented and is not media we expect. The receive
/// buffer is one byte longer so that an oversized (truncated) datagram is detected and dropped.
pub const MAX_DATAGRAM_BYTES: usize = 1500;

/// Datagrams handled per task wakeup before yielding to the runtime, so that one flooded relay
/// cannot starve the others on the same worker thread.
pub const MAX_DATAGRAMS_PER_WAKEUP: usize = 32;

/// Smallest RTCP packet: a receiver report without report blocks (RFC 3550 §6.4.2).
const MIN_RTCP_BYTES: usize = 8;

/// The RTP/RTCP version we accept (RFC 3550 §5.1), in the top two bits of the first byte.
const RTP_VERSION: u8 = 2;

/// Socket slots of a relay: side A RTP, side A RTCP, side B RTP, side B RTCP.
const SOCKETS_PER_RELAY: usize = 4;

/// Counters and remotes of one relay, as seen by [`RelayManager::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Datagrams received on side A's sockets (RTP and RTCP).
    pub a_rx_packets: u64,
    /// Bytes received on side A's sockets.
    pub a_rx_bytes: u64,
    /// Datagrams received on side B's sockets (RTP and RTCP).
    pub b_rx_packets: u64,
    /// Bytes received on side B's sockets.
    pub b_rx_bytes: u64,
    /// Datagrams sent on to the other side.
    pub forwarded: u64,
    /// Datagrams not sent on: not RTP/RTCP v2, from a non-latched source, oversized, no remote
    /// known for the other side, or the send failed.
    pub dropped: u64,
    /// Where side A's RTP goes (latched, else from SDP).
    pub a_remote: Option<SocketAddr>,
    /// Where side B's RTP goes (latched, else from SDP).
    pub b_remote: Option<SocketAddr>,
}

/// Why a [`MediaCommand`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayError {
    /// A local port could not be bound (in use, no permission, or not a usable RTP port).
    Bind {
        /// The port.
        port: u16,
        /// The OS error or the reason the port is unusable.
        reason: String,
    },
    /// `SetRemote` or `Close` for a relay that is not open.
    UnknownRelay(RelayId),
    /// `Open` for a relay id that is already open.
    AlreadyOpen(RelayId),
    /// `Open` was executed outside a tokio runtime.
    NoRuntime,
    /// A recording file could not be created.
    Record {
        /// The path.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// `JoinRoom` failed (port, or the room is full).
    Room(String),
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::Bind { port, reason } => write!(f, "cannot bind RTP port {port}: {reason}"),
            RelayError::UnknownRelay(id) => write!(f, "relay {} is not open", id.0),
            RelayError::AlreadyOpen(id) => write!(f, "relay {} is already open", id.0),
            RelayError::NoRuntime => write!(f, "the RTP relay needs a tokio runtime"),
            RelayError::Record { path, reason } => write!(f, "cannot record to {path}: {reason}"),
            RelayError::Room(reason) => write!(f, "conference: {reason}"),
        }
    }
}

impl std::error::Error for RelayError {}

/// Opens, re-targets and closes relays. Cloning is cheap and shares the same relays; when the
/// last clone is dropped, every relay is closed.
#[derive(Clone)]
pub struct RelayManager {
    inner: Arc<Manager>,
}

impl fmt::Debug for RelayManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayManager")
            .field("bind", &self.inner.bind)
            .field("active", &self.active())
            .finish()
    }
}

struct Manager {
    bind: IpAddr,
    relays: Mutex<HashMap<RelayId, Entry>>,
    /// Where `MediaEvent`s go (none in plain relay tests).
    events: Option<mpsc::Sender<MediaEvent>>,
    /// The recordings directory (`Record` paths are relative to it).
    recordings: Option<PathBuf>,
    /// Conference rooms and their participants.
    rooms: super::conference::Rooms,
    /// Outgoing streams of closed relays, oldest first, for a re-open of the same call.
    parked: Mutex<VecDeque<ParkedStream>>,
}

/// Streams kept after a close. A re-open follows its close in the same batch of engine
/// outputs (a transfer, a queue or IVR bridging an agent), or after a supervision session;
/// 256 covers the closes of 128 other calls in between. An evicted stream only means the
/// phone sees a new SSRC, as it did before streams were kept.
const MAX_PARKED_STREAMS: usize = 256;

/// One side's outgoing stream of a closed relay.
#[derive(Debug, Clone, Copy)]
struct ParkedStream {
    relay: RelayId,
    /// The local RTP port facing the phone: it identifies the phone's call leg (a replaced
    /// side gets a new port from the pool).
    port: u16,
    stream: OutStream,
}

struct Entry {
    relay: Arc<Mutex<RelayState>>,
    task: JoinHandle<()>,
}

impl RelayManager {
    /// A manager whose relays bind their sockets to `bind` (e.g. `0.0.0.0` or the LAN address).
    pub fn new(bind: IpAddr) -> RelayManager {
        RelayManager::with_media(bind, None, None)
    }

    /// A manager that reports [`MediaEvent`]s to `events` and records under `recordings`.
    pub fn with_media(
        bind: IpAddr,
        events: Option<mpsc::Sender<MediaEvent>>,
        recordings: Option<PathBuf>,
    ) -> RelayManager {
        let rooms = super::conference::Rooms::new(bind, events.clone());
        RelayManager {
            inner: Arc::new(Manager {
                bind,
                relays: Mutex::new(HashMap::new()),
                events,
                recordings,
                rooms,
                parked: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Runs `f` on a relay's processing state (created on first use), then wakes its task.
    fn with_processing(
        &self,
        relay: RelayId,
        f: impl FnOnce(&mut Processing) -> Result<(), RelayError>,
    ) -> Result<(), RelayError> {
        let relays = self.relays();
        let entry = relays.get(&relay).ok_or(RelayError::UnknownRelay(relay))?;
        let mut state = lock(&entry.relay);
        let proc = state.processing.get_or_insert_with(|| Box::new(Processing::new(relay)));
        let result = f(proc);
        let events: Vec<MediaEvent> = proc.drain_events().collect();
        if let Some(w) = state.waker.take() {
            w.wake();
        }
        drop(state);
        drop(relays);
        self.send_events(events);
        result
    }

    fn send_events(&self, events: Vec<MediaEvent>) {
        send_events(&self.inner.events, events);
    }

    /// Executes one command. `Open` binds all four sockets before returning, so a bind error is
    /// reported here, then spawns the relay's task; it must run inside a tokio runtime. `Close`
    /// drops the sockets before returning.
    pub fn execute(&self, cmd: MediaCommand) -> Result<(), RelayError> {
        match cmd {
            MediaCommand::Open { relay, a_port, b_port, a_remote, b_remote } => {
                self.open(relay, a_port, b_port, a_remote, b_remote)
            }
            MediaCommand::SetRemote { relay, side, remote } => {
                if self.inner.rooms.contains(relay) {
                    // Room participants latch to the phone's source; nothing to re-target.
                    return Ok(());
                }
                let relays = self.relays();
                let entry = relays.get(&relay).ok_or(RelayError::UnknownRelay(relay))?;
                let mut state = lock(&entry.relay);
                // A new SDP address: forget the old latch so the next packet may latch anew.
                // The phone's leg is the same, so its outgoing stream goes on.
                let out = state.peers[side_index(side)].out;
                state.peers[side_index(side)] = Peer { out, ..Peer::from_sdp(Some(remote)) };
                Ok(())
            }
            MediaCommand::Close { relay } => {
                if self.inner.rooms.leave(relay) {
                    return Ok(());
                }
                let entry = self.relays().remove(&relay).ok_or(RelayError::UnknownRelay(relay))?;
                self.park_streams(relay, &entry);
                let events = close(entry);
                self.send_events(events);
                log::debug!("relay {} closed", relay.0);
                Ok(())
            }
            MediaCommand::Codec { relay, side, audio_pt, telephone_event_pt, inband_dtmf } => {
                if self.inner.rooms.contains(relay) {
                    return Ok(());
                }
                self.with_processing(relay, |p| {
                    p.set_codec(side, audio_pt, telephone_event_pt, inband_dtmf);
                    Ok(())
                })
            }
            MediaCommand::Play { relay, side, clips, looped } => {
                if self.inner.rooms.contains(relay) {
                    return self.inner.rooms.play(relay, &clips, looped);
                }
                // The player's packets join the phone's one outgoing stream in `poll_relay`.
                self.with_processing(relay, |p| {
                    p.play(side, &clips, looped);
                    Ok(())
                })
            }
            MediaCommand::StopPlay { relay, side } => self.with_processing(relay, |p| {
                p.stop_play(side);
                Ok(())
            }),
            MediaCommand::Record { relay, path } => {
                let dir = self.inner.recordings.clone().unwrap_or_else(|| PathBuf::from("recordings"));
                if self.inner.rooms.contains(relay) {
                    // A call hosted by a room (supervised): the room records it. It decodes
                    // every seat to PCM, so the file's law is free: µ-law, as most relays write.
                    if !self.inner.rooms.hosts_call(relay) {
                        return Err(RelayError::Room(format!("relay {} hosts no call to record", relay.0)));
                    }
                    let law = super::audio::g711::Law::Mu;
                    let file = super::process::Recording::create(&dir, &path, law)
                        .map_err(|e| RelayError::Record { path: path.clone(), reason: e.to_string() })?;
                    return self.inner.rooms.record_call(relay, file).map_err(|file| {
                        // Recorded already (or the call left meanwhile): this file is closed.
                        self.send_events(vec![file.finish(relay)]);
                        RelayError::Room(format!("call {} is recorded already", relay.0))
                    });
                }
                self.with_processing(relay, |p| {
                    p.record(&dir, &path).map_err(|e| RelayError::Record { path, reason: e.to_string() })
                })
            }
            MediaCommand::SendDigits { relay, side, digits } => self.with_processing(relay, |p| {
                p.send_digits(side, &digits, now());
                Ok(())
            }),
            MediaCommand::StopRecord { relay } => {
                if self.inner.rooms.contains(relay) {
                    let finished = self.inner.rooms.take_recording(relay).map(|f| f.finish(relay));
                    self.send_events(finished.into_iter().collect());
                    return Ok(());
                }
                self.with_processing(relay, |p| {
                    p.stop_record();
                    Ok(())
                })
            }
            MediaCommand::JoinRoom { relay, room, port, remote, audio_pt, telephone_event_pt } => {
                self.inner.rooms.join(relay, room, port, remote, audio_pt, telephone_event_pt)
            }
            MediaCommand::JoinRoomMonitoring {
                relay,
                room,
                port,
                remote,
                audio_pt,
                telephone_event_pt,
                agent,
                mode,
            } => self.inner.rooms.join_with(
                relay,
                room,
                port,
                remote,
                (audio_pt, telephone_event_pt),
                Some((agent, mode)),
            ),
            MediaCommand::SetMonitor { relay, agent, mode } => self.inner.rooms.monitor(relay, agent, mode),
            MediaCommand::MoveToRoom {
                relay,
                b_participant,
                room,
                ports,
                remotes,
                audio_pt,
                telephone_event_pt,
            } => {
                let recording = self.close_keeping_recording(relay);
                let rooms = &self.inner.rooms;
                let codec = (audio_pt, telephone_event_pt);
                let joined = rooms.join_with(relay, room, ports[0], remotes[0], codec, None).and_then(|()| {
                    rooms.join_with(b_participant, room, ports[1], remotes[1], codec, None).inspect_err(
                        |_| {
                            rooms.leave(relay);
                        },
                    )
                });
                match (joined, recording) {
                    (Ok(()), rec) => {
                        rooms.host_call(room, [relay, b_participant], rec);
                        Ok(())
                    }
                    (Err(e), rec) => {
                        self.send_events(rec.map(|r| r.finish(relay)).into_iter().collect());
                        Err(e)
                    }
                }
            }
            MediaCommand::MoveToRelay { relay, b_participant, ports, remotes } => {
                let recording = self.inner.rooms.take_recording(relay);
                self.inner.rooms.leave(relay);
                self.inner.rooms.leave(b_participant);
                match (self.open(relay, ports[0], ports[1], remotes[0], remotes[1]), recording) {
                    (Ok(()), Some(rec)) => self.with_processing(relay, |p| {
                        p.resume_recording(rec);
                        Ok(())
                    }),
                    (Ok(()), None) => Ok(()),
                    (Err(e), rec) => {
                        self.send_events(rec.map(|r| r.finish(relay)).into_iter().collect());
                        Err(e)
                    }
                }
            }
        }
    }

    /// Closes `relay` (if open) as `Close` does, but hands back a running recording unfinished.
    fn close_keeping_recording(&self, relay: RelayId) -> Option<super::process::Recording> {
        let entry = self.relays().remove(&relay)?;
        let recording = lock(&entry.relay).processing.as_mut().and_then(|p| p.take_recording());
        self.park_streams(relay, &entry);
        let events = close(entry);
        self.send_events(events);
        log::debug!("relay {} closed into a room", relay.0);
        recording
    }

    /// Counters and remotes of an open relay.
    pub fn stats(&self, relay: RelayId) -> Option<RelayStats> {
        let relays = self.relays();
        let state = lock(&relays.get(&relay)?.relay);
        let mut stats = state.stats;
        stats.a_remote = state.peers[0].rtp;
        stats.b_remote = state.peers[1].rtp;
        Some(stats)
    }

    /// How many relays are open.
    pub fn active(&self) -> usize {
        self.relays().len()
    }

    /// Closes every relay (shutdown).
    pub fn close_all(&self) {
        self.inner.close_all();
    }

    fn relays(&self) -> MutexGuard<'_, HashMap<RelayId, Entry>> {
        lock(&self.inner.relays)
    }

    fn open(
        &self,
        relay: RelayId,
        a_port: u16,
        b_port: u16,
        a_remote: Option<SocketAddr>,
        b_remote: Option<SocketAddr>,
    ) -> Result<(), RelayError> {
        if self.relays().contains_key(&relay) {
            return Err(RelayError::AlreadyOpen(relay));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        let _in_runtime = runtime.enter();
        let bind = self.inner.bind;
        let sockets = [
            bind_udp(bind, a_port, 0)?,
            bind_udp(bind, a_port, 1)?,
            bind_udp(bind, b_port, 0)?,
            bind_udp(bind, b_port, 1)?,
        ];
        let peer = |remote, port| Peer { out: self.unpark_stream(relay, port), ..Peer::from_sdp(remote) };
        let state = Arc::new(Mutex::new(RelayState {
            sockets: Some(sockets),
            ports: [a_port, b_port],
            peers: [peer(a_remote, a_port), peer(b_remote, b_port)],
            stats: RelayStats::default(),
            processing: None,
            waker: None,
        }));
        let mut relays = self.relays();
        if relays.contains_key(&relay) {
            // Another thread opened the same id meanwhile; our sockets drop here.
            return Err(RelayError::AlreadyOpen(relay));
        }
        let task = runtime.spawn(run_relay(Arc::clone(&state), self.inner.events.clone()));
        relays.insert(relay, Entry { relay: state, task });
        log::debug!("relay {} open on ports {a_port}/{b_port}", relay.0);
        Ok(())
    }
}

impl RelayManager {
    /// Keeps a closing relay's outgoing streams for a re-open of the same call on the same
    /// ports (a transfer or a queue re-opens the relay with one side replaced; the other
    /// phone's leg and stream go on).
    fn park_streams(&self, relay: RelayId, entry: &Entry) {
        let state = lock(&entry.relay);
        let mut parked = lock(&self.inner.parked);
        for (port, peer) in state.ports.iter().zip(state.peers.iter()) {
            if !peer.out.is_started() {
                continue;
            }
            if parked.len() >= MAX_PARKED_STREAMS {
                parked.pop_front();
            }
            parked.push_back(ParkedStream { relay, port: *port, stream: peer.out.parked() });
        }
    }

    /// The stream parked by `relay`'s last close for the leg on `port`, else a new one.
    fn unpark_stream(&self, relay: RelayId, port: u16) -> OutStream {
        let mut parked = lock(&self.inner.parked);
        match parked.iter().rposition(|p| p.relay == relay && p.port == port) {
            Some(i) => parked.remove(i).map(|p| p.stream).unwrap_or_default(),
            None => OutStream::default(),
        }
    }
}

impl Manager {
    fn close_all(&self) {
        let entries: Vec<Entry> = lock(&self.relays).drain().map(|(_, e)| e).collect();
        for e in entries {
            let events = close(e);
            send_events(&self.events, events);
        }
        self.rooms.close_all();
    }
}

/// Hands events to the engine without waiting (a full queue drops them, logged).
pub(crate) fn send_events(to: &Option<mpsc::Sender<MediaEvent>>, events: Vec<MediaEvent>) {
    let Some(tx) = to else { return };
    for ev in events {
        if tx.try_send(ev).is_err() {
            log::warn!("media event queue full or closed; an event was dropped");
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// Drops the sockets now (so the ports are free when this returns), stops the task, and
/// finishes a recording; returns the events that produced.
fn close(entry: Entry) -> Vec<MediaEvent> {
    let mut state = lock(&entry.relay);
    let sockets = state.sockets.take();
    let events = match state.processing.as_mut() {
        Some(p) => {
            p.stop_record();
            p.drain_events().collect()
        }
        None => Vec::new(),
    };
    drop(state);
    drop(sockets);
    entry.task.abort();
    events
}

/// Binds `port + offset` (offset 1 = the RTCP port). The port must be an even, non-zero RTP
/// port with room for RTCP above it.
fn bind_udp(bind: IpAddr, port: u16, offset: u16) -> Result<UdpSocket, RelayError> {
    let unusable = |reason: &str| RelayError::Bind { port, reason: reason.to_owned() };
    if port == 0 {
        return Err(unusable("port 0 is not an RTP port"));
    }
    let actual = port.checked_add(offset).ok_or_else(|| unusable("no room for the RTCP port"))?;
    let err = |e: std::io::Error| RelayError::Bind { port: actual, reason: e.to_string() };
    let socket = std::net::UdpSocket::bind(SocketAddr::new(bind, actual)).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    UdpSocket::from_std(socket).map_err(err)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked (plain counters and
    // addresses), so a poisoned lock is used as is.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// Where one side's packets go, and whether that was learnt from a packet.
#[derive(Debug, Clone, Copy, Default)]
struct Peer {
    rtp: Option<SocketAddr>,
    rtp_latched: bool,
    rtcp: Option<SocketAddr>,
    rtcp_latched: bool,
    /// The one RTP stream this phone receives, whoever the packets come from.
    out: OutStream,
}

impl Peer {
    fn from_sdp(rtp: Option<SocketAddr>) -> Peer {
        Peer { rtp, ..Peer::default() }
    }

    /// RTCP destination: the latched RTCP source, else RTP port + 1 (RFC 3550 §11).
    fn rtcp_target(&self) -> Option<SocketAddr> {
        if self.rtcp_latched {
            return self.rtcp;
        }
        let rtp = self.rtp?;
        Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
    }
}

struct RelayState {
    /// `None` once closed; the task ends when it sees that.
    sockets: Option<[UdpSocket; SOCKETS_PER_RELAY]>,
    /// Local RTP ports facing side A and side B.
    ports: [u16; 2],
    /// Index 0 = side A, 1 = side B.
    peers: [Peer; 2],
    stats: RelayStats,
    /// DTMF, players and recording, once the engine asked for any.
    processing: Option<Box<Processing>>,
    /// The task's waker, so a command that adds processing starts its tick.
    waker: Option<Waker>,
}

async fn run_relay(state: Arc<Mutex<RelayState>>, events: Option<mpsc::Sender<MediaEvent>>) {
    let mut buf = [0u8; MAX_DATAGRAM_BYTES + 1];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    std::future::poll_fn(|cx| poll_relay(&state, cx, &mut buf, &mut tick, &events)).await;
}

#[allow(clippy::disallowed_methods)] // driver: media timestamps for DTMF and the jitter buffer
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Reads the four sockets in turn and relays what arrived, until all are empty or the
/// per-wakeup budget is spent; runs the 20 ms media tick when processing is on.
fn poll_relay(
    state: &Mutex<RelayState>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    tick: &mut tokio::time::Interval,
    events: &Option<mpsc::Sender<MediaEvent>>,
) -> Poll<()> {
    let mut guard = lock(state);
    guard.waker = Some(cx.waker().clone());
    let RelayState { sockets, peers, stats, processing, .. } = &mut *guard;
    let Some(sockets) = sockets.as_ref() else {
        return Poll::Ready(());
    };
    // One reading per wakeup: it only spaces the timestamps at a source switch.
    let now = now();
    if let Some(p) = processing.as_mut() {
        if p.needs_tick() {
            let mut out: Vec<Outgoing> = Vec::new();
            while tick.poll_tick(cx).is_ready() {
                p.on_tick(now, &mut out);
            }
            for mut o in out {
                let i = side_index(o.side);
                let (Some(peer), Some(sock)) = (peers.get_mut(i), sockets.get(i * 2)) else { continue };
                if let Some(target) = peer.rtp {
                    if peer.out.rewrite(&mut o.packet, Origin::Box, now) {
                        let _ = sock.poll_send_to(cx, &o.packet, target);
                    }
                }
            }
            send_events(events, p.drain_events().collect());
        }
    }
    let mut handled = 0usize;
    loop {
        let mut progress = false;
        for slot in 0..SOCKETS_PER_RELAY {
            let Some(socket) = sockets.get(slot) else {
                continue;
            };
            let mut read = ReadBuf::new(buf);
            match socket.poll_recv_from(cx, &mut read) {
                Poll::Pending => {}
                Poll::Ready(Err(e)) => {
                    // E.g. ECONNREFUSED left by an ICMP error; the socket stays usable.
                    log::trace!("relay recv error: {e}");
                    progress = true;
                    handled += 1;
                }
                Poll::Ready(Ok(source)) => {
                    progress = true;
                    handled += 1;
                    let data = read.filled_mut();
                    let side = slot / 2;
                    let rtcp = slot % 2 == 1;
                    let mut replaced = false;
                    if let Some(p) = processing.as_mut() {
                        // Taps see only packets from the latched source (checked again below).
                        let latched_ok = !peers[side].rtp_latched || peers[side].rtp == Some(source);
                        if !rtcp && latched_ok && data.len() <= MAX_DATAGRAM_BYTES && is_valid(data, false) {
                            let s = if side == 0 { Side::A } else { Side::B };
                            p.on_rtp(s, data, now);
                            send_events(events, p.drain_events().collect());
                        }
                        // While the box plays to the other phone, this phone's audio is not
                        // forwarded to it (music on hold, prompts).
                        let other = if side == 0 { Side::B } else { Side::A };
                        replaced = !rtcp && p.is_playing(other);
                    }
                    let forwarded = if replaced {
                        latch_only(peers, side, source);
                        false
                    } else {
                        relay_datagram(sockets, peers, stats, cx, (slot, source, data), now)
                    };
                    if forwarded {
                        stats.forwarded += 1;
                    } else {
                        stats.dropped += 1;
                    }
                }
            }
        }
        if !progress {
            return Poll::Pending;
        }
        if handled >= MAX_DATAGRAMS_PER_WAKEUP {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
    }
}

/// Handles one datagram received on socket `slot`; true if it was sent on. RTP leaves
/// rewritten onto the receiving phone's stream ([`OutStream`]); RTCP leaves as it came.
fn relay_datagram(
    sockets: &[UdpSocket; SOCKETS_PER_RELAY],
    peers: &mut [Peer; 2],
    stats: &mut RelayStats,
    cx: &mut Context<'_>,
    (slot, source, data): (usize, SocketAddr, &mut [u8]),
    now: Instant,
) -> bool {
    let side = slot / 2;
    let rtcp = slot % 2 == 1;
    let len = data.len() as u64;
    if side == 0 {
        stats.a_rx_packets += 1;
        stats.a_rx_bytes += len;
    } else {
        stats.b_rx_packets += 1;
        stats.b_rx_bytes += len;
    }
    if data.len() > MAX_DATAGRAM_BYTES || !is_valid(data, rtcp) {
        return false;
    }
    let Some(peer) = peers.get_mut(side) else {
        return false;
    };
    let (remote, latched) =
        if rtcp { (&mut peer.rtcp, &mut peer.rtcp_latched) } else { (&mut peer.rtp, &mut peer.rtp_latched) };
    if !*latched {
        *remote = Some(source);
        *latched = true;
    } else if *remote != Some(source) {
        return false;
    }
    let other = 1 - side;
    let Some(to_peer) = peers.get_mut(other) else {
        return false;
    };
    let target = if rtcp { to_peer.rtcp_target() } else { to_peer.rtp };
    let (Some(target), Some(out)) = (target, sockets.get(other * 2 + usize::from(rtcp))) else {
        return false;
    };
    if !rtcp && !to_peer.out.rewrite(data, Origin::Peer, now) {
        return false;
    }
    // A full socket buffer (Pending) drops the datagram: late media is useless media.
    matches!(out.poll_send_to(cx, data, target), Poll::Ready(Ok(n)) if n == data.len())
}

/// Latches a side to its first RTP source without forwarding (the other side hears a player).
fn latch_only(peers: &mut [Peer; 2], side: usize, source: SocketAddr) {
    if let Some(p) = peers.get_mut(side) {
        if !p.rtp_latched {
            p.rtp = Some(source);
            p.rtp_latched = true;
        }
    }
}

/// RTP: a well-formed v2 header (checked by `rtp-rs`). RTCP: version 2 and at least a header.
fn is_valid(data: &[u8], rtcp: bool) -> bool {
    if rtcp {
        data.len() >= MIN_RTCP_BYTES && data.first().is_some_and(|b| b >> 6 == RTP_VERSION)
    } else {
        // `RtpReader::new` checks version 2 and that CSRCs, extension and padding fit.
        rtp_rs::RtpReader::new(data).is_ok()
    }
}

/// Length of the RTP fixed header (RFC 3550 §5.1): what the stream rewrite reads and writes.
const RTP_FIXED_HEADER: usize = 12;

/// The marker bit, in the second header byte (RFC 3550 §5.1).
const RTP_MARKER: u8 = 0x80;

/// How far (in sequence numbers) the stream must have moved past a source switch before a
/// late packet of the new source is no longer checked against the switch point. RFC 3550
/// A.1's `MAX_MISORDER`: more misordering than this is a new sequence, not a late packet.
const MAX_MISORDER: u16 = 100;

/// Where a packet towards a phone comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Forwarded from the phone on the other side.
    Peer,
    /// Made by the box (a player, RFC 4733 digits).
    Box,
}

/// The one RTP stream a phone receives on one call leg, whoever the packets come from.
///
/// Phones keep their jitter buffer across an SSRC change (baresip 1.0 does, so do desk
/// phones) and drop a new source's packets as late when its sequence numbers are lower than
/// the old source's. So every packet towards a phone is rewritten onto one stream: a fixed
/// SSRC (the first source's, so a plain call goes out unchanged), sequence numbers going on
/// by one, timestamps going on at the media clock. At a switch of source (the box's player →
/// the other phone, a transferred party, back to music on hold) the new source's numbers are
/// rebased with offsets; within a source the offsets are fixed, so its own gaps, misordering
/// and RFC 4733 event timestamps (one timestamp for every packet of an event) pass through
/// unchanged. The first packet after a switch carries the marker bit (a new talk-spurt,
/// RFC 3550 §5.1; for a telephone-event, the start of the event as the phone will see it).
///
/// Sans-IO: the driver hands in each packet and the time of its wakeup.
#[derive(Debug, Clone, Copy, Default)]
struct OutStream {
    ssrc: u32,
    /// Origin and SSRC of the packets going out now; `None` before the first and after a
    /// re-open (the box's player restarts its numbering then).
    source: Option<(Origin, u32)>,
    /// Added to the source's sequence numbers.
    seq_offset: u16,
    /// Added to the source's timestamps.
    ts_offset: u32,
    /// The sequence number after the highest sent (serial arithmetic, RFC 1982).
    next_seq: u16,
    /// The highest timestamp sent.
    last_ts: u32,
    /// When the last packet went out; `None` before the first.
    last_at: Option<Instant>,
    /// Set the marker bit on the next packet (the first after a switch).
    mark_next: bool,
    /// The first sequence number after the latest switch, while a late packet of the new
    /// source could still fall before it (and collide with the old source's numbers).
    switch_seq: Option<u16>,
}

impl OutStream {
    /// True once a packet went out on this stream.
    fn is_started(&self) -> bool {
        self.last_at.is_some()
    }

    /// The stream as kept over a close: the next packet, whatever its source, is a switch.
    fn parked(self) -> OutStream {
        OutStream { source: None, ..self }
    }

    /// Rewrites the header of an RTP `packet` (validated by the caller) onto this stream.
    /// False when the packet must not be sent: too short, or a late packet of the new source
    /// from before a switch (its number would repeat one already sent).
    fn rewrite(&mut self, packet: &mut [u8], origin: Origin, now: Instant) -> bool {
        let Some(h) =
            packet.get_mut(..RTP_FIXED_HEADER).and_then(|h| <&mut [u8; RTP_FIXED_HEADER]>::try_from(h).ok())
        else {
            return false;
        };
        let seq = u16::from_be_bytes([h[2], h[3]]);
        let ts = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let ssrc = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        if self.source != Some((origin, ssrc)) {
            self.switch_to((origin, ssrc), seq, ts, now);
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        if let Some(first) = self.switch_seq {
            let past = out_seq.wrapping_sub(first);
            if (past as i16) < 0 {
                return false;
            }
            if past > MAX_MISORDER {
                self.switch_seq = None;
            }
        }
        let out_ts = ts.wrapping_add(self.ts_offset);
        if out_seq.wrapping_sub(self.next_seq) as i16 >= 0 {
            self.next_seq = out_seq.wrapping_add(1);
        }
        if out_ts.wrapping_sub(self.last_ts) as i32 > 0 {
            self.last_ts = out_ts;
        }
        self.last_at = Some(now);
        h[2..4].copy_from_slice(&out_seq.to_be_bytes());
        h[4..8].copy_from_slice(&out_ts.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        if self.mark_next {
            h[1] |= RTP_MARKER;
            self.mark_next = false;
        }
        true
    }

    /// A new source starts at the stream's next sequence number, and at a timestamp one
    /// frame after the last (or as much later as the wall clock moved on, if more: a pause
    /// stays a pause). The RTP clock is 8 kHz: G.711 and, with it, telephone-event.
    fn switch_to(&mut self, source: (Origin, u32), seq: u16, ts: u32, now: Instant) {
        self.source = Some(source);
        let Some(at) = self.last_at else {
            // The first packet: its source's numbers become the stream's.
            self.ssrc = source.1;
            (self.seq_offset, self.ts_offset) = (0, 0);
            (self.next_seq, self.last_ts) = (seq, ts);
            return;
        };
        let elapsed_ms = now.saturating_duration_since(at).as_millis() as u64;
        // The wrap at 2^32 is the timestamp's own.
        let elapsed_samples = (elapsed_ms.wrapping_mul(u64::from(SAMPLE_RATE_HZ)) / 1000) as u32;
        let start_ts = self.last_ts.wrapping_add(elapsed_samples.max(FRAME_SAMPLES as u32));
        self.seq_offset = self.next_seq.wrapping_sub(seq);
        self.ts_offset = start_ts.wrapping_sub(ts);
        self.last_ts = start_ts;
        self.mark_next = true;
        self.switch_seq = Some(self.next_seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A G.711 packet (PT 0) with a 160-byte payload.
    fn rtp(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    /// `(ssrc, seq, ts, marker)` of a packet.
    fn header(p: &[u8]) -> (u32, u16, u32, bool) {
        (
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            p[1] & RTP_MARKER != 0,
        )
    }

    /// Sends `n` packets of one source, 20 ms apart from `*t`, and returns what went out.
    fn send(
        out: &mut OutStream,
        origin: Origin,
        (ssrc, seq, ts): (u32, u16, u32),
        n: u16,
        t: &mut Instant,
    ) -> Vec<(u32, u16, u32, bool)> {
        (0..n)
            .filter_map(|k| {
                let mut p = rtp(ssrc, seq.wrapping_add(k), ts.wrapping_add(160 * u32::from(k)));
                let sent = out.rewrite(&mut p, origin, *t);
                *t += Duration::from_millis(20);
                sent.then(|| header(&p))
            })
            .collect()
    }

    /// Every packet has the stream's SSRC, the next sequence number and a later timestamp.
    fn assert_continuous(got: &[(u32, u16, u32, bool)]) {
        for w in got.windows(2) {
            let ((s0, q0, t0, _), (s1, q1, t1, _)) = (w[0], w[1]);
            assert_eq!(s1, s0, "one SSRC: {w:?}");
            assert_eq!(q1, q0.wrapping_add(1), "sequence +1: {w:?}");
            assert!(t1.wrapping_sub(t0) as i32 > 0, "timestamp goes on: {w:?}");
        }
    }

    // Tests for the stream a phone receives.

    #[test]
    fn a_plain_call_goes_out_unchanged() {
        let mut out = OutStream::default();
        let mut t = Instant::now();
        let got = send(&mut out, Origin::Peer, (0xABCD, 1000, 5000), 50, &mut t);
        assert_eq!(got.first(), Some(&(0xABCD, 1000, 5000, false)));
        assert_eq!(got.last(), Some(&(0xABCD, 1049, 5000 + 49 * 160, false)));
    }

    #[test]
    fn player_then_peers_with_lower_numbers_make_one_continuous_stream() {
        let mut out = OutStream::default();
        let mut t = Instant::now();
        let mut got = Vec::new();
        // Music (the box's player), the agent (low sequence numbers), hold music again (the
        // player goes on with its own numbers), then a transferred party starting lower still.
        got.extend(send(&mut out, Origin::Box, (0x1111, 40_000, 900_000), 30, &mut t));
        let agent = got.len();
        got.extend(send(&mut out, Origin::Peer, (0x2222, 3, 160), 30, &mut t));
        let music = got.len();
        got.extend(send(&mut out, Origin::Box, (0x1111, 40_030, 904_800), 30, &mut t));
        let transferred = got.len();
        got.extend(send(&mut out, Origin::Peer, (0x3333, 0, 0), 30, &mut t));
        assert_eq!(got.len(), 120);
        assert_continuous(&got);
        assert_eq!(got[0].0, 0x1111, "the first source's SSRC");
        let marked: Vec<usize> = got.iter().enumerate().filter(|(_, h)| h.3).map(|(i, _)| i).collect();
        assert_eq!(marked, vec![agent, music, transferred], "a marker at each switch only");
        // Within a source, the spacing is the source's own (20 ms = 160 samples).
        assert!(got[agent..music].windows(2).all(|w| w[1].2.wrapping_sub(w[0].2) == 160));
    }

    #[test]
    fn a_pause_between_sources_stays_in_the_timestamps() {
        let mut out = OutStream::default();
        let mut t = Instant::now();
        let before = send(&mut out, Origin::Box, (7, 10, 1000), 5, &mut t);
        t += Duration::from_secs(2);
        let after = send(&mut out, Origin::Peer, (8, 60_000, 7), 1, &mut t);
        let last = before.last().map_or(0, |h| h.2);
        // The 20 ms of the last frame plus the 2 s pause, at 8 kHz.
        assert_eq!(after[0].2.wrapping_sub(last), 160 + 16_000);
    }

    #[test]
    fn a_telephone_event_keeps_one_timestamp_after_the_rebase() {
        let mut out = OutStream::default();
        let mut t = Instant::now();
        send(&mut out, Origin::Box, (1, 100, 1000), 10, &mut t);
        // A digit from the other phone: four packets, one event timestamp, growing durations.
        let mut stamps = Vec::new();
        for k in 0..4u16 {
            let mut p = rtp(2, 500 + k, 77_000);
            p[1] = 101;
            assert!(out.rewrite(&mut p, Origin::Peer, t));
            stamps.push(header(&p));
            t += Duration::from_millis(50);
        }
        assert!(stamps.windows(2).all(|w| w[0].2 == w[1].2), "one event: {stamps:?}");
        assert!(stamps.iter().all(|h| h.0 == 1), "the stream's SSRC: {stamps:?}");
        assert_eq!(stamps.iter().map(|h| h.1).collect::<Vec<_>>(), vec![110, 111, 112, 113]);
        assert_eq!(stamps[0].2, 1000 + 9 * 160 + 160, "one frame after the player's last");
        assert!(stamps[0].3, "the marker starts the event for the phone");
    }

    #[test]
    fn a_late_packet_from_before_the_switch_is_dropped() {
        let mut out = OutStream::default();
        let mut t = Instant::now();
        let mut got = send(&mut out, Origin::Box, (1, 100, 0), 5, &mut t);
        got.extend(send(&mut out, Origin::Peer, (2, 50, 0), 3, &mut t));
        // Packet 49 of the new source overtook by 50..52: it would repeat the player's 104.
        let mut late = rtp(2, 49, 0);
        assert!(!out.rewrite(&mut late, Origin::Peer, t));
        got.extend(send(&mut out, Origin::Peer, (2, 53, 480), 3, &mut t));
        assert_continuous(&got);
        // Misordering within the source is passed on as it is.
        let mut early = rtp(2, 57, 1120);
        let mut reordered = rtp(2, 56, 960);
        assert!(out.rewrite(&mut early, Origin::Peer, t) && out.rewrite(&mut reordered, Origin::Peer, t));
        assert_eq!(header(&reordered).1.wrapping_add(1), header(&early).1);
    }

    #[test]
    fn sequence_numbers_and_timestamps_wrap_without_a_break() {
        let mut out = OutStream::default();
        let mut t = Instant::now();
        let mut got = send(&mut out, Origin::Peer, (1, 65_530, u32::MAX - 800), 10, &mut t);
        got.extend(send(&mut out, Origin::Box, (2, 65_000, u32::MAX - 100), 200, &mut t));
        assert_eq!(got.len(), 210, "no packet taken for late across the wraps");
        assert_continuous(&got);
    }

    #[test]
    fn a_reopened_relay_goes_on_with_the_parked_stream() {
        let mut out = OutStream::default();
        let mut t = Instant::now();
        let mut got = send(&mut out, Origin::Box, (9, 1, 1), 10, &mut t);
        // The relay closes and re-opens (a queue bridges the agent); the new player of the
        // re-opened relay restarts its numbers with the same SSRC.
        let mut out = out.parked();
        got.extend(send(&mut out, Origin::Box, (9, 1, 1), 10, &mut t));
        assert_continuous(&got);
    }

    #[test]
    fn a_runt_packet_is_not_sent() {
        let mut out = OutStream::default();
        assert!(!out.rewrite(&mut [0x80, 0, 0, 1], Origin::Peer, Instant::now()));
    }

    #[test]
    fn parked_streams_are_found_by_call_and_port_and_bounded() {
        let mgr = RelayManager::new(IpAddr::from([127, 0, 0, 1]));
        let mut started = OutStream::default();
        assert!(started.rewrite(&mut rtp(5, 5, 5), Origin::Peer, Instant::now()));
        {
            let mut parked = lock(&mgr.inner.parked);
            for i in 0..=MAX_PARKED_STREAMS as u64 {
                parked.push_back(ParkedStream { relay: RelayId(i), port: 10_000, stream: started });
                if parked.len() > MAX_PARKED_STREAMS {
                    parked.pop_front();
                }
            }
        }
        assert!(!mgr.unpark_stream(RelayId(0), 10_000).is_started(), "the oldest was evicted");
        assert!(!mgr.unpark_stream(RelayId(1), 10_002).is_started(), "another leg of the call");
        assert!(mgr.unpark_stream(RelayId(1), 10_000).is_started());
        assert!(!mgr.unpark_stream(RelayId(1), 10_000).is_started(), "taken once");
    }
}
