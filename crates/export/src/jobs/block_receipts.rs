//! Verified headers and receipt sets from one provider, for the verified receipts, logs and
//! token-transfer exports. A block's receipts come from one `eth_getBlockReceipts` and are
//! checked against its verified header (`eth_getBlockByHash(hash, false)`, unless
//! remembered); the blocks a batch needs go in one JSON-RPC batch (up to
//! [`BLOCKS_PER_BATCH`] blocks each), and blocks that batches in flight share are fetched
//! once ([`Verifier::claim`]). A provider that
//! answers `eth_getBlockReceipts` with "method not found" gets the fallback: the full block
//! (each transaction hash and the transactions root verified) and one
//! `eth_getTransactionReceipt` per transaction, checked as a set the same way.
//!
//! Everything here is one attempt on one provider: a wrong answer is a [`Failure::Wrong`]
//! and the caller's retry asks the next provider for the whole batch again.

use std::collections::HashMap;
use std::sync::Arc;

use nodewatch_verify::{verify_block_receipts, BlockRef, Header, VerifiedReceipts, Wrong, B256};
use serde_json::value::RawValue;

use crate::batch::error_failure;
use crate::pyvalue::PyValue;
use crate::rpc::{Call, Failure, Node};
use crate::verified::{not_the_block, wrong, Verifier};

/// The JSON-RPC error code of a method the node does not have.
const METHOD_NOT_FOUND: i128 = -32601;

/// Blocks whose headers or receipts go in one JSON-RPC batch (a header and the receipts
/// make two calls a block): however large `-b`, batches stay under common provider limits.
const BLOCKS_PER_BATCH: usize = 50;

/// `eth_getTransactionReceipt` calls per batch in the fallback (ethereum-etl's default `-b`).
const RECEIPTS_PER_BATCH: usize = 100;

/// The verified receipt sets of `blocks` (hashes), in that order: remembered ones, the
/// others fetched from `node`.
pub(crate) async fn receipt_sets(
    node: &Node,
    v: &Verifier,
    blocks: &[B256],
) -> Result<Vec<Arc<VerifiedReceipts>>, Failure> {
    let mut found: HashMap<B256, Arc<VerifiedReceipts>> = HashMap::new();
    let mut missing: Vec<B256> = Vec::new();
    remembered(v, blocks, &mut found, &mut missing);
    if !missing.is_empty() {
        // Another batch in flight may be fetching some of them: wait for it, look again.
        let _claim = v.claim(&missing).await;
        let unclaimed = std::mem::take(&mut missing);
        remembered(v, &unclaimed, &mut found, &mut missing);
        if !missing.is_empty() {
            for chunk in missing.chunks(BLOCKS_PER_BATCH) {
                for set in fetch_sets(node, v, chunk).await? {
                    v.remember_receipts(&set);
                    found.insert(set.block.1, set);
                }
            }
        }
    }
    blocks
        .iter()
        .map(|h| {
            found
                .get(h)
                .cloned()
                .ok_or_else(|| Failure::Retriable(format!("block {h}: no receipts fetched")))
        })
        .collect()
}

/// Sorts `blocks` into the remembered sets (`found`) and the others (`missing`, each once).
fn remembered(
    v: &Verifier,
    blocks: &[B256],
    found: &mut HashMap<B256, Arc<VerifiedReceipts>>,
    missing: &mut Vec<B256>,
) {
    for hash in blocks {
        match v.receipts(hash) {
            Some(set) => {
                found.insert(*hash, set);
            }
            None if !missing.contains(hash) => missing.push(*hash),
            None => {}
        }
    }
}

