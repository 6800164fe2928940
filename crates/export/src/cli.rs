//! Command-line interface of `nodewatch-export`: ethereum-etl 2.4.2's command
//! names, flags, short flags and defaults (clap derive), and dispatch to the
//! jobs. The provider defaults to the local node instead of Infura.

pub mod more;
pub mod stream;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::error::Result;
use super::jobs::blocks::{export_blocks_and_transactions, BlocksJob};
use super::jobs::extract::{extract_csv_column, extract_field};
use super::jobs::receipts::{export_receipts_and_logs, ReceiptsJob};
use super::jobs::token_transfers::{
    export_token_transfers, extract_token_transfers, ExportTransfersJob, ExtractTransfersJob,
};
use super::progress::Ui;
use super::rpc::{RetryPolicy, RpcClient};
use super::verified::Verifier;

/// The default JSON-RPC endpoint.
pub const DEFAULT_PROVIDER: &str = "http://127.0.0.1:8545";

/// Export blocks, transactions, receipts, logs, token transfers, traces,
/// contracts and tokens exactly as ethereum-etl 2.4.2 writes them.
#[derive(Debug, Parser)]
#[command(name = "nodewatch-export", version)]
pub struct Cli {
    /// No progress bar and no summary on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Attempts per JSON-RPC batch and provider before giving up (including the first).
    #[arg(long, global = true, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,

    /// Delay before the first retry in milliseconds; doubled for each further retry.
    #[arg(long, global = true, default_value_t = 1000)]
    pub retry_delay_ms: u64,

    /// Write what the providers answer without checking it against the block headers
    /// (header hash, transactions root, receipts root, blooms, positions, counts). The checks
    /// cost little CPU, but to make them receipts and token transfers also fetch their blocks'
    /// receipts (eth_getBlockReceipts), and blocks come with full transactions.
    #[arg(long, global = true)]
    pub no_verify: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// ethereum-etl's export commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exports blocks and transactions.
    #[command(name = "export_blocks_and_transactions")]
    ExportBlocksAndTransactions(BlocksArgs),
    /// Exports receipts and logs.
    #[command(name = "export_receipts_and_logs")]
    ExportReceiptsAndLogs(ReceiptsArgs),
    /// Extracts ERC20/ERC721 transfers from logs file.
    #[command(name = "extract_token_transfers")]
    ExtractTokenTransfers(ExtractTransfersArgs),
    /// Exports ERC20/ERC721 transfers.
    #[command(name = "export_token_transfers")]
    ExportTokenTransfers(ExportTransfersArgs),
    /// Extracts column from given CSV file. Deprecated - use extract_field.
    #[command(name = "extract_csv_column")]
    ExtractCsvColumn(ExtractCsvColumnArgs),
    /// Extracts field from given CSV or JSON newline-delimited file.
    #[command(name = "extract_field")]
    ExtractField(ExtractFieldArgs),
    /// Streams blocks, transactions, logs, token transfers, traces, contracts and tokens to the console, PostgreSQL or a directory.
    #[command(name = "stream")]
    Stream(stream::StreamArgs),
    /// Exports traces from parity node.
    #[command(name = "export_traces")]
    ExportTraces(more::TracesArgs),
    /// Exports traces from geth node.
    #[command(name = "export_geth_traces")]
    ExportGethTraces(more::GethTracesArgs),
    /// Extracts geth traces from JSON lines file.
    #[command(name = "extract_geth_traces")]
    ExtractGethTraces(more::ExtractGethTracesArgs),
    /// Exports contracts bytecode and sighashes.
    #[command(name = "export_contracts")]
    ExportContracts(more::ContractsArgs),
    /// Extracts contracts from traces file.
    #[command(name = "extract_contracts")]
    ExtractContracts(more::ExtractContractsArgs),
    /// Exports ERC20/ERC721 tokens.
    #[command(name = "export_tokens")]
    ExportTokens(more::TokensArgs),
    /// Extracts tokens from contracts file.
    #[command(name = "extract_tokens")]
    ExtractTokens(more::ExtractTokensArgs),
    /// Outputs 32-byte Keccak hash of given string.
    #[command(name = "get_keccak_hash")]
    GetKeccakHash(more::KeccakArgs),
    /// Exports all data for a range of blocks.
    #[command(name = "export_all")]
    ExportAll(more::ExportAllArgs),
    /// Outputs start and end blocks for given date.
    #[command(name = "get_block_range_for_date")]
    GetBlockRangeForDate(more::DateRangeArgs),
    /// Outputs start and end blocks for given timestamps.
    #[command(name = "get_block_range_for_timestamps")]
    GetBlockRangeForTimestamps(more::TimestampRangeArgs),
}

