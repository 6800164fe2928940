//! One transaction answer: its fields built into the alloy consensus transaction of its type
//! (legacy with and without EIP-155, 2930, 1559, 4844, 7702), EIP-2718 encoded once, hashed,
//! and compared with the claimed hash; optionally its signer recovered; the [`TxFacts`]
//! that receipts are later compared against.

use alloy_consensus::transaction::{from_eip155_value, SignerRecoverable};
use alloy_consensus::{
    EthereumTxEnvelope, Signed, TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy,
};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_eips::eip4844::DATA_GAS_PER_BLOB;
use alloy_eips::eip7702::{Authorization, SignedAuthorization};
use alloy_primitives::{keccak256, Address, Signature, TxKind, B256, U256};

use crate::hex::{self, need, opt_u128, BadField};
use crate::rpc::{RpcAccess, RpcAuthorization, RpcTx};

/// Transaction types this crate can encode.
const LEGACY: u8 = 0;
const EIP2930: u8 = 1;
const EIP1559: u8 = 2;
const EIP4844: u8 = 3;
const EIP7702: u8 = 4;

/// A known transaction in consensus form (blocks carry no blob sidecars).
pub(crate) type Envelope = EthereumTxEnvelope<TxEip4844>;

/// What a verified transaction says, for the checks of its receipt and for callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxFacts {
    /// The transaction hash, recomputed from the fields (for a type this crate does not
    /// know, the claimed hash: the block's `skipped` then says so).
    pub hash: B256,
    /// The sender as the answer states it; recovered from the signature and compared only
    /// when `Checks::senders` is on.
    pub from: Address,
    /// The recipient; `None` for a contract creation.
    pub to: Option<Address>,
    /// The sender's nonce (a creation's contract address derives from it).
    pub nonce: u64,
    /// The EIP-2718 type (0 for legacy).
    pub tx_type: u8,
    /// The gas limit.
    pub gas_limit: u64,
    /// The gas price of legacy and EIP-2930 transactions.
    pub gas_price: Option<u128>,
    /// The fee cap of EIP-1559-style transactions (types 2, 3, 4).
    pub max_fee_per_gas: Option<u128>,
    /// The priority fee cap of EIP-1559-style transactions.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Number of blobs (type 3); a receipt's `blobGasUsed` derives from it.
    pub blob_count: usize,
}

impl TxFacts {
    /// The price per gas the sender paid: the gas price, or for fee-capped transactions
    /// `min(max fee, base fee + priority fee)`. `None` when a fee-capped transaction sits in
    /// a block without base fee (impossible on a valid chain).
    pub fn effective_gas_price(&self, base_fee: Option<u64>) -> Option<u128> {
        if let Some(price) = self.gas_price {
            return Some(price);
        }
        let (cap, tip) = (self.max_fee_per_gas?, self.max_priority_fee_per_gas?);
        Some(cap.min(tip.saturating_add(base_fee? as u128)))
    }

    /// The address a contract creation deploys to (sender and nonce), `None` for a call.
    pub fn created_address(&self) -> Option<Address> {
        match self.to {
            None => Some(self.from.create(self.nonce)),
            Some(_) => None,
        }
    }

    /// Blob gas the transaction uses.
    pub fn blob_gas(&self) -> u64 {
        self.blob_count as u64 * DATA_GAS_PER_BLOB
    }
}

/// A transaction read from an answer.
pub(crate) enum ReadTx {
    /// A known type: its facts (hash recomputed), its claimed hash and its consensus form.
    Known {
        facts: TxFacts,
        claimed: B256,
        envelope: Box<Envelope>,
    },
    /// A type this crate cannot encode (e.g. an L2 deposit, 0x7e): the claimed facts.
    Unknown(TxFacts),
}

