//! The JSON-RPC shapes this crate reads, as borrowed serde structs: every hex field is a
//! `&str` into the answer's bytes (decoded later, field by field, so a bad one is named),
//! unknown fields (`totalDifficulty`, `size`, chains' own) are ignored.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// An `eth_getBlockBy*` result object, full or hashes-only.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcBlock<'a> {
    pub(crate) hash: Option<&'a str>,
    pub(crate) number: Option<&'a str>,
    pub(crate) parent_hash: Option<&'a str>,
    pub(crate) sha3_uncles: Option<&'a str>,
    pub(crate) miner: Option<&'a str>,
    pub(crate) state_root: Option<&'a str>,
    pub(crate) transactions_root: Option<&'a str>,
    pub(crate) receipts_root: Option<&'a str>,
    pub(crate) logs_bloom: Option<&'a str>,
    pub(crate) difficulty: Option<&'a str>,
    pub(crate) gas_limit: Option<&'a str>,
    pub(crate) gas_used: Option<&'a str>,
    pub(crate) timestamp: Option<&'a str>,
    pub(crate) extra_data: Option<&'a str>,
    pub(crate) mix_hash: Option<&'a str>,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) base_fee_per_gas: Option<&'a str>,
    pub(crate) withdrawals_root: Option<&'a str>,
    pub(crate) blob_gas_used: Option<&'a str>,
    pub(crate) excess_blob_gas: Option<&'a str>,
    pub(crate) parent_beacon_block_root: Option<&'a str>,
    pub(crate) requests_hash: Option<&'a str>,
    pub(crate) block_access_list_hash: Option<&'a str>,
    pub(crate) slot_number: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) transactions: Vec<TxItem<'a>>,
    #[serde(borrow)]
    pub(crate) withdrawals: Option<Vec<RpcWithdrawal<'a>>>,
}

/// One entry of a block's `transactions`: a hash, or the full object.
pub(crate) enum TxItem<'a> {
    /// A hashes-only block (the hash itself is not verifiable from the header).
    Hash,
    /// A full-transactions block.
    Full(Box<RpcTx<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for TxItem<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ItemVisitor<'a> {
            type Value = TxItem<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a transaction hash or a transaction object")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(TxItem::Hash)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let tx = RpcTx::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TxItem::Full(Box::new(tx)))
            }
        }
        d.deserialize_any(ItemVisitor(std::marker::PhantomData))
    }
}

/// A transaction object (in a block, or from `eth_getTransactionBy*`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcTx<'a> {
    pub(crate) hash: Option<&'a str>,
    pub(crate) block_hash: Option<&'a str>,
    pub(crate) block_number: Option<&'a str>,
    pub(crate) transaction_index: Option<&'a str>,
    #[serde(rename = "type")]
    pub(crate) tx_type: Option<&'a str>,
    pub(crate) from: Option<&'a str>,
    pub(crate) to: Option<&'a str>,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) gas: Option<&'a str>,
    pub(crate) gas_price: Option<&'a str>,
    pub(crate) max_fee_per_gas: Option<&'a str>,
    pub(crate) max_priority_fee_per_gas: Option<&'a str>,
    pub(crate) max_fee_per_blob_gas: Option<&'a str>,
    pub(crate) value: Option<&'a str>,
    pub(crate) input: Option<&'a str>,
    pub(crate) chain_id: Option<&'a str>,
    #[serde(borrow)]
    pub(crate) access_list: Option<Vec<RpcAccess<'a>>>,
    #[serde(borrow)]
    pub(crate) blob_versioned_hashes: Option<Vec<&'a str>>,
    #[serde(borrow)]
    pub(crate) authorization_list: Option<Vec<RpcAuthorization<'a>>>,
    pub(crate) v: Option<&'a str>,
    pub(crate) r: Option<&'a str>,
    pub(crate) s: Option<&'a str>,
    pub(crate) y_parity: Option<&'a str>,
}

/// One access-list entry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcAccess<'a> {
    pub(crate) address: &'a str,
    #[serde(default, borrow)]
    pub(crate) storage_keys: Vec<&'a str>,
}

/// One EIP-7702 authorization (signed).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcAuthorization<'a> {
    pub(crate) chain_id: &'a str,
    pub(crate) address: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) y_parity: Option<&'a str>,
    pub(crate) v: Option<&'a str>,
    pub(crate) r: &'a str,
    pub(crate) s: &'a str,
}

