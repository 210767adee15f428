//! SDP (RFC 4566 / RFC 8866) for a G.711 B2BUA: parse a peer's body into a checked [`Sdp`] and
//! render our own offers and answers with [`render`].
//!
//! Sans-IO, and no input panics: every line is read through `split_once`/`parse`, never by index.
//!
//! What we read: `v=`, `c=` (session and media level), the first `m=audio` with an RTP/AVP(F)
//! profile, and its `a=rtpmap`, `a=fmtp`, `a=ptime`, `a=rtcp` and direction attributes (direction
//! also at session level). Everything else (`o=`, `s=`, `t=`, `b=`, unknown attributes, other media
//! sections) is skipped. Deviations from the RFC, on purpose:
//! - Lines are split on LF with an optional CR before it, because phones send LF-only bodies.
//! - Blank lines and trailing whitespace are tolerated; `o=`, `s=` and `t=` are not required.
//! - Only the first usable audio section is described; [`Sdp::media_count`] tells the engine how
//!   many `m=` lines there were so that an answer can reject the rest (RFC 3264 §6).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Largest SDP body we parse. A G.711 offer is under 1 KiB; video-capable phones send ~3 KiB.
/// Capped so that a hostile body cannot make us walk megabytes per INVITE.
pub const MAX_SDP_BYTES: usize = 16 * 1024;

/// Most payload types accepted on one `m=` line. Real offers list fewer than 20; the cap keeps
/// the per-call format list small.
pub const MAX_FORMATS_PER_MEDIA: usize = 32;

/// Largest RTP payload type (7 bits, RFC 3550 §5.1).
const MAX_PAYLOAD_TYPE: u8 = 127;

/// The clock rate of G.711 and of the telephone-event format we relay (RFC 3551, RFC 4733).
pub const G711_CLOCK_RATE: u32 = 8000;

/// A parsed SDP body, reduced to what the B2BUA needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// The session-level `c=` address, if any.
    pub session_addr: Option<IpAddr>,
    /// The first `m=audio` section with an RTP/AVP or RTP/AVPF profile.
    pub audio: Option<AudioStream>,
    /// How many `m=` lines the body had (of any kind).
    pub media_count: usize,
    /// Every `m=` line as `(media, proto, first format)`, in order, at most
    /// [`MAX_MEDIA_LINES`]: an answer must mirror them (RFC 3264 §6), rejecting the ones we do not
    /// serve with port 0.
    pub media_lines: Vec<(String, String, String)>,
    /// Which of `media_lines` is [`Sdp::audio`].
    pub audio_index: Option<usize>,
}

/// Most `m=` lines remembered for mirroring in an answer; an offer with more is refused.
pub const MAX_MEDIA_LINES: usize = 8;

/// One audio media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    /// Effective connection address: media-level `c=`, else session-level `c=`.
    pub addr: Option<IpAddr>,
    /// The `m=audio` port; 0 means the stream is rejected or disabled (RFC 3264 §5.1).
    pub port: u16,
    /// The payload formats, in `m=` line order.
    pub formats: Vec<PayloadFormat>,
    /// Media-level direction attribute, else session-level, else `sendrecv`.
    pub direction: Direction,
    /// `a=ptime`, in milliseconds.
    pub ptime_ms: Option<u16>,
    /// `a=rtcp:` port (RFC 3605), when the peer's RTCP is not on RTP port + 1.
    pub rtcp_port: Option<u16>,
}

impl AudioStream {
    /// Where the peer wants RTP, or `None` when it gave no usable address: no `c=`, an
    /// unspecified address (`0.0.0.0` is RFC 2543-style hold) or port 0.
    pub fn rtp_addr(&self) -> Option<SocketAddr> {
        let addr = self.addr?;
        if addr.is_unspecified() || self.port == 0 {
            return None;
        }
        Some(SocketAddr::new(addr, self.port))
    }
}

/// One payload format of an `m=` line, with its `a=rtpmap` and `a=fmtp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// RTP payload type, 0-127.
    pub pt: u8,
    /// The encoding named by `a=rtpmap`, or by the static table of RFC 3551.
    pub encoding: Encoding,
    /// Clock rate in Hz (0 when a dynamic type has no `a=rtpmap`).
    pub clock_rate: u32,
    /// The `a=fmtp` parameters, verbatim (e.g. `0-16` for telephone-event).
    pub fmtp: Option<String>,
}

impl PayloadFormat {
    /// PCMU on its static payload type 0.
    pub fn pcmu() -> PayloadFormat {
        PayloadFormat { pt: 0, encoding: Encoding::Pcmu, clock_rate: G711_CLOCK_RATE, fmtp: None }
    }

