//! The errors of the access configuration: every message names the line (and column)
//! and the key.

use std::fmt;

/// Where in the document: 1-based line and column (0: unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => f.write_str("(line unknown)"),
            (line, 0) => write!(f, "line {line}"),
            (line, column) => write!(f, "line {line}, column {column}"),
        }
    }
}

/// A configuration that cannot be used. Every message names the line (and column)
/// and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessConfigError {
    /// Over [`MAX_ACCESS_CONFIG_BYTES`](super::MAX_ACCESS_CONFIG_BYTES).
    #[error(
        "the access configuration is {len} bytes, over the limit of {max} (it travels in the \
         ACCESS_CONFIG environment variable, and Lambda allows 4 KB for all variables \
         together): shorten it, e.g. with flow style (`members: {{ tag: k=v }}`) and fewer comments"
    )]
    TooLarge { len: usize, max: usize },
    /// Not YAML, or not of the expected shape: an unknown or missing key, a value of the
    /// wrong type (the message names the key).
    #[error("{at}: {message}")]
    Yaml { at: Position, message: String },
    /// Well-formed, but a value breaks a rule.
    #[error("{at}: {key}: {reason}")]
    Invalid {
        at: Position,
        /// The path of the key, e.g. `tiers[1].kubernetes.policy`.
        key: String,
        reason: String,
    },
}

impl AccessConfigError {
    /// The line the error points at (0: unknown; [`AccessConfigError::TooLarge`]: 0).
    pub fn line(&self) -> u64 {
        match self {
            Self::TooLarge { .. } => 0,
            Self::Yaml { at, .. } | Self::Invalid { at, .. } => at.line,
        }
    }
}
