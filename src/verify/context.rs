//! What an answer is checked against, had from the cache or asked of the upstreams: verified
//! headers (by hash or by number) and verified block receipt sets (by block hash).
//!
//! A miss is asked through the engine like any client call, so it is routed, failed over and
//! itself verified (a header against its own hash, a receipt set against its header) before
//! it is used; a wrong answer to such a call is caught and counted there. Many misses of one
//! judgement go out as one batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::join_all;
use nodewatch_verify::{
    verify_block, verify_block_receipts, Checks, Header, VerifiedReceipts, B256,
};
use serde_json::value::RawValue;

use crate::jsonrpc::{Answer, Call, RawJson};
use crate::method::is_unsupported;
use crate::metrics::{method_label, Metrics};

use super::cache::VerifiedCache;
use super::flight::{self, Turn};

/// What verification fetches through: the forwarding engine, whose fetched answers are
/// routed, failed over and themselves verified. A trait so that this module does not import
/// the engine that imports it.
pub trait Fetch: Sync {
    /// Sends `calls` (as one batch when several) and returns each one's answer, or `None`
    /// where no upstream could give one.
    fn fetch<'s>(
        &'s self,
        calls: &'s [&'s Call<'s>],
    ) -> Pin<Box<dyn Future<Output = Vec<Option<Answer>>> + Send + 's>>;
}

/// Most calls one fetch sends upstream as one batch (providers commonly cap batches at 100).
pub(super) const FETCH_BATCH: usize = 100;

/// A block to get the header of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// By hash (the cache may have it).
    Hash(B256),
    /// By number (asked afresh: a number's block changes in a reorg).
    Number(u64),
}

/// Why what an answer is checked against could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Missing {
    /// Every upstream asked answered `null`: no such block (yet).
    Unknown,
    /// No upstream serves the method asked (e.g. a node without `eth_getBlockReceipts`).
    Unsupported(String),
    /// No upstream gave a usable answer.
    Failed(String),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Unknown => f.write_str("no upstream knows that block"),
            Missing::Unsupported(method) => write!(f, "no upstream serves {method}"),
            Missing::Failed(why) => f.write_str(why),
        }
    }
}

/// The engine and cache one judgement fetches through.
pub(super) struct Context<'e> {
    /// Routes the fetches (the forwarding engine).
    pub(super) engine: &'e dyn Fetch,
    /// Counts fetches and cache hits.
    pub(super) metrics: &'e Metrics,
    /// Verified headers and receipt sets.
    pub(super) cache: &'e VerifiedCache,
    /// The checks in force.
    pub(super) checks: Checks,
}

