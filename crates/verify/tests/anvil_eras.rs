//! The verifier against anvil, once per hardfork anvil 1.7.1 runs (`--hardfork`): frontier,
//! homestead, byzantium, berlin, london, shanghai, cancun, prague. Each era's node gets the
//! transactions that era allows, then every block's `eth_getBlockByNumber(n, true)` and
//! `eth_getBlockReceipts(n)` answer, as raw JSON, must pass [`verify_block`] and
//! [`verify_block_receipts`] with every check on (senders included); a tampered copy of a
//! block and of its receipts must fail.
//!
//! Per era (automine off, blocks mined with the testkit's deterministic timestamps):
//! * block 1: the testkit's token contract created by an EIP-155 legacy transaction, and a
//!   pre-EIP-155 legacy transfer (signed here: anvil signs every legacy tx with a chain id);
//! * block 2: token calls emitting `Transfer` logs as an EIP-155 legacy tx, a pre-EIP-155 legacy
//!   tx, from berlin an EIP-2930 tx, from london an EIP-1559 tx, from prague an EIP-7702 tx
//!   (the authority, delegated to the token, emits the log); and a contract creation that fails
//!   (status 0);
//! * block 3, cancun only: an EIP-4844 blob transaction (one zero blob) alone (anvil loads its
//!   KZG setup on the first blob, seconds of CPU: once is enough to keep the test fast);
//! * then an empty block.
//!
//! anvil 1.7.1 builds a blob block's `transactionsRoot` from the transaction's pooled
//! encoding (with its blobs, commitments and proofs) instead of its canonical one, so such a
//! block fails the transactions-root check; the test pins exactly that (the header's root is
//! the trie of the pooled encoding) and checks the rest of the block with the transactions
//! root off. Mainnet blob blocks are covered by the fixtures in tests/fixtures.
//!
//! Needs anvil (`make tools`, or `NODEWATCH_ANVIL`): skipped with a notice when it is missing,
//! a failure when `CI=true` (the testkit's policy).

use alloy_consensus::proofs::ordered_trie_root_encoded;
use alloy_primitives::{keccak256, B256};
use k256::ecdsa::SigningKey;
use nodewatch_testkit::anvil::Anvil;
use nodewatch_testkit::chain::{transfer_calldata, REVERTING_INIT_CODE, TOKEN_INIT_CODE};
use nodewatch_testkit::rpc::{self, call, quantity};
use nodewatch_testkit::tools;
use nodewatch_verify::{verify_block, verify_block_receipts, Check, Checks, VerifiedBlock, Wrong};
use serde_json::value::RawValue;
use serde_json::{json, Value};

const GWEI: u64 = 1_000_000_000;

/// anvil's dev keys (its default mnemonic); the accounts are `eth_accounts` 1 and 2.
const RAW_SENDER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const AUTHORITY_KEY: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

/// The KZG commitment (and proof) of the all-zero blob: the compressed point at infinity.
const ZERO_BLOB_COMMITMENT: [u8; 48] = {
    let mut c = [0u8; 48];
    c[0] = 0xc0;
    c
};
/// `0x01 ++ sha256(ZERO_BLOB_COMMITMENT)[1..]` (EIP-4844 versioned hash).
const ZERO_BLOB_VERSIONED_HASH: &str =
    "0x010657f37554c781402a22917dee2f75def7ab966d7b770905398eba3c444014";
const BLOB_BYTES: usize = 131_072;

/// What an era allows, in fork order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Era {
    Frontier,
    Homestead,
    Byzantium,
    Berlin,
    London,
    Shanghai,
    Cancun,
    Prague,
}

impl Era {
    fn name(self) -> &'static str {
        match self {
            Era::Frontier => "frontier",
            Era::Homestead => "homestead",
            Era::Byzantium => "byzantium",
            Era::Berlin => "berlin",
            Era::London => "london",
            Era::Shanghai => "shanghai",
            Era::Cancun => "cancun",
            Era::Prague => "prague",
        }
    }
}

