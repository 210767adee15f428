//! Network settings the technician sets on the console: DHCP or a static address, the
//! hostname, NTP servers. Saved to `<data>/network.conf`; the image's
//! `/usr/sbin/hakoden-network` reads that file at boot and when the console asks it to apply.
//!
//! The file is `key=value` lines the shell script reads with `read`, never `eval`s or sources;
//! every value is validated here (and again by the script's patterns) so nothing in it can be
//! shell syntax.
//!
//! ```text
//! mode=static            # board (the profile's address), dhcp or static
//! address=192.168.1.20/24
//! gateway=192.168.1.1
//! dns=192.168.1.1 1.1.1.1
//! hostname=hakoden-office
//! ntp=ntp.nict.jp
//! ```
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The settings file inside the data directory.
pub const FILE_NAME: &str = "network.conf";

/// Most DNS servers: resolv.conf honours three `nameserver` lines.
pub const MAX_DNS: usize = 3;

/// Most NTP servers: asked in turn until one answers; four bounds the line.
pub const MAX_NTP: usize = 4;

/// Longest file read back: a valid file is a few hundred bytes.
const MAX_FILE_BYTES: u64 = 4096;

/// Longest hostname label (RFC 1035); the box's own name is one label.
const MAX_HOSTNAME: usize = 63;

/// Longest NTP server name (RFC 1035 name length).
const MAX_SERVER_NAME: usize = 253;

/// How the LAN interface gets its address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Addressing {
    /// The board profile's address (`NET_ADDR`), what a fresh image uses.
    #[default]
    Board,
    /// busybox `udhcpc`.
    Dhcp,
    /// A fixed address with its gateway and name servers.
    Static {
        /// The address.
        addr: Ipv4Addr,
        /// Prefix length, 1-32.
        prefix: u8,
        /// Default gateway.
        gateway: Ipv4Addr,
        /// Name servers (at most [`MAX_DNS`]).
        dns: Vec<Ipv4Addr>,
    },
}

/// Everything in `network.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSettings {
    /// DHCP, static or the board's default.
    pub addressing: Addressing,
    /// The box's hostname; `None`: `hakoden`.
    pub hostname: Option<String>,
    /// NTP servers; empty: no NTP.
    pub ntp: Vec<String>,
}

/// One console change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkChange {
    /// `network dhcp`.
    Dhcp,
    /// `network static ADDR/PREFIX GATEWAY [DNS..]`.
    Static {
        /// The address.
        addr: Ipv4Addr,
        /// Prefix length.
        prefix: u8,
        /// Gateway.
        gateway: Ipv4Addr,
        /// Name servers.
        dns: Vec<Ipv4Addr>,
    },
    /// `hostname NAME`.
    Hostname(String),
    /// `ntp SERVER..` / `ntp off` (empty).
    Ntp(Vec<String>),
}

/// Checks a hostname: one label of letters, digits and `-`, not starting or ending with `-`.
pub fn check_hostname(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_HOSTNAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a hostname: 1-{MAX_HOSTNAME} letters, digits and `-`"))
    }
}

/// Checks an NTP server: an IPv4 address or a DNS name, with an optional `:PORT`.
pub fn check_server(server: &str) -> Result<(), String> {
    let name = match server.rsplit_once(':') {
        Some((n, p)) if p.parse::<u16>().is_ok_and(|p| p != 0) => n,
        Some(_) => return Err(format!("`{server}` has a bad port")),
        None => server,
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= MAX_HOSTNAME
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= MAX_SERVER_NAME && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!("`{server}` is not a server name or IPv4 address"))
    }
}

impl NetworkChange {
    /// `network static` arguments: `ADDR/PREFIX GATEWAY [DNS..]`.
    pub fn parse_static(args: &[&str]) -> Result<NetworkChange, String> {
        const USAGE: &str = "usage: network static ADDR/PREFIX GATEWAY [DNS..] (IPv4)";
        let [cidr, gateway, dns @ ..] = args else {
            return Err(USAGE.into());
        };
        let (addr, prefix) =
            cidr.split_once('/').ok_or_else(|| format!("`{cidr}` needs a /PREFIX; {USAGE}"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("`{addr}` is not an IPv4 address; {USAGE}"))?;
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=32).contains(p))
            .ok_or_else(|| format!("`/{prefix}` is not a prefix length 1-32; {USAGE}"))?;
        let gateway: Ipv4Addr =
            gateway.parse().map_err(|_| format!("`{gateway}` is not an IPv4 gateway; {USAGE}"))?;
        if dns.len() > MAX_DNS {
            return Err(format!("at most {MAX_DNS} DNS servers; {USAGE}"));
        }
        let dns = dns
            .iter()
            .map(|d| d.parse::<Ipv4Addr>().map_err(|_| format!("`{d}` is not an IPv4 DNS server; {USAGE}")))
            .collect::<Result<Vec<_>, _>>()?;
        if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            return Err(format!("`{addr}` cannot be the box's address"));
        }
        if !same_subnet(addr, gateway, prefix) {
            return Err(format!("the gateway {gateway} is not inside {addr}/{prefix}"));
        }
        Ok(NetworkChange::Static { addr, prefix, gateway, dns })
    }

    /// `ntp SERVER..|off`.
    pub fn parse_ntp(args: &[&str]) -> Result<NetworkChange, String> {
        const USAGE: &str = "usage: ntp SERVER.. | ntp off";
        match args {
            [] => Err(USAGE.into()),
            [off] if off.eq_ignore_ascii_case("off") => Ok(NetworkChange::Ntp(Vec::new())),
            servers if servers.len() > MAX_NTP => Err(format!("at most {MAX_NTP} NTP servers; {USAGE}")),
            servers => {
                for s in servers {
                    check_server(s)?;
                }
                Ok(NetworkChange::Ntp(servers.iter().map(|s| s.to_string()).collect()))
            }
        }
    }
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

