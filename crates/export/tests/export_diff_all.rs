//! `export_all` against ethereum-etl 2.4.2 (Python 3.10) on the fixture chain
//! plus the contracts of `nodewatch_testkit::contracts`: the same directory
//! tree (Hive partitions, file names, the empty `.tmp` left behind) and
//! byte-identical files, with other `-B`/`-w` than the reference; block
//! ranges, ISO dates and Unix times.

use nodewatch_testkit as support;

use std::collections::BTreeMap;
use std::path::Path;

use support::contracts::deploy_contracts;
use support::etl::assert_files_identical;
use support::export::{args, ours, s, Fixture};
use support::reference::{require_ethereumetl310, run};

/// Every entry under `root`, relative, with `None` for directories.
fn tree(root: &Path) -> BTreeMap<String, Option<std::path::PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                stack.push(path);
                out.insert(rel, None);
            } else {
                out.insert(rel, Some(path));
            }
        }
    }
    out
}

/// Runs both with `a`, then compares the trees; returns the number of files.
async fn compare_trees(etl: &std::path::PathBuf, a: Vec<String>, e: &Path, o: &Path) -> usize {
    let mut ae = a.clone();
    ae.extend(args(&["-w", "1", "-o", &s(e)]));
    let (t_etl, _) = run(etl, &ae).await;
    let mut ao = a;
    ao.extend(args(&["-w", "3", "-B", "7", "-o", &s(o)]));
    let t_ours = ours(&ao);
    let (te, to) = (tree(e), tree(o));
    assert_eq!(
        te.keys().collect::<Vec<_>>(),
        to.keys().collect::<Vec<_>>(),
        "same tree"
    );
    let mut files = 0;
    for (rel, path) in &te {
        if let (Some(pe), Some(po)) = (path, &to[rel]) {
            assert_files_identical(pe, po);
            files += 1;
        }
    }
    eprintln!(
        "FIGURE export_all {:?}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}",
        &ae[1..5]
    );
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_partitions_are_byte_identical() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    // 2021-06-01T01:00Z genesis, then blocks hours apart over three days.
    let day0 = 1_622_505_600u64;
    let node = support::anvil::Anvil::builder(&anvil)
        .genesis_timestamp(day0 + 3_600)
        .spawn()
        .await;
    let url = node.url();
    let mut t = day0 + 7_200;
    for i in 0..30u64 {
        t += 3_600 + (i * 7_919) % 10_800;
        support::rpc::call(&url, "evm_mine", serde_json::json!([{ "timestamp": t }])).await;
    }
    let dir = tempfile::tempdir().unwrap();
    for (start, end, days) in [
        ("2021-06-01", "2021-06-02", 2),
        ("1622592000", "1622678399", 1),
    ] {
        let (e, o) = (
            dir.path().join(format!("etl_{start}")),
            dir.path().join(format!("our_{start}")),
        );
        let a = args(&["export_all", "-s", start, "-e", end, "-p", &url]);
        assert_eq!(
            compare_trees(&etl, a, &e, &o).await,
            days * 7,
            "7 kinds a day"
        );
        assert!(e.join(".tmp").is_dir(), "ethereum-etl leaves .tmp behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_all_is_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    deploy_contracts(&fx.url, &fx.chain).await;
    let end = support::rpc::block_number(&fx.url).await.to_string();
    let (e, o) = (fx.path("etl"), fx.path("ours"));
    let a = args(&[
        "export_all",
        "-s",
        "0",
        "-e",
        &end,
        "-b",
        "10",
        "-p",
        &fx.url,
    ]);
    // 4 partitions x 7 kinds (blocks, transactions, token_transfers, receipts, logs, contracts, tokens).
    assert_eq!(compare_trees(&etl, a, &e, &o).await, 28);
    let tokens = tree(&o.join("tokens"));
    let sizes: u64 = tokens
        .values()
        .flatten()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(sizes > 500, "tokens exported ({sizes} bytes)");
}
