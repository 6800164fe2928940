//! Receipts and logs read from answers into owned facts: [`ReceiptFacts`] (the consensus
//! receipt the receipts root covers, plus every other field ethereum-etl reads) and
//! [`LogFacts`]; with the positions each answer claims, for the position checks.

use alloy_consensus::{Eip658Value, Receipt};
use alloy_primitives::{Address, Bloom, Bytes, Log, LogData, B256};

use crate::hex::{self, need, opt_fixed, opt_u128, opt_u64, BadField};
use crate::rpc::{RpcLog, RpcReceipt};

/// What a verified receipt says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptFacts {
    /// The transaction the receipt is for.
    pub transaction_hash: B256,
    /// Its position in the block.
    pub transaction_index: u64,
    /// The EIP-2718 type (0 when the answer leaves `type` out, as old nodes do).
    pub tx_type: u8,
    /// Sender as the receipt states it (compared with the block's transaction when known).
    pub from: Option<Address>,
    /// Recipient as the receipt states it: `Some(None)` for a creation, `None` when the
    /// answer left `to` out (old nodes).
    pub to: Option<Option<Address>>,
    /// Status or post-state root, cumulative gas and logs: what the receipts root covers.
    pub receipt: Receipt<Log>,
    /// The receipt's bloom (recomputed from its logs).
    pub logs_bloom: Bloom,
    /// The block-wide `logIndex` of the first log; the others follow consecutively.
    pub first_log_index: u64,
    /// Gas used by this transaction alone (the cumulative difference).
    pub gas_used: u64,
    /// The price per gas paid, when the answer states it (Byzantium-era nodes may not).
    pub effective_gas_price: Option<u128>,
    /// The contract a creation deployed.
    pub contract_address: Option<Address>,
    /// Blob gas used (type-3 transactions).
    pub blob_gas_used: Option<u64>,
    /// Blob gas price (Cancun on; the same for every receipt of a block).
    pub blob_gas_price: Option<u128>,
    /// L2 fee fields (`l1Fee`, `l1GasUsed`, `l1GasPrice`, `l1FeeScalar`) as stated:
    /// unverifiable here, kept so a single receipt can be compared with the set.
    pub l2_fees: Option<Box<[Option<Box<str>>; 4]>>,
}

impl ReceiptFacts {
    /// `status` (Byzantium on): `None` for a pre-Byzantium post-state-root receipt.
    pub fn status(&self) -> Option<bool> {
        match self.receipt.status {
            Eip658Value::Eip658(ok) => Some(ok),
            Eip658Value::PostState(_) => None,
        }
    }

    /// The logs with their block-wide log indexes.
    pub fn logs(&self) -> impl Iterator<Item = LogFacts<'_>> + '_ {
        let first = self.first_log_index;
        self.receipt
            .logs
            .iter()
            .enumerate()
            .map(move |(j, log)| LogFacts {
                log_index: first + j as u64,
                transaction_index: self.transaction_index,
                transaction_hash: self.transaction_hash,
                log,
            })
    }

    /// Roughly the heap and inline bytes this receipt holds (for byte-bounded caches).
    pub(crate) fn approx_bytes(&self) -> usize {
        let logs: usize = self
            .receipt
            .logs
            .iter()
            .map(|l| std::mem::size_of::<Log>() + l.data.topics().len() * 32 + l.data.data.len())
            .sum();
        std::mem::size_of::<Self>() + logs
    }
}

/// A verified log with its positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogFacts<'a> {
    /// Block-wide log index.
    pub log_index: u64,
    /// The position of its transaction in the block.
    pub transaction_index: u64,
    /// Its transaction.
    pub transaction_hash: B256,
    /// Address, topics and data.
    pub log: &'a Log,
}

/// Where an answer's receipt or log says it lives (each `None` when the answer left it out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Claimed {
    pub(crate) block_hash: Option<B256>,
    pub(crate) block_number: Option<u64>,
    pub(crate) transaction_hash: Option<B256>,
    pub(crate) transaction_index: Option<u64>,
    pub(crate) log_index: Option<u64>,
}

/// A log read from an answer, with what it claims about its place.
pub(crate) struct ReadLog {
    pub(crate) log: Log,
    pub(crate) at: Claimed,
    pub(crate) removed: bool,
}

