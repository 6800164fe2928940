//! The replay upstream: records `eth_getBlockByNumber(n, true|false)` for blocks
//! `0..recorded` from a node once, then serves any block `n <= max_block` from memory as
//! recorded block `n % recorded` with its `number` (and its transactions' `blockNumber`)
//! rewritten to `n`. Also answers `eth_blockNumber` (= `max_block`), `eth_chainId`,
//! `net_version` and `web3_clientVersion`; anything else gets -32601. With
//! `--receipts-and-traces` it also records, for the recorded blocks only (not renumbered: their
//! hashes are unique once), every transaction's receipt, every block's `trace_block` and the
//! code of every created contract, and serves `eth_getTransactionReceipt`, `trace_block`,
//! `eth_getLogs` (block range, `address` and `topics[0]` filters; also as `eth_newFilter` +
//! `eth_getFilterLogs`, which ethereumetl uses) and `eth_getCode` from them:
//! what `export_traces` and `export_all` ask (`eth_call`, for token metadata, is not served: the
//! benchmark chain has no tokens). Listens on every
//! `--port` (one server per port: `--port` repeated makes several "upstreams" at the cost of
//! one process). Prints `ready` on stdout once listening.
//!
//! What nodewatch-export's verification asks is served too: `eth_getBlockByHash` for every
//! recorded (and `--also`) block, under its own number, and with `--receipts-and-traces`
//! `eth_getBlockReceipts` (by number or hash) for the recorded blocks.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::rpc::{self, quantity};

/// Arguments of `nwbench replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Node to record from.
    #[arg(long)]
    record_from: Uri,
    /// Blocks to record (0..recorded).
    #[arg(long, default_value_t = 2000)]
    recorded: u64,
    /// A block beyond the recorded range to record too, served under its own number only;
    /// repeatable.
    #[arg(long = "also")]
    also: Vec<u64>,
    /// Highest block served (and the answer to eth_blockNumber).
    #[arg(long, default_value_t = 1_000_000)]
    max_block: u64,
    /// Loopback port to serve on; repeatable.
    #[arg(long = "port", required = true)]
    ports: Vec<u16>,
    /// Also record receipts, traces and contract code of the recorded blocks (see above).
    #[arg(long)]
    receipts_and_traces: bool,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
}

/// A recorded JSON value split around its block-number placeholders.
struct Template {
    parts: Vec<String>,
}

impl Template {
    fn render(&self, out: &mut String, number: u64) {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                let _ = write!(out, "\"0x{number:x}\"");
            }
            out.push_str(part);
        }
    }
}

struct Store {
    full: Vec<Template>,
    hashes: Vec<Template>,
    /// `--also` blocks: number -> (full, hashes).
    extra: HashMap<u64, (Template, Template)>,
    /// Block hash (lower case) -> number, for the recorded and `--also` blocks: served under
    /// their own number only by hash (`eth_getBlockByHash`).
    by_hash: HashMap<String, u64>,
    max_block: u64,
    chain_id: String,
    /// `--receipts-and-traces`, else empty.
    more: More,
}

/// What `--receipts-and-traces` records, as JSON text.
#[derive(Default)]
struct More {
    /// Transaction hash (lower case) -> receipt.
    receipts: HashMap<String, String>,
    /// Each recorded block's receipts as one JSON array (`eth_getBlockReceipts`).
    block_receipts: Vec<String>,
    /// `trace_block` of each recorded block.
    traces: Vec<String>,
    /// Every log, in block order: (block, address, topic0, the log).
    logs: Vec<(u64, String, String, String)>,
    /// Created contract (lower case) -> code.
    code: HashMap<String, String>,
    /// `eth_newFilter` filters; the id is the index.
    filters: std::sync::Mutex<Vec<Value>>,
}

const PLACEHOLDER: &str = "@@NWBENCH_NUMBER@@";

fn template(mut block: Value) -> anyhow::Result<Template> {
    let Some(obj) = block.as_object_mut() else {
        bail!("block is not an object: {block}");
    };
    obj.insert("number".into(), PLACEHOLDER.into());
    if let Some(Value::Array(txs)) = obj.get_mut("transactions") {
        for tx in txs {
            if let Some(tx) = tx.as_object_mut() {
                tx.insert("blockNumber".into(), PLACEHOLDER.into());
            }
        }
    }
    let text = block.to_string();
    Ok(Template {
        parts: text
            .split(&format!("\"{PLACEHOLDER}\""))
            .map(str::to_owned)
            .collect(),
    })
}

