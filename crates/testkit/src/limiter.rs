//! A paid provider's rate limit in front of a node: a token bucket of N calls a second (each
//! batch item billed one, as providers bill; it holds one second's calls), and over it a
//! refusal, as the large providers refuse: HTTP 429 with `Retry-After: 1`, or HTTP 200 with
//! a JSON-RPC -32005 "exceeded its compute units per second capacity" error per call. A
//! request is taken whole or refused whole (nothing billed). A [`Scripted`] upstream.
//!
//! It counts what a provider's dashboard would show: HTTP requests, those refused, calls
//! billed, and the calls answered per second of the run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::scripted::{self, reply, Reply, Request, Scripted};

/// The message of a refusal, as Alchemy words it.
pub const CAPACITY_MESSAGE: &str = "Your app has exceeded its compute units per second capacity. \
     Please retry with exponential backoff.";

/// How the limiter refuses a request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// HTTP 429, `Retry-After: 1`, a -32005 error as the body.
    Http429,
    /// HTTP 200, a -32005 error for each call.
    RpcError,
}

/// What the limiter saw, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// HTTP requests received.
    pub requests: u64,
    /// Requests refused (429, or -32005 answers).
    pub refused: u64,
    /// Calls (batch items) taken and answered.
    pub calls: u64,
}

impl Counts {
    /// The refused share of the requests.
    pub fn refused_share(&self) -> f64 {
        self.refused as f64 / (self.requests.max(1)) as f64
    }
}

struct Bucket {
    /// Calls that may go now (at most one second's).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    counts: Counts,
    /// Calls taken and requests refused per whole second since the start.
    per_second: Vec<(u64, u64)>,
    /// Each request taken: when (since the start) and its calls.
    taken: Vec<(Duration, u64)>,
    /// When (since the start) each refused request came.
    refused_at: Vec<Duration>,
}

/// A rate-limited provider in front of a node.
pub struct Limiter {
    server: Scripted,
    bucket: Arc<Mutex<Bucket>>,
    started: Instant,
    calls_per_second: u32,
}

impl Limiter {
    /// Starts a limiter of `calls_per_second` in front of `target` (an http URL).
    pub async fn start(target: &str, calls_per_second: u32, refusal: Refusal) -> Limiter {
        let started = Instant::now();
        let bucket = Arc::new(Mutex::new(Bucket {
            tokens: f64::from(calls_per_second),
            at: started,
            counts: Counts::default(),
            per_second: Vec::new(),
            taken: Vec::new(),
            refused_at: Vec::new(),
        }));
        let (target, state) = (target.to_string(), Arc::clone(&bucket));
        let rate = f64::from(calls_per_second);
        let server = Scripted::start(move |req| {
            let (target, bucket) = (target.clone(), Arc::clone(&state));
            async move {
                let calls = calls_of(&req);
                if take(&bucket, calls, rate, started) {
                    return relay(&target, &req).await;
                }
                Ok(refuse(&req, refusal))
            }
        })
        .await;
        Limiter {
            server,
            bucket,
            started,
            calls_per_second,
        }
    }

    /// The limiter's URL (what the provider's would be).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The limit, calls per second.
    pub fn calls_per_second(&self) -> u32 {
        self.calls_per_second
    }

    /// What it saw so far.
    pub fn counts(&self) -> Counts {
        self.bucket.lock().unwrap().counts
    }

    /// Calls taken and requests refused in each whole second since it started.
    pub fn per_second(&self) -> Vec<(u64, u64)> {
        self.bucket.lock().unwrap().per_second.clone()
    }

    /// When (since the start) each refused request came.
    pub fn refused_at(&self) -> Vec<Duration> {
        self.bucket.lock().unwrap().refused_at.clone()
    }

    /// Requests taken so far: a mark for [`Limiter::busy_since`].
    pub fn mark(&self) -> usize {
        self.bucket.lock().unwrap().taken.len()
    }

