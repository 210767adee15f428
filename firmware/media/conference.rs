//! Conference rooms mixed by the box (9201-9203 by default): the driver around
//! [`super::audio::mixer::Mixer`].
//!
//! One tokio task per room with at least one participant. Each participant has its own RTP
//! port (and RTCP port, drained) facing its phone, latched like a relay side. Received audio goes
//! through a jitter buffer; every 20 ms each participant gets the mix of everyone else, encoded in
//! its own G.711 law. A participant can be sent a prompt instead of the mix (entry announcement).
//!
//! A room can carry on a two-party call's recording (a supervised call, issue 6): each tick it
//! writes the two parties' voices and whatever else one of them hears
//! ([`Mixer::heard_by_any`]) into the file the relay had open. The recording ends when one of
//! the parties leaves, or goes back to the relay ([`super::MediaCommand::MoveToRelay`]).

use super::audio::g711::{self, Law};
use super::audio::jitter::{Frame, JitterBuffer, JitterConfig};
use super::audio::mixer::{Mixer, MonitorMode, ParticipantId};
use super::audio::player::Player;
use super::audio::{Frame20, FRAME_SAMPLES, SILENT_FRAME};
use super::dtmf::{DigitStream, DigitStreamConfig};
use super::process::Recording;
use super::relay::{send_events, RelayError};
use super::{Clip, MediaEvent, RelayId, Side};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Most participants in one room; the mixer's own cap is higher, this keeps one room from taking
/// the CPU of a small board (measured cost: `docs/audio.md`).
pub const MAX_PER_ROOM: usize = 32;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 1500;
/// Datagrams read per wake-up before yielding.
const MAX_READS_PER_WAKEUP: usize = 64;

struct Participant {
    relay: RelayId,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    remote: Option<SocketAddr>,
    latched: bool,
    law: Law,
    audio_pt: u8,
    jitter: JitterBuffer,
    digits: DigitStream,
    player: Option<Player>,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
}

struct RoomState {
    participants: Vec<Participant>,
    mixer: Mixer,
    waker: Option<Waker>,
    /// The two-party call this room hosts (a supervised call), if any.
    call: Option<HostedCall>,
}

/// A two-party call moved into a room, whose recording the room may carry on.
struct HostedCall {
    /// The call's two seats (side A's is the call's relay id), whose voices and ears make the
    /// recording.
    parties: [RelayId; 2],
    recording: Option<CallRecording>,
}

/// A call's recording carried on by a room.
struct CallRecording {
    /// The call's relay: the recording is reported under it.
    owner: RelayId,
    file: Recording,
}

impl CallRecording {
    fn finish(self) -> MediaEvent {
        log::info!("recording {} of call {} ends in the room", self.file.path(), self.owner.0);
        self.file.finish(self.owner)
    }
}

struct Room {
    state: Arc<Mutex<RoomState>>,
    task: JoinHandle<()>,
}

/// All rooms.
pub struct Rooms {
    bind: IpAddr,
    events: Option<mpsc::Sender<MediaEvent>>,
    rooms: Mutex<HashMap<u32, Room>>,
    members: Mutex<HashMap<RelayId, u32>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[allow(clippy::disallowed_methods)] // driver: media timestamps
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn bind(bind: IpAddr, port: u16) -> Result<UdpSocket, RelayError> {
    let err = |e: std::io::Error| RelayError::Bind { port, reason: e.to_string() };
    let s = std::net::UdpSocket::bind(SocketAddr::new(bind, port)).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    UdpSocket::from_std(s).map_err(err)
}

impl Rooms {
    /// No rooms yet.
    pub fn new(bind: IpAddr, events: Option<mpsc::Sender<MediaEvent>>) -> Rooms {
        Rooms { bind, events, rooms: Mutex::default(), members: Mutex::default() }
    }

    /// True when `relay` is a room participant.
    pub fn contains(&self, relay: RelayId) -> bool {
        lock(&self.members).contains_key(&relay)
    }

    /// Participants of a room now.
    pub fn size(&self, room: u32) -> usize {
        lock(&self.rooms).get(&room).map(|r| lock(&r.state).participants.len()).unwrap_or(0)
    }

