//! The bad-input catalogue (docs/bad-input.md): each row is a hostile or broken input, from
//! a client or from an upstream, sent to the real `nodewatch` binary; each must get a clear
//! JSON-RPC or HTTP answer (or a closed connection, for a client that never finishes its
//! request), the proxy must keep serving, and its memory must come back to its level.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::binary::Binary;
use support::poll::poll_until;
use support::raw::{self, Outcome};
use support::rpc;
use support::scripted::{self, Scripted};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Rank 1 in front of anvil: relays everything, except `x_*` methods, which misbehave.
async fn scripted_upstream(anvil: String) -> Scripted {
    Scripted::start(move |req| {
        let anvil = anvil.clone();
        async move { Ok(script(&anvil, &req).await) }
    })
    .await
}

async fn script(anvil: &str, req: &scripted::Request) -> http::Response<scripted::Body> {
    let v: Value = req.json().unwrap_or_default();
    let ok = |text: String| scripted::reply(200, text);
    match v["method"].as_str().unwrap_or("") {
        "x_wrongIdType" => ok(r#"{"jsonrpc":"2.0","id":"0","result":"wrong"}"#.into()),
        "x_huge" => ok(format!(
            r#"{{"jsonrpc":"2.0","id":0,"result":"{}"}}"#,
            "a".repeat(HUGE)
        )),
        "x_big" => ok(format!(
            r#"{{"jsonrpc":"2.0","id":0,"result":"{}"}}"#,
            "b".repeat(BIG)
        )),
        "x_redirect" => {
            let mut r = scripted::reply(302, "");
            r.headers_mut().remove("content-type");
            r.headers_mut()
                .insert("location", anvil.parse().expect("a header value"));
            r
        }
        _ => {
            let (status, text) = scripted::forward(anvil, req)
                .await
                .unwrap_or((502, String::new()));
            scripted::reply(status, text)
        }
    }
}

/// An upstream answer over the configured response limit (8 MiB).
const HUGE: usize = 20 << 20;
/// A large upstream answer within the limit.
const BIG: usize = 4 << 20;

const CONFIG: &str = r#"
[probe]
interval = "200ms"
timeout = "1s"
[proxy]
request_timeout = "3s"
attempt_timeout = "2s"
header_read_timeout = "1s"
max_connections = 256
response_limit = 8388608
"#;

/// `proxy.max_connections` in [`CONFIG`].
const SLOTS: usize = 256;

struct Rig {
    nw: Binary,
    _node: Anvil,
}

impl Rig {
    /// POST with Content-Length and `Connection: close`.
    async fn post(&self, body: &[u8], headers: &[&str]) -> Outcome {
        raw::exchange(
            &self.nw.addr,
            &raw::post(body, headers),
            Duration::from_secs(30),
        )
        .await
    }

    async fn json(&self, body: &[u8]) -> Value {
        match self.post(body, &["Content-Type: application/json"]).await {
            Outcome::Response(200, b) => serde_json::from_slice(&b)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&b))),
            other => panic!("expected 200 JSON, got {}", describe(&other)),
        }
    }

    async fn still_serves(&self, row: &str) {
        let v = self
            .json(br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#)
            .await;
        assert_eq!(v["result"], "0x7a69", "after {row}: {v}");
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Response(s, b) => format!(
            "HTTP {s} {}",
            String::from_utf8_lossy(&b[..b.len().min(200)])
        ),
        Outcome::Closed(b) => format!("closed after {} bytes", b.len()),
        Outcome::Silent => "no answer".into(),
    }
}

fn error_code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error: {v}"))
}

