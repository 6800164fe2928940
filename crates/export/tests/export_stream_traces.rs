//! `stream -e trace,contract,token` (alone and with block,transaction,log,token_transfer)
//! against `ethereumetl stream` of the Python 3.10 reference (whose contract calls work), on
//! the fixture chain plus `nodewatch_testkit::contracts` (tokens of every shape, internal
//! calls, a reverted call, contract creations by transaction and by CREATE, a failed one):
//! the console items byte for byte, and the PostgreSQL tables (schema, constraint names and
//! rows) equal, with other `-b`/`-w` than the reference. The directory output holds what
//! the batch commands write for the same range. Also `-p a,b` (one of them, at random) and
//! bad input: a node without `trace_block`, unknown entity types, an empty `-p` entry.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::Path;
use std::process::Stdio;

use support::contracts::deploy_contracts;
use support::etl::{assert_files_identical, diff_excerpt};
use support::export::stream::{etl_stream_until, read_state};
use support::export::{args, exporter, ours, ours_output, s, Fixture};
use support::fault::{Fault, FaultServer};
use support::postgres::Postgres;
use support::reference::require_ethereumetl310;

const TRACE_ENTITIES: &str = "trace,contract,token";
const ALL_ENTITIES: &str = "block,transaction,log,token_transfer,trace,contract,token";
const TABLES: [&str; 7] = [
    "blocks",
    "transactions",
    "logs",
    "token_transfers",
    "traces",
    "contracts",
    "tokens",
];

/// The fixture chain with the contracts deployed and called; returns it and its head.
async fn fixture() -> Option<(Fixture, u64)> {
    let f = Fixture::new().await?;
    deploy_contracts(&f.url, &f.chain).await;
    let head = support::rpc::block_number(&f.url).await;
    Some((f, head))
}

/// `stream` flags shared by both sides: the same rounds (`-B`), so the same item grouping.
fn common(f: &Fixture, entities: &str, output: Option<&str>, state: &Path) -> Vec<String> {
    let mut a = args(&["stream", "-s", "0", "-p", &f.url, "-e", entities]);
    a.extend(args(&["-B", "9", "-l", &s(state)]));
    if let Some(o) = output {
        a.extend(args(&["-o", o]));
    }
    a
}

/// Runs the reference stream (one worker: ethereum-etl exports the tokens of a block in the
/// order its threads finish) until it has synced `head`; returns what it printed.
async fn etl_stream(etl: &Path, mut a: Vec<String>, state: &Path, head: u64) -> Vec<u8> {
    a.extend(args(&["-b", "10", "-w", "1", "--period-seconds", "1"]));
    let printed = state.with_extension("out");
    let file = std::fs::File::create(&printed).unwrap();
    etl_stream_until(etl, &a, state, head, file.into()).await;
    std::fs::read(&printed).unwrap()
}

