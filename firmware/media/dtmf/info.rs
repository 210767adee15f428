//! SIP INFO DTMF bodies: `application/dtmf-relay` (the de-facto Cisco format) and
//! `application/dtmf` (the digit, or its RFC 4733 event code, alone in the body).
//!
//! Tolerated variations seen in phones: keys in any case, spaces around `=` and values, CRLF or
//! bare LF line ends, a trailing blank line, event codes `10`-`15` instead of `*`, `#`, `A`-`D`,
//! lowercase `a`-`d`, and unknown extra lines (ignored).

use super::{event_to_digit, DigitEvent, DtmfSource};

/// Largest body accepted: a real one is under 40 bytes; anything big is not DTMF.
pub const MAX_INFO_BODY: usize = 1_024;

/// Duration reported when a `dtmf-relay` body has no `Duration` line, or for `application/dtmf`
/// which carries none: a typical key press.
pub const DEFAULT_INFO_DURATION_MS: u32 = 250;

/// Longest duration believed: a minute-long key press is a broken phone, not a user.
pub const MAX_INFO_DURATION_MS: u32 = 60_000;

/// Why an INFO body was not a digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InfoError {
    /// The Content-Type is neither `application/dtmf-relay` nor `application/dtmf`.
    UnsupportedContentType,
    /// The body is longer than [`MAX_INFO_BODY`].
    BodyTooLarge,
    /// The body is not UTF-8 text.
    NotText,
    /// A `dtmf-relay` body has no `Signal` line, or an `application/dtmf` body is empty.
    MissingSignal,
    /// The signal is not one of `0-9 * # A-D` or event codes 0-15.
    InvalidSignal,
    /// The `Duration` is not a number of milliseconds up to [`MAX_INFO_DURATION_MS`].
    InvalidDuration,
    /// `Signal` or `Duration` appears twice.
    DuplicateField,
}

impl InfoError {
    /// The SIP status code to answer the INFO with (RFC 3261 §21, RFC 6086 §4.2.2).
    pub fn status_code(self) -> u16 {
        match self {
            InfoError::UnsupportedContentType => 415,
            InfoError::BodyTooLarge => 413,
            _ => 400,
        }
    }
}

impl std::fmt::Display for InfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            InfoError::UnsupportedContentType => "unsupported INFO content type",
            InfoError::BodyTooLarge => "INFO body too large",
            InfoError::NotText => "INFO body is not UTF-8 text",
            InfoError::MissingSignal => "INFO body has no DTMF signal",
            InfoError::InvalidSignal => "INFO body has an invalid DTMF signal",
            InfoError::InvalidDuration => "INFO body has an invalid duration",
            InfoError::DuplicateField => "INFO body repeats a field",
        };
        f.write_str(text)
    }
}

impl std::error::Error for InfoError {}

/// The two INFO body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DtmfRelay,
    Dtmf,
}

/// Parses the body of a SIP INFO carrying one DTMF digit. `content_type` is the header value
/// (parameters such as `;charset=` are ignored). Never panics.
pub fn parse_info(content_type: &str, body: &[u8]) -> Result<DigitEvent, InfoError> {
    let format = content_format(content_type).ok_or(InfoError::UnsupportedContentType)?;
    if body.len() > MAX_INFO_BODY {
        return Err(InfoError::BodyTooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| InfoError::NotText)?;
    match format {
        Format::DtmfRelay => parse_dtmf_relay(text),
        Format::Dtmf => {
            let signal = text.trim();
            if signal.is_empty() {
                return Err(InfoError::MissingSignal);
            }
            let digit = parse_signal(signal)?;
            Ok(DigitEvent { digit, duration_ms: DEFAULT_INFO_DURATION_MS, source: DtmfSource::SipInfo })
        }
    }
}

fn content_format(content_type: &str) -> Option<Format> {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        Some(Format::DtmfRelay)
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        Some(Format::Dtmf)
    } else {
        None
    }
}

fn parse_dtmf_relay(text: &str) -> Result<DigitEvent, InfoError> {
    let mut digit = None;
    let mut duration_ms = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("signal") {
            if digit.is_some() {
                return Err(InfoError::DuplicateField);
            }
            digit = Some(parse_signal(value)?);
        } else if key.eq_ignore_ascii_case("duration") {
            if duration_ms.is_some() {
                return Err(InfoError::DuplicateField);
            }
            let ms: u32 = value.parse().map_err(|_| InfoError::InvalidDuration)?;
            if ms > MAX_INFO_DURATION_MS {
                return Err(InfoError::InvalidDuration);
            }
            duration_ms = Some(ms);
        }
    }
    let digit = digit.ok_or(InfoError::MissingSignal)?;
    Ok(DigitEvent {
        digit,
        duration_ms: duration_ms.unwrap_or(DEFAULT_INFO_DURATION_MS),
        source: DtmfSource::SipInfo,
    })
}

