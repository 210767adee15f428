//! In-band DTMF detection on 8 kHz 16-bit linear PCM (the fallback when a phone sends neither
//! RFC 4733 nor INFO).
//!
//! Method: Goertzel filters at the 8 DTMF frequencies and the second harmonics of the 4 column
//! frequencies, over consecutive blocks of [`BLOCK_LEN`] samples (12.75 ms). A block is a *hit*
//! for a digit when all of these hold (loosely after ITU-T Q.24):
//! - both tones are above [`MIN_TONE_DBM0`];
//! - the twist is within limits: the row (low) tone at most [`NORMAL_TWIST_DB`] above the column
//!   (high) tone, the column at most [`REVERSE_TWIST_DB`] above the row;
//! - the strongest row beats every other row, and the strongest column every other column, by
//!   [`RELATIVE_PEAK_DB`] (speech and chords put energy in several bins);
//! - the column's second harmonic is [`HARMONIC_REJECT_DB`] below the column tone (musical
//!   notes have harmonics, DTMF generators do not). Row harmonics are not checked: 2 x 697 Hz
//!   sits 58 Hz from the 1336 Hz column, inside one Goertzel bin at this block length;
//! - the two tones carry at least [`MIN_TONE_FRACTION`] of the block's energy.
//!
//! Consecutive hits for the same digit form a *run*; a miss, another digit, or a block more than
//! [`BREAK_DROP_DB`] below the run's strongest block ends it (that last rule finds 20 ms gaps
//! between two presses of the same digit, which leave no silent block). At the run's end the tone
//! length is estimated from the blocks' amplitudes relative to the strongest (a block half full
//! of tone has half the amplitude), including the partly filled blocks on either side; the digit
//! is reported once if the estimate reaches [`MIN_TONE_MS`]. A press is therefore reported when
//! it ends, at most one block after the tone stops.

use super::{DigitEvent, DtmfSource};

/// Samples per Goertzel block: 12.75 ms at 8 kHz. Bins are 78 Hz wide, fine enough to separate
/// the rows (73 Hz apart at best, helped by the relative-peak test), short enough that a 20 ms
/// gap always contains a block that is mostly silent.
pub const BLOCK_LEN: usize = 102;
/// The detector's sample rate.
pub const SAMPLE_RATE_HZ: u32 = 8_000;
/// The row (low group) frequencies.
const ROWS_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// The column (high group) frequencies.
const COLS_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM: G.711 µ-law overloads at +3.17 dBm0,
/// which decodes to 32 124 (A-law: +3.14 dBm0 at 32 256, within 0.1 dB of this).
pub const DBM0_PEAK: f32 = 22_300.0;
/// Quietest tone accepted, per frequency. Q.24 asks for acceptance down to about -25 dBm0 per
/// tone in most administrations; 8 dB of margin covers line loss and a leaky bin.
pub const MIN_TONE_DBM0: f32 = -33.0;
/// How much louder the row tone may be than the column tone ("normal" twist).
pub const NORMAL_TWIST_DB: f32 = 8.0;
/// How much louder the column tone may be than the row tone ("reverse" twist).
pub const REVERSE_TWIST_DB: f32 = 4.0;
/// How far the chosen row (column) must stand above every other row (column).
pub const RELATIVE_PEAK_DB: f32 = 8.0;
/// How far below the column tone its second harmonic must be.
pub const HARMONIC_REJECT_DB: f32 = 10.0;
/// Share of the block's energy the two tones must carry. A full block of a clean tone scores
/// about 0.97 at 15 dB SNR; speech and music spread energy over many frequencies.
pub const MIN_TONE_FRACTION: f32 = 0.65;
/// A block this much weaker than the run's strongest ends the run (a gap between two presses).
pub const BREAK_DROP_DB: f32 = 10.0;
/// Shortest tone reported. Q.24 wants tones of 40 ms accepted and of 20-25 ms rejected; the
/// estimate is within a few ms, so the cut sits between.
pub const MIN_TONE_MS: u32 = 30;

/// Which G.711 law to decode in [`InbandDetector::push_g711`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711Law {
    /// PCMU (payload type 0).
    MuLaw,
    /// PCMA (payload type 8).
    ALaw,
}

