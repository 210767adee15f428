//! Voicemail (issue 5): mailboxes, the caller flow, the owner menu and message-waiting, as
//! sans-IO building blocks. Nothing here reads a clock, a file or a socket: the engine passes
//! `now` in, performs the outputs, and reports their completion. Storage is
//! [`crate::store::voicemail`]. Flows, keys and limits: `docs/voicemail.md`.
//!
//! Layers:
//! - [`mailbox`]: box numbers, folders, message metadata, limits, greetings and their fallback.
//!
//! Not wired into the engine yet.

pub mod mailbox;