async fn record(args: &Args) -> anyhow::Result<Store> {
    let client = rpc::client(2);
    let url = &args.record_from;
    let chain_id = rpc::call(&client, url, "eth_chainId", json!([]))
        .await?
        .as_str()
        .context("eth_chainId")?
        .to_owned();
    let mut full = Vec::with_capacity(args.recorded as usize);
    let mut full_blocks = Vec::new();
    let mut hashes = Vec::with_capacity(args.recorded as usize);
    let mut by_hash = HashMap::new();
    let mut first = 0;
    while first < args.recorded {
        let last = (first + 100).min(args.recorded);
        for (detail, out) in [(true, &mut full), (false, &mut hashes)] {
            let calls: Vec<(&str, Value)> = (first..last)
                .map(|n| ("eth_getBlockByNumber", json!([quantity(n), detail])))
                .collect();
            for (n, block) in (first..).zip(rpc::batch(&client, url, &calls).await?) {
                if block.is_null() {
                    bail!("the node has fewer than {} blocks", args.recorded);
                }
                if let Some(hash) = block["hash"].as_str() {
                    by_hash.insert(hash.to_lowercase(), n);
                }
                if detail && args.receipts_and_traces {
                    full_blocks.push(block.clone());
                }
                out.push(template(block)?);
            }
        }
        first = last;
    }
    let mut extra = HashMap::new();
    for &n in &args.also {
        let calls = [
            ("eth_getBlockByNumber", json!([quantity(n), true])),
            ("eth_getBlockByNumber", json!([quantity(n), false])),
        ];
        let mut blocks = rpc::batch(&client, url, &calls).await?.into_iter();
        let (Some(f), Some(h)) = (blocks.next(), blocks.next()) else {
            bail!("block {n}: short answer");
        };
        if f.is_null() {
            bail!("the node has no block {n}");
        }
        if let Some(hash) = f["hash"].as_str() {
            by_hash.insert(hash.to_lowercase(), n);
        }
        extra.insert(n, (template(f)?, template(h)?));
    }
    let more = match args.receipts_and_traces {
        true => record_more(&client, url, &full_blocks).await?,
        false => More::default(),
    };
    Ok(Store {
        full,
        hashes,
        extra,
        by_hash,
        max_block: args.max_block,
        chain_id,
        more,
    })
}

