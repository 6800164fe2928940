//! Python-compatible text formatting of [`PyValue`]s: `json.dumps` (default
//! separators `", "`/`": "`, `ensure_ascii=True`, `NaN`/`Infinity`), the
//! compact `JSONEncoder(separators=(",", ":"))` that ethereum-etl uses inside
//! CSV cells, `float.__repr__`, `repr()` of containers and the cell text that
//! ethereum-etl's `CsvItemExporter` hands to Python's `csv.writer`.

use std::fmt::Write as _;

use super::pyvalue::PyValue;

/// JSON separators: `(item, key)`.
#[derive(Clone, Copy)]
pub struct Separators {
    item: &'static str,
    key: &'static str,
}

/// `json.dumps` default separators.
pub const DEFAULT_SEPARATORS: Separators = Separators {
    item: ", ",
    key: ": ",
};

/// The compact separators ethereum-etl uses for dicts inside CSV cells.
pub const COMPACT_SEPARATORS: Separators = Separators {
    item: ",",
    key: ":",
};

/// Appends `json.dumps(value)` (with the given separators) to `out`.
pub fn write_json(out: &mut String, value: &PyValue, sep: Separators) {
    match value {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(true) => out.push_str("true"),
        PyValue::Bool(false) => out.push_str("false"),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::BigInt(s) => out.push_str(s),
        PyValue::Float(f) => write_json_float(out, *f),
        PyValue::Str(s) => write_json_str(out, s),
        PyValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep.item);
                }
                write_json(out, item, sep);
            }
            out.push(']');
        }
        PyValue::Dict(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep.item);
                }
                write_json_str(out, k);
                out.push_str(sep.key);
                write_json(out, v, sep);
            }
            out.push('}');
        }
    }
}

/// `json.dumps(value)` as a new string.
pub fn json_dumps(value: &PyValue) -> String {
    let mut out = String::new();
    write_json(&mut out, value, DEFAULT_SEPARATORS);
    out
}

fn write_json_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        out.push_str(&float_repr(f));
    }
}

/// A JSON string literal as Python's `json` module writes it with
/// `ensure_ascii=True`.
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `repr(f)` for a finite or non-finite Python float.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Python's repr.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Python: decimal point position; scientific when decpt > 16 or decpt < -3.
    let decpt = exp + 1;
    let mut out = String::from(sign);
    if (-3..=16).contains(&decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let decpt = decpt as usize;
            if digits.len() <= decpt {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', decpt - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..decpt]);
                out.push('.');
                out.push_str(&digits[decpt..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(
            out,
            "e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        );
    }
    out
}

/// Python's `repr(value)`.
pub fn py_repr(value: &PyValue) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &PyValue) {
    match value {
        PyValue::None => out.push_str("None"),
        PyValue::Bool(true) => out.push_str("True"),
        PyValue::Bool(false) => out.push_str("False"),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::BigInt(s) => out.push_str(s),
        PyValue::Float(f) => out.push_str(&float_repr(*f)),
        PyValue::Str(s) => write_str_repr(out, s),
        PyValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        PyValue::Dict(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(out, k);
                out.push_str(": ");
                write_repr(out, v);
            }
            out.push('}');
        }
    }
}

fn write_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `str(value)`.
pub fn py_str(value: &PyValue) -> String {
    match value {
        PyValue::Str(s) => s.clone(),
        other => py_repr(other),
    }
}

/// The text of one CSV cell as ethereum-etl's `CsvItemExporter` produces it:
/// lists are joined with `,` (dicts inside them as compact JSON, everything
/// else through `str()`), `None` becomes the empty string and everything else
/// goes through `str()`, as `csv.writer` does.
pub fn csv_cell(value: &PyValue) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    match value {
        PyValue::None => Cow::Borrowed(""),
        PyValue::Str(s) => Cow::Borrowed(s),
        PyValue::List(items) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item {
                    PyValue::Dict(_) => write_json(&mut out, item, COMPACT_SEPARATORS),
                    PyValue::Str(s) => out.push_str(s),
                    other => write_repr(&mut out, other),
                }
            }
            Cow::Owned(out)
        }
        other => Cow::Owned(py_repr(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.2345e-7, "1.2345e-07"),
            (123456789.125, "123456789.125"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e22, "1e+22"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-2.5e-5, "-2.5e-05"),
            (0.684, "0.684"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "repr({f:e})");
        }
        assert_eq!(float_repr(f64::NAN), "nan");
        assert_eq!(float_repr(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn json_dumps_matches_python() {
        let v = PyValue::dict([
            ("a", PyValue::Int(1)),
            (
                "big",
                PyValue::BigInt(
                    "1606938044258990275541962092341162602522202993782792835301376".into(),
                ),
            ),
            ("n", PyValue::None),
            (
                "l",
                PyValue::List(vec!["x".into(), PyValue::Bool(true), PyValue::Float(1e16)]),
            ),
            ("e", PyValue::List(vec![])),
            ("s", "q\"\\\n\u{1}é😀/".into()),
            ("f", PyValue::Float(f64::NAN)),
            ("i", PyValue::Float(f64::INFINITY)),
        ]);
        assert_eq!(
            json_dumps(&v),
            r#"{"a": 1, "big": 1606938044258990275541962092341162602522202993782792835301376, "n": null, "l": ["x", true, 1e+16], "e": [], "s": "q\"\\\n\u0001\u00e9\ud83d\ude00/", "f": NaN, "i": Infinity}"#
        );
    }

    #[test]
    fn csv_cells_match_ethereum_etl() {
        assert_eq!(csv_cell(&PyValue::None), "");
        assert_eq!(csv_cell(&PyValue::Int(-7)), "-7");
        assert_eq!(csv_cell(&PyValue::Float(0.5)), "0.5");
        assert_eq!(csv_cell(&PyValue::Bool(false)), "False");
        assert_eq!(csv_cell(&PyValue::List(vec![])), "");
        assert_eq!(
            csv_cell(&PyValue::List(vec!["0xa".into(), "0xb".into()])),
            "0xa,0xb"
        );
        let w = PyValue::dict([("index", PyValue::Int(1)), ("address", "0xAb".into())]);
        assert_eq!(
            csv_cell(&PyValue::List(vec![w.clone(), w])),
            r#"{"index":1,"address":"0xAb"},{"index":1,"address":"0xAb"}"#
        );
        assert_eq!(
            csv_cell(&PyValue::List(vec![
                PyValue::None,
                PyValue::Int(2),
                PyValue::List(vec!["a'b".into()])
            ])),
            r#"None,2,["a'b"]"#
        );
        assert_eq!(
            csv_cell(&PyValue::dict([("k", PyValue::Str("v".into()))])),
            "{'k': 'v'}"
        );
    }
}
