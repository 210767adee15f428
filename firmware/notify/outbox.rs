//! The outbox: notifications waiting to be sent, retried with backoff, with the last error of
//! each visible to the console.
//!
//! [`Outbox`] is sans-IO and counts time in Unix milliseconds (jobs outlive a restart, which an
//! `Instant` cannot). The driver: `enqueue` a job (after writing its body with
//! [`OutboxDir::write_body`]), send what [`Outbox::poll_due`] hands out, report the result with
//! [`Outbox::handle_sent`] / [`Outbox::handle_failed`], sleep until [`Outbox::poll_timeout`],
//! and after every call drain [`Outbox::poll_output`]: `Persist` → [`OutboxDir::write_job`],
//! `Remove` → [`OutboxDir::remove`], `DeleteVoicemail` → delete the message ("delete after
//! e-mail"), `GaveUp` → log an alarm.
//!
//! [`queue_voicemail`] queues the mail and chat jobs of a new message; [`run_job`] sends one.
//!
//! Delivery is at least once: a job that was being sent when the power went is sent again after
//! the restart.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Jobs kept, waiting and failed together. A message body is at most about 3.3 MB (300 s of
/// G.711 in base64), so 64 bodies stay under about 210 MB of flash in the worst case.
pub const CAPACITY: usize = 64;

/// Wait before each retry: 1 min, 5 min, 30 min, 2 h, 6 h.
pub const BACKOFF_MS: [u64; 5] = [60_000, 300_000, 1_800_000, 7_200_000, 21_600_000];

/// Attempts before a job is marked failed: the first and one per backoff step (about 8.6 h in
/// all, so a relay down for a night's maintenance is survived).
pub const MAX_ATTEMPTS: u32 = BACKOFF_MS.len() as u32 + 1;

/// Jobs sent at the same time (two CPU cores; small relays limit connections per client).
pub const MAX_IN_FLIGHT: usize = 2;

/// Longest error text kept per job (a server may answer a page).
pub const MAX_ERROR_CHARS: usize = 300;

/// Largest job file read at start (a job is a few hundred bytes; a bigger file is not ours).
const MAX_JOB_FILE_BYTES: u64 = 64 * 1024;

/// A job's number, never reused while its files exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

/// A stored voicemail message a job refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoicemailRef {
    /// The box number.
    pub box_no: String,
    /// The message id in that box.
    pub message: u64,
}

/// What a job sends; the body is in the job directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobKind {
    /// An e-mail (the body is the RFC 5322 message) to these addresses.
    Mail {
        /// Recipients.
        to: Vec<String>,
    },
    /// A chat notification to the named `[[chat]]` target (the body is the audio, may be empty).
    Chat {
        /// The target's name.
        target: String,
        /// The notice text.
        text: String,
        /// The audio's file name.
        file_name: String,
    },
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its next attempt.
    Waiting,
    /// Being sent now.
    Sending,
    /// Given up (permanent error or [`MAX_ATTEMPTS`]); kept so the console shows why.
    Failed,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What it sends.
    pub kind: JobKind,
    /// A short description for the console (`vm 804/7 → 2 recipients`).
    pub label: String,
    /// When it was queued.
    pub created_unix_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// When it may be tried next.
    pub next_attempt_unix_ms: u64,
    /// The last error, as the server or network said it.
    pub last_error: Option<String>,
    /// Its state.
    pub state: JobState,
    /// "Delete after e-mail": the message to delete once every job naming it has been sent.
    pub delete_after: Option<VoicemailRef>,
}

/// What the outbox asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum OutboxOutput {
    /// Write this job's file (it changed).
    Persist(Job),
    /// Delete this job's files (sent, or dismissed).
    Remove(JobId),
    /// Delete this voicemail message: its notifications are all sent.
    DeleteVoicemail(VoicemailRef),
    /// A job failed for good; raise an alarm with its error.
    GaveUp {
        /// The job.
        id: JobId,
        /// Its last error.
        error: String,
    },
}

/// The outbox is full of jobs still waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

impl std::fmt::Display for OutboxFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the outbox holds {CAPACITY} jobs that still wait")
    }
}

impl std::error::Error for OutboxFull {}

/// The queue of jobs, sans-IO.
#[derive(Debug)]
pub struct Outbox {
    jobs: BTreeMap<JobId, Job>,
    next_id: u64,
    capacity: usize,
    out: VecDeque<OutboxOutput>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new(CAPACITY)
    }
}

