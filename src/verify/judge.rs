//! The verdicts on the answers one forwarding round kept: the self-contained ones first
//! (blocks, transactions), then those checked against fetched headers and receipt sets,
//! whose fetches go out together (one batch of headers, one of block receipts).

use std::collections::BTreeSet;
use std::sync::Arc;

use nodewatch_verify::{
    receipt_location, verify_block, verify_block_receipts, verify_receipt, verify_transaction,
    BlockRef, Check, Header, HeadersNeeded, LogsCheck, Skipped, VerifiedReceipts, Wrong, B256,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::VerifyConfig;
use crate::metrics::Metrics;

use super::cache::VerifiedCache;
use super::context::{Context, Fetch, Missing, Want};
use super::subject::{Asked, Subject};
use super::Verdict;

/// One answer to judge.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// What the call was.
    pub subject: Subject,
    /// The call's params, raw.
    pub params: Option<&'a RawValue>,
    /// The answer's `result`, raw.
    pub result: &'a [u8],
}

/// What one judgement works with.
#[derive(Clone, Copy)]
pub struct Verifier<'e> {
    /// Fetches what answers are checked against (the forwarding engine).
    pub fetch: &'e dyn Fetch,
    /// Verified headers and receipt sets.
    pub cache: &'e VerifiedCache,
    /// Counts fetches and cache hits.
    pub metrics: &'e Metrics,
    /// `[verify]` as in force for the request.
    pub config: &'e VerifyConfig,
}

/// A verdict per item, in order.
pub async fn judge(verifier: Verifier<'_>, items: &[Item<'_>]) -> Vec<Verdict> {
    let ctx = Context {
        engine: verifier.fetch,
        metrics: verifier.metrics,
        cache: verifier.cache,
        checks: verifier.config.checks(),
    };
    let mut out = vec![Verdict::RIGHT; items.len()];
    let (mut sets, mut receipts, mut logs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        match item.subject {
            Subject::Block(asked) => out[i] = block(&ctx, item.result, asked),
            Subject::Transaction(asked) => out[i] = transaction(item.result, asked),
            Subject::BlockReceipts(asked) => sets.push((i, asked)),
            Subject::Receipt(asked) => receipts.push((i, asked)),
            Subject::Logs => logs.push(i),
        }
    }
    block_receipts(&ctx, items, &sets, &mut out).await;
    single_receipts(&ctx, items, &receipts, &mut out).await;
    for i in logs {
        out[i] = get_logs(&ctx, &items[i], verifier.config.max_log_range).await;
    }
    out
}

/// A block answer, against its own hash and what was asked.
fn block(ctx: &Context<'_>, result: &[u8], asked: Asked) -> Verdict {
    match verify_block(result, &ctx.checks) {
        Err(wrong) => Verdict::Wrong(wrong),
        Ok(block) => match not_asked(&block.header, asked) {
            Some(wrong) => Verdict::Wrong(wrong),
            None => {
                ctx.cache.put_header(Arc::new(block.header));
                Verdict::Right {
                    skipped: block.skipped,
                }
            }
        },
    }
}

/// The wrong answer of a block other than the one asked for.
fn not_asked(header: &Header, asked: Asked) -> Option<Wrong> {
    let got = header.block_ref();
    match asked {
        Asked::Number(n) if header.number != n => Some(Wrong::new(
            got,
            Check::Position,
            format!(
                "block {n} was asked for, the answer is of block {}",
                header.number
            ),
        )),
        Asked::Hash(h) if header.hash != h => Some(Wrong::new(
            got,
            Check::Position,
            format!(
                "block {h} was asked for, the answer is of block {}",
                header.hash
            ),
        )),
        _ => None,
    }
}

