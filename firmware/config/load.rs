//! Loading and validating the TOML file. (Placeholder: filled in by the config work.)
use super::Config;
use std::path::Path;

/// Why a configuration was refused: names the file, line and field.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, or `<string>`.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field path, e.g. `extension[2].number`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    parse_str(&text, &path.display().to_string())
}

/// Parses and validates config text; `file` names it in errors.
pub fn parse_str(_text: &str, _file: &str) -> Result<Config, ConfigError> {
    Ok(Config::default())
}
