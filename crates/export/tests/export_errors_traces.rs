//! How the trace, contract and token commands fail: bad input (a malformed
//! token address, an unreadable file, a geth traces CSV, classic with DAO-fork
//! traces) is one `Error:` line and exit 2 or 1, never a panic, and leaves no
//! output file; a node without `trace_block` / `debug_traceBlockByNumber` is
//! one line naming the method, exit 1; a node whose every `eth_call` fails
//! still gives a token row with empty fields, as ethereum-etl does.

use nodewatch_testkit as support;

use std::process::Output;
use std::time::Duration;

use support::fault::{Fault, FaultServer};

const BIN: &str = env!("CARGO_BIN_EXE_nodewatch-export");

async fn run(args: &[&str]) -> Output {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .args(["--quiet", "--max-attempts", "2", "--retry-delay-ms", "10"])
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("nodewatch-export finished in time")
        .expect("run nodewatch-export")
}

/// Exit code `code`, exactly one stderr line starting with "Error:" (or clap's
/// "error:", whose usage lines follow), `needle` in the message, and no panic.
fn assert_one_line_failure(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error:") || l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

#[tokio::test]
async fn bad_input_is_one_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let bad_token = file(
        "tokens.txt",
        "0x12zz\n0x5fbdb2315678afecb367f032d93f642f64180aa3\n",
    );
    let geth_csv = file(
        "geth.csv",
        "block_number,transaction_traces\r\n1,\"{}\"\r\n",
    );
    let out_path = dir.path().join("out.csv");
    let out = out_path.to_str().unwrap();
    // Nothing listens on port 1: input errors must come before any request.
    let node = "http://127.0.0.1:1";
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["export_tokens", "-t", &bad_token, "-p", node, "-o", out],
            2,
            "0x12zz",
        ),
        (
            vec![
                "export_contracts",
                "-ca",
                "/no/such/file",
                "-p",
                node,
                "-o",
                out,
            ],
            2,
            "/no/such/file",
        ),
        (
            vec!["extract_contracts", "-t", "/no/such/traces.csv", "-o", out],
            2,
            "traces.csv",
        ),
        (
            vec!["extract_geth_traces", "-i", &geth_csv, "-o", out],
            1,
            "transaction_traces",
        ),
        (
            vec![
                "export_traces",
                "-e",
                "1",
                "-c",
                "classic",
                "--daofork-traces",
                "-o",
                out,
            ],
            2,
            "Classic",
        ),
        (
            vec!["export_traces", "-s", "5", "-e", "1", "-p", node, "-o", out],
            2,
            "end block",
        ),
        (vec!["export_traces", "-o", out], 2, "--end-block"),
    ];
    for (args, code, needle) in cases {
        let got = run(&args).await;
        assert_one_line_failure(&got, code, needle);
        assert!(!out_path.exists(), "{args:?} left an output file");
    }
}

#[tokio::test]
async fn a_node_without_the_trace_apis_is_one_line() {
    let node = FaultServer::start(
        "http://127.0.0.1:1",
        Fault::NodeError(-32601, "Method not found".into()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("traces.json");
    let out = out_path.to_str().unwrap();
    let url = node.url();
    for (cmd, method) in [
        ("export_traces", "trace_block"),
        ("export_geth_traces", "debug_traceBlockByNumber"),
    ] {
        let got = run(&[cmd, "-s", "0", "-e", "3", "-p", &url, "-o", out]).await;
        assert_one_line_failure(&got, 1, method);
        assert!(!out_path.exists());
    }
    assert!(node.requests() >= 2, "the node was asked");
}

#[tokio::test]
async fn failing_calls_give_empty_token_fields() {
    let node = FaultServer::start(
        "http://127.0.0.1:1",
        Fault::NodeError(3, "execution reverted".into()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("tokens.txt");
    std::fs::write(&list, "0x5FbDB2315678afecb367f032d93F642f64180aa3\n").unwrap();
    let out_path = dir.path().join("tokens.json");
    let got = run(&[
        "export_tokens",
        "-t",
        list.to_str().unwrap(),
        "-p",
        &node.url(),
        "-o",
        out_path.to_str().unwrap(),
    ])
    .await;
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "{\"address\": \"0x5FbDB2315678afecb367f032d93F642f64180aa3\", \"symbol\": null, \
         \"name\": null, \"decimals\": null, \"total_supply\": null, \"block_number\": null}\n"
    );
    assert_eq!(node.requests(), 1, "one batch for one token");
}
