//! Applications: call-routing logic on top of the engine (time rules, and later IVR, queues, ...).
//!
//! Like `engine`, these rooms do no I/O and read no clock: the engine passes the wall time in.
//! - [`timerules`]: which destination a DID's call goes to at a given moment (issue 4).
pub mod timerules;