/// Receipts (and their logs), traces and created contracts' code of `blocks`.
async fn record_more(
    client: &rpc::HttpClient,
    url: &Uri,
    blocks: &[Value],
) -> anyhow::Result<More> {
    let mut more = More::default();
    let lower = |v: &Value| v.as_str().unwrap_or_default().to_lowercase();
    let tx_hashes: Vec<String> = blocks
        .iter()
        .flat_map(|b| b["transactions"].as_array().cloned().unwrap_or_default())
        .map(|tx| lower(&tx["hash"]))
        .collect();
    let mut created = Vec::new();
    for chunk in tx_hashes.chunks(100) {
        let calls: Vec<(&str, Value)> = chunk
            .iter()
            .map(|h| ("eth_getTransactionReceipt", json!([h])))
            .collect();
        for (hash, receipt) in chunk.iter().zip(rpc::batch(client, url, &calls).await?) {
            for log in receipt["logs"].as_array().into_iter().flatten() {
                let block =
                    u64::from_str_radix(lower(&log["blockNumber"]).trim_start_matches("0x"), 16)?;
                more.logs.push((
                    block,
                    lower(&log["address"]),
                    lower(&log["topics"][0]),
                    log.to_string(),
                ));
            }
            if receipt["contractAddress"].is_string() {
                created.push(lower(&receipt["contractAddress"]));
            }
            more.receipts.insert(hash.clone(), receipt.to_string());
        }
    }
    for block in blocks {
        let receipts: Vec<&str> = block["transactions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tx| more.receipts.get(&lower(&tx["hash"])).map(String::as_str))
            .collect();
        more.block_receipts.push(format!("[{}]", receipts.join(",")));
    }
    for first in (0..blocks.len()).step_by(100) {
        let calls: Vec<(&str, Value)> = (first..(first + 100).min(blocks.len()))
            .map(|n| ("trace_block", json!([quantity(n as u64)])))
            .collect();
        more.traces.extend(
            rpc::batch(client, url, &calls)
                .await?
                .iter()
                .map(Value::to_string),
        );
    }
    for chunk in created.chunks(100) {
        let calls: Vec<(&str, Value)> = chunk
            .iter()
            .map(|a| ("eth_getCode", json!([a, "latest"])))
            .collect();
        for (address, code) in chunk.iter().zip(rpc::batch(client, url, &calls).await?) {
            more.code.insert(address.clone(), code.to_string());
        }
    }
    more.logs.sort_by_key(|l| l.0);
    Ok(more)
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let store = Arc::new(record(&args).await?);
    let mut listeners = Vec::new();
    for port in &args.ports {
        listeners.push(
            TcpListener::bind(("127.0.0.1", *port))
                .await
                .with_context(|| format!("bind 127.0.0.1:{port}"))?,
        );
    }
    println!("ready");
    let mut tasks = Vec::new();
    for listener in listeners {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let store = store.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let store = store.clone();
                        async move { Ok::<_, Infallible>(serve(&store, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: &'a str,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

async fn serve(store: &Store, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return respond(String::new()),
    };
    let mut out = String::new();
    // (An untagged enum would buffer the input and lose the borrowed raw values.)
    let is_batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let parsed = if is_batch {
        serde_json::from_slice::<Vec<Call<'_>>>(&body)
    } else {
        serde_json::from_slice::<Call<'_>>(&body).map(|c| vec![c])
    };
    match parsed {
        Ok(calls) if !is_batch => answer(store, &calls[0], &mut out),
        Ok(calls) => {
            out.push('[');
            for (i, call) in calls.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                answer(store, call, &mut out);
            }
            out.push(']');
        }
        Err(e) => {
            let _ = write!(
                out,
                r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32700,"message":{}}}}}"#,
                Value::from(e.to_string())
            );
        }
    }
    respond(out)
}

