//! Hex quantities to exact decimal integers, with the semantics of
//! ethereum-etl's `hex_to_dec` (Python `int(s, 16)`: surrounding whitespace,
//! a sign, an optional `0x` prefix and `_` digit separators are accepted; a
//! string that does not parse is passed through unchanged) and of its
//! `to_float_or_none`. Quantities up to 256 bits go through `ruint`; longer
//! ones are converted digit by digit so no value is ever rounded.

use ruint::aliases::U256;

use super::pyvalue::PyValue;

/// A value that Python would refuse to convert (`int(5, 16)` raises).
#[derive(Debug, Clone, PartialEq)]
pub struct NotAString(pub &'static str);

/// ethereum-etl's `hex_to_dec`: `None` stays `None`, a hex string becomes an
/// exact integer, any other string is returned unchanged (after a warning on
/// stderr), and a non-string is an error.
pub fn hex_to_dec(value: &PyValue) -> Result<PyValue, NotAString> {
    match value {
        PyValue::None => Ok(PyValue::None),
        PyValue::Str(s) => Ok(match parse_python_hex_int(s) {
            Some(v) => v,
            None => {
                eprintln!("Not a hex string {s}");
                PyValue::Str(s.clone())
            }
        }),
        other => Err(NotAString(other.type_name())),
    }
}

/// Parses `s` like Python's `int(s, 16)`; `None` when Python would raise.
pub fn parse_python_hex_int(s: &str) -> Option<PyValue> {
    let t = s.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (prefixed, body) = match t.get(..2) {
        Some("0x") | Some("0X") => (true, &t[2..]),
        _ => (false, t),
    };
    let digits = strip_underscores(body, prefixed)?;
    let magnitude = hex_digits_to_value(&digits);
    Some(if negative {
        negate(magnitude)
    } else {
        magnitude
    })
}

/// Validates Python's digit-separator rules and returns the bare hex digits.
fn strip_underscores(body: &str, prefixed: bool) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut prev_underscore = false;
    for (i, c) in body.chars().enumerate() {
        if c == '_' {
            // Allowed between digits and right after a base prefix.
            let allowed = if i == 0 { prefixed } else { !prev_underscore };
            if !allowed {
                return None;
            }
            prev_underscore = true;
        } else if c.is_ascii_hexdigit() {
            out.push(c);
            prev_underscore = false;
        } else {
            return None;
        }
    }
    if out.is_empty() || prev_underscore {
        return None;
    }
    Some(out)
}

fn hex_digits_to_value(digits: &str) -> PyValue {
    let significant = digits.trim_start_matches('0');
    if significant.len() <= 31 {
        // At most 124 bits: always fits an i128.
        let v = u128::from_str_radix(
            if significant.is_empty() {
                "0"
            } else {
                significant
            },
            16,
        )
        .unwrap_or(0);
        return PyValue::Int(v as i128);
    }
    if significant.len() <= 64 {
        if let Ok(v) = U256::from_str_radix(significant, 16) {
            return PyValue::BigInt(v.to_string());
        }
    }
    PyValue::BigInt(big_hex_to_decimal(significant))
}

