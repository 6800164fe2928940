//! Blocks and their transactions (`eth_getBlockByNumber`) to the rows of
//! ethereum-etl's `blocks` and `transactions` exports.

use super::{field, hex_field, normalized_address};
use crate::error::ExportError;
use crate::pyvalue::PyValue;

/// Columns of the blocks export, in order.
pub const BLOCK_FIELDS: &[&str] = &[
    "number",
    "hash",
    "parent_hash",
    "nonce",
    "sha3_uncles",
    "logs_bloom",
    "transactions_root",
    "state_root",
    "receipts_root",
    "miner",
    "difficulty",
    "total_difficulty",
    "size",
    "extra_data",
    "gas_limit",
    "gas_used",
    "timestamp",
    "transaction_count",
    "base_fee_per_gas",
    "withdrawals_root",
    "withdrawals",
    "blob_gas_used",
    "excess_blob_gas",
];

/// Columns of the transactions export, in order.
pub const TRANSACTION_FIELDS: &[&str] = &[
    "hash",
    "nonce",
    "block_hash",
    "block_number",
    "transaction_index",
    "from_address",
    "to_address",
    "value",
    "gas",
    "gas_price",
    "input",
    "block_timestamp",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "transaction_type",
    "max_fee_per_blob_gas",
    "blob_versioned_hashes",
];

/// A mapped block: its row and the rows of its (full-object) transactions.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedBlock {
    /// Values in [`BLOCK_FIELDS`] order.
    pub block: Vec<PyValue>,
    /// One row per transaction object, values in [`TRANSACTION_FIELDS`] order.
    pub transactions: Vec<Vec<PyValue>>,
}

/// Maps one `eth_getBlockByNumber` result. `label` names the block in errors.
pub fn map_block(json: &PyValue, label: &str) -> Result<MappedBlock, ExportError> {
    if !matches!(json, PyValue::Dict(_)) {
        return Err(ExportError::Data(format!(
            "{label}: expected a block object, got a JSON {}",
            json.type_name()
        )));
    }
    let what = || label.to_owned();
    let hex = |key: &str| hex_field(json, key, &what);
    let timestamp = hex("timestamp")?;

    let (transactions, transaction_count) = match json.get("transactions") {
        None => (Vec::new(), PyValue::Int(0)),
        Some(PyValue::List(txs)) => {
            let mut rows = Vec::with_capacity(txs.len());
            for (i, tx) in txs.iter().enumerate() {
                if matches!(tx, PyValue::Dict(_)) {
                    rows.push(map_transaction(
                        tx,
                        &timestamp,
                        &format!("{label}, transaction {i}"),
                    )?);
                }
            }
            (rows, PyValue::Int(txs.len() as i128))
        }
        Some(other) => {
            return Err(ExportError::Data(format!(
                "{label}: \"transactions\" is a JSON {}, expected a list",
                other.type_name()
            )))
        }
    };
    let withdrawals = match json.get("withdrawals") {
        None => PyValue::List(Vec::new()),
        Some(PyValue::List(ws)) => PyValue::List(
            ws.iter()
                .enumerate()
                .map(|(i, w)| map_withdrawal(w, &format!("{label}, withdrawal {i}")))
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err(ExportError::Data(format!(
                "{label}: \"withdrawals\" is a JSON {}, expected a list",
                other.type_name()
            )))
        }
    };

    let block = vec![
        hex("number")?,
        field(json, "hash"),
        field(json, "parentHash"),
        field(json, "nonce"),
        field(json, "sha3Uncles"),
        field(json, "logsBloom"),
        field(json, "transactionsRoot"),
        field(json, "stateRoot"),
        field(json, "receiptsRoot"),
        normalized_address(&field(json, "miner")),
        hex("difficulty")?,
        hex("totalDifficulty")?,
        hex("size")?,
        field(json, "extraData"),
        hex("gasLimit")?,
        hex("gasUsed")?,
        timestamp,
        transaction_count,
        hex("baseFeePerGas")?,
        field(json, "withdrawalsRoot"),
        withdrawals,
        hex("blobGasUsed")?,
        hex("excessBlobGas")?,
    ];
    Ok(MappedBlock {
        block,
        transactions,
    })
}

