//! A progressive campaign with real peers (issue 9): SIPp is the provider whose far ends are
//! the customers, baresip is the agent (201). Two entries are added on the console; the box
//! dials the first customer over the trunk with the campaign's caller ID, and when it answers
//! rings the agent, who answers and hears the customer (SIPp plays speech). The customer hangs
//! up; the agent stays on the line, is asked for the result and keys `1#`: entry 1 records
//! result 1. Then the second customer is dialled the same way, and the agent keys `0` `30#`:
//! a recall 30 minutes later is booked (the entry waits again, with its schedule). Also:
//! preview mode (the agent presses 1), login mode (the 990 line), after-call work with its
//! status, click-to-call to an outside number, and a restricted number that is never dialled.
mod common;

use common::baresip::Phone;
use common::tones::{blocks, rms, tone, write_wav};
use common::{free_udp_port, g711a_pcap, require_tool, wait_udp_bound, Sipp, TestBox};
use std::time::Duration;

const AGENT: (&str, &str) = ("201", "secret-201");
const CAMPAIGN_CALLER_ID: &str = "0312340000";
const CUSTOMERS: [&str; 2] = ["0311110001", "0311110002"];
const WAIT: Duration = Duration::from_secs(10);
/// Each customer: 0.5 s ringing, 4 s talking; the agent's ring and the result entry on top.
const CUSTOMER_TIMEOUT: Duration = Duration::from_secs(90);
const PHONE_SECONDS: u32 = 80;

fn config(provider_port: u16) -> String {
    format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{provider_port}\"\ndomain = \"provider.example\"\n\
         username = \"0312349999\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[outbound_route]]\nprefix = \"0\"\ntrunk = \"provider\"\n\n\
         [[campaign]]\nname = \"autumn\"\nenabled = true\nmode = \"progressive\"\ncaller_id = \"{CAMPAIGN_CALLER_ID}\"\n\
         customer_ring_s = 30\nagent_ring_s = 20\nresult_by_dtmf = true\nresults = \"1,成約\\n2,再検討\"\n\
         agents = [\"201\"]\n"
    )
}

/// The box with the provider trunk and `[[campaign]]` (`edit` may change the configuration),
/// the SIPp provider taking the REGISTER and `customers` calls, and the baresip agent 201
/// registered with a silent source.
struct Scene {
    tb: TestBox,
    provider: common::SippChild,
    agent: Phone,
}

impl Scene {
    fn start(edit: impl FnOnce(String) -> String, customers: u32) -> Scene {
        let provider_port = free_udp_port();
        let tb = TestBox::start_with_config(&[AGENT], &[], &edit(config(provider_port)));
        let media = tb.port();
        let provider = Sipp::new("provider_campaign.xml", &tb.scratch("sipp"))
            .remote(&tb.sip_addr())
            .local_port(provider_port)
            .media_port(media)
            .key("rtpport", media)
            .key("pcap", g711a_pcap().display())
            .calls(1 + customers)
            .timeout(CUSTOMER_TIMEOUT)
            .spawn();
        wait_udp_bound(provider_port);
        let trunks = tb.console_until("show trunks", WAIT, |s| s.contains("registered"));
        assert!(trunks.contains("registered"), "{trunks}\n{}", tb.stderr_tail(40));
        let silence = tb.scratch("media").join("silence.wav");
        write_wav(&silence, &tone(440.0, f64::from(PHONE_SECONDS) + 10.0, 0.0));
        let agent = Phone::builder(&tb, AGENT, &silence, PHONE_SECONDS).ctrl_tcp(tb.port()).start();
        assert!(
            agent.wait_for("200 OK", Some("Register:"), WAIT),
            "201 did not register\n{}",
            agent.report()
        );
        Scene { tb, provider, agent }
    }
}

/// Waits until the console shows a call in result entry (the customer hung up).
fn wait_result_entry(tb: &TestBox, agent: &Phone) {
    let calls = tb.console_until("show calls", Duration::from_secs(30), |o| o.contains("result entry"));
    assert!(
        calls.contains("result entry"),
        "no result entry:\n{calls}\n{}\n{}",
        agent.report(),
        tb.stderr_tail(80)
    );
}

/// Quits a phone cleanly (its recording is closed), killing it if it does not.
fn quit(phone: &mut Phone) {
    let _ = phone.try_command("quit", "");
    phone.wait_exit(Duration::from_secs(2));
    phone.kill();
}

