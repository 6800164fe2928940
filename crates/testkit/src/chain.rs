//! A deterministic test chain on an anvil node.
//!
//! [`build_chain`] mines [`CHAIN_BLOCKS`] blocks on a node that is still at genesis, using
//! anvil's unlocked dev accounts (`eth_sendTransaction`) with automine off and `evm_mine` at
//! explicit timestamps (genesis time + 12 s × n). Everything that goes into a block is fixed —
//! senders, nonces, values, fees, gas (anvil's estimate, itself deterministic), timestamps, and
//! the dev keys' RFC 6979 signatures — so two nodes started alike (same `--chain-id` and
//! `--timestamp`) end up with identical block hashes. tests/fixtures.rs checks that.
//!
//! The chain holds, block by block (n = 1..=30):
//! * multiples of 7 (7, 14, 21, 28): empty blocks;
//! * n = 1: creation of the [`TOKEN_INIT_CODE`] contract (legacy tx);
//! * n = 12: a contract creation that reverts (status 0, explicit gas);
//! * n = 20: a second token contract, created by an EIP-1559 tx;
//! * every other block: a legacy (type 0) ETH transfer, an EIP-1559 (type 2) transfer, on odd
//!   n an access-list (type 1) transfer, and from n = 2 on token calls emitting ERC-20
//!   `Transfer(address,address,uint256)` logs as type 2, and on some blocks also type 0 and
//!   type 1 txs.
//!
//! Within a block every tx has its own sender and distinct fee values, so anvil's fee-ordered
//! mempool has no ties to break.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::rpc::{self, call, quantity};

/// Blocks mined by [`build_chain`] after genesis.
pub const CHAIN_BLOCKS: u64 = 30;
/// Seconds between blocks mined by [`build_chain`] and [`mine`].
pub const BLOCK_TIME: u64 = 12;

/// keccak256("Transfer(address,address,uint256)"), the ERC-20 / ERC-721 Transfer event topic.
pub const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// Runtime code of a minimal "token": every call emits an ERC-20 style Transfer log
/// `Transfer(from = caller, to = calldata word 0, value = calldata word 1)` and stops.
/// Call it with `transfer_calldata(to, amount)`. 49 (0x31) bytes:
///
/// ```text
/// 60 20        PUSH1 0x20
/// 35           CALLDATALOAD      ; value = calldata[32..64]
/// 60 00        PUSH1 0x00
/// 52           MSTORE            ; mem[0..32] = value
/// 60 00        PUSH1 0x00
/// 35           CALLDATALOAD      ; topic2 = to (an ABI-encoded address word)
/// 33           CALLER            ; topic1 = from
/// 7f ddf2…b3ef PUSH32 TRANSFER_TOPIC ; topic0
/// 60 20        PUSH1 0x20        ; size
/// 60 00        PUSH1 0x00        ; offset
/// a3           LOG3              ; log(mem[0..32], topic0, from, to)
/// 00           STOP
/// ```
pub const TOKEN_RUNTIME_CODE: &str = concat!(
    "0x602035600052600035337f",
    "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    "60206000a300"
);

/// Creation code for [`TOKEN_RUNTIME_CODE`]: an 11-byte constructor that copies the runtime
/// (which follows it) to memory and returns it.
///
/// ```text
/// 60 31        PUSH1 0x31        ; runtime length
/// 80           DUP1
/// 60 0b        PUSH1 0x0b        ; runtime offset in this code = constructor length
/// 60 00        PUSH1 0x00        ; memory destination
/// 39           CODECOPY          ; mem[0..0x31] = code[0x0b..0x3c]
/// 60 00        PUSH1 0x00
/// f3           RETURN            ; return mem[0..0x31]
/// ```
pub const TOKEN_INIT_CODE: &str = concat!(
    "0x603180600b6000396000f3",
    "602035600052600035337f",
    "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    "60206000a300"
);

/// Creation code that reverts at once (PUSH1 0, PUSH1 0, REVERT): a failed contract creation.
pub const REVERTING_INIT_CODE: &str = "0x60006000fd";

/// What [`build_chain`] made. Equal on two nodes built alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    /// Head block number (== CHAIN_BLOCKS).
    pub head: u64,
    /// Genesis timestamp; block n has timestamp `genesis_timestamp + 12 * n`.
    pub genesis_timestamp: u64,
    /// Every transaction hash, in block order (and in order within each block).
    pub tx_hashes: Vec<String>,
    /// Block hash by number, 0..=head.
    pub block_hashes: Vec<String>,
    /// Numbers of the blocks without transactions.
    pub empty_blocks: Vec<u64>,
    /// Hashes of the contract-creation transactions (including the reverted one).
    pub contract_creations: Vec<String>,
    /// Hashes of the transactions whose receipt has status 0.
    pub failed: Vec<String>,
    /// Address of the first token contract (created in block 1).
    pub token: String,
    /// Hashes of the transactions that emit a Transfer log.
    pub token_transfers: Vec<String>,
    /// The node's dev accounts (eth_accounts).
    pub accounts: Vec<String>,
}

