//! Tokens as ethereum-etl 2.4.2's `EthTokenService` reads them: `symbol`,
//! `name`, `decimals` and `totalSupply` from `eth_call` answers decoded the
//! way web3 5.31 / eth-abi 2.2 decode them, with its fallbacks (upper-case
//! `SYMBOL()`/`NAME()`/`DECIMALS()`, then `bytes32` answers), NUL characters
//! removed, and any revert, error or undecodable answer turned into `None`.

use ruint::aliases::U256;

use crate::pyvalue::PyValue;

/// Columns of ethereum-etl's tokens exporter.
pub const TOKEN_FIELDS: &[&str] = &[
    "address",
    "symbol",
    "name",
    "decimals",
    "total_supply",
    "block_number",
];

/// The functions called for each token, in the order of [`TokenAnswers`].
pub const TOKEN_CALLS: [(&str, &str); 7] = [
    ("symbol()", "0x95d89b41"),
    ("SYMBOL()", "0xf76f8d78"),
    ("name()", "0x06fdde03"),
    ("NAME()", "0xa3f4df7e"),
    ("decimals()", "0x313ce567"),
    ("DECIMALS()", "0x2e0f2625"),
    ("totalSupply()", "0x18160ddd"),
];

/// The return data of each of [`TOKEN_CALLS`], `None` where the call reverted or failed.
pub type TokenAnswers = [Option<Vec<u8>>; 7];

/// A 256-bit big-endian word at `at`, or None past the end (`InsufficientDataBytes`).
fn word_at(data: &[u8], at: usize) -> Option<U256> {
    let bytes = data.get(at..at.checked_add(32)?)?;
    Some(U256::from_be_slice(bytes))
}

/// eth-abi's `string` decoder over a whole answer: head offset, length,
/// zero padding, strict UTF-8.
pub fn decode_string(data: &[u8]) -> Option<String> {
    let offset = usize::try_from(word_at(data, 0)?).ok()?;
    let length = usize::try_from(word_at(data, offset)?).ok()?;
    let start = offset.checked_add(32)?;
    let padded = length.checked_add(31)? / 32 * 32;
    let body = data.get(start..start.checked_add(padded)?)?;
    if body[length..].iter().any(|&b| b != 0) {
        return None;
    }
    String::from_utf8(body[..length].to_vec()).ok()
}

/// eth-abi's `bytes32` decoder: the first word as it is.
pub fn decode_bytes32(data: &[u8]) -> Option<Vec<u8>> {
    data.get(..32).map(<[u8]>::to_vec)
}

/// eth-abi's `uint<bits>` decoder: the first word, whose high bytes must be zero.
pub fn decode_uint(data: &[u8], bits: usize) -> Option<PyValue> {
    let word = data.get(..32)?;
    let padding = 32 - bits / 8;
    if word[..padding].iter().any(|&b| b != 0) {
        return None;
    }
    let value = U256::from_be_slice(word);
    Some(match i128::try_from(value) {
        Ok(v) => PyValue::Int(v),
        Err(_) => PyValue::BigInt(value.to_string()),
    })
}

/// `clean_user_provided_content`: removes every NUL character.
fn strip_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

/// What a text function answered, before the `bytes` to `str` step.
enum Text {
    Str(String),
    Bytes(Vec<u8>),
}

/// `_get_first_result` over the string and bytes32 readings of two answers,
/// then `_bytes_to_string` when the winner is `bytes`.
fn text(lower: &Option<Vec<u8>>, upper: &Option<Vec<u8>>) -> PyValue {
    let as_str = |a: &Option<Vec<u8>>| a.as_deref().and_then(decode_string).map(Text::Str);
    let as_bytes = |a: &Option<Vec<u8>>| a.as_deref().and_then(decode_bytes32).map(Text::Bytes);
    let first = as_str(lower)
        .or_else(|| as_str(upper))
        .or_else(|| as_bytes(lower))
        .or_else(|| as_bytes(upper));
    match first {
        None => PyValue::None,
        Some(Text::Str(s)) => PyValue::Str(strip_nul(s)),
        Some(Text::Bytes(b)) => match String::from_utf8(b) {
            Ok(s) => PyValue::Str(strip_nul(s)),
            Err(_) => PyValue::None,
        },
    }
}

