//! What a phone receives from the relay is one RTP stream, over real UDP sockets on 127.0.0.1:
//! the box's player, the other phone, music on hold again, and a party that replaced the other
//! side (the relay closed and re-opened on the same port), one SSRC, sequence numbers +1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hakoden::media::{Clip, MediaCommand, RelayError, RelayId, RelayManager, Side};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long a test waits for a datagram that should arrive (the player paces at 20 ms).
const ARRIVAL: Duration = Duration::from_secs(2);

/// How long without a datagram means the relay has stopped sending.
const QUIET: Duration = Duration::from_millis(150);

/// Packets sent or awaited per stage.
const STAGE_PACKETS: u16 = 5;

/// The relay id (the call).
const RELAY: RelayId = RelayId(1);

fn local(port: u16) -> SocketAddr {
    SocketAddr::new(LOCALHOST, port)
}

/// A free even port with a free port above it: the OS picks, above the ports other test
/// files start from.
fn free_pair() -> u16 {
    for _ in 0..200 {
        let Ok(probe) = std::net::UdpSocket::bind(local(0)) else { continue };
        let port = probe.local_addr().map(|a| a.port() & !1).unwrap_or(0);
        drop(probe);
        if port > 1024
            && std::net::UdpSocket::bind(local(port)).is_ok()
            && std::net::UdpSocket::bind(local(port + 1)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port pair");
}

fn open(mgr: &RelayManager, a_port: Option<u16>, a: SocketAddr, b: SocketAddr) -> (u16, u16) {
    for _ in 0..50 {
        let a_port = a_port.unwrap_or_else(free_pair);
        let b_port = free_pair();
        let cmd = MediaCommand::Open { relay: RELAY, a_port, b_port, a_remote: Some(a), b_remote: Some(b) };
        match mgr.execute(cmd) {
            Ok(()) => return (a_port, b_port),
            Err(RelayError::Bind { .. }) => continue,
            Err(e) => panic!("open failed: {e}"),
        }
    }
    panic!("could not open the relay");
}

fn rtp(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

/// `(ssrc, seq, ts)` of a packet.
fn header(p: &[u8]) -> (u32, u16, u32) {
    (
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
    )
}

async fn phone() -> UdpSocket {
    UdpSocket::bind(local(0)).await.unwrap()
}

/// Receives `n` packets (or fewer if the relay stops sending) and appends their headers.
async fn receive(sock: &UdpSocket, n: u16, wait: Duration, into: &mut Vec<(u32, u16, u32)>) {
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        match timeout(wait, sock.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) => into.push(header(&buf[..len])),
            _ => return,
        }
    }
}

/// Receives until the relay has been quiet for [`QUIET`].
async fn drain(sock: &UdpSocket, into: &mut Vec<(u32, u16, u32)>) {
    receive(sock, u16::MAX, QUIET, into).await;
}

/// A phone sends `STAGE_PACKETS` packets to `port`, 20 ms apart, from sequence number `seq`.
async fn talk(sock: &UdpSocket, port: u16, ssrc: u32, seq: u16) {
    for k in 0..STAGE_PACKETS {
        let s = seq.wrapping_add(k);
        sock.send_to(&rtp(ssrc, s, u32::from(s) * 160), local(port)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_caller_hears_one_stream_from_prompt_to_agent_to_music_to_a_transferred_party() {
    let mgr = RelayManager::new(LOCALHOST);
    let (caller, agent, transferred) = (phone().await, phone().await, phone().await);
    let (a_port, b_port) = open(&mgr, None, caller.local_addr().unwrap(), agent.local_addr().unwrap());
    let mut heard = Vec::new();

    // The box's prompt (100 ms = 5 frames), then the agent with far lower numbers.
    let play = |clips: Vec<Clip>, looped| MediaCommand::Play { relay: RELAY, side: Side::A, clips, looped };
    mgr.execute(play(vec![Clip::Silence(100)], false)).unwrap();
    receive(&caller, STAGE_PACKETS, ARRIVAL, &mut heard).await;
    drain(&caller, &mut heard).await;
    let prompt = heard.len();
    assert!(prompt >= usize::from(STAGE_PACKETS), "the prompt: {heard:?}");
    talk(&agent, b_port, 0xA6E7, 1).await;
    receive(&caller, STAGE_PACKETS, ARRIVAL, &mut heard).await;

    // Music on hold, then the agent again.
    mgr.execute(play(vec![Clip::MusicOnHold], true)).unwrap();
    receive(&caller, STAGE_PACKETS, ARRIVAL, &mut heard).await;
    mgr.execute(MediaCommand::StopPlay { relay: RELAY, side: Side::A }).unwrap();
    drain(&caller, &mut heard).await;
    talk(&agent, b_port, 0xA6E7, 6).await;
    receive(&caller, STAGE_PACKETS, ARRIVAL, &mut heard).await;

    // A transfer: the relay closes and re-opens with the caller's port kept.
    mgr.execute(MediaCommand::Close { relay: RELAY }).unwrap();
    let (_, b_port) =
        open(&mgr, Some(a_port), caller.local_addr().unwrap(), transferred.local_addr().unwrap());
    talk(&transferred, b_port, 0x7777, 0).await;
    receive(&caller, STAGE_PACKETS, ARRIVAL, &mut heard).await;

    let expected = prompt + 4 * usize::from(STAGE_PACKETS);
    assert!(heard.len() >= expected, "{} of at least {expected} packets: {heard:?}", heard.len());
    for w in heard.windows(2) {
        let ((s0, q0, t0), (s1, q1, t1)) = (w[0], w[1]);
        assert_eq!(s1, s0, "one SSRC: {heard:?}");
        assert_eq!(q1, q0.wrapping_add(1), "sequence numbers +1: {heard:?}");
        assert!(t1.wrapping_sub(t0) as i32 > 0, "timestamps go on: {heard:?}");
    }
    mgr.close_all();
}
