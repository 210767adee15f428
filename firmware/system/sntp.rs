//! NTP for the appliance: a small SNTP client (RFC 4330) in the firmware, because Debian's
//! busybox has no `ntpd` applet. [`request`] and [`parse_reply`] are pure; [`sync_once`]
//! asks the servers in turn and [`step_clock`] sets the system clock (appliance only).
use std::net::SocketAddr;
use std::time::Duration;

/// NTP's port.
pub const NTP_PORT: u16 = 123;

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_TO_UNIX_S: u64 = 2_208_988_800;

/// How long one server may take to answer (a LAN or national server answers in well under).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Between synchronisations: the RTC-less board drifts maybe a second a day; 17 minutes is
/// NTP's usual maximum poll interval (1024 s).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1024);

/// Offsets below this are left alone: stepping the clock for less is noise.
pub const STEP_THRESHOLD_MS: i64 = 500;

/// Size of an NTP packet without extensions.
const PACKET: usize = 48;

/// NTP timestamp (32.32 fixed point since 1900) of unix milliseconds.
fn ntp_of_unix_ms(ms: u64) -> [u8; 8] {
    let secs = ms / 1000 + NTP_TO_UNIX_S;
    // Rounded up so that reading it back (rounded down) gives the same millisecond.
    let frac = ((ms % 1000) << 32).div_ceil(1000);
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(secs as u32).to_be_bytes());
    out[4..].copy_from_slice(&(frac as u32).to_be_bytes());
    out
}

/// Unix milliseconds of an NTP timestamp (era 0: until 2036).
fn unix_ms_of_ntp(ts: &[u8]) -> Option<i64> {
    let secs = u32::from_be_bytes(ts.get(..4)?.try_into().ok()?);
    let frac = u32::from_be_bytes(ts.get(4..8)?.try_into().ok()?);
    let ms = (u64::from(frac) * 1000) >> 32;
    Some((i64::from(secs) - NTP_TO_UNIX_S as i64) * 1000 + ms as i64)
}

/// A client request (version 4, mode 3) whose transmit timestamp is `now_unix_ms`; the
/// server echoes it as the originate timestamp, which ties its answer to this request.
pub fn request(now_unix_ms: u64) -> [u8; PACKET] {
    let mut p = [0u8; PACKET];
    p[0] = (4 << 3) | 3;
    p[40..48].copy_from_slice(&ntp_of_unix_ms(now_unix_ms));
    p
}

/// The clock offset in ms (server minus local) from a reply to `sent`, received at local
/// `received_unix_ms`; refuses a reply that is not a synchronised server's answer to `sent`.
pub fn parse_reply(reply: &[u8], sent: &[u8; PACKET], received_unix_ms: u64) -> Result<i64, String> {
    if reply.len() < PACKET {
        return Err(format!("short reply ({} bytes)", reply.len()));
    }
    let mode = reply.first().map(|b| b & 7).unwrap_or(0);
    let leap = reply.first().map(|b| b >> 6).unwrap_or(3);
    let stratum = reply.get(1).copied().unwrap_or(0);
    if mode != 4 {
        return Err(format!("not a server reply (mode {mode})"));
    }
    if leap == 3 || stratum == 0 || stratum > 15 {
        return Err(format!("the server is not synchronised (stratum {stratum})"));
    }
    if reply.get(24..32) != sent.get(40..48) {
        return Err("the reply does not answer our request".into());
    }
    let t1 = unix_ms_of_ntp(&sent[40..48]).ok_or("bad request")?;
    let t2 = reply.get(32..40).and_then(unix_ms_of_ntp).ok_or("bad receive timestamp")?;
    let t3 = reply.get(40..48).and_then(unix_ms_of_ntp).ok_or("bad transmit timestamp")?;
    let t4 = i64::try_from(received_unix_ms).map_err(|_| "bad local clock")?;
    Ok(((t2 - t1) + (t3 - t4)) / 2)
}

