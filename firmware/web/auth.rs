//! The sans-IO core of web security: roles and permissions, the password policy, login
//! lockout and the session table. No clock, no socket, no disk: every call takes `now`, so the
//! lockout and expiry rules are unit-tested with a virtual clock.
//!
//! The HTTP layer (`api`) asks [`Gate`] three questions: may this id try a password now
//! ([`Gate::check_login`]), what happened ([`Gate::record_failure`] / [`Gate::login`]), and who
//! holds this cookie ([`Gate::session`]).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Failed passwords in a row before an account locks (seed 004 asks for a lock; 5 stops
/// guessing but forgives a few typos).
pub const MAX_FAILED_LOGINS: u32 = 5;

/// How long a locked account stays locked.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// Login ids whose failures are remembered, known or not. Unknown ids are tracked too so a
/// lock does not tell an attacker which ids exist; beyond this the oldest entry is forgotten.
pub const MAX_TRACKED_IDS: usize = 1024;

/// A session ends after this long without a request: an unattended admin screen on a shared
/// desk should not stay open all day.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// A session ends this long after login whatever its activity (one working day).
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);

/// Password length in characters (seed 004 §2.21: 10-20, upper, lower and digit).
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=20;

/// Login id length: seed 004 §2.21 says "half-width alphanumerics"; 32 fits any naming scheme.
pub const USER_ID_CHARS: std::ops::RangeInclusive<usize> = 1..=32;

/// Display-name length in characters (the same bound as an extension's name).
pub const USER_NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=64;

/// Role-name length in characters.
pub const ROLE_NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=32;

/// Bytes of a session token and of a CSRF token before hex: 256 bits cannot be guessed.
pub const TOKEN_BYTES: usize = 32;

/// One right a role may hold. The subset of seed 002 §2.35's matrix that the box has pages
/// for; later pages add variants (and the admin role gets them automatically).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Permission {
    /// The dashboard: health, registrations, calls.
    DashboardView,
    /// The user list (read).
    UsersView,
    /// Create, edit and delete users.
    UsersEdit,
    /// Create, edit and delete roles (権限設定).
    RolesEdit,
    /// See who is logged in.
    SessionsView,
    /// End another user's session (forced logout, seed 004 §2.7).
    SessionsLogout,
    /// Read the audit log.
    AuditView,
    /// PBX settings, certificates (PBX設定).
    SettingsEdit,
    /// The real-time monitor (リアルタイム 表示).
    MonitorView,
    /// Listen, whisper and barge (通話機能 モニタリング / ウィスパリング).
    MonitorListen,
    /// Reports and their CSV (統計 表示 / ダウンロード).
    ReportsView,
    /// Call history and recordings (通話履歴 表示 / 音声ファイル).
    HistoryView,
    /// The operator screen (オペレーター内線).
    OperatorPhone,
    /// Change one's own agent state and queue availability, through the extension bound to
    /// the user (ステータス 更新).
    AgentStateOwn,
    /// Change any agent's state and queue availability (リアルタイム エージェントステータス).
    AgentStateEdit,
    /// One's own voicemail box and the recordings of one's own calls, through the extension
    /// bound to the user (ボイスメール / 自分の通話録音).
    MediaOwn,
    /// Read the shared phonebook and keep one's own personal entries (電話帳 表示).
    PhonebookView,
    /// Create, edit, delete and import shared phonebook entries (電話帳 編集).
    PhonebookEdit,
    /// Firmware update, backup download and restore (システム管理); admins only by default.
    SystemEdit,
    /// Read the CRM: customers, cases, FAQ, tags and the definitions (CRM 表示); the screen
    /// pop of one's own extension.
    CrmView,
    /// Create, edit, bulk edit and delete customers, cases and FAQ, move cases along their
    /// workflow (CRM 更新 / 削除).
    CrmEdit,
    /// Tags, business formats, custom fields, workflows and steps, the customer CSV upload
    /// and workflow statistics (SV / 管理設定).
    CrmAdmin,
    /// Presence and chat (プレゼンス / チャット 表示 / 投稿).
    ChatUse,
    /// Campaigns, their lists and statistics (read); results of one's own campaign calls and
    /// one's recall list (再コール一覧).
    CampaignView,
    /// Add and upload campaign entries, enter any result (キャンペーン / 自動発信).
    CampaignEdit,
}

