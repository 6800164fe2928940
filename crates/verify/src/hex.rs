//! Hex quantities ("0x1b") and fixed-size hex values (hashes, addresses, blooms) read from
//! JSON-RPC answers; every error names the field it came from, so a verdict can say which.

use std::fmt;

use alloy_primitives::{hex, Bytes, FixedBytes, U256};

/// How much of a bad value an error quotes (answers can carry megabytes of hex).
const QUOTE_MAX: usize = 68;

/// A field whose text is not what it must be: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadField {
    /// The JSON field name (`gasPrice`, `logsBloom`, ...).
    pub(crate) field: &'static str,
    /// What is wrong, quoting (a prefix of) the value.
    pub(crate) reason: String,
}

impl fmt::Display for BadField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {}: {}", self.field, self.reason)
    }
}

impl BadField {
    fn new(field: &'static str, why: &str, value: &str) -> Self {
        let quoted: String = value.chars().take(QUOTE_MAX).collect();
        let more = if quoted.len() < value.len() {
            "…"
        } else {
            ""
        };
        BadField {
            field,
            reason: format!("{why}: {quoted:?}{more}"),
        }
    }

    /// A required field that is absent or null.
    pub(crate) fn missing(field: &'static str) -> Self {
        BadField {
            field,
            reason: "missing".into(),
        }
    }
}

/// The digits after "0x"; quantities and data both need the prefix.
fn digits<'a>(field: &'static str, s: &'a str) -> Result<&'a str, BadField> {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| BadField::new(field, "no 0x prefix", s))
}

/// A hex quantity that fits `bits` bits (≤ 128), as u128 (leading zeros tolerated).
fn quantity_bits(field: &'static str, s: &str, bits: u32) -> Result<u128, BadField> {
    let mut be = [0u8; 16];
    decode_right_aligned(field, s, &mut be)?;
    let value = u128::from_be_bytes(be);
    if bits < 128 && value >> bits != 0 {
        return Err(BadField::new(field, "quantity too large", s));
    }
    Ok(value)
}

/// Decodes the quantity `s` into `out`, big-endian and right-aligned (one SIMD hex decode of
/// the digits padded with '0' on the left).
fn decode_right_aligned(field: &'static str, s: &str, out: &mut [u8]) -> Result<(), BadField> {
    const MAX_BYTES: usize = 32;
    let d = digits(field, s)?;
    if d.is_empty() {
        return Err(BadField::new(field, "empty quantity", s));
    }
    let d = d.trim_start_matches('0').as_bytes();
    let width = 2 * out.len();
    if d.len() > width || out.len() > MAX_BYTES {
        return Err(BadField::new(field, "quantity too large", s));
    }
    let mut padded = [b'0'; 2 * MAX_BYTES];
    padded[width - d.len()..width].copy_from_slice(d);
    hex::decode_to_slice(&padded[..width], out).map_err(|_| BadField::new(field, "not hex", s))
}

/// A hex quantity as u64.
pub(crate) fn u64q(field: &'static str, s: &str) -> Result<u64, BadField> {
    quantity_bits(field, s, 64).map(|v| v as u64)
}

/// A hex quantity as u128 (gas prices, fees).
pub(crate) fn u128q(field: &'static str, s: &str) -> Result<u128, BadField> {
    quantity_bits(field, s, 128)
}

/// A hex quantity as u8 (transaction and receipt types, y parity).
pub(crate) fn u8q(field: &'static str, s: &str) -> Result<u8, BadField> {
    quantity_bits(field, s, 8).map(|v| v as u8)
}

/// A hex quantity as U256 (values, difficulty, signature r and s, chain ids).
pub(crate) fn u256q(field: &'static str, s: &str) -> Result<U256, BadField> {
    let mut be = [0u8; 32];
    decode_right_aligned(field, s, &mut be)?;
    Ok(U256::from_be_bytes(be))
}

