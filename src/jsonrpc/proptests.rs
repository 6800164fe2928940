//! Property-based fuzzing of the JSON-RPC envelope: the client request/batch parser on
//! arbitrary bytes and on near-valid JSON, the client answer's shape, and upstream answer
//! validation ([`parse_answers`]) against permuted, short, duplicated and garbage answers.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::error::{INVALID_REQUEST, PARSE_ERROR};
use crate::fuzzing::check;

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An id of a type JSON-RPC allows (number, string, null), as the client writes it.
fn valid_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (-1000i32..1000, 0u8..100).prop_map(|(a, b)| format!("{a}.{b}")),
        1 => (1u8..9, 0u8..20).prop_map(|(a, e)| format!("{a}e{e}")),
        4 => ".{0,10}".prop_map(|s| Value::from(s).to_string()),
        1 => Just("null".to_string()),
    ]
}

/// An id as the client writes it: raw text of every JSON type, the valid ones more often.
fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => valid_id(),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => any_json().prop_filter("container", |v| v.is_array() || v.is_object())
            .prop_map(|v| v.to_string()),
    ]
}

/// One batch item, near valid: each field present or not, right or wrong type.
#[derive(Debug, Clone)]
struct ItemSpec {
    /// Not an object at all (this JSON instead).
    scalar: Option<Value>,
    jsonrpc: Option<Value>,
    id: Option<String>,
    method: Option<Value>,
    params: Option<Value>,
}

fn item_spec() -> impl Strategy<Value = ItemSpec> {
    let jsonrpc = prop_oneof![
        8 => Just(Some(json!("2.0"))),
        1 => Just(None),
        1 => prop_oneof![Just(json!("1.0")), Just(json!(2.0)), Just(json!(null))].prop_map(Some),
    ];
    let method = prop_oneof![
        6 => "[a-z_]{1,12}".prop_map(|m| Some(Value::from(m))),
        1 => Just(Some(json!("eth_getBlockByNumber"))),
        1 => Just(None),
        1 => Just(Some(json!(""))),
        1 => any_json().prop_map(Some),
    ];
    (
        prop::option::weighted(0.05, any_json()),
        jsonrpc,
        prop::option::weighted(0.85, any_id()),
        method,
        prop::option::of(any_json()),
    )
        .prop_map(|(scalar, jsonrpc, id, method, params)| ItemSpec {
            scalar: scalar.filter(|v| !v.is_object()),
            jsonrpc,
            id,
            method,
            params,
        })
}

impl ItemSpec {
    fn text(&self) -> String {
        if let Some(v) = &self.scalar {
            return v.to_string();
        }
        let mut fields = Vec::new();
        if let Some(v) = &self.jsonrpc {
            fields.push(format!("\"jsonrpc\":{v}"));
        }
        if let Some(id) = &self.id {
            fields.push(format!("\"id\":{id}"));
        }
        if let Some(v) = &self.method {
            fields.push(format!("\"method\":{v}"));
        }
        if let Some(v) = &self.params {
            fields.push(format!("\"params\":{v}"));
        }
        format!("{{{}}}", fields.join(","))
    }

    /// The model: `None` for a notification (no answer), else the id the answer carries
    /// (raw) and whether it is an error (`-32600`) rather than the call's answer.
    fn expected(&self) -> Option<(String, bool)> {
        if self.scalar.is_some() {
            return Some(("null".into(), true));
        }
        let id_ok = self
            .id
            .as_ref()
            .is_none_or(|id| !matches!(id.as_bytes()[0], b'{' | b'[' | b't' | b'f'));
        if !id_ok {
            return Some(("null".into(), true));
        }
        let id = self.id.clone().unwrap_or_else(|| "null".into());
        let valid = self.jsonrpc == Some(json!("2.0"))
            && matches!(&self.method, Some(Value::String(m)) if !m.is_empty());
        match (valid, &self.id) {
            (true, None) => None,
            (true, Some(_)) => Some((id, false)),
            (false, _) => Some((id, true)),
        }
    }
}

/// The client answer the proxy would write for a parsed request, every call answered with
/// a marker result naming its method.
fn answer_locally(request: &ClientRequest<'_>) -> Vec<u8> {
    let answers: Vec<Option<Answer>> = request
        .items
        .iter()
        .map(|item| match item {
            Item::Call(c) => Some(Answer::Result(RawJson::from(
                Value::from(format!("answer:{}", c.method)).to_string(),
            ))),
            Item::Invalid { .. } => None,
        })
        .collect();
    let replies = request
        .items
        .iter()
        .zip(&answers)
        .filter_map(|(item, answer)| match (item, answer) {
            (Item::Invalid { id, error }, _) => Some((*id, Reply::Local(error))),
            (Item::Call(c), Some(a)) => Some((Some(c.id?), Reply::Upstream(a))),
            (Item::Call(_), None) => unreachable!(),
        });
    encode_client(request.batch, replies).to_vec()
}

