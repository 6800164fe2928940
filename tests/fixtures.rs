//! Tests of the shared test fixtures in tests/support: the anvil nodes, the deterministic
//! chain, the state-preserving restart and the ethereum-etl runner. The proxy's own
//! integration tests rely on all of these behaving exactly as checked here.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::{self, build_chain, ChainInfo, TOKEN_RUNTIME_CODE, TRANSFER_TOPIC};
use support::etl;
use support::rpc::{self, call, quantity};
use support::tools;

/// Every block (with full transactions) and every receipt of the chain, for exact comparison.
async fn chain_dump(url: &str, info: &ChainInfo) -> (Vec<Value>, Vec<Value>) {
    let mut blocks = Vec::new();
    for n in 0..=info.head {
        blocks.push(
            call(
                url,
                "eth_getBlockByNumber",
                json!([format!("{n:#x}"), true]),
            )
            .await,
        );
    }
    let mut receipts = Vec::new();
    for h in &info.tx_hashes {
        receipts.push(call(url, "eth_getTransactionReceipt", json!([h])).await);
    }
    (blocks, receipts)
}

#[tokio::test]
async fn two_nodes_build_identical_chains() {
    let Some(bin) = tools::require_anvil() else {
        return;
    };
    let (a, b) = tokio::join!(Anvil::spawn(&bin), Anvil::spawn(&bin));
    assert_ne!(a.port(), b.port());
    let (ua, ub) = (a.url(), b.url());
    let (ca, cb) = tokio::join!(build_chain(&ua), build_chain(&ub));

    assert_eq!(ca.head, chain::CHAIN_BLOCKS);
    assert_eq!(a.block_number().await, ca.head);
    assert_eq!(ca, cb, "build_chain reported different chains");
    // Ask both nodes again, block by block.
    let (ha, hb) = tokio::join!(
        chain::block_hashes(&ua, ca.head),
        chain::block_hashes(&ub, cb.head)
    );
    assert_eq!(ha.len() as u64, ca.head + 1);
    for (n, (x, y)) in ha.iter().zip(&hb).enumerate() {
        assert_eq!(x, y, "block {n} hash differs between the two nodes");
    }
    assert_eq!(ha, ca.block_hashes);
    // Not just the headers: full blocks and receipts are equal too.
    let (da, db) = tokio::join!(chain_dump(&ua, &ca), chain_dump(&ub, &cb));
    assert!(da == db, "blocks or receipts differ between the two nodes");
}

#[tokio::test]
async fn chain_has_every_transaction_kind_and_transfer_logs() {
    let Some(bin) = tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&bin).await;
    let url = node.url();
    let info = build_chain(&url).await;

    // The hard-coded topic really is keccak("Transfer(address,address,uint256)").
    let sig = format!("0x{}", hex(b"Transfer(address,address,uint256)"));
    assert_eq!(
        call(&url, "web3_sha3", json!([sig])).await,
        json!(TRANSFER_TOPIC)
    );
    // The hand-assembled constructor deploys exactly the runtime code.
    assert_eq!(
        call(&url, "eth_getCode", json!([info.token, "latest"])).await,
        json!(TOKEN_RUNTIME_CODE)
    );

    assert!(
        info.tx_hashes.len() >= 60,
        "only {} txs",
        info.tx_hashes.len()
    );
    assert_eq!(info.empty_blocks, vec![7, 14, 21, 28]);
    let mut types = BTreeSet::new();
    let mut logs = 0;
    for h in &info.tx_hashes {
        let tx = call(&url, "eth_getTransactionByHash", json!([h])).await;
        let r = call(&url, "eth_getTransactionReceipt", json!([h])).await;
        types.insert(quantity(&tx["type"]));
        let ok = r["status"] == json!("0x1");
        assert_eq!(ok, !info.failed.contains(h), "status of {h}");
        if info.contract_creations.contains(h) {
            assert!(tx["to"].is_null());
            assert!(
                r["contractAddress"].is_string(),
                "creation {h} has no contractAddress"
            );
        } else {
            assert!(r["contractAddress"].is_null());
        }
        if info.token_transfers.contains(h) {
            let l = r["logs"].as_array().unwrap();
            assert_eq!(l.len(), 1, "token call {h} logs");
            let topics = &l[0]["topics"];
            assert_eq!(topics[0], json!(TRANSFER_TOPIC));
            assert_eq!(topics[1], json!(word(tx["from"].as_str().unwrap())));
            assert_eq!(l[0]["address"], json!(info.token));
            assert_eq!(quantity(&tx["value"]), 0);
            logs += 1;
        }
    }
    assert_eq!(types, BTreeSet::from([0, 1, 2]), "transaction types");
    assert!(logs >= 28, "only {logs} Transfer logs");
    let token_logs = call(
        &url,
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "latest", "topics": [TRANSFER_TOPIC]}]),
    )
    .await;
    assert_eq!(token_logs.as_array().unwrap().len(), logs);
    assert_eq!(info.failed.len(), 1);
    assert_eq!(info.contract_creations.len(), 3);
}

