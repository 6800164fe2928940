//! `export_all` against ethereum-etl 2.4.2 (Python 3.10) on the fixture chain
//! plus the contracts of `nodewatch_testkit::contracts`: the same directory
//! tree (Hive partitions, file names, the empty `.tmp` left behind) and
//! byte-identical files, with other `-B`/`-w` than the reference.

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
    let mut ae = a.clone();
    ae.extend(args(&["-w", "1", "-o", &s(&e)]));
    let (t_etl, _) = run(&etl, &ae).await;
    let mut ao = a;
    ao.extend(args(&["-w", "3", "-B", "7", "-o", &s(&o)]));
    let t_ours = ours(&ao);
    let (te, to) = (tree(&e), tree(&o));
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
    // 4 partitions x 7 kinds (blocks, transactions, token_transfers, receipts, logs, contracts, tokens).
    assert_eq!(files, 28, "{:?}", te.keys().collect::<Vec<_>>());
    let tokens = tree(&o.join("tokens"));
    let sizes: u64 = tokens
        .values()
        .flatten()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(sizes > 500, "tokens exported ({sizes} bytes)");
    eprintln!("FIGURE export_all 0..={end}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}");
}
