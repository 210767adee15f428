//! Terminated audio: everything the box itself hears, says, mixes or records.
//!
//! All of it is sans-IO (no sockets, no files, no clock): the relay/engine drivers feed it
//! decoded 20 ms frames and take frames back. Layers:
//! - [`g711`]: µ-law / A-law encode and decode (bit-exact to ITU-T G.191 via
//!   `audio-codec-algorithms`).
//! - [`wav`]: a WAV reader that never panics, the 8 kHz writers, and [`wav::import_admin_audio`]
//!   which converts an uploaded WAV to 8 kHz 16-bit mono or refuses it with a message for the
//!   web UI.
//! - [`jitter`]: a jitter buffer with loss concealment for RTP we terminate.
//! - [`mixer`]: the N-party mixer with a hearing matrix (conference, listen, whisper, barge).
//! - [`player`]: plays prompt pieces and music on hold frame by frame.
//! - [`recorder`]: writes mixed frames as a G.711 WAV into any `Write + Seek`.
//!
//! Everything works on [`Frame20`]: 20 ms of 8 kHz mono 16-bit PCM. Design, formats, limits and
//! measured figures: `docs/audio.md`.
//!
//! The public interface is: [`Frame20`], [`FRAME_SAMPLES`], [`SAMPLE_RATE_HZ`], and the six
//! modules.

pub mod g711;
pub mod jitter;
pub mod mixer;
pub mod player;
pub mod recorder;
mod resample;
pub mod wav;

/// The telephony sample rate everything here runs at (G.711).
pub const SAMPLE_RATE_HZ: u32 = 8_000;

/// Samples in one 20 ms frame at 8 kHz: the ptime every SIP phone we met defaults to.
pub const FRAME_SAMPLES: usize = 160;

/// One 20 ms frame of 8 kHz mono 16-bit PCM.
pub type Frame20 = [i16; FRAME_SAMPLES];

/// A frame of silence.
pub const SILENT_FRAME: Frame20 = [0; FRAME_SAMPLES];
