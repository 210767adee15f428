//! Voicemail notifications against real servers on loopback: a tiny SMTP server written here
//! (EHLO, STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, DATA) receives the mail and the decoded
//! attachment is compared with the WAV sent; a tiny HTTP server receives each chat request and
//! checks the service's format. The TLS certificate is made at test time with `rcgen`.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hakoden::apps::timerules::UtcOffset;
use hakoden::apps::voicemail::mailbox::{BoxNumber, Folder, MessageId, MessageMeta};
use hakoden::notify::chat::{self, ChatTarget, Service};
use hakoden::notify::mime::{self, Mail, Notice};
use hakoden::notify::smtp::{self, Security, SmtpConfig, SmtpError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

// ---- fixtures ----

struct Pki {
    _dir: tempfile::TempDir,
    ca_file: std::path::PathBuf,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn pki() -> Pki {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    Pki { _dir: dir, ca_file, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) }
}

/// A G.711 µ-law WAV like the recorder writes: a 58-byte header and 1.5 s of samples.
fn wav() -> Vec<u8> {
    let samples: Vec<u8> = (0..12_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(50 + samples.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&18u32.to_le_bytes());
    w.extend_from_slice(&7u16.to_le_bytes()); // µ-law
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8u16.to_le_bytes());
    w.extend_from_slice(&0u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    w.extend_from_slice(&samples);
    w
}

fn meta() -> MessageMeta {
    MessageMeta {
        id: MessageId(3),
        box_no: BoxNumber::parse("804").unwrap(),
        caller: "0312345678".into(),
        caller_name: "山田".into(),
        received_unix_ms: 1_662_012_275_000,
        duration_ms: 11_000,
        folder: Folder::New,
        file: "vmail_0312345678_804_20220901150435.wav".into(),
    }
}

// ---- the SMTP server ----

#[derive(Debug, Default, Clone)]
struct Received {
    tls: bool,
    auth: Option<(String, String)>,
    mail_from: String,
    rcpt: Vec<String>,
    data: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    StartTls,
    Implicit,
}

enum Flow {
    StartTls,
    Done,
}

struct Lines<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Lines<S> {
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=p).collect();
                return Some(String::from_utf8_lossy(&l).trim_end().to_string());
            }
            let mut b = [0u8; 8192];
            let n = self.s.read(&mut b).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    async fn data(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(p) = self.buf.windows(5).position(|w| w == b"\r\n.\r\n") {
                let mut d: Vec<u8> = self.buf.drain(..p + 5).collect();
                d.truncate(p + 2);
                // Undo dot-stuffing.
                let text = String::from_utf8(d).ok()?;
                let undone: Vec<&str> =
                    text.split("\r\n").map(|l| l.strip_prefix('.').unwrap_or(l)).collect();
                return Some(undone.join("\r\n").into_bytes());
            }
            let mut b = [0u8; 8192];
            let n = self.s.read(&mut b).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    async fn send(&mut self, s: &str) {
        self.s.write_all(s.as_bytes()).await.unwrap();
        self.s.flush().await.unwrap();
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    tls: bool,
    offer_starttls: bool,
    greet: bool,
    auth: &'static str,
    fail_mail: bool,
    r: &mut Received,
) -> (Flow, S) {
    let mut c = Lines { s, buf: Vec::new() };
    r.tls = tls;
    if greet {
        c.send("220 test ESMTP\r\n").await;
    }
    while let Some(line) = c.line().await {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let mut reply = String::from("250-test\r\n");
            if offer_starttls {
                reply.push_str("250-STARTTLS\r\n");
            }
            if tls {
                reply.push_str(&format!("250-AUTH {auth}\r\n"));
            }
            reply.push_str("250 SIZE 10000000\r\n");
            c.send(&reply).await;
        } else if upper == "STARTTLS" {
            c.send("220 go ahead\r\n").await;
            return (Flow::StartTls, c.s);
        } else if let Some(tok) = line.strip_prefix("AUTH PLAIN ") {
            let raw = base64::engine::general_purpose::STANDARD.decode(tok).unwrap();
            let parts: Vec<String> =
                raw.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).to_string()).collect();
            r.auth = Some((parts[1].clone(), parts[2].clone()));
            if parts[2] == "secret" {
                c.send("235 2.7.0 ok\r\n").await;
            } else {
                c.send("535 5.7.8 Authentication credentials invalid\r\n").await;
            }
        } else if upper == "AUTH LOGIN" {
            c.send("334 VXNlcm5hbWU6\r\n").await;
            let u = c.line().await.unwrap();
            c.send("334 UGFzc3dvcmQ6\r\n").await;
            let p = c.line().await.unwrap();
            let d = |s: &str| {
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
            };
            r.auth = Some((d(&u), d(&p)));
            c.send("235 ok\r\n").await;
        } else if fail_mail && line.starts_with("MAIL FROM:") {
            c.send("451 4.3.0 mailbox temporarily unavailable\r\n").await;
        } else if let Some(a) = line.strip_prefix("MAIL FROM:") {
            r.mail_from = a.trim_matches(['<', '>']).to_string();
            c.send("250 ok\r\n").await;
        } else if let Some(a) = line.strip_prefix("RCPT TO:") {
            let a = a.trim_matches(['<', '>']).to_string();
            if a.starts_with("nobody@") {
                c.send("550 5.1.1 no such user\r\n").await;
            } else {
                r.rcpt.push(a);
                c.send("250 ok\r\n").await;
            }
        } else if upper == "DATA" {
            c.send("354 end with .\r\n").await;
            r.data = c.data().await.unwrap();
            c.send("250 2.0.0 queued as 42\r\n").await;
        } else if upper == "QUIT" {
            c.send("221 bye\r\n").await;
            break;
        } else {
            c.send("500 what\r\n").await;
        }
    }
    (Flow::Done, c.s)
}

