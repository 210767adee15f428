//! Agent chat (seed 002 §2.6): messages to everyone, a group (queue) or one agent, kept in a
//! bounded log, with per-reader unread counts and `#C` / `#T` references marked for links.

use super::refs::{find_refs, Ref};
use std::collections::{HashMap, VecDeque};

/// Messages kept in total; the oldest go first. A day of a busy floor's chat fits.
pub const MAX_MESSAGES: usize = 5_000;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1_000;

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// 全員.
    Everyone,
    /// A group (queue) by number; its members read it.
    Group(String),
    /// One agent by extension.
    Agent(String),
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// Sequence number, rising.
    pub seq: u64,
    /// Sender's extension.
    pub from: String,
    /// Recipient.
    pub to: Target,
    /// Unix ms.
    pub at_ms: u64,
    /// Text.
    pub text: String,
    /// Bold (the manual's emphasis).
    pub bold: bool,
    /// Red (the manual's emphasis).
    pub red: bool,
    /// `#C` / `#T` references in `text`.
    pub refs: Vec<Ref>,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatError {
    /// Empty or only spaces.
    Empty,
    /// Longer than [`MAX_MESSAGE_CHARS`].
    TooLong,
    /// Control characters other than a newline.
    BadCharacter,
}

/// The chat log.
#[derive(Debug, Default)]
pub struct Chat {
    log: VecDeque<Message>,
    next_seq: u64,
    /// Reader → last seq read.
    read: HashMap<String, u64>,
}

impl Chat {
    /// An empty log.
    pub fn new() -> Chat {
        Chat { next_seq: 1, ..Chat::default() }
    }

    /// Posts a message.
    pub fn post(
        &mut self,
        from: &str,
        to: Target,
        text: &str,
        bold: bool,
        red: bool,
        at_ms: u64,
    ) -> Result<&Message, ChatError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ChatError::Empty);
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(ChatError::TooLong);
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ChatError::BadCharacter);
        }
        if self.log.len() >= MAX_MESSAGES {
            self.log.pop_front();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.read.insert(from.to_string(), seq);
        let refs = find_refs(text);
        self.log.push_back(Message { seq, from: from.into(), to, at_ms, text: text.into(), bold, red, refs });
        self.log.back().ok_or(ChatError::Empty)
    }

    fn visible_to(m: &Message, reader: &str, groups: &[String]) -> bool {
        m.from == reader
            || match &m.to {
                Target::Everyone => true,
                Target::Group(g) => groups.contains(g),
                Target::Agent(a) => a == reader,
            }
    }

    /// What `reader` (member of `groups`) may see, after `since_seq`, oldest first.
    pub fn messages_for(&self, reader: &str, groups: &[String], since_seq: u64) -> Vec<&Message> {
        self.log.iter().filter(|m| m.seq > since_seq && Chat::visible_to(m, reader, groups)).collect()
    }

    /// Messages for `reader` not read yet.
    pub fn unread(&self, reader: &str, groups: &[String]) -> usize {
        let last = self.read.get(reader).copied().unwrap_or(0);
        self.log
            .iter()
            .filter(|m| m.seq > last && m.from != reader && Chat::visible_to(m, reader, groups))
            .count()
    }

    /// Marks everything up to `seq` read by `reader`.
    pub fn mark_read(&mut self, reader: &str, seq: u64) {
        let e = self.read.entry(reader.to_string()).or_insert(0);
        *e = (*e).max(seq.min(self.next_seq.saturating_sub(1)));
    }
}

/// A DID's pop-up URL (§2.27 着信/応答ポップアップ URL) with `@@@@` replaced by the caller's
/// number, percent-encoded so a number cannot change the URL's shape.
pub fn popup_url(template: &str, caller: &str) -> String {
    let mut enc = String::new();
    for b in caller.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    template.replace("@@@@", &enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_private_messages_reach_only_their_readers() {
        let mut chat = Chat::new();
        chat.post("201", Target::Everyone, "おはようございます", false, false, 1).unwrap();
        chat.post("201", Target::Group("600".into()), "#C7 をお願いします", true, false, 2).unwrap();
        chat.post("201", Target::Agent("203".into()), "内緒", false, true, 3).unwrap();
        let sales = vec!["600".to_string()];
        assert_eq!(chat.messages_for("202", &sales, 0).len(), 2);
        assert_eq!(chat.messages_for("203", &[], 0).len(), 2);
        assert_eq!(chat.unread("202", &sales), 2);
        chat.mark_read("202", 1);
        assert_eq!(chat.unread("202", &sales), 1);
        assert_eq!(chat.unread("201", &sales), 0, "own messages are read");
        let m = chat.messages_for("202", &sales, 1);
        assert_eq!(m[0].refs.len(), 1);
    }

    #[test]
    fn bad_messages_are_refused_and_the_log_is_bounded() {
        let mut chat = Chat::new();
        assert_eq!(chat.post("201", Target::Everyone, "  ", false, false, 1).unwrap_err(), ChatError::Empty);
        let long = "あ".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            chat.post("201", Target::Everyone, &long, false, false, 1).unwrap_err(),
            ChatError::TooLong
        );
        assert_eq!(
            chat.post("201", Target::Everyone, "a\u{1b}b", false, false, 1).unwrap_err(),
            ChatError::BadCharacter
        );
        for i in 0..MAX_MESSAGES + 10 {
            chat.post("201", Target::Everyone, "x", false, false, i as u64).unwrap();
        }
        assert_eq!(chat.messages_for("202", &[], 0).len(), MAX_MESSAGES);
    }

    #[test]
    fn the_popup_url_gets_the_callers_number_encoded() {
        assert_eq!(
            popup_url("https://crm.example/search?tel=@@@@", "0312345678"),
            "https://crm.example/search?tel=0312345678"
        );
        assert_eq!(popup_url("https://x/?t=@@@@", "+81 3&x=1"), "https://x/?t=%2B81%203%26x%3D1");
    }
}
