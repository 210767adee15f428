//! The daemon's side of the outbox: one tokio task sends due jobs with their retries, writes the
//! job files, and hands "delete after e-mail" back to the engine's task (which owns the
//! voicemail store and the MWI counts).

use super::outbox::{Outbox, OutboxDir, OutboxOutput, VoicemailRef, CAPACITY};
use crate::config::NotifyConfig;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Messages to delete waiting for the engine's task: one per sent notification at most, and the
/// outbox holds [`CAPACITY`] jobs.
const DELETE_QUEUE: usize = CAPACITY;

/// The longest the task sleeps without a due job: a clock step (NTP at boot) is noticed then.
const MAX_IDLE_MS: u64 = 60_000;

/// Shared between the engine's task (queueing, console) and the sending task.
#[derive(Clone)]
pub struct Notifier {
    outbox: Arc<Mutex<Outbox>>,
    dir: OutboxDir,
    wake: Arc<Notify>,
    config: Arc<NotifyConfig>,
}

#[allow(clippy::disallowed_methods)] // driver: reads the clock
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Notifier {
    /// Opens `<dir>` (restoring the jobs of the last run) and starts the sending task. The
    /// receiver yields the messages to delete ("delete after e-mail").
    pub fn start(
        dir: &Path,
        config: NotifyConfig,
    ) -> std::io::Result<(Notifier, mpsc::Receiver<VoicemailRef>)> {
        let (dir, jobs) = OutboxDir::open(dir)?;
        let n = Notifier {
            outbox: Arc::new(Mutex::new(Outbox::restore(jobs, CAPACITY))),
            dir,
            wake: Arc::new(Notify::new()),
            config: Arc::new(config),
        };
        let (tx, rx) = mpsc::channel(DELETE_QUEUE);
        tokio::spawn(n.clone().run(tx));
        Ok((n, rx))
    }

    /// The configuration it sends with.
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outbox> {
        // A panic while holding the lock leaves a consistent outbox (every method is one step).
        self.outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues the notifications of a stored message: `wav_path` is read and the mail written on
    /// a blocking thread (both fsync), then the task is woken.
    pub fn queue_voicemail(
        &self,
        meta: crate::apps::voicemail::mailbox::MessageMeta,
        box_name: String,
        offset: crate::apps::timerules::UtcOffset,
        wav_path: std::path::PathBuf,
        mail: Vec<String>,
        delete_after: bool,
    ) {
        let n = self.clone();
        tokio::task::spawn_blocking(move || {
            let wav = match std::fs::read(&wav_path) {
                Ok(w) => w,
                Err(e) => {
                    log::warn!("notify: box {}: cannot read {}: {e}", meta.box_no, wav_path.display());
                    return;
                }
            };
            let rule = n.config.chat_rules.iter().find(|r| r.box_no == meta.box_no.to_string());
            let chat: Vec<&super::chat::ChatTarget> = rule
                .map(|r| n.config.chat.iter().filter(|t| r.targets.contains(&t.name)).collect())
                .unwrap_or_default();
            let from = n.config.smtp.as_ref().map(|s| s.from.clone()).unwrap_or_default();
            let to = super::outbox::Recipients { mail: &mail, chat: &chat, delete_after };
            let queued = super::outbox::queue_voicemail(
                &mut n.lock(),
                &n.dir,
                &from,
                &meta,
                &box_name,
                offset,
                &wav,
                &to,
                wall_ms(),
            );
            match queued {
                Ok(ids) => log::info!(
                    "notify: box {} message {}: {} job(s) queued",
                    meta.box_no,
                    meta.id.0,
                    ids.len()
                ),
                // The message stays in its box; only the notification is lost.
                Err(e) => log::error!("ALARM notify: box {} message {}: {e}", meta.box_no, meta.id.0),
            }
            n.wake.notify_one();
        });
    }

    /// The console's `show outbox`.
    pub fn show(&self) -> String {
        use std::fmt::Write;
        let outbox = self.lock();
        let now = wall_ms();
        let mut s = String::new();
        for j in outbox.list() {
            let next = match j.state {
                super::outbox::JobState::Waiting => {
                    format!(" next in {} s", j.next_attempt_unix_ms.saturating_sub(now).div_ceil(1000))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{:>4} {:<8} attempts {}{next}  {}{}",
                j.id.0,
                format!("{:?}", j.state).to_lowercase(),
                j.attempts,
                j.label,
                j.last_error.as_ref().map(|e| format!("\n     last error: {e}")).unwrap_or_default()
            );
        }
        if s.is_empty() {
            s.push_str("outbox empty");
        }
        s.trim_end().to_string()
    }

    /// Writes the job files the outbox asked for; returns the messages to delete.
    fn carry_out(&self) -> Vec<VoicemailRef> {
        let outputs: Vec<OutboxOutput> = {
            let mut o = self.lock();
            std::iter::from_fn(|| o.poll_output()).collect()
        };
        let mut delete = Vec::new();
        for out in outputs {
            let done = match &out {
                OutboxOutput::Persist(job) => self.dir.write_job(job),
                OutboxOutput::Remove(id) => self.dir.remove(*id),
                OutboxOutput::DeleteVoicemail(vm) => {
                    delete.push(vm.clone());
                    Ok(())
                }
                OutboxOutput::GaveUp { id, error } => {
                    log::error!("ALARM notify: job {} given up: {error}", id.0);
                    Ok(())
                }
            };
            if let Err(e) = done {
                log::warn!("notify: outbox directory: {e}");
            }
        }
        delete
    }

    async fn run(self, delete: mpsc::Sender<VoicemailRef>) {
        loop {
            let n = self.clone();
            for vm in tokio::task::spawn_blocking(move || n.carry_out()).await.unwrap_or_default() {
                let _ = delete.send(vm).await;
            }
            let now = wall_ms();
            let due = self.lock().poll_due(now);
            if let Some(job) = due {
                let n = self.clone();
                tokio::spawn(async move {
                    let result =
                        super::outbox::run_job(&job, &n.dir, n.config.smtp.as_ref(), &n.config.chat).await;
                    match result {
                        Ok(()) => {
                            n.lock().handle_sent(job.id);
                            crate::alarms::global().clear("notify");
                        }
                        Err((e, permanent)) => {
                            log::warn!("notify: {}: {e}", job.label);
                            let severity = if permanent {
                                crate::alarms::Severity::Critical
                            } else {
                                crate::alarms::Severity::Warning
                            };
                            crate::alarms::global().raise("notify", severity, &format!("{}: {e}", job.label));
                            n.lock().handle_failed(job.id, &e, permanent, wall_ms());
                        }
                    }
                    n.wake.notify_one();
                });
                continue;
            }
            // A due job not handed out waits for a sender to finish (MAX_IN_FLIGHT): that wakes us.
            let wait = match self.lock().poll_timeout() {
                Some(t) if t > now => (t - now).min(MAX_IDLE_MS),
                _ => MAX_IDLE_MS,
            };
            let _ = tokio::time::timeout(std::time::Duration::from_millis(wait), self.wake.notified()).await;
        }
    }
}
