//! Property-based fuzzing of the engine's split: every unanswered call with a candidate left
//! is sent exactly once per round, to its own next candidate, in call order; answered calls
//! and calls out of candidates are never sent. (The merge back is fuzzed end to end, over
//! real sockets, in tests/fuzz_proxy.rs.)

use proptest::prelude::*;

use super::*;
use crate::blocks::BlockNeed;
use crate::fuzzing::check;

const UPSTREAMS: usize = 4;

/// A call's state: its candidate order (a permutation prefix), how far it got, answered.
fn plan_state() -> impl Strategy<Value = (Vec<usize>, usize, bool)> {
    Just((0..UPSTREAMS).collect::<Vec<_>>())
        .prop_shuffle()
        .prop_flat_map(|order| {
            (1..=UPSTREAMS).prop_flat_map(move |len| {
                let order = order[..len].to_vec();
                (Just(order), 0..=len, any::<bool>())
            })
        })
}

fn plans_of(states: &[(Vec<usize>, usize, bool)]) -> Vec<Plan> {
    states
        .iter()
        .map(|(candidates, next, answered)| Plan {
            need: BlockNeed::Any,
            candidates: candidates.clone().into(),
            next: *next,
            answer: answered.then(|| Served {
                answer: Answer::Result(crate::jsonrpc::RawJson::from("1".to_string())),
                upstream: None,
            }),
            fallback: None,
            judged: false,
            wrong: None,
            unverifiable: None,
            verified: false,
            finality: crate::cache::Finality::Open,
        })
        .collect()
}

#[test]
fn fuzz_split_sends_each_open_call_once_to_its_next_candidate() {
    check(
        "forward/split",
        prop::collection::vec(plan_state(), 0..40),
        |states| {
            let plans = plans_of(&states);
            let groups = group(&plans);
            let mut seen = vec![0usize; plans.len()];
            let mut upstreams = Vec::new();
            for (u, items) in &groups {
                prop_assert!(!upstreams.contains(u), "one group per upstream");
                upstreams.push(*u);
                prop_assert!(!items.is_empty());
                prop_assert!(items.windows(2).all(|w| w[0] < w[1]), "call order kept");
                for &i in items {
                    seen[i] += 1;
                    prop_assert_eq!(plans[i].candidates[plans[i].next], *u);
                }
            }
            for (i, plan) in plans.iter().enumerate() {
                let open = plan.answer.is_none() && plan.next < plan.candidates.len();
                prop_assert_eq!(seen[i], usize::from(open), "call {}", i);
            }
            Ok(())
        },
    );
}
