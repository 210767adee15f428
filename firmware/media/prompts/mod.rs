//! Voice prompts: the embedded WAVs of `sounds/` and the read-out of numbers, dates, times and
//! short sentences as lists of prompt ids (sans-IO: no clock, no files, no sockets).
//!
//! Layers:
//! - the table: `build.rs` embeds every `sounds/{ja,en}/<id>.wav`; [`get`] and [`pcm`] look a
//!   prompt up, [`all`] lists them.
//! - decoding: [`pcm`] reads the embedded WAVs with the media room's one WAV reader
//!   ([`crate::media::audio::wav`]); [`is_telephone_pcm`] checks their format.
//! - read-out ([`number`], [`count`], [`date`], [`time`], [`digits`] and the `sentence_*`
//!   functions): each returns the ids to play in order. Every id returned exists for the
//!   language asked (tests check every number 0..=10 000, every date of a leap year and every
//!   minute of a day). Out-of-range input (month 13, 25:00) yields an empty list: nothing is
//!   said rather than something wrong.
//!
//! The id scheme, the voices and how to regenerate the WAVs: `docs/sounds.md`.
//!
//! The public interface is: [`Lang`], [`Prompt`], [`SAMPLE_RATE_HZ`], [`all`], [`get`],
//! [`exists`], [`pcm`], [`Counter`], [`MenuAction`], [`number`], [`count`], [`digits`],
//! [`date`], [`weekday`], [`time`], [`is_telephone_pcm`] and the `sentence_*` functions.

mod readout;

pub use readout::{
    count, date, digits, number, sentence_call_parked_at, sentence_conference_participants,
    sentence_extension_busy, sentence_extension_not_available, sentence_menu_option, sentence_queue_position,
    sentence_wait_time, sentence_you_have_messages, sentence_you_have_n_messages, time, weekday, Counter,
    MenuAction,
};

/// The rate of every prompt (and of G.711): 8 kHz.
pub const SAMPLE_RATE_HZ: u32 = 8000;

/// A prompt language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Japanese (`sounds/ja/`).
    Ja,
    /// English (`sounds/en/`).
    En,
}

impl Lang {
    /// The ISO 639-1 code, which is also the folder under `sounds/`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    /// The language for an ISO 639-1 code (`"ja"`, `"en"`), if we have prompts for it.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// One embedded prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompt {
    /// The manifest id (`num.3`, `vm.you_have`).
    pub id: &'static str,
    /// Its language.
    pub lang: Lang,
    /// The whole WAV file: PCM, 8 kHz, 16-bit, mono.
    pub wav: &'static [u8],
}

mod embedded {
    use super::{Lang, Prompt};
    include!(concat!(env!("OUT_DIR"), "/prompts.rs"));
}

/// Every embedded prompt, sorted by id, then language code.
pub fn all() -> &'static [Prompt] {
    embedded::EMBEDDED
}

fn find(id: &str, lang: Lang) -> Option<&'static Prompt> {
    let table = embedded::EMBEDDED;
    let at = table.binary_search_by(|p| (p.id, p.lang.code()).cmp(&(id, lang.code()))).ok()?;
    table.get(at)
}

/// The embedded WAV file of a prompt.
pub fn get(id: &str, lang: Lang) -> Option<&'static [u8]> {
    find(id, lang).map(|p| p.wav)
}

/// True when the prompt exists in that language.
pub fn exists(id: &str, lang: Lang) -> bool {
    find(id, lang).is_some()
}

/// The decoded samples of a prompt (8 kHz, mono). `None` if the id is unknown or the embedded
/// file is not 8 kHz 16-bit mono PCM (the build embeds what `sounds/` holds; tests check it).
pub fn pcm(id: &str, lang: Lang) -> Option<Vec<i16>> {
    let parsed = crate::media::audio::wav::parse(get(id, lang)?).ok()?;
    is_telephone_pcm(&parsed.format()).then(|| parsed.mono_pcm16())
}

/// True for the prompts' format: 8 kHz, 16-bit, mono PCM.
pub fn is_telephone_pcm(f: &crate::media::audio::wav::Format) -> bool {
    f.encoding == crate::media::audio::wav::Encoding::Pcm
        && f.channels == 1
        && f.sample_rate_hz == SAMPLE_RATE_HZ
        && f.bits_per_sample == 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_prompt_in_each_language() {
        assert!(get("num.3", Lang::Ja).is_some());
        assert!(get("num.3", Lang::En).is_some());
        assert!(get("num.300", Lang::Ja).is_some());
        assert!(get("num.300", Lang::En).is_none(), "English composes three + hundred");
        assert!(get("no.such.prompt", Lang::Ja).is_none());
    }

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        let keys: Vec<_> = all().iter().map(|p| (p.id, p.lang.code())).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn decodes_a_prompt_to_samples() {
        let samples = pcm("beep", Lang::En).unwrap();
        // 500 ms of tone at 8 kHz.
        assert_eq!(samples.len(), 4000);
        assert!(samples.iter().any(|s| s.unsigned_abs() > 16_000));
    }

    #[test]
    fn language_codes_round_trip() {
        for lang in [Lang::Ja, Lang::En] {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("fr"), None);
    }
}