/// Options shared by the commands that talk to a node.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The URI of the JSON-RPC provider, e.g. http://localhost:8545; a comma-separated list
    /// adds fallbacks, asked in order when a provider fails or answers data that does not
    /// verify.
    #[arg(short = 'p', long, default_value = DEFAULT_PROVIDER)]
    pub provider_uri: String,
    /// The maximum number of concurrent batches.
    #[arg(short = 'w', long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_workers: u64,
}

/// Flags of `export_blocks_and_transactions`.
#[derive(Debug, Args)]
pub struct BlocksArgs {
    /// Start block
    #[arg(short = 's', long, default_value_t = 0)]
    pub start_block: u64,
    /// End block
    #[arg(short = 'e', long)]
    pub end_block: u64,
    /// The number of blocks to export at a time.
    #[arg(short = 'b', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// Provider, workers and retry flags shared by the commands that talk to a node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The output file for blocks. If not provided blocks will not be exported. Use "-" for stdout
    #[arg(long)]
    pub blocks_output: Option<String>,
    /// The output file for transactions. If not provided transactions will not be exported. Use "-" for stdout
    #[arg(long)]
    pub transactions_output: Option<String>,
    /// The chain network to connect to (accepted for compatibility).
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// Flags of `export_receipts_and_logs`.
#[derive(Debug, Args)]
pub struct ReceiptsArgs {
    /// The number of receipts to export at a time.
    #[arg(short = 'b', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// The file containing transaction hashes, one per line.
    #[arg(short = 't', long)]
    pub transaction_hashes: String,
    /// Provider, workers and retry flags shared by the commands that talk to a node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The output file for receipts. If not provided receipts will not be exported. Use "-" for stdout
    #[arg(long)]
    pub receipts_output: Option<String>,
    /// The output file for receipt logs. If not provided receipt logs will not be exported. Use "-" for stdout
    #[arg(long)]
    pub logs_output: Option<String>,
    /// The chain network to connect to (accepted for compatibility).
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// Flags of `extract_token_transfers`.
#[derive(Debug, Args)]
pub struct ExtractTransfersArgs {
    /// The CSV file containing receipt logs (JSON lines when it ends in .json).
    #[arg(short = 'l', long)]
    pub logs: String,
    /// The number of logs to process at a time (accepted for compatibility).
    #[arg(short = 'b', long, default_value_t = 100)]
    pub batch_size: u64,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// The maximum number of workers (accepted for compatibility).
    #[arg(short = 'w', long, default_value_t = 5)]
    pub max_workers: u64,
    /// Whether to convert values to strings.
    #[arg(long)]
    pub values_as_strings: bool,
}

/// Flags of `export_token_transfers`.
#[derive(Debug, Args)]
pub struct ExportTransfersArgs {
    /// Start block
    #[arg(short = 's', long, default_value_t = 0)]
    pub start_block: u64,
    /// End block
    #[arg(short = 'e', long)]
    pub end_block: u64,
    /// The number of blocks to filter at a time.
    #[arg(short = 'b', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// Provider, workers and retry flags shared by the commands that talk to a node.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The list of token addresses to filter by (repeatable).
    #[arg(short = 't', long)]
    pub tokens: Vec<String>,
}

/// Flags of `extract_csv_column`.
#[derive(Debug, Args)]
pub struct ExtractCsvColumnArgs {
    /// The input file. If not specified stdin is used.
    #[arg(short = 'i', long, default_value = "-")]
    pub input: String,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// The csv column name to extract.
    #[arg(short = 'c', long)]
    pub column: String,
}

/// Flags of `extract_field`.
#[derive(Debug, Args)]
pub struct ExtractFieldArgs {
    /// The input file. If not specified stdin is used.
    #[arg(short = 'i', long, default_value = "-")]
    pub input: String,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// The field name to extract.
    #[arg(short = 'f', long)]
    pub field: String,
}

/// How the commands reach their providers: the retry policy, and whether answers are
/// verified (`--no-verify` turns it off).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connect {
    /// Attempts per provider and the back-off between rounds.
    pub(crate) retry: RetryPolicy,
    /// Whether answers about blocks are verified before they are written.
    pub(crate) verify: bool,
}

impl Connect {
    /// A client for `providers` (one URI or a comma-separated list).
    pub(crate) fn client(&self, providers: &str) -> Result<RpcClient> {
        let client = RpcClient::new(providers, self.retry)?;
        Ok(client.with_verifier(self.verify.then(Verifier::default)))
    }

