//! Building outgoing SIP messages as bytes.
//!
//! Messages are written as text in one pass into one buffer; `Content-Length` is always computed.
//! Everything put in here comes from the box itself or from values the parser already checked.

use super::message::{Common, ReplyContext};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The methods the box understands, for `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, REFER";
/// Extensions the box supports, for `Supported`.
pub const SUPPORTED: &str = "replaces, timer";
/// `User-Agent` / `Server`.
pub const SERVER: &str = concat!("Hakoden/", env!("CARGO_PKG_VERSION"));

/// A message being written.
#[derive(Debug, Clone)]
pub struct Writer {
    head: String,
}

impl Writer {
    /// Starts a request line.
    pub fn request(method: &str, uri: &str) -> Writer {
        let mut head = String::with_capacity(768);
        let _ = write!(head, "{method} {uri} SIP/2.0\r\n");
        Writer { head }
    }

    /// Starts a status line.
    pub fn response(code: u16, reason: &str) -> Writer {
        let mut head = String::with_capacity(768);
        let _ = write!(head, "SIP/2.0 {code} {reason}\r\n");
        Writer { head }
    }

    /// Adds a header line.
    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Writer {
        let _ = write!(self.head, "{name}: {value}\r\n");
        self
    }

    /// Adds a header line when there is a value.
    pub fn header_opt(self, name: &str, value: Option<impl std::fmt::Display>) -> Writer {
        match value {
            Some(v) => self.header(name, v),
            None => self,
        }
    }

    /// Finishes without a body.
    pub fn finish(self) -> Vec<u8> {
        let mut head = self.head;
        head.push_str("Content-Length: 0\r\n\r\n");
        head.into_bytes()
    }

    /// Finishes with a body of the given type.
    pub fn finish_with_body(self, content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut head = self.head;
        let _ = write!(head, "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len());
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        out
    }
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

/// The top Via with `received` and `rport` filled in (RFC 3261 §18.2.1, RFC 3581).
pub fn stamped_top_via(raw: &str, sent_by_host: &str, has_rport: bool, src: SocketAddr) -> String {
    let mut v = String::with_capacity(raw.len() + 40);
    // Drop a valueless `rport` so we can write `rport=<port>`.
    let mut first = true;
    for part in raw.split(';') {
        if !first && part.trim().eq_ignore_ascii_case("rport") {
            continue;
        }
        if !first {
            v.push(';');
        }
        v.push_str(part);
        first = false;
    }
    let ip = src.ip().to_string();
    if sent_by_host != ip {
        let _ = write!(v, ";received={ip}");
    }
    if has_rport {
        let _ = write!(v, ";rport={}", src.port());
    }
    v
}

/// A response to a checked request: copies Via (stamped), From, To (adding `to_tag` when To has
/// no tag), Call-ID and CSeq (RFC 3261 §8.2.6.2).
pub fn response_to(req: &Common, src: SocketAddr, code: u16, to_tag: Option<&str>) -> Writer {
    response_with_reason(req, src, code, reason_phrase(code), to_tag)
}

/// As [`response_to`] with an explicit reason phrase.
pub fn response_with_reason(
    req: &Common,
    src: SocketAddr,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> Writer {
    let mut w = Writer::response(code, reason);
    for (i, via) in req.via.iter().enumerate() {
        if i == 0 {
            let has_rport = via.params.iter().any(|(n, _)| n.eq_ignore_ascii_case("rport"));
            w = w.header("Via", stamped_top_via(&via.raw, &via.host, has_rport, src));
        } else {
            w = w.header("Via", &via.raw);
        }
    }
    let from = req.header("From").unwrap_or_default();
    let to = req.header("To").unwrap_or_default();
    w = w.header("From", from);
    w = match (req.to.tag(), to_tag) {
        (None, Some(tag)) => w.header("To", format_args!("{to};tag={tag}")),
        _ => w.header("To", to),
    };
    w.header("Call-ID", &req.call_id)
        .header("CSeq", format_args!("{} {}", req.cseq.seq, req.cseq.method))
        .header("Server", SERVER)
}

/// An answer to a request that failed parsing (400/505/513), from its raw headers.
pub fn response_from_context(ctx: &ReplyContext, code: u16, warning: &str) -> Vec<u8> {
    let mut w = Writer::response(code, reason_phrase(code));
    for (name, value) in &ctx.headers {
        w = w.header(name, value);
    }
    let warning: String = warning.chars().filter(|c| *c != '"' && *c != '\\').collect();
    w.header("Warning", format_args!("399 hakoden \"{warning}\"")).header("Server", SERVER).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rport_is_filled_and_received_added_for_a_nat_source() {
        let src: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let v = stamped_top_via("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport", "10.0.0.2", true, src);
        assert_eq!(v, "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;received=203.0.113.9;rport=40000");
    }
}