fn press(agent: &Phone, keys: &str) {
    for k in keys.chars() {
        agent.command("sndcode", &k.to_string());
        std::thread::sleep(Duration::from_millis(400));
    }
}

#[test]
fn a_progressive_campaign_dials_customers_connects_the_agent_and_books_results_by_dtmf() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let Scene { tb, provider, mut agent } = Scene::start(|c| c, CUSTOMERS.len() as u32);

    let list = tb.console("campaign list");
    assert!(list.contains("autumn") && list.contains("progressive"), "{list}");
    for (i, number) in CUSTOMERS.iter().enumerate() {
        let out = tb.console(&format!("campaign add autumn {number} Customer {i}"));
        assert!(out.contains(&format!("entry {} added", i + 1)), "{out}");
    }

    // First customer: answered, bridged to the agent, hangs up; the agent keys 1#.
    assert!(
        agent.wait_for("established", None, Duration::from_secs(30)),
        "the agent was not connected\n{}\n{}",
        agent.report(),
        tb.stderr_tail(80)
    );
    let talk_start = agent.heard_so_far();
    wait_result_entry(&tb, &agent);
    let talk_end = agent.heard_so_far();
    press(&agent, "1#");
    let shown = tb.console_until("campaign show autumn", WAIT, |o| {
        o.lines().any(|l| l.starts_with("1 ") && l.contains(" dialled"))
    });
    let first = shown.lines().find(|l| l.starts_with("1 ")).unwrap_or_default().to_string();
    assert!(
        first.contains(CUSTOMERS[0]) && first.split_whitespace().any(|w| w == "1"),
        "entry 1 has result 1:\n{shown}\n{}",
        tb.stderr_tail(60)
    );
    assert!(first.contains("201"), "the agent is noted:\n{shown}");

    // Second customer: the agent books a recall in 30 minutes.
    let calls_before = agent.log().matches("established").count();
    let connected = (0..300).any(|_| {
        if agent.log().matches("established").count() > calls_before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(connected, "the second customer was not connected\n{}\n{}", agent.report(), tb.stderr_tail(80));
    wait_result_entry(&tb, &agent);
    press(&agent, "0");
    press(&agent, "30#");
    let shown = tb.console_until("campaign show autumn", WAIT, |o| o.contains("recall at"));
    let second = shown.lines().find(|l| l.starts_with("2 ")).unwrap_or_default().to_string();
    assert!(
        second.contains("waiting") && second.contains("recall at"),
        "entry 2 waits for its recall:\n{shown}\n{}",
        tb.stderr_tail(60)
    );

    let run = provider.wait();
    run.assert_ok("the provider's customers");
    let froms = run.logged("from");
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(
        froms.iter().all(|f| f.contains(CAMPAIGN_CALLER_ID)),
        "the campaign's caller ID is presented: {froms:?}"
    );
    let ruris = run.logged("ruri");
    assert!(ruris[0].contains(CUSTOMERS[0]) && ruris[1].contains(CUSTOMERS[1]), "{ruris:?}");

    // The agent heard the customer's speech while they talked.
    quit(&mut agent);
    let heard = agent.heard_samples(&|| agent.report());
    let loud = blocks(&heard[talk_start.min(heard.len())..talk_end.min(heard.len())])
        .filter(|b| rms(b) > 300.0)
        .count();
    eprintln!("the agent heard {loud} loud 100 ms blocks of the first customer");
    assert!(loud >= 10, "the agent heard {loud} loud blocks of the customer's speech\n{}", agent.report());
}

/// Login mode (エージェントモード ログイン): the agent dials 990 and stays on the line; the
/// answered customer is put straight through (the agent's phone does not ring again), the
/// customer hangs up, the agent keys `2#` and is still on its 990 line afterwards.
#[test]
fn a_login_mode_campaign_puts_customers_through_to_the_agents_990_line() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let Scene { tb, provider, mut agent } = Scene::start(
        |c| c.replace("mode = \"progressive\"", "mode = \"progressive\"\nagent_mode = \"login\""),
        1,
    );
    agent.command("dial", "990");
    assert!(agent.wait_for("established", None, WAIT), "990 was not answered\n{}", agent.report());
    let out = tb.console(&format!("campaign add autumn {} Customer", CUSTOMERS[0]));
    assert!(out.contains("entry 1 added"), "{out}");
    let talking = tb.console_until("show calls", Duration::from_secs(30), |o| {
        o.contains(CUSTOMERS[0]) && o.contains("talking")
    });
    assert!(
        talking.contains("talking"),
        "the customer was not put through:\n{talking}\n{}",
        tb.stderr_tail(80)
    );
    wait_result_entry(&tb, &agent);
    press(&agent, "2#");
    let shown = tb.console_until("campaign show autumn", WAIT, |o| {
        o.lines().any(|l| l.starts_with("1 ") && l.contains(" dialled"))
    });
    let first = shown.lines().find(|l| l.starts_with("1 ")).unwrap_or_default().to_string();
    assert!(
        first.split_whitespace().any(|w| w == "2"),
        "entry 1 has result 2:\n{shown}\n{}",
        tb.stderr_tail(60)
    );
    // Still on the 990 line, and only one call was ever established on the phone.
    let calls = tb.console_until("show calls", WAIT, |o| o.contains("waiting"));
    assert!(calls.contains("waiting") && calls.contains("201"), "the agent's line waits again:\n{calls}");
    assert_eq!(agent.log().matches("Call established").count(), 1, "{}", agent.report());
    let run = provider.wait();
    run.assert_ok("the provider's customer");
    quit(&mut agent);
}

