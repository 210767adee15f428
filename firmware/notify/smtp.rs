//! The SMTP client (RFC 5321): a sans-IO state machine, [`SmtpClient`], and its thin tokio
//! driver, [`send_mail`], for plain TCP, STARTTLS (RFC 3207) and implicit TLS (RFC 8314, port
//! 465), with AUTH PLAIN (RFC 4616) or LOGIN.
//!
//! The machine is fed the server's bytes ([`SmtpClient::handle_input`]) and drained with
//! [`SmtpClient::poll_output`] until it returns `None`: `Transmit` bytes go to the server,
//! `StartTls` asks the driver to run the TLS handshake and then call
//! [`SmtpClient::handle_tls_established`], `Delivered` means the server accepted the message
//! (the driver may close after QUIT). One command is outstanding at a time (no PIPELINING): a
//! voicemail mail is one transaction and simplicity beats one round trip.
//!
//! Every error reply becomes [`SmtpError::Rejected`] with the stage, the code and the server's
//! text, so the outbox can show it as it is.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest reply line accepted. RFC 5321 §4.5.3.1.5 says 512 octets; real servers send longer
/// EHLO lines, so four times that, and no more, against a server that never sends CRLF.
pub const MAX_REPLY_LINE: usize = 2048;

/// Most lines in one multi-line reply (EHLO lists a dozen extensions; a flood is an attack).
pub const MAX_REPLY_LINES: usize = 64;

/// Longest message line, without CRLF (RFC 5321 §4.5.3.1.6).
pub const MAX_TEXT_LINE: usize = 998;

/// Most recipients of one mail (a queue's members; RFC 5321 §4.5.3.1.8 requires servers to take
/// 100).
pub const MAX_RECIPIENTS: usize = 100;

/// Time to open the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Time for the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Time to wait for one reply. RFC 5321 §4.5.3.2 suggests 5 minutes; a PBX's outbox retries
/// later anyway, so two minutes keeps a stuck relay from holding a sender for long.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Time to wait for the reply to the end of DATA (RFC 5321 §4.5.3.2.6: 10 minutes; the server
/// may scan the attachment).
pub const DATA_END_TIMEOUT: Duration = Duration::from_secs(600);

/// Time to wait for the reply to QUIT after delivery (its answer changes nothing).
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain TCP (port 25 to a LAN relay); AUTH is refused.
    None,
    /// STARTTLS after EHLO (port 587); refuses to continue without it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Where and how to send mail (proposed `[smtp]` keys, `docs/notify.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Server host name (checked against its certificate) or IP address.
    pub host: String,
    /// Server port (25, 587, 465).
    pub port: u16,
    /// Transport protection.
    pub security: Security,
    /// AUTH user; empty for none.
    pub username: String,
    /// AUTH password.
    pub password: String,
    /// The sender address (envelope and `From`).
    pub from: String,
    /// Trust only the CA certificates in this PEM file instead of the built-in public roots.
    pub ca_file: Option<PathBuf>,
    /// The name given in EHLO (the appliance's host name).
    pub helo_name: String,
}

/// The step of the session an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the connection.
    Connect,
    /// The server's 220 greeting.
    Greeting,
    /// EHLO.
    Ehlo,
    /// STARTTLS and the handshake.
    StartTls,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// DATA.
    Data,
    /// The message and its final dot.
    DataEnd,
    /// QUIT.
    Quit,
}

/// A recipient the server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The address.
    pub address: String,
    /// The reply code.
    pub code: u16,
    /// The server's text.
    pub text: String,
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpError {
    /// The server answered an error.
    Rejected {
        /// When.
        stage: Stage,
        /// The reply code (4xx transient, 5xx permanent).
        code: u16,
        /// The server's text, lines joined by a space.
        text: String,
    },
    /// The server refused every recipient.
    AllRecipientsRejected(Vec<Rejection>),
    /// The server sent something that is not an SMTP reply.
    Protocol(String),
    /// `security = "starttls"` but the server does not offer STARTTLS.
    StartTlsUnavailable,
    /// Credentials are set but the server offers neither AUTH PLAIN nor LOGIN (its list inside).
    NoAuthMechanism(String),
    /// The configuration cannot work (credentials without TLS, a bad address, no recipient).
    Config(String),
    /// A message line is longer than [`MAX_TEXT_LINE`].
    LineTooLong,
    /// The network failed.
    Io(String),
    /// The TLS handshake failed (certificate, protocol).
    Tls(String),
    /// The server did not answer in time.
    Timeout(Stage),
}