    /// PCMA on its static payload type 8.
    pub fn pcma() -> PayloadFormat {
        PayloadFormat { pt: 8, encoding: Encoding::Pcma, clock_rate: G711_CLOCK_RATE, fmtp: None }
    }

    /// telephone-event (RFC 4733) on dynamic type `pt`, events 0-16 (DTMF and flash).
    pub fn telephone_event(pt: u8) -> PayloadFormat {
        PayloadFormat {
            pt,
            encoding: Encoding::TelephoneEvent,
            clock_rate: G711_CLOCK_RATE,
            fmtp: Some("0-16".to_owned()),
        }
    }
}

/// An RTP encoding name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// RFC 4733 named telephone events (DTMF).
    TelephoneEvent,
    /// Anything else, with the name as written (empty for an unmapped dynamic type).
    Other(String),
}

impl Encoding {
    fn from_name(name: &str) -> Encoding {
        if name.eq_ignore_ascii_case("PCMU") {
            Encoding::Pcmu
        } else if name.eq_ignore_ascii_case("PCMA") {
            Encoding::Pcma
        } else if name.eq_ignore_ascii_case("telephone-event") {
            Encoding::TelephoneEvent
        } else {
            Encoding::Other(name.to_owned())
        }
    }

    /// The name written in `a=rtpmap`.
    pub fn name(&self) -> &str {
        match self {
            Encoding::Pcmu => "PCMU",
            Encoding::Pcma => "PCMA",
            Encoding::TelephoneEvent => "telephone-event",
            Encoding::Other(name) => name,
        }
    }
}

/// The media direction attribute (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive (the default).
    SendRecv,
    /// Only send (the sender puts the other party on hold).
    SendOnly,
    /// Only receive.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The direction seen from the other end: `sendonly` and `recvonly` swap.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// The attribute name, as in `a=sendrecv`.
    pub fn as_attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(attr: &str) -> Option<Direction> {
        match attr {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// Why an SDP body was refused. Line numbers are 1-based. In SIP, any of these answers an
/// INVITE with 488 Not Acceptable Here (or 400 for a malformed body, at the engine's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_BYTES`].
    TooLarge {
        /// Body length in bytes.
        len: usize,
    },
    /// The body has no lines.
    Empty,
    /// The first line is not `v=`.
    MissingVersion,
    /// `v=` is not `0`.
    UnsupportedVersion,
    /// A line is not `<letter>=<value>`, or is not UTF-8.
    MalformedLine {
        /// The offending line.
        line: usize,
    },
    /// A `c=` line is not `IN IP4|IP6 <address>` with a literal IP address.
    BadConnection {
        /// The offending line.
        line: usize,
    },
    /// An `m=` line lacks a port, profile or format list, or has a bad port.
    BadMedia {
        /// The offending line.
        line: usize,
    },
    /// An RTP `m=` line lists a payload type that is not a number 0-127.
    BadPayloadType {
        /// The offending line.
        line: usize,
    },
    /// An `m=` line lists more than [`MAX_FORMATS_PER_MEDIA`] formats.
    TooManyFormats {
        /// The offending line.
        line: usize,
    },
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdpError::TooLarge { len } => {
                write!(f, "SDP body of {len} bytes exceeds the {MAX_SDP_BYTES}-byte limit")
            }
            SdpError::Empty => write!(f, "SDP body is empty"),
            SdpError::MissingVersion => write!(f, "SDP does not start with v="),
            SdpError::UnsupportedVersion => write!(f, "SDP version is not 0"),
            SdpError::MalformedLine { line } => write!(f, "SDP line {line} is malformed"),
            SdpError::BadConnection { line } => {
                write!(f, "SDP line {line}: c= is not IN IP4/IP6 with an IP address")
            }
            SdpError::BadMedia { line } => write!(f, "SDP line {line}: malformed m= line"),
            SdpError::BadPayloadType { line } => {
                write!(f, "SDP line {line}: payload type is not a number 0-127")
            }
            SdpError::TooManyFormats { line } => {
                write!(f, "SDP line {line}: more than {MAX_FORMATS_PER_MEDIA} formats")
            }
        }
    }
}

impl std::error::Error for SdpError {}

/// Where attribute lines currently land.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Before the first `m=`.
    Session,
    /// Inside the audio section we describe.
    Audio,
    /// Inside any other media section (skipped).
    Other,
}

/// The chosen audio section while it is being read.
struct AudioBuilder {
    addr: Option<IpAddr>,
    port: u16,
    /// One entry per format, in `m=` order.
    formats: Vec<FormatBuilder>,
    direction: Option<Direction>,
    ptime_ms: Option<u16>,
    rtcp_port: Option<u16>,
}

/// `(pt, rtpmap (encoding, clock rate), fmtp)` of one format while its attributes arrive.
type FormatBuilder = (u8, Option<(Encoding, u32)>, Option<String>);

