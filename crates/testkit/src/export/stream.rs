//! Helpers for the `stream` output tests: running `nodewatch-export stream` as a child to
//! kill or signal, its state file, and our batch export of a block range (already proven
//! byte-identical to ethereum-etl's by the diff tests) to compare stream output with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::{ours, s};
use crate::etl::assert_files_identical;
use crate::poll::poll_until;

/// The block number in a last-synced-block file, if it holds one.
pub fn read_state(p: &Path) -> Option<i64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Starts `nodewatch-export <args> --quiet`; stdout is discarded, stderr goes to `stderr_to`.
pub fn spawn(args: &[String], stderr_to: &Path) -> Child {
    let mut quiet = args.to_vec();
    quiet.push("--quiet".into());
    spawn_announcing(&quiet, stderr_to)
}

/// Starts `nodewatch-export <args>` (not quiet: its stderr, to `stderr_to`, says when a round
/// found nothing to sync, for [`wait_idle`]); stdout is discarded.
pub fn spawn_announcing(args: &[String], stderr_to: &Path) -> Child {
    super::exporter(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr_to).unwrap())
        .spawn()
        .expect("start nodewatch-export")
}

/// What a stream (ours and ethereum-etl's alike) prints before its period sleep.
const IDLE: &str = "Nothing to sync";

/// Waits up to `within` until the stream writing its stderr (or log) to `stderr` says it has
/// nothing to sync after recording block `head` (or anywhere, if it never had to record it):
/// it is idle, in its period sleep.
pub async fn wait_idle(stderr: &Path, head: u64, within: Duration) {
    let idle = poll_until(within, async || {
        idle_after(&std::fs::read_to_string(stderr).unwrap_or_default(), head).then_some(())
    });
    if idle.await.is_none() {
        panic!(
            "the stream did not go idle after block {head} within {within:?}:\n{}",
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
    }
}

/// Whether `log` says "nothing to sync" after its last line recording block `head`
/// (ethereum-etl's "Writing last synced block N"; ours records silently, so anywhere).
fn idle_after(log: &str, head: u64) -> bool {
    let recorded = format!("Writing last synced block {head}\n");
    let after = log.rfind(&recorded).map_or(log, |at| &log[at..]);
    after.contains(IDLE)
}

/// Waits up to `within` for the state file to say at least `block`.
pub async fn wait_state(state: &Path, block: i64, within: Duration) {
    let reached = poll_until(within, async || {
        read_state(state).is_some_and(|b| b >= block).then_some(())
    });
    if reached.await.is_none() {
        panic!(
            "the stream did not reach block {block} within {within:?} (state {:?})",
            read_state(state)
        );
    }
}

/// Runs `ethereumetl <args>` (a `stream` command, with the one environment scrub) until its
/// state file `state` says `head`, then stops it. What it prints goes to `printed`, its log to
/// `<state>.log`. Panics, showing the log, if it exits first or does not get there in 90 s.
pub async fn etl_stream_until(
    ethereumetl: &Path,
    args: &[String],
    state: &Path,
    head: u64,
    printed: Stdio,
) {
    let log = state.with_extension("log");
    let mut cmd = tokio::process::Command::from(crate::tools::scrubbed(ethereumetl));
    // Unbuffered: what it printed is in the file once it records the round.
    cmd.args(args)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(printed)
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("run ethereumetl stream");
    let synced = poll_until(Duration::from_secs(90), async || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "ethereumetl stream exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        (read_state(state) == Some(head as i64)).then_some(())
    });
    assert!(synced.await.is_some(), "ethereumetl stream never synced");
    // It prints (and commits) a round before it records it, so all is out; it is stopped
    // once it says it is idle, not mid-round.
    wait_idle(&log, head, Duration::from_secs(30)).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

/// Waits for a child to exit (polling, so the runtime keeps running other tasks).
pub async fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let status = poll_until(within, async || child.try_wait().unwrap()).await;
    status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("nodewatch-export did not exit within {within:?}");
    })
}

/// The file kinds of a directory output, as the batch export names them.
pub const KINDS: [&str; 5] = [
    "blocks",
    "transactions",
    "receipts",
    "logs",
    "token_transfers",
];

/// Our batch export of blocks `lo..=hi` into `dir/<kind>.<ext>` for every kind.
pub fn batch_export(
    url: &str,
    lo: u64,
    hi: u64,
    dir: &Path,
    ext: &str,
) -> BTreeMap<String, PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let file = |kind: &str| dir.join(format!("{kind}.{ext}"));
    let (lo, hi) = (lo.to_string(), hi.to_string());
    let node = ["-p", url, "-w", "1"];
    let run = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(node.iter().map(|a| a.to_string()));
        ours(&all);
    };
    run(&[
        "export_blocks_and_transactions",
        "-s",
        &lo,
        "-e",
        &hi,
        "--blocks-output",
        &s(&file("blocks")),
        "--transactions-output",
        &s(&file("transactions")),
    ]);
    let hashes = dir.join("hashes.txt");
    ours(&[
        "extract_field".into(),
        "-i".into(),
        s(&file("transactions")),
        "-f".into(),
        "hash".into(),
        "-o".into(),
        s(&hashes),
    ]);
    run(&[
        "export_receipts_and_logs",
        "-t",
        &s(&hashes),
        "--receipts-output",
        &s(&file("receipts")),
        "--logs-output",
        &s(&file("logs")),
    ]);
    run(&[
        "export_token_transfers",
        "-s",
        &lo,
        "-e",
        &hi,
        "-o",
        &s(&file("token_transfers")),
    ]);
    KINDS.iter().map(|k| (k.to_string(), file(k))).collect()
}

