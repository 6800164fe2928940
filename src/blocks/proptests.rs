//! Property-based fuzzing of block-parameter extraction: never a panic on any params, and
//! the block read back is the one written, in every form a client may write it.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::fuzzing::check;

const METHODS: &[&str] = &[
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_call",
    "eth_getBalance",
    "eth_getStorageAt",
    "eth_getProof",
    "eth_getLogs",
    "eth_getBlockByHash",
    "eth_getTransactionReceipt",
    "trace_block",
    "eth_chainId",
    "eth_unknown",
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "(0x)?[0-9a-fA-Fxz]{0,70}".prop_map(Value::from),
        prop_oneof![
            Just("latest"),
            Just("earliest"),
            Just("pending"),
            Just("safe"),
            Just("finalized")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("fromBlock".to_string()),
                    Just("toBlock".to_string()),
                    Just("blockHash".to_string()),
                    Just("blockNumber".to_string()),
                    "[a-z]{1,4}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn raw(v: &Value) -> Box<RawValue> {
    RawValue::from_string(v.to_string()).unwrap()
}

#[test]
fn fuzz_block_need_never_panics() {
    let params = prop_oneof![
        any_json().prop_map(|v| v.to_string()),
        ".{0,40}".prop_map(String::from),
    ];
    check(
        "blocks/any-params",
        (prop::sample::select(METHODS), params),
        |(method, text)| {
            let params = RawValue::from_string(text).ok();
            let _ = need(method, params.as_deref());
            let _ = is_nullable(method);
            Ok(())
        },
    );
}

/// A block number as a client writes it: hex quantity, or inside an EIP-1898 object.
fn written(n: u64, eip1898: bool) -> Value {
    let hex = Value::from(format!("{n:#x}"));
    if eip1898 {
        json!({ "blockNumber": hex })
    } else {
        hex
    }
}

#[test]
fn fuzz_block_numbers_read_back() {
    let case = (any::<u64>(), any::<bool>(), any::<u64>(), any::<bool>());
    check("blocks/numbers", case, |(n, eip1898, m, full)| {
        let by_number = json!([written(n, false), full]);
        prop_assert_eq!(
            need("eth_getBlockByNumber", Some(&raw(&by_number))),
            BlockNeed::Number(n)
        );
        let call = json!([{"to": "0x01"}, written(n, eip1898)]);
        prop_assert_eq!(need("eth_call", Some(&raw(&call))), BlockNeed::Number(n));
        let storage = json!(["0x01", "0x0", written(n, eip1898)]);
        prop_assert_eq!(
            need("eth_getStorageAt", Some(&raw(&storage))),
            BlockNeed::Number(n)
        );
        let logs = json!([{"fromBlock": format!("{m:#x}"), "toBlock": format!("{n:#x}")}]);
        prop_assert_eq!(
            need("eth_getLogs", Some(&raw(&logs))),
            BlockNeed::Number(n.max(m))
        );
        Ok(())
    });
}

#[test]
fn fuzz_block_tags_and_hashes() {
    let tag = prop::sample::select(&["latest", "pending", "safe", "finalized"][..]);
    let hash = "[0-9a-f]{64}".prop_map(|h| format!("0x{h}"));
    check("blocks/tags-hashes", (tag, hash), |(tag, hash)| {
        prop_assert_eq!(
            need("eth_getBlockByNumber", Some(&raw(&json!([tag, false])))),
            BlockNeed::Latest
        );
        prop_assert_eq!(
            need("eth_getBalance", Some(&raw(&json!(["0x01", tag])))),
            BlockNeed::Latest
        );
        prop_assert_eq!(
            need("eth_call", Some(&raw(&json!([{}, {"blockHash": hash}])))),
            BlockNeed::ByHash
        );
        prop_assert_eq!(
            need("eth_getBlockReceipts", Some(&raw(&json!([hash])))),
            BlockNeed::ByHash
        );
        prop_assert_eq!(
            need("eth_getLogs", Some(&raw(&json!([{"blockHash": hash}])))),
            BlockNeed::ByHash
        );
        Ok(())
    });
}