impl SmtpError {
    /// True when retrying the same mail cannot help (5xx, configuration, certificate).
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Rejected { code, .. } => *code >= 500,
            SmtpError::AllRecipientsRejected(r) => r.iter().all(|r| r.code >= 500),
            SmtpError::Config(_) | SmtpError::LineTooLong | SmtpError::NoAuthMechanism(_) => true,
            SmtpError::StartTlsUnavailable | SmtpError::Protocol(_) | SmtpError::Tls(_) => false,
            SmtpError::Io(_) | SmtpError::Timeout(_) => false,
        }
    }
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpError::Rejected { stage, code, text } => write!(f, "{stage:?}: server said {code} {text}"),
            SmtpError::AllRecipientsRejected(r) => {
                write!(f, "every recipient refused:")?;
                for r in r {
                    write!(f, " <{}> {} {};", r.address, r.code, r.text)?;
                }
                Ok(())
            }
            SmtpError::Protocol(s) => write!(f, "protocol error: {s}"),
            SmtpError::StartTlsUnavailable => write!(f, "the server does not offer STARTTLS"),
            SmtpError::NoAuthMechanism(m) => write!(f, "no AUTH PLAIN or LOGIN (server offers: {m})"),
            SmtpError::Config(s) => write!(f, "configuration: {s}"),
            SmtpError::LineTooLong => write!(f, "a message line is longer than {MAX_TEXT_LINE} characters"),
            SmtpError::Io(s) => write!(f, "network: {s}"),
            SmtpError::Tls(s) => write!(f, "TLS: {s}"),
            SmtpError::Timeout(stage) => write!(f, "{stage:?}: no answer in time"),
        }
    }
}

impl std::error::Error for SmtpError {}

/// The outcome of a delivered mail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Recipients the server accepted.
    pub accepted: Vec<String>,
    /// Recipients it refused (the mail went to the others).
    pub rejected: Vec<Rejection>,
    /// The server's text for the accepted message (often its queue id).
    pub server_text: String,
}

/// What the machine asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Output {
    /// Send these bytes.
    Transmit(Vec<u8>),
    /// Run the TLS handshake on the connection, then call [`SmtpClient::handle_tls_established`].
    StartTls,
    /// The server took the message; QUIT follows.
    Delivered(Report),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    StartTls,
    TlsHandshake,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass,
    AuthLoginDone,
    MailFrom,
    Rcpt,
    Data,
    DataEnd,
    Quit,
    Closed,
}

#[derive(Debug, Default, Clone)]
struct Caps {
    starttls: bool,
    plain: bool,
    login: bool,
    auth_list: String,
}

/// One mail transaction, sans-IO.
#[derive(Debug)]
pub struct SmtpClient {
    state: State,
    helo: String,
    security: Security,
    tls_active: bool,
    credentials: Option<(String, String)>,
    from: String,
    recipients: Vec<String>,
    next_rcpt: usize,
    report: Report,
    data: Vec<u8>,
    rx: Vec<u8>,
    lines: Vec<String>,
    caps: Caps,
    out: VecDeque<Output>,
}

/// True for an address that can go between `<` and `>` in a command.
fn plain_address(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 254
        && a.contains('@')
        && a.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>'))
}

