//! Tests of the CRM core: field checks, the phone index, search, cases and workflows.

use super::fields::FieldKind;
use super::model::*;
use super::*;

fn at(ms: u64) -> Stamp {
    Stamp { at_ms: ms, by: "admin".into() }
}

fn demo() -> Crm {
    let mut crm = Crm::new();
    crm.put_tag(Tag { name: "VIP".into(), fg: "#ffffff".into(), bg: "#ff0000".into(), ..Tag::default() })
        .unwrap();
    crm.put_format(
        BusinessFormat {
            name: "デモ".into(),
            fields: vec![
                FormatField {
                    name: "契約状況".into(),
                    kind: FieldKind::List,
                    required: true,
                    column: Column::Left,
                    choices: vec!["契約中".into(), "解約".into()],
                },
                FormatField {
                    name: "郵便番号".into(),
                    kind: FieldKind::PostalCode,
                    required: false,
                    column: Column::Right,
                    choices: vec![],
                },
            ],
            agents: vec![],
        },
        &[],
    )
    .unwrap();
    crm
}

fn customer(name: &str, phone: &str) -> Customer {
    let mut c = Customer {
        name: name.into(),
        phones: vec![phone.into()],
        format: Some("デモ".into()),
        ..Customer::default()
    };
    c.fields.insert("契約状況".into(), "契約中".into());
    c
}

#[test]
fn a_customer_is_found_by_the_callers_number_in_any_notation() {
    let mut crm = demo();
    let id = crm.put_customer(customer("山田 太郎", "03-1234-5678"), at(1), false).unwrap();
    assert_eq!(id, 1);
    let found = crm.find_by_phone("+81312345678");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "山田 太郎");
    assert!(crm.find_by_phone("0399999999").is_empty());
    assert!(crm.find_by_phone("anonymous").is_empty());
}

#[test]
fn a_duplicate_number_is_refused_unless_allowed_and_updates_reindex() {
    let mut crm = demo();
    let id = crm.put_customer(customer("A", "0312345678"), at(1), false).unwrap();
    let e = crm.put_customer(customer("B", "03-1234-5678"), at(2), false).unwrap_err();
    assert_eq!(e[0].field, "phones[0]");
    crm.put_customer(customer("B", "03-1234-5678"), at(2), true).unwrap();
    assert_eq!(crm.find_by_phone("0312345678").len(), 2);
    let mut a = crm.customer(id).unwrap().clone();
    a.phones = vec!["0455556666".into()];
    crm.put_customer(a, at(3), false).unwrap();
    assert_eq!(crm.find_by_phone("0312345678").len(), 1);
    assert_eq!(crm.find_by_phone("0455556666")[0].id, id);
    assert_eq!(crm.customer(id).unwrap().created.at_ms, 1, "created stays");
    assert!(crm.delete_customer(id));
    assert!(crm.find_by_phone("0455556666").is_empty());
}

#[test]
fn format_fields_are_typed_and_required_and_unknown_ones_refused() {
    let mut crm = demo();
    let mut c = customer("A", "0312345678");
    c.fields.insert("契約状況".into(), "不明".into());
    c.fields.insert("郵便番号".into(), "1000001".into());
    c.fields.insert("色".into(), "赤".into());
    c.tags = vec!["NOPE".into()];
    c.email = "bad".into();
    let e = crm.put_customer(c, at(1), false).unwrap_err();
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"fields.契約状況") && fields.contains(&"fields.色"));
    assert!(fields.contains(&"tags") && fields.contains(&"email"));
    let mut c = customer("A", "0312345678");
    c.fields.remove("契約状況");
    let e = crm.put_customer(c, at(1), false).unwrap_err();
    assert_eq!(e[0].message, "required");
    let mut c = customer("A", "0312345678");
    c.fields.insert("郵便番号".into(), "1000001".into());
    let id = crm.put_customer(c, at(1), false).unwrap();
    assert_eq!(crm.customer(id).unwrap().fields["郵便番号"], "100-0001");
}

#[test]
fn search_combines_criteria() {
    let mut crm = demo();
    let mut a = customer("山田商店", "0312345678");
    a.tags = vec!["VIP".into()];
    crm.put_customer(a, at(1), false).unwrap();
    crm.put_customer(customer("山田工業", "0611112222"), at(1), false).unwrap();
    crm.put_customer(customer("佐藤", "0311113333"), at(1), false).unwrap();
    let q = CustomerQuery { name: Some("山田".into()), ..CustomerQuery::default() };
    assert_eq!(crm.search_customers(&q).len(), 2);
    let q =
        CustomerQuery { name: Some("山田".into()), tag: Some("VIP".into()), ..CustomerQuery::default() };
    assert_eq!(crm.search_customers(&q).len(), 1);
    let q = CustomerQuery { phone: Some("03-1111".into()), ..CustomerQuery::default() };
    assert_eq!(crm.search_customers(&q)[0].name, "佐藤");
    let q =
        CustomerQuery { fields: vec![("契約状況".into(), "契約".into())], ..CustomerQuery::default() };
    assert_eq!(crm.search_customers(&q).len(), 3);
    crm.put_customer(customer("ヤマダ電機", "0522223333"), at(1), false).unwrap();
    let q = CustomerQuery { name: Some("やまだ".into()), ..CustomerQuery::default() };
    assert_eq!(crm.search_customers(&q)[0].name, "ヤマダ電機", "hiragana finds katakana");
}

