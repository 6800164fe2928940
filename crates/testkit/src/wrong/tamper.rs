//! The transformations of the [`super::WrongRelay`]: pure functions that rewrite one
//! JSON-RPC answer as a [`Mode`] says, and the bloom and hex helpers they need.

use std::collections::BTreeMap;

use alloy_primitives::{hex, Bloom, BloomInput};
use serde_json::{json, Value};

use super::{data_of, Data, Mode};

/// Block hashes by number, for [`Mode::ForeignReceipt`] (which relabels a receipt into the
/// block before its own and needs that block's true hash).
pub type Hashes = BTreeMap<u64, String>;

/// Rewrites `result`, the answer to one `method` call, as `mode` says; true when it changed
/// anything. `hashes` must hold the blocks [`foreign_blocks`] names.
pub fn tamper(mode: Mode, method: &str, result: &mut Value, hashes: &Hashes) -> bool {
    if result.is_null() {
        return false;
    }
    match data_of(method) {
        Some(Data::Blocks) if result.get("transactions").is_some() => tamper_block(mode, result),
        Some(Data::Blocks) => {
            matches!(mode, Mode::TxValue | Mode::TxInput) && tamper_tx(mode, result)
        }
        Some(Data::Receipts) => {
            let receipts: Vec<&mut Value> = match result {
                Value::Array(items) => items.iter_mut().collect(),
                receipt @ Value::Object(_) => vec![receipt],
                _ => return false,
            };
            tamper_receipts(mode, receipts, hashes)
        }
        Some(Data::Logs) => match result {
            Value::Array(logs) if logs.iter().all(Value::is_object) => tamper_logs(mode, logs),
            _ => false,
        },
        None => false,
    }
}

/// The block numbers whose hashes [`tamper`] needs for this answer.
pub fn foreign_blocks(mode: Mode, method: &str, result: &Value) -> Vec<u64> {
    if mode != Mode::ForeignReceipt || data_of(method) != Some(Data::Receipts) {
        return Vec::new();
    }
    let receipts: Vec<&Value> = match result {
        Value::Array(items) => items.iter().collect(),
        receipt => vec![receipt],
    };
    let mut blocks: Vec<u64> = receipts
        .iter()
        .filter_map(|r| quantity(&r["blockNumber"])?.checked_sub(1))
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    blocks
}

fn tamper_block(mode: Mode, block: &mut Value) -> bool {
    if mode == Mode::WithdrawalAmount {
        return match block.get_mut("withdrawals").and_then(Value::as_array_mut) {
            Some(w) => w.last_mut().is_some_and(|w| flip_low_bit(&mut w["amount"])),
            None => false,
        };
    }
    let Some(txs) = block["transactions"].as_array_mut() else {
        return false;
    };
    // Hashes-only blocks are "headers": left true.
    if !txs.first().is_some_and(Value::is_object) {
        return false;
    }
    match mode {
        Mode::EmptyBlocks => {
            txs.clear();
            true
        }
        Mode::DropLastTx => txs.pop().is_some(),
        Mode::TxValue | Mode::TxInput => txs.last_mut().is_some_and(|tx| tamper_tx(mode, tx)),
        _ => false,
    }
}

fn tamper_tx(mode: Mode, tx: &mut Value) -> bool {
    match mode {
        Mode::TxValue => flip_low_bit(&mut tx["value"]),
        Mode::TxInput => change_bytes(&mut tx["input"]),
        _ => false,
    }
}

