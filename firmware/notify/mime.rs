//! The voicemail e-mail (RFC 5322 + RFC 2045/2046/2047): headers, a UTF-8 text part with the
//! seed 000 fields (From, To, Received, Duration, file name) in Japanese and English, and the WAV
//! as a base64 attachment. Pure: the caller passes the time, the unique token and the audio.
//!
//! Lines are CRLF and at most [`MAX_BODY_LINE`] characters; dot-stuffing belongs to the SMTP layer
//! ([`super::smtp::data_block`]).

use base64::Engine as _;

use crate::apps::timerules::UtcOffset;
use crate::apps::voicemail::mailbox::{DateTime, MessageMeta};

/// Base64 body lines: RFC 2045 §6.8 says at most 76 characters.
pub const MAX_BODY_LINE: usize = 76;

/// Longest encoded-word: RFC 2047 §2 says at most 75 characters.
const MAX_ENCODED_WORD: usize = 75;

/// `=?UTF-8?B?` + `?=`.
const ENCODED_WORD_OVERHEAD: usize = 12;

/// Longest box name or caller name put into a header, in characters (a hostile display name
/// must not make a huge subject).
const MAX_NAME_CHARS: usize = 64;

const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// What the notification says about one message (seed 000's fields), shared by mail and chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The caller as shown: `name <number>`, the number, or `anonymous`.
    pub from: String,
    /// The box as shown: `"804" - "留守電"`.
    pub to: String,
    /// `Thursday, 01 September 2022 15:04:35` (local time).
    pub received: String,
    /// `00:00:11`.
    pub duration: String,
    /// `vmail_<caller>_<box>_<yyyymmddHHMMSS>.wav`.
    pub file_name: String,
    /// The caller's number alone (empty when withheld), for subjects.
    pub caller_number: String,
    /// The box number alone.
    pub box_no: String,
    /// RFC 5322 date of reception (`Thu, 01 Sep 2022 15:04:35 +0900`).
    pub rfc5322_date: String,
}

impl Notice {
    /// The notice of a stored message; `box_name` is the box's label (empty when none).
    pub fn of(meta: &MessageMeta, box_name: &str, offset: UtcOffset) -> Notice {
        let name = header_safe(&meta.caller_name);
        let number = header_safe(&meta.caller);
        let from = match (name.is_empty(), number.is_empty()) {
            (true, true) => "anonymous".to_string(),
            (true, false) => number.clone(),
            (false, true) => name,
            (false, false) => format!("{name} <{number}>"),
        };
        let box_name = header_safe(box_name);
        let to = if box_name.is_empty() {
            format!("\"{}\"", meta.box_no)
        } else {
            format!("\"{}\" - \"{}\"", meta.box_no, box_name)
        };
        let at = DateTime::from_unix_ms(meta.received_unix_ms, offset);
        Notice {
            from,
            to,
            received: long_date(at, meta.received_unix_ms, offset),
            duration: duration(meta.duration_ms),
            file_name: header_safe(&meta.file),
            caller_number: number,
            box_no: meta.box_no.to_string(),
            rfc5322_date: rfc5322_date(at, meta.received_unix_ms, offset),
        }
    }

    /// The text of the notice in Japanese, then English (mail body and chat message).
    pub fn text(&self) -> String {
        format!(
            "新しい留守番電話メッセージがあります。\n\
             発信者: {from}\n宛先: {to}\n受信日時: {received}\n長さ: {duration}\nファイル: {file}\n\n\
             You have a new voicemail message.\n\
             From: {from}\nTo: {to}\nReceived: {received}\nDuration: {duration}\nFile: {file}\n",
            from = self.from,
            to = self.to,
            received = self.received,
            duration = self.duration,
            file = self.file_name,
        )
    }

    /// The subject: `留守番電話 / Voicemail: <caller> → <box>`.
    pub fn subject(&self) -> String {
        format!("留守番電話 / Voicemail: {} → {}", self.from, self.box_no)
    }
}

/// Drops control characters (CR/LF would inject headers) and cuts to [`MAX_NAME_CHARS`].
fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect()
}

