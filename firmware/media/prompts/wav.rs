//! A checked view of a RIFF/WAVE file holding PCM (sans-IO, never panics on input).
//!
//! Walks the chunk list instead of assuming a 44-byte header, so `LIST`/`fact`/`bext` chunks,
//! odd-sized chunks (padded to even) and `WAVE_FORMAT_EXTENSIBLE` headers are read correctly.
//! A `data` chunk that claims more bytes than the file holds (streaming writers put
//! `0xFFFF_FFFF` there) is clamped to what is present.

/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is the first two bytes of the sub-format GUID.
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Size of the RIFF header: "RIFF", the size, "WAVE".
const RIFF_HEADER_LEN: usize = 12;
/// Size of a chunk header: the four-byte id and the little-endian size.
const CHUNK_HEADER_LEN: usize = 8;
/// The smallest `fmt ` body: format, channels, rate, byte rate, block align, bits.
const FMT_MIN_LEN: usize = 16;
/// An extensible `fmt ` body carries the sub-format GUID at this offset.
const FMT_EXT_SUBFORMAT_AT: usize = 24;
/// Chunks we step over before giving up: a WAV has a handful; this bounds hostile files.
const MAX_CHUNKS: usize = 64;

/// The sample format of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// The format tag after resolving `WAVE_FORMAT_EXTENSIBLE` (1 = PCM).
    pub format_tag: u16,
    /// Interleaved channels.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate_hz: u32,
    /// Bits per sample.
    pub bits_per_sample: u16,
}

impl WavFormat {
    /// True for the prompt and telephone format: PCM, 8 kHz, 16-bit, mono.
    pub fn is_telephone_pcm(&self) -> bool {
        self.format_tag == FORMAT_PCM
            && self.channels == 1
            && self.sample_rate_hz == super::SAMPLE_RATE_HZ
            && self.bits_per_sample == 16
    }
}

/// A parsed WAV file: its format and its sample bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wav<'a> {
    /// The `fmt ` chunk.
    pub format: WavFormat,
    /// The `data` chunk body (clamped to the bytes present).
    pub data: &'a [u8],
}

/// Why a byte string is not a usable WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WavError {
    /// The file does not start with `RIFF....WAVE`.
    NotRiffWave,
    /// A chunk header or the `fmt ` body is cut short.
    Truncated,
    /// No `fmt ` chunk before the `data` chunk.
    NoFormat,
    /// No `data` chunk.
    NoData,
    /// More chunks before `data` than a real WAV file has (64).
    TooManyChunks,
}

impl std::fmt::Display for WavError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WavError::NotRiffWave => "not a RIFF/WAVE file",
            WavError::Truncated => "WAV file is truncated",
            WavError::NoFormat => "WAV file has no fmt chunk before its data",
            WavError::NoData => "WAV file has no data chunk",
            WavError::TooManyChunks => "WAV file has too many chunks",
        })
    }
}