impl Permission {
    /// Every permission, in display order.
    pub const ALL: [Permission; 25] = [
        Permission::DashboardView,
        Permission::UsersView,
        Permission::UsersEdit,
        Permission::RolesEdit,
        Permission::SessionsView,
        Permission::SessionsLogout,
        Permission::AuditView,
        Permission::SettingsEdit,
        Permission::MonitorView,
        Permission::MonitorListen,
        Permission::ReportsView,
        Permission::HistoryView,
        Permission::OperatorPhone,
        Permission::AgentStateOwn,
        Permission::AgentStateEdit,
        Permission::MediaOwn,
        Permission::PhonebookView,
        Permission::PhonebookEdit,
        Permission::SystemEdit,
        Permission::CrmView,
        Permission::CrmEdit,
        Permission::CrmAdmin,
        Permission::ChatUse,
        Permission::CampaignView,
        Permission::CampaignEdit,
    ];
}

/// The built-in role that holds every permission and cannot be edited or deleted, so the box
/// always has someone who can manage users.
pub const ADMIN_ROLE: &str = "admin";
/// The built-in supervisor role (SV); its permissions are editable.
pub const SUPERVISOR_ROLE: &str = "supervisor";
/// The built-in agent role (エージェント); its permissions are editable.
pub const AGENT_ROLE: &str = "agent";

/// A named permission set (seed 002 §2.35: roles are named permission sets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The role's name, unique.
    pub name: String,
    /// What holders may do.
    pub permissions: BTreeSet<Permission>,
}

impl Role {
    /// The admin role's permissions are always all of them, even ones added by a later
    /// firmware after the role was stored.
    pub fn effective(&self) -> BTreeSet<Permission> {
        if self.name == ADMIN_ROLE {
            Permission::ALL.into_iter().collect()
        } else {
            self.permissions.clone()
        }
    }
}

/// The three roles of a fresh box (seed 002 §2.35: システム管理者, SV, エージェント).
pub fn default_roles() -> Vec<Role> {
    use Permission::*;
    vec![
        Role { name: ADMIN_ROLE.into(), permissions: Permission::ALL.into_iter().collect() },
        Role {
            name: SUPERVISOR_ROLE.into(),
            permissions: [
                DashboardView,
                UsersView,
                SessionsView,
                SessionsLogout,
                AuditView,
                MonitorView,
                MonitorListen,
                ReportsView,
                HistoryView,
                AgentStateEdit,
                PhonebookView,
                PhonebookEdit,
                CrmView,
                CrmEdit,
                CrmAdmin,
                ChatUse,
                CampaignView,
                CampaignEdit,
            ]
            .into_iter()
            .collect(),
        },
        Role {
            name: AGENT_ROLE.into(),
            permissions: [
                DashboardView,
                OperatorPhone,
                AgentStateOwn,
                MediaOwn,
                PhonebookView,
                CrmView,
                CrmEdit,
                ChatUse,
                CampaignView,
            ]
            .into_iter()
            .collect(),
        },
    ]
}

/// Why a password was refused; the message is shown next to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// Fewer or more characters than [`PASSWORD_CHARS`].
    Length,
    /// A character outside printable ASCII (seed 004: half-width alphanumerics).
    Charset,
    /// No upper-case letter, lower-case letter or digit.
    Mix,
}

impl std::fmt::Display for PasswordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordError::Length => {
                write!(f, "must be {} to {} characters", PASSWORD_CHARS.start(), PASSWORD_CHARS.end())
            }
            PasswordError::Charset => f.write_str("only half-width letters, digits and symbols"),
            PasswordError::Mix => {
                f.write_str("must contain an upper-case letter, a lower-case letter and a digit")
            }
        }
    }
}

/// Checks the password policy of seed 004 §2.21. Symbols are allowed (they only add
/// strength); other characters are not, because phones and keyboards differ on them.
pub fn check_password(p: &str) -> Result<(), PasswordError> {
    if !p.chars().all(|c| c.is_ascii_graphic()) {
        return Err(PasswordError::Charset);
    }
    if !PASSWORD_CHARS.contains(&p.len()) {
        return Err(PasswordError::Length);
    }
    let upper = p.chars().any(|c| c.is_ascii_uppercase());
    let lower = p.chars().any(|c| c.is_ascii_lowercase());
    let digit = p.chars().any(|c| c.is_ascii_digit());
    if upper && lower && digit {
        Ok(())
    } else {
        Err(PasswordError::Mix)
    }
}

