//! Property-based fuzzing of the whole request path, split and merge included: random
//! batches (ids of every type, notifications, invalid items, block requests) go through the
//! in-process proxy to three echo upstreams that answer in shuffled order, fail whole
//! requests (HTTP 500, short batches), answer `null` for blocks and "header not found". Every
//! client input must get one answer per item with an id, in request order, ids byte for
//! byte, each answer the echo of its own call (or `null` for a block, or -32603 when every
//! upstream failed it): merge(split(batch)) keeps ids and order.
//!
//! Cases: `PROPTEST_CASES` (default 256); `make fuzz` raises it.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use support::nodewatch::{test_config, Nodewatch};
use support::relay::SplitMix64;
use support::rpc;
use support::scripted::{self, Scripted};

/// An upstream that echoes each call as `{"m": method, "p": params}`, misbehaving at random.
async fn echo_upstream(seed: u64) -> Scripted {
    let rng = Arc::new(Mutex::new(SplitMix64::new(seed)));
    Scripted::start(move |req| {
        let (status, text) = echo(&rng, &req.body);
        async move { scripted::ok(status, text) }
    })
    .await
}

fn echo(rng: &Mutex<SplitMix64>, body: &[u8]) -> (u16, String) {
    let mut rng = rng.lock().unwrap();
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (400, "bad request".into());
    };
    let probe = request["method"] == "eth_blockNumber" || request["method"] == "eth_chainId";
    if probe {
        let result = if request["method"] == "eth_chainId" {
            "0x1"
        } else {
            "0x64"
        };
        return (
            200,
            json!({"jsonrpc":"2.0","id":request["id"],"result":result}).to_string(),
        );
    }
    if rng.chance(0.1) {
        return (500, "no".into());
    }
    let calls = match &request {
        Value::Array(calls) => calls.clone(),
        call => vec![call.clone()],
    };
    let mut answers: Vec<Value> = calls
        .iter()
        .map(|c| {
            let id = c["id"].clone();
            let method = c["method"].as_str().unwrap_or("");
            if method == "eth_getBlockByNumber" && rng.chance(0.3) {
                return json!({"jsonrpc":"2.0","id":id,"result":null});
            }
            if method == "x_trouble" && rng.chance(0.5) {
                return json!({"jsonrpc":"2.0","id":id,"error":{"code":-32000,"message":"header not found"}});
            }
            let params = c.get("params").cloned().unwrap_or(json!("absent"));
            json!({"jsonrpc":"2.0","id":id,"result":{"m":method,"p":params}})
        })
        .collect();
    for i in (1..answers.len()).rev() {
        answers.swap(i, rng.below(i as u64 + 1) as usize);
    }
    if request.is_array() {
        if answers.len() > 1 && rng.chance(0.1) {
            answers.pop();
        }
        (200, Value::Array(answers).to_string())
    } else {
        (200, answers.pop().unwrap().to_string())
    }
}

/// Params without floats (their text would not survive the echo's re-encoding).
fn params() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9 ]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Item {
    /// A call: raw id text (`None`: a notification), method, params.
    Call(Option<String>, String, Option<Value>),
    /// Not a valid request object.
    Invalid(String),
}

