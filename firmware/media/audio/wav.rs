//! WAV files: a reader that never panics, the 8 kHz writers, and the admin upload converter.
//!
//! Reading is two-stage (style rule 7): [`parse`] walks the RIFF chunks and checks every length
//! against the bytes present, giving a [`Wav`] view whose accessors cannot fail; decoding to
//! samples happens on that view. Accepted: PCM (format 1) 8/16/24/32-bit, IEEE float (3) 32/64-bit,
//! A-law (6), µ-law (7), and the same inside `WAVE_FORMAT_EXTENSIBLE` (0xFFFE); any channel count
//! up to [`MAX_CHANNELS`] and any rate up to [`MAX_SAMPLE_RATE_HZ`]. Unknown chunks (`LIST`,
//! `bext`, `cue `, …) are skipped, odd-sized chunks are followed by their pad byte.
//!
//! Lenient where tools are known to be sloppy, strict where a wrong value would mislead us:
//! bytes after the RIFF form are ignored (some taggers append ID3); a missing pad byte after the
//! last chunk is tolerated; the `fmt` byte rate is ignored (we derive it); a data length that is
//! not a whole number of frames is cut to whole frames. A chunk or RIFF length that runs past the
//! end of the file is an error ([`WavError::Truncated`]), except in [`parse_recovering`].
//!
//! Crash recovery: [`super::recorder::Recorder`] writes its header with zero lengths first and
//! patches them on `finish()`. A file cut short by a crash or power loss therefore says 0 (or a
//! stale length); [`parse_recovering`] reads such a file by taking the `data` chunk to the end of
//! the file (our recorder writes `data` last).

use std::fmt;

use super::g711::Law;
use super::resample::{quantize, Resampler};
use super::SAMPLE_RATE_HZ;

/// Most channels we decode: beyond 7.1.4 (12) with margin; a file claiming more is damaged, and
/// the cap bounds the work per frame.
pub const MAX_CHANNELS: u16 = 32;
/// Highest sample rate we accept: the highest any common recorder writes (384 kHz DXD). Also bounds
/// the resampler's filter length.
pub const MAX_SAMPLE_RATE_HZ: u32 = 384_000;
/// Most chunks we walk: real files have fewer than ten; a file of empty chunks must not make us
/// spin through millions of them.
pub const MAX_CHUNKS: usize = 1_024;
/// Default admin upload limit: the spec (seed 002 §2.28, issue 3) allows files up to 100 MB.
pub const DEFAULT_IMPORT_LIMIT_BYTES: usize = 100_000_000;
/// Size of the header [`encode_pcm16_mono_8k`] writes.
pub const PCM16_HEADER_BYTES: usize = 44;
/// Size of the header [`g711_header`] writes (`fmt` of 18 bytes plus a `fact` chunk, as the
/// WAVE spec asks for non-PCM formats).
pub const G711_HEADER_BYTES: usize = 58;
/// Most `data` bytes a WAV can describe: the RIFF length field is 32 bits and also counts the
/// header. At 8,000 bytes/s (G.711) this is about 149 hours.
pub const MAX_DATA_BYTES: u64 = u32::MAX as u64 - G711_HEADER_BYTES as u64;

/// A four-character chunk id, shown as text in messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChunkId(pub [u8; 4]);

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({self})")
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' { char::from(b) } else { '?' };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

const RIFF: ChunkId = ChunkId(*b"RIFF");
const FMT: ChunkId = ChunkId(*b"fmt ");
const DATA: ChunkId = ChunkId(*b"data");
/// `fmt` fields up to and including `wBitsPerSample`.
const FMT_MIN_LEN: usize = 16;
/// `WAVE_FORMAT_EXTENSIBLE` `fmt` length: 16 + cbSize (2) + 22.
const FMT_EXTENSIBLE_LEN: usize = 40;
const TAG_PCM: u16 = 1;
const TAG_FLOAT: u16 = 3;
const TAG_ALAW: u16 = 6;
const TAG_MULAW: u16 = 7;
const TAG_EXTENSIBLE: u16 = 0xFFFE;
/// The KSDATAFORMAT_SUBTYPE GUID after its first two bytes (which carry the format tag).
const SUBFORMAT_GUID_TAIL: [u8; 14] =
    [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

/// How the samples in `data` are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// Linear PCM: 8-bit unsigned, 16/24/32-bit signed little-endian.
    Pcm,
    /// IEEE float, 32 or 64 bits, nominal range -1.0..1.0.
    Float,
    /// G.711 A-law, 8 bits.
    ALaw,
    /// G.711 µ-law, 8 bits.
    MuLaw,
}

/// The checked `fmt` chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Sample coding.
    pub encoding: Encoding,
    /// Interleaved channels, 1..=[`MAX_CHANNELS`].
    pub channels: u16,
    /// Frames per second, 1..=[`MAX_SAMPLE_RATE_HZ`].
    pub sample_rate_hz: u32,
    /// Container bits per sample (8, 16, 24, 32 or 64).
    pub bits_per_sample: u16,
}

impl Format {
    /// Bytes per frame (one sample of every channel).
    pub fn block_align(&self) -> usize {
        usize::from(self.channels) * usize::from(self.bits_per_sample / 8)
    }
}

/// A parsed WAV: its format and the sample bytes, cut to whole frames.
#[derive(Debug, Clone, Copy)]
pub struct Wav<'a> {
    format: Format,
    data: &'a [u8],
    recovered: bool,
}