impl std::error::Error for WavError {}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([*s.first()?, *s.get(1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Parses a RIFF/WAVE file. Any format tag is reported; callers decide what they accept.
pub fn parse(bytes: &[u8]) -> Result<Wav<'_>, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotRiffWave);
    }
    let mut rest = bytes.get(RIFF_HEADER_LEN..).ok_or(WavError::NotRiffWave)?;
    let mut format = None;
    for _ in 0..MAX_CHUNKS {
        if rest.is_empty() {
            return Err(if format.is_none() { WavError::NoFormat } else { WavError::NoData });
        }
        let (head, body) = rest.split_at_checked(CHUNK_HEADER_LEN).ok_or(WavError::Truncated)?;
        let id = head.get(0..4).ok_or(WavError::Truncated)?;
        let size =
            usize::try_from(u32_at(head, 4).ok_or(WavError::Truncated)?).map_err(|_| WavError::Truncated)?;
        if id == b"data" {
            let format = format.ok_or(WavError::NoFormat)?;
            let data = body.get(..size).unwrap_or(body);
            return Ok(Wav { format, data });
        }
        let chunk = body.get(..size).ok_or(WavError::Truncated)?;
        if id == b"fmt " {
            format = Some(parse_fmt(chunk)?);
        }
        // RIFF pads every chunk body to an even length.
        let next = size.saturating_add(size % 2);
        rest = body.get(next..).unwrap_or(&[]);
    }
    Err(WavError::TooManyChunks)
}

fn parse_fmt(chunk: &[u8]) -> Result<WavFormat, WavError> {
    if chunk.len() < FMT_MIN_LEN {
        return Err(WavError::Truncated);
    }
    let mut format_tag = u16_at(chunk, 0).ok_or(WavError::Truncated)?;
    if format_tag == FORMAT_EXTENSIBLE {
        format_tag = u16_at(chunk, FMT_EXT_SUBFORMAT_AT).ok_or(WavError::Truncated)?;
    }
    Ok(WavFormat {
        format_tag,
        channels: u16_at(chunk, 2).ok_or(WavError::Truncated)?,
        sample_rate_hz: u32_at(chunk, 4).ok_or(WavError::Truncated)?,
        bits_per_sample: u16_at(chunk, 14).ok_or(WavError::Truncated)?,
    })
}

/// Decodes 16-bit little-endian PCM; a trailing odd byte is dropped.
pub fn samples_i16(data: &[u8]) -> Vec<i16> {
    data.chunks_exact(2)
        .map(|p| i16::from_le_bytes([p.first().copied().unwrap_or(0), p.get(1).copied().unwrap_or(0)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a WAV file from raw chunks (id, body), for tests.
    fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn fmt(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f
    }

    #[test]
    fn parses_a_plain_telephone_wav() {
        let file = riff(&[(b"fmt ", fmt(1, 1, 8000, 16)), (b"data", vec![1, 0, 0xff, 0x7f])]);
        let wav = parse(&file).unwrap();
        assert!(wav.format.is_telephone_pcm());
        assert_eq!(samples_i16(wav.data), vec![1, i16::MAX]);
    }

    #[test]
    fn steps_over_odd_sized_list_chunks_before_the_format() {
        let file = riff(&[(b"LIST", vec![1, 2, 3]), (b"fmt ", fmt(1, 1, 8000, 16)), (b"data", vec![2, 0])]);
        assert_eq!(samples_i16(parse(&file).unwrap().data), vec![2]);
    }

    #[test]
    fn resolves_the_extensible_format_to_pcm() {
        let mut f = fmt(FORMAT_EXTENSIBLE, 1, 8000, 16);
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&[16, 0, 4, 0, 0, 0]);
        f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);
        let file = riff(&[(b"fmt ", f), (b"data", vec![0, 0])]);
        assert!(parse(&file).unwrap().format.is_telephone_pcm());
    }

    #[test]
    fn reports_stereo_and_other_rates_as_they_are() {
        let file = riff(&[(b"fmt ", fmt(1, 2, 44_100, 16)), (b"data", vec![0; 8])]);
        let f = parse(&file).unwrap().format;
        assert_eq!((f.channels, f.sample_rate_hz), (2, 44_100));
        assert!(!f.is_telephone_pcm());
    }

    #[test]
    fn clamps_a_data_chunk_that_claims_more_than_the_file_holds() {
        let mut file = riff(&[(b"fmt ", fmt(1, 1, 8000, 16)), (b"data", vec![5, 0, 6, 0])]);
        let at = file.len() - 8;
        file[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(samples_i16(parse(&file).unwrap().data), vec![5, 6]);
    }

    #[test]
    fn refuses_files_that_are_not_wav() {
        assert_eq!(parse(b"").unwrap_err(), WavError::NotRiffWave);
        assert_eq!(parse(b"RIFF\0\0\0\0AVI LIST").unwrap_err(), WavError::NotRiffWave);
        let no_fmt = riff(&[(b"data", vec![0, 0])]);
        assert_eq!(parse(&no_fmt).unwrap_err(), WavError::NoFormat);
        let no_data = riff(&[(b"fmt ", fmt(1, 1, 8000, 16))]);
        assert_eq!(parse(&no_data).unwrap_err(), WavError::NoData);
        let short_fmt = riff(&[(b"fmt ", vec![1, 0, 1]), (b"data", vec![])]);
        assert_eq!(parse(&short_fmt).unwrap_err(), WavError::Truncated);
    }

    #[test]
    fn never_panics_on_any_prefix_or_bit_flip_of_a_valid_file() {
        let file =
            riff(&[(b"LIST", vec![7; 5]), (b"fmt ", fmt(1, 1, 8000, 16)), (b"data", vec![1, 2, 3, 4, 5, 6])]);
        for n in 0..=file.len() {
            let _ = parse(&file[..n]);
        }
        for i in 0..file.len() {
            for bit in 0..8 {
                let mut f = file.clone();
                f[i] ^= 1 << bit;
                let _ = parse(&f);
            }
        }
    }

    #[test]
    fn bounds_the_number_of_chunks_it_walks() {
        let many: Vec<(&[u8; 4], Vec<u8>)> = (0..MAX_CHUNKS + 1).map(|_| (b"junk", vec![])).collect();
        assert_eq!(parse(&riff(&many)).unwrap_err(), WavError::TooManyChunks);
    }
}