impl SmtpClient {
    /// A transaction sending `message` (CRLF lines, as [`super::mime::build`] makes them) from
    /// `cfg.from` to `to`. `tls_from_start` is true on implicit TLS (the driver did the handshake
    /// before the greeting).
    pub fn new(cfg: &SmtpConfig, to: &[String], message: &[u8]) -> Result<SmtpClient, SmtpError> {
        if !plain_address(&cfg.from) {
            return Err(SmtpError::Config(format!("bad sender address {:?}", cfg.from)));
        }
        if to.is_empty() || to.len() > MAX_RECIPIENTS {
            return Err(SmtpError::Config(format!(
                "1 to {MAX_RECIPIENTS} recipients needed, got {}",
                to.len()
            )));
        }
        if let Some(bad) = to.iter().find(|a| !plain_address(a)) {
            return Err(SmtpError::Config(format!("bad recipient address {bad:?}")));
        }
        let credentials = (!cfg.username.is_empty()).then(|| (cfg.username.clone(), cfg.password.clone()));
        if credentials.is_some() && cfg.security == Security::None {
            return Err(SmtpError::Config("a password is never sent without TLS: set security".into()));
        }
        let helo: String = cfg.helo_name.chars().filter(|c| c.is_ascii_graphic()).collect();
        Ok(SmtpClient {
            state: State::Greeting,
            helo: if helo.is_empty() { "hakoden".into() } else { helo },
            security: cfg.security,
            tls_active: cfg.security == Security::Tls,
            credentials,
            from: cfg.from.clone(),
            recipients: to.to_vec(),
            next_rcpt: 0,
            report: Report::default(),
            data: data_block(message)?,
            rx: Vec::new(),
            lines: Vec::new(),
            caps: Caps::default(),
            out: VecDeque::new(),
        })
    }

    /// The stage the session is in (for timeouts and error reports).
    pub fn stage(&self) -> Stage {
        match self.state {
            State::Greeting => Stage::Greeting,
            State::Ehlo => Stage::Ehlo,
            State::StartTls | State::TlsHandshake => Stage::StartTls,
            State::AuthPlain | State::AuthLoginUser | State::AuthLoginPass | State::AuthLoginDone => {
                Stage::Auth
            }
            State::MailFrom => Stage::MailFrom,
            State::Rcpt => Stage::RcptTo,
            State::Data => Stage::Data,
            State::DataEnd => Stage::DataEnd,
            State::Quit | State::Closed => Stage::Quit,
        }
    }

    /// How long the driver waits for the next reply.
    pub fn reply_timeout(&self) -> Duration {
        match self.state {
            State::DataEnd => DATA_END_TIMEOUT,
            State::Quit | State::Closed => QUIT_TIMEOUT,
            _ => REPLY_TIMEOUT,
        }
    }

    /// True once the reply to QUIT came (or the session ended).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The next thing to do, `None` when waiting for the server.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The TLS handshake after STARTTLS succeeded: EHLO again (RFC 3207 §4.2: forget what the
    /// server said before).
    pub fn handle_tls_established(&mut self) {
        if self.state == State::TlsHandshake {
            self.tls_active = true;
            self.caps = Caps::default();
            self.send_ehlo();
        }
    }

