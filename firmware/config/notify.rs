//! `[smtp]`, `[[chat]]`, `[[chat_rule]]` and the e-mail keys of `[[extension]]` (issue 5's
//! notifications, `docs/notify.md`).

use super::load::{invalid, Invalid};
use crate::notify::chat::{ChatRule, ChatTarget};
use crate::notify::smtp::{Security, SmtpConfig};
use serde::Deserialize;
use toml::Spanned;

/// Longest e-mail address accepted (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its
/// angle brackets).
pub const MAX_ADDRESS_BYTES: usize = 254;

/// Most `[[chat]]` targets: a box notifies a handful of rooms; more is a copy-paste accident.
pub const MAX_CHAT_TARGETS: usize = 32;

/// Notification settings of the box.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyConfig {
    /// `[smtp]`; `None`: no e-mail is sent (addresses on extensions are then refused).
    pub smtp: Option<SmtpConfig>,
    /// `[[chat]]`.
    pub chat: Vec<ChatTarget>,
    /// `[[chat_rule]]`: which targets a box notifies.
    pub chat_rules: Vec<ChatRule>,
    /// The `email` keys of `[[extension]]`, by extension number.
    pub mail: std::collections::BTreeMap<String, MailTo>,
}

impl NotifyConfig {
    /// Who a new message in `box_no` is mailed to, and whether it is deleted afterwards: the
    /// owner's address, or for a ring group (`members` is `Some`) every member's, once each.
    /// Any recipient asking for "delete after e-mail" deletes it (the group shares one copy).
    pub fn mail_for(&self, box_no: &str, members: Option<&[String]>) -> (Vec<String>, bool) {
        let owners: Vec<&str> = match members {
            Some(m) => m.iter().map(String::as_str).collect(),
            None => vec![box_no],
        };
        let mut to: Vec<String> = Vec::new();
        let mut delete_after = false;
        for m in owners.into_iter().filter_map(|o| self.mail.get(o)) {
            if !to.contains(&m.address) {
                to.push(m.address.clone());
            }
            delete_after |= m.delete_after;
        }
        (to, delete_after)
    }
}

/// An extension's `email` and `delete_after_email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTo {
    /// The address its new voicemail goes to.
    pub address: String,
    /// Delete the message from the box once its notifications went out.
    pub delete_after: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    host: Spanned<String>,
    port: Option<Spanned<i64>>,
    security: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    from: Spanned<String>,
    helo_name: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
}

/// An address the SMTP client can put in `MAIL FROM`/`RCPT TO`: `local@domain`, no spaces,
/// brackets or control characters (they would break the command line).
pub(super) fn address_ok(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else { return false };
    a.len() <= MAX_ADDRESS_BYTES
        && !local.is_empty()
        && !domain.is_empty()
        && a.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\' | ',' | ';'))
}

pub(super) fn validate_smtp(raw: RawSmtp) -> Result<SmtpConfig, Invalid> {
    let host = raw.host.get_ref().trim();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(&raw.host, "smtp.host", "must be a host name or an IP address"));
    }
    let security = match &raw.security {
        None => Security::Starttls,
        Some(s) => match s.get_ref().as_str() {
            "none" => Security::None,
            "starttls" => Security::Starttls,
            "tls" => Security::Tls,
            other => {
                return Err(invalid(
                    s,
                    "smtp.security",
                    format!("`{other}` is not one of none, starttls, tls"),
                ))
            }
        },
    };
    let port = match &raw.port {
        None => match security {
            Security::None => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        },
        Some(p) => u16::try_from(*p.get_ref())
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(p, "smtp.port", format!("{} is not in 1..=65535", p.get_ref())))?,
    };
    if !address_ok(raw.from.get_ref()) {
        return Err(invalid(
            &raw.from,
            "smtp.from",
            format!("`{}` is not an e-mail address", raw.from.get_ref()),
        ));
    }
    let username = raw.username.map(Spanned::into_inner).unwrap_or_default();
    if security == Security::None && !username.is_empty() {
        // The client refuses AUTH in clear; say so at load time, not at the first voicemail.
        let span = raw.password.as_ref().map(Spanned::span).unwrap_or_else(|| raw.from.span());
        return Err(Invalid {
            span,
            field: "smtp.username".into(),
            message: "credentials need security = \"starttls\" or \"tls\" (a password never goes in clear)"
                .into(),
        });
    }
    let ca_file = match raw.ca_file {
        Some(f) if !f.get_ref().is_empty() => {
            let path = std::path::PathBuf::from(f.get_ref());
            if let Err(e) = std::fs::metadata(&path) {
                return Err(invalid(&f, "smtp.ca_file", format!("cannot read {}: {e}", path.display())));
            }
            Some(path)
        }
        _ => None,
    };
    Ok(SmtpConfig {
        host: host.to_string(),
        port,
        security,
        username,
        password: raw.password.map(Spanned::into_inner).unwrap_or_default(),
        from: raw.from.into_inner(),
        ca_file,
        helo_name: raw.helo_name.map(Spanned::into_inner).unwrap_or_else(|| "hakoden".into()),
    })
}