/// Starts a one-connection SMTP server; returns its port and the mail it receives.
async fn smtp_server(
    mode: Mode,
    auth: &'static str,
    acceptor: tokio_rustls::TlsAcceptor,
) -> (u16, tokio::task::JoinHandle<Received>) {
    smtp_server_failing(mode, auth, acceptor, false).await
}

/// As [`smtp_server`]; `fail_mail` answers MAIL FROM with a transient 451.
async fn smtp_server_failing(
    mode: Mode,
    auth: &'static str,
    acceptor: tokio_rustls::TlsAcceptor,
    fail_mail: bool,
) -> (u16, tokio::task::JoinHandle<Received>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let mut r = Received::default();
        match mode {
            Mode::Plain => {
                session(tcp, false, false, true, auth, fail_mail, &mut r).await;
            }
            Mode::Implicit => {
                let tls = acceptor.accept(tcp).await.unwrap();
                session(tls, true, false, true, auth, fail_mail, &mut r).await;
            }
            Mode::StartTls => {
                let (flow, tcp) = session(tcp, false, true, true, auth, fail_mail, &mut r).await;
                assert!(matches!(flow, Flow::StartTls), "client did not ask for STARTTLS");
                let Ok(tls) = acceptor.accept(tcp).await else { return r };
                session(tls, true, false, false, auth, fail_mail, &mut r).await;
            }
        }
        r
    });
    (port, h)
}

fn smtp_cfg(
    port: u16,
    security: Security,
    user: &str,
    password: &str,
    ca: Option<&std::path::Path>,
) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security,
        username: user.into(),
        password: password.into(),
        from: "pbx@hakoden.test".into(),
        ca_file: ca.map(|p| p.to_path_buf()),
        helo_name: "hakoden.test".into(),
    }
}

fn voicemail_mail(to: &[String], audio: &[u8]) -> Vec<u8> {
    let notice = Notice::of(&meta(), "留守電", UtcOffset::JST);
    mime::build(&Mail { from: "pbx@hakoden.test", to, notice: &notice, wav: Some(audio), unique: 9 })
}

