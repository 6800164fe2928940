//! JSON-RPC batch answers: pairing responses with their requests by id and
//! deciding, with ethereum-etl's rules, which failures are worth a retry.
//! An answer that is not an array, has too few or too many responses, an
//! unknown or duplicate id, a null result or a JSON-RPC error never reaches
//! the mappers.
//!
//! A batch answer is read once into [`Response`]s whose results stay in the type the caller
//! wants: a [`PyValue`] for the unverified path, or the raw JSON text
//! (`Box<RawValue>`) that the verification reads before it is parsed to a [`PyValue`].

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::pyfmt::json_dumps;
use super::pyvalue::PyValue;

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth another try (the node may catch up or recover).
    Retriable(String),
    /// Retrying cannot help (e.g. the node rejected the parameters).
    Fatal(String),
    /// The answer failed verification (the verdict, one line naming the block and the
    /// check): the next provider is asked, or the same one again after a back-off.
    Wrong(String),
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

/// One response of a batch answer, its result kept as `R`.
#[derive(Debug, Deserialize)]
pub(crate) struct Response<R> {
    /// The request id (an index into the batch).
    id: Option<PyValue>,
    /// The result; `None` when absent or `null`.
    result: Option<R>,
    /// The JSON-RPC error object; `None` when absent or `null`.
    error: Option<PyValue>,
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

/// A call's JSON-RPC error as the failure of its batch, by ethereum-etl's retry rules.
pub(crate) fn error_failure(call: &Call, error: &PyValue) -> Failure {
    let msg = format!("{}: node returned error {}", call.label, json_dumps(error));
    if is_retriable_code(&error.get_or_none("code")) {
        Failure::Retriable(msg)
    } else {
        Failure::Fatal(msg)
    }
}

/// Reads a batch answer's bytes into responses (results as `R`).
pub(crate) fn parse_answer<R: DeserializeOwned>(
    calls: &[Call],
    bytes: &[u8],
) -> std::result::Result<Vec<Response<R>>, Failure> {
    match serde_json::from_slice::<Vec<Response<R>>>(bytes) {
        Ok(responses) => Ok(responses),
        Err(e) => Err(Failure::Retriable(
            match serde_json::from_slice::<PyValue>(bytes) {
                Ok(
                    other @ (PyValue::Dict(_) | PyValue::Str(_) | PyValue::Int(_) | PyValue::None),
                ) => {
                    format!(
                        "expected a JSON-RPC batch answer (array) for {}, got {}",
                        span(calls),
                        truncate(&json_dumps(&other))
                    )
                }
                _ => format!("garbled JSON-RPC answer ({e}) for {}", span(calls)),
            },
        )),
    }
}

/// Pairs a batch answer with the calls, by id; a call's JSON-RPC error fails the batch.
pub(crate) fn match_batch<R>(
    calls: &[Call],
    answer: Vec<Response<R>>,
) -> std::result::Result<Vec<R>, Failure> {
    match_batch_items(calls, answer)?
        .into_iter()
        .zip(calls)
        .map(|(item, call)| item.map_err(|error| error_failure(call, &error)))
        .collect()
}

/// Pairs a batch answer with the calls, by id, keeping each call's
/// JSON-RPC error object as its `Err` (for calls whose errors are answers,
/// like a reverted `eth_call`). A null result without an error is still a
/// retriable failure of the whole batch.
pub(crate) fn match_batch_items<R>(
    calls: &[Call],
    answer: Vec<Response<R>>,
) -> std::result::Result<Vec<std::result::Result<R, PyValue>>, Failure> {
    if answer.len() != calls.len() {
        return Err(Failure::Retriable(format!(
            "short or oversized batch answer for {}: {} responses to {} requests",
            span(calls),
            answer.len(),
            calls.len()
        )));
    }
    let mut slots: Vec<Option<std::result::Result<R, PyValue>>> =
        std::iter::repeat_with(|| None).take(calls.len()).collect();
    for response in answer {
        let id = match &response.id {
            Some(PyValue::Int(i)) if *i >= 0 && (*i as usize) < calls.len() => *i as usize,
            other => {
                return Err(Failure::Retriable(format!(
                    "batch answer for {} has a response with an unknown id: {}",
                    span(calls),
                    truncate(&json_dumps(other.as_ref().unwrap_or(&PyValue::None)))
                )))
            }
        };
        let label = &calls[id].label;
        if slots[id].is_some() {
            return Err(Failure::Retriable(format!(
                "duplicate response for {label}"
            )));
        }
        slots[id] = Some(match (response.error, response.result) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => Ok(r),
            (None, None) => {
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
    use serde_json::value::RawValue;

    fn calls(n: usize) -> Vec<Call> {
        (0..n)
            .map(|i| Call {
                method: "eth_getBlockByNumber",
                params: PyValue::List(vec![]),
                label: format!("block {i}"),
            })
            .collect()
    }

    fn matched(n: usize, s: &str) -> std::result::Result<Vec<PyValue>, Failure> {
        let calls = calls(n);
        match_batch(&calls, parse_answer(&calls, s.as_bytes())?)
    }

    #[test]
    fn answers_are_reordered_by_id() {
        let got = matched(2, r#"[{"id":1,"result":"b"},{"id":0,"result":"a"}]"#);
        assert_eq!(got, Ok(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn raw_results_keep_their_exact_text() {
        let calls = calls(2);
        let text = r#"[{"jsonrpc":"2.0","id":1,"result":{"b" : [1, 2]}},{"id":0,"result":"0x1"}]"#;
        let raw: Vec<Box<RawValue>> =
            match_batch(&calls, parse_answer(&calls, text.as_bytes()).unwrap()).unwrap();
        assert_eq!(raw[0].get(), "\"0x1\"");
        assert_eq!(raw[1].get(), "{\"b\" : [1, 2]}");
    }

    #[test]
    fn short_garbled_and_null_answers_are_retriable_and_named() {
        let short = matched(2, r#"[{"id":0,"result":"a"}]"#);
        assert!(matches!(short, Err(Failure::Retriable(m)) if m.contains("1 responses to 2")));
        let null = matched(2, r#"[{"id":0,"result":"a"},{"id":1,"result":null}]"#);
        assert!(matches!(null, Err(Failure::Retriable(m)) if m.contains("block 1")));
        let not_array = matched(1, r#"{"oops":1}"#);
        assert!(
            matches!(&not_array, Err(Failure::Retriable(m)) if m.contains("(array)")),
            "{not_array:?}"
        );
        let garbled = matched(1, r#"[{"id":0,"result":"#);
        assert!(matches!(garbled, Err(Failure::Retriable(m)) if m.contains("garbled")));
        let dup = matched(2, r#"[{"id":0,"result":1},{"id":0,"result":2}]"#);
        assert!(matches!(dup, Err(Failure::Retriable(_))));
        let unknown = matched(1, r#"[{"id":7,"result":1}]"#);
        assert!(matches!(unknown, Err(Failure::Retriable(m)) if m.contains("unknown id: 7")));
    }

    #[test]
    fn error_codes_follow_ethereum_etl_retry_rules() {
        let retriable = matched(1, r#"[{"id":0,"error":{"code":-32000,"message":"x"}}]"#);
        assert!(matches!(retriable, Err(Failure::Retriable(_))));
        let fatal = matched(1, r#"[{"id":0,"error":{"code":-32602,"message":"bad"}}]"#);
        assert!(matches!(fatal, Err(Failure::Fatal(m)) if m.contains("block 0")));
        let calls = calls(1);
        let text = r#"[{"id":0,"error":{"code":3,"message":"reverted"},"result":null}]"#;
        let items =
            match_batch_items::<PyValue>(&calls, parse_answer(&calls, text.as_bytes()).unwrap());
        assert!(matches!(&items.unwrap()[0], Err(e) if e.get("code") == Some(&PyValue::Int(3))));
    }
}
