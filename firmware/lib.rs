//! Hakoden (箱電), the firmware of an on-prem PBX appliance.
//!
//! Rooms (see `docs/design.md` and `../shared/ARCHITECTURE.md`):
//! - [`config`]: typed configuration, defaults, validation.
//! - [`store`]: the embedded KV store (fjall); the only code that knows it.
//! - [`sip`]: SIP wire parsing and building, transactions, digest auth, transports.
//! - [`media`]: SDP, RTP port pool and the RTP/RTCP relay.
//! - [`engine`]: the sans-IO PBX core: registrar, calls (B2BUA), CDR events.
//! - [`console`]: the technician console over a local socket.
//! - [`daemon`]: `hakoden run`: wires the drivers (sockets, clock, store) to the engine.
//! - [`apps`]: routing building blocks on top of the engine (time rules, trunks; issue 4).
//! - [`web`]: the HTTPS admin: JSON API, users, sessions, the embedded pages (issue 7).
//! - [`notify`]: voicemail e-mail (SMTP) and chat notifications with a retrying outbox (issue 5).
//! - [`watchdog`]: loop heartbeats and the hardware watchdog driver (issue 8).
//! - [`alarms`]: the bounded alarm table the dashboard and `show alarms` show (issue 7).
//! - [`update`]: signed A/B firmware updates, trial health check and commit (issue 8).
//! - [`backup`]: backup and restore of configuration and data as one file, factory reset.
//!
//! Logic rooms (`engine`, `sip`'s transaction code, `media::sdp`, `media::pool`) do no I/O and
//! read no clock; clippy's `disallowed_methods` enforces the clock half of that rule.
#![forbid(unsafe_code)]
// Tests may read the real clock for a base Instant; logic still takes `now` as an argument.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod alarms;
pub mod apps;
pub mod backup;
pub mod campaigns;
pub mod config;
pub mod console;
pub mod daemon;
pub mod engine;
pub mod logger;
pub mod media;
pub mod notify;
pub mod sip;
pub mod store;
pub mod system;
pub mod update;
pub mod watchdog;
pub mod web;

/// The firmware version, stamped by `build.rs` (package version + git revision).
pub const VERSION: &str = env!("HAKODEN_VERSION");
