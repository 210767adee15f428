//! The RTP relay over real UDP sockets on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hakoden::media::{MediaCommand, RelayError, RelayId, RelayManager, Side};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long a test waits for a datagram that should arrive (loopback takes microseconds).
const ARRIVAL: Duration = Duration::from_secs(2);

/// How long a test waits to be sure a datagram does not arrive.
const SILENCE: Duration = Duration::from_millis(150);

/// Where each test starts looking for free ports; spread by process id so parallel test
/// processes (other worktrees) rarely collide, and below Linux's ephemeral range.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

fn next_port_pair() -> u16 {
    if NEXT_PORT.load(Ordering::Relaxed) == 0 {
        let start = 21_000 + (std::process::id() % 2_000) as u16 * 4;
        let _ = NEXT_PORT.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    let port = NEXT_PORT.fetch_add(4, Ordering::Relaxed);
    if port > 32_000 {
        NEXT_PORT.store(21_000, Ordering::Relaxed);
    }
    port
}

/// Opens `relay` on the first free pair of even ports; returns `(a_port, b_port)`.
fn open(
    mgr: &RelayManager,
    relay: u64,
    a_remote: Option<SocketAddr>,
    b_remote: Option<SocketAddr>,
) -> (u16, u16) {
    for _ in 0..200 {
        let a_port = next_port_pair();
        let b_port = a_port + 2;
        let cmd = MediaCommand::Open { relay: RelayId(relay), a_port, b_port, a_remote, b_remote };
        match mgr.execute(cmd) {
            Ok(()) => return (a_port, b_port),
            Err(RelayError::Bind { .. }) => continue,
            Err(e) => panic!("open failed: {e}"),
        }
    }
    panic!("no free port pair found");
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::new(LOCALHOST, port)
}

async fn phone() -> UdpSocket {
    UdpSocket::bind(local(0)).await.unwrap()
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A receiver report without blocks: V=2, PT=201, length 1.
fn rtcp_rr() -> Vec<u8> {
    vec![0x80, 201, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]
}

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = timeout(ARRIVAL, sock.recv_from(&mut buf)).await.expect("datagram expected").unwrap();
    (buf[..n].to_vec(), from)
}

async fn assert_silent(sock: &UdpSocket) {
    let mut buf = [0u8; 2048];
    if let Ok(got) = timeout(SILENCE, sock.recv_from(&mut buf)).await {
        panic!("unexpected datagram: {got:?}");
    }
}

#[tokio::test]
async fn relay_forwards_rtp_both_ways_to_the_sdp_addresses() {
    let mgr = RelayManager::new(LOCALHOST);
    let (alice, bob) = (phone().await, phone().await);
    let (a_port, b_port) = open(&mgr, 1, Some(alice.local_addr().unwrap()), Some(bob.local_addr().unwrap()));

    let packet = rtp(1, &[0xd5; 160]);
    alice.send_to(&packet, local(a_port)).await.unwrap();
    let (got, from) = recv(&bob).await;
    assert_eq!(got, packet);
    assert_eq!(from, local(b_port), "B hears the relay's B-side port");

    let packet = rtp(7, &[0xff; 160]);
    bob.send_to(&packet, local(b_port)).await.unwrap();
    let (got, from) = recv(&alice).await;
    assert_eq!(got, packet);
    assert_eq!(from, local(a_port));

    let stats = mgr.stats(RelayId(1)).unwrap();
    assert_eq!((stats.a_rx_packets, stats.b_rx_packets), (1, 1));
    assert_eq!((stats.a_rx_bytes, stats.b_rx_bytes), (172, 172));
    assert_eq!((stats.forwarded, stats.dropped), (2, 0));
    assert_eq!(mgr.active(), 1);
}

#[tokio::test]
async fn relay_latches_to_the_real_source_behind_nat() {
    let mgr = RelayManager::new(LOCALHOST);
    // The SDP says alice receives on a port nobody listens on (her NAT rewrote the port).
    let sdp_port = phone().await.local_addr().unwrap();
    let (alice, bob) = (phone().await, phone().await);
    let (a_port, b_port) = open(&mgr, 2, Some(sdp_port), Some(bob.local_addr().unwrap()));

    alice.send_to(&rtp(1, b"hello"), local(a_port)).await.unwrap();
    recv(&bob).await;
    assert_eq!(mgr.stats(RelayId(2)).unwrap().a_remote, Some(alice.local_addr().unwrap()));

    bob.send_to(&rtp(2, b"back"), local(b_port)).await.unwrap();
    let (got, _) = recv(&alice).await;
    assert_eq!(got, rtp(2, b"back"), "media goes to the latched source, not the SDP port");

    // Once latched, a third party cannot inject media into the call.
    let intruder = phone().await;
    intruder.send_to(&rtp(3, b"spam"), local(a_port)).await.unwrap();
    assert_silent(&bob).await;
    let stats = mgr.stats(RelayId(2)).unwrap();
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.a_rx_packets + stats.b_rx_packets, stats.forwarded + stats.dropped);
}

