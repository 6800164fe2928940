//! The typed errors of the export library and the process exit code each one
//! maps to (2 for bad usage, like click; 1 for everything that goes wrong
//! while exporting).

use std::path::PathBuf;

/// Everything that can stop an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Bad command-line usage: invalid range, unusable provider URI, an input
    /// file that cannot be opened, no output selected.
    #[error("{0}")]
    Usage(String),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved (`-` for stdin/stdout).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A CSV input could not be parsed.
    #[error("{path}: {source}")]
    Csv {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },

    /// The node kept failing or answered garbage for the named item, even
    /// after retries.
    #[error("{0}")]
    Rpc(String),

    /// No provider gave an answer that passed verification, even after retries:
    /// `verdict` names the block and the check that failed, with the evidence (one line).
    #[error("{what}: no verified answer after {attempts} attempt{}: {verdict}", plural(*attempts))]
    Wrong {
        /// The batch concerned ("blocks 0..=99").
        what: String,
        /// Attempts made, over every provider.
        attempts: u32,
        /// The last verdict: "block N (0x…): <check> check failed: <evidence>".
        verdict: String,
    },

    /// The node does not have a method the export needs (`trace_block` on a
    /// node without the trace API): asking again cannot help.
    #[error("{0}")]
    Unsupported(String),

    /// Input data that ethereum-etl would also choke on (wrong JSON type,
    /// missing column, non-hex quantity of the wrong type).
    #[error("{0}")]
    Data(String),

    /// A PostgreSQL output failed. `retriable` errors (connection lost,
    /// server shutting down, serialization failure) make `stream` reconnect
    /// and repeat the round; the others (bad credentials, a table laid out
    /// differently, a value the column cannot hold) stop it.
    #[error("{message}")]
    Database {
        /// What failed, naming the server (never the password) and the table.
        message: String,
        /// Whether repeating the round may succeed.
        retriable: bool,
    },
}

impl ExportError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExportError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// Whether `stream` must stop on this error instead of retrying the round:
    /// local files that cannot be written, bad usage, a method the node does
    /// not have and non-retriable database errors would fail the same way again.
    pub fn stops_stream(&self) -> bool {
        matches!(
            self,
            ExportError::Io { .. }
                | ExportError::Usage(_)
                | ExportError::Unsupported(_)
                | ExportError::Database {
                    retriable: false,
                    ..
                }
        )
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Shorthand result type for the export library.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_others_exit_1() {
        assert_eq!(ExportError::Usage("x".into()).exit_code(), 2);
        assert_eq!(ExportError::Rpc("x".into()).exit_code(), 1);
        let e = ExportError::io("/nope", std::io::Error::other("boom"));
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), "/nope: boom");
    }
}
