//! Contracts as ethereum-etl 2.4.2's `EthContractService` sees them: the
//! function sighashes are the `PUSH4` operands in the bytecode's first basic
//! block (everything before the first `JUMPDEST`, as the `ethereum-dasm`
//! disassembler splits it), and `is_erc20` / `is_erc721` test for the
//! selectors of the standard functions.

use sha3::{Digest, Keccak256};

use crate::error::ExportError;
use crate::pyvalue::PyValue;

/// Columns of ethereum-etl's contracts exporter.
pub const CONTRACT_FIELDS: &[&str] = &[
    "address",
    "bytecode",
    "function_sighashes",
    "is_erc20",
    "is_erc721",
    "block_number",
];

/// keccak256 of `data`.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// `'0x' + function_signature_to_4byte_selector(signature).hex()`.
pub fn sighash(signature: &str) -> String {
    let hash = keccak256(signature.as_bytes());
    format!("0x{}", to_hex(&hash[..4]))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `get_function_sighashes(bytecode)`: sorted, distinct `0x`-prefixed selectors.
pub fn function_sighashes(bytecode: &PyValue) -> Result<Vec<String>, ExportError> {
    let hex = match bytecode {
        PyValue::None => return Ok(Vec::new()),
        PyValue::Str(s) if s == "0x" => return Ok(Vec::new()),
        PyValue::Str(s) => s.strip_prefix("0x").unwrap_or(s),
        other => {
            return Err(ExportError::Data(format!(
                "bytecode is a JSON {}, expected a hex string",
                other.type_name()
            )))
        }
    };
    // ethereum-dasm strips whitespace and one more "0x", then wants hex digits.
    let hex = hex.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    let code = decode_hex(hex)
        .ok_or_else(|| ExportError::Data(format!("bytecode is not a hex string: {:.60}", hex)))?;
    let mut selectors = Vec::new();
    let mut pc = 0;
    while pc < code.len() {
        let op = code[pc];
        if op == 0x5b {
            break; // JUMPDEST: the first basic block ends
        }
        let operand = if (0x60..=0x7f).contains(&op) {
            (op - 0x5f) as usize
        } else {
            0
        };
        let end = (pc + 1 + operand).min(code.len());
        if op == 0x63 && end - pc == 5 {
            selectors.push(format!("0x{}", to_hex(&code[pc + 1..end])));
        }
        pc = end;
    }
    selectors.sort();
    selectors.dedup();
    Ok(selectors)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// `(is_erc20, is_erc721)` for a set of sighashes.
pub fn erc_flags(sighashes: &[String]) -> (bool, bool) {
    let has = |sig: &str| sighashes.iter().any(|s| *s == sighash(sig));
    let erc20 = has("totalSupply()")
        && has("balanceOf(address)")
        && has("transfer(address,uint256)")
        && has("transferFrom(address,address,uint256)")
        && has("approve(address,uint256)")
        && has("allowance(address,address)");
    let erc721 = has("balanceOf(address)")
        && has("ownerOf(uint256)")
        && (has("transfer(address,uint256)") || has("transferFrom(address,address,uint256)"))
        && has("approve(address,uint256)");
    (erc20, erc721)
}

/// A contracts row: address and bytecode as given, the analysis, the block.
pub fn contract_row(
    address: PyValue,
    bytecode: PyValue,
    block_number: PyValue,
) -> Result<Vec<PyValue>, ExportError> {
    let sighashes = function_sighashes(&bytecode).map_err(|e| {
        ExportError::Data(format!("contract {}: {e}", crate::pyfmt::py_str(&address)))
    })?;
    let (erc20, erc721) = erc_flags(&sighashes);
    Ok(vec![
        address,
        bytecode,
        PyValue::List(sighashes.into_iter().map(PyValue::Str).collect()),
        PyValue::Bool(erc20),
        PyValue::Bool(erc721),
        block_number,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sighashes_are_keccak_prefixes() {
        assert_eq!(sighash("transfer(address,uint256)"), "0xa9059cbb");
        assert_eq!(sighash("totalSupply()"), "0x18160ddd");
        assert_eq!(
            to_hex(&keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn only_full_push4s_before_the_first_jumpdest_count() {
        // PUSH4 a, PUSH1 0x63 (a PUSH4 opcode as data), PUSH4 a again, PUSH4 b, JUMPDEST, PUSH4 c
        let code = "0x63aaaaaaaa606363aaaaaaaa63bbbbbbbb5b63cccccccc";
        let got = function_sighashes(&code.into()).unwrap();
        assert_eq!(got, ["0xaaaaaaaa", "0xbbbbbbbb"]);
        assert!(
            function_sighashes(&"0x63aabb".into()).unwrap().is_empty(),
            "truncated"
        );
        assert!(function_sighashes(&"0x".into()).unwrap().is_empty());
        assert!(function_sighashes(&PyValue::None).unwrap().is_empty());
        assert!(function_sighashes(&"0xzz".into()).is_err());
    }

    #[test]
    fn erc_flags_follow_ethereum_etl() {
        let erc20: Vec<String> = [
            "totalSupply()",
            "balanceOf(address)",
            "transfer(address,uint256)",
            "transferFrom(address,address,uint256)",
            "approve(address,uint256)",
            "allowance(address,address)",
        ]
        .iter()
        .map(|s| sighash(s))
        .collect();
        assert_eq!(erc_flags(&erc20), (true, false));
        let erc721: Vec<String> = [
            "balanceOf(address)",
            "ownerOf(uint256)",
            "transferFrom(address,address,uint256)",
            "approve(address,uint256)",
        ]
        .iter()
        .map(|s| sighash(s))
        .collect();
        assert_eq!(erc_flags(&erc721), (false, true));
        assert_eq!(erc_flags(&[]), (false, false));
    }
}