/// Checks a login id: half-width letters, digits, `.`, `_`, `-`; starts with a letter or digit.
pub fn check_user_id(id: &str) -> Result<(), String> {
    let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let starts_ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !USER_ID_CHARS.contains(&id.len()) || !ok_chars || !starts_ok {
        return Err(format!(
            "{}-{} half-width letters, digits, `.`, `_` or `-`, starting with a letter or digit",
            USER_ID_CHARS.start(),
            USER_ID_CHARS.end()
        ));
    }
    Ok(())
}

/// Checks a display name or role name: `chars` characters, no control characters.
pub fn check_name(name: &str, chars: std::ops::RangeInclusive<usize>) -> Result<(), String> {
    let n = name.chars().count();
    if !chars.contains(&n) || name.chars().any(char::is_control) || name.trim() != name {
        return Err(format!(
            "{}-{} characters, no control characters or surrounding spaces",
            chars.start(),
            chars.end()
        ));
    }
    Ok(())
}

/// The answer to "may this id try a password now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCheck {
    /// Go on and verify the password.
    Allowed,
    /// Locked; try again after this long.
    Locked(Duration),
}

/// What a recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted; this many tries remain before the lock.
    Counted(u32),
    /// This failure locked the account (the audit log records it once).
    JustLocked,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// One logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The login id.
    pub user: String,
    /// The CSRF token the pages send back in `X-CSRF-Token`.
    pub csrf: String,
    /// When the session began.
    pub created: Instant,
    /// The last request.
    pub last_seen: Instant,
    /// The client's address at login, for the sessions list.
    pub peer: String,
}

/// Login lockout and the session table. One per box, behind a mutex in the HTTP layer.
#[derive(Debug, Default)]
pub struct Gate {
    failures: HashMap<String, Failures>,
    /// Ids in `failures`, oldest first, for eviction at [`MAX_TRACKED_IDS`].
    failure_order: VecDeque<String>,
    /// Session token → session.
    sessions: HashMap<String, Session>,
    /// Login id → its one session token.
    by_user: HashMap<String, String>,
}

/// Ids are compared without case so `Admin` and `admin` share one failure counter.
fn fold(id: &str) -> String {
    id.to_ascii_lowercase()
}

impl Gate {
    /// An empty gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// May `id` try a password at `now`?
    pub fn check_login(&mut self, id: &str, now: Instant) -> LoginCheck {
        let key = fold(id);
        match self.failures.get_mut(&key) {
            Some(f) => match f.locked_until {
                Some(until) if until > now => LoginCheck::Locked(until - now),
                Some(_) => {
                    // The lock ran out: a fresh start.
                    f.locked_until = None;
                    f.count = 0;
                    LoginCheck::Allowed
                }
                None => LoginCheck::Allowed,
            },
            None => LoginCheck::Allowed,
        }
    }

    /// Counts a wrong password for `id` (known or not).
    pub fn record_failure(&mut self, id: &str, now: Instant) -> FailureOutcome {
        let key = fold(id);
        if !self.failures.contains_key(&key) {
            if self.failures.len() >= MAX_TRACKED_IDS {
                if let Some(old) = self.failure_order.pop_front() {
                    self.failures.remove(&old);
                }
            }
            self.failure_order.push_back(key.clone());
        }
        let f = self.failures.entry(key).or_insert(Failures { count: 0, locked_until: None });
        f.count = f.count.saturating_add(1);
        if f.count >= MAX_FAILED_LOGINS {
            f.locked_until = Some(now + LOCKOUT);
            FailureOutcome::JustLocked
        } else {
            FailureOutcome::Counted(MAX_FAILED_LOGINS - f.count)
        }
    }

    /// Lifts a lock (admin reset).
    pub fn unlock(&mut self, id: &str) {
        let key = fold(id);
        self.failures.remove(&key);
        self.failure_order.retain(|k| *k != key);
    }