/// Click-to-call to an outside number (the recall list's manual dial and the CRM's click-to-call
/// use the same path): `call 201 0311110001` rings 201's phone, which answers; then the box
/// dials the customer over the trunk with 201's caller ID, and the two talk until the customer
/// hangs up.
#[test]
fn click_to_call_rings_the_desk_phone_then_dials_the_customer_over_the_trunk() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let Scene { tb, provider, agent: mut phone } = Scene::start(|c| c, 1);
    let out = tb.console(&format!("call 201 {}", CUSTOMERS[0]));
    assert!(out.contains("ringing 201"), "{out}");
    assert!(phone.wait_for("established", None, WAIT), "201 did not answer\n{}", phone.report());
    let talking = tb.console_until("show calls", Duration::from_secs(15), |o| o.contains("talking"));
    assert!(
        talking.contains(CUSTOMERS[0]) && talking.contains("talking"),
        "{talking}\n{}",
        tb.stderr_tail(60)
    );
    assert!(
        phone.wait_for("terminated", None, Duration::from_secs(15)),
        "the customer's hang-up did not reach 201\n{}",
        phone.report()
    );
    let run = provider.wait();
    run.assert_ok("the customer");
    let ruris = run.logged("ruri");
    assert!(ruris.iter().any(|r| r.contains(CUSTOMERS[0])), "{ruris:?}");
    let cdr = tb.console_until("show cdr 1", WAIT, |o| o.contains(CUSTOMERS[0]));
    assert!(cdr.contains("201") && cdr.contains(CUSTOMERS[0]), "{cdr}");
    quit(&mut phone);
}

/// A campaign never dials a restricted number: the entry on the restriction list records
/// 発信規制 (`restricted`) and no INVITE reaches the provider; the other entry is dialled.
#[test]
fn a_restricted_number_is_not_dialled_and_records_its_system_result() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let Scene { tb, provider, mut agent } =
        Scene::start(|c| format!("{}\n[restrict]\nnumbers = [\"0990*\"]\n", c), 1);
    let (code, out) = tb.console_refused("call 201 0990123456");
    assert!(code != Some(0) && out.contains("restricted"), "click-to-call is refused too: {out}");
    tb.console("campaign add autumn 0990123456 Restricted");
    tb.console(&format!("campaign add autumn {} Allowed", CUSTOMERS[1]));
    let shown = tb.console_until("campaign show autumn", WAIT, |o| o.contains("restricted"));
    let first = shown.lines().find(|l| l.starts_with("1 ")).unwrap_or_default().to_string();
    assert!(first.contains("restricted") && first.contains(" dialled"), "{shown}\n{}", tb.stderr_tail(40));
    // The allowed one is dialled and answered; the agent keys its result.
    assert!(agent.wait_for("established", None, Duration::from_secs(30)), "{}", agent.report());
    wait_result_entry(&tb, &agent);
    press(&agent, "1#");
    let run = provider.wait();
    run.assert_ok("the provider");
    let ruris = run.logged("ruri");
    assert_eq!(ruris.len(), 1, "only the allowed number reached the provider: {ruris:?}");
    assert!(ruris[0].contains(CUSTOMERS[1]), "{ruris:?}");
    quit(&mut agent);
}

