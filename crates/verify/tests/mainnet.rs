//! Real mainnet blocks of every era (`tests/fixtures/<dir>/`, see SOURCES.md there) verify,
//! and a copy with one value changed fails with the check that guards that value.

use std::path::PathBuf;

use nodewatch_verify::{verify_block, verify_block_receipts, Check, Checks, VerifiedBlock, VerifiedReceipts, Wrong};

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

fn verify(block: &[u8], receipts: Option<&[u8]>, checks: &Checks) -> Result<(VerifiedBlock, Option<VerifiedReceipts>), Wrong> {
    let b = verify_block(block, checks)?;
    let r = receipts.map(|r| verify_block_receipts(r, &b.header, Some(&b), checks)).transpose()?;
    Ok((b, r))
}

#[test]
fn every_era_verifies_with_every_check() {
    let all = fixtures();
    assert!(all.len() >= 7, "expected the era fixtures, found {}", all.len());
    for (name, block, receipts) in &all {
        let (b, r) = verify(block, receipts.as_deref(), &Checks::all()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(b.skipped.is_empty(), "{name}: {:?}", b.skipped);
        if let Some(r) = r {
            assert_eq!(r.len(), b.transaction_count, "{name}");
        }
    }
}
