//! `hakoden console`: the blocking client of the console socket.
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long the client waits for a reply; the server gives up on the engine after 5 s, so
/// this only trips when the box itself hangs.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest reply read. `log tail 2000` is at most ~2 MiB; anything past this is not ours.
const MAX_REPLY_BYTES: u64 = 8 * 1024 * 1024;

/// Why a request got no reply.
#[derive(Debug)]
pub(super) enum ClientError {
    /// Nothing listens at the path (the OS error is not shown: the hint says more).
    Connect,
    /// The connection broke or the reply was malformed.
    Reply(String),
}

/// Sends one request line and returns the reply lines, dot-stuffing removed.
pub(super) fn request(path: &Path, line: &str) -> Result<Vec<String>, ClientError> {
    let mut stream = UnixStream::connect(path).map_err(|_| ClientError::Connect)?;
    let broken = |e: io::Error| ClientError::Reply(e.to_string());
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(broken)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(broken)?;
    stream.write_all(format!("{line}\n").as_bytes()).map_err(broken)?;
    // One request per connection: telling the server lets it close without waiting.
    stream.shutdown(std::net::Shutdown::Write).map_err(broken)?;
    let mut raw = Vec::new();
    stream.take(MAX_REPLY_BYTES).read_to_end(&mut raw).map_err(broken)?;
    decode_reply(&String::from_utf8_lossy(&raw))
}

/// Undoes the server's framing: lines up to the lone `.`, one leading `.` removed.
pub(super) fn decode_reply(raw: &str) -> Result<Vec<String>, ClientError> {
    let mut lines = Vec::new();
    for line in raw.lines() {
        if line == "." {
            return Ok(lines);
        }
        lines.push(line.strip_prefix('.').unwrap_or(line).to_string());
    }
    Err(ClientError::Reply("the box closed the connection before the end of the reply".into()))
}

/// Runs `hakoden console`. With `command`, runs it once, prints the answer and returns the exit
/// code: 0 answered, 1 error reply (or a broken reply), 2 cannot connect. Without, reads
/// commands from stdin (prompt `hakoden> ` on a terminal) until EOF, `quit` or `exit`.
pub fn run_client(path: &Path, command: Option<String>) -> i32 {
    match command {
        Some(command) => run_once(path, &command),
        None => interactive(path),
    }
}

fn run_once(path: &Path, command: &str) -> i32 {
    match request(path, command.trim()) {
        Ok(lines) => {
            let failed = lines.first().is_some_and(|l| l.starts_with("error: "));
            print_lines(&lines);
            i32::from(failed)
        }
        Err(e) => report(path, &e),
    }
}

fn interactive(path: &Path) -> i32 {
    let tty = io::stdin().is_terminal();
    let mut input = io::stdin().lock();
    let mut line = String::new();
    loop {
        if tty {
            print!("hakoden> ");
            let _ = io::stdout().flush();
        }
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => {
                if tty {
                    println!();
                }
                return 0;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("cannot read the command: {e}");
                return 1;
            }
        }
        let command = line.trim();
        match command {
            "" => continue,
            "quit" | "exit" => return 0,
            _ => {}
        }
        match request(path, command) {
            Ok(lines) => print_lines(&lines),
            Err(e @ ClientError::Connect) => return report(path, &e),
            Err(e) => {
                report(path, &e);
            }
        }
    }
}

fn print_lines(lines: &[String]) {
    let mut out = io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}

fn report(path: &Path, e: &ClientError) -> i32 {
    match e {
        ClientError::Connect => {
            eprintln!("cannot reach the box at {}: is `hakoden run` running?", path.display());
            2
        }
        ClientError::Reply(why) => {
            eprintln!("the console reply broke off: {why}");
            1
        }
    }
}