/// `SERVER[:PORT]` as host and port.
fn host_port(server: &str) -> (String, u16) {
    match server.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(NTP_PORT)),
        None => (server.to_string(), NTP_PORT),
    }
}

#[allow(clippy::disallowed_methods)] // driver: reads the wall clock
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Asks the servers in order; the first good answer gives `(server, offset ms)`.
pub async fn sync_once(servers: &[String]) -> Result<(String, i64), String> {
    let mut why = Vec::new();
    for server in servers {
        match ask(server).await {
            Ok(offset) => return Ok((server.clone(), offset)),
            Err(e) => why.push(format!("{server}: {e}")),
        }
    }
    Err(why.join("; "))
}

async fn ask(server: &str) -> Result<i64, String> {
    let (host, port) = host_port(server);
    let peer = tokio::time::timeout(ANSWER_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .map_err(|_| "name lookup timed out".to_string())?
        .map_err(|e| format!("cannot resolve: {e}"))?
        .find(SocketAddr::is_ipv4)
        .ok_or("no IPv4 address")?;
    let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await.map_err(|e| e.to_string())?;
    sock.connect(peer).await.map_err(|e| e.to_string())?;
    let sent = request(unix_ms());
    sock.send(&sent).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(ANSWER_TIMEOUT, sock.recv(&mut buf))
        .await
        .map_err(|_| format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    parse_reply(buf.get(..n).unwrap_or_default(), &sent, unix_ms())
}

/// Moves the system clock by `offset_ms`.
pub fn step_clock(offset_ms: i64) -> Result<(), String> {
    let now = i64::try_from(unix_ms()).map_err(|_| "bad clock")?;
    let target = now.saturating_add(offset_ms);
    let ts = rustix::time::Timespec {
        tv_sec: target.div_euclid(1000),
        tv_nsec: target.rem_euclid(1000) * 1_000_000,
    };
    rustix::time::clock_settime(rustix::time::ClockId::Realtime, ts)
        .map_err(|e| format!("cannot set the clock: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_for(sent: &[u8; PACKET], server_rx_ms: u64, server_tx_ms: u64, stratum: u8) -> [u8; PACKET] {
        let mut r = [0u8; PACKET];
        r[0] = (4 << 3) | 4;
        r[1] = stratum;
        r[24..32].copy_from_slice(&sent[40..48]);
        r[32..40].copy_from_slice(&ntp_of_unix_ms(server_rx_ms));
        r[40..48].copy_from_slice(&ntp_of_unix_ms(server_tx_ms));
        r
    }

    #[test]
    fn the_offset_is_the_mean_of_both_legs() {
        // Local clock 10 s behind, 20 ms each way.
        let t1 = 1_800_000_000_000;
        let sent = request(t1);
        let r = reply_for(&sent, t1 + 10_020, t1 + 10_021, 2);
        assert_eq!(parse_reply(&r, &sent, t1 + 41), Ok(10_000));
    }

    #[test]
    fn replies_that_do_not_answer_us_or_come_from_an_unsynchronised_server_are_refused() {
        let sent = request(1_800_000_000_000);
        let other = request(1_800_000_000_001);
        assert!(parse_reply(&reply_for(&other, 1, 2, 2), &sent, 3).is_err());
        assert!(parse_reply(&reply_for(&sent, 1, 2, 0), &sent, 3).is_err());
        assert!(parse_reply(&sent, &sent, 3).is_err(), "a request is not a reply");
        assert!(parse_reply(&[0u8; 10], &sent, 3).is_err());
    }

    #[test]
    fn timestamps_survive_the_ntp_format_to_the_millisecond() {
        let ms = 1_795_791_600_123;
        assert_eq!(unix_ms_of_ntp(&ntp_of_unix_ms(ms)), Some(ms as i64));
    }

    #[test]
    fn a_server_may_name_its_port() {
        assert_eq!(host_port("10.0.2.2:1123"), ("10.0.2.2".into(), 1123));
        assert_eq!(host_port("ntp.nict.jp"), ("ntp.nict.jp".into(), 123));
    }
}
