//! The caller's flow (seed 000): greeting → beep → record → `#` → review menu (`0` save, `1`
//! re-record, `2` listen, `#` finish).
//!
//! Contract (rule 2 of the style notes): create with [`CallerFlow::new`], then feed
//! [`CallerFlow::start`], [`CallerFlow::handle_digit`], [`CallerFlow::handle_playback_finished`],
//! [`CallerFlow::handle_recording_stopped`], [`CallerFlow::handle_hangup`] and
//! [`CallerFlow::handle_timeout`], each with `now`. After each call drain
//! [`CallerFlow::poll_output`] until `None` and arm one timer at [`CallerFlow::poll_timeout`].
//! [`CallerFlow::is_done`] says when the engine may drop the flow.
//!
//! Decisions where the issue is silent:
//! - a hang-up in the review menu keeps the take, like a hang-up while recording (the caller
//!   has finished speaking; losing the message would be the worse surprise);
//! - `#` in the review menu ("finish") saves, like `0`;
//! - no key in the review menu for [`REVIEW_TIMEOUT`], [`MAX_REVIEW_PROMPTS`] times, saves and
//!   hangs up;
//! - `#` during the greeting skips to the beep.

use super::mailbox::{BoxNumber, Counts, Greeting, Limits, MIN_MESSAGE_MS};
use super::{prompts, Clip};
use crate::media::prompts::{sentence_menu_option, Lang, MenuAction};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long the review menu waits for a key after its prompt ends before saying it again.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times the review menu is said with no answer before the take is saved and the call
/// ends: a caller who went silent is gone or confused, and the message is worth more than the
/// line.
pub const MAX_REVIEW_PROMPTS: u32 = 3;

/// How long the flow waits for [`CallerFlow::handle_recording_stopped`] after asking the engine
/// to stop the recorder; past it the elapsed wall time stands in for the length, so a lost
/// report cannot hang the call.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the flow asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerOutput {
    /// Play these clips in order, replacing whatever plays; report the end with
    /// [`CallerFlow::handle_playback_finished`].
    Play(Vec<Clip>),
    /// Start recording the caller into a new take (`VoicemailStore::begin_message`).
    StartRecording,
    /// Stop the recorder and report the take's length with
    /// [`CallerFlow::handle_recording_stopped`].
    StopRecording,
    /// Store the take as a message (`VoicemailStore::commit_message`), then refresh MWI.
    SaveMessage {
        /// The take's length.
        duration_ms: u64,
    },
    /// Throw the take away (`VoicemailStore::discard`).
    DiscardTake,
    /// End the call.
    HangUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The message reached the configured length.
    MaxLength,
    /// The recorder did not report its stop in time.
    StopGrace,
    /// The review menu got no key.
    ReviewInput,
}

/// What to do once the recorder reports the take's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterStop {
    /// `#`: the review menu.
    Review,
    /// The length limit: keep it, say goodbye.
    Close,
    /// The caller hung up: keep it if long enough.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    /// "Mailbox full", then hang up; nothing is recorded.
    Full,
    Greeting,
    Beep,
    Recording {
        since: Instant,
    },
    Stopping {
        since: Instant,
        then: AfterStop,
    },
    /// The review menu is playing or waiting for a key.
    Review,
    /// The caller listens to the take.
    Listening,
    /// The closing prompt, then hang up.
    Closing,
    Done,
}

/// One caller leaving a message in one box.
#[derive(Debug)]
pub struct CallerFlow {
    box_no: BoxNumber,
    greeting: Greeting,
    full: bool,
    max_length: Duration,
    lang: Lang,
    state: State,
    take_ms: u64,
    review_prompts: u32,
    timer: Option<(Timer, Instant)>,
    out: VecDeque<CallerOutput>,
}

