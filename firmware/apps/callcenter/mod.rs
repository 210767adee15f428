//! Call center core (issue 6): queues (ACD), agent states and the queue/agent event log.
//!
//! Sans-IO like the rest of `apps`: the engine passes `now` and the wall clock in, and drains
//! outputs. Layers, bottom up:
//! - [`events`]: the event log, the only source of reports (JSON lines + in-memory ring).
//! - [`agent`]: the agent state machine (seed 004 §2.8) and the custom-state catalog.
//! - [`strategy`]: the ringing strategies and the skill-level rule.
//! - [`queue`]: the ACD ([`Acd`]) that ties them together.
//! - [`stats`]: report metrics computed from the event log in one streaming pass ([`Stats`]).
//! - [`report`]: a query over local dates turned into report rows and CSV ([`ReportBuilder`]).
//!
//! The engine drives it from `engine/queue_call.rs`; `docs/callcenter.md` says how.
//!
//! The public interface is: [`Acd`], [`AcdConfig`], [`QueueConfig`], [`MemberConfig`],
//! [`PeriodicAnnouncement`], [`Output`], [`RouteReason`], [`AcdError`], [`Strategy`],
//! [`AgentState`], [`AgentError`], [`StatusCatalog`], [`Event`], [`EventKind`], [`EventRing`],
//! [`Cause`], [`Direction`], [`OverflowReason`], [`Stats`], [`StatsConfig`], [`Totals`], [`Ratio`],
//! [`Unit`], [`Period`], [`Scope`], [`BucketKey`], [`Realtime`], [`QueueRealtime`],
//! [`ReportQuery`], [`ReportKind`], [`ReportConfig`], [`ReportBuilder`], [`Report`],
//! [`ReportError`].
pub mod agent;
pub mod events;
pub mod queue;
pub mod report;
pub mod stats;
pub mod strategy;

#[cfg(test)]
mod tests;

pub use agent::{AgentError, AgentState, StatusCatalog};
pub use events::{Cause, Direction, Event, EventKind, EventParseError, EventRing, OverflowReason};
pub use queue::{
    Acd, AcdConfig, AcdError, MemberConfig, Output, PeriodicAnnouncement, QueueConfig, RouteReason,
};
pub use report::{Report, ReportBuilder, ReportConfig, ReportError, ReportKind, ReportQuery};
pub use stats::{BucketKey, Period, QueueRealtime, Ratio, Realtime, Scope, Stats, StatsConfig, Totals, Unit};
pub use strategy::Strategy;
