//! The Airflow DAG (`deploy/airflow/dags/ethereum_export_dag.py`, built on the
//! `airflow-provider-nodewatch` package) run by the real apache-airflow 2.10.5 and 3.x against
//! anvil nodes through the real `nodewatch` binary, its files compared byte for byte with
//! ethereum-etl's direct export of each day from a healthy node.
//!
//! The chain has blocks on three days (the test chain of `support::chain` on 2023-11-14, four
//! blocks each on the 15th and 16th with transfers, token transfers and a contract creation,
//! and one block on the 17th so the 16th has an end). Three nodes hold the same chain: one
//! nodewatch has node A as rank 1 and node C as rank 2 (Airflow 2.10), another node B as rank 1
//! and C as rank 2 (Airflow 3), so each version sees its own rank 1 die.
//!
//! The provider is installed from its wheel (`target/wheels/airflow_provider_nodewatch-*.whl`,
//! `make wheel`) with pip into a directory on the Airflow processes' `PYTHONPATH`, so its
//! `apache_airflow_provider` entry point is there as after a `pip install`, and the Airflow
//! venvs stay as `make tools` made them.
//!
//! 1. Airflow 2.10: `airflow dags backfill -s 2023-11-14 -e 2023-11-16`, run by Airflow's own
//!    LocalExecutor (a throwaway PostgreSQL as the metadata database: SQLite only allows the
//!    SequentialExecutor) with up to three days and four task instances at once. The days'
//!    `block_range.txt` files and exported block numbers cover the chain with no gap and no
//!    overlap, task instances really ran at the same time, and every file equals ethereum-etl's.
//! 2. Airflow 2.10: `airflow dags test` of 2023-11-14 with rank 1 SIGKILLed as soon as
//!    `export_blocks_and_transactions` has renamed its files into place: no task fails (the DAG
//!    runs with no retries here) and every file equals ethereum-etl's again.
//! 3. Airflow 3.x (SQLite metadata database; `dags test` runs the tasks in its own process):
//!    the same `airflow dags test` with its rank 1 killed the same way, the same files.
//!
//! The DAG runs with `exporter` = nodewatch-export, so the commands nodewatch-export has run
//! with it and the others with ethereumetl; the test checks each command ran with the program
//! the DAG's rule (`nodewatch-export <command> --help` exits 0) names.
//!
//! ethereumetl here is the ethereum-etl 2.4.2 reference (`$NODEWATCH_ETHEREUMETL310`, default
//! `.tools/venv/bin/ethereumetl`: the one venv `make tools` builds, whose contract calls work on
//! Python 3.11 too, which `extract_tokens` needs). Under `CI=true` a missing airflow (2.10 or 3.x), PostgreSQL driver,
//! provider wheel, anvil or ethereumetl fails the test; locally it is skipped with a notice.

use nodewatch_testkit as support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::anvil::Anvil;
use support::binary::Binary;
use support::chain::{build_chain, transfer_calldata, ChainInfo, TOKEN_INIT_CODE};
use support::poll::poll_until;
use support::postgres::Postgres;
use support::rpc::call;

const DAG_ID: &str = "ethereum_export_through_nodewatch";
/// The exported days and the blocks each must hold.
const DAYS: [(&str, u64, u64); 3] = [
    ("2023-11-14", 0, 30),
    ("2023-11-15", 31, 34),
    ("2023-11-16", 35, 38),
];
/// 2023-11-15T00:00:00Z.
const NOV_15: u64 = 1_700_006_400;
const DAY: u64 = 86_400;
/// Every file a day's run writes, all compared with ethereum-etl's.
const FILES: [&str; 10] = [
    "block_range.txt",
    "blocks.csv",
    "transactions.csv",
    "transaction_hashes.txt",
    "receipts.csv",
    "logs.csv",
    "token_transfers.csv",
    "traces.csv",
    "contracts.csv",
    "tokens.csv",
];
/// Every command the DAG runs.
const COMMANDS: [&str; 8] = [
    "get_block_range_for_date",
    "export_blocks_and_transactions",
    "extract_csv_column",
    "export_receipts_and_logs",
    "extract_token_transfers",
    "export_traces",
    "extract_contracts",
    "extract_tokens",
];
const AIRFLOW_TIMEOUT: Duration = Duration::from_secs(150);

