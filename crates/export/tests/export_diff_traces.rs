//! `export_traces` (with and without `--genesis-traces`), `export_geth_traces`
//! and `extract_geth_traces` against ethereum-etl 2.4.2 (the Python 3.10
//! reference) on the fixture chain plus the contracts of
//! `nodewatch_testkit::contracts` (internal calls, a reverted internal call,
//! a reverted transaction with a successful child, creations from a
//! transaction and from a contract, a self-destruct), byte for byte, CSV and
//! JSON, with other `-b`/`-w` than the reference.

use nodewatch_testkit as support;

use support::contracts::deploy_contracts;
use support::etl::{assert_files_identical, read_csv};
use support::export::{args, ours, s, Fixture};
use support::reference::{require_ethereumetl310, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    deploy_contracts(&fx.url, &fx.chain).await;
    let end = support::rpc::block_number(&fx.url).await.to_string();
    let node = |w: &str, b: &str| args(&["-p", &fx.url, "-w", w, "-b", b]);
    for (cmd, extra) in [
        ("export_traces", None),
        ("export_traces", Some("--genesis-traces")),
        ("export_geth_traces", None),
    ] {
        for ext in ["csv", "json"] {
            let tag = format!("{cmd}_{}.{ext}", extra.is_some());
            let (e, o) = (
                fx.path(&format!("etl_{tag}")),
                fx.path(&format!("our_{tag}")),
            );
            let mut a = args(&[cmd, "-s", "0", "-e", &end]);
            a.extend(extra.map(str::to_owned));
            let mut ae = a.clone();
            ae.extend(node("1", "1"));
            ae.extend(args(&["-o", &s(&e)]));
            let (t_etl, _) = run(&etl, &ae).await;
            let mut ao = a;
            ao.extend(node("4", "3"));
            ao.extend(args(&["-o", &s(&o)]));
            let t_ours = ours(&ao);
            assert_files_identical(&e, &o);
            eprintln!("FIGURE {tag}: blocks 0..={end}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}");
        }
    }
    // The chain has what the trace columns are about.
    let rows = read_csv(&fx.path("our_export_traces_false.csv"));
    let has = |f: &dyn Fn(&std::collections::BTreeMap<String, String>) -> bool| rows.iter().any(f);
    assert!(
        has(&|r| r["trace_address"] == "0" && r["call_type"] == "call"),
        "internal call"
    );
    assert!(
        has(&|r| r["call_type"] == "staticcall" && r["status"] == "0"),
        "reverted internal call"
    );
    assert!(
        has(&|r| r["trace_address"] == "0" && r["error"].is_empty() && r["status"] == "0"),
        "child of a reverted tx"
    );
    assert!(
        has(&|r| r["trace_type"] == "create" && r["trace_address"] == "0"),
        "internal create"
    );
    assert!(has(&|r| r["trace_type"] == "suicide"), "self-destruct");
    let genesis = read_csv(&fx.path("our_export_traces_true.csv"));
    assert_eq!(
        genesis.len(),
        rows.len() + 8893,
        "mainnet genesis allocations added"
    );

    // extract_geth_traces from the reference's own geth traces file.
    let geth = fx.path("etl_export_geth_traces_false.json");
    for ext in ["csv", "json"] {
        let (e, o) = (
            fx.path(&format!("etl_xgt.{ext}")),
            fx.path(&format!("our_xgt.{ext}")),
        );
        run(
            &etl,
            &args(&[
                "extract_geth_traces",
                "-i",
                &s(&geth),
                "-w",
                "1",
                "-o",
                &s(&e),
            ]),
        )
        .await;
        ours(&args(&[
            "extract_geth_traces",
            "-i",
            &s(&geth),
            "-b",
            "7",
            "-o",
            &s(&o),
        ]));
        assert_files_identical(&e, &o);
    }
    let extracted = read_csv(&fx.path("our_xgt.csv"));
    assert!(extracted.iter().any(|r| r["trace_type"] == "suicide"));
    assert!(
        extracted.len() >= rows.len() / 2,
        "{} geth traces",
        extracted.len()
    );
}
