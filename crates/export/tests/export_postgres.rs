//! `nodewatch-export stream -o postgresql://...` against a throwaway PostgreSQL 15: the tables
//! hold exactly what `ethereumetl stream -o postgresql+pg8000://...` writes (schema and rows,
//! ethereum-etl creating its tables with SQLAlchemy), each row agrees with our batch CSV
//! export of the range, and a stream killed with SIGKILL at arbitrary points and restarted
//! ends with every row exactly once. Also: bad URLs and unreachable servers.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;
use nodewatch_testkit::export as export_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use export_common::stream::{batch_export, etl_stream_until, read_state, run_with_kills};
use export_common::{args, exporter, ours, s, Fixture};
use support::etl::read_csv;
use support::postgres::Postgres;

const TABLES: [&str; 4] = ["blocks", "transactions", "logs", "token_transfers"];

fn stream_to(f: &Fixture, url: &str, state: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = args(&["stream", "-p", &f.url, "-o", url, "-l", &s(state)]);
    a.extend(args(extra));
    a
}

/// Creates ethereum-etl's tables with its own SQLAlchemy metadata, in the venv of ethereumetl.
fn create_tables_with_sqlalchemy(ethereumetl: &Path, url: &str) {
    let python = ethereumetl.with_file_name("python");
    let script = "import sys\n\
        from sqlalchemy import create_engine\n\
        from ethereumetl.streaming.postgres_tables import metadata, BLOCKS, TRANSACTIONS, LOGS, TOKEN_TRANSFERS\n\
        metadata.create_all(create_engine(sys.argv[1]), tables=[BLOCKS, TRANSACTIONS, LOGS, TOKEN_TRANSFERS])\n";
    let out = support::tools::scrubbed(python)
        .args(["-c", script, url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "SQLAlchemy create_all failed (is ethereum-etl's SQLAlchemy/pg8000 installed? make tools): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ethereumetl stream -o <url>` until its state file says `head`, then stops it.
async fn etl_stream_to(ethereumetl: &Path, f: &Fixture, url: &str, state: &Path) {
    let mut a = stream_to(
        f,
        url,
        state,
        &["-s", "0", "-B", "100", "-b", "10", "-w", "1"],
    );
    a.extend(args(&["--period-seconds", "1"]));
    etl_stream_until(ethereumetl, &a, state, f.head, Stdio::null()).await;
}

/// `datetime.utcfromtimestamp(t).strftime('%Y-%m-%d %H:%M:%S')`, by `date -u`.
fn sql_time(epoch: &str) -> String {
    let t: i64 = epoch.parse().unwrap();
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%d %H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Checks every table row against the batch CSV export of the same range: each column holds
/// the CSV field of the same name, with ethereum-etl's conversions (receipt_* from the receipts
/// file, timestamps as SQL text, topics spread over topic0..3, block fields of logs and
/// transfers from the blocks file). Returns the rows checked.
async fn assert_rows_match_batch(
    pg: &Postgres,
    db: &str,
    batch: &BTreeMap<String, std::path::PathBuf>,
) -> usize {
    let csv = |k: &str| read_csv(&batch[k]);
    let blocks: BTreeMap<String, BTreeMap<String, String>> = csv("blocks")
        .into_iter()
        .map(|r| (r["number"].clone(), r))
        .collect();
    let receipts: BTreeMap<String, BTreeMap<String, String>> = csv("receipts")
        .into_iter()
        .map(|r| (r["transaction_hash"].clone(), r))
        .collect();
    let times: BTreeMap<String, String> = blocks
        .values()
        .map(|b| (b["timestamp"].clone(), sql_time(&b["timestamp"])))
        .collect();
    let mut checked = 0;
    for (table, file) in [
        ("blocks", "blocks"),
        ("transactions", "transactions"),
        ("logs", "logs"),
        ("token_transfers", "token_transfers"),
    ] {
        let columns = pg.columns(db, table).await;
        let mut expected: Vec<Vec<Option<String>>> = csv(file)
            .iter()
            .map(|row| {
                let number = row
                    .get("block_number")
                    .or_else(|| row.get("number"))
                    .unwrap();
                let block = &blocks[number];
                columns
                    .iter()
                    .map(|c| {
                        let v = if let Some(r) = c.strip_prefix("receipt_") {
                            receipts[&row["hash"]][r].clone()
                        } else if let Some(i) = c.strip_prefix("topic") {
                            let topics: Vec<&str> =
                                row["topics"].split(',').filter(|t| !t.is_empty()).collect();
                            topics
                                .get(i.parse::<usize>().unwrap())
                                .unwrap_or(&"")
                                .to_string()
                        } else if c == "timestamp" || c == "block_timestamp" {
                            times[&block["timestamp"]].clone()
                        } else if let Some(v) = row.get(c.as_str()) {
                            v.clone()
                        } else if c == "block_hash" {
                            block["hash"].clone()
                        } else {
                            panic!("no batch field for {table}.{c}")
                        };
                        Some(v)
                    })
                    .collect()
            })
            .collect();
        expected.sort();
        // The CSV writes None as an empty field.
        let got: Vec<Vec<Option<String>>> = pg
            .rows(db, table)
            .await
            .into_iter()
            .map(|r| r.into_iter().map(|v| Some(v.unwrap_or_default())).collect())
            .collect();
        assert_eq!(got.len(), expected.len(), "{table}: row count");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "{table}: columns {columns:?}");
        }
        checked += got.len();
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_to_postgres_writes_what_ethereumetl_writes_and_the_batch_export_holds() {
    let Some(pg_bin) = support::tools::require_postgres() else {
        return;
    };
    let Some(f) = Fixture::new().await else {
        return;
    };
    let ethereumetl = support::tools::require_ethereumetl().unwrap();
    let pg = Postgres::start(&pg_bin).await;
    pg.create_database("ours").await;
    pg.create_database("etl").await;
    let head = f.head.to_string();

    let ours_url = pg
        .url("ours")
        .replace("postgresql://", "postgresql+pg8000://");
    let started = Instant::now();
    ours(&stream_to(
        &f,
        &ours_url,
        &f.path("ours.txt"),
        &["-s", "0", "-B", "7", "-b", "3", "--end-block", &head],
    ));
    let our_secs = started.elapsed().as_secs_f64();
    assert_eq!(read_state(&f.path("ours.txt")), Some(f.head as i64));

    let etl_url = pg
        .url("etl")
        .replace("postgresql://", "postgresql+pg8000://");
    create_tables_with_sqlalchemy(&ethereumetl, &etl_url);
    etl_stream_to(&ethereumetl, &f, &etl_url, &f.path("etl.txt")).await;

    let mut rows = 0;
    for table in TABLES {
        let cols = pg.columns("ours", table).await;
        assert_eq!(
            cols,
            pg.columns("etl", table).await,
            "{table}: same columns"
        );
        let (o, e) = (pg.rows("ours", table).await, pg.rows("etl", table).await);
        assert!(!o.is_empty(), "{table} has rows");
        assert_eq!(
            o, e,
            "{table}: same rows as ethereumetl stream -o postgresql"
        );
        rows += o.len();
    }
    let schema = |db: &'static str| {
        let pg = &pg;
        async move {
            let client = pg.client(db).await;
            client
                .query(
                    "SELECT table_name::text, column_name::text, data_type::text, \
                     coalesce(numeric_precision, 0), is_nullable::text \
                     FROM information_schema.columns WHERE table_schema = 'public' \
                     ORDER BY 1, ordinal_position",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {} {}",
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                        r.get::<_, i32>(3),
                        r.get::<_, String>(4)
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        schema("ours").await,
        schema("etl").await,
        "tables created like SQLAlchemy's"
    );

    let batch = batch_export(&f.url, 0, f.head, &f.path("batch"), "csv");
    let checked = assert_rows_match_batch(&pg, "ours", &batch).await;
    assert_eq!(checked, rows);
    eprintln!(
        "FIGURE stream-postgres: {rows} rows in {} tables ({} blocks) in {our_secs:.2}s, equal to ethereumetl stream's rows and to the batch CSV",
        TABLES.len(),
        f.head + 1
    );
}

/// `SELECT count(*), count(DISTINCT <primary key>)` per table.
async fn counts(pg: &Postgres, db: &str) -> Vec<(String, i64, i64)> {
    let client = pg.client(db).await;
    let mut out = Vec::new();
    for (table, key) in [
        ("blocks", "hash"),
        ("transactions", "hash"),
        ("logs", "(log_index, transaction_hash)"),
        ("token_transfers", "(transaction_hash, log_index)"),
    ] {
        let row = client
            .query_one(
                &format!("SELECT count(*), count(DISTINCT {key}) FROM {table}"),
                &[],
            )
            .await
            .unwrap();
        out.push((table.to_owned(), row.get(0), row.get(1)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_postgres_stream_has_every_row_exactly_once() {
    let Some(pg_bin) = support::tools::require_postgres() else {
        return;
    };
    let Some(f) = Fixture::new().await else {
        return;
    };
    let pg = Postgres::start(&pg_bin).await;
    pg.create_database("clean").await;
    pg.create_database("killed").await;
    let head = f.head.to_string();
    let extra = ["-B", "1", "-b", "1", "-w", "1", "--end-block", &head];
    ours(&stream_to(
        &f,
        &pg.url("clean"),
        &f.path("clean.txt"),
        &extra,
    ));

    let a = stream_to(&f, &pg.url("killed"), &f.path("killed.txt"), &extra);
    let kills = 5;
    let resumed_from = run_with_kills(&a, &f.path("killed.txt"), kills, || {}).await;
    let counted = counts(&pg, "killed").await;
    assert_eq!(counted, counts(&pg, "clean").await);
    for (table, n, distinct) in &counted {
        assert_eq!(n, distinct, "{table}: a primary key twice");
    }
    assert_eq!(counted[0].1, f.head as i64 + 1, "every block");
    for table in TABLES {
        assert_eq!(
            pg.rows("killed", table).await,
            pg.rows("clean", table).await,
            "{table}"
        );
    }
    // PostgreSQL logs this when a client vanishes inside BEGIN..COMMIT.
    let mid_transaction = pg
        .log_text()
        .matches("unexpected EOF on client connection with an open transaction")
        .count();
    eprintln!(
        "FIGURE stream-postgres-kill: {kills} SIGKILLs ({mid_transaction} inside an open transaction; resumed after blocks {resumed_from:?}); counts {counted:?} equal to an uninterrupted run"
    );
    assert_eq!(read_state(&f.path("killed.txt")), Some(f.head as i64));
}

#[test]
fn bad_urls_and_unreachable_servers_are_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.txt");
    let run = |output: &str| {
        exporter(&[
            "stream",
            "-p",
            "http://127.0.0.1:9",
            "-o",
            output,
            "-l",
            &s(&state),
        ])
        .args(["--end-block", "1", "--quiet"])
        .output()
        .unwrap()
    };
    for (output, code, says) in [
        (
            "postgresql://nouser@127.0.0.1:notaport/db",
            2,
            "bad PostgreSQL URL",
        ),
        ("postgresql://127.0.0.1/db", 2, "names no user"),
        (
            "mysql://u@h/db",
            2,
            "Unable to determine item exporter type",
        ),
        (
            "postgresql+pg8000://u:secret@127.0.0.1:1/db",
            1,
            "cannot connect to PostgreSQL",
        ),
    ] {
        let out = run(output);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{output}: {err}");
        assert!(err.contains(says), "{output}: {err}");
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(!state.exists(), "no state file without a usable output");
    }
}
