//! Records mixed 20 ms frames as an 8 kHz mono G.711 WAV into any `Write + Seek`.
//!
//! The header ([`super::wav::g711_header`], 58 bytes) is written first with zero lengths; audio
//! bytes follow as they come; [`Recorder::finish`] appends the pad byte if needed, seeks back and
//! patches the RIFF, `fact` and `data` lengths. If the process dies before `finish`, the file says
//! 0 bytes of audio: [`super::wav::parse_recovering`] reads it anyway by taking `data` to the end
//! of the file (see `docs/audio.md`, "Crash recovery").
//!
//! The recorder does no buffering of its own: wrap a file in a `BufWriter` (the driver's job).

use std::io::{self, Seek, SeekFrom, Write};

use super::g711::{self, Law};
use super::wav::{g711_header, G711_HEADER_BYTES, MAX_DATA_BYTES};

/// Writes one recording. Sans-IO in the sense that it only sees a `Write + Seek`; tests use a
/// `Cursor<Vec<u8>>`.
#[derive(Debug)]
pub struct Recorder<W: Write + Seek> {
    out: W,
    law: Law,
    /// Audio bytes written (one per sample).
    data_bytes: u64,
    /// Where the header starts in `out` (a writer need not be at 0).
    start: u64,
    scratch: Vec<u8>,
}

/// Why a recording stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecordError {
    /// The writer failed (disk full, I/O error). The file is still recoverable up to here.
    Io(io::Error),
    /// The recording reached [`MAX_DATA_BYTES`], the most a WAV header can describe (about 149
    /// hours); finish it and start a new file.
    Full,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Io(e) => write!(f, "recording write failed: {e}"),
            RecordError::Full => write!(f, "recording reached the 4 GB WAV limit"),
        }
    }
}

impl std::error::Error for RecordError {}

impl From<io::Error> for RecordError {
    fn from(e: io::Error) -> Self {
        RecordError::Io(e)
    }
}

impl<W: Write + Seek> Recorder<W> {
    /// Starts a recording at the writer's current position: writes the header with zero lengths.
    pub fn new(mut out: W, law: Law) -> Result<Self, RecordError> {
        let start = out.stream_position()?;
        out.write_all(&g711_header(law, 0))?;
        Ok(Recorder { out, law, data_bytes: 0, start, scratch: Vec::with_capacity(super::FRAME_SAMPLES) })
    }

    /// Appends samples (normally one mixed 20 ms frame). Refuses, writing nothing, once the file
    /// would exceed what a WAV header can describe.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), RecordError> {
        if self.data_bytes + samples.len() as u64 > MAX_DATA_BYTES {
            return Err(RecordError::Full);
        }
        self.scratch.clear();
        g711::encode(self.law, samples, &mut self.scratch);
        self.out.write_all(&self.scratch)?;
        self.data_bytes += samples.len() as u64;
        Ok(())
    }

    /// The companding law.
    pub fn law(&self) -> Law {
        self.law
    }

    /// Audio bytes written so far (also the sample count).
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Bytes written to the writer so far, header included (what the retention accounting
    /// counts; `finish` may add one pad byte).
    pub fn bytes_written(&self) -> u64 {
        G711_HEADER_BYTES as u64 + self.data_bytes
    }

    /// Duration recorded, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.data_bytes / 8
    }

    /// Completes the file: pad byte, then the real lengths in the header. Returns the writer
    /// positioned at the end of the file, and the total bytes of the file.
    pub fn finish(mut self) -> Result<(W, u64), RecordError> {
        let mut total = self.bytes_written();
        if self.data_bytes % 2 == 1 {
            self.out.write_all(&[0])?;
            total += 1;
        }
        self.out.seek(SeekFrom::Start(self.start))?;
        self.out.write_all(&g711_header(self.law, self.data_bytes))?;
        self.out.seek(SeekFrom::Start(self.start + total))?;
        self.out.flush()?;
        Ok((self.out, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::wav::{parse, parse_recovering};
    use std::io::Cursor;

    #[test]
    fn finished_recording_has_exact_lengths_and_reads_back() {
        let mut r = Recorder::new(Cursor::new(Vec::new()), Law::A).unwrap();
        for i in 0..50 {
            r.write(&[i * 100; 160]).unwrap();
        }
        r.write(&[5]).unwrap();
        assert_eq!(r.data_bytes(), 8_001);
        assert_eq!(r.duration_ms(), 1_000);
        let (cursor, total) = r.finish().unwrap();
        let file = cursor.into_inner();
        assert_eq!(total as usize, file.len());
        assert_eq!(file.len(), G711_HEADER_BYTES + 8_002);
        let wav = parse(&file).unwrap();
        assert_eq!(wav.frames(), 8_001);
        assert!(!wav.was_recovered());
        assert_eq!(wav.mono_pcm16()[160 * 49], Law::A.decode_sample(Law::A.encode_sample(4_900)));
    }

    #[test]
    fn unfinished_recording_is_recoverable() {
        let mut r = Recorder::new(Cursor::new(Vec::new()), Law::Mu).unwrap();
        for _ in 0..10 {
            r.write(&[1_000; 160]).unwrap();
        }
        // A crash: the recorder is dropped without finish().
        let file = r.out.clone().into_inner();
        assert_eq!(parse(&file).unwrap().frames(), 0);
        let wav = parse_recovering(&file).unwrap();
        assert!(wav.was_recovered());
        assert_eq!(wav.frames(), 1_600);
    }

    #[test]
    fn recording_may_start_mid_stream() {
        let mut c = Cursor::new(vec![9u8; 10]);
        c.seek(SeekFrom::End(0)).unwrap();
        let mut r = Recorder::new(c, Law::Mu).unwrap();
        r.write(&[0; 160]).unwrap();
        let (c, total) = r.finish().unwrap();
        let file = c.into_inner();
        assert_eq!(file.len() as u64, 10 + total);
        assert_eq!(parse(&file[10..]).unwrap().frames(), 160);
    }

    /// A writer that fails after a few bytes, like a full disk.
    struct Full(usize);
    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 < buf.len() {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Seek for Full {
        fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
            Ok(0)
        }
    }

    #[test]
    fn write_errors_are_reported_not_swallowed() {
        let mut r = Recorder::new(Full(G711_HEADER_BYTES + 200), Law::A).unwrap();
        r.write(&[0; 160]).unwrap();
        assert!(matches!(r.write(&[0; 160]), Err(RecordError::Io(_))));
        assert_eq!(r.data_bytes(), 160);
    }
}
