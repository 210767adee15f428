//! Voicemail notification with real peers: the box's `[smtp]` points at a small SMTP server on
//! loopback run by this test. `mail test` reaches it; then baresip 201 leaves a message for 202
//! (`email`, `delete_after_email = true`), the mail arrives with the stored WAV attached byte
//! for byte, `show outbox` shows the job while the server holds its answer to DATA, and once
//! the server accepts, the message leaves the box and the console shows 0 new.
//!
//! With `CI=true` a missing `baresip` fails the test; locally it is skipped with a message.
mod common;

use common::baresip::Phone;
use common::tones::{tone, write_wav};
use common::voicemail::{context, leave_message, messages, ACT_TIMEOUT, SETUP_TIMEOUT};
use common::{require_tool, TestBox};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const P201: (&str, &str) = ("201", "secret-201");
const P202: (&str, &str) = ("202", "secret-202");
/// Upper bound on the phone's life (`baresip -t`) in case the test's own hang-up fails.
const PHONE_SECONDS: u32 = 30;
/// How long the caller speaks.
const SPEAK: Duration = Duration::from_secs(1);
/// The server holds the voicemail's DATA answer at most this long.
const HOLD: Duration = Duration::from_secs(20);

/// Mails received (the DATA, dot-stuffing undone) and the switch that lets a held one through.
struct SmtpServer {
    port: u16,
    mails: Arc<Mutex<Vec<Vec<u8>>>>,
    release: mpsc::Sender<()>,
}

/// A plain SMTP relay (what `security = "none"` talks to). Mails with a WAV attached wait for
/// `release` before the 250, so the test can look at the box while the job is being sent.
fn smtp_server() -> SmtpServer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let (release, held) = mpsc::channel::<()>();
    let m = mails.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            session(conn, &m, &held);
        }
    });
    SmtpServer { port, mails, release }
}

fn session(conn: TcpStream, mails: &Mutex<Vec<Vec<u8>>>, held: &mpsc::Receiver<()>) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let _ = w.write_all(b"220 test ESMTP\r\n");
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if cmd.starts_with("EHLO") {
            b"250-test\r\n250 SIZE 10000000\r\n"
        } else if cmd == "DATA" {
            let _ = w.write_all(b"354 end with .\r\n");
            let mut lines = Vec::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let l = line.trim_end_matches(['\r', '\n']);
                if l == "." {
                    break;
                }
                lines.push(l.strip_prefix('.').unwrap_or(l).to_string());
            }
            let data = (lines.join("\r\n") + "\r\n").into_bytes();
            let has_wav = String::from_utf8_lossy(&data).contains("audio/wav");
            mails.lock().unwrap().push(data);
            if has_wav {
                let _ = held.recv_timeout(HOLD);
            }
            b"250 2.0.0 queued\r\n"
        } else if cmd == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n");
            return;
        } else {
            b"250 ok\r\n"
        };
        let _ = w.write_all(reply);
    }
}

fn wait_for_mail(server: &SmtpServer, count: usize) -> Option<Vec<u8>> {
    for _ in 0..(ACT_TIMEOUT.as_millis() / 100) {
        if let Some(m) = server.mails.lock().unwrap().get(count - 1) {
            return Some(m.clone());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_voicemail_is_mailed_with_its_wav_and_deleted_after_the_mail() {
    if !require_tool("baresip") {
        return;
    }
    let server = smtp_server();
    let smtp = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"pbx@hakoden.test\"\n",
        server.port
    );
    let tb = TestBox::start_with_config(
        &[P201, P202],
        &[("202", "voicemail = true\nemail = \"owner202@hakoden.test\"\ndelete_after_email = true")],
        &smtp,
    );

    let answer = tb.console("mail test tech@hakoden.test");
    assert!(answer.starts_with("sent to tech@hakoden.test"), "mail test: {answer}");
    let test_mail = wait_for_mail(&server, 1).expect("the test mail");
    assert!(
        String::from_utf8_lossy(&test_mail).contains("tech@hakoden.test"),
        "the test mail names its recipient"
    );

    let source = tb.scratch("media").join("tone.wav");
    write_wav(&source, &tone(700.0, 30.0, 8_000.0));
    let mut alice =
        Phone::builder(&tb, P201, &source, PHONE_SECONDS).without_recording().ctrl_tcp(tb.port()).start();
    assert!(
        alice.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT),
        "201 did not register\n{}",
        context(&tb, &alice)
    );
    leave_message(&tb, &mut alice, "202", SPEAK);

    let mail =
        wait_for_mail(&server, 2).unwrap_or_else(|| panic!("no voicemail mail\n{}", context(&tb, &alice)));
    alice.kill();
    let files = messages(&tb, "202");
    assert_eq!(files.len(), 1, "the message is kept until the mail is accepted: {files:?}");
    let stored = std::fs::read(&files[0]).unwrap();
    let (headers, parts) = hakoden::notify::mime::parse(&mail).expect("a MIME message");
    let to = headers.iter().find(|(h, _)| h == "To").map(|(_, v)| v.clone()).unwrap_or_default();
    assert!(to.contains("owner202@hakoden.test"), "To: {to}");
    let wav = parts.iter().find(|p| p.content_type.starts_with("audio/wav")).expect("a WAV part");
    let name = files[0].file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert_eq!(wav.file_name.as_deref(), Some(name));
    assert!(
        wav.body == stored,
        "the attachment ({} bytes) is not the stored file ({} bytes)",
        wav.body.len(),
        stored.len()
    );
    eprintln!("mail of {} bytes, WAV {} bytes", mail.len(), stored.len());

    let outbox = tb.console("show outbox");
    assert!(outbox.contains("sending") && outbox.contains("mail vm 202/"), "show outbox: {outbox}");

    server.release.send(()).unwrap();
    let none_new = |s: &str| s.lines().any(|l| l.split_whitespace().take(2).eq(["202", "0"]));
    let shown = tb.console_until("show voicemail", ACT_TIMEOUT, none_new);
    assert!(none_new(&shown), "202 should show 0 new after the mail:\n{shown}\n{}", tb.stderr_tail(40));
    assert!(messages(&tb, "202").is_empty(), "the message file is deleted after the mail");
    let outbox = tb.console_until("show outbox", ACT_TIMEOUT, |s| s.contains("outbox empty"));
    assert!(outbox.contains("outbox empty"), "show outbox: {outbox}");
}