macro_rules! era_test {
    ($name:ident, $era:expr) => {
        #[tokio::test]
        async fn $name() {
            run_era($era).await;
        }
    };
}

era_test!(frontier, Era::Frontier);
era_test!(homestead, Era::Homestead);
era_test!(byzantium, Era::Byzantium);
era_test!(berlin, Era::Berlin);
era_test!(london, Era::London);
era_test!(shanghai, Era::Shanghai);
era_test!(cancun, Era::Cancun);
era_test!(prague, Era::Prague);

async fn run_era(era: Era) {
    let Some(bin) = tools::require_anvil() else {
        return;
    };
    let node = Anvil::builder(&bin)
        .no_mining()
        .arg("--hardfork")
        .arg(era.name())
        .spawn()
        .await;
    let url = node.url();
    let accounts: Vec<String> =
        serde_json::from_value(call(&url, "eth_accounts", json!([])).await).unwrap();
    let chain_id = node.chain_id();
    let raw_sender = Key::new(RAW_SENDER_KEY);
    let authority = Key::new(AUTHORITY_KEY);
    assert_eq!(raw_sender.address, accounts[1], "anvil's dev account 1");
    assert_eq!(authority.address, accounts[2], "anvil's dev account 2");

    // Block 1: the token, and a pre-EIP-155 transfer.
    let create = send(
        &url,
        json!({"from": accounts[0], "data": TOKEN_INIT_CODE, "gasPrice": qty(40 * GWEI)}),
    )
    .await;
    let raw = raw_sender.pre_eip155(0, 50 * GWEI, 21_000, &accounts[5], 1, &[]);
    send_raw(&url, &raw).await;
    mine(&node, 2).await;
    let receipt = call(&url, "eth_getTransactionReceipt", json!([create])).await;
    let token = receipt["contractAddress"]
        .as_str()
        .expect("token address")
        .to_owned();

    // Block 2: token calls of every type the era has, and a failing creation.
    let mut expected_types = vec!["0x0"];
    let call_data = |to: usize, amount: u64| transfer_calldata(&accounts[to], amount);
    let legacy = json!({
        "from": accounts[3], "to": token, "data": call_data(6, 1), "gasPrice": qty(41 * GWEI),
    });
    send(&url, legacy).await;
    let raw = raw_sender.pre_eip155(
        1,
        50 * GWEI,
        100_000,
        &token,
        0,
        &hex_bytes(&call_data(7, 2)),
    );
    send_raw(&url, &raw).await;
    let failing = json!({
        "from": accounts[4], "data": REVERTING_INIT_CODE, "gas": qty(100_000),
        "gasPrice": qty(42 * GWEI),
    });
    send(&url, failing).await;
    let mut count = 3;
    if era >= Era::Berlin {
        let access_list = json!([{"address": token, "storageKeys": [format!("0x{:064x}", 2)]}]);
        let eip2930 = json!({
            "from": accounts[5], "to": token, "data": call_data(8, 3), "gasPrice": qty(43 * GWEI),
            "accessList": access_list,
        });
        send(&url, eip2930).await;
        expected_types.push("0x1");
        count += 1;
    }
    if era >= Era::London {
        let eip1559 = json!({
            "from": accounts[6], "to": token, "data": call_data(9, 4),
            "maxFeePerGas": qty(44 * GWEI), "maxPriorityFeePerGas": qty(GWEI),
        });
        send(&url, eip1559).await;
        expected_types.push("0x2");
        count += 1;
    }
    if era >= Era::Prague {
        let auth = authority.authorization(chain_id, &token, 0);
        // To the authority, whose code is now the token's: the log comes from the authority.
        let eip7702 = json!({
            "from": accounts[0], "to": accounts[2], "data": call_data(3, 5), "gas": qty(200_000),
            "maxFeePerGas": qty(45 * GWEI), "maxPriorityFeePerGas": qty(2 * GWEI),
            "authorizationList": [auth],
        });
        send(&url, eip7702).await;
        expected_types.push("0x4");
        count += 1;
    }
    mine(&node, count).await;

    // Block 3 (cancun): one blob transaction, alone.
    let mut blob_block = None;
    if era == Era::Cancun {
        let blob = raw_sender.blob_tx(chain_id, 2, &accounts[7]);
        send_raw(&url, &blob.pooled).await;
        blob_block = Some((rpc::block_number(&url).await + 1, blob));
        mine(&node, 1).await;
    }
    // An empty block.
    mine(&node, 0).await;

    let head = rpc::block_number(&url).await;
    let mut checked = Vec::new();
    for n in 0..=head {
        let block = raw_result(&url, "eth_getBlockByNumber", json!([qty(n), true])).await;
        let receipts = raw_result(&url, "eth_getBlockReceipts", json!([qty(n)])).await;
        let blob = blob_block
            .as_ref()
            .filter(|(b, _)| *b == n)
            .map(|(_, tx)| tx);
        let verified = match blob {
            None => verify_block(&block, &Checks::all())
                .unwrap_or_else(|e| panic!("{}: block {n} does not verify: {e}", era.name())),
            Some(tx) => anvil_blob_block(era, n, &block, tx),
        };
        verify_block_receipts(&receipts, &verified.header, Some(&verified), &Checks::all())
            .unwrap_or_else(|e| panic!("{}: receipts of block {n} do not verify: {e}", era.name()));
        checked.push((n, verified.transaction_count));
    }

    // Block 2 holds what was sent, of the era's types, with the failed creation.
    let block2: Value = serde_json::from_slice(
        &raw_result(&url, "eth_getBlockByNumber", json!(["0x2", true])).await,
    )
    .unwrap();
    let mut types: Vec<&str> = block2["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    types.sort();
    types.dedup();
    assert_eq!(
        types,
        expected_types,
        "{}: transaction types in block 2",
        era.name()
    );
    let receipts2: Value =
        serde_json::from_slice(&raw_result(&url, "eth_getBlockReceipts", json!(["0x2"])).await)
            .unwrap();
    let statuses: Vec<u64> = receipts2
        .as_array()
        .unwrap()
        .iter()
        .map(|r| quantity(&r["status"]))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 0).count(),
        1,
        "{}: one failed tx in block 2: {statuses:?}",
        era.name()
    );
    let logs: usize = receipts2
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["logs"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        logs,
        count - 1,
        "{}: every token call in block 2 logs once",
        era.name()
    );

    tampered(era, &block2, &receipts2);
    eprintln!("{}: blocks (number, txs) verified: {checked:?}", era.name());
}