/// Parses an SDP body. Never panics.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge { len: body.len() });
    }
    let mut lines = body
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| (i + 1, raw))
        .filter(|(_, raw)| !raw.iter().all(u8::is_ascii_whitespace));

    let Some((first_no, first)) = lines.next() else {
        return Err(SdpError::Empty);
    };
    match split_line(first) {
        Some((b'v', "0")) => {}
        Some((b'v', _)) => return Err(SdpError::UnsupportedVersion),
        Some(_) => return Err(SdpError::MissingVersion),
        None => return Err(SdpError::MalformedLine { line: first_no }),
    }

    let mut session_addr = None;
    let mut session_direction = None;
    let mut audio: Option<AudioBuilder> = None;
    let mut media_count = 0usize;
    let mut media_lines = Vec::new();
    let mut audio_index = None;
    let mut section = Section::Session;

    for (no, raw) in lines {
        let (kind, value) = split_line(raw).ok_or(SdpError::MalformedLine { line: no })?;
        match (kind, section) {
            (b'm', _) => {
                media_count = media_count.saturating_add(1);
                if media_lines.len() >= MAX_MEDIA_LINES {
                    return Err(SdpError::BadMedia { line: no });
                }
                let mut words = value.split_ascii_whitespace();
                let kind = words.next().unwrap_or("audio").to_string();
                let proto = words.nth(1).unwrap_or("RTP/AVP").to_string();
                let fmt = words.next().unwrap_or("0").to_string();
                media_lines.push((kind, proto, fmt));
                let media = parse_media(value, no)?;
                if audio.is_none() && media.is_rtp_audio {
                    audio_index = Some(media_lines.len() - 1);
                }
                section = if audio.is_none() && media.is_rtp_audio {
                    audio = Some(AudioBuilder {
                        addr: None,
                        port: media.port,
                        formats: media.formats.into_iter().map(|pt| (pt, None, None)).collect(),
                        direction: None,
                        ptime_ms: None,
                        rtcp_port: None,
                    });
                    Section::Audio
                } else {
                    Section::Other
                };
            }
            (b'c', Section::Session) => session_addr = Some(parse_connection(value, no)?),
            (b'c', Section::Audio) => {
                let addr = parse_connection(value, no)?;
                if let Some(a) = audio.as_mut() {
                    a.addr = Some(addr);
                }
            }
            (b'a', Section::Session) => {
                if let Some(dir) = Direction::from_attr(value) {
                    session_direction = Some(dir);
                }
            }
            (b'a', Section::Audio) => {
                if let Some(a) = audio.as_mut() {
                    apply_media_attribute(a, value);
                }
            }
            // Other lines (o=, s=, t=, b=, lines of other media) do not concern a G.711 relay.
            _ => {}
        }
    }

    let audio = audio.map(|a| AudioStream {
        addr: a.addr.or(session_addr),
        port: a.port,
        formats: a.formats.into_iter().map(|(pt, map, fmtp)| resolve_format(pt, map, fmtp)).collect(),
        direction: a.direction.or(session_direction).unwrap_or(Direction::SendRecv),
        ptime_ms: a.ptime_ms,
        rtcp_port: a.rtcp_port,
    });
    Ok(Sdp { session_addr, audio, media_count, media_lines, audio_index })
}

/// Splits `x=value` into `(b'x', "value")`, trimming a trailing CR and whitespace.
fn split_line(raw: &[u8]) -> Option<(u8, &str)> {
    let text = std::str::from_utf8(raw).ok()?.trim_end();
    let (kind, value) = text.split_once('=')?;
    let &[kind] = kind.as_bytes() else {
        return None;
    };
    kind.is_ascii_alphabetic().then_some((kind, value))
}

/// `IN IP4 192.0.2.1`, `IN IP4 224.2.1.1/127` or `IN IP6 2001:db8::1`.
fn parse_connection(value: &str, line: usize) -> Result<IpAddr, SdpError> {
    let bad = SdpError::BadConnection { line };
    let mut fields = value.split_ascii_whitespace();
    let (Some("IN"), Some(addr_type), Some(addr), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad);
    };
    // Multicast addresses carry /ttl (and /count); we only keep the address.
    let addr = addr.split('/').next().unwrap_or(addr);
    let addr: IpAddr = addr.parse().map_err(|_| bad)?;
    match (addr_type, addr) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(addr),
        _ => Err(bad),
    }
}

struct MediaLine {
    is_rtp_audio: bool,
    port: u16,
    formats: Vec<u8>,
}

