//! Voicemail (issue 5): mailboxes, the caller flow, the owner menu and message-waiting, as
//! sans-IO building blocks. Nothing here reads a clock, a file or a socket: the engine passes
//! `now` in, performs the outputs, and reports their completion. Storage is
//! [`crate::store::voicemail`]. Flows, keys and limits: `docs/voicemail.md`.
//!
//! Layers:
//! - [`mailbox`]: box numbers, folders, message metadata, limits, greetings and their fallback.
//! - [`caller`]: the caller's flow: greeting, beep, record, review menu, limits.
//! - [`owner`]: the owner menu behind `*92` and the PIN rate limit.
//! - [`mwi`]: the RFC 3842 body and the `message-summary` subscription table.
//!
//! The public interface is: the four modules above and [`Clip`]. How the engine drives each
//! machine (which output maps to which store or media call) is at the end of
//! `docs/voicemail.md`.
//!
//! Wired into the engine by `engine/voicemail_call.rs` (caller flow, owner menu) and
//! `engine/mwi.rs` (subscriptions); the daemon applies the store operations.

pub mod caller;
pub mod mailbox;
pub mod mwi;
pub mod owner;

use mailbox::{GreetingKind, MessageId};

/// One piece of audio a flow asks the engine to play, in order, in the call's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clip {
    /// An embedded prompt by manifest id (`sounds/manifest.toml`).
    Prompt(&'static str),
    /// The box's recorded greeting in that slot (`store::voicemail::VoicemailStore::greeting_path`).
    Greeting(GreetingKind),
    /// The take being recorded in this call (the caller's review, the owner's new greeting).
    Take,
    /// A stored message of the box.
    Message(MessageId),
}

/// Prompt ids to clips.
fn prompts(ids: impl IntoIterator<Item = &'static str>) -> Vec<Clip> {
    ids.into_iter().map(Clip::Prompt).collect()
}
