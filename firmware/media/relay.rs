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
//! Bounded by construction: one receive buffer per relay (the task reads its four sockets in
//! turn), no queues. A datagram that cannot be sent at once (socket buffer full) is dropped,
//! which is what a router would do to real-time media.
//!
//! Counting: every datagram received counts in `a_rx_*`/`b_rx_*` and then in exactly one of
//! `forwarded` or `dropped`, so `a_rx_packets + b_rx_packets == forwarded + dropped`.
//!
//! Close is synchronous: the sockets are dropped (ports re-bindable) before `execute` returns.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::process::{Outgoing, Processing};
use super::{MediaCommand, MediaEvent, RelayId, Side};
use std::path::PathBuf;
use std::task::Waker;

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
            inner: Arc::new(Manager { bind, relays: Mutex::new(HashMap::new()), events, recordings, rooms }),
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
                let last_sent = state.peers[side_index(side)].last_sent;
                state.peers[side_index(side)] = Peer { last_sent, ..Peer::from_sdp(Some(remote)) };
                Ok(())
            }
            MediaCommand::Close { relay } => {
                if self.inner.rooms.leave(relay) {
                    return Ok(());
                }
                let entry = self.relays().remove(&relay).ok_or(RelayError::UnknownRelay(relay))?;
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
                let last_sent =
                    self.relays().get(&relay).and_then(|e| lock(&e.relay).peers[side_index(side)].last_sent);
                self.with_processing(relay, |p| {
                    p.play(side, &clips, looped);
                    if let Some(stream) = last_sent {
                        p.continue_stream(side, stream);
                    }
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
        let state = Arc::new(Mutex::new(RelayState {
            sockets: Some(sockets),
            peers: [Peer::from_sdp(a_remote), Peer::from_sdp(b_remote)],
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
    /// SSRC, sequence number and timestamp of the last RTP packet sent to this phone: a
    /// player that starts mid-call continues that stream, so the phone does not see an SSRC
    /// change and flush its jitter buffer (losing the prompt's first frame).
    last_sent: Option<(u32, u16, u32)>,
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
    if let Some(p) = processing.as_mut() {
        if p.needs_tick() {
            let mut out: Vec<Outgoing> = Vec::new();
            while tick.poll_tick(cx).is_ready() {
                p.on_tick(now(), &mut out);
            }
            for o in out {
                let i = side_index(o.side);
                if let (Some(target), Some(sock)) = (peers[i].rtp, sockets.get(i * 2)) {
                    let _ = sock.poll_send_to(cx, &o.packet, target);
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
                    let data = read.filled();
                    let side = slot / 2;
                    let rtcp = slot % 2 == 1;
                    let mut replaced = false;
                    if let Some(p) = processing.as_mut() {
                        // Taps see only packets from the latched source (checked again below).
                        let latched_ok = !peers[side].rtp_latched || peers[side].rtp == Some(source);
                        if !rtcp && latched_ok && data.len() <= MAX_DATAGRAM_BYTES && is_valid(data, false) {
                            let s = if side == 0 { Side::A } else { Side::B };
                            p.on_rtp(s, data, now());
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
                        relay_datagram(sockets, peers, stats, cx, slot, source, data)
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

/// Handles one datagram received on socket `slot`; true if it was sent on.
fn relay_datagram(
    sockets: &[UdpSocket; SOCKETS_PER_RELAY],
    peers: &mut [Peer; 2],
    stats: &mut RelayStats,
    cx: &mut Context<'_>,
    slot: usize,
    source: SocketAddr,
    data: &[u8],
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
    let Some(to_peer) = peers.get(other) else {
        return false;
    };
    let target = if rtcp { to_peer.rtcp_target() } else { to_peer.rtp };
    let (Some(target), Some(out)) = (target, sockets.get(other * 2 + usize::from(rtcp))) else {
        return false;
    };
    if !rtcp && data.len() >= 12 {
        if let Some(p) = peers.get_mut(other) {
            p.last_sent = Some((
                u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
                u16::from_be_bytes([data[2], data[3]]),
                u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ));
        }
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