/// The header (unless remembered) and `eth_getBlockReceipts` of each block in one batch;
/// the blocks whose receipts the node cannot serve that way go to [`fallback_sets`].
async fn fetch_sets(
    node: &Node,
    v: &Verifier,
    blocks: &[B256],
) -> Result<Vec<Arc<VerifiedReceipts>>, Failure> {
    if v.lacks_block_receipts(&node.name()) {
        return fallback_sets(node, v, blocks).await;
    }
    let mut calls = Vec::new();
    // Per block: where its header answer is (None: remembered).
    let mut header_at: Vec<Option<usize>> = Vec::with_capacity(blocks.len());
    for hash in blocks {
        header_at.push(v.header(hash).is_none().then(|| {
            calls.push(block_call(hash, false));
            calls.len() - 1
        }));
        calls.push(hash_call("eth_getBlockReceipts", hash, "receipts of block"));
    }
    let mut answers: Vec<Option<Result<Box<RawValue>, PyValue>>> =
        node.answers(&calls).await?.into_iter().map(Some).collect();
    let mut sets = Vec::with_capacity(blocks.len());
    let mut fallback = Vec::new();
    let mut at = 0;
    for (hash, header_at) in blocks.iter().zip(header_at) {
        let header = match header_at {
            Some(i) => checked_header(v, hash, answer(&mut answers, &calls, i)?)?,
            None => v
                .header(hash)
                .ok_or_else(|| Failure::Retriable(format!("block {hash}: header forgotten")))?,
        };
        at += usize::from(header_at.is_some());
        let receipts_at = at;
        at += 1;
        match answers[receipts_at].take() {
            Some(Ok(raw)) => {
                let set = verify_block_receipts(raw.get().as_bytes(), &header, None, v.checks())
                    .map_err(wrong)?;
                sets.push(Arc::new(set));
            }
            Some(Err(error)) if lacks_method(&error) => {
                v.note_lacks_block_receipts(&node.name());
                fallback.push(*hash);
            }
            other => return Err(answer_failure(other, &calls[receipts_at])),
        }
    }
    if !fallback.is_empty() {
        sets.extend(fallback_sets(node, v, &fallback).await?);
    }
    Ok(sets)
}

/// The receipts of `blocks` without `eth_getBlockReceipts`: the full blocks (verified), then
/// one `eth_getTransactionReceipt` per transaction (in batches of [`RECEIPTS_PER_BATCH`]).
async fn fallback_sets(
    node: &Node,
    v: &Verifier,
    blocks: &[B256],
) -> Result<Vec<Arc<VerifiedReceipts>>, Failure> {
    let calls: Vec<Call> = blocks.iter().map(|h| block_call(h, true)).collect();
    let mut full = Vec::with_capacity(blocks.len());
    let mut receipt_calls = Vec::new();
    for (raw, hash) in node.raw_once(&calls).await?.iter().zip(blocks) {
        let block = v.block(raw)?;
        if block.header.hash != *hash {
            return Err(not_the_block(
                BlockRef {
                    number: None,
                    hash: Some(*hash),
                },
                &block.header,
            ));
        }
        let Some(txs) = &block.transactions else {
            return Err(wrong(Wrong::malformed(
                block.block_ref(),
                "asked for full transactions, got hashes",
            )));
        };
        receipt_calls.extend(txs.iter().map(|tx| {
            hash_call(
                "eth_getTransactionReceipt",
                &tx.hash,
                "receipt of transaction",
            )
        }));
        full.push(block);
    }
    let mut receipts = Vec::with_capacity(receipt_calls.len());
    for chunk in receipt_calls.chunks(RECEIPTS_PER_BATCH) {
        receipts.extend(node.raw_once(chunk).await?);
    }
    let mut receipts = receipts.iter();
    let mut sets = Vec::with_capacity(full.len());
    for block in &full {
        let mut list = String::from("[");
        for (i, raw) in receipts.by_ref().take(block.transaction_count).enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(raw.get());
        }
        list.push(']');
        let checks = v.checks();
        let set = verify_block_receipts(list.as_bytes(), &block.header, Some(block), checks)
            .map_err(wrong)?;
        sets.push(Arc::new(set));
    }
    Ok(sets)
}

