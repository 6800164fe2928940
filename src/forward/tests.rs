//! Unit tests of the engine's pure parts: which answers are kept, which move on, and the
//! settings a configuration gives.

use super::*;
use crate::blocks::BlockNeed;
use crate::jsonrpc::{RawJson, RpcError};
use crate::upstream::health::Status;
use crate::upstream::UpstreamState;

fn state(rank: usize, head: Option<u64>) -> UpstreamState {
    UpstreamState {
        status: Status::Healthy,
        head,
        ..UpstreamState::unknown(&format!("u{rank}"), rank)
    }
}

fn snapshot(heads: &[Option<u64>]) -> Snapshot {
    Snapshot {
        handles: vec![],
        fork_pending: false,
        best_head: heads.iter().flatten().max().copied(),
        final_line: None,
        chain_id: None,
        upstreams: heads
            .iter()
            .enumerate()
            .map(|(i, h)| state(i + 1, *h))
            .collect(),
    }
}

fn plan(need: BlockNeed, candidates: &[usize], next: usize) -> Plan {
    Plan {
        need,
        candidates: candidates.into(),
        next,
        answer: None,
        fallback: None,
        judged: false,
        wrong: None,
        unverifiable: None,
        verified: false,
        finality: crate::cache::Finality::Open,
    }
}

fn result(json: &str) -> Answer {
    Answer::Result(RawJson::from(json.to_string()))
}

