//! The in-flight answer budget (`proxy.max_inflight_bytes`) on the real binary: 64 clients
//! at once ask for multi-MB answers, eight times the budget in all, half of them chunked
//! (no Content-Length, as geth sends large answers) and half with a length. Every answer
//! must arrive whole and byte for byte, nodewatch's peak resident memory must stay under
//! the budget plus a fixed base, and one answer larger than the whole budget must get a
//! clear JSON-RPC error — from that upstream alone, without failing over.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::Value;
use support::anvil::Anvil;
use support::binary::Binary;
use support::rpc::{self, stream_body};
use support::scripted::{self, Scripted};

/// The budget the proxy runs with.
const BUDGET: usize = 24 << 20;
/// One answer's result string.
const ANSWER: usize = 3 << 20;
/// Clients at once.
const CLIENTS: usize = 64;
/// An answer larger than the whole budget (but within the response limit).
const TOO_LARGE: usize = BUDGET + (4 << 20);
/// What the proxy may hold besides the budget: its own idle footprint is measured; this is
/// hyper's per-connection buffers for 64 client and 64 upstream connections, the client
/// bodies' envelopes, and allocator slack.
const BASE_ALLOWANCE_KIB: u64 = 24 << 10;

/// The answer to `x_big` number `n`: a result of [`ANSWER`] bytes made of `n`'s digit.
fn big_result(n: u64) -> String {
    let digit = char::from(b'0' + (n % 10) as u8);
    format!("\"0x{}\"", String::from(digit).repeat(ANSWER - 4))
}