#[tokio::test]
async fn other_chain_id_gives_other_chain() {
    let Some(bin) = tools::require_anvil() else {
        return;
    };
    let (a, b) = tokio::join!(
        Anvil::spawn(&bin),
        Anvil::builder(&bin).chain_id(1337).spawn()
    );
    let (ua, ub) = (a.url(), b.url());
    assert_eq!(call(&ua, "eth_chainId", json!([])).await, json!("0x7a69"));
    assert_eq!(call(&ub, "eth_chainId", json!([])).await, json!("0x539"));
    let (ca, cb) = tokio::join!(build_chain(&ua), build_chain(&ub));
    // Signatures commit to the chain id, so every tx and every non-empty block differs.
    assert!(ca.tx_hashes.iter().all(|h| !cb.tx_hashes.contains(h)));
    assert_ne!(ca.block_hashes[1], cb.block_hashes[1]);
}

#[tokio::test]
async fn lagging_node_is_a_prefix_of_the_leader() {
    let Some(bin) = tools::require_anvil() else {
        return;
    };
    let (leader, lagger) = tokio::join!(Anvil::spawn(&bin), Anvil::spawn(&bin));
    let (ul, ug) = (leader.url(), lagger.url());
    let (info, _) = tokio::join!(build_chain(&ul), build_chain(&ug));
    assert_eq!(leader.mine(3).await, info.head + 3);
    assert_eq!(lagger.block_number().await, info.head);
    let (hl, hg) = tokio::join!(
        chain::block_hashes(&ul, info.head + 3),
        chain::block_hashes(&ug, info.head)
    );
    assert_eq!(hl[..=info.head as usize], hg[..]);
    // Catching up with mine() reproduces the leader's blocks exactly.
    lagger.mine(3).await;
    assert_eq!(chain::block_hashes(&ug, info.head + 3).await, hl);
}

#[tokio::test]
async fn kill_and_restart_keep_the_chain() {
    let Some(bin) = tools::require_anvil() else {
        return;
    };
    let (mut node, twin) = tokio::join!(Anvil::spawn(&bin), Anvil::spawn(&bin));
    let (url, twin_url) = (node.url(), twin.url());
    let (info, _) = tokio::join!(build_chain(&url), build_chain(&twin_url));
    let before = chain_dump(&url, &info).await;
    let acct = &info.accounts[1];
    let balance_at_5 = call(&url, "eth_getBalance", json!([acct, "0x5"])).await;
    let logs_filter = json!([{"fromBlock": "0x0", "toBlock": "latest"}]);
    let logs = call(&url, "eth_getLogs", logs_filter.clone()).await;
    let old_pid = node.pid().unwrap();

    node.kill().await;
    assert!(!node.is_running());
    let down = rpc::try_post(
        &url,
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#,
    )
    .await;
    assert!(down.is_err(), "killed node still answers: {down:?}");

    node.restart().await;
    assert_eq!(node.url(), url, "restart must keep the port");
    assert_ne!(
        node.pid().unwrap(),
        old_pid,
        "restart must start a new process"
    );
    assert_eq!(node.block_number().await, info.head);
    let after = chain_dump(&url, &info).await;
    assert!(before.0 == after.0, "blocks changed across restart");
    assert!(before.1 == after.1, "receipts changed across restart");
    assert_eq!(call(&url, "eth_getLogs", logs_filter).await, logs);
    // Historical state survives too.
    assert_eq!(
        call(&url, "eth_getBalance", json!([acct, "0x5"])).await,
        balance_at_5
    );

    // The restarted node goes on exactly like a node that never went down...
    assert_eq!(node.mine(2).await, info.head + 2);
    twin.mine(2).await;
    let hashes = chain::block_hashes(&url, info.head + 2).await;
    assert_eq!(hashes, chain::block_hashes(&twin_url, info.head + 2).await);
    // ...and a second crash keeps the new blocks.
    node.kill().await;
    node.restart().await;
    assert_eq!(chain::block_hashes(&url, info.head + 2).await, hashes);
}

