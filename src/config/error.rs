//! [`ConfigError`]: why a configuration cannot be used, on one line that names the key.

use std::fmt;

/// A configuration that cannot be used: the key (`proxy.max_batch`, `upstreams[1].url`,
/// `--config`, …) and why. Shown as one line, `configuration: <key>: <reason>`; never holds a
/// secret (URLs are redacted, header values not quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending key; empty when the loader could not tell (its reason then names it).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// An error of the loader (file syntax, a value of the wrong type), whose message names
    /// the key itself.
    pub fn loader(reason: impl Into<String>) -> Self {
        Self::new(String::new(), reason)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration: {}", self.reason)
        } else {
            write!(f, "configuration: {}: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}