#[tokio::test]
async fn relay_without_sdp_addresses_learns_both_sides() {
    let mgr = RelayManager::new(LOCALHOST);
    let (alice, bob) = (phone().await, phone().await);
    let (a_port, b_port) = open(&mgr, 3, None, None);

    // Nobody known on B yet: alice's first packet latches A but is dropped.
    alice.send_to(&rtp(1, b"x"), local(a_port)).await.unwrap();
    bob.send_to(&rtp(1, b"y"), local(b_port)).await.unwrap();
    let (got, _) = recv(&alice).await;
    assert_eq!(got, rtp(1, b"y"));
    alice.send_to(&rtp(2, b"x"), local(a_port)).await.unwrap();
    let (got, _) = recv(&bob).await;
    assert_eq!(got, rtp(2, b"x"));
    let stats = mgr.stats(RelayId(3)).unwrap();
    assert_eq!((stats.forwarded, stats.dropped), (2, 1));
}

#[tokio::test]
async fn rtcp_goes_to_rtp_port_plus_one_then_latches() {
    let mgr = RelayManager::new(LOCALHOST);
    // Bob's RTP and RTCP at p and p+1 as the SDP implies; find such a pair.
    let (bob_rtp, bob_rtcp) = loop {
        let rtp_sock = phone().await;
        let port = rtp_sock.local_addr().unwrap().port();
        if let Ok(rtcp_sock) = UdpSocket::bind(local(port.wrapping_add(1))).await {
            break (rtp_sock, rtcp_sock);
        }
    };
    let alice_rtcp = phone().await;
    let (a_port, b_port) = open(&mgr, 4, None, Some(bob_rtp.local_addr().unwrap()));

    alice_rtcp.send_to(&rtcp_rr(), local(a_port + 1)).await.unwrap();
    let (got, from) = recv(&bob_rtcp).await;
    assert_eq!(got, rtcp_rr());
    assert_eq!(from, local(b_port + 1));

    bob_rtcp.send_to(&rtcp_rr(), local(b_port + 1)).await.unwrap();
    let (got, from) = recv(&alice_rtcp).await;
    assert_eq!(got, rtcp_rr(), "RTCP goes back to alice's latched RTCP source");
    assert_eq!(from, local(a_port + 1));
    assert_silent(&bob_rtp).await;
}

#[tokio::test]
async fn set_remote_redirects_and_allows_a_new_latch() {
    let mgr = RelayManager::new(LOCALHOST);
    let (alice, bob, bob_new) = (phone().await, phone().await, phone().await);
    let (a_port, b_port) = open(&mgr, 5, Some(alice.local_addr().unwrap()), Some(bob.local_addr().unwrap()));
    bob.send_to(&rtp(1, b"old"), local(b_port)).await.unwrap();
    recv(&alice).await;

    // Re-INVITE: bob moved (e.g. transferred to another phone).
    let cmd =
        MediaCommand::SetRemote { relay: RelayId(5), side: Side::B, remote: bob_new.local_addr().unwrap() };
    mgr.execute(cmd).unwrap();
    assert_eq!(mgr.stats(RelayId(5)).unwrap().b_remote, Some(bob_new.local_addr().unwrap()));

    alice.send_to(&rtp(2, b"to new"), local(a_port)).await.unwrap();
    assert_eq!(recv(&bob_new).await.0, rtp(2, b"to new"));
    assert_silent(&bob).await;

    // The new phone latches; the old one no longer gets through.
    bob_new.send_to(&rtp(3, b"new"), local(b_port)).await.unwrap();
    assert_eq!(recv(&alice).await.0, rtp(3, b"new"));
    bob.send_to(&rtp(4, b"stale"), local(b_port)).await.unwrap();
    assert_silent(&alice).await;
}