/// Relays to anvil (probes), except `x_big` [n] (odd n: chunked) and `x_tooLarge`.
async fn upstream(anvil: String, results: Arc<Vec<Bytes>>) -> Scripted {
    scripted::Scripted::start(move |req| {
        let (anvil, results) = (anvil.clone(), Arc::clone(&results));
        async move {
            let v: Value = req.json().unwrap_or_default();
            match v["method"].as_str().unwrap_or("") {
                "x_big" => {
                    let n = v["params"][0].as_u64().unwrap_or(0);
                    let answer = Bytes::from(format!(
                        r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#,
                        v["id"],
                        std::str::from_utf8(&results[(n % 10) as usize]).unwrap()
                    ));
                    if n % 2 == 1 {
                        let chunks = (0..answer.len())
                            .step_by(64 << 10)
                            .map(|at| answer.slice(at..(at + (64 << 10)).min(answer.len())))
                            .collect();
                        let mut r = scripted::reply(200, "");
                        *r.body_mut() = stream_body(chunks);
                        Ok(r)
                    } else {
                        scripted::ok(200, answer)
                    }
                }
                "x_tooLarge" => {
                    let result = "f".repeat(TOO_LARGE);
                    let text = format!(
                        r#"{{"jsonrpc":"2.0","id":{},"result":"{result}"}}"#,
                        v["id"]
                    );
                    let mut r = scripted::reply(200, "");
                    *r.body_mut() = stream_body(vec![Bytes::from(text)]);
                    Ok(r)
                }
                _ => {
                    let (status, text) = scripted::forward(&anvil, &req)
                        .await
                        .unwrap_or((502, String::new()));
                    scripted::ok(status, text)
                }
            }
        }
    })
    .await
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_answers_stay_within_the_budget() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let results: Arc<Vec<Bytes>> = Arc::new((0..10).map(|n| Bytes::from(big_result(n))).collect());
    let scripted = upstream(node.url(), Arc::clone(&results)).await;
    let toml = format!(
        "[probe]\ninterval = \"500ms\"\n[proxy]\nmax_inflight_bytes = {BUDGET}\n\
         response_limit = {}\nrequest_timeout = \"60s\"\nattempt_timeout = \"30s\"\n\
         [[upstreams]]\nname = \"scripted\"\nurl = \"{}\"\n\
         [[upstreams]]\nname = \"anvil\"\nurl = \"{}\"\n",
        TOO_LARGE * 2,
        scripted.url(),
        node.url()
    );
    // One malloc arena, as in bad_input.rs: the peak then measures what is held, not how
    // many arenas glibc spread it over.
    let nw = Binary::start(
        &toml,
        &[],
        &[("MALLOC_ARENA_MAX", "1"), ("RUST_LOG", "nodewatch=debug")],
    );
    nw.wait_all_healthy().await;
    let idle = nw.peak_rss_kib().expect("nodewatch's VmHWM when idle");

    let client = rpc::Client::new().timeout(Duration::from_secs(120));
    let calls = (0..CLIENTS as u64).map(|n| {
        let (client, url) = (&client, nw.url.clone());
        async move {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"x_big","params":[{n}]}}"#);
            (n, client.post(&url, body).await)
        }
    });
    let answers = join_all(calls).await;
    let peak = nw
        .peak_rss_kib()
        .expect("nodewatch's VmHWM after the burst");

    let mut failed = Vec::new();
    for (n, answer) in answers {
        let expected = format!(
            r#"{{"jsonrpc":"2.0","id":{n},"result":{}}}"#,
            std::str::from_utf8(&results[(n % 10) as usize]).unwrap()
        );
        match answer {
            Ok(a) if a.status == 200 && a.body == expected.as_bytes() => {}
            Ok(a) => failed.push(format!(
                "{n}: HTTP {} {}",
                a.status,
                &a.text()[..a.text().len().min(200)]
            )),
            Err(e) => failed.push(format!("{n}: {e}")),
        }
    }
    assert!(
        failed.is_empty(),
        "calls that fit the budget failed:\n{}\nnodewatch's log:\n{}",
        failed.join("\n"),
        nw.log_text()
            .lines()
            .filter(|l| l.contains("scripted"))
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    );

    let (_, text) = rpc::get(&format!("{}/metrics", nw.admin)).await;
    let waits = metric(&text, "nodewatch_answer_budget_waits_total");
    let gave_way = metric(&text, "nodewatch_answer_budget_gave_way_total");
    assert!(
        waits + gave_way > 0.0,
        "64 answers of 3 MiB against a 24 MiB budget must have waited: {text}"
    );
    let limit = idle + (BUDGET as u64 >> 10) + BASE_ALLOWANCE_KIB;
    println!(
        "FIGURE answer budget: {CLIENTS} clients x {} MiB against a {} MiB budget: peak RSS \
         {:.1} MiB (idle {:.1} MiB, limit {:.1} MiB), {waits} waits, {gave_way} gave way",
        ANSWER >> 20,
        BUDGET >> 20,
        peak as f64 / 1024.0,
        idle as f64 / 1024.0,
        limit as f64 / 1024.0
    );
    assert!(
        peak <= limit,
        "peak RSS {peak} KiB over idle {idle} KiB + budget + base allowance ({limit} KiB)"
    );
    // Everything given back once the answers are written.
    support::poll::wait_until(
        "answer bytes back to 0",
        Duration::from_secs(10),
        async || {
            let (_, text) = rpc::get(&format!("{}/metrics", nw.admin)).await;
            metric(&text, "nodewatch_answer_bytes_in_flight") == 0.0
        },
    )
    .await;

    // One answer larger than the whole budget: a clear error, and no other node asked.
    let asked_before = node_requests(&text);
    let (status, text) =
        rpc::post(&nw.url, r#"{"jsonrpc":"2.0","id":7,"method":"x_tooLarge"}"#).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("a JSON-RPC answer");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(v["id"], 7, "{v}");
    assert!(
        message.contains("proxy.max_inflight_bytes") && message.contains(&BUDGET.to_string()),
        "the error names the budget: {v}"
    );
    assert!(!message.contains("anvil"), "no other node was asked: {v}");
    let (_, text) = rpc::get(&format!("{}/metrics", nw.admin)).await;
    assert_eq!(
        node_requests(&text),
        asked_before,
        "an answer too large for the budget is not asked of another node"
    );
    nw.stop();
}

/// Attempts nodewatch sent to the anvil upstream with `x_*` methods: none, as the scripted
/// one answers them; read from the attempts counter of the anvil upstream.
fn node_requests(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("nodewatch_requests_total") && l.contains("upstream=\"anvil\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
