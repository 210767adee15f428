//! RTP relay load test: N calls of G.711 20 ms packets both ways through `RelayManager`.
//!
//! ```text
//! cargo run --release --example relay_bench -- --calls 1000 --seconds 20
//!   [--phones 8] [--relay-threads 1] [--ports 20000-29999]
//! ```
//!
//! The relay runs on its own tokio runtime (threads named `relay`), the load generator (the
//! "phones") on another (`load`), so the CPU time of each is read apart from
//! `/proc/self/task/*/stat`. A few phone sockets stand for all phones: each relay side latches to
//! the phone socket that sends to it, exactly as it would to one phone each.
//!
//! Figures reported: packets sent, received, lost %, one-way delay through the relay, CPU time
//! (process, relay threads, load threads), RSS before/after opening the relays and per relay.
//! Linux only (reads /proc). Needs `4 * calls + phones + 64` file descriptors; raise the limit
//! with `ulimit -n` before running if the check below refuses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hakoden::config::PortRange;
use hakoden::media::{MediaCommand, PortPool, RelayError, RelayId, RelayManager};
use tokio::net::UdpSocket;

/// G.711 at 8 kHz, 20 ms: 160 payload bytes + 12-byte RTP header = 172 bytes.
const PAYLOAD_BYTES: usize = 160;
const PACKET_INTERVAL: Duration = Duration::from_millis(20);
const SAMPLES_PER_PACKET: u32 = 160;

/// Time allowed after the senders stop for the last packets to come through.
const DRAIN: Duration = Duration::from_millis(500);

/// Delay histogram: 100 µs buckets up to 200 ms; later arrivals land in the last bucket.
const DELAY_BUCKET_US: u64 = 100;
const DELAY_BUCKETS: usize = 2000;

/// Linux's USER_HZ, the unit of utime/stime in /proc/*/stat (100 on every mainstream arch).
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// File descriptors the bench needs besides the relays' sockets (runtime, epoll, stdio, /proc).
const SPARE_FDS: u64 = 64;