    /// Bytes from the server.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), SmtpError> {
        if self.state == State::TlsHandshake {
            // RFC 3207 §5 / CVE-2011-0411: plaintext after the 220 to STARTTLS is an injection.
            return Err(SmtpError::Protocol("data after the STARTTLS reply".into()));
        }
        self.rx.extend_from_slice(bytes);
        while let Some(pos) = self.rx.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.rx.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            if line.len() > MAX_REPLY_LINE {
                return Err(SmtpError::Protocol("reply line too long".into()));
            }
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
            let Some(code) = code else {
                return Err(SmtpError::Protocol(format!("not a reply: {:?}", truncate(&line))));
            };
            let more = match line.as_bytes().get(3) {
                Some(b'-') => true,
                None | Some(b' ') => false,
                Some(_) => return Err(SmtpError::Protocol(format!("not a reply: {:?}", truncate(&line)))),
            };
            self.lines.push(line.get(4..).unwrap_or("").to_string());
            if self.lines.len() > MAX_REPLY_LINES {
                return Err(SmtpError::Protocol("reply has too many lines".into()));
            }
            if !more {
                let lines = std::mem::take(&mut self.lines);
                self.handle_reply(code, lines)?;
                if self.state == State::TlsHandshake && !self.rx.is_empty() {
                    return Err(SmtpError::Protocol("data after the STARTTLS reply".into()));
                }
            }
        }
        if self.rx.len() > MAX_REPLY_LINE {
            return Err(SmtpError::Protocol("reply line too long".into()));
        }
        Ok(())
    }

    fn send(&mut self, line: String) {
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        self.out.push_back(Output::Transmit(bytes));
    }

    fn send_ehlo(&mut self) {
        self.send(format!("EHLO {}", self.helo));
        self.state = State::Ehlo;
    }

    fn reject(&self, code: u16, lines: &[String]) -> SmtpError {
        SmtpError::Rejected { stage: self.stage(), code, text: lines.join(" ") }
    }

    fn handle_reply(&mut self, code: u16, lines: Vec<String>) -> Result<(), SmtpError> {
        let ok = (200..400).contains(&code);
        match self.state {
            // RFC 5321 §3.1: the session starts with a 220 greeting; 554 refuses it.
            State::Greeting if code == 220 => self.send_ehlo(),
            // RFC 5321 §4.1.1.1: 250 and the extension keywords, one per line after the first.
            State::Ehlo if code == 250 => {
                self.caps = parse_caps(&lines);
                if self.security == Security::Starttls && !self.tls_active {
                    if !self.caps.starttls {
                        return Err(SmtpError::StartTlsUnavailable);
                    }
                    self.send("STARTTLS".into());
                    self.state = State::StartTls;
                } else {
                    self.auth_or_mail()?;
                }
            }
            // RFC 3207 §4: 220 "ready to start TLS".
            State::StartTls if code == 220 => {
                self.state = State::TlsHandshake;
                self.out.push_back(Output::StartTls);
            }
            // RFC 4954 §4: 235 on success.
            State::AuthPlain | State::AuthLoginDone if code == 235 => self.mail_from(),
            // LOGIN: 334 "Username:", then 334 "Password:".
            State::AuthLoginUser if code == 334 => {
                let user = self.credentials.as_ref().map(|c| c.0.clone()).unwrap_or_default();
                self.send(b64(user.as_bytes()));
                self.state = State::AuthLoginPass;
            }
            State::AuthLoginPass if code == 334 => {
                let pass = self.credentials.as_ref().map(|c| c.1.clone()).unwrap_or_default();
                self.send(b64(pass.as_bytes()));
                self.state = State::AuthLoginDone;
            }
            State::MailFrom if code == 250 => self.next_recipient()?,
            // RFC 5321 §3.3: 250 or 251 accept a recipient; a refusal of one is not fatal.
            State::Rcpt => {
                let addr = self.recipients.get(self.next_rcpt).cloned().unwrap_or_default();
                if code == 250 || code == 251 {
                    self.report.accepted.push(addr);
                } else if code >= 400 {
                    self.report.rejected.push(Rejection { address: addr, code, text: lines.join(" ") });
                } else {
                    return Err(self.reject(code, &lines));
                }
                self.next_rcpt += 1;
                self.next_recipient()?;
            }
            // RFC 5321 §4.1.1.4: 354, then the data ending with CRLF.CRLF.
            State::Data if code == 354 => {
                let data = std::mem::take(&mut self.data);
                self.out.push_back(Output::Transmit(data));
                self.state = State::DataEnd;
            }
            State::DataEnd if code == 250 => {
                let mut report = std::mem::take(&mut self.report);
                report.server_text = lines.join(" ");
                self.out.push_back(Output::Delivered(report));
                self.send("QUIT".into());
                self.state = State::Quit;
            }
            State::Quit => self.state = State::Closed,
            State::TlsHandshake | State::Closed => {
                return Err(SmtpError::Protocol(format!("unexpected reply {code} {}", lines.join(" "))));
            }
            _ if ok => {
                return Err(SmtpError::Protocol(format!("unexpected reply {code} {}", lines.join(" "))))
            }
            _ => return Err(self.reject(code, &lines)),
        }
        Ok(())
    }

    fn auth_or_mail(&mut self) -> Result<(), SmtpError> {
        let Some((user, pass)) = self.credentials.clone() else {
            self.mail_from();
            return Ok(());
        };
        if !self.tls_active {
            return Err(SmtpError::Config("a password is never sent without TLS".into()));
        }
        if self.caps.plain {
            // RFC 4616 §2: authzid NUL authcid NUL passwd.
            let mut token = Vec::with_capacity(user.len() + pass.len() + 2);
            token.push(0);
            token.extend_from_slice(user.as_bytes());
            token.push(0);
            token.extend_from_slice(pass.as_bytes());
            self.send(format!("AUTH PLAIN {}", b64(&token)));
            self.state = State::AuthPlain;
        } else if self.caps.login {
            self.send("AUTH LOGIN".into());
            self.state = State::AuthLoginUser;
        } else {
            return Err(SmtpError::NoAuthMechanism(self.caps.auth_list.clone()));
        }
        Ok(())
    }

    fn mail_from(&mut self) {
        self.send(format!("MAIL FROM:<{}>", self.from));
        self.state = State::MailFrom;
    }

    fn next_recipient(&mut self) -> Result<(), SmtpError> {
        if let Some(addr) = self.recipients.get(self.next_rcpt) {
            self.send(format!("RCPT TO:<{addr}>"));
            self.state = State::Rcpt;
        } else if self.report.accepted.is_empty() {
            return Err(SmtpError::AllRecipientsRejected(std::mem::take(&mut self.report.rejected)));
        } else {
            self.send("DATA".into());
            self.state = State::Data;
        }
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn parse_caps(lines: &[String]) -> Caps {
    let mut caps = Caps::default();
    for line in lines.iter().skip(1) {
        let upper = line.to_ascii_uppercase();
        let mut words = upper.split_whitespace();
        match words.next() {
            Some("STARTTLS") => caps.starttls = true,
            // `AUTH=PLAIN LOGIN` is an old form some servers still send.
            Some(w) if w == "AUTH" || w.starts_with("AUTH=") => {
                let first = w.strip_prefix("AUTH=").filter(|m| !m.is_empty());
                for m in first.into_iter().chain(words) {
                    caps.plain |= m == "PLAIN";
                    caps.login |= m == "LOGIN";
                }
                caps.auth_list = line.get(5..).unwrap_or("").to_string();
            }
            _ => {}
        }
    }
    caps
}

/// The DATA block of a message: lines ended CRLF (bare LF accepted), a leading `.` doubled
/// (RFC 5321 §4.5.2), and the final `.` line.
pub fn data_block(message: &[u8]) -> Result<Vec<u8>, SmtpError> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let body = message.strip_suffix(b"\n").unwrap_or(message);
    if !message.is_empty() {
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > MAX_TEXT_LINE {
                return Err(SmtpError::LineTooLong);
            }
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b".\r\n");
    Ok(out)
}

