//! The header of a block answer: every fork's fields read into `alloy_consensus::Header`,
//! hashed, and compared with the hash the answer claims; the verified [`Header`] is what
//! the later checks (receipts, logs) compare against.

use alloy_consensus::Header as ConsensusHeader;
use alloy_primitives::{Bloom, B256, B64};

use crate::hex::{self, need, opt_fixed, opt_u64, BadField};
use crate::rpc::RpcBlock;
use crate::verdict::{BlockRef, Check, Wrong};

/// A verified header: the fields later checks compare against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The block number.
    pub number: u64,
    /// The block hash (recomputed from the fields when the header check ran).
    pub hash: B256,
    /// The parent's hash: chains of verified headers link through it.
    pub parent_hash: B256,
    /// Root of the block's transactions: what a full-transactions answer must build.
    pub transactions_root: B256,
    /// Root of the block's receipts: what `eth_getBlockReceipts` must build.
    pub receipts_root: B256,
    /// Union of the receipts' blooms: the receipts must union to it, and `eth_getLogs`
    /// completeness is judged from it.
    pub logs_bloom: Bloom,
    /// Root of the withdrawals (Shanghai on).
    pub withdrawals_root: Option<B256>,
    /// Base fee per gas (London on): effective gas prices of EIP-1559 transactions use it.
    pub base_fee: Option<u64>,
    /// Gas used by the block: the last receipt's cumulative gas used must equal it.
    pub gas_used: u64,
    /// The block time (seconds since the epoch), for callers judging finality.
    pub timestamp: u64,
}

impl Header {
    /// The block this header is, for verdicts.
    pub fn block_ref(&self) -> BlockRef {
        BlockRef::new(self.number, self.hash)
    }
}

/// Reads the header fields of `b`; with `check`, recomputes the hash and compares it with
/// the claimed one (`Check::HeaderHash`).
pub(crate) fn verify_header(b: &RpcBlock<'_>, check: bool) -> Result<Header, Wrong> {
    let number = need("number", b.number).and_then(|s| hex::u64q("number", s));
    let hash = need("hash", b.hash).and_then(|s| hex::fixed::<32>("hash", s));
    let block = BlockRef {
        number: number.clone().ok(),
        hash: hash.clone().ok(),
    };
    let bad = |e: BadField| Wrong::malformed(block, format!("header {e}"));
    let (number, hash) = (number.map_err(bad)?, hash.map_err(bad)?);
    let full = consensus_header(b).map_err(bad)?;
    if check {
        let computed = full.hash_slow();
        if computed != hash {
            return Err(Wrong::new(
                block,
                Check::HeaderHash,
                format!("fields hash to {computed}, answer claims {hash}"),
            ));
        }
    }
    Ok(Header {
        number,
        hash,
        parent_hash: full.parent_hash,
        transactions_root: full.transactions_root,
        receipts_root: full.receipts_root,
        logs_bloom: full.logs_bloom,
        withdrawals_root: full.withdrawals_root,
        base_fee: full.base_fee_per_gas,
        gas_used: full.gas_used,
        timestamp: full.timestamp,
    })
}

/// Every header field, from Frontier to Prague (and the proposed access-list hash and slot).
fn consensus_header(b: &RpcBlock<'_>) -> Result<ConsensusHeader, BadField> {
    Ok(ConsensusHeader {
        parent_hash: hex::fixed("parentHash", need("parentHash", b.parent_hash)?)?,
        ommers_hash: hex::fixed("sha3Uncles", need("sha3Uncles", b.sha3_uncles)?)?,
        beneficiary: hex::fixed("miner", need("miner", b.miner)?)?.into(),
        state_root: hex::fixed("stateRoot", need("stateRoot", b.state_root)?)?,
        transactions_root: hex::fixed(
            "transactionsRoot",
            need("transactionsRoot", b.transactions_root)?,
        )?,
        receipts_root: hex::fixed("receiptsRoot", need("receiptsRoot", b.receipts_root)?)?,
        logs_bloom: Bloom(hex::fixed("logsBloom", need("logsBloom", b.logs_bloom)?)?),
        difficulty: hex::u256q("difficulty", need("difficulty", b.difficulty)?)?,
        number: hex::u64q("number", need("number", b.number)?)?,
        gas_limit: hex::u64q("gasLimit", need("gasLimit", b.gas_limit)?)?,
        gas_used: hex::u64q("gasUsed", need("gasUsed", b.gas_used)?)?,
        timestamp: hex::u64q("timestamp", need("timestamp", b.timestamp)?)?,
        extra_data: hex::bytes("extraData", need("extraData", b.extra_data)?)?,
        mix_hash: opt_fixed("mixHash", b.mix_hash)?.unwrap_or(B256::ZERO),
        nonce: opt_fixed::<8>("nonce", b.nonce)?.unwrap_or(B64::ZERO),
        base_fee_per_gas: opt_u64("baseFeePerGas", b.base_fee_per_gas)?,
        withdrawals_root: opt_fixed("withdrawalsRoot", b.withdrawals_root)?,
        blob_gas_used: opt_u64("blobGasUsed", b.blob_gas_used)?,
        excess_blob_gas: opt_u64("excessBlobGas", b.excess_blob_gas)?,
        parent_beacon_block_root: opt_fixed("parentBeaconBlockRoot", b.parent_beacon_block_root)?,
        requests_hash: opt_fixed("requestsHash", b.requests_hash)?,
        block_access_list_hash: opt_fixed("blockAccessListHash", b.block_access_list_hash)?,
        slot_number: opt_u64("slotNumber", b.slot_number)?,
    })
}
