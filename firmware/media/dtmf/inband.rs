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

/// Which G.711 law to decode in [`InbandDetector::push_g711`]: the media room's one G.711 type.
pub use crate::media::audio::g711::Law as G711Law;

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
    /// Amplitude of the block before the run, which may hold the tone's first samples.
    before: f32,
    /// Amplitudes of the run's first and (so far) last block, the only ones that may be partly
    /// filled; the blocks between are full.
    first: f32,
    last: f32,
    blocks: u32,
    amplitude_peak: f32,
}

/// A block at least this close to the run's strongest counts as full: block amplitudes of a
/// steady tone wobble by a few percent with phase, which would otherwise bias long tones short.
const FULL_BLOCK_RATIO: f32 = 0.9;

impl Run {
    fn start(row: usize, col: usize, before: f32, amplitude: f32) -> Self {
        Run { row, col, before, first: amplitude, last: amplitude, blocks: 1, amplitude_peak: amplitude }
    }

    /// The tone's length in blocks: full inner blocks plus the filled share of the edge blocks.
    fn length_in_blocks(&self, tail: f32) -> f32 {
        let share = |a: f32| {
            let ratio = (a / self.amplitude_peak).min(1.0);
            if ratio >= FULL_BLOCK_RATIO {
                1.0
            } else {
                ratio
            }
        };
        let inner = match self.blocks {
            1 => share(self.first),
            n => share(self.first) + share(self.last) + (n - 2) as f32,
        };
        share(self.before) + inner + share(tail)
    }
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
        let frequencies =
            ROWS_HZ.iter().chain(COLS_HZ.iter()).copied().chain(COLS_HZ.iter().map(|f| 2.0 * f));
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
            self.push_sample(f32::from(law.decode_sample(byte)), &mut out);
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
        for ((p, state), &coefficient) in
            power.iter_mut().zip(self.state.iter()).zip(self.coefficients.iter())
        {
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
                if (r, c) == (run.row, run.col)
                    && block.amplitude(r, c) >= run.amplitude_peak * break_ratio =>
            {
                let amplitude = block.amplitude(r, c);
                run.last = amplitude;
                run.blocks = run.blocks.saturating_add(1);
                run.amplitude_peak = run.amplitude_peak.max(amplitude);
                None
            }
            (_, hit) => {
                let finished = self.run.take().and_then(|run| Self::finish_run(run, &block));
                if let Some((r, c)) = hit {
                    let amplitude = block.amplitude(r, c);
                    // The block before the run may hold the tone's first samples.
                    let before = previous.map_or(0.0, |p| p.amplitude(r, c).min(amplitude));
                    self.run = Some(Run::start(r, c, before, amplitude));
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
        let tail = after.amplitude(run.row, run.col);
        let samples = run.length_in_blocks(tail) * BLOCK_LEN as f32;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::dtmf::tests::XorShift;
    use std::f32::consts::PI;

    const RATE: f32 = SAMPLE_RATE_HZ as f32;

    /// Peak amplitude of a sine at `dbm0`.
    fn peak(dbm0: f32) -> f32 {
        DBM0_PEAK * 10f32.powf(dbm0 / 20.0)
    }

    fn frequencies(digit: char) -> (f32, f32) {
        for (r, row) in KEYPAD.iter().enumerate() {
            for (c, &d) in row.iter().enumerate() {
                if d == digit {
                    return (ROWS_HZ[r], COLS_HZ[c]);
                }
            }
        }
        panic!("not a digit: {digit}");
    }

    /// Signal builder in floating point; `pcm` rounds and clips to 16 bits.
    #[derive(Default)]
    pub(crate) struct Signal {
        pub(crate) samples: Vec<f32>,
    }

    impl Signal {
        pub(crate) fn silence(mut self, ms: u32) -> Self {
            self.samples.extend(std::iter::repeat_n(0.0, (ms * 8) as usize));
            self
        }

        pub(crate) fn samples_of_silence(mut self, n: usize) -> Self {
            self.samples.extend(std::iter::repeat_n(0.0, n));
            self
        }

        /// Two tones, each at `dbm0` (row `twist_db` louder than column), `ms` long.
        pub(crate) fn dual(
            mut self,
            row_hz: f32,
            col_hz: f32,
            row_dbm0: f32,
            col_dbm0: f32,
            ms: u32,
        ) -> Self {
            let (a, b) = (peak(row_dbm0), peak(col_dbm0));
            let n = (ms * 8) as usize;
            self.samples.extend((0..n).map(|i| {
                let t = i as f32 / RATE;
                a * (2.0 * PI * row_hz * t).sin() + b * (2.0 * PI * col_hz * t + 1.0).sin()
            }));
            self
        }

        pub(crate) fn digit(self, digit: char, dbm0: f32, ms: u32) -> Self {
            let (r, c) = frequencies(digit);
            self.dual(r, c, dbm0, dbm0, ms)
        }

        /// Adds white noise `snr_db` below the power of a two-tone DTMF signal at `dbm0` per tone.
        pub(crate) fn noise(mut self, dbm0: f32, snr_db: f32, seed: u64) -> Self {
            let tone_power = 2.0 * peak(dbm0).powi(2) / 2.0;
            let noise_rms = (tone_power / 10f32.powf(snr_db / 10.0)).sqrt();
            let mut rng = XorShift(seed);
            for s in &mut self.samples {
                // Sum of 12 uniforms: near-Gaussian with unit variance.
                let g: f32 =
                    (0..12).map(|_| (rng.next() >> 40) as f32 / (1u64 << 24) as f32).sum::<f32>() - 6.0;
                *s += g * noise_rms;
            }
            self
        }

        pub(crate) fn pcm(&self) -> Vec<i16> {
            self.samples.iter().map(|&s| s.round().clamp(-32_768.0, 32_767.0) as i16).collect()
        }
    }

    fn detect(pcm: &[i16]) -> Vec<DigitEvent> {
        let mut detector = InbandDetector::new();
        let mut events = Vec::new();
        // 20 ms frames, as RTP delivers them.
        for frame in pcm.chunks(160) {
            events.extend(detector.push(frame));
        }
        events.extend(detector.push(&[0; 2 * BLOCK_LEN]));
        events
    }

    fn digits(pcm: &[i16]) -> String {
        detect(pcm).iter().map(|e| e.digit).collect()
    }

    const ALL: &str = "0123456789*#ABCD";

    /// Dials `digits` with tones of `on_ms` and gaps of `off_ms` at `dbm0` per tone.
    fn dial(digits: &str, dbm0: f32, on_ms: u32, off_ms: u32, lead_samples: usize) -> Signal {
        let mut s = Signal::default().samples_of_silence(lead_samples);
        for d in digits.chars() {
            s = s.digit(d, dbm0, on_ms).silence(off_ms);
        }
        s.silence(60)
    }

    // Tests for detection.

    #[test]
    fn all_sixteen_digits_are_detected_from_minus_3_to_minus_25_dbm0() {
        for dbm0 in [-3.0, -10.0, -18.0, -25.0] {
            assert_eq!(digits(&dial(ALL, dbm0, 100, 100, 0).pcm()), ALL, "{dbm0} dBm0");
        }
    }

    #[test]
    fn forty_ms_tones_with_twenty_ms_gaps_are_detected_at_every_block_alignment() {
        let sequence = "1123455#*0DD";
        for lead in (0..BLOCK_LEN).step_by(7) {
            for dbm0 in [-3.0, -25.0] {
                let got = digits(&dial(sequence, dbm0, 40, 20, lead).pcm());
                assert_eq!(got, sequence, "lead {lead} samples, {dbm0} dBm0");
            }
        }
    }

    #[test]
    fn tones_in_white_noise_at_15_db_snr_are_detected() {
        for (seed, dbm0) in [(1, -3.0), (2, -10.0), (3, -18.0), (4, -25.0)] {
            for (on, off) in [(100, 100), (40, 20)] {
                let got = digits(&dial(ALL, dbm0, on, off, 13).noise(dbm0, 15.0, seed).pcm());
                assert_eq!(got, ALL, "{dbm0} dBm0, {on}/{off} ms");
            }
        }
    }

    #[test]
    fn a_long_press_is_reported_once_with_its_duration() {
        let events = detect(&Signal::default().silence(50).digit('5', -10.0, 1_500).silence(100).pcm());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].digit, '5');
        assert!((1_490..=1_515).contains(&events[0].duration_ms), "{}", events[0].duration_ms);
        assert_eq!(events[0].source, DtmfSource::InBand);
    }

    #[test]
    fn measured_durations_are_within_a_few_milliseconds() {
        for ms in [40, 65, 100, 250] {
            for lead in [0, 33, 77] {
                let events = detect(&dial("8", -12.0, ms, 50, lead).pcm());
                assert_eq!(events.len(), 1, "{ms} ms");
                let got = events[0].duration_ms;
                assert!(got + 4 >= ms && got <= ms + 4, "{ms} ms tone measured {got} ms");
            }
        }
    }

    #[test]
    fn frequencies_off_by_one_and_a_half_percent_are_accepted() {
        for factor in [0.985, 1.015] {
            let (r, c) = frequencies('9');
            let s = Signal::default().silence(20).dual(r * factor, c * factor, -10.0, -10.0, 60).silence(60);
            assert_eq!(digits(&s.pcm()), "9", "factor {factor}");
        }
    }

    #[test]
    fn twist_within_limits_is_accepted_and_beyond_is_rejected() {
        let (r, c) = frequencies('6');
        let case = |row_db: f32, col_db: f32| {
            digits(&Signal::default().silence(20).dual(r, c, row_db, col_db, 100).silence(60).pcm())
        };
        assert_eq!(case(-6.0, -13.0), "6", "normal twist 7 dB");
        assert_eq!(case(-10.0, -6.5), "6", "reverse twist 3.5 dB");
        assert_eq!(case(-6.0, -16.0), "", "normal twist 10 dB");
        assert_eq!(case(-12.0, -6.0), "", "reverse twist 6 dB");
    }

    // Tests for rejection (talk-off).

    #[test]
    fn tones_of_twenty_ms_or_less_are_rejected() {
        for ms in [10, 15, 20] {
            for lead in (0..BLOCK_LEN).step_by(5) {
                assert_eq!(digits(&dial("5", -3.0, ms, 80, lead).pcm()), "", "{ms} ms, lead {lead}");
            }
        }
    }

    #[test]
    fn tones_below_the_energy_floor_are_rejected() {
        assert_eq!(digits(&dial("1", -38.0, 100, 100, 0).pcm()), "");
    }

    #[test]
    fn silence_and_white_noise_do_not_trigger() {
        assert_eq!(digits(&Signal::default().silence(2_000).pcm()), "");
        assert_eq!(digits(&Signal::default().silence(5_000).noise(-3.0, 0.0, 7).pcm()), "");
    }

    #[test]
    fn a_sine_sweep_does_not_trigger() {
        // 200 Hz to 3.6 kHz in 4 s, a logarithmic sweep at -6 dBm0.
        let n = 4 * 8_000;
        let (f0, f1) = (200.0f32, 3_600.0f32);
        let k = (f1 / f0).ln() / n as f32;
        let a = peak(-6.0);
        let samples = (0..n)
            .map(|i| {
                let phase = 2.0 * PI * f0 / RATE * ((k * i as f32).exp() - 1.0) / k;
                a * phase.sin()
            })
            .collect();
        assert_eq!(digits(&Signal { samples }.pcm()), "");
    }

    #[test]
    fn single_dtmf_frequencies_do_not_trigger() {
        for hz in ROWS_HZ.iter().chain(COLS_HZ.iter()) {
            let s = Signal::default().dual(*hz, *hz, -6.0, -80.0, 500);
            assert_eq!(digits(&s.pcm()), "", "{hz} Hz");
        }
    }

    /// A note with harmonics falling at 1/h, like a bowed string or a brass instrument.
    fn note(samples: &mut [f32], hz: f32, dbm0: f32) {
        let a = peak(dbm0);
        for (i, s) in samples.iter_mut().enumerate() {
            let t = i as f32 / RATE;
            for h in 1..=6 {
                let f = hz * h as f32;
                if f < 3_900.0 {
                    *s += a / h as f32 * (2.0 * PI * f * t + h as f32).sin();
                }
            }
        }
    }

    #[test]
    fn music_like_chords_do_not_trigger() {
        // Equal-tempered notes; F5 (698 Hz) sits on row 1 and G#6 (1661 Hz) near column 4.
        let chords: [&[f32]; 6] = [
            &[261.6, 329.6, 392.0],
            &[698.5, 1_661.2],
            &[698.5, 880.0, 1_046.5],
            &[784.0, 1_318.5],
            &[932.3, 1_480.0],
            &[440.0, 554.4, 659.3, 880.0],
        ];
        for chord in chords {
            let mut samples = vec![0.0; 8_000];
            for &hz in chord {
                note(&mut samples, hz, -12.0);
            }
            assert_eq!(digits(&Signal { samples }.pcm()), "", "chord {chord:?}");
        }
    }

    /// Speech-like audio: a glottal pulse train with wandering pitch through three wandering
    /// formant resonators, with syllable-rate amplitude changes and some fricative noise.
    pub(crate) fn speech_like(seconds: u32, seed: u64) -> Signal {
        let n = (seconds * 8_000) as usize;
        let mut rng = XorShift(seed);
        let mut uniform = move || (rng.next() >> 40) as f32 / (1u64 << 24) as f32;
        let mut samples = Vec::with_capacity(n);
        let mut phase = 0.0f32;
        let mut resonators = [(0.0f32, 0.0f32); 3];
        for i in 0..n {
            let t = i as f32 / RATE;
            let pitch = 120.0 + 60.0 * (2.0 * PI * 0.7 * t).sin() + 20.0 * (2.0 * PI * 3.1 * t).sin();
            phase += pitch / RATE;
            let pulse = if phase >= 1.0 {
                phase -= 1.0;
                1.0
            } else {
                0.0
            };
            let excitation = pulse + 0.05 * (uniform() - 0.5);
            let formants = [
                500.0 + 300.0 * (2.0 * PI * 1.3 * t).sin(),
                1_500.0 + 600.0 * (2.0 * PI * 0.9 * t + 1.0).sin(),
                2_500.0 + 300.0 * (2.0 * PI * 1.7 * t + 2.0).sin(),
            ];
            let mut y = 0.0;
            for ((y1, y2), f) in resonators.iter_mut().zip(formants) {
                let r = 0.97f32;
                let out = excitation + 2.0 * r * (2.0 * PI * f / RATE).cos() * *y1 - r * r * *y2;
                *y2 = *y1;
                *y1 = out;
                y += out;
            }
            let syllable = 0.55 + 0.45 * (2.0 * PI * 4.0 * t).sin();
            samples.push(y * syllable);
        }
        // Scale to -10 dBm0 RMS, speech's usual level.
        let rms = (samples.iter().map(|s| s * s).sum::<f32>() / n as f32).sqrt().max(1e-9);
        let target = peak(-10.0) / 2f32.sqrt();
        Signal { samples: samples.into_iter().map(|s| s * target / rms).collect() }
    }

    #[test]
    fn speech_like_audio_does_not_trigger() {
        for seed in 1..=5 {
            let s = speech_like(6, seed);
            assert_eq!(digits(&s.pcm()), "", "seed {seed}");
        }
    }

    // Tests for G.711.

    #[test]
    fn digits_survive_a_g711_round_trip_in_both_laws() {
        for law in [G711Law::Mu, G711Law::A] {
            for (dbm0, on, off) in [(-3.0, 100, 100), (-25.0, 40, 20)] {
                let encoded: Vec<u8> =
                    dial(ALL, dbm0, on, off, 0).pcm().into_iter().map(|s| law.encode_sample(s)).collect();
                let mut detector = InbandDetector::new();
                let mut got = String::new();
                for payload in encoded.chunks(160) {
                    got.extend(detector.push_g711(law, payload).iter().map(|e| e.digit));
                }
                assert_eq!(got, ALL, "{law:?} at {dbm0} dBm0");
            }
        }
    }

    #[test]
    fn reset_discards_a_tone_in_progress() {
        let mut detector = InbandDetector::new();
        assert!(detector.push(&Signal::default().digit('2', -10.0, 100).pcm()).is_empty());
        detector.reset();
        assert!(detector.push(&Signal::default().silence(100).pcm()).is_empty());
    }
}

#[cfg(test)]
mod statistics {
    use super::tests::{speech_like, Signal};
    use super::*;

