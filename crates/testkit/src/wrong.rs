//! The wrong-data relay: a node that is up, in sync and on the right chain, and answers wrong
//! or incomplete data (issue 19). It relays every JSON-RPC request to a real node (anvil) and,
//! in the [`Mode`] set at run time ([`WrongRelay::set_mode`]), rewrites the *data* of the
//! answers while heads, block hashes and headers stay true: the failures ETL users report
//! from the field (a receipt missing its last log, `eth_getLogs` answering `[]`, a block with
//! no transactions, ...), each one a mode.
//!
//! Single requests and batches are rewritten alike, item by item (matched by `id`), and every
//! answer item it changed is counted by mode and method ([`WrongRelay::tampered_by`]), so a
//! test can assert that the fault was really served, not only switched on. Modes that corrupt
//! different data ([`Mode::corrupts`]) can be on together ([`WrongRelay::set_modes`]), so one
//! round of exports exercises several. The transformations are pure functions on the JSON
//! ([`tamper`], in `wrong/tamper.rs`), unit-tested on small answers (`wrong/tests.rs`); the
//! server is a [`Scripted`] upstream and this module is its script.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::scripted::{close, ok, Reply, Request, Scripted};

mod tamper;

pub use tamper::{bloom_of, foreign_blocks, tamper, Hashes};

/// What the relay gets wrong (with no mode set it relays everything unchanged). Headers,
/// hashes and heads are always left true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// (a) Each receipt loses its last log (`eth_getTransactionReceipt`,
    /// `eth_getBlockReceipts`); the receipt's `logsBloom` is left as it was.
    DropLastLog,
    /// (b) As [`Mode::DropLastLog`], with the receipt's `logsBloom` recomputed from the logs
    /// that are left, so the receipt is consistent in itself.
    DropLastLogFixBloom,
    /// (c) `eth_getLogs` (and the filter-log methods) answer `[]`.
    EmptyLogs,
    /// (d) Full blocks come with `"transactions": []`.
    EmptyBlocks,
    /// The last transaction of a full block (and any transaction answered alone) has another
    /// `value` (its lowest bit flipped).
    TxValue,
    /// The same with the transaction's `input` (its last nibble changed, or `0x00` for `0x`).
    TxInput,
    /// The last receipt of each answer has its `status` flipped (success <-> failure).
    ReceiptStatus,
    /// Every log (in receipts and in `eth_getLogs`) has `logIndex` one too high.
    LogIndex,
    /// Every receipt (and its logs) says it is in the block before its own: a receipt from
    /// another block, as a node with a stale transaction index answers.
    ForeignReceipt,
    /// The last log of each receipt, and of each block in an `eth_getLogs` answer, has other
    /// `data`.
    LogData,
    /// A full block's last transaction is missing.
    DropLastTx,
    /// The last receipt of each answer has another `gasUsed` (`cumulativeGasUsed` kept).
    GasUsed,
    /// An `eth_getLogs` answer misses the logs of one block (the last block it has logs of).
    LogsMissingBlock,
    /// A block's last withdrawal has another amount (only on chains with withdrawals).
    WithdrawalAmount,
}

/// Which exported data a mode corrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// Blocks and transactions (`eth_getBlockBy*`, `eth_getTransactionBy*`).
    Blocks,
    /// Receipts and their logs (`eth_getTransactionReceipt`, `eth_getBlockReceipts`).
    Receipts,
    /// Log queries (`eth_getLogs`, `eth_getFilterLogs`, `eth_getFilterChanges`).
    Logs,
}