impl NetworkSettings {
    /// The settings after `change`.
    pub fn apply(&mut self, change: NetworkChange) {
        match change {
            NetworkChange::Dhcp => self.addressing = Addressing::Dhcp,
            NetworkChange::Static { addr, prefix, gateway, dns } => {
                self.addressing = Addressing::Static { addr, prefix, gateway, dns }
            }
            NetworkChange::Hostname(h) => self.hostname = Some(h),
            NetworkChange::Ntp(servers) => self.ntp = servers,
        }
    }

    /// The file's text.
    pub fn to_file(&self) -> String {
        let mut s = String::from("# Written by the hakoden console; read by /usr/sbin/hakoden-network.\n");
        match &self.addressing {
            Addressing::Board => s.push_str("mode=board\n"),
            Addressing::Dhcp => s.push_str("mode=dhcp\n"),
            Addressing::Static { addr, prefix, gateway, dns } => {
                let dns: Vec<String> = dns.iter().map(Ipv4Addr::to_string).collect();
                let _ = write!(
                    s,
                    "mode=static\naddress={addr}/{prefix}\ngateway={gateway}\ndns={}\n",
                    dns.join(" ")
                );
            }
        }
        if let Some(h) = &self.hostname {
            let _ = writeln!(s, "hostname={h}");
        }
        let _ = writeln!(s, "ntp={}", self.ntp.join(" "));
        s
    }

    /// Reads the file's text back; unknown keys are ignored (a newer firmware's file), a bad
    /// value is an error naming the line.
    pub fn parse_file(text: &str) -> Result<NetworkSettings, String> {
        let mut out = NetworkSettings::default();
        let (mut mode, mut address, mut gateway, mut dns) = ("board", None, None, "");
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: String| format!("{FILE_NAME} line {}: {why}", n + 1);
            let Some((k, v)) = line.split_once('=') else {
                return Err(bad(format!("`{line}` is not key=value")));
            };
            match k {
                "mode" => mode = v,
                "address" => address = Some(v),
                "gateway" => gateway = Some(v),
                "dns" => dns = v,
                "hostname" => {
                    check_hostname(v).map_err(bad)?;
                    out.hostname = Some(v.to_string());
                }
                "ntp" => {
                    let servers: Vec<&str> = v.split_whitespace().collect();
                    if !servers.is_empty() {
                        if let NetworkChange::Ntp(s) = NetworkChange::parse_ntp(&servers).map_err(bad)? {
                            out.ntp = s;
                        }
                    }
                }
                _ => {}
            }
        }
        out.addressing = match mode {
            "board" => Addressing::Board,
            "dhcp" => Addressing::Dhcp,
            "static" => {
                let mut args = vec![address.unwrap_or_default(), gateway.unwrap_or_default()];
                args.extend(dns.split_whitespace());
                match NetworkChange::parse_static(&args).map_err(|e| format!("{FILE_NAME}: {e}"))? {
                    NetworkChange::Static { addr, prefix, gateway, dns } => {
                        Addressing::Static { addr, prefix, gateway, dns }
                    }
                    _ => Addressing::Board,
                }
            }
            other => return Err(format!("{FILE_NAME}: mode `{other}` is not board, dhcp or static")),
        };
        Ok(out)
    }

    /// One line per setting, for `network` and `status`.
    pub fn describe(&self) -> String {
        let mut s = match &self.addressing {
            Addressing::Board => "address: the board's default (static, board profile)".to_string(),
            Addressing::Dhcp => "address: DHCP".to_string(),
            Addressing::Static { addr, prefix, gateway, dns } => {
                let dns: Vec<String> = dns.iter().map(Ipv4Addr::to_string).collect();
                let dns = if dns.is_empty() { "none".to_string() } else { dns.join(", ") };
                format!("address: static {addr}/{prefix}, gateway {gateway}, DNS {dns}")
            }
        };
        let _ = write!(s, "\nhostname: {}", self.hostname.as_deref().unwrap_or("hakoden"));
        let ntp = if self.ntp.is_empty() { "off".to_string() } else { self.ntp.join(", ") };
        let _ = write!(s, "\nntp: {ntp}");
        s
    }

    /// What the image's script runs for these settings on interface `ifname` (shown on a
    /// developer run, where nothing is applied).
    pub fn commands(&self, ifname: &str) -> Vec<String> {
        let mut c = vec![format!("hostname {}", self.hostname.as_deref().unwrap_or("hakoden"))];
        c.push(format!("ip addr flush dev {ifname}"));
        match &self.addressing {
            Addressing::Board => c.push(format!("ip addr add $NET_ADDR dev {ifname}  (board profile)")),
            Addressing::Dhcp => c.push(format!("udhcpc -i {ifname} -b -S")),
            Addressing::Static { addr, prefix, gateway, dns } => {
                c.push(format!("ip addr add {addr}/{prefix} dev {ifname}"));
                c.push(format!("ip route replace default via {gateway}"));
                for d in dns {
                    c.push(format!("echo nameserver {d} >> /run/resolv.conf"));
                }
            }
        }
        if !self.ntp.is_empty() {
            // Debian's busybox has no ntpd: the firmware is the SNTP client (system::sntp).
            c.push(format!(
                "hakoden: SNTP from {} every {} s",
                self.ntp.join(", "),
                super::sntp::SYNC_INTERVAL.as_secs()
            ));
        }
        c
    }
}

