//! `hakoden run`. Placeholder while the engine is written.
