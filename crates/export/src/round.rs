//! What one sync round of `stream` holds: the blocks (with transactions), receipts, traces,
//! contracts and tokens of a block range, fetched once (by `jobs::stream`); every output then
//! reads the rows it needs from the [`Round`]: plain export rows for directory output,
//! enriched items (ethereum-etl's `enrich_*` joins plus `item_id` / `item_timestamp`) for the
//! console and PostgreSQL.

use crate::error::ExportError;
use crate::error::Result;
use crate::mappers::blocks::MappedBlock;
use crate::mappers::enrich::{
    add_id_and_timestamp, block_item, contract_item, find_block, find_receipt, log_item,
    token_item, token_transfer_item, trace_item, transaction_item,
};
use crate::mappers::receipts::{MappedReceipt, LOG_FIELDS};
use crate::mappers::token_transfers::{extract_transfer, LogView};
use crate::mappers::traces::Trace;
use crate::pyfmt::json_dumps;
use crate::pyvalue::PyValue;

/// The entity types `stream` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// Blocks.
    Block,
    /// Transactions joined with their receipts.
    Transaction,
    /// Receipt logs.
    Log,
    /// ERC-20/721 transfers.
    TokenTransfer,
    /// Traces (`trace_block`).
    Trace,
    /// Contracts created by the round's successful `create` traces.
    Contract,
    /// The ERC-20/721 contracts among them, with name, symbol, decimals, total supply.
    Token,
}

/// ethereum-etl's `EntityType.ALL_FOR_STREAMING`, in its order.
pub const STREAM_ENTITIES: [(&str, Entity); 7] = [
    ("block", Entity::Block),
    ("transaction", Entity::Transaction),
    ("log", Entity::Log),
    ("token_transfer", Entity::TokenTransfer),
    ("trace", Entity::Trace),
    ("contract", Entity::Contract),
    ("token", Entity::Token),
];

/// Parses `-e block,transaction,...` like ethereum-etl (names are trimmed).
pub fn parse_entity_types(list: &str) -> Result<Vec<Entity>> {
    list.split(',')
        .map(|e| {
            let name = e.trim();
            STREAM_ENTITIES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, entity)| *entity)
                .ok_or_else(|| {
                    let all: Vec<&str> = STREAM_ENTITIES.iter().map(|(n, _)| *n).collect();
                    ExportError::Usage(format!(
                        "{name} is not an available entity type. Supply a comma separated list of types from {}",
                        all.join(",")
                    ))
                })
        })
        .collect()
}

/// An enriched item: keys in ethereum-etl's order, starting with `type`.
pub type Item = Vec<(String, PyValue)>;

/// The data of blocks `lo..=hi`.
#[derive(Debug, Clone)]
pub struct Round {
    /// First block of the round.
    pub lo: u64,
    /// Last block of the round (the new last synced block once written).
    pub hi: u64,
    /// Blocks in order, with their transactions when any entity needs them.
    pub blocks: Vec<MappedBlock>,
    /// Receipts in transaction order; empty when no entity needs them.
    pub receipts: Vec<MappedReceipt>,
    /// The traces of each block `lo..=hi`, in `trace_index` order; empty when no entity
    /// needs them.
    pub traces: Vec<Vec<Trace>>,
    /// Contract rows (`CONTRACT_FIELDS`) of the successful `create` traces, in trace order.
    pub contracts: Vec<Vec<PyValue>>,
    /// Token rows (`TOKEN_FIELDS`) of the ERC-20/721 contracts, in contract order.
    pub tokens: Vec<Vec<PyValue>>,
}

impl Round {
    /// Transaction rows (`TRANSACTION_FIELDS`) in block order.
    pub fn transactions(&self) -> impl Iterator<Item = &Vec<PyValue>> {
        self.blocks.iter().flat_map(|b| b.transactions.iter())
    }

    /// Log rows (`LOG_FIELDS`) in receipt order, as `export_receipts_and_logs`
    /// writes them.
    pub fn logs(&self) -> impl Iterator<Item = &Vec<PyValue>> {
        self.receipts.iter().flat_map(|r| r.logs.iter())
    }

    /// Log rows sorted by `(block_number, log_index)`, ethereum-etl's stream order.
    pub fn sorted_logs(&self) -> Vec<&Vec<PyValue>> {
        let at = |name: &str| LOG_FIELDS.iter().position(|f| *f == name).unwrap_or(0);
        let (block, index) = (at("block_number"), at("log_index"));
        let mut rows: Vec<&Vec<PyValue>> = self.logs().collect();
        rows.sort_by_key(|r| (sort_key(&r[block]), sort_key(&r[index])));
        rows
    }

