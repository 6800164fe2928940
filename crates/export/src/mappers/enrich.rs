//! The items `ethereumetl stream` prints: ethereum-etl's `enrich_*` joins
//! (transactions with their receipts; logs, token transfers, traces,
//! contracts and tokens with their block), and the `item_id` /
//! `item_timestamp` keys it appends. Items are dicts whose key order is
//! ethereum-etl's, so `json.dumps` of them matches byte for byte.

use super::blocks::{MappedBlock, BLOCK_FIELDS, TRANSACTION_FIELDS};
use super::contracts::CONTRACT_FIELDS;
use super::receipts::{MappedReceipt, LOG_FIELDS, RECEIPT_FIELDS};
use super::token_transfers::TOKEN_TRANSFER_FIELDS;
use super::tokens::TOKEN_FIELDS;
use super::traces::TRACE_FIELDS;
use crate::error::ExportError;
use crate::pyfmt::py_str;
use crate::pyvalue::PyValue;

/// The value of column `name` in a row laid out as `fields`.
fn col(fields: &[&str], row: &[PyValue], name: &str) -> PyValue {
    fields
        .iter()
        .position(|f| *f == name)
        .and_then(|i| row.get(i))
        .cloned()
        .unwrap_or(PyValue::None)
}

/// A block item: `{"type": "block", <block_to_dict fields>}`.
pub fn block_item(block: &[PyValue]) -> Vec<(String, PyValue)> {
    let mut item = vec![("type".to_owned(), PyValue::from("block"))];
    item.extend(
        BLOCK_FIELDS
            .iter()
            .zip(block)
            .map(|(k, v)| (k.to_string(), v.clone())),
    );
    item
}

/// `enrich_transactions`: one transaction joined with its receipt.
pub fn transaction_item(tx: &[PyValue], receipt: &[PyValue]) -> Vec<(String, PyValue)> {
    const LEFT: &[&str] = &[
        "hash",
        "nonce",
        "transaction_index",
        "from_address",
        "to_address",
        "value",
        "gas",
        "gas_price",
        "input",
        "block_timestamp",
        "block_number",
        "block_hash",
        "max_fee_per_gas",
        "max_priority_fee_per_gas",
        "transaction_type",
        "max_fee_per_blob_gas",
        "blob_versioned_hashes",
    ];
    const RIGHT: &[&str] = &[
        "cumulative_gas_used",
        "gas_used",
        "contract_address",
        "root",
        "status",
        "effective_gas_price",
        "l1_fee",
        "l1_gas_used",
        "l1_gas_price",
        "l1_fee_scalar",
        "blob_gas_price",
        "blob_gas_used",
    ];
    let mut item = vec![("type".to_owned(), PyValue::from("transaction"))];
    item.extend(
        LEFT.iter()
            .map(|k| (k.to_string(), col(TRANSACTION_FIELDS, tx, k))),
    );
    item.extend(
        RIGHT
            .iter()
            .map(|k| (format!("receipt_{k}"), col(RECEIPT_FIELDS, receipt, k))),
    );
    item
}

/// `enrich_logs` / `enrich_token_transfers`: an item with its block's
/// timestamp and hash appended.
fn with_block(
    kind: &str,
    fields: &[&str],
    row: &[PyValue],
    left: &[&str],
    block: &[PyValue],
) -> Vec<(String, PyValue)> {
    let mut item = vec![("type".to_owned(), PyValue::from(kind))];
    item.extend(left.iter().map(|k| (k.to_string(), col(fields, row, k))));
    item.push((
        "block_timestamp".into(),
        col(BLOCK_FIELDS, block, "timestamp"),
    ));
    item.push(("block_hash".into(), col(BLOCK_FIELDS, block, "hash")));
    item
}

/// A log item.
pub fn log_item(log: &[PyValue], block: &[PyValue]) -> Vec<(String, PyValue)> {
    const LEFT: &[&str] = &[
        "log_index",
        "transaction_hash",
        "transaction_index",
        "address",
        "data",
        "topics",
        "block_number",
    ];
    with_block("log", LOG_FIELDS, log, LEFT, block)
}

/// A token-transfer item.
pub fn token_transfer_item(transfer: &[PyValue], block: &[PyValue]) -> Vec<(String, PyValue)> {
    const LEFT: &[&str] = &[
        "token_address",
        "from_address",
        "to_address",
        "value",
        "transaction_hash",
        "log_index",
        "block_number",
    ];
    with_block(
        "token_transfer",
        TOKEN_TRANSFER_FIELDS,
        transfer,
        LEFT,
        block,
    )
}

/// `enrich_traces`: a trace (a [`TRACE_FIELDS`] row and its `trace_index` in the block).
pub fn trace_item(
    trace: &[PyValue],
    trace_index: usize,
    block: &[PyValue],
) -> Vec<(String, PyValue)> {
    const LEFT: &[&str] = &[
        "transaction_index",
        "from_address",
        "to_address",
        "value",
        "input",
        "output",
        "trace_type",
        "call_type",
        "reward_type",
        "gas",
        "gas_used",
        "subtraces",
        "trace_address",
        "error",
        "status",
        "transaction_hash",
        "block_number",
        "trace_id",
        "trace_index",
    ];
    let mut item = with_block("trace", TRACE_FIELDS, trace, LEFT, block);
    if let Some((_, v)) = item.iter_mut().find(|(k, _)| k == "trace_index") {
        *v = PyValue::Int(trace_index as i128);
    }
    item
}

