//! `eth_getLogs` answers as a sans-IO check the caller drives with its own I/O: the answer
//! and params are read ([`LogsCheck::new`]); the caller fetches and verifies the headers
//! asked for ([`LogsCheck::headers_needed`]), then the receipts of the blocks that matter
//! ([`LogsCheck::receipts_needed`]: blocks the answer has logs from, and blocks whose header
//! bloom may match the filter), and [`LogsCheck::finish`] compares the answer, block by
//! block, with the verified logs that match the filter.

use std::collections::HashMap;

use alloy_primitives::{Log, B256};

use crate::facts::{read_log, Claimed};
use crate::filter::{LogFilter, RpcFilter};
use crate::header::Header;
use crate::hex::{self, BadField};
use crate::receipts::VerifiedReceipts;
use crate::rpc::{self, RpcLog};
use crate::verdict::{BlockRef, Check, Wrong};

/// The headers a [`LogsCheck`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadersNeeded {
    /// Every block of a numeric range, both ends included.
    Range(u64, u64),
    /// The one block of a `blockHash` filter.
    Hash(B256),
    /// Only the blocks the answer has logs from (the range had tags such as "latest", so
    /// completeness cannot be judged): (number, hash) as the answer states them.
    Blocks(Vec<(u64, B256)>),
}

/// A log of the answer with every position it must state.
#[derive(Clone, Debug)]
struct AnswerLog {
    log: Log,
    block_hash: B256,
    block_number: u64,
    transaction_hash: B256,
    transaction_index: u64,
    log_index: u64,
    removed: bool,
}

/// An `eth_getLogs` verification in progress.
#[derive(Clone, Debug)]
pub struct LogsCheck {
    /// The filter the answer must obey.
    filter: LogFilter,
    /// Which headers the range needs (fixed by the params, or by the answer for tags).
    headers: HeadersNeeded,
    /// The answer's logs, in answer order.
    answer: Vec<AnswerLog>,
}