fn item() -> impl Strategy<Value = Item> {
    let id = prop::option::weighted(
        0.9,
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "[a-z0-9]{0,6}".prop_map(|s| format!("{s:?}")),
            Just("null".to_string()),
            Just("1.50".to_string()),
            Just("1e2".to_string()),
        ],
    );
    let call = (
        id,
        prop_oneof![
            (0u64..150).prop_map(|n| (
                "eth_getBlockByNumber".to_string(),
                Some(json!([format!("{n:#x}"), false]))
            )),
            params().prop_map(|p| ("x_echo".to_string(), Some(p))),
            Just(("x_echo".to_string(), None)),
            Just(("x_trouble".to_string(), Some(json!([])))),
        ],
    )
        .prop_map(|(id, (m, p))| Item::Call(id, m, p));
    prop_oneof![
        9 => call,
        1 => prop_oneof![
            Just(r#"{"jsonrpc":"1.0","id":5,"method":"x"}"#.to_string()),
            Just("7".to_string()),
            Just(r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#.to_string()),
        ].prop_map(Item::Invalid),
    ]
}

impl Item {
    fn text(&self) -> String {
        match self {
            Item::Invalid(t) => t.clone(),
            Item::Call(id, m, p) => {
                let mut s = format!(r#"{{"jsonrpc":"2.0","method":"{m}""#);
                if let Some(id) = id {
                    s.push_str(&format!(r#","id":{id}"#));
                }
                if let Some(p) = p {
                    s.push_str(&format!(r#","params":{p}"#));
                }
                s.push('}');
                s
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Answer<'a> {
    jsonrpc: String,
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// A present field, even `null`, is `Some`.
fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

fn check_item(item: &Item, a: &Answer<'_>) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.jsonrpc, "2.0");
    match item {
        Item::Invalid(_) => {
            prop_assert_eq!(
                a.error.as_ref().map(|e| e["code"].clone()),
                Some(json!(-32600))
            );
        }
        Item::Call(id, method, params) => {
            prop_assert_eq!(a.id.get(), id.as_deref().unwrap());
            match (&a.result, &a.error) {
                (Some(Value::Null), None) => prop_assert_eq!(method, "eth_getBlockByNumber"),
                (Some(r), None) => {
                    prop_assert_eq!(&r["m"], &json!(method));
                    let absent = json!("absent");
                    prop_assert_eq!(&r["p"], params.as_ref().unwrap_or(&absent));
                }
                (None, Some(e)) => {
                    // Every upstream failed it, or the last one's node trouble came back.
                    prop_assert!(e["code"] == -32603 || e["code"] == -32000, "{}", e);
                }
                _ => prop_assert!(false, "neither or both of result and error"),
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_merge_of_split_keeps_ids_order_and_answers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_servers, nw) = rt.block_on(async {
        let mut servers = Vec::new();
        for seed in 1..=3 {
            servers.push(echo_upstream(seed).await);
        }
        let upstreams: Vec<String> = servers.iter().map(Scripted::url).collect();
        let mut config = test_config(&upstreams);
        config.proxy.attempt_timeout = Duration::from_secs(2);
        // The retry budget is not under test here: every failover is wanted.
        config.retry.min_per_second = 100_000;
        let nw = Nodewatch::start_with(config).await;
        nw.wait_all_healthy().await;
        (servers, nw)
    });
    // One pooled client for every case (a connection per case would be most of the time).
    let client = rt.block_on(async { rpc::Client::new() });
    let cases = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (prop::collection::vec(item(), 1..16), any::<bool>());
    let result = runner.run(&strategy, |(items, batch)| {
        cases.fetch_add(1, Ordering::Relaxed);
        let batch = batch || items.len() > 1 || matches!(items[0], Item::Invalid(_));
        let texts: Vec<String> = items.iter().map(Item::text).collect();
        let body = if batch {
            format!("[{}]", texts.join(","))
        } else {
            texts[0].clone()
        };
        let r = rt.block_on(client.post(&nw.url, body.clone()));
        let r = r.expect("answered within 30 s");
        let (status, answer) = (r.status, r.body);
        prop_assert_eq!(status, 200);
        let answered: Vec<&Item> = items
            .iter()
            .filter(|i| !matches!(i, Item::Call(None, _, _)))
            .collect();
        if answered.is_empty() {
            prop_assert!(answer.is_empty(), "notifications only: {:?}", answer);
            return Ok(());
        }
        let answers: Vec<Answer<'_>> = if batch {
            serde_json::from_slice(&answer)
        } else {
            serde_json::from_slice(&answer).map(|a| vec![a])
        }
        .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&answer))))?;
        prop_assert_eq!(answers.len(), answered.len(), "{}", body);
        for (item, a) in answered.iter().zip(&answers) {
            check_item(item, a).map_err(|e| {
                TestCaseError::fail(format!(
                    "{e}\nrequest {body}\nanswer {}",
                    String::from_utf8_lossy(&answer)
                ))
            })?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz proxy/split-merge: {e}");
    }
    eprintln!(
        "FIGURE fuzz proxy/split-merge: {} cases (real proxy, three misbehaving echo upstreams), no failure",
        cases.load(Ordering::Relaxed)
    );

    // Arbitrary bytes and mutated batches through the real HTTP path: always a 200 with a
    // well-formed JSON-RPC answer (or an empty body for notifications only).
    let cases = AtomicU64::new(0);
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop::collection::vec(item(), 1..6),
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(items, at, byte)| {
                let texts: Vec<String> = items.iter().map(Item::text).collect();
                let mut b = format!("[{}]", texts.join(",")).into_bytes();
                let i = at.index(b.len());
                b[i] = byte;
                b
            }),
    ];
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&bytes, |body| {
        cases.fetch_add(1, Ordering::Relaxed);
        // No Content-Type: arbitrary bytes, as a careless client sends them.
        let request = http::Request::post(&nw.url)
            .body(rpc::body(body.clone()))
            .unwrap();
        let r = rt.block_on(client.send(request));
        let r = r.expect("answered within 30 s");
        let (status, answer) = (r.status, r.body);
        prop_assert_eq!(status, 200);
        if answer.is_empty() {
            return Ok(());
        }
        // Ids are the client's own text, byte for byte: even `1e999`, which no f64 holds,
        // so the answer is read with raw ids.
        #[derive(serde::Deserialize)]
        struct Shape<'a> {
            jsonrpc: String,
            #[serde(borrow)]
            id: &'a RawValue,
            #[serde(default, borrow, deserialize_with = "present")]
            result: Option<&'a RawValue>,
            #[serde(default, borrow, deserialize_with = "present")]
            error: Option<&'a RawValue>,
        }
        let fail = |e: serde_json::Error| TestCaseError::fail(format!("{e}: {answer:?}"));
        let items: Vec<Shape<'_>> = if answer.first() == Some(&b'[') {
            serde_json::from_slice(&answer).map_err(fail)?
        } else {
            vec![serde_json::from_slice(&answer).map_err(fail)?]
        };
        prop_assert!(!items.is_empty());
        for a in items {
            prop_assert_eq!(&a.jsonrpc, "2.0");
            prop_assert!(!a.id.get().is_empty());
            prop_assert!(a.result.is_some() != a.error.is_some(), "{:?}", answer);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz proxy/http-bytes: {e}");
    }
    eprintln!(
        "FIGURE fuzz proxy/http-bytes: {} cases (arbitrary and mutated bodies over HTTP), no failure",
        cases.load(Ordering::Relaxed)
    );
    rt.block_on(nw.stop());
}
