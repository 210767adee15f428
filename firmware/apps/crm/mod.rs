//! The call-center CRM (issue 9; seed 002 §2.8, §2.15, §2.19, §2.30-2.34): customers, cases,
//! FAQ, tags, business formats, custom fields and workflows, with field checks, search, the
//! phone index behind the screen pop, and workflow step timing. Sans-IO: the store persists
//! what [`Crm`] accepts; the clock and the user come in with each change.
//!
//! - [`fields`]: field kinds and value checks.
//! - [`model`]: the records.
//! - [`chat`]: agent chat with unread counts, and the DID pop-up URL.
//! - [`export`]: the CSV downloads (customers, cases, workflow statistics).
//! - [`upload`]: the customer CSV upload (§2.22): preview, mapping, per-row skips.
//! - [`refs`]: `#C<n>` / `#T<n>` references in chat text.

pub mod chat;
pub mod export;
pub mod fields;
pub mod model;
pub mod refs;
pub mod upload;

use fields::{check_value, phone_key, FieldKind};
use model::{BusinessFormat, Case, Category, CustomField, Customer, Faq, Stamp, Tag, Workflow, WorkflowStep};
use std::collections::{BTreeMap, HashMap};

/// Customers kept: ~400 bytes each in RAM, so 50,000 stay near 20 MB on the board.
pub const MAX_CUSTOMERS: usize = 50_000;
/// Cases kept.
pub const MAX_CASES: usize = 50_000;
/// FAQ entries.
pub const MAX_FAQS: usize = 2_000;
/// Tags defined.
pub const MAX_TAGS: usize = 500;
/// Business formats.
pub const MAX_FORMATS: usize = 50;
/// Fields in one business format.
pub const MAX_FORMAT_FIELDS: usize = 60;
/// Custom fields (both categories).
pub const MAX_CUSTOM_FIELDS: usize = 100;
/// Workflows.
pub const MAX_WORKFLOWS: usize = 50;
/// Workflow steps.
pub const MAX_STEPS: usize = 500;
/// Phone numbers on one customer.
pub const MAX_PHONES: usize = 5;
/// Tags on one record.
pub const MAX_RECORD_TAGS: usize = 20;
/// Longest name, title, code or status, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Buttons on a workflow step (the manual's 1-4).
pub const MAX_STEP_BUTTONS: usize = 4;
/// Search results returned at once (the page pages through them).
pub const MAX_RESULTS: usize = 500;
/// Step timings kept for workflow statistics, oldest dropped first.
pub const MAX_STEP_LOG: usize = 100_000;

/// A refused field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, e.g. `name`, `phones[1]`, `fields.契約状況`.
    pub field: String,
    /// Why.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), message: message.into() }
}

/// Customer search criteria (§2.8 8.1); every set criterion must match.
#[derive(Debug, Clone, Default)]
pub struct CustomerQuery {
    /// Exact id.
    pub id: Option<u64>,
    /// Code contains.
    pub code: Option<String>,
    /// Name contains.
    pub name: Option<String>,
    /// Business format.
    pub format: Option<String>,
    /// A phone number contains these digits.
    pub phone: Option<String>,
    /// Has this tag.
    pub tag: Option<String>,
    /// Note contains.
    pub note: Option<String>,
    /// Field value contains, per field name.
    pub fields: Vec<(String, String)>,
}

/// The time a case spent in one workflow step. Stored (one record each, [`Record::StepTime`])
/// so the workflow statistics survive a restart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepTime {
    /// Rising number of the entry (its store key).
    pub seq: u64,
    /// The case.
    pub case: u64,
    /// Workflow and step.
    pub step: (String, String),
    /// Entered (Unix ms).
    pub entered_ms: u64,
    /// Left (Unix ms).
    pub left_ms: u64,
}

/// Workflow statistics of one step (§2.15): how many cases passed and how long they stayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepStats {
    /// Workflow and step.
    pub step: (String, String),
    /// Cases that left the step.
    pub passes: u64,
    /// Total time in the step, ms.
    pub total_ms: u64,
    /// Longest stay, ms.
    pub max_ms: u64,
    /// Shortest stay, ms (§2.15 最小時間).
    pub min_ms: u64,
}

/// Case search criteria (§2.8 8.2); every set criterion must match.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// Exact id.
    pub id: Option<u64>,
    /// Title contains.
    pub title: Option<String>,
    /// Status is.
    pub status: Option<String>,
    /// Linked to this customer.
    pub customer: Option<u64>,
    /// Owned by this web user.
    pub owner: Option<String>,
    /// Has this tag.
    pub tag: Option<String>,
    /// In this workflow.
    pub workflow: Option<String>,
    /// Title, detail or notes contain (詳細検索).
    pub text: Option<String>,
}

