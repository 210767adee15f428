//! The N-party mixer core: 20 ms frames in, one mix per listener out.
//!
//! # Hearing matrix
//!
//! Whether listener L hears speaker S is decided, in this order:
//! 1. Nobody hears themselves.
//! 2. An explicit relation set with [`Mixer::set_relation`] (L, S, audible) wins.
//! 3. Otherwise L hears S if L *hears all* and S is *heard by all*.
//!
//! A participant added with [`Mixer::add_participant`] hears all and is heard by all, so a room
//! of participants is a conference with no further setup. The supervisor modes are defaults plus
//! at most one relation ([`Mixer::monitor`]):
//!
//! | mode | supervisor heard by all | relations |
//! |---|---|---|
//! | listen: hears agent and customer, heard by none | no | — |
//! | whisper: heard only by the agent | no | (agent, supervisor, audible) |
//! | barge: heard by both | yes | — |
//!
//! Sources ([`Mixer::add_source`]: prompt or music-on-hold players) are speakers that have no
//! output. A hold: `set_hears_all(held, false)` and `set_relation(held, moh, true)`, with the MOH
//! source added as not heard by all.
//!
//! # Cost
//!
//! A frame costs O(N + R) where R is the number of relations: the sum T of everyone heard by all
//! is computed once, then each listener gets T minus its own input plus/minus its relations. A
//! plain conference is 2N frame additions, not N².
//!
//! Sums are 32-bit and saturate to 16 bits at the end (hard clip). With G.711's peak of
//! ±32,124 two loud talkers clip rather than wrap; in practice a talker is 20-30 dB below full
//! scale and clipping is rare. A participant whose input frame did not arrive this tick
//! contributes silence.

use std::collections::HashMap;
use std::fmt;

use super::{Frame20, FRAME_SAMPLES, SILENT_FRAME};

/// Most participants (inputs, sources included) in one mixer. A conference room on the appliance
/// is a few callers; 64 covers a company all-hands while keeping one mix well under a
/// millisecond (measured per participant in `docs/audio.md`) and the relation lists short.
pub const MAX_PARTICIPANTS: usize = 64;

/// Identifies a participant or source within one mixer (the engine's leg id, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// What a supervisor does to an agent's call ([`Mixer::monitor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMode {
    /// The supervisor hears the agent and the customer; nobody hears the supervisor.
    Listen,
    /// The supervisor hears both; only the agent hears the supervisor (coaching).
    Whisper,
    /// The supervisor hears both and both hear the supervisor (joins the call).
    Barge,
}

/// Why a mixer command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MixerError {
    /// Already [`MAX_PARTICIPANTS`] in this mixer.
    Full,
    /// The id is already in this mixer.
    Duplicate(ParticipantId),
    /// No participant or source with this id.
    Unknown(ParticipantId),
    /// The id is a source: it has no output, so it cannot be a listener.
    NotAListener(ParticipantId),
}

impl fmt::Display for MixerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MixerError::Full => write!(f, "mixer full ({MAX_PARTICIPANTS} participants)"),
            MixerError::Duplicate(id) => write!(f, "participant {} already in the mixer", id.0),
            MixerError::Unknown(id) => write!(f, "participant {} not in the mixer", id.0),
            MixerError::NotAListener(id) => write!(f, "{} is a source and cannot listen", id.0),
        }
    }
}

impl std::error::Error for MixerError {}

#[derive(Debug, Clone)]
struct Slot {
    id: ParticipantId,
    /// Gets an output (false for sources).
    listener: bool,
    hears_all: bool,
    heard_by_all: bool,
    /// Explicit relations of this listener: (speaker slot index, audible).
    relations: Vec<(usize, bool)>,
    input: Frame20,
    has_input: bool,
    output: Frame20,
}

/// The mixer. Call [`Mixer::set_input`] for the frames that arrived, then [`Mixer::mix`] once per
/// 20 ms tick, then read [`Mixer::output`] for each listener.
#[derive(Debug, Clone, Default)]
pub struct Mixer {
    slots: Vec<Slot>,
    /// Id to slot index, so feeding N inputs per frame is O(N), not O(N²).
    by_id: HashMap<ParticipantId, usize>,
}

impl Mixer {
    /// An empty mixer.
    pub fn new() -> Self {
        Mixer { slots: Vec::new(), by_id: HashMap::new() }
    }