/// Day of the week of a Unix instant at an offset, 0 = Sunday.
fn weekday(unix_ms: u64, offset: UtcOffset) -> usize {
    let secs = i64::try_from(unix_ms / 1000).unwrap_or(0) + i64::from(offset.minutes()) * 60;
    // 1970-01-01 was a Thursday (4).
    usize::try_from((secs.div_euclid(86_400) + 4).rem_euclid(7)).unwrap_or(0)
}

fn month_name(month: u8) -> &'static str {
    MONTHS.get(usize::from(month).wrapping_sub(1)).copied().unwrap_or("January")
}

/// Seed 000's `Thursday, 01 September 2022 15:04:35`.
fn long_date(at: DateTime, unix_ms: u64, offset: UtcOffset) -> String {
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02}",
        WEEKDAYS.get(weekday(unix_ms, offset)).copied().unwrap_or("Sunday"),
        at.day,
        month_name(at.month),
        at.year,
        at.hour,
        at.minute,
        at.second
    )
}

/// RFC 5322 §3.3 `date-time`.
fn rfc5322_date(at: DateTime, unix_ms: u64, offset: UtcOffset) -> String {
    let m = offset.minutes();
    let sign = if m < 0 { '-' } else { '+' };
    let abs = m.unsigned_abs();
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} {}{:02}{:02}",
        WEEKDAYS.get(weekday(unix_ms, offset)).and_then(|d| d.get(..3)).unwrap_or("Sun"),
        at.day,
        month_name(at.month).get(..3).unwrap_or("Jan"),
        at.year,
        at.hour,
        at.minute,
        at.second,
        sign,
        abs / 60,
        abs % 60
    )
}

/// `HH:MM:SS`, rounded to the nearest second (a 10.6 s message reads `00:00:11`).
fn duration(ms: u64) -> String {
    let s = ms.saturating_add(500) / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One mail to build.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    /// The envelope and header sender, a bare address (`pbx@example.jp`).
    pub from: &'a str,
    /// The recipients, bare addresses; all appear in `To`.
    pub to: &'a [String],
    /// The message's fields.
    pub notice: &'a Notice,
    /// The WAV file's bytes; `None` sends the text alone.
    pub wav: Option<&'a [u8]>,
    /// Makes the Message-ID and boundary unique (the outbox job id, a random number).
    pub unique: u64,
}

/// The complete message, CRLF line ends, ready for [`super::smtp::data_block`].
pub fn build(mail: &Mail<'_>) -> Vec<u8> {
    let domain = mail.from.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    let boundary = format!("=_hakoden_{:016x}", mail.unique);
    let mut out = String::new();
    header(&mut out, "From", &address_header(mail.from));
    let to: Vec<String> = mail.to.iter().map(|a| address_header(a)).collect();
    header(&mut out, "To", &to.join(",\r\n "));
    header(&mut out, "Subject", &encode_word_if_needed(&mail.notice.subject()));
    header(&mut out, "Date", &mail.notice.rfc5322_date);
    header(&mut out, "Message-ID", &format!("<vm.{:016x}@{}>", mail.unique, header_safe(domain)));
    header(&mut out, "MIME-Version", "1.0");
    header(&mut out, "X-Mailer", "Hakoden");
    let text = base64_lines(mail.notice.text().replace('\n', "\r\n").as_bytes());
    match mail.wav {
        None => {
            header(&mut out, "Content-Type", "text/plain; charset=UTF-8");
            header(&mut out, "Content-Transfer-Encoding", "base64");
            out.push_str("\r\n");
            out.push_str(&text);
        }
        Some(wav) => {
            header(&mut out, "Content-Type", &format!("multipart/mixed;\r\n boundary=\"{boundary}\""));
            out.push_str("\r\nThis is a MIME message.\r\n");
            out.push_str(&format!("--{boundary}\r\n"));
            out.push_str(
                "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            );
            out.push_str(&text);
            out.push_str(&format!("--{boundary}\r\n"));
            // The name goes inside quotes: keep it to the characters voicemail file names use.
            let name: String = mail
                .notice
                .file_name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'))
                .collect();
            out.push_str(&format!(
                "Content-Type: audio/wav; name=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            ));
            out.push_str(&base64_lines(wav));
            out.push_str(&format!("--{boundary}--\r\n"));
        }
    }
    out.into_bytes()
}

/// The "send test mail" message: a short text in Japanese and English, dated `now_unix_ms`.
pub fn build_test(from: &str, to: &str, now_unix_ms: u64, offset: UtcOffset, unique: u64) -> Vec<u8> {
    let at = DateTime::from_unix_ms(now_unix_ms, offset);
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    let text = "Hakoden のテストメールです。このメールが届けば、留守番電話の通知を送れます。\r\n\
                This is a test mail from Hakoden. If it arrived, voicemail notifications can be sent.\r\n";
    let mut out = String::new();
    header(&mut out, "From", &address_header(from));
    header(&mut out, "To", &address_header(to));
    header(&mut out, "Subject", &encode_word_if_needed("Hakoden テストメール / test mail"));
    header(&mut out, "Date", &rfc5322_date(at, now_unix_ms, offset));
    header(&mut out, "Message-ID", &format!("<test.{:016x}@{}>", unique, header_safe(domain)));
    header(&mut out, "MIME-Version", "1.0");
    header(&mut out, "Content-Type", "text/plain; charset=UTF-8");
    header(&mut out, "Content-Transfer-Encoding", "base64");
    out.push_str("\r\n");
    out.push_str(&base64_lines(text.as_bytes()));
    out.into_bytes()
}

fn header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str("\r\n");
}

/// An address as a header value; anything outside a plain addr-spec is dropped (the address
/// comes from configuration, but a stray `>` or newline must not break the header).
fn address_header(addr: &str) -> String {
    let clean: String =
        addr.chars().filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | '"')).collect();
    format!("<{clean}>")
}

