//! SIP messages: a two-stage parser (framing, then a checked representation) and the typed
//! header values the engine reads.
//!
//! Stage 1 ([`frame`]) splits the start line, the unfolded headers and the body and checks only
//! framing (limits, UTF-8, `Content-Length`). Stage 2 ([`parse`]) turns a frame into a
//! [`Request`] or [`Response`] whose mandatory headers (Via, From, To, Call-ID, CSeq) are present
//! and well-formed, so nothing downstream needs to re-check them. Neither stage panics on any input.
//!
//! When stage 2 fails on a request whose Via/From/To/Call-ID/CSeq can still be read, the error
//! carries a [`ReplyContext`] so the caller can answer 400/505/513 as RFC 3261 §8.2 wants
//! (RFC 4475 §3.1.2: reject, and tell the sender why).

use std::fmt;

/// Largest message accepted. UDP allows 65,507 bytes; real phones send under 4 KiB. Capped
/// against memory abuse; larger messages are answered 513 when their headers can be read.
pub const MAX_SIP_MESSAGE: usize = 16 * 1024;
/// Most header lines in one message; more is an attack or a broken peer.
pub const MAX_HEADERS: usize = 128;
/// Most Via entries: one per hop, and Max-Forwards starts at 70 (RFC 4475 longreq has 34).
pub const MAX_VIA: usize = 70;
/// Most Contact entries in one REGISTER.
pub const MAX_CONTACTS: usize = 16;

/// Why a message could not be parsed. Each variant maps to the answer the sender gets.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Larger than [`MAX_SIP_MESSAGE`] (answered 513).
    TooLarge,
    /// No blank line ends the header section.
    NoHeaderEnd,
    /// The start line is not `METHOD SP URI SP SIP/2.0` nor `SIP/2.0 SP code SP reason`.
    BadStartLine,
    /// A SIP version other than 2.0 (answered 505).
    BadVersion,
    /// A header line without a colon or with an invalid name.
    BadHeaderLine,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// Bytes that are not UTF-8 in the start line or a header.
    NotUtf8,
    /// A mandatory header is absent.
    Missing(&'static str),
    /// A header's value does not parse.
    BadValue(&'static str),
    /// Content-Length is not a number or says more than was received.
    BadContentLength,
    /// The CSeq method differs from the request method (RFC 4475 mismatch01).
    CseqMismatch,
}

impl ParseError {
    /// The status a request with this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::TooLarge => 513,
            ParseError::BadVersion => 505,
            _ => 400,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLarge => write!(f, "message too large"),
            ParseError::NoHeaderEnd => write!(f, "no end of headers"),
            ParseError::BadStartLine => write!(f, "malformed start line"),
            ParseError::BadVersion => write!(f, "unsupported SIP version"),
            ParseError::BadHeaderLine => write!(f, "malformed header line"),
            ParseError::TooManyHeaders => write!(f, "too many headers"),
            ParseError::NotUtf8 => write!(f, "header is not UTF-8"),
            ParseError::Missing(h) => write!(f, "missing {h} header"),
            ParseError::BadValue(h) => write!(f, "malformed {h} header"),
            ParseError::BadContentLength => write!(f, "bad Content-Length"),
            ParseError::CseqMismatch => write!(f, "CSeq method does not match"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A request method. Extension methods are kept (RFC 4475 intmeth) and answered 501.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Other(String),
}

impl Method {
    fn parse(token: &str) -> Option<Method> {
        if token.is_empty() || !token.bytes().all(is_token_char) {
            return None;
        }
        Some(match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        })
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A URI parameter `name[=value]`.
pub type Param = (String, Option<String>);

/// A URI. `sip:`/`sips:` URIs are split into parts; other schemes keep only the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The whole URI as received.
    pub raw: String,
    /// Lower-cased scheme (`sip`, `sips`, `tel`, ...).
    pub scheme: String,
    /// The user part (still escaped), for sip/sips.
    pub user: Option<String>,
    /// The host (IPv6 without brackets), for sip/sips; empty otherwise.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp`).
    pub params: Vec<Param>,
    /// True when the URI has a `?headers` part.
    pub has_headers: bool,
}

impl Uri {
    /// Parses a URI; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Uri> {
        let s = s.trim();
        let colon = s.find(':')?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme.as_bytes()[0].is_ascii_alphabetic()
            || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() || rest.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>') {
            return None;
        }
        let scheme_lc = scheme.to_ascii_lowercase();
        let mut uri = Uri {
            raw: s.to_string(),
            scheme: scheme_lc.clone(),
            user: None,
            host: String::new(),
            port: None,
            params: Vec::new(),
            has_headers: false,
        };
        if scheme_lc != "sip" && scheme_lc != "sips" {
            return Some(uri);
        }
        // The user part may hold `?`, `;` and `/` (RFC 4475 intmeth, semiuri): split it off at
        // the first `@` before looking for parameters and headers.
        let hostpart = match rest.find('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _password)| u);
                if user.is_empty() {
                    return None;
                }
                uri.user = Some(user.to_string());
                &rest[at + 1..]
            }
            None => rest,
        };
        let hostpart = match hostpart.split_once('?') {
            Some((b, _headers)) => {
                uri.has_headers = true;
                b
            }
            None => hostpart,
        };
        let mut parts = hostpart.split(';');
        let hostport = parts.next()?;
        let (host, port) = split_hostport(hostport)?;
        uri.host = host;
        uri.port = port;
        for p in parts {
            if p.is_empty() {
                return None;
            }
            uri.params.push(split_param(p));
        }
        Some(uri)
    }

    /// The value of a URI parameter (names compare case-insensitively).
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }

    /// The user part with %XX escapes decoded (lossy for non-UTF-8).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(unescape)
    }
}