/// Reads `tx`, encodes it (EIP-2718) into `buf` (appended) and hashes that encoding.
pub(crate) fn read_tx(tx: &RpcTx<'_>, buf: &mut Vec<u8>) -> Result<ReadTx, BadField> {
    let claimed = hex::fixed::<32>("hash", need("hash", tx.hash)?)?;
    let tx_type = tx
        .tx_type
        .map(|t| hex::u8q("type", t))
        .transpose()?
        .unwrap_or(LEGACY);
    let mut facts = TxFacts {
        hash: claimed,
        from: hex::fixed::<20>("from", need("from", tx.from)?)?.into(),
        to: tx
            .to
            .map(|s| hex::fixed::<20>("to", s))
            .transpose()?
            .map(Address::from),
        nonce: hex::u64q("nonce", need("nonce", tx.nonce)?)?,
        tx_type,
        gas_limit: hex::u64q("gas", need("gas", tx.gas)?)?,
        gas_price: None,
        max_fee_per_gas: None,
        max_priority_fee_per_gas: None,
        blob_count: tx.blob_versioned_hashes.as_ref().map_or(0, Vec::len),
    };
    if tx_type > EIP7702 {
        facts.gas_price = opt_u128("gasPrice", tx.gas_price)?;
        facts.max_fee_per_gas = opt_u128("maxFeePerGas", tx.max_fee_per_gas)?;
        facts.max_priority_fee_per_gas =
            opt_u128("maxPriorityFeePerGas", tx.max_priority_fee_per_gas)?;
        return Ok(ReadTx::Unknown(facts));
    }
    let envelope = envelope(tx, &mut facts)?;
    let start = buf.len();
    envelope.encode_2718(buf);
    facts.hash = keccak256(&buf[start..]);
    Ok(ReadTx::Known {
        facts,
        claimed,
        envelope: Box::new(envelope),
    })
}

/// Recovers the signer of a known transaction.
pub(crate) fn recover(envelope: &Envelope) -> Result<Address, String> {
    envelope
        .recover_signer()
        .map_err(|e| format!("signature does not recover: {e}"))
}

/// The consensus transaction of a known type; fills the fee facts.
fn envelope(tx: &RpcTx<'_>, facts: &mut TxFacts) -> Result<Envelope, BadField> {
    let value = hex::u256q("value", need("value", tx.value)?)?;
    let input = hex::bytes("input", need("input", tx.input)?)?;
    let (nonce, gas_limit) = (facts.nonce, facts.gas_limit);
    let kind = facts.to.map_or(TxKind::Create, TxKind::Call);
    if facts.tx_type == LEGACY {
        let v = hex::u128q("v", need("v", tx.v)?)?;
        let (parity, chain_id) = from_eip155_value(v).ok_or_else(|| BadField {
            field: "v",
            reason: format!("{v} is neither 27/28 nor EIP-155"),
        })?;
        let gas_price = hex::u128q("gasPrice", need("gasPrice", tx.gas_price)?)?;
        facts.gas_price = Some(gas_price);
        let legacy = TxLegacy {
            chain_id,
            nonce,
            gas_price,
            gas_limit,
            to: kind,
            value,
            input,
        };
        return Ok(Envelope::Legacy(Signed::new_unhashed(
            legacy,
            signature(tx, parity)?,
        )));
    }
    let sig = signature(tx, typed_parity(tx)?)?;
    let chain_id = hex::u64q("chainId", need("chainId", tx.chain_id)?)?;
    let access_list = access_list(tx.access_list.as_deref().unwrap_or_default())?;
    if facts.tx_type == EIP2930 {
        let gas_price = hex::u128q("gasPrice", need("gasPrice", tx.gas_price)?)?;
        facts.gas_price = Some(gas_price);
        let t = TxEip2930 {
            chain_id,
            nonce,
            gas_price,
            gas_limit,
            to: kind,
            value,
            access_list,
            input,
        };
        return Ok(Envelope::Eip2930(Signed::new_unhashed(t, sig)));
    }
    let max_fee_per_gas = hex::u128q("maxFeePerGas", need("maxFeePerGas", tx.max_fee_per_gas)?)?;
    let priority = need("maxPriorityFeePerGas", tx.max_priority_fee_per_gas)?;
    let max_priority_fee_per_gas = hex::u128q("maxPriorityFeePerGas", priority)?;
    facts.max_fee_per_gas = Some(max_fee_per_gas);
    facts.max_priority_fee_per_gas = Some(max_priority_fee_per_gas);
    let fees = (max_fee_per_gas, max_priority_fee_per_gas);
    match facts.tx_type {
        EIP1559 => {
            let t = TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: kind,
                value,
                access_list,
                input,
            };
            Ok(Envelope::Eip1559(Signed::new_unhashed(t, sig)))
        }
        EIP4844 => blob_tx(tx, facts, chain_id, fees, value, access_list, input)
            .map(|t| Envelope::Eip4844(Signed::new_unhashed(t, sig))),
        _ => {
            let to = facts.to.ok_or_else(|| BadField::missing("to"))?;
            let authorization_list =
                need_list("authorizationList", tx.authorization_list.as_deref())?
                    .iter()
                    .map(authorization)
                    .collect::<Result<_, _>>()?;
            let t = TxEip7702 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to,
                value,
                access_list,
                authorization_list,
                input,
            };
            Ok(Envelope::Eip7702(Signed::new_unhashed(t, sig)))
        }
    }
}

