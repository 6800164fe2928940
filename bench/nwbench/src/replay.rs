//! The replay upstream: records `eth_getBlockByNumber(n, true|false)` for blocks
//! `0..recorded` from a node once, then serves any block `n <= max_block` from memory as
//! recorded block `n % recorded` with its `number` (and its transactions' `blockNumber`)
//! rewritten to `n`. Also answers `eth_blockNumber` (= `max_block`), `eth_chainId`,
//! `net_version` and `web3_clientVersion`; anything else gets -32601. Listens on every
//! `--port` (one server per port: `--port` repeated makes several "upstreams" at the cost of
//! one process). Prints `ready` on stdout once listening.

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
    max_block: u64,
    chain_id: String,
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
    let mut hashes = Vec::with_capacity(args.recorded as usize);
    let mut first = 0;
    while first < args.recorded {
        let last = (first + 100).min(args.recorded);
        for (detail, out) in [(true, &mut full), (false, &mut hashes)] {
            let calls: Vec<(&str, Value)> = (first..last)
                .map(|n| ("eth_getBlockByNumber", json!([quantity(n), detail])))
                .collect();
            for block in rpc::batch(&client, url, &calls).await? {
                if block.is_null() {
                    bail!("the node has fewer than {} blocks", args.recorded);
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
        extra.insert(n, (template(f)?, template(h)?));
    }
    Ok(Store {
        full,
        hashes,
        extra,
        max_block: args.max_block,
        chain_id,
    })
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
        _ => out.push_str(r#""error":{"code":-32601,"message":"method not found"}}"#),
    }
}
