//! `export_tokens` (token addresses from a file) and `extract_tokens` (the
//! ERC-20/ERC-721 contracts of a contracts file): the seven `eth_call`s
//! ethereum-etl may make per token are sent at once, for several tokens per
//! JSON-RPC batch and many batches in flight, and its fallback chain is then
//! applied to the answers ([`crate::mappers::tokens`]). A reverted call, a
//! JSON-RPC error or undecodable data is an empty field, never a failure.

use crate::error::{ExportError, Result};
use crate::input;
use crate::mappers::tokens::{is_address, token_row, TokenAnswers, TOKEN_CALLS, TOKEN_FIELDS};
use crate::mappers::traces::truthy;
use crate::pipeline::{finish_one, run_ordered, write_ordered, Batch};
use crate::progress::{Progress, Ui};
use crate::pyfmt::py_str;
use crate::pyvalue::PyValue;
use crate::rpc::{Call, Failure, RpcClient};
use crate::sink::{ItemWriter, SharedStdout};

use super::chunked;
use super::contracts::address_lines;

/// Tokens per JSON-RPC batch (7 calls each).
const TOKENS_PER_BATCH: usize = 10;

/// One token to look up: the address as given and the block to report.
#[derive(Debug, Clone)]
pub struct TokenRef {
    /// The address as written in the input (exported unchanged).
    pub address: PyValue,
    /// The `block_number` column (`None` for `export_tokens`).
    pub block_number: PyValue,
}

/// Parameters shared by `export_tokens` and `extract_tokens`.
#[derive(Debug, Clone)]
pub struct TokensJob {
    /// Input file: token addresses, or contracts (JSON lines when it ends in `.json`).
    pub input: String,
    /// Output path.
    pub output: String,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Write `decimals` and `total_supply` as strings (`extract_tokens --values-as-strings`).
    pub values_as_strings: bool,
}

fn checked(token: TokenRef) -> Result<TokenRef> {
    match &token.address {
        PyValue::Str(s) if is_address(s) => Ok(token),
        other => Err(ExportError::Usage(format!(
            "Unknown format {}, attempted to normalize to a 20-byte hex address",
            crate::pyfmt::py_repr(other)
        ))),
    }
}

/// `0x` + 40 lower-case hex digits, for the node.
fn normalized(address: &str) -> String {
    let hex = address.get(address.len() - 40..).unwrap_or(address);
    format!("0x{}", hex.to_lowercase())
}