impl CallerFlow {
    /// A flow for a box whose counts, limits and chosen greeting the engine read at call start
    /// (`VoicemailStore::counts`, [`super::mailbox::choose_greeting`]).
    pub fn new(
        box_no: BoxNumber,
        greeting: Greeting,
        counts: Counts,
        limits: Limits,
        lang: Lang,
    ) -> CallerFlow {
        CallerFlow {
            box_no,
            greeting,
            full: limits.is_full(counts),
            max_length: Duration::from_secs(u64::from(limits.max_message_secs)),
            lang,
            state: State::Created,
            take_ms: 0,
            review_prompts: 0,
            timer: None,
            out: VecDeque::new(),
        }
    }

    /// The box.
    pub fn box_no(&self) -> &BoxNumber {
        &self.box_no
    }

    /// True once the flow has nothing left to do.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<CallerOutput> {
        self.out.pop_front()
    }

    /// When to call [`CallerFlow::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(_, at)| at)
    }

    /// The call is answered: play the greeting, or "mailbox full" when the box is full.
    pub fn start(&mut self, _now: Instant) {
        if self.state != State::Created {
            return;
        }
        if self.full {
            self.state = State::Full;
            self.play(prompts(["vm.mailbox_full", "common.goodbye"]));
            return;
        }
        self.state = State::Greeting;
        let clips = match self.greeting {
            Greeting::Recorded(kind) => vec![Clip::Greeting(kind)],
            Greeting::System => prompts(["vm.person_unavailable", "vm.leave_message"]),
        };
        self.play(clips);
    }

    /// What was playing has ended.
    pub fn handle_playback_finished(&mut self, now: Instant) {
        match self.state {
            State::Full | State::Closing => self.finish_with_hangup(),
            State::Greeting => self.beep(),
            State::Beep => {
                self.state = State::Recording { since: now };
                self.out.push_back(CallerOutput::StartRecording);
                self.timer = Some((Timer::MaxLength, now + self.max_length));
            }
            State::Review => self.timer = Some((Timer::ReviewInput, now + REVIEW_TIMEOUT)),
            State::Listening => self.review_menu(),
            State::Created | State::Recording { .. } | State::Stopping { .. } | State::Done => {}
        }
    }

    /// A key from the caller (RFC 4733, INFO or in-band; the engine does not care which).
    pub fn handle_digit(&mut self, key: char, now: Instant) {
        match (self.state, key) {
            (State::Greeting, '#') => self.beep(),
            (State::Recording { since }, '#') => self.stop(since, now, AfterStop::Review),
            (State::Review | State::Listening, '0' | '#') => self.save_and_close(),
            (State::Review | State::Listening, '1') => {
                self.out.push_back(CallerOutput::DiscardTake);
                self.take_ms = 0;
                self.beep();
            }
            (State::Review | State::Listening, '2') => {
                self.timer = None;
                self.state = State::Listening;
                self.play(vec![Clip::Take]);
            }
            (State::Review | State::Listening, _) => {
                let mut clips = prompts(["common.invalid_entry"]);
                clips.extend(self.review_clips());
                self.state = State::Review;
                self.timer = None;
                self.play(clips);
            }
            // Keys while recording are part of the message; elsewhere they mean nothing.
            _ => {}
        }
    }

    /// The recorder stopped; `duration_ms` is the take's length.
    pub fn handle_recording_stopped(&mut self, duration_ms: u64, _now: Instant) {
        if let State::Recording { .. } = self.state {
            // A stop we did not ask for: the recorder failed (disk full, I/O error). Keep what
            // was said if it counts as a message, and end politely either way.
            self.timer = None;
            self.take_ms = duration_ms;
            if duration_ms >= MIN_MESSAGE_MS {
                self.save_and_close();
            } else {
                self.out.push_back(CallerOutput::DiscardTake);
                self.state = State::Closing;
                self.play(prompts(["common.sorry_error", "common.goodbye"]));
            }
            return;
        }
        let State::Stopping { then, .. } = self.state else { return };
        self.timer = None;
        self.take_ms = duration_ms;
        match then {
            AfterStop::Review => {
                self.review_prompts = 0;
                self.review_menu();
            }
            AfterStop::Close => self.save_and_close(),
            AfterStop::Gone => {
                if duration_ms >= MIN_MESSAGE_MS {
                    self.out.push_back(CallerOutput::SaveMessage { duration_ms });
                } else {
                    self.out.push_back(CallerOutput::DiscardTake);
                }
                self.state = State::Done;
            }
        }
    }

    /// The caller hung up. The engine should not send [`CallerOutput::HangUp`] afterwards, but
    /// it may still get [`CallerOutput::StopRecording`] and the save or discard.
    pub fn handle_hangup(&mut self, now: Instant) {
        match self.state {
            State::Recording { since } => self.stop(since, now, AfterStop::Gone),
            State::Stopping { since, .. } => self.state = State::Stopping { since, then: AfterStop::Gone },
            State::Review | State::Listening => {
                self.out.push_back(CallerOutput::SaveMessage { duration_ms: self.take_ms });
                self.state = State::Done;
                self.timer = None;
            }
            _ => {
                self.state = State::Done;
                self.timer = None;
            }
        }
    }

    /// Fires the timer if it is due (idempotent).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((timer, at)) = self.timer else { return };
        if now < at {
            return;
        }
        self.timer = None;
        match (timer, self.state) {
            (Timer::MaxLength, State::Recording { since }) => self.stop(since, now, AfterStop::Close),
            (Timer::StopGrace, State::Stopping { since, .. }) => {
                let elapsed = now.saturating_duration_since(since);
                let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX).min(self.max_length_ms());
                log::warn!(
                    "voicemail: box {}: the recorder never reported its stop; using {ms} ms",
                    self.box_no
                );
                self.handle_recording_stopped(ms, now);
            }
            (Timer::ReviewInput, State::Review) => {
                self.review_prompts += 1;
                if self.review_prompts >= MAX_REVIEW_PROMPTS {
                    self.save_and_close();
                } else {
                    self.review_menu();
                }
            }
            _ => {}
        }
    }

    fn max_length_ms(&self) -> u64 {
        u64::try_from(self.max_length.as_millis()).unwrap_or(u64::MAX)
    }

    fn play(&mut self, clips: Vec<Clip>) {
        self.out.push_back(CallerOutput::Play(clips));
    }

    fn beep(&mut self) {
        self.state = State::Beep;
        self.timer = None;
        self.play(prompts(["beep"]));
    }

    fn stop(&mut self, since: Instant, now: Instant, then: AfterStop) {
        self.out.push_back(CallerOutput::StopRecording);
        self.state = State::Stopping { since, then };
        self.timer = Some((Timer::StopGrace, now + STOP_GRACE));
    }

    fn review_clips(&self) -> Vec<Clip> {
        let mut ids = Vec::new();
        for (key, action) in [
            ('0', MenuAction::Save),
            ('1', MenuAction::Rerecord),
            ('2', MenuAction::Repeat),
            ('#', MenuAction::Exit),
        ] {
            ids.extend(sentence_menu_option(key, action, self.lang));
        }
        prompts(ids)
    }

    fn review_menu(&mut self) {
        self.state = State::Review;
        self.timer = None;
        let clips = self.review_clips();
        self.play(clips);
    }

    fn save_and_close(&mut self) {
        self.out.push_back(CallerOutput::SaveMessage { duration_ms: self.take_ms });
        self.state = State::Closing;
        self.timer = None;
        self.play(prompts(["vm.message_saved", "common.goodbye"]));
    }

    fn finish_with_hangup(&mut self) {
        self.out.push_back(CallerOutput::HangUp);
        self.state = State::Done;
        self.timer = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::mailbox::GreetingKind;
    use super::*;
    use CallerOutput::*;

    fn flow(counts: Counts, greeting: Greeting) -> (CallerFlow, Instant) {
        let f =
            CallerFlow::new(BoxNumber::parse("201").unwrap(), greeting, counts, Limits::default(), Lang::En);
        (f, Instant::now())
    }

    fn drain(f: &mut CallerFlow) -> Vec<CallerOutput> {
        std::iter::from_fn(|| f.poll_output()).collect()
    }

    fn is_play(o: &[CallerOutput]) -> bool {
        matches!(o, [Play(_)])
    }

    /// Runs a flow to the point where the recorder runs, at `t`.
    fn recording(greeting: Greeting) -> (CallerFlow, Instant) {
        let (mut f, t) = flow(Counts::default(), greeting);
        f.start(t);
        assert!(is_play(&drain(&mut f)));
        f.handle_playback_finished(t + Duration::from_secs(5));
        assert_eq!(drain(&mut f), [Play(vec![Clip::Prompt("beep")])]);
        let t = t + Duration::from_secs(6);
        f.handle_playback_finished(t);
        assert_eq!(drain(&mut f), [StartRecording]);
        (f, t)
    }

    fn review_menu_en() -> Vec<Clip> {
        prompts([
            "menu.to_save",
            "menu.press",
            "num.0",
            "menu.to_rerecord",
            "menu.press",
            "num.1",
            "menu.to_repeat",
            "menu.press",
            "num.2",
            "menu.to_exit",
            "menu.press",
            "key.pound",
        ])
    }

    #[test]
    fn the_caller_hears_the_greeting_then_a_beep_then_is_recorded() {
        let (mut f, t) = flow(Counts::default(), Greeting::Recorded(GreetingKind::Busy));
        f.start(t);
        assert_eq!(drain(&mut f), [Play(vec![Clip::Greeting(GreetingKind::Busy)])]);
        f.handle_playback_finished(t);
        assert_eq!(drain(&mut f), [Play(vec![Clip::Prompt("beep")])]);
        f.handle_playback_finished(t);
        assert_eq!(drain(&mut f), [StartRecording]);
        assert_eq!(f.poll_timeout(), Some(t + Duration::from_secs(300)));
    }

    #[test]
    fn without_a_recorded_greeting_the_system_prompts_play() {
        let (mut f, t) = flow(Counts::default(), Greeting::System);
        f.start(t);
        assert_eq!(drain(&mut f), [Play(prompts(["vm.person_unavailable", "vm.leave_message"]))]);
    }

    #[test]
    fn pound_skips_the_greeting() {
        let (mut f, t) = flow(Counts::default(), Greeting::System);
        f.start(t);
        drain(&mut f);
        f.handle_digit('#', t);
        assert_eq!(drain(&mut f), [Play(vec![Clip::Prompt("beep")])]);
    }

    #[test]
    fn a_full_mailbox_says_so_and_stores_nothing() {
        let (mut f, t) = flow(Counts { new: 100, old: 3, work: 0 }, Greeting::System);
        f.start(t);
        assert_eq!(drain(&mut f), [Play(prompts(["vm.mailbox_full", "common.goodbye"]))]);
        f.handle_digit('#', t);
        assert!(drain(&mut f).is_empty());
        f.handle_playback_finished(t);
        assert_eq!(drain(&mut f), [HangUp]);
        assert!(f.is_done());
    }

    #[test]
    fn pound_after_recording_opens_the_review_menu_and_zero_saves() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_digit('5', t); // part of the message
        assert!(drain(&mut f).is_empty());
        f.handle_digit('#', t + Duration::from_secs(12));
        assert_eq!(drain(&mut f), [StopRecording]);
        f.handle_recording_stopped(12_000, t + Duration::from_secs(12));
        assert_eq!(drain(&mut f), [Play(review_menu_en())]);
        f.handle_digit('0', t + Duration::from_secs(14));
        assert_eq!(
            drain(&mut f),
            [SaveMessage { duration_ms: 12_000 }, Play(prompts(["vm.message_saved", "common.goodbye"]))]
        );
        f.handle_playback_finished(t + Duration::from_secs(16));
        assert_eq!(drain(&mut f), [HangUp]);
        assert!(f.is_done() && f.poll_timeout().is_none());
    }

    #[test]
    fn one_discards_the_take_and_records_again() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_digit('#', t);
        drain(&mut f);
        f.handle_recording_stopped(4000, t);
        drain(&mut f);
        f.handle_digit('1', t);
        assert_eq!(drain(&mut f), [DiscardTake, Play(vec![Clip::Prompt("beep")])]);
        f.handle_playback_finished(t);
        assert_eq!(drain(&mut f), [StartRecording]);
    }

    #[test]
    fn two_plays_the_take_back_then_the_menu_again() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_digit('#', t);
        f.handle_recording_stopped(4000, t);
        drain(&mut f);
        f.handle_digit('2', t);
        assert_eq!(drain(&mut f), [Play(vec![Clip::Take])]);
        f.handle_playback_finished(t);
        assert_eq!(drain(&mut f), [Play(review_menu_en())]);
        f.handle_digit('#', t);
        assert_eq!(drain(&mut f)[0], SaveMessage { duration_ms: 4000 });
    }

    #[test]
    fn a_wrong_key_in_the_review_menu_is_refused_and_the_menu_repeats() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_digit('#', t);
        f.handle_recording_stopped(4000, t);
        drain(&mut f);
        f.handle_digit('7', t);
        let mut expected = prompts(["common.invalid_entry"]);
        expected.extend(review_menu_en());
        assert_eq!(drain(&mut f), [Play(expected)]);
    }

    #[test]
    fn silence_in_the_review_menu_saves_after_three_prompts() {
        let (mut f, mut t) = recording(Greeting::System);
        f.handle_digit('#', t);
        f.handle_recording_stopped(4000, t);
        drain(&mut f);
        for _ in 0..MAX_REVIEW_PROMPTS - 1 {
            f.handle_playback_finished(t);
            t = f.poll_timeout().unwrap();
            f.handle_timeout(t - Duration::from_millis(1)); // early: nothing
            assert!(drain(&mut f).is_empty());
            f.handle_timeout(t);
            assert_eq!(drain(&mut f), [Play(review_menu_en())]);
        }
        f.handle_playback_finished(t);
        f.handle_timeout(f.poll_timeout().unwrap());
        assert_eq!(drain(&mut f)[0], SaveMessage { duration_ms: 4000 });
    }

    #[test]
    fn the_length_limit_stops_the_recording_keeps_it_and_says_goodbye() {
        let (mut f, t) = recording(Greeting::System);
        let limit = f.poll_timeout().unwrap();
        assert_eq!(limit, t + Duration::from_secs(300));
        f.handle_timeout(limit);
        assert_eq!(drain(&mut f), [StopRecording]);
        f.handle_recording_stopped(300_000, limit);
        assert_eq!(
            drain(&mut f),
            [SaveMessage { duration_ms: 300_000 }, Play(prompts(["vm.message_saved", "common.goodbye"]))]
        );
        f.handle_playback_finished(limit + Duration::from_secs(2));
        assert_eq!(drain(&mut f), [HangUp]);
    }

    #[test]
    fn a_configured_length_limit_is_honoured() {
        let limits = Limits::new(100, 30).unwrap();
        let mut f = CallerFlow::new(
            BoxNumber::parse("1").unwrap(),
            Greeting::System,
            Counts::default(),
            limits,
            Lang::Ja,
        );
        let t = Instant::now();
        f.start(t);
        f.handle_playback_finished(t);
        f.handle_playback_finished(t);
        assert_eq!(f.poll_timeout(), Some(t + Duration::from_secs(30)));
    }

    #[test]
    fn hanging_up_while_recording_keeps_a_message_of_one_second() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_hangup(t + Duration::from_secs(1));
        assert_eq!(drain(&mut f), [StopRecording]);
        f.handle_recording_stopped(1000, t + Duration::from_secs(1));
        assert_eq!(drain(&mut f), [SaveMessage { duration_ms: 1000 }]);
        assert!(f.is_done());
    }

    #[test]
    fn hanging_up_while_recording_drops_a_take_under_one_second() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_hangup(t + Duration::from_millis(900));
        assert_eq!(drain(&mut f), [StopRecording]);
        f.handle_recording_stopped(999, t + Duration::from_millis(900));
        assert_eq!(drain(&mut f), [DiscardTake]);
        assert!(f.is_done());
    }

    #[test]
    fn hanging_up_while_the_recorder_stops_still_decides_by_length() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_digit('#', t + Duration::from_secs(3));
        drain(&mut f);
        f.handle_hangup(t + Duration::from_secs(3));
        f.handle_recording_stopped(3000, t + Duration::from_secs(3));
        assert_eq!(drain(&mut f), [SaveMessage { duration_ms: 3000 }]);
    }

    #[test]
    fn hanging_up_in_the_review_menu_keeps_the_take() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_digit('#', t);
        f.handle_recording_stopped(2500, t);
        drain(&mut f);
        f.handle_hangup(t);
        assert_eq!(drain(&mut f), [SaveMessage { duration_ms: 2500 }]);
        assert!(f.is_done());
    }

    #[test]
    fn hanging_up_during_the_greeting_stores_nothing() {
        let (mut f, t) = flow(Counts::default(), Greeting::System);
        f.start(t);
        drain(&mut f);
        f.handle_hangup(t);
        assert!(drain(&mut f).is_empty());
        assert!(f.is_done());
    }

    #[test]
    fn a_recorder_that_never_reports_is_timed_out_with_the_elapsed_length() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_hangup(t + Duration::from_secs(7));
        drain(&mut f);
        let grace = f.poll_timeout().unwrap();
        assert_eq!(grace, t + Duration::from_secs(7) + STOP_GRACE);
        f.handle_timeout(grace);
        assert_eq!(drain(&mut f), [SaveMessage { duration_ms: 12_000 }]);
    }

    #[test]
    fn a_recorder_failure_keeps_what_was_said_and_ends_the_call() {
        let (mut f, t) = recording(Greeting::System);
        f.handle_recording_stopped(8000, t);
        assert_eq!(
            drain(&mut f),
            [SaveMessage { duration_ms: 8000 }, Play(prompts(["vm.message_saved", "common.goodbye"]))]
        );
        let (mut f, t) = recording(Greeting::System);
        f.handle_recording_stopped(200, t);
        assert_eq!(drain(&mut f), [DiscardTake, Play(prompts(["common.sorry_error", "common.goodbye"]))]);
        f.handle_playback_finished(t);
        assert_eq!(drain(&mut f), [HangUp]);
    }

    #[test]
    fn every_prompt_the_flow_plays_exists_in_both_languages() {
        for lang in [Lang::Ja, Lang::En] {
            let f = CallerFlow::new(
                BoxNumber::parse("1").unwrap(),
                Greeting::System,
                Counts::default(),
                Limits::default(),
                lang,
            );
            let mut ids =
                vec!["vm.mailbox_full", "common.goodbye", "vm.person_unavailable", "vm.leave_message"];
            ids.extend(["beep", "vm.message_saved", "common.invalid_entry", "common.sorry_error"]);
            for clip in f.review_clips() {
                if let Clip::Prompt(id) = clip {
                    ids.push(id);
                }
            }
            for id in ids {
                assert!(crate::media::prompts::exists(id, lang), "{id} missing in {lang:?}");
            }
        }
    }
}
