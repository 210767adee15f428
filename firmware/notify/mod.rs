//! Notifications of new voicemail (issue 5): e-mail with the message attached, chat messages,
//! and the outbox that retries them. Config keys and what is not wired: `docs/notify.md`.
//!
//! Layers:
//! - [`mime`] (pure): the RFC 5322/2045 message with the seed 000 fields and the WAV attached.
//! - [`smtp`]: a sans-IO SMTP client ([`smtp::SmtpClient`]) and its thin tokio driver
//!   ([`smtp::send_mail`], [`smtp::send_test_mail`]): plain, STARTTLS, implicit TLS, AUTH
//!   PLAIN/LOGIN.
//! - [`outbox`]: the bounded outbox with retries and visible errors (sans-IO) and its job
//!   directory ([`outbox::OutboxDir`]).
//! - [`chat`]: payloads for Slack, Microsoft Teams, Google Chat, Chatwork and LINE WORKS, the
//!   per-box rule with its caller whitelist, and the sending driver.
//! - [`http`]: the small HTTP/1.1 POST client the chat driver uses.
//! - [`tls`]: the rustls client configuration shared by SMTP and HTTP (webpki roots, or one CA
//!   file).
//!
//! - [`driver`]: the daemon's outbox task and the console's view of it.

pub mod chat;
pub mod driver;
pub mod http;
pub mod mime;
pub mod outbox;
pub mod smtp;
pub mod tls;
