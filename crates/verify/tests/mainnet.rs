//! Real mainnet blocks of every era (`tests/fixtures/<dir>/`, see SOURCES.md there) verify,
//! and a copy with one value changed fails with the check that guards that value.

use std::path::PathBuf;

use nodewatch_verify::{
    verify_block, verify_block_receipts, Check, Checks, VerifiedBlock, VerifiedReceipts, Wrong,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture directory, with its block and (when present) receipts.
fn fixtures() -> Vec<(String, Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir()).expect("fixtures dir") {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let block = std::fs::read(path.join("block.json")).expect("block.json");
        let receipts = std::fs::read(path.join("receipts.json")).ok();
        out.push((name, block, receipts));
    }
    out.sort();
    out
}

fn verify(
    block: &[u8],
    receipts: Option<&[u8]>,
    checks: &Checks,
) -> Result<(VerifiedBlock, Option<VerifiedReceipts>), Wrong> {
    let b = verify_block(block, checks)?;
    let r = receipts
        .map(|r| verify_block_receipts(r, &b.header, Some(&b), checks))
        .transpose()?;
    Ok((b, r))
}

#[test]
fn every_era_verifies_with_every_check() {
    let all = fixtures();
    assert!(
        all.len() >= 7,
        "expected the era fixtures, found {}",
        all.len()
    );
    for (name, block, receipts) in &all {
        let (b, r) = verify(block, receipts.as_deref(), &Checks::all())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(b.skipped.is_empty(), "{name}: {:?}", b.skipped);
        if let Some(r) = r {
            assert_eq!(r.len(), b.transaction_count, "{name}");
        }
    }
}

// === tampering ===

use serde_json::{json, Value};

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The check that fails for `block`/`receipts` (default checks).
fn failing(name: &str, what: &str, block: &Value, receipts: Option<&Value>) -> Check {
    let receipts = receipts.map(bytes);
    match verify(&bytes(block), receipts.as_deref(), &Checks::default()) {
        Ok(_) => panic!("{name}: {what}: the tampered copy verified"),
        Err(wrong) => wrong.check,
    }
}

/// A hex quantity one higher.
fn bump(v: &Value) -> Value {
    let n = u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    json!(format!("{:#x}", n + 1))
}

/// A hex data string with its last nibble flipped (or one byte when empty).
fn flip(v: &Value) -> Value {
    let s = v.as_str().unwrap();
    if s.len() <= 2 {
        return json!("0x00");
    }
    let last = u8::from_str_radix(&s[s.len() - 1..], 16).unwrap() ^ 1;
    json!(format!("{}{last:x}", &s[..s.len() - 1]))
}

#[test]
fn tampered_blocks_fail_with_the_check_that_guards_the_value() {
    for (name, block, _) in fixtures() {
        let b = parse(&block);
        let mut t = b.clone();
        t["gasLimit"] = bump(&t["gasLimit"]);
        assert_eq!(
            failing(&name, "header gasLimit", &t, None),
            Check::HeaderHash
        );
        let mut t = b.clone();
        t["transactions"][0]["nonce"] = bump(&t["transactions"][0]["nonce"]);
        assert_eq!(failing(&name, "tx nonce", &t, None), Check::TransactionHash);
        let mut t = b.clone();
        t["transactions"][0]["input"] = flip(&t["transactions"][0]["input"]);
        assert_eq!(failing(&name, "tx input", &t, None), Check::TransactionHash);
        let mut t = b.clone();
        t["transactions"].as_array_mut().unwrap().pop();
        assert_eq!(
            failing(&name, "drop a tx", &t, None),
            Check::TransactionsRoot
        );
        let mut t = b.clone();
        t["transactions"][1]["transactionIndex"] = json!("0x0");
        assert_eq!(
            failing(&name, "tx transactionIndex", &t, None),
            Check::Position
        );
        if b["withdrawals"].as_array().is_some_and(|w| !w.is_empty()) {
            let mut t = b.clone();
            t["withdrawals"][0]["amount"] = bump(&t["withdrawals"][0]["amount"]);
            assert_eq!(
                failing(&name, "withdrawal amount", &t, None),
                Check::WithdrawalsRoot
            );
        }
    }
}