    /// Token-transfer rows (`TOKEN_TRANSFER_FIELDS`) sorted by
    /// `(block_number, log_index)`, the order `export_token_transfers` gives.
    pub fn token_transfers(&self) -> Result<Vec<Vec<PyValue>>> {
        let mut transfers = Vec::new();
        for (i, row) in self.logs().enumerate() {
            let view = LogView::from_export_item(&PyValue::dict(
                LOG_FIELDS
                    .iter()
                    .zip(row.iter())
                    .map(|(k, v)| (*k, v.clone())),
            ));
            let label = || format!("log {i} of blocks {}..={}", self.lo, self.hi);
            if let Some(t) = extract_transfer(&view, &label)? {
                transfers.push(t);
            }
        }
        transfers.sort_by_key(|t| (sort_key(&t[6]), sort_key(&t[5])));
        Ok(transfers)
    }

    /// Trace rows (`TRACE_FIELDS`) in block order, as `export_traces` writes them.
    pub fn trace_rows(&self) -> impl Iterator<Item = Vec<PyValue>> + '_ {
        self.traces.iter().flatten().map(|t| t.clone().into_row())
    }

    /// The enriched items of the wanted entity types, in the order
    /// `ethereumetl stream` exports them (blocks, transactions, logs, token
    /// transfers, traces, contracts, tokens), each with `item_id` and
    /// `item_timestamp` appended.
    pub fn items(&self, entities: &[Entity]) -> Result<Vec<Item>> {
        let wants = |e: Entity| entities.contains(&e);
        let mut items: Vec<Item> = Vec::new();
        if wants(Entity::Block) {
            items.extend(self.blocks.iter().map(|b| block_item(&b.block)));
        }
        if wants(Entity::Transaction) {
            for (i, tx) in self.transactions().enumerate() {
                // Receipts were fetched in transaction order: look there first.
                let receipt = match self.receipts.get(i) {
                    Some(r) if r.receipt.first() == tx.first() => r,
                    _ => find_receipt(&self.receipts, &tx[0])?,
                };
                items.push(transaction_item(tx, &receipt.receipt));
            }
        }
        if wants(Entity::Log) {
            for row in self.sorted_logs() {
                items.push(log_item(row, &self.block(&row[4])?.block));
            }
        }
        if wants(Entity::TokenTransfer) {
            for t in &self.token_transfers()? {
                items.push(token_transfer_item(t, &self.block(&t[6])?.block));
            }
        }
        self.push_trace_items(entities, &mut items)?;
        for item in &mut items {
            add_id_and_timestamp(item);
        }
        Ok(items)
    }

    /// Appends the trace, contract and token items: each sorted by block (traces then by
    /// `trace_index`), stably, as ethereum-etl's `sort_by` does.
    fn push_trace_items(&self, entities: &[Entity], items: &mut Vec<Item>) -> Result<()> {
        if entities.contains(&Entity::Trace) {
            let mut traces: Vec<(usize, &Trace)> = self
                .traces
                .iter()
                .flat_map(|block| block.iter().enumerate())
                .collect();
            traces.sort_by_key(|(index, t)| (sort_key(&t.block_number), *index));
            for (index, t) in traces {
                let block = &self.block(&t.block_number)?.block;
                items.push(trace_item(&t.clone().into_row(), index, block));
            }
        }
        if entities.contains(&Entity::Contract) {
            for c in by_block(&self.contracts) {
                items.push(contract_item(c, &self.block(&c[5])?.block));
            }
        }
        if entities.contains(&Entity::Token) {
            for t in by_block(&self.tokens) {
                items.push(token_item(t, &self.block(&t[5])?.block));
            }
        }
        Ok(())
    }

    /// The block numbered `number` (blocks are in order from `lo`: look there first).
    fn block(&self, number: &PyValue) -> Result<&MappedBlock> {
        let at = match number {
            PyValue::Int(n) => usize::try_from(*n - i128::from(self.lo)).ok(),
            _ => None,
        };
        match at.and_then(|i| self.blocks.get(i)) {
            Some(b) if b.block.first() == Some(number) => Ok(b),
            _ => find_block(&self.blocks, number),
        }
    }

    /// The lines `ethereumetl stream` prints for this round.
    pub fn console_lines(&self, entities: &[Entity]) -> Result<Vec<String>> {
        Ok(self
            .items(entities)?
            .into_iter()
            .map(|item| {
                let mut line = json_dumps(&PyValue::Dict(item));
                line.push('\n');
                line
            })
            .collect())
    }
}

/// Contract or token rows (which end with their `block_number`) sorted by block, stably.
fn by_block(rows: &[Vec<PyValue>]) -> Vec<&Vec<PyValue>> {
    let mut sorted: Vec<&Vec<PyValue>> = rows.iter().collect();
    sorted.sort_by_key(|r| r.last().map(sort_key));
    sorted
}

/// Orders integers numerically (everything else after them, unordered).
fn sort_key(v: &PyValue) -> (u8, i128) {
    match v {
        PyValue::Int(i) => (0, *i),
        _ => (1, 0),
    }
}