/// An EIP-4844 transaction (no sidecar: blocks carry none).
fn blob_tx(
    tx: &RpcTx<'_>,
    facts: &TxFacts,
    chain_id: u64,
    (max_fee_per_gas, max_priority_fee_per_gas): (u128, u128),
    value: U256,
    access_list: AccessList,
    input: alloy_primitives::Bytes,
) -> Result<TxEip4844, BadField> {
    let to = facts.to.ok_or_else(|| BadField::missing("to"))?;
    let blob_fee = need("maxFeePerBlobGas", tx.max_fee_per_blob_gas)?;
    let blob_versioned_hashes =
        need_list("blobVersionedHashes", tx.blob_versioned_hashes.as_deref())?
            .iter()
            .map(|h| hex::fixed::<32>("blobVersionedHashes", h))
            .collect::<Result<_, _>>()?;
    Ok(TxEip4844 {
        chain_id,
        nonce: facts.nonce,
        gas_limit: facts.gas_limit,
        max_fee_per_gas,
        max_priority_fee_per_gas,
        to,
        value,
        access_list,
        blob_versioned_hashes,
        max_fee_per_blob_gas: hex::u128q("maxFeePerBlobGas", blob_fee)?,
        input,
    })
}

/// A list field that must be present.
fn need_list<'s, T>(field: &'static str, list: Option<&'s [T]>) -> Result<&'s [T], BadField> {
    list.ok_or_else(|| BadField::missing(field))
}

/// The signature from `r`, `s` and the parity.
fn signature(tx: &RpcTx<'_>, parity: bool) -> Result<Signature, BadField> {
    let r = hex::u256q("r", need("r", tx.r)?)?;
    let s = hex::u256q("s", need("s", tx.s)?)?;
    Ok(Signature::new(r, s, parity))
}

/// The y parity of a typed transaction: `yParity`, else `v` (0/1; 27/28 tolerated).
fn typed_parity(tx: &RpcTx<'_>) -> Result<bool, BadField> {
    let (field, text) = match (tx.y_parity, tx.v) {
        (Some(y), _) => ("yParity", y),
        (None, Some(v)) => ("v", v),
        (None, None) => return Err(BadField::missing("yParity")),
    };
    parity(field, text)
}

/// A y parity quantity.
fn parity(field: &'static str, text: &str) -> Result<bool, BadField> {
    match hex::u64q(field, text)? {
        0 | 27 => Ok(false),
        1 | 28 => Ok(true),
        other => Err(BadField {
            field,
            reason: format!("{other} is not a y parity"),
        }),
    }
}

/// An EIP-2930 access list.
fn access_list(items: &[RpcAccess<'_>]) -> Result<AccessList, BadField> {
    let item = |a: &RpcAccess<'_>| -> Result<AccessListItem, BadField> {
        Ok(AccessListItem {
            address: hex::fixed::<20>("accessList.address", a.address)?.into(),
            storage_keys: a
                .storage_keys
                .iter()
                .map(|k| hex::fixed::<32>("accessList.storageKeys", k))
                .collect::<Result<_, _>>()?,
        })
    };
    Ok(AccessList(
        items.iter().map(item).collect::<Result<_, _>>()?,
    ))
}

/// One signed EIP-7702 authorization.
fn authorization(a: &RpcAuthorization<'_>) -> Result<SignedAuthorization, BadField> {
    let inner = Authorization {
        chain_id: hex::u256q("authorizationList.chainId", a.chain_id)?,
        address: hex::fixed::<20>("authorizationList.address", a.address)?.into(),
        nonce: hex::u64q("authorizationList.nonce", a.nonce)?,
    };
    let (field, text) = match (a.y_parity, a.v) {
        (Some(y), _) => ("authorizationList.yParity", y),
        (None, Some(v)) => ("authorizationList.v", v),
        (None, None) => return Err(BadField::missing("authorizationList.yParity")),
    };
    let y_parity = parity(field, text)? as u8;
    let r = hex::u256q("authorizationList.r", a.r)?;
    let s = hex::u256q("authorizationList.s", a.s)?;
    Ok(SignedAuthorization::new_unchecked(inner, y_parity, r, s))
}