    /// Adds a phone to a room, starting the room's task if it is the first.
    pub fn join(
        &self,
        relay: RelayId,
        room: u32,
        port: u16,
        remote: Option<SocketAddr>,
        audio_pt: u8,
        telephone_event_pt: Option<u8>,
    ) -> Result<(), RelayError> {
        self.join_with(relay, room, port, remote, (audio_pt, telephone_event_pt), None)
    }

    /// [`Rooms::join`] with the codec as (audio, telephone-event) payload types and, for a
    /// supervisor, the (agent, mode) applied under the same lock as the join: the room never
    /// mixes the supervisor as a plain member. A refused mode leaves the room as it was.
    pub fn join_with(
        &self,
        relay: RelayId,
        room: u32,
        port: u16,
        remote: Option<SocketAddr>,
        (audio_pt, telephone_event_pt): (u8, Option<u8>),
        monitor: Option<(RelayId, MonitorMode)>,
    ) -> Result<(), RelayError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        let _in = runtime.enter();
        if self.contains(relay) {
            return Err(RelayError::AlreadyOpen(relay));
        }
        let rtp = bind(self.bind, port)?;
        let rtcp =
            bind(self.bind, port.checked_add(1).ok_or_else(|| RelayError::Room("no RTCP port".into()))?)?;
        let seed = (relay.0 as u32).wrapping_mul(0x9E37_79B9) ^ room;
        let p = Participant {
            relay,
            rtp,
            rtcp,
            remote,
            latched: false,
            law: Law::from_payload_type(audio_pt).unwrap_or(Law::Mu),
            audio_pt,
            jitter: JitterBuffer::new(JitterConfig::default()),
            digits: DigitStream::new(DigitStreamConfig {
                telephone_event_pt,
                telephone_event_clock_rate: 8000,
                inband: None,
            }),
            player: None,
            ssrc: seed,
            seq: (seed >> 16) as u16,
            timestamp: seed.rotate_left(9),
        };
        let mut rooms = lock(&self.rooms);
        let entry = rooms.entry(room).or_insert_with(|| {
            let state = Arc::new(Mutex::new(RoomState {
                participants: Vec::new(),
                mixer: Mixer::new(),
                waker: None,
                call: None,
            }));
            let task = runtime.spawn(run_room(Arc::clone(&state), self.events.clone()));
            log::info!("conference room {room} opened");
            Room { state, task }
        });
        let mut st = lock(&entry.state);
        if st.participants.len() >= MAX_PER_ROOM {
            return Err(RelayError::Room(format!("room {room} is full ({MAX_PER_ROOM})")));
        }
        st.mixer.add_participant(ParticipantId(relay.0)).map_err(|e| RelayError::Room(format!("{e:?}")))?;
        if let Some((agent, mode)) = monitor {
            if let Err(e) = st.mixer.monitor(ParticipantId(relay.0), ParticipantId(agent.0), mode) {
                st.mixer.remove(ParticipantId(relay.0));
                return Err(RelayError::Room(format!("room {room}: {e}")));
            }
        }
        st.participants.push(p);
        let n = st.participants.len();
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        drop(st);
        drop(rooms);
        lock(&self.members).insert(relay, room);
        log::info!("conference room {room}: call {} joined ({n} in the room)", relay.0);
        Ok(())
    }

    /// Puts `supervisor` in `mode` towards `agent`; both must be in the same room.
    pub fn monitor(&self, supervisor: RelayId, agent: RelayId, mode: MonitorMode) -> Result<(), RelayError> {
        let members = lock(&self.members);
        let room = *members.get(&supervisor).ok_or(RelayError::UnknownRelay(supervisor))?;
        if members.get(&agent) != Some(&room) {
            return Err(RelayError::Room(format!("call {} is not in room {room}", agent.0)));
        }
        drop(members);
        let rooms = lock(&self.rooms);
        let r = rooms.get(&room).ok_or(RelayError::UnknownRelay(supervisor))?;
        let mut st = lock(&r.state);
        st.mixer
            .monitor(ParticipantId(supervisor.0), ParticipantId(agent.0), mode)
            .map_err(|e| RelayError::Room(format!("room {room}: {e}")))
    }