/// The whole CRM in memory.
#[derive(Debug, Default)]
pub struct Crm {
    customers: BTreeMap<u64, Customer>,
    cases: BTreeMap<u64, Case>,
    faqs: BTreeMap<u64, Faq>,
    tags: BTreeMap<String, Tag>,
    formats: BTreeMap<String, BusinessFormat>,
    custom_fields: Vec<CustomField>,
    workflows: BTreeMap<String, Workflow>,
    steps: BTreeMap<String, WorkflowStep>,
    next_customer: u64,
    next_case: u64,
    next_faq: u64,
    /// Phone key → customers with that number.
    by_phone: HashMap<String, Vec<u64>>,
    /// When each case entered its current step.
    step_since: HashMap<u64, u64>,
    step_log: std::collections::VecDeque<StepTime>,
    next_step_seq: u64,
    /// Step times logged since the owner last took them ([`Crm::take_step_times`]).
    new_step_times: Vec<StepTime>,
}

fn check_name(field: &str, v: &str, required: bool, errors: &mut Vec<FieldError>) -> String {
    let v = v.trim();
    if required && v.is_empty() {
        errors.push(err(field, "required"));
    } else if v.chars().count() > MAX_NAME_CHARS {
        errors.push(err(field, format!("at most {MAX_NAME_CHARS} characters")));
    } else if v.chars().any(char::is_control) {
        errors.push(err(field, "control characters are not allowed"));
    }
    v.to_string()
}

fn check_color(field: &str, v: &str, errors: &mut Vec<FieldError>) {
    let ok =
        v.is_empty() || (v.len() == 7 && v.starts_with('#') && v[1..].bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        errors.push(err(field, "a colour, #rrggbb"));
    }
}

impl Crm {
    /// An empty CRM.
    pub fn new() -> Crm {
        Crm { next_customer: 1, next_case: 1, next_faq: 1, ..Crm::default() }
    }

    // ----- tags, formats, custom fields, workflows (admin definitions) -----