#[tokio::test]
async fn paused_node_does_not_answer_until_resumed() {
    let Some(bin) = tools::require_anvil() else {
        return;
    };
    let mut node = Anvil::spawn(&bin).await;
    node.pause();
    let r = rpc::try_call_timeout(
        &node.url(),
        "eth_blockNumber",
        json!([]),
        std::time::Duration::from_millis(300),
    )
    .await;
    assert!(matches!(r, Err(rpc::RpcError::Transport(_))), "{r:?}");
    node.resume();
    assert_eq!(node.block_number().await, 0);
}

#[tokio::test]
async fn ethereumetl_exports_are_identical_across_nodes() {
    let Some(t) = tools::require_all() else {
        return;
    };
    let (a, b) = tokio::join!(Anvil::spawn(&t.anvil), Anvil::spawn(&t.anvil));
    let (ua, ub) = (a.url(), b.url());
    let (info, _) = tokio::join!(build_chain(&ua), build_chain(&ub));
    let tmp = tempfile::tempdir().unwrap();
    let hashes = tmp.path().join("tx_hashes.txt");
    info.write_tx_hashes(&hashes);

    let export = |url: String, dir: std::path::PathBuf| {
        let hashes = hashes.clone();
        async move {
            let bt = etl::export_blocks_and_transactions(&url, 0, info.head, &dir).await;
            let rl = etl::export_receipts_and_logs(&url, &hashes, &dir).await;
            (bt, rl)
        }
    };
    let ((bta, rla), (btb, rlb)) = tokio::join!(
        export(ua.clone(), tmp.path().join("a")),
        export(ub.clone(), tmp.path().join("b"))
    );
    etl::assert_files_identical(&bta.blocks, &btb.blocks);
    etl::assert_files_identical(&bta.transactions, &btb.transactions);
    etl::assert_files_identical(&rla.receipts, &rlb.receipts);
    etl::assert_files_identical(&rla.logs, &rlb.logs);

    let blocks = etl::read_csv(&bta.blocks);
    assert_eq!(blocks.len() as u64, info.head + 1);
    for (n, row) in blocks.iter().enumerate() {
        assert_eq!(row["number"], n.to_string());
        assert_eq!(row["hash"], info.block_hashes[n]);
    }
    let txs = etl::read_csv(&bta.transactions);
    let exported: Vec<&str> = txs.iter().map(|r| r["hash"].as_str()).collect();
    assert_eq!(exported, info.tx_hashes, "transactions.csv rows / order");
    let types: BTreeSet<&str> = txs.iter().map(|r| r["transaction_type"].as_str()).collect();
    assert_eq!(types, BTreeSet::from(["0", "1", "2"]));

    let receipts = etl::read_csv(&rla.receipts);
    assert_eq!(receipts.len(), info.tx_hashes.len());
    let token_receipt = receipts
        .iter()
        .find(|r| r["transaction_hash"] == info.contract_creations[0])
        .unwrap();
    assert_eq!(token_receipt["contract_address"], info.token);
    let failed = receipts
        .iter()
        .find(|r| r["transaction_hash"] == info.failed[0])
        .unwrap();
    assert_eq!(failed["status"], "0");

    let logs = etl::read_csv(&rla.logs);
    assert_eq!(logs.len(), info.token_transfers.len());
    for l in &logs {
        assert!(l["topics"].starts_with(TRANSFER_TOPIC), "{l:?}");
        assert_eq!(l["topics"].split(',').count(), 3);
    }
}

#[test]
fn assert_files_identical_fails_and_points_at_the_difference() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
    std::fs::write(&a, "h1,h2\n1,2\n3,4\n5,6\n").unwrap();
    std::fs::write(&b, "h1,h2\n1,2\n3,X\n5,6\n").unwrap();
    etl::assert_files_identical(&a, &a);
    let err = std::panic::catch_unwind(|| etl::assert_files_identical(&a, &b)).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("line 3 column 3"), "{msg}");
    assert!(
        msg.contains("a>    3: 3,4") && msg.contains("b>    3: 3,X"),
        "{msg}"
    );

    std::fs::write(&b, "h1,h2\n1,2\n").unwrap();
    let err = std::panic::catch_unwind(|| etl::assert_files_identical(&a, &b)).unwrap_err();
    assert!(err.downcast_ref::<String>().unwrap().contains("line 3"));
}

#[test]
fn csv_reader_handles_quoted_topics() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("logs.csv");
    std::fs::write(&p, "log_index,topics,data\r\n0,\"0xaa,0xbb\",0x01\r\n").unwrap();
    let rows = etl::read_csv(&p);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["topics"], "0xaa,0xbb");
    assert_eq!(rows[0]["data"], "0x01");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An address as a 32-byte topic word.
fn word(addr: &str) -> String {
    format!("0x{:0>64}", addr.trim_start_matches("0x").to_lowercase())
}