/// The base64 of `data` in lines of [`MAX_BODY_LINE`], each ending CRLF.
fn base64_lines(data: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(b64.len() + b64.len() / MAX_BODY_LINE * 2 + 2);
    for chunk in b64.as_bytes().chunks(MAX_BODY_LINE) {
        // The base64 alphabet is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push_str("\r\n");
    }
    out
}

/// RFC 2047 encoded-words (`B` encoding, UTF-8) for a header value that is not plain ASCII;
/// words split on character boundaries and folded with CRLF SP.
pub fn encode_word_if_needed(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return s.to_string();
    }
    // Every 3 input bytes take 4 output characters.
    let max_bytes = (MAX_ENCODED_WORD - ENCODED_WORD_OVERHEAD) / 4 * 3;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > max_bytes {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words.join("\r\n ")
}

fn encoded_word(s: &str) -> String {
    format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
}

/// Header fields in order, continuation lines unfolded.
pub type Headers = Vec<(String, String)>;

/// A decoded part of a message, for tests and the "send test mail" check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part's `Content-Type` value.
    pub content_type: String,
    /// The file name from `Content-Disposition`, if any.
    pub file_name: Option<String>,
    /// The decoded body.
    pub body: Vec<u8>,
}

/// Splits a message this module built into its headers and decoded parts. Not a general MIME
/// parser: it reads what [`build`] writes (one level of multipart, base64 parts) and returns
/// `None` on anything else.
#[doc(hidden)]
pub fn parse(message: &[u8]) -> Option<(Headers, Vec<Part>)> {
    let text = std::str::from_utf8(message).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let headers = unfold(head);
    let ctype = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type"))?.1.clone();
    let parts = if let Some(b) = ctype.split("boundary=\"").nth(1).and_then(|r| r.split('"').next()) {
        let delim = format!("--{b}");
        let mut parts = Vec::new();
        for raw in body.split(&delim).skip(1) {
            if raw.starts_with("--") {
                break;
            }
            let raw = raw.strip_prefix("\r\n")?;
            let (ph, pb) = raw.split_once("\r\n\r\n")?;
            parts.push(part(&unfold(ph), pb)?);
        }
        parts
    } else {
        vec![part(&headers, body)?]
    };
    Some((headers, parts))
}

