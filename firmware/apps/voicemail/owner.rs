//! The owner's menu behind `*92` (seed 004 §2.18, §3 item 15), and the PIN rate limit.
//!
//! Contract (rule 2 of the style notes): the engine checks [`PinGuard::attempts_left`] for the
//! calling source, creates [`OwnerMenu::new`], then feeds [`OwnerMenu::start`],
//! [`OwnerMenu::handle_digit`], [`OwnerMenu::handle_playback_finished`],
//! [`OwnerMenu::handle_box_loaded`] (the answer to [`OwnerOutput::LoadBox`]),
//! [`OwnerMenu::handle_recording_stopped`], [`OwnerMenu::handle_hangup`] and
//! [`OwnerMenu::handle_timeout`], each with `now`; after each it drains
//! [`OwnerMenu::poll_output`] until `None` and arms one timer at [`OwnerMenu::poll_timeout`].
//! [`OwnerOutput::LoginFailed`] / [`OwnerOutput::LoginSucceeded`] go to the [`PinGuard`].
//!
//! Keys after login: `1` play, `2` folder (`0` new, `1` old, `2` work), `0` record a greeting
//! (`0` default, `1` available, `2` busy, `3` do-not-disturb, `4` after hours), `*` help, `#`
//! exit. While a message plays or after it: `4` previous, `5` repeat, `6` next, `7` delete,
//! `9` save to work, `*` help, `#` exit. Each message starts with its date, time and caller.
//!
//! Security: the box is loaded only after box number and PIN are both entered, and an unknown
//! box fails exactly like a wrong PIN, so the menu does not tell which boxes exist. A box with
//! an empty PIN cannot be opened by phone.