/// Ours with other `-b`/`-w`, to the end block.
fn our_stream(mut a: Vec<String>, head: u64) -> Vec<u8> {
    a.extend(args(&[
        "-b",
        "3",
        "-w",
        "4",
        "--end-block",
        &head.to_string(),
    ]));
    let out = ours_output(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// How many printed items have `"type": "<kind>"`.
fn count(printed: &[u8], kind: &str) -> usize {
    let needle = format!("{{\"type\": \"{kind}\"");
    String::from_utf8_lossy(printed)
        .lines()
        .filter(|l| l.starts_with(&needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_contract_and_token_items_are_byte_identical_to_ethereumetl() {
    let Some((f, head)) = fixture().await else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    for (i, entities) in [TRACE_ENTITIES, ALL_ENTITIES, "token,log"]
        .into_iter()
        .enumerate()
    {
        let (es, os) = (
            f.path(&format!("etl{i}.txt")),
            f.path(&format!("our{i}.txt")),
        );
        let expected = etl_stream(&etl, common(&f, entities, None, &es), &es, head).await;
        let got = our_stream(common(&f, entities, None, &os), head);
        assert!(
            expected == got,
            "-e {entities}: outputs differ\n{}",
            diff_excerpt(&expected, &got)
        );
        assert_eq!(std::fs::read(&es).unwrap(), std::fs::read(&os).unwrap());
        let tokens = count(&got, "token");
        if entities.contains("trace") {
            let (traces, contracts) = (count(&got, "trace"), count(&got, "contract"));
            assert!(
                traces > 40 && contracts >= 8 && tokens >= 6,
                "{traces} {contracts} {tokens}"
            );
            // A reverted internal call and a failed creation are in the traces.
            let text = String::from_utf8_lossy(&got);
            assert!(text.contains("\"error\": \"Reverted\""), "a reverted trace");
            assert!(
                text.contains("\"trace_type\": \"create\""),
                "a create trace"
            );
            eprintln!(
                "FIGURE stream -e {entities}: {traces} traces, {contracts} contracts, {tokens} tokens, identical"
            );
        } else {
            assert!(tokens >= 6 && count(&got, "log") > 10, "{tokens} tokens");
        }
    }
}

/// Creates all seven ethereum-etl tables with its own SQLAlchemy metadata.
fn create_tables_with_sqlalchemy(ethereumetl: &Path, url: &str) {
    let python = ethereumetl.with_file_name("python");
    let script = "import sys\n\
        from sqlalchemy import create_engine\n\
        from ethereumetl.streaming.postgres_tables import metadata\n\
        metadata.create_all(create_engine(sys.argv[1]))\n";
    let out = support::tools::scrubbed(python)
        .args(["-c", script, url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "SQLAlchemy create_all failed (SQLAlchemy and pg8000 in the venv? make tools): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Columns (name, type, nullability) and constraints of every table, as text lines.
async fn schema(pg: &Postgres, db: &str) -> Vec<String> {
    let client = pg.client(db).await;
    let columns = "SELECT table_name::text || ' ' || column_name::text || ' ' || \
        data_type::text || ' ' || coalesce(character_maximum_length, 0)::text || ' ' || \
        coalesce(numeric_precision, 0)::text || ' ' || is_nullable::text \
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1";
    let constraints = "SELECT conrelid::regclass::text || ' ' || conname::text || ' ' || \
        pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
        ORDER BY 1";
    let mut lines = Vec::new();
    for q in [columns, constraints] {
        for row in client.query(q, &[]).await.unwrap() {
            lines.push(row.get::<_, String>(0));
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_postgres_fills_the_tables_as_ethereumetl_does() {
    let Some(pg_bin) = support::tools::require_postgres() else {
        return;
    };
    let Some((f, head)) = fixture().await else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    let pg = Postgres::start(&pg_bin).await;
    pg.create_database("ours").await;
    pg.create_database("etl").await;
    let url = |db: &str| pg.url(db).replace("postgresql://", "postgresql+pg8000://");
    let (our_url, etl_url) = (url("ours"), url("etl"));
    create_tables_with_sqlalchemy(&etl, &etl_url);
    let es = f.path("etl.txt");
    let a = common(&f, ALL_ENTITIES, Some(&etl_url), &es);
    let mut a_etl = a.clone();
    a_etl.extend(args(&["-b", "10", "-w", "1", "--period-seconds", "1"]));
    etl_stream_until(&etl, &a_etl, &es, head, Stdio::null()).await;
    // Ours creates the tables itself.
    let os = f.path("ours.txt");
    our_stream(common(&f, ALL_ENTITIES, Some(&our_url), &os), head);
    assert_eq!(read_state(&os), Some(head as i64));

    assert_eq!(
        schema(&pg, "ours").await,
        schema(&pg, "etl").await,
        "tables created like SQLAlchemy's"
    );
    let mut counts = Vec::new();
    for table in TABLES {
        let (o, e) = (pg.rows("ours", table).await, pg.rows("etl", table).await);
        assert!(!o.is_empty(), "{table} has rows");
        assert_eq!(
            o, e,
            "{table}: same rows as ethereumetl stream -o postgresql"
        );
        counts.push(format!("{table} {}", o.len()));
    }
    // A second run over the same blocks (a repeated round) changes nothing.
    std::fs::remove_file(&os).unwrap();
    our_stream(common(&f, TRACE_ENTITIES, Some(&our_url), &os), head);
    for table in ["traces", "contracts", "tokens"] {
        assert_eq!(
            pg.rows("ours", table).await,
            pg.rows("etl", table).await,
            "{table}"
        );
    }
    eprintln!("FIGURE stream-postgres -e {ALL_ENTITIES}: rows {counts:?}, equal to ethereumetl's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_output_holds_the_batch_exports() {
    let Some((f, head)) = fixture().await else {
        return;
    };
    let dir = f.path("out/");
    let end = head.to_string();
    let os = f.path("state.txt");
    let mut a = common(&f, TRACE_ENTITIES, Some(&s(&dir)), &os);
    // One round over the whole chain, so one file per kind.
    let rounds = a.iter().position(|x| x == "-B").unwrap() + 1;
    a[rounds] = "1000".into();
    a.extend(args(&["--output-format", "json"]));
    our_stream(a, head);
    let file = |kind: &str| {
        dir.join(kind)
            .join(format!("{kind}_00000000_{head:08}.json"))
    };
    let node = ["-p", f.url.as_str(), "-w", "2"];
    let batch = |kind: &str| f.path(&format!("batch_{kind}.json"));
    let run = |cmd: &[&str]| {
        let mut all = args(cmd);
        all.extend(args(&node));
        ours(&all);
    };
    run(&[
        "export_traces",
        "-s",
        "0",
        "-e",
        &end,
        "-o",
        &s(&batch("traces")),
    ]);
    let traces = s(&batch("traces"));
    ours(&args(&[
        "extract_contracts",
        "-t",
        &traces,
        "-o",
        &s(&batch("contracts")),
    ]));
    run(&[
        "extract_tokens",
        "-c",
        &s(&batch("contracts")),
        "-o",
        &s(&batch("tokens")),
    ]);
    for kind in ["traces", "contracts", "tokens"] {
        assert_files_identical(&batch(kind), &file(kind));
    }
    let tokens = std::fs::read_to_string(file("tokens"))
        .unwrap()
        .lines()
        .count();
    assert!(tokens >= 6, "{tokens} tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_list_uses_one_of_its_nodes_at_random() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    // Two nodes whose block 1 differs: the printed block tells which one was used.
    let (a, b) = (
        support::anvil::Anvil::spawn(&anvil).await,
        support::anvil::Anvil::spawn(&anvil).await,
    );
    support::chain::build_chain(&a.url()).await;
    support::chain::mine(&b.url(), 1).await;
    let hash = |url: String| async move { support::chain::block_hashes(&url, 1).await[1].clone() };
    let (hash_a, hash_b) = (hash(a.url()).await, hash(b.url()).await);
    assert_ne!(hash_a, hash_b);
    let dir = tempfile::tempdir().unwrap();
    let list = format!(" {} ,{}", a.url(), b.url());
    let mut used = std::collections::BTreeSet::new();
    // 24 uniform draws all alike: probability 2^-23.
    for i in 0..24 {
        let state = dir.path().join(format!("s{i}.txt"));
        let o = exporter(&["stream", "-s", "1", "--end-block", "1", "-e", "block"])
            .args(["-p", &list, "-l", &s(&state)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        let uri = err
            .lines()
            .find_map(|l| l.strip_prefix("Using "))
            .unwrap_or_else(|| panic!("no 'Using' line: {err}"))
            .to_owned();
        let printed = String::from_utf8_lossy(&o.stdout);
        let expected = if uri == a.url() { &hash_a } else { &hash_b };
        assert!(uri == a.url() || uri == b.url(), "{uri}");
        assert!(printed.contains(expected.as_str()), "{uri}: {printed}");
        used.insert(uri);
    }
    assert_eq!(used.len(), 2, "both nodes were picked: {used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = support::anvil::Anvil::spawn(&anvil).await;
    support::chain::mine(&node.url(), 2).await;
    let no_traces = FaultServer::start(&node.url(), Fault::NoMethod(vec!["trace_".into()])).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.txt");
    let url = no_traces.url();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["-e", "block,trace", "-p", &url], 1, "trace_block"),
        (vec!["-e", "token", "-p", &url], 1, "trace_block"),
        (
            vec!["-e", "block,receipt", "-p", &url],
            2,
            "receipt is not an available entity type",
        ),
        (vec!["-e", "traces", "-p", &url], 2, "trace,contract,token"),
        (
            vec!["-p", "http://127.0.0.1:1,,http://127.0.0.1:2"],
            2,
            "entry 2",
        ),
        (vec!["-p", "http://127.0.0.1:1,ftp://x"], 2, "ftp"),
    ];
    for (extra, code, needle) in cases {
        let _ = std::fs::remove_file(&state);
        let o = exporter(&["stream", "-s", "0", "--end-block", "2", "--quiet"])
            .args([
                "-l",
                &s(&state),
                "--max-attempts",
                "2",
                "--retry-delay-ms",
                "10",
            ])
            .args(&extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: one line: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        eprintln!("{extra:?}: exit {code}: {}", err.trim());
    }
}
