//! The SDP parser on arbitrary bytes: it must never panic.
#![no_main]

use hakoden::media::sdp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = sdp::parse(data) {
        if let Some(audio) = offer.audio {
            let offered = sdp::supported_formats(&audio.formats);
            let _ = sdp::has_voice_codec(&offered);
        }
    }
});