fn map_withdrawal(w: &PyValue, label: &str) -> Result<PyValue, ExportError> {
    let what = || label.to_owned();
    let required = |key: &str| {
        w.get(key)
            .ok_or_else(|| ExportError::Data(format!("{label}: missing key {key:?}")))
    };
    required("index")?;
    required("validatorIndex")?;
    required("amount")?;
    let address = required("address")?.clone();
    Ok(PyValue::dict([
        ("index", hex_field(w, "index", &what)?),
        ("validator_index", hex_field(w, "validatorIndex", &what)?),
        ("address", address),
        ("amount", hex_field(w, "amount", &what)?),
    ]))
}

/// Maps one transaction object of a block.
pub fn map_transaction(
    tx: &PyValue,
    block_timestamp: &PyValue,
    label: &str,
) -> Result<Vec<PyValue>, ExportError> {
    let what = || label.to_owned();
    let hex = |key: &str| hex_field(tx, key, &what);
    let blob_hashes = match tx.get("blobVersionedHashes") {
        Some(list @ PyValue::List(_)) => list.clone(),
        _ => PyValue::List(Vec::new()),
    };
    Ok(vec![
        field(tx, "hash"),
        hex("nonce")?,
        field(tx, "blockHash"),
        hex("blockNumber")?,
        hex("transactionIndex")?,
        normalized_address(&field(tx, "from")),
        normalized_address(&field(tx, "to")),
        hex("value")?,
        hex("gas")?,
        hex("gasPrice")?,
        field(tx, "input"),
        block_timestamp.clone(),
        hex("maxFeePerGas")?,
        hex("maxPriorityFeePerGas")?,
        hex("type")?,
        hex("maxFeePerBlobGas")?,
        blob_hashes,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PyValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn block_with_hash_only_transactions_counts_them_but_maps_none() {
        let b = parse(
            r#"{"number":"0x10","miner":"0xABCD","timestamp":"0x5","transactions":["0x1","0x2"],
                "withdrawals":[{"index":"0x1","validatorIndex":"0x2","address":"0xAB","amount":"0x3"}]}"#,
        );
        let m = map_block(&b, "block 16").unwrap();
        assert_eq!(m.block.len(), BLOCK_FIELDS.len());
        assert_eq!(m.block[0], PyValue::Int(16));
        assert_eq!(m.block[9], PyValue::Str("0xabcd".into()));
        assert_eq!(m.block[17], PyValue::Int(2));
        assert_eq!(m.block[18], PyValue::None, "missing baseFeePerGas is None");
        assert_eq!(
            m.block[20],
            PyValue::List(vec![PyValue::dict([
                ("index", PyValue::Int(1)),
                ("validator_index", PyValue::Int(2)),
                ("address", "0xAB".into()),
                ("amount", PyValue::Int(3)),
            ])])
        );
        assert!(m.transactions.is_empty());
    }

    #[test]
    fn transaction_fields_follow_ethereum_etl() {
        let b = parse(
            r#"{"number":"0x1","timestamp":"0x64","transactions":[
                {"hash":"0xh","nonce":"0x0","blockHash":"0xb","blockNumber":"0x1","transactionIndex":"0x0",
                 "from":"0xAA","to":null,"value":"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                 "gas":"0x5208","gasPrice":"0x1","input":"0x","type":"0x3","maxFeePerBlobGas":"0x2",
                 "blobVersionedHashes":["0x01aa","0x01bb"]}]}"#,
        );
        let m = map_block(&b, "block 1").unwrap();
        let tx = &m.transactions[0];
        assert_eq!(tx.len(), TRANSACTION_FIELDS.len());
        assert_eq!(tx[5], PyValue::Str("0xaa".into()));
        assert_eq!(tx[6], PyValue::None);
        assert!(matches!(&tx[7], PyValue::BigInt(s) if s.starts_with("11579208923731619542357")));
        assert_eq!(tx[11], PyValue::Int(100));
        assert_eq!(tx[12], PyValue::None);
        assert_eq!(tx[14], PyValue::Int(3));
        assert_eq!(
            tx[16],
            PyValue::List(vec!["0x01aa".into(), "0x01bb".into()])
        );
    }

    #[test]
    fn non_string_quantities_are_reported_not_panicked_on() {
        let err = map_block(&parse(r#"{"number":16}"#), "block 16").unwrap_err();
        assert!(err.to_string().contains("\"number\""), "{err}");
        assert!(map_block(&parse("[]"), "block 1").is_err());
    }
}