fn check_attachment(data: &[u8], audio: &[u8]) {
    let (headers, parts) = mime::parse(data).expect("a MIME message");
    let subject = &headers.iter().find(|(h, _)| h == "Subject").unwrap().1;
    assert!(mime::decode_words(subject).contains("0312345678"));
    let text = String::from_utf8(parts[0].body.clone()).unwrap();
    assert!(text.contains("To: \"804\" - \"留守電\""), "{text}");
    assert!(text.contains("Received: Thursday, 01 September 2022 15:04:35"));
    assert!(text.contains("Duration: 00:00:11"));
    assert_eq!(parts[1].file_name.as_deref(), Some("vmail_0312345678_804_20220901150435.wav"));
    assert!(parts[1].body == audio, "the decoded attachment is not the recorded audio");
}

// ---- SMTP tests ----

#[tokio::test]
async fn a_voicemail_mail_over_starttls_with_auth_plain_arrives_with_the_recorded_audio() {
    let p = pki();
    let (port, server) = smtp_server(Mode::StartTls, "PLAIN LOGIN", p.acceptor.clone()).await;
    let to = vec![
        "owner@hakoden.test".to_string(),
        "nobody@hakoden.test".to_string(),
        "member@hakoden.test".to_string(),
    ];
    let audio = wav();
    let cfg = smtp_cfg(port, Security::Starttls, "pbx", "secret", Some(&p.ca_file));
    let report = smtp::send_mail(&cfg, &to, &voicemail_mail(&to, &audio)).await.unwrap();
    assert_eq!(report.accepted, ["owner@hakoden.test", "member@hakoden.test"]);
    assert_eq!(report.rejected[0].text, "5.1.1 no such user");
    assert!(report.server_text.contains("queued as 42"));
    let r = server.await.unwrap();
    assert!(r.tls);
    assert_eq!(r.auth, Some(("pbx".into(), "secret".into())));
    assert_eq!(r.mail_from, "pbx@hakoden.test");
    check_attachment(&r.data, &audio);
}

#[tokio::test]
async fn a_voicemail_mail_over_implicit_tls_with_auth_login_arrives() {
    let p = pki();
    let (port, server) = smtp_server(Mode::Implicit, "LOGIN", p.acceptor.clone()).await;
    let to = vec!["owner@hakoden.test".to_string()];
    let audio = wav();
    let cfg = smtp_cfg(port, Security::Tls, "pbx", "pw-login", Some(&p.ca_file));
    smtp::send_mail(&cfg, &to, &voicemail_mail(&to, &audio)).await.unwrap();
    let r = server.await.unwrap();
    assert_eq!(r.auth, Some(("pbx".into(), "pw-login".into())));
    check_attachment(&r.data, &audio);
}

#[tokio::test]
async fn a_plain_relay_on_the_lan_gets_the_mail_and_dot_lines_survive() {
    let p = pki();
    let (port, server) = smtp_server(Mode::Plain, "PLAIN", p.acceptor).await;
    let to = vec!["owner@hakoden.test".to_string()];
    let message = b"Subject: dots\r\n\r\n.\r\n..two\r\nend\r\n".to_vec();
    smtp::send_mail(&smtp_cfg(port, Security::None, "", "", None), &to, &message).await.unwrap();
    let r = server.await.unwrap();
    assert!(!r.tls);
    assert_eq!(r.data, message);
}

#[tokio::test]
async fn a_wrong_password_reports_the_servers_own_text() {
    let p = pki();
    let (port, _server) = smtp_server(Mode::StartTls, "PLAIN", p.acceptor.clone()).await;
    let to = vec!["owner@hakoden.test".to_string()];
    let cfg = smtp_cfg(port, Security::Starttls, "pbx", "wrong", Some(&p.ca_file));
    let e = smtp::send_mail(&cfg, &to, b"x\r\n").await.unwrap_err();
    assert_eq!(
        e,
        SmtpError::Rejected {
            stage: smtp::Stage::Auth,
            code: 535,
            text: "5.7.8 Authentication credentials invalid".into()
        }
    );
    assert!(e.is_permanent());
    assert!(e.to_string().contains("535 5.7.8 Authentication credentials invalid"));
}