fn decode_hex_answer(v: &PyValue) -> Option<Vec<u8>> {
    let s = v.as_str()?.strip_prefix("0x")?;
    let s = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

async fn fetch_tokens(client: &RpcClient, tokens: Vec<TokenRef>) -> Result<Vec<Vec<PyValue>>> {
    let mut calls = Vec::with_capacity(tokens.len() * TOKEN_CALLS.len());
    for t in &tokens {
        let to = normalized(&py_str(&t.address));
        for (name, data) in TOKEN_CALLS {
            let tx = PyValue::dict([("to", PyValue::from(to.as_str())), ("data", data.into())]);
            calls.push(Call {
                method: "eth_call",
                params: PyValue::List(vec![tx, "latest".into()]),
                label: format!("{name} of token {to}"),
            });
        }
    }
    let what = format!(
        "{} tokens from {}",
        tokens.len(),
        py_str(&tokens[0].address)
    );
    let answers = client
        .batch_items(&what, &calls, |items| {
            Ok::<_, Failure>(
                items
                    .iter()
                    .map(|item| item.as_ref().ok().and_then(decode_hex_answer))
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    Ok(tokens
        .into_iter()
        .zip(answers.chunks(TOKEN_CALLS.len()))
        .map(|(t, a)| {
            let answers: TokenAnswers = std::array::from_fn(|i| a[i].clone());
            token_row(t.address, &answers, t.block_number)
        })
        .collect())
}

/// Looks up `tokens` ([`TOKENS_PER_BATCH`] per JSON-RPC batch, `max_workers`
/// batches in flight) and hands their rows to `consume` in input order; also the
/// tokens of `stream`.
pub(crate) async fn lookup_tokens<I, C>(
    client: &RpcClient,
    tokens: I,
    max_workers: usize,
    consume: C,
) -> Result<()>
where
    I: Iterator<Item = Result<TokenRef>>,
    C: FnMut(Vec<Vec<PyValue>>) -> Result<()>,
{
    run_ordered(
        chunked(tokens.map(|t| t.and_then(checked)), TOKENS_PER_BATCH),
        max_workers,
        |batch| {
            let client = client.clone();
            async move { fetch_tokens(&client, batch?).await }
        },
        consume,
    )
    .await
}

/// `--values-as-strings`: `decimals` and `total_supply` (columns 3 and 4 of
/// [`TOKEN_FIELDS`]) as strings when they are numbers.
fn decimals_and_supply_as_strings(row: &mut [PyValue]) {
    for cell in &mut row[3..5] {
        if let PyValue::Int(_) | PyValue::BigInt(_) = cell {
            *cell = PyValue::Str(py_str(cell));
        }
    }
}

/// Looks up `tokens` and writes them in input order; returns the number written.
async fn run_tokens<I>(client: &RpcClient, tokens: I, job: &TokensJob, ui: Ui) -> Result<u64>
where
    I: Iterator<Item = Result<TokenRef>>,
{
    let stdout = SharedStdout::default();
    let mut out = ItemWriter::open(&job.output, TOKEN_FIELDS, &stdout)?;
    let progress = Progress::new(ui, None, "tokens");
    let strings = job.values_as_strings;
    write_ordered(
        chunked(tokens.map(|t| t.and_then(checked)), TOKENS_PER_BATCH),
        job.max_workers,
        |batch| {
            let client = client.clone();
            async move {
                let mut rows = fetch_tokens(&client, batch?).await?;
                if strings {
                    rows.iter_mut()
                        .for_each(|row| decimals_and_supply_as_strings(row));
                }
                Ok(Batch::rows(rows))
            }
        },
        &mut [Some(&mut out)],
        &progress,
    )
    .await?;
    finish_one(&progress, out, &ui, "token")
}

/// Runs `export_tokens` on a file of token addresses, one per line.
pub async fn export_tokens(client: &RpcClient, job: &TokensJob, ui: Ui) -> Result<u64> {
    let tokens = address_lines(&job.input)?.map(|line| {
        line.map(|a| TokenRef {
            address: a.into(),
            block_number: PyValue::None,
        })
    });
    run_tokens(client, tokens, job, ui).await
}

/// Runs `extract_tokens` on a contracts file: every contract whose `is_erc20`
/// or `is_erc721` is true in Python's sense (in a CSV file any non-empty cell,
/// "False" included, as in ethereum-etl).
pub async fn extract_tokens(client: &RpcClient, job: &TokensJob, ui: Ui) -> Result<u64> {
    let items: Box<dyn Iterator<Item = Result<PyValue>> + Send> = if job.input.ends_with(".json") {
        Box::new(input::json_lines(&job.input)?)
    } else {
        Box::new(input::csv_dicts(&job.input)?)
    };
    let source = job.input.clone();
    let tokens = items.enumerate().filter_map(move |(i, item)| {
        let contract = match item {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let flag = |k: &str| contract.get(k).is_some_and(truthy);
        if !(flag("is_erc20") || flag("is_erc721")) {
            return None;
        }
        let field = |k: &str| {
            contract.get(k).cloned().ok_or_else(|| {
                ExportError::Data(format!("contract {} of {source} has no {k:?}", i + 1))
            })
        };
        Some(field("address").and_then(|address| {
            Ok(TokenRef {
                address,
                block_number: field("block_number")?,
            })
        }))
    });
    run_tokens(client, tokens, job, ui).await
}