impl<'a> Wav<'a> {
    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The sample bytes (whole frames only).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.data.len() / self.format.block_align().max(1)
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.frames() as u64 * 1_000 / u64::from(self.format.sample_rate_hz.max(1))
    }

    /// True if [`parse_recovering`] had to take the data to the end of the file because the
    /// header's lengths were zero or stale (an unfinished recording).
    pub fn was_recovered(&self) -> bool {
        self.recovered
    }

    /// Appends frames `start..start + count` mixed down to mono (channel average), -1.0..1.0.
    /// Frames past the end are not appended.
    pub fn mono_f32_into(&self, start: usize, count: usize, out: &mut Vec<f32>) {
        let align = self.format.block_align().max(1);
        let from = start.saturating_mul(align).min(self.data.len());
        let to = start.saturating_add(count).saturating_mul(align).min(self.data.len());
        let bytes = self.data.get(from..to).unwrap_or(&[]);
        let width = usize::from(self.format.bits_per_sample / 8).max(1);
        let scale = 1.0 / f32::from(self.format.channels.max(1));
        out.reserve(bytes.len() / align);
        for frame in bytes.chunks_exact(align) {
            let sum: f32 = frame.chunks_exact(width).map(|s| self.sample_f32(s)).sum();
            out.push(sum * scale);
        }
    }

    /// All frames mixed down to mono as 16-bit PCM; exact (no float round trip) for 16-bit mono.
    pub fn mono_pcm16(&self) -> Vec<i16> {
        let f = self.format;
        if f.encoding == Encoding::Pcm && f.bits_per_sample == 16 && f.channels == 1 {
            return self.data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        }
        let mut out = Vec::with_capacity(self.frames());
        let mut block = Vec::new();
        /// Frames converted per step, so the float buffer stays small.
        const STEP: usize = 65_536;
        let mut start = 0;
        while start < self.frames() {
            block.clear();
            self.mono_f32_into(start, STEP, &mut block);
            out.extend(block.iter().map(|&x| quantize(x)));
            start += STEP;
        }
        out
    }

    fn sample_f32(&self, s: &[u8]) -> f32 {
        match (self.format.encoding, s) {
            (Encoding::Pcm, [b]) => (f32::from(*b) - 128.0) / 128.0,
            (Encoding::Pcm, [a, b]) => f32::from(i16::from_le_bytes([*a, *b])) / 32_768.0,
            (Encoding::Pcm, [a, b, c]) => (i32::from_le_bytes([0, *a, *b, *c]) >> 8) as f32 / 8_388_608.0,
            (Encoding::Pcm, [a, b, c, d]) => i32::from_le_bytes([*a, *b, *c, *d]) as f32 / 2_147_483_648.0,
            (Encoding::Float, [a, b, c, d]) => finite(f32::from_le_bytes([*a, *b, *c, *d])),
            (Encoding::Float, [a, b, c, d, e, f, g, h]) => {
                finite(f64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]) as f32)
            }
            (Encoding::ALaw, [b]) => f32::from(Law::A.decode_sample(*b)) / 32_768.0,
            (Encoding::MuLaw, [b]) => f32::from(Law::Mu.decode_sample(*b)) / 32_768.0,
            _ => 0.0,
        }
    }
}

