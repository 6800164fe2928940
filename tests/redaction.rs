//! Secrets stay secret: an upstream URL with a key in its user info, path and query and an
//! `Authorization` header reach the upstream, and never appear in the real binary's logs
//! (text and JSON, every level down to trace), `/status`, `/metrics`, client answers, error
//! messages or configuration errors, whatever the upstream does (fails, hangs, answers
//! garbage, a node error, another chain). Also: the admin endpoints are not on the proxy
//! listener, and both listeners default to loopback.

mod support;

use std::time::Duration;

use serde_json::json;
use support::anvil::Anvil;
use support::binary::{Binary, Signal};
use support::fault::{Fault, FaultServer};
use support::poll::wait_until;
use support::rpc;
use support::scripted::{self, Scripted};

const SECONDS_10: Duration = Duration::from_secs(10);

/// Every secret shares this marker, so one search finds any of them.
const MARK: &str = "S3CRET";

/// Records what reached it (path, query, Authorization) and relays to `target`.
async fn recorder(target: String) -> Scripted {
    Scripted::builder()
        .record()
        .start(move |req| {
            let target = target.clone();
            async move {
                let (status, text) = scripted::forward(&target, &req)
                    .await
                    .unwrap_or((502, String::new()));
                scripted::ok(status, text)
            }
        })
        .await
}

/// What reached a [`recorder`]: `path?query Some("authorization")` per request.
fn seen(recorder: &Scripted) -> Vec<String> {
    let seen = recorder.seen();
    seen.iter()
        .map(|r| {
            let auth = r.header("authorization").map(str::to_string);
            format!("{} {auth:?}", r.uri)
        })
        .collect()
}

/// GET `url`: the body, or the transport error as text.
async fn get(url: &str) -> String {
    rpc::try_get(url).await.map_or_else(|e| e, |(_, body)| body)
}