/// Checks the JSON-RPC shape of one answer object; returns its raw id.
fn answer_shape(item: &RawValue) -> Result<(String, Option<i64>), TestCaseError> {
    #[derive(Deserialize)]
    struct Shape<'a> {
        jsonrpc: String,
        #[serde(borrow)]
        id: &'a RawValue,
        #[serde(default)]
        result: Option<Box<RawValue>>,
        #[serde(default)]
        error: Option<Value>,
    }
    let shape: Shape<'_> = serde_json::from_str(item.get())
        .map_err(|e| TestCaseError::fail(format!("answer item {}: {e}", item.get())))?;
    prop_assert_eq!(shape.jsonrpc, "2.0");
    prop_assert!(
        shape.result.is_some() != shape.error.is_some(),
        "{}",
        item.get()
    );
    let code = match shape.error {
        Some(e) => {
            prop_assert!(e["message"].is_string(), "{}", e);
            Some(
                e["code"]
                    .as_i64()
                    .ok_or_else(|| TestCaseError::fail("no code"))?,
            )
        }
        None => None,
    };
    Ok((shape.id.get().to_string(), code))
}

/// Whatever the bytes, the parser answers (no panic) and the answer is one JSON-RPC object
/// or array of the right shape.
fn any_body_gets_a_well_formed_answer(body: &[u8], max_batch: usize) -> Result<(), TestCaseError> {
    let out = match parse_request(body, max_batch) {
        Ok(request) => {
            let out = answer_locally(&request);
            if out.is_empty() {
                // Only notifications.
                prop_assert!(request
                    .items
                    .iter()
                    .all(|i| matches!(i, Item::Call(c) if c.id.is_none())));
                return Ok(());
            }
            out
        }
        Err(e) => {
            let out = error_body(&e).to_vec();
            let v: Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(&v["id"], &Value::Null);
            prop_assert!(matches!(e.code(), PARSE_ERROR | INVALID_REQUEST));
            out
        }
    };
    let raw: &RawValue = serde_json::from_slice(&out)
        .map_err(|e| TestCaseError::fail(format!("answer is not JSON ({e}): {out:?}")))?;
    if raw.get().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap();
        prop_assert!(!items.is_empty());
        for item in items {
            answer_shape(item)?;
        }
    } else {
        answer_shape(raw)?;
    }
    Ok(())
}

#[test]
fn fuzz_parser_on_arbitrary_bytes() {
    check(
        "parser/arbitrary-bytes",
        prop::collection::vec(any::<u8>(), 0..256),
        |body| any_body_gets_a_well_formed_answer(&body, 10),
    );
}