struct Args {
    calls: usize,
    seconds: u64,
    phones: usize,
    relay_threads: usize,
    ports: PortRange,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        calls: 1000,
        seconds: 20,
        phones: 8,
        relay_threads: 1,
        ports: PortRange { lo: 20000, hi: 29999 },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || value.parse::<usize>().map_err(|_| format!("{flag}: `{value}` is not a number"));
        match flag.as_str() {
            "--calls" => args.calls = num()?,
            "--seconds" => args.seconds = num()? as u64,
            "--phones" => args.phones = num()?.max(2) & !1,
            "--relay-threads" => args.relay_threads = num()?.max(1),
            "--ports" => args.ports = value.parse()?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("relay_bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("relay_bench: {e}");
        std::process::exit(1);
    }
}

/// One direction of one call, as a phone socket sends it.
struct Stream {
    to: SocketAddr,
    ssrc: u32,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
}

#[allow(clippy::disallowed_methods)] // driver: the bench reads the clock
fn run(args: &Args) -> Result<(), String> {
    let needed = 4 * args.calls as u64 + args.phones as u64 + SPARE_FDS;
    let limit = open_files_limit().unwrap_or(0);
    if limit < needed {
        return Err(format!(
            "needs {needed} file descriptors, limit is {limit}: run `ulimit -n {needed}` first"
        ));
    }
    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.relay_threads)
        .thread_name("relay")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let phones: Vec<Arc<UdpSocket>> = load_rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..args.phones {
            v.push(Arc::new(
                UdpSocket::bind(SocketAddr::new(localhost, 0)).await.map_err(|e| e.to_string())?,
            ));
        }
        Ok::<_, String>(v)
    })?;
    let phone_addrs: Vec<SocketAddr> =
        phones.iter().map(|p| p.local_addr()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;

    // Let the runtimes settle before the baseline.
    std::thread::sleep(Duration::from_millis(100));
    let rss_before = rss_kib();

    let mgr = RelayManager::new(localhost);
    let mut pool = PortPool::new(args.ports);
    let mut streams: Vec<Vec<Stream>> = (0..args.phones).map(|_| Vec::new()).collect();
    let opened = Instant::now();
    {
        let _in_runtime = relay_rt.enter();
        for call in 0..args.calls {
            let a_phone = (2 * call) % args.phones;
            let b_phone = a_phone + 1;
            let (a_port, b_port) =
                open_relay(&mgr, &mut pool, call as u64, phone_addrs[a_phone], phone_addrs[b_phone])?;
            streams[a_phone].push(Stream { to: SocketAddr::new(localhost, a_port), ssrc: 2 * call as u32 });
            streams[b_phone]
                .push(Stream { to: SocketAddr::new(localhost, b_port), ssrc: 2 * call as u32 + 1 });
        }
    }
    let open_time = opened.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let rss_open = rss_kib();

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let delays = Arc::new(Mutex::new(vec![0u64; DELAY_BUCKETS]));
    let epoch = Instant::now();
    let cpu_start = cpu_by_thread();
    let process_start = process_cpu_ticks();
    let wall_start = Instant::now();

    let receivers: Vec<_> = phones
        .iter()
        .map(|sock| {
            load_rt.spawn(receive(Arc::clone(sock), Arc::clone(&counters), Arc::clone(&delays), epoch))
        })
        .collect();
    let senders: Vec<_> = phones
        .iter()
        .zip(streams)
        .enumerate()
        .map(|(i, (sock, streams))| {
            // Spread the phones over the 20 ms period, as real calls are.
            let phase = PACKET_INTERVAL * i as u32 / args.phones as u32;
            load_rt.spawn(send(
                Arc::clone(sock),
                streams,
                phase,
                Arc::clone(&counters),
                Arc::clone(&stop),
                epoch,
            ))
        })
        .collect();

    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    load_rt.block_on(async {
        for s in senders {
            let _ = s.await;
        }
    });
    let send_wall = wall_start.elapsed();
    std::thread::sleep(DRAIN);
    let cpu_end = cpu_by_thread();
    let process_end = process_cpu_ticks();
    let wall = wall_start.elapsed();
    receivers.iter().for_each(|r| r.abort());
    let rss_after = rss_kib();

    let (mut forwarded, mut dropped) = (0u64, 0u64);
    for call in 0..args.calls {
        if let Some(s) = mgr.stats(RelayId(call as u64)) {
            forwarded += s.forwarded;
            dropped += s.dropped;
        }
    }
    let closed = Instant::now();
    mgr.close_all();
    let close_time = closed.elapsed();

    let sent = counters.sent.load(Ordering::Relaxed);
    let received = counters.received.load(Ordering::Relaxed);
    let expected =
        2 * args.calls as u64 * (send_wall.as_millis() as u64 / PACKET_INTERVAL.as_millis() as u64);
    let lost = sent.saturating_sub(received);
    let cpu = |name: &str| cpu_delta(&cpu_start, &cpu_end, name);
    let (cpu_relay, cpu_load) = (cpu("relay"), cpu("load"));
    let cpu_all = process_end.saturating_sub(process_start) as f64 / CLOCK_TICKS_PER_S;
    let wall_s = wall.as_secs_f64();
    let hist = delays.lock().map(|h| h.clone()).unwrap_or_default();
    let per_relay = |kib: u64| kib.saturating_sub(rss_before) as f64 * 1024.0 / args.calls.max(1) as f64;

    println!(
        "## relay_bench: {} calls, {} s, {} phone sockets, {} relay thread(s)",
        args.calls, args.seconds, args.phones, args.relay_threads
    );
    println!(
        "packets sent          {sent} ({:.0}/s; schedule called for {expected})",
        sent as f64 / send_wall.as_secs_f64()
    );
    println!("packets received      {received}");
    println!("lost                  {lost} ({:.3} %)", 100.0 * lost as f64 / sent.max(1) as f64);
    println!("relay forwarded       {forwarded}, dropped {dropped}");
    println!(
        "one-way delay         p50 {} µs, p99 {} µs, p99.9 {} µs, max bucket {} µs",
        percentile(&hist, 0.5),
        percentile(&hist, 0.99),
        percentile(&hist, 0.999),
        max_bucket(&hist)
    );
    println!("CPU (wall {wall_s:.1} s)    process {cpu_all:.2} s ({:.1} % of one core), relay threads {cpu_relay:.2} s ({:.1} %), load threads {cpu_load:.2} s ({:.1} %)", 100.0 * cpu_all / wall_s, 100.0 * cpu_relay / wall_s, 100.0 * cpu_load / wall_s);
    println!("relay CPU per packet  {:.2} µs", 1e6 * cpu_relay / forwarded.max(1) as f64);
    println!("RSS                   before {rss_before} KiB, relays open {rss_open} KiB, after traffic {rss_after} KiB");
    println!(
        "bytes per relay       {:.0} (open), {:.0} (after traffic)",
        per_relay(rss_open),
        per_relay(rss_after)
    );
    println!(
        "open {} relays        {:.1} ms; close_all {:.1} ms",
        args.calls,
        open_time.as_secs_f64() * 1e3,
        close_time.as_secs_f64() * 1e3
    );
    drop(relay_rt);
    drop(load_rt);
    Ok(())
}

