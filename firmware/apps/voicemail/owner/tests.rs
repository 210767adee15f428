//! Owner menu tests on a virtual clock, grouped by state.

use super::*;
use OwnerOutput::*;

const T0_MS: u64 = 1_795_305_600_000; // 2026-11-22 00:00 UTC = 09:00 JST

fn b(s: &str) -> BoxNumber {
    BoxNumber::parse(s).unwrap()
}

fn msg(id: u64, folder: Folder, caller: &str, minutes: u64) -> MessageMeta {
    MessageMeta {
        id: MessageId(id),
        box_no: b("201"),
        caller: caller.to_string(),
        caller_name: String::new(),
        received_unix_ms: T0_MS + minutes * 60_000,
        duration_ms: 5000,
        folder,
        file: format!("vmail_{caller}_201_x{id}.wav"),
    }
}

fn snapshot() -> BoxSnapshot {
    BoxSnapshot {
        pin: "1234".into(),
        messages: vec![
            msg(3, Folder::New, "0312345678", 30),
            msg(1, Folder::New, "202", 15),
            msg(2, Folder::Old, "203", 5),
        ],
    }
}

fn drain(m: &mut OwnerMenu) -> Vec<OwnerOutput> {
    std::iter::from_fn(|| m.poll_output()).collect()
}

fn keys(m: &mut OwnerMenu, ks: &str, now: Instant) -> Vec<OwnerOutput> {
    let mut out = Vec::new();
    for k in ks.chars() {
        m.handle_digit(k, now);
        out.extend(drain(m));
    }
    out
}

fn played(out: &[OwnerOutput]) -> Vec<Clip> {
    let mut clips = Vec::new();
    for o in out {
        if let Play(c) = o {
            clips.extend(c.iter().copied());
        }
    }
    clips
}

fn has_prompt(out: &[OwnerOutput], id: &'static str) -> bool {
    played(out).contains(&Clip::Prompt(id))
}

/// A menu on box 201 logged in with the standard snapshot, outputs drained.
fn logged_in() -> (OwnerMenu, Instant) {
    let t = Instant::now();
    let mut m = OwnerMenu::new(Some(b("201")), MAX_PIN_ATTEMPTS_PER_CALL, Lang::En, UtcOffset::JST);
    m.start(t);
    assert_eq!(drain(&mut m), [Play(prompts(["vm.enter_password"]))]);
    assert_eq!(keys(&mut m, "1234#", t), [LoadBox(b("201"))]);
    m.handle_box_loaded(Some(snapshot()), t);
    let out = drain(&mut m);
    assert_eq!(out[0], LoginSucceeded { box_no: b("201") });
    (m, t)
}

// Tests for login.

#[test]
fn the_own_box_asks_only_for_the_pin_and_announces_new_and_old_counts() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(Some(b("201")), 3, Lang::En, UtcOffset::JST);
    m.start(t);
    drain(&mut m);
    keys(&mut m, "1234#", t);
    m.handle_box_loaded(Some(snapshot()), t);
    let out = drain(&mut m);
    let expected: Vec<Clip> = prompts(
        ["vm.you_have", "num.2", "vm.new_messages", "vm.you_have", "num.1", "vm.saved_message"]
            .into_iter()
            .chain([
                "menu.to_listen",
                "menu.press",
                "num.1",
                "menu.to_record_greeting",
                "menu.press",
                "num.0",
            ])
            .chain(["menu.to_exit", "menu.press", "key.pound"]),
    );
    assert_eq!(out, [LoginSucceeded { box_no: b("201") }, Play(expected)]);
    assert_eq!(m.logged_in_box(), Some(&b("201")));
}

#[test]
fn a_phone_without_a_box_is_asked_for_the_box_then_the_pin() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(None, 3, Lang::Ja, UtcOffset::JST);
    m.start(t);
    assert_eq!(drain(&mut m), [Play(prompts(["vm.enter_mailbox"]))]);
    assert_eq!(keys(&mut m, "804#", t), [Play(prompts(["vm.enter_password"]))]);
    assert_eq!(keys(&mut m, "99#", t), [LoadBox(b("804"))]);
}

#[test]
fn three_wrong_pins_end_the_call() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(Some(b("201")), 3, Lang::En, UtcOffset::JST);
    m.start(t);
    drain(&mut m);
    for attempt in 1..=3 {
        keys(&mut m, "0000#", t);
        m.handle_box_loaded(Some(snapshot()), t);
        let out = drain(&mut m);
        assert_eq!(out[0], LoginFailed { box_no: b("201") });
        if attempt < 3 {
            assert_eq!(out[1], Play(prompts(["vm.login_incorrect"])));
            m.handle_playback_finished(t);
            assert_eq!(drain(&mut m), [Play(prompts(["vm.enter_password"]))]);
        } else {
            assert_eq!(out[1], Play(prompts(["vm.login_incorrect", "common.goodbye"])));
        }
    }
    m.handle_playback_finished(t);
    assert_eq!(drain(&mut m), [HangUp]);
    assert!(m.is_done() && m.logged_in_box().is_none());
}

