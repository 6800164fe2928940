//! JSON-RPC and HTTP edge cases over real sockets: each gets a clear answer and none stops
//! the proxy from serving the next request.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::fault::{Fault, FaultServer};
use support::nodewatch::{test_config, Nodewatch};
use support::poll::wait_until;
use support::rpc;

async fn proxy(anvil: &std::path::Path) -> (Anvil, Nodewatch) {
    let node = Anvil::spawn(anvil).await;
    let mut config = test_config(&[node.url()]);
    config.proxy.max_batch = 5;
    config.proxy.body_limit = 512 * 1024;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    (node, nw)
}

async fn answer(url: &str, body: &str) -> Value {
    let (status, text) = rpc::post(url, body).await;
    assert_eq!(status, 200, "{body:.60} -> {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:.200}"))
}

async fn still_serves(url: &str) {
    assert_eq!(
        rpc::call(url, "eth_chainId", json!([])).await,
        json!("0x7a69")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_rpc_errors() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (_node, nw) = proxy(&anvil).await;
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let deep_params = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":{}}}"#,
        "[".repeat(5000) + &"]".repeat(5000)
    );
    let cases: Vec<(&str, String, i64, Value)> = vec![
        ("invalid JSON", "{\"jsonrpc\":".into(), -32700, Value::Null),
        (
            "not UTF-8",
            String::from_utf8_lossy(b"\xff\xfe{}").into_owned(),
            -32700,
            Value::Null,
        ),
        ("a number", "42".into(), -32600, Value::Null),
        ("empty batch", "[]".into(), -32600, Value::Null),
        (
            "missing method",
            r#"{"jsonrpc":"2.0","id":7}"#.into(),
            -32600,
            json!(7),
        ),
        (
            "method not a string",
            r#"{"jsonrpc":"2.0","id":"x","method":1}"#.into(),
            -32600,
            json!("x"),
        ),
        (
            "wrong jsonrpc",
            r#"{"jsonrpc":"1.0","id":8,"method":"eth_chainId"}"#.into(),
            -32600,
            json!(8),
        ),
        (
            "object id",
            r#"{"jsonrpc":"2.0","id":{},"method":"eth_chainId"}"#.into(),
            -32600,
            Value::Null,
        ),
        (
            "batch over the max",
            format!(
                "[{}]",
                [r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#; 6].join(",")
            ),
            -32600,
            Value::Null,
        ),
        ("100k nested brackets", deep, -32700, Value::Null),
        ("deep params", deep_params, -32700, Value::Null),
    ];
    for (what, body, code, id) in cases {
        let v = answer(&nw.url, &body).await;
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
        assert_eq!(v["id"], id, "{what}: {v}");
        assert_eq!(v["jsonrpc"], "2.0", "{what}");
        still_serves(&nw.url).await;
    }
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_keep_order_ids_and_skip_notifications() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (_node, nw) = proxy(&anvil).await;
    let body = r#"[
        {"jsonrpc":"2.0","id":"a","method":"eth_chainId"},
        {"jsonrpc":"2.0","method":"eth_blockNumber"},
        {"jsonrpc":"2.0","id":1.5,"method":"eth_blockNumber"},
        {"jsonrpc":"2.0","id":"a","method":"net_version"},
        {"jsonrpc":"1.0","id":null,"method":"eth_chainId"}
    ]"#;
    let (_, text) = rpc::post(&nw.url, body).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 4, "{text}");
    assert_eq!(
        items[0],
        json!({"jsonrpc":"2.0","id":"a","result":"0x7a69"})
    );
    assert_eq!(items[1], json!({"jsonrpc":"2.0","id":1.5,"result":"0x0"}));
    assert!(
        text.contains(r#""id":1.5"#),
        "ids are passed through as written: {text}"
    );
    assert_eq!(items[2], json!({"jsonrpc":"2.0","id":"a","result":"31337"}));
    assert_eq!(items[3]["id"], Value::Null);
    assert_eq!(items[3]["error"]["code"], -32600);

    // Only notifications: nothing to answer.
    let (status, text) = rpc::post(&nw.url, r#"[{"jsonrpc":"2.0","method":"eth_chainId"}]"#).await;
    assert_eq!((status, text.as_str()), (200, ""));
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_level_errors() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let (_node, nw) = proxy(&anvil).await;
    // Over the body limit: 413, with and without a Content-Length.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["{}"]}}"#,
        "a".repeat(600_000)
    );
    let (status, text) = rpc::post(&nw.url, &big).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("larger than the limit"), "{text}");
    let chunks = (0..80)
        .map(|_| bytes::Bytes::from(vec![b' '; 8192]))
        .collect();
    let request = http::Request::post(&nw.url)
        .body(rpc::stream_body(chunks))
        .unwrap();
    let response = rpc::Client::new().send(request).await.unwrap();
    assert_eq!(response.status, 413, "chunked body over the limit");

    // Not POST: 405 with a hint.
    let response = rpc::Client::new().get(&nw.url).await.unwrap();
    assert_eq!(response.status, 405);
    assert_eq!(response.headers["allow"], "POST");
    let hint = response.body;
    assert!(String::from_utf8_lossy(&hint).contains("POST"));

    // HTTP/2 with prior knowledge is served too.
    let response = rpc::Client::http2()
        .post(
            &nw.url,
            &br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#[..],
        )
        .await
        .unwrap();
    assert_eq!(response.version, http::Version::HTTP_2);
    let body = response.body;
    assert_eq!(&body[..], br#"{"jsonrpc":"2.0","id":1,"result":"0x7a69"}"#);
    still_serves(&nw.url).await;
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_upstream_fails_the_client_gets_32603_without_secrets() {
    // Two closed ports with secrets in path, query and headers.
    let closed = |p: u16| format!("http://127.0.0.1:{p}/v3/SECRETKEY?apikey=SECRETQUERY");
    let mut config = test_config(&[closed(support::free_port()), closed(support::free_port())]);
    config.upstreams[0]
        .headers
        .insert("Authorization".into(), "Bearer SECRETTOKEN".into());
    let nw = Nodewatch::start_with(config).await;
    let (status, text) = rpc::post(
        &nw.url,
        r#"[{"jsonrpc":"2.0","id":"x","method":"eth_blockNumber"},{"jsonrpc":"2.0","id":9,"method":"eth_chainId"}]"#,
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0]["id"], "x");
    assert_eq!(v[1]["id"], 9);
    for item in v.as_array().unwrap() {
        assert_eq!(item["error"]["code"], -32603);
        let message = item["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("no upstream could answer"), "{message}");
        assert!(
            message.contains("upstream u1") && message.contains("upstream u2"),
            "{message}"
        );
    }
    nw.wait_for("both down", Duration::from_secs(5), |s| {
        s.upstreams.iter().all(|u| u.last_error.is_some())
    })
    .await;
    let status = serde_json::to_string(&**nw.handle.snapshot.load()).unwrap();
    let metrics = String::from_utf8(nw.handle.metrics.encode()).unwrap();
    for place in [&text, &status, &metrics] {
        assert!(!place.contains("SECRET"), "a secret leaked: {place:.500}");
    }
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let slow = FaultServer::start(&node.url(), Fault::Pass).await;
    let nw = Nodewatch::start(&[slow.url()]).await;
    nw.wait_all_healthy().await;
    slow.set(Fault::Delay(Duration::from_millis(700)));
    let url = nw.url.clone();
    let in_flight = tokio::spawn(async move {
        rpc::try_post(&url, r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#).await
    });
    // The request is in flight (held 700 ms upstream) when the stop begins: the proxy counts
    // its attempts (probes are not attempts).
    wait_until(
        "the request in flight upstream",
        Duration::from_secs(5),
        async || nw.metric("nodewatch_upstream_in_flight_requests{upstream=\"u1\"}") >= 1.0,
    )
    .await;
    let url = nw.url.clone();
    nw.stop().await;
    let (status, text) = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"jsonrpc":"2.0","id":1,"result":"0x7a69"}"#)
    );
    assert!(
        rpc::try_post(&url, "{}").await.is_err(),
        "no new connections after shutdown"
    );
}