/// `audio 49170 RTP/AVP 0 8 101` (port may be `49170/2`).
fn parse_media(value: &str, line: usize) -> Result<MediaLine, SdpError> {
    let bad = SdpError::BadMedia { line };
    let mut fields = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(bad);
    };
    let port = port.split_once('/').map_or(port, |(p, _)| p);
    let port: u16 = port.parse().map_err(|_| bad)?;
    let is_rtp = proto == "RTP/AVP" || proto == "RTP/AVPF";
    let mut formats = Vec::new();
    for fmt in fields {
        if formats.len() >= MAX_FORMATS_PER_MEDIA {
            return Err(SdpError::TooManyFormats { line });
        }
        if !is_rtp {
            // Non-RTP formats (e.g. `*` for T.38 over UDPTL) are not payload types; skip them.
            continue;
        }
        match fmt.parse::<u8>() {
            Ok(pt) if pt <= MAX_PAYLOAD_TYPE => {
                if !formats.contains(&pt) {
                    formats.push(pt);
                }
            }
            _ => return Err(SdpError::BadPayloadType { line }),
        }
    }
    if is_rtp && formats.is_empty() {
        return Err(bad);
    }
    Ok(MediaLine { is_rtp_audio: is_rtp && media == "audio", port, formats })
}

/// Applies one media-level `a=` line of the audio section. Unknown or malformed attributes are
/// ignored (RFC 8866 §5.13: unknown attributes must be ignored).
fn apply_media_attribute(audio: &mut AudioBuilder, value: &str) {
    if let Some(dir) = Direction::from_attr(value) {
        audio.direction = Some(dir);
        return;
    }
    let Some((name, rest)) = value.split_once(':') else {
        return;
    };
    match name {
        "rtpmap" => {
            let Some((pt, map)) = parse_rtpmap(rest) else {
                return;
            };
            if let Some(entry) = audio.formats.iter_mut().find(|f| f.0 == pt) {
                // The first rtpmap for a type wins; a second one is a peer error.
                entry.1.get_or_insert(map);
            }
        }
        "fmtp" => {
            let Some((pt, params)) = rest.split_once(' ') else {
                return;
            };
            let Ok(pt) = pt.parse::<u8>() else {
                return;
            };
            if let Some(entry) = audio.formats.iter_mut().find(|f| f.0 == pt) {
                entry.2.get_or_insert_with(|| params.trim().to_owned());
            }
        }
        "ptime" => {
            // Some phones write `20.0`; keep the integer part.
            let ms = rest.trim().split('.').next().unwrap_or_default();
            if let Ok(ms) = ms.parse::<u16>() {
                if ms > 0 {
                    audio.ptime_ms = Some(ms);
                }
            }
        }
        "rtcp" => {
            let port = rest.split_ascii_whitespace().next().unwrap_or_default();
            if let Ok(port) = port.parse::<u16>() {
                audio.rtcp_port = Some(port);
            }
        }
        _ => {}
    }
}

/// `101 telephone-event/8000` or `0 PCMU/8000/1`.
fn parse_rtpmap(rest: &str) -> Option<(u8, (Encoding, u32))> {
    let (pt, map) = rest.split_once(' ')?;
    let pt: u8 = pt.parse().ok()?;
    let mut parts = map.trim().split('/');
    let name = parts.next()?;
    let clock_rate: u32 = parts.next()?.parse().ok()?;
    if name.is_empty() {
        return None;
    }
    Some((pt, (Encoding::from_name(name), clock_rate)))
}

/// Fills in the encoding from `a=rtpmap`, else from the static table of RFC 3551 §6.
fn resolve_format(pt: u8, map: Option<(Encoding, u32)>, fmtp: Option<String>) -> PayloadFormat {
    let (encoding, clock_rate) = map.unwrap_or_else(|| match pt {
        0 => (Encoding::Pcmu, G711_CLOCK_RATE),
        8 => (Encoding::Pcma, G711_CLOCK_RATE),
        3 => (Encoding::Other("GSM".to_owned()), 8000),
        4 => (Encoding::Other("G723".to_owned()), 8000),
        9 => (Encoding::Other("G722".to_owned()), 8000),
        13 => (Encoding::Other("CN".to_owned()), 8000),
        18 => (Encoding::Other("G729".to_owned()), 8000),
        _ => (Encoding::Other(String::new()), 0),
    });
    PayloadFormat { pt, encoding, clock_rate, fmtp }
}

/// PCMU/PCMA/telephone-event (8000 Hz) of the offer, in the offer's order; everything else
/// dropped.
pub fn supported_formats(formats: &[PayloadFormat]) -> Vec<PayloadFormat> {
    formats
        .iter()
        .filter(|f| {
            matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma | Encoding::TelephoneEvent)
                && f.clock_rate == G711_CLOCK_RATE
        })
        .cloned()
        .collect()
}

