//! G.711 µ-law and A-law over `audio-codec-algorithms` (bit-exact to ITU-T G.191 on all inputs;
//! measured in `docs/dependencies.md`).
//!
//! Every byte is a valid code word in both laws, so decoding cannot fail.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

/// A G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU): RTP payload type 0, WAV format tag 7. North America and Japan.
    Mu,
    /// A-law (PCMA): RTP payload type 8, WAV format tag 6. Europe and most of the world.
    A,
}

impl Law {
    /// The static RTP payload type (RFC 3551 table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    /// The law for a static RTP payload type, `None` for anything but 0 and 8.
    pub const fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Mu),
            8 => Some(Law::A),
            _ => None,
        }
    }

    /// The WAV `fmt` format tag (`WAVE_FORMAT_MULAW` 7, `WAVE_FORMAT_ALAW` 6).
    pub const fn wav_format_tag(self) -> u16 {
        match self {
            Law::Mu => 7,
            Law::A => 6,
        }
    }

    /// Encodes one sample.
    #[inline]
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            Law::Mu => encode_ulaw(s),
            Law::A => encode_alaw(s),
        }
    }

    /// Decodes one code word.
    #[inline]
    pub fn decode_sample(self, b: u8) -> i16 {
        match self {
            Law::Mu => decode_ulaw(b),
            Law::A => decode_alaw(b),
        }
    }
}

/// Appends the G.711 encoding of `pcm` to `out` (one byte per sample).
pub fn encode(law: Law, pcm: &[i16], out: &mut Vec<u8>) {
    out.reserve(pcm.len());
    match law {
        Law::Mu => out.extend(pcm.iter().map(|&s| encode_ulaw(s))),
        Law::A => out.extend(pcm.iter().map(|&s| encode_alaw(s))),
    }
}

/// Appends the linear PCM decoding of `bytes` to `out` (one sample per byte).
pub fn decode(law: Law, bytes: &[u8], out: &mut Vec<i16>) {
    out.reserve(bytes.len());
    match law {
        Law::Mu => out.extend(bytes.iter().map(|&b| decode_ulaw(b))),
        Law::A => out.extend(bytes.iter().map(|&b| decode_alaw(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_types_follow_rfc_3551() {
        assert_eq!(Law::Mu.payload_type(), 0);
        assert_eq!(Law::A.payload_type(), 8);
        assert_eq!(Law::from_payload_type(0), Some(Law::Mu));
        assert_eq!(Law::from_payload_type(8), Some(Law::A));
        assert_eq!(Law::from_payload_type(18), None);
    }

    #[test]
    fn every_code_word_survives_decode_then_encode() {
        for law in [Law::Mu, Law::A] {
            let bytes: Vec<u8> = (0..=255).collect();
            let mut pcm = Vec::new();
            decode(law, &bytes, &mut pcm);
            let mut back = Vec::new();
            encode(law, &pcm, &mut back);
            for (a, b) in bytes.iter().zip(&back) {
                // µ-law has two zeros (0x7F, 0xFF); both decode to 0 which encodes to 0xFF.
                if *a != *b {
                    assert_eq!((law, pcm[usize::from(*a)]), (Law::Mu, 0), "{law:?} {a:#x}");
                }
            }
        }
    }

    #[test]
    fn known_silence_code_words_match_g711() {
        assert_eq!(Law::Mu.encode_sample(0), 0xFF);
        assert_eq!(Law::A.encode_sample(0), 0xD5);
    }

    #[test]
    fn encode_appends_instead_of_replacing() {
        let mut out = vec![1u8];
        encode(Law::A, &[0, 0], &mut out);
        assert_eq!(out.len(), 3);
    }
}