// The driver.

enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(buf).await,
            Conn::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }
}

async fn tls_wrap(cfg: &SmtpConfig, tcp: TcpStream) -> Result<Conn, SmtpError> {
    let config = super::tls::client_config(cfg.ca_file.as_deref()).map_err(|e| SmtpError::Config(e.0))?;
    let name = super::tls::server_name(&cfg.host).map_err(|e| SmtpError::Config(e.0))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => Err(SmtpError::Timeout(Stage::StartTls)),
        Ok(Err(e)) => Err(SmtpError::Tls(e.to_string())),
        Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
    }
}

/// Sends one message to `to` through the configured server. `Ok` means the server accepted it
/// for at least one recipient (the report lists refused ones).
pub async fn send_mail(cfg: &SmtpConfig, to: &[String], message: &[u8]) -> Result<Report, SmtpError> {
    let mut client = SmtpClient::new(cfg, to, message)?;
    let addr = (cfg.host.as_str(), cfg.port);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => return Err(SmtpError::Timeout(Stage::Connect)),
        Ok(Err(e)) => return Err(SmtpError::Io(format!("connect {}:{}: {e}", cfg.host, cfg.port))),
        Ok(Ok(s)) => s,
    };
    let mut conn = if cfg.security == Security::Tls { tls_wrap(cfg, tcp).await? } else { Conn::Plain(tcp) };
    let mut delivered = None;
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(out) = client.poll_output() {
            match out {
                Output::Transmit(bytes) => {
                    if let Err(e) = conn.write_all(&bytes).await {
                        if delivered.is_some() {
                            break;
                        }
                        return Err(SmtpError::Io(format!("{:?}: {e}", client.stage())));
                    }
                }
                Output::StartTls => {
                    let Conn::Plain(tcp) = conn else {
                        return Err(SmtpError::Protocol("STARTTLS inside TLS".into()));
                    };
                    conn = tls_wrap(cfg, tcp).await?;
                    client.handle_tls_established();
                }
                Output::Delivered(report) => delivered = Some(report),
            }
        }
        if client.is_closed() {
            break;
        }
        let stage = client.stage();
        let read = tokio::time::timeout(client.reply_timeout(), conn.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(0)) => {
                if delivered.is_some() {
                    break;
                }
                return Err(SmtpError::Io(format!("{stage:?}: the server closed the connection")));
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) if delivered.is_none() => return Err(SmtpError::Io(format!("{stage:?}: {e}"))),
            Err(_) if delivered.is_none() => return Err(SmtpError::Timeout(stage)),
            // After delivery the QUIT exchange changes nothing.
            Ok(Err(_)) | Err(_) => break,
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        if let Err(e) = client.handle_input(chunk) {
            if delivered.is_some() {
                break;
            }
            return Err(e);
        }
    }
    delivered.ok_or_else(|| SmtpError::Protocol("session ended before delivery".into()))
}