/// After-call work: the campaign's ACW status (`acw_status`, one of the call center's custom
/// statuses) is the agent's state for `acw_s` after a talk, then the agent is 受付可 again.
#[test]
fn after_a_campaign_call_the_agent_is_in_the_campaigns_acw_status_for_its_acw_time() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let Scene { tb, provider, mut agent } = Scene::start(
        |c| {
            c
        .replace("result_by_dtmf = true", "result_by_dtmf = false\nacw_s = 4\nacw_status = \"研修\"")
        + "\n[[queue]]\nname = \"support\"\nnumber = \"6000\"\nmembers = [\"201\"]\n\n[acd]\nother_work = [\"研修\"]\n"
        },
        1,
    );
    tb.console("agent login 201");
    tb.console("agent available 201");
    tb.console(&format!("campaign add autumn {} Customer", CUSTOMERS[0]));
    assert!(
        agent.wait_for("established", None, Duration::from_secs(30)),
        "{}\n{}",
        agent.report(),
        tb.stderr_tail(60)
    );
    assert!(agent.wait_for("terminated", None, Duration::from_secs(15)), "{}", agent.report());
    let acw = tb.console_until("show agents", WAIT, |o| o.contains("研修"));
    assert!(
        acw.lines().any(|l| l.starts_with("201") && l.contains("研修")),
        "the ACW status:\n{acw}\n{}",
        tb.stderr_tail(60)
    );
    let back = tb.console_until("show agents", Duration::from_secs(10), |o| {
        o.lines().any(|l| l.starts_with("201") && l.contains("available"))
    });
    assert!(
        back.lines().any(|l| l.starts_with("201") && l.contains("available")),
        "受付可 again after 4 s:\n{back}"
    );
    provider.wait().assert_ok("the customer");
    quit(&mut agent);
}

/// Preview mode: the box offers the entry to the agent first (its phone shows the customer's
/// number and it hears "press 1 to call, 3 to skip"); the agent presses 1, the box dials the
/// customer and bridges them; after the customer hangs up the agent keys `1#`.
#[test]
fn a_preview_campaign_offers_the_entry_and_dials_when_the_agent_presses_1() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let Scene { tb, provider, mut agent } =
        Scene::start(|c| c.replace("mode = \"progressive\"", "mode = \"preview\""), 1);
    tb.console(&format!("campaign add autumn {} Customer", CUSTOMERS[0]));
    // The offer: the agent's phone rings with the customer's number and answers.
    assert!(
        agent.wait_for("established", None, Duration::from_secs(30)),
        "{}\n{}",
        agent.report(),
        tb.stderr_tail(60)
    );
    assert!(agent.log().contains(CUSTOMERS[0]), "the phone shows the customer's number\n{}", agent.report());
    let waiting = tb.console_until("show calls", WAIT, |o| o.contains("waiting"));
    assert!(waiting.contains("waiting"), "the offer waits for a key:\n{waiting}");
    std::thread::sleep(Duration::from_millis(500));
    press(&agent, "1");
    let talking = tb.console_until("show calls", Duration::from_secs(15), |o| o.contains("talking"));
    assert!(talking.contains("talking"), "the customer was not dialled:\n{talking}\n{}", tb.stderr_tail(60));
    wait_result_entry(&tb, &agent);
    press(&agent, "1#");
    let shown = tb.console_until("campaign show autumn", WAIT, |o| {
        o.lines().any(|l| l.starts_with("1 ") && l.contains(" dialled"))
    });
    let first = shown.lines().find(|l| l.starts_with("1 ")).unwrap_or_default().to_string();
    assert!(
        first.split_whitespace().any(|w| w == "1"),
        "entry 1 has result 1:\n{shown}\n{}",
        tb.stderr_tail(60)
    );
    let run = provider.wait();
    run.assert_ok("the customer");
    assert!(run.logged("from").iter().all(|f| f.contains(CAMPAIGN_CALLER_ID)), "{:?}", run.logged("from"));
    quit(&mut agent);
}