/// A digit character (`0-9 * # A-D`, any case) or an RFC 4733 event code `0`-`15`.
fn parse_signal(value: &str) -> Result<char, InfoError> {
    let mut chars = value.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_uppercase();
        if super::digit_to_event(c).is_some() {
            return Ok(c);
        }
        return Err(InfoError::InvalidSignal);
    }
    // Two characters or more: only the event codes 10-15 are meaningful.
    let code: u8 = value.parse().map_err(|_| InfoError::InvalidSignal)?;
    event_to_digit(code).ok_or(InfoError::InvalidSignal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit(content_type: &str, body: &str) -> Result<(char, u32), InfoError> {
        parse_info(content_type, body.as_bytes()).map(|e| (e.digit, e.duration_ms))
    }

    // Tests for application/dtmf-relay.

    #[test]
    fn dtmf_relay_with_crlf_gives_digit_and_duration() {
        assert_eq!(digit("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"), Ok(('5', 160)));
    }

    #[test]
    fn dtmf_relay_accepts_spaces_lowercase_keys_and_bare_lf() {
        assert_eq!(digit("application/dtmf-relay", "signal= *\nduration = 100\n"), Ok(('*', 100)));
        assert_eq!(digit("Application/DTMF-Relay; charset=utf-8", "SIGNAL=#"), Ok(('#', 250)));
    }

    #[test]
    fn dtmf_relay_maps_event_codes_ten_and_eleven_to_star_and_pound() {
        assert_eq!(digit("application/dtmf-relay", "Signal=10\r\nDuration=200"), Ok(('*', 200)));
        assert_eq!(digit("application/dtmf-relay", "Signal=11\r\nDuration=200"), Ok(('#', 200)));
        assert_eq!(digit("application/dtmf-relay", "Signal=15"), Ok(('D', 250)));
    }

    #[test]
    fn dtmf_relay_uppercases_letter_digits() {
        assert_eq!(digit("application/dtmf-relay", "Signal=a"), Ok(('A', 250)));
    }

    #[test]
    fn dtmf_relay_ignores_unknown_lines() {
        assert_eq!(digit("application/dtmf-relay", "Foo=bar\r\nSignal=0\r\nblah\r\n"), Ok(('0', 250)));
    }

    #[test]
    fn dtmf_relay_rejects_nonsense() {
        let ct = "application/dtmf-relay";
        assert_eq!(digit(ct, "Duration=160"), Err(InfoError::MissingSignal));
        assert_eq!(digit(ct, "Signal=16"), Err(InfoError::InvalidSignal));
        assert_eq!(digit(ct, "Signal=E"), Err(InfoError::InvalidSignal));
        assert_eq!(digit(ct, "Signal="), Err(InfoError::InvalidSignal));
        assert_eq!(digit(ct, "Signal=55"), Err(InfoError::InvalidSignal));
        assert_eq!(digit(ct, "Signal=5\nDuration=-1"), Err(InfoError::InvalidDuration));
        assert_eq!(digit(ct, "Signal=5\nDuration=99999999999"), Err(InfoError::InvalidDuration));
        assert_eq!(digit(ct, "Signal=5\nSignal=6"), Err(InfoError::DuplicateField));
        assert_eq!(parse_info(ct, &[0xff, 0xfe]), Err(InfoError::NotText));
        assert_eq!(parse_info(ct, &[b' '; MAX_INFO_BODY + 1]), Err(InfoError::BodyTooLarge));
    }

    // Tests for application/dtmf.

    #[test]
    fn dtmf_body_is_the_digit_or_its_event_code() {
        assert_eq!(digit("application/dtmf", "5"), Ok(('5', 250)));
        assert_eq!(digit("application/dtmf", "#\r\n"), Ok(('#', 250)));
        assert_eq!(digit("application/dtmf", "11"), Ok(('#', 250)));
        assert_eq!(digit("application/dtmf", ""), Err(InfoError::MissingSignal));
        assert_eq!(digit("application/dtmf", "12345"), Err(InfoError::InvalidSignal));
    }

    #[test]
    fn other_content_types_are_unsupported_and_answered_415() {
        let err = parse_info("text/plain", b"5").unwrap_err();
        assert_eq!(err, InfoError::UnsupportedContentType);
        assert_eq!(err.status_code(), 415);
        assert_eq!(InfoError::InvalidSignal.status_code(), 400);
    }

    #[test]
    fn info_parser_never_panics_on_random_bodies() {
        let mut rng = super::super::tests::XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"Signal=Duration0123456789*#ABCDabcd \r\n=;,-+\xff\x00";
        for round in 0..100_000 {
            let len = (rng.next() % 64) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    if round % 2 == 0 {
                        alphabet[(rng.next() % alphabet.len() as u64) as usize]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect();
            let ct = if round % 3 == 0 { "application/dtmf" } else { "application/dtmf-relay" };
            let _ = parse_info(ct, &body);
        }
    }
}
