//! Scripted fault servers: for what a real node cannot be made to do on demand.
//!
//! A [`FaultServer`] listens on 127.0.0.1 and, in [`Fault::Pass`] mode, relays every request
//! to a real upstream (an anvil node) unchanged; switched to another [`Fault`] it answers
//! garbage, an HTTP error, a short batch, a node-trouble error or a wrong chain id, or hangs.
//! It counts the requests it receives, so a test can tell whether traffic reached it. A
//! [`Scripted`] upstream whose script is [`Fault`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::rpc;
use crate::scripted::{reply, Body, Scripted};

/// What the fault server does with the next requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Relay to the real upstream unchanged.
    Pass,
    /// HTTP 200 with bytes that are not JSON.
    Garbage,
    /// This HTTP status with a short text body.
    Status(u16),
    /// Accept the request and never answer.
    Hang,
    /// Relay, then wait this long before answering.
    Delay(Duration),
    /// Relay, then drop the last item of a batch answer.
    ShortBatch,
    /// Answer every call with this JSON-RPC error.
    NodeError(i64, String),
    /// Relay, but answer `eth_chainId` with this chain id.
    WrongChain(u64),
    /// Answer every call with `"result": null`.
    NullResult,
    /// Relay, then turn the last item of a batch answer into "header not found".
    PartialBatch,
    /// HTTP 200 garbage for batch requests only; single calls (probes) are relayed.
    BatchGarbage,
    /// Relay, but answer every call whose method starts with one of these prefixes as a node
    /// without that API does (geth's -32601 "the method X does not exist/is not available").
    NoMethod(Vec<String>),
}

/// A fault server in front of one real upstream.
pub struct FaultServer {
    fault: Arc<Mutex<Fault>>,
    server: Scripted,
}

impl FaultServer {
    /// Starts a server relaying to `target` (an http URL), initially in `fault` mode.
    pub async fn start(target: &str, fault: Fault) -> FaultServer {
        let fault = Arc::new(Mutex::new(fault));
        let (target, state) = (target.to_string(), Arc::clone(&fault));
        let server = Scripted::start(move |req| {
            let (target, fault) = (target.clone(), state.lock().unwrap().clone());
            async move { Ok(answer(&target, fault, &req.body).await) }
        })
        .await;
        FaultServer { fault, server }
    }

    /// Most requests it was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.server.max_in_flight()
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Switches the behaviour for the following requests.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.server.requests()
    }
}

async fn relay(target: &str, body: &[u8]) -> String {
    match rpc::try_post(target, std::str::from_utf8(body).unwrap_or("")).await {
        Ok((_, text)) => text,
        Err(e) => format!("relay failed: {e}"),
    }
}

/// Applies `f` to every call object of a request (single or batch) and joins the answers.
fn per_call(body: &[u8], f: impl Fn(&Value) -> Value) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(calls)) => Value::Array(calls.iter().map(f).collect()).to_string(),
        Ok(call) => f(&call).to_string(),
        Err(_) => "not json".into(),
    }
}

/// The relayed answer with every call of a listed method answered -32601 instead.
async fn without_methods(target: &str, body: &[u8], prefixes: &[String]) -> String {
    let missing = |call: &Value| {
        let method = call["method"].as_str().unwrap_or("");
        prefixes.iter().any(|p| method.starts_with(p.as_str()))
    };
    let no_method = |call: &Value| {
        let message = format!(
            "the method {} does not exist/is not available",
            call["method"].as_str().unwrap_or("")
        );
        serde_json::json!({"jsonrpc":"2.0","id":call["id"],"error":{"code":-32601,"message":message}})
    };
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return relay(target, body).await;
    };
    let calls: Vec<Value> = match &request {
        Value::Array(calls) => calls.clone(),
        call => vec![call.clone()],
    };
    if !calls.iter().any(missing) {
        return relay(target, body).await;
    }
    let relayed: Vec<Value> = match serde_json::from_str(&relay(target, body).await) {
        Ok(Value::Array(items)) => items,
        Ok(item) => vec![item],
        Err(_) => Vec::new(),
    };
    let answers: Vec<Value> = calls
        .iter()
        .map(|call| match missing(call) {
            true => no_method(call),
            false => relayed
                .iter()
                .find(|a| a["id"] == call["id"])
                .cloned()
                .unwrap_or_else(|| no_method(call)),
        })
        .collect();
    match request {
        Value::Array(_) => Value::Array(answers).to_string(),
        _ => answers[0].to_string(),
    }
}

async fn answer(target: &str, fault: Fault, body: &[u8]) -> http::Response<Body> {
    match fault {
        Fault::Pass => reply(200, relay(target, body).await),
        Fault::Garbage => reply(200, &b"\x00\x9f<html>garbage"[..]),
        Fault::Status(code) => reply(code, "upstream says no"),
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply(200, "")
        }
        Fault::Delay(d) => {
            let text = relay(target, body).await;
            tokio::time::sleep(d).await;
            reply(200, text)
        }
        Fault::ShortBatch => {
            let text = relay(target, body).await;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(mut items)) => {
                    items.pop();
                    reply(200, Value::Array(items).to_string())
                }
                _ => reply(200, text),
            }
        }
        Fault::PartialBatch => {
            let text = relay(target, body).await;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(mut items)) if !items.is_empty() => {
                    let last = items.len() - 1;
                    let id = items[last]["id"].clone();
                    items[last] = serde_json::json!({"jsonrpc":"2.0","id":id,"error":{"code":-32000,"message":"header not found"}});
                    reply(200, Value::Array(items).to_string())
                }
                _ => reply(200, text),
            }
        }
        Fault::NoMethod(prefixes) => reply(200, without_methods(target, body, &prefixes).await),
        Fault::BatchGarbage if body.first() == Some(&b'[') => reply(200, &b"\x00garbage"[..]),
        Fault::BatchGarbage => reply(200, relay(target, body).await),
        Fault::NodeError(code, message) => reply(
            200,
            per_call(
                body,
                |c| serde_json::json!({"jsonrpc":"2.0","id":c["id"],"error":{"code":code,"message":message}}),
            ),
        ),
        Fault::NullResult => reply(
            200,
            per_call(
                body,
                |c| serde_json::json!({"jsonrpc":"2.0","id":c["id"],"result":null}),
            ),
        ),
        Fault::WrongChain(chain) => {
            let is_chain_id = serde_json::from_slice::<Value>(body)
                .map(|v| v["method"] == "eth_chainId")
                .unwrap_or(false);
            if is_chain_id {
                reply(
                    200,
                    per_call(
                        body,
                        |c| serde_json::json!({"jsonrpc":"2.0","id":c["id"],"result":format!("{chain:#x}")}),
                    ),
                )
            } else {
                reply(200, relay(target, body).await)
            }
        }
    }
}