/// A tokens row for `address` (as given) from the answers.
pub fn token_row(address: PyValue, answers: &TokenAnswers, block_number: PyValue) -> Vec<PyValue> {
    let [symbol, symbol_upper, name, name_upper, decimals, decimals_upper, supply] = answers;
    let uint = |a: &Option<Vec<u8>>, bits| a.as_deref().and_then(|d| decode_uint(d, bits));
    vec![
        address,
        text(symbol, symbol_upper),
        text(name, name_upper),
        uint(decimals, 8)
            .or_else(|| uint(decimals_upper, 8))
            .unwrap_or(PyValue::None),
        uint(supply, 256).unwrap_or(PyValue::None),
        block_number,
    ]
}

/// web3's `to_checksum_address` acceptance test: 40 hex digits, `0x` optional.
pub fn is_address(s: &str) -> bool {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abi_string(s: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 31];
        out.push(32);
        out.extend(vec![0u8; 31]);
        out.push(s.len() as u8);
        out.extend_from_slice(s);
        out.resize(64 + s.len().div_ceil(32) * 32, 0);
        out
    }

    fn word(n: u8) -> Vec<u8> {
        let mut w = vec![0u8; 31];
        w.push(n);
        w
    }

    #[test]
    fn strings_decode_strictly() {
        assert_eq!(decode_string(&abi_string(b"NWT")), Some("NWT".into()));
        assert_eq!(decode_string(&abi_string(b"")), Some(String::new()));
        assert_eq!(decode_string(&abi_string(&[0xff])), None, "not UTF-8");
        let mut dirty = abi_string(b"ab");
        dirty[70] = 1;
        assert_eq!(decode_string(&dirty), None, "padding");
        assert_eq!(decode_string(&abi_string(b"abc")[..80]), None, "short");
        assert_eq!(decode_string(&[0xff; 32]), None, "huge offset");
        assert_eq!(decode_string(&[]), None);
    }

    #[test]
    fn fallbacks_follow_ethereum_etl() {
        let mut bytes32 = b"MKR".to_vec();
        bytes32.resize(32, 0);
        let answers: TokenAnswers = [
            Some(bytes32),
            None,
            None,
            Some(abi_string(b"Upper\0")),
            Some([vec![1], vec![0; 31]].concat()),
            Some(word(6)),
            Some(vec![0; 16]),
        ];
        let row = token_row("0xT".into(), &answers, PyValue::None);
        assert_eq!(
            row,
            vec![
                "0xT".into(),
                "MKR".into(),
                "Upper".into(),
                PyValue::Int(6),
                PyValue::None,
                PyValue::None
            ]
        );
        let nothing: TokenAnswers = Default::default();
        assert!(token_row("x".into(), &nothing, PyValue::None)[1..]
            .iter()
            .all(PyValue::is_none));
    }

    #[test]
    fn undecodable_bytes32_wins_and_gives_none() {
        let mut bad = vec![0xff];
        bad.resize(32, 0);
        let answers: TokenAnswers = [
            Some(bad),
            Some(abi_string(b"X")),
            None,
            None,
            None,
            None,
            None,
        ];
        // symbol() as string fails, SYMBOL() as string wins before any bytes32 reading.
        assert_eq!(
            token_row("a".into(), &answers, PyValue::None)[1],
            "X".into()
        );
        let mut bad = vec![0xff];
        bad.resize(32, 0);
        let answers: TokenAnswers = [Some(bad), None, None, None, None, None, None];
        assert_eq!(
            token_row("a".into(), &answers, PyValue::None)[1],
            PyValue::None
        );
    }

    #[test]
    fn addresses_are_checked_like_web3() {
        assert!(is_address("0x5FbDB2315678afecb367f032d93F642f64180aa3"));
        assert!(is_address("5fbdb2315678afecb367f032d93f642f64180aa3"));
        assert!(!is_address("0x5fbdb2315678afecb367f032d93f642f64180aa"));
        assert!(!is_address("0xzzbdb2315678afecb367f032d93f642f64180aa3"));
        assert!(!is_address(""));
    }
}
