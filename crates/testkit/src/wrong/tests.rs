//! Each mode's transformation on small answers, and the relay rewriting single and batch
//! requests in front of a scripted node.

use super::tamper::flip_low_bit;
use super::*;

const TRANSFER: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
const HASH4: &str = "0x4444444444444444444444444444444444444444444444444444444444444444";
const HASH5: &str = "0x5555555555555555555555555555555555555555555555555555555555555555";

fn log(block: u64, index: u64, data: &str) -> Value {
    json!({
        "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        "topics": [TRANSFER, format!("0x{index:064x}")],
        "data": data,
        "blockNumber": format!("{block:#x}"),
        "blockHash": if block == 4 { HASH4 } else { HASH5 },
        "transactionIndex": "0x0",
        "logIndex": format!("{index:#x}"),
        "removed": false,
    })
}

fn receipt(index: u64, status: &str, logs: Vec<Value>) -> Value {
    json!({
        "status": status,
        "cumulativeGasUsed": format!("{:#x}", 21000 * (index + 1)),
        "gasUsed": "0x5208",
        "logs": logs,
        "logsBloom": bloom_of(&logs),
        "transactionIndex": format!("{index:#x}"),
        "blockNumber": "0x5",
        "blockHash": HASH5,
    })
}

/// `eth_getBlockReceipts` of block 5: two receipts, with 2 and 1 logs.
fn receipts() -> Value {
    json!([
        receipt(0, "0x1", vec![log(5, 0, "0x01"), log(5, 1, "0x")]),
        receipt(1, "0x1", vec![log(5, 2, "0x03e8")]),
    ])
}

/// `eth_getLogs` over blocks 4..=5: two logs in block 4, one in block 5.
fn logs() -> Value {
    json!([log(4, 0, "0x0a"), log(4, 1, "0x0b"), log(5, 0, "0x0c")])
}