fn call(id: &str, method: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_catalogue() {
    // Boxed: the catalogue's state machine is too large for the test thread's stack.
    Box::pin(catalogue()).await;
}

async fn catalogue() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let upstream = scripted_upstream(node.url()).await;
    let scripted = upstream.url();
    let toml = format!(
        "{CONFIG}\n[[upstreams]]\nname = \"scripted\"\nurl = \"{scripted}\"\n\
         [[upstreams]]\nname = \"anvil\"\nurl = \"{}\"\n",
        node.url()
    );
    let rig = Rig {
        // What RSS shows should be what nodewatch holds, not what glibc keeps for reuse: one
        // malloc arena (with glibc's default, the level depends on which thread met the
        // largest input), and a fixed mmap threshold, so every buffer of 128 KiB or more is
        // given back to the system when freed (glibc's default raises the threshold after
        // the first such free, and the 16 MB buffers then stay in the heap, given back at
        // unpredictable moments: CI saw one row of a last pass at +18%).
        nw: Binary::start(
            &toml,
            &[],
            &[
                ("MALLOC_ARENA_MAX", "1"),
                ("MALLOC_MMAP_THRESHOLD_", "131072"),
            ],
        ),
        _node: node,
    };
    // Warm-up: both upstreams probed, a few requests served.
    rig.nw.wait_all_healthy().await;
    for _ in 0..50 {
        rig.still_serves("warm-up").await;
    }
    let start = rig.nw.rss_kib().expect("nodewatch's VmRSS at the start");
    // Passes over the catalogue. The first ones set the level (connection buffers, the
    // heap's small-allocation pages); large buffers go back to the system when freed (see
    // the mmap threshold above), so RSS moves little from row to row. A leak moves the level
    // itself: whatever a row leaves behind adds up pass after pass, so the last pass must
    // stay under the highest RSS of the passes before it.
    let mut level = 0;
    let mut peak = start;
    let mut last_pass_peak = 0;
    let mut rows = 0;
    let passes: usize = std::env::var("NODEWATCH_CATALOGUE_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(2);
    for pass in 1..=passes {
        if pass == passes {
            level = peak;
        }
        for (name, row) in ROWS {
            let started = Instant::now();
            row(&rig).await;
            rig.still_serves(name).await;
            let rss = rig.nw.rss_kib().expect("nodewatch's VmRSS after a row");
            peak = peak.max(rss);
            if pass == passes {
                last_pass_peak = last_pass_peak.max(rss);
            }
            rows += 1;
            eprintln!(
                "catalogue pass {pass}: {name:<40} ok in {:>6.2?}, RSS {rss} KiB",
                started.elapsed()
            );
        }
        // The scenario: a pause between passes (idle connections time out, buffers are
        // returned), then traffic again.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..50 {
            rig.still_serves("settle").await;
        }
        let rss = rig.nw.rss_kib().expect("nodewatch's VmRSS after a pass");
        peak = peak.max(rss);
        if pass == passes {
            last_pass_peak = last_pass_peak.max(rss);
        }
    }
    let end = rig.nw.rss_kib().expect("nodewatch's VmRSS at the end");
    eprintln!(
        "FIGURE catalogue: {} rows x {passes} passes ({rows} inputs) answered, proxy serving \
         after each; RSS start {start} KiB, highest before the last pass {level} KiB, highest \
         in the last pass {last_pass_peak} KiB, end {end} KiB",
        ROWS.len()
    );
    assert!(
        last_pass_peak as f64 <= level as f64 * 1.10,
        "memory grew over the last pass: highest {level} KiB before it, {last_pass_peak} KiB in it"
    );
    let mut nw = rig.nw;
    assert!(nw.is_running());
    assert!(nw.stop().success());
}

/// One catalogue row: sends its input and checks the answer.
type Row = for<'a> fn(&'a Rig) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The catalogue, in the order of docs/bad-input.md.
const ROWS: &[(&str, Row)] = &[
    ("invalid JSON", |rig| Box::pin(invalid_json(rig))),
    ("wrong types", |rig| Box::pin(wrong_types(rig))),
    ("100k nested brackets", |rig| {
        Box::pin(r_100k_nested_brackets(rig))
    }),
    ("40 MB body", |rig| Box::pin(r_40_mb_body(rig))),
    ("40 MB chunked body", |rig| {
        Box::pin(r_40_mb_chunked_body(rig))
    }),
    ("100k-item batch", |rig| Box::pin(r_100k_item_batch(rig))),
    ("duplicate ids in a batch", |rig| {
        Box::pin(duplicate_ids_in_a_batch(rig))
    }),
    ("ids of every JSON type", |rig| {
        Box::pin(ids_of_every_json_type(rig))
    }),
    ("non-UTF-8 bytes", |rig| Box::pin(non_utf_8_bytes(rig))),
    ("wrong or missing content type", |rig| {
        Box::pin(wrong_or_missing_content_type(rig))
    }),
    ("chunked body that never ends", |rig| {
        Box::pin(chunked_body_that_never_ends(rig))
    }),
    ("slowloris headers", |rig| Box::pin(slowloris_headers(rig))),
    ("thousands of idle connections", |rig| {
        Box::pin(thousands_of_idle_connections(rig))
    }),
    ("idle HTTP/2 connections", |rig| {
        Box::pin(idle_http_2_connections(rig))
    }),
    ("HTTP/2 prior knowledge", |rig| {
        Box::pin(http_2_prior_knowledge(rig))
    }),
    ("a method name 1 MB long", |rig| {
        Box::pin(a_method_name_1_mb_long(rig))
    }),
    ("upstream answers with a wrong id type", |rig| {
        Box::pin(upstream_answers_with_a_wrong_id_type(rig))
    }),
    ("upstream answer over the response limit", |rig| {
        Box::pin(upstream_answer_over_the_response_limit(rig))
    }),
    ("large upstream answer within the limit", |rig| {
        Box::pin(large_upstream_answer_within_the_limit(rig))
    }),
    ("a slow reader of a large answer", |rig| {
        Box::pin(slow_reader_of_a_large_answer(rig))
    }),
    ("upstream that redirects", |rig| {
        Box::pin(upstream_that_redirects(rig))
    }),
    ("GET and other methods", |rig| {
        Box::pin(get_and_other_methods(rig))
    }),
];

