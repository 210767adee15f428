//! The console socket driver (see the wire protocol in the module above).
use super::{parse_command, ConsoleRequest};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Take};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::timeout;

/// Longest request line in bytes. The longest command is ~20 bytes; the cap bounds what a
/// stuck or hostile client makes the box buffer.
pub const MAX_LINE_BYTES: usize = 1024;

/// Console connections served at once. A technician uses one or two; the cap keeps a runaway
/// script from spawning tasks without bound. Extra connections get an `error:` reply.
pub const MAX_CONNECTIONS: usize = 8;

/// How long a connection may take to send its line before it is dropped, freeing its slot.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the state owner may take to answer; past it the client gets an `error:` reply
/// instead of hanging (a wedged engine is exactly when a technician connects).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call-center report may take: it reads every event of its range (a year of a
/// busy queue is ~2 million) on the blocking pool, not on the engine's task. Below the
/// client's own 30 s timeout so the technician gets a reason rather than a dead socket.
const REPORT_TIMEOUT: Duration = Duration::from_secs(25);

/// How long an update (read, verify, write and read back a slot), a backup or a restore may
/// take: tens of MiB on an SD card. Below the client's own 30 s timeout.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(28);
/// How long `network ..`/`hostname`/`ntp` (applying runs a script) and `options-test` may take.
const SYSTEM_TIMEOUT: Duration = Duration::from_secs(20);

/// How long writing the reply may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// After the reply, unread input is drained for at most this long and this many bytes before
/// closing: closing a Unix socket with unread data resets it, and the client would lose the
/// reply it has not read yet.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const DRAIN_MAX_BYTES: u64 = 64 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the console socket at `path` until an I/O error on setting it up; each request is
/// handed to `tx`. A stale socket file is replaced; a live one (another `hakoden run`) or a
/// non-socket file at `path` is an error. The socket gets mode 0600.
pub async fn serve(path: PathBuf, tx: mpsc::Sender<ConsoleRequest>) -> io::Result<()> {
    let listener = bind_private(&path)?;
    log::info!("console listening on {}", path.display());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Refusals are short (one write, a bounded drain) but still tasks, so they get their own cap;
    // past it the connection is just closed.
    let refusals = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::warn!("console accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    handle(stream, tx).await;
                    drop(permit);
                });
            }
            Err(_) => {
                log::warn!("console: more than {MAX_CONNECTIONS} sessions, one refused");
                if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                    tokio::spawn(async move {
                        let reply = format!(
                            "error: the console is busy ({MAX_CONNECTIONS} sessions open); try again"
                        );
                        let (rd, wr) = stream.into_split();
                        let _ = timeout(DRAIN_TIMEOUT, finish(rd, wr, &reply)).await;
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// Binds under a temporary name, restricts it to 0600, then renames it into place, so no
/// connectable socket with a looser mode ever exists at `path`.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    remove_stale(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

fn remove_stale(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if !meta.file_type().is_socket() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; not replacing it", path.display()),
        )),
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is served by another running hakoden", path.display()),
                ));
            }
            std::fs::remove_file(path)
        }
    }
}

async fn handle(stream: UnixStream, tx: mpsc::Sender<ConsoleRequest>) {
    let (rd, wr) = stream.into_split();
    let mut reader = BufReader::new(rd.take(MAX_LINE_BYTES as u64 + 1));
    let reply = match timeout(READ_TIMEOUT, read_request(&mut reader)).await {
        Err(_) => format!("error: no command within {} s", READ_TIMEOUT.as_secs()),
        Ok(Err(refusal)) => refusal,
        Ok(Ok(line)) => match parse_command(&line) {
            Err(e) => format!("error: {e}"),
            Ok(command) => ask(&tx, command).await,
        },
    };
    let rd = reader.into_inner().into_inner();
    if timeout(WRITE_TIMEOUT + DRAIN_TIMEOUT, finish(rd, wr, &reply)).await.is_err() {
        log::debug!("console: client too slow to read the reply");
    }
}

/// Writes the framed reply, closes our side, then drains what the client still sends.
async fn finish(mut rd: OwnedReadHalf, mut wr: OwnedWriteHalf, reply: &str) {
    if let Err(e) = wr.write_all(encode_reply(reply).as_bytes()).await {
        log::debug!("console: client left before the reply: {e}");
        return;
    }
    let _ = wr.shutdown().await;
    let mut sink = tokio::io::sink();
    let _ = timeout(DRAIN_TIMEOUT, tokio::io::copy(&mut (&mut rd).take(DRAIN_MAX_BYTES), &mut sink)).await;
}

/// Reads the request line, or returns the `error:` reply for a bad one.
async fn read_request(reader: &mut BufReader<Take<OwnedReadHalf>>) -> Result<String, String> {
    let mut buf = Vec::new();
    reader
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| format!("error: reading the command failed: {e}"))?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.len() > MAX_LINE_BYTES {
        return Err(format!("error: command longer than {MAX_LINE_BYTES} bytes"));
    }
    String::from_utf8(buf).map_err(|_| "error: the command is not UTF-8".to_string())
}

async fn ask(tx: &mpsc::Sender<ConsoleRequest>, command: super::ConsoleCommand) -> String {
    let described = format!("{command:?}");
    // Converting a long upload takes seconds of CPU (docs/audio.md); everything else is instant.
    let limit = match command {
        super::ConsoleCommand::AudioImport { .. } | super::ConsoleCommand::VoicemailGreeting { .. } => {
            IMPORT_TIMEOUT
        }
        super::ConsoleCommand::Report { .. } => REPORT_TIMEOUT,
        super::ConsoleCommand::Update(_)
        | super::ConsoleCommand::Backup(_)
        | super::ConsoleCommand::Restore(_) => UPDATE_TIMEOUT,
        // Applying runs the image's script: a DHCP client may try for ~6 s before it
        // backgrounds; a name lookup plus the OPTIONS' own 4 s.
        super::ConsoleCommand::NetworkSet(_) | super::ConsoleCommand::OptionsTest(_) => SYSTEM_TIMEOUT,
        _ => REPLY_TIMEOUT,
    };
    let (reply, answer) = oneshot::channel();
    let exchange = async {
        if tx.send(ConsoleRequest { command, reply }).await.is_err() {
            return "error: the box is shutting down".to_string();
        }
        answer.await.unwrap_or_else(|_| "error: the box dropped the request".to_string())
    };
    timeout(limit, exchange).await.unwrap_or_else(|_| {
        log::warn!("console: no answer to {described} within {} s", limit.as_secs());
        format!("error: the box did not answer within {} s", limit.as_secs())
    })
}

/// How long an `audio import` may take (a 100 MB file at 44.1 kHz is about 10 minutes of
/// stereo audio: some 15 s of conversion on a small board).
const IMPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The reply on the wire: dot-stuffed lines, then the `.` terminator.
pub(super) fn encode_reply(reply: &str) -> String {
    let mut out = String::with_capacity(reply.len() + 16);
    for line in reply.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(".\n");
    out
}