fn tamper_receipts(mode: Mode, mut receipts: Vec<&mut Value>, hashes: &Hashes) -> bool {
    let mut changed = false;
    match mode {
        Mode::DropLastLog | Mode::DropLastLogFixBloom => {
            for receipt in receipts {
                let Some(logs) = receipt["logs"].as_array_mut() else {
                    continue;
                };
                if logs.pop().is_none() {
                    continue;
                }
                if mode == Mode::DropLastLogFixBloom {
                    receipt["logsBloom"] = json!(bloom_of(logs));
                }
                changed = true;
            }
        }
        Mode::ReceiptStatus => {
            if let Some(r) = receipts.last_mut() {
                changed = match r["status"].as_str() {
                    Some("0x1") => set(&mut r["status"], "0x0"),
                    Some("0x0") => set(&mut r["status"], "0x1"),
                    _ => false,
                };
            }
        }
        Mode::GasUsed => {
            if let Some(r) = receipts.last_mut() {
                changed = add(&mut r["gasUsed"], 1);
            }
        }
        Mode::LogIndex => {
            for log in receipts.iter_mut().flat_map(|r| logs_of(r)) {
                changed |= add(&mut log["logIndex"], 1);
            }
        }
        Mode::LogData => {
            for receipt in receipts {
                if let Some(log) = receipt["logs"].as_array_mut().and_then(|l| l.last_mut()) {
                    changed |= change_bytes(&mut log["data"]);
                }
            }
        }
        Mode::ForeignReceipt => {
            for receipt in receipts {
                let Some(before) = quantity(&receipt["blockNumber"]).and_then(|n| n.checked_sub(1))
                else {
                    continue;
                };
                let Some(hash) = hashes.get(&before) else {
                    continue;
                };
                receipt["blockNumber"] = json!(format!("{before:#x}"));
                receipt["blockHash"] = json!(hash);
                for log in logs_of(receipt) {
                    log["blockNumber"] = json!(format!("{before:#x}"));
                    log["blockHash"] = json!(hash);
                }
                changed = true;
            }
        }
        _ => {}
    }
    changed
}

fn tamper_logs(mode: Mode, logs: &mut Vec<Value>) -> bool {
    if logs.is_empty() {
        return false;
    }
    match mode {
        Mode::EmptyLogs => {
            logs.clear();
            true
        }
        Mode::LogsMissingBlock => {
            let last = logs.last().map(|l| l["blockNumber"].clone());
            logs.retain(|l| Some(&l["blockNumber"]) != last.as_ref());
            true
        }
        Mode::LogIndex => {
            let mut changed = false;
            for log in logs.iter_mut() {
                changed |= add(&mut log["logIndex"], 1);
            }
            changed
        }
        Mode::LogData => {
            // The last log of each block in the answer.
            let mut changed = false;
            for i in 0..logs.len() {
                let next = logs.get(i + 1).map(|l| &l["blockNumber"]);
                if next != Some(&logs[i]["blockNumber"]) {
                    changed |= change_bytes(&mut logs[i]["data"]);
                }
            }
            changed
        }
        _ => false,
    }
}

fn logs_of(receipt: &mut Value) -> impl Iterator<Item = &mut Value> {
    receipt["logs"].as_array_mut().into_iter().flatten()
}

/// The 2048-bit bloom of these logs (keccak256 of the address and of each topic, 3 bits
/// each), as a `0x…` hex string of 256 bytes.
pub fn bloom_of(logs: &[Value]) -> String {
    let mut bloom = Bloom::default();
    for log in logs {
        let topics = log["topics"].as_array().into_iter().flatten();
        for item in std::iter::once(&log["address"]).chain(topics) {
            let bytes = hex::decode(item.as_str().unwrap_or_default()).unwrap_or_default();
            bloom.accrue(BloomInput::Raw(&bytes));
        }
    }
    hex::encode_prefixed(bloom.as_slice())
}

// === hex helpers ===

fn quantity(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

fn set(v: &mut Value, to: &str) -> bool {
    *v = json!(to);
    true
}

/// Adds `n` to a hex quantity (false when it is not one).
fn add(v: &mut Value, n: u64) -> bool {
    match quantity(v) {
        Some(q) => set(v, &format!("{:#x}", q + n)),
        None => false,
    }
}

/// Flips the lowest bit of a hex quantity of any size ("0x0" -> "0x1", "0x10" -> "0x11").
pub(super) fn flip_low_bit(v: &mut Value) -> bool {
    let Some(digits) = v.as_str().and_then(|s| s.strip_prefix("0x")) else {
        return false;
    };
    let Some(last) = digits.chars().last().and_then(|c| c.to_digit(16)) else {
        return false;
    };
    // Only the last digit changes, so the quantity stays canonical ("0x1" -> "0x0").
    set(
        v,
        &format!("0x{}{:x}", &digits[..digits.len() - 1], last ^ 1),
    )
}

/// Changes hex data: its last nibble (lowest bit flipped), or `0x` becomes `0x00`.
fn change_bytes(v: &mut Value) -> bool {
    let Some(digits) = v.as_str().and_then(|s| s.strip_prefix("0x")) else {
        return false;
    };
    match digits.chars().last().and_then(|c| c.to_digit(16)) {
        None => set(v, "0x00"),
        Some(last) => {
            let changed = format!("0x{}{:x}", &digits[..digits.len() - 1], last ^ 1);
            set(v, &changed)
        }
    }
}