/// Decodes %XX escapes; invalid escapes are kept literally.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn split_param(p: &str) -> Param {
    match p.split_once('=') {
        Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
        None => (p.trim().to_string(), None),
    }
}

fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// Splits `host[:port]`, `[v6][:port]`; validates the host characters.
fn split_hostport(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let v6 = &rest[..close];
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let after = &rest[close + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6.to_string(), port)
    } else {
        let (h, p) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            return None;
        }
        (h.to_string(), p)
    };
    let port = match port {
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(p.parse::<u16>().ok()?)
        }
        None => None,
    };
    Some((host, port))
}

/// A `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route, Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (`;tag=`, `;expires=`).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Parses one name-addr / addr-spec.
    pub fn parse(s: &str) -> Option<NameAddr> {
        let s = s.trim();
        if let Some(lt) = find_unquoted(s, b'<') {
            let display = s[..lt].trim();
            let display = if display.is_empty() {
                None
            } else if let Some(q) = display.strip_prefix('"') {
                Some(unquote_rest(q)?)
            } else if display.bytes().all(|b| is_token_char(b) || b == b' ' || b == b'\t') {
                Some(display.to_string())
            } else {
                // An unquoted display name is tokens only (RFC 4475 baddn: a comma needs quotes).
                return None;
            };
            let rest = &s[lt + 1..];
            let gt = rest.find('>')?;
            let inner = &rest[..gt];
            // No whitespace inside the brackets (RFC 4475 badaspec).
            if inner.trim() != inner {
                return None;
            }
            let uri = Uri::parse(inner)?;
            let params = parse_header_params(&rest[gt + 1..])?;
            Some(NameAddr { display, uri, params })
        } else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20).
            if s.starts_with('"') {
                return None;
            }
            let (u, p) = match s.find(';') {
                Some(i) => (&s[..i], &s[i..]),
                None => (s, ""),
            };
            if u.contains(',') || u.contains('?') {
                return None;
            }
            let uri = Uri::parse(u)?;
            let params = parse_header_params(p)?;
            Some(NameAddr { display: None, uri, params })
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").filter(|t| !t.is_empty())
    }

    /// A header parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }
}

/// Parses `;a=b;c` after a URI; `None` on junk between the URI and the parameters.
fn parse_header_params(s: &str) -> Option<Vec<Param>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Vec::new());
    }
    let s = s.strip_prefix(';')?;
    let mut out = Vec::new();
    for p in split_unquoted(s, b';') {
        let p = p.trim();
        if p.is_empty() {
            return None;
        }
        out.push(split_param(p));
    }
    Some(out)
}

/// The text of a quoted string after its opening quote; `None` when unbalanced.
fn unquote_rest(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// Index of `needle` outside double quotes.
fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let mut in_quote = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        } else if b == needle {
            return Some(i);
        }
    }
    None
}

