//! `nodewatch-export stream -o postgresql://...?sslmode=...` against two throwaway PostgreSQL 15
//! servers, one with `ssl=on` and a certificate for `localhost` from a CA made here, one
//! without TLS: each libpq `sslmode` connects (or refuses) as libpq would, and the server's
//! connection log says whether the session it got was encrypted. Refusals are one line naming
//! the problem, exit 1 (a server that disagrees) or 2 (a URL that cannot work).

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;

use std::path::Path;
use std::process::Output;

use nodewatch_testkit::export::{exporter, s};
use support::anvil::Anvil;
use support::postgres::Postgres;
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

/// `stream` of block 0 to `url`, HOME pointing to an empty directory (no
/// `~/.postgresql/root.crt` to change libpq's defaults).
fn stream_block_0(node: &str, url: &str, scratch: &Path, name: &str) -> Output {
    let state = scratch.join(format!("{name}.txt"));
    exporter(&[
        "stream",
        "-p",
        node,
        "-o",
        url,
        "-l",
        &s(&state),
        "-s",
        "0",
        "--end-block",
        "0",
        "-e",
        "block",
        "--quiet",
    ])
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