/// Arbitrary-length hex digits to decimal digits (base 10^9 limbs).
fn big_hex_to_decimal(digits: &str) -> String {
    const BASE: u64 = 1_000_000_000;
    let mut limbs: Vec<u64> = vec![0]; // little-endian base 10^9
    for c in digits.chars() {
        let mut carry = u64::from(c.to_digit(16).unwrap_or(0));
        for limb in limbs.iter_mut() {
            let v = *limb * 16 + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    let mut out = String::new();
    let mut iter = limbs.iter().rev();
    if let Some(first) = iter.next() {
        out.push_str(&first.to_string());
    }
    for limb in iter {
        out.push_str(&format!("{limb:09}"));
    }
    out
}

fn negate(v: PyValue) -> PyValue {
    match v {
        PyValue::Int(0) => PyValue::Int(0),
        PyValue::Int(i) => PyValue::Int(-i),
        PyValue::BigInt(s) => PyValue::BigInt(format!("-{s}")),
        other => other,
    }
}

/// ethereum-etl's `to_int_or_none`: ints pass, `None`/`""` become `None`,
/// strings go through Python's `int()` (surrounding whitespace and a sign
/// allowed) and anything that does not parse becomes `None`.
pub fn to_int_or_none(value: &PyValue) -> PyValue {
    match value {
        PyValue::Int(_) | PyValue::BigInt(_) | PyValue::Bool(_) => value.clone(),
        PyValue::Float(f) if f.is_finite() => PyValue::Int(f.trunc() as i128),
        PyValue::Str(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return PyValue::None;
            }
            match t.parse::<i128>() {
                Ok(i) => PyValue::Int(i),
                Err(_) => PyValue::BigInt(t.trim_start_matches('+').to_owned()),
            }
        }
        _ => PyValue::None,
    }
}

/// ethereum-etl's `to_float_or_none`: floats pass, `None`/`""` become `None`,
/// strings and ints go through Python's `float()`, anything unparsable is
/// passed through unchanged.
pub fn to_float_or_none(value: &PyValue) -> PyValue {
    match value {
        PyValue::Float(_) => value.clone(),
        PyValue::None => PyValue::None,
        PyValue::Str(s) if s.is_empty() => PyValue::None,
        PyValue::Str(s) => match parse_python_float(s) {
            Some(f) => PyValue::Float(f),
            None => {
                eprintln!("can't cast {s} to float");
                value.clone()
            }
        },
        PyValue::Int(i) => PyValue::Float(*i as f64),
        PyValue::BigInt(s) => s
            .parse::<f64>()
            .map(PyValue::Float)
            .unwrap_or(value.clone()),
        PyValue::Bool(b) => PyValue::Float(if *b { 1.0 } else { 0.0 }),
        other => other.clone(),
    }
}

/// Python's `float(str)`: whitespace, `_` separators between digits,
/// `inf`/`infinity`/`nan` in any case.
fn parse_python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if lower.len() - unsigned.len() > 1 {
        return None;
    }
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        let neg = lower.starts_with('-');
        return Some(match (unsigned, neg) {
            ("nan", _) => f64::NAN,
            (_, true) => f64::NEG_INFINITY,
            _ => f64::INFINITY,
        });
    }
    let bytes = t.as_bytes();
    let mut cleaned = String::with_capacity(t.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let ok = i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if !ok {
                return None;
            }
        } else {
            cleaned.push(b as char);
        }
    }
    if cleaned.is_empty() || !cleaned.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if cleaned
        .bytes()
        .any(|b| !(b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')))
    {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Option<PyValue> {
        parse_python_hex_int(s)
    }

    #[test]
    fn accepts_what_python_int_base16_accepts() {
        assert_eq!(dec("0x0"), Some(PyValue::Int(0)));
        assert_eq!(dec("0x1a"), Some(PyValue::Int(26)));
        assert_eq!(dec("0X1A"), Some(PyValue::Int(26)));
        assert_eq!(dec("1a"), Some(PyValue::Int(26)));
        assert_eq!(dec("  0x10\n"), Some(PyValue::Int(16)));
        assert_eq!(dec("-0x10"), Some(PyValue::Int(-16)));
        assert_eq!(dec("+10"), Some(PyValue::Int(16)));
        assert_eq!(dec("0x_1_0"), Some(PyValue::Int(16)));
        assert_eq!(
            dec("0x0000000000000000000000000000000000000000000000000000000000000005"),
            Some(PyValue::Int(5))
        );
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "", "0x", "0x_", "_1", "1_", "1__0", "0xg", "--1", "0x 1", "0o1", "1.0",
        ] {
            assert_eq!(dec(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn u256_and_beyond_print_exact_decimals() {
        assert_eq!(
            dec("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
            Some(PyValue::BigInt(
                "115792089237316195423570985008687907853269984665640564039457584007913129639935"
                    .into()
            ))
        );
        assert_eq!(
            dec("0x10000000000000000000000000000000000000000000000000000000000000000"),
            Some(PyValue::BigInt(
                "115792089237316195423570985008687907853269984665640564039457584007913129639936"
                    .into()
            ))
        );
        assert_eq!(
            dec("0x100000000000000000000000000000000"),
            Some(PyValue::BigInt(
                "340282366920938463463374607431768211456".into()
            ))
        );
        assert_eq!(
            dec("0xffffffffffffffff"),
            Some(PyValue::Int(u64::MAX as i128))
        );
        assert_eq!(big_hex_to_decimal("3b9aca00"), "1000000000");
    }

    #[test]
    fn hex_to_dec_passes_bad_strings_and_none_through() {
        assert_eq!(hex_to_dec(&PyValue::None), Ok(PyValue::None));
        assert_eq!(hex_to_dec(&"zz".into()), Ok(PyValue::Str("zz".into())));
        assert_eq!(hex_to_dec(&PyValue::Int(5)), Err(NotAString("int")));
    }

    #[test]
    fn to_float_or_none_matches_python() {
        assert_eq!(to_float_or_none(&"".into()), PyValue::None);
        assert_eq!(to_float_or_none(&"0.684".into()), PyValue::Float(0.684));
        assert_eq!(to_float_or_none(&" 1_0.5 ".into()), PyValue::Float(10.5));
        assert_eq!(to_float_or_none(&"1e3".into()), PyValue::Float(1000.0));
        assert_eq!(
            to_float_or_none(&"-Infinity".into()),
            PyValue::Float(f64::NEG_INFINITY)
        );
        assert_eq!(to_float_or_none(&"0x1".into()), PyValue::Str("0x1".into()));
        assert_eq!(to_float_or_none(&PyValue::Int(3)), PyValue::Float(3.0));
    }
}
