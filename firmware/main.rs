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
        } => {
            hakoden::logger::init();
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
            };
            match runtime.block_on(daemon::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hakoden: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Console { data, command } => {
            let command = (!command.is_empty()).then(|| command.join(" "));
            let code = hakoden::console::run_client(&daemon::console_socket(&data), command);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
