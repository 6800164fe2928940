//! Ethereum hex quantities (`0x1b4`): the one parser the probes, the block router and the
//! filter bookkeeping share.

/// Parses `0x` followed by one or more hex digits that fit in a `u64` (leading zeros are
/// allowed); anything else (no prefix, no digits, a sign, overflow) is `None`.
pub fn parse(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Parses a JSON string holding a quantity (`"0x1b4"`, quotes included).
pub fn parse_json(json: &str) -> Option<u64> {
    parse(json.strip_prefix('"')?.strip_suffix('"')?)
}

#[cfg(test)]
mod tests {
    use super::{parse, parse_json};

    #[test]
    fn quantities() {
        assert_eq!(parse_json("\"0x0\""), Some(0));
        assert_eq!(parse_json("\"0x1b4\""), Some(436));
        assert_eq!(parse_json("\"0xffffffffffffffff\""), Some(u64::MAX));
        assert_eq!(parse_json("\"0x1ffffffffffffffff\""), None);
        assert_eq!(parse_json("\"0x\""), None);
        assert_eq!(parse_json("\"12\""), None);
        assert_eq!(parse_json("12"), None);
        assert_eq!(parse_json("null"), None);
        assert_eq!(parse_json("\"0xzz\""), None);
    }

    #[test]
    fn no_sign_no_space_leading_zeros_fine() {
        assert_eq!(parse("0x+1"), None);
        assert_eq!(parse("0x-1"), None);
        assert_eq!(parse("0x 1"), None);
        assert_eq!(parse("0x00000000000000000001"), Some(1));
        assert_eq!(parse("0xAbC"), Some(0xabc));
        assert_eq!(parse("abc"), None);
    }
}
