//! Protecting the upstreams and the proxy: per-upstream concurrency limit, retry budget,
//! circuit breaker, method policy, and live configuration reloads.

mod support;

use std::io::Write as _;
use std::time::{Duration, Instant};

use nodewatch::upstream::breaker::BreakerState;
use serde_json::{json, Value};
use support::anvil::Anvil;
use support::binary::{Binary, Signal};
use support::fault::{Fault, FaultServer};
use support::nodewatch::{test_config, Nodewatch};
use support::poll::wait_until;
use support::rpc;

const BLOCK_NUMBER: &str = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limited_upstream_sends_the_overflow_to_the_next() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let slow = FaultServer::start(&node.url(), Fault::Pass).await;
    let mut config = test_config(&[slow.url(), node.url()]);
    const REQUESTS: usize = 20;
    const LIMIT: usize = 2;
    config.upstreams[0].max_concurrency = Some(LIMIT);
    config.proxy.queue_timeout = Duration::from_millis(20);
    // Probes are not admission-controlled; keep them out of the count.
    config.probe.interval = Duration::from_secs(3600);
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    slow.set(Fault::Delay(Duration::from_millis(300)));
    let load: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let url = nw.url.clone();
            tokio::spawn(async move { rpc::post(&url, BLOCK_NUMBER).await })
        })
        .collect();
    let mut answered = 0;
    for request in load {
        let (status, text) = request.await.unwrap();
        assert_eq!(
            (status, text.as_str()),
            (200, r#"{"jsonrpc":"2.0","id":1,"result":"0x0"}"#)
        );
        answered += 1;
    }
    assert!(
        slow.max_in_flight() <= LIMIT,
        "rank 1 saw {} at once",
        slow.max_in_flight()
    );
    let busy = nw.metric("nodewatch_upstream_attempts_total{outcome=\"busy\",upstream=\"u1\"}");
    let by_u2 = nw.metric(
        "nodewatch_requests_total{method=\"eth_blockNumber\",outcome=\"ok\",upstream=\"u2\"}",
    );
    assert!(
        busy >= 15.0 && by_u2 >= 15.0,
        "busy {busy}, served by u2 {by_u2}"
    );
    eprintln!(
        "FIGURE concurrency-limit: {answered} concurrent requests answered, rank 1 limited to {LIMIT} saw at most {}, {busy} turned to rank 2, {} failed",
        slow.max_in_flight(),
        REQUESTS - answered
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_caps_retries_during_an_outage() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let f1 = FaultServer::start(&node.url(), Fault::Pass).await;
    let f2 = FaultServer::start(&node.url(), Fault::Pass).await;
    let mut config = test_config(&[f1.url(), f2.url()]);
    config.probe.interval = Duration::from_secs(3600);
    config.retry.ratio = 0.1;
    config.retry.min_per_second = 1;
    config.retry.window = Duration::from_secs(1);
    config.health.fail_threshold = 1000;
    config.breaker.failure_threshold = 1000;
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    f1.set(Fault::Status(503));
    f2.set(Fault::Status(503));
    let (before1, before2) = (f1.requests(), f2.requests());
    const REQUESTS: usize = 200;
    for _ in 0..REQUESTS {
        let (status, text) = rpc::post(&nw.url, BLOCK_NUMBER).await;
        assert_eq!(status, 200);
        assert!(text.contains("-32603"), "{text}");
    }
    let attempts = (f1.requests() - before1) + (f2.requests() - before2);
    let exhausted = nw.metric("nodewatch_retry_budget_exhausted_total");
    // Without a budget every request would be tried twice (400 attempts).
    assert!(
        attempts < REQUESTS + REQUESTS / 2,
        "{attempts} attempts for {REQUESTS} requests"
    );
    assert!(exhausted > 0.0);
    eprintln!(
        "FIGURE retry-budget: {REQUESTS} requests while both upstreams answer 503: {attempts} upstream attempts ({:.2} per request), {exhausted} retries refused",
        attempts as f64 / REQUESTS as f64
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_failing_forwards_and_closes_after_a_good_trial() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    // Rank 1 passes its probes (single calls) but answers batches with garbage.
    let f1 = FaultServer::start(&node.url(), Fault::BatchGarbage).await;
    let mut config = test_config(&[f1.url(), node.url()]);
    config.breaker.failure_threshold = 3;
    config.breaker.cooldown = Duration::from_millis(500);
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    // eth_blockNumber (anvil stays at block 0), not eth_chainId, which the answer cache
    // answers itself after the first time: every batch here must be forwarded.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}]"#;
    for _ in 0..3 {
        assert_eq!(
            rpc::post(&nw.url, batch).await.1,
            r#"[{"jsonrpc":"2.0","id":1,"result":"0x0"}]"#
        );
    }
    assert_eq!(
        nw.metric("nodewatch_breaker_transitions_total{to=\"open\",upstream=\"u1\"}"),
        1.0
    );
    assert_eq!(
        nw.metric("nodewatch_upstream_breaker_open{upstream=\"u1\"}"),
        1.0
    );
    let tried = f1.requests();
    for _ in 0..5 {
        rpc::post(&nw.url, batch).await;
    }
    // Probes still reach rank 1; batches do not.
    let batches_to_u1 =
        nw.metric("nodewatch_upstream_attempts_total{outcome=\"invalid_answer\",upstream=\"u1\"}");
    assert_eq!(
        batches_to_u1,
        3.0,
        "no batch reached rank 1 while open (probes: {})",
        f1.requests() - tried
    );
    f1.set(Fault::Pass);
    // The cooldown (500 ms) passes: the breaker is half-open, so the next batch is its trial.
    nw.wait_for("u1's breaker half-open", Duration::from_secs(5), |s| {
        s.upstreams[0].breaker == BreakerState::HalfOpen
    })
    .await;
    rpc::post(&nw.url, batch).await;
    assert_eq!(
        nw.metric("nodewatch_breaker_transitions_total{to=\"closed\",upstream=\"u1\"}"),
        1.0
    );
    assert_eq!(
        nw.metric("nodewatch_upstream_breaker_open{upstream=\"u1\"}"),
        0.0
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_methods_never_reach_a_node() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let nw = Nodewatch::start(&[node.url()]).await;
    nw.wait_all_healthy().await;
    for method in [
        "evm_mine",
        "anvil_mine",
        "admin_peers",
        "personal_listAccounts",
        "debug_setHead",
    ] {
        let body = json!({"jsonrpc":"2.0","id":7,"method":method,"params":[]}).to_string();
        let v: Value = serde_json::from_str(&rpc::post(&nw.url, &body).await.1).unwrap();
        assert_eq!(v["error"]["code"], -32601, "{method}: {v}");
        assert_eq!(
            v["error"]["message"],
            format!("method not allowed: {method}")
        );
        assert_eq!(v["id"], 7);
    }
    assert_eq!(rpc::block_number(&node.url()).await, 0, "nothing was mined");
    // In a batch, only the denied item is refused.
    let (_, text) = rpc::post(&nw.url, r#"[{"jsonrpc":"2.0","id":1,"method":"evm_mine"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]"#).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0]["error"]["code"], -32601);
    assert_eq!(v[1]["result"], "0x7a69");
    assert_eq!(
        nw.metric("nodewatch_denied_requests_total{method=\"other\"}"),
        6.0
    );
    nw.stop().await;
}

fn config_file(path: &std::path::Path, upstreams: &[(&str, &str)], extra: &str) {
    let mut file = std::fs::File::create(path).unwrap();
    writeln!(file, "{extra}\n[probe]\ninterval = \"100ms\"").unwrap();
    for (name, url) in upstreams {
        writeln!(file, "[[upstreams]]\nname = \"{name}\"\nurl = \"{url}\"").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_reranks_live_keeps_health_history_and_refuses_a_bad_file() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let a = Anvil::spawn(&anvil).await;
    let b = Anvil::spawn(&anvil).await;
    let c = Anvil::spawn(&anvil).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodewatch.toml");
    config_file(&path, &[("a", &a.url()), ("b", &b.url())], "");
    let source = nodewatch::server::ConfigSource {
        path: Some(path.clone()),
        overrides: Default::default(),
    };
    let config =
        nodewatch::config::Config::load_with_env(Some(&path), Default::default(), []).unwrap();
    let nw = Nodewatch::start_with_source(config.config().clone(), Some(source)).await;
    nw.wait_all_healthy().await;
    let since_b = nw.handle.snapshot.load().upstreams[1].since_unix;

    // Re-rank: b first, then a new upstream c; a removed.
    config_file(&path, &[("b", &b.url()), ("c", &c.url())], "");
    let started = Instant::now();
    nw.handle.reloader.reload().await.unwrap();
    let snapshot = nw.handle.snapshot.load_full();
    let names: Vec<&str> = snapshot.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(
        snapshot.upstreams[0].status,
        nodewatch::upstream::health::Status::Healthy,
        "b kept its health"
    );
    assert_eq!(snapshot.upstreams[0].since_unix, since_b);
    rpc::block_number(&nw.url).await;
    assert_eq!(
        nw.metric(
            "nodewatch_requests_total{method=\"eth_blockNumber\",outcome=\"ok\",upstream=\"b\"}"
        ),
        1.0
    );
    let took = started.elapsed();
    nw.wait_all_healthy().await;
    eprintln!(
        "FIGURE reload: re-ranked upstream served the next request {:.1} ms after the reload began",
        took.as_secs_f64() * 1000.0
    );

    // A bad file is refused; the running configuration stays.
    std::fs::write(&path, "[health]\nfail_treshold = 3\n").unwrap();
    let e = nw.handle.reloader.reload().await.unwrap_err().to_string();
    assert!(e.contains("fail_treshold"), "{e}");
    let names: Vec<String> = nw
        .handle
        .snapshot
        .load()
        .upstreams
        .iter()
        .map(|u| u.name.clone())
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(
        nw.metric("nodewatch_config_reloads_total{result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        nw.metric("nodewatch_config_reloads_total{result=\"error\"}"),
        1.0
    );
    assert_eq!(
        nw.metric("nodewatch_upstream_up{upstream=\"a\"}"),
        0.0,
        "a's gauges are gone"
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let a = Anvil::spawn(&anvil).await;
    let b = Anvil::spawn(&anvil).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodewatch.toml");
    let extra = "admin_reload = true";
    config_file(&path, &[("a", &a.url()), ("b", &b.url())], extra);
    let nw = Binary::start_args(&["--config", path.to_str().unwrap()], &[]);
    let status_url = format!("{}/status", nw.admin);
    let serving = |want: &'static str| {
        let url = status_url.clone();
        async move {
            wait_until(
                &format!("served by {want}"),
                Duration::from_secs(10),
                async || match rpc::try_get(&url).await {
                    Ok((200, text)) => {
                        serde_json::from_str::<Value>(&text).unwrap()["serving"] == want
                    }
                    _ => false,
                },
            )
            .await
        }
    };
    serving("a").await;
    config_file(&path, &[("b", &b.url()), ("a", &a.url())], extra);
    nw.signal(Signal::Hup);
    serving("b").await;
    // POST /reload (enabled by admin_reload) reloads too.
    config_file(&path, &[("a", &a.url()), ("b", &b.url())], extra);
    let (status, _) = rpc::post(&format!("{}/reload", nw.admin), "").await;
    assert_eq!(status, 200);
    serving("a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_are_capped_and_slow_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let mut config = test_config(&[node.url()]);
    config.proxy.max_connections = 1;
    config.proxy.header_read_timeout = Duration::from_millis(500);
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    let addr = nw.url.trim_start_matches("http://").to_string();

    // A slow client holds the only slot with half a request line...
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The proxy has accepted it: the slow client is the one holding the slot.
    let slow_port = slow.local_addr().unwrap().port();
    wait_until(
        "the slow client accepted",
        Duration::from_secs(5),
        async || accepted(&addr, slow_port),
    )
    .await;
    // ...so a second client waits in the backlog,
    let url = nw.url.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { rpc::post(&url, BLOCK_NUMBER).await });
    // The scenario: time passes, and the second client is still not served.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "the second connection was served beyond the cap"
    );
    // ...until the header timeout closes the slow one.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the slow client was not cut off");
    let (status, text) = waiting.await.unwrap();
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"jsonrpc":"2.0","id":1,"result":"0x0"}"#)
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    eprintln!("FIGURE connection-cap: second client served {:.0} ms later, after the slow one was cut off", waited.as_secs_f64() * 1000.0);
    nw.stop().await;
}

/// Whether the listener at `addr` has accepted the connection from local port `client`, from
/// `/proc/net/tcp`: a connection still in the listen backlog has no socket inode yet.
fn accepted(addr: &str, client: u16) -> bool {
    let port = |a: &str| {
        a.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let listener: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 9
            && port(fields[1]) == Some(listener)
            && port(fields[2]) == Some(client)
            && fields[9] != "0"
    })
}