#[test]
fn a_bad_box_number_is_refused_and_the_next_one_is_taken() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(None, 3, Lang::En, UtcOffset::JST);
    m.start(t);
    drain(&mut m);
    let long = "1".repeat(MAX_PIN_DIGITS) + "#";
    assert_eq!(keys(&mut m, &long, t), [Play(prompts(["common.invalid_entry", "vm.enter_mailbox"]))]);
    assert_eq!(keys(&mut m, "#", t), [Play(prompts(["common.invalid_entry", "vm.enter_mailbox"]))]);
    assert_eq!(keys(&mut m, "201#", t), [Play(prompts(["vm.enter_password"]))]);
}

#[test]
fn an_unknown_box_fails_like_a_wrong_pin() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(None, 3, Lang::En, UtcOffset::JST);
    m.start(t);
    keys(&mut m, "999#1234#", t);
    drain(&mut m);
    m.handle_box_loaded(None, t);
    assert_eq!(drain(&mut m), [LoginFailed { box_no: b("999") }, Play(prompts(["vm.login_incorrect"]))]);
    m.handle_playback_finished(t);
    assert_eq!(drain(&mut m), [Play(prompts(["vm.enter_mailbox"]))]);
}

#[test]
fn an_empty_configured_pin_never_opens_the_box() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(Some(b("201")), 3, Lang::En, UtcOffset::JST);
    m.start(t);
    keys(&mut m, "#", t);
    drain(&mut m);
    m.handle_box_loaded(Some(BoxSnapshot { pin: String::new(), messages: vec![] }), t);
    assert_eq!(drain(&mut m)[0], LoginFailed { box_no: b("201") });
}

#[test]
fn an_overlong_pin_is_wrong_even_if_it_starts_right() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(Some(b("201")), 3, Lang::En, UtcOffset::JST);
    m.start(t);
    let long = "1".repeat(MAX_PIN_DIGITS + 5) + "#";
    keys(&mut m, &long, t);
    m.handle_box_loaded(Some(BoxSnapshot { pin: "1".repeat(MAX_PIN_DIGITS), messages: vec![] }), t);
    assert_eq!(drain(&mut m)[0], LoginFailed { box_no: b("201") });
}

#[test]
fn a_locked_out_source_is_refused_before_any_pin() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(Some(b("201")), 0, Lang::En, UtcOffset::JST);
    m.start(t);
    assert_eq!(drain(&mut m), [Play(prompts(["vm.login_incorrect", "common.goodbye"]))]);
    m.handle_playback_finished(t);
    assert_eq!(drain(&mut m), [HangUp]);
}

#[test]
fn silence_at_the_pin_prompt_ends_the_call_after_three_prompts() {
    let t = Instant::now();
    let mut m = OwnerMenu::new(Some(b("201")), 3, Lang::En, UtcOffset::JST);
    m.start(t);
    drain(&mut m);
    let mut now = t;
    for _ in 0..MAX_SILENT_PROMPTS - 1 {
        m.handle_playback_finished(now);
        now = m.poll_timeout().unwrap();
        m.handle_timeout(now);
        assert_eq!(drain(&mut m), [Play(prompts(["vm.enter_password"]))]);
    }
    m.handle_playback_finished(now);
    m.handle_timeout(m.poll_timeout().unwrap());
    assert_eq!(drain(&mut m), [Play(prompts(["common.goodbye"]))]);
}

// Tests for the PIN guard.

#[test]
fn the_guard_locks_a_source_after_nine_failures_and_unlocks_it_later() {
    let t = Instant::now();
    let mut g = PinGuard::new();
    assert_eq!(g.attempts_left("201", t), 3);
    for i in 0..MAX_PIN_FAILURES_PER_WINDOW {
        g.record_failure("201", Some(&b("804")), t + Duration::from_secs(u64::from(i)));
    }
    let after = t + Duration::from_secs(60);
    assert_eq!(g.attempts_left("201", after), 0);
    assert_eq!(g.attempts_left("202", after), 3);
    assert_eq!(g.attempts_left("201", t + Duration::from_secs(8) + PIN_LOCKOUT), 3);
}

#[test]
fn the_guard_gives_fewer_attempts_near_the_limit() {
    let t = Instant::now();
    let mut g = PinGuard::new();
    for _ in 0..MAX_PIN_FAILURES_PER_WINDOW - 1 {
        g.record_failure("10.0.0.9", None, t);
    }
    assert_eq!(g.attempts_left("10.0.0.9", t), 1);
    // The window slides: an old burst is forgotten.
    assert_eq!(g.attempts_left("10.0.0.9", t + PIN_FAILURE_WINDOW), 3);
    g.record_success("10.0.0.9");
    assert_eq!(g.attempts_left("10.0.0.9", t), 3);
}

