//! Flags and dispatch of the trace, contract and token commands and of
//! `get_keccak_hash` and the `get_block_range_for_*` commands, with ethereum-etl 2.4.2's names, short flags and
//! defaults. `-ca` (`export_contracts`) is a two-letter short flag that clap
//! cannot declare; [`rewrite_args`] turns it into `--contract-addresses`.

use std::ffi::OsString;

use clap::Args;

use super::{usize_of, Connect, NodeArgs};
use crate::error::{ExportError, Result};
use crate::jobs::block_range::{block_range_for_timestamps, day_timestamps, write_range};
use crate::jobs::contracts::{export_contracts, extract_contracts, ContractsJob};
use crate::jobs::export_all::{export_all, ExportAllJob};
use crate::jobs::tokens::{export_tokens, extract_tokens, TokensJob};
use crate::jobs::traces::{export_geth_traces, export_traces, extract_geth_traces, TracesJob};
use crate::mappers::contracts::keccak256;
use crate::progress::Ui;
use crate::sink::{Output, SharedStdout};

/// Flags of `export_traces`.
#[derive(Debug, Args)]
pub struct TracesArgs {
    /// Start block
    #[arg(short = 's', long, default_value_t = 0)]
    pub start_block: u64,
    /// End block
    #[arg(short = 'e', long)]
    pub end_block: u64,
    /// The number of blocks per JSON-RPC batch (one trace_block call each).
    #[arg(short = 'b', long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// Provider and workers.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Whether to include genesis traces
    #[arg(long, overrides_with = "no_genesis_traces")]
    pub genesis_traces: bool,
    /// Do not include genesis traces (the default)
    #[arg(long, overrides_with = "genesis_traces")]
    pub no_genesis_traces: bool,
    /// Whether to include daofork traces
    #[arg(long, overrides_with = "no_daofork_traces")]
    pub daofork_traces: bool,
    /// Do not include daofork traces (the default)
    #[arg(long, overrides_with = "daofork_traces")]
    pub no_daofork_traces: bool,
    /// IPC or HTTP request timeout, in seconds.
    #[arg(short = 't', long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// The chain network to connect to.
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// Flags of `export_geth_traces`.
#[derive(Debug, Args)]
pub struct GethTracesArgs {
    /// Start block
    #[arg(short = 's', long, default_value_t = 0)]
    pub start_block: u64,
    /// End block
    #[arg(short = 'e', long)]
    pub end_block: u64,
    /// The number of blocks to process at a time.
    #[arg(short = 'b', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// The output file for geth traces. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// Provider and workers.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Flags of `extract_geth_traces`.
#[derive(Debug, Args)]
pub struct ExtractGethTracesArgs {
    /// The JSON file containing geth traces.
    #[arg(short = 'i', long)]
    pub input: String,
    /// The number of blocks to filter at a time (accepted for compatibility).
    #[arg(short = 'b', long, default_value_t = 100)]
    pub batch_size: u64,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// The maximum number of workers (accepted for compatibility).
    #[arg(short = 'w', long, default_value_t = 5)]
    pub max_workers: u64,
}

/// Flags of `export_contracts`.
#[derive(Debug, Args)]
pub struct ContractsArgs {
    /// The number of contracts per JSON-RPC batch.
    #[arg(short = 'b', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// The file containing contract addresses, one per line (short flag -ca).
    #[arg(long)]
    pub contract_addresses: String,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// Provider and workers.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The chain network to connect to (accepted for compatibility).
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// Flags of `extract_contracts`.
#[derive(Debug, Args)]
pub struct ExtractContractsArgs {
    /// The CSV file containing traces (JSON lines when it ends in .json).
    #[arg(short = 't', long)]
    pub traces: String,
    /// The number of traces to process at a time (accepted for compatibility).
    #[arg(short = 'b', long, default_value_t = 100)]
    pub batch_size: u64,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// The maximum number of workers (accepted for compatibility).
    #[arg(short = 'w', long, default_value_t = 5)]
    pub max_workers: u64,
}

/// Flags of `export_tokens`.
#[derive(Debug, Args)]
pub struct TokensArgs {
    /// The file containing token addresses, one per line.
    #[arg(short = 't', long)]
    pub token_addresses: String,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// Provider and workers.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The chain network to connect to (accepted for compatibility).
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// Flags of `extract_tokens`.
#[derive(Debug, Args)]
pub struct ExtractTokensArgs {
    /// The file containing contracts (JSON lines when it ends in .json, else CSV).
    #[arg(short = 'c', long)]
    pub contracts: String,
    /// Provider and workers.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// Whether to convert values to strings.
    #[arg(long)]
    pub values_as_strings: bool,
}

/// Flags of `get_keccak_hash`.
#[derive(Debug, Args)]
pub struct KeccakArgs {
    /// String to hash, e.g. Transfer(address,address,uint256)
    #[arg(short = 'i', long, default_value = "Transfer(address,address,uint256)")]
    pub input_string: String,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
}

/// Flags of `export_all`.
#[derive(Debug, Args)]
pub struct ExportAllArgs {
    /// Start block/ISO date/Unix time
    #[arg(short = 's', long)]
    pub start: String,
    /// End block/ISO date/Unix time
    #[arg(short = 'e', long)]
    pub end: String,
    /// The number of blocks to export in partition.
    #[arg(short = 'b', long, default_value_t = 10000, value_parser = clap::value_parser!(u64).range(1..))]
    pub partition_batch_size: u64,
    /// Provider and workers.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Output directory, partitioned in Hive style.
    #[arg(short = 'o', long, default_value = "output")]
    pub output_dir: String,
    /// The number of requests in JSON RPC batches.
    #[arg(short = 'B', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub export_batch_size: u64,
    /// The chain network to connect to (accepted for compatibility).
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// Flags of `get_block_range_for_date`.
#[derive(Debug, Args)]
pub struct DateRangeArgs {
    /// The URI of the JSON-RPC provider, e.g. http://localhost:8545
    #[arg(short = 'p', long, default_value = super::DEFAULT_PROVIDER)]
    pub provider_uri: String,
    /// The date e.g. 2018-01-01.
    #[arg(short = 'd', long)]
    pub date: String,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// The chain network to connect to (accepted for compatibility).
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// Flags of `get_block_range_for_timestamps`.
#[derive(Debug, Args)]
pub struct TimestampRangeArgs {
    /// The URI of the JSON-RPC provider, e.g. http://localhost:8545
    #[arg(short = 'p', long, default_value = super::DEFAULT_PROVIDER)]
    pub provider_uri: String,
    /// Start unix timestamp, in seconds.
    #[arg(short = 's', long, allow_negative_numbers = true)]
    pub start_timestamp: i64,
    /// End unix timestamp, in seconds.
    #[arg(short = 'e', long, allow_negative_numbers = true)]
    pub end_timestamp: i64,
    /// The output file. If not specified stdout is used.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// The chain network to connect to (accepted for compatibility).
    #[arg(short = 'c', long, default_value = "ethereum")]
    pub chain: String,
}

/// In `export_contracts`, ethereum-etl's `-ca` becomes `--contract-addresses` (`-ca=x` too).
pub fn rewrite_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    if !args.iter().any(|a| a == "export_contracts") {
        return args;
    }
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-ca") => OsString::from("--contract-addresses"),
            Some(s) if s.starts_with("-ca=") => {
                OsString::from(format!("--contract-addresses={}", &s[4..]))
            }
            _ => a,
        })
        .collect()
}

pub(super) async fn traces(a: TracesArgs, net: &Connect, ui: Ui) -> Result<()> {
    if a.chain == "classic" && a.daofork_traces {
        return Err(ExportError::Usage(
            "Classic chain does not include daofork traces. Disable daofork traces with \
             --no-daofork-traces option."
                .into(),
        ));
    }
    let client = net
        .client(&a.node.provider_uri)?
        .with_timeout(std::time::Duration::from_secs(a.timeout));
    let job = TracesJob {
        start_block: a.start_block,
        end_block: a.end_block,
        batch_size: usize_of(a.batch_size),
        max_workers: usize_of(a.node.max_workers),
        output: a.output,
        genesis_traces: a.genesis_traces,
        daofork_traces: a.daofork_traces,
    };
    export_traces(&client, &job, ui).await.map(drop)
}

pub(super) async fn geth_traces(a: GethTracesArgs, net: &Connect, ui: Ui) -> Result<()> {
    let client = net.client(&a.node.provider_uri)?;
    let job = TracesJob {
        start_block: a.start_block,
        end_block: a.end_block,
        batch_size: usize_of(a.batch_size),
        max_workers: usize_of(a.node.max_workers),
        output: a.output,
        genesis_traces: false,
        daofork_traces: false,
    };
    export_geth_traces(&client, &job, ui).await.map(drop)
}

pub(super) fn extract_geth(a: ExtractGethTracesArgs, ui: Ui) -> Result<()> {
    extract_geth_traces(&a.input, &a.output, ui).map(drop)
}

pub(super) async fn contracts(a: ContractsArgs, net: &Connect, ui: Ui) -> Result<()> {
    let client = net.client(&a.node.provider_uri)?;
    let job = ContractsJob {
        contract_addresses: a.contract_addresses,
        batch_size: usize_of(a.batch_size),
        max_workers: usize_of(a.node.max_workers),
        output: a.output,
    };
    export_contracts(&client, &job, ui).await.map(drop)
}

pub(super) fn extract_contracts_cmd(a: ExtractContractsArgs, ui: Ui) -> Result<()> {
    extract_contracts(&a.traces, &a.output, ui).map(drop)
}

pub(super) async fn tokens(a: TokensArgs, net: &Connect, ui: Ui) -> Result<()> {
    let client = net.client(&a.node.provider_uri)?;
    let job = TokensJob {
        input: a.token_addresses,
        output: a.output,
        max_workers: usize_of(a.node.max_workers),
        values_as_strings: false,
    };
    export_tokens(&client, &job, ui).await.map(drop)
}

pub(super) async fn extract_tokens_cmd(a: ExtractTokensArgs, net: &Connect, ui: Ui) -> Result<()> {
    let client = net.client(&a.node.provider_uri)?;
    let job = TokensJob {
        input: a.contracts,
        output: a.output,
        max_workers: usize_of(a.node.max_workers),
        values_as_strings: a.values_as_strings,
    };
    extract_tokens(&client, &job, ui).await.map(drop)
}

pub(super) async fn all(a: ExportAllArgs, net: &Connect, ui: Ui) -> Result<()> {
    let client = net.client(&a.node.provider_uri)?;
    let job = ExportAllJob {
        start: a.start,
        end: a.end,
        partition_batch_size: a.partition_batch_size,
        output_dir: a.output_dir,
        max_workers: usize_of(a.node.max_workers),
        export_batch_size: usize_of(a.export_batch_size),
    };
    export_all(&client, &job, ui).await
}

pub(super) async fn date_range(a: DateRangeArgs, net: &Connect) -> Result<()> {
    let (start, end) = day_timestamps(&a.date)?;
    let client = net.client(&a.provider_uri)?;
    write_range(
        &a.output,
        block_range_for_timestamps(&client, start, end).await?,
    )
}

pub(super) async fn timestamp_range(a: TimestampRangeArgs, net: &Connect) -> Result<()> {
    let client = net.client(&a.provider_uri)?;
    let (start, end) = (a.start_timestamp.into(), a.end_timestamp.into());
    write_range(
        &a.output,
        block_range_for_timestamps(&client, start, end).await?,
    )
}

/// `get_keccak_hash`: `0x` + keccak256 of the UTF-8 string, and a newline.
pub(super) fn keccak_hash(a: KeccakArgs) -> Result<()> {
    let hash = keccak256(a.input_string.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = Output::create(&a.output, &SharedStdout::default())?;
    out.write_all(format!("0x{hex}\n").as_bytes())?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_letter_short_flag_is_rewritten() {
        let got = rewrite_args(["x", "export_contracts", "-ca", "f", "-ca=g"].map(OsString::from));
        assert_eq!(got[2], "--contract-addresses");
        assert_eq!(got[4], "--contract-addresses=g");
        let other = rewrite_args(["x", "extract_tokens", "-ca"].map(OsString::from));
        assert_eq!(other[2], "-ca", "only export_contracts has -ca");
    }
}
