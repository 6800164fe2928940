//! `nodewatch-export stream -o DIR` on the shared fixture chain: every file equals our batch
//! export of its block range (CSV and JSON), a stream killed with SIGKILL at arbitrary points
//! and restarted ends with exactly the files of an uninterrupted run (never a partial file
//! under a final name), and SIGTERM finishes the round in flight and exits 0.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;
use nodewatch_testkit::export as export_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use export_common::stream::{
    assert_dir_matches_batch, read_state, run_with_kills, spawn, spawn_announcing, stream_files,
    wait_exit, wait_idle, wait_state, KINDS,
};
use export_common::{args, ours, s, Fixture};

/// Every file under `root` (relative path -> bytes).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for kind in std::fs::read_dir(root).unwrap() {
        let kind = kind.unwrap().path();
        for f in std::fs::read_dir(&kind).unwrap() {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            files.insert(rel, std::fs::read(&f).unwrap());
        }
    }
    files
}

fn stream_args(f: &Fixture, out: &Path, state: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = args(&["stream", "-p", &f.url, "-o"]);
    a.push(format!("{}/", s(out)));
    a.extend(args(&["-l", &s(state)]));
    a.extend(args(extra));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_a_directory_writes_the_batch_export_of_every_range() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let head = f.head.to_string();
    for (ext, format) in [("csv", "csv"), ("json", "json")] {
        let (out, state) = (f.path(&format!("out-{ext}")), f.path(&format!("{ext}.txt")));
        let extra = ["-s", "0", "-B", "7", "-b", "3", "--end-block", &head];
        let mut a = stream_args(&f, &out, &state, &extra);
        a.extend(args(&["--output-format", format]));
        ours(&a);
        assert_eq!(read_state(&state), Some(f.head as i64));
        let compared = assert_dir_matches_batch(&f.url, &out, f.head, ext, &f.path("batch"));
        let rounds = (f.head + 1).div_ceil(7) as usize;
        assert_eq!(compared, KINDS.len() * rounds);
        assert!(
            std::fs::metadata(out.join(format!("logs/logs_00000000_00000006.{ext}")))
                .unwrap()
                .len()
                > 0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_directory_stream_has_every_block_exactly_once() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let head = f.head.to_string();
    let extra = ["-B", "1", "-b", "1", "-w", "1", "--end-block", &head];
    let clean = f.path("clean");
    ours(&stream_args(&f, &clean, &f.path("clean.txt"), &extra));
    let reference = tree(&clean);

    let (out, state) = (f.path("killed"), f.path("killed.txt"));
    let a = stream_args(&f, &out, &state, &extra);
    let kills = 5;
    let started = Instant::now();
    let resumed_from = run_with_kills(&a, &state, kills, || {
        // Whatever is under a final name is complete: identical to the clean run's file.
        for (name, bytes) in tree(&out) {
            if name.rsplit('/').next().unwrap().starts_with('.') {
                continue; // an abandoned temporary file
            }
            assert!(
                reference.get(&name) == Some(&bytes),
                "partial or wrong {name}"
            );
        }
    })
    .await;
    assert_eq!(read_state(&state), Some(f.head as i64));
    assert_eq!(
        tree(&out),
        reference,
        "same files, same bytes, no leftovers"
    );
    for kind in KINDS {
        let blocks: u64 = stream_files(&out, kind)
            .iter()
            .map(|(lo, hi, _)| hi - lo + 1)
            .sum();
        assert_eq!(blocks, f.head + 1, "{kind}: every block exactly once");
    }
    eprintln!(
        "FIGURE stream-dir-kill: {kills} SIGKILLs (resumed after blocks {resumed_from:?}, {:.1}s), files identical to an uninterrupted run",
        started.elapsed().as_secs_f64()
    );
}

fn sigterm(child: &std::process::Child) {
    support::binary::terminate(child.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_round_in_flight_and_exits_0() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (out, state) = (f.path("out"), f.path("state.txt"));
    let a = stream_args(
        &f,
        &out,
        &state,
        &["-B", "1", "-b", "1", "--period-seconds", "30"],
    );
    // Mid-stream: one block per round, so a round is almost always in flight.
    let mut child = spawn(&a, &f.path("err1"));
    wait_state(&state, 3, Duration::from_secs(30)).await;
    sigterm(&child);
    let stopped = wait_exit(&mut child, Duration::from_secs(20)).await;
    assert!(stopped.success(), "exit status {stopped}");
    let stopped_at = read_state(&state).unwrap();
    for kind in KINDS {
        let files = stream_files(&out, kind);
        assert_eq!(
            files.last().unwrap().1 as i64,
            stopped_at,
            "{kind}: files match the state"
        );
    }
    // Idle: the signal cuts the 30 s sleep short. Not quiet, so it says when it is idle.
    let mut child = spawn_announcing(&a, &f.path("err2"));
    wait_state(&state, f.head as i64, Duration::from_secs(30)).await;
    wait_idle(&f.path("err2"), f.head, Duration::from_secs(30)).await;
    let signalled = Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(5));
    assert_dir_matches_batch(&f.url, &out, f.head, "csv", &f.path("batch"));
    eprintln!(
        "FIGURE stream-sigterm: stopped after block {stopped_at} with exit {}, resumed to {}",
        stopped.code().unwrap_or(-1),
        f.head
    );
}