    /// Adds or replaces a tag.
    pub fn put_tag(&mut self, mut tag: Tag) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        tag.name = check_name("name", &tag.name, true, &mut errors);
        check_color("fg", &tag.fg, &mut errors);
        check_color("bg", &tag.bg, &mut errors);
        if !self.tags.contains_key(&tag.name) && self.tags.len() >= MAX_TAGS {
            errors.push(err("name", format!("at most {MAX_TAGS} tags")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.tags.insert(tag.name.clone(), tag);
        Ok(())
    }

    /// Every tag.
    pub fn tags(&self) -> impl Iterator<Item = &Tag> {
        self.tags.values()
    }

    /// Adds or replaces a business format.
    pub fn put_format(&mut self, mut f: BusinessFormat, extensions: &[&str]) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        f.name = check_name("name", &f.name, true, &mut errors);
        if f.fields.len() > MAX_FORMAT_FIELDS {
            errors.push(err("fields", format!("at most {MAX_FORMAT_FIELDS} fields")));
        }
        let mut seen = Vec::new();
        for (i, field) in f.fields.iter_mut().enumerate() {
            field.name = check_name(&format!("fields[{i}].name"), &field.name, true, &mut errors);
            if seen.contains(&field.name) {
                errors.push(err(format!("fields[{i}].name"), "used twice"));
            }
            seen.push(field.name.clone());
            check_choices(&format!("fields[{i}].choices"), field.kind, &field.choices, &mut errors);
        }
        for a in &f.agents {
            if !extensions.contains(&a.as_str()) {
                errors.push(err("agents", format!("{a}: no such extension")));
            }
        }
        if !self.formats.contains_key(&f.name) && self.formats.len() >= MAX_FORMATS {
            errors.push(err("name", format!("at most {MAX_FORMATS} formats")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.formats.insert(f.name.clone(), f);
        Ok(())
    }

    /// Whether the agent on extension `ext` may use records of business format `format`
    /// (§2.23 CRM権限): a record without a format, a format without an agent list, or one that
    /// lists `ext`. A format that no longer exists restricts nobody.
    pub fn may_use_format(&self, format: Option<&str>, ext: Option<&str>) -> bool {
        match format.and_then(|f| self.formats.get(f)) {
            Some(f) if !f.agents.is_empty() => ext.is_some_and(|e| f.agents.iter().any(|a| a == e)),
            _ => true,
        }
    }

    /// A business format.
    pub fn format(&self, name: &str) -> Option<&BusinessFormat> {
        self.formats.get(name)
    }

    /// Adds or replaces a custom field (by category and name).
    pub fn put_custom_field(&mut self, mut f: CustomField) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        f.name = check_name("name", &f.name, true, &mut errors);
        if !matches!(f.kind, FieldKind::Text | FieldKind::Number | FieldKind::Date | FieldKind::List) {
            errors.push(err("kind", "text, number, date or list"));
        }
        check_choices("choices", f.kind, &f.choices, &mut errors);
        let existing = self.custom_fields.iter().position(|c| c.category == f.category && c.name == f.name);
        if existing.is_none() && self.custom_fields.len() >= MAX_CUSTOM_FIELDS {
            errors.push(err("name", format!("at most {MAX_CUSTOM_FIELDS} custom fields")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        match existing.and_then(|i| self.custom_fields.get_mut(i)) {
            Some(slot) => *slot = f,
            None => self.custom_fields.push(f),
        }
        Ok(())
    }

    /// Adds or replaces a workflow step. Buttons may name steps defined later; they are checked
    /// when a case moves.
    pub fn put_step(&mut self, mut s: WorkflowStep) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        s.name = check_name("name", &s.name, true, &mut errors);
        check_color("color", &s.color, &mut errors);
        if s.buttons.len() > MAX_STEP_BUTTONS {
            errors.push(err("buttons", format!("at most {MAX_STEP_BUTTONS} buttons")));
        }
        for (i, b) in s.buttons.iter_mut().enumerate() {
            b.label = check_name(&format!("buttons[{i}].label"), &b.label, true, &mut errors);
        }
        if !self.steps.contains_key(&s.name) && self.steps.len() >= MAX_STEPS {
            errors.push(err("name", format!("at most {MAX_STEPS} steps")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.steps.insert(s.name.clone(), s);
        Ok(())
    }

    /// Adds or replaces a workflow; its first step must exist.
    pub fn put_workflow(&mut self, mut w: Workflow) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        w.name = check_name("name", &w.name, true, &mut errors);
        if !self.steps.contains_key(&w.first_step) {
            errors.push(err("first_step", "no such step"));
        }
        if !self.workflows.contains_key(&w.name) && self.workflows.len() >= MAX_WORKFLOWS {
            errors.push(err("name", format!("at most {MAX_WORKFLOWS} workflows")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.workflows.insert(w.name.clone(), w);
        Ok(())
    }

    // ----- customers -----

    fn check_fields(
        &self,
        values: &mut BTreeMap<String, String>,
        format: Option<&BusinessFormat>,
        category: Category,
        errors: &mut Vec<FieldError>,
    ) {
        let mut checked = BTreeMap::new();
        for (name, value) in values.iter() {
            let spec = format
                .and_then(|f| {
                    f.fields.iter().find(|x| &x.name == name).map(|x| (x.kind, x.choices.as_slice()))
                })
                .or_else(|| {
                    self.custom_fields
                        .iter()
                        .find(|c| c.category == category && &c.name == name)
                        .map(|c| (c.kind, c.choices.as_slice()))
                });
            let Some((kind, choices)) = spec else {
                errors.push(err(format!("fields.{name}"), "no such field"));
                continue;
            };
            if value.trim().is_empty() {
                continue;
            }
            match check_value(kind, choices, value) {
                Ok(v) => {
                    checked.insert(name.clone(), v);
                }
                Err(m) => errors.push(err(format!("fields.{name}"), m)),
            }
        }
        if let Some(f) = format {
            for field in f.fields.iter().filter(|x| x.required) {
                if !checked.contains_key(&field.name) {
                    errors.push(err(format!("fields.{}", field.name), "required"));
                }
            }
        }
        *values = checked;
    }

    /// Creates (`id` 0) or updates a customer. `allow_duplicate_phone` lets a number already
    /// on another customer be saved (the CSV upload's 重複を許可する).
    pub fn put_customer(
        &mut self,
        mut c: Customer,
        stamp: Stamp,
        allow_duplicate_phone: bool,
    ) -> Result<u64, Vec<FieldError>> {
        let mut errors = Vec::new();
        let old = (c.id != 0).then(|| self.customers.get(&c.id).cloned());
        if let Some(None) = old {
            return Err(vec![err("id", "no such customer")]);
        }
        c.name = check_name("name", &c.name, true, &mut errors);
        c.code = check_name("code", &c.code, false, &mut errors);
        if c.phones.len() > MAX_PHONES {
            errors.push(err("phones", format!("at most {MAX_PHONES} numbers")));
        }
        let mut phones = Vec::new();
        for (i, p) in c.phones.iter().enumerate().filter(|(_, p)| !p.trim().is_empty()) {
            match check_value(FieldKind::Phone, &[], p) {
                Ok(v) => {
                    let key = phone_key(&v);
                    let taken = self.by_phone.get(&key).is_some_and(|ids| ids.iter().any(|id| *id != c.id));
                    if taken && !allow_duplicate_phone {
                        errors.push(err(format!("phones[{i}]"), "already on another customer"));
                    }
                    phones.push(v);
                }
                Err(m) => errors.push(err(format!("phones[{i}]"), m)),
            }
        }
        c.phones = phones;
        if !c.email.trim().is_empty() {
            if let Err(m) = check_value(FieldKind::Email, &[], &c.email) {
                errors.push(err("email", m));
            }
        }
        let format = match c.format.as_deref().filter(|f| !f.is_empty()) {
            Some(name) => match self.formats.get(name) {
                Some(f) => Some(f.clone()),
                None => {
                    errors.push(err("format", "no such business format"));
                    None
                }
            },
            None => None,
        };
        let mut values = std::mem::take(&mut c.fields);
        self.check_fields(&mut values, format.as_ref(), Category::Customer, &mut errors);
        c.fields = values;
        self.check_tags(&mut c.tags, &mut errors);
        if c.note.chars().count() > fields::MAX_LONG_TEXT_CHARS {
            errors.push(err("note", format!("at most {} characters", fields::MAX_LONG_TEXT_CHARS)));
        }
        if c.id == 0 && self.customers.len() >= MAX_CUSTOMERS {
            errors.push(err("id", format!("the CRM holds at most {MAX_CUSTOMERS} customers")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        match old.flatten() {
            Some(prev) => {
                self.unindex(&prev);
                c.created = prev.created;
            }
            None => {
                c.id = self.next_customer;
                self.next_customer += 1;
                c.created = stamp.clone();
            }
        }
        c.updated = stamp;
        for p in &c.phones {
            self.by_phone.entry(phone_key(p)).or_default().push(c.id);
        }
        let id = c.id;
        self.customers.insert(id, c);
        Ok(id)
    }

    fn unindex(&mut self, c: &Customer) {
        for p in &c.phones {
            let key = phone_key(p);
            if let Some(ids) = self.by_phone.get_mut(&key) {
                ids.retain(|id| *id != c.id);
                if ids.is_empty() {
                    self.by_phone.remove(&key);
                }
            }
        }
    }

    fn check_tags(&self, tags: &mut Vec<String>, errors: &mut Vec<FieldError>) {
        tags.iter_mut().for_each(|t| *t = t.trim().to_string());
        tags.retain(|t| !t.is_empty());
        tags.dedup();
        if tags.len() > MAX_RECORD_TAGS {
            errors.push(err("tags", format!("at most {MAX_RECORD_TAGS} tags")));
        }
        for t in tags.iter() {
            if !self.tags.contains_key(t) {
                errors.push(err("tags", format!("{t}: no such tag")));
            }
        }
    }

    /// Deletes a customer; its cases stay, without the link.
    pub fn delete_customer(&mut self, id: u64) -> bool {
        let Some(c) = self.customers.remove(&id) else { return false };
        self.unindex(&c);
        for case in self.cases.values_mut().filter(|k| k.customer == Some(id)) {
            case.customer = None;
        }
        true
    }

    /// A customer.
    pub fn customer(&self, id: u64) -> Option<&Customer> {
        self.customers.get(&id)
    }

    /// Screen pop (§2.8 CRM自動検索): the customers saved with the caller's number.
    pub fn find_by_phone(&self, number: &str) -> Vec<&Customer> {
        let key = phone_key(number);
        if key.is_empty() {
            return Vec::new();
        }
        self.by_phone
            .get(&key)
            .map(|ids| ids.iter().filter_map(|id| self.customers.get(id)).collect())
            .unwrap_or_default()
    }

    /// Customer search, at most [`MAX_RESULTS`] in id order.
    pub fn search_customers(&self, q: &CustomerQuery) -> Vec<&Customer> {
        // Text criteria fold case, full-width ASCII and hiragana (`やまだ` finds `ヤマダ`).
        let fold = crate::apps::phonebook::fold;
        let folded = |n: &Option<String>| n.as_deref().map(fold);
        let (code, name, note) = (folded(&q.code), folded(&q.name), folded(&q.note));
        let fields: Vec<(&String, String)> = q.fields.iter().map(|(k, v)| (k, fold(v))).collect();
        let contains =
            |hay: &str, n: &Option<String>| n.as_ref().is_none_or(|n| fold(hay).contains(n.as_str()));
        let phone = q.phone.as_deref().map(phone_key);
        self.customers
            .values()
            .filter(|c| q.id.is_none_or(|id| c.id == id))
            .filter(|c| contains(&c.code, &code) && contains(&c.name, &name) && contains(&c.note, &note))
            .filter(|c| q.format.as_ref().is_none_or(|f| c.format.as_ref() == Some(f)))
            .filter(|c| {
                phone.as_ref().is_none_or(|p| c.phones.iter().any(|x| phone_key(x).contains(p.as_str())))
            })
            .filter(|c| q.tag.as_ref().is_none_or(|t| c.tags.contains(t)))
            .filter(|c| {
                fields.iter().all(|(k, v)| c.fields.get(*k).is_some_and(|x| fold(x).contains(v.as_str())))
            })
            .take(MAX_RESULTS)
            .collect()
    }

    /// Customers in id order.
    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.values()
    }

    // ----- cases -----

    /// Creates (`id` 0) or updates a case. A new case with a workflow starts at its first step.
    pub fn put_case(&mut self, mut k: Case, stamp: Stamp) -> Result<u64, Vec<FieldError>> {
        let mut errors = Vec::new();
        let old = (k.id != 0).then(|| self.cases.get(&k.id).cloned());
        if let Some(None) = old {
            return Err(vec![err("id", "no such case")]);
        }
        k.title = check_name("title", &k.title, true, &mut errors);
        k.status = check_name("status", &k.status, false, &mut errors);
        if let Some(c) = k.customer {
            if !self.customers.contains_key(&c) {
                errors.push(err("customer", "no such customer"));
            }
        }
        if let Some((wf, step)) = &k.step {
            match self.workflows.get(wf) {
                None => errors.push(err("step", "no such workflow")),
                Some(w) if step.is_empty() => k.step = Some((wf.clone(), w.first_step.clone())),
                Some(_) if !self.steps.contains_key(step) => errors.push(err("step", "no such step")),
                Some(_) => {}
            }
        }
        let mut values = std::mem::take(&mut k.fields);
        self.check_fields(&mut values, None, Category::Case, &mut errors);
        k.fields = values;
        self.check_tags(&mut k.tags, &mut errors);
        for (name, v) in [("detail", &k.detail), ("notes", &k.notes)] {
            if v.chars().count() > fields::MAX_LONG_TEXT_CHARS {
                errors.push(err(name, format!("at most {} characters", fields::MAX_LONG_TEXT_CHARS)));
            }
        }
        if k.id == 0 && self.cases.len() >= MAX_CASES {
            errors.push(err("id", format!("the CRM holds at most {MAX_CASES} cases")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let now = stamp.at_ms;
        match old.flatten() {
            Some(prev) => {
                k.created = prev.created;
                if prev.step != k.step {
                    self.log_step(k.id, prev.step.as_ref(), now);
                }
            }
            None => {
                k.id = self.next_case;
                self.next_case += 1;
                k.created = stamp.clone();
            }
        }
        k.step_entered_ms = match k.step {
            Some(_) => *self.step_since.entry(k.id).or_insert(now),
            None => 0,
        };
        k.updated = stamp;
        let id = k.id;
        self.cases.insert(id, k);
        Ok(id)
    }

    fn log_step(&mut self, case: u64, left: Option<&(String, String)>, now: u64) {
        if let (Some(step), Some(since)) = (left, self.step_since.remove(&case)) {
            let t = StepTime {
                seq: self.next_step_seq,
                case,
                step: step.clone(),
                entered_ms: since,
                left_ms: now,
            };
            self.next_step_seq += 1;
            self.new_step_times.push(t.clone());
            if self.step_log.len() >= MAX_STEP_LOG {
                self.step_log.pop_front();
            }
            self.step_log.push_back(t);
        }
    }

    /// Presses button `button` (0-3) of the case's current step: the case moves to that
    /// button's next step, or leaves the workflow when it has none.
    pub fn press_step_button(&mut self, case: u64, button: usize, stamp: Stamp) -> Result<(), FieldError> {
        let k = self.cases.get(&case).ok_or_else(|| err("id", "no such case"))?;
        let (wf, step) = k.step.clone().ok_or_else(|| err("step", "the case is in no workflow"))?;
        let s = self.steps.get(&step).ok_or_else(|| err("step", "the step was deleted"))?;
        let b = s.buttons.get(button).ok_or_else(|| err("button", "no such button"))?;
        let next = match &b.next {
            Some(n) if self.steps.contains_key(n) => Some((wf.clone(), n.clone())),
            Some(_) => return Err(err("button", "its next step was deleted")),
            None => None,
        };
        self.log_step(case, Some(&(wf, step)), stamp.at_ms);
        if next.is_some() {
            self.step_since.insert(case, stamp.at_ms);
        }
        if let Some(k) = self.cases.get_mut(&case) {
            k.step_entered_ms = if next.is_some() { stamp.at_ms } else { 0 };
            k.step = next;
            k.updated = stamp;
        }
        Ok(())
    }

    /// A case.
    pub fn case(&self, id: u64) -> Option<&Case> {
        self.cases.get(&id)
    }

    /// The cases of a customer (its page's 案件 tab).
    pub fn cases_of(&self, customer: u64) -> Vec<&Case> {
        self.cases.values().filter(|k| k.customer == Some(customer)).collect()
    }

    /// Deletes a case.
    pub fn delete_case(&mut self, id: u64) -> bool {
        self.step_since.remove(&id);
        self.cases.remove(&id).is_some()
    }

    /// The step times logged since the last call, for the owner to store. An entry whose
    /// `seq` is [`MAX_STEP_LOG`] or more below the newest has left the log (the owner deletes
    /// its record).
    pub fn take_step_times(&mut self) -> Vec<StepTime> {
        std::mem::take(&mut self.new_step_times)
    }

    /// Workflow statistics (§2.15): per step, passes and time spent, for steps left in
    /// `[from_ms, to_ms)`.
    pub fn workflow_stats(&self, from_ms: u64, to_ms: u64) -> Vec<StepStats> {
        let mut by: BTreeMap<(String, String), StepStats> = BTreeMap::new();
        for t in self.step_log.iter().filter(|t| (from_ms..to_ms).contains(&t.left_ms)) {
            let s = by.entry(t.step.clone()).or_insert_with(|| StepStats {
                step: t.step.clone(),
                passes: 0,
                total_ms: 0,
                max_ms: 0,
                min_ms: u64::MAX,
            });
            let d = t.left_ms.saturating_sub(t.entered_ms);
            s.passes += 1;
            s.total_ms = s.total_ms.saturating_add(d);
            s.max_ms = s.max_ms.max(d);
            s.min_ms = s.min_ms.min(d);
        }
        by.into_values().collect()
    }

    /// Cases matching `q`, at most [`MAX_RESULTS`] in id order.
    pub fn search_cases(&self, q: &CaseQuery) -> Vec<&Case> {
        let fold = crate::apps::phonebook::fold;
        let title = q.title.as_deref().map(fold);
        let text = q.text.as_deref().map(fold);
        let has = |hay: &str, n: &Option<String>| n.as_ref().is_none_or(|n| fold(hay).contains(n.as_str()));
        self.cases
            .values()
            .filter(|k| q.id.is_none_or(|id| k.id == id))
            .filter(|k| has(&k.title, &title))
            .filter(|k| q.status.as_ref().is_none_or(|s| &k.status == s))
            .filter(|k| q.customer.is_none_or(|c| k.customer == Some(c)))
            .filter(|k| q.owner.as_ref().is_none_or(|o| k.owner.as_ref() == Some(o)))
            .filter(|k| q.tag.as_ref().is_none_or(|t| k.tags.contains(t)))
            .filter(|k| q.workflow.as_ref().is_none_or(|w| k.step.as_ref().is_some_and(|(x, _)| x == w)))
            .filter(|k| {
                text.is_none() || has(&k.title, &text) || has(&k.detail, &text) || has(&k.notes, &text)
            })
            .take(MAX_RESULTS)
            .collect()
    }

    // ----- listing and deleting definitions -----

    /// Every business format, by name.
    pub fn formats(&self) -> impl Iterator<Item = &BusinessFormat> {
        self.formats.values()
    }

    /// Every custom field, in creation order.
    pub fn custom_fields(&self) -> &[CustomField] {
        &self.custom_fields
    }

    /// Every workflow, by name.
    pub fn workflows(&self) -> impl Iterator<Item = &Workflow> {
        self.workflows.values()
    }

    /// A workflow.
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.get(name)
    }

    /// Every workflow step, by name.
    pub fn steps(&self) -> impl Iterator<Item = &WorkflowStep> {
        self.steps.values()
    }

    /// A workflow step.
    pub fn step(&self, name: &str) -> Option<&WorkflowStep> {
        self.steps.get(name)
    }

    /// A tag.
    pub fn tag(&self, name: &str) -> Option<&Tag> {
        self.tags.get(name)
    }

    /// Records carrying tag `name`: a tag in use cannot be deleted, since the records would
    /// then fail their own checks on the next save.
    fn tag_uses(&self, name: &str) -> usize {
        let n = |tags: &Vec<String>| usize::from(tags.iter().any(|t| t == name));
        self.customers.values().map(|c| n(&c.tags)).sum::<usize>()
            + self.cases.values().map(|k| n(&k.tags)).sum::<usize>()
            + self.faqs.values().map(|f| n(&f.tags)).sum::<usize>()
    }

    /// Deletes a tag no record carries. `Ok(false)`: there was none.
    pub fn delete_tag(&mut self, name: &str) -> Result<bool, FieldError> {
        if !self.tags.contains_key(name) {
            return Ok(false);
        }
        let uses = self.tag_uses(name);
        if uses > 0 {
            return Err(err("name", format!("{uses} records carry this tag; remove it from them first")));
        }
        Ok(self.tags.remove(name).is_some())
    }

    /// Deletes a business format no customer uses. `Ok(false)`: there was none.
    pub fn delete_format(&mut self, name: &str) -> Result<bool, FieldError> {
        if !self.formats.contains_key(name) {
            return Ok(false);
        }
        let uses = self.customers.values().filter(|c| c.format.as_deref() == Some(name)).count();
        if uses > 0 {
            return Err(err("name", format!("{uses} customers use this format")));
        }
        Ok(self.formats.remove(name).is_some())
    }

    /// Deletes a custom field. Values already saved stay on their records until the record
    /// is saved again (then they are refused as `no such field`, so the page drops them).
    pub fn delete_custom_field(&mut self, category: Category, name: &str) -> bool {
        let before = self.custom_fields.len();
        self.custom_fields.retain(|c| !(c.category == category && c.name == name));
        before != self.custom_fields.len()
    }

    /// Deletes a workflow no case is in. `Ok(false)`: there was none.
    pub fn delete_workflow(&mut self, name: &str) -> Result<bool, FieldError> {
        if !self.workflows.contains_key(name) {
            return Ok(false);
        }
        let uses = self.cases.values().filter(|k| k.step.as_ref().is_some_and(|(w, _)| w == name)).count();
        if uses > 0 {
            return Err(err("name", format!("{uses} cases are in this workflow")));
        }
        Ok(self.workflows.remove(name).is_some())
    }

    /// Deletes a step that is no workflow's first step and holds no case. `Ok(false)`: there
    /// was none. A button of another step naming it is then refused when pressed (`its next
    /// step was deleted`) until the step is edited.
    pub fn delete_step(&mut self, name: &str) -> Result<bool, FieldError> {
        if !self.steps.contains_key(name) {
            return Ok(false);
        }
        if let Some(w) = self.workflows.values().find(|w| w.first_step == name) {
            return Err(err("name", format!("the first step of workflow {}", w.name)));
        }
        let uses = self.cases.values().filter(|k| k.step.as_ref().is_some_and(|(_, s)| s == name)).count();
        if uses > 0 {
            return Err(err("name", format!("{uses} cases are at this step")));
        }
        Ok(self.steps.remove(name).is_some())
    }

    // ----- FAQ -----

    /// An FAQ entry.
    pub fn faq(&self, id: u64) -> Option<&Faq> {
        self.faqs.get(&id)
    }

    /// Deletes an FAQ entry.
    pub fn delete_faq(&mut self, id: u64) -> bool {
        self.faqs.remove(&id).is_some()
    }

    /// Creates (`id` 0) or updates an FAQ entry.
    pub fn put_faq(&mut self, mut f: Faq, stamp: Stamp) -> Result<u64, Vec<FieldError>> {
        let mut errors = Vec::new();
        f.title = check_name("title", &f.title, true, &mut errors);
        if f.detail.chars().count() > fields::MAX_LONG_TEXT_CHARS {
            errors.push(err("detail", format!("at most {} characters", fields::MAX_LONG_TEXT_CHARS)));
        }
        self.check_tags(&mut f.tags, &mut errors);
        let old = (f.id != 0).then(|| self.faqs.get(&f.id).map(|x| x.created.clone()));
        if let Some(None) = old {
            errors.push(err("id", "no such FAQ"));
        }
        if f.id == 0 && self.faqs.len() >= MAX_FAQS {
            errors.push(err("id", format!("at most {MAX_FAQS} FAQ entries")));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        match old.flatten() {
            Some(created) => f.created = created,
            None => {
                f.id = self.next_faq;
                self.next_faq += 1;
                f.created = stamp.clone();
            }
        }
        f.updated = stamp;
        let id = f.id;
        self.faqs.insert(id, f);
        Ok(id)
    }

    /// FAQ entries whose title or detail contains `word` (empty: all).
    pub fn search_faq(&self, word: &str) -> Vec<&Faq> {
        let fold = crate::apps::phonebook::fold;
        let word = fold(word);
        self.faqs
            .values()
            .filter(|f| fold(&f.title).contains(&word) || fold(&f.detail).contains(&word))
            .take(MAX_RESULTS)
            .collect()
    }
}

/// One stored CRM record, as the store keeps it (one key each).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "record", rename_all = "snake_case")]
pub enum Record {
    /// A customer.
    Customer(Customer),
    /// A case.
    Case(Case),
    /// An FAQ entry.
    Faq(Faq),
    /// A tag.
    Tag(Tag),
    /// A business format.
    Format(BusinessFormat),
    /// A custom field.
    Field(CustomField),
    /// A workflow.
    Workflow(Workflow),
    /// A workflow step.
    Step(WorkflowStep),
    /// The time a case spent in a step (workflow statistics).
    StepTime(StepTime),
}

impl Record {
    /// The store key of step time `seq` (so the owner can delete one that left the log).
    pub fn step_time_key(seq: u64) -> String {
        format!("steplog/{seq:016}")
    }

    /// The store key: kind and id or name (ids zero-padded so key order is id order).
    pub fn key(&self) -> String {
        match self {
            Record::Customer(c) => format!("customer/{:016}", c.id),
            Record::Case(k) => format!("case/{:016}", k.id),
            Record::Faq(f) => format!("faq/{:016}", f.id),
            Record::Tag(t) => format!("tag/{}", t.name),
            Record::Format(f) => format!("format/{}", f.name),
            Record::Field(f) => {
                let cat = if f.category == Category::Case { "case" } else { "customer" };
                format!("field/{cat}/{}", f.name)
            }
            Record::Workflow(w) => format!("workflow/{}", w.name),
            Record::Step(s) => format!("step/{}", s.name),
            Record::StepTime(t) => Record::step_time_key(t.seq),
        }
    }
}

/// The next ids the CRM hands out (customer, case, FAQ), stored beside the records so a
/// deleted record's id is never given to a new one (`#C<n>` in old chat lines stays right).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NextIds {
    /// Next customer id.
    pub customer: u64,
    /// Next case id.
    pub case: u64,
    /// Next FAQ id.
    pub faq: u64,
}

impl Crm {
    /// The next ids (see [`NextIds`]).
    pub fn next_ids(&self) -> NextIds {
        NextIds { customer: self.next_customer, case: self.next_case, faq: self.next_faq }
    }

    /// Raises the next ids to at least `n` (at load; never lowers them).
    pub fn raise_next_ids(&mut self, n: NextIds) {
        self.next_customer = self.next_customer.max(n.customer);
        self.next_case = self.next_case.max(n.case);
        self.next_faq = self.next_faq.max(n.faq);
    }

    /// Puts back a record read from the store at start, without the checks (they held when it
    /// was stored), rebuilding the phone index and the next ids. Definitions (tags, formats,
    /// fields, steps, workflows) should come before the records that use them; the store's key
    /// order does not matter for correctness here since nothing is re-checked.
    pub fn restore(&mut self, record: Record) {
        match record {
            Record::Customer(c) => {
                self.next_customer = self.next_customer.max(c.id.saturating_add(1));
                if let Some(prev) = self.customers.get(&c.id).cloned() {
                    self.unindex(&prev);
                }
                for p in &c.phones {
                    self.by_phone.entry(phone_key(p)).or_default().push(c.id);
                }
                self.customers.insert(c.id, c);
            }
            Record::Case(k) => {
                self.next_case = self.next_case.max(k.id.saturating_add(1));
                if k.step.is_some() {
                    // Records stored before the entry time was kept fall back to the update.
                    let since = if k.step_entered_ms != 0 { k.step_entered_ms } else { k.updated.at_ms };
                    self.step_since.insert(k.id, since);
                }
                self.cases.insert(k.id, k);
            }
            Record::Faq(f) => {
                self.next_faq = self.next_faq.max(f.id.saturating_add(1));
                self.faqs.insert(f.id, f);
            }
            Record::Tag(t) => {
                self.tags.insert(t.name.clone(), t);
            }
            Record::Format(f) => {
                self.formats.insert(f.name.clone(), f);
            }
            Record::Field(f) => {
                self.custom_fields.retain(|c| !(c.category == f.category && c.name == f.name));
                self.custom_fields.push(f);
            }
            Record::Workflow(w) => {
                self.workflows.insert(w.name.clone(), w);
            }
            Record::Step(s) => {
                self.steps.insert(s.name.clone(), s);
            }
            Record::StepTime(t) => {
                self.next_step_seq = self.next_step_seq.max(t.seq.saturating_add(1));
                if self.step_log.len() >= MAX_STEP_LOG {
                    self.step_log.pop_front();
                }
                self.step_log.push_back(t);
            }
        }
    }
}

fn check_choices(field: &str, kind: FieldKind, choices: &[String], errors: &mut Vec<FieldError>) {
    let needs = matches!(kind, FieldKind::List | FieldKind::Radio | FieldKind::Checkbox);
    if needs && choices.is_empty() {
        errors.push(err(field, "a list needs choices"));
    }
    if choices.len() > fields::MAX_CHOICES {
        errors.push(err(field, format!("at most {} choices", fields::MAX_CHOICES)));
    }
    if choices.iter().any(|c| c.trim().is_empty() || c.contains(';') || c.chars().count() > MAX_NAME_CHARS) {
        errors.push(err(field, "choices must be non-empty, without `;`"));
    }
}

#[cfg(test)]
mod tests;