/// A full block 5 with two transactions and one withdrawal.
fn block() -> Value {
    let tx = |i: u64, value: &str, input: &str| {
        json!({"hash": format!("0x{i:064x}"), "transactionIndex": format!("{i:#x}"),
               "value": value, "input": input, "blockNumber": "0x5"})
    };
    json!({
        "number": "0x5", "hash": HASH5, "transactionsRoot": "0x01", "receiptsRoot": "0x02",
        "logsBloom": "0x03", "withdrawalsRoot": "0x04",
        "transactions": [tx(0, "0x10", "0xabcd"), tx(1, "0x0", "0x")],
        "withdrawals": [{"index": "0x0", "validatorIndex": "0x1",
                         "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                         "amount": "0x3b9aca00"}],
    })
}

fn hashes() -> Hashes {
    Hashes::from([(4, HASH4.to_string())])
}

/// The answer after `mode`, and whether it was changed.
fn after(mode: Mode, method: &str, mut answer: Value) -> (Value, bool) {
    let changed = tamper(mode, method, &mut answer, &hashes());
    (answer, changed)
}

/// Every kind of answer the relay rewrites, with the data it belongs to.
fn samples() -> Vec<(&'static str, Value)> {
    let mut hashes_only = block();
    hashes_only["transactions"] = json!([format!("0x{:064x}", 0)]);
    hashes_only["withdrawals"] = json!([]);
    vec![
        ("eth_getBlockByNumber", block()),
        ("eth_getBlockByHash", block()),
        ("eth_getBlockByNumber", hashes_only),
        (
            "eth_getTransactionByHash",
            block()["transactions"][0].clone(),
        ),
        ("eth_getBlockReceipts", receipts()),
        ("eth_getTransactionReceipt", receipts()[0].clone()),
        ("eth_getLogs", logs()),
        ("eth_getFilterLogs", logs()),
        ("eth_getFilterChanges", logs()),
        ("eth_blockNumber", json!("0x5")),
        ("eth_call", json!("0x01")),
    ]
}

#[test]
fn every_mode_changes_only_the_data_it_names_and_some_of_it() {
    for mode in Mode::ALL {
        let mut hit = Vec::new();
        for (method, answer) in samples() {
            let (_, changed) = after(mode, method, answer);
            if changed {
                let data = data_of(method).unwrap();
                assert!(mode.corrupts().contains(&data), "{mode:?} changed {method}");
                hit.push(data);
            }
        }
        for data in mode.corrupts() {
            assert!(hit.contains(data), "{mode:?} changed no {data:?} answer");
        }
    }
}

#[test]
fn headers_and_hashes_stay_true_in_every_mode() {
    for mode in Mode::ALL {
        let (b, _) = after(mode, "eth_getBlockByNumber", block());
        for field in [
            "number",
            "hash",
            "transactionsRoot",
            "receiptsRoot",
            "logsBloom",
        ] {
            assert_eq!(b[field], block()[field], "{mode:?} {field}");
        }
        let (r, _) = after(mode, "eth_getBlockReceipts", receipts());
        for (i, r) in r.as_array().unwrap().iter().enumerate() {
            assert_eq!(r["cumulativeGasUsed"], receipts()[i]["cumulativeGasUsed"]);
        }
    }
}

#[test]
fn drop_last_log_drops_one_log_per_receipt_and_keeps_the_bloom() {
    let (r, changed) = after(Mode::DropLastLog, "eth_getBlockReceipts", receipts());
    assert!(changed);
    assert_eq!(r[0]["logs"], json!([log(5, 0, "0x01")]));
    assert_eq!(r[1]["logs"], json!([]));
    assert_eq!(r[0]["logsBloom"], receipts()[0]["logsBloom"]);
    assert_eq!(r[1]["logsBloom"], receipts()[1]["logsBloom"]);
    let (single, changed) = after(Mode::DropLastLog, "eth_getTransactionReceipt", r[1].clone());
    assert!(!changed, "a receipt without logs is left alone");
    assert_eq!(single, r[1]);
}

#[test]
fn drop_last_log_fix_bloom_makes_the_receipt_consistent_in_itself() {
    let (r, changed) = after(
        Mode::DropLastLogFixBloom,
        "eth_getBlockReceipts",
        receipts(),
    );
    assert!(changed);
    assert_eq!(r[0]["logs"].as_array().unwrap().len(), 1);
    for r in r.as_array().unwrap() {
        assert_eq!(
            r["logsBloom"],
            json!(bloom_of(r["logs"].as_array().unwrap()))
        );
    }
    assert_ne!(r[0]["logsBloom"], receipts()[0]["logsBloom"]);
    assert_eq!(r[1]["logsBloom"], json!(format!("0x{}", "0".repeat(512))));
}

#[test]
fn the_bloom_is_the_one_anvil_computes() {
    // An ERC-20 Transfer receipt from anvil 1.7.1 (the testkit's token contract, block 2).
    let logs = json!([{
        "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        "topics": [TRANSFER,
            "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            "0x00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"],
    }]);
    let expected = concat!(
        "0x0000000000000000000200000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000800000000000000000000000000000000000000000000",
        "084000000000000000010000000000000000000000000000001000000000000000",
        "000000000000000000000000000000000000000000000000020000000000000000",
        "000000000000000000000000000000000000000000000000000000000000004200",
        "000020000000000000000000000000200000000000000000000000000000000000",
        "0000000000000000000001000000000000000000000000000000",
    );
    assert_eq!(bloom_of(logs.as_array().unwrap()), expected);
}

#[test]
fn empty_logs_answers_nothing_and_an_empty_answer_is_not_counted() {
    for method in ["eth_getLogs", "eth_getFilterLogs", "eth_getFilterChanges"] {
        assert_eq!(after(Mode::EmptyLogs, method, logs()), (json!([]), true));
        assert_eq!(
            after(Mode::EmptyLogs, method, json!([])),
            (json!([]), false)
        );
    }
    // A block filter's changes are hashes, not logs.
    let hashes = json!([HASH4, HASH5]);
    assert_eq!(
        after(Mode::EmptyLogs, "eth_getFilterChanges", hashes.clone()),
        (hashes, false)
    );
}

#[test]
fn empty_blocks_and_drop_last_tx_touch_full_blocks_only() {
    let (b, changed) = after(Mode::EmptyBlocks, "eth_getBlockByNumber", block());
    assert!(changed);
    assert_eq!(b["transactions"], json!([]));
    let (b, changed) = after(Mode::DropLastTx, "eth_getBlockByHash", block());
    assert!(changed);
    assert_eq!(b["transactions"], json!([block()["transactions"][0]]));
    let mut hashes_only = block();
    hashes_only["transactions"] = json!([HASH4]);
    for mode in [
        Mode::EmptyBlocks,
        Mode::DropLastTx,
        Mode::TxValue,
        Mode::TxInput,
    ] {
        let (b, changed) = after(mode, "eth_getBlockByNumber", hashes_only.clone());
        assert!(!changed, "{mode:?}");
        assert_eq!(b, hashes_only);
    }
    let mut empty = block();
    empty["transactions"] = json!([]);
    assert!(!after(Mode::EmptyBlocks, "eth_getBlockByNumber", empty).1);
}

#[test]
fn tx_value_and_input_change_the_last_transaction_or_the_one_answered() {
    let (b, changed) = after(Mode::TxValue, "eth_getBlockByNumber", block());
    assert!(changed);
    assert_eq!(b["transactions"][0], block()["transactions"][0]);
    assert_eq!(b["transactions"][1]["value"], "0x1");
    let (b, _) = after(Mode::TxInput, "eth_getBlockByNumber", block());
    assert_eq!(b["transactions"][1]["input"], "0x00");
    let tx = block()["transactions"][0].clone();
    let (t, changed) = after(Mode::TxValue, "eth_getTransactionByHash", tx.clone());
    assert!(changed);
    assert_eq!(t["value"], "0x11");
    let (t, _) = after(Mode::TxInput, "eth_getTransactionByBlockNumberAndIndex", tx);
    assert_eq!(t["input"], "0xabcc");
    let mut one = json!("0x1");
    assert!(flip_low_bit(&mut one));
    assert_eq!(one, "0x0");
}

#[test]
fn receipt_status_and_gas_used_change_the_last_receipt() {
    let (r, changed) = after(Mode::ReceiptStatus, "eth_getBlockReceipts", receipts());
    assert!(changed);
    assert_eq!(
        (&r[0]["status"], &r[1]["status"]),
        (&json!("0x1"), &json!("0x0"))
    );
    let mut failed = receipts()[0].clone();
    failed["status"] = json!("0x0");
    let (r, _) = after(Mode::ReceiptStatus, "eth_getTransactionReceipt", failed);
    assert_eq!(r["status"], "0x1");
    let (r, changed) = after(Mode::GasUsed, "eth_getBlockReceipts", receipts());
    assert!(changed);
    assert_eq!(
        (&r[0]["gasUsed"], &r[1]["gasUsed"]),
        (&json!("0x5208"), &json!("0x5209"))
    );
}

#[test]
fn log_index_shifts_every_log_in_receipts_and_log_queries() {
    let (r, changed) = after(Mode::LogIndex, "eth_getBlockReceipts", receipts());
    assert!(changed);
    let indexes: Vec<&Value> = r
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["logs"].as_array().unwrap())
        .map(|l| &l["logIndex"])
        .collect();
    assert_eq!(indexes, [&json!("0x1"), &json!("0x2"), &json!("0x3")]);
    let (l, _) = after(Mode::LogIndex, "eth_getLogs", logs());
    assert_eq!(l[0]["logIndex"], "0x1");
    assert_eq!(l[2]["logIndex"], "0x1");
}

#[test]
fn foreign_receipt_moves_the_receipt_and_its_logs_to_the_block_before() {
    assert_eq!(
        foreign_blocks(Mode::ForeignReceipt, "eth_getBlockReceipts", &receipts()),
        [4]
    );
    assert!(foreign_blocks(Mode::LogData, "eth_getBlockReceipts", &receipts()).is_empty());
    assert!(foreign_blocks(Mode::ForeignReceipt, "eth_getLogs", &logs()).is_empty());
    let (r, changed) = after(
        Mode::ForeignReceipt,
        "eth_getTransactionReceipt",
        receipts()[1].clone(),
    );
    assert!(changed);
    assert_eq!(
        (&r["blockNumber"], &r["blockHash"]),
        (&json!("0x4"), &json!(HASH4))
    );
    assert_eq!(r["logs"][0]["blockNumber"], "0x4");
    assert_eq!(r["logs"][0]["blockHash"], HASH4);
    let mut unknown = receipts()[1].clone();
    unknown["blockNumber"] = json!("0x9");
    assert!(!after(Mode::ForeignReceipt, "eth_getTransactionReceipt", unknown).1);
}

#[test]
fn log_data_changes_the_last_log_of_each_receipt_and_of_each_block() {
    let (r, changed) = after(Mode::LogData, "eth_getBlockReceipts", receipts());
    assert!(changed);
    assert_eq!(r[0]["logs"][0]["data"], "0x01");
    assert_eq!(r[0]["logs"][1]["data"], "0x00");
    assert_eq!(r[1]["logs"][0]["data"], "0x03e9");
    let (l, _) = after(Mode::LogData, "eth_getLogs", logs());
    let data: Vec<&Value> = l.as_array().unwrap().iter().map(|l| &l["data"]).collect();
    assert_eq!(data, [&json!("0x0a"), &json!("0x0a"), &json!("0x0d")]);
}

#[test]
fn logs_missing_block_drops_one_block_of_the_answer() {
    let (l, changed) = after(Mode::LogsMissingBlock, "eth_getLogs", logs());
    assert!(changed);
    assert_eq!(l, json!([log(4, 0, "0x0a"), log(4, 1, "0x0b")]));
    let (l, _) = after(Mode::LogsMissingBlock, "eth_getLogs", l);
    assert_eq!(l, json!([]));
}

#[test]
fn withdrawal_amount_changes_the_last_withdrawal_when_there_is_one() {
    let (b, changed) = after(Mode::WithdrawalAmount, "eth_getBlockByNumber", block());
    assert!(changed);
    assert_eq!(b["withdrawals"][0]["amount"], "0x3b9aca01");
    assert_eq!(b["transactions"], block()["transactions"]);
    let mut none = block();
    none["withdrawals"] = json!([]);
    assert!(!after(Mode::WithdrawalAmount, "eth_getBlockByNumber", none).1);
}

/// A node answering every method from the samples above (and block 4's hash).
async fn canned_node() -> Scripted {
    Scripted::start(|req: Request| async move {
        let answer = |call: &Value| {
            let result = match call["method"].as_str().unwrap() {
                "eth_getBlockByNumber" if call["params"][0] == "0x4" => json!({"hash": HASH4}),
                "eth_getBlockByNumber" => block(),
                "eth_getBlockReceipts" => receipts(),
                "eth_getTransactionReceipt" => receipts()[1].clone(),
                "eth_getLogs" => logs(),
                _ => json!("0x5"),
            };
            json!({"jsonrpc": "2.0", "id": call["id"], "result": result})
        };
        let body = match req.json().unwrap() {
            Value::Array(calls) => Value::Array(calls.iter().map(answer).collect()),
            call => answer(&call),
        };
        ok(200, body.to_string())
    })
    .await
}

fn call(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn post(url: &str, body: Value) -> Value {
    let (status, text) = crate::rpc::post(url, &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_relay_rewrites_single_and_batch_answers_and_counts_them() {
    let node = canned_node().await;
    let relay = WrongRelay::start(&node.url()).await;
    assert_eq!(relay.modes(), []);
    let single = call(
        1,
        "eth_getLogs",
        json!([{"fromBlock": "0x4", "toBlock": "0x5"}]),
    );
    assert_eq!(post(&relay.url(), single.clone()).await["result"], logs());
    assert_eq!(relay.tampered(), 0);

    relay.set_mode(Mode::EmptyLogs);
    assert_eq!(
        post(&relay.url(), single.clone()).await["result"],
        json!([])
    );
    assert_eq!(
        relay.tampered_by_method(),
        BTreeMap::from([("eth_getLogs".into(), 1)])
    );
    assert_eq!(relay.tampered_by(Mode::EmptyLogs), 1);

    relay.set_mode(Mode::DropLastLog);
    let batch = json!([
        call(7, "eth_getTransactionReceipt", json!(["0xab"])),
        call(8, "eth_blockNumber", json!([])),
        call(9, "eth_getBlockReceipts", json!(["0x5"])),
        call(10, "eth_getLogs", json!([{}])),
    ]);
    let answers = post(&relay.url(), batch.clone()).await;
    let by_id = |id: u64| {
        answers
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap()
    };
    assert_eq!(by_id(7)["result"]["logs"], json!([]));
    assert_eq!(by_id(8)["result"], "0x5");
    assert_eq!(by_id(9)["result"][0]["logs"].as_array().unwrap().len(), 1);
    assert_eq!(
        by_id(10)["result"],
        logs(),
        "mode (a) leaves eth_getLogs alone"
    );
    assert_eq!(relay.tampered(), 3);
    assert_eq!(relay.relayed_by_method()["eth_blockNumber"], 1);

    relay.set_mode(Mode::ForeignReceipt);
    let moved = post(
        &relay.url(),
        call(3, "eth_getTransactionReceipt", json!(["0xab"])),
    )
    .await;
    assert_eq!(
        moved["result"]["blockHash"], HASH4,
        "block 4's hash asked of the node"
    );
    assert_eq!(relay.tampered_by_method()["eth_getTransactionReceipt"], 2);

    // Modes on different data at once: each changes its own answers.
    relay.set_modes(&[Mode::EmptyLogs, Mode::GasUsed]);
    let answers = post(&relay.url(), batch.clone()).await;
    assert_eq!(answers[3]["result"], json!([]));
    assert_eq!(answers[2]["result"][1]["gasUsed"], "0x5209");
    assert_eq!(answers[2]["result"][1]["logs"], receipts()[1]["logs"]);
    assert_eq!(relay.tampered_by(Mode::EmptyLogs), 2);
    assert_eq!(relay.tampered_by(Mode::GasUsed), 2);

    relay.set_modes(&[]);
    let answers = post(&relay.url(), batch).await;
    assert_eq!(answers[2]["result"], receipts());
    assert_eq!(relay.tampered(), 7, "nothing more counted once honest");
}

#[tokio::test]
#[should_panic(expected = "two modes corrupt Receipts")]
async fn modes_on_the_same_data_are_refused() {
    let node = canned_node().await;
    let relay = WrongRelay::start(&node.url()).await;
    relay.set_modes(&[Mode::DropLastLog, Mode::EmptyBlocks, Mode::LogData]);
}