impl Data {
    /// The files an export of this data writes (ethereum-etl's names, as both exporters use).
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Data::Blocks => &["blocks.csv", "transactions.csv"],
            Data::Receipts => &["receipts.csv", "logs.csv"],
            Data::Logs => &["token_transfers.csv"],
        }
    }

    /// Panics unless every file of this data in `dir` equals the one in `reference`.
    pub fn assert_identical(self, dir: &Path, reference: &Path) {
        for file in self.files() {
            crate::etl::assert_files_identical(&dir.join(file), &reference.join(file));
        }
    }
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 14] = [
        Mode::DropLastLog,
        Mode::DropLastLogFixBloom,
        Mode::EmptyLogs,
        Mode::EmptyBlocks,
        Mode::TxValue,
        Mode::TxInput,
        Mode::ReceiptStatus,
        Mode::LogIndex,
        Mode::ForeignReceipt,
        Mode::LogData,
        Mode::DropLastTx,
        Mode::GasUsed,
        Mode::LogsMissingBlock,
        Mode::WithdrawalAmount,
    ];

    /// The data this mode corrupts (what an export of that data must catch).
    pub fn corrupts(self) -> &'static [Data] {
        match self {
            Mode::EmptyBlocks
            | Mode::TxValue
            | Mode::TxInput
            | Mode::DropLastTx
            | Mode::WithdrawalAmount => &[Data::Blocks],
            Mode::DropLastLog
            | Mode::DropLastLogFixBloom
            | Mode::ReceiptStatus
            | Mode::ForeignReceipt
            | Mode::GasUsed => &[Data::Receipts],
            Mode::EmptyLogs | Mode::LogsMissingBlock => &[Data::Logs],
            Mode::LogIndex | Mode::LogData => &[Data::Receipts, Data::Logs],
        }
    }
}

/// What kind of answer a method gives, for the rewriting.
fn data_of(method: &str) -> Option<Data> {
    match method {
        "eth_getBlockByNumber"
        | "eth_getBlockByHash"
        | "eth_getTransactionByHash"
        | "eth_getTransactionByBlockNumberAndIndex"
        | "eth_getTransactionByBlockHashAndIndex" => Some(Data::Blocks),
        "eth_getTransactionReceipt" | "eth_getBlockReceipts" => Some(Data::Receipts),
        "eth_getLogs" | "eth_getFilterLogs" | "eth_getFilterChanges" => Some(Data::Logs),
        _ => None,
    }
}

// === impl WrongRelay ===

struct State {
    /// The real node behind the relay.
    target: String,
    /// The modes in force, applied in order (empty: honest).
    modes: Mutex<Vec<Mode>>,
    /// Answer items changed, by mode and method: the proof a fault was served.
    tampered: Mutex<BTreeMap<(Mode, String), u64>>,
    /// Answer items relayed (changed or not), by method.
    relayed: Mutex<BTreeMap<String, u64>>,
    /// Block hashes learned from the node for [`Mode::ForeignReceipt`] (blocks do not change
    /// under a test chain).
    hashes: Mutex<Hashes>,
}

/// A running wrong-data relay in front of one node; stops when dropped.
pub struct WrongRelay {
    state: Arc<State>,
    server: Scripted,
}

impl WrongRelay {
    /// Starts an honest relay to `target` (a node's URL).
    pub async fn start(target: &str) -> WrongRelay {
        let state = Arc::new(State {
            target: target.to_string(),
            modes: Mutex::default(),
            tampered: Mutex::default(),
            relayed: Mutex::default(),
            hashes: Mutex::default(),
        });
        let shared = Arc::clone(&state);
        let server = Scripted::start(move |req| {
            let state = Arc::clone(&shared);
            async move { handle(&state, req).await }
        })
        .await;
        WrongRelay { state, server }
    }

    /// Where clients should send requests.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Switches what the relay gets wrong, from the next request on.
    pub fn set_mode(&self, mode: Mode) {
        self.set_modes(&[mode]);
    }

