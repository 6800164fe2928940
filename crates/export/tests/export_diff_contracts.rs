//! `export_contracts`, `extract_contracts`, `export_tokens` and
//! `extract_tokens` against ethereum-etl 2.4.2 (the Python 3.10 reference,
//! whose contract calls work) on the fixture chain plus the token corner
//! cases of `nodewatch_testkit::contracts`, byte for byte, CSV and JSON, with
//! other `-b`/`-w` than the reference. The inputs of the extract commands are
//! the reference's own export files. Also `get_keccak_hash`.

use nodewatch_testkit as support;

use std::path::PathBuf;

use support::contracts::{deploy_contracts, Contracts};
use support::etl::{assert_files_identical, read_csv};
use support::export::{args, ours, s, Fixture};
use support::reference::{require_ethereumetl310, run};

/// Every contract, the fixture's own token, an account without code, and one
/// token written upper-case and one without `0x` (exported as written).
fn address_list(fx: &Fixture, c: &Contracts) -> Vec<String> {
    let mut all = c.addresses();
    all.push(fx.chain.token.clone());
    all.push(fx.chain.accounts[1].clone());
    all.push(format!("0x{}", c.get("standard")[2..].to_uppercase()));
    all.push(c.get("bytes32")[2..].to_owned());
    all
}

/// Runs the reference with `-w 1` and ours with `ours_extra`; compares the outputs.
async fn compare(
    fx: &Fixture,
    etl: &PathBuf,
    tag: &str,
    a: &[String],
    ours_extra: &[&str],
) -> PathBuf {
    let (e, o) = (
        fx.path(&format!("etl_{tag}")),
        fx.path(&format!("our_{tag}")),
    );
    let mut ae = a.to_vec();
    ae.extend(args(&["-w", "1", "-o", &s(&e)]));
    let (t_etl, _) = run(etl, &ae).await;
    let mut ao = a.to_vec();
    ao.extend(args(ours_extra));
    ao.extend(args(&["-o", &s(&o)]));
    let t_ours = ours(&ao);
    assert_files_identical(&e, &o);
    eprintln!("FIGURE {tag}: ethereumetl {t_etl:?}, nodewatch-export {t_ours:?}");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_and_tokens_are_byte_identical() {
    let Some(fx) = Fixture::new().await else {
        return;
    };
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    let c = deploy_contracts(&fx.url, &fx.chain).await;
    let list = fx.path("addresses.txt");
    std::fs::write(&list, address_list(&fx, &c).join("\n") + "\n").unwrap();
    let p = ["-p", fx.url.as_str()];
    let end = support::rpc::block_number(&fx.url).await.to_string();
    let traces = fx.path("traces.csv");
    let mut a = args(&[
        "export_traces",
        "-s",
        "0",
        "-e",
        &end,
        "-w",
        "1",
        "-o",
        &s(&traces),
    ]);
    a.extend(args(&p));
    run(&etl, &a).await;
    let traces_json = fx.path("traces.json");
    a[8] = s(&traces_json);
    run(&etl, &a).await;

    for ext in ["csv", "json"] {
        let mut a = args(&["export_contracts", "-ca", &s(&list)]);
        a.extend(args(&p));
        compare(
            &fx,
            &etl,
            &format!("contracts.{ext}"),
            &a,
            &["-b", "3", "-w", "4"],
        )
        .await;
        let mut a = args(&["export_tokens", "-t", &s(&list)]);
        a.extend(args(&p));
        compare(&fx, &etl, &format!("tokens.{ext}"), &a, &["-w", "3"]).await;
        for input in [&traces, &traces_json] {
            let tag = format!("xc_{}.{ext}", input.extension().unwrap().to_str().unwrap());
            let a = args(&["extract_contracts", "-t", &s(input)]);
            let contracts = compare(&fx, &etl, &tag, &a, &["-b", "2"]).await;
            for extra in [None, Some("--values-as-strings")] {
                let mut a = args(&["extract_tokens", "-c", &s(&contracts)]);
                a.extend(args(&p));
                a.extend(extra.map(str::to_owned));
                let tag = format!("xt_{}_{}", extra.is_some(), tag);
                compare(&fx, &etl, &tag, &a, &["-w", "2"]).await;
            }
        }
    }
    // The outputs hold what the tests are about.
    let contracts = read_csv(&fx.path("our_contracts.csv"));
    let flags = |name: &str| {
        let row = contracts
            .iter()
            .find(|r| r["address"] == c.get(name))
            .unwrap();
        (row["is_erc20"].clone(), row["is_erc721"].clone())
    };
    assert_eq!(flags("standard"), ("True".into(), "False".into()));
    assert_eq!(flags("erc721"), ("False".into(), "True".into()));
    let tokens = read_csv(&fx.path("our_tokens.csv"));
    let field = |name: &str, col: &str| {
        tokens.iter().find(|r| r["address"] == c.get(name)).unwrap()[col].clone()
    };
    assert_eq!(field("bytes32", "symbol"), "MKR");
    assert_eq!(field("upper", "name"), "Upper Case");
    assert_eq!(field("odd", "name"), "Nul T\u{f6}k\u{e9}n \u{20ac}");
    assert_eq!(field("odd", "decimals"), "");
    assert_eq!(field("reverter", "total_supply"), "");
    let created = read_csv(&fx.path("our_xc_csv.csv"));
    assert!(created.len() >= 12, "{} created contracts", created.len());
    let tokens = read_csv(&fx.path("our_xt_false_xc_json.csv"));
    assert!(
        tokens.len() >= 6,
        "{} tokens among the created contracts",
        tokens.len()
    );
}

#[tokio::test]
async fn keccak_hash_is_byte_identical() {
    let Some(etl) = require_ethereumetl310() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for input in [
        None,
        Some("approve(address,uint256)"),
        Some("h\u{e9}llo \u{20ac}"),
        Some(""),
    ] {
        let mut a = args(&["get_keccak_hash"]);
        if let Some(i) = input {
            a.extend(args(&["-i", i]));
        }
        let (e, o) = (dir.path().join("etl.txt"), dir.path().join("our.txt"));
        let mut ae = a.clone();
        ae.extend(args(&["-o", &s(&e)]));
        run(&etl, &ae).await;
        a.extend(args(&["-o", &s(&o)]));
        ours(&a);
        assert_files_identical(&e, &o);
        assert_eq!(
            std::fs::read(&o).unwrap().len(),
            67,
            "0x + 64 hex digits + newline"
        );
    }
}