#[tokio::test]
async fn garbage_is_dropped_and_counted_without_latching() {
    let mgr = RelayManager::new(LOCALHOST);
    let (alice, bob, attacker) = (phone().await, phone().await, phone().await);
    let (a_port, _) = open(&mgr, 6, Some(alice.local_addr().unwrap()), Some(bob.local_addr().unwrap()));

    let junk: [&[u8]; 5] = [
        b"",
        b"\x80\x00\x00",                 // shorter than an RTP header
        b"\x40\x00\x00\x01aaaabbbbcccc", // RTP version 1
        b"STUN? no, just text here",
        b"\x8f\x00\x00\x01aaaabbbbcccc", // 15 CSRCs announced, none present
    ];
    for j in junk {
        attacker.send_to(j, local(a_port)).await.unwrap();
    }
    attacker.send_to(b"\x00\x00\x00\x00\x00\x00\x00\x00", local(a_port + 1)).await.unwrap();
    assert_silent(&bob).await;

    // Garbage did not latch side A: alice's real media still gets through.
    alice.send_to(&rtp(1, b"voice"), local(a_port)).await.unwrap();
    assert_eq!(recv(&bob).await.0, rtp(1, b"voice"));
    let stats = mgr.stats(RelayId(6)).unwrap();
    assert_eq!((stats.a_rx_packets, stats.forwarded, stats.dropped), (7, 1, 6));
    assert_eq!(stats.a_remote, Some(alice.local_addr().unwrap()));
}

#[tokio::test]
async fn close_frees_the_ports_at_once() {
    let mgr = RelayManager::new(LOCALHOST);
    let (alice, bob) = (phone().await, phone().await);
    let (a_port, b_port) = open(&mgr, 7, Some(alice.local_addr().unwrap()), Some(bob.local_addr().unwrap()));
    mgr.execute(MediaCommand::Close { relay: RelayId(7) }).unwrap();
    assert_eq!(mgr.active(), 0);
    assert_eq!(mgr.stats(RelayId(7)), None);

    for port in [a_port, a_port + 1, b_port, b_port + 1] {
        std::net::UdpSocket::bind(local(port)).unwrap_or_else(|e| panic!("port {port} still bound: {e}"));
    }
    let reopen = MediaCommand::Open { relay: RelayId(8), a_port, b_port, a_remote: None, b_remote: None };
    mgr.execute(reopen).unwrap();
    assert_eq!(
        mgr.execute(MediaCommand::Close { relay: RelayId(7) }),
        Err(RelayError::UnknownRelay(RelayId(7)))
    );
    mgr.close_all();
    assert_eq!(mgr.active(), 0);
    std::net::UdpSocket::bind(local(a_port)).unwrap();
}

#[tokio::test]
async fn errors_name_the_relay_or_port() {
    let mgr = RelayManager::new(LOCALHOST);
    let (a_port, b_port) = open(&mgr, 9, None, None);
    let again =
        MediaCommand::Open { relay: RelayId(9), a_port: 2, b_port: 4, a_remote: None, b_remote: None };
    assert_eq!(mgr.execute(again), Err(RelayError::AlreadyOpen(RelayId(9))));
    let clash = MediaCommand::Open { relay: RelayId(10), a_port, b_port, a_remote: None, b_remote: None };
    assert!(matches!(mgr.execute(clash), Err(RelayError::Bind { port, .. }) if port == a_port));
    let top =
        MediaCommand::Open { relay: RelayId(11), a_port: 65535, b_port, a_remote: None, b_remote: None };
    assert!(matches!(mgr.execute(top), Err(RelayError::Bind { port: 65535, .. })));
    let set = MediaCommand::SetRemote { relay: RelayId(12), side: Side::A, remote: local(1) };
    assert_eq!(mgr.execute(set), Err(RelayError::UnknownRelay(RelayId(12))));
    assert_eq!(mgr.active(), 1);
}

#[test]
fn open_outside_a_runtime_is_an_error_not_a_panic() {
    let mgr = RelayManager::new(LOCALHOST);
    let cmd = MediaCommand::Open {
        relay: RelayId(1),
        a_port: 30000,
        b_port: 30002,
        a_remote: None,
        b_remote: None,
    };
    assert_eq!(mgr.execute(cmd), Err(RelayError::NoRuntime));
}

#[test]
fn dropping_the_manager_closes_its_relays() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (a_port, _) = rt.block_on(async {
        let mgr = RelayManager::new(LOCALHOST);
        let ports = open(&mgr, 1, None, None);
        drop(mgr);
        ports
    });
    std::net::UdpSocket::bind(local(a_port)).unwrap();
}
