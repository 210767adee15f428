//! Virtual-clock tests of the dialer: pacing, window, restriction, scheduling and results.

use super::dialer::*;
use super::pacing::DialMode;
use super::results::{Outcome, SystemResult};
use super::settings::{CampaignForm, CampaignSettings};
use std::time::Duration;

const NINE_AM: u16 = 9 * 60;
const T0: u64 = 1_800_000_000_000;

fn settings(mode: &str, channels: u16, ratio: u16) -> CampaignSettings {
    CampaignForm {
        name: "テスト".into(),
        enabled: true,
        mode: Some(mode.into()),
        max_channels: Some(channels),
        dial_ratio: Some(ratio),
        window_from: Some("09:00".into()),
        window_to: Some("18:00".into()),
        results: "1,受注\n2,検討".into(),
        result_by_dtmf: true,
        agents: vec!["201".into(), "202".into()],
        ..CampaignForm::default()
    }
    .check(1, &["201", "202"])
    .unwrap()
}

fn never(_: &str) -> bool {
    false
}

fn dials(actions: &[Action]) -> Vec<EntryId> {
    actions
        .iter()
        .filter_map(|a| if let Action::DialCustomer { entry, .. } = a { Some(*entry) } else { None })
        .collect()
}

fn rings(actions: &[Action]) -> Vec<(EntryId, String)> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::RingAgent { entry, agent, .. } = a {
                Some((*entry, agent.clone()))
            } else {
                None
            }
        })
        .collect()
}

fn list(d: &mut Dialer, n: usize) -> Vec<EntryId> {
    (0..n).map(|i| d.add(&format!("0312340{i:03}"), "客", None, None, None).unwrap()).collect()
}

#[test]
fn progressive_dials_one_customer_per_free_agent_and_rings_an_agent_on_answer() {
    let mut d = Dialer::new(settings("progressive", 10, 1));
    let ids = list(&mut d, 5);
    assert!(d.poll(T0, NINE_AM, &never).is_empty(), "no agent free, no dial");
    d.set_agent_free("201", true);
    let a = d.poll(T0, NINE_AM, &never);
    assert_eq!(dials(&a), vec![ids[0]]);
    assert!(d.poll(T0 + 1000, NINE_AM, &never).is_empty(), "one dial in flight per free agent");
    let a = d.customer_outcome(ids[0], DialOutcome::Answered);
    assert_eq!(rings(&a), vec![(ids[0], "201".to_string())]);
    assert!(d.agent_outcome(ids[0], AgentOutcome::Answered, T0 + 2000).is_empty());
    assert_eq!(d.entry(ids[0]).unwrap().status, EntryStatus::Talking);
    let a = d.call_ended(ids[0]);
    assert!(
        a.contains(&Action::Recorded { entry: ids[0], outcome: Outcome::System(SystemResult::NotEntered) })
    );
    assert!(a.contains(&Action::AskResult { entry: ids[0], agent: "201".into() }));
    assert_eq!(d.entry(ids[0]).unwrap().calls, 1);
}

#[test]
fn the_dial_ratio_and_the_channel_cap_bound_the_dials() {
    let mut d = Dialer::new(settings("progressive", 3, 2));
    list(&mut d, 10);
    d.set_agent_free("201", true);
    d.set_agent_free("202", true);
    assert_eq!(dials(&d.poll(T0, NINE_AM, &never)).len(), 3, "2 agents x ratio 2 = 4, capped at 3 channels");
    assert!(dials(&d.poll(T0 + 1, NINE_AM, &never)).is_empty());
}

#[test]
fn nothing_is_dialled_outside_the_window_or_while_the_campaign_is_off() {
    let mut d = Dialer::new(settings("progressive", 10, 1));
    list(&mut d, 3);
    d.set_agent_free("201", true);
    assert!(d.poll(T0, NINE_AM - 1, &never).is_empty());
    assert!(d.poll(T0, 18 * 60 + 1, &never).is_empty());
    let mut off = d.settings().clone();
    off.enabled = false;
    d.set_settings(off);
    assert!(d.poll(T0, NINE_AM, &never).is_empty());
}

#[test]
fn a_restricted_number_is_recorded_and_never_dialled() {
    let mut d = Dialer::new(settings("progressive", 10, 1));
    let ids = list(&mut d, 2);
    d.set_agent_free("201", true);
    let first = d.entry(ids[0]).unwrap().number.clone();
    let restricted = move |n: &str| n == first;
    let a = d.poll(T0, NINE_AM, &restricted);
    assert!(
        a.contains(&Action::Recorded { entry: ids[0], outcome: Outcome::System(SystemResult::Restricted) })
    );
    assert_eq!(dials(&a), vec![ids[1]], "the next entry is dialled instead");
}

#[test]
fn failed_dials_get_their_system_results() {
    let cases = [
        (DialOutcome::Busy, SystemResult::Busy),
        (DialOutcome::NoAnswer, SystemResult::TimeLimit),
        (DialOutcome::Rejected, SystemResult::Cancelled),
        (DialOutcome::ChannelLimit, SystemResult::ChannelLimit),
        (DialOutcome::Failed, SystemResult::Error),
    ];
    for (how, want) in cases {
        let mut d = Dialer::new(settings("progressive", 10, 1));
        let ids = list(&mut d, 1);
        d.set_agent_free("201", true);
        d.poll(T0, NINE_AM, &never);
        d.customer_outcome(ids[0], how);
        assert_eq!(d.entry(ids[0]).unwrap().result, Outcome::System(want));
        assert_eq!(d.entry(ids[0]).unwrap().status, EntryStatus::Dialled);
    }
}