#[test]
fn fuzz_parser_on_json_texts_and_their_mutations() {
    // Valid JSON of any shape, then cut short or with one byte changed.
    let mutated = (
        any_json(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0u8..3,
    )
        .prop_map(|(v, at, byte, how)| {
            let mut text = v.to_string().into_bytes();
            let i = at.index(text.len() + 1);
            match how {
                0 => {}
                1 => text.truncate(i),
                _ => text.insert(i, byte),
            }
            text
        });
    check("parser/json-mutations", mutated, |body| {
        any_body_gets_a_well_formed_answer(&body, 10)
    });
}

#[test]
fn fuzz_batches_answer_every_item_in_order_with_its_id() {
    let batch = (prop::collection::vec(item_spec(), 1..12), any::<bool>());
    check("parser/near-valid-batches", batch, |(specs, as_batch)| {
        // A lone non-object is a whole-body error, checked by the targets above.
        let as_batch = as_batch || specs.len() > 1 || specs[0].scalar.is_some();
        let texts: Vec<String> = specs.iter().map(ItemSpec::text).collect();
        let body = if as_batch {
            format!("[{}]", texts.join(","))
        } else {
            texts[0].clone()
        };
        let request = parse_request(body.as_bytes(), 100)
            .map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(request.batch, as_batch);
        prop_assert_eq!(request.items.len(), specs.len());
        for (item, spec) in request.items.iter().zip(&specs) {
            if let (Item::Call(call), Some(Value::String(m))) = (item, &spec.method) {
                prop_assert_eq!(&call.method, m);
                prop_assert_eq!(
                    call.params.map(|p| p.get().to_string()),
                    spec.params.as_ref().map(Value::to_string)
                );
            }
        }
        let expected: Vec<(String, bool)> = specs.iter().filter_map(ItemSpec::expected).collect();
        let out = answer_locally(&request);
        if expected.is_empty() {
            prop_assert!(out.is_empty(), "notifications only, got {:?}", out);
            return Ok(());
        }
        let items: Vec<&RawValue> = if as_batch {
            serde_json::from_slice(&out).unwrap()
        } else {
            vec![serde_json::from_slice(&out).unwrap()]
        };
        prop_assert_eq!(items.len(), expected.len(), "{}", body);
        for (item, (id, is_error)) in items.into_iter().zip(expected) {
            let (got_id, code) = answer_shape(item)?;
            prop_assert_eq!(&got_id, &id, "{}", body);
            prop_assert_eq!(code.is_some(), is_error, "{} -> {}", body, item.get());
            if is_error {
                prop_assert_eq!(code, Some(INVALID_REQUEST));
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_batch_limits_and_nesting() {
    let shapes = (0usize..40, 1usize..200, 1usize..30);
    check("parser/limits", shapes, |(items, depth, max)| {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#;
        let body = format!("[{}]", vec![call; items].join(","));
        match parse_request(body.as_bytes(), max) {
            Ok(r) => prop_assert!(items >= 1 && items <= max && r.items.len() == items),
            Err(e) if items == 0 => prop_assert_eq!(e.code(), INVALID_REQUEST),
            Err(e) => prop_assert!(
                items > max && matches!(e, ClientError::BatchTooLarge { .. }),
                "{} items, max {}: {}",
                items,
                max,
                e
            ),
        }
        let nested = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let parsed = parse_request(nested.as_bytes(), max);
        // The call object itself is one level.
        if depth < MAX_JSON_DEPTH {
            prop_assert!(parsed.is_ok(), "depth {}", depth);
        } else {
            prop_assert_eq!(parsed.map(|_| ()).unwrap_err().code(), PARSE_ERROR);
        }
        Ok(())
    });
}

/// Upstream answers to `n` calls: ids 0..n, results naming their id, in any order.
fn answers_in_order(n: usize, order: &[usize], errors: &[bool]) -> String {
    let items: Vec<String> = order
        .iter()
        .map(|&i| {
            if errors[i] {
                format!(
                    r#"{{"jsonrpc":"2.0","id":{i},"error":{{"code":-32000,"message":"e{i}"}}}}"#
                )
            } else {
                format!(r#"{{"jsonrpc":"2.0","id":{i},"result":"r{i}"}}"#)
            }
        })
        .collect();
    debug_assert_eq!(items.len(), n);
    format!("[{}]", items.join(","))
}

#[test]
fn fuzz_upstream_answers_are_matched_by_id_whatever_the_order() {
    let case = (1usize..20).prop_flat_map(|n| {
        (
            Just(n),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            prop::collection::vec(any::<bool>(), n),
        )
    });
    check("answers/permuted", case, |(n, order, errors)| {
        let body = answers_in_order(n, &order, &errors);
        let answers = parse_answers(&bytes::Bytes::from(body.clone()), n, true)
            .map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(answers.len(), n);
        for (i, answer) in answers.iter().enumerate() {
            match answer {
                Answer::Result(r) => {
                    prop_assert!(!errors[i]);
                    prop_assert_eq!(r.text(), format!("\"r{i}\""));
                }
                Answer::Error(e) => {
                    prop_assert!(errors[i]);
                    prop_assert_eq!(&e.message, &format!("e{i}"));
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_incomplete_upstream_answers_are_rejected() {
    // Drop, duplicate or renumber one item: never accepted.
    let case = (1usize..20).prop_flat_map(|n| (Just(n), 0..n, 0u8..4, any::<u64>()));
    check("answers/incomplete", case, |(n, victim, how, other)| {
        let mut items: Vec<Value> = (0..n)
            .map(|i| json!({"jsonrpc":"2.0","id":i,"result":i}))
            .collect();
        match how {
            0 => {
                items.remove(victim);
            }
            1 => items.push(items[victim].clone()),
            2 => {
                let bad = if (other as usize) < n {
                    other + n as u64
                } else {
                    other
                };
                items[victim]["id"] = json!(bad);
            }
            _ => {
                items[victim]["id"] = json!(victim.to_string());
            }
        }
        let body = Value::Array(items).to_string();
        prop_assert!(
            parse_answers(&bytes::Bytes::from(body.clone()), n, true).is_err(),
            "{}",
            body
        );
        Ok(())
    });
}

#[test]
fn fuzz_upstream_garbage_never_panics() {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any_json(), 0..5)
            .prop_map(|v| Value::Array(v).to_string().into_bytes()),
    ];
    check(
        "answers/garbage",
        (body, 0usize..5, any::<bool>()),
        |(body, n, batch)| {
            if let Ok(answers) = parse_answers(&bytes::Bytes::from(body), n, batch) {
                prop_assert_eq!(answers.len(), n);
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_encode_upstream_renumbers_and_keeps_params() {
    let calls = prop::collection::vec(("[a-z_]{1,10}", prop::option::of(any_json())), 1..10);
    check(
        "encode/upstream",
        (calls, any::<bool>()),
        |(specs, batch)| {
            let batch = batch || specs.len() > 1;
            let texts: Vec<String> = specs
                .iter()
                .map(|(m, p)| {
                    let mut v = Map::new();
                    v.insert("jsonrpc".into(), json!("2.0"));
                    v.insert("id".into(), json!("client"));
                    v.insert("method".into(), json!(m));
                    if let Some(p) = p {
                        v.insert("params".into(), p.clone());
                    }
                    Value::Object(v).to_string()
                })
                .collect();
            let body = format!("[{}]", texts.join(","));
            let request = parse_request(body.as_bytes(), 100).unwrap();
            let calls: Vec<&Call<'_>> = request
                .items
                .iter()
                .map(|i| match i {
                    Item::Call(c) => c,
                    Item::Invalid { error, .. } => panic!("{error}"),
                })
                .collect();
            #[derive(Deserialize)]
            struct Sent {
                id: Value,
                method: String,
                #[serde(default, deserialize_with = "present")]
                params: Option<Box<RawValue>>,
            }
            let sent = encode_upstream(&calls, batch);
            let sent: Vec<Sent> = if batch {
                serde_json::from_slice(&sent).unwrap()
            } else {
                vec![serde_json::from_slice(&sent).unwrap()]
            };
            prop_assert_eq!(sent.len(), specs.len());
            for (i, (item, (m, p))) in sent.iter().zip(&specs).enumerate() {
                prop_assert_eq!(&item.id, &json!(i));
                prop_assert_eq!(&item.method, m);
                // Byte for byte: the text the client wrote.
                prop_assert_eq!(
                    item.params.as_ref().map(|r| r.get().to_string()),
                    p.as_ref().map(Value::to_string)
                );
            }
            Ok(())
        },
    );
}

/// A raw JSON value as a node may write it: canonical text of any value, or one of the
/// shapes a scanner gets wrong (escapes, huge numbers, spacing inside the value, duplicate
/// keys), which must reach the client byte for byte.
fn any_raw_value() -> impl Strategy<Value = String> {
    let tricky = prop_oneof![
        Just(r#""\"}],{\"id\":1,\"result\":""#.to_string()),
        Just(r#""\u00e9\n\\\"\/""#.to_string()),
        Just("123456789012345678901234567890123456789".to_string()),
        Just("-0.0e-400".to_string()),
        Just("1E+400".to_string()),
        Just("[1 , 2 ,\n{ \"a\" : null }]".to_string()),
        Just(r#"{"a":1,"a":2}"#.to_string()),
        Just(r#"{"result":{"id":0},"error":null}"#.to_string()),
        Just("null".to_string()),
        (1usize..3000).prop_map(|n| format!("\"0x{}\"", "ab".repeat(n))),
    ];
    prop_oneof![2 => any_json().prop_map(|v| v.to_string()), 1 => tricky]
}

/// How a node writes the envelope of one answer item.
#[derive(Debug, Clone, Copy)]
enum Envelope {
    /// `{"jsonrpc":"2.0","id":N,"result":…}`, as nodewatch writes it.
    Canonical,
    /// `{"jsonrpc": "2.0", "id": N, "result": …}`.
    Spaced,
    /// `{"id":N,"jsonrpc":"2.0","result":…}`.
    Reordered,
    /// A field nodewatch does not write.
    Extra,
}

fn envelope_text(style: Envelope, id: usize, key: &str, value: &str) -> String {
    match style {
        Envelope::Canonical => format!(r#"{{"jsonrpc":"2.0","id":{id},"{key}":{value}}}"#),
        Envelope::Spaced => format!(r#"{{"jsonrpc": "2.0", "id": {id}, "{key}": {value}}}"#),
        Envelope::Reordered => format!(r#"{{"id":{id},"jsonrpc":"2.0","{key}":{value}}}"#),
        Envelope::Extra => format!(r#"{{"jsonrpc":"2.0","id":{id},"{key}":{value},"x":1}}"#),
    }
}

/// One answer item of the client body, raw, as serde_json reads it.
#[derive(Deserialize)]
struct ClientItem {
    jsonrpc: String,
    id: Box<RawValue>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Box<RawValue>>,
}

#[test]
fn fuzz_client_answer_is_the_same_whether_passed_through_or_written() {
    let style = prop_oneof![
        4 => Just(Envelope::Canonical),
        1 => Just(Envelope::Spaced),
        1 => Just(Envelope::Reordered),
        1 => Just(Envelope::Extra),
    ];
    let item = (any_raw_value(), prop::option::of(-33000i64..-32000), style).boxed();
    let case = (1usize..8).prop_flat_map(move |n| {
        (
            prop::collection::vec(item.clone(), n),
            prop_oneof![3 => Just(None), 1 => prop::collection::vec(valid_id(), n).prop_map(Some)],
            prop_oneof![3 => Just((0..n).collect::<Vec<_>>()), 1 => Just((0..n).collect::<Vec<_>>()).prop_shuffle()],
            any::<bool>(),
            prop_oneof![Just(""), Just("\n"), Just(" \r\n\t")],
        )
    });
    check(
        "answers/pass-through",
        case,
        |(items, client_ids, order, batch, trailing)| {
            let n = items.len();
            let batch = batch || n > 1;
            // The client's ids: the positions nodewatch sends upstream, or any others.
            let ids: Vec<String> =
                client_ids.unwrap_or_else(|| (0..n).map(|i| i.to_string()).collect());
            let calls: Vec<String> = ids
                .iter()
                .map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#))
                .collect();
            let request = if batch {
                format!("[{}]", calls.join(","))
            } else {
                calls[0].clone()
            };
            let values: Vec<(&str, String)> = items
                .iter()
                .map(|(value, error, _)| match error {
                    Some(code) => (
                        "error",
                        format!(r#"{{"code":{code},"message":"m","data":{value}}}"#),
                    ),
                    None => ("result", value.clone()),
                })
                .collect();
            let answered: Vec<String> = order
                .iter()
                .map(|&i| envelope_text(items[i].2, i, values[i].0, &values[i].1))
                .collect();
            let upstream = if batch {
                format!("[{}]{trailing}", answered.join(","))
            } else {
                format!("{}{trailing}", answered[0])
            };
            let req = parse_request(request.as_bytes(), 10)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Ids of a type JSON-RPC forbids are answered locally: not this property's case.
            prop_assume!(req.items.iter().all(|i| matches!(i, Item::Call(_))));
            let answers = parse_answers(&bytes::Bytes::from(upstream.clone()), n, batch)
                .map_err(|e| TestCaseError::fail(format!("{e}: {upstream}")))?;
            let replies = || {
                req.items.iter().zip(&answers).map(|(item, a)| match item {
                    Item::Call(c) => (c.id, Reply::Upstream(a)),
                    Item::Invalid { .. } => unreachable!("assumed away"),
                })
            };
            let fast = encode_client(batch, replies());
            let slow = encode_pieces(batch, replies().collect()).to_vec();
            prop_assert_eq!(fast.to_vec(), slow.clone(), "upstream {}", upstream);
            // The shortcut is taken exactly where the node's body is the client's answer.
            let as_written = (0..n).all(|i| order[i] == i && ids[i] == i.to_string())
                && items
                    .iter()
                    .all(|(_, _, s)| matches!(s, Envelope::Canonical));
            let passed = upstream_body_as_is(batch, &replies().collect::<Vec<_>>()).is_some();
            prop_assert_eq!(passed, as_written, "upstream {}", upstream);
            if as_written {
                prop_assert_eq!(fast.chunk_count(), 1);
            }
            // The oracle: serde_json reads back every id and value byte for byte.
            let got: Vec<ClientItem> = if batch {
                serde_json::from_slice(&slow)
            } else {
                serde_json::from_slice(&slow).map(|one| vec![one])
            }
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&slow))))?;
            prop_assert_eq!(got.len(), n);
            for (i, item) in got.iter().enumerate() {
                prop_assert_eq!(&item.jsonrpc, "2.0");
                prop_assert_eq!(item.id.get(), ids[i].as_str());
                let value = item
                    .result
                    .as_ref()
                    .or(item.error.as_ref())
                    .map(|v| v.get());
                prop_assert_eq!(value, Some(values[i].1.as_str()));
                prop_assert_eq!(item.error.is_some(), values[i].0 == "error");
            }
            Ok(())
        },
    );
}