/// Splits on `sep` outside quotes and angle brackets.
pub fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_quote, mut escaped, mut depth, mut start) = (false, false, 0u32, 0usize);
    for (i, b) in s.bytes().enumerate() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
            continue;
        }
        match b {
            b'"' => in_quote = true,
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            _ if b == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// One Via entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The entry as received (re-sent verbatim in responses).
    pub raw: String,
    /// `UDP`, `TCP`, `TLS`, ...
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `rport`, `received`).
    pub params: Vec<Param>,
}

impl Via {
    fn parse(s: &str) -> Option<Via> {
        let raw = s.trim();
        // `SIP / 2.0 / UDP host` may carry LWS around the slashes (RFC 4475 wsinv).
        let mut rest = raw;
        let mut proto = Vec::with_capacity(3);
        for i in 0..3 {
            rest = rest.trim_start();
            let end = if i < 2 { rest.find('/')? } else { rest.find(|c: char| c.is_ascii_whitespace())? };
            proto.push(rest[..end].trim());
            rest = &rest[end + usize::from(i < 2)..];
        }
        // Any version token is kept here; the start line decides (RFC 4475 badvers wants 505).
        if !proto[0].eq_ignore_ascii_case("SIP")
            || proto[1].is_empty()
            || !proto[1].bytes().all(is_token_char)
        {
            return None;
        }
        if proto[2].is_empty() || !proto[2].bytes().all(is_token_char) {
            return None;
        }
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let sent_by: String = sent_by.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let (host, port) = split_hostport(&sent_by)?;
        let params = parse_header_params(params)?;
        Some(Via { raw: raw.to_string(), transport: proto[2].to_ascii_uppercase(), host, port, params })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").filter(|b| !b.is_empty())
    }
}

/// The CSeq header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (< 2^31, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    fn parse(s: &str) -> Option<CSeq> {
        let mut it = s.split_ascii_whitespace();
        let n = it.next()?;
        let m = it.next()?;
        if it.next().is_some() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq: u64 = n.parse().ok()?;
        if seq >= 1 << 31 {
            return None;
        }
        Some(CSeq { seq: seq as u32, method: Method::parse(m)? })
    }
}

/// The Contact header of a REGISTER or a dialog-creating message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *` (only valid with Expires: 0).
    Star,
    /// Zero or more contacts.
    List(Vec<NameAddr>),
}

/// Canonical header names for the compact forms (RFC 3261 §7.3.3 and extensions).
fn canonical_name(name: &str) -> &str {
    if name.len() == 1 {
        return match name.as_bytes()[0].to_ascii_lowercase() {
            b'i' => "Call-ID",
            b'm' => "Contact",
            b'e' => "Content-Encoding",
            b'l' => "Content-Length",
            b'c' => "Content-Type",
            b'f' => "From",
            b's' => "Subject",
            b'k' => "Supported",
            b't' => "To",
            b'v' => "Via",
            b'o' => "Event",
            b'r' => "Refer-To",
            b'b' => "Referred-By",
            b'u' => "Allow-Events",
            b'x' => "Session-Expires",
            _ => name,
        };
    }
    name
}

/// Stage 1: a framed message. Header names are canonical, values unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The start line.
    pub start_line: &'a str,
    /// Headers in order.
    pub headers: Vec<(&'a str, String)>,
    /// The body (exactly Content-Length bytes; trailing octets of a datagram are dropped).
    pub body: &'a [u8],
    /// Set when Content-Length is malformed or promises more than arrived; the headers are still
    /// readable so the sender can be answered 400.
    pub length_error: bool,
}

impl Frame<'_> {
    /// Values of every header with this (canonical) name.
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of a header.
    pub fn first<'s>(&'s self, name: &'s str) -> Option<&'s str> {
        self.values(name).next()
    }
}