#[test]
fn a_customer_whose_agent_does_not_answer_is_offered_to_the_next_agent() {
    let mut d = Dialer::new(settings("progressive", 10, 1));
    let ids = list(&mut d, 1);
    d.set_agent_free("201", true);
    d.set_agent_free("202", true);
    d.poll(T0, NINE_AM, &never);
    let a = d.customer_outcome(ids[0], DialOutcome::Answered);
    let (_, first) = rings(&a).pop().unwrap();
    let a = d.agent_outcome(ids[0], AgentOutcome::NoAnswer, T0 + 20_000);
    let (_, second) = rings(&a).pop().expect("the other agent rings");
    assert_ne!(first, second);
}

#[test]
fn a_recall_booked_by_dtmf_is_dialled_again_after_the_delay() {
    let mut d = Dialer::new(settings("progressive", 10, 1));
    let ids = list(&mut d, 1);
    d.set_agent_free("201", true);
    d.poll(T0, NINE_AM, &never);
    d.customer_outcome(ids[0], DialOutcome::Answered);
    d.agent_outcome(ids[0], AgentOutcome::Answered, T0);
    d.call_ended(ids[0]);
    d.book_recall(ids[0], T0 + 60_000, Duration::from_secs(30 * 60)).unwrap();
    assert!(d.poll(T0 + 60_000 + 29 * 60_000, NINE_AM, &never).is_empty(), "not before its time");
    let a = d.poll(T0 + 60_000 + 30 * 60_000, NINE_AM, &never);
    assert_eq!(dials(&a), vec![ids[0]]);
    assert_eq!(d.entry(ids[0]).unwrap().calls, 2);
}

#[test]
fn scheduled_entries_go_first_and_assigned_ones_wait_for_their_agent() {
    let mut d = Dialer::new(settings("progressive", 1, 1));
    let plain = d.add("0311111111", "a", None, None, None).unwrap();
    let scheduled = d.add("0322222222", "b", None, Some(T0 - 1), None).unwrap();
    let assigned = d.add("0333333333", "c", None, Some(T0 - 5), Some("202".into())).unwrap();
    d.set_agent_free("201", true);
    assert_eq!(dials(&d.poll(T0, NINE_AM, &never)), vec![scheduled]);
    assert_eq!(d.recall_list("202").iter().map(|e| e.id).collect::<Vec<_>>(), vec![assigned]);
    assert!(d.recall_list("201").is_empty());
    // The channel is busy: the assignee's manual dial is refused with the reason.
    assert_eq!(d.manual_dial(assigned, "202", T0, NINE_AM, &never), Err(DialerError::ChannelLimit));
    d.customer_outcome(scheduled, DialOutcome::Busy);
    assert_eq!(d.manual_dial(assigned, "201", T0, NINE_AM, &never), Err(DialerError::NotYours));
    let a = d.manual_dial(assigned, "202", T0, NINE_AM, &never).unwrap();
    assert!(matches!(a, Action::DialCustomer { agent: Some(ref g), .. } if g == "202"));
    let _ = plain;
}

#[test]
fn preview_offers_the_entry_to_an_agent_who_then_dials_or_skips() {
    let mut d = Dialer::new(settings("preview", 10, 1));
    let ids = list(&mut d, 2);
    d.set_agent_free("201", true);
    let a = d.poll(T0, NINE_AM, &never);
    assert_eq!(rings(&a), vec![(ids[0], "201".to_string())]);
    assert!(dials(&a).is_empty(), "preview rings the agent first");
    d.agent_outcome(ids[0], AgentOutcome::Answered, T0);
    let a = d.preview_choice(ids[0], true, T0 + 5000);
    assert_eq!(dials(&a), vec![ids[0]]);
    d.customer_outcome(ids[0], DialOutcome::Answered);
    assert_eq!(d.entry(ids[0]).unwrap().status, EntryStatus::Talking);
    d.call_ended(ids[0]);
    assert_eq!(
        d.enter_result(ids[0], 1).unwrap(),
        Action::Recorded { entry: ids[0], outcome: Outcome::Custom(1) }
    );
    assert_eq!(d.enter_result(ids[0], 7), Err(DialerError::NoSuchResult));
    // The next entry is offered; the agent skips it.
    let a = d.poll(T0 + 60_000, NINE_AM, &never);
    assert_eq!(rings(&a), vec![(ids[1], "201".to_string())]);
    let a = d.preview_choice(ids[1], false, T0 + 61_000);
    assert_eq!(
        a,
        vec![Action::Recorded { entry: ids[1], outcome: Outcome::System(SystemResult::Cancelled) }]
    );
    assert_eq!(d.settings().pacing.mode, DialMode::Preview);
}

#[test]
fn an_unlisted_agent_is_never_rung_and_a_stopped_entry_is_not_dialled() {
    let mut d = Dialer::new(settings("progressive", 10, 1));
    let ids = list(&mut d, 2);
    d.set_agent_free("299", true);
    assert!(d.poll(T0, NINE_AM, &never).is_empty());
    d.stop(ids[0]).unwrap();
    d.set_agent_free("201", true);
    assert_eq!(dials(&d.poll(T0, NINE_AM, &never)), vec![ids[1]]);
    assert_eq!(d.stop(ids[1]), Err(DialerError::InProgress));
}

#[test]
fn the_list_is_bounded_and_numbers_are_checked() {
    let mut d = Dialer::new(settings("progressive", 10, 1));
    assert_eq!(d.add("abc", "x", None, None, None), Err(DialerError::BadNumber));
    assert_eq!(d.add("", "x", None, None, None), Err(DialerError::BadNumber));
    assert_eq!(d.add("+8131234567890123456789", "x", None, None, None), Err(DialerError::BadNumber));
    assert!(d.add("+81312345678", "x", None, None, None).is_ok());
}
