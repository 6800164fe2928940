//! Fetching one round of `stream`: the blocks (with transactions) of blocks `lo..=hi` and,
//! when an entity needs them, their receipts, traces (`trace_block`), the contracts those
//! traces create and the tokens among the contracts, batched and pipelined by the same code
//! as the export jobs (`export_traces`, `extract_contracts`, `extract_tokens`).

use crate::error::Result;
use crate::mappers::blocks::MappedBlock;
use crate::mappers::receipts::MappedReceipt;
use crate::mappers::traces::{truthy, Trace};
use crate::pipeline::run_ordered;
use crate::pyvalue::PyValue;
use crate::round::{Entity, Round};
use crate::rpc::RpcClient;

use super::super::blocks::fetch_blocks;
use super::super::contracts::contract_of_trace;
use super::super::receipts::fetch_receipts;
use super::super::tokens::{lookup_tokens, TokenRef};
use super::super::traces::fetch_traces;
use super::super::{block_batches, chunked};
use super::StreamJob;

/// Fetches what `job.entity_types` need for blocks `lo..=hi`.
pub(super) async fn fetch_round(
    client: &RpcClient,
    job: &StreamJob,
    lo: u64,
    hi: u64,
) -> Result<Round> {
    let wants = |e: Entity| job.entity_types.contains(&e);
    let need_receipts =
        wants(Entity::Transaction) || wants(Entity::Log) || wants(Entity::TokenTransfer);
    let mut blocks: Vec<MappedBlock> = Vec::new();
    run_ordered(
        block_batches(lo, hi, job.batch_size),
        job.max_workers,
        |(a, b)| {
            let client = client.clone();
            async move { fetch_blocks(&client, a, b, need_receipts).await }
        },
        |batch: Vec<MappedBlock>| {
            blocks.extend(batch);
            Ok(())
        },
    )
    .await?;

    let mut receipts: Vec<MappedReceipt> = Vec::new();
    if need_receipts {
        let hashes = blocks.iter().flat_map(|b| b.transactions.iter()).map(|tx| {
            Ok(tx
                .first()
                .and_then(PyValue::as_str)
                .unwrap_or_default()
                .to_owned())
        });
        run_ordered(
            chunked(hashes, job.batch_size),
            job.max_workers,
            |batch| {
                let client = client.clone();
                async move { fetch_receipts(&client, batch?).await }
            },
            |batch: Vec<MappedReceipt>| {
                receipts.extend(batch);
                Ok(())
            },
        )
        .await?;
    }
    let need_contracts = wants(Entity::Contract) || wants(Entity::Token);
    let traces = if wants(Entity::Trace) || need_contracts {
        fetch_round_traces(client, job, lo, hi).await?
    } else {
        Vec::new()
    };
    let contracts = if need_contracts {
        contracts_of(&traces)?
    } else {
        Vec::new()
    };
    let mut tokens: Vec<Vec<PyValue>> = Vec::new();
    if wants(Entity::Token) {
        fetch_tokens_of(client, &contracts, job.max_workers, &mut tokens).await?;
    }
    Ok(Round {
        lo,
        hi,
        blocks,
        receipts,
        traces,
        contracts,
        tokens,
    })
}

/// `ExportTracesJob` (without genesis or DAO-fork traces): the traces of each block.
async fn fetch_round_traces(
    client: &RpcClient,
    job: &StreamJob,
    lo: u64,
    hi: u64,
) -> Result<Vec<Vec<Trace>>> {
    let mut traces = Vec::new();
    run_ordered(
        block_batches(lo, hi, job.batch_size),
        job.max_workers,
        |(a, b)| {
            let client = client.clone();
            async move { fetch_traces(&client, a, b, (false, false)).await }
        },
        |batch: Vec<Vec<Trace>>| {
            traces.extend(batch);
            Ok(())
        },
    )
    .await?;
    Ok(traces)
}

/// `ExtractContractsJob`: the contract rows of the successful `create` traces, in trace order.
fn contracts_of(traces: &[Vec<Trace>]) -> Result<Vec<Vec<PyValue>>> {
    let mut contracts = Vec::new();
    // Only `create` traces can qualify: skip copying the others.
    let creates = traces
        .iter()
        .flatten()
        .filter(|t| t.trace_type.as_str() == Some("create"));
    for trace in creates {
        contracts.extend(contract_of_trace(&trace.to_dict())?);
    }
    Ok(contracts)
}

/// `ExtractTokensJob`: the tokens of the contracts flagged ERC-20 or ERC-721, in contract order.
async fn fetch_tokens_of(
    client: &RpcClient,
    contracts: &[Vec<PyValue>],
    max_workers: usize,
    tokens: &mut Vec<Vec<PyValue>>,
) -> Result<()> {
    // CONTRACT_FIELDS: address, bytecode, function_sighashes, is_erc20, is_erc721, block_number.
    let refs = contracts
        .iter()
        .filter(|c| truthy(&c[3]) || truthy(&c[4]))
        .map(|c| {
            Ok(TokenRef {
                address: c[0].clone(),
                block_number: c[5].clone(),
            })
        });
    lookup_tokens(client, refs, max_workers, |rows| {
        tokens.extend(rows);
        Ok(())
    })
    .await
}