/// Stage 1: splits a datagram (or one framed stream message) into start line, headers and body.
pub fn frame(data: &[u8]) -> Result<Frame<'_>, ParseError> {
    // Leading CRLFs are keep-alives / stray line ends (RFC 3261 §7.5).
    let mut start = 0;
    while data.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    let data = &data[start..];
    let (head, body) = split_head(data).ok_or(ParseError::NoHeaderEnd)?;
    let head = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().ok_or(ParseError::BadStartLine)?;
    if start_line.is_empty() || start_line.starts_with([' ', '\t']) {
        return Err(ParseError::BadStartLine);
    }
    let mut headers: Vec<(&str, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation (RFC 3261 §7.3.1): joins the previous value with one space.
            let (_, value) = headers.last_mut().ok_or(ParseError::BadHeaderLine)?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let colon = line.find(':').ok_or(ParseError::BadHeaderLine)?;
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(ParseError::BadHeaderLine);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        headers.push((canonical_name(name), line[colon + 1..].trim().to_string()));
    }
    let frame = Frame { start_line, headers, body: &[], length_error: false };
    // Content-Length is single-valued (RFC 4475 mcl01): two of them make the framing ambiguous.
    if frame.values("Content-Length").nth(1).is_some() {
        return Ok(Frame { body, length_error: true, ..frame });
    }
    let declared = match frame.first("Content-Length") {
        Some(v) if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) => Err(()),
        Some(v) => v.parse::<usize>().map(Some).map_err(|_| ()),
        None => Ok(None),
    };
    let (body, length_error) = match declared {
        Err(()) => (body, true),
        Ok(Some(n)) => match body.get(..n) {
            Some(b) => (b, false),
            None => (body, true),
        },
        Ok(None) => (body, false),
    };
    Ok(Frame { body, length_error, ..frame })
}

/// Splits at the first empty line (CRLFCRLF, or bare LF LF from lenient peers).
fn split_head(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\n' {
            let next = data.get(i + 1).copied();
            if next == Some(b'\n') {
                return Some((&data[..i], &data[i + 2..]));
            }
            if next == Some(b'\r') && data.get(i + 2) == Some(&b'\n') {
                let head_end = if i > 0 && data[i - 1] == b'\r' { i - 1 } else { i };
                return Some((&data[..head_end], &data[i + 3..]));
            }
        }
        i += 1;
    }
    None
}

/// The headers every request and response must have, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// Via entries, topmost first.
    pub via: Vec<Via>,
    /// From.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// Call-ID.
    pub call_id: String,
    /// CSeq.
    pub cseq: CSeq,
    /// All headers in order (canonical names), for the ones not typed here.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Common {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated lists split.
    pub fn header_list(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_unquoted(v, b','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The top Via (always present after parsing).
    pub fn top_via(&self) -> &Via {
        // Parsing guarantees at least one Via.
        &self.via[0]
    }

    /// The Content-Type, lower-cased without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.header("Content-Type").map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// Max-Forwards, when present (0..=255).
    pub max_forwards: Option<u8>,
    /// The mandatory headers and the rest.
    pub common: Common,
}

impl Request {
    /// Contacts (REGISTER, INVITE).
    pub fn contacts(&self) -> Result<Contacts, ParseError> {
        let list = self.common.header_list("Contact");
        if list.len() == 1 && list[0] == "*" {
            return Ok(Contacts::Star);
        }
        if list.len() > MAX_CONTACTS {
            return Err(ParseError::BadValue("Contact"));
        }
        list.iter()
            .map(|c| NameAddr::parse(c).ok_or(ParseError::BadValue("Contact")))
            .collect::<Result<Vec<_>, _>>()
            .map(Contacts::List)
    }

    /// The Expires header (seconds), when present and valid.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.common.header("Expires") {
            None => Ok(None),
            Some(v) => parse_delta_seconds(v).map(Some).ok_or(ParseError::BadValue("Expires")),
        }
    }
}

/// `delta-seconds`; values beyond 2^32-1 are an error here (RFC 4475 scalar02 rejects them).
pub fn parse_delta_seconds(v: &str) -> Option<u32> {
    let v = v.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A checked response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code 100..=699.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// The mandatory headers and the rest.
    pub common: Common,
}

/// A checked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Enough of a bad request to answer it (Via, From, To, Call-ID, CSeq as received).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyContext {
    /// Raw header values to copy into the answer, in order.
    pub headers: Vec<(String, String)>,
    /// True when the bad message was an ACK (which is never answered).
    pub is_ack: bool,
}

/// A parse failure, with what is needed to answer it when possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    /// What was wrong.
    pub error: ParseError,
    /// Present for requests whose dialog-identifying headers could be read.
    pub reply: Option<ReplyContext>,
}

