//! `stream`: follows the chain head like `ethereumetl stream`. Each round
//! syncs at most `--block-batch-size` blocks, `--lag` blocks behind the head,
//! hands them to the outputs (console, PostgreSQL, a directory: see
//! [`crate::outputs`]) and only then rewrites the last-synced-block
//! file (write + rename), so a crash at any point repeats at most the round
//! in flight, which every output writes idempotently. An idle or failed round
//! sleeps `--period-seconds`; a shutdown request (SIGTERM) lets the round in
//! flight finish and then ends the stream successfully. A method the node
//! does not have (`trace_block` for `-e trace`) stops the stream at once.
//!
//! `-p` may list several provider URIs: like ethereum-etl's
//! `pick_random_provider_uri`, the stream starts with one chosen at random
//! ([`pick_provider_uri`]); unlike it, the others are fallbacks, asked in order
//! when that one fails or answers data that does not verify.

mod fetch;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use crate::error::{ExportError, Result};
use crate::outputs::StreamOutputs;
use crate::progress::Ui;
use crate::pyvalue::PyValue;
use crate::rpc::{Call, RpcClient};

pub use crate::round::{parse_entity_types, Entity};
use fetch::fetch_round;

/// Parameters of `stream`.
#[derive(Debug, Clone)]
pub struct StreamJob {
    /// State file holding the last synced block.
    pub last_synced_block_file: String,
    /// Blocks to stay behind the head.
    pub lag: u64,
    /// First block to sync (the state file must not exist then).
    pub start_block: Option<u64>,
    /// What to print.
    pub entity_types: Vec<Entity>,
    /// Sleep between idle rounds.
    pub period: Duration,
    /// Blocks/receipts per JSON-RPC batch.
    pub batch_size: usize,
    /// Blocks per sync round.
    pub block_batch_size: u64,
    /// Concurrent batches.
    pub max_workers: usize,
    /// Stop once this block is synced (nodewatch-export extension).
    pub end_block: Option<u64>,
}

/// ethereum-etl's `pick_random_provider_uri`: the entries of a comma-separated
/// `--provider-uri`, trimmed, and one of them chosen at random (uniformly, anew
/// each time the stream starts); the stream starts with it and falls back to the
/// others in order. An empty entry is a usage error, where ethereum-etl would fail
/// on it only when it happened to be chosen.
pub fn pick_provider_uri(list: &str) -> Result<(String, Vec<String>)> {
    let uris = crate::rpc::provider_list(list)?;
    let chosen = uris[random_below(uris.len())].clone();
    Ok((chosen, uris))
}

/// A random number below `n` (n > 0), from the standard library's randomly keyed hasher.
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    (h.finish() % n.max(1) as u64) as usize
}

/// Runs the stream until `end_block` is synced (forever without one) or
/// `shutdown` completes; a shutdown during a round takes effect after the
/// round has been written and recorded.
pub async fn stream(
    client: &RpcClient,
    job: &StreamJob,
    outputs: &mut StreamOutputs,
    ui: Ui,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let state = Path::new(&job.last_synced_block_file);
    let fresh = job.start_block.is_some() || !state.is_file();
    if fresh && state.is_file() {
        return Err(ExportError::Usage(format!(
            "{0} should not exist if --start-block option is specified. Either remove the {0} file or the --start-block option.",
            job.last_synced_block_file
        )));
    }
    let mut last_synced = if fresh {
        i128::from(job.start_block.unwrap_or(0)) - 1
    } else {
        read_state(state)?
    };
    // Outputs first: an unreachable database leaves no state file behind.
    outputs.open(&job.entity_types, last_synced).await?;
    if fresh {
        write_state(state, last_synced)?;
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut stopping = false;
    loop {
        if stopping
            || job
                .end_block
                .is_some_and(|end| last_synced >= i128::from(end))
        {
            return Ok(());
        }
        let result = {
            let mut round = std::pin::pin!(sync_round(client, job, outputs, last_synced));
            loop {
                tokio::select! {
                    biased;
                    result = &mut round => break result,
                    () = &mut shutdown, if !stopping => {
                        stopping = true;
                        if !ui.quiet {
                            eprintln!("Shutdown requested: finishing the current batch.");
                        }
                    }
                }
            }
        };
        let synced = match result {
            Ok(Some(target)) => {
                write_state(state, target)?;
                let n = target - last_synced;
                last_synced = target;
                n
            }
            Ok(None) => 0,
            Err(e) if e.stops_stream() => return Err(e),
            Err(e) => {
                eprintln!("warning: sync round after block {last_synced} failed, will retry: {e}");
                outputs.after_failure(last_synced)?;
                0
            }
        };
        if synced <= 0 && !stopping {
            if !ui.quiet {
                eprintln!(
                    "Nothing to sync. Sleeping for {} seconds...",
                    job.period.as_secs_f64()
                );
            }
            tokio::select! {
                () = tokio::time::sleep(job.period) => {}
                () = &mut shutdown => stopping = true,
            }
        }
    }
}

fn read_state(path: &Path) -> Result<i128> {
    let text = std::fs::read_to_string(path).map_err(|e| ExportError::io(path, e))?;
    text.trim().parse().map_err(|_| {
        ExportError::Usage(format!(
            "{}: not a block number: {:?}",
            path.display(),
            text.trim()
        ))
    })
}

fn write_state(path: &Path, block: i128) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or("state".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ExportError::io(parent, e))?;
    }
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, format!("{block}\n").as_bytes())?;
        f.sync_data()
    });
    written.map_err(|e| ExportError::io(&tmp, e))?;
    crate::sink::rename_durably(&tmp, path)
}