fn open_relay(
    mgr: &RelayManager,
    pool: &mut PortPool,
    call: u64,
    a_remote: SocketAddr,
    b_remote: SocketAddr,
) -> Result<(u16, u16), String> {
    loop {
        // A port some other program holds is skipped (and stays out of the pool).
        let (Some(a_port), Some(b_port)) = (pool.allocate(), pool.allocate()) else {
            return Err(format!("port range exhausted at call {call}; use a wider --ports"));
        };
        let cmd = MediaCommand::Open {
            relay: RelayId(call),
            a_port,
            b_port,
            a_remote: Some(a_remote),
            b_remote: Some(b_remote),
        };
        match mgr.execute(cmd) {
            Ok(()) => return Ok((a_port, b_port)),
            Err(RelayError::Bind { .. }) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[allow(clippy::disallowed_methods)] // driver: the bench reads the clock
async fn send(
    sock: Arc<UdpSocket>,
    streams: Vec<Stream>,
    phase: Duration,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) {
    tokio::time::sleep(phase).await;
    let mut tick = tokio::time::interval(PACKET_INTERVAL);
    let mut packet = [0u8; 12 + PAYLOAD_BYTES];
    packet[0] = 0x80; // V=2, PT 0 (PCMU)
    packet[12..].fill(0xff); // µ-law silence
    let mut seq: u16 = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        seq = seq.wrapping_add(1);
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet[4..8].copy_from_slice(&(u32::from(seq) * SAMPLES_PER_PACKET).to_be_bytes());
        let mut sent = 0;
        for s in &streams {
            packet[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
            let stamp = epoch.elapsed().as_nanos() as u64;
            packet[12..20].copy_from_slice(&stamp.to_be_bytes());
            if sock.send_to(&packet, s.to).await.is_ok() {
                sent += 1;
            }
        }
        counters.sent.fetch_add(sent, Ordering::Relaxed);
    }
}

#[allow(clippy::disallowed_methods)] // driver: the bench reads the clock
async fn receive(
    sock: Arc<UdpSocket>,
    counters: Arc<Counters>,
    delays: Arc<Mutex<Vec<u64>>>,
    epoch: Instant,
) {
    let mut buf = [0u8; 2048];
    let mut local = vec![0u64; DELAY_BUCKETS];
    let mut since_flush = 0u32;
    loop {
        let Ok((n, _)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        if let Some(stamp) = buf.get(12..20).filter(|_| n >= 20) {
            let sent_ns = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
            let delay_us = (epoch.elapsed().as_nanos() as u64).saturating_sub(sent_ns) / 1000;
            let bucket = ((delay_us / DELAY_BUCKET_US) as usize).min(DELAY_BUCKETS - 1);
            local[bucket] += 1;
        }
        since_flush += 1;
        // Flush the local histogram now and then; the task is aborted, not joined.
        if since_flush >= 1000 {
            since_flush = 0;
            if let Ok(mut h) = delays.lock() {
                h.iter_mut().zip(local.iter_mut()).for_each(|(h, l)| *h += std::mem::take(l));
            }
        }
    }
}

fn percentile(hist: &[u64], q: f64) -> u64 {
    let total: u64 = hist.iter().sum();
    let target = (total as f64 * q).ceil() as u64;
    let mut acc = 0;
    for (i, n) in hist.iter().enumerate() {
        acc += n;
        if acc >= target.max(1) {
            return (i as u64 + 1) * DELAY_BUCKET_US;
        }
    }
    0
}

fn max_bucket(hist: &[u64]) -> u64 {
    hist.iter().rposition(|&n| n > 0).map_or(0, |i| (i as u64 + 1) * DELAY_BUCKET_US)
}

/// Soft limit of open files, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of the whole process in ticks, from /proc/self/stat.
fn process_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    stat_ticks(&stat).1
}

/// `(comm, utime + stime)` from a /proc stat line.
fn stat_ticks(stat: &str) -> (String, u64) {
    // comm is in parentheses and may contain spaces; fields after it are space-separated.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return (String::new(), 0);
    };
    let name = stat.get(open + 1..close).unwrap_or_default().to_owned();
    let fields: Vec<&str> = stat.get(close + 2..).unwrap_or_default().split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 counted from the state field.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (name, ticks(11) + ticks(12))
}

/// utime + stime in ticks for each thread, with the thread's name.
fn cpu_by_thread() -> Vec<(u64, String, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let tid: u64 = entry.file_name().to_string_lossy().parse().unwrap_or(0);
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (name, ticks) = stat_ticks(&stat);
        out.push((tid, name, ticks));
    }
    out
}

/// CPU seconds spent between two samples by threads whose name starts with `prefix`.
fn cpu_delta(start: &[(u64, String, u64)], end: &[(u64, String, u64)], prefix: &str) -> f64 {
    let ticks: u64 = end
        .iter()
        .filter(|(_, name, _)| name.starts_with(prefix))
        .map(|(tid, _, t)| t - start.iter().find(|(s, _, _)| s == tid).map_or(0, |s| s.2).min(*t))
        .sum();
    ticks as f64 / CLOCK_TICKS_PER_S
}
