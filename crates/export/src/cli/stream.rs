//! Flags and dispatch of `stream`: ethereum-etl 2.4.2's flags and defaults, the provider
//! picked at random from `-p` first (the others as fallbacks), the pid file and the
//! shutdown signals.

use std::time::Duration;

use clap::Args;

use super::{usize_of, Connect, DEFAULT_PROVIDER};
use crate::error::{ExportError, Result};
use crate::jobs::stream::{parse_entity_types, pick_provider_uri, stream, StreamJob};
use crate::outputs::StreamOutputs;
use crate::progress::Ui;
use crate::sink::Format;

/// File format of a directory output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// ethereum-etl's CSV files.
    Csv,
    /// JSON lines, as ethereum-etl writes `.json` outputs.
    Json,
}

/// Flags of `stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The file holding the last synced block.
    #[arg(short = 'l', long, default_value = "last_synced_block.txt")]
    pub last_synced_block_file: String,
    /// The number of blocks to lag behind the network.
    #[arg(long, default_value_t = 0)]
    pub lag: u64,
    /// The URI of the JSON-RPC provider, e.g. http://localhost:8545; a comma-separated list
    /// makes the stream start with one of them, picked at random (as ethereum-etl does), and
    /// fall back to the others in order when it fails or answers data that does not verify.
    #[arg(short = 'p', long, default_value = DEFAULT_PROVIDER)]
    pub provider_uri: String,
    /// Where to write: console (default), postgresql://user:password@host:port/database
    /// (also postgresql+pg8000://...), or a directory (existing, or a path ending in "/");
    /// a comma-separated list writes to several.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// File format of a directory output (nodewatch-export extension).
    #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
    pub output_format: OutputFormat,
    /// Start block
    #[arg(short = 's', long)]
    pub start_block: Option<u64>,
    /// The list of entity types to export, from
    /// block,transaction,log,token_transfer,trace,contract,token (trace, contract and token
    /// need a node serving trace_block).
    #[arg(
        short = 'e',
        long,
        default_value = "block,transaction,log,token_transfer"
    )]
    pub entity_types: String,
    /// How many seconds to sleep between syncs
    #[arg(long, default_value_t = 10)]
    pub period_seconds: u64,
    /// How many blocks to batch in single request
    #[arg(short = 'b', long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// How many blocks to batch in single sync round
    #[arg(short = 'B', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub block_batch_size: u64,
    /// The number of workers
    #[arg(short = 'w', long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_workers: u64,
    /// Log file (accepted for compatibility; messages go to stderr).
    #[arg(long)]
    pub log_file: Option<String>,
    /// pid file, written while streaming.
    #[arg(long)]
    pub pid_file: Option<String>,
    /// Stop after this block is synced (nodewatch-export extension).
    #[arg(long)]
    pub end_block: Option<u64>,
}

/// Runs `stream` with these flags.
pub(super) async fn run(a: StreamArgs, net: &Connect, ui: Ui) -> Result<()> {
    let format = match a.output_format {
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Json => Format::Json,
    };
    let mut outputs = StreamOutputs::parse(a.output.as_deref(), format)?;
    let (uri, all) = pick_provider_uri(&a.provider_uri)?;
    // The chosen provider first, the others as fallbacks in their order.
    let ordered: Vec<String> = std::iter::once(uri.clone())
        .chain(all.into_iter().filter(|u| *u != uri))
        .collect();
    let client = net.client_for(&ordered)?;
    if !ui.quiet {
        eprintln!("Using {}", without_password(&uri));
    }
    let job = StreamJob {
        last_synced_block_file: a.last_synced_block_file,
        lag: a.lag,
        start_block: a.start_block,
        entity_types: parse_entity_types(&a.entity_types)?,
        period: Duration::from_secs(a.period_seconds),
        batch_size: usize_of(a.batch_size),
        block_batch_size: a.block_batch_size,
        max_workers: usize_of(a.max_workers),
        end_block: a.end_block,
    };
    let shutdown = shutdown_signal()?;
    let _pid = a.pid_file.as_deref().map(PidFile::create).transpose()?;
    stream(&client, &job, &mut outputs, ui, shutdown).await
}

/// A URI with the password of its user part, if any, replaced by `***`.
fn without_password(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!("{scheme}://{name}:***{}", &rest[user.len()..])
        }
        _ => uri.to_owned(),
    }
}

/// Completes on SIGTERM or SIGINT. The handlers are installed at once, so a
/// signal that arrives before the future is first polled is not lost.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind| signal(kind).map_err(|e| ExportError::io("signal handler", e));
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// A pid file that is removed again when the stream ends.
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn create(path: &str) -> Result<PidFile> {
        std::fs::write(path, std::process::id().to_string())
            .map_err(|e| ExportError::io(path, e))?;
        Ok(PidFile(path.into()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            without_password("https://me:s3cret@node.example:8545/v3/key?x=1"),
            "https://me:***@node.example:8545/v3/key?x=1"
        );
        assert_eq!(
            without_password("http://127.0.0.1:8545"),
            "http://127.0.0.1:8545"
        );
        assert_eq!(without_password("http://me@h/p@q"), "http://me@h/p@q");
    }
}