/// The first receipt with exactly one log (dropping it changes its bloom for sure).
fn one_log_receipt(receipts: &Value) -> Option<usize> {
    receipts
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r["logs"].as_array().unwrap().len() == 1)
}

/// The first receipt with logs.
fn with_logs(receipts: &Value) -> usize {
    receipts
        .as_array()
        .unwrap()
        .iter()
        .position(|r| !r["logs"].as_array().unwrap().is_empty())
        .expect("a receipt with logs")
}

#[test]
fn tampered_receipts_fail_with_the_check_that_guards_the_value() {
    for (name, block, receipts) in fixtures() {
        let Some(receipts) = receipts else { continue };
        let (b, r) = (parse(&block), parse(&receipts));
        let case = |what: &str, change: &dyn Fn(&mut Value)| {
            let mut t = r.clone();
            change(&mut t);
            failing(&name, what, &b, Some(&t))
        };
        let l = with_logs(&r);
        assert_eq!(
            case("log data", &|t| t[l]["logs"][0]["data"] =
                flip(&t[l]["logs"][0]["data"])),
            Check::ReceiptsRoot
        );
        let drop_log = |i: usize| {
            move |t: &mut Value| {
                t[i]["logs"].as_array_mut().unwrap().pop();
            }
        };
        match one_log_receipt(&r) {
            Some(one) => assert_eq!(case("drop a log", &drop_log(one)), Check::ReceiptBloom),
            // The remaining logs may set the same bloom bits: then only the root can tell.
            None => assert!(matches!(
                case("drop a log", &drop_log(l)),
                Check::ReceiptBloom | Check::ReceiptsRoot
            )),
        }
        assert_eq!(
            case("log topic", &|t| t[l]["logs"][0]["topics"][0] =
                flip(&t[l]["logs"][0]["topics"][0])),
            Check::ReceiptBloom
        );
        assert_eq!(
            case("logIndex", &|t| t[l]["logs"][0]["logIndex"] =
                bump(&t[l]["logs"][0]["logIndex"])),
            Check::Position
        );
        assert_eq!(
            case("log blockNumber", &|t| t[l]["logs"][0]["blockNumber"] =
                bump(&t[l]["logs"][0]["blockNumber"])),
            Check::Position
        );
        let status = if r[0]["status"].is_string() {
            "status"
        } else {
            "root"
        };
        let change_status = |t: &mut Value| {
            t[0][status] = if status == "status" {
                json!(if t[0]["status"] == "0x1" {
                    "0x0"
                } else {
                    "0x1"
                })
            } else {
                flip(&t[0]["root"])
            }
        };
        assert_eq!(
            case("receipt status/root", &change_status),
            Check::ReceiptsRoot
        );
        assert_eq!(
            case("cumulativeGasUsed", &|t| t[0]["cumulativeGasUsed"] =
                bump(&t[0]["cumulativeGasUsed"])),
            Check::ReceiptsRoot
        );
        assert_eq!(
            case("gasUsed", &|t| t[0]["gasUsed"] = bump(&t[0]["gasUsed"])),
            Check::Receipt
        );
        assert_eq!(
            case("drop a receipt", &|t| {
                t.as_array_mut().unwrap().pop();
            }),
            Check::Count
        );
        assert_eq!(
            case("transactionHash", &|t| t[0]["transactionHash"] =
                flip(&t[0]["transactionHash"])),
            Check::Position
        );
        assert_eq!(
            case("blockHash", &|t| t[0]["blockHash"] =
                flip(&t[0]["blockHash"])),
            Check::Position
        );
        if r[0]["effectiveGasPrice"].is_string() {
            assert_eq!(
                case("effectiveGasPrice", &|t| t[0]["effectiveGasPrice"] =
                    bump(&t[0]["effectiveGasPrice"])),
                Check::Receipt
            );
        }
        if r[0]["from"].is_string() {
            assert_eq!(
                case("from", &|t| t[0]["from"] = flip(&t[0]["from"])),
                Check::Receipt
            );
        }
        let creation = r
            .as_array()
            .unwrap()
            .iter()
            .position(|x| x["contractAddress"].is_string());
        if let Some(c) = creation {
            assert_eq!(
                case("contractAddress", &|t| t[c]["contractAddress"] =
                    flip(&t[c]["contractAddress"])),
                Check::Receipt
            );
        }
    }
}