fn assert_clean(place: &str, text: &str) {
    if let Some(at) = text.find(MARK) {
        let from = at.saturating_sub(200);
        panic!(
            "a secret leaked into {place}: …{}…",
            &text[from..(at + 100).min(text.len())]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_leave_the_proxy() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let faults = FaultServer::start(&node.url(), Fault::Pass).await;
    let recorder = recorder(faults.url()).await;
    let rank1 = recorder.addr().to_string();
    let closed = support::free_port();
    for format in ["text", "json"] {
        let toml = format!(
            r#"
[probe]
interval = "100ms"
timeout = "500ms"
[proxy]
attempt_timeout = "700ms"
request_timeout = "3s"
[[upstreams]]
url = "http://user:{MARK}pass@{rank1}/v3/{MARK}path?apikey={MARK}query"
headers = {{ Authorization = "Bearer {MARK}header", X-Api-Key = "{MARK}x" }}
[[upstreams]]
url = "http://127.0.0.1:{closed}/{MARK}closed?key={MARK}q"
[[upstreams]]
url = "{}/?key={MARK}anvil"
"#,
            node.url()
        );
        let mut nw = Binary::start(
            &toml,
            &["--log-format", format],
            &[("RUST_LOG", "trace"), ("RUST_BACKTRACE", "1")],
        );
        let mut answers = String::new();
        for fault in [
            Fault::Pass,
            Fault::Status(500),
            Fault::Status(401),
            Fault::Garbage,
            Fault::Hang,
            Fault::ShortBatch,
            Fault::NodeError(-32000, "header not found".into()),
            Fault::WrongChain(5),
            Fault::Pass,
        ] {
            faults.set(fault);
            // The scenario, not a wait for a condition: each behaviour lasts a few probe
            // rounds (100 ms), so the probes, the health machine and the breaker log it too,
            // and the clients then meet the health view it left.
            tokio::time::sleep(Duration::from_millis(250)).await;
            for body in [
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
                r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0x0",false]}]"#,
                r#"{"jsonrpc":"2.0","id":3,"method":"admin_nodeInfo"}"#,
                r#"{"jsonrpc":"2.0","id":4,"method":"#,
            ] {
                let (_, text) = rpc::post(&nw.url, body).await;
                answers.push_str(&text);
            }
        }
        // Every upstream down at once: the -32603 message names upstreams, nothing more.
        faults.set(Fault::Status(503));
        let (_, text) = rpc::post(
            &nw.url,
            r#"{"jsonrpc":"2.0","id":9,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000000","latest"]}"#,
        )
        .await;
        answers.push_str(&text);
        faults.set(Fault::Pass);
        let status = get(&format!("{}/status", nw.admin)).await;
        let metrics = get(&format!("{}/metrics", nw.admin)).await;
        // The admin endpoints are not on the proxy listener.
        let on_proxy = get(&format!("{}/metrics", nw.url)).await;
        assert!(!on_proxy.contains("nodewatch_"), "{on_proxy:.200}");
        assert!(status.contains("\"rank\""), "{status:.300}");
        // SIGHUP: a reload logs too.
        nw.signal(Signal::Hup);
        wait_until("the reload logged", SECONDS_10, async || {
            nw.log_text().contains("configuration reload")
        })
        .await;
        assert!(nw.is_running());
        let log = nw.log_text();
        let status_code = nw.stop();
        assert!(status_code.success());
        assert!(
            log.lines().count() > 50,
            "trace logging is on: {} lines",
            log.lines().count()
        );
        assert!(
            log.contains("no upstream could answer"),
            "the failures were logged"
        );
        for (place, text) in [
            ("the log", &log),
            ("client answers", &answers),
            ("/status", &status),
            ("/metrics", &metrics),
        ] {
            assert_clean(&format!("{place} ({format})"), text);
        }
        eprintln!(
            "FIGURE redaction ({format}): {} log lines at trace, {} bytes of answers, /status, /metrics: no secret",
            log.lines().count(),
            answers.len()
        );
    }
    // The secrets did reach rank 1 (so their absence above means something).
    let seen = seen(&recorder).join("\n");
    for part in ["path", "query", "header"] {
        assert!(
            seen.contains(&format!("{MARK}{part}")),
            "{part} not sent: {seen:.300}"
        );
    }

    // Configuration errors name the key, not the secret.
    for bad in [
        format!("[[upstreams]]\nurl = \"ftp://h/{MARK}\"\n"),
        format!("[[upstreams]]\nurl = \"http://h/{MARK}\nname = 1\n"),
        format!("[[upstreams]]\nurl = \"http://h/{MARK}\"\nheaders = {{ Authorization = \"Bearer {MARK}\\n\" }}\n"),
        format!("[[upstreams]]\nurl = \"http://h/x\"\nheaders = \"Bearer {MARK}\"\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &bad).unwrap();
        let out = support::binary::run(&["--config", path.to_str().unwrap()], &[]).await;
        let stderr = out.stderr;
        assert_eq!(out.code, 2, "{bad}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert_clean("a configuration error", &stderr);
    }
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_info_is_sent_as_basic_credentials_not_in_the_uri() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let recorder = recorder(node.url()).await;
    let at = recorder.addr().to_string();
    let nw =
        support::nodewatch::Nodewatch::start(&[format!("http://u%20s:p%40ss@{at}/v3/k")]).await;
    nw.wait_all_healthy().await;
    assert_eq!(
        rpc::call(&nw.url, "eth_chainId", json!([])).await,
        json!("0x7a69")
    );
    let seen = seen(&recorder);
    // base64("u s:p@ss")
    assert!(
        seen.iter()
            .all(|s| s == "/v3/k Some(\"Basic dSBzOnBAc3M=\")"),
        "{seen:?}"
    );
    nw.stop().await;
}

#[test]
fn listeners_default_to_loopback() {
    let config = nodewatch::config::Config::default();
    assert!(config.listen.ip().is_loopback());
    assert!(config.admin_listen.ip().is_loopback());
    assert_ne!(config.listen.port(), config.admin_listen.port());
}
