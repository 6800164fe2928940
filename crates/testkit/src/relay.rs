//! The soak's fault relay: a small HTTP server in front of one anvil node that relays every
//! JSON-RPC request to it, and while its node is the one "in trouble" ([`Relay::set_chaos`])
//! misbehaves on a seeded random share of requests: it stalls, delays, answers HTTP
//! 500/429/502, closes the connection mid-body, truncates the JSON, drops the last item of a
//! batch answer, or answers `null` for blocks the node has. [`Relay::set_down`] closes every
//! connection, as a dead node would. The node-level faults (kill/restart, SIGSTOP, paused
//! mining) are driven by the soak itself through the [`crate::anvil::Anvil`] fixture.
//!
//! Every decision comes from a [`SplitMix64`] seeded by the soak, so a failing seed can be
//! replayed (timing still varies between runs); every fault is counted by kind. The server is
//! a [`Scripted`] upstream; this module is its script.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::scripted::{reply, Reply, Request, Scripted};

/// A small, seedable PRNG (SplitMix64): deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Uniform duration in `lo..=hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// The per-request faults, by the name they are counted under.
pub const KINDS: &[&str] = &[
    "stall",
    "delay",
    "http_500",
    "http_429",
    "http_502",
    "close_mid_body",
    "truncated_json",
    "short_batch",
    "null_block",
];

const CLEAN: u8 = 0;
const CHAOS: u8 = 1;
const DOWN: u8 = 2;

/// How long a stalled request is held: well past nodewatch's attempt timeout.
pub const STALL: Duration = Duration::from_secs(6);

struct State {
    target: String,
    mode: AtomicU8,
    /// Share of requests that get a fault while in chaos mode.
    rate: Mutex<f64>,
    rng: Mutex<SplitMix64>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// A running relay in front of one node.
pub struct Relay {
    state: Arc<State>,
    server: Scripted,
}

impl Relay {
    /// Starts a clean relay to `target` (an anvil URL) with its own seed.
    pub async fn start(target: &str, seed: u64) -> Relay {
        let state = Arc::new(State {
            target: target.to_string(),
            mode: AtomicU8::new(CLEAN),
            rate: Mutex::new(0.0),
            rng: Mutex::new(SplitMix64::new(seed)),
            counts: Mutex::new(BTreeMap::new()),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(5))
                .build_http(),
        });
        let shared = Arc::clone(&state);
        let server = Scripted::start(move |req| {
            let state = Arc::clone(&shared);
            async move { handle(&state, req).await }
        })
        .await;
        Relay { state, server }
    }

    /// Where nodewatch should send requests.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Relay everything unchanged.
    pub fn set_clean(&self) {
        self.state.mode.store(CLEAN, Ordering::SeqCst);
    }

    /// Misbehave on a share `rate` of the requests.
    pub fn set_chaos(&self, rate: f64) {
        *self.state.rate.lock().unwrap() = rate;
        self.state.mode.store(CHAOS, Ordering::SeqCst);
    }

    /// Close every connection without an answer, like a dead node.
    pub fn set_down(&self) {
        self.state.mode.store(DOWN, Ordering::SeqCst);
    }

    /// Faults injected so far, by kind.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.state.counts.lock().unwrap().clone()
    }
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    Relay,
    Fault(&'static str),
}

fn plan(state: &State, body: &[u8]) -> Plan {
    if state.mode.load(Ordering::SeqCst) != CHAOS {
        return Plan::Relay;
    }
    let rate = *state.rate.lock().unwrap();
    let mut rng = state.rng.lock().unwrap();
    if !rng.chance(rate) {
        return Plan::Relay;
    }
    let is_batch = body.first() == Some(&b'[');
    let has_block = body
        .windows(b"eth_getBlockByNumber".len())
        .any(|w| w == b"eth_getBlockByNumber");
    let applicable: Vec<&'static str> = KINDS
        .iter()
        .copied()
        .filter(|k| match *k {
            "short_batch" => is_batch,
            "null_block" => has_block,
            _ => true,
        })
        .collect();
    Plan::Fault(applicable[rng.below(applicable.len() as u64) as usize])
}