/// NaN and infinities become silence; out-of-range floats are clipped.
fn finite(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Why a WAV could not be read. `Display` gives a sentence for the web UI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WavError {
    /// Fewer than the 12 bytes of a RIFF header.
    TooShort {
        /// Bytes present.
        len: usize,
    },
    /// Does not start with `RIFF`.
    NotRiff,
    /// `RIFX`: big-endian WAV, which almost no tool writes.
    BigEndian,
    /// `RF64`/`BW64`: the 64-bit WAV variant for files over 4 GB.
    Rf64,
    /// A RIFF file of another kind (`AVI `, `WEBP`, …).
    NotWave {
        /// The RIFF form type found.
        form: ChunkId,
    },
    /// A length in the header points past the end of the file.
    Truncated {
        /// The chunk whose length is wrong (`RIFF` for the outer length).
        chunk: ChunkId,
        /// The length the header claims.
        declared: u64,
        /// The bytes actually present.
        available: u64,
    },
    /// More chunks than [`MAX_CHUNKS`].
    TooManyChunks,
    /// No `fmt ` chunk.
    MissingFmt,
    /// No `data` chunk.
    MissingData,
    /// Two `fmt ` chunks that disagree or two `data` chunks.
    DuplicateChunk {
        /// Which chunk.
        chunk: ChunkId,
    },
    /// The `fmt ` chunk is too short for its format.
    FmtTooShort {
        /// Its length.
        len: usize,
    },
    /// A format tag we cannot decode (ADPCM, MP3-in-WAV, GSM, …).
    UnsupportedEncoding {
        /// The format tag (for `WAVE_FORMAT_EXTENSIBLE`, the sub-format's).
        tag: u16,
    },
    /// `WAVE_FORMAT_EXTENSIBLE` with a sub-format GUID that is not a standard one.
    UnknownSubformat,
    /// A sample width the encoding does not have (12-bit PCM, 16-bit float, …).
    UnsupportedBits {
        /// The encoding.
        encoding: Encoding,
        /// The bits per sample claimed.
        bits: u16,
    },
    /// Zero channels or more than [`MAX_CHANNELS`].
    BadChannels {
        /// The count claimed.
        channels: u16,
    },
    /// A sample rate of 0 or above [`MAX_SAMPLE_RATE_HZ`].
    BadSampleRate {
        /// The rate claimed.
        hz: u32,
    },
    /// `nBlockAlign` disagrees with channels × bytes per sample.
    BadBlockAlign {
        /// The value in the header.
        declared: u16,
        /// The value the format implies.
        expected: usize,
    },
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FIX: &str = "Save the file again as WAV (PCM, 16-bit) and upload it.";
        match self {
            WavError::TooShort { len } => {
                write!(f, "The file is too small to be a WAV file ({len} bytes). {FIX}")
            }
            WavError::NotRiff => write!(f, "This file is not a WAV file. Upload a WAV file (PCM)."),
            WavError::BigEndian => {
                write!(f, "This WAV file is big-endian (RIFX), which is not supported. {FIX}")
            }
            WavError::Rf64 => write!(f, "RF64 WAV files (over 4 GB) are not supported. {FIX}"),
            WavError::NotWave { form } => {
                write!(f, "This RIFF file is \"{form}\", not WAV audio. Upload a WAV file (PCM).")
            }
            WavError::Truncated { chunk: RIFF, declared, available } => write!(
                f,
                "The WAV file is incomplete: its header says the file is {} bytes, but it is only {} \
                 bytes. The upload or the file may be cut off. Upload the file again.",
                declared + 8,
                available + 8
            ),
            WavError::Truncated { chunk, declared, available } => write!(
                f,
                "The WAV file is incomplete: the \"{chunk}\" part should be {declared} bytes, but only \
                 {available} bytes are in the file. The upload or the file may be cut off. Upload \
                 the file again."
            ),
            WavError::TooManyChunks => {
                write!(f, "The WAV file has more than {MAX_CHUNKS} parts (chunks); it looks damaged. {FIX}")
            }
            WavError::MissingFmt => {
                write!(f, "The WAV file has no format information (\"fmt \" chunk). {FIX}")
            }
            WavError::MissingData => write!(f, "The WAV file has no audio data (\"data\" chunk). {FIX}"),
            WavError::DuplicateChunk { chunk } => {
                write!(f, "The WAV file has two \"{chunk}\" parts; it looks damaged. {FIX}")
            }
            WavError::FmtTooShort { len } => {
                write!(f, "The WAV format information is too short ({len} bytes); it looks damaged. {FIX}")
            }
            WavError::UnsupportedEncoding { tag } => write!(
                f,
                "This WAV file uses {} compression, which is not supported. {FIX}",
                encoding_name(*tag)
            ),
            WavError::UnknownSubformat => {
                write!(f, "This WAV file uses an unknown sample format (extensible WAV). {FIX}")
            }
            WavError::UnsupportedBits { encoding, bits } => {
                let kind = match encoding {
                    Encoding::Pcm => "PCM",
                    Encoding::Float => "floating-point",
                    Encoding::ALaw => "A-law",
                    Encoding::MuLaw => "µ-law",
                };
                write!(f, "{bits}-bit {kind} samples are not supported. {FIX}")
            }
            WavError::BadChannels { channels } => write!(
                f,
                "The WAV file says it has {channels} channels; 1 to {MAX_CHANNELS} are supported. {FIX}"
            ),
            WavError::BadSampleRate { hz } => write!(
                f,
                "The WAV file says its sample rate is {hz} Hz; 1 to {MAX_SAMPLE_RATE_HZ} Hz are \
                 supported. {FIX}"
            ),
            WavError::BadBlockAlign { declared, expected } => write!(
                f,
                "The WAV format information does not add up (block size {declared}, expected \
                 {expected}); it looks damaged. {FIX}"
            ),
        }
    }
}

impl std::error::Error for WavError {}

/// A readable name for a WAV format tag we do not decode.
fn encoding_name(tag: u16) -> String {
    let name = match tag {
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 | 0x0064 | 0x0065 => "G.721/G.726 ADPCM",
        0x0050 => "MPEG audio",
        0x0055 => "MP3",
        0x0160..=0x0163 => "Windows Media Audio",
        0x00FF | 0x1600 | 0x1610 | 0x4143 => "AAC",
        0x2000 => "Dolby AC-3",
        0x674F | 0x6750 | 0x6751 | 0x676F | 0x6770 | 0x6771 => "Ogg Vorbis",
        0xF1AC => "FLAC",
        _ => return format!("an unknown (format tag {tag:#06x})"),
    };
    name.to_string()
}

/// Reads a WAV strictly: every length must fit inside the file.
pub fn parse(bytes: &[u8]) -> Result<Wav<'_>, WavError> {
    parse_with(bytes, false)
}

/// Reads a WAV whose header lengths may be zero or stale because writing stopped early (crash,
/// power loss, full disk): the RIFF length is ignored and the `data` chunk runs to the end of the
/// file, cut to whole frames. Any chunk after `data` is read as audio, so use this only for files
/// our own recorder wrote.
pub fn parse_recovering(bytes: &[u8]) -> Result<Wav<'_>, WavError> {
    parse_with(bytes, true)
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn chunk_id(b: &[u8], at: usize) -> Option<ChunkId> {
    b.get(at..at + 4).map(|s| ChunkId([s[0], s[1], s[2], s[3]]))
}

