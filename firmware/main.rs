//! The `hakoden` command line: `run` starts the box, `console` talks to a running one.
use clap::{Parser, Subcommand};
use hakoden::config::PortRange;
use hakoden::daemon::{self, RunOptions};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hakoden", version = hakoden::VERSION, about = "Hakoden (箱電): the on-prem PBX box")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the box (SIP, RTP relay, store, console socket, web admin).
    Run {
        /// Data directory: the store and the console socket live here.
        #[arg(long = "data", default_value = "./hakoden-data")]
        data: PathBuf,
        /// Provision the box from this TOML file (see docs/configuration.md).
        #[arg(long = "config")]
        config: Option<PathBuf>,
        /// SIP port, UDP and TCP (default 5060).
        #[arg(long = "sip-port")]
        sip_port: Option<u16>,
        /// RTP relay port range LO-HI (default 10000-20000).
        #[arg(long = "rtp-ports")]
        rtp_ports: Option<PortRange>,
        /// Address to bind SIP, RTP and the web admin to (default 0.0.0.0).
        #[arg(long = "bind")]
        bind: Option<IpAddr>,
        /// Web admin HTTPS port (default 8443; 0 = off).
        #[arg(long = "https-port")]
        https_port: Option<u16>,
        /// Plain-HTTP port that redirects to HTTPS (default 8080; 0 = off).
        #[arg(long = "http-port")]
        http_port: Option<u16>,
        /// Hardware watchdog device to pet while every critical loop is alive (e.g.
        /// /dev/watchdog). Never opened unless given: opening arms the board's reset.
        #[arg(long = "watchdog")]
        watchdog: Option<PathBuf>,
        /// Allow `debug ...` console commands (`debug hang LOOP`); tests and bench work only.
        #[arg(long = "allow-debug")]
        allow_debug: bool,
        /// The appliance's slot state directory (`/data/boot`): turns on signed updates and
        /// the trial boot's health check and commit. Needs --update-key and --board.
        #[arg(long = "boot-dir", requires_all = ["update_key", "board"])]
        boot_dir: Option<PathBuf>,
        /// Public key (64 hex digits) update bundles must be signed with.
        #[arg(long = "update-key")]
        update_key: Option<PathBuf>,
        /// Board profile name update bundles must be built for.
        #[arg(long = "board")]
        board: Option<String>,
    },
    /// Update bundles (build side): `bundle make`, `bundle verify`, `bundle pubkey`.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Technician console of a running box: one command, or interactive without one.
    Console {
        /// Data directory of the running box.
        #[arg(long = "data", default_value = "./hakoden-data")]
        data: PathBuf,
        /// e.g. `show registrations`, `show calls`, `show extensions`, `show version`, `log tail 50`.
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Sign a rootfs squashfs into an update bundle.
    Make {
        /// Ed25519 signing key, PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
        #[arg(long = "key")]
        key: PathBuf,
        /// Board profile the rootfs was built for.
        #[arg(long = "board")]
        board: String,
        /// Firmware version (the rootfs's /etc/hakoden/version).
        #[arg(long = "version")]
        version: String,
        /// The rootfs squashfs.
        #[arg(long = "rootfs")]
        rootfs: PathBuf,
        /// Output file.
        #[arg(long = "out")]
        out: PathBuf,
    },
    /// Check a bundle as a box would (signature, board, size).
    Verify {
        /// Public key file (64 hex digits).
        #[arg(long = "pubkey")]
        pubkey: PathBuf,
        /// The box's board.
        #[arg(long = "board")]
        board: String,
        /// Largest firmware the slot holds, bytes.
        #[arg(long = "max-bytes", default_value_t = 64 << 20)]
        max_bytes: u64,
        /// The bundle.
        file: PathBuf,
    },
    /// Print a signing key's public half (64 hex digits) for the rootfs.
    Pubkey {
        /// Ed25519 signing key, PKCS#8 PEM.
        key: PathBuf,
    },
}