/// A block holding anvil's blob transaction: its `transactionsRoot` is the trie of the pooled
/// encoding (anvil 1.7.1), so the default check fails on exactly that; everything else holds.
fn anvil_blob_block(era: Era, n: u64, block: &[u8], tx: &BlobTx) -> VerifiedBlock {
    let err = verify_block(block, &Checks::all())
        .expect_err("anvil's blob block root is the pooled encoding's");
    assert_eq!(
        err.check,
        Check::TransactionsRoot,
        "{}: block {n}: {err}",
        era.name()
    );
    let json: Value = serde_json::from_slice(block).unwrap();
    let root: B256 = json["transactionsRoot"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        root,
        ordered_trie_root_encoded(&[&tx.pooled]),
        "{}: block {n}: root of the pooled encoding",
        era.name()
    );
    assert_ne!(root, ordered_trie_root_encoded(&[&tx.canonical]));
    assert_eq!(
        json["transactions"][0]["hash"].as_str().unwrap(),
        keccak256(&tx.canonical).to_string()
    );
    let checks = Checks {
        transactions: false,
        ..Checks::all()
    };
    verify_block(block, &checks)
        .unwrap_or_else(|e| panic!("{}: blob block {n} apart from its root: {e}", era.name()))
}

/// Changed answers must fail: a transaction's value (its hash no longer matches), and a log's
/// data (the blooms still match, the receipts root does not).
fn tampered(era: Era, block: &Value, receipts: &Value) {
    let mut bad_block = block.clone();
    let value = quantity(&bad_block["transactions"][0]["value"]);
    bad_block["transactions"][0]["value"] = json!(qty(value + 1));
    let err = expect_wrong(
        verify_block(&serde_json::to_vec(&bad_block).unwrap(), &Checks::all()).map(|_| ()),
    );
    assert_eq!(
        err.check,
        Check::TransactionHash,
        "{}: tampered block: {err}",
        era.name()
    );

    let verified = verify_block(&serde_json::to_vec(block).unwrap(), &Checks::all()).unwrap();
    let mut bad = receipts.clone();
    let with_log = bad
        .as_array()
        .unwrap()
        .iter()
        .position(|r| !r["logs"].as_array().unwrap().is_empty())
        .unwrap();
    bad[with_log]["logs"][0]["data"] = json!(format!("0x{:064x}", 0xbad));
    let json = serde_json::to_vec(&bad).unwrap();
    let err = expect_wrong(
        verify_block_receipts(&json, &verified.header, Some(&verified), &Checks::all()).map(|_| ()),
    );
    assert_eq!(
        err.check,
        Check::ReceiptsRoot,
        "{}: tampered receipts: {err}",
        era.name()
    );
}

