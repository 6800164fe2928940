//! Transaction receipts (`eth_getTransactionReceipt`) and their logs to the
//! rows of ethereum-etl's `receipts` and `logs` exports.

use super::{field, hex_field, normalized_address};
use crate::error::ExportError;
use crate::hexnum::to_float_or_none;
use crate::pyvalue::PyValue;

/// Columns of the receipts export, in order.
pub const RECEIPT_FIELDS: &[&str] = &[
    "transaction_hash",
    "transaction_index",
    "block_hash",
    "block_number",
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

/// Columns of the logs export, in order.
pub const LOG_FIELDS: &[&str] = &[
    "log_index",
    "transaction_hash",
    "transaction_index",
    "block_hash",
    "block_number",
    "address",
    "data",
    "topics",
];

/// A mapped receipt: its row and the rows of its logs.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedReceipt {
    /// Values in [`RECEIPT_FIELDS`] order.
    pub receipt: Vec<PyValue>,
    /// Values in [`LOG_FIELDS`] order, one row per log.
    pub logs: Vec<Vec<PyValue>>,
}

/// Maps one receipt object; `label` names it in errors.
pub fn map_receipt(json: &PyValue, label: &str) -> Result<MappedReceipt, ExportError> {
    if !matches!(json, PyValue::Dict(_)) {
        return Err(ExportError::Data(format!(
            "{label}: expected a receipt object, got a JSON {}",
            json.type_name()
        )));
    }
    let what = || label.to_owned();
    let hex = |key: &str| hex_field(json, key, &what);
    let logs = match json.get("logs") {
        None => Vec::new(),
        Some(PyValue::List(logs)) => logs
            .iter()
            .enumerate()
            .map(|(i, log)| map_log(log, &format!("{label}, log {i}")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ExportError::Data(format!(
                "{label}: \"logs\" is a JSON {}, expected a list",
                other.type_name()
            )))
        }
    };
    let receipt = vec![
        field(json, "transactionHash"),
        hex("transactionIndex")?,
        field(json, "blockHash"),
        hex("blockNumber")?,
        hex("cumulativeGasUsed")?,
        hex("gasUsed")?,
        normalized_address(&field(json, "contractAddress")),
        field(json, "root"),
        hex("status")?,
        hex("effectiveGasPrice")?,
        hex("l1Fee")?,
        hex("l1GasUsed")?,
        hex("l1GasPrice")?,
        to_float_or_none(&field(json, "l1FeeScalar")),
        hex("blobGasPrice")?,
        hex("blobGasUsed")?,
    ];
    Ok(MappedReceipt { receipt, logs })
}

/// Maps one log object of a receipt (or of `eth_getLogs`).
pub fn map_log(log: &PyValue, label: &str) -> Result<Vec<PyValue>, ExportError> {
    if !matches!(log, PyValue::Dict(_)) {
        return Err(ExportError::Data(format!(
            "{label}: expected a log object, got a JSON {}",
            log.type_name()
        )));
    }
    let what = || label.to_owned();
    let hex = |key: &str| hex_field(log, key, &what);
    Ok(vec![
        hex("logIndex")?,
        field(log, "transactionHash"),
        hex("transactionIndex")?,
        field(log, "blockHash"),
        hex("blockNumber")?,
        field(log, "address"),
        field(log, "data"),
        field(log, "topics"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_and_log_fields_follow_ethereum_etl() {
        let r: PyValue = serde_json::from_str(
            r#"{"transactionHash":"0xt","transactionIndex":"0x1","blockHash":"0xb","blockNumber":"0x2",
                "cumulativeGasUsed":"0x10","gasUsed":"0x8","contractAddress":"0xABC","status":"0x1",
                "effectiveGasPrice":"0x3b9aca00","l1FeeScalar":"0.684","blobGasPrice":"0x1",
                "logs":[{"logIndex":"0x0","transactionHash":"0xt","transactionIndex":"0x1","blockHash":"0xb",
                         "blockNumber":"0x2","address":"0xDeF","data":"0x","topics":["0xAA"]}]}"#,
        )
        .unwrap();
        let m = map_receipt(&r, "transaction 0xt").unwrap();
        assert_eq!(m.receipt.len(), RECEIPT_FIELDS.len());
        assert_eq!(m.receipt[6], PyValue::Str("0xabc".into()));
        assert_eq!(m.receipt[7], PyValue::None);
        assert_eq!(m.receipt[9], PyValue::Int(1_000_000_000));
        assert_eq!(m.receipt[13], PyValue::Float(0.684));
        assert_eq!(m.logs.len(), 1);
        assert_eq!(
            m.logs[0][5],
            PyValue::Str("0xDeF".into()),
            "log address is not lower-cased"
        );
        assert_eq!(m.logs[0][7], PyValue::List(vec!["0xAA".into()]));
    }
}