impl Outbox {
    /// An empty outbox holding at most `capacity` jobs.
    pub fn new(capacity: usize) -> Outbox {
        Outbox { jobs: BTreeMap::new(), next_id: 1, capacity: capacity.max(1), out: VecDeque::new() }
    }

    /// The outbox after a restart, from the jobs [`OutboxDir::open`] found. A job that was being
    /// sent is sent again (at least once).
    pub fn restore(jobs: Vec<Job>, capacity: usize) -> Outbox {
        let mut outbox = Outbox::new(capacity);
        for mut job in jobs {
            if job.state == JobState::Sending {
                job.state = JobState::Waiting;
            }
            outbox.next_id = outbox.next_id.max(job.id.0.saturating_add(1));
            outbox.jobs.insert(job.id, job);
        }
        outbox
    }

    /// The id the next job will get (write its body under this id first).
    pub fn next_id(&self) -> JobId {
        JobId(self.next_id)
    }

    /// Queues a job to be tried at once. When full, the oldest failed job makes room; when every
    /// job still waits, `OutboxFull`.
    pub fn enqueue(
        &mut self,
        kind: JobKind,
        label: String,
        delete_after: Option<VoicemailRef>,
        now_unix_ms: u64,
    ) -> Result<JobId, OutboxFull> {
        if self.jobs.len() >= self.capacity {
            let oldest_failed = self.jobs.values().find(|j| j.state == JobState::Failed).map(|j| j.id);
            let Some(id) = oldest_failed else {
                return Err(OutboxFull);
            };
            self.jobs.remove(&id);
            self.out.push_back(OutboxOutput::Remove(id));
        }
        let id = JobId(self.next_id);
        self.next_id += 1;
        let job = Job {
            id,
            kind,
            label,
            created_unix_ms: now_unix_ms,
            attempts: 0,
            next_attempt_unix_ms: now_unix_ms,
            last_error: None,
            state: JobState::Waiting,
            delete_after,
        };
        self.out.push_back(OutboxOutput::Persist(job.clone()));
        self.jobs.insert(id, job);
        Ok(id)
    }

    /// The next job due, marked as being sent; `None` when none is due or [`MAX_IN_FLIGHT`] are
    /// out.
    pub fn poll_due(&mut self, now_unix_ms: u64) -> Option<Job> {
        let in_flight = self.jobs.values().filter(|j| j.state == JobState::Sending).count();
        if in_flight >= MAX_IN_FLIGHT {
            return None;
        }
        let job = self
            .jobs
            .values_mut()
            .filter(|j| j.state == JobState::Waiting && j.next_attempt_unix_ms <= now_unix_ms)
            .min_by_key(|j| (j.next_attempt_unix_ms, j.id))?;
        job.state = JobState::Sending;
        job.attempts = job.attempts.saturating_add(1);
        let job = job.clone();
        self.out.push_back(OutboxOutput::Persist(job.clone()));
        Some(job)
    }

    /// When the next waiting job is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.jobs.values().filter(|j| j.state == JobState::Waiting).map(|j| j.next_attempt_unix_ms).min()
    }

    /// The job was sent.
    pub fn handle_sent(&mut self, id: JobId) {
        let Some(job) = self.jobs.remove(&id) else { return };
        self.out.push_back(OutboxOutput::Remove(id));
        if let Some(vm) = job.delete_after {
            // Delete only when every notification of the message went out: one still waiting
            // deletes it when it succeeds, a failed one keeps it.
            if !self.jobs.values().any(|j| j.delete_after.as_ref() == Some(&vm)) {
                self.out.push_back(OutboxOutput::DeleteVoicemail(vm));
            }
        }
    }

    /// The job failed with `error`; `permanent` errors (5xx, configuration) are not retried.
    pub fn handle_failed(&mut self, id: JobId, error: &str, permanent: bool, now_unix_ms: u64) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.last_error = Some(error.chars().take(MAX_ERROR_CHARS).collect());
        let step = usize::try_from(job.attempts).unwrap_or(usize::MAX).saturating_sub(1);
        match BACKOFF_MS.get(step) {
            Some(wait) if !permanent && job.attempts < MAX_ATTEMPTS => {
                job.state = JobState::Waiting;
                job.next_attempt_unix_ms = now_unix_ms.saturating_add(*wait);
            }
            _ => {
                job.state = JobState::Failed;
                self.out.push_back(OutboxOutput::GaveUp {
                    id,
                    error: job.last_error.clone().unwrap_or_default(),
                });
            }
        }
        self.out.push_back(OutboxOutput::Persist(job.clone()));
    }

    /// Console: try a waiting or failed job at once, with a fresh attempt count.
    pub fn retry_now(&mut self, id: JobId, now_unix_ms: u64) -> bool {
        let Some(job) = self.jobs.get_mut(&id).filter(|j| j.state != JobState::Sending) else { return false };
        job.state = JobState::Waiting;
        job.attempts = 0;
        job.next_attempt_unix_ms = now_unix_ms;
        self.out.push_back(OutboxOutput::Persist(job.clone()));
        true
    }

    /// Console: drop a job that is not being sent.
    pub fn dismiss(&mut self, id: JobId) -> bool {
        if self.jobs.get(&id).is_some_and(|j| j.state != JobState::Sending) {
            self.jobs.remove(&id);
            self.out.push_back(OutboxOutput::Remove(id));
            return true;
        }
        false
    }

    /// Every job, oldest first, for the console.
    pub fn list(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<OutboxOutput> {
        self.out.pop_front()
    }
}

