//! Test fixtures: real answers captured from anvil (foundry's dev node; see
//! `testdata/anvil/README.md`) and helpers that tamper with one value of an answer.

use serde_json::Value;

/// One captured answer: `fork` is "prague" or "london", `file` e.g. "block.json".
pub(crate) fn anvil(fork: &str, file: &str) -> Vec<u8> {
    let path = format!(
        "{}/testdata/anvil/{fork}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `json` with the value at JSON pointer `pointer` replaced by `value`.
pub(crate) fn set(json: &[u8], pointer: &str, value: Value) -> Vec<u8> {
    edit(json, |v| {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer}")) = value
    })
}

/// `json` changed by `f`.
pub(crate) fn edit(json: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(json).expect("fixture is JSON");
    f(&mut v);
    serde_json::to_vec(&v).expect("serializes")
}

/// `json` with the array element at `pointer` removed.
pub(crate) fn remove(json: &[u8], pointer: &str) -> Vec<u8> {
    let (parent, index) = pointer.rsplit_once('/').expect("pointer to an element");
    let index: usize = index.parse().expect("an index");
    edit(json, |v| {
        v.pointer_mut(parent)
            .and_then(Value::as_array_mut)
            .expect("an array")
            .remove(index);
    })
}
