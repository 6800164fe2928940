//! Contracts for the trace, contract and token tests: hand-assembled EVM code (no solc
//! needed) deployed on a fixture node by [`deploy_contracts`], then exercised so the chain
//! holds internal calls, a reverted internal call, a reverted transaction with a successful
//! child call, contract creations from a transaction and from a contract, a self-destruct and
//! ERC-20 `Transfer` logs.
//!
//! Every token is a selector dispatcher ([`Dispatcher`]): `PUSH4 <selector> EQ PUSH2 <dest>
//! JUMPI` in the first basic block, as solc lays it out, so ethereum-etl's sighash scan finds
//! the functions. The tokens cover ethereum-etl's fallbacks: a plain ERC-20, bytes32 name and
//! symbol, upper-case `NAME()`/`SYMBOL()`/`DECIMALS()`, NUL bytes and non-ASCII in a name,
//! invalid UTF-8, a `decimals()` that does not fit uint8, a short `totalSupply()` answer, an
//! empty name, an ERC-721 and a contract where every call reverts.

use serde_json::{json, Value};

use crate::chain::{ChainInfo, TRANSFER_TOPIC};
use crate::rpc::call;

/// What one function of a [`Dispatcher`] does.
#[derive(Clone, Debug)]
pub enum Body {
    /// Returns these bytes.
    Return(Vec<u8>),
    /// Emits `Transfer(caller, calldata word 0, calldata word 1)` and returns `true`.
    TransferLog,
}

/// A selector dispatcher: unknown selectors (and empty calldata) revert.
pub struct Dispatcher(pub Vec<([u8; 4], Body)>);

/// The first four bytes of keccak256(signature), for the few signatures used here.
pub fn selector(signature: &str) -> [u8; 4] {
    let hex = match signature {
        "name()" => "06fdde03",
        "symbol()" => "95d89b41",
        "decimals()" => "313ce567",
        "totalSupply()" => "18160ddd",
        "NAME()" => "a3f4df7e",
        "SYMBOL()" => "f76f8d78",
        "DECIMALS()" => "2e0f2625",
        "balanceOf(address)" => "70a08231",
        "transfer(address,uint256)" => "a9059cbb",
        "transferFrom(address,address,uint256)" => "23b872dd",
        "approve(address,uint256)" => "095ea7b3",
        "allowance(address,address)" => "dd62ed3e",
        "ownerOf(uint256)" => "6352211e",
        other => panic!("no selector for {other}"),
    };
    let b: Vec<u8> = (0..4)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    [b[0], b[1], b[2], b[3]]
}

/// A 32-byte big-endian word holding `n`.
pub fn word(n: u128) -> Vec<u8> {
    let mut w = vec![0u8; 16];
    w.extend_from_slice(&n.to_be_bytes());
    w
}

/// ABI encoding of a single dynamic `string`/`bytes` return value.
pub fn abi_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = word(32);
    out.extend(word(bytes.len() as u128));
    out.extend_from_slice(bytes);
    out.resize(64 + bytes.len().div_ceil(32) * 32, 0);
    out
}

/// A `bytes32` return value: `bytes` right-padded with zeros.
pub fn bytes32(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.resize(32, 0);
    out
}

fn push2(code: &mut Vec<u8>, v: usize) {
    code.extend_from_slice(&[0x61, (v >> 8) as u8, v as u8]);
}

