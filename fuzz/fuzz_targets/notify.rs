//! What a mail server or a chat API sends back, on arbitrary bytes: SMTP replies fed to the
//! client in every state it can reach (the first byte picks the configuration and how far a
//! scripted good server leads it first; the rest arrives in chunks split at 0xFF), HTTP
//! responses, and URLs from configuration. None may panic.
#![no_main]

use hakoden::notify::http::{parse_response, Url};
use hakoden::notify::smtp::{Security, SmtpClient, SmtpConfig};
use libfuzzer_sys::fuzz_target;

/// A server that accepts everything, reply by reply.
const SCRIPT: [&[u8]; 9] = [
    b"220 mx\r\n",
    b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n",
    b"220 go\r\n",
    b"250-mx\r\n250 AUTH LOGIN\r\n",
    b"334 VXNlcm5hbWU6\r\n",
    b"334 UGFzc3dvcmQ6\r\n",
    b"235 ok\r\n",
    b"250 ok\r\n",
    b"250 ok\r\n",
];

fuzz_target!(|data: &[u8]| {
    let first = data.first().copied().unwrap_or(0);
    let rest = data.get(1..).unwrap_or(&[]);
    let security = match first % 3 {
        0 => Security::None,
        1 => Security::Starttls,
        _ => Security::Tls,
    };
    let cfg = SmtpConfig {
        host: "mx.example".into(),
        port: 587,
        security,
        username: if security == Security::None { String::new() } else { "u".into() },
        password: "p".into(),
        from: "pbx@example.jp".into(),
        ca_file: None,
        helo_name: "h".into(),
    };
    let to = vec!["a@example.jp".to_string(), "b@example.jp".to_string()];
    if let Ok(mut c) = SmtpClient::new(&cfg, &to, b"Subject: x\r\n\r\n.body\r\n") {
        let mut alive = true;
        for step in SCRIPT.iter().take(usize::from(first / 3 % 10)) {
            while let Some(o) = c.poll_output() {
                if o == hakoden::notify::smtp::Output::StartTls {
                    c.handle_tls_established();
                }
            }
            if c.handle_input(step).is_err() {
                alive = false;
                break;
            }
        }
        if alive {
            for chunk in rest.split(|b| *b == 0xff) {
                while c.poll_output().is_some() {}
                let _ = c.stage();
                if c.handle_input(chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = parse_response(rest);
    if let Ok(s) = std::str::from_utf8(rest) {
        let _ = Url::parse(s);
    }
});