fn error(code: i64, message: &str) -> Answer {
    Answer::Error(RpcError {
        code,
        message: message.into(),
        raw: RawJson::from(format!(r#"{{"code":{code},"message":"{message}"}}"#)),
    })
}

fn call(method: &str) -> Call<'static> {
    Call {
        id: None,
        method: method.into(),
        params: None,
    }
}

#[test]
fn groups_follow_each_calls_next_candidate_in_call_order() {
    let mut plans = vec![
        plan(BlockNeed::Number(5), &[0, 1], 0),
        plan(BlockNeed::Number(50), &[1, 0], 0),
        plan(BlockNeed::Number(6), &[0, 1], 1),
        plan(BlockNeed::Number(7), &[0, 1], 2),
        plan(BlockNeed::Number(8), &[0, 1], 0),
    ];
    plans[4].answer = Some(Served {
        answer: result("1"),
        upstream: None,
    });
    assert_eq!(group(&plans), vec![(0, vec![0]), (1, vec![1, 2])]);
}

#[test]
fn node_trouble_is_doubted_execution_errors_are_not() {
    let s = snapshot(&[Some(10), Some(10)]);
    let p = plan(BlockNeed::Any, &[0, 1], 0);
    assert_eq!(
        doubt(
            &call("eth_call"),
            &p,
            &error(-32000, "header not found"),
            0,
            &s
        ),
        Some("node_error")
    );
    assert_eq!(
        doubt(
            &call("eth_call"),
            &p,
            &error(3, "execution reverted"),
            0,
            &s
        ),
        None
    );
    assert_eq!(doubt(&call("eth_call"), &p, &result("\"0x\""), 0, &s), None);
}

#[test]
fn null_by_number_is_retried_where_another_node_may_have_the_block() {
    let s = snapshot(&[Some(100), Some(120)]);
    let by_number = call("eth_getBlockByNumber");
    assert_eq!(
        doubt(
            &by_number,
            &plan(BlockNeed::Number(110), &[0, 1], 0),
            &result("null"),
            0,
            &s
        ),
        Some("null")
    );
    // The last candidate's null stands.
    assert_eq!(
        doubt(
            &by_number,
            &plan(BlockNeed::Number(110), &[0, 1], 1),
            &result("null"),
            1,
            &s
        ),
        None
    );
    // No remaining candidate is ahead or has the block: believe the null.
    assert_eq!(
        doubt(
            &by_number,
            &plan(BlockNeed::Number(500), &[1, 0], 0),
            &result("null"),
            1,
            &s
        ),
        None
    );
    // Not a nullable method: null is an answer.
    assert_eq!(
        doubt(
            &call("eth_call"),
            &plan(BlockNeed::Number(110), &[0, 1], 0),
            &result("null"),
            0,
            &s
        ),
        None
    );
}

#[test]
fn null_by_hash_is_retried_only_on_a_node_further_along() {
    let receipt = call("eth_getTransactionReceipt");
    let behind = snapshot(&[Some(90), Some(100)]);
    assert_eq!(
        doubt(
            &receipt,
            &plan(BlockNeed::ByHash, &[0, 1], 0),
            &result("null"),
            0,
            &behind
        ),
        Some("null")
    );
    let level = snapshot(&[Some(100), Some(100)]);
    assert_eq!(
        doubt(
            &receipt,
            &plan(BlockNeed::ByHash, &[0, 1], 0),
            &result("null"),
            0,
            &level
        ),
        None
    );
    let unknown = snapshot(&[Some(100), None]);
    assert_eq!(
        doubt(
            &receipt,
            &plan(BlockNeed::ByHash, &[0, 1], 0),
            &result("null"),
            0,
            &unknown
        ),
        Some("null")
    );
}

#[test]
fn settings_follow_the_configuration() {
    let mut config = crate::config::Config::default();
    config.methods.deny = Some(vec!["eth_call".into()]);
    config.upstreams = vec![crate::config::UpstreamConfig::from_url(
        "http://127.0.0.1:1",
    )];
    let settings = Settings::new(&config.validate().unwrap());
    assert!(!settings.policy.allows("eth_call"));
    assert!(settings.policy.allows("evm_mine"));
    let budget = budget(&settings.retry);
    // min_per_second (10) x window (10 s) retries are always allowed, then no more.
    let allowed = (0..1000).take_while(|_| budget.withdraw()).count();
    assert!((90..=110).contains(&allowed), "{allowed}");
}

/// Upstreams u1, u2 (u2 with `methods` lists) and a snapshot where both are healthy.
fn capable_snapshot() -> Snapshot {
    use crate::config::{Config, UpstreamConfig, UpstreamMethods};
    let mut config = Config::default();
    let mut u2 = UpstreamConfig::from_url("http://127.0.0.1:2");
    u2.methods = Some(UpstreamMethods {
        allow: vec![],
        deny: vec!["eth_getLogs".into()],
    });
    let mut u1 = UpstreamConfig::from_url("http://127.0.0.1:1");
    u1.methods = Some(UpstreamMethods {
        allow: vec!["eth_*".into(), "trace_*".into()],
        deny: vec![],
    });
    config.upstreams = vec![u1, u2];
    let handles = crate::upstream::Upstream::all(&config.validate().unwrap(), None);
    let mut snapshot = Snapshot::initial(&handles);
    for u in &mut snapshot.upstreams {
        u.status = Status::Healthy;
    }
    snapshot
}

fn order_for(snapshot: &Snapshot, method: &str) -> (Vec<usize>, Option<i64>) {
    let call = call(method);
    let plans = plan_calls(snapshot, &[], &[&call]);
    let code = plans[0].answer.as_ref().map(|s| match &s.answer {
        Answer::Error(e) => e.code,
        Answer::Result(_) => 0,
    });
    (plans[0].candidates.to_vec(), code)
}

#[tokio::test(start_paused = true)]
async fn methods_an_upstream_lacks_go_elsewhere_first_and_lists_are_never_crossed() {
    let snapshot = capable_snapshot();
    assert_eq!(order_for(&snapshot, "eth_call"), (vec![0, 1], None));
    // A learned "not available": last, not gone.
    snapshot.handles[0]
        .capabilities
        .learn_unsupported("trace_block", Instant::now());
    assert_eq!(order_for(&snapshot, "trace_block"), (vec![1, 0], None));
    // u2's list refuses eth_getLogs, u1's allows only eth_* and trace_*.
    assert_eq!(order_for(&snapshot, "eth_getLogs"), (vec![0], None));
    assert_eq!(order_for(&snapshot, "net_version"), (vec![1], None));
    // u1 allows debug_* not, and u2 learned it lacks it: u2 alone, as a last resort.
    snapshot.handles[1]
        .capabilities
        .learn_unsupported("debug_traceBlockByNumber", Instant::now());
    assert_eq!(
        order_for(&snapshot, "debug_traceBlockByNumber"),
        (vec![1], None)
    );
    // Expired: back in rank order.
    tokio::time::advance(crate::config::DEFAULT_UNSUPPORTED_TTL).await;
    assert_eq!(order_for(&snapshot, "trace_block"), (vec![0, 1], None));
}

#[test]
fn a_call_no_upstream_may_get_is_answered_method_not_found() {
    let mut snapshot = capable_snapshot();
    snapshot.handles.truncate(1);
    snapshot.upstreams.truncate(1);
    // u1 allows eth_* and trace_* only.
    assert_eq!(order_for(&snapshot, "net_version"), (vec![], Some(-32601)));
}

#[test]
fn unsupported_answers_are_doubted_before_node_trouble() {
    let s = snapshot(&[Some(10), Some(10)]);
    let p = plan(BlockNeed::Any, &[0, 1], 0);
    let lacks = error(
        -32601,
        "the method trace_block does not exist/is not available",
    );
    assert_eq!(
        doubt(&call("trace_block"), &p, &lacks, 0, &s),
        Some(plan::UNSUPPORTED)
    );
    let not_enabled = error(-32000, "debug namespace is not enabled");
    assert_eq!(
        doubt(&call("debug_traceBlockByNumber"), &p, &not_enabled, 0, &s),
        Some(plan::UNSUPPORTED)
    );
}

#[test]
fn attempt_timeouts_follow_the_class_and_the_batch_size() {
    let proxy = crate::config::ProxyConfig::default();
    let (light, block, trace) = (
        call("eth_blockNumber"),
        call("eth_getBlockByNumber"),
        call("trace_block"),
    );
    assert_eq!(
        attempt::attempt_timeout(&proxy, &[&light]),
        proxy.light_attempt_timeout
    );
    assert_eq!(
        attempt::attempt_timeout(&proxy, &[&light, &trace]),
        proxy.heavy_attempt_timeout + proxy.attempt_timeout_per_item
    );
    let batch: Vec<&Call<'_>> = std::iter::repeat_n(&block, 400).collect();
    assert_eq!(
        attempt::attempt_timeout(&proxy, &batch),
        proxy.attempt_timeout + proxy.attempt_timeout_per_item * 399
    );
}
