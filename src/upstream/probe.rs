//! One probe of one upstream: `eth_blockNumber` (its head and round trip), `eth_syncing`,
//! `eth_chainId` when the chain must be (re)checked, and the hash of the block the fork guard
//! compares, each bounded by the probe timeout. Only `eth_blockNumber` and `eth_chainId` can
//! fail a probe: a node without `eth_syncing`, or without the compared block yet, simply has
//! no say there.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::Upstream;
use crate::error::{AnswerError, UpstreamError, UpstreamErrorKind};
use crate::jsonrpc::{parse_answers, Answer};
use crate::quantity;

/// What one probe found.
#[derive(Debug)]
pub struct ProbeReport {
    /// Head block number.
    pub head: u64,
    /// Round trip of `eth_blockNumber`.
    pub latency: Duration,
    /// Chain id, when it was asked for.
    pub chain_id: Option<u64>,
    /// Whether `eth_syncing` said the node is syncing.
    pub syncing: bool,
    /// The hash of the block asked for by the fork guard, if it has that block.
    pub hash: Option<(u64, String)>,
}

const BLOCK_NUMBER: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"eth_blockNumber","params":[]}"#;
const CHAIN_ID: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"eth_chainId","params":[]}"#;
const SYNCING: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"eth_syncing","params":[]}"#;
/// Probe answers are tiny; anything larger is not a node.
const PROBE_RESPONSE_LIMIT: usize = 64 * 1024;
/// A block header with its transaction hashes (the fork guard's question): a full mainnet
/// block lists a few thousand.
const HEADER_RESPONSE_LIMIT: usize = 4 * 1024 * 1024;

/// What a probe asks besides the head.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeAsk {
    /// Ask `eth_chainId` too.
    pub chain: bool,
    /// Ask the hash of this block (the fork guard's height).
    pub hash_at: Option<u64>,
}

/// Probes `upstream`.
pub async fn probe(
    upstream: &Upstream,
    timeout: Duration,
    ask: ProbeAsk,
) -> Result<ProbeReport, UpstreamError> {
    let started = Instant::now();
    let head = quantity(upstream, ask_one(upstream, BLOCK_NUMBER, timeout).await?)?;
    let latency = started.elapsed();
    let chain_id = match ask.chain {
        true => Some(quantity(
            upstream,
            ask_one(upstream, CHAIN_ID, timeout).await?,
        )?),
        false => None,
    };
    let syncing = match ask_one(upstream, SYNCING, timeout).await {
        Ok(Answer::Result(raw)) => is_syncing(&raw.text()),
        _ => false,
    };
    let hash = match ask.hash_at {
        Some(height) => block_hash(upstream, height, timeout)
            .await
            .map(|h| (height, h)),
        None => None,
    };
    Ok(ProbeReport {
        head,
        latency,
        chain_id,
        syncing,
        hash,
    })
}

/// Whether an `eth_syncing` result says the node is syncing: `false` says it is not; an
/// object says it is, unless its `currentBlock` has reached its `highestBlock` (some clients
/// keep answering an object once caught up).
fn is_syncing(result: &str) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Progress {
        current_block: Option<String>,
        highest_block: Option<String>,
    }
    if result.trim() == "false" {
        return false;
    }
    match serde_json::from_str::<Progress>(result) {
        Ok(Progress {
            current_block: Some(current),
            highest_block: Some(highest),
        }) => match (quantity::parse(&current), quantity::parse(&highest)) {
            (Some(current), Some(highest)) => current < highest,
            _ => true,
        },
        _ => true,
    }
}

/// The hash of block `height` on the upstream, if it answers with one.
pub(crate) async fn block_hash(
    upstream: &Upstream,
    height: u64,
    timeout: Duration,
) -> Option<String> {
    let stamp = header(upstream, &format!("0x{height:x}"), timeout).await?;
    Some(stamp.hash)
}

/// A block's number (if it states one) and (lower-cased) hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Its number.
    pub number: Option<u64>,
    /// Its hash.
    pub hash: String,
}

/// The number and hash of `block` (a hex number or a tag such as `finalized`) on the
/// upstream; `None` when it answers an error, `null` or nothing in time.
pub(crate) async fn header(upstream: &Upstream, block: &str, timeout: Duration) -> Option<Stamp> {
    #[derive(serde::Deserialize)]
    struct Header {
        number: Option<String>,
        hash: String,
    }
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"eth_getBlockByNumber","params":["{block}",false]}}"#
    );
    let answer = upstream
        .send(Bytes::from(body), timeout, HEADER_RESPONSE_LIMIT)
        .await
        .ok()?;
    match parse_answers(&answer, 1, false).ok()?.pop()? {
        Answer::Result(raw) => {
            let header = serde_json::from_str::<Option<Header>>(&raw.text()).ok()??;
            Some(Stamp {
                number: header.number.as_deref().and_then(quantity::parse),
                hash: header.hash.to_ascii_lowercase(),
            })
        }
        Answer::Error(_) => None,
    }
}

/// One single-call exchange: the answer (a result or a JSON-RPC error).
async fn ask_one(
    upstream: &Upstream,
    body: &'static [u8],
    timeout: Duration,
) -> Result<Answer, UpstreamError> {
    let answer = upstream
        .send(Bytes::from_static(body), timeout, PROBE_RESPONSE_LIMIT)
        .await?;
    parse_answers(&answer, 1, false)
        .map_err(|why| invalid(upstream, why))?
        .pop()
        .ok_or_else(|| {
            let none = AnswerError::Count {
                got: 0,
                expected: 1,
            };
            invalid(upstream, none)
        })
}

fn invalid(upstream: &Upstream, why: AnswerError) -> UpstreamError {
    UpstreamError::new(upstream.name.clone(), UpstreamErrorKind::InvalidAnswer(why))
}

/// A quantity answer, or why it is not one.
fn quantity(upstream: &Upstream, answer: Answer) -> Result<u64, UpstreamError> {
    let invalid = |why| invalid(upstream, why);
    match Some(answer) {
        Some(Answer::Result(raw)) => quantity::parse_json(&raw.text())
            .ok_or_else(|| invalid(AnswerError::unexpected("a hex quantity", &raw.text()))),
        Some(Answer::Error(e)) => Err(UpstreamError::new(
            upstream.name.clone(),
            UpstreamErrorKind::NodeError {
                code: e.code,
                message: e.message,
            },
        )),
        None => Err(invalid(AnswerError::Count {
            got: 0,
            expected: 1,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::is_syncing;

    #[test]
    fn syncing_answers() {
        assert!(!is_syncing("false"));
        assert!(is_syncing(
            r#"{"startingBlock":"0x0","currentBlock":"0x10","highestBlock":"0x20"}"#
        ));
        assert!(!is_syncing(
            r#"{"currentBlock":"0x20","highestBlock":"0x20"}"#
        ));
        assert!(
            is_syncing(r#"{"stages":[]}"#),
            "an object without progress says syncing"
        );
        assert!(is_syncing("true"));
    }
}
