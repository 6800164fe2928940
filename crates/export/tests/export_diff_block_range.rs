//! `get_block_range_for_date` and `get_block_range_for_timestamps` against
//! ethereum-etl 2.4.2 (Python 3.10) on an anvil chain whose blocks are hours
//! apart, at irregular steps, over four days: byte-identical answers for whole
//! days, exact block times, times between blocks and before block 1; and a
//! failure (exit 1, no output) from both where ethereum-etl raises.

use nodewatch_testkit as support;

use std::process::Stdio;

use serde_json::json;
use support::anvil::Anvil;
use support::etl::assert_files_identical;
use support::export::{args, ours, s};
use support::reference::{require_ethereumetl310, run};
use support::rpc::call;

/// 2021-06-01T00:00:00Z.
const DAY0: u64 = 1_622_505_600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_ranges_are_byte_identical() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    let node = Anvil::builder(&anvil)
        .genesis_timestamp(DAY0 + 3_600)
        .spawn()
        .await;
    let url = node.url();
    let mut t = DAY0 + 7_200;
    let mut times = Vec::new();
    for i in 0..30u64 {
        t += 3_600 + (i * 7_919) % 10_800;
        call(&url, "evm_mine", json!([{ "timestamp": t }])).await;
        times.push(t);
    }
    let dir = tempfile::tempdir().unwrap();
    let p = ["-p", url.as_str()];
    let mut cases: Vec<Vec<String>> = Vec::new();
    for day in ["2021-06-01", "2021-06-02", "2021-06-03"] {
        cases.push(args(&["get_block_range_for_date", "-d", day]));
    }
    let ts = |a: u64, b: u64| {
        args(&[
            "get_block_range_for_timestamps",
            "-s",
            &a.to_string(),
            "-e",
            &b.to_string(),
        ])
    };
    cases.push(ts(times[3], times[9]));
    cases.push(ts(times[3] + 1, times[9] - 1));
    cases.push(ts(DAY0, times[5] + 17));
    cases.push(ts(times[0], times[29]));
    for (i, mut a) in cases.into_iter().enumerate() {
        a.extend(args(&p));
        let (e, o) = (
            dir.path().join(format!("etl_{i}.txt")),
            dir.path().join(format!("our_{i}.txt")),
        );
        let mut ae = a.clone();
        ae.extend(args(&["-o", &s(&e)]));
        run(&etl, &ae).await;
        a.extend(args(&["-o", &s(&o)]));
        ours(&a);
        assert_files_identical(&e, &o);
        let text = std::fs::read_to_string(&o).unwrap();
        assert!(
            text.trim_end().split(',').all(|n| n.parse::<u64>().is_ok()),
            "{text}"
        );
    }
    // ethereum-etl raises: the range ends after the last block / lies between two blocks.
    for a in [ts(times[2], times[29] + 10), ts(times[4] + 1, times[4] + 2)] {
        let mut a = a;
        a.extend(args(&p));
        let reference = std::process::Command::new(&etl)
            .args(&a)
            .env("NO_PROXY", "*")
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(reference.status.code(), Some(1), "ethereumetl {a:?}");
        let mine = std::process::Command::new(env!("CARGO_BIN_EXE_nodewatch-export"))
            .args(&a)
            .output()
            .unwrap();
        assert_eq!(mine.status.code(), Some(1), "{a:?}");
        assert!(mine.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&mine.stderr);
        assert!(
            stderr.starts_with("Error: The ") && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
}
