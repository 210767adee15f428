//! Sample-rate conversion to 8 kHz: a Kaiser-windowed sinc low-pass evaluated as a polyphase FIR.
//!
//! Output sample `n` sits at input position `x = n * in_rate / 8000`; it is the dot product of the
//! inputs around `x` with the filter taps for the fractional part of `x`. The taps for every
//! fraction that occurs are computed once (one "phase" each). The low-pass passes 0-3.4 kHz
//! (telephone band) and is at least 80 dB down from 4 kHz, so nothing above the new Nyquist
//! frequency folds back into the band.

use std::f64::consts::PI;

/// The rate we convert to.
const OUT_RATE_HZ: u64 = 8_000;
/// -6 dB point of the low-pass: halfway across the transition band.
const CUTOFF_HZ: f64 = 3_700.0;
/// Transition band width: passband edge 3.4 kHz (top of the telephone band), stop band from 4 kHz
/// (the 8 kHz Nyquist frequency), so nothing aliases.
const TRANSITION_HZ: f64 = 600.0;
/// Stop-band attenuation: beyond the 8-bit-ish dynamic range of G.711 (about 38 dB SNR), with
/// margin for the 16-bit stored file.
const STOPBAND_DB: f64 = 80.0;
/// Most phases we tabulate; a rate like 44,099 Hz would need 8,000. Rounding the fraction to
/// 1/1024 of an input sample is a timing error below 1/44 µs at 44.1 kHz, i.e. noise more than
/// 60 dB down at 3.4 kHz.
const MAX_PHASES: u64 = 1_024;
/// Most taps in the table (4 MB of f32): bounds memory for very high input rates, where the
/// phase count is reduced to fit.
const MAX_TABLE_TAPS: u64 = 1 << 20;

/// A converter from one input rate to 8 kHz.
pub(crate) struct Resampler {
    in_rate: u64,
    /// Taps either side of the centre.
    half: usize,
    phases: u64,
    /// `phases` rows of `2 * half` taps.
    table: Vec<f32>,
}

impl Resampler {
    /// A converter from `in_rate_hz` (must be at least 8 kHz; callers check) to 8 kHz.
    pub(crate) fn new(in_rate_hz: u32) -> Self {
        let in_rate = u64::from(in_rate_hz.max(1));
        let fs = in_rate as f64;
        let beta = 0.1102 * (STOPBAND_DB - 8.7);
        // Kaiser's length estimate for the stop-band attenuation and transition width.
        let taps = (STOPBAND_DB - 8.0) / (2.285 * 2.0 * PI * TRANSITION_HZ / fs);
        let half = ((taps / 2.0).ceil() as usize).max(1);
        let width = 2 * half;
        let exact_phases = OUT_RATE_HZ / gcd(in_rate, OUT_RATE_HZ);
        let phases = exact_phases.min(MAX_PHASES).min((MAX_TABLE_TAPS / width as u64).max(1));
        let fc = CUTOFF_HZ / fs;
        let i0_beta = bessel_i0(beta);
        let mut table = Vec::with_capacity(phases as usize * width);
        for p in 0..phases {
            let frac = p as f64 / phases as f64;
            let start = table.len();
            for j in 0..width {
                // Offset of input sample (q - half + 1 + j) from the centre q + frac.
                let t = j as f64 - (half as f64 - 1.0) - frac;
                let x = t / half as f64;
                let window =
                    if x.abs() >= 1.0 { 0.0 } else { bessel_i0(beta * (1.0 - x * x).sqrt()) / i0_beta };
                table.push((2.0 * fc * sinc(2.0 * fc * t) * window) as f32);
            }
            // Unity gain at DC for every phase, so a constant stays exactly constant.
            let row = &mut table[start..];
            let sum: f32 = row.iter().sum();
            if sum.abs() > f32::EPSILON {
                row.iter_mut().for_each(|h| *h /= sum);
            }
        }
        Resampler { in_rate, half, phases, table }
    }

    /// Number of 8 kHz samples produced from `in_len` input samples.
    pub(crate) fn output_len(&self, in_len: u64) -> u64 {
        (in_len * OUT_RATE_HZ).div_ceil(self.in_rate)
    }