async fn handle(state: &State, req: Request) -> Reply {
    let body = req.body;
    if state.mode.load(Ordering::SeqCst) == DOWN {
        return Err(std::io::Error::other("relay is down"));
    }
    let plan = plan(state, &body);
    let fault = match plan {
        Plan::Relay => None,
        Plan::Fault(kind) => Some(kind),
    };
    // Faults that need no answer from the node.
    match fault {
        Some("stall") => {
            count(state, "stall");
            tokio::time::sleep(STALL).await;
            return Err(std::io::Error::other("stalled"));
        }
        Some(kind @ ("http_500" | "http_429" | "http_502")) => {
            count(state, kind);
            let code = kind[5..].parse().unwrap();
            return Ok(reply(code, "relay says no"));
        }
        _ => {}
    }
    // The node's answer; a dead or frozen node closes the connection.
    let request = http::Request::post(&state.target)
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), state.client.request(request))
        .await
        .map_err(|_| std::io::Error::other("node timed out"))?
        .map_err(std::io::Error::other)?;
    let status = answer.status().as_u16();
    let text = tokio::time::timeout(Duration::from_secs(10), answer.into_body().collect())
        .await
        .map_err(|_| std::io::Error::other("node timed out"))?
        .map_err(std::io::Error::other)?
        .to_bytes();
    let Some(kind) = fault else {
        return Ok(reply(status, text));
    };
    match kind {
        "delay" => {
            let pause = state.rng.lock().unwrap().millis(50, 800);
            count(state, kind);
            tokio::time::sleep(pause).await;
            Ok(reply(status, text))
        }
        "close_mid_body" => {
            count(state, kind);
            let half = text.slice(..text.len() / 2);
            let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
                Ok(Frame::data(half)),
                Err(std::io::Error::other("connection closed mid-body")),
            ];
            let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
            Ok(http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("content-length", text.len())
                .body(body)
                .unwrap())
        }
        "truncated_json" => {
            count(state, kind);
            let cut = 1 + state
                .rng
                .lock()
                .unwrap()
                .below(text.len().max(2) as u64 - 1) as usize;
            Ok(reply(200, text.slice(..cut.min(text.len()))))
        }
        "short_batch" => match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Array(mut items)) if items.len() > 1 => {
                count(state, kind);
                items.pop();
                Ok(reply(200, Value::Array(items).to_string()))
            }
            _ => Ok(reply(status, text)),
        },
        "null_block" => Ok(reply(status, null_blocks(state, &body, &text))),
        _ => unreachable!("{kind}"),
    }
}

/// The answer with `null` for every eth_getBlockByNumber item that had a block.
fn null_blocks(state: &State, request: &[u8], answer: &Bytes) -> Bytes {
    let (Ok(req), Ok(mut ans)) = (
        serde_json::from_slice::<Value>(request),
        serde_json::from_slice::<Value>(answer),
    ) else {
        return answer.clone();
    };
    let calls: Vec<&Value> = match &req {
        Value::Array(calls) => calls.iter().collect(),
        call => vec![call],
    };
    let items: Vec<&mut Value> = match &mut ans {
        Value::Array(items) => items.iter_mut().collect(),
        item => vec![item],
    };
    let mut nulled = 0;
    for item in items {
        let call = calls.iter().find(|c| c["id"] == item["id"]);
        if call.is_some_and(|c| c["method"] == "eth_getBlockByNumber")
            && item.get("result").is_some_and(|r| !r.is_null())
        {
            item["result"] = Value::Null;
            nulled += 1;
        }
    }
    if nulled > 0 {
        count(state, "null_block");
    }
    Bytes::from(ans.to_string())
}

fn count(state: &State, kind: &'static str) {
    *state.counts.lock().unwrap().entry(kind).or_default() += 1;
}

/// Sums counts of several relays.
pub fn total(relays: &[Relay]) -> BTreeMap<&'static str, u64> {
    let mut all = BTreeMap::new();
    for r in relays {
        for (k, v) in r.counts() {
            *all.entry(k).or_default() += v;
        }
    }
    all
}