/// One round: fetches the blocks after `last`, hands them to the outputs and
/// returns the new last synced block, or `None` when there was nothing to sync.
async fn sync_round(
    client: &RpcClient,
    job: &StreamJob,
    outputs: &mut StreamOutputs,
    last: i128,
) -> Result<Option<i128>> {
    let head = current_block(client).await?;
    let mut target = (head - i128::from(job.lag)).min(last + i128::from(job.block_batch_size));
    if let Some(end) = job.end_block {
        target = target.min(i128::from(end));
    }
    if target <= last {
        return Ok(None);
    }
    let (lo, hi) = (
        u64::try_from(last + 1).unwrap_or(0),
        u64::try_from(target).unwrap_or(0),
    );
    let round = fetch_round(client, job, lo, hi).await?;
    outputs.write_round(&round, &job.entity_types).await?;
    Ok(Some(target))
}

async fn current_block(client: &RpcClient) -> Result<i128> {
    let call = [Call {
        method: "eth_blockNumber",
        params: PyValue::List(vec![]),
        label: "the current block number".into(),
    }];
    let result = client
        .batch("eth_blockNumber", &call, |mut r| Ok(r.pop()))
        .await?;
    match result
        .as_ref()
        .and_then(PyValue::as_str)
        .and_then(|s| i128::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    {
        Some(n) => Ok(n),
        None => Err(ExportError::Rpc(format!(
            "eth_blockNumber answered {result:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_types_are_validated() {
        assert_eq!(
            parse_entity_types("block, transaction,log,token_transfer").unwrap(),
            vec![
                Entity::Block,
                Entity::Transaction,
                Entity::Log,
                Entity::TokenTransfer
            ]
        );
        assert_eq!(
            parse_entity_types("trace,contract , token").unwrap(),
            vec![Entity::Trace, Entity::Contract, Entity::Token]
        );
        let e = parse_entity_types("block,receipt").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "receipt is not an available entity type. Supply a comma separated list of types \
             from block,transaction,log,token_transfer,trace,contract,token"
        );
        assert_eq!(parse_entity_types("blocks").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn one_provider_of_the_list_is_chosen_at_random() {
        let (one, all) = pick_provider_uri(" http://a:1 ").unwrap();
        assert_eq!((one.as_str(), all.len()), ("http://a:1", 1));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let (uri, all) = pick_provider_uri("http://a:1, http://b:2 ,http://c:3").unwrap();
            assert_eq!(all, ["http://a:1", "http://b:2", "http://c:3"]);
            seen.insert(uri);
        }
        // 200 uniform draws miss one of three with probability < 1e-34.
        assert_eq!(seen.len(), 3, "{seen:?}");
        for bad in ["", "http://a:1,", "http://a:1,,http://b:2", " , "] {
            assert_eq!(
                pick_provider_uri(bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/last_synced_block.txt");
        write_state(&p, -1).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "-1\n");
        assert_eq!(read_state(&p).unwrap(), -1);
        std::fs::write(&p, "x").unwrap();
        assert!(read_state(&p).is_err());
    }
}