fn parse_with(bytes: &[u8], recover: bool) -> Result<Wav<'_>, WavError> {
    let (head, rest) = bytes.split_at_checked(12).ok_or(WavError::TooShort { len: bytes.len() })?;
    match chunk_id(head, 0) {
        Some(RIFF) => {}
        Some(ChunkId(ref id)) if id == b"RIFX" => return Err(WavError::BigEndian),
        Some(ChunkId(ref id)) if id == b"RF64" || id == b"BW64" => return Err(WavError::Rf64),
        _ => return Err(WavError::NotRiff),
    }
    let form = chunk_id(head, 8).ok_or(WavError::TooShort { len: bytes.len() })?;
    if form.0 != *b"WAVE" {
        return Err(WavError::NotWave { form });
    }
    let riff_len = le_u32(head, 4).map(u64::from).unwrap_or(0);
    let body = if recover {
        rest
    } else {
        // The RIFF length counts the form type (4 bytes) plus the chunks.
        let body_len = riff_len.saturating_sub(4);
        if body_len > rest.len() as u64 {
            return Err(WavError::Truncated {
                chunk: RIFF,
                declared: riff_len,
                available: rest.len() as u64 + 4,
            });
        }
        // Bytes after the RIFF form are ignored (appended tags), see the module doc.
        rest.get(..body_len as usize).unwrap_or(rest)
    };

    let mut format: Option<Format> = None;
    let mut data: Option<&[u8]> = None;
    let mut recovered = false;
    let mut pos = 0usize;
    let mut chunks = 0usize;
    while let (Some(id), Some(len)) = (chunk_id(body, pos), le_u32(body, pos + 4)) {
        chunks += 1;
        if chunks > MAX_CHUNKS {
            return Err(WavError::TooManyChunks);
        }
        let start = pos + 8;
        let available = body.len() - start;
        let len = len as usize;
        if recover && id == DATA {
            if data.is_some() {
                return Err(WavError::DuplicateChunk { chunk: DATA });
            }
            recovered = len != available && len + 1 != available;
            data = body.get(start..);
            break;
        }
        if len > available {
            return Err(WavError::Truncated { chunk: id, declared: len as u64, available: available as u64 });
        }
        let payload = body.get(start..start + len).unwrap_or(&[]);
        if id == FMT {
            let f = parse_fmt(payload)?;
            if format.is_some_and(|old| old != f) {
                return Err(WavError::DuplicateChunk { chunk: FMT });
            }
            format = Some(f);
        } else if id == DATA {
            if data.is_some() {
                return Err(WavError::DuplicateChunk { chunk: DATA });
            }
            data = Some(payload);
        }
        // Chunks are padded to even length; a missing pad after the last one is tolerated.
        pos = start + len + (len & 1);
    }
    let format = format.ok_or(WavError::MissingFmt)?;
    let data = data.ok_or(WavError::MissingData)?;
    let whole = data.len() - data.len() % format.block_align().max(1);
    Ok(Wav { format, data: data.get(..whole).unwrap_or(&[]), recovered })
}

fn parse_fmt(b: &[u8]) -> Result<Format, WavError> {
    let short = WavError::FmtTooShort { len: b.len() };
    if b.len() < FMT_MIN_LEN {
        return Err(short);
    }
    let mut tag = le_u16(b, 0).ok_or(short.clone())?;
    let channels = le_u16(b, 2).ok_or(short.clone())?;
    let hz = le_u32(b, 4).ok_or(short.clone())?;
    let block_align = le_u16(b, 12).ok_or(short.clone())?;
    let bits = le_u16(b, 14).ok_or(short.clone())?;
    if tag == TAG_EXTENSIBLE {
        if b.len() < FMT_EXTENSIBLE_LEN {
            return Err(short);
        }
        // cbSize (16), wValidBitsPerSample (18), dwChannelMask (20), SubFormat GUID (24..40).
        tag = le_u16(b, 24).ok_or(short.clone())?;
        if b.get(26..40) != Some(&SUBFORMAT_GUID_TAIL[..]) {
            return Err(WavError::UnknownSubformat);
        }
    }
    let encoding = match tag {
        TAG_PCM => Encoding::Pcm,
        TAG_FLOAT => Encoding::Float,
        TAG_ALAW => Encoding::ALaw,
        TAG_MULAW => Encoding::MuLaw,
        _ => return Err(WavError::UnsupportedEncoding { tag }),
    };
    let bits_ok = match encoding {
        Encoding::Pcm => matches!(bits, 8 | 16 | 24 | 32),
        Encoding::Float => matches!(bits, 32 | 64),
        Encoding::ALaw | Encoding::MuLaw => bits == 8,
    };
    if !bits_ok {
        return Err(WavError::UnsupportedBits { encoding, bits });
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(WavError::BadChannels { channels });
    }
    if hz == 0 || hz > MAX_SAMPLE_RATE_HZ {
        return Err(WavError::BadSampleRate { hz });
    }
    let format = Format { encoding, channels, sample_rate_hz: hz, bits_per_sample: bits };
    if usize::from(block_align) != format.block_align() {
        return Err(WavError::BadBlockAlign { declared: block_align, expected: format.block_align() });
    }
    Ok(format)
}

// ---------------------------------------------------------------------------------------------
// Writers (our own data: lengths are bounded by MAX_DATA_BYTES instead of checked per call).

