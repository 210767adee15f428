//! WAV files from admins (uploads, `audio import`) on arbitrary bytes: the strict and the
//! recovering reader and the importer (conversion included) must never panic.
#![no_main]

use hakoden::media::audio::wav;
use libfuzzer_sys::fuzz_target;

/// Small, so the fuzzer spends its time on headers rather than resampling megabytes.
const MAX_IMPORT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = wav::parse(data) {
        let _ = w.duration_ms();
        let _ = w.mono_pcm16();
    }
    if let Ok(w) = wav::parse_recovering(data) {
        let _ = w.frames();
    }
    let _ = wav::import_admin_audio(data, MAX_IMPORT);
});