/// True if at least one of PCMU/PCMA (at 8000 Hz) is present.
pub fn has_voice_codec(formats: &[PayloadFormat]) -> bool {
    formats
        .iter()
        .any(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma) && f.clock_rate == G711_CLOCK_RATE)
}

/// The `o=` line of our SDP. Bump `version` on every changed offer of a session (RFC 3264 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Session id, fixed for the dialog.
    pub session_id: u64,
    /// Session version, incremented when the SDP changes.
    pub version: u64,
    /// Our media address, also written into `c=`.
    pub addr: IpAddr,
}

/// Our SDP: `v=0`, `o=hakoden <id> <version> IN IP4|IP6 <addr>`, `s=hakoden`, `c=`, `t=0 0`,
/// `m=audio <port> RTP/AVP <pts>`, an `a=rtpmap` for each format (and `a=fmtp` when present),
/// `a=ptime` when given, and the direction. CRLF line endings.
///
/// A format of [`Encoding::Other`] with an empty name gets no `a=rtpmap`. An empty `formats`
/// renders the `m=` line with port 0 and payload type 0, i.e. a rejected stream, since an `m=`
/// line must list at least one format (RFC 8866 §5.14).
pub fn render(
    origin: &Origin,
    port: u16,
    formats: &[PayloadFormat],
    direction: Direction,
    ptime_ms: Option<u16>,
) -> String {
    render_answer(origin, None, port, formats, direction, ptime_ms)
}

/// Our answer to `offer`: the same `m=` lines in the same order (RFC 3264 §6), our audio stream
/// at the offer's audio position and every other stream rejected with port 0. With `offer` =
/// `None` it is an offer of one audio stream, as [`render`].
pub fn render_answer(
    origin: &Origin,
    offer: Option<&Sdp>,
    port: u16,
    formats: &[PayloadFormat],
    direction: Direction,
    ptime_ms: Option<u16>,
) -> String {
    use std::fmt::Write as _;

    let ip = match origin.addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let addr = origin.addr;
    let mut out = String::with_capacity(256);
    // Writing into a String cannot fail; the results are ignored for that reason.
    let _ = write!(out, "v=0\r\no=hakoden {} {} IN {ip} {addr}\r\n", origin.session_id, origin.version);
    let _ = write!(out, "s=hakoden\r\nc=IN {ip} {addr}\r\nt=0 0\r\n");
    let (lines, audio_at) = match offer {
        Some(o) if o.media_lines.len() > 1 => (o.media_lines.as_slice(), o.audio_index),
        _ => (&[][..], None),
    };
    for (i, (kind, proto, fmt)) in lines.iter().enumerate() {
        if Some(i) == audio_at {
            break;
        }
        let _ = write!(out, "m={kind} 0 {proto} {fmt}\r\n");
    }
    if formats.is_empty() {
        let _ = write!(out, "m=audio 0 RTP/AVP 0\r\n");
    } else {
        write_audio(&mut out, port, formats, direction, ptime_ms);
    }
    if let Some(at) = audio_at {
        for (kind, proto, fmt) in lines.iter().skip(at + 1) {
            let _ = write!(out, "m={kind} 0 {proto} {fmt}\r\n");
        }
    }
    out
}