#[test]
fn a_case_moves_through_its_workflow_and_the_time_per_step_is_counted() {
    let mut crm = demo();
    for (name, next) in [("STEP1", Some("STEP2")), ("STEP2", None)] {
        crm.put_step(WorkflowStep {
            name: name.into(),
            buttons: vec![StepButton { label: "次へ".into(), next: next.map(str::to_string) }],
            ..WorkflowStep::default()
        })
        .unwrap();
    }
    crm.put_workflow(Workflow { name: "TESTフロー".into(), first_step: "STEP1".into() }).unwrap();
    assert!(crm.put_workflow(Workflow { name: "x".into(), first_step: "NONE".into() }).is_err());
    let cust = crm.put_customer(customer("A", "0312345678"), at(0), false).unwrap();
    let case = Case {
        title: "問い合わせ".into(),
        status: "作業中".into(),
        customer: Some(cust),
        step: Some(("TESTフロー".into(), String::new())),
        ..Case::default()
    };
    let id = crm.put_case(case, at(1_000)).unwrap();
    assert_eq!(crm.case(id).unwrap().step, Some(("TESTフロー".into(), "STEP1".into())));
    crm.press_step_button(id, 0, at(61_000)).unwrap();
    assert_eq!(crm.case(id).unwrap().step.as_ref().unwrap().1, "STEP2");
    assert!(crm.press_step_button(id, 3, at(62_000)).is_err());
    crm.press_step_button(id, 0, at(181_000)).unwrap();
    assert_eq!(crm.case(id).unwrap().step, None, "the last button ends the workflow");
    let stats = crm.workflow_stats(0, u64::MAX);
    assert_eq!(stats.len(), 2);
    assert_eq!((stats[0].step.1.as_str(), stats[0].total_ms), ("STEP1", 60_000));
    assert_eq!((stats[1].step.1.as_str(), stats[1].total_ms), ("STEP2", 120_000));
    assert_eq!(crm.cases_of(cust).len(), 1);
    crm.delete_customer(cust);
    assert_eq!(crm.case(id).unwrap().customer, None, "the case stays, unlinked");
}

#[test]
fn custom_fields_apply_to_their_category_and_faq_search_finds_words() {
    let mut crm = demo();
    crm.put_custom_field(CustomField {
        name: "対応ステータス".into(),
        category: Category::Case,
        kind: FieldKind::List,
        choices: vec!["未対応".into(), "対応済".into()],
    })
    .unwrap();
    assert!(crm
        .put_custom_field(CustomField {
            name: "x".into(),
            category: Category::Case,
            kind: FieldKind::Email,
            choices: vec![]
        })
        .is_err());
    let mut k = Case { title: "t".into(), ..Case::default() };
    k.fields.insert("対応ステータス".into(), "対応済".into());
    crm.put_case(k, at(1)).unwrap();
    let mut c = customer("A", "0312345678");
    c.fields.insert("対応ステータス".into(), "対応済".into());
    assert!(crm.put_customer(c, at(1), false).is_err(), "a case field is not a customer field");
    crm.put_faq(
        Faq {
            title: "Snom300から発信できません".into(), detail: "SRTPをオフに".into(), ..Faq::default()
        },
        at(1),
    )
    .unwrap();
    assert_eq!(crm.search_faq("SRTP").len(), 1);
    assert_eq!(crm.search_faq("snom").len(), 1, "case folds");
    assert!(crm.search_faq("fax").is_empty());
}

