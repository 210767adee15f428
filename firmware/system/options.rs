//! `options-test TARGET`: one SIP OPTIONS over UDP, answered with the status code and the
//! round-trip time. The message building and answer matching are pure; [`options_test`] is
//! the driver.
use std::net::SocketAddr;
use std::time::Duration;

/// Default SIP port when TARGET has none.
const SIP_PORT: u16 = 5060;

/// How long to wait for an answer in total: well under the console's 5 s reply limit.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(4);

/// First retransmission interval (RFC 3261 T1); doubled after each send.
const T1: Duration = Duration::from_millis(500);

/// Largest datagram read (a UDP SIP message fits the path MTU; this is ample).
const MAX_DATAGRAM: usize = 8 * 1024;

/// Longest TARGET accepted.
const MAX_TARGET: usize = 255;

/// TARGET as `(host, port)`: `HOST`, `HOST:PORT`, `sip:[USER@]HOST[:PORT]`.
pub fn parse_target(target: &str) -> Result<(String, u16), String> {
    const USAGE: &str = "usage: options-test HOST[:PORT] | sip:[USER@]HOST[:PORT]";
    let t = target.trim();
    if t.is_empty() || t.len() > MAX_TARGET {
        return Err(USAGE.into());
    }
    let t = t.strip_prefix("sip:").unwrap_or(t);
    let t = t.rsplit_once('@').map_or(t, |(_, h)| h);
    let t = t.split(';').next().unwrap_or_default();
    let (host, port) = match t.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{p}` is not a port; {USAGE}"))?,
        ),
        None => (t, SIP_PORT),
    };
    let ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok((host.to_string(), port))
    } else {
        Err(format!("`{host}` is not a host name or IPv4 address; {USAGE}"))
    }
}

/// The request; `tag` makes branch, Call-ID and From tag unique.
pub fn build_request(host: &str, port: u16, local: SocketAddr, tag: u64) -> String {
    format!(
        "OPTIONS sip:{host}:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKopt{tag:x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:hakoden@{local}>;tag={tag:x}\r\n\
         To: <sip:{host}:{port}>\r\n\
         Call-ID: options-{tag:x}@hakoden\r\n\
         CSeq: 1 OPTIONS\r\n\
         User-Agent: Hakoden/{}\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n",
        crate::VERSION
    )
}

/// The status code and reason of `datagram` if it answers the request with `tag`.
pub fn match_answer(datagram: &[u8], tag: u64) -> Option<(u16, String)> {
    let text = std::str::from_utf8(datagram).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
    let code = code.parse::<u16>().ok().filter(|c| (100..700).contains(c))?;
    let want = format!("options-{tag:x}@hakoden");
    let ours = lines.take_while(|l| !l.is_empty()).any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            let name = name.trim();
            (name.eq_ignore_ascii_case("call-id") || name == "i") && value.trim() == want
        })
    });
    ours.then(|| (code, reason.trim().to_string()))
}

/// Sends the OPTIONS and waits for a final answer (provisional ones are skipped).
pub async fn options_test(target: &str) -> String {
    match run(target).await {
        Ok(s) => s,
        Err(e) => format!("error: {e}"),
    }
}

#[allow(clippy::disallowed_methods)] // driver: reads the clock to time the answer
async fn run(target: &str) -> Result<String, String> {
    use tokio::time::{timeout_at, Instant};
    let (host, port) = parse_target(target)?;
    let give_up = Instant::now() + ANSWER_TIMEOUT;
    let peer = timeout_at(give_up, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .map_err(|_| format!("resolving {host} timed out"))?
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("{host} has no IPv4 address"))?;
    let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await.map_err(|e| format!("no UDP socket: {e}"))?;
    // Connecting picks the local address the Via must name, and filters other senders.
    sock.connect(peer).await.map_err(|e| format!("cannot reach {peer}: {e}"))?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let mut tag_bytes = [0u8; 8];
    getrandom::fill(&mut tag_bytes).map_err(|e| format!("no randomness: {e}"))?;
    let tag = u64::from_le_bytes(tag_bytes);
    let request = build_request(&host, port, local, tag);
    let started = Instant::now();
    let mut interval = T1;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        // A refused port shows as an error on the connected socket: report it, do not retry.
        sock.send(request.as_bytes()).await.map_err(|e| format!("sending to {peer} failed: {e}"))?;
        let resend_at = (Instant::now() + interval).min(give_up);
        loop {
            match timeout_at(resend_at, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(format!("no answer from {peer}: {e}")),
                Ok(Ok(n)) => {
                    let Some((code, reason)) = buf.get(..n).and_then(|d| match_answer(d, tag)) else {
                        continue;
                    };
                    if code < 200 {
                        continue;
                    }
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    return Ok(format!("OPTIONS sip:{host}:{port} ({peer}): {code} {reason} in {ms:.1} ms"));
                }
            }
        }
        if Instant::now() >= give_up {
            return Err(format!("no answer from {peer} within {} s", ANSWER_TIMEOUT.as_secs()));
        }
        interval = interval.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_hosts_ports_and_sip_uris() {
        assert_eq!(parse_target("10.0.0.5").unwrap(), ("10.0.0.5".into(), 5060));
        assert_eq!(parse_target("pbx.example.jp:5080").unwrap(), ("pbx.example.jp".into(), 5080));
        assert_eq!(parse_target("sip:201@10.0.0.5:5062;transport=udp").unwrap(), ("10.0.0.5".into(), 5062));
        assert!(parse_target("10.0.0.5:0").is_err());
        assert!(parse_target("bad host").is_err());
        assert!(parse_target("").is_err());
    }

    #[test]
    fn only_an_answer_with_our_call_id_counts() {
        let ok = "SIP/2.0 200 OK\r\nVia: x\r\nCall-ID: options-2a@hakoden\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(match_answer(ok.as_bytes(), 0x2a), Some((200, "OK".into())));
        assert_eq!(match_answer(ok.as_bytes(), 0x2b), None);
        let compact = "SIP/2.0 404 Not Found\r\ni: options-2a@hakoden\r\n\r\n";
        assert_eq!(match_answer(compact.as_bytes(), 0x2a), Some((404, "Not Found".into())));
        assert_eq!(match_answer(b"OPTIONS sip:x SIP/2.0\r\n\r\n", 0x2a), None);
        assert_eq!(match_answer(b"\xff\xfe", 0x2a), None);
    }

    #[test]
    fn the_request_names_our_address_in_the_via() {
        let r = build_request("10.0.0.5", 5060, "127.0.0.1:40000".parse().unwrap(), 7);
        assert!(r.starts_with(
            "OPTIONS sip:10.0.0.5:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKopt7"
        ));
        assert!(r.ends_with("\r\n\r\n"));
    }
}