async fn invalid_json(rig: &Rig) {
    let v = rig.json(br#"{"jsonrpc":"2.0","id":1,"method":"#).await;
    assert_eq!((error_code(&v), &v["id"]), (-32700, &Value::Null), "{v}");
}

async fn wrong_types(rig: &Rig) {
    for (body, code, id) in [
        (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, -32600, json!(1)),
        (
            r#"{"jsonrpc":2,"id":2,"method":"eth_chainId"}"#,
            -32600,
            json!(2),
        ),
        (r#"{"jsonrpc":"2.0","id":3,"method":""}"#, -32600, json!(3)),
        (r#"[1,"x",null]"#, -32600, Value::Null),
        (r#""a string""#, -32600, Value::Null),
    ] {
        let v = rig.json(body.as_bytes()).await;
        let first = if v.is_array() { v[0].clone() } else { v };
        assert_eq!((error_code(&first), &first["id"]), (code, &id), "{body}");
    }
}

async fn r_100k_nested_brackets(rig: &Rig) {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let v = rig.json(deep.as_bytes()).await;
    assert_eq!(error_code(&v), -32700, "{v}");
}

async fn r_40_mb_body(rig: &Rig) {
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["{}"]}}"#,
        "a".repeat(40 << 20)
    );
    match rig.post(big.as_bytes(), &[]).await {
        Outcome::Response(413, body) => {
            assert!(String::from_utf8_lossy(&body).contains("larger than the limit"))
        }
        other => panic!("40 MB: {}", describe(&other)),
    }
}

async fn r_40_mb_chunked_body(rig: &Rig) {
    let mut stream = TcpStream::connect(&rig.nw.addr).await.unwrap();
    let head =
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("100000\r\n{}\r\n", " ".repeat(1 << 20));
    for _ in 0..40 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break; // the proxy answered and closed
        }
    }
    let got = raw::read_all(&mut stream, Duration::from_secs(10)).await;
    assert!(
        matches!(got, Outcome::Response(413, _)),
        "{}",
        describe(&got)
    );
}

async fn r_100k_item_batch(rig: &Rig) {
    let batch = format!("[{}]", vec![call("1", "eth_chainId"); 100_000].join(","));
    let v = rig.json(batch.as_bytes()).await;
    assert_eq!(error_code(&v), -32600, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("100000"));
}

async fn duplicate_ids_in_a_batch(rig: &Rig) {
    let body = format!(
        "[{},{},{}]",
        call("7", "eth_chainId"),
        call("7", "net_version"),
        call("7", "eth_chainId")
    );
    let v = rig.json(body.as_bytes()).await;
    assert_eq!(
        v,
        json!([
            {"jsonrpc":"2.0","id":7,"result":"0x7a69"},
            {"jsonrpc":"2.0","id":7,"result":"31337"},
            {"jsonrpc":"2.0","id":7,"result":"0x7a69"}
        ])
    );
}

