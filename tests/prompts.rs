//! The embedded voice prompts: every WAV is 8 kHz 16-bit mono PCM, audible, normalised and
//! bounded in size, and the embedded set is exactly the manifest's, language by language.
use hakoden::media::audio::wav;
use hakoden::media::prompts::{self, Lang, SAMPLE_RATE_HZ};
use std::collections::BTreeSet;

/// The longest prompt we expect: the longest sentence is about 6 s; 10 s of 8 kHz 16-bit mono.
const MAX_PROMPT_BYTES: usize = 10 * 16_000;
/// The whole set must stay small enough to embed in the firmware image (brief: about 8 MB).
const MAX_TOTAL_BYTES: usize = 8 * 1024 * 1024;
/// Speech below this RMS (about -34 dBFS) is near silence: the TTS or trimming went wrong.
const MIN_RMS: f64 = 0.02 * 32_768.0;
/// make-sounds.sh normalises peaks to -3 dBFS; allow for the sign of the larger peak and
/// rounding.
const PEAK_DBFS_RANGE: (f64, f64) = (-3.5, -2.5);
/// A prompt shorter than this (single short mora like に are about 0.1 s) is a broken file.
const MIN_SAMPLES: usize = 600;

fn manifest_ids() -> (BTreeSet<String>, BTreeSet<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sounds/manifest.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let mut ja = BTreeSet::new();
    let mut en = BTreeSet::new();
    let mut all = BTreeSet::new();
    for p in doc["prompt"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap().to_string();
        assert!(all.insert(id.clone()), "duplicate id {id} in the manifest");
        let text = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        assert!(!text("ja").is_empty() || !text("en").is_empty(), "{id} has neither ja nor en text");
        if !text("ja").is_empty() {
            ja.insert(id.clone());
        }
        if !text("en").is_empty() {
            en.insert(id);
        }
    }
    (ja, en)
}

fn embedded_ids(lang: Lang) -> BTreeSet<String> {
    prompts::all().iter().filter(|p| p.lang == lang).map(|p| p.id.to_string()).collect()
}

#[test]
fn embedded_prompts_are_exactly_the_manifest_in_each_language() {
    let (ja, en) = manifest_ids();
    for (lang, want) in [(Lang::Ja, ja), (Lang::En, en)] {
        let got = embedded_ids(lang);
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{lang:?}: missing WAVs {missing:?}, WAVs not in the manifest {extra:?} \
             (run scripts/make-sounds.sh)"
        );
    }
}

#[test]
fn every_prompt_is_telephone_pcm_audible_normalised_and_bounded() {
    let mut total = 0usize;
    let mut quietest = (f64::MAX, "");
    for p in prompts::all() {
        let name = format!("{}/{}", p.lang.code(), p.id);
        assert!(p.wav.len() <= MAX_PROMPT_BYTES, "{name}: {} bytes", p.wav.len());
        total += p.wav.len();

        let parsed = wav::parse(p.wav).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(prompts::is_telephone_pcm(&parsed.format()), "{name}: {:?}", parsed.format());
        assert_eq!(parsed.format().sample_rate_hz, SAMPLE_RATE_HZ);
        let samples = prompts::pcm(p.id, p.lang).unwrap();
        assert_eq!(samples, parsed.mono_pcm16());
        assert!(samples.len() >= MIN_SAMPLES, "{name}: only {} samples", samples.len());

        let energy: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
        let rms = (energy / samples.len() as f64).sqrt();
        assert!(rms > MIN_RMS, "{name}: RMS {rms:.0} is near silence");
        if rms < quietest.0 {
            quietest = (rms, p.id);
        }
        let peak = samples.iter().map(|s| f64::from(s.unsigned_abs())).fold(0.0, f64::max);
        let peak_db = 20.0 * (peak / 32_768.0).log10();
        assert!((PEAK_DBFS_RANGE.0..=PEAK_DBFS_RANGE.1).contains(&peak_db), "{name}: peak {peak_db:.1} dBFS");
    }
    assert!(total <= MAX_TOTAL_BYTES, "prompts total {total} bytes");
    eprintln!(
        "{} prompts, {total} bytes; quietest {} at RMS {:.3} of full scale",
        prompts::all().len(),
        quietest.1,
        quietest.0 / 32_768.0
    );
}

#[test]
fn speech_starts_and_ends_without_long_silence() {
    // make-sounds.sh trims below -45 dBFS at both ends; 50 ms of near-silence at an end means
    // the trim did not run.
    const EDGE: usize = (SAMPLE_RATE_HZ / 20) as usize;
    const QUIET: u16 = 200; // about -44 dBFS
    for p in prompts::all() {
        let s = prompts::pcm(p.id, p.lang).unwrap();
        let loud = |w: &[i16]| w.iter().any(|x| x.unsigned_abs() > QUIET);
        assert!(loud(&s[..EDGE.min(s.len())]), "{}/{}: silent start", p.lang.code(), p.id);
        assert!(loud(&s[s.len().saturating_sub(EDGE)..]), "{}/{}: silent end", p.lang.code(), p.id);
    }
}

#[test]
fn the_beep_is_a_one_kilohertz_tone() {
    let s = prompts::pcm("beep", Lang::Ja).unwrap();
    // Count rising zero crossings over the whole tone: 1 kHz for 0.5 s is 500.
    let rising = s.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    assert!((495..=505).contains(&rising), "{rising} rising zero crossings");
}