/// The verified headers of blocks `lo..=hi` (`eth_getBlockByNumber(n, false)`, in batches of
/// [`BLOCKS_PER_BATCH`]).
pub(crate) async fn headers_of_range(
    node: &Node,
    v: &Verifier,
    lo: u64,
    hi: u64,
) -> Result<Vec<Header>, Failure> {
    let mut headers = Vec::new();
    let mut first = lo;
    while first <= hi {
        let last = first.saturating_add(BLOCKS_PER_BATCH as u64 - 1).min(hi);
        headers.extend(headers_of(node, v, first, last).await?);
        match last.checked_add(1) {
            Some(next) => first = next,
            None => break,
        }
    }
    Ok(headers)
}

/// [`headers_of_range`] in one batch.
async fn headers_of(node: &Node, v: &Verifier, lo: u64, hi: u64) -> Result<Vec<Header>, Failure> {
    let calls: Vec<Call> = (lo..=hi)
        .map(|n| Call {
            method: "eth_getBlockByNumber",
            params: PyValue::List(vec![PyValue::Str(format!("{n:#x}")), PyValue::Bool(false)]),
            label: format!("block {n}"),
        })
        .collect();
    let answers = node.raw_once(&calls).await?;
    let mut headers = Vec::with_capacity(answers.len());
    for (raw, n) in answers.iter().zip(lo..) {
        let block = v.block(raw)?;
        if block.header.number != n {
            let asked = BlockRef {
                number: Some(n),
                hash: None,
            };
            return Err(not_the_block(asked, &block.header));
        }
        headers.push(block.header);
    }
    Ok(headers)
}

/// The answer at `i`, or the failure its JSON-RPC error means.
fn answer(
    answers: &mut [Option<Result<Box<RawValue>, PyValue>>],
    calls: &[Call],
    i: usize,
) -> Result<Box<RawValue>, Failure> {
    match answers[i].take() {
        Some(Ok(raw)) => Ok(raw),
        other => Err(answer_failure(other, &calls[i])),
    }
}

/// The failure an answer that is not a result means (its JSON-RPC error, or none).
fn answer_failure(answer: Option<Result<Box<RawValue>, PyValue>>, call: &Call) -> Failure {
    match answer {
        Some(Err(error)) => error_failure(call, &error),
        _ => Failure::Retriable(format!("{}: no answer", call.label)),
    }
}

/// A header answer for block `hash`, verified, and that block.
fn checked_header(v: &Verifier, hash: &B256, raw: Box<RawValue>) -> Result<Header, Failure> {
    let block = v.block(&raw)?;
    if block.header.hash != *hash {
        let asked = BlockRef {
            number: None,
            hash: Some(*hash),
        };
        return Err(not_the_block(asked, &block.header));
    }
    Ok(block.header)
}

/// `eth_getBlockByHash(hash, full)`.
fn block_call(hash: &B256, full: bool) -> Call {
    Call {
        method: "eth_getBlockByHash",
        params: PyValue::List(vec![PyValue::Str(hash.to_string()), PyValue::Bool(full)]),
        label: format!("block {hash}"),
    }
}

/// `method(hash)`, labelled "`what` 0x…".
fn hash_call(method: &'static str, hash: &B256, what: &str) -> Call {
    Call {
        method,
        params: PyValue::List(vec![PyValue::Str(hash.to_string())]),
        label: format!("{what} {hash}"),
    }
}

