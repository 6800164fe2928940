//! What one sync round of `stream` holds: the blocks (with transactions) and receipts of a
//! block range, fetched once (by `jobs::stream`); every output then reads the rows it needs
//! from the [`Round`]: plain
//! export rows for directory output, enriched items (ethereum-etl's
//! `enrich_*` joins plus `item_id` / `item_timestamp`) for the console and
//! PostgreSQL.

use crate::error::ExportError;
use crate::error::Result;
use crate::mappers::blocks::MappedBlock;
use crate::mappers::enrich::{
    add_id_and_timestamp, block_item, find_block, find_receipt, log_item, token_transfer_item,
    transaction_item,
};
use crate::mappers::receipts::{MappedReceipt, LOG_FIELDS};
use crate::mappers::token_transfers::{extract_transfer, LogView};
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
}

/// Parses `-e block,transaction,...` like ethereum-etl (names are trimmed).
pub fn parse_entity_types(list: &str) -> Result<Vec<Entity>> {
    list.split(',')
        .map(|e| match e.trim() {
            "block" => Ok(Entity::Block),
            "transaction" => Ok(Entity::Transaction),
            "log" => Ok(Entity::Log),
            "token_transfer" => Ok(Entity::TokenTransfer),
            other @ ("trace" | "contract" | "token") => Err(ExportError::Usage(format!(
                "entity type {other:?} is not supported by nodewatch-export (supported: block,transaction,log,token_transfer)"
            ))),
            other => Err(ExportError::Usage(format!(
                "{other} is not an available entity type. Supply a comma separated list of types from block,transaction,log,token_transfer"
            ))),
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

    /// The enriched items of the wanted entity types, in the order
    /// `ethereumetl stream` exports them (blocks, transactions, logs, token
    /// transfers), each with `item_id` and `item_timestamp` appended.
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
        for item in &mut items {
            add_id_and_timestamp(item);
        }
        Ok(items)
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

/// Orders integers numerically (everything else after them, unordered).
fn sort_key(v: &PyValue) -> (u8, i128) {
    match v {
        PyValue::Int(i) => (0, *i),
        _ => (1, 0),
    }
}