#[tokio::test]
async fn a_certificate_outside_the_trusted_roots_is_refused() {
    let p = pki();
    let (port, _server) = smtp_server(Mode::Implicit, "PLAIN", p.acceptor.clone()).await;
    let cfg = smtp_cfg(port, Security::Tls, "pbx", "secret", None);
    let e = smtp::send_mail(&cfg, &["owner@hakoden.test".to_string()], b"x\r\n").await.unwrap_err();
    assert!(matches!(e, SmtpError::Tls(_)), "{e:?}");
}

#[tokio::test]
async fn send_test_mail_reaches_the_server() {
    let p = pki();
    let (port, server) = smtp_server(Mode::StartTls, "PLAIN", p.acceptor.clone()).await;
    let cfg = smtp_cfg(port, Security::Starttls, "pbx", "secret", Some(&p.ca_file));
    smtp::send_test_mail(&cfg, "tech@hakoden.test").await.unwrap();
    let r = server.await.unwrap();
    let (headers, parts) = mime::parse(&r.data).unwrap();
    assert!(
        mime::decode_words(&headers.iter().find(|(h, _)| h == "Subject").unwrap().1).contains("test mail")
    );
    assert!(String::from_utf8(parts[0].body.clone()).unwrap().contains("test mail from Hakoden"));
}

#[tokio::test]
async fn a_closed_port_is_a_transient_network_error() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let e = smtp::send_mail(&smtp_cfg(port, Security::None, "", "", None), &["a@b.test".to_string()], b"x")
        .await
        .unwrap_err();
    assert!(matches!(e, SmtpError::Io(_)));
    assert!(!e.is_permanent());
}

// ---- the HTTP server ----