impl G711Law {
    /// Decodes one byte to 16-bit linear with `audio-codec-algorithms` (bit-exact to G.191).
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            G711Law::MuLaw => audio_codec_algorithms::decode_ulaw(byte),
            G711Law::ALaw => audio_codec_algorithms::decode_alaw(byte),
        }
    }

    /// Encodes one 16-bit linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711Law::MuLaw => audio_codec_algorithms::encode_ulaw(sample),
            G711Law::ALaw => audio_codec_algorithms::encode_alaw(sample),
        }
    }
}

/// Goertzel filters: rows 0-3, columns 4-7, column second harmonics 8-11.
const FILTERS: usize = 12;

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// The outcome of one block.
#[derive(Debug, Clone, Copy)]
struct Block {
    hit: Option<(usize, usize)>,
    /// Goertzel power per filter.
    power: [f32; FILTERS],
}

impl Block {
    /// Amplitude at row `r` and column `c`: linear in the number of tone samples in the block.
    fn amplitude(&self, r: usize, c: usize) -> f32 {
        let row = self.power.get(r).copied().unwrap_or(0.0);
        let col = self.power.get(4 + c).copied().unwrap_or(0.0);
        row.sqrt() + col.sqrt()
    }
}

/// Consecutive hit blocks for one digit.
#[derive(Debug, Clone, Copy)]
struct Run {
    row: usize,
    col: usize,
    /// Sum of the amplitudes of the run's blocks plus the block before it.
    amplitude_sum: f32,
    amplitude_peak: f32,
}

