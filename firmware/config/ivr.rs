//! `[[ivr]]` blocks (issue 6): the menus of `apps::ivr`, validated against the rest of the file.
//!
//! Names outside the menus are answered from this file: extensions, ring groups, voicemail
//! boxes (every extension and every ring group), built-in prompts. Admin audio lives on the
//! daemon's disk, which the loader does not see: a name that is no built-in prompt is accepted
//! when it is a well-formed audio name (a missing file plays nothing, as for DID
//! announcements). Queues are refused until the ACD is wired.

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
            // Issue 6's ACD is not wired: a queue destination would have nowhere to go.
            NameKind::Queue => false,
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
    let mut message = message.unwrap_or(&text).to_string();
    if matches!(e, IvrError::Unknown { kind: "queue", .. }) {
        message.push_str(" (queues arrive with the ACD wiring)");
    }
    Invalid { span, field, message }
}