    /// The requests taken since `mark`: the time from the first to the last, and their calls
    /// (zero and zero without any).
    pub fn busy_since(&self, mark: usize) -> (Duration, u64) {
        let b = self.bucket.lock().unwrap();
        let taken = &b.taken[mark.min(b.taken.len())..];
        let span = match (taken.first(), taken.last()) {
            (Some((first, _)), Some((last, _))) => *last - *first,
            _ => Duration::ZERO,
        };
        (span, taken.iter().map(|(_, calls)| calls).sum())
    }

    /// How long it has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The calls a request is billed for: the items of a batch, else one.
fn calls_of(req: &Request) -> u64 {
    match req.json() {
        Some(Value::Array(items)) => items.len().max(1) as u64,
        _ => 1,
    }
}

/// Takes `calls` tokens if the bucket holds them; counts the request either way.
fn take(bucket: &Mutex<Bucket>, calls: u64, rate: f64, started: Instant) -> bool {
    let mut b = bucket.lock().unwrap();
    let now = Instant::now();
    b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate);
    b.at = now;
    b.counts.requests += 1;
    let since = now.duration_since(started);
    let second = since.as_secs() as usize;
    if b.per_second.len() <= second {
        b.per_second.resize(second + 1, (0, 0));
    }
    if b.tokens < calls as f64 {
        b.counts.refused += 1;
        b.per_second[second].1 += 1;
        b.refused_at.push(since);
        return false;
    }
    b.tokens -= calls as f64;
    b.counts.calls += calls;
    b.taken.push((since, calls));
    b.per_second[second].0 += calls;
    true
}

async fn relay(target: &str, req: &Request) -> Reply {
    match scripted::forward(target, req).await {
        Some((status, body)) => Ok(reply(status, body)),
        None => scripted::close("the node behind the limiter did not answer"),
    }
}

/// The -32005 error object for a call with `id`.
fn capacity_error(id: &Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": -32005, "message": CAPACITY_MESSAGE},
    })
}

fn refuse(req: &Request, refusal: Refusal) -> http::Response<scripted::Body> {
    let id_of = |v: &Value| v.get("id").cloned().unwrap_or(Value::Null);
    match refusal {
        Refusal::Http429 => {
            let mut response = reply(429, capacity_error(&Value::Null).to_string());
            response
                .headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("1"));
            response
        }
        Refusal::RpcError => {
            let body = match req.json() {
                Some(Value::Array(items)) => {
                    Value::Array(items.iter().map(|i| capacity_error(&id_of(i))).collect())
                }
                Some(single) => capacity_error(&id_of(&single)),
                None => capacity_error(&Value::Null),
            };
            reply(200, body.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bills_batch_items_and_refuses_over_the_bucket() {
        let node = Scripted::start(|req| async move {
            let ids: Vec<Value> = match req.json() {
                Some(Value::Array(items)) => items,
                _ => vec![json!({"id": 0})],
            };
            let answers: Vec<Value> = ids
                .iter()
                .map(|i| json!({"jsonrpc": "2.0", "id": i["id"], "result": "0x1"}))
                .collect();
            scripted::ok(200, Value::Array(answers).to_string())
        })
        .await;
        let batch = |n: usize| {
            let items: Vec<Value> = (0..n)
                .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"}))
                .collect();
            Value::Array(items).to_string()
        };
        let limiter = Limiter::start(&node.url(), 10, Refusal::Http429).await;
        let (status, _) = crate::rpc::post(&limiter.url(), &batch(8)).await;
        assert_eq!(status, 200);
        let over = crate::rpc::try_post(&limiter.url(), &batch(8))
            .await
            .unwrap();
        assert_eq!(over.0, 429, "8 + 8 calls > 10 a second");
        assert!(over.1.contains("-32005"), "{}", over.1);
        let counts = limiter.counts();
        assert_eq!((counts.requests, counts.refused, counts.calls), (2, 1, 8));

        let limiter = Limiter::start(&node.url(), 10, Refusal::RpcError).await;
        let _ = crate::rpc::post(&limiter.url(), &batch(10)).await;
        let (status, body) = crate::rpc::post(&limiter.url(), &batch(3)).await;
        assert_eq!(status, 200);
        let answers: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(answers.len(), 3);
        assert!(answers.iter().all(|a| a["error"]["code"] == -32005));
        assert_eq!(answers[2]["id"], 2);
    }
}
