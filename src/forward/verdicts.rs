//! Verification in the forwarding rounds: the answers a round kept are judged
//! ([`crate::verify::judge`]) before the next round; a wrong one is node trouble for that
//! call (it moves on to its next candidate, the upstream is counted, logged and perhaps
//! quarantined), and a call no candidate answers rightly gets an error naming the block and
//! the check, never the wrong data.

use std::sync::Arc;

use serde_json::json;
use tokio::time::Instant;
use tracing::warn;

use crate::error::INTERNAL_ERROR;
use crate::jsonrpc::{Answer, RawJson, RpcError};
use crate::metrics::method_label;
use crate::upstream::wrong::{Quarantine, WrongTransition};
use crate::upstream::Upstream;
use crate::verify::subject::subject;
use crate::verify::{judge, Item, Verdict, Verifier};
use nodewatch_verify::Wrong;

use super::{Forward, Served};

/// The doubt recorded in `nodewatch_failovers_total` for a wrong answer.
const WRONG_ANSWER: &str = "wrong_answer";

/// One upstream's wrong answers in one judgement.
struct Blamed {
    /// The upstream.
    upstream: Arc<Upstream>,
    /// The first wrong answer's method.
    method: &'static str,
    /// The first wrong answer's call.
    first: usize,
    /// How many of its answers were wrong.
    count: usize,
}

impl Forward<'_, '_> {
    /// Judges every answer kept since the last judgement.
    pub(super) async fn judge_answers(&mut self) {
        let verify = &self.settings.verify;
        let mut which = Vec::new();
        let mut items = Vec::new();
        for (i, plan) in self.plans.iter_mut().enumerate() {
            if plan.judged {
                continue;
            }
            let Some(result) = plan.answer.as_ref().and_then(Served::upstream_result) else {
                continue;
            };
            let call = self.calls[i];
            match subject(&call.method, call.params, verify) {
                Some(subject) if !result.is_null() => {
                    which.push(i);
                    items.push(Item {
                        subject,
                        params: call.params,
                        result: result.as_bytes(),
                    });
                }
                _ => plan.judged = true,
            }
        }
        if items.is_empty() {
            return;
        }
        let verifier = Verifier {
            fetch: self.engine,
            cache: &self.engine.verified,
            metrics: &self.engine.metrics,
            config: &self.settings.verify,
        };
        let verdicts = judge(verifier, &items).await;
        drop(items);
        let mut blamed: Vec<Blamed> = Vec::new();
        for (i, verdict) in which.into_iter().zip(verdicts) {
            if let Some((upstream, method)) = self.judged(i, verdict) {
                match blamed
                    .iter_mut()
                    .find(|b| Arc::ptr_eq(&b.upstream, &upstream))
                {
                    Some(b) => b.count += 1,
                    None => blamed.push(Blamed {
                        upstream,
                        method,
                        first: i,
                        count: 1,
                    }),
                }
            }
        }
        for b in blamed {
            self.blame(&b);
        }
    }

    /// Takes call `i`'s verdict into its plan; for a wrong answer, the upstream to blame.
    fn judged(&mut self, i: usize, verdict: Verdict) -> Option<(Arc<Upstream>, &'static str)> {
        let metrics = &self.engine.metrics;
        let method = method_label(&self.calls[i].method);
        let plan = &mut self.plans[i];
        plan.judged = true;
        match verdict {
            Verdict::Right { skipped } => {
                metrics.verified.with_label_values(&[method]).inc();
                plan.verified = skipped.is_empty();
                for s in skipped {
                    metrics
                        .verify_skipped
                        .with_label_values(&[method, s.check.label()])
                        .inc();
                }
            }
            Verdict::Unverifiable(why) => {
                warn!(method, reason = %why, "answer could not be verified; not served");
                plan.answer = None;
                plan.next = plan.candidates.len();
                plan.unverifiable = Some(why);
            }
            Verdict::Wrong(wrong) => {
                let upstream = plan.answer.take().and_then(|s| s.upstream)?;
                let at = plan
                    .candidates
                    .iter()
                    .position(|&c| Arc::ptr_eq(&self.snapshot.handles[c], &upstream));
                plan.next = at.map_or(plan.next + 1, |p| p + 1).max(plan.next + 1);
                if plan.next < plan.candidates.len() {
                    metrics
                        .failovers
                        .with_label_values(&[upstream.name.as_str(), WRONG_ANSWER])
                        .inc();
                }
                metrics
                    .wrong_answers
                    .with_label_values(&[upstream.name.as_str(), method, wrong.check.label()])
                    .inc();
                metrics
                    .upstream_wrong_answers
                    .with_label_values(&[upstream.name.as_str()])
                    .inc();
                self.plans[i].wrong = Some((upstream.name.clone(), wrong));
                return Some((upstream, method));
            }
        }
        None
    }

    /// Logs one line for an upstream's wrong answers in one round (with the first one's
    /// evidence) and records them as one wrong-data event, which may quarantine it: a batch
    /// of a hundred wrong receipts is one event, not a hundred.
    fn blame(&self, b: &Blamed) {
        let name = b.upstream.name.as_str();
        let Some((_, wrong)) = &self.plans[b.first].wrong else {
            return;
        };
        warn!(
            upstream = name,
            method = b.method,
            check = wrong.check.label(),
            wrong_answers = b.count,
            evidence = %wrong,
            "wrong answer; asking the next upstream"
        );
        let verify = &self.settings.verify;
        let quarantine = Quarantine {
            after: verify.quarantine_after,
            window: verify.quarantine_window,
            duration: verify.quarantine_for,
        };
        let evidence = format!("{}: {wrong}", b.method);
        if b.upstream
            .wrong
            .record(evidence, &quarantine, Instant::now())
            == Some(WrongTransition::Quarantined)
        {
            warn!(
                upstream = name,
                wrong_answers = verify.quarantine_after,
                quarantine = ?verify.quarantine_for,
                "upstream quarantined for answering wrong data: used only as a last resort"
            );
        }
    }
}

/// The answer for a call no candidate answered rightly: the block, the check and the
/// upstream, never the wrong data (-32603, which clients such as ethereum-etl retry).
pub(super) fn no_verified_answer(upstream: &str, wrong: &Wrong) -> Served {
    let message = format!("no verified answer: upstream {upstream}: {wrong}");
    let data = json!({
        "upstream": upstream,
        "check": wrong.check.label(),
        "block": wrong.block.number,
        "blockHash": wrong.block.hash.map(|h| h.to_string()),
    });
    error_answer(message, data)
}

/// The answer for a call whose answer could not be verified.
pub(super) fn unverifiable(why: &str) -> Served {
    error_answer(
        format!("the answer could not be verified: {why}"),
        serde_json::Value::Null,
    )
}

fn error_answer(message: String, data: serde_json::Value) -> Served {
    let mut raw = json!({"code": INTERNAL_ERROR, "message": message});
    if !data.is_null() {
        raw["data"] = data;
    }
    Served {
        answer: Answer::Error(RpcError {
            code: INTERNAL_ERROR,
            message,
            raw: RawJson::from(raw.to_string()),
        }),
        upstream: None,
    }
}