/// Detects DTMF digits in a stream of 8 kHz 16-bit PCM for one leg.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coefficients: [f32; FILTERS],
    state: [(f32, f32); FILTERS],
    energy: f32,
    filled: usize,
    previous: Option<Block>,
    run: Option<Run>,
    min_tone_power: f32,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector with the parameters documented at the module level.
    pub fn new() -> Self {
        let mut coefficients = [0.0; FILTERS];
        let frequencies = ROWS_HZ.iter().chain(COLS_HZ.iter()).copied().chain(COLS_HZ.iter().map(|f| 2.0 * f));
        for (coefficient, hz) in coefficients.iter_mut().zip(frequencies) {
            *coefficient = 2.0 * (2.0 * std::f32::consts::PI * hz / SAMPLE_RATE_HZ as f32).cos();
        }
        // A sine of peak P has mean square P^2/2; Goertzel power of such a tone over a block is
        // (P * N / 2)^2, i.e. mean square * N^2 / 2.
        let peak = DBM0_PEAK * 10f32.powf(MIN_TONE_DBM0 / 20.0);
        let min_tone_power = (peak * BLOCK_LEN as f32 / 2.0).powi(2);
        InbandDetector {
            coefficients,
            state: [(0.0, 0.0); FILTERS],
            energy: 0.0,
            filled: 0,
            previous: None,
            run: None,
            min_tone_power,
        }
    }

    /// Forgets any partial block and run (e.g. while in-band detection is suppressed).
    pub fn reset(&mut self) {
        self.state = [(0.0, 0.0); FILTERS];
        self.energy = 0.0;
        self.filled = 0;
        self.previous = None;
        self.run = None;
    }

    /// Feeds samples; returns the presses that ended within them (usually none).
    pub fn push(&mut self, samples: &[i16]) -> Vec<DigitEvent> {
        let mut out = Vec::new();
        for &sample in samples {
            self.push_sample(f32::from(sample), &mut out);
        }
        out
    }

    /// Feeds G.711 payload bytes (PCMU or PCMA), decoding them on the way.
    pub fn push_g711(&mut self, law: G711Law, payload: &[u8]) -> Vec<DigitEvent> {
        let mut out = Vec::new();
        for &byte in payload {
            self.push_sample(f32::from(law.decode(byte)), &mut out);
        }
        out
    }

    fn push_sample(&mut self, x: f32, out: &mut Vec<DigitEvent>) {
        for (state, &coefficient) in self.state.iter_mut().zip(self.coefficients.iter()) {
            let s = x + coefficient * state.0 - state.1;
            *state = (s, state.0);
        }
        self.energy += x * x;
        self.filled += 1;
        if self.filled == BLOCK_LEN {
            let block = self.finish_block();
            if let Some(event) = self.advance(block) {
                out.push(event);
            }
        }
    }

    fn finish_block(&mut self) -> Block {
        let mut power = [0.0; FILTERS];
        for ((p, state), &coefficient) in power.iter_mut().zip(self.state.iter()).zip(self.coefficients.iter()) {
            *p = (state.0 * state.0 + state.1 * state.1 - coefficient * state.0 * state.1).max(0.0);
        }
        let hit = self.classify(&power);
        self.state = [(0.0, 0.0); FILTERS];
        self.energy = 0.0;
        self.filled = 0;
        Block { hit, power }
    }

    /// The acceptance tests of the module doc; returns `(row, column)` of a hit.
    fn classify(&self, power: &[f32; FILTERS]) -> Option<(usize, usize)> {
        let (rows, rest) = power.split_at(4);
        let (cols, harmonics) = rest.split_at(4);
        let (row, row_power) = strongest(rows)?;
        let (col, col_power) = strongest(cols)?;
        if row_power < self.min_tone_power || col_power < self.min_tone_power {
            return None;
        }
        if row_power > col_power * db_to_power_ratio(NORMAL_TWIST_DB)
            || col_power > row_power * db_to_power_ratio(REVERSE_TWIST_DB)
        {
            return None;
        }
        let relative = db_to_power_ratio(RELATIVE_PEAK_DB);
        let stands_out = |group: &[f32], best: usize, best_power: f32| {
            group.iter().enumerate().all(|(i, &p)| i == best || p * relative <= best_power)
        };
        if !stands_out(rows, row, row_power) || !stands_out(cols, col, col_power) {
            return None;
        }
        let harmonic = harmonics.get(col).copied().unwrap_or(f32::MAX);
        if harmonic * db_to_power_ratio(HARMONIC_REJECT_DB) > col_power {
            return None;
        }
        // Tone energy in the block is Goertzel power * 2 / N.
        let tone_energy = (row_power + col_power) * 2.0 / BLOCK_LEN as f32;
        if tone_energy < MIN_TONE_FRACTION * self.energy {
            return None;
        }
        Some((row, col))
    }

    /// Moves the run state machine by one block; returns a finished press.
    fn advance(&mut self, block: Block) -> Option<DigitEvent> {
        let previous = self.previous.replace(block);
        let break_ratio = 10f32.powf(-BREAK_DROP_DB / 20.0);
        match (self.run.as_mut(), block.hit) {
            (Some(run), Some((r, c)))
                if (r, c) == (run.row, run.col) && block.amplitude(r, c) >= run.amplitude_peak * break_ratio =>
            {
                let amplitude = block.amplitude(r, c);
                run.amplitude_sum += amplitude;
                run.amplitude_peak = run.amplitude_peak.max(amplitude);
                None
            }
            (_, hit) => {
                let finished = self.run.take().and_then(|run| Self::finish_run(run, &block));
                if let Some((r, c)) = hit {
                    let amplitude = block.amplitude(r, c);
                    // The block before the run may hold the tone's first samples.
                    let before = previous.map_or(0.0, |p| p.amplitude(r, c).min(amplitude));
                    self.run =
                        Some(Run { row: r, col: c, amplitude_sum: amplitude + before, amplitude_peak: amplitude });
                }
                finished
            }
        }
    }

    /// Reports a run whose estimated tone length is long enough. `after` is the block that
    /// ended it, which may hold the tone's last samples.
    fn finish_run(run: Run, after: &Block) -> Option<DigitEvent> {
        if run.amplitude_peak <= 0.0 {
            return None;
        }
        let tail = after.amplitude(run.row, run.col).min(run.amplitude_peak);
        let blocks = (run.amplitude_sum + tail) / run.amplitude_peak;
        let samples = blocks * BLOCK_LEN as f32;
        let duration_ms = (samples * 1_000.0 / SAMPLE_RATE_HZ as f32) as u32;
        if duration_ms < MIN_TONE_MS {
            return None;
        }
        let digit = *KEYPAD.get(run.row)?.get(run.col)?;
        Some(DigitEvent { digit, duration_ms, source: DtmfSource::InBand })
    }
}

/// Index and power of the strongest filter in a group.
fn strongest(group: &[f32]) -> Option<(usize, f32)> {
    group.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1))
}
