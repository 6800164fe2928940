//! JSON-RPC batch answers: pairing responses with their requests by id and
//! deciding, with ethereum-etl's rules, which failures are worth a retry.
//! An answer that is not an array, has too few or too many responses, an
//! unknown or duplicate id, a null result or a JSON-RPC error never reaches
//! the mappers.

use super::pyfmt::json_dumps;
use super::pyvalue::PyValue;

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth another try (the node may catch up or recover).
    Retriable(String),
    /// Retrying cannot help (e.g. the node rejected the parameters).
    Fatal(String),
}

/// One call in a batch.
#[derive(Debug, Clone)]
pub struct Call {
    /// JSON-RPC method name.
    pub method: &'static str,
    /// The parameters array.
    pub params: PyValue,
    /// What this call is about, for error messages ("block 12", "transaction 0x…").
    pub label: String,
}

/// Describes the calls of a batch for messages.
pub(crate) fn span(calls: &[Call]) -> String {
    match calls {
        [] => "an empty batch".to_owned(),
        [one] => one.label.clone(),
        [first, .., last] => format!("{} .. {}", first.label, last.label),
    }
}

/// ethereum-etl's retriable JSON-RPC error codes.
fn is_retriable_code(code: &PyValue) -> bool {
    match code {
        PyValue::Int(c) => *c == -32603 || (-32099..=-32000).contains(c),
        _ => false,
    }
}

/// Pairs a parsed batch answer with the calls, by id.
pub(crate) fn match_batch(
    calls: &[Call],
    answer: PyValue,
) -> std::result::Result<Vec<PyValue>, Failure> {
    match_batch_items(calls, answer)?
        .into_iter()
        .zip(calls)
        .map(|(item, call)| {
            item.map_err(|error| {
                let msg = format!("{}: node returned error {}", call.label, json_dumps(&error));
                let code = error.get("code").cloned().unwrap_or(PyValue::None);
                if is_retriable_code(&code) {
                    Failure::Retriable(msg)
                } else {
                    Failure::Fatal(msg)
                }
            })
        })
        .collect()
}

/// Pairs a parsed batch answer with the calls, by id, keeping each call's
/// JSON-RPC error object as its `Err` (for calls whose errors are answers,
/// like a reverted `eth_call`). A null result without an error is still a
/// retriable failure of the whole batch.
pub(crate) fn match_batch_items(
    calls: &[Call],
    answer: PyValue,
) -> std::result::Result<Vec<std::result::Result<PyValue, PyValue>>, Failure> {
    let items = match answer {
        PyValue::List(items) => items,
        other => {
            let msg = format!(
                "expected a JSON-RPC batch answer (array) for {}, got {}",
                span(calls),
                truncate(&json_dumps(&other))
            );
            return Err(Failure::Retriable(msg));
        }
    };
    if items.len() != calls.len() {
        return Err(Failure::Retriable(format!(
            "short or oversized batch answer for {}: {} responses to {} requests",
            span(calls),
            items.len(),
            calls.len()
        )));
    }
    let mut slots: Vec<Option<std::result::Result<PyValue, PyValue>>> = vec![None; calls.len()];
    for item in items {
        let id = match item.get("id") {
            Some(PyValue::Int(i)) if *i >= 0 && (*i as usize) < calls.len() => *i as usize,
            _ => {
                return Err(Failure::Retriable(format!(
                    "batch answer for {} has a response with an unknown id: {}",
                    span(calls),
                    truncate(&json_dumps(&item))
                )))
            }
        };
        let label = &calls[id].label;
        if slots[id].is_some() {
            return Err(Failure::Retriable(format!(
                "duplicate response for {label}"
            )));
        }
        let PyValue::Dict(entries) = item else {
            unreachable!("an item with an id is a dict")
        };
        let mut result = None;
        let mut error = None;
        for (k, v) in entries {
            match k.as_str() {
                "result" => result = Some(v),
                "error" if !v.is_none() => error = Some(v),
                _ => {}
            }
        }
        slots[id] = Some(match (error, result) {
            (Some(e), _) => Err(e),
            (None, Some(r)) if !r.is_none() => Ok(r),
            _ => {
                return Err(Failure::Retriable(format!(
                    "{label}: node returned null (is it synced?)"
                )))
            }
        });
    }
    Ok(slots.into_iter().flatten().collect())
}

fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        s.to_owned()
    } else {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(n: usize) -> Vec<Call> {
        (0..n)
            .map(|i| Call {
                method: "eth_getBlockByNumber",
                params: PyValue::List(vec![]),
                label: format!("block {i}"),
            })
            .collect()
    }

    fn parse(s: &str) -> PyValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn answers_are_reordered_by_id() {
        let got = match_batch(
            &calls(2),
            parse(r#"[{"id":1,"result":"b"},{"id":0,"result":"a"}]"#),
        );
        assert_eq!(got, Ok(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn short_garbled_and_null_answers_are_retriable_and_named() {
        let short = match_batch(&calls(2), parse(r#"[{"id":0,"result":"a"}]"#));
        assert!(matches!(short, Err(Failure::Retriable(m)) if m.contains("1 responses to 2")));
        let null = match_batch(
            &calls(2),
            parse(r#"[{"id":0,"result":"a"},{"id":1,"result":null}]"#),
        );
        assert!(matches!(null, Err(Failure::Retriable(m)) if m.contains("block 1")));
        let garbled = match_batch(&calls(1), parse(r#"{"oops":1}"#));
        assert!(matches!(garbled, Err(Failure::Retriable(_))));
        let dup = match_batch(
            &calls(2),
            parse(r#"[{"id":0,"result":1},{"id":0,"result":2}]"#),
        );
        assert!(matches!(dup, Err(Failure::Retriable(_))));
    }

    #[test]
    fn error_codes_follow_ethereum_etl_retry_rules() {
        let retriable = match_batch(
            &calls(1),
            parse(r#"[{"id":0,"error":{"code":-32000,"message":"x"}}]"#),
        );
        assert!(matches!(retriable, Err(Failure::Retriable(_))));
        let fatal = match_batch(
            &calls(1),
            parse(r#"[{"id":0,"error":{"code":-32602,"message":"bad"}}]"#),
        );
        assert!(matches!(fatal, Err(Failure::Fatal(m)) if m.contains("block 0")));
    }
}
