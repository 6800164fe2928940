//! `nodewatch-export` against the real `ethereumetl` 2.4.2 on the same anvil
//! chain, byte for byte: `export_token_transfers`, `extract_token_transfers`
//! (CSV and JSON logs in, CSV and JSON out, `--values-as-strings`),
//! `extract_csv_column` and `extract_field`. See `export_common` for the
//! chain and its token-transfer corner cases.

#[allow(dead_code, unused_imports, unused_macros)]
use nodewatch_testkit as support;
use nodewatch_testkit::export as export_common;

use export_common::{args, blocks_and_transactions, etl, ours, receipts_and_logs, s, Fixture};
use support::etl::assert_files_identical;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_transfers_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let end = fx.head.to_string();
    // Logs to extract from, in both formats (written by ethereumetl itself).
    let hashes = fx.hashes_file();
    let (logs_csv, logs_json) = (fx.path("logs.csv"), fx.path("logs.json"));
    for logs in [&logs_csv, &logs_json] {
        etl(&receipts_and_logs(
            &fx.url,
            &hashes,
            None,
            Some(logs),
            &["-w", "1"],
        ))
        .await;
    }
    for input in [&logs_csv, &logs_json] {
        for ext in ["csv", "json"] {
            for extra in [None, Some("--values-as-strings")] {
                let tag = format!(
                    "{}_{}_{ext}",
                    input.extension().unwrap().to_str().unwrap(),
                    extra.is_some()
                );
                let (e, o) = (
                    fx.path(&format!("etl_tt_{tag}.{ext}")),
                    fx.path(&format!("our_tt_{tag}.{ext}")),
                );
                let mut a = args(&["extract_token_transfers", "-l", &s(input), "-o"]);
                a.extend(extra.map(str::to_owned));
                let (mut ae, mut ao) = (a.clone(), a);
                ae.insert(4, s(&e));
                ao.insert(4, s(&o));
                etl(&ae).await;
                ours(&ao);
                assert_files_identical(&e, &o);
            }
        }
    }
    for ext in ["csv", "json"] {
        let (e, o) = (
            fx.path(&format!("etl_ett.{ext}")),
            fx.path(&format!("our_ett.{ext}")),
        );
        let t_etl = etl(&args(&[
            "export_token_transfers",
            "-s",
            "0",
            "-e",
            &end,
            "-w",
            "1",
            "-p",
            &fx.url,
            "-o",
            &s(&e),
        ]))
        .await;
        let t_ours = ours(&args(&[
            "export_token_transfers",
            "-s",
            "0",
            "-e",
            &end,
            "-b",
            "4",
            "-w",
            "3",
            "-p",
            &fx.url,
            "-o",
            &s(&o),
        ]));
        assert_files_identical(&e, &o);
        eprintln!("FIGURE export-token-transfers-{ext}: blocks 0..={end}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}");
    }
    let rows = std::fs::read_to_string(fx.path("our_ett.csv"))
        .unwrap()
        .lines()
        .count();
    assert!(rows > 10, "the chain has token transfers ({rows} lines)");
    // Filtered by token address. ethereumetl 2.4.2's own `-t` crashes in web3 5 / eth-abi 2
    // with the parsimonious 0.10 it must be installed with (VisitationError while formatting
    // the filter), so the reference is its unfiltered export restricted to that token.
    let o = fx.path("our_ett_token.csv");
    let upper = fx.chain.token.to_uppercase().replace("0X", "0x");
    ours(&args(&[
        "export_token_transfers",
        "-s",
        "0",
        "-e",
        &end,
        "-p",
        &fx.url,
        "-t",
        &upper,
        "-t",
        "0x000000000000000000000000000000000000dead",
        "-o",
        &s(&o),
    ]));
    let reference = std::fs::read_to_string(fx.path("etl_ett.csv")).unwrap();
    let mut lines = reference.split_inclusive("\r\n");
    let mut expected: String = lines.next().unwrap().to_owned();
    expected.extend(lines.filter(|l| l.starts_with(&format!("{},", fx.chain.token))));
    assert!(
        expected.lines().count() > 5,
        "the fixture token has transfers"
    );
    assert_eq!(std::fs::read_to_string(&o).unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_csv_column_and_extract_field_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let (txs_csv, txs_json) = (fx.path("txs.csv"), fx.path("txs.json"));
    for out in [&txs_csv, &txs_json] {
        etl(&blocks_and_transactions(
            &fx.url,
            (0, fx.head),
            None,
            Some(out),
            &["-w", "1"],
        ))
        .await;
    }
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            args(&["extract_csv_column", "-i", &s(&txs_csv), "-c", "hash"]),
            "col_hash",
        ),
        (
            args(&["extract_csv_column", "-i", &s(&txs_csv), "-c", "to_address"]),
            "col_to",
        ),
        (
            args(&["extract_field", "-i", &s(&txs_csv), "-f", "input"]),
            "field_csv",
        ),
        (
            args(&["extract_field", "-i", &s(&txs_json), "-f", "hash"]),
            "field_json",
        ),
    ];
    for (a, tag) in cases {
        let (e, o) = (
            fx.path(&format!("etl_{tag}.txt")),
            fx.path(&format!("our_{tag}.txt")),
        );
        let mut ae = a.clone();
        ae.extend(["-o".to_owned(), s(&e)]);
        let mut ao = a;
        ao.extend(["-o".to_owned(), s(&o)]);
        etl(&ae).await;
        ours(&ao);
        assert_files_identical(&e, &o);
    }
    let hashes = std::fs::read_to_string(fx.path("our_col_hash.txt")).unwrap();
    assert_eq!(hashes.lines().collect::<Vec<_>>(), fx.tx_hashes);
}
