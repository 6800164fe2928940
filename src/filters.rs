//! Filters that survive failover.
//!
//! A filter id from `eth_newFilter` is state on the node that made it; ask another node for
//! it and the answer is "filter not found" — an export that created a filter on a node that
//! then died cannot finish. So nodewatch hands out its own ids and keeps each filter's
//! criteria: `eth_getFilterLogs` becomes `eth_getLogs` with those criteria, and
//! `eth_getFilterChanges` becomes `eth_getLogs` (or, for block filters, block hashes) over the
//! blocks since the last poll, each served by whichever upstream is healthy. Filters not used
//! for the idle timeout expire as on a node.
//!
//! Filter calls are rare (a few per export job), so a plain mutex guards the table; it is
//! never held across an await.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::error::ClientError;
use crate::forward::{Engine, Served};
use crate::jsonrpc::{Answer, Call, RawJson};
use crate::sync::lock;

/// Most blocks one `eth_getFilterChanges` on a block filter reports.
pub const MAX_BLOCKS_PER_POLL: u64 = 1000;

/// Methods answered here rather than forwarded.
pub fn is_filter_method(method: &str) -> bool {
    matches!(
        method,
        "eth_newFilter"
            | "eth_newBlockFilter"
            | "eth_newPendingTransactionFilter"
            | "eth_getFilterLogs"
            | "eth_getFilterChanges"
            | "eth_uninstallFilter"
    )
}

#[derive(Debug, Clone)]
enum Kind {
    /// A log filter: its criteria, and the first block not yet reported by changes.
    Logs {
        criteria: Map<String, Value>,
        next: u64,
    },
    /// A block filter: the first block not yet reported.
    Blocks { next: u64 },
}

#[derive(Debug)]
struct Filter {
    kind: Kind,
    used: Instant,
}

/// The filter table.
#[derive(Debug)]
pub struct Filters {
    table: Mutex<HashMap<String, Filter>>,
    /// Id source: a per-process random hasher over a counter.
    ids: RandomState,
    counter: AtomicU64,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            ids: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }
}

fn params(call: &Call<'_>) -> Vec<Value> {
    call.params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default()
}

