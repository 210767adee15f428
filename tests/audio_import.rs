//! Admin audio files through a running box (issue 3): `audio import FILE NAME` converts WAVs of
//! any rate, width and channel count to 8 kHz 16-bit mono and refuses anything else with a
//! message that says what was wrong.

mod common;

use common::TestBox;
use std::path::Path;
use std::process::Command;

/// `hakoden console` with its output, success or not (the harness's `console` panics on errors).
fn console(tb: &TestBox, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hakoden"))
        .arg("console")
        .arg("--data")
        .arg(tb.data_dir())
        .args(args)
        .output()
        .expect("run hakoden console");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A PCM WAV with `channels` interleaved channels of a 1 kHz tone.
fn wav(rate: u32, channels: u16, bits: u16, seconds: f32) -> Vec<u8> {
    let frames = (rate as f32 * seconds) as usize;
    let mut data = Vec::new();
    for i in 0..frames {
        let v = (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate as f32).sin() * 0.5;
        for _ in 0..channels {
            match bits {
                16 => data.extend_from_slice(&((v * 32767.0) as i16).to_le_bytes()),
                24 => data.extend_from_slice(&((v * 8_388_607.0) as i32).to_le_bytes()[..3]),
                _ => unreachable!(),
            }
        }
    }
    let block = channels * bits / 8;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

fn header_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn a_44k_stereo_24_bit_wav_is_converted_and_listed() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    let src = tb.scratch("upload").join("greeting44k.wav");
    std::fs::write(&src, wav(44_100, 2, 24, 2.0)).expect("write");
    let reply = console(&tb, &["audio", "import", &src.to_string_lossy(), "業務A"]);
    assert!(reply.starts_with("stored `業務A`: 2.0 s"), "{reply}");
    let stored = std::fs::read(tb.data_dir().join("audio").join("業務A.wav")).expect("stored file");
    assert_eq!(&stored[..4], b"RIFF");
    assert_eq!(header_u32(&stored, 24), 8000, "8 kHz");
    assert_eq!(u16::from_le_bytes([stored[22], stored[23]]), 1, "mono");
    assert_eq!(u16::from_le_bytes([stored[34], stored[35]]), 16, "16-bit");
    let list = tb.console("audio list");
    assert!(list.contains("業務A") && list.contains("2.0 s"), "{list}");
}

#[test]
fn files_that_are_not_wav_are_refused_with_a_reason() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    let mp3 = tb.scratch("upload").join("music.mp3");
    let mut id3 = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    id3.extend(std::iter::repeat_n(0u8, 2000));
    std::fs::write(&mp3, id3).expect("write");
    let mp3s = mp3.to_string_lossy().into_owned();
    let reply = console(&tb, &["audio", "import", &mp3s, "music"]);
    assert!(reply.starts_with("error: ") && reply.contains("MP3"), "{reply}");
    let reply = console(&tb, &["audio", "import", &mp3s, "../escape"]);
    assert!(reply.starts_with("error: ") && reply.contains("cannot name"), "{reply}");
    let reply = console(&tb, &["audio", "import", "/nonexistent/file.wav", "x"]);
    assert!(reply.starts_with("error: cannot read"), "{reply}");
    assert!(!Path::new(&tb.data_dir().join("audio").join("music.wav")).exists());
}
