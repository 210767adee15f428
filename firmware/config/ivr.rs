//! `[[ivr]]` blocks (issue 6): the menus of `apps::ivr`, validated against the rest of the file.
//!
//! Names outside the menus are answered from this file: extensions, ring groups, voicemail
//! boxes (every extension and every ring group), built-in prompts. Admin audio lives on the
//! daemon's disk, which the loader does not see: a name that is no built-in prompt is accepted
//! when it is a well-formed audio name (a missing file plays nothing, as for DID
//! announcements). Queues are the `[[queue]]` names (`callcenter.rs`).

use super::load::Invalid;
use crate::apps::ivr::{IvrConfig, IvrError, Ivrs, IvrsConfig, NameKind};
use crate::apps::timerules::UtcOffset;
use crate::media::prompts::Lang;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// What the IVR check needs from the rest of the file.
pub(super) struct Known<'a> {
    pub(super) extensions: &'a [String],
    pub(super) groups: &'a [String],
    pub(super) queues: &'a [String],
    pub(super) lang: Lang,
}

/// True for a name `audio import` could have stored (the media driver's own rule).
fn audio_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.contains('\\') && !name.starts_with('.')
}

/// Validates the `[[ivr]]` blocks; an error points at the block it names.
pub(super) fn validate(
    raw: Vec<Spanned<IvrConfig>>,
    offset: UtcOffset,
    known: &Known<'_>,
) -> Result<Arc<Ivrs>, Invalid> {
    let spans: Vec<Range<usize>> = raw.iter().map(Spanned::span).collect();
    let config = IvrsConfig { ivr: raw.into_iter().map(Spanned::into_inner).collect() };
    let exists = |kind: NameKind, name: &str| -> bool {
        let ext = known.extensions.iter().any(|e| e == name);
        let group = known.groups.iter().any(|g| g == name);
        match kind {
            NameKind::Extension => ext,
            NameKind::Group => group,
            NameKind::Voicemail => ext || group,
            NameKind::Queue => known.queues.iter().any(|q| q == name),
            NameKind::Announcement => crate::media::prompts::exists(name, known.lang) || audio_name(name),
            NameKind::Prompt => {
                crate::media::prompts::exists(name, known.lang)
                    // A dotted name is a prompt id (`common.goodbye`): a typo there must fail.
                    || (audio_name(name) && !name.contains('.'))
            }
        }
    };
    Ivrs::from_config(&config, offset, &exists).map(Arc::new).map_err(|e| to_invalid(&e, &spans))
}

/// The error as the loader reports it: the span of the block its path names (`ivr[2]...`).
fn to_invalid(e: &IvrError, spans: &[Range<usize>]) -> Invalid {
    let text = e.to_string();
    let (field, message) = match (text.find(" = "), text.find(": ")) {
        (Some(a), Some(b)) if a < b => (text.get(..a), text.get(a + 3..)),
        (_, Some(b)) => (text.get(..b), text.get(b + 2..)),
        (Some(a), None) => (text.get(..a), text.get(a + 3..)),
        (None, None) => (None, None),
    };
    let field = field.filter(|f| f.starts_with("ivr")).unwrap_or("ivr").to_string();
    let index = field
        .strip_prefix("ivr[")
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| n.checked_sub(1));
    let span = index.and_then(|i| spans.get(i)).or(spans.first()).cloned().unwrap_or(0..0);
    let message = message.unwrap_or(&text).to_string();
    Invalid { span, field, message }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    const EXTS: &str = "[[extension]]\nnumber = \"201\"\nname = \"A\"\npassword = \"password-201\"\n\
                        [[ring_group]]\nnumber = \"800\"\nname = \"Sales\"\nmembers = [\"201\"]\n";

    fn refused(extra: &str) -> String {
        parse_str(&format!("{EXTS}{extra}"), "box.toml").expect_err("must be refused").to_string()
    }

    #[test]
    fn menus_load_with_extensions_groups_mailboxes_and_prompts_as_names() {
        let text = format!(
            "{EXTS}[[ivr]]\nname = \"main\"\nnumber = \"7000\"\nprompt = \"common.enter_extension\"\n\
             keys = {{ \"1\" = {{ extension = \"201\" }}, \"2\" = {{ group = \"800\" }}, \
             \"3\" = {{ voicemail = \"800\" }}, \"4\" = {{ announcement = \"年末年始\" }} }}\n\
             [[did]]\nnumber = \"0312345678\"\ndefault = {{ ivr = \"main\" }}\n"
        );
        let c = parse_str(&text, "box.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ivrs.by_number("7000").map(|m| m.name()), Some("main"));
    }

    #[test]
    fn an_unknown_extension_names_the_file_line_and_key() {
        let e = refused("\n[[ivr]]\nname = \"main\"\nprompt = \"common.enter_extension\"\nkeys = { \"1\" = { extension = \"299\" } }\n");
        assert!(e.starts_with("box.toml:10: field `ivr[1].keys[\"1\"]`"), "{e}");
    }

    #[test]
    fn a_queue_key_must_name_a_configured_queue() {
        let e = refused("[[ivr]]\nname = \"m\"\nprompt = \"common.enter_extension\"\nkeys = { \"1\" = { queue = \"q\" } }\n");
        assert!(e.contains("ivr[1].keys"), "{e}");
        let ok = format!(
            "{EXTS}[[queue]]\nname = \"q\"\nmembers = [\"201\"]\n[[ivr]]\nname = \"m\"\n\
             prompt = \"common.enter_extension\"\nkeys = {{ \"1\" = {{ queue = \"q\" }} }}\n"
        );
        parse_str(&ok, "box.toml").unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_mistyped_prompt_id_and_a_number_taken_by_an_extension_are_refused() {
        let e = refused("[[ivr]]\nname = \"m\"\nprompt = \"common.enter_extensoin\"\n");
        assert!(e.contains("ivr[1].prompt"), "{e}");
        let e = refused("[[ivr]]\nname = \"m\"\nnumber = \"201\"\nprompt = \"common.enter_extension\"\n");
        assert!(e.contains("ivr[1].number"), "{e}");
    }
}
