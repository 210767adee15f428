//! The supervisor keys of `[[extension]]` (issue 6): `supervisor = true` makes the extension a
//! supervisor (listen, whisper and barge); `supervises = ["201", ...]` limits whom it may
//! supervise (default: everyone). Loaded into [`SupervisorRoles`].

use super::load::{invalid, Invalid};
use crate::apps::supervision::{Mode, Permission, Scope, SupervisorRoles, MAX_SCOPE_AGENTS};
use std::collections::BTreeSet;
use toml::Spanned;

/// The raw keys of one extension, taken out before the extension itself is checked.
pub(super) struct RawSupervisor {
    pub(super) supervisor: Option<Spanned<bool>>,
    pub(super) supervises: Option<Spanned<Vec<String>>>,
}

/// Every supervisor key of the file, checked: `extensions` are the provisioned numbers (a
/// `supervises` entry must name one of them); `raw` is (extension number, 1-based index, keys).
pub(super) fn validate(
    raw: Vec<(String, usize, RawSupervisor)>,
    extensions: &[String],
) -> Result<SupervisorRoles, Invalid> {
    let mut roles = SupervisorRoles::new();
    for (number, index, keys) in raw {
        let field = |name: &str| format!("extension[{index}].{name}");
        let is_supervisor = keys.supervisor.as_ref().is_some_and(|b| *b.get_ref());
        let scope = match keys.supervises {
            None => Scope::All,
            Some(list) if !is_supervisor => {
                return Err(invalid(&list, field("supervises"), "needs supervisor = true"));
            }
            Some(list) => {
                if list.get_ref().len() > MAX_SCOPE_AGENTS {
                    return Err(invalid(
                        &list,
                        field("supervises"),
                        format!("at most {MAX_SCOPE_AGENTS} extensions"),
                    ));
                }
                if let Some(unknown) = list.get_ref().iter().find(|n| !extensions.contains(n)) {
                    return Err(invalid(&list, field("supervises"), format!("no extension {unknown}")));
                }
                if list.get_ref().contains(&number) {
                    return Err(invalid(&list, field("supervises"), "cannot list the extension itself"));
                }
                Scope::Agents(list.into_inner().into_iter().collect::<BTreeSet<_>>())
            }
        };
        if !is_supervisor {
            continue;
        }
        // Every supervisor may use every mode; the role table can narrow it (seed 004 権限設定),
        // the file does not yet.
        let permission = Permission::new(&[Mode::Listen, Mode::Whisper, Mode::Barge], scope);
        // The scope size was checked above; the table holds fewer supervisors than extensions.
        if !permission.is_some_and(|p| roles.grant(&number, p)) {
            let span = keys.supervisor.map(|s| s.span()).unwrap_or(0..0);
            return Err(Invalid { span, field: field("supervisor"), message: "too many supervisors".into() });
        }
    }
    Ok(roles)
}