/// `enrich_contracts`: a [`CONTRACT_FIELDS`] row.
pub fn contract_item(contract: &[PyValue], block: &[PyValue]) -> Vec<(String, PyValue)> {
    const LEFT: &[&str] = &[
        "address",
        "bytecode",
        "function_sighashes",
        "is_erc20",
        "is_erc721",
        "block_number",
    ];
    with_block("contract", CONTRACT_FIELDS, contract, LEFT, block)
}

/// `enrich_tokens`: a [`TOKEN_FIELDS`] row.
pub fn token_item(token: &[PyValue], block: &[PyValue]) -> Vec<(String, PyValue)> {
    const LEFT: &[&str] = &[
        "address",
        "symbol",
        "name",
        "decimals",
        "total_supply",
        "block_number",
    ];
    with_block("token", TOKEN_FIELDS, token, LEFT, block)
}

/// The block a row belongs to, by its `block_number`.
pub fn find_block<'a>(
    blocks: &'a [MappedBlock],
    number: &PyValue,
) -> Result<&'a MappedBlock, ExportError> {
    blocks
        .iter()
        .find(|b| b.block.first() == Some(number))
        .ok_or_else(|| ExportError::Data(format!("no block {} in this sync round", py_str(number))))
}

/// The receipt of transaction `hash`.
pub fn find_receipt<'a>(
    receipts: &'a [MappedReceipt],
    hash: &PyValue,
) -> Result<&'a MappedReceipt, ExportError> {
    receipts
        .iter()
        .find(|r| r.receipt.first() == Some(hash))
        .ok_or_else(|| ExportError::Data(format!("no receipt for transaction {}", py_str(hash))))
}

/// Appends ethereum-etl's `item_id` and `item_timestamp` to an item.
pub fn add_id_and_timestamp(item: &mut Vec<(String, PyValue)>) {
    let get = |key: &str| {
        item.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or(PyValue::None)
    };
    let kind = get("type");
    let kind = kind.as_str().unwrap_or("");
    let id_parts: Option<Vec<PyValue>> = match kind {
        "block" | "transaction" => Some(vec![get("hash")]),
        "log" | "token_transfer" => Some(vec![get("transaction_hash"), get("log_index")]),
        "trace" => Some(vec![get("trace_id")]),
        "contract" | "token" => Some(vec![get("block_number"), get("address")]),
        _ => None,
    };
    let item_id = match id_parts {
        Some(parts) if parts.iter().all(|p| !p.is_none()) => {
            let mut id = kind.to_owned();
            for p in parts {
                id.push('_');
                id.push_str(&py_str(&p));
            }
            PyValue::Str(id)
        }
        _ => PyValue::None,
    };
    let ts = if kind == "block" {
        get("timestamp")
    } else {
        get("block_timestamp")
    };
    let item_timestamp = match ts {
        PyValue::Int(t) => i64::try_from(t).map_or(PyValue::None, |t| PyValue::Str(rfc3339_utc(t))),
        _ => PyValue::None,
    };
    item.push(("item_id".into(), item_id));
    item.push(("item_timestamp".into(), item_timestamp));
}

/// `datetime.utcfromtimestamp(t).isoformat() + "Z"` for whole seconds.
pub fn rfc3339_utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_python_isoformat() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn ids_follow_ethereum_etl() {
        let mut item = vec![
            ("type".to_owned(), PyValue::from("log")),
            ("transaction_hash".to_owned(), PyValue::from("0xab")),
            ("log_index".to_owned(), PyValue::Int(3)),
            ("block_timestamp".to_owned(), PyValue::Int(1_700_000_012)),
        ];
        add_id_and_timestamp(&mut item);
        assert_eq!(item[4], ("item_id".to_owned(), PyValue::from("log_0xab_3")));
        assert_eq!(
            item[5],
            (
                "item_timestamp".to_owned(),
                PyValue::from("2023-11-14T22:13:32Z")
            )
        );
        let mut token = vec![
            ("type".to_owned(), PyValue::from("token")),
            ("address".to_owned(), PyValue::from("0xcd")),
            ("block_number".to_owned(), PyValue::Int(7)),
        ];
        add_id_and_timestamp(&mut token);
        assert_eq!(token[3].1, PyValue::from("token_7_0xcd"));
        let mut trace = vec![
            ("type".to_owned(), PyValue::from("trace")),
            ("trace_id".to_owned(), PyValue::from("call_0xab_0_1")),
        ];
        add_id_and_timestamp(&mut trace);
        assert_eq!(trace[2].1, PyValue::from("trace_call_0xab_0_1"));
        let mut nameless = vec![("type".to_owned(), PyValue::from("block"))];
        add_id_and_timestamp(&mut nameless);
        assert_eq!(nameless[1].1, PyValue::None);
    }
}
