//! A JSON-like value that behaves like the Python object ethereum-etl would
//! hold after `json.loads`: integers are exact, objects keep their key order
//! (duplicate keys keep the first position and the last value, as a Python
//! dict does), and nothing is sorted. Everything the exporters print is built
//! from these values.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A Python value as produced by `json.loads` or by ethereum-etl's mappers.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// An integer that fits in an `i128`.
    Int(i128),
    /// An integer too large for `i128`, kept as its exact decimal digits
    /// (with a leading `-` when negative).
    BigInt(String),
    /// A Python `float`.
    Float(f64),
    /// A Python `str`.
    Str(String),
    /// A Python `list`.
    List(Vec<PyValue>),
    /// A Python `dict` with string keys, in insertion order.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// The value under `key` when `self` is a dict, like `dict.get(key)`.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `dict.get(key)` that maps a missing key to `None`, returning an owned copy.
    pub fn get_or_none(&self, key: &str) -> PyValue {
        self.get(key).cloned().unwrap_or(PyValue::None)
    }

    /// The string slice when this value is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// True for `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, PyValue::None)
    }

    /// The Python type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) | PyValue::BigInt(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Dict(_) => "dict",
        }
    }

    /// Builds a dict from `(key, value)` pairs.
    pub fn dict<I, K>(entries: I) -> PyValue
    where
        I: IntoIterator<Item = (K, PyValue)>,
        K: Into<String>,
    {
        PyValue::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl From<&str> for PyValue {
    fn from(s: &str) -> Self {
        PyValue::Str(s.to_owned())
    }
}

impl From<String> for PyValue {
    fn from(s: String) -> Self {
        PyValue::Str(s)
    }
}

impl From<i128> for PyValue {
    fn from(i: i128) -> Self {
        PyValue::Int(i)
    }
}

impl From<u64> for PyValue {
    fn from(i: u64) -> Self {
        PyValue::Int(i128::from(i))
    }
}

impl<'de> Deserialize<'de> for PyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PyValueVisitor)
    }
}

struct PyValueVisitor;

impl<'de> Visitor<'de> for PyValueVisitor {
    type Value = PyValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PyValue, E> {
        Ok(PyValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PyValue, E> {
        Ok(PyValue::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PyValue, E> {
        Ok(PyValue::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<PyValue, E> {
        Ok(PyValue::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<PyValue, E> {
        Ok(match i128::try_from(v) {
            Ok(i) => PyValue::Int(i),
            Err(_) => PyValue::BigInt(v.to_string()),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PyValue, E> {
        Ok(PyValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PyValue, E> {
        Ok(PyValue::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PyValue, E> {
        Ok(PyValue::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<PyValue, E> {
        Ok(PyValue::None)
    }

    fn visit_none<E: de::Error>(self) -> Result<PyValue, E> {
        Ok(PyValue::None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<PyValue, D::Error> {
        PyValue::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PyValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<PyValue>()? {
            items.push(item);
        }
        Ok(PyValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyValue, A::Error> {
        let mut entries: Vec<(String, PyValue)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((key, value)) = map.next_entry::<String, PyValue>()? {
            // A Python dict keeps the first position and the last value.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(PyValue::Dict(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PyValue {
        serde_json::from_str(s).expect("valid json")
    }

    #[test]
    fn objects_keep_insertion_order_and_python_duplicate_semantics() {
        let v = parse(r#"{"b": 1, "a": 2, "b": 3}"#);
        assert_eq!(
            v,
            PyValue::dict([("b", PyValue::Int(3)), ("a", PyValue::Int(2))])
        );
        assert_eq!(v.get("a"), Some(&PyValue::Int(2)));
        assert_eq!(v.get_or_none("zzz"), PyValue::None);
    }

    #[test]
    fn scalars_map_to_python_types() {
        assert_eq!(parse("null"), PyValue::None);
        assert_eq!(parse("true"), PyValue::Bool(true));
        assert_eq!(parse("-5"), PyValue::Int(-5));
        assert_eq!(
            parse("18446744073709551615"),
            PyValue::Int(u64::MAX as i128)
        );
        assert_eq!(parse("1.5"), PyValue::Float(1.5));
        assert_eq!(parse(r#"["x"]"#), PyValue::List(vec!["x".into()]));
        assert_eq!(parse("1.5").type_name(), "float");
    }
}
