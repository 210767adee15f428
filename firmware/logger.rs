//! RAM ring logger. Placeholder; filled in by the console work.
