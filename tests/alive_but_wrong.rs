//! Nodes that answer the probe but not the work, against real anvil nodes and the real
//! `ethereumetl`:
//!
//! - rank 1 on a minority fork (same chain id, same height, other blocks from block 2 on):
//!   an export through nodewatch equals a direct export from rank 2;
//! - a one-block reorg on one node does not mark it forked;
//! - rank 1 without the trace APIs (geth's -32601 wording): `export_traces` and
//!   `export_geth_traces` through nodewatch equal direct exports from rank 2;
//! - rank 1 frozen (SIGSTOP) under closed-loop load: hedging keeps every request short;
//! - one slow upstream: answers that take longer than the attempt timeout still arrive.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::chain::build_chain;
use support::etl::{
    assert_files_identical, export_blocks_and_transactions, run_ethereumetl, EtlOptions,
};
use support::fault::{Fault, FaultServer};
use support::nodewatch::{test_config, Nodewatch};
use support::rpc;

/// Three anvil nodes with the fixture chain.
async fn three_nodes(anvil: &Path) -> (Anvil, Anvil, Anvil, u64) {
    let (a, b, c) = (
        Anvil::spawn(anvil).await,
        Anvil::spawn(anvil).await,
        Anvil::spawn(anvil).await,
    );
    for node in [&a, &b, &c] {
        build_chain(&node.url()).await;
    }
    let head = b.block_number().await;
    for node in [&a, &c] {
        assert_eq!(node.block_number().await, head, "same chain on every node");
    }
    (a, b, c, head)
}

/// Replaces the node's blocks from `from` on with other ones (other transactions, other
/// hashes), keeping its height: a minority fork.
async fn fork_from(node: &Anvil, from: u64) {
    let head = node.block_number().await;
    let accounts = rpc::call(&node.url(), "eth_accounts", json!([])).await;
    let (sender, receiver) = (accounts[5].clone(), accounts[6].clone());
    let txs: Vec<Value> = (0..3)
        .map(|i| json!([{"from": sender, "to": receiver, "value": format!("0x{:x}", 1000 + i)}, i]))
        .collect();
    rpc::call(&node.url(), "anvil_reorg", json!([head - from + 1, txs])).await;
    assert_eq!(node.block_number().await, head, "a fork of the same height");
}

async fn hash_at(url: &str, n: u64) -> String {
    let block = rpc::call(
        url,
        "eth_getBlockByNumber",
        json!([format!("{n:#x}"), false]),
    )
    .await;
    block["hash"].as_str().unwrap().to_string()
}