/// The job directory: `<id>.json` (the job) and `<id>.body` (what it sends), each written to a
/// temporary file, synced and renamed, so a power cut leaves the old or the new file.
#[derive(Debug, Clone)]
pub struct OutboxDir {
    dir: PathBuf,
}

impl OutboxDir {
    /// Opens (creates) the directory and loads its jobs. Temporary files, bodies without a job
    /// and job files that do not decode are deleted (logged): they are leftovers of a cut.
    pub fn open(dir: &Path) -> std::io::Result<(OutboxDir, Vec<Job>)> {
        std::fs::create_dir_all(dir)?;
        let mut jobs = Vec::new();
        let mut bodies = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
            } else if name.ends_with(".body") {
                bodies.push(path);
            } else if name.ends_with(".json") {
                let len = std::fs::metadata(&path)?.len();
                let job = if len <= MAX_JOB_FILE_BYTES {
                    std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Job>(&b).ok())
                } else {
                    None
                };
                match job {
                    Some(job)
                        if path.file_stem().and_then(|s| s.to_str())
                            == Some(job.id.0.to_string().as_str()) =>
                    {
                        jobs.push(job)
                    }
                    _ => {
                        log::warn!("outbox: dropping unreadable job file {}", path.display());
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        for body in bodies {
            let stem = body.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if !jobs.iter().any(|j| j.id.0.to_string() == stem) {
                let _ = std::fs::remove_file(&body);
            }
        }
        jobs.sort_by_key(|j| j.id);
        Ok((OutboxDir { dir: dir.to_path_buf() }, jobs))
    }

    fn path(&self, id: JobId, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", id.0))
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the directory is synced.
        std::fs::File::open(&self.dir)?.sync_all()
    }

    /// Writes a job's body; call before [`Outbox::enqueue`] with [`Outbox::next_id`].
    pub fn write_body(&self, id: JobId, body: &[u8]) -> std::io::Result<()> {
        self.write_atomic(&self.path(id, "body"), body)
    }

    /// Reads a job's body.
    pub fn read_body(&self, id: JobId) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(id, "body"))
    }

    /// Writes a job's file.
    pub fn write_job(&self, job: &Job) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(job).map_err(std::io::Error::other)?;
        self.write_atomic(&self.path(job.id, "json"), &bytes)
    }

    /// Deletes a job's files (the job first, so a cut leaves an orphan body that `open` removes).
    pub fn remove(&self, id: JobId) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id, "json")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match std::fs::remove_file(self.path(id, "body")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Why a job could not be queued.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueueError {
    /// No room ([`OutboxFull`]).
    Full,
    /// Writing the body failed (flash full, read-only file system).
    Io(std::io::Error),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Full => write!(f, "{OutboxFull}"),
            QueueError::Io(e) => write!(f, "outbox directory: {e}"),
        }
    }
}

impl std::error::Error for QueueError {}

/// Where the notifications of a new message go.
#[derive(Debug, Clone, Default)]
pub struct Recipients<'a> {
    /// E-mail addresses: the owner, or every member of a group or queue box.
    pub mail: &'a [String],
    /// Chat targets of the box's rule.
    pub chat: &'a [&'a super::chat::ChatTarget],
    /// "Delete after e-mail": delete the message once every notification went out.
    pub delete_after: bool,
}

