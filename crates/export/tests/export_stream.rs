//! `nodewatch-export stream` against `ethereumetl stream` (console output)
//! on the shared fixture chain: the printed items are byte-identical, the
//! last-synced-block file is kept the same way, and a stream that is stopped
//! and resumed from its state file prints exactly what one run prints.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::anvil::Anvil;
use support::chain::build_chain;
use support::etl::diff_excerpt;
use support::export::stream::{etl_stream_until, read_state, wait_state};
use support::export::{exporter, exporter_async, ours_output};

/// Runs `ethereumetl stream` until its state file says `head`, then stops it;
/// returns what it printed (collected in a file, so a full pipe never stalls it).
async fn etl_stream(etl: &Path, args: &[&str], state: &Path, head: u64) -> Vec<u8> {
    let printed = state.with_extension("out");
    let mut a = vec!["stream"];
    a.extend(args);
    a.extend([
        "-l",
        state.to_str().unwrap(),
        "--period-seconds",
        "1",
        "-w",
        "1",
    ]);
    let a: Vec<String> = a.into_iter().map(String::from).collect();
    let file = std::fs::File::create(&printed).unwrap();
    etl_stream_until(etl, &a, state, head, file.into()).await;
    std::fs::read(&printed).unwrap()
}

/// Panics with a readable excerpt unless the outputs are equal.
fn assert_same_output(what: &str, expected: &[u8], got: &[u8]) {
    assert!(
        expected == got,
        "{what}: outputs differ\n{}",
        diff_excerpt(expected, got)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_prints_the_same_items_as_ethereumetl() {
    let Some(tools) = support::tools::require_all() else {
        return;
    };
    let node = Anvil::spawn(&tools.anvil).await;
    let url = node.url();
    let chain = build_chain(&url).await;
    let head = chain.head.to_string();
    let dir = tempfile::tempdir().unwrap();
    for (i, (entities, block_batch)) in [
        ("block,transaction,log,token_transfer", "7"),
        ("log,token_transfer", "100"),
    ]
    .into_iter()
    .enumerate()
    {
        let (etl_state, our_state) = (
            dir.path().join(format!("etl{i}.txt")),
            dir.path().join(format!("our{i}.txt")),
        );
        let common = [
            "-s",
            "0",
            "-p",
            &url,
            "-e",
            entities,
            "-B",
            block_batch,
            "-b",
            "3",
        ];
        let expected = etl_stream(&tools.ethereumetl, &common, &etl_state, chain.head).await;
        let mut a = vec!["stream"];
        a.extend(common);
        a.extend(["-l", our_state.to_str().unwrap(), "--end-block", &head]);
        let out = ours_output(&a);
        assert!(expected.len() > 1000, "ethereumetl printed items");
        assert_same_output(entities, &expected, &out.stdout);
        assert_eq!(
            std::fs::read(&etl_state).unwrap(),
            std::fs::read(&our_state).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_continues_where_it_stopped() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let url = node.url();
    let chain = build_chain(&url).await;
    let head = chain.head.to_string();
    let dir = tempfile::tempdir().unwrap();
    let (whole_state, part_state) = (dir.path().join("whole.txt"), dir.path().join("part.txt"));
    let (w, p) = (whole_state.to_str().unwrap(), part_state.to_str().unwrap());
    let whole = ours_output(&[
        "stream",
        "-s",
        "3",
        "-p",
        &url,
        "-l",
        w,
        "-B",
        "4",
        "--end-block",
        &head,
    ])
    .stdout;
    // Items are grouped per sync round, so stop on a round boundary (3..=6, 7..=10).
    let first = ours_output(&[
        "stream",
        "-s",
        "3",
        "-p",
        &url,
        "-l",
        p,
        "-B",
        "4",
        "--end-block",
        "10",
    ])
    .stdout;
    assert_eq!(read_state(&part_state), Some(10));
    let rest = ours_output(&[
        "stream",
        "-p",
        &url,
        "-l",
        p,
        "-B",
        "4",
        "--end-block",
        &head,
    ])
    .stdout;
    assert_same_output("resumed stream", &whole, &[first, rest].concat());
    assert_eq!(read_state(&part_state), Some(chain.head as i64));
    // A start block with an existing state file is refused, like ethereum-etl does.
    let o = exporter(&["stream", "-s", "0", "-p", &url, "-l", p, "--end-block", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("should not exist"));
    // --lag keeps the stream behind the head: with lag 5 it stops at head - 5 and waits.
    let lag_state = dir.path().join("lag.txt");
    let mut child = exporter_async(&[
        "stream",
        "-s",
        "0",
        "-p",
        &url,
        "-l",
        lag_state.to_str().unwrap(),
        "--lag",
        "5",
        "-B",
        "100",
    ])
    .args(["--period-seconds", "1", "--quiet"])
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    wait_state(&lag_state, chain.head as i64 - 5, Duration::from_secs(30)).await;
    // The scenario: time passes (a period and more), and the stream stays behind.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        read_state(&lag_state),
        Some(chain.head as i64 - 5),
        "stays behind"
    );
    child.start_kill().unwrap();
}
