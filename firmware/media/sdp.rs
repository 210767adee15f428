//! SDP (interim minimal version on main; the media branch replaces it with the full one).
use std::net::{IpAddr, SocketAddr};

/// A parsed session description.
#[derive(Debug, Clone, PartialEq)]
pub struct Sdp {
    /// Session-level c= address.
    pub session_addr: Option<IpAddr>,
    /// The first audio stream.
    pub audio: Option<AudioStream>,
    /// Number of m= lines.
    pub media_count: usize,
}

/// The audio m= section.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    /// Effective connection address.
    pub addr: Option<IpAddr>,
    /// RTP port.
    pub port: u16,
    /// Formats in m= order.
    pub formats: Vec<PayloadFormat>,
    /// Direction.
    pub direction: Direction,
    /// a=ptime.
    pub ptime_ms: Option<u16>,
    /// a=rtcp.
    pub rtcp_port: Option<u16>,
}

impl AudioStream {
    /// Where to send RTP, if known.
    pub fn rtp_addr(&self) -> Option<SocketAddr> {
        let a = self.addr?;
        if a.is_unspecified() || self.port == 0 {
            return None;
        }
        Some(SocketAddr::new(a, self.port))
    }
}

/// One payload format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// Payload type.
    pub pt: u8,
    /// Encoding.
    pub encoding: Encoding,
    /// Clock rate.
    pub clock_rate: u32,
    /// a=fmtp.
    pub fmtp: Option<String>,
}

/// Encodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// RFC 4733.
    TelephoneEvent,
    /// Anything else.
    Other(String),
}

/// Media direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// sendrecv
    SendRecv,
    /// sendonly
    SendOnly,
    /// recvonly
    RecvOnly,
    /// inactive
    Inactive,
}

impl Direction {
    /// sendonly <-> recvonly.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
    /// The attribute name.
    pub fn as_attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// Why SDP was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// Not text.
    NotUtf8,
    /// Malformed.
    Malformed,
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for SdpError {}

/// Parses SDP.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
    let mut sdp = Sdp { session_addr: None, audio: None, media_count: 0 };
    let mut in_audio = false;
    let mut session_dir = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            sdp.media_count += 1;
            in_audio = false;
            let mut it = m.split_whitespace();
            if it.next() == Some("audio") && sdp.audio.is_none() {
                let port =
                    it.next().and_then(|p| p.split('/').next()?.parse().ok()).ok_or(SdpError::Malformed)?;
                let _proto = it.next();
                let formats = it
                    .filter_map(|p| p.parse::<u8>().ok())
                    .map(|pt| PayloadFormat {
                        pt,
                        encoding: match pt {
                            0 => Encoding::Pcmu,
                            8 => Encoding::Pcma,
                            _ => Encoding::Other(String::new()),
                        },
                        clock_rate: 8000,
                        fmtp: None,
                    })
                    .collect();
                sdp.audio = Some(AudioStream {
                    addr: sdp.session_addr,
                    port,
                    formats,
                    direction: session_dir.unwrap_or(Direction::SendRecv),
                    ptime_ms: None,
                    rtcp_port: None,
                });
                in_audio = true;
            }
        } else if let Some(c) = line.strip_prefix("c=") {
            let addr = c.split_whitespace().nth(2).and_then(|a| a.split('/').next()?.parse().ok());
            match (&mut sdp.audio, in_audio) {
                (Some(a), true) => a.addr = addr,
                _ if sdp.media_count == 0 => sdp.session_addr = addr,
                _ => {}
            }
        } else if let Some(a) = line.strip_prefix("a=") {
            let dir = match a {
                "sendrecv" => Some(Direction::SendRecv),
                "sendonly" => Some(Direction::SendOnly),
                "recvonly" => Some(Direction::RecvOnly),
                "inactive" => Some(Direction::Inactive),
                _ => None,
            };
            if sdp.media_count == 0 {
                session_dir = dir.or(session_dir);
                continue;
            }
            let Some(audio) = sdp.audio.as_mut().filter(|_| in_audio) else {
                continue;
            };
            if let Some(d) = dir {
                audio.direction = d;
            } else if let Some(r) = a.strip_prefix("rtpmap:") {
                let mut it = r.splitn(2, ' ');
                let pt: Option<u8> = it.next().and_then(|p| p.parse().ok());
                let enc = it.next().unwrap_or("");
                let mut e = enc.split('/');
                let name = e.next().unwrap_or("").to_ascii_lowercase();
                let rate: u32 = e.next().and_then(|r| r.parse().ok()).unwrap_or(8000);
                if let Some(f) = audio.formats.iter_mut().find(|f| Some(f.pt) == pt) {
                    f.clock_rate = rate;
                    f.encoding = match name.as_str() {
                        "pcmu" => Encoding::Pcmu,
                        "pcma" => Encoding::Pcma,
                        "telephone-event" => Encoding::TelephoneEvent,
                        other => Encoding::Other(other.to_string()),
                    };
                }
            } else if let Some(r) = a.strip_prefix("fmtp:") {
                let mut it = r.splitn(2, ' ');
                let pt: Option<u8> = it.next().and_then(|p| p.parse().ok());
                if let Some(f) = audio.formats.iter_mut().find(|f| Some(f.pt) == pt) {
                    f.fmtp = it.next().map(str::to_string);
                }
            } else if let Some(p) = a.strip_prefix("ptime:") {
                audio.ptime_ms = p.trim().parse().ok();
            }
        }
    }
    Ok(sdp)
}

/// PCMU/PCMA/telephone-event of the offer.
pub fn supported_formats(formats: &[PayloadFormat]) -> Vec<PayloadFormat> {
    formats
        .iter()
        .filter(|f| match f.encoding {
            Encoding::Pcmu | Encoding::Pcma => true,
            Encoding::TelephoneEvent => f.clock_rate == 8000,
            Encoding::Other(_) => false,
        })
        .cloned()
        .collect()
}

/// True if PCMU or PCMA is present.
pub fn has_voice_codec(formats: &[PayloadFormat]) -> bool {
    formats.iter().any(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma))
}

/// The o= line's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Session id.
    pub session_id: u64,
    /// Version.
    pub version: u64,
    /// Address.
    pub addr: IpAddr,
}

/// Renders our SDP.
pub fn render(
    origin: &Origin,
    port: u16,
    formats: &[PayloadFormat],
    direction: Direction,
    ptime_ms: Option<u16>,
) -> String {
    use std::fmt::Write as _;
    let ip = if origin.addr.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no=hakoden {} {} IN {ip} {}\r\ns=hakoden\r\nc=IN {ip} {}\r\nt=0 0\r\nm=audio {port} RTP/AVP",
        origin.session_id, origin.version, origin.addr, origin.addr
    );
    for f in formats {
        let _ = write!(s, " {}", f.pt);
    }
    s.push_str("\r\n");
    for f in formats {
        let name = match &f.encoding {
            Encoding::Pcmu => "PCMU",
            Encoding::Pcma => "PCMA",
            Encoding::TelephoneEvent => "telephone-event",
            Encoding::Other(n) => n,
        };
        let _ = write!(s, "a=rtpmap:{} {}/{}\r\n", f.pt, name, f.clock_rate);
        if let Some(fmtp) = &f.fmtp {
            let _ = write!(s, "a=fmtp:{} {}\r\n", f.pt, fmtp);
        }
    }
    if let Some(p) = ptime_ms {
        let _ = write!(s, "a=ptime:{p}\r\n");
    }
    let _ = write!(s, "a={}\r\n", direction.as_attr());
    s
}
