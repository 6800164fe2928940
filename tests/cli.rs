//! The `nodewatch` binary: flags, start-up errors (one line, exit 2), serving, and SIGTERM.

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::anvil::Anvil;
use support::rpc;

const BIN: &str = env!("CARGO_BIN_EXE_nodewatch");

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
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
    let (port, admin) = (support::free_port(), support::free_port());
    let mut child = tokio::process::Command::new(BIN)
        .args(["--upstream", &node.url(), "--log-format", "json"])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let chain = loop {
        match rpc::try_call(&url, "eth_chainId", json!([])).await {
            Ok(v) => break v,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("nodewatch did not serve: {e}"),
        }
    };
    assert_eq!(chain, json!("0x7a69"));
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let first: serde_json::Value =
        serde_json::from_str(stderr.lines().next().unwrap()).expect("JSON log lines");
    assert_eq!(first["message"], "nodewatch started", "{stderr}");
    assert!(
        stderr.contains("SIGTERM received") && stderr.contains("nodewatch stopped"),
        "{stderr}"
    );
}