#[test]
fn the_guard_table_is_bounded() {
    let t = Instant::now();
    let mut g = PinGuard::new();
    for i in 0..MAX_PIN_SOURCES + 50 {
        g.record_failure(&format!("src{i}"), None, t + Duration::from_millis(i as u64));
    }
    assert_eq!(g.entries.len(), MAX_PIN_SOURCES);
    // The most recent sources are kept.
    assert!(g.entries.iter().any(|e| e.source == format!("src{}", MAX_PIN_SOURCES + 49)));
}

#[test]
fn pins_compare_whole_and_exact() {
    assert!(pin_matches("1234", "1234"));
    assert!(!pin_matches("1234", "123"));
    assert!(!pin_matches("1234", "12345"));
    assert!(!pin_matches("", ""));
}

// Tests for playing messages.

#[test]
fn one_plays_new_messages_oldest_first_with_date_time_and_caller_and_marks_them_old() {
    let (mut m, t) = logged_in();
    let out = keys(&mut m, "1", t);
    // Message 1 (from 202 at 09:15 JST) comes before message 3 (09:30).
    let mut ids = vec!["vm.received", "month.11", "day.22", "num.20", "num.20", "num.6"];
    ids.extend(["num.9", "num.15", "time.am", "num.2", "num.0", "num.2"]);
    let mut expected = prompts(ids);
    expected.push(Clip::Message(MessageId(1)));
    assert_eq!(out, [Play(expected), SetFolder { id: MessageId(1), folder: Folder::Old }]);
    m.handle_playback_finished(t);
    let opts = played(&drain(&mut m));
    assert!(
        opts.contains(&Clip::Prompt("menu.to_repeat")) && !opts.contains(&Clip::Prompt("menu.to_previous"))
    );
    let out = keys(&mut m, "6", t);
    assert!(played(&out).contains(&Clip::Message(MessageId(3))));
    m.handle_playback_finished(t);
    assert!(played(&drain(&mut m)).contains(&Clip::Prompt("menu.to_previous")));
}

#[test]
fn five_repeats_and_four_goes_back_and_the_first_message_says_so() {
    let (mut m, t) = logged_in();
    keys(&mut m, "1", t);
    let out = keys(&mut m, "5", t);
    assert!(played(&out).contains(&Clip::Message(MessageId(1))));
    let out = keys(&mut m, "4", t);
    assert_eq!(played(&out)[0], Clip::Prompt("vm.first_message"));
    keys(&mut m, "6", t);
    let out = keys(&mut m, "4", t);
    assert!(played(&out).contains(&Clip::Message(MessageId(1))));
}

#[test]
fn six_after_the_last_message_says_no_more_messages() {
    let (mut m, t) = logged_in();
    keys(&mut m, "16", t);
    let out = keys(&mut m, "6", t);
    assert!(has_prompt(&out, "vm.no_more_messages") && has_prompt(&out, "menu.to_listen"));
}

#[test]
fn seven_deletes_and_moves_on_to_the_next_message() {
    let (mut m, t) = logged_in();
    keys(&mut m, "1", t);
    let out = keys(&mut m, "7", t);
    assert_eq!(out[0], Delete { id: MessageId(1) });
    assert_eq!(played(&out)[0], Clip::Prompt("vm.message_deleted"));
    assert!(played(&out).contains(&Clip::Message(MessageId(3))));
    assert_eq!(m.counts().total(), 2);
}

#[test]
fn nine_saves_to_work_and_the_work_folder_holds_it() {
    let (mut m, t) = logged_in();
    keys(&mut m, "1", t);
    let out = keys(&mut m, "9", t);
    assert!(out.contains(&SetFolder { id: MessageId(1), folder: Folder::Work }));
    assert!(has_prompt(&out, "vm.message_saved"));
    keys(&mut m, "#", t);
    let (mut m, t) = logged_in();
    keys(&mut m, "19", t);
    // Back in the main menu: folder 2 (work), then play.
    let out = keys(&mut m, "66", t);
    assert!(has_prompt(&out, "vm.no_more_messages"));
    let out = keys(&mut m, "22", t);
    assert_eq!(played(&out)[0], Clip::Prompt("num.1")); // "one message"
    let out = keys(&mut m, "1", t);
    assert!(played(&out).contains(&Clip::Message(MessageId(1))));
}