    /// A successful login: clears the failures and makes `token` the user's only session,
    /// ending the previous one (returned, for the audit log).
    pub fn login(
        &mut self,
        user: &str,
        token: String,
        csrf: String,
        peer: String,
        now: Instant,
    ) -> Option<Session> {
        self.unlock(user);
        let old = self.logout_user(user);
        self.by_user.insert(user.to_string(), token.clone());
        self.sessions
            .insert(token, Session { user: user.to_string(), csrf, created: now, last_seen: now, peer });
        old
    }

    /// The session behind a cookie token, refreshed; `None` when unknown or expired (an
    /// expired one is removed).
    pub fn session(&mut self, token: &str, now: Instant) -> Option<Session> {
        let expired = match self.sessions.get(token) {
            None => return None,
            Some(s) => {
                now.saturating_duration_since(s.last_seen) > SESSION_IDLE
                    || now.saturating_duration_since(s.created) > SESSION_MAX_AGE
            }
        };
        if expired {
            self.remove_token(token);
            return None;
        }
        let s = self.sessions.get_mut(token)?;
        s.last_seen = now;
        Some(s.clone())
    }

    /// Ends the session of `token`.
    pub fn logout(&mut self, token: &str) -> Option<Session> {
        self.remove_token(token)
    }

    /// Ends `user`'s session, if any (forced logout, password reset, deletion).
    pub fn logout_user(&mut self, user: &str) -> Option<Session> {
        let token = self.by_user.get(user)?.clone();
        self.remove_token(&token)
    }

    /// Sessions alive at `now`, sorted by user; expired ones are dropped on the way.
    pub fn sessions(&mut self, now: Instant) -> Vec<Session> {
        let tokens: Vec<String> = self.sessions.keys().cloned().collect();
        let mut out: Vec<Session> = tokens.iter().filter_map(|t| self.session_peek(t, now)).collect();
        out.sort_by(|a, b| a.user.cmp(&b.user));
        out
    }

    /// Like [`Gate::session`] without refreshing `last_seen` (listing is not activity).
    fn session_peek(&mut self, token: &str, now: Instant) -> Option<Session> {
        let s = self.sessions.get(token)?.clone();
        if now.saturating_duration_since(s.last_seen) > SESSION_IDLE
            || now.saturating_duration_since(s.created) > SESSION_MAX_AGE
        {
            self.remove_token(token);
            return None;
        }
        Some(s)
    }