fn result(value: &Value) -> Served {
    Served {
        answer: Answer::Result(RawJson::from(value.to_string())),
        upstream: None,
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    crate::quantity::parse(value?.as_str()?)
}

impl Filters {
    /// Filters currently held.
    pub fn len(&self) -> usize {
        lock(&self.table).len()
    }

    /// Whether no filter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers one filter call.
    pub async fn handle(&self, call: &Call<'_>, engine: &Engine) -> Result<Served, ClientError> {
        let settings = engine.settings.load_full();
        self.expire(settings.filters.idle_timeout);
        let params = params(call);
        match call.method.as_str() {
            "eth_newFilter" => {
                let criteria = match params.first() {
                    Some(Value::Object(criteria)) => criteria.clone(),
                    _ => {
                        return Err(ClientError::InvalidParams(
                            "expected a filter object".into(),
                        ))
                    }
                };
                let next = self.head(engine).await? + 1;
                self.insert(Kind::Logs { criteria, next }, settings.filters.max)
            }
            "eth_newBlockFilter" => {
                let next = self.head(engine).await? + 1;
                self.insert(Kind::Blocks { next }, settings.filters.max)
            }
            "eth_uninstallFilter" => {
                let id = filter_id(&params)?;
                let removed = lock(&self.table).remove(id).is_some();
                Ok(result(&json!(removed)))
            }
            "eth_getFilterLogs" => match self.kind(filter_id(&params)?)? {
                Kind::Logs { criteria, .. } => get_logs(engine, Value::Object(criteria)).await,
                Kind::Blocks { .. } => Err(ClientError::InvalidParams("not a log filter".into())),
            },
            "eth_getFilterChanges" => {
                let id = filter_id(&params)?;
                let head = self.head(engine).await?;
                match self.kind(id)? {
                    Kind::Logs { criteria, next } => {
                        self.log_changes(engine, id, criteria, next, head).await
                    }
                    Kind::Blocks { next } => self.block_changes(engine, id, next, head).await,
                }
            }
            other => Err(ClientError::Unsupported(other.to_string())),
        }
    }

    fn insert(&self, kind: Kind, max: usize) -> Result<Served, ClientError> {
        let mut table = lock(&self.table);
        if table.len() >= max {
            return Err(ClientError::Limit(format!("{max} filters installed")));
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "0x{:016x}{:016x}",
            self.ids.hash_one((n, 0u8)),
            self.ids.hash_one((n, 1u8))
        );
        table.insert(
            id.clone(),
            Filter {
                kind,
                used: Instant::now(),
            },
        );
        Ok(result(&json!(id)))
    }

    fn kind(&self, id: &str) -> Result<Kind, ClientError> {
        let mut table = lock(&self.table);
        let filter = table.get_mut(id).ok_or(ClientError::FilterNotFound)?;
        filter.used = Instant::now();
        Ok(filter.kind.clone())
    }

    fn advance(&self, id: &str, to: u64) {
        if let Some(filter) = lock(&self.table).get_mut(id) {
            match &mut filter.kind {
                Kind::Logs { next, .. } | Kind::Blocks { next } => *next = (*next).max(to),
            }
        }
    }

    fn expire(&self, idle: std::time::Duration) {
        let now = Instant::now();
        lock(&self.table).retain(|_, f| now.saturating_duration_since(f.used) < idle);
    }

    /// The best head: from the snapshot, or asked when no probe has answered yet.
    async fn head(&self, engine: &Engine) -> Result<u64, ClientError> {
        if let Some(head) = engine.snapshot.load().best_head {
            return Ok(head);
        }
        let served = forward_one(engine, "eth_blockNumber", None).await?;
        match &served.answer {
            Answer::Result(r) => crate::quantity::parse_json(&r.text())
                .ok_or_else(|| ClientError::InvalidParams("bad eth_blockNumber answer".into())),
            Answer::Error(e) => Err(ClientError::InvalidParams(e.message.clone())),
        }
    }

    async fn log_changes(
        &self,
        engine: &Engine,
        id: &str,
        mut criteria: Map<String, Value>,
        next: u64,
        head: u64,
    ) -> Result<Served, ClientError> {
        let from = next.max(number(criteria.get("fromBlock")).unwrap_or(0));
        let to = number(criteria.get("toBlock")).map_or(head, |t| t.min(head));
        if from > to {
            return Ok(result(&json!([])));
        }
        criteria.insert("fromBlock".into(), json!(format!("{from:#x}")));
        criteria.insert("toBlock".into(), json!(format!("{to:#x}")));
        let served = get_logs(engine, Value::Object(criteria)).await?;
        if matches!(served.answer, Answer::Result(_)) {
            self.advance(id, to + 1);
        }
        Ok(served)
    }

    async fn block_changes(
        &self,
        engine: &Engine,
        id: &str,
        next: u64,
        head: u64,
    ) -> Result<Served, ClientError> {
        if next > head {
            return Ok(result(&json!([])));
        }
        let upto = head.min(next + MAX_BLOCKS_PER_POLL - 1);
        let params: Vec<Box<RawValue>> = (next..=upto)
            .map(|n| RawValue::from_string(format!("[\"{n:#x}\",false]")).expect("valid JSON"))
            .collect();
        let calls: Vec<Call<'_>> = params
            .iter()
            .map(|p| Call {
                id: None,
                method: "eth_getBlockByNumber".into(),
                params: Some(p),
            })
            .collect();
        let refs: Vec<&Call<'_>> = calls.iter().collect();
        let forwarded = engine.forward(&refs, true).await;
        let mut hashes = Vec::with_capacity(calls.len());
        for served in forwarded.served {
            let hash = match served.map(|s| s.answer) {
                Some(Answer::Result(block)) => serde_json::from_slice::<Value>(block.as_bytes())
                    .ok()
                    .and_then(|b| b.get("hash").cloned())
                    .filter(Value::is_string),
                _ => None,
            };
            match hash {
                Some(hash) => hashes.push(hash),
                None => {
                    return Err(forwarded.failure.unwrap_or_else(|| {
                        ClientError::InvalidParams("a block in range is not available yet".into())
                    }))
                }
            }
        }
        self.advance(id, upto + 1);
        Ok(result(&Value::Array(hashes)))
    }
}

fn filter_id(params: &[Value]) -> Result<&str, ClientError> {
    params
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::InvalidParams("expected a filter id".into()))
}

async fn get_logs(engine: &Engine, criteria: Value) -> Result<Served, ClientError> {
    let params =
        RawValue::from_string(Value::Array(vec![criteria]).to_string()).expect("valid JSON");
    forward_one(engine, "eth_getLogs", Some(&params)).await
}

async fn forward_one(
    engine: &Engine,
    method: &str,
    params: Option<&RawValue>,
) -> Result<Served, ClientError> {
    let call = Call {
        id: None,
        method: method.to_string(),
        params,
    };
    let mut forwarded = engine.forward(&[&call], false).await;
    match forwarded.served.pop().flatten() {
        Some(served) => Ok(served),
        None => Err(forwarded
            .failure
            .unwrap_or_else(|| ClientError::InvalidParams("no answer".into()))),
    }
}