/// Stage 2: parses and checks a whole message.
pub fn parse(data: &[u8]) -> Result<Message, ParseFailure> {
    let too_large = data.len() > MAX_SIP_MESSAGE;
    let frame = frame(data).map_err(|error| ParseFailure { error, reply: None })?;
    let is_request = !frame.start_line.starts_with("SIP/");
    let reply_context = |frame: &Frame<'_>| {
        if !is_request {
            return None;
        }
        // Answer with whatever of these is there (RFC 4475 insuf lacks some): the Via is what
        // routes the answer back, so only it is required.
        let mut headers = Vec::new();
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for v in frame.values(name) {
                headers.push((name.to_string(), v.to_string()));
            }
        }
        // Only answer when the top Via is readable: the answer goes back along it.
        let top = frame.first("Via").and_then(|v| split_unquoted(v, b',').first().copied())?;
        Via::parse(top)?;
        Some(ReplyContext { headers, is_ack: frame.start_line.starts_with("ACK ") })
    };
    let fail = |error: ParseError, frame: &Frame<'_>| ParseFailure { error, reply: reply_context(frame) };
    if too_large {
        return Err(fail(ParseError::TooLarge, &frame));
    }
    if frame.length_error {
        return Err(fail(ParseError::BadContentLength, &frame));
    }
    let common = match parse_common(&frame) {
        Ok(c) => c,
        Err(e) => return Err(fail(e, &frame)),
    };
    if is_request {
        let mut parts = frame.start_line.split(' ');
        let (m, u, v) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(u), Some(v), None) => (m, u, v),
            _ => return Err(fail(ParseError::BadStartLine, &frame)),
        };
        let method = Method::parse(m).ok_or_else(|| fail(ParseError::BadStartLine, &frame))?;
        if v != "SIP/2.0" {
            let e = if v.starts_with("SIP/") { ParseError::BadVersion } else { ParseError::BadStartLine };
            return Err(fail(e, &frame));
        }
        let uri = Uri::parse(u).ok_or_else(|| fail(ParseError::BadStartLine, &frame))?;
        // RFC 3261 §19.1.1 table 1: no headers component in a Request-URI (RFC 4475 escruri).
        if uri.has_headers {
            return Err(fail(ParseError::BadStartLine, &frame));
        }
        if common.cseq.method != method {
            return Err(fail(ParseError::CseqMismatch, &frame));
        }
        let max_forwards = match frame.first("Max-Forwards") {
            None => None,
            Some(v) => {
                let n = parse_delta_seconds(v).filter(|n| *n <= 255);
                Some(n.ok_or_else(|| fail(ParseError::BadValue("Max-Forwards"), &frame))? as u8)
            }
        };
        let req = Request { method, uri, max_forwards, common };
        if req.expires().is_err() {
            return Err(fail(ParseError::BadValue("Expires"), &frame));
        }
        if req.contacts().is_err() {
            return Err(fail(ParseError::BadValue("Contact"), &frame));
        }
        // RFC 3261 §20.17: a Date is always in GMT (RFC 4475 baddate).
        if frame.first("Date").is_some_and(|d| !d.trim_end().ends_with("GMT")) {
            return Err(fail(ParseError::BadValue("Date"), &frame));
        }
        Ok(Message::Request(req))
    } else {
        let mut parts = frame.start_line.splitn(3, ' ');
        let v = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        let reason = parts.next().unwrap_or("");
        if v != "SIP/2.0" {
            return Err(fail(ParseError::BadVersion, &frame));
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(ParseError::BadStartLine, &frame));
        }
        let code: u16 = code.parse().map_err(|_| fail(ParseError::BadStartLine, &frame))?;
        if !(100..=699).contains(&code) {
            return Err(fail(ParseError::BadStartLine, &frame));
        }
        Ok(Message::Response(Response { code, reason: reason.to_string(), common }))
    }
}