/// Queues the e-mail (one mail to all addresses) and the chat notifications of a new message.
/// The mail body is written first, so a job file always has its body. Returns the job ids.
#[allow(clippy::too_many_arguments)] // one call site, the engine's; a struct would only rename them
pub fn queue_voicemail(
    outbox: &mut Outbox,
    dir: &OutboxDir,
    from: &str,
    meta: &crate::apps::voicemail::mailbox::MessageMeta,
    box_name: &str,
    offset: crate::apps::timerules::UtcOffset,
    wav: &[u8],
    to: &Recipients<'_>,
    now_unix_ms: u64,
) -> Result<Vec<JobId>, QueueError> {
    let notice = super::mime::Notice::of(meta, box_name, offset);
    let delete_after =
        to.delete_after.then(|| VoicemailRef { box_no: meta.box_no.to_string(), message: meta.id.0 });
    let mut ids = Vec::new();
    if !to.mail.is_empty() {
        let id = outbox.next_id();
        let body = super::mime::build(&super::mime::Mail {
            from,
            to: to.mail,
            notice: &notice,
            wav: Some(wav),
            unique: id.0 ^ now_unix_ms.rotate_left(20),
        });
        dir.write_body(id, &body).map_err(QueueError::Io)?;
        let label = format!("mail vm {}/{} → {} recipient(s)", meta.box_no, meta.id.0, to.mail.len());
        ids.push(
            outbox
                .enqueue(JobKind::Mail { to: to.mail.to_vec() }, label, delete_after.clone(), now_unix_ms)
                .map_err(|_| QueueError::Full)?,
        );
    }
    for target in to.chat {
        let id = outbox.next_id();
        let audio = if super::chat::sends_audio(target) { wav } else { &[] };
        dir.write_body(id, audio).map_err(QueueError::Io)?;
        let kind = JobKind::Chat {
            target: target.name.clone(),
            text: notice.text(),
            file_name: notice.file_name.clone(),
        };
        let label = format!("chat vm {}/{} → {}", meta.box_no, meta.id.0, target.name);
        ids.push(
            outbox.enqueue(kind, label, delete_after.clone(), now_unix_ms).map_err(|_| QueueError::Full)?,
        );
    }
    Ok(ids)
}

