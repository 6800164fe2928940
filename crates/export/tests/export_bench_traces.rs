//! A bounded speed comparison (ignored by default; `cargo test -p
//! nodewatch-export --test export_bench_traces -- --ignored --nocapture`):
//! `export_traces` and `export_geth_traces` over 1000 more blocks of internal
//! calls and token transfers, ethereum-etl 2.4.2 (Python 3.10) with its
//! default `-b`/`-w` against nodewatch-export with its defaults. The outputs
//! must hold the same lines (ethereum-etl with 5 workers writes them in
//! completion order); prints `FIGURE` lines with blocks per second.

use nodewatch_testkit as support;

use serde_json::json;
use support::contracts::deploy_contracts;
use support::export::{args, ours, s, Fixture};
use support::reference::{require_ethereumetl310, run};
use support::rpc::call;

const BLOCKS: u64 = 1000;

fn sorted_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored"]
async fn trace_export_speed() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    let c = deploy_contracts(&fx.url, &fx.chain).await;
    let from = fx.chain.accounts[8].clone();
    let data = format!("0xa9059cbb{:0>64}{:064x}", &fx.chain.accounts[2][2..], 5);
    call(&fx.url, "evm_setAutomine", json!([false])).await;
    for _ in 0..BLOCKS {
        for to in [c.get("router"), c.get("standard")] {
            let tx = json!({"from": from, "to": to, "data": data, "gas": "0x100000"});
            call(&fx.url, "eth_sendTransaction", json!([tx])).await;
        }
        support::chain::mine(&fx.url, 1).await;
    }
    let head = support::rpc::block_number(&fx.url).await;
    let end = head.to_string();
    for cmd in ["export_traces", "export_geth_traces"] {
        let (e, o) = (
            fx.path(&format!("etl_{cmd}.csv")),
            fx.path(&format!("our_{cmd}.csv")),
        );
        let a = args(&[cmd, "-s", "0", "-e", &end, "-p", &fx.url]);
        let mut ae = a.clone();
        ae.extend(args(&["-o", &s(&e)]));
        let (t_etl, _) = run(&etl, &ae).await;
        let mut ao = a;
        ao.extend(args(&["-o", &s(&o)]));
        let t_ours = ours(&ao);
        let (le, lo) = (sorted_lines(&e), sorted_lines(&o));
        assert!(le.len() as u64 > BLOCKS, "{} lines", le.len());
        assert_eq!(le, lo, "same lines");
        let rate = |t: std::time::Duration| (head + 1) as f64 / t.as_secs_f64();
        eprintln!(
            "FIGURE {cmd}: {} blocks, {} rows: ethereumetl {t_etl:?} ({:.0} blocks/s), \
             nodewatch-export {t_ours:?} ({:.0} blocks/s), {:.1}x",
            head + 1,
            le.len() - 1,
            rate(t_etl),
            rate(t_ours),
            t_etl.as_secs_f64() / t_ours.as_secs_f64()
        );
    }
}