/// A transaction answer: its hash recomputed from its fields, and the one asked for.
fn transaction(result: &[u8], asked: Option<B256>) -> Verdict {
    match verify_transaction(result, None) {
        Err(wrong) => Verdict::Wrong(wrong),
        Ok(found) => match asked {
            Some(h) if found.tx.hash != h => Verdict::Wrong(Wrong::new(
                BlockRef {
                    number: found.number,
                    hash: found.hash,
                },
                Check::Position,
                format!(
                    "transaction {h} was asked for, the answer is {}",
                    found.tx.hash
                ),
            )),
            _ => Verdict::Right {
                skipped: found.skipped.into_iter().collect(),
            },
        },
    }
}

/// The first receipt's block hash, if the list has any receipt.
fn first_block_hash(result: &[u8]) -> Result<Option<B256>, Wrong> {
    #[derive(Deserialize)]
    struct Located<'a> {
        #[serde(rename = "blockHash", borrow)]
        block_hash: &'a str,
    }
    let malformed = |e: String| Wrong::malformed(BlockRef::UNKNOWN, format!("receipt list: {e}"));
    let list: Vec<Located<'_>> =
        serde_json::from_slice(result).map_err(|e| malformed(e.to_string()))?;
    list.first()
        .map(|r| {
            r.block_hash
                .parse::<B256>()
                .map_err(|e| malformed(format!("blockHash: {e}")))
        })
        .transpose()
}