    /// Plays clips to one participant instead of the mix.
    pub fn play(&self, relay: RelayId, clips: &[Clip], looped: bool) -> Result<(), RelayError> {
        let room = *lock(&self.members).get(&relay).ok_or(RelayError::UnknownRelay(relay))?;
        let rooms = lock(&self.rooms);
        let r = rooms.get(&room).ok_or(RelayError::UnknownRelay(relay))?;
        let mut st = lock(&r.state);
        let pcm: Vec<_> = clips.iter().filter_map(super::process::resolve_clip).collect();
        if let Some(p) = st.participants.iter_mut().find(|p| p.relay == relay) {
            p.player = Some(if looped { Player::looping(pcm) } else { Player::new(pcm) });
        }
        Ok(())
    }

    /// `room` now hosts the two-party call whose seats are `parties` (side A's seat first, its
    /// id the call's), and carries on its `recording`, made of the parties and what they hear.
    /// Without such a room the recording is finished (and reported) at once.
    pub(crate) fn host_call(&self, room: u32, parties: [RelayId; 2], recording: Option<Recording>) {
        let owner = parties[0];
        let recording = recording.map(|file| CallRecording { owner, file });
        let mut finished = Vec::new();
        match lock(&self.rooms).get(&room) {
            Some(r) => {
                let mut st = lock(&r.state);
                let old = st.call.replace(HostedCall { parties, recording });
                finished.extend(old.and_then(|c| c.recording));
            }
            None => finished.extend(recording),
        }
        send_events(&self.events, finished.into_iter().map(CallRecording::finish).collect());
    }

    /// True when `relay` is side A's seat of a call its room hosts.
    pub(crate) fn hosts_call(&self, relay: RelayId) -> bool {
        let Some(room) = lock(&self.members).get(&relay).copied() else { return false };
        let rooms = lock(&self.rooms);
        rooms.get(&room).is_some_and(|r| lock(&r.state).call.as_ref().is_some_and(|c| c.parties[0] == relay))
    }

    /// Starts recording the call hosted in `relay`'s room (`relay` being its side A's seat);
    /// the file is handed back when `relay` hosts no call or one is recorded already.
    pub(crate) fn record_call(&self, relay: RelayId, file: Recording) -> Result<(), Recording> {
        let Some(room) = lock(&self.members).get(&relay).copied() else { return Err(file) };
        let rooms = lock(&self.rooms);
        let Some(r) = rooms.get(&room) else { return Err(file) };
        let mut st = lock(&r.state);
        match st.call.as_mut() {
            Some(call) if call.parties[0] == relay && call.recording.is_none() => {
                call.recording = Some(CallRecording { owner: relay, file });
                Ok(())
            }
            _ => Err(file),
        }
    }

    /// Takes the recording of the call whose side A's seat is `owner` out of its room
    /// unfinished, to go on elsewhere or be finished by the caller.
    pub(crate) fn take_recording(&self, owner: RelayId) -> Option<Recording> {
        let room = *lock(&self.members).get(&owner)?;
        let rooms = lock(&self.rooms);
        let mut st = lock(&rooms.get(&room)?.state);
        let call = st.call.as_mut().filter(|c| c.parties[0] == owner)?;
        call.recording.take().map(|r| r.file)
    }

    /// Removes a participant; false when `relay` was in no room. The last one closes the room;
    /// one of a recorded call's parties ends the recording.
    pub fn leave(&self, relay: RelayId) -> bool {
        let Some(room) = lock(&self.members).remove(&relay) else { return false };
        let mut rooms = lock(&self.rooms);
        let mut finished = None;
        let empty = match rooms.get(&room) {
            Some(r) => {
                let mut st = lock(&r.state);
                if st.call.as_ref().is_some_and(|c| c.parties.contains(&relay)) {
                    finished = st.call.take().and_then(|c| c.recording);
                }
                st.participants.retain(|p| p.relay != relay);
                st.mixer.remove(ParticipantId(relay.0));
                log::info!(
                    "conference room {room}: call {} left ({} in the room)",
                    relay.0,
                    st.participants.len()
                );
                st.participants.is_empty()
            }
            None => false,
        };
        if empty {
            if let Some(r) = rooms.remove(&room) {
                r.task.abort();
                log::info!("conference room {room} closed");
            }
        }
        drop(rooms);
        if let Some(rec) = finished {
            send_events(&self.events, vec![rec.finish()]);
        }
        true
    }