/// `(lo, hi, path)` of the files of one kind under a stream output directory, in order.
pub fn stream_files(root: &Path, kind: &str) -> Vec<(u64, u64, PathBuf)> {
    let mut files: Vec<(u64, u64, PathBuf)> = std::fs::read_dir(root.join(kind))
        .unwrap_or_else(|e| panic!("{}/{kind}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name
                .strip_prefix(&format!("{kind}_"))
                .and_then(|r| r.rsplit_once('.'))
                .map(|(stem, _)| stem.to_owned())
                .unwrap_or_else(|| panic!("unexpected file {}", p.display()));
            let (lo, hi) = stem.split_once('_').unwrap();
            (lo.parse().unwrap(), hi.parse().unwrap(), p)
        })
        .collect();
    files.sort();
    files
}

/// Checks a stream output directory: for every kind, files cover `0..=head` without gap or
/// overlap, and each equals the batch export of its range byte for byte. Returns the number
/// of files compared.
pub fn assert_dir_matches_batch(
    url: &str,
    root: &Path,
    head: u64,
    ext: &str,
    scratch: &Path,
) -> usize {
    let mut compared = 0;
    let mut batches: BTreeMap<(u64, u64), BTreeMap<String, PathBuf>> = BTreeMap::new();
    for kind in KINDS {
        let files = stream_files(root, kind);
        let mut next = 0;
        for (lo, hi, path) in &files {
            assert_eq!(
                *lo,
                next,
                "{kind}: gap or overlap before {}",
                path.display()
            );
            assert!(path.extension().unwrap() == ext, "{}", path.display());
            next = hi + 1;
            let batch = batches.entry((*lo, *hi)).or_insert_with(|| {
                batch_export(
                    url,
                    *lo,
                    *hi,
                    &scratch.join(format!("{lo}-{hi}-{ext}")),
                    ext,
                )
            });
            assert_files_identical(&batch[kind], path);
            compared += 1;
        }
        assert_eq!(
            next,
            head + 1,
            "{kind}: files end at block {}",
            next as i64 - 1
        );
    }
    compared
}

/// Runs `nodewatch-export <args>` to completion after SIGKILLing it `kills` times, each time
/// once the state file has moved past where that run started (so every run makes progress)
/// plus a few varying milliseconds, so kills land at different points of a round. Calls
/// `after_kill` after each kill; returns the state each run started from.
pub async fn run_with_kills(
    args: &[String],
    state: &Path,
    kills: usize,
    mut after_kill: impl FnMut(),
) -> Vec<i64> {
    let err = state.with_extension("err");
    let jitter_ms = [0u64, 3, 7, 1, 12, 5];
    let mut started_from = Vec::new();
    for i in 0..=kills {
        let from = read_state(state).unwrap_or(-1);
        started_from.push(from);
        let mut child = spawn(args, &err);
        if i == kills {
            let status = wait_exit(&mut child, Duration::from_secs(60)).await;
            assert!(
                status.success(),
                "{}",
                std::fs::read_to_string(&err).unwrap()
            );
            break;
        }
        wait_state(state, from + 1, Duration::from_secs(30)).await;
        // The scenario: a seeded jitter, so each kill lands at another point of a round.
        tokio::time::sleep(Duration::from_millis(jitter_ms[i % jitter_ms.len()])).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the stream finished before kill {}; use more rounds",
            i + 1
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        after_kill();
    }
    started_from
}

#[cfg(test)]
mod tests {
    use super::idle_after;

    #[test]
    fn idle_means_nothing_to_sync_after_the_head_was_recorded() {
        let etl = "\
x [INFO] - Nothing to sync. Sleeping for 1 seconds...
x [INFO] - Writing last synced block 30
x [INFO] - Current block 30, target block 30, last synced block 30, blocks to sync 0
";
        assert!(!idle_after(etl, 30), "a round before the head was recorded");
        let etl = format!("{etl}x [INFO] - Nothing to sync. Sleeping for 1 seconds...\n");
        assert!(idle_after(&etl, 30));
        assert!(idle_after(
            "Nothing to sync. Sleeping for 30 seconds...\n",
            9
        ));
        assert!(!idle_after("", 9));
    }
}
