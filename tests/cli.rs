//! The `nodewatch` binary: flags, start-up errors (one line, exit 2), serving, and SIGTERM.

mod support;

use std::io::Write as _;
use std::time::Duration;

use serde_json::json;
use support::anvil::Anvil;
use support::binary::{self, Binary};
use support::poll::wait_for;
use support::rpc;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let ran = binary::run_blocking(args, env);
    (ran.code, ran.stderr)
}

#[test]
fn help_documents_every_flag() {
    let out = binary::run_blocking(&["--help"], &[]);
    assert_eq!(out.code, 0);
    let help = out.stdout;
    for flag in [
        "--upstream <URL>",
        "--listen <ADDR>",
        "--admin-listen <ADDR>",
        "--config <PATH>",
        "--log-format",
        "--version",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

/// Arguments, environment, and the text the error line must contain.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn configuration_errors_are_one_line_and_exit_2() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(
        file,
        "[health]\nfail_threshold = 0\n[[upstreams]]\nurl = \"http://127.0.0.1:1\""
    )
    .unwrap();
    let path = file.path().to_str().unwrap();
    let cases: Vec<Case> = vec![
        (vec![], vec![], "upstreams: at least one upstream"),
        (
            vec!["--upstream", "ftp://x/KEY"],
            vec![],
            "upstreams[0].url",
        ),
        (
            vec!["--config", path],
            vec![],
            "health.fail_threshold: must be at least 1",
        ),
        (
            vec!["--upstream", "http://127.0.0.1:1"],
            vec![("NODEWATCH__HEALTH__MAX_LAGG", "3")],
            "max_lagg",
        ),
        (
            vec!["--config", "/no/such/file.toml"],
            vec![],
            "/no/such/file.toml",
        ),
    ];
    for (args, env, expected) in cases {
        let (code, stderr) = run(&args, &env);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr} should name {expected}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // clap's own errors (unknown flag, bad address) also exit 2.
    assert_eq!(run(&["--frobnicate"], &[]).0, 2);
    assert_eq!(run(&["--listen", "nowhere"], &[]).0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_and_stops_on_sigterm() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let mut nw = Binary::start_args(&["--upstream", &node.url(), "--log-format", "json"], &[]);
    let chain = wait_for("nodewatch to serve", Duration::from_secs(10), async || {
        rpc::try_call(&nw.url, "eth_chainId", json!([])).await.ok()
    })
    .await;
    assert_eq!(chain, json!("0x7a69"));
    let status = nw.stop_within(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let stderr = nw.log_text();
    let first: serde_json::Value =
        serde_json::from_str(stderr.lines().next().unwrap()).expect("JSON log lines");
    assert_eq!(first["message"], "nodewatch started", "{stderr}");
    assert!(
        stderr.contains("SIGTERM received") && stderr.contains("nodewatch stopped"),
        "{stderr}"
    );
}