fn parse_common(frame: &Frame<'_>) -> Result<Common, ParseError> {
    let mut via = Vec::new();
    for v in frame.values("Via") {
        for entry in split_unquoted(v, b',') {
            if via.len() >= MAX_VIA {
                return Err(ParseError::BadValue("Via"));
            }
            via.push(Via::parse(entry).ok_or(ParseError::BadValue("Via"))?);
        }
    }
    if via.is_empty() {
        return Err(ParseError::Missing("Via"));
    }
    let single = |name: &'static str| -> Result<&str, ParseError> {
        let mut it = frame.values(name);
        let v = it.next().ok_or(ParseError::Missing(name))?;
        if it.next().is_some() {
            return Err(ParseError::BadValue(name));
        }
        Ok(v)
    };
    let from = NameAddr::parse(single("From")?).ok_or(ParseError::BadValue("From"))?;
    let to = NameAddr::parse(single("To")?).ok_or(ParseError::BadValue("To"))?;
    let call_id = single("Call-ID")?;
    if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::BadValue("Call-ID"));
    }
    let cseq = CSeq::parse(single("CSeq")?).ok_or(ParseError::BadValue("CSeq"))?;
    Ok(Common {
        via,
        from,
        to,
        call_id: call_id.to_string(),
        cseq,
        headers: frame.headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
        body: frame.body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:202@10.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK1;rport\r\n\
        Max-Forwards: 70\r\n\
        From: \"Alice\" <sip:201@10.0.0.1>;tag=a1\r\n\
        To: <sip:202@10.0.0.1>\r\n\
        Call-ID: c1@10.0.0.2\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:201@10.0.0.2:5070>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\r\n";

    fn req(s: &str) -> Request {
        match parse(s.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn a_phone_invite_parses_into_checked_fields() {
        let r = req(INVITE);
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.uri.user.as_deref(), Some("202"));
        assert_eq!(r.common.from.tag(), Some("a1"));
        assert_eq!(r.common.from.display.as_deref(), Some("Alice"));
        assert_eq!(r.common.top_via().branch(), Some("z9hG4bK1"));
        assert_eq!(r.common.top_via().port, Some(5070));
        assert_eq!(r.common.cseq.seq, 1);
        assert_eq!(r.common.body, b"v=0\r");
        assert_eq!(r.max_forwards, Some(70));
    }

    #[test]
    fn compact_and_folded_headers_are_understood() {
        let m = "OPTIONS sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKa\r\nf: <sip:a@b>;tag=1\r\n\
                 t: <sip:x@y>\r\ni: abc\r\nCSeq: 2\r\n OPTIONS\r\nl: 0\r\n\r\n";
        let r = req(m);
        assert_eq!(r.common.cseq.method, Method::Options);
        assert_eq!(r.common.call_id, "abc");
    }

    #[test]
    fn a_body_shorter_than_content_length_is_rejected() {
        let m = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        let e = parse(m.as_bytes()).unwrap_err();
        assert_eq!(e.error, ParseError::BadContentLength);
        assert!(e.reply.is_some(), "the sender can still be told");
    }

    #[test]
    fn cseq_method_must_match_the_request() {
        let m = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        assert_eq!(parse(m.as_bytes()).unwrap_err().error, ParseError::CseqMismatch);
    }

    #[test]
    fn an_oversized_message_is_refused_with_513() {
        let pad = "X-Pad: ".to_string() + &"a".repeat(MAX_SIP_MESSAGE) + "\r\n";
        let m = INVITE.replace("Max-Forwards: 70\r\n", &format!("Max-Forwards: 70\r\n{pad}"));
        let e = parse(m.as_bytes()).unwrap_err();
        assert_eq!(e.error.status(), 513);
        assert!(e.reply.is_some());
    }

    #[test]
    fn extension_methods_are_kept() {
        let m = INVITE.replace("INVITE sip", "FOO sip").replace("1 INVITE", "1 FOO");
        assert_eq!(req(&m).method, Method::Other("FOO".into()));
    }

    #[test]
    fn truncated_input_never_panics() {
        let bytes = INVITE.as_bytes();
        for n in 0..bytes.len() {
            let _ = parse(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            for v in [0u8, b'\r', b'\n', b':', b'<', b'"', b';', 0xff, b' '] {
                b[i] = v;
                let _ = parse(&b);
            }
        }
    }

    #[test]
    fn ipv6_hosts_are_bracketed_and_checked() {
        assert_eq!(Uri::parse("sip:[2001:db8::10]:5070").map(|u| u.port), Some(Some(5070)));
        assert!(Uri::parse("sip:user@2001:db8::10").is_none());
        assert!(Uri::parse("sip:[2001:db8:::192.0.2.1]").is_none());
    }
}