/// Reads a log: address, topics, data and its claimed positions.
pub(crate) fn read_log(l: &RpcLog<'_>) -> Result<ReadLog, BadField> {
    let address: Address = hex::fixed::<20>("address", need("address", l.address)?)?.into();
    let topics = l
        .topics
        .iter()
        .map(|t| hex::fixed::<32>("topics", t))
        .collect::<Result<Vec<_>, _>>()?;
    let data: Bytes = hex::bytes("data", need("data", l.data)?)?;
    let at = Claimed {
        block_hash: opt_fixed("blockHash", l.block_hash)?,
        block_number: opt_u64("blockNumber", l.block_number)?,
        transaction_hash: opt_fixed("transactionHash", l.transaction_hash)?,
        transaction_index: opt_u64("transactionIndex", l.transaction_index)?,
        log_index: opt_u64("logIndex", l.log_index)?,
    };
    let data = LogData::new(topics, data).ok_or_else(|| BadField {
        field: "topics",
        reason: format!("{} topics, at most 4 allowed", l.topics.len()),
    })?;
    Ok(ReadLog {
        log: Log { address, data },
        at,
        removed: l.removed,
    })
}

/// A receipt read from an answer: its facts (bloom as claimed, gas used as stated, first
/// log index from its first log), its claimed place, and each log's claimed place.
pub(crate) struct ReadReceipt {
    pub(crate) facts: ReceiptFacts,
    pub(crate) at: Claimed,
    pub(crate) log_at: Vec<Claimed>,
}

/// Reads a receipt.
pub(crate) fn read_receipt(r: &RpcReceipt<'_>) -> Result<ReadReceipt, BadField> {
    let status = match (r.status, r.root) {
        (Some(s), _) => Eip658Value::Eip658(hex::u8q("status", s)? == 1),
        (None, Some(root)) => Eip658Value::PostState(hex::fixed("root", root)?),
        (None, None) => return Err(BadField::missing("status")),
    };
    let (logs, log_at) = read_logs(r)?;
    let cumulative = need("cumulativeGasUsed", r.cumulative_gas_used)?;
    let cumulative_gas_used = hex::u64q("cumulativeGasUsed", cumulative)?;
    let at = receipt_at(r)?;
    let facts = ReceiptFacts {
        transaction_hash: at.transaction_hash.unwrap_or_default(),
        transaction_index: at.transaction_index.unwrap_or_default(),
        tx_type: r
            .tx_type
            .map(|t| hex::u8q("type", t))
            .transpose()?
            .unwrap_or(0),
        from: opt_fixed::<20>("from", r.from)?.map(Address::from),
        to: r
            .to
            .map(|to| opt_fixed::<20>("to", to))
            .transpose()?
            .map(|to| to.map(Address::from)),
        receipt: Receipt {
            status,
            cumulative_gas_used,
            logs,
        },
        logs_bloom: Bloom(hex::fixed("logsBloom", need("logsBloom", r.logs_bloom)?)?),
        first_log_index: log_at.first().and_then(|a| a.log_index).unwrap_or(0),
        gas_used: hex::u64q("gasUsed", need("gasUsed", r.gas_used)?)?,
        effective_gas_price: opt_u128("effectiveGasPrice", r.effective_gas_price)?,
        contract_address: opt_fixed::<20>("contractAddress", r.contract_address)?
            .map(Address::from),
        blob_gas_used: opt_u64("blobGasUsed", r.blob_gas_used)?,
        blob_gas_price: opt_u128("blobGasPrice", r.blob_gas_price)?,
        l2_fees: l2_fees(r),
    };
    Ok(ReadReceipt { facts, at, log_at })
}

/// A receipt's logs and the place each claims.
fn read_logs(r: &RpcReceipt<'_>) -> Result<(Vec<Log>, Vec<Claimed>), BadField> {
    let mut logs = Vec::with_capacity(r.logs.len());
    let mut log_at = Vec::with_capacity(r.logs.len());
    for (j, l) in r.logs.iter().enumerate() {
        let read = read_log(l).map_err(|e| BadField {
            field: e.field,
            reason: format!("log {j}: {}", e.reason),
        })?;
        logs.push(read.log);
        log_at.push(read.at);
    }
    Ok((logs, log_at))
}

/// Where a receipt claims to live (its transaction hash and index are required).
fn receipt_at(r: &RpcReceipt<'_>) -> Result<Claimed, BadField> {
    let hash = need("transactionHash", r.transaction_hash)?;
    let index = need("transactionIndex", r.transaction_index)?;
    Ok(Claimed {
        block_hash: opt_fixed("blockHash", r.block_hash)?,
        block_number: opt_u64("blockNumber", r.block_number)?,
        transaction_hash: Some(hex::fixed("transactionHash", hash)?),
        transaction_index: Some(hex::u64q("transactionIndex", index)?),
        log_index: None,
    })
}

/// The L2 fee fields, if any is present.
fn l2_fees(r: &RpcReceipt<'_>) -> Option<Box<[Option<Box<str>>; 4]>> {
    let fields = [r.l1_fee, r.l1_gas_used, r.l1_gas_price, r.l1_fee_scalar];
    if fields.iter().all(Option::is_none) {
        return None;
    }
    Some(Box::new(fields.map(|f| f.map(|raw| Box::from(raw.get())))))
}
