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
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, B256, U256};

use crate::hex::{self, need, opt_u128, BadField};
use crate::rpc::{RpcAccess, RpcAuthorization, RpcTx};

/// Transaction types this crate can encode.
const LEGACY: u8 = 0;
const EIP2930: u8 = 1;
const EIP1559: u8 = 2;
const EIP4844: u8 = 3;
const EIP7702: u8 = 4;

/// A known transaction in consensus form (blocks carry no blob sidecars).
type Envelope = EthereumTxEnvelope<TxEip4844>;

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
        signer: Option<Result<Address, String>>,
    },
    /// A type this crate cannot encode (e.g. an L2 deposit, 0x7e): the claimed facts.
    Unknown(TxFacts),
}

/// Reads `tx`, encodes it (EIP-2718) into `buf` (appended) and hashes that encoding; with
/// `recover`, also recovers its signer.
pub(crate) fn read_tx(
    tx: &RpcTx<'_>,
    buf: &mut Vec<u8>,
    recover: bool,
) -> Result<ReadTx, BadField> {
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
    let signer = recover.then(|| {
        envelope
            .recover_signer()
            .map_err(|e| format!("signature does not recover: {e}"))
    });
    Ok(ReadTx::Known {
        facts,
        claimed,
        signer,
    })
}

/// The consensus transaction of a known type; fills the fee facts.
fn envelope(tx: &RpcTx<'_>, facts: &mut TxFacts) -> Result<Envelope, BadField> {
    let value = hex::u256q("value", need("value", tx.value)?)?;
    let input = hex::bytes("input", need("input", tx.input)?)?;
    if facts.tx_type == LEGACY {
        return legacy(tx, facts, value, input);
    }
    let sig = signature(tx, typed_parity(tx)?)?;
    let t = Typed {
        chain_id: hex::u64q("chainId", need("chainId", tx.chain_id)?)?,
        nonce: facts.nonce,
        gas_limit: facts.gas_limit,
        to: facts.to,
        value,
        access_list: access_list(tx.access_list.as_deref().unwrap_or_default())?,
        input,
    };
    if facts.tx_type == EIP2930 {
        let gas_price = hex::u128q("gasPrice", need("gasPrice", tx.gas_price)?)?;
        facts.gas_price = Some(gas_price);
        return Ok(Envelope::Eip2930(Signed::new_unhashed(
            t.eip2930(gas_price),
            sig,
        )));
    }
    let max_fee = hex::u128q("maxFeePerGas", need("maxFeePerGas", tx.max_fee_per_gas)?)?;
    let priority = need("maxPriorityFeePerGas", tx.max_priority_fee_per_gas)?;
    let priority = hex::u128q("maxPriorityFeePerGas", priority)?;
    (facts.max_fee_per_gas, facts.max_priority_fee_per_gas) = (Some(max_fee), Some(priority));
    match facts.tx_type {
        EIP1559 => Ok(Envelope::Eip1559(Signed::new_unhashed(
            t.eip1559(max_fee, priority),
            sig,
        ))),
        EIP4844 => Ok(Envelope::Eip4844(Signed::new_unhashed(
            blob_tx(tx, t, (max_fee, priority))?,
            sig,
        ))),
        _ => Ok(Envelope::Eip7702(Signed::new_unhashed(
            set_code_tx(tx, t, (max_fee, priority))?,
            sig,
        ))),
    }
}

/// A legacy transaction, with or without EIP-155 (the chain id comes from `v`).
fn legacy(
    tx: &RpcTx<'_>,
    facts: &mut TxFacts,
    value: U256,
    input: Bytes,
) -> Result<Envelope, BadField> {
    let v = hex::u128q("v", need("v", tx.v)?)?;
    let (parity, chain_id) = from_eip155_value(v).ok_or_else(|| BadField {
        field: "v",
        reason: format!("{v} is neither 27/28 nor EIP-155"),
    })?;
    let gas_price = hex::u128q("gasPrice", need("gasPrice", tx.gas_price)?)?;
    facts.gas_price = Some(gas_price);
    let to = facts.to.map_or(TxKind::Create, TxKind::Call);
    let (nonce, gas_limit) = (facts.nonce, facts.gas_limit);
    let legacy = TxLegacy {
        chain_id,
        nonce,
        gas_price,
        gas_limit,
        to,
        value,
        input,
    };
    Ok(Envelope::Legacy(Signed::new_unhashed(
        legacy,
        signature(tx, parity)?,
    )))
}

/// The fields every typed transaction has.
struct Typed {
    chain_id: u64,
    nonce: u64,
    gas_limit: u64,
    to: Option<Address>,
    value: U256,
    access_list: AccessList,
    input: Bytes,
}

impl Typed {
    fn kind(&self) -> TxKind {
        self.to.map_or(TxKind::Create, TxKind::Call)
    }

    /// The recipient of a type that cannot create (4844, 7702).
    fn call_to(&self) -> Result<Address, BadField> {
        self.to.ok_or_else(|| BadField::missing("to"))
    }

    fn eip2930(self, gas_price: u128) -> TxEip2930 {
        let to = self.kind();
        let Typed {
            chain_id,
            nonce,
            gas_limit,
            value,
            access_list,
            input,
            ..
        } = self;
        TxEip2930 {
            chain_id,
            nonce,
            gas_price,
            gas_limit,
            to,
            value,
            access_list,
            input,
        }
    }

    fn eip1559(self, max_fee_per_gas: u128, max_priority_fee_per_gas: u128) -> TxEip1559 {
        let to = self.kind();
        let Typed {
            chain_id,
            nonce,
            gas_limit,
            value,
            access_list,
            input,
            ..
        } = self;
        TxEip1559 {
            chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            to,
            value,
            access_list,
            input,
        }
    }
}

/// An EIP-4844 transaction (no sidecar: blocks carry none).
fn blob_tx(
    tx: &RpcTx<'_>,
    t: Typed,
    (max_fee_per_gas, max_priority_fee_per_gas): (u128, u128),
) -> Result<TxEip4844, BadField> {
    let to = t.call_to()?;
    let blob_fee = need("maxFeePerBlobGas", tx.max_fee_per_blob_gas)?;
    let blob_versioned_hashes =
        need_list("blobVersionedHashes", tx.blob_versioned_hashes.as_deref())?
            .iter()
            .map(|h| hex::fixed::<32>("blobVersionedHashes", h))
            .collect::<Result<_, _>>()?;
    let Typed {
        chain_id,
        nonce,
        gas_limit,
        value,
        access_list,
        input,
        ..
    } = t;
    Ok(TxEip4844 {
        chain_id,
        nonce,
        gas_limit,
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

/// An EIP-7702 transaction with its signed authorizations.
fn set_code_tx(
    tx: &RpcTx<'_>,
    t: Typed,
    (max_fee_per_gas, max_priority_fee_per_gas): (u128, u128),
) -> Result<TxEip7702, BadField> {
    let to = t.call_to()?;
    let authorization_list = need_list("authorizationList", tx.authorization_list.as_deref())?
        .iter()
        .map(authorization)
        .collect::<Result<_, _>>()?;
    let Typed {
        chain_id,
        nonce,
        gas_limit,
        value,
        access_list,
        input,
        ..
    } = t;
    Ok(TxEip7702 {
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