    fn index(&self, id: ParticipantId) -> Result<usize, MixerError> {
        self.by_id.get(&id).copied().ok_or(MixerError::Unknown(id))
    }

    fn insert(&mut self, id: ParticipantId, listener: bool, heard_by_all: bool) -> Result<(), MixerError> {
        if self.by_id.contains_key(&id) {
            return Err(MixerError::Duplicate(id));
        }
        if self.slots.len() >= MAX_PARTICIPANTS {
            return Err(MixerError::Full);
        }
        self.by_id.insert(id, self.slots.len());
        self.slots.push(Slot {
            id,
            listener,
            hears_all: listener,
            heard_by_all,
            relations: Vec::new(),
            input: SILENT_FRAME,
            has_input: false,
            output: SILENT_FRAME,
        });
        Ok(())
    }

    /// Adds a participant that hears all and is heard by all (a conference member).
    pub fn add_participant(&mut self, id: ParticipantId) -> Result<(), MixerError> {
        self.insert(id, true, true)
    }

    /// Adds a source (prompt or music-on-hold player): a speaker with no output. If
    /// `heard_by_all` is false, only listeners given a relation to it hear it.
    pub fn add_source(&mut self, id: ParticipantId, heard_by_all: bool) -> Result<(), MixerError> {
        self.insert(id, false, heard_by_all)
    }

    /// Removes a participant or source and every relation that names it. Returns whether it was
    /// there.
    pub fn remove(&mut self, id: ParticipantId) -> bool {
        let Ok(gone) = self.index(id) else { return false };
        let moved = self.slots.len() - 1;
        self.slots.swap_remove(gone);
        self.by_id.remove(&id);
        if let Some(slot) = self.slots.get(gone) {
            self.by_id.insert(slot.id, gone);
        }
        for slot in &mut self.slots {
            slot.relations.retain(|&(s, _)| s != gone);
            for (s, _) in &mut slot.relations {
                if *s == moved {
                    *s = gone;
                }
            }
        }
        true
    }

    /// Whether `id` hears everyone heard by all (default: yes for participants).
    pub fn set_hears_all(&mut self, id: ParticipantId, hears_all: bool) -> Result<(), MixerError> {
        let i = self.index(id)?;
        let slot = &mut self.slots[i];
        if !slot.listener {
            return Err(MixerError::NotAListener(id));
        }
        slot.hears_all = hears_all;
        Ok(())
    }

    /// Whether everyone who hears all hears `id` (default: yes for participants).
    pub fn set_heard_by_all(&mut self, id: ParticipantId, heard_by_all: bool) -> Result<(), MixerError> {
        let i = self.index(id)?;
        self.slots[i].heard_by_all = heard_by_all;
        Ok(())
    }

    /// Sets whether `listener` hears `speaker`, overriding the defaults (see the module doc). A
    /// relation of a participant to itself is ignored: nobody hears themselves.
    pub fn set_relation(
        &mut self,
        listener: ParticipantId,
        speaker: ParticipantId,
        audible: bool,
    ) -> Result<(), MixerError> {
        let l = self.index(listener)?;
        let s = self.index(speaker)?;
        if !self.slots[l].listener {
            return Err(MixerError::NotAListener(listener));
        }
        if l == s {
            return Ok(());
        }
        let relations = &mut self.slots[l].relations;
        match relations.iter_mut().find(|(sp, _)| *sp == s) {
            Some(r) => r.1 = audible,
            None => relations.push((s, audible)),
        }
        Ok(())
    }

    /// Drops the explicit relation, if any, so the defaults decide again.
    pub fn clear_relation(
        &mut self,
        listener: ParticipantId,
        speaker: ParticipantId,
    ) -> Result<(), MixerError> {
        let l = self.index(listener)?;
        let s = self.index(speaker)?;
        self.slots[l].relations.retain(|&(sp, _)| sp != s);
        Ok(())
    }

    /// Puts `supervisor` (already a participant) in `mode` towards `agent`: clears every
    /// relation in which the supervisor is the speaker, makes the supervisor hear all, then
    /// applies the table in the module doc.
    pub fn monitor(
        &mut self,
        supervisor: ParticipantId,
        agent: ParticipantId,
        mode: MonitorMode,
    ) -> Result<(), MixerError> {
        let sup = self.index(supervisor)?;
        self.index(agent)?;
        for slot in &mut self.slots {
            slot.relations.retain(|&(s, _)| s != sup);
        }
        self.set_hears_all(supervisor, true)?;
        self.set_heard_by_all(supervisor, mode == MonitorMode::Barge)?;
        if mode == MonitorMode::Whisper {
            self.set_relation(agent, supervisor, true)?;
        }
        Ok(())
    }