    /// Closes every room (shutdown), finishing the recordings they carry.
    pub fn close_all(&self) {
        let mut events = Vec::new();
        for (_, r) in lock(&self.rooms).drain() {
            r.task.abort();
            if let Some(rec) = lock(&r.state).call.take().and_then(|c| c.recording) {
                events.push(rec.finish());
            }
        }
        lock(&self.members).clear();
        send_events(&self.events, events);
    }
}

async fn run_room(state: Arc<Mutex<RoomState>>, events: Option<mpsc::Sender<MediaEvent>>) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    std::future::poll_fn(|cx| poll_room(&state, cx, &mut buf, &mut tick, &events)).await
}

fn poll_room(
    state: &Mutex<RoomState>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    tick: &mut tokio::time::Interval,
    events: &Option<mpsc::Sender<MediaEvent>>,
) -> Poll<()> {
    let mut guard = lock(state);
    guard.waker = Some(cx.waker().clone());
    let RoomState { participants, mixer, call, .. } = &mut *guard;
    let mut evs = Vec::new();
    let mut reads = 0;
    for p in participants.iter_mut() {
        // RTCP: drained (the box terminates this media; reports are not needed to mix).
        loop {
            let mut rb = ReadBuf::new(buf);
            match p.rtcp.poll_recv_from(cx, &mut rb) {
                Poll::Ready(_) if reads < MAX_READS_PER_WAKEUP => reads += 1,
                _ => break,
            }
        }
        loop {
            if reads >= MAX_READS_PER_WAKEUP {
                cx.waker().wake_by_ref();
                break;
            }
            let mut rb = ReadBuf::new(buf);
            let source = match p.rtp.poll_recv_from(cx, &mut rb) {
                Poll::Ready(Ok(s)) => s,
                Poll::Ready(Err(_)) => {
                    reads += 1;
                    continue;
                }
                Poll::Pending => break,
            };
            reads += 1;
            let data = rb.filled();
            if data.len() > MAX_DATAGRAM {
                continue;
            }
            let Ok(rtp) = rtp_rs::RtpReader::new(data) else { continue };
            if !p.latched {
                p.remote = Some(source);
                p.latched = true;
            } else if p.remote != Some(source) {
                continue;
            }
            let t = now();
            p.digits.handle_rtp(data, t);
            while let Some(event) = p.digits.poll_event() {
                evs.push(MediaEvent::Digit { relay: p.relay, side: Side::A, event });
            }
            if rtp.payload_type() == p.audio_pt {
                let mut pcm = Vec::with_capacity(FRAME_SAMPLES);
                g711::decode(p.law, rtp.payload(), &mut pcm);
                p.jitter.push(rtp.ssrc(), u16::from(rtp.sequence_number()), rtp.timestamp(), &pcm, t);
            }
        }
    }
    while tick.poll_tick(cx).is_ready() {
        let t = now();
        for p in participants.iter_mut() {
            let frame: Frame20 = match p.jitter.pop(t) {
                Frame::Audio(pcm) | Frame::Concealed(pcm) => {
                    let mut f = SILENT_FRAME;
                    for (d, s) in f.iter_mut().zip(pcm.iter()) {
                        *d = *s;
                    }
                    f
                }
                Frame::Silence => SILENT_FRAME,
            };
            let _ = mixer.set_input(ParticipantId(p.relay.0), &frame);
        }
        if let Some(HostedCall { parties, recording: recording @ Some(_) }) = call.as_mut() {
            let frame = mixer.heard_by_any(&parties.map(|r| ParticipantId(r.0)));
            if let Some(Err(e)) = recording.as_mut().map(|rec| rec.file.write(&frame)) {
                log::warn!("call {}: recording failed: {e}; stopping it", parties[0].0);
                crate::alarms::global().raise(
                    "recording",
                    crate::alarms::Severity::Critical,
                    &format!("conference recording failed: {e}"),
                );
                evs.extend(recording.take().map(CallRecording::finish));
            }
        }
        mixer.mix();
        for p in participants.iter_mut() {
            let played = match p.player.as_mut() {
                Some(pl) => match pl.next_frame() {
                    Some(f) => Some(f),
                    None => {
                        p.player = None;
                        evs.push(MediaEvent::PlayDone { relay: p.relay, side: Side::A });
                        None
                    }
                },
                None => None,
            };
            let out =
                played.or_else(|| mixer.output(ParticipantId(p.relay.0)).copied()).unwrap_or(SILENT_FRAME);
            let Some(remote) = p.remote else { continue };
            let mut packet = Vec::with_capacity(12 + FRAME_SAMPLES);
            packet.push(0x80);
            packet.push(p.law.payload_type());
            packet.extend_from_slice(&p.seq.to_be_bytes());
            packet.extend_from_slice(&p.timestamp.to_be_bytes());
            packet.extend_from_slice(&p.ssrc.to_be_bytes());
            g711::encode(p.law, &out, &mut packet);
            p.seq = p.seq.wrapping_add(1);
            p.timestamp = p.timestamp.wrapping_add(FRAME_SAMPLES as u32);
            let _ = p.rtp.poll_send_to(cx, &packet, remote);
        }
    }
    drop(guard);
    send_events(events, evs);
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An even port whose pair (RTP, RTCP) is free on loopback now.
    fn free_pair() -> u16 {
        for _ in 0..100 {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port() & !1;
            drop(probe);
            let pair = (
                std::net::UdpSocket::bind(("127.0.0.1", port)),
                std::net::UdpSocket::bind(("127.0.0.1", port + 1)),
            );
            if let (Ok(_), Ok(_)) = pair {
                return port;
            }
        }
        panic!("no free port pair on loopback");
    }

    fn join(
        rooms: &Rooms,
        relay: u64,
        room: u32,
        monitor: Option<(RelayId, MonitorMode)>,
    ) -> Result<(), RelayError> {
        rooms.join_with(RelayId(relay), room, free_pair(), None, (0, Some(101)), monitor)
    }

    /// Waits `ms` of real time: the relay's and the room's tasks write a frame every 20 ms.
    async fn run_for(ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }

    #[tokio::test]
    async fn a_recording_goes_on_in_one_file_from_relay_to_room_and_back() {
        use crate::media::{MediaCommand, RelayManager};
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let media = RelayManager::with_media(IpAddr::from([127, 0, 0, 1]), Some(tx), Some(dir.path().into()));
        let (call, agent) = (RelayId(7), RelayId(7 | 1 << 62));
        let ports = [free_pair(), free_pair()];
        let (remotes, codec) = ([None, None], (0, Some(101)));
        media
            .execute(MediaCommand::Open {
                relay: call,
                a_port: ports[0],
                b_port: ports[1],
                a_remote: None,
                b_remote: None,
            })
            .unwrap();
        let path = "20261122/call-7.wav".to_string();
        media.execute(MediaCommand::Record { relay: call, path: path.clone() }).unwrap();
        run_for(300).await;
        let into_room = MediaCommand::MoveToRoom {
            relay: call,
            b_participant: agent,
            room: 3_000_007,
            ports,
            remotes,
            audio_pt: codec.0,
            telephone_event_pt: codec.1,
        };
        media.execute(into_room).unwrap();
        run_for(300).await;
        assert!(rx.try_recv().is_err(), "nothing is finished by the move");
        media
            .execute(MediaCommand::MoveToRelay { relay: call, b_participant: agent, ports, remotes })
            .unwrap();
        run_for(300).await;
        assert!(rx.try_recv().is_err(), "nor by the move back");
        media.execute(MediaCommand::Close { relay: call }).unwrap();
        let Ok(MediaEvent::Recorded { relay, path: got, bytes }) = rx.try_recv() else {
            panic!("one recording")
        };
        assert_eq!((relay, got.as_str()), (call, path.as_str()));
        assert!(rx.try_recv().is_err(), "and only one");
        let file = std::fs::read(dir.path().join(&path)).unwrap();
        assert_eq!(bytes, file.len() as u64);
        let wav = crate::media::audio::wav::parse(&file).unwrap();
        let ms = wav.mono_pcm16().len() / 8;
        // Three stretches of 300 ms, one frame per 20 ms tick wherever the call was.
        assert!((800..=1_100).contains(&ms), "{ms} ms recorded");
    }

    #[tokio::test]
    async fn a_recording_started_or_stopped_in_a_room_is_the_rooms() {
        use crate::media::{MediaCommand, RelayManager};
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let media = RelayManager::with_media(IpAddr::from([127, 0, 0, 1]), Some(tx), Some(dir.path().into()));
        let (call, agent) = (RelayId(8), RelayId(8 | 1 << 62));
        let ports = [free_pair(), free_pair()];
        media
            .execute(MediaCommand::Open {
                relay: call,
                a_port: ports[0],
                b_port: ports[1],
                a_remote: None,
                b_remote: None,
            })
            .unwrap();
        let into_room = MediaCommand::MoveToRoom {
            relay: call,
            b_participant: agent,
            room: 3_000_008,
            ports,
            remotes: [None, None],
            audio_pt: 0,
            telephone_event_pt: None,
        };
        media.execute(into_room).unwrap();
        media.execute(MediaCommand::Record { relay: call, path: "d/call-8.wav".into() }).unwrap();
        run_for(200).await;
        media.execute(MediaCommand::StopRecord { relay: call }).unwrap();
        assert!(matches!(rx.try_recv(), Ok(MediaEvent::Recorded { relay, .. }) if relay == call));
        // Started again, it ends with the call's side B leaving.
        media.execute(MediaCommand::Record { relay: call, path: "d/call-8-2.wav".into() }).unwrap();
        media.execute(MediaCommand::Close { relay: agent }).unwrap();
        assert!(matches!(rx.try_recv(), Ok(MediaEvent::Recorded { path, .. }) if path == "d/call-8-2.wav"));
        media.close_all();
    }

    #[tokio::test]
    async fn a_supervisor_joins_in_a_mode_and_a_refused_mode_leaves_the_room_as_it_was() {
        let rooms = Rooms::new(IpAddr::from([127, 0, 0, 1]), None);
        join(&rooms, 1, 7, None).unwrap();
        join(&rooms, 2, 7, None).unwrap();
        join(&rooms, 3, 7, Some((RelayId(2), MonitorMode::Listen))).unwrap();
        assert_eq!(rooms.size(7), 3);
        {
            let all = lock(&rooms.rooms);
            let st = lock(&all.get(&7).unwrap().state);
            let (caller, agent, sup) = (ParticipantId(1), ParticipantId(2), ParticipantId(3));
            assert!(st.mixer.is_audible(sup, caller) && st.mixer.is_audible(sup, agent));
            assert!(!st.mixer.is_audible(caller, sup) && !st.mixer.is_audible(agent, sup));
        }
        rooms.monitor(RelayId(3), RelayId(2), MonitorMode::Whisper).unwrap();
        {
            let all = lock(&rooms.rooms);
            let st = lock(&all.get(&7).unwrap().state);
            assert!(st.mixer.is_audible(ParticipantId(2), ParticipantId(3)));
            assert!(!st.mixer.is_audible(ParticipantId(1), ParticipantId(3)));
        }
        // An agent that is in no room (or another room) is refused; nothing changes.
        assert!(join(&rooms, 4, 7, Some((RelayId(99), MonitorMode::Barge))).is_err());
        assert_eq!(rooms.size(7), 3);
        assert!(!rooms.contains(RelayId(4)));
        join(&rooms, 5, 8, None).unwrap();
        assert!(rooms.monitor(RelayId(3), RelayId(5), MonitorMode::Barge).is_err());
        rooms.close_all();
    }
}