/// Whether a JSON-RPC error says the method does not exist (geth's -32601 "the method …
/// does not exist/is not available", and the "method not found" / "not supported" wordings
/// of other nodes).
fn lacks_method(error: &PyValue) -> bool {
    if error.get("code") == Some(&PyValue::Int(METHOD_NOT_FOUND)) {
        return true;
    }
    let message = error
        .get("message")
        .and_then(PyValue::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    message.contains("method")
        && [
            "not found",
            "not supported",
            "does not exist",
            "not available",
            "unsupported",
        ]
        .iter()
        .any(|w| message.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(s: &str) -> PyValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn method_not_found_is_recognised_by_code_or_wording() {
        assert!(lacks_method(&error(r#"{"code":-32601,"message":"x"}"#)));
        assert!(lacks_method(&error(
            r#"{"code":-32000,"message":"Method eth_getBlockReceipts not found"}"#
        )));
        assert!(lacks_method(&error(
            r#"{"code":-32603,"message":"the method is not supported"}"#
        )));
        assert!(!lacks_method(&error(
            r#"{"code":-32000,"message":"block not found"}"#
        )));
        assert!(!lacks_method(&error(
            r#"{"code":-32005,"message":"rate limited"}"#
        )));
    }

    /// A node serving one real mainnet block (22196189: 274 transactions, 309 logs; from
    /// nodewatch-verify's fixtures) and its receipts; `lacks` answers `eth_getBlockReceipts`
    /// with -32601, `drop_log` drops the last log of receipt 0 wherever it is served.
    mod mainnet {
        use super::super::*;
        use crate::rpc::RpcClient;
        use nodewatch_testkit::scripted::{ok, Scripted};
        use serde_json::{json, Value};

        fn fixture(name: &str) -> Value {
            let dir = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../verify/tests/fixtures/cancun-22196189"
            );
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap())
                .unwrap()
        }

        async fn node(lacks: bool, drop_log: bool) -> Scripted {
            let (block, mut receipts) = (fixture("block.json"), fixture("receipts.json"));
            if drop_log {
                receipts[0]["logs"].as_array_mut().unwrap().pop();
            }
            Scripted::start(move |req| {
                let (block, receipts) = (block.clone(), receipts.clone());
                async move {
                    let calls = req.json().unwrap();
                    let answer: Vec<Value> = calls
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| {
                            let id = c["id"].clone();
                            match c["method"].as_str().unwrap() {
                                "eth_getBlockReceipts" if lacks => json!({"id": id,
                                    "error": {"code": -32601, "message": "the method does not exist"}}),
                                "eth_getBlockReceipts" => json!({"id": id, "result": receipts}),
                                "eth_getTransactionReceipt" => {
                                    let r = receipts.as_array().unwrap().iter()
                                        .find(|r| r["transactionHash"] == c["params"][0]);
                                    json!({"id": id, "result": r})
                                }
                                _ => json!({"id": id, "result": block}),
                            }
                        })
                        .collect();
                    ok(200, serde_json::to_string(&answer).unwrap())
                }
            })
            .await
        }

        fn hash() -> B256 {
            fixture("block.json")["hash"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        }

        async fn sets(
            node: &Scripted,
            v: &Verifier,
        ) -> Result<Vec<Arc<VerifiedReceipts>>, Failure> {
            let client = RpcClient::new(&node.url(), crate::rpc::RetryPolicy::default()).unwrap();
            let provider = client.nodes()[0].clone();
            receipt_sets(&provider, v, &[hash(), hash()]).await
        }

        #[tokio::test]
        async fn one_block_receipts_call_per_block_then_remembered() {
            let (node, v) = (node(false, false).await, Verifier::default());
            let got = sets(&node, &v).await.unwrap();
            assert_eq!((got.len(), got[0].len()), (2, 274));
            assert_eq!(node.requests(), 1, "header and receipts in one batch");
            sets(&node, &v).await.unwrap();
            assert_eq!(node.requests(), 1, "remembered");
        }

        #[tokio::test]
        async fn without_eth_get_block_receipts_the_receipts_come_one_by_one() {
            let (node, v) = (node(true, false).await, Verifier::default());
            let got = sets(&node, &v).await.unwrap();
            assert_eq!(got[0].len(), 274);
            // Header + receipts (refused), the full block, 3 batches of receipts.
            assert_eq!(node.requests(), 5);
        }

        #[tokio::test]
        async fn a_missing_log_is_a_wrong_answer_on_either_path() {
            for lacks in [false, true] {
                let (node, v) = (node(lacks, true).await, Verifier::default());
                let Err(Failure::Wrong(verdict)) = sets(&node, &v).await else {
                    panic!("a receipt without its last log passed (lacks {lacks})")
                };
                assert!(verdict.starts_with("block 22196189 (0xf7dd"), "{verdict}");
                assert!(verdict.contains("check failed"), "{verdict}");
                assert!(v.receipts(&hash()).is_none(), "nothing wrong is remembered");
            }
        }
    }
}