async fn ids_of_every_json_type(rig: &Rig) {
    let passed = [
        r#""s""#,
        r#""""#,
        r#""\u00e9\n""#,
        "0",
        "-1",
        "1.5",
        "1e3",
        "123456789012345678901234567890",
        "null",
    ];
    let refused = ["true", "false", "{}", "[]", r#"{"a":1}"#, "[1]"];
    let items: Vec<String> = passed
        .iter()
        .chain(&refused)
        .map(|id| call(id, "eth_chainId"))
        .collect();
    let body = format!("[{}]", items.join(","));
    let Outcome::Response(200, text) = rig.post(body.as_bytes(), &[]).await else {
        panic!("no answer");
    };
    let answers: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&text).unwrap();
    assert_eq!(answers.len(), passed.len() + refused.len());
    for (answer, id) in answers.iter().zip(&passed) {
        assert!(
            answer
                .get()
                .contains(&format!(r#""id":{id},"result":"0x7a69""#)),
            "id {id} byte for byte: {}",
            answer.get()
        );
    }
    for answer in &answers[passed.len()..] {
        assert!(
            answer.get().contains(r#""id":null,"error":{"code":-32600"#),
            "{}",
            answer.get()
        );
    }
}

async fn non_utf_8_bytes(rig: &Rig) {
    let v = rig
        .json(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_\xff\xfe\"}")
        .await;
    assert_eq!(error_code(&v), -32700, "{v}");
}

async fn wrong_or_missing_content_type(rig: &Rig) {
    let body = call("1", "eth_chainId");
    for headers in [
        &["Content-Type: text/plain"][..],
        &[],
        &["Content-Type: application/x-www-form-urlencoded"],
    ] {
        match rig.post(body.as_bytes(), headers).await {
            Outcome::Response(200, b) => assert!(String::from_utf8_lossy(&b).contains("0x7a69")),
            other => panic!("{headers:?}: {}", describe(&other)),
        }
    }
}

async fn chunked_body_that_never_ends(rig: &Rig) {
    let mut stream = TcpStream::connect(&rig.nw.addr).await.unwrap();
    let head = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[{\"js\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A byte every 500 ms for up to 20 s: slow, never finished.
    let drip = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if stream.write_all(b"1\r\n \r\n").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), drip).await;
    let got = raw::read_all(&mut stream, Duration::from_secs(1)).await;
    // Bounded by the request timeout (3 s): a 408.
    assert!(
        matches!(got, Outcome::Response(408, _)),
        "after {:?}: {}",
        started.elapsed(),
        describe(&got)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

async fn slowloris_headers(rig: &Rig) {
    let mut stream = TcpStream::connect(&rig.nw.addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(15) {
        // The scenario: a header line every 200 ms, forever.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"X-Slow: y\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut b)).await
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a client sending headers forever is cut off (header_read_timeout 1 s)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// Connections to the proxy's listener that the proxy has not closed yet (accepted or still
/// in the backlog), from `/proc/net/tcp`: every state but LISTEN and TIME_WAIT.
fn open_at(addr: &str) -> usize {
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("a port");
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1).and_then(|a| a.rsplit(':').next());
            local_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
                && !matches!(fields.get(3), Some(&"0A") | Some(&"06"))
        })
        .count()
}

/// Waits until the proxy has closed what earlier rows left open, so a row that fills every
/// slot and the backlog starts from empty ones (closing hundreds of connections takes the
/// proxy a moment on a busy machine).
async fn earlier_connections_closed(rig: &Rig) {
    let addr = rig.nw.addr.clone();
    let closed = poll_until(Duration::from_secs(10), async move || {
        (open_at(&addr) <= 16).then_some(())
    });
    assert!(
        closed.await.is_some(),
        "{} connections to the proxy still open 10 s after their clients left",
        open_at(&rig.nw.addr)
    );
}

/// Opens up to `most` connections to the proxy, writing `first` on each (nothing if
/// empty), until a connect does not complete within 500 ms once more than `slots` are open:
/// the connection slots are taken and the listen backlog is full. Before that, up to three
/// slow connects in a row are waited out: a connect took over 500 ms while the proxy had
/// accepted every earlier one (its file descriptors said so), whatever the proxy's threads.
/// The likely cause: the proxy closes idle connections first, which leaves thousands of
/// TIME_WAIT entries on its port, and a connect that reuses one of their port pairs is
/// answered only at its SYN's retry, a second later.
async fn fill(addr: &str, slots: usize, most: usize, first: &[u8]) -> Vec<TcpStream> {
    let mut open = Vec::new();
    let mut slow_in_a_row = 0;
    while open.len() < most && slow_in_a_row < 3 {
        match tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await {
            Ok(Ok(mut s)) => {
                slow_in_a_row = 0;
                if s.write_all(first).await.is_ok() {
                    open.push(s);
                }
            }
            Ok(Err(_)) => break,
            Err(_) if open.len() > slots => break,
            Err(_) => slow_in_a_row += 1,
        }
    }
    open
}

async fn thousands_of_idle_connections(rig: &Rig) {
    earlier_connections_closed(rig).await;
    let idle = fill(&rig.nw.addr, SLOTS, 1000, b"").await;
    let opened = idle.len();
    let started = Instant::now();
    let got = rig.post(call("1", "eth_chainId").as_bytes(), &[]).await;
    let waited = started.elapsed();
    drop(idle);
    assert!(
        opened > SLOTS,
        "opened only {opened} idle connections (max_connections is 256)"
    );
    assert!(
        matches!(got, Outcome::Response(200, _)),
        "{opened} idle: {}",
        describe(&got)
    );
    assert!(
        waited < Duration::from_secs(12),
        "{opened} idle connections held a client {waited:?}"
    );
    eprintln!(
        "FIGURE catalogue: a client among {opened} idle connections was served in {waited:.2?}"
    );
}

/// More HTTP/2 connections than `max_connections` that send the preface and their SETTINGS,
/// then never a request: closed once idle for the header read timeout, so a real client
/// behind them is served.
async fn idle_http_2_connections(rig: &Rig) {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    earlier_connections_closed(rig).await;
    let idle = fill(&rig.nw.addr, SLOTS, 300, PREFACE).await;
    let opened = idle.len();
    let started = Instant::now();
    let got = rig.post(call("1", "eth_chainId").as_bytes(), &[]).await;
    let waited = started.elapsed();
    drop(idle);
    assert!(opened > SLOTS, "opened only {opened} idle h2 connections");
    assert!(
        matches!(got, Outcome::Response(200, _)),
        "{opened} idle h2: {}",
        describe(&got)
    );
    assert!(
        waited < Duration::from_secs(12),
        "{opened} idle h2 connections held a client {waited:?}"
    );
}

/// A client reading a 4 MB answer slowly, past the header read timeout: it is not idle, so
/// it gets the whole answer.
async fn slow_reader_of_a_large_answer(rig: &Rig) {
    let mut stream = TcpStream::connect(&rig.nw.addr).await.unwrap();
    let body = call("1", "x_big");
    stream
        .write_all(&raw::post(body.as_bytes(), &[]))
        .await
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        // The scenario: a slow reader, 128 KiB every 100 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(1),
        "read too fast to matter: {took:?}"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{:.100}", text);
    assert!(got.len() > BIG, "got {} bytes in {took:?}", got.len());
}

async fn http_2_prior_knowledge(rig: &Rig) {
    let answer = rpc::Client::http2()
        .post(&rig.nw.url, call("1", "eth_chainId"))
        .await
        .unwrap();
    assert_eq!(answer.version, http::Version::HTTP_2);
    assert_eq!(
        &answer.body[..],
        br#"{"jsonrpc":"2.0","id":1,"result":"0x7a69"}"#
    );
}

async fn a_method_name_1_mb_long(rig: &Rig) {
    let v = rig.json(call("1", &"m".repeat(1 << 20)).as_bytes()).await;
    assert_eq!(v["id"], 1);
    assert!(
        v.get("error").is_some(),
        "passed on and refused by the node"
    );
}

async fn upstream_answers_with_a_wrong_id_type(rig: &Rig) {
    let v = rig.json(call("1", "x_wrongIdType").as_bytes()).await;
    assert_ne!(v["result"], "wrong", "never passed on: {v}");
    assert_eq!(v["id"], 1);
}

async fn upstream_answer_over_the_response_limit(rig: &Rig) {
    let v = rig.json(call("1", "x_huge").as_bytes()).await;
    assert!(v["result"].is_null(), "not passed on");
    assert_eq!(v["id"], 1);
}

async fn large_upstream_answer_within_the_limit(rig: &Rig) {
    let v = rig.json(call("1", "x_big").as_bytes()).await;
    assert_eq!(v["result"].as_str().map(str::len), Some(BIG));
}

async fn upstream_that_redirects(rig: &Rig) {
    let v = rig.json(call("1", "x_redirect").as_bytes()).await;
    assert_eq!(v["id"], 1);
    // Not followed: rank 2 (anvil) answered, with its own "method not found".
    assert_eq!(error_code(&v), -32601, "{v}");
}

async fn get_and_other_methods(rig: &Rig) {
    let got = raw::exchange(
        &rig.nw.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(got, Outcome::Response(405, _)),
        "{}",
        describe(&got)
    );
}