impl Context<'_> {
    /// The verified headers of `wants`, in order.
    pub(super) async fn headers(&self, wants: &[Want]) -> Vec<Result<Arc<Header>, Missing>> {
        let mut out: Vec<Option<Result<Arc<Header>, Missing>>> = wants
            .iter()
            .map(|w| match w {
                Want::Hash(h) => self.cache.header(h).map(Ok),
                Want::Number(_) => None,
            })
            .collect();
        self.hits("header", out.iter().filter(|o| o.is_some()).count());
        let misses: Vec<usize> = (0..wants.len()).filter(|&i| out[i].is_none()).collect();
        let params = misses.iter().map(|&i| match wants[i] {
            Want::Hash(h) => ("eth_getBlockByHash", format!("[\"{h}\",false]")),
            Want::Number(n) => ("eth_getBlockByNumber", format!("[\"{n:#x}\",false]")),
        });
        let fetched = self.fetch(params.collect()).await;
        for (&i, answer) in misses.iter().zip(fetched) {
            out[i] = Some(answer.and_then(|raw| self.header_of(&raw)));
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Missing::Failed("no answer".into()))))
            .collect()
    }

    /// The verified receipts of each block (by hash), in order.
    pub(super) async fn receipts(
        &self,
        blocks: &[B256],
    ) -> Vec<Result<Arc<VerifiedReceipts>, Missing>> {
        let mut out: Vec<Option<Result<Arc<VerifiedReceipts>, Missing>>> = blocks
            .iter()
            .map(|h| self.cache.receipts(h).map(Ok))
            .collect();
        self.hits("receipts", out.iter().filter(|o| o.is_some()).count());
        self.wait_for_others(blocks, &mut out).await;
        let mut flights = Vec::new();
        let mut misses = Vec::new();
        for i in (0..blocks.len()).filter(|&i| out[i].is_none()) {
            // Another judgement took it meanwhile: waiting once is enough, fetch alongside.
            if let Turn::Mine(flight) = self.cache.flights.claim(blocks[i]) {
                flights.push(flight);
            }
            misses.push(i);
        }
        let params = misses
            .iter()
            .map(|&i| ("eth_getBlockReceipts", format!("[\"{}\"]", blocks[i])));
        let fetched = self.fetch(params.collect()).await;
        for (&i, answer) in misses.iter().zip(fetched) {
            let set = match answer {
                Err(e) => Err(e),
                // Verified and kept when it was served; verified again if the cache let it go.
                Ok(raw) => match self.cache.receipts(&blocks[i]) {
                    Some(set) => Ok(set),
                    None => self.receipts_of(blocks[i], &raw).await,
                },
            };
            out[i] = Some(set);
        }
        drop(flights);
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Missing::Failed("no answer".into()))))
            .collect()
    }

    /// Waits for the receipt-set fetches other judgements have under way for blocks still
    /// missing from `out`, then takes what they kept; the rest this judgement fetches.
    async fn wait_for_others(
        &self,
        blocks: &[B256],
        out: &mut [Option<Result<Arc<VerifiedReceipts>, Missing>>],
    ) {
        let mut waits = Vec::new();
        for i in (0..blocks.len()).filter(|&i| out[i].is_none()) {
            if let Some(rx) = self.cache.flights.under_way(&blocks[i]) {
                waits.push((i, rx));
            }
        }
        if waits.is_empty() {
            return;
        }
        let waited: Vec<usize> = waits.iter().map(|(i, _)| *i).collect();
        join_all(waits.into_iter().map(|(_, rx)| flight::wait(rx))).await;
        let kept = waited
            .into_iter()
            .filter_map(|i| self.cache.receipts(&blocks[i]).map(|set| (i, set)));
        let mut hits = 0;
        for (i, set) in kept {
            out[i] = Some(Ok(set));
            hits += 1;
        }
        self.hits("receipts", hits);
    }

    /// A served block answer's verified header (kept in the cache).
    fn header_of(&self, raw: &RawJson) -> Result<Arc<Header>, Missing> {
        let checks = Checks {
            transactions: false,
            withdrawals: false,
            ..self.checks
        };
        let block =
            verify_block(raw.as_bytes(), &checks).map_err(|e| Missing::Failed(e.to_string()))?;
        let header = Arc::new(block.header);
        self.cache.put_header(Arc::clone(&header));
        Ok(header)
    }

    /// A served receipt set, verified against its block's header.
    async fn receipts_of(
        &self,
        block: B256,
        raw: &RawJson,
    ) -> Result<Arc<VerifiedReceipts>, Missing> {
        let header = self.headers(&[Want::Hash(block)]).await.remove(0)?;
        let set = verify_block_receipts(raw.as_bytes(), &header, None, &self.checks)
            .map_err(|e| Missing::Failed(e.to_string()))?;
        let set = Arc::new(set);
        self.cache.put_receipts(Arc::clone(&set));
        Ok(set)
    }

    /// Counts cache hits of one kind.
    fn hits(&self, kind: &str, n: usize) {
        if n > 0 {
            self.metrics
                .verify_cache_hits
                .with_label_values(&[kind])
                .inc_by(n as u64);
        }
    }

    /// Sends `(method, params)` calls through the engine (as one batch when several) and
    /// returns each one's non-null result.
    async fn fetch(&self, calls: Vec<(&'static str, String)>) -> Vec<Result<RawJson, Missing>> {
        if calls.is_empty() {
            return Vec::new();
        }
        let params: Vec<Box<RawValue>> = calls
            .iter()
            .map(|(_, p)| RawValue::from_string(p.clone()).expect("params written as JSON"))
            .collect();
        let owned: Vec<Call<'_>> = calls
            .iter()
            .zip(&params)
            .map(|((method, _), p)| Call {
                id: None,
                method: (*method).to_string(),
                params: Some(p),
            })
            .collect();
        for (method, _) in &calls {
            self.metrics
                .verify_fetches
                .with_label_values(&[method_label(method)])
                .inc();
        }
        let refs: Vec<&Call<'_>> = owned.iter().collect();
        // A fetch is a forward, whose answers are judged, which may fetch again (a receipt
        // needs its block's receipts, which need its header): two levels at most. Batches
        // stay within what providers take (many refuse more than 100 items), sent together.
        let chunks = refs
            .chunks(FETCH_BATCH)
            .map(|chunk| self.engine.fetch(chunk));
        let answers = join_all(chunks).await.into_iter().flatten();
        answers
            .zip(&calls)
            .map(|(answer, (method, _))| match answer {
                Some(Answer::Result(raw)) if !raw.is_null() => Ok(raw),
                Some(Answer::Result(_)) => Err(Missing::Unknown),
                Some(Answer::Error(e)) if is_unsupported(e.code, &e.message) => {
                    Err(Missing::Unsupported((*method).to_string()))
                }
                Some(Answer::Error(e)) => Err(Missing::Failed(e.message)),
                None => Err(Missing::Failed("no upstream could answer".into())),
            })
            .collect()
    }
}