impl LogsCheck {
    /// Reads `params` (the `eth_getLogs` params array) and `answer` (the result array); an
    /// answer log that does not match the filter, lies outside the range, or is out of order
    /// is `Check::Logs` already here.
    pub fn new(params: &[u8], answer: &[u8]) -> Result<Self, Wrong> {
        let malformed = |e: String| Wrong::malformed(BlockRef::UNKNOWN, e);
        let (f, filter) = LogFilter::read_params(params)?;
        let logs: Vec<RpcLog<'_>> = rpc::parse(answer).map_err(malformed)?;
        let answer = logs
            .iter()
            .enumerate()
            .map(|(k, l)| answer_log(l).map_err(|e| malformed(format!("log {k}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let headers = headers_needed(&f, &answer).map_err(|e| malformed(format!("params: {e}")))?;
        let check = LogsCheck {
            filter,
            headers,
            answer,
        };
        check.check_answer_alone()?;
        Ok(check)
    }

    /// The filter of the params.
    pub fn filter(&self) -> &LogFilter {
        &self.filter
    }

    /// Whether the answer has no logs.
    pub fn is_empty_answer(&self) -> bool {
        self.answer.is_empty()
    }

    /// The blocks the answer has logs from, as (number, hash), ascending: what a caller
    /// checks when the range is too wide to judge completeness over.
    pub fn answer_blocks(&self) -> Vec<(u64, B256)> {
        let mut blocks: Vec<(u64, B256)> = self
            .answer
            .iter()
            .map(|l| (l.block_number, l.block_hash))
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        blocks
    }

    /// The headers the check needs (see [`HeadersNeeded`]).
    pub fn headers_needed(&self) -> HeadersNeeded {
        self.headers.clone()
    }

    /// Given the verified headers, checks each answer log's block against them and returns
    /// the blocks whose receipts are needed, ascending: those the answer has logs from, and
    /// those whose bloom may match the filter. A block of a range without a header is taken
    /// as not existing (yet): an answer log from it is `Check::Logs`.
    pub fn receipts_needed(&self, headers: &[Header]) -> Result<Vec<(u64, B256)>, Wrong> {
        let by_number: HashMap<u64, &Header> = headers.iter().map(|h| (h.number, h)).collect();
        let mut needed: Vec<(u64, B256)> = Vec::new();
        for (k, l) in self.answer.iter().enumerate() {
            let at = BlockRef::new(l.block_number, l.block_hash);
            match by_number.get(&l.block_number) {
                Some(h) if h.hash == l.block_hash => needed.push((h.number, h.hash)),
                Some(h) => {
                    let detail = format!(
                        "log {k} claims block hash {}, the verified header's is {}",
                        l.block_hash, h.hash
                    );
                    return Err(Wrong::new(at, Check::Logs, detail));
                }
                None => {
                    return Err(Wrong::new(
                        at,
                        Check::Logs,
                        format!("log {k}: no verified header for its block"),
                    ))
                }
            }
        }
        let in_scope = |h: &&Header| match self.headers {
            HeadersNeeded::Range(from, to) => (from..=to).contains(&h.number),
            HeadersNeeded::Hash(hash) => h.hash == hash,
            HeadersNeeded::Blocks(_) => false,
        };
        let blooming = headers
            .iter()
            .filter(in_scope)
            .filter(|h| self.filter.may_match(&h.logs_bloom));
        needed.extend(blooming.map(|h| (h.number, h.hash)));
        needed.sort_unstable();
        needed.dedup();
        Ok(needed)
    }

    /// Given those blocks' verified receipts: per block, the answer's logs must be exactly
    /// the verified logs that match the filter (same order, every field). A missing one is
    /// `Check::LogsMissing`; a different or extra one `Check::Logs`. An answer log whose
    /// block has no receipts given is `Check::Malformed` (the caller skipped a block).
    pub fn finish(&self, receipts: &[&VerifiedReceipts]) -> Result<(), Wrong> {
        for (k, l) in self.answer.iter().enumerate() {
            if !receipts
                .iter()
                .any(|set| set.block == (l.block_number, l.block_hash))
            {
                let at = BlockRef::new(l.block_number, l.block_hash);
                return Err(Wrong::malformed(
                    at,
                    format!("log {k}: no verified receipts given for its block"),
                ));
            }
        }
        receipts.iter().try_for_each(|set| self.finish_block(set))
    }

    /// One block: the answer's logs from it against the verified matching logs.
    fn finish_block(&self, set: &VerifiedReceipts) -> Result<(), Wrong> {
        let block = set.block_ref();
        let mut got = self
            .answer
            .iter()
            .filter(|l| (l.block_number, l.block_hash) == set.block);
        let expected = set
            .receipts
            .iter()
            .flat_map(|r| r.logs())
            .filter(|l| self.filter.matches(l.log));
        for want in expected {
            let Some(g) = got.next() else {
                let detail = format!(
                    "the answer lacks log {} (transaction {})",
                    want.log_index, want.transaction_hash
                );
                return Err(Wrong::new(block, Check::LogsMissing, detail));
            };
            if g.log_index > want.log_index {
                let detail = format!(
                    "the answer lacks log {} (transaction {})",
                    want.log_index, want.transaction_hash
                );
                return Err(Wrong::new(block, Check::LogsMissing, detail));
            }
            let same = g.log_index == want.log_index
                && g.log == *want.log
                && g.transaction_hash == want.transaction_hash
                && g.transaction_index == want.transaction_index
                && !g.removed;
            if !same {
                let detail = format!(
                    "answer log {} differs from the verified log {}",
                    g.log_index, want.log_index
                );
                return Err(Wrong::new(block, Check::Logs, detail));
            }
        }
        if let Some(extra) = got.next() {
            let detail = format!(
                "answer log {} matches no verified log of the filter",
                extra.log_index
            );
            return Err(Wrong::new(block, Check::Logs, detail));
        }
        Ok(())
    }

    /// What the answer alone shows: each log matches the filter, lies in scope, and the logs
    /// ascend by (block, log index).
    fn check_answer_alone(&self) -> Result<(), Wrong> {
        let mut last: Option<(u64, u64)> = None;
        for (k, l) in self.answer.iter().enumerate() {
            let at = BlockRef::new(l.block_number, l.block_hash);
            let wrong =
                |detail: String| Err(Wrong::new(at, Check::Logs, format!("log {k}: {detail}")));
            if !self.filter.matches(&l.log) {
                return wrong("does not match the filter".into());
            }
            match self.headers {
                HeadersNeeded::Range(from, to) if !(from..=to).contains(&l.block_number) => {
                    return wrong(format!("block {} is outside {from}..={to}", l.block_number));
                }
                HeadersNeeded::Hash(hash) if hash != l.block_hash => {
                    return wrong(format!("block hash is not the filter's {hash}"));
                }
                _ => {}
            }
            let here = (l.block_number, l.log_index);
            if last.is_some_and(|before| before >= here) {
                return wrong("out of order".into());
            }
            last = Some(here);
        }
        Ok(())
    }
}

/// An answer log with every position required.
fn answer_log(l: &RpcLog<'_>) -> Result<AnswerLog, BadField> {
    let read = read_log(l)?;
    let Claimed {
        block_hash,
        block_number,
        transaction_hash,
        transaction_index,
        log_index,
    } = read.at;
    Ok(AnswerLog {
        log: read.log,
        block_hash: block_hash.ok_or(BadField::missing("blockHash"))?,
        block_number: block_number.ok_or(BadField::missing("blockNumber"))?,
        transaction_hash: transaction_hash.ok_or(BadField::missing("transactionHash"))?,
        transaction_index: transaction_index.ok_or(BadField::missing("transactionIndex"))?,
        log_index: log_index.ok_or(BadField::missing("logIndex"))?,
        removed: read.removed,
    })
}

/// A block bound: a number, or a tag ("earliest" is block 0; others are unknown numbers).
fn bound(field: &'static str, text: Option<&str>) -> Result<Option<u64>, BadField> {
    match text {
        None | Some("latest" | "pending" | "safe" | "finalized") => Ok(None),
        Some("earliest") => Ok(Some(0)),
        Some(n) => hex::u64q(field, n).map(Some),
    }
}

/// The headers the params need; for tags, the answer's blocks.
fn headers_needed(f: &RpcFilter<'_>, answer: &[AnswerLog]) -> Result<HeadersNeeded, BadField> {
    if let Some(hash) = f.block_hash {
        return Ok(HeadersNeeded::Hash(hex::fixed::<32>("blockHash", hash)?));
    }
    match (
        bound("fromBlock", f.from_block)?,
        bound("toBlock", f.to_block)?,
    ) {
        (Some(from), Some(to)) => Ok(HeadersNeeded::Range(from, to)),
        _ => {
            let mut blocks: Vec<(u64, B256)> = answer
                .iter()
                .map(|l| (l.block_number, l.block_hash))
                .collect();
            blocks.sort_unstable();
            blocks.dedup();
            Ok(HeadersNeeded::Blocks(blocks))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::verify_block;
    use crate::receipts::verify_block_receipts;
    use crate::testdata::{anvil, edit, remove, set};
    use crate::verdict::Checks;
    use serde_json::json;

    /// Both anvil blocks, verified: headers and receipt sets.
    fn chain() -> (Vec<Header>, Vec<VerifiedReceipts>) {
        let mut headers = Vec::new();
        let mut sets = Vec::new();
        for (b, r) in [
            ("block1.json", "receipts1.json"),
            ("block.json", "receipts.json"),
        ] {
            let block = verify_block(&anvil("prague", b), &Checks::default()).unwrap();
            sets.push(
                verify_block_receipts(
                    &anvil("prague", r),
                    &block.header,
                    Some(&block),
                    &Checks::default(),
                )
                .unwrap(),
            );
            headers.push(block.header);
        }
        (headers, sets)
    }

    /// Runs the whole check as a caller would; the first verdict.
    fn run(params: &[u8], answer: &[u8]) -> Result<Vec<(u64, B256)>, Wrong> {
        let (headers, sets) = chain();
        let check = LogsCheck::new(params, answer)?;
        let needed = check.receipts_needed(&headers)?;
        let given: Vec<&VerifiedReceipts> =
            sets.iter().filter(|s| needed.contains(&s.block)).collect();
        check.finish(&given)?;
        Ok(needed)
    }

    #[test]
    fn a_complete_answer_verifies() {
        let (params, answer) = (
            anvil("prague", "logs_params.json"),
            anvil("prague", "logs.json"),
        );
        let check = LogsCheck::new(&params, &answer).unwrap();
        assert_eq!(check.headers_needed(), HeadersNeeded::Range(1, 2));
        assert!(!check.is_empty_answer());
        let needed = run(&params, &answer).unwrap();
        assert_eq!(
            needed.len(),
            1,
            "block 1's bloom lacks the topic: {needed:?}"
        );
    }

    #[test]
    fn missing_extra_and_changed_logs_are_caught() {
        let (params, answer) = (
            anvil("prague", "logs_params.json"),
            anvil("prague", "logs.json"),
        );
        let check = |a: &[u8]| run(&params, a).unwrap_err().check;
        assert_eq!(check(&remove(&answer, "/1")), Check::LogsMissing);
        assert_eq!(check(b"[]"), Check::LogsMissing);
        assert_eq!(check(&set(&answer, "/0/data", json!("0x00"))), Check::Logs);
        assert_eq!(
            check(&set(&answer, "/1/transactionIndex", json!("0x3"))),
            Check::Logs
        );
        assert_eq!(
            check(&set(
                &answer,
                "/0/blockHash",
                json!(format!("0x{}", "11".repeat(32)))
            )),
            Check::Logs
        );
        let reordered = edit(&answer, |v| v.as_array_mut().unwrap().swap(0, 1));
        assert_eq!(check(&reordered), Check::Logs);
        let off_filter = set(
            &answer,
            "/0/topics/0",
            json!(format!("0x{}", "cc".repeat(32))),
        );
        assert_eq!(check(&off_filter), Check::Logs);
        assert_eq!(
            check(&set(&answer, "/0/blockNumber", json!("0x5"))),
            Check::Logs
        );
        assert_eq!(check(b"{}"), Check::Malformed);
        assert_eq!(
            run(b"[{\"fromBlock\":7}]", &answer).unwrap_err().check,
            Check::Malformed
        );
    }

    #[test]
    fn tags_need_only_the_answers_blocks_and_hash_filters_one() {
        let answer = anvil("prague", "logs.json");
        let latest = br#"[{"fromBlock":"0x1","toBlock":"latest","topics":[["0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]]}]"#;
        let check = LogsCheck::new(latest, &answer).unwrap();
        let HeadersNeeded::Blocks(blocks) = check.headers_needed() else {
            panic!("tags need the answer's blocks")
        };
        assert_eq!(blocks.iter().map(|b| b.0).collect::<Vec<_>>(), vec![2]);
        run(latest, &answer).unwrap();
        let (headers, _) = chain();
        let by_hash = format!(r#"[{{"blockHash":"{}"}}]"#, headers[1].hash);
        assert_eq!(
            LogsCheck::new(by_hash.as_bytes(), b"[]")
                .unwrap()
                .headers_needed(),
            HeadersNeeded::Hash(headers[1].hash)
        );
        assert_eq!(
            run(by_hash.as_bytes(), b"[]").unwrap_err().check,
            Check::LogsMissing
        );
        let everything = r#"[{"fromBlock":"earliest","toBlock":"0x2"}]"#;
        assert_eq!(
            run(everything.as_bytes(), &answer).unwrap_err().check,
            Check::LogsMissing
        );
    }
}