/// The console's "send test mail": a short text mail to `to` through `cfg`, so a technician sees
/// the server's own error text at once.
#[allow(clippy::disallowed_methods)] // driver: reads the clock for the Date header
pub async fn send_test_mail(cfg: &SmtpConfig, to: &str) -> Result<Report, SmtpError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let message =
        super::mime::build_test(&cfg.from, to, now_ms, crate::apps::timerules::UtcOffset::JST, now_ms);
    send_mail(cfg, &[to.to_string()], &message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(security: Security, user: &str) -> SmtpConfig {
        SmtpConfig {
            host: "mail.example.jp".into(),
            port: 587,
            security,
            username: user.into(),
            password: "pw".into(),
            from: "pbx@example.jp".into(),
            ca_file: None,
            helo_name: "hakoden.local".into(),
        }
    }

    fn sent(c: &mut SmtpClient) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(o) = c.poll_output() {
            match o {
                Output::Transmit(b) => v.push(String::from_utf8(b).unwrap()),
                Output::StartTls => v.push("<starttls>".into()),
                Output::Delivered(r) => v.push(format!("<delivered {}>", r.accepted.len())),
            }
        }
        v
    }

    fn to(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_starttls_session_with_auth_plain_runs_in_order() {
        let mut c =
            SmtpClient::new(&cfg(Security::Starttls, "u"), &to(&["a@x.jp"]), b"Subject: t\r\n\r\nhi\r\n")
                .unwrap();
        c.handle_input(b"220 mx ready\r\n").unwrap();
        assert_eq!(sent(&mut c), ["EHLO hakoden.local\r\n"]);
        c.handle_input(b"250-mx\r\n250-STARTTLS\r\n250 SIZE 1000\r\n").unwrap();
        assert_eq!(sent(&mut c), ["STARTTLS\r\n"]);
        c.handle_input(b"220 go\r\n").unwrap();
        assert_eq!(sent(&mut c), ["<starttls>"]);
        c.handle_tls_established();
        assert_eq!(sent(&mut c), ["EHLO hakoden.local\r\n"]);
        c.handle_input(b"250-mx\r\n250 AUTH LOGIN PLAIN\r\n").unwrap();
        assert_eq!(sent(&mut c), [format!("AUTH PLAIN {}\r\n", b64(b"\0u\0pw"))]);
        c.handle_input(b"235 ok\r\n").unwrap();
        assert_eq!(sent(&mut c), ["MAIL FROM:<pbx@example.jp>\r\n"]);
        c.handle_input(b"250 ok\r\n").unwrap();
        assert_eq!(sent(&mut c), ["RCPT TO:<a@x.jp>\r\n"]);
        c.handle_input(b"250 ok\r\n").unwrap();
        assert_eq!(sent(&mut c), ["DATA\r\n"]);
        c.handle_input(b"354 go\r\n").unwrap();
        assert_eq!(sent(&mut c), ["Subject: t\r\n\r\nhi\r\n.\r\n"]);
        c.handle_input(b"250 queued as X\r\n").unwrap();
        assert_eq!(sent(&mut c), ["<delivered 1>", "QUIT\r\n"]);
        c.handle_input(b"221 bye\r\n").unwrap();
        assert!(c.is_closed());
    }

    #[test]
    fn auth_login_sends_user_then_password() {
        let mut c = SmtpClient::new(&cfg(Security::Tls, "u"), &to(&["a@x.jp"]), b"x\r\n").unwrap();
        c.handle_input(b"220 mx\r\n250-mx\r\n250 AUTH=LOGIN\r\n").unwrap();
        assert_eq!(sent(&mut c), ["EHLO hakoden.local\r\n", "AUTH LOGIN\r\n"]);
        c.handle_input(b"334 VXNlcm5hbWU6\r\n").unwrap();
        assert_eq!(sent(&mut c), [format!("{}\r\n", b64(b"u"))]);
        c.handle_input(b"334 UGFzc3dvcmQ6\r\n").unwrap();
        assert_eq!(sent(&mut c), [format!("{}\r\n", b64(b"pw"))]);
        c.handle_input(b"535 5.7.8 bad credentials\r\n").map(|_| ()).unwrap_err();
    }

    #[test]
    fn a_server_error_carries_its_code_stage_and_text() {
        let mut c = SmtpClient::new(&cfg(Security::Tls, ""), &to(&["a@x.jp"]), b"x\r\n").unwrap();
        c.handle_input(b"220 mx\r\n250 mx\r\n").unwrap();
        let e = c.handle_input(b"451-4.3.0 try\r\n451 later\r\n").unwrap_err();
        assert_eq!(
            e,
            SmtpError::Rejected { stage: Stage::MailFrom, code: 451, text: "4.3.0 try later".into() }
        );
        assert!(!e.is_permanent());
    }

    #[test]
    fn one_refused_recipient_does_not_stop_the_others() {
        let mut c = SmtpClient::new(&cfg(Security::None, ""), &to(&["a@x.jp", "b@x.jp"]), b"x\r\n").unwrap();
        c.handle_input(b"220 mx\r\n250 mx\r\n250 ok\r\n550 no such user\r\n250 ok\r\n354 go\r\n").unwrap();
        c.handle_input(b"250 done\r\n").unwrap();
        let out = std::iter::from_fn(|| c.poll_output()).find_map(|o| match o {
            Output::Delivered(r) => Some(r),
            _ => None,
        });
        let r = out.unwrap();
        assert_eq!(r.accepted, ["b@x.jp"]);
        assert_eq!(r.rejected[0].code, 550);
    }

    #[test]
    fn every_recipient_refused_is_an_error() {
        let mut c = SmtpClient::new(&cfg(Security::None, ""), &to(&["a@x.jp"]), b"x\r\n").unwrap();
        let e = c.handle_input(b"220 mx\r\n250 mx\r\n250 ok\r\n550 no\r\n").unwrap_err();
        assert!(matches!(e, SmtpError::AllRecipientsRejected(ref r) if r.len() == 1));
        assert!(e.is_permanent());
    }

    #[test]
    fn starttls_missing_or_injected_plaintext_is_refused() {
        let mut c = SmtpClient::new(&cfg(Security::Starttls, ""), &to(&["a@x.jp"]), b"x\r\n").unwrap();
        assert_eq!(c.handle_input(b"220 mx\r\n250 mx\r\n"), Err(SmtpError::StartTlsUnavailable));
        let mut c = SmtpClient::new(&cfg(Security::Starttls, ""), &to(&["a@x.jp"]), b"x\r\n").unwrap();
        let e = c.handle_input(b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n250 injected\r\n");
        assert!(matches!(e, Err(SmtpError::Protocol(_))));
    }

    #[test]
    fn passwords_never_go_over_plain_tcp() {
        let e = SmtpClient::new(&cfg(Security::None, "u"), &to(&["a@x.jp"]), b"x").unwrap_err();
        assert!(matches!(e, SmtpError::Config(_)));
    }

    #[test]
    fn garbage_and_floods_from_the_server_are_errors_not_panics() {
        for input in
            [&b"hello\r\n"[..], b"99 x\r\n", b"220x\r\n", &[b'2'; MAX_REPLY_LINE + 10][..], b"\xff\xfe\r\n"]
        {
            let mut c = SmtpClient::new(&cfg(Security::None, ""), &to(&["a@x.jp"]), b"x").unwrap();
            assert!(c.handle_input(input).is_err());
        }
        let mut c = SmtpClient::new(&cfg(Security::None, ""), &to(&["a@x.jp"]), b"x").unwrap();
        let flood = "220-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert!(c.handle_input(flood.as_bytes()).is_err());
    }

    #[test]
    fn random_server_bytes_never_panic_in_any_state() {
        // A cheap stand-in for the fuzz target (`fuzz/fuzz_targets/notify.rs`) that runs in CI.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789 -\r\n2345ABCSTARTTLSAUTHPLAINLOGIN\xff";
        for round in 0..20_000u32 {
            let security = [Security::None, Security::Starttls, Security::Tls][round as usize % 3];
            let user = if security == Security::None { "" } else { "u" };
            let mut c = SmtpClient::new(&cfg(security, user), &to(&["a@x.jp", "b@x.jp"]), b"x\r\n").unwrap();
            let prefix: &[&[u8]] =
                &[b"220 mx\r\n", b"250-mx\r\n250-STARTTLS\r\n250 AUTH LOGIN PLAIN\r\n", b"220 go\r\n"];
            for p in prefix.iter().take(round as usize % 4) {
                while let Some(o) = c.poll_output() {
                    if o == Output::StartTls {
                        c.handle_tls_established();
                    }
                }
                let _ = c.handle_input(p);
            }
            let len = (next() % 64) as usize;
            let input: Vec<u8> =
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let _ = c.handle_input(&input);
            let _ = c.stage();
            while c.poll_output().is_some() {}
        }
    }

    #[test]
    fn header_injection_through_addresses_is_refused() {
        for bad in ["a@x.jp>\r\nRCPT TO:<b@y", "no-at-sign", ""] {
            assert!(SmtpClient::new(&cfg(Security::None, ""), &to(&[bad]), b"x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn data_is_dot_stuffed_and_crlf_terminated() {
        assert_eq!(
            data_block(b".hidden\nline\r\n..two\r\n").unwrap(),
            b"..hidden\r\nline\r\n...two\r\n.\r\n"
        );
        assert_eq!(data_block(b"").unwrap(), b".\r\n");
        assert_eq!(data_block(&[b'a'; MAX_TEXT_LINE + 1]), Err(SmtpError::LineTooLong));
    }
}