fn expect_wrong(r: Result<(), Wrong>) -> Wrong {
    r.expect_err("a tampered answer verified")
}

/// The `result` of a call, as the raw JSON bytes the node sent.
async fn raw_result(url: &str, method: &str, params: Value) -> Vec<u8> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        result: Option<&'a RawValue>,
    }
    let body = rpc::request(method, params.clone()).to_string();
    let (status, text) = rpc::post(url, &body).await;
    assert_eq!(status, 200, "{method}({params}): HTTP {status}: {text}");
    let answer: Answer<'_> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: {e}: {text}"));
    let result = answer
        .result
        .unwrap_or_else(|| panic!("{method}({params}) has no result: {text}"));
    result.get().as_bytes().to_vec()
}

async fn send(url: &str, tx: Value) -> String {
    call(url, "eth_sendTransaction", json!([tx]))
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send_raw(url: &str, raw: &[u8]) -> String {
    call(
        url,
        "eth_sendRawTransaction",
        json!([format!("0x{}", hex(raw))]),
    )
    .await
    .as_str()
    .unwrap()
    .to_owned()
}

/// Mine one block holding the `expect` pending transactions.
async fn mine(node: &Anvil, expect: usize) {
    let n = node.mine(1).await;
    let block = call(&node.url(), "eth_getBlockByNumber", json!([qty(n), false])).await;
    let got = block["transactions"].as_array().unwrap().len();
    assert_eq!(
        got, expect,
        "block {n} has {got} transactions, {expect} were sent"
    );
}

/// A dev key that signs what anvil will not sign for us.
struct Key {
    sk: SigningKey,
    address: String,
}

struct BlobTx {
    /// `0x03 || rlp(tx)`: what the block and the hash commit to.
    canonical: Vec<u8>,
    /// `0x03 || rlp([tx, blobs, commitments, proofs])`: what eth_sendRawTransaction takes.
    pooled: Vec<u8>,
}

impl Key {
    fn new(hex_key: &str) -> Key {
        let sk = SigningKey::from_slice(&hex_bytes(hex_key)).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let address = format!("0x{}", hex(&keccak256(&point.as_bytes()[1..])[12..]));
        Key { sk, address }
    }

    /// (y parity, r, s) of a signature over `hash`.
    fn sign(&self, hash: B256) -> (u8, Vec<u8>, Vec<u8>) {
        let (sig, recid) = self.sk.sign_prehash_recoverable(hash.as_slice()).unwrap();
        let bytes = sig.to_bytes();
        (
            recid.to_byte(),
            trim(&bytes[..32]).to_vec(),
            trim(&bytes[32..]).to_vec(),
        )
    }

    /// A legacy transaction signed without a chain id (v = 27/28).
    fn pre_eip155(
        &self,
        nonce: u64,
        gas_price: u64,
        gas: u64,
        to: &str,
        value: u64,
        data: &[u8],
    ) -> Vec<u8> {
        let mut fields = vec![
            rlp_uint(nonce),
            rlp_uint(gas_price),
            rlp_uint(gas),
            rlp_bytes(&hex_bytes(to)),
            rlp_uint(value),
            rlp_bytes(data),
        ];
        let (y, r, s) = self.sign(keccak256(rlp_list(&fields)));
        fields.extend([rlp_uint(27 + u64::from(y)), rlp_bytes(&r), rlp_bytes(&s)]);
        rlp_list(&fields)
    }

    /// An EIP-7702 authorization (as eth_sendTransaction takes it) delegating to `address`.
    fn authorization(&self, chain_id: u64, address: &str, nonce: u64) -> Value {
        let mut msg = vec![0x05];
        msg.extend(rlp_list(&[
            rlp_uint(chain_id),
            rlp_bytes(&hex_bytes(address)),
            rlp_uint(nonce),
        ]));
        let (y, r, s) = self.sign(keccak256(msg));
        json!({
            "chainId": qty(chain_id), "address": address, "nonce": qty(nonce),
            "yParity": qty(u64::from(y)),
            "r": format!("0x{}", hex(&r)), "s": format!("0x{}", hex(&s)),
        })
    }

    /// An EIP-4844 transaction carrying one all-zero blob.
    fn blob_tx(&self, chain_id: u64, nonce: u64, to: &str) -> BlobTx {
        let versioned = rlp_list(&[rlp_bytes(&hex_bytes(ZERO_BLOB_VERSIONED_HASH))]);
        let mut fields = vec![
            rlp_uint(chain_id),
            rlp_uint(nonce),
            rlp_uint(GWEI),      // max priority fee
            rlp_uint(50 * GWEI), // max fee
            rlp_uint(21_000),
            rlp_bytes(&hex_bytes(to)),
            rlp_uint(0),
            rlp_bytes(&[]),
            rlp_list(&[]),  // access list
            rlp_uint(GWEI), // max fee per blob gas
            versioned,
        ];
        let mut unsigned = vec![0x03];
        unsigned.extend(rlp_list(&fields));
        let (y, r, s) = self.sign(keccak256(unsigned));
        fields.extend([rlp_uint(u64::from(y)), rlp_bytes(&r), rlp_bytes(&s)]);
        let tx = rlp_list(&fields);
        let mut canonical = vec![0x03];
        canonical.extend(&tx);
        let one = |b: &[u8]| rlp_list(&[rlp_bytes(b)]);
        let mut pooled = vec![0x03];
        pooled.extend(rlp_list(&[
            tx,
            one(&[0u8; BLOB_BYTES]),
            one(&ZERO_BLOB_COMMITMENT),
            one(&ZERO_BLOB_COMMITMENT),
        ]));
        BlobTx { canonical, pooled }
    }
}

// Minimal RLP, for the few transactions signed here.

fn rlp_bytes(b: &[u8]) -> Vec<u8> {
    if b.len() == 1 && b[0] < 0x80 {
        return vec![b[0]];
    }
    let mut out = rlp_prefix(0x80, b.len());
    out.extend_from_slice(b);
    out
}

fn rlp_uint(v: u64) -> Vec<u8> {
    rlp_bytes(trim(&v.to_be_bytes()))
}

fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let payload = items.concat();
    let mut out = rlp_prefix(0xc0, payload.len());
    out.extend(payload);
    out
}

fn rlp_prefix(base: u8, len: usize) -> Vec<u8> {
    if len < 56 {
        return vec![base + len as u8];
    }
    let be = len.to_be_bytes();
    let len_bytes = trim(&be);
    let mut out = vec![base + 55 + len_bytes.len() as u8];
    out.extend_from_slice(len_bytes);
    out
}

/// Without leading zero bytes (the RLP form of an integer).
fn trim(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

fn qty(v: u64) -> String {
    format!("{v:#x}")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
