//! Test signals and their analysis: sine tones, 8 kHz WAV files, and a Goertzel tone detector
//! working on 100 ms blocks. Each test crate keeps its own thresholds; the shared detector for
//! mixed tones is [`ToneDetector::MIXED`].
#![allow(dead_code)] // each test crate uses a different part of the harness

use hakoden::media::audio::wav;
use std::path::Path;

/// G.711's rate: the codec every test phone offers, and the rate of the box's recordings.
pub const SAMPLE_RATE: u32 = 8_000;
/// Analysis block: 100 ms gives 10 Hz bins.
pub const BLOCK_SAMPLES: usize = (SAMPLE_RATE / 10) as usize;

/// `seconds` of a sine at `hz` with peak `amplitude`, at [`SAMPLE_RATE`].
pub fn tone(hz: f64, seconds: f64, amplitude: f64) -> Vec<i16> {
    let n = (f64::from(SAMPLE_RATE) * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// 16-bit mono PCM WAV at 8 kHz.
pub fn write_wav(path: &Path, samples: &[i16]) {
    std::fs::write(path, wav::encode_pcm16_mono_8k(samples)).expect("write WAV");
}

/// What a phone or the box wrote: format, samples. A file still being written, or whose writer
/// was killed, may carry a wrong data length; the recovering parser reads to the end of the file.
pub fn read_audio(path: &Path) -> Option<(wav::Format, Vec<i16>)> {
    let bytes = std::fs::read(path).ok()?;
    let parsed = wav::parse_recovering(&bytes).ok()?;
    Some((parsed.format(), parsed.mono_pcm16()))
}

/// Energy of `block`, sampled at `rate`, at `hz` (Goertzel).
pub fn goertzel_at(block: &[f64], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in block {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Energy of `block` at `hz` (Goertzel), at [`SAMPLE_RATE`].
pub fn goertzel(block: &[f64], hz: f64) -> f64 {
    goertzel_at(block, SAMPLE_RATE, hz)
}

/// The 100 ms blocks of `samples` (at `rate`) as floats; a short tail is left out.
pub fn blocks_at(samples: &[i16], rate: u32) -> impl Iterator<Item = Vec<f64>> + '_ {
    let block_len = (rate / 10).max(1) as usize;
    samples.chunks_exact(block_len).map(|c| c.iter().map(|&s| f64::from(s)).collect())
}

/// The 100 ms blocks of `samples` at [`SAMPLE_RATE`].
pub fn blocks(samples: &[i16]) -> impl Iterator<Item = Vec<f64>> + '_ {
    blocks_at(samples, SAMPLE_RATE)
}

pub fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// The share of a block's energy at `hz`: 1 for a pure tone on a bin, 0.5 each for two equal
/// tones, small for speech (its energy spreads over many harmonics and formants).
pub fn tone_share(x: &[f64], rate: u32, hz: f64) -> f64 {
    let energy = x.iter().map(|v| v * v).sum::<f64>();
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * goertzel_at(x, rate, hz) / (x.len() as f64 * energy)
}

/// When a 100 ms block counts as carrying a tone.
#[derive(Debug, Clone, Copy)]
pub struct ToneDetector {
    /// A tone's Goertzel neighbours sit this far on either side; their energy must stay far
    /// below.
    pub neighbour_offset_hz: f64,
    /// How much a tone must dominate its neighbours (energy ratio).
    pub dominance: f64,
    /// RMS floor per block.
    pub min_rms: f64,
    /// Least share of a block's energy the tone must have ([`tone_share`]); `None` skips the
    /// check.
    pub min_share: Option<f64>,
}

impl ToneDetector {
    /// For tones at about -12 dBFS (8 000 peak), alone or mixed with others: the RMS floor is well
    /// above G.711 idle noise and below one tone's ~5 700; two mixed tones have a share of 0.5
    /// each, so 0.3 keeps both and refuses a vowel's harmonic.
    pub const MIXED: ToneDetector =
        ToneDetector { neighbour_offset_hz: 300.0, dominance: 10.0, min_rms: 1_500.0, min_share: Some(0.3) };

    /// Whether block `x` (at [`SAMPLE_RATE`]) is loud, carries `hz` well above its neighbours,
    /// and the tone is a good part of the block.
    pub fn block_has_tone(&self, x: &[f64], hz: f64) -> bool {
        self.block_has_tone_at(x, SAMPLE_RATE, hz)
    }

    /// [`ToneDetector::block_has_tone`] for a block sampled at `rate`.
    pub fn block_has_tone_at(&self, x: &[f64], rate: u32, hz: f64) -> bool {
        let on = goertzel_at(x, rate, hz);
        let off = [hz - self.neighbour_offset_hz, hz + self.neighbour_offset_hz]
            .iter()
            .map(|&n| goertzel_at(x, rate, n))
            .fold(0.0, f64::max);
        rms(x) >= self.min_rms
            && on > self.dominance * off
            && self.min_share.is_none_or(|min| tone_share(x, rate, hz) >= min)
    }

    /// Indices of the 100 ms blocks that carry `hz` steadily: in runs of at least `min_run`
    /// blocks.
    pub fn steady_blocks(&self, samples: &[i16], hz: f64, min_run: usize) -> Vec<usize> {
        let on: Vec<bool> = blocks(samples).map(|x| self.block_has_tone(&x, hz)).collect();
        let mut out = Vec::new();
        let mut run_start = 0;
        for i in 0..=on.len() {
            if on.get(i).copied().unwrap_or(false) {
                continue;
            }
            if i - run_start >= min_run {
                out.extend(run_start..i);
            }
            run_start = i + 1;
        }
        out
    }
}
