//! `pip install nodewatch`: the wheel `make wheel` writes (`target/wheels/nodewatch-*.whl`,
//! built by maturin from crates/wheel) installed with pip into a fresh venv puts both binaries
//! on the venv's PATH, at the workspace's version, and they work: an export through the
//! pip-installed `nodewatch`, by the pip-installed `nodewatch-export`, is byte-identical to a
//! direct export from the node by the cargo-built `nodewatch-export`.
//!
//! `make test` builds the wheel first (cargo's dev profile, see the Makefile); under `CI=true`
//! a missing wheel or anvil fails the test, locally it is skipped with a notice.

use nodewatch_testkit as support;

use std::path::Path;
use std::process::Command;

use support::anvil::Anvil;
use support::binary::Binary;
use support::chain::build_chain;
use support::export::{ours_output, s};

/// The workspace's version: the root Cargo.toml's `[workspace.package] version`.
fn workspace_version() -> String {
    let manifest = std::fs::read_to_string(support::workspace_root().join("Cargo.toml")).unwrap();
    let table = manifest
        .split_once("[workspace.package]")
        .expect("a [workspace.package] table")
        .1;
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .expect("a workspace version");
    line.split('"').nth(1).expect("a quoted version").to_owned()
}

fn run(program: &Path, args: &[&str]) -> std::process::Output {
    let out = support::tools::scrubbed(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pip_installed_wheel_runs_both_binaries_and_exports_identically() {
    let Some(wheel) = support::wheels::require_wheel("nodewatch", &[]) else {
        return;
    };
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    let version = workspace_version();
    assert!(
        name.starts_with(&format!("nodewatch-{version}-py3-none-manylinux_"))
            && name.ends_with("_x86_64.whl"),
        "{name}: a manylinux x86_64 platform wheel at version {version}"
    );

    let work = tempfile::tempdir().unwrap();
    let bin = support::wheels::fresh_venv(None, &work.path().join("venv"));
    let pip = bin.join("pip");
    run(
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            wheel.to_str().unwrap(),
        ],
    );
    let (nodewatch, exporter) = (bin.join("nodewatch"), bin.join("nodewatch-export"));
    let shown = String::from_utf8(run(&nodewatch, &["--version"]).stdout).unwrap();
    assert_eq!(shown.trim(), format!("nodewatch {version}"));
    let help = String::from_utf8(run(&exporter, &["--help"]).stdout).unwrap();
    assert!(
        help.contains("export_blocks_and_transactions") && help.contains("export_traces"),
        "{help}"
    );
    // On the venv's PATH: what `pip install` into an Airflow image gives the tasks.
    let found = Command::new("/bin/sh")
        .args(["-c", "command -v nodewatch && command -v nodewatch-export"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    let found = String::from_utf8(found.stdout).unwrap();
    assert_eq!(
        found.lines().collect::<Vec<_>>(),
        [s(&nodewatch), s(&exporter)],
        "both binaries on the venv's PATH"
    );

    // An export through the pip-installed nodewatch equals a direct one.
    let node = Anvil::spawn(&anvil).await;
    let chain = build_chain(&node.url()).await;
    let upstream = node.url();
    let mut proxy = Binary::start_program(&nodewatch, &["--upstream", &upstream], &[]);
    let out = |who: &str, name: &str| s(&work.path().join(format!("{who}-{name}")));
    let export = |url: &str, who: &str| {
        let range = ["-s", "0", "-e", &chain.head.to_string()].map(str::to_owned);
        let mut args: Vec<String> = ["export_blocks_and_transactions", "-p", url, "-b", "7"]
            .map(str::to_owned)
            .to_vec();
        args.extend(range);
        args.extend(["--blocks-output".into(), out(who, "blocks.csv")]);
        args.extend(["--transactions-output".into(), out(who, "transactions.csv")]);
        args
    };
    let through = export(&proxy.url, "pip");
    let through: Vec<&str> = through.iter().map(String::as_str).collect();
    run(&exporter, &[through.as_slice(), &["--quiet"]].concat());
    ours_output(&export(&upstream, "direct"));
    for name in ["blocks.csv", "transactions.csv"] {
        let (got, want) = (out("pip", name), out("direct", name));
        support::etl::assert_files_identical(Path::new(&got), Path::new(&want));
        let rows = std::fs::read_to_string(&want).unwrap().lines().count();
        assert!(rows > 1, "{name}: the direct export has rows");
    }
    assert!(
        proxy.is_running(),
        "the pip-installed nodewatch is still up"
    );
    // Every block went through it.
    let metrics = support::rpc::get(&format!("{}/metrics", proxy.admin))
        .await
        .1;
    let served: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with(r#"nodewatch_requests_total{method="eth_getBlockByNumber",outcome="ok","#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        served >= (chain.head + 1) as f64,
        "{served} blocks served by the pip-installed nodewatch, want {}:\n{metrics}",
        chain.head + 1
    );
}