#[test]
fn the_old_folder_is_chosen_with_two_one() {
    let (mut m, t) = logged_in();
    let out = keys(&mut m, "21", t);
    assert!(has_prompt(&out, "vm.saved_message"));
    let out = keys(&mut m, "1", t);
    assert!(played(&out).contains(&Clip::Message(MessageId(2))));
    assert!(!out.iter().any(|o| matches!(o, SetFolder { .. })));
}

#[test]
fn with_no_new_messages_one_plays_the_old_ones() {
    let (mut m, t) = logged_in();
    keys(&mut m, "1", t);
    keys(&mut m, "6", t);
    keys(&mut m, "#", t);
    let (mut m2, t2) = logged_in();
    m2.messages.iter_mut().for_each(|x| x.folder = Folder::Old);
    let out = keys(&mut m2, "1", t2);
    assert!(played(&out).contains(&Clip::Message(MessageId(2))));
    drop(m);
}

#[test]
fn star_repeats_the_help_and_a_wrong_key_is_refused() {
    let (mut m, t) = logged_in();
    let out = keys(&mut m, "*", t);
    assert!(has_prompt(&out, "menu.to_listen"));
    let out = keys(&mut m, "8", t);
    assert!(has_prompt(&out, "common.invalid_entry"));
    keys(&mut m, "1", t);
    let out = keys(&mut m, "3", t);
    assert!(has_prompt(&out, "common.invalid_entry") && has_prompt(&out, "menu.to_delete"));
}

#[test]
fn pound_exits_with_goodbye_even_while_a_message_plays() {
    let (mut m, t) = logged_in();
    keys(&mut m, "1", t);
    assert_eq!(keys(&mut m, "#", t), [Play(prompts(["common.goodbye"]))]);
    m.handle_playback_finished(t);
    assert_eq!(drain(&mut m), [HangUp]);
}

// Tests for recording a greeting.

#[test]
fn zero_then_a_slot_records_that_greeting() {
    let (mut m, t) = logged_in();
    assert!(keys(&mut m, "0", t).is_empty());
    assert_eq!(keys(&mut m, "2", t), [Play(prompts(["vm.greeting_after_tone", "beep"]))]);
    m.handle_playback_finished(t);
    assert_eq!(drain(&mut m), [StartRecording { kind: GreetingKind::Busy }]);
    assert_eq!(m.poll_timeout(), Some(t + Duration::from_secs(MAX_GREETING_SECS)));
    assert_eq!(keys(&mut m, "#", t), [StopRecording]);
    m.handle_recording_stopped(4000, t);
    let out = drain(&mut m);
    assert_eq!(out[0], SaveGreeting { kind: GreetingKind::Busy });
    assert!(has_prompt(&out, "vm.greeting_saved"));
}

#[test]
fn a_greeting_under_a_second_is_dropped() {
    let (mut m, t) = logged_in();
    keys(&mut m, "00", t);
    m.handle_playback_finished(t);
    drain(&mut m);
    keys(&mut m, "#", t);
    m.handle_recording_stopped(300, t);
    assert_eq!(drain(&mut m)[0], DiscardTake);
}

#[test]
fn a_greeting_stops_at_its_length_limit() {
    let (mut m, t) = logged_in();
    keys(&mut m, "04", t);
    m.handle_playback_finished(t);
    drain(&mut m);
    m.handle_timeout(t + Duration::from_secs(MAX_GREETING_SECS));
    assert_eq!(drain(&mut m), [StopRecording]);
    m.handle_recording_stopped(MAX_GREETING_SECS * 1000, t);
    assert_eq!(drain(&mut m)[0], SaveGreeting { kind: GreetingKind::AfterHours });
}

#[test]
fn hanging_up_while_recording_a_greeting_keeps_the_old_one() {
    let (mut m, t) = logged_in();
    keys(&mut m, "01", t);
    m.handle_playback_finished(t);
    drain(&mut m);
    m.handle_hangup(t);
    assert_eq!(drain(&mut m), [StopRecording, DiscardTake]);
    assert!(m.is_done());
}

#[test]
fn every_prompt_the_menu_uses_exists_in_both_languages() {
    for lang in [Lang::Ja, Lang::En] {
        let t = Instant::now();
        let mut m = OwnerMenu::new(Some(b("201")), 3, lang, UtcOffset::JST);
        m.start(t);
        let mut out = drain(&mut m);
        out.extend(keys(&mut m, "1234#", t));
        m.handle_box_loaded(Some(snapshot()), t);
        out.extend(drain(&mut m));
        for script in ["1", "*", "6", "4", "5", "3", "7", "9", "6", "6", "20", "21", "22", "2x", "00", "#"] {
            out.extend(keys(&mut m, script, t));
            m.handle_playback_finished(t);
            out.extend(drain(&mut m));
        }
        for clip in played(&out) {
            if let Clip::Prompt(id) = clip {
                assert!(crate::media::prompts::exists(id, lang), "{id} missing in {lang:?}");
            }
        }
    }
}