    /// Converts a whole signal of `in_len` samples. `fill(start, count, out)` must append input
    /// samples `start..start + count` to `out` (mono, -1.0..1.0); it is called with increasing
    /// `start`, in blocks, so the input never has to be in memory at once.
    pub(crate) fn run(&self, in_len: u64, mut fill: impl FnMut(u64, usize, &mut Vec<f32>)) -> Vec<i16> {
        /// Input samples fetched per `fill` call: a few hundred KB of f32, large enough that the
        /// window shifting below is cheap.
        const BLOCK: usize = 65_536;
        let n_out = self.output_len(in_len);
        let mut out = Vec::with_capacity(usize::try_from(n_out).unwrap_or(0));
        let width = 2 * self.half;
        // The window holds input[win_start .. win_start + win.len()], zero outside 0..in_len.
        let mut win: Vec<f32> = Vec::with_capacity(BLOCK + width);
        let mut win_start: i64 = 0;
        let mut next_fetch: u64 = 0;
        for n in 0..n_out {
            let num = n * self.in_rate;
            let mut q = num / OUT_RATE_HZ;
            let mut p = ((num % OUT_RATE_HZ) * self.phases + OUT_RATE_HZ / 2) / OUT_RATE_HZ;
            if p == self.phases {
                q += 1;
                p = 0;
            }
            let first = q as i64 - self.half as i64 + 1;
            let last = first + width as i64; // exclusive
                                             // Slide the window forward: drop what lies before `first`, fetch up to `last`.
            if first > win_start {
                let drop = ((first - win_start) as usize).min(win.len());
                win.drain(..drop);
                win_start += drop as i64;
                if win.is_empty() {
                    win_start = first.max(next_fetch as i64);
                }
            }
            while (win_start + win.len() as i64) < last && next_fetch < in_len {
                if win.is_empty() {
                    win_start = next_fetch as i64;
                }
                let count = (in_len - next_fetch).min(BLOCK as u64) as usize;
                let before = win.len();
                fill(next_fetch, count, &mut win);
                // A filler that delivers less than asked is padded: input ends are zeros anyway.
                win.resize(before + count, 0.0);
                next_fetch += count as u64;
            }
            let row_start = p as usize * width;
            let row = self.table.get(row_start..row_start + width).unwrap_or(&[]);
            let mut acc = 0.0f32;
            for (j, h) in row.iter().enumerate() {
                let idx = first + j as i64 - win_start;
                if idx >= 0 {
                    if let Some(x) = win.get(idx as usize) {
                        acc += h * x;
                    }
                }
            }
            out.push(quantize(acc));
        }
        out
    }
}

/// -1.0..1.0 to 16-bit, rounding and saturating (a resampled full-scale square overshoots).
pub(crate) fn quantize(x: f32) -> i16 {
    (x * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for the
/// Kaiser betas we use).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..200 {
        term *= half / k as f64;
        let t2 = term * term;
        sum += t2;
        if t2 < sum * 1e-16 {
            break;
        }
    }
    sum
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, secs: f64, amp: f64) -> Vec<f32> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n).map(|i| (amp * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as f32).collect()
    }

    fn rms(x: &[i16]) -> f64 {
        let core = &x[x.len() / 4..x.len() * 3 / 4];
        (core.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / core.len() as f64).sqrt()
    }

    fn convert(rate: u32, input: &[f32]) -> Vec<i16> {
        let r = Resampler::new(rate);
        r.run(input.len() as u64, |start, count, out| {
            out.extend_from_slice(&input[start as usize..start as usize + count]);
        })
    }

    #[test]
    fn passband_tone_keeps_its_level_at_every_common_rate() {
        for rate in [11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 96_000] {
            let out = convert(rate, &tone(rate, 1_000.0, 0.5, 0.5));
            assert_eq!(out.len(), 4_000, "{rate}");
            let level = rms(&out) / (0.5 * 32_768.0 / 2f64.sqrt());
            assert!((level - 1.0).abs() < 0.01, "{rate}: gain {level}");
        }
    }

    #[test]
    fn tones_above_4_khz_are_removed_not_folded() {
        for (rate, hz) in [(44_100, 6_000.0), (48_000, 4_100.0), (16_000, 5_000.0), (11_025, 4_500.0)] {
            let out = convert(rate, &tone(rate, hz, 0.5, 0.9));
            let db = 20.0 * (rms(&out).max(1e-3) / (0.9 * 32_768.0 / 2f64.sqrt())).log10();
            assert!(db < -60.0, "{rate} Hz input, {hz} Hz tone: {db:.1} dB");
        }
    }

    #[test]
    fn odd_rates_use_a_bounded_table() {
        let r = Resampler::new(44_099);
        assert!(r.phases <= MAX_PHASES);
        let r = Resampler::new(384_000);
        assert!(r.table.len() as u64 <= MAX_TABLE_TAPS);
    }

    #[test]
    fn a_filler_that_returns_too_little_does_not_panic() {
        let r = Resampler::new(44_100);
        let out = r.run(100_000, |_, _, _| {});
        assert!(out.iter().all(|&s| s == 0));
    }
}