fn write_audio(
    out: &mut String,
    port: u16,
    formats: &[PayloadFormat],
    direction: Direction,
    ptime_ms: Option<u16>,
) {
    use std::fmt::Write as _;
    let _ = write!(out, "m=audio {port} RTP/AVP");
    for f in formats {
        let _ = write!(out, " {}", f.pt);
    }
    out.push_str("\r\n");
    for f in formats {
        let name = f.encoding.name();
        if !name.is_empty() {
            let _ = write!(out, "a=rtpmap:{} {name}/{}\r\n", f.pt, f.clock_rate);
        }
        if let Some(fmtp) = &f.fmtp {
            let _ = write!(out, "a=fmtp:{} {fmtp}\r\n", f.pt);
        }
    }
    if let Some(ms) = ptime_ms {
        let _ = write!(out, "a=ptime:{ms}\r\n");
    }
    let _ = write!(out, "a={}\r\n", direction.as_attr());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    // Real offers, as captured from the phones and tools named.

    const YEALINK_OFFER: &str = "v=0\r\n\
o=- 20056 20056 IN IP4 192.168.1.51\r\n\
s=SDP data\r\n\
c=IN IP4 192.168.1.51\r\n\
t=0 0\r\n\
m=audio 11796 RTP/AVP 0 8 9 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n";

    const POLYCOM_OFFER: &str = "v=0\r\n\
o=- 1700000000 1700000000 IN IP4 10.0.0.23\r\n\
s=Polycom IP Phone\r\n\
c=IN IP4 10.0.0.23\r\n\
t=0 0\r\n\
a=sendrecv\r\n\
m=audio 2222 RTP/AVP 9 102 0 8 18 127\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:102 G7221/16000\r\n\
a=fmtp:102 bitrate=32000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:127 telephone-event/8000\r\n";

    const BARESIP_OFFER: &str = "v=0\r\n\
o=- 1234567890 2072847385 IN IP4 192.168.1.10\r\n\
s=-\r\n\
c=IN IP4 192.168.1.10\r\n\
t=0 0\r\n\
m=audio 10390 RTP/AVP 96 97 9 0 8 101\r\n\
b=AS:96\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:97 L16/48000/2\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:2882410592 cname:a5b7c6d8-1\r\n\
a=rtcp-rsize\r\n";

    /// SIPp's default uac scenario, with `[media_ip]`/`[media_port]` substituted.
    const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    const IPV6_OFFER: &str = "v=0\r\n\
o=- 1 1 IN IP6 2001:db8::10\r\n\
s=-\r\n\
c=IN IP6 2001:db8::10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=rtcp:40011 IN IP6 2001:db8::10\r\n";

    fn parse_str(s: &str) -> Result<Sdp, SdpError> {
        parse(s.as_bytes())
    }

    fn pts(formats: &[PayloadFormat]) -> Vec<u8> {
        formats.iter().map(|f| f.pt).collect()
    }

    #[test]
    fn parses_a_yealink_offer_with_formats_in_m_line_order() {
        let sdp = parse_str(YEALINK_OFFER).unwrap();
        assert_eq!(sdp.media_count, 1);
        let audio = sdp.audio.unwrap();
        assert_eq!(audio.rtp_addr(), Some("192.168.1.51:11796".parse().unwrap()));
        assert_eq!(pts(&audio.formats), [0, 8, 9, 18, 101]);
        assert_eq!(audio.formats[3].encoding, Encoding::Other("G729".into()));
        assert_eq!(audio.formats[3].fmtp.as_deref(), Some("annexb=no"));
        assert_eq!(audio.formats[4].encoding, Encoding::TelephoneEvent);
        assert_eq!(audio.formats[4].fmtp.as_deref(), Some("0-15"));
        assert_eq!(audio.ptime_ms, Some(20));
        assert_eq!(audio.direction, Direction::SendRecv);
        assert_eq!(audio.rtcp_port, None);
        assert_eq!(pts(&supported_formats(&audio.formats)), [0, 8, 101]);
    }

    #[test]
    fn polycom_offer_keeps_session_level_direction_and_drops_wideband() {
        let sdp = parse_str(POLYCOM_OFFER).unwrap();
        let audio = sdp.audio.unwrap();
        assert_eq!(audio.direction, Direction::SendRecv);
        assert_eq!(audio.formats[1].clock_rate, 16000);
        assert_eq!(pts(&supported_formats(&audio.formats)), [0, 8, 127]);
        assert!(has_voice_codec(&audio.formats));
    }

    #[test]
    fn baresip_offer_yields_g711_after_opus() {
        let sdp = parse_str(BARESIP_OFFER).unwrap();
        let audio = sdp.audio.unwrap();
        assert_eq!(audio.formats[0].encoding, Encoding::Other("opus".into()));
        assert_eq!(audio.formats[0].clock_rate, 48000);
        let ours = supported_formats(&audio.formats);
        assert_eq!(pts(&ours), [0, 8, 101]);
        assert_eq!(ours[0], PayloadFormat::pcmu());
    }

    #[test]
    fn sipp_default_offer_is_single_pcmu() {
        let sdp = parse_str(SIPP_OFFER).unwrap();
        assert_eq!(sdp.session_addr, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let audio = sdp.audio.unwrap();
        assert_eq!(audio.formats, [PayloadFormat::pcmu()]);
        assert_eq!(audio.rtp_addr(), Some("127.0.0.1:6000".parse().unwrap()));
    }

    #[test]
    fn ipv6_offer_has_v6_address_and_rtcp_port() {
        let sdp = parse_str(IPV6_OFFER).unwrap();
        let audio = sdp.audio.unwrap();
        let v6: Ipv6Addr = "2001:db8::10".parse().unwrap();
        assert_eq!(audio.addr, Some(IpAddr::V6(v6)));
        assert_eq!(audio.rtp_addr(), Some(SocketAddr::new(IpAddr::V6(v6), 40000)));
        assert_eq!(audio.rtcp_port, Some(40011));
        assert_eq!(pts(&supported_formats(&audio.formats)), [8, 101]);
    }

    #[test]
    fn lf_only_line_endings_parse_like_crlf() {
        let lf = SIPP_OFFER.replace("\r\n", "\n");
        assert_eq!(parse_str(&lf), parse_str(SIPP_OFFER));
    }

    #[test]
    fn static_types_without_rtpmap_are_g711() {
        let sdp = parse_str("v=0\nc=IN IP4 10.0.0.1\nm=audio 5004 RTP/AVP 8 0 99\n").unwrap();
        let audio = sdp.audio.unwrap();
        assert_eq!(audio.formats[0], PayloadFormat::pcma());
        assert_eq!(audio.formats[1], PayloadFormat::pcmu());
        assert_eq!(audio.formats[2].encoding, Encoding::Other(String::new()));
        assert_eq!(audio.formats[2].clock_rate, 0);
    }

    #[test]
    fn sendonly_hold_is_read_from_the_media_level() {
        let body = SIPP_OFFER.to_owned() + "a=sendonly\r\n";
        let audio = parse_str(&body).unwrap().audio.unwrap();
        assert_eq!(audio.direction, Direction::SendOnly);
        assert_eq!(audio.direction.reversed(), Direction::RecvOnly);
        assert!(audio.rtp_addr().is_some());
    }

    #[test]
    fn media_direction_overrides_session_direction() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 5004 RTP/AVP 0\r\na=recvonly\r\n";
        assert_eq!(parse_str(body).unwrap().audio.unwrap().direction, Direction::RecvOnly);
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(parse_str(body).unwrap().audio.unwrap().direction, Direction::Inactive);
    }

    #[test]
    fn rfc2543_hold_with_zero_address_has_no_rtp_addr() {
        let body = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let audio = parse_str(&body).unwrap().audio.unwrap();
        assert_eq!(audio.addr, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(audio.rtp_addr(), None);
    }

    #[test]
    fn media_level_connection_overrides_session_level() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n";
        let sdp = parse_str(body).unwrap();
        assert_eq!(sdp.session_addr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(sdp.audio.unwrap().addr, Some("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn rejected_stream_has_port_zero_and_no_rtp_addr() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n";
        let audio = parse_str(body).unwrap().audio.unwrap();
        assert_eq!(audio.port, 0);
        assert_eq!(audio.rtp_addr(), None);
    }

    #[test]
    fn video_and_srtp_sections_are_counted_but_not_chosen() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\n\
m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n\
m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 4004 RTP/AVP 0 8\r\na=ptime:30\r\n\
m=image 4006 udptl t38\r\n";
        let sdp = parse_str(body).unwrap();
        assert_eq!(sdp.media_count, 4);
        let audio = sdp.audio.unwrap();
        assert_eq!(audio.port, 4004);
        assert_eq!(audio.ptime_ms, Some(30));
    }

    #[test]
    fn offer_without_g711_has_no_voice_codec() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n";
        let audio = parse_str(body).unwrap().audio.unwrap();
        assert!(!has_voice_codec(&audio.formats));
        assert_eq!(pts(&supported_formats(&audio.formats)), [101]);
    }

    #[test]
    fn g711_at_another_clock_rate_is_not_supported() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 PCMU/16000\r\n";
        let audio = parse_str(body).unwrap().audio.unwrap();
        assert!(!has_voice_codec(&audio.formats));
        assert!(supported_formats(&audio.formats).is_empty());
    }

    #[test]
    fn rejects_bodies_that_are_not_sdp() {
        assert_eq!(parse(b""), Err(SdpError::Empty));
        assert_eq!(parse(b"\r\n\r\n"), Err(SdpError::Empty));
        assert_eq!(parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n"), Err(SdpError::MissingVersion));
        assert_eq!(parse(b"v=1\r\n"), Err(SdpError::UnsupportedVersion));
        assert_eq!(parse(b"hello world"), Err(SdpError::MalformedLine { line: 1 }));
        assert_eq!(parse(b"v=0\r\nxx=1\r\n"), Err(SdpError::MalformedLine { line: 2 }));
        assert_eq!(parse(b"v=0\r\ns=\xff\xfe\r\n"), Err(SdpError::MalformedLine { line: 2 }));
    }

    #[test]
    fn rejects_bad_connection_lines() {
        for c in ["IN IP4", "IN IP4 pbx.example.com", "IN IP6 10.0.0.1", "IN IP4 ::1", "ATM NSAP x"] {
            let body = format!("v=0\r\nc={c}\r\n");
            assert_eq!(parse_str(&body), Err(SdpError::BadConnection { line: 2 }), "{c}");
        }
        let multicast = parse_str("v=0\r\nc=IN IP4 224.2.1.1/127\r\n").unwrap();
        assert_eq!(multicast.session_addr, Some("224.2.1.1".parse().unwrap()));
    }

    #[test]
    fn rejects_bad_media_lines() {
        let cases: [(&str, SdpError); 5] = [
            ("audio", SdpError::BadMedia { line: 2 }),
            ("audio 70000 RTP/AVP 0", SdpError::BadMedia { line: 2 }),
            ("audio 4000 RTP/AVP", SdpError::BadMedia { line: 2 }),
            ("audio 4000 RTP/AVP 128", SdpError::BadPayloadType { line: 2 }),
            ("audio 4000 RTP/AVP pcmu", SdpError::BadPayloadType { line: 2 }),
        ];
        for (m, err) in cases {
            assert_eq!(parse_str(&format!("v=0\r\nm={m}\r\n")), Err(err), "{m}");
        }
    }

    #[test]
    fn caps_body_size_and_format_count() {
        let big = vec![b'a'; MAX_SDP_BYTES + 1];
        assert_eq!(parse(&big), Err(SdpError::TooLarge { len: MAX_SDP_BYTES + 1 }));
        let many: Vec<String> = (0..=MAX_FORMATS_PER_MEDIA).map(|i| i.to_string()).collect();
        let body = format!("v=0\r\nm=audio 4000 RTP/AVP {}\r\n", many.join(" "));
        assert_eq!(parse_str(&body), Err(SdpError::TooManyFormats { line: 2 }));
    }

    #[test]
    fn render_writes_our_answer_with_crlf() {
        let origin = Origin { session_id: 42, version: 7, addr: "192.168.1.2".parse().unwrap() };
        let formats = [PayloadFormat::pcmu(), PayloadFormat::pcma(), PayloadFormat::telephone_event(101)];
        let sdp = render(&origin, 10000, &formats, Direction::SendRecv, Some(20));
        assert_eq!(
            sdp,
            "v=0\r\n\
o=hakoden 42 7 IN IP4 192.168.1.2\r\n\
s=hakoden\r\n\
c=IN IP4 192.168.1.2\r\n\
t=0 0\r\n\
m=audio 10000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n"
        );
    }

    #[test]
    fn rendered_ipv6_sdp_parses_back_to_the_same_stream() {
        let origin = Origin { session_id: 1, version: 2, addr: "2001:db8::1".parse().unwrap() };
        let formats = [PayloadFormat::pcma(), PayloadFormat::telephone_event(96)];
        let text = render(&origin, 20000, &formats, Direction::RecvOnly, None);
        assert!(text.contains("o=hakoden 1 2 IN IP6 2001:db8::1\r\n"));
        let audio = parse_str(&text).unwrap().audio.unwrap();
        assert_eq!(audio.formats, formats);
        assert_eq!(audio.direction, Direction::RecvOnly);
        assert_eq!(audio.rtp_addr(), Some("[2001:db8::1]:20000".parse().unwrap()));
    }

    #[test]
    fn render_without_formats_rejects_the_stream() {
        let origin = Origin { session_id: 1, version: 1, addr: "10.0.0.1".parse().unwrap() };
        let text = render(&origin, 20000, &[], Direction::SendRecv, None);
        let audio = parse_str(&text).unwrap().audio.unwrap();
        assert_eq!(audio.port, 0);
    }

    /// xorshift64*: a tiny seeded generator so the fuzz loop is reproducible without a crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn parse_never_panics_on_random_or_mutated_bodies() {
        const ITERATIONS: usize = 60_000;
        let seeds = [YEALINK_OFFER, POLYCOM_OFFER, BARESIP_OFFER, SIPP_OFFER, IPV6_OFFER];
        // Bytes that matter to the grammar, so mutations hit the interesting paths.
        let alphabet = b"vocmta=:/ \r\n0123456789.IPN46RTP/AVPrtpmapfmtpsendonly-\xff\x00";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut ok = 0usize;
        for i in 0..ITERATIONS {
            let mut body: Vec<u8> = if i % 8 == 0 {
                (0..rng.below(300)).map(|_| rng.next() as u8).collect()
            } else {
                seeds[rng.below(seeds.len())].as_bytes().to_vec()
            };
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(body.len() + 1);
                match rng.below(4) {
                    0 if at < body.len() => {
                        body.remove(at);
                    }
                    1 if at < body.len() => body[at] = alphabet[rng.below(alphabet.len())],
                    2 => body.insert(at, alphabet[rng.below(alphabet.len())]),
                    _ => {
                        let end = (at + rng.below(40)).min(body.len());
                        let chunk = body[at..end].to_vec();
                        let to = rng.below(body.len() + 1);
                        body.splice(to..to, chunk);
                    }
                }
            }
            if let Ok(sdp) = parse(&body) {
                ok += 1;
                if let Some(audio) = sdp.audio {
                    let _ = audio.rtp_addr();
                    assert!(audio.formats.len() <= MAX_FORMATS_PER_MEDIA);
                    let _ = supported_formats(&audio.formats);
                }
            }
        }
        // The mutations must leave a fair share parseable, or the loop tests only the error path.
        assert!(ok > ITERATIONS / 10, "only {ok} bodies parsed");
    }
}