fn respond(body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

fn answer(store: &Store, call: &Call<'_>, out: &mut String) {
    let id = call.id.map_or("null", RawValue::get);
    let _ = write!(out, r#"{{"jsonrpc":"2.0","id":{id},"#);
    let params = call.params.map_or("[]", RawValue::get);
    match call.method {
        "eth_blockNumber" => {
            let _ = write!(out, r#""result":"0x{:x}"}}"#, store.max_block);
        }
        "eth_chainId" => {
            let _ = write!(out, r#""result":"{}"}}"#, store.chain_id);
        }
        "net_version" => {
            let id = u64::from_str_radix(store.chain_id.trim_start_matches("0x"), 16).unwrap_or(0);
            let _ = write!(out, r#""result":"{id}"}}"#);
        }
        "web3_clientVersion" => out.push_str(r#""result":"nwbench-replay"}"#),
        "eth_getBlockByNumber" => match serde_json::from_str::<(String, bool)>(params) {
            Ok((tag, full)) => {
                let number = match tag.as_str() {
                    "latest" | "safe" | "finalized" | "pending" => Some(store.max_block),
                    "earliest" => Some(0),
                    hex => u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok(),
                };
                match number {
                    Some(n) if n <= store.max_block => {
                        let template = match (store.extra.get(&n), full) {
                            (Some((f, _)), true) => f,
                            (Some((_, h)), false) => h,
                            (None, true) => &store.full[(n % store.full.len() as u64) as usize],
                            (None, false) => {
                                &store.hashes[(n % store.hashes.len() as u64) as usize]
                            }
                        };
                        out.push_str(r#""result":"#);
                        template.render(out, n);
                        out.push('}');
                    }
                    Some(_) => out.push_str(r#""result":null}"#),
                    None => {
                        out.push_str(r#""error":{"code":-32602,"message":"invalid block number"}}"#)
                    }
                }
            }
            Err(_) => out.push_str(r#""error":{"code":-32602,"message":"invalid params"}}"#),
        },
        "eth_getBlockByHash" => match serde_json::from_str::<(String, bool)>(params) {
            Ok((hash, full)) => match store.by_hash.get(&hash.to_lowercase()) {
                Some(&n) => {
                    let template = match (store.extra.get(&n), full) {
                        (Some((f, _)), true) => f,
                        (Some((_, h)), false) => h,
                        (None, true) => &store.full[n as usize],
                        (None, false) => &store.hashes[n as usize],
                    };
                    out.push_str(r#""result":"#);
                    template.render(out, n);
                    out.push('}');
                }
                None => out.push_str(r#""result":null}"#),
            },
            Err(_) => out.push_str(r#""error":{"code":-32602,"message":"invalid params"}}"#),
        },
        "eth_getBlockReceipts" if !store.more.traces.is_empty() => {
            let tag: Value = serde_json::from_str(params).unwrap_or(Value::Null);
            let tag = tag[0]
                .as_str()
                .or_else(|| tag[0]["blockHash"].as_str())
                .unwrap_or_default()
                .to_lowercase();
            let number = match tag.len() {
                66 => store.by_hash.get(&tag).copied(),
                _ => u64::from_str_radix(tag.trim_start_matches("0x"), 16).ok(),
            };
            match number.and_then(|n| store.more.block_receipts.get(n as usize)) {
                Some(r) => {
                    let _ = write!(out, r#""result":{r}}}"#);
                }
                None => out.push_str(r#""result":null}"#),
            }
        }
        "eth_getTransactionReceipt"
        | "trace_block"
        | "eth_getLogs"
        | "eth_getCode"
        | "eth_newFilter"
        | "eth_getFilterLogs"
        | "eth_uninstallFilter"
            if !store.more.traces.is_empty() =>
        {
            answer_more(&store.more, call.method, params, out)
        }
        _ => out.push_str(r#""error":{"code":-32601,"message":"method not found"}}"#),
    }
}

/// The `--receipts-and-traces` methods.
fn answer_more(more: &More, method: &str, params: &str, out: &mut String) {
    let params: Value = serde_json::from_str(params).unwrap_or(Value::Null);
    let lower = |v: &Value| v.as_str().unwrap_or_default().to_lowercase();
    let number = |v: &Value| u64::from_str_radix(lower(v).trim_start_matches("0x"), 16).ok();
    let result = match method {
        "eth_getTransactionReceipt" => Some(
            more.receipts
                .get(&lower(&params[0]))
                .map_or("null", String::as_str)
                .to_owned(),
        ),
        "eth_getCode" => Some(
            more.code
                .get(&lower(&params[0]))
                .map_or("\"0x\"", String::as_str)
                .to_owned(),
        ),
        "trace_block" => number(&params[0])
            .and_then(|n| more.traces.get(n as usize))
            .cloned(),
        "eth_newFilter" => {
            let mut filters = more.filters.lock().unwrap();
            filters.push(params[0].clone());
            Some(format!("\"0x{:x}\"", filters.len() - 1))
        }
        "eth_uninstallFilter" => Some("true".into()),
        "eth_getFilterLogs" => {
            let filter = number(&params[0])
                .and_then(|i| more.filters.lock().unwrap().get(i as usize).cloned());
            filter.and_then(|f| logs(more, &f))
        }
        _ => logs(more, &params[0]),
    };
    match result {
        Some(r) => {
            let _ = write!(out, r#""result":{r}}}"#);
        }
        None => {
            out.push_str(r#""error":{"code":-32602,"message":"not recorded or invalid params"}}"#)
        }
    }
}

/// The recorded logs `filter` selects, as a JSON array.
fn logs(more: &More, filter: &Value) -> Option<String> {
    let lower = |v: &Value| v.as_str().unwrap_or_default().to_lowercase();
    let number = |v: &Value| {
        v.as_u64()
            .or_else(|| u64::from_str_radix(lower(v).trim_start_matches("0x"), 16).ok())
    };
    let one_or_many = |v: &Value| -> Option<Vec<String>> {
        match v {
            Value::Array(items) => Some(items.iter().map(lower).collect()),
            Value::String(_) => Some(vec![lower(v)]),
            _ => None,
        }
    };
    let addresses = one_or_many(&filter["address"]);
    let topics = one_or_many(&filter["topics"][0]);
    let (from, to) = (number(&filter["fromBlock"])?, number(&filter["toBlock"])?);
    let logs: Vec<&str> = more
        .logs
        .iter()
        .filter(|(b, a, t, _)| {
            (from..=to).contains(b)
                && addresses.as_ref().is_none_or(|s| s.contains(a))
                && topics.as_ref().is_none_or(|s| s.contains(t))
        })
        .map(|l| l.3.as_str())
        .collect();
    Some(format!("[{}]", logs.join(",")))
}
