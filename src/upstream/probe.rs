//! One probe of one upstream: `eth_blockNumber`, plus `eth_chainId` when the chain must be
//! (re)checked, each bounded by the probe timeout.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::Upstream;
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::jsonrpc::{parse_answers, Answer};

/// What one probe found.
#[derive(Debug)]
pub struct ProbeReport {
    /// Head block number.
    pub head: u64,
    /// Round trip of `eth_blockNumber`.
    pub latency: Duration,
    /// Chain id, when it was asked for.
    pub chain_id: Option<u64>,
}

const BLOCK_NUMBER: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"eth_blockNumber","params":[]}"#;
const CHAIN_ID: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"eth_chainId","params":[]}"#;
/// Probe answers are tiny; anything larger is not a node.
const PROBE_RESPONSE_LIMIT: usize = 64 * 1024;

/// Probes `upstream`; asks for the chain id too when `check_chain` is set.
pub async fn probe(
    upstream: &Upstream,
    timeout: Duration,
    check_chain: bool,
) -> Result<ProbeReport, UpstreamError> {
    let started = Instant::now();
    let head = ask_quantity(upstream, BLOCK_NUMBER, timeout).await?;
    let latency = started.elapsed();
    let chain_id = if check_chain {
        Some(ask_quantity(upstream, CHAIN_ID, timeout).await?)
    } else {
        None
    };
    Ok(ProbeReport {
        head,
        latency,
        chain_id,
    })
}

async fn ask_quantity(
    upstream: &Upstream,
    body: &'static [u8],
    timeout: Duration,
) -> Result<u64, UpstreamError> {
    let invalid = |why: String| {
        UpstreamError::new(upstream.name.clone(), UpstreamErrorKind::InvalidAnswer(why))
    };
    let answer = upstream
        .send(Bytes::from_static(body), timeout, PROBE_RESPONSE_LIMIT)
        .await?;
    let mut answers = parse_answers(&answer, 1, false).map_err(invalid)?;
    match answers.pop() {
        Some(Answer::Result(raw)) => crate::quantity::parse_json(&raw.text())
            .ok_or_else(|| invalid(format!("not a hex quantity: {:.40}", raw.text()))),
        Some(Answer::Error(e)) => Err(UpstreamError::new(
            upstream.name.clone(),
            UpstreamErrorKind::NodeError {
                code: e.code,
                message: e.message,
            },
        )),
        None => Err(invalid("no answer".into())),
    }
}
