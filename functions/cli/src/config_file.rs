//! The access configuration file: `--config FILE` (every command) and
//! `config check [FILE]`.

use std::path::Path;

use eks_access_sync::model::config::{Config, ConfigError};
use eks_access_sync::model::tiers::{AccessConfig, AccessConfigError, MAX_ACCESS_CONFIG_BYTES};

use crate::cli::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: String,
        source: AccessConfigError,
    },
}

/// Reads and validates the file: its text (what `ACCESS_CONFIG` would hold) and tiers.
pub fn read(path: &Path) -> Result<(String, AccessConfig), ConfigFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: shown.clone(),
        source,
    })?;
    let access = AccessConfig::from_yaml(&text).map_err(|source| ConfigFileError::Invalid {
        path: shown,
        source,
    })?;
    Ok((text, access))
}

/// The configuration from the environment, with `access_text` (the `--config` file)
/// standing in for `ACCESS_CONFIG` when given. The process environment is not changed.
pub fn load_config(access_text: Option<&str>) -> Result<Config, ConfigError> {
    Config::from_lookup(|k| match (k, access_text) {
        ("ACCESS_CONFIG", Some(text)) => Some(text.to_string()),
        _ => std::env::var(k).ok(),
    })
}

/// `config check`: validates `path` and prints one line per tier. Needs neither AWS
/// credentials nor any environment variable.
pub fn check(path: Option<&Path>) -> u8 {
    let Some(path) = path else {
        eprintln!("error: config check needs a FILE (or --config FILE)");
        return EXIT_USAGE;
    };
    match read(path) {
        Ok((text, access)) => {
            println!(
                "{}: {} tier(s), {} of {MAX_ACCESS_CONFIG_BYTES} bytes",
                path.display(),
                access.tiers.len(),
                text.len()
            );
            for tier in &access.tiers {
                println!("  {}", tier.summary());
            }
            for a in &access.accounts {
                let regions = if a.regions.is_empty() {
                    "the hub's regions".to_owned()
                } else {
                    a.regions.join(", ")
                };
                println!(
                    "  account {}: {regions}, through its member role (MEMBER_ROLE_NAME)",
                    a.id
                );
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
