//! The embedded store (fjall). Placeholder; filled in by the store work.
