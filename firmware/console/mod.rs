//! Technician console over a local socket. Placeholder; filled in by the console work.