/// One withdrawal (amount in gwei).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcWithdrawal<'a> {
    pub(crate) index: &'a str,
    pub(crate) validator_index: &'a str,
    pub(crate) address: &'a str,
    pub(crate) amount: &'a str,
}

/// A receipt (`eth_getBlockReceipts` element, or `eth_getTransactionReceipt` result).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcReceipt<'a> {
    pub(crate) transaction_hash: Option<&'a str>,
    pub(crate) transaction_index: Option<&'a str>,
    pub(crate) block_hash: Option<&'a str>,
    pub(crate) block_number: Option<&'a str>,
    #[serde(rename = "type")]
    pub(crate) tx_type: Option<&'a str>,
    pub(crate) from: Option<&'a str>,
    /// `None`: left out (old nodes); `Some(None)`: null (a creation).
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) to: Option<Option<&'a str>>,
    pub(crate) status: Option<&'a str>,
    pub(crate) root: Option<&'a str>,
    pub(crate) cumulative_gas_used: Option<&'a str>,
    pub(crate) gas_used: Option<&'a str>,
    pub(crate) effective_gas_price: Option<&'a str>,
    pub(crate) contract_address: Option<&'a str>,
    pub(crate) blob_gas_used: Option<&'a str>,
    pub(crate) blob_gas_price: Option<&'a str>,
    pub(crate) logs_bloom: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) logs: Vec<RpcLog<'a>>,
    /// L2 fee fields: kept as raw JSON (chains write them as hex, decimals or numbers).
    #[serde(borrow)]
    pub(crate) l1_fee: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(crate) l1_gas_used: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(crate) l1_gas_price: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(crate) l1_fee_scalar: Option<&'a RawValue>,
}

/// A log (inside a receipt, or an `eth_getLogs` element).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcLog<'a> {
    pub(crate) address: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) topics: Vec<&'a str>,
    pub(crate) data: Option<&'a str>,
    pub(crate) block_number: Option<&'a str>,
    pub(crate) block_hash: Option<&'a str>,
    pub(crate) transaction_hash: Option<&'a str>,
    pub(crate) transaction_index: Option<&'a str>,
    pub(crate) log_index: Option<&'a str>,
    #[serde(default)]
    pub(crate) removed: bool,
}

/// A field that may be absent (outer `None`, via `#[serde(default)]`) or null.
fn present<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Option<&'a str>>, D::Error> {
    Option::<&'a str>::deserialize(d).map(Some)
}

/// Reads an answer into one of the shapes above (a serde error becomes the detail).
/// The text is checked to be UTF-8 once, up front: serde_json then skips the check per string.
pub(crate) fn parse<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, String> {
    let text = std::str::from_utf8(json).map_err(|e| format!("not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("not the expected JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_transactions_are_hashes_or_objects() {
        let hashes: RpcBlock<'_> =
            parse(br#"{"transactions":["0x01","0x02"],"size":"0x1"}"#).unwrap();
        assert!(matches!(
            hashes.transactions.as_slice(),
            [TxItem::Hash, TxItem::Hash]
        ));
        let full: RpcBlock<'_> =
            parse(br#"{"transactions":[{"hash":"0xaa","v":"0x1b","extra":[1,{}]}]}"#).unwrap();
        match full.transactions.as_slice() {
            [TxItem::Full(tx)] => assert_eq!((tx.hash, tx.v), (Some("0xaa"), Some("0x1b"))),
            _ => panic!("expected one full transaction"),
        }
        assert!(parse::<RpcBlock<'_>>(br#"{"transactions":[1]}"#).is_err());
        assert!(parse::<RpcBlock<'_>>(b"null").is_err());
    }

    #[test]
    fn nulls_and_absent_fields_are_none() {
        let r: RpcReceipt<'_> =
            parse(br#"{"to":null,"contractAddress":"0x01","logs":[]}"#).unwrap();
        assert_eq!(
            (r.to, r.contract_address, r.status),
            (Some(None), Some("0x01"), None)
        );
        let r: RpcReceipt<'_> = parse(br#"{"logs":[]}"#).unwrap();
        assert_eq!(r.to, None);
    }
}