#[test]
fn step_times_are_handed_out_once_and_restored_with_their_sequence() {
    let mut crm = demo();
    crm.put_step(WorkflowStep {
        name: "S1".into(),
        buttons: vec![StepButton { label: "終了".into(), next: None }],
        ..WorkflowStep::default()
    })
    .unwrap();
    crm.put_workflow(Workflow { name: "W".into(), first_step: "S1".into() }).unwrap();
    let k = Case { title: "t".into(), step: Some(("W".into(), String::new())), ..Case::default() };
    let id = crm.put_case(k, at(1_000)).unwrap();
    assert!(crm.take_step_times().is_empty(), "entering a step logs nothing");
    crm.press_step_button(id, 0, at(4_000)).unwrap();
    let times = crm.take_step_times();
    assert_eq!(times.len(), 1);
    assert_eq!((times[0].seq, times[0].left_ms - times[0].entered_ms), (0, 3_000));
    assert!(crm.take_step_times().is_empty(), "taken once");
    // A case edited while in a step still counts from its entry after a reload.
    let k2 = Case { title: "t2".into(), step: Some(("W".into(), String::new())), ..Case::default() };
    let id2 = crm.put_case(k2, at(10_000)).unwrap();
    let mut edited = crm.case(id2).unwrap().clone();
    edited.title = "t2 edited".into();
    crm.put_case(edited, at(20_000)).unwrap();
    let stored = crm.case(id2).unwrap().clone();
    assert_eq!(stored.step_entered_ms, 10_000);
    let mut reloaded = demo();
    reloaded.restore(Record::Step(WorkflowStep {
        name: "S1".into(),
        buttons: vec![StepButton { label: "終了".into(), next: None }],
        ..WorkflowStep::default()
    }));
    reloaded.restore(Record::Case(stored));
    reloaded.press_step_button(id2, 0, at(25_000)).unwrap();
    let t = reloaded.take_step_times();
    assert_eq!((t[0].entered_ms, t[0].left_ms), (10_000, 25_000));
    assert_eq!(reloaded.case(id2).unwrap().step_entered_ms, 0, "left the workflow");
    // A fresh CRM given the record back has the same statistics and numbers on.
    let mut again = Crm::new();
    again.restore(Record::StepTime(times[0].clone()));
    assert_eq!(again.workflow_stats(0, u64::MAX), crm.workflow_stats(0, u64::MAX));
    assert_eq!(Record::StepTime(times[0].clone()).key(), Record::step_time_key(0));
    let mut huge = times[0].clone();
    huge.seq = u64::MAX;
    again.restore(Record::StepTime(huge)); // a corrupt sequence does not overflow
}

#[test]
fn definitions_in_use_are_not_deleted_and_cases_are_searched() {
    let mut crm = demo();
    crm.put_step(WorkflowStep { name: "S1".into(), ..WorkflowStep::default() }).unwrap();
    crm.put_workflow(Workflow { name: "W".into(), first_step: "S1".into() }).unwrap();
    let mut c = customer("A", "0312345678");
    c.tags = vec!["VIP".into()];
    let cust = crm.put_customer(c, at(0), false).unwrap();
    let k = Case {
        title: "請求書の再送".into(),
        status: "作業中".into(),
        customer: Some(cust),
        owner: Some("kato".into()),
        detail: "PDF で".into(),
        step: Some(("W".into(), String::new())),
        ..Case::default()
    };
    let id = crm.put_case(k, at(1)).unwrap();
    assert!(crm.delete_tag("VIP").is_err(), "a customer carries it");
    assert!(crm.delete_format("デモ").is_err(), "a customer uses it");
    assert!(crm.delete_workflow("W").is_err(), "a case is in it");
    assert!(crm.delete_step("S1").is_err(), "the first step of W");
    assert_eq!(crm.delete_tag("none"), Ok(false));
    let q = |f: fn(&mut CaseQuery)| {
        let mut q = CaseQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(crm.search_cases(&q(|q| q.title = Some("請求".into()))).len(), 1);
    assert_eq!(crm.search_cases(&q(|q| q.text = Some("ｐｄｆ".into()))).len(), 1, "full-width and case fold");
    assert_eq!(crm.search_cases(&q(|q| q.text = Some("PDF".into()))).len(), 1);
    assert_eq!(crm.search_cases(&q(|q| q.owner = Some("kato".into()))).len(), 1);
    assert_eq!(crm.search_cases(&q(|q| q.workflow = Some("W".into()))).len(), 1);
    assert_eq!(crm.search_cases(&q(|q| q.status = Some("完了".into()))).len(), 0);
    assert_eq!(crm.search_cases(&q(|q| q.customer = Some(99))).len(), 0);
    assert!(crm.delete_case(id));
    assert_eq!(crm.delete_workflow("W"), Ok(true));
    assert_eq!(crm.delete_step("S1"), Ok(true));
    assert!(crm.delete_customer(cust));
    assert_eq!(crm.delete_tag("VIP"), Ok(true));
    assert_eq!(crm.delete_format("デモ"), Ok(true));
}

#[test]
fn a_format_with_agents_is_open_only_to_them() {
    let mut crm = demo();
    let f = BusinessFormat { name: "限定".into(), agents: vec!["201".into()], ..BusinessFormat::default() };
    crm.put_format(f, &["201", "202"]).unwrap();
    assert!(crm.may_use_format(Some("限定"), Some("201")));
    assert!(!crm.may_use_format(Some("限定"), Some("202")));
    assert!(!crm.may_use_format(Some("限定"), None));
    assert!(crm.may_use_format(Some("デモ"), None), "no agent list: everyone");
    assert!(crm.may_use_format(None, None) && crm.may_use_format(Some("消えた"), Some("202")));
}