    /// A client for these URIs, asked in this order.
    pub(crate) fn client_for(&self, uris: &[String]) -> Result<RpcClient> {
        let client = RpcClient::from_uris(uris, self.retry)?;
        Ok(client.with_verifier(self.verify.then(Verifier::default)))
    }
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let ui = Ui { quiet: cli.quiet };
    let net = Connect {
        retry: RetryPolicy {
            max_attempts: cli.max_attempts,
            base_delay: Duration::from_millis(cli.retry_delay_ms),
        },
        verify: !cli.no_verify,
    };
    match cli.command {
        Command::ExportBlocksAndTransactions(a) => {
            let client = net.client(&a.node.provider_uri)?;
            let job = BlocksJob {
                start_block: a.start_block,
                end_block: a.end_block,
                batch_size: usize_of(a.batch_size),
                max_workers: usize_of(a.node.max_workers),
                blocks_output: a.blocks_output,
                transactions_output: a.transactions_output,
            };
            export_blocks_and_transactions(&client, &job, ui)
                .await
                .map(drop)
        }
        Command::ExportReceiptsAndLogs(a) => {
            let client = net.client(&a.node.provider_uri)?;
            let job = ReceiptsJob {
                transaction_hashes: a.transaction_hashes,
                batch_size: usize_of(a.batch_size),
                max_workers: usize_of(a.node.max_workers),
                receipts_output: a.receipts_output,
                logs_output: a.logs_output,
            };
            export_receipts_and_logs(&client, &job, ui).await.map(drop)
        }
        Command::ExtractTokenTransfers(a) => {
            let job = ExtractTransfersJob {
                logs: a.logs,
                output: a.output,
                values_as_strings: a.values_as_strings,
            };
            extract_token_transfers(&job, ui).map(drop)
        }
        Command::ExportTokenTransfers(a) => {
            let client = net.client(&a.node.provider_uri)?;
            let job = ExportTransfersJob {
                start_block: a.start_block,
                end_block: a.end_block,
                batch_size: usize_of(a.batch_size),
                max_workers: usize_of(a.node.max_workers),
                output: a.output,
                tokens: a.tokens,
            };
            export_token_transfers(&client, &job, ui).await.map(drop)
        }
        Command::ExtractCsvColumn(a) => {
            extract_csv_column(&a.input, &a.column, &a.output).map(drop)
        }
        Command::ExtractField(a) => extract_field(&a.input, &a.field, &a.output).map(drop),
        Command::Stream(a) => stream::run(a, &net, ui).await,
        Command::ExportTraces(a) => more::traces(a, &net, ui).await,
        Command::ExportGethTraces(a) => more::geth_traces(a, &net, ui).await,
        Command::ExtractGethTraces(a) => more::extract_geth(a, ui),
        Command::ExportContracts(a) => more::contracts(a, &net, ui).await,
        Command::ExtractContracts(a) => more::extract_contracts_cmd(a, ui),
        Command::ExportTokens(a) => more::tokens(a, &net, ui).await,
        Command::ExtractTokens(a) => more::extract_tokens_cmd(a, &net, ui).await,
        Command::GetKeccakHash(a) => more::keccak_hash(a),
        Command::ExportAll(a) => more::all(a, &net, ui).await,
        Command::GetBlockRangeForDate(a) => more::date_range(a, &net).await,
        Command::GetBlockRangeForTimestamps(a) => more::timestamp_range(a, &net).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ethereum_etl_flags_and_defaults_parse() {
        let cli = Cli::try_parse_from([
            "nodewatch-export",
            "export_blocks_and_transactions",
            "-e",
            "10",
            "--blocks-output",
            "b.csv",
        ])
        .unwrap();
        match cli.command {
            Command::ExportBlocksAndTransactions(a) => {
                assert_eq!((a.start_block, a.end_block, a.batch_size), (0, 10, 100));
                assert_eq!(a.node.max_workers, 5);
                assert_eq!(a.node.provider_uri, DEFAULT_PROVIDER);
            }
            other => panic!("wrong command {other:?}"),
        }
        let cli = Cli::try_parse_from([
            "nodewatch-export",
            "export_token_transfers",
            "-e",
            "1",
            "-t",
            "0xa",
            "-t",
            "0xb",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::ExportTokenTransfers(a) if a.tokens == ["0xa", "0xb"] && a.output == "-")
        );
    }

    #[test]
    fn no_verify_is_accepted_by_every_command_before_or_after_it() {
        for args in [
            vec!["x", "--no-verify", "export_receipts_and_logs", "-t", "h"],
            vec!["x", "export_token_transfers", "-e", "1", "--no-verify"],
            vec!["x", "stream", "--no-verify", "-p", "http://a:1,http://b:2"],
        ] {
            let cli = Cli::try_parse_from(&args).unwrap();
            assert!(cli.no_verify, "{args:?}");
        }
        let cli = Cli::try_parse_from(["x", "export_all", "-s", "0", "-e", "1"]).unwrap();
        assert!(!cli.no_verify, "verification is on by default");
    }

    #[test]
    fn unknown_flags_and_bad_numbers_are_usage_errors() {
        for args in [
            vec!["x", "export_blocks_and_transactions", "-e", "1", "--bogus"],
            vec!["x", "export_blocks_and_transactions", "-e", "-1"],
            vec!["x", "export_blocks_and_transactions", "-e", "1", "-w", "0"],
            vec!["x", "extract_field", "-i", "a"],
        ] {
            let err = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
