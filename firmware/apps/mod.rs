//! Applications: call-routing logic on top of the engine (time rules, numbers, trunks, and later
//! IVR, queues, ...).
//!
//! Like `engine`, these rooms do no I/O and read no clock: the engine passes the time in.
//! - [`campaign`]: outbound campaigns: settings, pacing, the call list and results (issue 9;
//!   core only, not wired).
//! - [`crm`]: customers, cases, FAQ, tags, business formats, workflows (issue 9; core only).
//! - [`callcenter`]: queues (ACD), agent states and the call-center event log (issue 6; core
//!   only, not wired).
//! - [`timerules`]: which destination a DID's call goes to at a given moment (issue 4).
//! - [`numbers`]: Japanese number normalisation, outbound routes, block and restriction lists,
//!   CSV import (issue 4).
//! - [`trunk`]: the registration client of a SIP trunk to a provider (issue 4).
//! - [`ivr`]: IVR menus: configuration checks and the caller's menu session (issue 6).
//! - [`supervision`]: listen / whisper / barge sessions of a supervisor (issue 6).
//! - [`voicemail`]: mailboxes, the caller flow, the owner menu and message waiting (issue 5).
pub mod callcenter;
pub mod campaign;
pub mod crm;
pub mod history;
pub mod ivr;
pub mod numbers;
pub mod phonebook;
pub mod supervision;
pub mod timerules;
pub mod trunk;
pub mod voicemail;