    fn remove_token(&mut self, token: &str) -> Option<Session> {
        let s = self.sessions.remove(token)?;
        if self.by_user.get(&s.user).is_some_and(|t| t == token) {
            self.by_user.remove(&s.user);
        }
        Some(s)
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tests for the password policy.

    #[test]
    fn policy_accepts_ten_to_twenty_with_upper_lower_and_digit() {
        assert_eq!(check_password("Abcdefgh12"), Ok(()));
        assert_eq!(check_password("Abcdefgh12Abcdefgh12"), Ok(()));
        assert_eq!(check_password("Abcdefgh!2"), Ok(()));
    }

    #[test]
    fn policy_refuses_short_long_unmixed_and_non_ascii() {
        assert_eq!(check_password("Abcdefg12"), Err(PasswordError::Length));
        assert_eq!(check_password("Abcdefgh12Abcdefgh123"), Err(PasswordError::Length));
        assert_eq!(check_password("abcdefgh12"), Err(PasswordError::Mix));
        assert_eq!(check_password("ABCDEFGH12"), Err(PasswordError::Mix));
        assert_eq!(check_password("Abcdefghij"), Err(PasswordError::Mix));
        assert_eq!(check_password("Abcdefgh1２"), Err(PasswordError::Charset));
        assert_eq!(check_password("Abcd efgh12"), Err(PasswordError::Charset));
    }

    #[test]
    fn user_ids_are_half_width_and_bounded() {
        assert!(check_user_id("demo301").is_ok());
        assert!(check_user_id("kanri.sv-1").is_ok());
        assert!(check_user_id("").is_err());
        assert!(check_user_id("-x").is_err());
        assert!(check_user_id("管理者").is_err());
        assert!(check_user_id(&"a".repeat(33)).is_err());
    }

    #[test]
    fn the_admin_role_always_holds_every_permission() {
        let stored = Role { name: ADMIN_ROLE.into(), permissions: BTreeSet::new() };
        assert_eq!(stored.effective().len(), Permission::ALL.len());
        let agent = Role { name: AGENT_ROLE.into(), permissions: BTreeSet::new() };
        assert!(agent.effective().is_empty());
    }

    // Tests for the lockout.

    #[test]
    fn the_fifth_failure_locks_for_fifteen_minutes() {
        let t0 = Instant::now();
        let mut g = Gate::new();
        for i in 1..MAX_FAILED_LOGINS {
            assert_eq!(g.record_failure("admin", t0), FailureOutcome::Counted(MAX_FAILED_LOGINS - i));
        }
        assert_eq!(g.record_failure("ADMIN", t0), FailureOutcome::JustLocked);
        assert_eq!(
            g.check_login("admin", t0 + Duration::from_secs(60)),
            LoginCheck::Locked(LOCKOUT - Duration::from_secs(60))
        );
        assert_eq!(g.check_login("admin", t0 + LOCKOUT + Duration::from_secs(1)), LoginCheck::Allowed);
        // After the lock runs out the count starts again.
        assert_eq!(g.record_failure("admin", t0 + LOCKOUT), FailureOutcome::Counted(MAX_FAILED_LOGINS - 1));
    }

    #[test]
    fn a_successful_login_clears_the_failures() {
        let t0 = Instant::now();
        let mut g = Gate::new();
        for _ in 1..MAX_FAILED_LOGINS {
            g.record_failure("sv", t0);
        }
        g.login("sv", "t".into(), "c".into(), "p".into(), t0);
        assert_eq!(g.record_failure("sv", t0), FailureOutcome::Counted(MAX_FAILED_LOGINS - 1));
    }

    #[test]
    fn tracked_ids_are_bounded_and_the_oldest_is_forgotten() {
        let t0 = Instant::now();
        let mut g = Gate::new();
        for i in 0..MAX_TRACKED_IDS + 10 {
            g.record_failure(&format!("id{i}"), t0);
        }
        assert_eq!(g.failures.len(), MAX_TRACKED_IDS);
        assert!(!g.failures.contains_key("id0"));
        assert!(g.failures.contains_key(&format!("id{}", MAX_TRACKED_IDS + 9)));
    }

    // Tests for sessions.

    #[test]
    fn a_new_login_ends_the_old_session_of_that_account() {
        let t0 = Instant::now();
        let mut g = Gate::new();
        assert!(g.login("sv", "one".into(), "c1".into(), "p".into(), t0).is_none());
        let old = g.login("sv", "two".into(), "c2".into(), "p".into(), t0);
        assert_eq!(old.map(|s| s.csrf), Some("c1".to_string()));
        assert!(g.session("one", t0).is_none());
        assert!(g.session("two", t0).is_some());
        assert_eq!(g.sessions(t0).len(), 1);
    }

    #[test]
    fn sessions_expire_when_idle_and_at_their_maximum_age() {
        let t0 = Instant::now();
        let mut g = Gate::new();
        g.login("a", "ta".into(), "c".into(), "p".into(), t0);
        assert!(g.session("ta", t0 + SESSION_IDLE - Duration::from_secs(1)).is_some());
        assert!(g.session("ta", t0 + SESSION_IDLE * 2 + Duration::from_secs(1)).is_none());
        g.login("b", "tb".into(), "c".into(), "p".into(), t0);
        let mut t = t0;
        while t < t0 + SESSION_MAX_AGE {
            t += SESSION_IDLE / 2;
            let _ = g.session("tb", t);
        }
        assert!(g.session("tb", t + Duration::from_secs(1)).is_none());
    }

    #[test]
    fn forced_logout_ends_only_that_users_session() {
        let t0 = Instant::now();
        let mut g = Gate::new();
        g.login("a", "ta".into(), "c".into(), "p".into(), t0);
        g.login("b", "tb".into(), "c".into(), "p".into(), t0);
        assert!(g.logout_user("a").is_some());
        assert!(g.session("ta", t0).is_none());
        assert!(g.session("tb", t0).is_some());
        assert!(g.logout_user("a").is_none());
    }

    #[test]
    fn constant_time_eq_compares_whole_secrets() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