/// `eth_getBlockReceipts` answers against their blocks' verified headers.
async fn block_receipts(
    ctx: &Context<'_>,
    items: &[Item<'_>],
    which: &[(usize, Asked)],
    out: &mut [Verdict],
) {
    let mut wants = Vec::with_capacity(which.len());
    for &(i, asked) in which {
        let want = match (first_block_hash(items[i].result), asked) {
            (Err(wrong), _) => {
                out[i] = Verdict::Wrong(wrong);
                continue;
            }
            (Ok(Some(h)), _) | (Ok(None), Asked::Hash(h)) => Want::Hash(h),
            (Ok(None), Asked::Number(n)) => Want::Number(n),
            (Ok(None), Asked::Tag) => {
                out[i] = skipped(Check::ReceiptsRoot, "an empty receipt list for a block tag");
                continue;
            }
        };
        wants.push((i, asked, want));
    }
    let headers = ctx
        .headers(&wants.iter().map(|w| w.2).collect::<Vec<_>>())
        .await;
    for (&(i, asked, want), header) in wants.iter().zip(headers) {
        out[i] = match header {
            Err(missing) => unknown_block(missing, want, "the receipts"),
            Ok(header) => receipt_set(ctx, items[i].result, &header, asked),
        };
    }
}

/// One receipt set against its header (kept when right).
fn receipt_set(ctx: &Context<'_>, result: &[u8], header: &Header, asked: Asked) -> Verdict {
    let set = match verify_block_receipts(result, header, None, &ctx.checks) {
        Err(wrong) => return Verdict::Wrong(wrong),
        Ok(set) => set,
    };
    if let Some(wrong) = not_asked(header, asked) {
        return Verdict::Wrong(wrong);
    }
    ctx.cache.put_receipts(Arc::new(set));
    Verdict::RIGHT
}

/// The verdict when the block an answer names could not be had.
fn unknown_block(missing: Missing, want: Want, what: &str) -> Verdict {
    match (missing, want) {
        (Missing::Unknown, Want::Hash(h)) => Verdict::Wrong(Wrong::new(
            BlockRef {
                number: None,
                hash: Some(h),
            },
            Check::Position,
            format!("{what} name a block no upstream knows"),
        )),
        // Nodes that do not serve `eth_getBlockReceipts` (geth before 1.13, some providers):
        // the answer is served with that check counted as skipped, not withheld.
        (Missing::Unsupported(method), _) => {
            skipped(Check::ReceiptsRoot, &format!("no upstream serves {method}"))
        }
        (missing, _) => Verdict::Unverifiable(format!(
            "the block {what} are checked against could not be had: {missing}"
        )),
    }
}

/// A verdict of right with one check that could not run.
fn skipped(check: Check, reason: &str) -> Verdict {
    Verdict::Right {
        skipped: vec![Skipped {
            check,
            reason: reason.to_string(),
        }],
    }
}

/// `eth_getTransactionReceipt` answers against their blocks' verified receipt sets.
async fn single_receipts(
    ctx: &Context<'_>,
    items: &[Item<'_>],
    which: &[(usize, Option<B256>)],
    out: &mut [Verdict],
) {
    let mut located = Vec::with_capacity(which.len());
    for &(i, _) in which {
        match receipt_location(items[i].result) {
            Err(wrong) => out[i] = Verdict::Wrong(wrong),
            Ok(at) => located.push((i, at.1)),
        }
    }
    let blocks: Vec<B256> = located
        .iter()
        .map(|l| l.1)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let sets = ctx.receipts(&blocks).await;
    for (i, block) in located {
        let at = blocks.binary_search(&block).unwrap_or_default();
        out[i] = match &sets[at] {
            Err(missing) => unknown_block(missing.clone(), Want::Hash(block), "the receipt"),
            Ok(set) => match verify_receipt(items[i].result, set) {
                Err(wrong) => Verdict::Wrong(wrong),
                Ok(()) => Verdict::RIGHT,
            },
        };
    }
}

/// An `eth_getLogs` answer against the verified receipts of every block whose header bloom
/// may match (or that the answer has logs from): each log and the range's completeness.
async fn get_logs(ctx: &Context<'_>, item: &Item<'_>, max_range: u64) -> Verdict {
    let params = item.params.map_or(&b"[]"[..], |p| p.get().as_bytes());
    let check = match LogsCheck::new(params, item.result) {
        Ok(check) => check,
        Err(wrong) => return Verdict::Wrong(wrong),
    };
    let mut skipped = Vec::new();
    let wants: Vec<Want> = match check.headers_needed() {
        HeadersNeeded::Range(from, to) if to.saturating_sub(from) < max_range => {
            (from..=to).map(Want::Number).collect()
        }
        HeadersNeeded::Range(..) | HeadersNeeded::Blocks(_) => {
            if matches!(check.headers_needed(), HeadersNeeded::Range(..)) {
                skipped.push(Skipped {
                    check: Check::LogsMissing,
                    reason: format!("a range wider than verify.max_log_range ({max_range})"),
                });
            }
            check
                .answer_blocks()
                .into_iter()
                .map(|(_, h)| Want::Hash(h))
                .collect()
        }
        HeadersNeeded::Hash(h) => vec![Want::Hash(h)],
    };
    let mut headers = Vec::with_capacity(wants.len());
    for (&want, header) in wants.iter().zip(ctx.headers(&wants).await) {
        match (header, want) {
            (Ok(h), _) => headers.push(Header::clone(&h)),
            // A block of the range the upstreams do not have yet: it has no logs to miss.
            (Err(Missing::Unknown), Want::Number(_)) => {}
            (Err(missing), want) => return unknown_block(missing, want, "the logs"),
        }
    }
    let needed = match check.receipts_needed(&headers) {
        Ok(needed) => needed,
        Err(wrong) => return Verdict::Wrong(wrong),
    };
    let hashes: Vec<B256> = needed.iter().map(|(_, h)| *h).collect();
    let mut sets: Vec<Arc<VerifiedReceipts>> = Vec::with_capacity(hashes.len());
    for (h, set) in hashes.iter().zip(ctx.receipts(&hashes).await) {
        match set {
            Ok(set) => sets.push(set),
            Err(missing) => return unknown_block(missing, Want::Hash(*h), "the logs"),
        }
    }
    let refs: Vec<&VerifiedReceipts> = sets.iter().map(|s| &**s).collect();
    match check.finish(&refs) {
        Err(wrong) => Verdict::Wrong(wrong),
        Ok(()) => Verdict::Right { skipped },
    }
}