fn repo(path: &str) -> PathBuf {
    support::workspace_root().join(path)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

// === tools ===================================================================================

/// A tool that `make tools` installs: Some(path), or None after a skip notice; a panic under CI.
fn require(what: &str, env: &str, default: &str, works: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let path = std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo(default));
    if path.is_file() && works(&path) {
        return Some(path);
    }
    assert!(
        !support::tools::is_ci(),
        "{what} not usable at {} (set {env} or run `make tools`); CI=true, so this is a failure",
        path.display()
    );
    eprintln!(
        "skipping: {what} not usable at {}, run make tools",
        path.display()
    );
    None
}

struct Tools {
    anvil: PathBuf,
    airflow_python: PathBuf,
    airflow3_python: PathBuf,
    ethereumetl: PathBuf,
    pg_bin: PathBuf,
    provider_wheel: PathBuf,
}

/// An Airflow venv's python if `import <modules>` works there (in a temporary AIRFLOW_HOME:
/// importing airflow writes an airflow.cfg into it).
fn imports(python: &Path, modules: &str) -> bool {
    let home = tempfile::tempdir().unwrap();
    std::process::Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .env("AIRFLOW_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tools() -> Option<Tools> {
    let anvil = support::tools::require_anvil();
    let airflow_python = require(
        "apache-airflow with psycopg2",
        "NODEWATCH_AIRFLOW_PYTHON",
        ".tools/airflow-venv/bin/python",
        |python| imports(python, "airflow.version, psycopg2"),
    );
    let airflow3_python = require(
        "apache-airflow 3.x",
        "NODEWATCH_AIRFLOW3_PYTHON",
        ".tools/airflow3-venv/bin/python",
        |python| imports(python, "airflow.sdk"),
    );
    let ethereumetl = require(
        "the ethereum-etl reference",
        "NODEWATCH_ETHEREUMETL310",
        ".tools/venv/bin/ethereumetl",
        |_| true,
    );
    let pg_bin = support::tools::require_postgres();
    let provider_wheel = support::wheels::require_wheel(
        "airflow_provider_nodewatch",
        &["providers/airflow-provider-nodewatch/nodewatch_provider"],
    );
    Some(Tools {
        anvil: anvil?,
        airflow_python: airflow_python?,
        airflow3_python: airflow3_python?,
        ethereumetl: ethereumetl?,
        pg_bin: pg_bin?,
        provider_wheel: provider_wheel?,
    })
}

// === the chain ===============================================================================

/// `eth_sendTransaction` with every fee and gas field given, so both nodes mine the same bytes.
async fn send(url: &str, mut tx: Value, gas: u64, gas_price_gwei: u64) -> String {
    tx["gas"] = json!(format!("{gas:#x}"));
    tx["gasPrice"] = json!(format!("{:#x}", gas_price_gwei * 1_000_000_000));
    call(url, "eth_sendTransaction", json!([tx]))
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// The test chain (2023-11-14), then four blocks on each of the 15th and 16th, the first of
/// each day at 00:00:00 sharp, and one block on the 17th. Deterministic: two nodes given the
/// same calls hold the same chain.
async fn build(url: &str) -> ChainInfo {
    let chain = build_chain(url).await;
    let acc = &chain.accounts;
    call(url, "evm_setAutomine", json!([false])).await;
    for (day, start) in [(1, NOV_15), (2, NOV_15 + DAY)] {
        for block in 0..4u64 {
            let k = (day * 4 + block) as usize;
            let from = &acc[k % 10];
            if block == 0 {
                // A contract creation: a trace, a contract, a token row.
                let create = json!({"from": acc[(k + 5) % 10], "data": TOKEN_INIT_CODE});
                send(url, create, 200_000, 30).await;
            }
            if block != 2 {
                let transfer = json!({"from": from, "to": acc[(k + 1) % 10], "value": format!("{:#x}", k * 1000 + 7)});
                send(url, transfer, 21_000, 20).await;
                let data = transfer_calldata(&acc[(k + 3) % 10], k as u64 * 11);
                let token = json!({"from": acc[(k + 2) % 10], "to": chain.token, "data": data});
                send(url, token, 60_000, 10).await;
            }
            // Block 2 of each day is empty.
            let timestamp = start + block * 6 * 3600;
            call(url, "evm_mine", json!([{ "timestamp": timestamp }])).await;
        }
    }
    call(
        url,
        "evm_mine",
        json!([{ "timestamp": NOV_15 + 2 * DAY + 60 }]),
    )
    .await;
    assert_eq!(support::rpc::block_number(url).await, DAYS[2].2 + 1);
    chain
}

// === Airflow =================================================================================

/// One AIRFLOW_HOME with its metadata database, and the DAG's environment.
struct Airflow {
    python: PathBuf,
    /// The metadata database (None: SQLite in AIRFLOW_HOME); its log is shown when an airflow
    /// command fails.
    pg: Option<Postgres>,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Airflow {
    /// `airflow <args>`.
    fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> tokio::process::Command {
        let mut cmd = self.python(extra_env);
        cmd.args(["-m", "airflow"]).args(args);
        cmd
    }

    /// Airflow's python with the settings and the DAG's environment.
    fn python(&self, extra_env: &[(&str, &str)]) -> tokio::process::Command {
        // Proxy variables out, NO_PROXY=*, no __pycache__ in deploy/airflow/dags.
        let mut cmd = tokio::process::Command::from(support::tools::scrubbed(&self.python));
        cmd.env("AIRFLOW_HOME", self.home.path())
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", repo("deploy/airflow/dags"))
            .env("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
            .env("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
            .env_remove("ETHEREUM_EXPORTER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())) {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `airflow <args>` to the end; panics with its output unless it exits 0.
    async fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let child = self.command(args, extra_env).spawn().expect("run airflow");
        self.finish(child, args).await
    }

    /// Waits for an airflow command; panics with its output unless it exits 0.
    async fn finish(&self, child: tokio::process::Child, args: &[&str]) -> Output {
        let out = tokio::time::timeout(AIRFLOW_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| {
                panic!("airflow {args:?} did not finish within {AIRFLOW_TIMEOUT:?}")
            })
            .unwrap();
        assert!(
            out.status.success(),
            "airflow {args:?} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- PostgreSQL \
         log ---\n{}",
            out.status,
            tail(&out.stdout),
            tail(&out.stderr),
            self.pg.as_ref().map_or_else(
                || "(SQLite)".to_owned(),
                |pg| tail(pg.log_text().as_bytes())
            )
        );
        out
    }
}

/// The last 12,000 bytes of a command's output.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let from = text.len().saturating_sub(12_000);
    let from = (from..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[from..].to_owned()
}

/// The programs that ran each command, from the DAG's "running (…): <program> <command> …"
/// log lines in `texts`. A line that shows up in more than one of them (Airflow 2.10's `dags
/// test` logs a task's lines to stdout and stderr) counts once: each run's argv differs (its
/// day's paths).
fn programs_run(texts: &[&str]) -> BTreeMap<String, Vec<String>> {
    let argvs: BTreeSet<&str> = texts
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| {
            line.split_once(" chosen): ")
                .map(|(_, argv)| argv.trim_end())
        })
        .collect();
    let mut ran: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for argv in argvs {
        let mut words = argv.split_whitespace();
        let (Some(program), Some(command)) = (words.next(), words.next()) else {
            continue;
        };
        ran.entry(command.to_owned())
            .or_default()
            .push(program.to_owned());
    }
    ran
}

/// Every command ran, each with the program the DAG's rule names: nodewatch-export when
/// `nodewatch-export <command> --help` exits 0, else ethereumetl.
fn assert_programs(ran: &BTreeMap<String, Vec<String>>, runs: usize, tools: &Tools) {
    let exporter = support::binary::exporter_path();
    for command in COMMANDS {
        let has = std::process::Command::new(&exporter)
            .args([command, "--help"])
            .output()
            .unwrap()
            .status
            .success();
        let want = if has { &exporter } else { &tools.ethereumetl };
        let got = ran
            .get(command)
            .unwrap_or_else(|| panic!("{command} never ran: {ran:?}"));
        assert_eq!(got.len(), runs, "{command}: {got:?}");
        assert!(
            got.iter().all(|p| Path::new(p) == want.as_path()),
            "{command} ran with {got:?}, the DAG's rule says {}",
            want.display()
        );
    }
}

// === the reference ===========================================================================

/// Runs `ethereumetl <line>` (split at spaces: the paths here have none); panics unless it
/// exits 0.
async fn ethereumetl(bin: &Path, line: String) {
    let out = tokio::process::Command::new(bin)
        .args(line.split(' '))
        .env("NO_PROXY", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .unwrap_or_else(|_| panic!("ethereumetl {line} did not finish within 120 s"))
        .unwrap();
    assert!(
        out.status.success(),
        "ethereumetl {line} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ethereum-etl's own export of `day` from `url` into `dir`, with `-w 1`: the files the DAG
/// must write. Commands that do not depend on each other run at the same time.
async fn reference(bin: &Path, url: &str, day: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let f = |name: &str| path_str(&dir.join(name)).to_owned();
    let (range, blocks, txs) = (f("block_range.txt"), f("blocks.csv"), f("transactions.csv"));
    let (hashes, receipts, logs) = (
        f("transaction_hashes.txt"),
        f("receipts.csv"),
        f("logs.csv"),
    );
    let (traces, contracts) = (f("traces.csv"), f("contracts.csv"));
    let e = |line: String| ethereumetl(bin, line);
    e(format!(
        "get_block_range_for_date -p {url} -d {day} -o {range}"
    ))
    .await;
    let text = std::fs::read_to_string(&range).unwrap();
    let (start, end) = text.trim().split_once(',').unwrap();
    let r = format!("-s {start} -e {end} -p {url} -w 1");
    let blocks_branch = async {
        e(format!(
            "export_blocks_and_transactions {r} --blocks-output {blocks} \
             --transactions-output {txs}"
        ))
        .await;
        e(format!("extract_csv_column -c hash -i {txs} -o {hashes}")).await;
        e(format!(
            "export_receipts_and_logs -t {hashes} -p {url} -w 1 --receipts-output {receipts} \
             --logs-output {logs}"
        ))
        .await;
        e(format!(
            "extract_token_transfers -l {logs} -w 1 -o {}",
            f("token_transfers.csv")
        ))
        .await;
    };
    let traces_branch = async {
        e(format!("export_traces {r} -o {traces}")).await;
        e(format!("extract_contracts -t {traces} -w 1 -o {contracts}")).await;
        e(format!(
            "extract_tokens -c {contracts} -p {url} -w 1 -o {}",
            f("tokens.csv")
        ))
        .await;
    };
    tokio::join!(blocks_branch, traces_branch);
    // Every file has rows: the comparison is never between two empty files.
    for name in FILES {
        let rows = std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .count();
        let header = usize::from(name.ends_with(".csv"));
        assert!(rows > header, "{day}: ethereum-etl's {name} has no rows");
    }
}

/// Every file of `got` equals the one in `want`, and there are no others.
fn assert_day_identical(got: &Path, want: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(got)
        .unwrap_or_else(|e| panic!("{}: {e}", got.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        names,
        expected,
        "files of {} (no temporary directory left)",
        got.display()
    );
    for name in FILES {
        support::etl::assert_files_identical(&got.join(name), &want.join(name));
    }
}

/// The `number` column of a blocks.csv.
fn block_numbers(path: &Path) -> Vec<u64> {
    support::etl::read_csv(path)
        .iter()
        .map(|row| row["number"].parse().unwrap())
        .collect()
}

// === the test ================================================================================

/// A nodewatch with `rank1` and `rank2`, probing every 250 ms.
fn nodewatch(rank1: &Anvil, rank2: &Anvil) -> Binary {
    let toml = format!(
        "[probe]\ninterval = \"250ms\"\ntimeout = \"1s\"\n\
         [[upstreams]]\nname = \"rank1\"\nurl = \"{}\"\n\
         [[upstreams]]\nname = \"rank2\"\nurl = \"{}\"\n",
        rank1.url(),
        rank2.url()
    );
    Binary::start(&toml, &[], &[])
}

/// The DAG's environment for a run through `nw`, the provider on `PYTHONPATH`.
fn dag_env(nw: &Binary, tools: &Tools, site: &Path) -> Vec<(String, String)> {
    let exporter = support::binary::exporter_path();
    [
        ("PYTHONPATH", path_str(site).to_owned()),
        ("ETHEREUM_PROVIDER_URI", nw.url.clone()),
        ("NODEWATCH_ADMIN_URL", nw.admin.clone()),
        ("ETHEREUMETL_BIN", path_str(&tools.ethereumetl).into()),
        ("NODEWATCH_EXPORT_BIN", path_str(&exporter).into()),
        // ethereumetl writes its batches in the order they finish: only -w 1 gives the
        // same bytes every run.
        ("ETHEREUM_EXPORT_MAX_WORKERS", "1".into()),
        // A task that fails fails the run: surviving the kill must not need a retry.
        ("ETHEREUM_EXPORT_RETRIES", "0".into()),
        ("ETHEREUM_EXPORT_MAX_ACTIVE_RUNS", "3".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airflow_exports_three_days_through_nodewatch_and_survives_rank_1_dying() {
    let started = Instant::now();
    let Some(tools) = tools() else {
        return;
    };
    // Rank 1 for Airflow 2.10 (a), rank 1 for Airflow 3 (b), rank 2 for both (c).
    let mut rank1a = Anvil::spawn(&tools.anvil).await;
    let mut rank1b = Anvil::spawn(&tools.anvil).await;
    let rank2 = Anvil::spawn(&tools.anvil).await;
    let (url1a, url1b, url2) = (rank1a.url(), rank1b.url(), rank2.url());
    let (chain1a, chain1b, chain2) = tokio::join!(build(&url1a), build(&url1b), build(&url2));
    assert_eq!(chain1a, chain2, "the nodes hold the same chain");
    assert_eq!(chain1b, chain2, "the nodes hold the same chain");
    let mut nw = nodewatch(&rank1a, &rank2);
    let mut nw3 = nodewatch(&rank1b, &rank2);
    let pg = Postgres::start(&tools.pg_bin).await;
    pg.create_database("airflow").await;
    eprintln!(
        "nodes, nodewatch and PostgreSQL up after {:?}",
        started.elapsed()
    );

    // The provider from its wheel, for both Airflow versions (pure Python, no bytecode).
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site-packages");
    support::wheels::install_into(&tools.airflow_python, &tools.provider_wheel, &site);

    // ethereum-etl's export of every day, straight from the node that stays healthy. It runs
    // while Airflow migrates its databases.
    let want = work.path().join("want");
    let want_days = [
        want.join(DAYS[0].0),
        want.join(DAYS[1].0),
        want.join(DAYS[2].0),
    ];
    let references = async {
        tokio::join!(
            reference(&tools.ethereumetl, &url2, DAYS[0].0, &want_days[0]),
            reference(&tools.ethereumetl, &url2, DAYS[1].0, &want_days[1]),
            reference(&tools.ethereumetl, &url2, DAYS[2].0, &want_days[2]),
        );
    };

    let out = work.path().join("out");
    let pg_url = format!(
        "postgresql+psycopg2://postgres@127.0.0.1:{}/airflow",
        pg.port
    );
    let mut env = dag_env(&nw, &tools, &site);
    env.extend(
        [
            ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", pg_url),
            ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".into()),
            ("AIRFLOW__CORE__PARALLELISM", "4".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let airflow = Airflow {
        python: tools.airflow_python.clone(),
        pg: Some(pg),
        home: tempfile::tempdir().unwrap(),
        env,
    };
    let airflow3 = Airflow {
        python: tools.airflow3_python.clone(),
        pg: None,
        home: tempfile::tempdir().unwrap(),
        env: dag_env(&nw3, &tools, &site),
    };
    let migrate = async {
        airflow.run(&["db", "migrate"], &[]).await;
    };
    let migrate3 = async {
        airflow3.run(&["db", "migrate"], &[]).await;
    };
    tokio::join!(references, migrate, migrate3);
    eprintln!(
        "references and both airflow db migrate done after {:?}",
        started.elapsed()
    );

    backfill(&airflow, &out.join("backfill"), &want, &tools).await;

    // 2. and 3. `airflow dags test` of the first day on 2.10, then on 3.x, each through its
    // own nodewatch whose rank 1 dies once the first export is done.
    for (label, airflow, rank1, nw) in [
        ("2.10", &airflow, &mut rank1a, &mut nw),
        ("3", &airflow3, &mut rank1b, &mut nw3),
    ] {
        let dir = out.join(format!("test-{label}"));
        dags_test_with_rank_1_killed(airflow, rank1, nw, &dir, &want, &tools, label).await;
    }
    drop(nw);
    drop(nw3);
    eprintln!("FIGURE airflow test wall time: {:?}", started.elapsed());
}

/// Part 1: a three-day backfill by Airflow 2.10's LocalExecutor into `dir`; the param picks
/// nodewatch-export. The days cover the chain with no gap and no overlap, task instances ran
/// at the same time, and every file equals ethereum-etl's in `want`.
async fn backfill(airflow: &Airflow, dir: &Path, want: &Path, tools: &Tools) {
    let backfill_env = [("ETHEREUM_EXPORT_DIR", path_str(dir))];
    let t = Instant::now();
    airflow
        .run(
            &[
                "dags",
                "backfill",
                "-s",
                DAYS[0].0,
                "-e",
                DAYS[2].0,
                "-c",
                r#"{"exporter": "nodewatch-export"}"#,
                DAG_ID,
            ],
            &backfill_env,
        )
        .await;
    eprintln!("FIGURE airflow backfill of 3 days: {:?}", t.elapsed());
    let mut previous_end: Option<u64> = None;
    for (day, first, last) in DAYS {
        let day_dir = dir.join(day);
        let range = std::fs::read_to_string(day_dir.join("block_range.txt")).unwrap();
        let (s, e) = range.trim().split_once(',').unwrap();
        let (s, e): (u64, u64) = (s.parse().unwrap(), e.parse().unwrap());
        assert_eq!((s, e), (first, last), "{day}: block_range.txt {range:?}");
        assert_eq!(
            s,
            previous_end.map_or(0, |p| p + 1),
            "{day}: no gap, no overlap"
        );
        previous_end = Some(e);
        assert_eq!(
            block_numbers(&day_dir.join("blocks.csv")),
            (s..=e).collect::<Vec<_>>(),
            "{day}"
        );
        assert_day_identical(&day_dir, &want.join(day));
    }
    assert_backfill_runs(airflow).await;
    let logs: Vec<String> = walk(&airflow.home.path().join("logs"))
        .iter()
        .map(|log| std::fs::read_to_string(log).unwrap())
        .collect();
    let logs: Vec<&str> = logs.iter().map(String::as_str).collect();
    assert_programs(&programs_run(&logs), 3, tools);
}

/// Three backfill runs, every task instance succeeded, and some ran at the same time.
async fn assert_backfill_runs(airflow: &Airflow) {
    let script = format!(
        "from airflow.models import TaskInstance, DagRun\n\
         from airflow.utils.session import create_session\n\
         with create_session() as s:\n\
         \x20   for r in s.query(DagRun).filter(DagRun.dag_id == '{DAG_ID}'):\n\
         \x20       print('RUN', r.run_id, r.run_type, r.state)\n\
         \x20   for ti in s.query(TaskInstance).filter(TaskInstance.dag_id == '{DAG_ID}'):\n\
         \x20       print('TI', ti.run_id, ti.task_id, ti.state, ti.start_date.timestamp(), \
         ti.end_date.timestamp())\n"
    );
    let listing = airflow.python_output(&script).await;
    let runs: Vec<&str> = listing.lines().filter(|l| l.starts_with("RUN ")).collect();
    assert_eq!(runs.len(), 3, "{listing}");
    assert!(
        runs.iter().all(|r| r.ends_with(" backfill success")),
        "{listing}"
    );
    let spans: Vec<(f64, f64)> = listing
        .lines()
        .filter(|l| l.starts_with("TI "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w[3], "success", "{l}");
            (w[4].parse().unwrap(), w[5].parse().unwrap())
        })
        .collect();
    assert_eq!(spans.len(), 3 * 8, "{listing}");
    let most_at_once = spans
        .iter()
        .map(|&(start, _)| {
            spans
                .iter()
                .filter(|&&(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    eprintln!("FIGURE airflow backfill: at most {most_at_once} task instances at once");
    assert!(
        most_at_once >= 2,
        "no two task instances overlapped:\n{listing}"
    );
}

/// `airflow dags test` of the first day into `dir`; `rank1` dies once the first export is
/// done. No task fails, every file equals ethereum-etl's, each command ran with the program
/// the DAG's rule names, and `nw` saw rank 1 die.
async fn dags_test_with_rank_1_killed(
    airflow: &Airflow,
    rank1: &mut Anvil,
    nw: &mut Binary,
    dir: &Path,
    want: &Path,
    tools: &Tools,
    label: &str,
) {
    let (day, _, _) = DAYS[0];
    let day_dir = dir.join(day);
    let test_env = [
        ("ETHEREUM_EXPORT_DIR", path_str(dir)),
        ("ETHEREUM_EXPORTER", "nodewatch-export"),
    ];
    let args = ["dags", "test", DAG_ID, day];
    let t = Instant::now();
    let mut child = airflow.command(&args, &test_env).spawn().unwrap();
    // The first files are written (`None`), or the DAG test ended before (its status).
    let started = poll_until(AIRFLOW_TIMEOUT, async || {
        if day_dir.join("blocks.csv").is_file() && day_dir.join("transactions.csv").is_file() {
            return Some(None);
        }
        child.try_wait().unwrap().map(Some)
    });
    match started.await {
        None => panic!("airflow {label}: no blocks.csv within {AIRFLOW_TIMEOUT:?}"),
        Some(Some(status)) => {
            let out = airflow.finish(child, &args).await;
            panic!(
                "airflow {label} dags test ended ({status}) before blocks.csv: {}",
                tail(&out.stdout)
            );
        }
        Some(None) => {}
    }
    rank1.kill_now();
    assert!(!rank1.is_running());
    let receipts_before_kill = day_dir.join("receipts.csv").exists();
    eprintln!("rank 1 killed {:?} into the {label} dags test", t.elapsed());
    let output = airflow.finish(child, &args).await;
    eprintln!(
        "FIGURE airflow {label} dags test with rank 1 killed: {:?}",
        t.elapsed()
    );
    assert!(
        !receipts_before_kill,
        "airflow {label}: the kill came after the receipts export: not mid-run"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("state=success") || stderr.contains("state=success"),
        "airflow {label}: {}",
        tail(&output.stdout)
    );
    assert_day_identical(&day_dir, &want.join(day));
    assert_programs(&programs_run(&[&stdout, &stderr]), 1, tools);
    assert!(nw.is_running(), "nodewatch is still up");
    // nodewatch saw rank 1 die (it probes every 250 ms; the run took seconds after the kill).
    let (_, metrics) = support::rpc::get(&format!("{}/metrics", nw.admin)).await;
    for (name, up) in [("rank1", 0), ("rank2", 1)] {
        let line = format!("nodewatch_upstream_up{{upstream=\"{name}\"}} {up}");
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }
}

impl Airflow {
    /// Runs a Python script with Airflow's settings; returns its stdout.
    async fn python_output(&self, script: &str) -> String {
        let out = self
            .python(&[])
            .args(["-c", script])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
