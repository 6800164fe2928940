//! Fetching one round of `stream`: the blocks (with transactions) and, when an entity needs
//! them, the receipts of blocks `lo..=hi`, batched and pipelined like the export jobs.

use crate::error::Result;
use crate::mappers::blocks::MappedBlock;
use crate::mappers::receipts::MappedReceipt;
use crate::pipeline::run_ordered;
use crate::pyvalue::PyValue;
use crate::round::{Entity, Round};
use crate::rpc::RpcClient;

use super::super::blocks::fetch_blocks;
use super::super::receipts::fetch_receipts;
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
    Ok(Round {
        lo,
        hi,
        blocks,
        receipts,
    })
}