    /// Several modes at once, from the next request on. Each must corrupt other data than
    /// the rest ([`Mode::corrupts`]), so that every fault stays what its mode says.
    pub fn set_modes(&self, modes: &[Mode]) {
        let mut seen: Vec<Data> = Vec::new();
        for data in modes.iter().flat_map(|m| m.corrupts()) {
            assert!(
                !seen.contains(data),
                "two modes corrupt {data:?}: {modes:?}"
            );
            seen.push(*data);
        }
        *self.state.modes.lock().unwrap() = modes.to_vec();
    }

    /// The modes in force (empty when honest).
    pub fn modes(&self) -> Vec<Mode> {
        self.state.modes.lock().unwrap().clone()
    }

    /// Answer items changed so far, all modes and methods.
    pub fn tampered(&self) -> u64 {
        self.state.tampered.lock().unwrap().values().sum()
    }

    /// Answer items changed so far by `mode`, all methods.
    pub fn tampered_by(&self, mode: Mode) -> u64 {
        let counts = self.state.tampered.lock().unwrap();
        counts
            .iter()
            .filter(|((m, _), _)| *m == mode)
            .map(|(_, n)| n)
            .sum()
    }

    /// Answer items changed so far, by method (all modes).
    pub fn tampered_by_method(&self) -> BTreeMap<String, u64> {
        let mut by_method = BTreeMap::new();
        for ((_, method), n) in self.state.tampered.lock().unwrap().iter() {
            *by_method.entry(method.clone()).or_default() += n;
        }
        by_method
    }

    /// Answer items relayed so far (changed or not), by method.
    pub fn relayed_by_method(&self) -> BTreeMap<String, u64> {
        self.state.relayed.lock().unwrap().clone()
    }

    /// Requests (HTTP) received so far.
    pub fn requests(&self) -> usize {
        self.server.requests()
    }
}

async fn handle(state: &State, req: Request) -> Reply {
    let Some((status, text)) = crate::scripted::forward(&state.target, &req).await else {
        return close("the node did not answer");
    };
    let modes = state.modes.lock().unwrap().clone();
    let (Some(calls), Ok(mut answer)) = (req.json(), serde_json::from_str::<Value>(&text)) else {
        return ok(status, text);
    };
    let calls: Vec<&Value> = match &calls {
        Value::Array(calls) => calls.iter().collect(),
        call => vec![call],
    };
    let items: Vec<&mut Value> = match &mut answer {
        Value::Array(items) => items.iter_mut().collect(),
        item => vec![item],
    };
    let mut changed = false;
    for item in items {
        let Some(method) = calls
            .iter()
            .find(|c| c["id"] == item["id"])
            .and_then(|c| c["method"].as_str())
        else {
            continue;
        };
        *state
            .relayed
            .lock()
            .unwrap()
            .entry(method.into())
            .or_default() += 1;
        let Some(result) = item.get_mut("result") else {
            continue;
        };
        for &mode in &modes {
            let hashes = hashes_for(state, &foreign_blocks(mode, method, result)).await;
            if tamper(mode, method, result, &hashes) {
                let key = (mode, method.to_string());
                *state.tampered.lock().unwrap().entry(key).or_default() += 1;
                changed = true;
            }
        }
    }
    if !changed {
        return ok(status, text);
    }
    ok(status, answer.to_string())
}

/// The true hashes of these blocks, asked of the node once each.
async fn hashes_for(state: &State, blocks: &[u64]) -> Hashes {
    let mut found = Hashes::new();
    for &n in blocks {
        let known = state.hashes.lock().unwrap().get(&n).cloned();
        let hash = match known {
            Some(hash) => Some(hash),
            None => {
                let params = json!([format!("{n:#x}"), false]);
                crate::rpc::try_call(&state.target, "eth_getBlockByNumber", params)
                    .await
                    .ok()
                    .and_then(|b| b["hash"].as_str().map(str::to_owned))
            }
        };
        if let Some(hash) = hash {
            state.hashes.lock().unwrap().insert(n, hash.clone());
            found.insert(n, hash);
        }
    }
    found
}

#[cfg(test)]
mod tests;