/// An 8 kHz 16-bit mono PCM WAV of `samples` (the prompt and admin audio format). More than
/// [`MAX_DATA_BYTES`] / 2 samples are cut to that.
pub fn encode_pcm16_mono_8k(samples: &[i16]) -> Vec<u8> {
    let samples = samples.get(..(MAX_DATA_BYTES / 2) as usize).unwrap_or(samples);
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(PCM16_HEADER_BYTES + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&TAG_PCM.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE_HZ.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE_HZ * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// The 58-byte header of an 8 kHz mono G.711 WAV holding `data_bytes` bytes (one per sample):
/// `fmt ` (18 bytes, cbSize 0), `fact` (sample count), `data`. Lengths above [`MAX_DATA_BYTES`]
/// are capped. The data's pad byte, if `data_bytes` is odd, is counted in the RIFF length; the
/// writer must append it.
pub fn g711_header(law: Law, data_bytes: u64) -> [u8; G711_HEADER_BYTES] {
    let data_len = data_bytes.min(MAX_DATA_BYTES) as u32;
    let riff_len = (G711_HEADER_BYTES as u32 - 8) + data_len + (data_len & 1);
    let mut h = [0u8; G711_HEADER_BYTES];
    let fields: [&[u8]; 16] = [
        b"RIFF",
        &riff_len.to_le_bytes(),
        b"WAVEfmt ",
        &18u32.to_le_bytes(),
        &law.wav_format_tag().to_le_bytes(),
        &1u16.to_le_bytes(),
        &SAMPLE_RATE_HZ.to_le_bytes(),
        &SAMPLE_RATE_HZ.to_le_bytes(),
        &1u16.to_le_bytes(),
        &8u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        b"fact",
        &4u32.to_le_bytes(),
        &data_len.to_le_bytes(),
        b"data",
        &data_len.to_le_bytes(),
    ];
    let mut at = 0;
    for field in fields {
        h[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    h
}

/// An 8 kHz mono G.711 WAV of `samples` (the recorder format), with the pad byte if needed.
pub fn encode_g711_8k(law: Law, samples: &[i16]) -> Vec<u8> {
    let samples = samples.get(..MAX_DATA_BYTES as usize).unwrap_or(samples);
    let mut out = Vec::with_capacity(G711_HEADER_BYTES + samples.len() + 1);
    out.extend_from_slice(&g711_header(law, samples.len() as u64));
    super::g711::encode(law, samples, &mut out);
    if samples.len() % 2 == 1 {
        out.push(0);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Admin audio import.

/// Another audio or container format, recognised from its first bytes so the refusal can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtherFormat {
    /// MP3 (ID3 tag or MPEG audio frame sync).
    Mp3,
    /// AAC in an ADTS stream.
    Aac,
    /// MP4 / M4A (ISO base media, `ftyp`).
    Mp4,
    /// Ogg (Vorbis or Opus).
    Ogg,
    /// FLAC.
    Flac,
    /// AIFF / AIFF-C (Apple).
    Aiff,
    /// Windows Media (ASF).
    Wma,
    /// AMR (mobile phone recordings).
    Amr,
    /// Nothing we recognise.
    Unknown,
}

impl OtherFormat {
    /// Recognises the format from the first bytes; `None` when it looks like RIFF.
    fn sniff(b: &[u8]) -> Option<OtherFormat> {
        let at = |i: usize| b.get(i).copied().unwrap_or(0);
        let starts = |p: &[u8]| b.starts_with(p);
        if starts(b"RIFF") || starts(b"RIFX") || starts(b"RF64") || starts(b"BW64") {
            return None;
        }
        Some(if starts(b"ID3") {
            OtherFormat::Mp3
        } else if at(0) == 0xFF && at(1) & 0xF6 == 0xF0 {
            OtherFormat::Aac
        } else if at(0) == 0xFF && at(1) & 0xE0 == 0xE0 {
            OtherFormat::Mp3
        } else if b.get(4..8) == Some(b"ftyp") {
            OtherFormat::Mp4
        } else if starts(b"OggS") {
            OtherFormat::Ogg
        } else if starts(b"fLaC") {
            OtherFormat::Flac
        } else if starts(b"FORM") && matches!(b.get(8..12), Some(b"AIFF") | Some(b"AIFC")) {
            OtherFormat::Aiff
        } else if starts(&[0x30, 0x26, 0xB2, 0x75]) {
            OtherFormat::Wma
        } else if starts(b"#!AMR") {
            OtherFormat::Amr
        } else {
            OtherFormat::Unknown
        })
    }

    fn name(self) -> &'static str {
        match self {
            OtherFormat::Mp3 => "MP3",
            OtherFormat::Aac => "AAC",
            OtherFormat::Mp4 => "MP4/M4A",
            OtherFormat::Ogg => "Ogg (Vorbis/Opus)",
            OtherFormat::Flac => "FLAC",
            OtherFormat::Aiff => "AIFF",
            OtherFormat::Wma => "WMA",
            OtherFormat::Amr => "AMR",
            OtherFormat::Unknown => "",
        }
    }
}

/// Why an uploaded audio file was refused. `Display` gives plain sentences for the web UI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// Larger than the configured limit.
    TooBig {
        /// The file's size in bytes.
        bytes: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A zero-byte file.
    Empty,
    /// Not a WAV file.
    NotWav(OtherFormat),
    /// A WAV we cannot read or convert.
    Wav(WavError),
    /// A sample rate below 8 kHz: converting up would not make it sound better on the phone.
    SampleRateTooLow {
        /// The file's rate.
        hz: u32,
    },
    /// A valid WAV with no samples.
    NoAudio,
}

impl From<WavError> for ImportError {
    fn from(e: WavError) -> Self {
        match e {
            WavError::NotRiff => ImportError::NotWav(OtherFormat::Unknown),
            e => ImportError::Wav(e),
        }
    }
}

/// Megabytes (10^6 bytes, as the spec's "100 MB" and file managers count), rounded up to 0.1 so a
/// file just over the limit never shows as equal to it.
struct Megabytes(usize);

impl fmt::Display for Megabytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = (self.0 as u64).div_ceil(100_000);
        if tenths % 10 == 0 {
            write!(f, "{} MB", tenths / 10)
        } else {
            write!(f, "{}.{} MB", tenths / 10, tenths % 10)
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::TooBig { bytes, limit } => write!(
                f,
                "The file is too big: it is {}; the limit is {}. Upload a shorter or smaller file \
                 (8000 Hz, 16-bit, mono WAV is smallest).",
                Megabytes(*bytes),
                Megabytes(*limit)
            ),
            ImportError::Empty => write!(f, "The file is empty (0 bytes). Upload a WAV file (PCM)."),
            ImportError::NotWav(OtherFormat::Unknown) => write!(
                f,
                "This file is not a WAV file. Upload a WAV file (PCM; 8000 Hz, 16-bit, mono is best)."
            ),
            ImportError::NotWav(kind) => {
                write!(f, "{} files are not accepted: upload a WAV file (PCM).", kind.name())
            }
            ImportError::Wav(e) => e.fmt(f),
            ImportError::SampleRateTooLow { hz } => write!(
                f,
                "The sample rate is {hz} Hz, which is too low. Use 8000 Hz or higher (8000 Hz, 16-bit, \
                 mono is best)."
            ),
            ImportError::NoAudio => {
                write!(f, "The WAV file has no sound in it (0 samples). Upload another file.")
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// Converts an uploaded admin audio file to 8 kHz 16-bit mono PCM samples.
///
/// 8 kHz 16-bit mono PCM is taken as is (bit-exact). Any other WAV this module reads is mixed
/// down to mono (channel average), converted to 16 bits (rounded), and, if its rate is not
/// 8 kHz, resampled through an 80 dB anti-aliasing low-pass (flat to 3.4 kHz). Everything else is
/// refused with an [`ImportError`] whose `Display` says what was wrong and what to upload.
pub fn import_admin_audio(bytes: &[u8], max_bytes: usize) -> Result<Vec<i16>, ImportError> {
    if bytes.len() > max_bytes {
        return Err(ImportError::TooBig { bytes: bytes.len(), limit: max_bytes });
    }
    if bytes.is_empty() {
        return Err(ImportError::Empty);
    }
    if let Some(other) = OtherFormat::sniff(bytes) {
        return Err(ImportError::NotWav(other));
    }
    let wav = parse(bytes)?;
    let format = wav.format();
    if wav.frames() == 0 {
        return Err(ImportError::NoAudio);
    }
    if format.sample_rate_hz < SAMPLE_RATE_HZ {
        return Err(ImportError::SampleRateTooLow { hz: format.sample_rate_hz });
    }
    if format.sample_rate_hz == SAMPLE_RATE_HZ {
        return Ok(wav.mono_pcm16());
    }
    let resampler = Resampler::new(format.sample_rate_hz);
    Ok(resampler.run(wav.frames() as u64, |start, count, out| {
        wav.mono_f32_into(usize::try_from(start).unwrap_or(usize::MAX), count, out)
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a WAV from raw parts: for tests of every format and of damaged headers.
    pub(crate) fn build(tag: u16, channels: u16, hz: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * (bits / 8);
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&hz.to_le_bytes());
        fmt.extend_from_slice(&(hz * u32::from(block)).to_le_bytes());
        fmt.extend_from_slice(&block.to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        assemble(&[(*b"fmt ", &fmt), (*b"data", data)])
    }

    pub(crate) fn assemble(chunks: &[([u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, payload) in chunks {
            body.extend_from_slice(id);
            body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            body.extend_from_slice(payload);
            if payload.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn pcm16(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    // Tests for the reader.

    #[test]
    fn pcm16_writer_output_reads_back_bit_exact() {
        let samples: Vec<i16> = (0..1000).map(|i| (i * 37 % 65_536 - 32_768) as i16).collect();
        let file = encode_pcm16_mono_8k(&samples);
        assert_eq!(file.len(), PCM16_HEADER_BYTES + 2000);
        let wav = parse(&file).unwrap();
        assert_eq!(wav.format().sample_rate_hz, 8_000);
        assert_eq!(wav.mono_pcm16(), samples);
        assert_eq!(import_admin_audio(&file, DEFAULT_IMPORT_LIMIT_BYTES).unwrap(), samples);
    }

    #[test]
    fn g711_writer_output_has_fact_chunk_and_pad_byte() {
        for law in [Law::A, Law::Mu] {
            let file = encode_g711_8k(law, &[0, 1000, -1000]);
            assert_eq!(file.len(), G711_HEADER_BYTES + 4);
            assert_eq!(&file[38..42], b"fact");
            let wav = parse(&file).unwrap();
            assert_eq!(wav.frames(), 3);
            assert!(!wav.was_recovered());
            let back = wav.mono_pcm16();
            assert!((i32::from(back[1]) - 1000).abs() < 40, "{back:?}");
        }
    }

    #[test]
    fn every_sample_width_decodes_to_the_same_level() {
        let half = [
            (TAG_PCM, 8u16, vec![192u8]),
            (TAG_PCM, 16, 16_384i16.to_le_bytes().to_vec()),
            (TAG_PCM, 24, vec![0, 0, 0x40]),
            (TAG_PCM, 32, 0x4000_0000i32.to_le_bytes().to_vec()),
            (TAG_FLOAT, 32, 0.5f32.to_le_bytes().to_vec()),
            (TAG_FLOAT, 64, 0.5f64.to_le_bytes().to_vec()),
        ];
        for (tag, bits, sample) in half {
            let file = build(tag, 1, 8_000, bits, &sample);
            assert_eq!(parse(&file).unwrap().mono_pcm16(), vec![16_384], "{tag} {bits}");
        }
    }

    #[test]
    fn negative_24_bit_samples_are_sign_extended() {
        let file = build(TAG_PCM, 1, 8_000, 24, &[0, 0, 0xC0]);
        assert_eq!(parse(&file).unwrap().mono_pcm16(), vec![-16_384]);
    }

    #[test]
    fn nan_and_out_of_range_floats_do_not_blow_up() {
        let data: Vec<u8> = [f32::NAN, 7.0, f32::NEG_INFINITY].iter().flat_map(|x| x.to_le_bytes()).collect();
        let file = build(TAG_FLOAT, 1, 8_000, 32, &data);
        assert_eq!(parse(&file).unwrap().mono_pcm16(), vec![0, 32_767, 0]);
    }

    #[test]
    fn stereo_is_mixed_down_by_averaging() {
        let file = build(TAG_PCM, 2, 8_000, 16, &pcm16(&[1000, 3000, -2000, 0]));
        assert_eq!(parse(&file).unwrap().mono_pcm16(), vec![2000, -1000]);
    }

    #[test]
    fn extensible_format_is_read_through_its_subformat() {
        let mut fmt = Vec::new();
        for v in [TAG_EXTENSIBLE, 2] {
            fmt.extend_from_slice(&v.to_le_bytes());
        }
        fmt.extend_from_slice(&48_000u32.to_le_bytes());
        fmt.extend_from_slice(&(48_000u32 * 6).to_le_bytes());
        for v in [6u16, 24, 22, 24] {
            fmt.extend_from_slice(&v.to_le_bytes());
        }
        fmt.extend_from_slice(&3u32.to_le_bytes());
        fmt.extend_from_slice(&TAG_PCM.to_le_bytes());
        fmt.extend_from_slice(&SUBFORMAT_GUID_TAIL);
        let file = assemble(&[(*b"fmt ", &fmt), (*b"data", &[0; 12])]);
        let wav = parse(&file).unwrap();
        assert_eq!(wav.format().encoding, Encoding::Pcm);
        assert_eq!((wav.format().channels, wav.format().bits_per_sample, wav.frames()), (2, 24, 2));
        fmt[30] ^= 1;
        let file = assemble(&[(*b"fmt ", &fmt), (*b"data", &[0; 12])]);
        assert_eq!(parse(&file).unwrap_err(), WavError::UnknownSubformat);
    }

    #[test]
    fn unknown_and_odd_sized_chunks_are_skipped() {
        let fmt = &build(TAG_PCM, 1, 8_000, 16, &[])[20..36];
        let file =
            assemble(&[(*b"LIST", b"abc"), (*b"fmt ", fmt), (*b"junk", &[]), (*b"data", &pcm16(&[5, 6]))]);
        assert_eq!(parse(&file).unwrap().mono_pcm16(), vec![5, 6]);
    }

    #[test]
    fn missing_final_pad_and_trailing_tag_are_tolerated() {
        let mut file = build(TAG_PCM, 1, 8_000, 8, &[128, 128, 128]);
        file.pop(); // pad byte
        let len = (file.len() - 8) as u32;
        file[4..8].copy_from_slice(&len.to_le_bytes());
        assert_eq!(parse(&file).unwrap().frames(), 3);
        file.extend_from_slice(b"TAG trailing id3v1 bytes");
        assert_eq!(parse(&file).unwrap().frames(), 3);
    }

    #[test]
    fn lying_lengths_are_refused_with_the_culprit_named() {
        let file = build(TAG_PCM, 1, 8_000, 16, &pcm16(&[1; 100]));
        let cut = &file[..file.len() - 10];
        assert!(matches!(parse(cut), Err(WavError::Truncated { chunk: RIFF, .. })));
        let mut lying = file.clone();
        lying[40..44].copy_from_slice(&1_000_000u32.to_le_bytes());
        let err = parse(&lying).unwrap_err();
        assert_eq!(err, WavError::Truncated { chunk: DATA, declared: 1_000_000, available: 200 });
        assert!(err.to_string().contains("\"data\" part should be 1000000 bytes"), "{err}");
    }

    #[test]
    fn bad_fmt_values_are_refused() {
        let cases: [(Vec<u8>, WavError); 6] = [
            (
                build(TAG_PCM, 1, 8_000, 12, &[]),
                WavError::UnsupportedBits { encoding: Encoding::Pcm, bits: 12 },
            ),
            (build(0x55, 1, 8_000, 16, &[]), WavError::UnsupportedEncoding { tag: 0x55 }),
            (build(TAG_PCM, 0, 8_000, 16, &[]), WavError::BadChannels { channels: 0 }),
            (build(TAG_PCM, 1, 0, 16, &[]), WavError::BadSampleRate { hz: 0 }),
            (
                build(TAG_ALAW, 1, 8_000, 16, &[]),
                WavError::UnsupportedBits { encoding: Encoding::ALaw, bits: 16 },
            ),
            (assemble(&[(*b"fmt ", &[1, 0, 1, 0])]), WavError::FmtTooShort { len: 4 }),
        ];
        for (file, want) in cases {
            assert_eq!(parse(&file).unwrap_err(), want);
        }
        let mut file = build(TAG_PCM, 2, 8_000, 16, &[]);
        file[32] = 3;
        assert_eq!(parse(&file).unwrap_err(), WavError::BadBlockAlign { declared: 3, expected: 4 });
        assert!(WavError::UnsupportedEncoding { tag: 0x55 }.to_string().contains("MP3 compression"));
    }

    #[test]
    fn missing_chunks_and_wrong_containers_are_refused() {
        assert_eq!(parse(b"RIFF").unwrap_err(), WavError::TooShort { len: 4 });
        assert_eq!(parse(&assemble(&[])).unwrap_err(), WavError::MissingFmt);
        let fmt = &build(TAG_PCM, 1, 8_000, 16, &[])[20..36];
        assert_eq!(parse(&assemble(&[(*b"fmt ", fmt)])).unwrap_err(), WavError::MissingData);
        let data: &[u8] = &[0, 0];
        assert_eq!(
            parse(&assemble(&[(*b"fmt ", fmt), (*b"data", data), (*b"data", data)])).unwrap_err(),
            WavError::DuplicateChunk { chunk: DATA }
        );
        let mut avi = assemble(&[]);
        avi[8..12].copy_from_slice(b"AVI ");
        assert_eq!(parse(&avi).unwrap_err(), WavError::NotWave { form: ChunkId(*b"AVI ") });
        avi[0..4].copy_from_slice(b"RF64");
        assert_eq!(parse(&avi).unwrap_err(), WavError::Rf64);
    }

    #[test]
    fn a_file_of_empty_chunks_stops_at_the_chunk_limit() {
        let empties: Vec<([u8; 4], &[u8])> = vec![(*b"junk", &[]); MAX_CHUNKS + 1];
        assert_eq!(parse(&assemble(&empties)).unwrap_err(), WavError::TooManyChunks);
    }

    #[test]
    fn unfinished_recording_is_recovered_to_end_of_file() {
        let mut file = g711_header(Law::Mu, 0).to_vec();
        file.extend_from_slice(&[0xFF; 801]);
        // Strictly read, the zero-length header is an empty WAV with bytes after it.
        assert_eq!(parse(&file).unwrap().frames(), 0);
        let wav = parse_recovering(&file).unwrap();
        assert!(wav.was_recovered());
        assert_eq!(wav.frames(), 801);
        let mut stale = g711_header(Law::Mu, 400).to_vec();
        stale.extend_from_slice(&[0xFF; 801]);
        // A header patched at 400 bytes while 801 were written: strict reading trusts it.
        assert_eq!(parse(&stale).unwrap().frames(), 400);
        assert_eq!(parse_recovering(&stale).unwrap().frames(), 801);
    }

    #[test]
    fn random_bytes_after_a_riff_header_never_panic() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 96) as usize;
            let mut file = build(TAG_PCM, 1 + (round % 3) as u16, 8_000, 16, &[0; 8]);
            file.truncate(len.min(file.len()));
            let mut s = seed;
            for b in file.iter_mut().skip(4) {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                if s >> 60 == 0 {
                    *b = (s >> 32) as u8;
                }
            }
            for wav in [parse(&file), parse_recovering(&file)].into_iter().flatten() {
                let _ = wav.mono_pcm16();
            }
            let _ = import_admin_audio(&file, DEFAULT_IMPORT_LIMIT_BYTES);
        }
    }

    // Tests for the admin import.

    #[test]
    fn refusals_name_the_problem() {
        let msg = |r: Result<Vec<i16>, ImportError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(import_admin_audio(b"ID3\x04\0\0\0\0\0\0", 100)),
            "MP3 files are not accepted: upload a WAV file (PCM)."
        );
        assert!(msg(import_admin_audio(b"OggS\0\x02", 100)).starts_with("Ogg (Vorbis/Opus) files"));
        assert!(msg(import_admin_audio(b"hello world", 100)).starts_with("This file is not a WAV file."));
        assert!(msg(import_admin_audio(&[], 100)).contains("empty"));
        let big = import_admin_audio(&[0; 10], 9).unwrap_err();
        assert_eq!(big, ImportError::TooBig { bytes: 10, limit: 9 });
        let file = build(TAG_PCM, 1, 6_000, 16, &[0, 0]);
        assert!(msg(import_admin_audio(&file, 100)).contains("6000 Hz, which is too low"));
        let file = build(TAG_PCM, 1, 8_000, 16, &[]);
        assert_eq!(import_admin_audio(&file, 100).unwrap_err(), ImportError::NoAudio);
    }

    #[test]
    fn sizes_are_shown_in_megabytes_never_rounded_down_to_the_limit() {
        let e = ImportError::TooBig { bytes: 120_000_000, limit: 100_000_000 };
        assert!(e.to_string().starts_with("The file is too big: it is 120 MB; the limit is 100 MB."), "{e}");
        let e = ImportError::TooBig { bytes: 100_000_001, limit: 100_000_000 };
        assert!(e.to_string().contains("it is 100.1 MB"), "{e}");
    }

    #[test]
    fn eight_khz_alaw_stereo_is_converted_without_resampling() {
        let data = [Law::A.encode_sample(8_000), Law::A.encode_sample(8_000)];
        let file = build(TAG_ALAW, 2, 8_000, 8, &data);
        let out = import_admin_audio(&file, 100).unwrap();
        assert_eq!(out, vec![Law::A.decode_sample(data[0])]);
    }
}