/// Where the settings live in `data_dir`.
pub fn settings_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Loads the saved settings; a missing file is the defaults.
pub fn load(data_dir: &Path) -> Result<NetworkSettings, String> {
    use std::io::Read as _;
    let path = settings_path(data_dir);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NetworkSettings::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut text = String::new();
    f.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    NetworkSettings::parse_file(&text)
}

/// Saves the settings: written beside, synced, renamed, so a power cut leaves the old or the
/// new file, never half of one.
pub fn save(data_dir: &Path, settings: &NetworkSettings) -> Result<(), String> {
    super::write_atomically(&settings_path(data_dir), settings.to_file().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_settings_survive_the_file_round_trip() {
        let mut s = NetworkSettings::default();
        s.apply(NetworkChange::parse_static(&["192.168.1.20/24", "192.168.1.1", "1.1.1.1"]).unwrap());
        s.apply(NetworkChange::Hostname("office-pbx".into()));
        s.apply(NetworkChange::parse_ntp(&["ntp.nict.jp", "10.0.0.1"]).unwrap());
        let text = s.to_file();
        assert!(
            text.contains("mode=static\naddress=192.168.1.20/24\ngateway=192.168.1.1\ndns=1.1.1.1\n"),
            "{text}"
        );
        assert_eq!(NetworkSettings::parse_file(&text).unwrap(), s);
    }

    #[test]
    fn a_missing_file_means_the_board_default_without_ntp() {
        let s = NetworkSettings::parse_file("").unwrap();
        assert_eq!(s, NetworkSettings::default());
        assert!(s.describe().contains("ntp: off"));
    }

    #[test]
    fn values_that_could_be_shell_syntax_are_refused() {
        assert!(check_hostname("a;reboot").is_err());
        assert!(check_hostname("$(x)").is_err());
        assert!(check_hostname("-x").is_err());
        assert!(check_server("pool.ntp.org`").is_err());
        assert!(NetworkSettings::parse_file("hostname=a b\n").is_err());
        assert!(NetworkSettings::parse_file("mode=static\naddress=1.2.3.4/24\ngateway=1.2.3.1;ls\n").is_err());
        assert!(NetworkSettings::parse_file("mode=evil\n").is_err());
    }

    #[test]
    fn a_gateway_outside_the_subnet_is_refused() {
        assert!(NetworkChange::parse_static(&["192.168.1.20/24", "192.168.2.1"]).is_err());
        assert!(NetworkChange::parse_static(&["192.168.1.20/16", "192.168.2.1"]).is_ok());
        assert!(NetworkChange::parse_static(&["192.168.1.20", "192.168.1.1"]).is_err());
        assert!(NetworkChange::parse_static(&["192.168.1.20/33", "192.168.1.1"]).is_err());
        assert!(NetworkChange::parse_static(&[
            "192.168.1.20/24",
            "192.168.1.1",
            "1.1.1.1",
            "2.2.2.2",
            "3.3.3.3",
            "4.4.4.4"
        ])
        .is_err());
    }

    #[test]
    fn ntp_off_clears_the_servers_and_too_many_are_refused() {
        assert_eq!(NetworkChange::parse_ntp(&["OFF"]).unwrap(), NetworkChange::Ntp(vec![]));
        assert!(NetworkChange::parse_ntp(&["a", "b", "c", "d", "e"]).is_err());
        assert!(NetworkChange::parse_ntp(&[]).is_err());
    }

    #[test]
    fn dhcp_commands_run_udhcpc_on_the_interface() {
        let mut s = NetworkSettings::default();
        s.apply(NetworkChange::Dhcp);
        assert!(s.commands("eth0").contains(&"udhcpc -i eth0 -b -S".to_string()));
    }
}