#[derive(Debug, Clone)]
struct HttpReq {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpReq {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers.iter().find(|(h, _)| h.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// (name, filename, data) of each multipart field.
    fn multipart(&self) -> Vec<(String, Option<String>, Vec<u8>)> {
        let ct = self.header("content-type").unwrap();
        let boundary = ct.split("boundary=").nth(1).unwrap();
        let delim = format!("--{boundary}").into_bytes();
        let mut out = Vec::new();
        let mut rest = &self.body[..];
        while let Some(start) = find(rest, &delim) {
            rest = &rest[start + delim.len()..];
            if rest.starts_with(b"--") {
                break;
            }
            let head_end = find(rest, b"\r\n\r\n").unwrap();
            let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
            let body_start = head_end + 4;
            let next = find(&rest[body_start..], &delim).unwrap();
            let data = rest[body_start..body_start + next - 2].to_vec();
            let name = head.split("name=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
            let file = head.split("filename=\"").nth(1).map(|f| f.split('"').next().unwrap().to_string());
            out.push((name, file, data));
            rest = &rest[body_start + next..];
        }
        out
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> HttpReq {
    let mut buf = Vec::new();
    let mut b = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&b[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap();
    assert!(request_line.starts_with("POST ") && request_line.ends_with(" HTTP/1.1"), "{request_line}");
    let path = request_line.split(' ').nth(1).unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| l.split_once(':').unwrap())
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize =
        headers.iter().find(|(h, _)| h.eq_ignore_ascii_case("content-length")).unwrap().1.parse().unwrap();
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&b[..n]);
    }
    HttpReq { path, headers, body }
}

/// A server answering like each service; every request is kept.
async fn http_server() -> (String, Arc<Mutex<Vec<HttpReq>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (base2, seen2) = (base.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let req = read_request(&mut s).await;
            let (status, body) = match req.path.as_str() {
                "/slack/files.getUploadURLExternal" => {
                    (200, format!(r#"{{"ok":true,"upload_url":"{base2}/upload/slack","file_id":"F123"}}"#))
                }
                p if p.starts_with("/slack/") => (200, r#"{"ok":true}"#.to_string()),
                "/lw/bots/2000001/attachments" => {
                    (200, format!(r#"{{"uploadUrl":"{base2}/upload/lw","fileId":"FID-9"}}"#))
                }
                "/lw-token" => (
                    200,
                    r#"{"access_token":"fetched-token","token_type":"Bearer","expires_in":"86400"}"#
                        .to_string(),
                ),
                "/teams-refuses" => (400, "Bad payload".to_string()),
                _ => (200, "ok".to_string()),
            };
            seen2.lock().unwrap().push(req);
            // Chunked, as real APIs answer.
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            let _ = s.shutdown().await;
        }
    });
    (base, seen)
}

fn target(service: Service, url: String) -> ChatTarget {
    ChatTarget {
        name: format!("{service:?}"),
        service,
        url,
        token: String::new(),
        channel: String::new(),
        bot_id: String::new(),
        line_works_account: None,
        send_audio: false,
        ca_file: None,
    }
}

fn notice_text() -> String {
    Notice::of(&meta(), "留守電", UtcOffset::JST).text()
}

const FILE: &str = "vmail_0312345678_804_20220901150435.wav";

// ---- chat tests ----

#[tokio::test]
async fn slack_google_chat_and_teams_webhooks_receive_their_formats() {
    let (base, seen) = http_server().await;
    let text = notice_text();
    let audio = wav();
    for (service, path) in [
        (Service::Slack, "/hook/slack"),
        (Service::GoogleChat, "/v1/spaces/AAA/messages?key=k&token=t"),
        (Service::Teams, "/hook/teams"),
    ] {
        let mut t = target(service, format!("{base}{path}"));
        t.send_audio = true; // webhooks take no files: the text alone goes
        chat::send(&t, &text, Some((FILE, &audio))).await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].path, "/hook/slack");
    assert_eq!(seen[0].json()["text"], text.as_str());
    assert_eq!(seen[1].path, "/v1/spaces/AAA/messages?key=k&token=t");
    assert!(seen[1].header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(seen[1].json()["text"], text.as_str());
    let teams = seen[2].json();
    assert_eq!(teams["type"], "message");
    assert_eq!(teams["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(teams["attachments"][0]["content"]["body"][0]["text"], text.as_str());
}

#[tokio::test]
async fn slack_with_a_bot_token_uploads_the_audio_in_three_steps() {
    let (base, seen) = http_server().await;
    let audio = wav();
    let mut t = target(Service::Slack, format!("{base}/slack"));
    t.token = "xoxb-1".into();
    t.channel = "C0NF841BK".into();
    t.send_audio = true;
    chat::send(&t, &notice_text(), Some((FILE, &audio))).await.unwrap();
    chat::send(&ChatTarget { send_audio: false, ..t.clone() }, "text only", None).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/slack/files.getUploadURLExternal",
            "/upload/slack",
            "/slack/files.completeUploadExternal",
            "/slack/chat.postMessage"
        ]
    );
    assert_eq!(seen[0].header("authorization"), Some("Bearer xoxb-1"));
    assert_eq!(
        String::from_utf8(seen[0].body.clone()).unwrap(),
        format!("filename={FILE}&length={}", audio.len())
    );
    let parts = seen[1].multipart();
    assert_eq!(parts[0].1.as_deref(), Some(FILE));
    assert!(parts[0].2 == audio);
    let done = seen[2].json();
    assert_eq!(done["files"][0]["id"], "F123");
    assert_eq!(done["channel_id"], "C0NF841BK");
    assert_eq!(done["initial_comment"], notice_text().as_str());
    assert_eq!(seen[3].json()["channel"], "C0NF841BK");
    assert_eq!(seen[3].json()["text"], "text only");
}

#[tokio::test]
async fn chatwork_gets_a_form_message_or_the_file_with_its_message() {
    let (base, seen) = http_server().await;
    let audio = wav();
    let mut t = target(Service::Chatwork, format!("{base}/v2"));
    t.token = "cw-token".into();
    t.channel = "12345".into();
    chat::send(&t, "新着 voicemail", None).await.unwrap();
    t.send_audio = true;
    chat::send(&t, &notice_text(), Some((FILE, &audio))).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/v2/rooms/12345/messages");
    assert_eq!(seen[0].header("x-chatworktoken"), Some("cw-token"));
    assert_eq!(seen[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(seen[0].body, b"body=%E6%96%B0%E7%9D%80%20voicemail");
    assert_eq!(seen[1].path, "/v2/rooms/12345/files");
    let parts = seen[1].multipart();
    assert_eq!(parts[0].0, "file");
    assert_eq!(parts[0].1.as_deref(), Some(FILE));
    assert!(parts[0].2 == audio);
    assert_eq!(parts[1].0, "message");
    assert_eq!(String::from_utf8(parts[1].2.clone()).unwrap(), notice_text());
}

#[tokio::test]
async fn line_works_gets_the_text_then_the_audio_as_a_file_message() {
    let (base, seen) = http_server().await;
    let audio = wav();
    let mut t = target(Service::LineWorks, format!("{base}/lw"));
    t.token = "access-token".into();
    t.bot_id = "2000001".into();
    t.channel = "12345a12-b12c".into();
    t.send_audio = true;
    chat::send(&t, &notice_text(), Some((FILE, &audio))).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/lw/bots/2000001/channels/12345a12-b12c/messages",
            "/lw/bots/2000001/attachments",
            "/upload/lw",
            "/lw/bots/2000001/channels/12345a12-b12c/messages"
        ]
    );
    for r in &seen {
        assert_eq!(r.header("authorization"), Some("Bearer access-token"));
    }
    assert_eq!(seen[0].json()["content"]["type"], "text");
    assert_eq!(seen[0].json()["content"]["text"], notice_text().as_str());
    assert_eq!(seen[1].json()["fileName"], FILE);
    let parts = seen[2].multipart();
    assert_eq!(parts[0].0, "Filedata");
    assert!(parts[0].2 == audio);
    assert_eq!(seen[3].json()["content"], serde_json::json!({ "type": "file", "fileId": "FID-9" }));
}

#[tokio::test]
async fn a_refusing_service_reports_its_status_and_text() {
    let (base, _seen) = http_server().await;
    let t = target(Service::Teams, format!("{base}/teams-refuses"));
    let e = chat::send(&t, "x", None).await.unwrap_err();
    assert_eq!(e, chat::ChatError::Refused { status: 400, text: "Bad payload".into() });
    assert!(e.is_permanent());
}

#[tokio::test]
async fn line_works_fetches_an_access_token_with_its_service_account_first() {
    let (base, seen) = http_server().await;
    let mut t = target(Service::LineWorks, format!("{base}/lw"));
    t.bot_id = "2000001".into();
    t.channel = "ch".into();
    t.line_works_account = Some(chat::LineWorksAccount {
        client_id: "cid".into(),
        client_secret: "csecret".into(),
        service_account: "sa.serviceaccount@example".into(),
        private_key_file: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/notify/lineworks-test-key.pem")
            .into(),
        token_url: format!("{base}/lw-token"),
    });
    chat::send(&t, "hello", None).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/lw-token");
    let form = String::from_utf8(seen[0].body.clone()).unwrap();
    assert!(form.starts_with("assertion=ey"), "{form}");
    assert!(form.contains("&client_id=cid&client_secret=csecret&scope=bot"));
    assert_eq!(seen[1].header("authorization"), Some("Bearer fetched-token"));
    assert_eq!(seen[1].json()["content"]["text"], "hello");
}

#[tokio::test]
async fn a_webhook_over_https_is_verified_against_the_configured_ca() {
    let p = pki();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = p.acceptor.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let req = read_request(&mut tls).await;
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.unwrap();
        let _ = tls.shutdown().await;
        req
    });
    let mut t = target(Service::GoogleChat, format!("https://127.0.0.1:{port}/v1/spaces/S/messages?key=k"));
    t.ca_file = Some(p.ca_file.clone());
    chat::send(&t, "over TLS", None).await.unwrap();
    let req = server.await.unwrap();
    assert_eq!(req.json()["text"], "over TLS");
    assert_eq!(req.header("host"), Some(format!("127.0.0.1:{port}").as_str()));
    // Without the CA the same server is refused.
    t.ca_file = None;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = p.acceptor.clone();
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let _ = acceptor.accept(tcp).await;
    });
    t.url = format!("https://127.0.0.1:{port}/x");
    let e = chat::send(&t, "x", None).await.unwrap_err();
    assert!(!e.is_permanent(), "{e:?}");
    assert!(e.to_string().contains("TLS"), "{e}");
}

// ---- the outbox end to end ----

#[tokio::test]
async fn the_outbox_retries_a_transient_failure_after_a_restart_then_deletes_the_voicemail() {
    use hakoden::notify::outbox::{self, JobState, Outbox, OutboxDir, OutboxOutput, Recipients};
    let p = pki();
    let (base, seen) = http_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let (dir, jobs) = OutboxDir::open(tmp.path()).unwrap();
    let mut ob = Outbox::restore(jobs, outbox::CAPACITY);
    let audio = wav();
    let mut cw = target(Service::Chatwork, format!("{base}/v2"));
    cw.token = "tok".into();
    cw.channel = "77".into();
    cw.send_audio = true;
    let mail_to = vec!["owner@hakoden.test".to_string()];
    let to = Recipients { mail: &mail_to, chat: &[&cw], delete_after: true };
    let ids = outbox::queue_voicemail(
        &mut ob,
        &dir,
        "pbx@hakoden.test",
        &meta(),
        "留守電",
        UtcOffset::JST,
        &audio,
        &to,
        0,
    )
    .unwrap();
    assert_eq!(ids.len(), 2);
    let persist = |ob: &mut Outbox, dir: &OutboxDir| {
        let mut other = Vec::new();
        while let Some(o) = ob.poll_output() {
            match o {
                OutboxOutput::Persist(j) => dir.write_job(&j).unwrap(),
                OutboxOutput::Remove(id) => dir.remove(id).unwrap(),
                o => other.push(o),
            }
        }
        other
    };
    let chat = [cw.clone()];

    // First round: the relay answers 451; the chat goes out.
    let (port, _s) = smtp_server_failing(Mode::StartTls, "PLAIN", p.acceptor.clone(), true).await;
    let cfg = smtp_cfg(port, Security::Starttls, "pbx", "secret", Some(&p.ca_file));
    let mut results = Vec::new();
    while let Some(job) = ob.poll_due(0) {
        results.push((job.id, outbox::run_job(&job, &dir, Some(&cfg), &chat).await));
    }
    for (id, r) in results {
        match r {
            Ok(()) => ob.handle_sent(id),
            Err((text, permanent)) => {
                assert!(text.contains("451 4.3.0 mailbox temporarily unavailable"), "{text}");
                assert!(!permanent);
                ob.handle_failed(id, &text, permanent, 0);
            }
        }
    }
    assert!(persist(&mut ob, &dir).is_empty(), "nothing deleted while the mail waits");
    assert_eq!(ob.poll_timeout(), Some(outbox::BACKOFF_MS[0]));
    let cw_req = seen.lock().unwrap()[0].clone();
    assert_eq!(cw_req.path, "/v2/rooms/77/files");
    assert!(cw_req.multipart()[0].2 == audio);

    // Restart: the waiting job and its error are still there.
    drop(ob);
    let (dir, jobs) = OutboxDir::open(tmp.path()).unwrap();
    let mut ob = Outbox::restore(jobs, outbox::CAPACITY);
    let listed: Vec<_> = ob.list().cloned().collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, JobState::Waiting);
    assert!(listed[0].last_error.as_deref().unwrap().contains("451"));

    // Second round, a minute later: delivered, and the voicemail may go.
    assert!(ob.poll_due(outbox::BACKOFF_MS[0] - 1).is_none());
    let (port, server) = smtp_server(Mode::StartTls, "PLAIN", p.acceptor.clone()).await;
    let cfg = smtp_cfg(port, Security::Starttls, "pbx", "secret", Some(&p.ca_file));
    let job = ob.poll_due(outbox::BACKOFF_MS[0]).unwrap();
    assert_eq!(job.attempts, 2);
    outbox::run_job(&job, &dir, Some(&cfg), &chat).await.unwrap();
    ob.handle_sent(job.id);
    let other = persist(&mut ob, &dir);
    assert_eq!(
        other,
        [OutboxOutput::DeleteVoicemail(outbox::VoicemailRef { box_no: "804".into(), message: 3 })]
    );
    check_attachment(&server.await.unwrap().data, &audio);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "job files removed");
}