    /// Detection and talk-off counts for `docs/dtmf.md`. Slow in debug builds:
    /// `cargo test --release --lib dtmf_detection_statistics -- --ignored --nocapture`.
    #[test]
    #[ignore = "statistics for docs/dtmf.md: run in release mode with --ignored"]
    fn dtmf_detection_statistics() {
        const DIGITS: &str = "0123456789*#ABCD";
        println!("misses / presses (wrong or extra digits) by level, SNR and tone/gap length");
        for &(on, off) in &[(40, 20), (40, 40), (100, 100)] {
            for snr in [None, Some(20.0), Some(15.0), Some(10.0)] {
                let mut line =
                    format!("{on}/{off} ms, SNR {:>4}:", snr.map_or("none".into(), |s| format!("{s}")));
                for dbm0 in [-3.0, -10.0, -20.0, -25.0, -30.0, -35.0] {
                    let (mut presses, mut misses, mut wrong) = (0, 0, 0);
                    for round in 0..20u64 {
                        let mut s = Signal::default().samples_of_silence((round * 13 % 102) as usize);
                        for d in DIGITS.chars() {
                            s = s.digit(d, dbm0, on).silence(off);
                        }
                        let mut s = s.silence(60);
                        if let Some(snr) = snr {
                            s = s.noise(dbm0, snr, round + 1);
                        }
                        let mut detector = InbandDetector::new();
                        let mut got = String::new();
                        for frame in s.pcm().chunks(160) {
                            got.extend(detector.push(frame).iter().map(|e| e.digit));
                        }
                        presses += DIGITS.len();
                        let matched = lcs(DIGITS, &got);
                        misses += DIGITS.len() - matched;
                        wrong += got.chars().count() - matched;
                    }
                    line += &format!("  {dbm0} dBm0 {misses}/{presses} ({wrong})");
                }
                println!("{line}");
            }
        }
        let mut short = 0;
        for ms in [15, 20, 25] {
            for lead in 0..BLOCK_LEN {
                let s = Signal::default().samples_of_silence(lead).digit('5', -3.0, ms).silence(100);
                short += InbandDetector::new().push(&s.pcm()).len();
            }
        }
        println!("15, 20 and 25 ms tones at every block alignment: {short} of 306 reported");
        let mut talk_off = 0;
        let mut seconds = 0;
        for seed in 0..100 {
            let s = speech_like(6, seed + 100);
            talk_off += InbandDetector::new().push(&s.pcm()).len();
            seconds += 6;
        }
        println!("speech-like: {talk_off} digits in {seconds} s");
        let mut noise_hits = 0;
        for seed in 0..10 {
            let s = Signal::default().silence(60_000).noise(-10.0, 0.0, seed + 1);
            noise_hits += InbandDetector::new().push(&s.pcm()).len();
        }
        println!("white noise at -7 dBm0: {noise_hits} digits in 600 s");
    }

    /// Length of the longest common subsequence: presses matched in order.
    fn lcs(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut row = vec![0usize; b.len() + 1];
        for &x in &a {
            let mut diagonal = 0;
            for (j, &y) in b.iter().enumerate() {
                let above = row[j + 1];
                row[j + 1] = if x == y { diagonal + 1 } else { row[j + 1].max(row[j]) };
                diagonal = above;
            }
        }
        row[b.len()]
    }
}