pub(super) fn validate_chat(
    chat: Vec<Spanned<ChatTarget>>,
    rules: Vec<Spanned<ChatRule>>,
) -> Result<(Vec<ChatTarget>, Vec<ChatRule>), Invalid> {
    if let Some(extra) = chat.get(MAX_CHAT_TARGETS) {
        return Err(invalid(
            extra,
            format!("chat[{}]", MAX_CHAT_TARGETS + 1),
            format!("at most {MAX_CHAT_TARGETS} chat targets"),
        ));
    }
    let mut targets: Vec<ChatTarget> = Vec::new();
    for (i, t) in chat.iter().enumerate() {
        let name = &t.get_ref().name;
        if name.is_empty() || targets.iter().any(|o| &o.name == name) {
            return Err(invalid(
                t,
                format!("chat[{}].name", i + 1),
                format!("`{name}` is empty or used twice"),
            ));
        }
        targets.push(t.get_ref().clone());
    }
    let mut out = Vec::new();
    for (i, r) in rules.into_iter().enumerate() {
        for name in &r.get_ref().targets {
            if !targets.iter().any(|t| &t.name == name) {
                return Err(invalid(
                    &r,
                    format!("chat_rule[{}].targets", i + 1),
                    format!("no [[chat]] named `{name}`"),
                ));
            }
        }
        out.push(r.into_inner());
    }
    Ok((targets, out))
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    const EXT: &str = "[[extension]]\nnumber = \"201\"\nname = \"A\"\npassword = \"secret-201\"\n";

    #[test]
    fn smtp_takes_its_keys_and_defaults_the_port_from_the_security() {
        let c = parse_str(
            "[smtp]\nhost = \"mail.example.jp\"\nsecurity = \"tls\"\nfrom = \"pbx@example.jp\"\n",
            "x",
        );
        let smtp = c.ok().and_then(|c| c.notify.smtp);
        assert_eq!(smtp.map(|s| s.port), Some(465));
    }

    #[test]
    fn credentials_without_tls_are_refused_with_the_field() {
        let t = "[smtp]\nhost = \"h\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\nfrom = \"a@b.jp\"\n";
        assert_eq!(parse_str(t, "x").err().and_then(|e| e.field), Some("smtp.username".into()));
    }

    #[test]
    fn an_extension_email_needs_smtp_and_an_address() {
        let t = format!("{EXT}email = \"a@b.jp\"\n");
        assert_eq!(parse_str(&t, "x").err().and_then(|e| e.field), Some("extension[1].email".into()));
        let t = format!("[smtp]\nhost = \"h\"\nfrom = \"a@b.jp\"\n{EXT}email = \"not an address\"\n");
        let e = parse_str(&t, "x").err();
        assert_eq!(e.as_ref().and_then(|e| e.field.as_deref()), Some("extension[1].email"));
        assert_eq!(e.and_then(|e| e.line), Some(8));
        let t = format!(
            "[smtp]\nhost = \"h\"\nfrom = \"a@b.jp\"\n{EXT}email = \"me@b.jp\"\ndelete_after_email = true\n"
        );
        let mail = parse_str(&t, "x").ok().and_then(|c| c.notify.mail.get("201").cloned());
        assert_eq!(mail, Some(crate::config::MailTo { address: "me@b.jp".into(), delete_after: true }));
    }

    #[test]
    fn a_group_box_mails_every_member_with_an_address_once() {
        let mut c = crate::config::NotifyConfig::default();
        for (n, a, d) in [("201", "a@x.jp", false), ("202", "b@x.jp", true), ("203", "a@x.jp", false)] {
            c.mail.insert(n.into(), crate::config::MailTo { address: a.into(), delete_after: d });
        }
        let members: Vec<String> = ["201", "202", "203", "204"].map(String::from).to_vec();
        assert_eq!(c.mail_for("600", Some(&members)), (vec!["a@x.jp".into(), "b@x.jp".into()], true));
        assert_eq!(c.mail_for("201", None), (vec!["a@x.jp".into()], false));
        assert_eq!(c.mail_for("204", None), (vec![], false));
    }

    #[test]
    fn a_chat_rule_naming_an_unknown_target_is_refused() {
        let t = "[[chat]]\nname = \"s\"\nservice = \"slack\"\nurl = \"https://x\"\n[[chat_rule]]\nbox_no = \"201\"\ntargets = [\"t\"]\n";
        assert_eq!(parse_str(t, "x").err().and_then(|e| e.field), Some("chat_rule[1].targets".into()));
    }
}