fn part(headers: &[(String, String)], body: &str) -> Option<Part> {
    let get = |n: &str| headers.iter().find(|(h, _)| h.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let content_type = get("content-type").unwrap_or_default();
    let file_name = get("content-disposition")
        .and_then(|d| d.split("filename=\"").nth(1).and_then(|r| r.split('"').next()).map(str::to_string));
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let body = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    Some(Part { content_type, file_name, body })
}

/// Header lines, continuation lines joined with one space.
fn unfold(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim_start());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// Decodes a header value made of RFC 2047 `B` words (UTF-8) and plain text.
#[doc(hidden)]
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut bytes = Vec::new();
    for token in value.split_whitespace() {
        if let Some(b) = token.strip_prefix("=?UTF-8?B?").and_then(|t| t.strip_suffix("?=")) {
            bytes.extend(base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default());
        } else {
            out.push_str(&String::from_utf8_lossy(&bytes));
            bytes.clear();
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(token);
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::voicemail::mailbox::{BoxNumber, Folder, MessageId};

    /// Seed 000's example: 2022-09-01 15:04:35 JST, 11 s.
    fn meta() -> MessageMeta {
        MessageMeta {
            id: MessageId(7),
            box_no: BoxNumber::parse("804").unwrap(),
            caller: "0312345678".into(),
            caller_name: "山田".into(),
            received_unix_ms: 1_662_012_275_000,
            duration_ms: 10_600,
            folder: Folder::New,
            file: "vmail_0312345678_804_20220901150435.wav".into(),
        }
    }

    #[test]
    fn notice_shows_the_seed_000_fields() {
        let n = Notice::of(&meta(), "留守電", UtcOffset::JST);
        assert_eq!(n.to, "\"804\" - \"留守電\"");
        assert_eq!(n.received, "Thursday, 01 September 2022 15:04:35");
        assert_eq!(n.duration, "00:00:11");
        assert_eq!(n.from, "山田 <0312345678>");
        assert_eq!(n.rfc5322_date, "Thu, 01 Sep 2022 15:04:35 +0900");
        assert!(n.text().contains("Received: Thursday, 01 September 2022 15:04:35"));
        assert!(n.text().contains("受信日時:"));
    }

    #[test]
    fn a_withheld_caller_reads_anonymous_and_control_characters_vanish() {
        let mut m = meta();
        m.caller.clear();
        m.caller_name.clear();
        assert_eq!(Notice::of(&m, "", UtcOffset::JST).from, "anonymous");
        m.caller_name = "evil\r\nBcc: x@y".into();
        let n = Notice::of(&m, "", UtcOffset::JST);
        assert!(!n.from.contains('\n'));
        assert_eq!(n.to, "\"804\"");
    }

    #[test]
    fn the_built_mail_decodes_to_its_text_and_the_wav() {
        let n = Notice::of(&meta(), "留守電", UtcOffset::JST);
        let wav: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let to = vec!["a@example.jp".to_string(), "b@example.jp".to_string()];
        let msg = build(&Mail { from: "pbx@example.jp", to: &to, notice: &n, wav: Some(&wav), unique: 42 });
        let text = std::str::from_utf8(&msg).unwrap();
        for line in text.split("\r\n") {
            assert!(line.len() <= 998, "line too long");
            assert!(line.is_ascii(), "8-bit line {line}");
        }
        assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
        let (headers, parts) = parse(&msg).unwrap();
        let subject = &headers.iter().find(|(h, _)| h == "Subject").unwrap().1;
        assert_eq!(decode_words(subject), n.subject());
        assert!(headers.iter().any(|(h, v)| h == "Message-ID" && v == "<vm.000000000000002a@example.jp>"));
        assert_eq!(parts.len(), 2);
        assert_eq!(String::from_utf8(parts[0].body.clone()).unwrap(), n.text().replace('\n', "\r\n"));
        assert_eq!(parts[1].body, wav);
        assert_eq!(parts[1].file_name.as_deref(), Some("vmail_0312345678_804_20220901150435.wav"));
    }

    #[test]
    fn encoded_words_stay_within_75_characters_and_split_on_characters() {
        let s = "留守番電話のメッセージがあります。".repeat(4);
        let enc = encode_word_if_needed(&s);
        for w in enc.split("\r\n ") {
            assert!(w.len() <= MAX_ENCODED_WORD, "{w}");
        }
        assert_eq!(decode_words(&enc), s);
        assert_eq!(encode_word_if_needed("plain"), "plain");
    }

    #[test]
    fn a_text_only_mail_has_one_part() {
        let n = Notice::of(&meta(), "", UtcOffset::JST);
        let to = vec!["a@example.jp".to_string()];
        let msg = build(&Mail { from: "pbx@example.jp", to: &to, notice: &n, wav: None, unique: 1 });
        let (_, parts) = parse(&msg).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].content_type.starts_with("text/plain"));
    }
}