fn bundle_command(cmd: BundleCommand) -> Result<String, String> {
    use hakoden::update::bundle;
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    match cmd {
        BundleCommand::Make { key, board, version, rootfs, out } => {
            let key = bundle::signing_key(&read(&key)?)?;
            let bytes = bundle::build(&key, &version, &board, &read(&rootfs)?)?;
            std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
            Ok(format!("{}: {version} for {board}, {} bytes", out.display(), bytes.len()))
        }
        BundleCommand::Verify { pubkey, board, max_bytes, file } => {
            let text = String::from_utf8_lossy(&read(&pubkey)?).to_string();
            let key = bundle::parse_public_key(&text)?;
            let bytes = read(&file)?;
            let v = bundle::verify(&bytes, &key, &board, max_bytes).map_err(|e| e.to_string())?;
            Ok(format!(
                "ok: {} for {}, {} bytes, sha256 {}",
                v.manifest.version, v.manifest.board, v.manifest.size, v.manifest.sha256
            ))
        }
        BundleCommand::Pubkey { key } => Ok(bundle::public_key_hex(&bundle::signing_key(&read(&key)?)?)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            data,
            config,
            sip_port,
            rtp_ports,
            bind,
            https_port,
            http_port,
            watchdog,
            allow_debug,
            boot_dir,
            update_key,
            board,
        } => {
            hakoden::logger::init();
            // A staged restore or factory reset replaces the data (and the configuration
            // file) before anything reads them (hakoden::backup).
            // On the appliance the technician's configuration is /data/hakoden.toml (next to
            // the boot directory), which hakoden-start prefers over the slot's default.
            let appliance_config =
                boot_dir.as_deref().and_then(|b| b.parent()).map(|d| d.join("hakoden.toml"));
            let config_target = appliance_config.clone().or_else(|| config.clone());
            match hakoden::backup::apply_pending(&data, config_target.as_deref()) {
                Ok(hakoden::backup::Applied::Nothing) => {}
                Ok(done) => {
                    println!("hakoden: applied at start: {done:?}");
                    if let Some(own) = &appliance_config {
                        if done == hakoden::backup::Applied::FactoryReset {
                            let _ = std::fs::remove_file(own);
                        }
                        // hakoden-start picks the configuration: start again through it.
                        println!("hakoden: restarting to read the configuration again");
                        return ExitCode::SUCCESS;
                    }
                }
                Err(e) => eprintln!("hakoden: {e}"),
            }
            let appliance = match (boot_dir, update_key, board) {
                (Some(dir), Some(key), Some(board)) => {
                    let run_slot = std::path::Path::new(hakoden::update::RUN_SLOT_FILE);
                    match hakoden::update::Appliance::load(&dir, &key, &board, run_slot) {
                        Ok(a) => Some(a),
                        Err(e) => {
                            // The PBX still runs: a box that cannot update must still take calls.
                            eprintln!("hakoden: updates off: {e}");
                            None
                        }
                    }
                }
                _ => None,
            };
            if appliance.as_ref().is_some_and(|a| {
                a.crash_after_commit_due(std::path::Path::new(hakoden::update::CRASH_AFTER_COMMIT_FLAG))
            }) {
                // A test firmware (scripts/make-bundle.sh --crash-after-commit): a crash loop
                // for hakoden-start's fallback to catch.
                eprintln!(
                    "hakoden: {} is present and this slot is committed: exiting with an error (test)",
                    hakoden::update::CRASH_AFTER_COMMIT_FLAG
                );
                return ExitCode::from(hakoden::update::TEST_CRASH_EXIT);
            }
            let config_file = config.clone();
            // The text too: the saved web document wins unless the file changed (daemon::run).
            let config_text = config.as_deref().and_then(|p| std::fs::read_to_string(p).ok());
            let config = match config.as_deref().map(hakoden::config::load_file) {
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => {
                    eprintln!("hakoden: configuration refused: {e}");
                    return ExitCode::from(2);
                }
                None => None,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("hakoden: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let opts = RunOptions {
                data_dir: data,
                config,
                config_text,
                sip_port,
                rtp_ports,
                bind,
                https_port,
                http_port,
                watchdog,
                allow_debug,
                appliance,
                config_file,
            };
            match runtime.block_on(daemon::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hakoden: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bundle { command } => match bundle_command(command) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hakoden bundle: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Console { data, command } => {
            let command = (!command.is_empty()).then(|| command.join(" "));
            let code = hakoden::console::run_client(&daemon::console_socket(&data), command);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
