//! Outbound campaigns (issue 9; seed 002 §2.7, §2.12, §2.17, §2.18, §3.10): settings, the call
//! list with its dialling, pacing, results and the DTMF result entry. Sans-IO like every room
//! under `apps`: the engine feeds events and the clock, and carries out the actions.
//!
//! - [`settings`]: a campaign's fields, defaults and field-level checks.
//! - [`pacing`]: how many dials to start (progressive ratio, channel cap, predictive).
//! - [`dialer`]: the call list, scheduling, recalls and results.
//! - [`results`]: system and custom results.
//! - [`dtmf`]: `N#`, `0` + `M#` / `M*H#` / `M*H*D#`.
//! - [`stats`]: campaign statistics (§2.12).

pub mod dialer;
pub mod dtmf;
pub mod pacing;
pub mod results;
pub mod settings;
pub mod stats;

#[cfg(test)]
mod dialer_tests;