use super::mailbox::{
    BoxNumber, Counts, DateTime, Folder, GreetingKind, MessageId, MessageMeta, MIN_MESSAGE_MS,
};
use super::{prompts, Clip};
use crate::apps::timerules::UtcOffset;
use crate::media::prompts::{
    count, date, digits, sentence_menu_option, sentence_you_have_messages, sentence_you_have_n_messages,
    time, Counter, Lang, MenuAction,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Wrong PINs per call before the call ends (issue 5: three).
pub const MAX_PIN_ATTEMPTS_PER_CALL: u32 = 3;

/// Window over which a source's wrong PINs are counted.
pub const PIN_FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Wrong PINs from one source within [`PIN_FAILURE_WINDOW`] before it is locked out: three
/// calls' worth of typos is generous for a person and makes a 4-digit PIN take weeks to guess.
pub const MAX_PIN_FAILURES_PER_WINDOW: u32 = 9;

/// How long a locked-out source stays locked.
pub const PIN_LOCKOUT: Duration = Duration::from_secs(30 * 60);

/// Sources the guard remembers; beyond it the entry seen longest ago is forgotten (bounded RAM
/// under a flood from many addresses; a forgotten locked source is logged).
pub const MAX_PIN_SOURCES: usize = 256;

/// Longest PIN, in digits; longer entries are wrong PINs, not buffer growth.
pub const MAX_PIN_DIGITS: usize = 20;

/// How long entry prompts and menus wait for a key after they finish.
pub const INPUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Prompts said with no key before the menu says goodbye (an abandoned phone off-hook).
pub const MAX_SILENT_PROMPTS: u32 = 3;

/// Longest greeting recorded by phone (seconds): a greeting is an announcement, not a message.
pub const MAX_GREETING_SECS: u64 = 120;

/// How long the menu waits for [`OwnerMenu::handle_recording_stopped`] before it gives up on
/// the take (the recorder's report was lost).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// The PIN guard.

#[derive(Debug, Clone)]
struct SourceEntry {
    source: String,
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
    last_seen: Instant,
}

/// Wrong-PIN counts per source (an extension number or a remote address; the engine may also
/// count per box to slow guessing spread over many sources). Bounded by [`MAX_PIN_SOURCES`].
#[derive(Debug, Default)]
pub struct PinGuard {
    entries: Vec<SourceEntry>,
}

impl PinGuard {
    /// An empty guard.
    pub fn new() -> PinGuard {
        PinGuard::default()
    }

    /// How many PIN attempts a new call from `source` gets: [`MAX_PIN_ATTEMPTS_PER_CALL`], less
    /// when the source is near its window limit, 0 while it is locked out.
    pub fn attempts_left(&self, source: &str, now: Instant) -> u32 {
        let Some(e) = self.entries.iter().find(|e| e.source == source) else {
            return MAX_PIN_ATTEMPTS_PER_CALL;
        };
        if e.locked_until.is_some_and(|until| now < until) {
            return 0;
        }
        if now.saturating_duration_since(e.window_start) >= PIN_FAILURE_WINDOW || e.locked_until.is_some() {
            return MAX_PIN_ATTEMPTS_PER_CALL;
        }
        MAX_PIN_FAILURES_PER_WINDOW.saturating_sub(e.failures).min(MAX_PIN_ATTEMPTS_PER_CALL)
    }

    /// Counts a wrong PIN from `source` for `box_no` (logged; a lockout is logged as an alarm).
    pub fn record_failure(&mut self, source: &str, box_no: Option<&BoxNumber>, now: Instant) {
        let at = match self.entries.iter().position(|e| e.source == source) {
            Some(at) => at,
            None => {
                if self.entries.len() >= MAX_PIN_SOURCES {
                    if let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_seen) {
                        let gone = self.entries.swap_remove(oldest);
                        log::warn!("voicemail: PIN guard full, forgetting source {}", gone.source);
                    }
                }
                self.entries.push(SourceEntry {
                    source: source.to_string(),
                    failures: 0,
                    window_start: now,
                    locked_until: None,
                    last_seen: now,
                });
                self.entries.len() - 1
            }
        };
        let Some(e) = self.entries.get_mut(at) else { return };
        let lock_over = e.locked_until.is_some_and(|until| now >= until);
        if lock_over || now.saturating_duration_since(e.window_start) >= PIN_FAILURE_WINDOW {
            e.failures = 0;
            e.window_start = now;
            e.locked_until = None;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_seen = now;
        let box_text = box_no.map_or_else(|| "?".to_string(), ToString::to_string);
        log::warn!("voicemail: wrong PIN for box {box_text} from {source} ({} in window)", e.failures);
        if e.failures >= MAX_PIN_FAILURES_PER_WINDOW && e.locked_until.is_none() {
            e.locked_until = Some(now + PIN_LOCKOUT);
            log::warn!(
                "alarm: voicemail PIN lockout of {source} for {} s after {} wrong PINs",
                PIN_LOCKOUT.as_secs(),
                e.failures
            );
        }
    }

    /// A correct PIN from `source`: its count is cleared.
    pub fn record_success(&mut self, source: &str) {
        self.entries.retain(|e| e.source != source);
    }
}

/// Compares PINs in time independent of where they differ.
fn pin_matches(expected: &str, entered: &str) -> bool {
    if expected.is_empty() || expected.len() != entered.len() {
        return false;
    }
    expected.bytes().zip(entered.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

// ---------------------------------------------------------------------------------------------
// The menu.

/// What the engine loads for [`OwnerOutput::LoadBox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxSnapshot {
    /// The box's PIN from the configuration (empty: phone access disabled).
    pub pin: String,
    /// Its messages (`VoicemailStore::messages`), any order.
    pub messages: Vec<MessageMeta>,
}

/// What the menu asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerOutput {
    /// Play these clips in order, replacing whatever plays; report the end with
    /// [`OwnerMenu::handle_playback_finished`].
    Play(Vec<Clip>),
    /// Load this box's PIN and messages and answer with [`OwnerMenu::handle_box_loaded`]
    /// (`None` when there is no such box).
    LoadBox(BoxNumber),
    /// A wrong PIN (or an unknown box): feed [`PinGuard::record_failure`].
    LoginFailed {
        /// The box asked for.
        box_no: BoxNumber,
    },
    /// The owner is in: feed [`PinGuard::record_success`].
    LoginSucceeded {
        /// The box.
        box_no: BoxNumber,
    },
    /// Move a message (`VoicemailStore::set_folder`), then refresh MWI.
    SetFolder {
        /// The message.
        id: MessageId,
        /// Where to.
        folder: Folder,
    },
    /// Delete a message (`VoicemailStore::delete`), then refresh MWI.
    Delete {
        /// The message.
        id: MessageId,
    },
    /// Start recording a greeting take (`VoicemailStore::begin_greeting`).
    StartRecording {
        /// The slot it is for.
        kind: GreetingKind,
    },
    /// Stop the recorder and report with [`OwnerMenu::handle_recording_stopped`].
    StopRecording,
    /// Keep the greeting take (`VoicemailStore::commit_greeting`).
    SaveGreeting {
        /// The slot.
        kind: GreetingKind,
    },
    /// Drop the greeting take (`VoicemailStore::discard_greeting`).
    DiscardTake,
    /// End the call.
    HangUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// No key after a prompt.
    Input,
    /// The greeting reached its length limit.
    MaxLength,
    /// The recorder did not report its stop.
    StopGrace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Created,
    EnterBox,
    EnterPin,
    /// Waiting for [`OwnerMenu::handle_box_loaded`].
    Loading,
    /// "Login incorrect", then the entry starts over.
    Rejected,
    /// The main menu (announcement or options playing, or waiting for a key).
    Main,
    /// After `2`: which folder.
    ChooseFolder,
    /// After `0`: which greeting slot.
    ChooseGreeting,
    /// Message `at` of the list plays (header and audio).
    Playing {
        at: usize,
    },
    /// The options after message `at` play or wait for a key.
    Options {
        at: usize,
    },
    GreetingBeep {
        kind: GreetingKind,
    },
    GreetingRecording {
        kind: GreetingKind,
    },
    GreetingStopping {
        kind: GreetingKind,
    },
    /// Goodbye, then hang up.
    Closing,
    Done,
}

/// One owner call in the voicemail menu.
#[derive(Debug)]
pub struct OwnerMenu {
    /// The box given by the dialled code or the caller's own box; `None` asks for it.
    given_box: Option<BoxNumber>,
    box_no: Option<BoxNumber>,
    /// Set once the PIN matched.
    logged_in: bool,
    attempts_left: u32,
    lang: Lang,
    offset: UtcOffset,
    state: State,
    entry: String,
    entry_overflow: bool,
    silent_prompts: u32,
    /// Every message of the box, kept in step with the outputs.
    messages: Vec<MessageMeta>,
    folder: Folder,
    /// The ids of the folder being browsed, oldest first (a snapshot taken when it is chosen).
    list: Vec<MessageId>,
    timer: Option<(Timer, Instant)>,
    out: VecDeque<OwnerOutput>,
}

impl OwnerMenu {
    /// A menu for `box_no` (`*92` from a phone with a box, or `*92<box>`), or one that asks for
    /// the box (`*92` from a phone without one). `attempts` comes from
    /// [`PinGuard::attempts_left`]; 0 ends the call at once.
    pub fn new(box_no: Option<BoxNumber>, attempts: u32, lang: Lang, offset: UtcOffset) -> OwnerMenu {
        OwnerMenu {
            given_box: box_no,
            box_no: None,
            logged_in: false,
            attempts_left: attempts.min(MAX_PIN_ATTEMPTS_PER_CALL),
            lang,
            offset,
            state: State::Created,
            entry: String::new(),
            entry_overflow: false,
            silent_prompts: 0,
            messages: Vec::new(),
            folder: Folder::New,
            list: Vec::new(),
            timer: None,
            out: VecDeque::new(),
        }
    }

    /// The box once logged in.
    pub fn logged_in_box(&self) -> Option<&BoxNumber> {
        self.box_no.as_ref().filter(|_| self.logged_in)
    }

    /// The box being logged in to (given, or entered), before or after the PIN check: the one
    /// [`OwnerOutput::LoadBox`] named.
    pub fn asked_box(&self) -> Option<&BoxNumber> {
        self.box_no.as_ref()
    }

    /// True once the menu has nothing left to do.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<OwnerOutput> {
        self.out.pop_front()
    }

    /// When to call [`OwnerMenu::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(_, at)| at)
    }

    /// The call is answered.
    pub fn start(&mut self, _now: Instant) {
        if self.state != State::Created {
            return;
        }
        if self.attempts_left == 0 {
            self.close(prompts(["vm.login_incorrect", "common.goodbye"]));
            return;
        }
        self.begin_entry();
    }

    /// What was playing has ended.
    pub fn handle_playback_finished(&mut self, now: Instant) {
        match self.state.clone() {
            State::Closing => {
                self.out.push_back(OwnerOutput::HangUp);
                self.state = State::Done;
                self.timer = None;
            }
            State::Rejected => self.begin_entry(),
            State::GreetingBeep { kind } => {
                self.state = State::GreetingRecording { kind };
                self.out.push_back(OwnerOutput::StartRecording { kind });
                self.timer = Some((Timer::MaxLength, now + Duration::from_secs(MAX_GREETING_SECS)));
            }
            State::Playing { at } => {
                self.state = State::Options { at };
                let clips = self.options_clips(at);
                self.play(clips);
                self.timer = None;
            }
            State::EnterBox
            | State::EnterPin
            | State::Main
            | State::ChooseFolder
            | State::ChooseGreeting
            | State::Options { .. } => self.timer = Some((Timer::Input, now + INPUT_TIMEOUT)),
            State::Created
            | State::Loading
            | State::GreetingRecording { .. }
            | State::GreetingStopping { .. }
            | State::Done => {}
        }
    }

    /// A key from the owner.
    pub fn handle_digit(&mut self, key: char, now: Instant) {
        if !matches!(self.state, State::GreetingRecording { .. } | State::Loading) {
            self.silent_prompts = 0;
        }
        match self.state.clone() {
            State::EnterBox | State::EnterPin => self.entry_key(key, now),
            State::Main => self.main_key(key),
            State::ChooseFolder => match Folder::from_key(key) {
                Some(folder) => self.choose_folder(folder),
                None => self.invalid_then_main(),
            },
            State::ChooseGreeting => match GreetingKind::from_key(key) {
                Some(kind) => {
                    self.state = State::GreetingBeep { kind };
                    self.timer = None;
                    self.play(prompts(["vm.greeting_after_tone", "beep"]));
                }
                None => self.invalid_then_main(),
            },
            State::Playing { at } | State::Options { at } => self.message_key(at, key),
            State::GreetingRecording { kind } if key == '#' => self.stop_greeting(kind, now),
            _ => {}
        }
    }

    /// The answer to [`OwnerOutput::LoadBox`].
    pub fn handle_box_loaded(&mut self, snapshot: Option<BoxSnapshot>, _now: Instant) {
        if self.state != State::Loading {
            return;
        }
        let Some(box_no) = self.box_no.clone() else { return };
        let pin = std::mem::take(&mut self.entry);
        let ok = !self.entry_overflow && snapshot.as_ref().is_some_and(|s| pin_matches(&s.pin, &pin));
        self.entry_overflow = false;
        match snapshot {
            Some(s) if ok => {
                self.out.push_back(OwnerOutput::LoginSucceeded { box_no });
                self.logged_in = true;
                self.messages = s.messages;
                self.messages.sort_by_key(|m| (m.received_unix_ms, m.id));
                self.folder = Folder::New;
                self.state = State::Main;
                let c = self.counts();
                let mut ids = sentence_you_have_messages(c.new, c.heard(), self.lang);
                ids.extend(self.main_menu_ids());
                self.play(prompts(ids));
            }
            _ => {
                self.out.push_back(OwnerOutput::LoginFailed { box_no });
                self.attempts_left = self.attempts_left.saturating_sub(1);
                if self.attempts_left == 0 {
                    self.close(prompts(["vm.login_incorrect", "common.goodbye"]));
                } else {
                    self.state = State::Rejected;
                    self.play(prompts(["vm.login_incorrect"]));
                }
            }
        }
    }

    /// The greeting recorder stopped; `duration_ms` is the take's length.
    pub fn handle_recording_stopped(&mut self, duration_ms: u64, _now: Instant) {
        // A stop we did not ask for (the recorder failed) ends the take the same way.
        let (State::GreetingStopping { kind } | State::GreetingRecording { kind }) = self.state else {
            return;
        };
        self.timer = None;
        if duration_ms >= MIN_MESSAGE_MS {
            self.out.push_back(OwnerOutput::SaveGreeting { kind });
            self.back_to_main(prompts(["vm.greeting_saved"]));
        } else {
            self.out.push_back(OwnerOutput::DiscardTake);
            self.back_to_main(prompts(["common.invalid_entry"]));
        }
    }

    /// The owner hung up. A greeting being recorded is dropped: half a greeting must not replace
    /// a whole one.
    pub fn handle_hangup(&mut self, _now: Instant) {
        match self.state {
            State::GreetingRecording { .. } => {
                self.out.push_back(OwnerOutput::StopRecording);
                self.out.push_back(OwnerOutput::DiscardTake);
            }
            State::GreetingStopping { .. } => self.out.push_back(OwnerOutput::DiscardTake),
            _ => {}
        }
        self.state = State::Done;
        self.timer = None;
    }

    /// Fires the timer if it is due (idempotent).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((timer, at)) = self.timer else { return };
        if now < at {
            return;
        }
        self.timer = None;
        match (timer, self.state.clone()) {
            (Timer::MaxLength, State::GreetingRecording { kind }) => self.stop_greeting(kind, now),
            (Timer::StopGrace, State::GreetingStopping { .. }) => {
                log::warn!("voicemail: the greeting recorder never reported its stop; take dropped");
                self.out.push_back(OwnerOutput::DiscardTake);
                self.back_to_main(prompts(["common.sorry_error"]));
            }
            (Timer::Input, state) => {
                self.silent_prompts += 1;
                if self.silent_prompts >= MAX_SILENT_PROMPTS {
                    self.close(prompts(["common.goodbye"]));
                    return;
                }
                match state {
                    State::EnterBox | State::EnterPin => self.begin_entry_step(),
                    State::Options { at } => {
                        let clips = self.options_clips(at);
                        self.play(clips);
                    }
                    State::Main | State::ChooseFolder | State::ChooseGreeting => {
                        self.back_to_main(Vec::new())
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    // -- entry of box and PIN --

    fn begin_entry(&mut self) {
        self.box_no = self.given_box.clone();
        self.state = if self.box_no.is_some() { State::EnterPin } else { State::EnterBox };
        self.begin_entry_step();
    }

    fn begin_entry_step(&mut self) {
        self.entry.clear();
        self.entry_overflow = false;
        self.timer = None;
        let id = if self.state == State::EnterBox { "vm.enter_mailbox" } else { "vm.enter_password" };
        self.play(prompts([id]));
    }

    fn entry_key(&mut self, key: char, now: Instant) {
        self.timer = Some((Timer::Input, now + INPUT_TIMEOUT));
        if key.is_ascii_digit() {
            let max =
                if self.state == State::EnterBox { super::mailbox::MAX_BOX_DIGITS } else { MAX_PIN_DIGITS };
            if self.entry.len() < max {
                self.entry.push(key);
            } else {
                self.entry_overflow = true;
            }
            return;
        }
        if key != '#' {
            return;
        }
        self.timer = None;
        if self.state == State::EnterBox {
            match BoxNumber::parse(&self.entry).filter(|_| !self.entry_overflow) {
                Some(b) => {
                    self.box_no = Some(b);
                    self.state = State::EnterPin;
                    self.begin_entry_step();
                }
                None => {
                    self.entry.clear();
                    self.entry_overflow = false;
                    self.play(prompts(["common.invalid_entry", "vm.enter_mailbox"]));
                }
            }
            return;
        }
        let Some(box_no) = self.box_no.clone() else { return };
        // The PIN stays in `entry` until the box arrives.
        self.state = State::Loading;
        self.out.push_back(OwnerOutput::LoadBox(box_no));
    }

    // -- the main menu --

    fn counts(&self) -> Counts {
        Counts::of(&self.messages)
    }

    fn main_menu_ids(&self) -> Vec<&'static str> {
        let mut ids = Vec::new();
        for (key, action) in
            [('1', MenuAction::Listen), ('0', MenuAction::RecordGreeting), ('#', MenuAction::Exit)]
        {
            ids.extend(sentence_menu_option(key, action, self.lang));
        }
        ids
    }

    fn back_to_main(&mut self, mut clips: Vec<Clip>) {
        self.state = State::Main;
        self.timer = None;
        clips.extend(prompts(self.main_menu_ids()));
        self.play(clips);
    }

    fn invalid_then_main(&mut self) {
        self.back_to_main(prompts(["common.invalid_entry"]));
    }

    fn main_key(&mut self, key: char) {
        self.timer = None;
        match key {
            '1' => {
                self.take_list();
                if self.list.is_empty() && self.folder == Folder::New {
                    // Nothing new: play the old ones rather than nothing.
                    self.folder = Folder::Old;
                    self.take_list();
                }
                if self.list.is_empty() {
                    self.back_to_main(prompts(["vm.no_messages"]));
                } else {
                    self.play_message(0, Vec::new());
                }
            }
            '2' => {
                // No spoken folder menu yet (docs/voicemail.md): the keys are the prompt.
                self.state = State::ChooseFolder;
            }
            '0' => self.state = State::ChooseGreeting,
            '*' => self.back_to_main(Vec::new()),
            '#' => self.close(prompts(["common.goodbye"])),
            _ => self.invalid_then_main(),
        }
    }

    fn take_list(&mut self) {
        let folder = self.folder;
        self.list = self.messages.iter().filter(|m| m.folder == folder).map(|m| m.id).collect();
    }

    fn choose_folder(&mut self, folder: Folder) {
        self.folder = folder;
        self.take_list();
        let n = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        let ids = match folder {
            Folder::New => sentence_you_have_n_messages(n, self.lang),
            Folder::Old => sentence_you_have_messages(0, n, self.lang),
            Folder::Work if n == 0 => vec!["vm.no_messages"],
            Folder::Work => count(n, Counter::Messages, self.lang),
        };
        self.back_to_main(prompts(ids));
    }

    // -- messages --

    fn message(&self, id: MessageId) -> Option<&MessageMeta> {
        self.messages.iter().find(|m| m.id == id)
    }

    /// Plays message `at` of the list after `lead` (a confirmation of the last action).
    fn play_message(&mut self, at: usize, mut lead: Vec<Clip>) {
        self.timer = None;
        let Some(meta) = self.list.get(at).and_then(|id| self.message(*id)).cloned() else {
            lead.extend(prompts(["vm.no_more_messages"]));
            self.back_to_main(lead);
            return;
        };
        let dt = DateTime::from_unix_ms(meta.received_unix_ms, self.offset);
        let mut ids = vec!["vm.received"];
        ids.extend(date(dt.year, dt.month, dt.day, self.lang));
        ids.extend(time(dt.hour, dt.minute, self.lang));
        ids.extend(digits(&meta.caller, self.lang));
        lead.extend(prompts(ids));
        lead.push(Clip::Message(meta.id));
        self.state = State::Playing { at };
        self.play(lead);
        if meta.folder == Folder::New {
            self.set_folder(meta.id, Folder::Old);
        }
    }

    fn set_folder(&mut self, id: MessageId, folder: Folder) {
        if let Some(m) = self.messages.iter_mut().find(|m| m.id == id) {
            m.folder = folder;
            self.out.push_back(OwnerOutput::SetFolder { id, folder });
        }
    }

    fn options_clips(&self, at: usize) -> Vec<Clip> {
        let mut options = vec![('5', MenuAction::Repeat), ('6', MenuAction::Next)];
        if at > 0 {
            options.push(('4', MenuAction::Previous));
        }
        options.extend([('7', MenuAction::Delete), ('9', MenuAction::Save), ('#', MenuAction::Exit)]);
        let mut ids = Vec::new();
        for (key, action) in options {
            ids.extend(sentence_menu_option(key, action, self.lang));
        }
        prompts(ids)
    }

    fn message_key(&mut self, at: usize, key: char) {
        self.timer = None;
        match key {
            '4' if at == 0 => self.play_message(0, prompts(["vm.first_message"])),
            '4' => self.play_message(at - 1, Vec::new()),
            '5' => self.play_message(at, Vec::new()),
            '6' => self.play_message(at + 1, Vec::new()),
            '7' => {
                let Some(id) = self.list.get(at).copied() else { return self.back_to_main(Vec::new()) };
                self.out.push_back(OwnerOutput::Delete { id });
                self.messages.retain(|m| m.id != id);
                self.list.remove(at);
                self.play_message(at, prompts(["vm.message_deleted"]));
            }
            '9' => {
                let Some(id) = self.list.get(at).copied() else { return self.back_to_main(Vec::new()) };
                if self.folder == Folder::Work {
                    self.play_message(at + 1, prompts(["vm.message_saved"]));
                    return;
                }
                self.set_folder(id, Folder::Work);
                self.list.remove(at);
                self.play_message(at, prompts(["vm.message_saved"]));
            }
            '*' => {
                self.state = State::Options { at };
                let clips = self.options_clips(at);
                self.play(clips);
            }
            '#' => self.close(prompts(["common.goodbye"])),
            _ => {
                self.state = State::Options { at };
                let mut clips = prompts(["common.invalid_entry"]);
                clips.extend(self.options_clips(at));
                self.play(clips);
            }
        }
    }

    // -- greetings --

    fn stop_greeting(&mut self, kind: GreetingKind, now: Instant) {
        self.out.push_back(OwnerOutput::StopRecording);
        self.state = State::GreetingStopping { kind };
        self.timer = Some((Timer::StopGrace, now + STOP_GRACE));
    }

    // -- helpers --

    fn play(&mut self, clips: Vec<Clip>) {
        self.out.push_back(OwnerOutput::Play(clips));
    }

    fn close(&mut self, clips: Vec<Clip>) {
        self.state = State::Closing;
        self.timer = None;
        self.play(clips);
    }
}

#[cfg(test)]
mod tests;