impl ChainInfo {
    /// Write the transaction hashes, one per line, as `ethereumetl export_receipts_and_logs
    /// --transaction-hashes` wants them.
    pub fn write_tx_hashes(&self, path: &Path) {
        let mut text = self.tx_hashes.join("\n");
        text.push('\n');
        fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// ABI calldata for the token: `to` as a left-padded word, then `amount`.
pub fn transfer_calldata(to: &str, amount: u64) -> String {
    format!(
        "0x{:0>64}{amount:064x}",
        to.trim_start_matches("0x").to_lowercase()
    )
}

#[derive(Clone, Copy)]
enum Kind {
    Legacy,
    AccessList,
    DynamicFee,
}

struct Tx {
    kind: Kind,
    from: usize,
    to: Option<Target>,
    value: u64,
    data: Data,
    gas: Option<u64>,
    role: Role,
}

#[derive(Clone, Copy)]
enum Data {
    None,
    Code(&'static str),
    /// Token call: transfer_calldata(accounts[to], amount).
    TokenTransfer {
        to: usize,
        amount: u64,
    },
}

#[derive(Clone, Copy)]
enum Target {
    Account(usize),
    Token,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Plain,
    CreateToken,
    CreateReverting,
    TokenTransfer,
}

const FINNEY: u64 = 1_000_000_000_000_000;

fn plan(n: u64) -> Vec<Tx> {
    if n.is_multiple_of(7) {
        return Vec::new();
    }
    let plain = |kind, from, to, value| Tx {
        kind,
        from,
        to: Some(Target::Account(to)),
        value,
        data: Data::None,
        gas: None,
        role: Role::Plain,
    };
    let token_call = |kind, from, to: usize, amount: u64| Tx {
        kind,
        from,
        to: Some(Target::Token),
        value: 0,
        data: Data::TokenTransfer { to, amount },
        gas: None,
        role: Role::TokenTransfer,
    };
    let mut txs = Vec::new();
    match n {
        1 => txs.push(Tx {
            kind: Kind::Legacy,
            from: 0,
            to: None,
            value: 0,
            data: Data::Code(TOKEN_INIT_CODE),
            gas: None,
            role: Role::CreateToken,
        }),
        12 => txs.push(Tx {
            kind: Kind::Legacy,
            from: 0,
            to: None,
            value: 0,
            data: Data::Code(REVERTING_INIT_CODE),
            // Explicit gas: estimation would fail on a reverting creation.
            gas: Some(100_000),
            role: Role::CreateReverting,
        }),
        20 => txs.push(Tx {
            kind: Kind::DynamicFee,
            from: 0,
            to: None,
            value: 0,
            data: Data::Code(TOKEN_INIT_CODE),
            gas: None,
            role: Role::Plain,
        }),
        _ => {}
    }
    let k = n as usize;
    txs.push(plain(Kind::Legacy, 1, 5 + k % 5, n * FINNEY));
    if !n.is_multiple_of(2) {
        txs.push(plain(Kind::AccessList, 2, 4 + k % 6, n * 2 * FINNEY));
    }
    txs.push(plain(Kind::DynamicFee, 3, (k * 3) % 10, n * 3 * FINNEY + 1));
    if n >= 2 {
        txs.push(token_call(
            Kind::DynamicFee,
            4 + k % 3,
            (k * 7) % 10,
            n * 1000,
        ));
        if n.is_multiple_of(3) {
            txs.push(token_call(Kind::Legacy, 7, (k + 1) % 10, n * 1000 + 1));
        }
        if n.is_multiple_of(4) {
            txs.push(token_call(Kind::AccessList, 8, (k + 2) % 10, n * 1000 + 2));
        }
    }
    txs
}

fn qty(x: u64) -> String {
    format!("{x:#x}")
}

/// eth_sendTransaction parameters for `tx`, the `rank`-th tx of its block: every price-like
/// field differs from every other one in the block.
fn tx_request(tx: &Tx, rank: u64, n: u64, accounts: &[String], token: Option<&str>) -> Value {
    const GWEI: u64 = 1_000_000_000;
    let mut req = json!({ "from": accounts[tx.from], "value": qty(tx.value) });
    match tx.to {
        Some(Target::Account(i)) => req["to"] = json!(accounts[i]),
        Some(Target::Token) => {
            req["to"] = json!(token.expect("token deployed in block 1"));
        }
        None => {}
    }
    match tx.data {
        Data::None => {}
        Data::Code(code) => req["data"] = json!(code),
        Data::TokenTransfer { to, amount } => {
            req["data"] = json!(transfer_calldata(&accounts[to], amount))
        }
    }
    if let Some(gas) = tx.gas {
        req["gas"] = json!(qty(gas));
    }
    let price = (40 - rank) * GWEI;
    match tx.kind {
        Kind::Legacy => req["gasPrice"] = json!(qty(price)),
        Kind::AccessList => {
            req["gasPrice"] = json!(qty(price));
            let target = match tx.to {
                Some(Target::Token) => token.unwrap().to_owned(),
                _ => accounts[(tx.from + 1) % accounts.len()].clone(),
            };
            req["accessList"] = json!([{
                "address": target,
                "storageKeys": [format!("0x{n:064x}")],
            }]);
        }
        Kind::DynamicFee => {
            req["maxFeePerGas"] = json!(qty(price));
            req["maxPriorityFeePerGas"] = json!(qty((rank + 1) * GWEI / 10));
        }
    }
    req
}

/// Build the test chain (see the module docs) on the node at `url`, which must still be at
/// genesis. Restores the node's automine setting afterwards. Takes well under a second.
pub async fn build_chain(url: &str) -> ChainInfo {
    let start = rpc::block_number(url).await;
    assert_eq!(
        start, 0,
        "build_chain needs a node at genesis; {url} is at block {start}"
    );
    let accounts: Vec<String> =
        serde_json::from_value(call(url, "eth_accounts", json!([])).await).expect("eth_accounts");
    assert!(
        accounts.len() >= 10,
        "need anvil's 10 dev accounts, got {accounts:?}"
    );
    let genesis = call(url, "eth_getBlockByNumber", json!(["0x0", false])).await;
    let genesis_timestamp = quantity(&genesis["timestamp"]);
    let automine = call(url, "anvil_getAutomine", json!([])).await;
    call(url, "evm_setAutomine", json!([false])).await;

    let mut info = ChainInfo {
        head: 0,
        genesis_timestamp,
        tx_hashes: Vec::new(),
        block_hashes: vec![genesis["hash"].as_str().unwrap().to_owned()],
        empty_blocks: Vec::new(),
        contract_creations: Vec::new(),
        failed: Vec::new(),
        token: String::new(),
        token_transfers: Vec::new(),
        accounts: accounts.clone(),
    };
    let mut token: Option<String> = None;
    for n in 1..=CHAIN_BLOCKS {
        let txs = plan(n);
        let mut sent = Vec::new();
        for (rank, tx) in txs.iter().enumerate() {
            let req = tx_request(tx, rank as u64, n, &accounts, token.as_deref());
            let hash = call(url, "eth_sendTransaction", json!([req])).await;
            let hash = hash.as_str().unwrap().to_owned();
            match tx.role {
                Role::CreateToken | Role::CreateReverting => {
                    info.contract_creations.push(hash.clone())
                }
                Role::TokenTransfer => info.token_transfers.push(hash.clone()),
                Role::Plain if tx.to.is_none() => info.contract_creations.push(hash.clone()),
                Role::Plain => {}
            }
            if tx.role == Role::CreateReverting {
                info.failed.push(hash.clone());
            }
            sent.push((hash, tx.role));
        }
        let timestamp = genesis_timestamp + BLOCK_TIME * n;
        call(url, "evm_mine", json!([{ "timestamp": timestamp }])).await;

        let block = call(url, "eth_getBlockByNumber", json!([qty(n), false])).await;
        assert_eq!(
            quantity(&block["timestamp"]),
            timestamp,
            "block {n} timestamp"
        );
        let in_block: Vec<String> = serde_json::from_value(block["transactions"].clone()).unwrap();
        let mut expected: Vec<&String> = sent.iter().map(|(h, _)| h).collect();
        let mut got: Vec<&String> = in_block.iter().collect();
        expected.sort();
        got.sort();
        assert_eq!(
            got, expected,
            "block {n} does not hold exactly the transactions sent for it"
        );
        if in_block.is_empty() {
            info.empty_blocks.push(n);
        }
        if let Some((hash, _)) = sent.iter().find(|(_, r)| *r == Role::CreateToken) {
            let receipt = call(url, "eth_getTransactionReceipt", json!([hash])).await;
            token = Some(
                receipt["contractAddress"]
                    .as_str()
                    .expect("token creation receipt has contractAddress")
                    .to_owned(),
            );
        }
        info.tx_hashes.extend(in_block);
        info.block_hashes
            .push(block["hash"].as_str().unwrap().to_owned());
    }
    call(url, "evm_setAutomine", json!([automine])).await;
    info.head = CHAIN_BLOCKS;
    info.token = token.unwrap();
    info
}

/// Mine `n` empty-or-pending blocks at deterministic timestamps (each 12 s after the previous
/// block); returns the new head. Works with automine on or off.
pub async fn mine(url: &str, n: u64) -> u64 {
    for _ in 0..n {
        let latest = call(url, "eth_getBlockByNumber", json!(["latest", false])).await;
        let ts = quantity(&latest["timestamp"]) + BLOCK_TIME;
        call(url, "evm_mine", json!([{ "timestamp": ts }])).await;
    }
    rpc::block_number(url).await
}

/// Block hashes 0..=upto as the node at `url` reports them.
pub async fn block_hashes(url: &str, upto: u64) -> Vec<String> {
    let mut hashes = Vec::with_capacity(upto as usize + 1);
    for n in 0..=upto {
        let b = call(url, "eth_getBlockByNumber", json!([qty(n), false])).await;
        assert!(!b.is_null(), "{url} has no block {n}");
        hashes.push(b["hash"].as_str().unwrap().to_owned());
    }
    hashes
}
