//! Status at a glance, end to end: `nodewatch status` and `nodewatch healthcheck` against a
//! running nodewatch (and against nothing), and the admin page at `/` as a person sees it in
//! headless Chromium.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::anvil::Anvil;
use support::binary;
use support::nodewatch::Nodewatch;
use support::rpc;

/// Runs the binary (async: nodewatch runs inside this test's runtime); (exit code, stdout,
/// stderr).
async fn nodewatch(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let ran = binary::run(args, env).await;
    (ran.code, ran.stdout, ran.stderr)
}

/// A closed port on 127.0.0.1.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}", support::free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_healthcheck_read_a_running_nodewatch() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    node.mine(3).await;
    let nw = Nodewatch::start(&[node.url(), dead_url()]).await;
    nw.wait_for("u1 healthy, u2 unhealthy", Duration::from_secs(10), |s| {
        s.upstreams[0].status == nodewatch::upstream::health::Status::Healthy
            && s.upstreams[1].status == nodewatch::upstream::health::Status::Unhealthy
    })
    .await;
    for _ in 0..3 {
        rpc::call(&nw.url, "eth_blockNumber", json!([])).await;
    }

    let (code, out, err) = nodewatch(&["status", "--admin", &nw.admin], &[]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("ready") && lines[0].contains("best head 3"),
        "{out}"
    );
    assert!(lines[0].contains("failed requests 0"), "{out}");
    let u1 = lines.iter().find(|l| l.contains(" u1 ")).expect("u1 row");
    let u2 = lines.iter().find(|l| l.contains(" u2 ")).expect("u2 row");
    assert!(u1.starts_with('>'), "u1 serves: {out}");
    assert!(u1.contains("healthy") && u1.contains(" 3 "), "{out}");
    let cells: Vec<&str> = u1.split_whitespace().collect();
    let served = cells.iter().position(|c| *c == "ms").map(|i| cells[i + 1]);
    assert_eq!(served, Some("3"), "three requests served by u1: {out}");
    assert!(
        u2.contains("unhealthy") && u2.contains("Connection refused"),
        "{out}"
    );

    // The admin address can come from the proxy's own variable, 0.0.0.0 meaning loopback.
    let port = nw.admin.rsplit(':').next().unwrap();
    let listen = format!("0.0.0.0:{port}");
    let (code, out, _) = nodewatch(&["status"], &[("NODEWATCH__ADMIN_LISTEN", &listen)]).await;
    assert_eq!(code, 0);
    assert!(out.contains(" u1 "), "{out}");

    assert_eq!(
        nodewatch(&["healthcheck", "--admin", &nw.admin], &[])
            .await
            .0,
        0
    );
    assert_eq!(
        nodewatch(&["healthcheck", "--ready", "--admin", &nw.admin], &[])
            .await
            .0,
        0
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_healthcheck_fail_with_one_line_when_nothing_answers() {
    let dead = dead_url();
    for args in [
        vec!["status", "--admin", dead.as_str()],
        vec!["status", "--admin", "ftp://nowhere"],
        vec!["status", "--admin", ""],
        vec!["healthcheck", "--admin", dead.as_str()],
    ] {
        let (code, out, err) = nodewatch(&args, &[]).await;
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("nodewatch: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (_, _, err) = nodewatch(&["status", "--admin", &dead], &[]).await;
    assert!(
        err.contains("cannot reach nodewatch admin at http://127.0.0.1:"),
        "{err}"
    );
    // Not ready: healthcheck --ready fails while /healthz passes.
    let nw = Nodewatch::start(&[dead_url()]).await;
    assert_eq!(
        nodewatch(&["healthcheck", "--admin", &nw.admin], &[])
            .await
            .0,
        0
    );
    let (code, _, err) = nodewatch(&["healthcheck", "--ready", "--admin", &nw.admin], &[]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("HTTP 503") && err.contains("not ready"),
        "{err}"
    );
    // A client flag next to the proxy's flags is a usage error, not a proxy start.
    let (code, _, _) = nodewatch(&["--upstream", "http://127.0.0.1:1", "status"], &[]).await;
    assert_eq!(code, 2);
    nw.stop().await;
}

/// Debian's chromium, or `$NODEWATCH_CHROMIUM`; None (skip notice) outside CI when missing.
fn require_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("NODEWATCH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !support::tools::is_ci(),
        "chromium not found at {} (make tools installs Debian's chromium); CI=true, so this \
         is a failure",
        path.display()
    );
    eprintln!("skipping: chromium not installed, run make tools");
    None
}

/// Runs headless Chromium on `url` with `extra` flags; returns stdout.
async fn chromium(bin: &PathBuf, url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--window-size=1100,760",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("chromium finishes")
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_table_and_head_chart_in_chromium() {
    let (Some(anvil), Some(chrome)) = (support::tools::require_anvil(), require_chromium()) else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let nw = Nodewatch::start(&[node.url(), dead_url()]).await;
    nw.wait_for("u1 healthy", Duration::from_secs(10), |s| {
        s.upstreams[0].status == nodewatch::upstream::health::Status::Healthy
    })
    .await;
    // A few seconds of history with a growing head.
    for _ in 0..3 {
        node.mine(2).await;
        // The scenario: history is kept a sample a second; let seconds pass.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    rpc::call(&nw.url, "eth_chainId", json!([])).await;

    // The DOM after the page's script ran for a few (virtual) seconds: it must have
    // refreshed itself at least once without breaking what is shown.
    let dom = chromium(
        &chrome,
        &format!("{}/", nw.admin),
        &["--virtual-time-budget=5000".into(), "--dump-dom".into()],
    )
    .await;
    assert!(dom.contains("<title>nodewatch status</title>"), "{dom}");
    let refreshes = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(refreshes.unwrap_or(0) >= 1, "page refreshed itself: {dom}");
    assert!(dom.contains(">READY<"), "{dom}");
    assert!(dom.contains("chain 31337 · best head 6"), "{dom}");
    let row = |name: &str| {
        dom.split("<tr")
            .find(|r| r.contains(&format!("</span>{name}")))
            .unwrap_or_else(|| panic!("row {name}: {dom}"))
            .to_owned()
    };
    assert!(row("u1").contains("▶ serving") && row("u1").contains(">healthy<"));
    assert!(row("u2").contains(">unhealthy<") && row("u2").contains("Connection refused"));
    assert!(
        dom.contains("<polyline class=\"head\" data-upstream=\"u1\""),
        "{dom}"
    );
    assert!(
        dom.contains("<p id=\"conn\" role=\"status\"></p>"),
        "no connection warning: {dom}"
    );

    // What a person sees: a screenshot (kept under target/ for a look).
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &chrome,
        &format!("{}/", nw.admin),
        &[format!("--screenshot={}", shot.display())],
    )
    .await;
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    nw.stop().await;
}