/// Polls `/readyz` until it answers 200, as a deployment's readiness probe would.
async fn wait_ready(nw: &Nodewatch) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if rpc::try_get(&format!("{}/readyz", nw.admin))
            .await
            .is_ok_and(|(s, _)| s == 200)
        {
            return;
        }
        assert!(Instant::now() < deadline, "nodewatch never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A metric's value in `/metrics` (the first sample line starting with `series`).
async fn metric(nw: &Nodewatch, series: &str) -> Option<f64> {
    let (_, text) = rpc::get(&format!("{}/metrics", nw.admin)).await;
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_through_nodewatch_never_reads_a_minority_fork() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let (a, b, c, head) = three_nodes(&tools.anvil).await;
    fork_from(&a, 2).await;
    assert_eq!(hash_at(&a.url(), 1).await, hash_at(&b.url(), 1).await);
    assert_ne!(hash_at(&a.url(), 2).await, hash_at(&b.url(), 2).await);
    let mut config = test_config(&[a.url(), b.url(), c.url()]);
    // Probes at the production pace: the verdict must not depend on many quick rounds.
    config.probe.interval = Duration::from_secs(2);
    let nw = Nodewatch::start_with(config).await;
    wait_ready(&nw).await;
    let state = &nw.handle.snapshot.load().upstreams[0];
    assert!(state.forked, "rank 1 is forked once ready: {state:?}");
    assert!(nw.handle.snapshot.load().upstreams[1..]
        .iter()
        .all(|u| !u.forked));

    let dir = tempfile::tempdir().unwrap();
    let through = export_blocks_and_transactions(&nw.url, 0, head, &dir.path().join("nw")).await;
    let direct = export_blocks_and_transactions(&b.url(), 0, head, &dir.path().join("b")).await;
    assert_files_identical(&through.blocks, &direct.blocks);
    assert_files_identical(&through.transactions, &direct.transactions);

    assert_eq!(
        metric(&nw, "nodewatch_upstream_forked{upstream=\"u1\"}").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&nw, "nodewatch_upstream_forked{upstream=\"u2\"}").await,
        Some(0.0)
    );
    let (_, status) = rpc::get(&format!("{}/status", nw.admin)).await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["upstreams"][0]["forked"], true, "{status}");
    assert_ne!(status["serving"], "u1", "{status}");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_block_reorg_on_one_node_is_not_a_fork() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (a, b, c, _) = three_nodes(&anvil).await;
    let nw = Nodewatch::start(&[a.url(), b.url(), c.url()]).await;
    wait_ready(&nw).await;
    let probes = |nw: &Nodewatch| {
        let nw_admin = nw.admin.clone();
        async move {
            let (_, text) = rpc::get(&format!("{nw_admin}/metrics")).await;
            text.lines()
                .filter(|l| {
                    l.starts_with("nodewatch_probes_total{") && l.contains("upstream=\"u2\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        }
    };
    let before_reorg = hash_at(&b.url(), b.block_number().await).await;
    rpc::call(&b.url(), "anvil_reorg", json!([1, []])).await;
    assert_ne!(
        hash_at(&b.url(), b.block_number().await).await,
        before_reorg
    );
    // Ten more probe rounds of u2 after the reorg, each judged.
    let start = probes(&nw).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while probes(&nw).await < start + 10.0 {
        assert!(Instant::now() < deadline, "probes stopped");
        let snapshot = nw.handle.snapshot.load();
        assert!(
            snapshot.upstreams.iter().all(|u| !u.forked),
            "a one-block reorg flapped a node: {:?}",
            snapshot.upstreams
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(nw
        .handle
        .snapshot
        .load()
        .upstreams
        .iter()
        .all(|u| !u.forked));
    assert_eq!(
        metric(&nw, "nodewatch_upstream_transitions_total{to=\"forked\"").await,
        None,
        "no fork transition at all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_go_to_the_node_that_has_the_api() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let (a, b) = (
        Anvil::spawn(&tools.anvil).await,
        Anvil::spawn(&tools.anvil).await,
    );
    build_chain(&a.url()).await;
    build_chain(&b.url()).await;
    let head = b.block_number().await;
    let full_node = FaultServer::start(
        &a.url(),
        Fault::NoMethod(vec!["trace_".into(), "debug_trace".into()]),
    )
    .await;
    let nw = Nodewatch::start(&[full_node.url(), b.url()]).await;
    wait_ready(&nw).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = EtlOptions::default();
    for (command, file) in [
        ("export_traces", "traces.csv"),
        ("export_geth_traces", "geth.json"),
    ] {
        let mut outputs = Vec::new();
        for (via, url) in [("nw", nw.url.clone()), ("direct", b.url())] {
            let out = dir.path().join(format!("{via}-{file}"));
            let args: Vec<String> = [
                command,
                "-s",
                "0",
                "-e",
                &head.to_string(),
                "-p",
                &url,
                "-b",
                "5",
                "-w",
                "1",
                "-o",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([out.display().to_string()])
            .collect();
            run_ethereumetl(&args, opts.timeout).await;
            outputs.push(out);
        }
        assert_files_identical(&outputs[0], &outputs[1]);
        assert!(
            std::fs::metadata(&outputs[0]).unwrap().len() > 0,
            "{command} wrote nothing"
        );
    }
    // The monitor publishes what was learned at its next round.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let learned = nw.handle.snapshot.load().upstreams[0]
            .unsupported_methods
            .clone();
        if learned.iter().any(|m| m == "trace_block")
            && learned.iter().any(|m| m == "debug_traceBlockByNumber")
        {
            break;
        }
        assert!(Instant::now() < deadline, "not learned: {learned:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let learned = metric(
        &nw,
        "nodewatch_unsupported_methods_total{method=\"trace_block\",upstream=\"u1\"}",
    )
    .await;
    assert_eq!(learned, Some(1.0), "learned once, not per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_primary_costs_no_request_more_than_the_hedge_delay() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (mut a, b) = (Anvil::spawn(&anvil).await, Anvil::spawn(&anvil).await);
    build_chain(&a.url()).await;
    build_chain(&b.url()).await;
    let mut config = test_config(&[a.url(), b.url()]);
    // Production timings: probes every 2 s, attempts of 10 s, so only hedging helps.
    config.probe = Default::default();
    config.proxy = Default::default();
    let nw = Arc::new(Nodewatch::start_with(config).await);
    wait_ready(&nw).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for client in 0..8u64 {
        let (nw, stop, done, failed) = (nw.clone(), stop.clone(), done.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let block = format!("{:#x}", (client + n) % 20);
                let started = Instant::now();
                let answer =
                    rpc::try_call(&nw.url, "eth_getBlockByNumber", json!([block, true])).await;
                slowest = slowest.max(started.elapsed());
                match answer {
                    Ok(v) if v.is_object() => done.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
            }
            slowest
        }));
    }
    let wait_done = |at_least: usize| {
        let done = done.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while done.load(Ordering::Relaxed) < at_least {
                assert!(Instant::now() < deadline, "the clients made no progress");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_done(200).await;
    a.pause();
    let paused_at = done.load(Ordering::Relaxed);
    // Until well after the probes have taken rank 1 out (2 failed probe rounds of 2 s).
    wait_done(paused_at + 2000).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while nw.status(1) != nodewatch::upstream::health::Status::Unhealthy {
        assert!(Instant::now() < deadline, "rank 1 never marked down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut slowest = Duration::ZERO;
    for c in clients {
        slowest = slowest.max(c.await.unwrap());
    }
    a.resume();
    let hedges = metric(&nw, "nodewatch_hedges_total{upstream=\"u2\"}")
        .await
        .unwrap_or(0.0);
    println!(
        "FIGURE hung primary under 8 closed-loop clients: slowest request {} ms, {} requests, {} failed, {hedges} hedges to rank 2",
        slowest.as_millis(),
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        hedges >= 1.0,
        "requests caught on the frozen node were hedged"
    );
    assert!(
        slowest <= Duration::from_millis(1500),
        "slowest request took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_only_upstream_answers_past_the_attempt_timeout() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    build_chain(&node.url()).await;
    node.mine(400).await;
    let slow = FaultServer::start(&node.url(), Fault::Pass).await;
    let mut config = test_config(&[slow.url()]);
    config.proxy.request_timeout = Duration::from_secs(60);
    let attempt = config.proxy.attempt_timeout;
    let nw = Nodewatch::start_with(config).await;
    wait_ready(&nw).await;
    // Slower than any attempt timeout; the node is the only candidate.
    slow.set(Fault::Delay(attempt + Duration::from_secs(1)));
    let batch: Vec<Value> = (0..400u64)
        .map(|n| json!({"jsonrpc":"2.0","id":n,"method":"eth_getBlockByNumber","params":[format!("{n:#x}"), true]}))
        .collect();
    let body = Value::Array(batch).to_string();
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (url, body) = (nw.url.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let (status, text) = rpc::post(&url, &body).await;
            let answers: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
            (
                status,
                answers.iter().filter(|a| a["result"].is_object()).count(),
                text,
            )
        }));
    }
    for c in clients {
        let (status, good, text) = c.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(good, 400, "every block answered: {:.300}", text);
    }
}
