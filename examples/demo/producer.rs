//! The demo's growing chain: one producer that, every [`BLOCK_INTERVAL`], decides the next
//! block and brings every node it is not told to skip up to that height.
//!
//! Determinism is what keeps three independent anvil nodes on one chain: block `n` always
//! holds the same transactions (same senders, values, fees and calldata, sent with anvil's
//! unlocked dev accounts, automine off) and is mined by `evm_mine` at timestamp
//! `genesis + 12 s × n`. So a node that was skipped (a "lagging" node) or restarted from a
//! snapshot (a "killed" node) is caught up by replaying the blocks it misses, and ends up
//! with exactly the same hashes as the others. The verification at the end checks that.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::support::chain::{transfer_calldata, BLOCK_TIME};
use crate::support::rpc::{quantity, try_call_timeout};

/// Time between two new blocks.
pub const BLOCK_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on one RPC call to a node; a node that does not answer is skipped this round.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const GWEI: u64 = 1_000_000_000;
const FINNEY: u64 = 1_000_000_000_000_000;

/// What the producer knows about the chain it extends.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// Genesis timestamp: block n is mined at `genesis_timestamp + 12 × n`.
    pub genesis_timestamp: u64,
    /// anvil's dev accounts (unlocked, funded).
    pub accounts: Vec<String>,
    /// The token contract deployed by the initial chain (emits ERC-20 Transfer logs).
    pub token: String,
}

/// Shared producer state: the target height and which nodes are skipped.
#[derive(Debug)]
struct State {
    /// Height every producing node is brought to.
    target: u64,
    /// Per node: skip it (killed, or made to lag).
    skipped: Vec<bool>,
    /// Per node: the last error, shown once.
    last_error: Vec<Option<String>>,
    /// Stop growing (the end of the demo).
    stopped: bool,
}

/// Handle to the producer: the script pauses and resumes nodes through it.
#[derive(Clone, Debug)]
pub struct Producer {
    urls: Arc<Vec<String>>,
    spec: Arc<ChainSpec>,
    /// Held for a whole round, so a pause never lands in the middle of a block.
    state: Arc<Mutex<State>>,
}

impl Producer {
    /// A producer for nodes (all at height `head`) at `urls`.
    pub fn new(urls: Vec<String>, spec: ChainSpec, head: u64) -> Self {
        let n = urls.len();
        Producer {
            urls: Arc::new(urls),
            spec: Arc::new(spec),
            state: Arc::new(Mutex::new(State {
                target: head,
                skipped: vec![false; n],
                last_error: vec![None; n],
                stopped: false,
            })),
        }
    }

    /// Grows the chain by one block per [`BLOCK_INTERVAL`] until [`Producer::stop`].
    pub async fn run(self) {
        let mut tick = tokio::time::interval(BLOCK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let mut state = self.state.lock().await;
            if state.stopped {
                return;
            }
            state.target += 1;
            self.catch_up(&mut state).await;
        }
    }

    /// Stops skipping node `i`; it is caught up at once.
    pub async fn resume(&self, i: usize) {
        let mut state = self.state.lock().await;
        state.skipped[i] = false;
        self.catch_up(&mut state).await;
    }

    /// Skips node `i` from now on (after the block under way, if any).
    pub async fn skip(&self, i: usize) {
        self.state.lock().await.skipped[i] = true;
    }

    /// Stops growing; returns the final height.
    pub async fn stop(&self) -> u64 {
        let mut state = self.state.lock().await;
        state.stopped = true;
        state.target
    }

    /// Brings every node that is not skipped to the target height.
    async fn catch_up(&self, state: &mut State) {
        for (i, url) in self.urls.iter().enumerate() {
            if state.skipped[i] {
                continue;
            }
            match self.sync_node(url, state.target).await {
                Ok(()) => state.last_error[i] = None,
                Err(e) => {
                    if state.last_error[i].as_deref() != Some(e.as_str()) {
                        eprintln!("  producer: node-{}: {e}", i + 1);
                    }
                    state.last_error[i] = Some(e);
                }
            }
        }
    }

    async fn sync_node(&self, url: &str, target: u64) -> Result<(), String> {
        let mut head = quantity(&call(url, "eth_blockNumber", json!([])).await?);
        while head < target {
            self.mine_block(url, head + 1).await?;
            head += 1;
        }
        Ok(())
    }

    /// Sends block `n`'s transactions and mines it at its fixed timestamp.
    async fn mine_block(&self, url: &str, n: u64) -> Result<(), String> {
        // A half-built block from an earlier failed round must not leak into this one.
        call(url, "anvil_dropAllTransactions", json!([])).await?;
        for tx in block_transactions(&self.spec, n) {
            call(url, "eth_sendTransaction", json!([tx])).await?;
        }
        let timestamp = self.spec.genesis_timestamp + BLOCK_TIME * n;
        call(url, "evm_mine", json!([{ "timestamp": timestamp }])).await?;
        let head = quantity(&call(url, "eth_blockNumber", json!([])).await?);
        if head != n {
            return Err(format!("mined block {n} but the head is {head}"));
        }
        Ok(())
    }
}

/// Block `n`'s transactions: a legacy ETH transfer, an EIP-1559 transfer and a token call
/// that emits an ERC-20 `Transfer` log; every tenth block is empty. Each has its own sender
/// and distinct fees, so anvil orders them the same way on every node.
pub fn block_transactions(spec: &ChainSpec, n: u64) -> Vec<Value> {
    if n.is_multiple_of(10) {
        return Vec::new();
    }
    let a = &spec.accounts;
    let k = n as usize;
    let qty = |x: u64| format!("{x:#x}");
    vec![
        json!({
            "from": a[1], "to": a[5 + k % 5], "value": qty(n * FINNEY),
            "gasPrice": qty(40 * GWEI),
        }),
        json!({
            "from": a[2], "to": a[(k * 3) % 10], "value": qty(n * 2 * FINNEY + 1),
            "maxFeePerGas": qty(39 * GWEI), "maxPriorityFeePerGas": qty(GWEI / 5),
        }),
        json!({
            "from": a[3], "to": spec.token, "value": "0x0",
            "data": transfer_calldata(&a[(k * 7) % 10], n * 1000),
            "maxFeePerGas": qty(38 * GWEI), "maxPriorityFeePerGas": qty(GWEI * 3 / 10),
        }),
    ]
}

async fn call(url: &str, method: &str, params: Value) -> Result<Value, String> {
    try_call_timeout(url, method, params, CALL_TIMEOUT)
        .await
        .map_err(|e| format!("{method}: {e}"))
}
