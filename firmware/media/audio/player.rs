//! Plays a sequence of PCM clips (prompt pieces, music on hold) as 20 ms frames.
//!
//! Clips are played back to back with no gap, so pieces like "3" + "new messages" flow as one
//! sentence; only the very end is padded with silence to fill the last frame. A looping player
//! (music on hold) wraps from the end of the last clip to the start of the first, without a gap,
//! and never finishes until [`Player::stop`].

use std::sync::Arc;

use super::{Frame20, FRAME_SAMPLES};

/// A clip of 8 kHz mono 16-bit PCM, shared between the calls that play it.
pub type Clip = Arc<[i16]>;

/// Plays clips frame by frame. Sans-IO: the media driver calls [`Player::next_frame`] every 20 ms.
#[derive(Debug, Clone)]
pub struct Player {
    clips: Vec<Clip>,
    clip: usize,
    pos: usize,
    looping: bool,
    done: bool,
    frames_played: u64,
}

impl Player {
    /// Plays `clips` once, in order.
    pub fn new(clips: Vec<Clip>) -> Self {
        Self::build(clips, false)
    }

    /// Plays `clips` in order, over and over (music on hold). A playlist with no samples at all
    /// is done at once, instead of spinning.
    pub fn looping(clips: Vec<Clip>) -> Self {
        Self::build(clips, true)
    }

    fn build(clips: Vec<Clip>, looping: bool) -> Self {
        let done = clips.iter().all(|c| c.is_empty());
        Player { clips, clip: 0, pos: 0, looping, done, frames_played: 0 }
    }

    /// The next 20 ms, or `None` once everything has played (or after [`Player::stop`]).
    pub fn next_frame(&mut self) -> Option<Frame20> {
        if self.done {
            return None;
        }
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut filled = 0;
        while filled < FRAME_SAMPLES {
            let Some(clip) = self.clips.get(self.clip) else {
                if self.looping {
                    self.clip = 0;
                    self.pos = 0;
                    continue;
                }
                break;
            };
            let rest = clip.get(self.pos..).unwrap_or(&[]);
            let n = rest.len().min(FRAME_SAMPLES - filled);
            frame[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            self.pos += n;
            if self.pos >= clip.len() {
                self.clip += 1;
                self.pos = 0;
            }
        }
        if filled == 0 {
            self.done = true;
            return None;
        }
        if !self.looping && self.clip >= self.clips.len() {
            self.done = true;
        }
        self.frames_played += 1;
        Some(frame)
    }

    /// True once every clip has played (never for a looping player until stopped).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Stops playing: the next [`Player::next_frame`] is `None`.
    pub fn stop(&mut self) {
        self.done = true;
    }

    /// Frames handed out so far.
    pub fn frames_played(&self) -> u64 {
        self.frames_played
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(value: i16, len: usize) -> Clip {
        vec![value; len].into()
    }

    #[test]
    fn clips_play_back_to_back_and_the_end_is_padded() {
        let mut p = Player::new(vec![clip(1, 100), clip(2, 100)]);
        let f1 = p.next_frame().unwrap();
        assert_eq!((f1[99], f1[100], f1[159]), (1, 2, 2));
        assert!(!p.is_done());
        let f2 = p.next_frame().unwrap();
        assert_eq!((f2[39], f2[40]), (2, 0));
        assert!(p.is_done());
        assert_eq!(p.next_frame(), None);
        assert_eq!(p.frames_played(), 2);
    }

    #[test]
    fn exact_multiple_of_a_frame_finishes_without_an_extra_frame() {
        let mut p = Player::new(vec![clip(3, 320)]);
        assert!(p.next_frame().is_some());
        assert!(p.next_frame().is_some());
        assert!(p.is_done());
        assert_eq!(p.next_frame(), None);
    }

    #[test]
    fn looping_wraps_without_a_gap_until_stopped() {
        let mut p = Player::looping(vec![clip(7, 100), clip(0, 0)]);
        for _ in 0..50 {
            assert_eq!(p.next_frame().unwrap(), [7; FRAME_SAMPLES]);
        }
        assert!(!p.is_done());
        p.stop();
        assert_eq!(p.next_frame(), None);
    }

    #[test]
    fn an_empty_playlist_is_done_at_once_even_when_looping() {
        assert!(Player::looping(vec![]).is_done());
        assert!(Player::looping(vec![clip(1, 0)]).next_frame().is_none());
        assert!(Player::new(vec![]).next_frame().is_none());
    }
}
