//! `nodewatch-export stream -o postgresql://...?sslmode=...` against two throwaway PostgreSQL 15
//! servers, one with `ssl=on` and a certificate for `localhost` from a CA made here, one
//! without TLS: each libpq `sslmode` connects (or refuses) as libpq would, and the server's
//! connection log says whether the session it got was encrypted. Refusals are one line naming
//! the problem, exit 1 (a server that disagrees) or 2 (a URL that cannot work).
//!
//! And the reconnect: a stream to PostgreSQL whose server is stopped (fast shutdown) while
//! the chain grows, then restarted on the same port and data directory, ends with every row
//! exactly once, equal to an uninterrupted stream's.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use nodewatch_testkit::export::stream::{read_state, spawn, wait_exit, wait_state};
use nodewatch_testkit::export::{args, exporter, ours, s, Fixture};
use serde_json::json;
use support::anvil::Anvil;
use support::chain::transfer_calldata;
use support::poll::wait_until;
use support::postgres::Postgres;
use support::rpc::call;
use support::tls::TestCa;

/// How a case must end.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Block 0 written over TLS.
    Encrypted,
    /// Block 0 written in plain text.
    Plain,
    /// Exit 1, the one line containing this.
    Refused(&'static str),
    /// Exit 2 (usage), the one line containing this.
    Usage(&'static str),
}

/// `stream -p node -o url -l state -s 0 --end-block end` plus `extra`.
fn stream_args(node: &str, url: &str, state: &Path, end: u64, extra: &[&str]) -> Vec<String> {
    let end = end.to_string();
    let mut all = args(&["stream", "-p", node, "-o", url, "-l", &s(state), "-s", "0"]);
    all.extend(args(&["--end-block", &end]));
    all.extend(args(extra));
    all
}

/// `stream` of block 0 to `url`, HOME pointing to an empty directory (no
/// `~/.postgresql/root.crt` to change libpq's defaults).
fn stream_block_0(node: &str, url: &str, scratch: &Path, name: &str) -> Output {
    let state = scratch.join(format!("{name}.txt"));
    exporter(&stream_args(
        node,
        url,
        &state,
        0,
        &["-e", "block", "--quiet"],
    ))
    .env("HOME", scratch)
    .output()
    .unwrap()
}

/// The server's "connection authorized" line for database `db` from nodewatch-export.
fn authorized_line(pg: &Postgres, db: &str) -> Option<String> {
    let needle = format!("database={db} application_name=nodewatch-export");
    pg.log_text()
        .lines()
        .find(|l| l.contains("connection authorized") && l.contains(&needle))
        .map(str::to_owned)
}

/// Rows in `blocks` (0 when the table was never created).
async fn block_rows(pg: &Postgres, db: &str) -> i64 {
    let client = pg.client(db).await;
    let exists: bool = client
        .query_one("SELECT to_regclass('blocks') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    if !exists {
        return 0;
    }
    client
        .query_one("SELECT count(*) FROM blocks", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sslmode_connects_or_refuses_as_libpq_does() {
    let Some(pg_bin) = support::tools::require_postgres() else {
        return;
    };
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let scratch = tempfile::tempdir().unwrap();
    let ca = TestCa::new("nodewatch test CA");
    let other_ca = TestCa::new("another CA");
    let ca_file = scratch.path().join("root.crt");
    let other_ca_file = scratch.path().join("other-root.crt");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    std::fs::write(&other_ca_file, &other_ca.cert_pem).unwrap();
    let tls_pg = Postgres::start_tls(&pg_bin, &ca.issue(&["localhost"])).await;
    let plain_pg = Postgres::start(&pg_bin).await;
    let (root, other_root) = (s(&ca_file), s(&other_ca_file));

    use Expect::*;
    let cases: Vec<(&Postgres, &str, String, Expect)> = vec![
        (&tls_pg, "127.0.0.1", "".into(), Encrypted),
        (&tls_pg, "127.0.0.1", "sslmode=require".into(), Encrypted),
        (
            &tls_pg,
            "127.0.0.1",
            format!("sslmode=require&sslrootcert={root}"),
            Encrypted,
        ),
        (
            &tls_pg,
            "localhost",
            format!("sslmode=verify-full&sslrootcert={root}"),
            Encrypted,
        ),
        // The certificate names localhost, not 127.0.0.1: only verify-full looks.
        (
            &tls_pg,
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={root}"),
            Encrypted,
        ),
        (
            &tls_pg,
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={root}"),
            Refused("certificate not valid for name \"127.0.0.1\""),
        ),
        (
            &tls_pg,
            "localhost",
            format!("sslmode=verify-full&sslrootcert={other_root}"),
            Refused("the server's TLS certificate is rejected (sslmode=verify-full"),
        ),
        // A root certificate makes require verify (libpq): this one is not the server's CA.
        (
            &tls_pg,
            "localhost",
            format!("sslmode=require&sslrootcert={other_root}"),
            Refused("UnknownIssuer"),
        ),
        // prefer: the TLS attempt fails verification, plain text is next.
        (
            &tls_pg,
            "localhost",
            format!("sslrootcert={other_root}"),
            Plain,
        ),
        (&tls_pg, "127.0.0.1", "sslmode=allow".into(), Plain),
        (&tls_pg, "127.0.0.1", "sslmode=disable".into(), Plain),
        (&plain_pg, "127.0.0.1", "".into(), Plain),
        (&plain_pg, "127.0.0.1", "sslmode=prefer".into(), Plain),
        (&plain_pg, "127.0.0.1", "sslmode=allow".into(), Plain),
        (
            &plain_pg,
            "127.0.0.1",
            "sslmode=require".into(),
            Refused("server does not support TLS but sslmode=require"),
        ),
        (
            &plain_pg,
            "localhost",
            format!("sslmode=verify-full&sslrootcert={root}"),
            Refused("server does not support TLS but sslmode=verify-full"),
        ),
        (
            &tls_pg,
            "127.0.0.1",
            "sslmode=verify-full".into(),
            Usage("sslmode=verify-full needs the server's root certificate"),
        ),
        (
            &tls_pg,
            "127.0.0.1",
            "sslmode=verify-ca&sslrootcert=/nonexistent/root.crt".into(),
            Usage("/nonexistent/root.crt"),
        ),
        (
            &tls_pg,
            "127.0.0.1",
            "sslmode=on".into(),
            Usage("invalid sslmode \"on\""),
        ),
    ];
    let mut seen = Vec::new();
    for (i, (pg, host, query, expect)) in cases.into_iter().enumerate() {
        let db = format!("case{i}");
        pg.create_database(&db).await;
        // ethereumetl's SQLAlchemy form, with the query after it.
        let mut url = format!("postgresql+pg8000://postgres@{host}:{}/{db}", pg.port);
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let out = stream_block_0(&node.url(), &url, scratch.path(), &db);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let blocks = block_rows(pg, &db).await;
        match expect {
            Encrypted | Plain => {
                assert!(out.status.success(), "{url}: {err}");
                assert_eq!(blocks, 1, "{url}: block 0 written");
                let line = authorized_line(pg, &db).unwrap_or_else(|| panic!("{url}: no log"));
                assert_eq!(
                    line.contains("SSL enabled"),
                    expect == Encrypted,
                    "{url}: {line}"
                );
            }
            Refused(says) | Usage(says) => {
                let code = if matches!(expect, Refused(_)) { 1 } else { 2 };
                assert_eq!(out.status.code(), Some(code), "{url}: {err}");
                assert!(err.contains(says), "{url}: {err}");
                assert_eq!(err.lines().count(), 1, "{url}: one line: {err}");
                assert_eq!(blocks, 0, "{url}: nothing written");
                eprint!("refused {url}: {err}");
            }
        }
        seen.push(format!("{query:?}@{host}: {expect:?}"));
    }
    eprintln!(
        "FIGURE stream-postgres-tls: {} sslmode cases as libpq: {}",
        seen.len(),
        seen.join("; ")
    );
}

const TABLES: [&str; 4] = ["blocks", "transactions", "logs", "token_transfers"];
/// Times the database is stopped and restarted under a running stream.
const OUTAGES: u64 = 3;
/// Blocks mined during each outage, and after the last.
const BLOCKS_PER_OUTAGE: u64 = 3;

/// Mines `n` blocks, each with an ERC-20 style token transfer and an ETH transfer (automine
/// off, then back on, as the fixture leaves it).
async fn mine_activity(f: &Fixture, n: u64) {
    let url = f.url.as_str();
    let accounts = &f.chain.accounts;
    call(url, "evm_setAutomine", json!([false])).await;
    for i in 0..n as usize {
        let (from, to) = (&accounts[i % 5], &accounts[5 + i % 4]);
        let calldata = transfer_calldata(to, 1000 + i as u64);
        for tx in [
            json!({"from": from, "to": f.chain.token, "data": calldata, "gas": "0x30000"}),
            json!({"from": to, "to": from, "value": format!("{:#x}", 7 + i), "gas": "0x5208"}),
        ] {
            call(url, "eth_sendTransaction", json!([tx])).await;
        }
        support::chain::mine(url, 1).await;
    }
    call(url, "evm_setAutomine", json!([true])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_stopped_and_restarted_mid_stream_ends_with_every_row_exactly_once() {
    let Some(pg_bin) = support::tools::require_postgres() else {
        return;
    };
    let Some(f) = Fixture::new().await else {
        return;
    };
    let mut pg = Postgres::start(&pg_bin).await;
    pg.create_database("live").await;
    pg.create_database("reference").await;
    let end = f.head + (OUTAGES + 1) * BLOCKS_PER_OUTAGE;
    let pg_url = |db: &str| format!("postgresql://postgres@127.0.0.1:{}/{db}", pg.port);
    let (live_url, reference_url) = (pg_url("live"), pg_url("reference"));
    let stream_args = |db: &str, url: &str| {
        let state = f.path(&format!("{db}.txt"));
        let one_block_rounds = ["-B", "1", "-b", "1", "-w", "1", "--period-seconds", "1"];
        stream_args(&f.url, url, &state, end, &one_block_rounds)
    };
    let (state, err) = (f.path("live.txt"), f.path("live.err"));
    let mut child = spawn(&stream_args("live", &live_url), &err);
    let retries = || {
        std::fs::read_to_string(&err)
            .unwrap()
            .matches("will retry")
            .count()
    };
    let mut stopped_after = Vec::new();
    for cycle in 0..OUTAGES {
        // Each outage a little later into a round than the last (the scenario's jitter).
        let from = read_state(&state).unwrap_or(-1);
        wait_state(&state, from + 2, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(13 * cycle)).await;
        pg.stop_fast();
        stopped_after.push(read_state(&state));
        mine_activity(&f, BLOCKS_PER_OUTAGE).await;
        let before = retries();
        wait_until(
            "the stream retrying its round",
            Duration::from_secs(30),
            async || retries() > before,
        )
        .await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the stream keeps going"
        );
        pg.restart().await;
    }
    mine_activity(&f, BLOCKS_PER_OUTAGE).await;
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "{log}");
    assert_eq!(read_state(&state), Some(end as i64));

    // The reference: an uninterrupted stream of the same blocks (export_postgres.rs shows
    // such a stream writes what ethereumetl's does and what the batch export holds).
    ours(&stream_args("reference", &reference_url));
    // Sorted rows, duplicates kept: equal means every row exactly once.
    let mut counted = Vec::new();
    for table in TABLES {
        let rows = pg.rows("live", table).await;
        assert_eq!(rows, pg.rows("reference", table).await, "{table}");
        counted.push((table, rows.len()));
    }
    assert_eq!(counted[0].1 as u64, end + 1, "every block");
    // The server ended the stream's session itself (fast shutdown), not at its leisure.
    let cut = pg
        .log_text()
        .matches("terminating connection due to administrator command")
        .count();
    assert!(cut as u64 >= OUTAGES, "{}", pg.log_text());
    let retried = retries();
    // Rounds cut inside BEGIN..COMMIT (not forced: where the jitter lands).
    let mid_transaction = log
        .lines()
        .filter(|l| {
            l.contains("will retry") && (l.contains("cannot write") || l.contains("cannot commit"))
        })
        .count();
    eprint!("the stream's log:\n{log}");
    eprintln!(
        "FIGURE stream-postgres-restart: {OUTAGES} outages (fast shutdown after blocks \
         {stopped_after:?}, {cut} session(s) cut, {BLOCKS_PER_OUTAGE} blocks mined during each), \
         {retried} failed rounds retried ({mid_transaction} cut inside a transaction); counts {counted:?} equal to an uninterrupted stream's"
    );
}
