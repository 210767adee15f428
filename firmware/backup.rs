//! Backup and restore of configuration and data as one file; factory reset (issue 8).

use std::path::Path;

/// `backup FILE` on the console.
pub fn console_backup(_data_dir: &Path, _path: &str) -> String {
    "error: not implemented yet".into()
}

/// `restore FILE` on the console.
pub fn console_restore(_data_dir: &Path, _path: &str) -> String {
    "error: not implemented yet".into()
}

/// `factory-reset [confirm]` on the console.
pub fn console_factory_reset(_data_dir: &Path, _confirmed: bool) -> String {
    "error: not implemented yet".into()
}