/// Sends one job handed out by [`Outbox::poll_due`]. `Err((text, permanent))` goes to
/// [`Outbox::handle_failed`] as it is.
pub async fn run_job(
    job: &Job,
    dir: &OutboxDir,
    smtp: Option<&super::smtp::SmtpConfig>,
    chat: &[super::chat::ChatTarget],
) -> Result<(), (String, bool)> {
    let body = dir.read_body(job.id).map_err(|e| (format!("job body: {e}"), true))?;
    match &job.kind {
        JobKind::Mail { to } => {
            let smtp = smtp.ok_or_else(|| ("no [smtp] configured".to_string(), true))?;
            let report = super::smtp::send_mail(smtp, to, &body)
                .await
                .map_err(|e| (e.to_string(), e.is_permanent()))?;
            for r in &report.rejected {
                log::warn!("mail {}: <{}> refused: {} {}", job.label, r.address, r.code, r.text);
            }
            Ok(())
        }
        JobKind::Chat { target, text, file_name } => {
            let t = chat
                .iter()
                .find(|t| &t.name == target)
                .ok_or_else(|| (format!("no chat target {target:?}"), true))?;
            let audio = (!body.is_empty()).then_some((file_name.as_str(), body.as_slice()));
            super::chat::send(t, text, audio).await.map_err(|e| (e.to_string(), e.is_permanent()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> JobKind {
        JobKind::Mail { to: vec!["a@x.jp".into()] }
    }

    fn vm(n: u64) -> Option<VoicemailRef> {
        Some(VoicemailRef { box_no: "804".into(), message: n })
    }

    fn drain(o: &mut Outbox) -> Vec<OutboxOutput> {
        std::iter::from_fn(|| o.poll_output()).collect()
    }

    #[test]
    fn a_failing_job_backs_off_one_five_thirty_minutes_then_gives_up() {
        let mut o = Outbox::default();
        let id = o.enqueue(mail(), "t".into(), None, 0).unwrap();
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let job = o.poll_due(now).unwrap();
            assert_eq!(job.id, id);
            o.handle_failed(id, "451 try later", false, now);
            if let Some(next) = o.poll_timeout() {
                waits.push(next - now);
                assert!(o.poll_due(next - 1).is_none(), "not due before its time");
                now = next;
            }
        }
        assert_eq!(waits, BACKOFF_MS);
        assert!(drain(&mut o)
            .iter()
            .any(|x| matches!(x, OutboxOutput::GaveUp { error, .. } if error == "451 try later")));
        let job = o.list().next().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.last_error.as_deref(), Some("451 try later"));
    }

    #[test]
    fn a_permanent_error_is_not_retried() {
        let mut o = Outbox::default();
        let id = o.enqueue(mail(), "t".into(), None, 0).unwrap();
        o.poll_due(0).unwrap();
        o.handle_failed(id, "550 no such user", true, 0);
        assert_eq!(o.poll_timeout(), None);
        assert_eq!(o.list().next().unwrap().state, JobState::Failed);
    }

    #[test]
    fn delete_after_email_waits_for_every_job_of_the_message() {
        let mut o = Outbox::default();
        let a = o.enqueue(mail(), "a".into(), vm(7), 0).unwrap();
        let b = o.enqueue(mail(), "b".into(), vm(7), 0).unwrap();
        o.poll_due(0).unwrap();
        o.poll_due(0).unwrap();
        drain(&mut o);
        o.handle_sent(a);
        assert!(!drain(&mut o).iter().any(|x| matches!(x, OutboxOutput::DeleteVoicemail(_))));
        o.handle_sent(b);
        assert!(drain(&mut o).contains(&OutboxOutput::DeleteVoicemail(vm(7).unwrap())));
    }

    #[test]
    fn a_failed_mail_keeps_the_voicemail() {
        let mut o = Outbox::default();
        let a = o.enqueue(mail(), "a".into(), vm(7), 0).unwrap();
        let b = o.enqueue(mail(), "b".into(), vm(7), 0).unwrap();
        o.poll_due(0);
        o.poll_due(0);
        o.handle_failed(a, "550", true, 0);
        o.handle_sent(b);
        assert!(!drain(&mut o).iter().any(|x| matches!(x, OutboxOutput::DeleteVoicemail(_))));
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_failed_job_and_refuses_when_all_wait() {
        let mut o = Outbox::new(2);
        let a = o.enqueue(mail(), "a".into(), None, 0).unwrap();
        o.enqueue(mail(), "b".into(), None, 0).unwrap();
        assert_eq!(o.enqueue(mail(), "c".into(), None, 0), Err(OutboxFull));
        o.poll_due(0);
        o.handle_failed(a, "x", true, 0);
        drain(&mut o);
        o.enqueue(mail(), "c".into(), None, 0).unwrap();
        assert_eq!(drain(&mut o).first(), Some(&OutboxOutput::Remove(a)));
        assert_eq!(o.list().count(), 2);
    }

    #[test]
    fn at_most_two_jobs_are_sent_at_once() {
        let mut o = Outbox::default();
        for i in 0..3 {
            o.enqueue(mail(), i.to_string(), None, 0).unwrap();
        }
        assert!(o.poll_due(0).is_some());
        assert!(o.poll_due(0).is_some());
        assert!(o.poll_due(0).is_none());
    }

    #[test]
    fn jobs_survive_a_restart_and_an_interrupted_send_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (d, jobs) = OutboxDir::open(dir.path()).unwrap();
        assert!(jobs.is_empty());
        let mut o = Outbox::default();
        d.write_body(o.next_id(), b"message").unwrap();
        let id = o.enqueue(mail(), "t".into(), vm(1), 5).unwrap();
        o.poll_due(5).unwrap();
        for out in drain(&mut o) {
            if let OutboxOutput::Persist(j) = out {
                d.write_job(&j).unwrap();
            }
        }
        std::fs::write(dir.path().join("99.body"), b"orphan").unwrap();
        std::fs::write(dir.path().join("5.json.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join("6.json"), b"{not json").unwrap();
        let (d, jobs) = OutboxDir::open(dir.path()).unwrap();
        assert_eq!(jobs.len(), 1);
        let mut o = Outbox::restore(jobs, CAPACITY);
        assert_eq!(o.next_id(), JobId(id.0 + 1));
        let job = o.poll_due(5).unwrap();
        assert_eq!(job.attempts, 2);
        assert_eq!(d.read_body(id).unwrap(), b"message");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        d.remove(id).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