impl Dispatcher {
    /// The runtime code: dispatch, one block per function, then the return data blobs.
    pub fn runtime(&self) -> Vec<u8> {
        // Dispatch: 6 bytes prologue, 11 per selector, 5 for the revert.
        let dispatch_len = 6 + 11 * self.0.len() + 5;
        let block_len = |b: &Body| match b {
            Body::Return(_) => 16,
            Body::TransferLog => 59,
        };
        let blocks_len: usize = self.0.iter().map(|(_, b)| block_len(b)).sum();
        // PUSH1 0 CALLDATALOAD PUSH1 0xe0 SHR: the selector.
        let mut code = vec![0x60, 0x00, 0x35, 0x60, 0xe0, 0x1c];
        let mut dest = dispatch_len;
        for (sel, body) in &self.0 {
            code.push(0x80); // DUP1
            code.push(0x63); // PUSH4
            code.extend_from_slice(sel);
            code.push(0x14); // EQ
            push2(&mut code, dest);
            code.push(0x57); // JUMPI
            dest += block_len(body);
        }
        code.extend_from_slice(&[0x60, 0x00, 0x80, 0xfd, 0x00]); // PUSH1 0 DUP1 REVERT
        assert_eq!(code.len(), dispatch_len);
        let mut data_at = dispatch_len + blocks_len;
        let mut data = Vec::new();
        for (_, body) in &self.0 {
            code.push(0x5b); // JUMPDEST
            match body {
                Body::Return(bytes) => {
                    push2(&mut code, bytes.len());
                    push2(&mut code, data_at);
                    code.extend_from_slice(&[0x60, 0x00, 0x39]); // PUSH1 0 CODECOPY
                    push2(&mut code, bytes.len());
                    code.extend_from_slice(&[0x60, 0x00, 0xf3]); // PUSH1 0 RETURN
                    data_at += bytes.len();
                    data.extend_from_slice(bytes);
                }
                Body::TransferLog => {
                    code.extend_from_slice(&[0x60, 0x24, 0x35, 0x60, 0x00, 0x52]); // mem[0] = value
                    code.extend_from_slice(&[0x60, 0x04, 0x35, 0x33, 0x7f]); // to, caller, topic
                    code.extend(hex_bytes(TRANSFER_TOPIC));
                    code.extend_from_slice(&[0x60, 0x20, 0x60, 0x00, 0xa3]); // LOG3
                    code.extend_from_slice(&[0x60, 0x01, 0x60, 0x00, 0x52]); // mem[0] = 1
                    code.extend_from_slice(&[0x60, 0x20, 0x60, 0x00, 0xf3]); // RETURN 32
                }
            }
        }
        assert_eq!(code.len(), dispatch_len + blocks_len);
        code.extend(data);
        code
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Creation code returning `runtime`: CODECOPY the runtime that follows a 14-byte constructor.
pub fn init_code(runtime: &[u8]) -> Vec<u8> {
    let mut code = Vec::new();
    push2(&mut code, runtime.len());
    code.push(0x80); // DUP1
    push2(&mut code, 14);
    code.extend_from_slice(&[0x60, 0x00, 0x39, 0x60, 0x00, 0xf3]); // CODECOPY, RETURN
    code.push(0x00);
    assert_eq!(code.len(), 14);
    code.extend_from_slice(runtime);
    code
}

/// `CALL(gas, target, 0, mem[0..CALLDATASIZE], no return data)` with the calldata copied first.
fn forward_call(code: &mut Vec<u8>, target: &[u8]) {
    code.extend_from_slice(&[0x36, 0x60, 0x00, 0x80, 0x37]); // CALLDATACOPY(0, 0, size)
    code.extend_from_slice(&[0x60, 0x00, 0x80, 0x36, 0x81, 0x80, 0x73]); // 0 0 size 0 0 PUSH20
    code.extend_from_slice(target);
    code.extend_from_slice(&[0x5a, 0xf1, 0x50]); // GAS CALL POP
}

/// `STATICCALL(gas, target, no input, no output)`.
fn static_call(code: &mut Vec<u8>, target: &[u8]) {
    code.extend_from_slice(&[0x60, 0x00, 0x80, 0x80, 0x80, 0x73]);
    code.extend_from_slice(target);
    code.extend_from_slice(&[0x5a, 0xfa, 0x50]); // GAS STATICCALL POP
}

/// The standard ERC-20 functions answering fixed values (plus `extra`).
fn erc20(name: Body, symbol: Body, decimals: Body, supply: Body) -> Dispatcher {
    Dispatcher(vec![
        (selector("name()"), name),
        (selector("symbol()"), symbol),
        (selector("decimals()"), decimals),
        (selector("totalSupply()"), supply),
        (selector("balanceOf(address)"), Body::Return(word(0))),
        (selector("transfer(address,uint256)"), Body::TransferLog),
        (
            selector("transferFrom(address,address,uint256)"),
            Body::Return(word(1)),
        ),
        (selector("approve(address,uint256)"), Body::Return(word(1))),
        (
            selector("allowance(address,address)"),
            Body::Return(word(0)),
        ),
    ])
}

/// The token contracts by name, in deployment order.
pub fn tokens() -> Vec<(&'static str, Dispatcher)> {
    use Body::Return;
    let s = |t: &str| Return(abi_string(t.as_bytes()));
    vec![
        (
            "standard",
            erc20(
                s("Nodewatch Token"),
                s("NWT"),
                Return(word(18)),
                Return(word(10u128.pow(24))),
            ),
        ),
        (
            "bytes32",
            erc20(
                Return(bytes32(b"Maker")),
                Return(bytes32(b"MKR")),
                Return(word(18)),
                Return(word(1000)),
            ),
        ),
        (
            "upper",
            Dispatcher(vec![
                (selector("NAME()"), s("Upper Case")),
                (selector("SYMBOL()"), s("UPC")),
                (selector("DECIMALS()"), Return(word(6))),
                (selector("totalSupply()"), Return(word(5))),
            ]),
        ),
        (
            "odd",
            erc20(
                Return(abi_string("Nu\0l T\u{f6}k\u{e9}n \u{20ac}\0".as_bytes())),
                Return(abi_string(&[0xff, 0xfe, 0x41])),
                Return(word(300)),
                Return(vec![0x12; 16]),
            ),
        ),
        (
            "empty",
            erc20(
                s(""),
                Return(bytes32(b"")),
                Return([vec![0x80], vec![0; 31]].concat()),
                Return(vec![0xff; 32]),
            ),
        ),
        (
            "erc721",
            Dispatcher(vec![
                (selector("name()"), s("Kitties")),
                (selector("symbol()"), s("KIT")),
                (selector("totalSupply()"), Return(word(3))),
                (selector("balanceOf(address)"), Return(word(1))),
                (selector("ownerOf(uint256)"), Return(word(0))),
                (
                    selector("transferFrom(address,address,uint256)"),
                    Body::TransferLog,
                ),
                (selector("approve(address,uint256)"), Return(word(1))),
            ]),
        ),
        ("reverter", Dispatcher(vec![])),
    ]
}

/// What [`deploy_contracts`] made.
#[derive(Clone, Debug)]
pub struct Contracts {
    /// Token contracts by name (see [`tokens`]), lower-case addresses.
    pub tokens: Vec<(String, String)>,
    /// router, failing router, factory, self-destructing contract.
    pub others: Vec<(String, String)>,
    /// First and last block the deployment and the calls were mined in.
    pub blocks: (u64, u64),
}

impl Contracts {
    /// Every contract address (tokens first).
    pub fn addresses(&self) -> Vec<String> {
        self.tokens
            .iter()
            .chain(&self.others)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// The address of the named contract.
    pub fn get(&self, name: &str) -> &str {
        let found = self
            .tokens
            .iter()
            .chain(&self.others)
            .find(|(n, _)| n == name);
        &found.unwrap_or_else(|| panic!("no contract {name}")).1
    }
}

/// Sends the transactions, mines one block at the next 12-second step, returns the receipts.
async fn mine_block(url: &str, txs: Vec<Value>) -> Vec<Value> {
    let mut hashes = Vec::new();
    for tx in txs {
        let hash = call(url, "eth_sendTransaction", json!([tx])).await;
        hashes.push(hash.as_str().unwrap().to_owned());
    }
    crate::chain::mine(url, 1).await;
    let mut receipts = Vec::new();
    for hash in hashes {
        receipts.push(call(url, "eth_getTransactionReceipt", json!([hash])).await);
    }
    receipts
}

fn address_of(receipt: &Value) -> String {
    receipt["contractAddress"]
        .as_str()
        .expect("a creation receipt has contractAddress")
        .to_lowercase()
}

/// The router (forwards its calldata to `standard`, then STATICCALLs `reverter`), the failing
/// router (forwards, then reverts), the factory (CREATEs a `standard` token) and the
/// self-destructing contract, as runtime codes.
fn helper_codes(standard: &[u8], reverter: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut router = Vec::new();
    forward_call(&mut router, standard);
    static_call(&mut router, reverter);
    router.push(0x00);
    let mut failing = Vec::new();
    forward_call(&mut failing, standard);
    failing.extend_from_slice(&[0x60, 0x00, 0x80, 0xfd]);
    let child = init_code(&tokens()[0].1.runtime());
    let mut factory = Vec::new();
    push2(&mut factory, child.len());
    push2(&mut factory, 17);
    factory.extend_from_slice(&[0x60, 0x00, 0x39]); // CODECOPY(0, 17, len)
    push2(&mut factory, child.len());
    factory.extend_from_slice(&[0x60, 0x00, 0x80, 0xf0, 0x00]); // CREATE(0, 0, len) STOP
    assert_eq!(factory.len(), 17);
    factory.extend_from_slice(&child);
    let suicider = vec![0x33, 0xff]; // CALLER SELFDESTRUCT
    vec![
        ("router", router),
        ("failing_router", failing),
        ("factory", factory),
        ("suicider", suicider),
    ]
}

/// Deploys `codes` from `from` in one block; returns `(name, address)` pairs.
async fn deploy_block(url: &str, from: &str, codes: &[(&str, Vec<u8>)]) -> Vec<(String, String)> {
    let txs = codes
        .iter()
        .map(|(_, c)| json!({"from": from, "data": hex(&init_code(c)), "gas": "0x200000"}))
        .collect();
    let receipts = mine_block(url, txs).await;
    codes
        .iter()
        .zip(&receipts)
        .map(|((n, _), r)| (n.to_string(), address_of(r)))
        .collect()
}

/// `transfer(to, amount)` calldata.
fn transfer(to: &str, amount: u128) -> String {
    let mut data = selector("transfer(address,uint256)").to_vec();
    data.extend(vec![0u8; 12]);
    data.extend(hex_bytes(to));
    data.extend(word(amount));
    hex(&data)
}

/// Deploys the contracts (two blocks) and calls them (a third block) on the fixture node.
pub async fn deploy_contracts(url: &str, chain: &ChainInfo) -> Contracts {
    let from = chain.accounts[8].clone();
    call(url, "evm_setAutomine", json!([false])).await;
    let first = crate::rpc::block_number(url).await + 1;
    let specs: Vec<(&str, Vec<u8>)> = tokens().iter().map(|(n, d)| (*n, d.runtime())).collect();
    let tokens = deploy_block(url, &from, &specs).await;
    let addr = |name: &str| hex_bytes(&tokens.iter().find(|(n, _)| n == name).unwrap().1);
    let helpers = helper_codes(&addr("standard"), &addr("reverter"));
    let others = deploy_block(url, &from, &helpers).await;
    let contracts = Contracts {
        tokens,
        others,
        blocks: (first, first + 2),
    };
    let send =
        |to: &str, data: String| json!({"from": from, "to": to, "data": data, "gas": "0x100000"});
    let a1 = chain.accounts[1].clone();
    let txs = vec![
        send(contracts.get("standard"), transfer(&a1, 1000)),
        send(contracts.get("bytes32"), transfer(&a1, 7)),
        send(contracts.get("router"), transfer(&a1, 42)),
        send(contracts.get("failing_router"), transfer(&a1, 43)),
        send(contracts.get("factory"), "0x".into()),
        send(contracts.get("suicider"), "0x".into()),
        send(contracts.get("reverter"), "0x".into()),
    ];
    let receipts = mine_block(url, txs).await;
    let status: Vec<&str> = receipts
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        ["0x1", "0x1", "0x1", "0x0", "0x1", "0x1", "0x0"],
        "call outcomes"
    );
    call(url, "evm_setAutomine", json!([true])).await;
    contracts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_strings_are_padded_to_words() {
        assert_eq!(abi_string(b"").len(), 64);
        assert_eq!(abi_string(b"NWT").len(), 96);
        assert_eq!(abi_string(&[1; 32]).len(), 96);
        assert_eq!(abi_string(&[1; 33]).len(), 128);
    }

    #[test]
    fn the_dispatcher_lays_out_its_jump_targets() {
        for (_, d) in tokens() {
            let code = d.runtime();
            // Every PUSH2 destination before the first JUMPDEST lands on a JUMPDEST.
            let mut i = 0;
            while i < code.len() && code[i] != 0x5b {
                if code[i] == 0x61 && code.get(i + 3) == Some(&0x57) {
                    let dest = (code[i + 1] as usize) << 8 | code[i + 2] as usize;
                    assert_eq!(code[dest], 0x5b, "jump to {dest}");
                }
                i += 1 + if (0x60..=0x7f).contains(&code[i]) {
                    code[i] as usize - 0x5f
                } else {
                    0
                };
            }
        }
    }
}