    /// Whether `listener` hears `speaker` under the current matrix.
    pub fn is_audible(&self, listener: ParticipantId, speaker: ParticipantId) -> bool {
        let (Ok(l), Ok(s)) = (self.index(listener), self.index(speaker)) else { return false };
        let ls = &self.slots[l];
        if l == s || !ls.listener {
            return false;
        }
        match ls.relations.iter().find(|(sp, _)| *sp == s) {
            Some(&(_, audible)) => audible,
            None => ls.hears_all && self.slots[s].heard_by_all,
        }
    }

    /// Gives `id`'s input for this tick (decoded, 20 ms). Inputs not given before
    /// [`Mixer::mix`] count as silence.
    pub fn set_input(&mut self, id: ParticipantId, frame: &Frame20) -> Result<(), MixerError> {
        let i = self.index(id)?;
        let slot = &mut self.slots[i];
        slot.input = *frame;
        slot.has_input = true;
        Ok(())
    }

    /// What a call recording of `parties` takes this tick: their own inputs plus every other
    /// input at least one of them hears (a whisper to one party is in it, a listener is not).
    /// Call it after the inputs and before [`Mixer::mix`], which clears them. Unknown parties
    /// are skipped.
    pub fn heard_by_any(&self, parties: &[ParticipantId]) -> Frame20 {
        let mut acc = [0i32; FRAME_SAMPLES];
        for slot in self.slots.iter().filter(|s| s.has_input) {
            let recorded = parties.contains(&slot.id) || parties.iter().any(|p| self.is_audible(*p, slot.id));
            if recorded {
                add(&mut acc, &slot.input, 1);
            }
        }
        let mut out = SILENT_FRAME;
        for (o, a) in out.iter_mut().zip(acc.iter()) {
            *o = (*a).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
        out
    }

    /// Mixes this tick: computes every listener's output and clears all inputs.
    pub fn mix(&mut self) {
        let mut total = [0i32; FRAME_SAMPLES];
        for slot in self.slots.iter().filter(|s| s.heard_by_all && s.has_input) {
            add(&mut total, &slot.input, 1);
        }
        for l in 0..self.slots.len() {
            let me = &self.slots[l];
            if !me.listener {
                continue;
            }
            let mut acc = if me.hears_all { total } else { [0i32; FRAME_SAMPLES] };
            if me.hears_all && me.heard_by_all && me.has_input {
                add(&mut acc, &me.input, -1);
            }
            for &(s, audible) in &me.relations {
                let Some(speaker) = self.slots.get(s) else { continue };
                let by_default = me.hears_all && speaker.heard_by_all;
                if s != l && audible != by_default && speaker.has_input {
                    add(&mut acc, &speaker.input, if audible { 1 } else { -1 });
                }
            }
            let out = &mut self.slots[l].output;
            for (o, a) in out.iter_mut().zip(acc.iter()) {
                *o = (*a).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
        }
        for slot in &mut self.slots {
            slot.has_input = false;
        }
    }

    /// `id`'s mix from the last [`Mixer::mix`]; `None` for an unknown id or a source.
    pub fn output(&self, id: ParticipantId) -> Option<&Frame20> {
        let slot = self.slots.get(self.index(id).ok()?)?;
        slot.listener.then_some(&slot.output)
    }

    /// Participants and sources in the mixer.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True with no participants or sources.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether `id` is in the mixer.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.index(id).is_ok()
    }
}

#[inline]
fn add(acc: &mut [i32; FRAME_SAMPLES], frame: &Frame20, sign: i32) {
    for (a, &x) in acc.iter_mut().zip(frame.iter()) {
        *a += sign * i32::from(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ParticipantId = ParticipantId(1);
    const B: ParticipantId = ParticipantId(2);
    const C: ParticipantId = ParticipantId(3);
    const SUP: ParticipantId = ParticipantId(9);

    /// Each participant speaks a distinct constant so a mix shows who was heard: A=1, B=10,
    /// C=100, SUP=1000, id 100+ = id.
    fn level(id: ParticipantId) -> i16 {
        match id.0 {
            1 => 1,
            2 => 10,
            3 => 100,
            9 => 1000,
            n => n as i16,
        }
    }

    fn tick(m: &mut Mixer, speakers: &[ParticipantId]) {
        for &id in speakers {
            m.set_input(id, &[level(id); FRAME_SAMPLES]).unwrap();
        }
        m.mix();
    }

    fn heard(m: &Mixer, id: ParticipantId) -> i16 {
        m.output(id).unwrap()[0]
    }

    fn room(ids: &[ParticipantId]) -> Mixer {
        let mut m = Mixer::new();
        for &id in ids {
            m.add_participant(id).unwrap();
        }
        m
    }

    /// The recording of parties A and B in `mode`, with A, B, C (a plain member) and SUP talking.
    fn recorded(mode: Option<MonitorMode>) -> i16 {
        let mut m = room(&[A, B, SUP]);
        if let Some(mode) = mode {
            m.monitor(SUP, A, mode).unwrap();
        }
        for id in [A, B, SUP] {
            m.set_input(id, &[level(id); FRAME_SAMPLES]).unwrap();
        }
        let frame = m.heard_by_any(&[A, B]);
        m.mix();
        frame[0]
    }

    #[test]
    fn a_recording_holds_the_parties_and_only_what_one_of_them_heard() {
        assert_eq!(recorded(Some(MonitorMode::Listen)), 11, "a listener is in no one's ear");
        assert_eq!(recorded(Some(MonitorMode::Whisper)), 1011, "the agent heard the whisper");
        assert_eq!(recorded(Some(MonitorMode::Barge)), 1011);
        assert_eq!(recorded(None), 1011, "a plain member is heard by both");
        let mut m = room(&[A, B]);
        m.set_input(A, &[level(A); FRAME_SAMPLES]).unwrap();
        m.mix();
        assert_eq!(m.heard_by_any(&[A, B])[0], 0, "inputs do not linger after a mix");
    }

    #[test]
    fn conference_members_hear_everyone_but_themselves() {
        let mut m = room(&[A, B, C]);
        tick(&mut m, &[A, B, C]);
        assert_eq!((heard(&m, A), heard(&m, B), heard(&m, C)), (110, 101, 11));
    }

    #[test]
    fn missing_input_is_silence_and_inputs_do_not_linger() {
        let mut m = room(&[A, B, C]);
        tick(&mut m, &[A]);
        assert_eq!((heard(&m, A), heard(&m, B), heard(&m, C)), (0, 1, 1));
        tick(&mut m, &[]);
        assert_eq!(heard(&m, B), 0);
    }

    #[test]
    fn listen_hears_both_and_is_heard_by_none() {
        let mut m = room(&[A, B, SUP]);
        m.monitor(SUP, A, MonitorMode::Listen).unwrap();
        tick(&mut m, &[A, B, SUP]);
        assert_eq!((heard(&m, A), heard(&m, B), heard(&m, SUP)), (10, 1, 11));
    }

    #[test]
    fn whisper_is_heard_only_by_the_agent() {
        let mut m = room(&[A, B, SUP]);
        m.monitor(SUP, A, MonitorMode::Whisper).unwrap();
        tick(&mut m, &[A, B, SUP]);
        assert_eq!((heard(&m, A), heard(&m, B), heard(&m, SUP)), (1010, 1, 11));
    }

    #[test]
    fn barge_is_heard_by_both_and_modes_switch_cleanly() {
        let mut m = room(&[A, B, SUP]);
        m.monitor(SUP, A, MonitorMode::Whisper).unwrap();
        m.monitor(SUP, A, MonitorMode::Barge).unwrap();
        tick(&mut m, &[A, B, SUP]);
        assert_eq!((heard(&m, A), heard(&m, B), heard(&m, SUP)), (1010, 1001, 11));
        m.monitor(SUP, A, MonitorMode::Listen).unwrap();
        tick(&mut m, &[A, B, SUP]);
        assert_eq!((heard(&m, A), heard(&m, B)), (10, 1));
    }

    #[test]
    fn hold_plays_music_to_the_held_party_only() {
        let moh = ParticipantId(200);
        let mut m = room(&[A, B]);
        m.add_source(moh, false).unwrap();
        m.set_hears_all(B, false).unwrap();
        m.set_heard_by_all(B, false).unwrap();
        m.set_relation(B, moh, true).unwrap();
        tick(&mut m, &[A, B, moh]);
        assert_eq!((heard(&m, A), heard(&m, B)), (0, 200));
        assert_eq!(m.output(moh), None);
    }

    #[test]
    fn a_prompt_source_heard_by_all_reaches_every_member() {
        let prompt = ParticipantId(150);
        let mut m = room(&[A, B]);
        m.add_source(prompt, true).unwrap();
        tick(&mut m, &[A, prompt]);
        assert_eq!((heard(&m, A), heard(&m, B)), (150, 151));
    }

    #[test]
    fn loud_sums_saturate_instead_of_wrapping() {
        let mut m = room(&[A, B, C]);
        m.set_input(A, &[30_000; FRAME_SAMPLES]).unwrap();
        m.set_input(B, &[30_000; FRAME_SAMPLES]).unwrap();
        m.set_input(C, &[-30_000; FRAME_SAMPLES]).unwrap();
        m.mix();
        assert_eq!(heard(&m, C), i16::MAX);
        m.set_input(A, &[-30_000; FRAME_SAMPLES]).unwrap();
        m.set_input(B, &[-30_000; FRAME_SAMPLES]).unwrap();
        m.mix();
        assert_eq!(heard(&m, C), i16::MIN);
    }

    #[test]
    fn self_relations_are_ignored() {
        let mut m = room(&[A, B]);
        m.set_relation(A, A, true).unwrap();
        tick(&mut m, &[A, B]);
        assert_eq!(heard(&m, A), 10);
        assert!(!m.is_audible(A, A));
    }

    #[test]
    fn removal_keeps_other_relations_pointing_at_the_right_speaker() {
        let mut m = room(&[A, B, C, SUP]);
        m.monitor(SUP, C, MonitorMode::Whisper).unwrap();
        assert!(m.remove(A));
        assert!(!m.remove(A));
        // SUP moved into A's slot; C must still hear it.
        tick(&mut m, &[B, C, SUP]);
        assert_eq!((heard(&m, B), heard(&m, C)), (100, 1010));
    }

    #[test]
    fn limits_and_unknown_ids_are_errors() {
        let mut m = Mixer::new();
        for i in 0..MAX_PARTICIPANTS as u64 {
            m.add_participant(ParticipantId(1000 + i)).unwrap();
        }
        assert_eq!(m.add_participant(A), Err(MixerError::Full));
        assert_eq!(m.add_participant(ParticipantId(1000)), Err(MixerError::Duplicate(ParticipantId(1000))));
        assert_eq!(m.set_input(A, &SILENT_FRAME), Err(MixerError::Unknown(A)));
        let mut m = room(&[A]);
        m.add_source(B, true).unwrap();
        assert_eq!(m.set_relation(B, A, true), Err(MixerError::NotAListener(B)));
    }

    #[test]
    fn fast_mix_equals_the_brute_force_matrix_for_random_rooms() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let n = 2 + (rnd() % 10) as usize;
            let ids: Vec<ParticipantId> = (0..n as u64).map(|i| ParticipantId(100 + i)).collect();
            let mut m = Mixer::new();
            for &id in &ids {
                if rnd() % 5 == 0 {
                    m.add_source(id, rnd() % 2 == 0).unwrap();
                } else {
                    m.add_participant(id).unwrap();
                    m.set_hears_all(id, rnd() % 4 != 0).unwrap();
                    m.set_heard_by_all(id, rnd() % 4 != 0).unwrap();
                }
            }
            for _ in 0..rnd() % 12 {
                let l = ids[(rnd() % n as u64) as usize];
                let s = ids[(rnd() % n as u64) as usize];
                let _ = m.set_relation(l, s, rnd() % 2 == 0);
            }
            let speaking: Vec<ParticipantId> = ids.iter().copied().filter(|_| rnd() % 3 != 0).collect();
            tick(&mut m, &speaking);
            for &l in &ids {
                let Some(out) = m.output(l) else { continue };
                let want: i32 =
                    speaking.iter().filter(|&&s| m.is_audible(l, s)).map(|&s| i32::from(level(s))).sum();
                assert_eq!(i32::from(out[0]), want, "listener {l:?}");
            }
        }
    }
}
