//! `nodewatch-export stream` against `ethereumetl stream` (console output)
//! on the shared fixture chain: the printed items are byte-identical, the
//! last-synced-block file is kept the same way, and a stream that is stopped
//! and resumed from its state file prints exactly what one run prints.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::anvil::Anvil;
use support::chain::build_chain;
use support::etl::diff_excerpt;

const BIN: &str = env!("CARGO_BIN_EXE_nodewatch-export");

fn ours(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run nodewatch-export");
    assert!(
        out.status.success(),
        "nodewatch-export {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_state(p: &Path) -> Option<i64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Runs `ethereumetl stream` until its state file says `head`, then stops it;
/// returns what it printed (collected in a file, so a full pipe never stalls it).
async fn etl_stream(etl: &Path, args: &[&str], state: &Path, head: u64) -> Vec<u8> {
    let printed = state.with_extension("out");
    let mut child = tokio::process::Command::new(etl)
        .arg("stream")
        .args(args)
        .args([
            "-l",
            state.to_str().unwrap(),
            "--period-seconds",
            "1",
            "-w",
            "1",
        ])
        .env("PYTHONUNBUFFERED", "1")
        .env("NO_PROXY", "*")
        .stdout(std::fs::File::create(&printed).unwrap())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run ethereumetl stream");
    let started = Instant::now();
    while read_state(state) != Some(head as i64) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ethereumetl stream never reached block {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It prints a round before it records it; stop it once it is idle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
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
        let expected = etl_stream(
            &tools.ethereumetl,
            &[
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
            ],
            &etl_state,
            chain.head,
        )
        .await;
        let out = ours(&[
            "stream",
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
            "-l",
            our_state.to_str().unwrap(),
            "--end-block",
            &head,
        ]);
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
    let whole = ours(&[
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
    let first = ours(&[
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
    let rest = ours(&[
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
    let o = Command::new(BIN)
        .args(["stream", "-s", "0", "-p", &url, "-l", p, "--end-block", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("should not exist"));
    // --lag keeps the stream behind the head: with lag 5 it stops at head - 5 and waits.
    let lag_state = dir.path().join("lag.txt");
    let mut child = tokio::process::Command::new(BIN)
        .args([
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
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while read_state(&lag_state) != Some(chain.head as i64 - 5) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "lagging stream never synced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        read_state(&lag_state),
        Some(chain.head as i64 - 5),
        "stays behind"
    );
    child.start_kill().unwrap();
}