/// Exactly `N` bytes of hex data (hashes, addresses, blooms, nonces).
pub(crate) fn fixed<const N: usize>(
    field: &'static str,
    s: &str,
) -> Result<FixedBytes<N>, BadField> {
    let d = digits(field, s)?;
    if d.len() != 2 * N {
        return Err(BadField::new(field, "wrong length", s));
    }
    let mut out = FixedBytes::<N>::ZERO;
    hex::decode_to_slice(d, out.as_mut_slice()).map_err(|_| BadField::new(field, "not hex", s))?;
    Ok(out)
}

/// Hex data of any even length.
pub(crate) fn bytes(field: &'static str, s: &str) -> Result<Bytes, BadField> {
    let d = digits(field, s)?;
    hex::decode(d)
        .map(Bytes::from)
        .map_err(|_| BadField::new(field, "not hex data", s))
}

/// A field that must be present.
pub(crate) fn need<'a>(field: &'static str, s: Option<&'a str>) -> Result<&'a str, BadField> {
    s.ok_or_else(|| BadField::missing(field))
}

/// An optional quantity as u64.
pub(crate) fn opt_u64(field: &'static str, s: Option<&str>) -> Result<Option<u64>, BadField> {
    s.map(|s| u64q(field, s)).transpose()
}

/// An optional quantity as u128.
pub(crate) fn opt_u128(field: &'static str, s: Option<&str>) -> Result<Option<u128>, BadField> {
    s.map(|s| u128q(field, s)).transpose()
}

/// An optional fixed-size value.
pub(crate) fn opt_fixed<const N: usize>(
    field: &'static str,
    s: Option<&str>,
) -> Result<Option<FixedBytes<N>>, BadField> {
    s.map(|s| fixed::<N>(field, s)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_and_bound() {
        assert_eq!(u64q("n", "0x0"), Ok(0));
        assert_eq!(u64q("n", "0x1b"), Ok(27));
        assert_eq!(u64q("n", "0x00ff"), Ok(255));
        assert_eq!(u64q("n", "0xffffffffffffffff"), Ok(u64::MAX));
        assert!(u64q("n", "0x10000000000000000").is_err());
        assert_eq!(u8q("t", "0x7e"), Ok(0x7e));
        assert!(u8q("t", "0x100").is_err());
        assert_eq!(
            u128q("p", "0xffffffffffffffffffffffffffffffff"),
            Ok(u128::MAX)
        );
        assert!(u128q("p", "0x1ffffffffffffffffffffffffffffffff").is_err());
        assert_eq!(u256q("v", "0x10").unwrap(), U256::from(16));
        let big = "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef";
        assert_eq!(
            u256q("v", big).unwrap(),
            U256::from_str_radix(&big[2..], 16).unwrap()
        );
        assert_eq!(u256q("v", "0x0").unwrap(), U256::ZERO);
        assert!(u256q("v", &format!("{big}0")).is_err());
        assert!(u256q("v", "0x+1").is_err());
    }

    #[test]
    fn bad_text_names_the_field() {
        let e = u64q("gasPrice", "12").unwrap_err();
        assert_eq!(e.field, "gasPrice");
        assert!(e.reason.contains("no 0x prefix"), "{e}");
        assert!(u64q("n", "0x").is_err());
        assert!(u64q("n", "0xzz").is_err());
        assert!(u256q("v", "0x").is_err());
        assert!(fixed::<20>("to", "0x1234").is_err());
        assert!(fixed::<2>("x", "0x12zz").is_err());
        assert!(bytes("input", "0x123").is_err());
        let long = format!("0x{}", "g".repeat(500));
        assert!(bytes("input", &long).unwrap_err().reason.len() < 120);
    }

    #[test]
    fn data_parses() {
        assert_eq!(fixed::<2>("x", "0xABcd").unwrap().0, [0xab, 0xcd]);
        assert_eq!(bytes("input", "0x").unwrap().len(), 0);
        assert_eq!(bytes("input", "0x0102").unwrap().as_ref(), &[1, 2]);
        assert_eq!(opt_u64("n", None), Ok(None));
        assert!(need("hash", None).is_err());
    }
}
