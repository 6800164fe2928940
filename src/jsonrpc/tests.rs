//! Unit tests of the envelope: ids rewritten and restored, raw params and results, batch
//! answers matched to their calls.

use bytes::Bytes;

use super::*;
use crate::error::{INVALID_REQUEST, PARSE_ERROR};

fn calls<'a>(req: &'a ClientRequest<'a>) -> Vec<&'a Call<'a>> {
    req.items
        .iter()
        .filter_map(|i| match i {
            Item::Call(c) => Some(c),
            Item::Invalid { .. } => None,
        })
        .collect()
}

fn answer_for(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn single_call_keeps_id_and_params_raw() {
    let body = br#"{"jsonrpc":"2.0","id":"a\u0041","method":"eth_getBlockByNumber","params":["0x1b4", true]}"#;
    let req = parse_request(body, 10).unwrap();
    assert!(!req.batch);
    let c = calls(&req);
    assert_eq!(c[0].method, "eth_getBlockByNumber");
    assert_eq!(c[0].id.unwrap().get(), r#""a\u0041""#);
    assert_eq!(
        c[0].params.unwrap().get(),
        r#"["0x1b4", true]"#,
        "params byte for byte"
    );
    let up = encode_upstream(&c, false);
    assert_eq!(
        std::str::from_utf8(&up).unwrap(),
        r#"{"jsonrpc":"2.0","id":0,"method":"eth_getBlockByNumber","params":["0x1b4", true]}"#
    );
}

#[test]
fn batch_is_rewritten_to_positions_and_answered_in_request_order() {
    let body = br#"[{"jsonrpc":"2.0","id":7,"method":"a"},{"jsonrpc":"2.0","id":7,"method":"b","params":[]},{"jsonrpc":"2.0","method":"note"},{"jsonrpc":"2.0","id":null,"method":"c"}]"#;
    let req = parse_request(body, 10).unwrap();
    let c = calls(&req);
    assert_eq!(c.len(), 4);
    let up = String::from_utf8(encode_upstream(&c, true)).unwrap();
    assert!(
        up.starts_with(r#"[{"jsonrpc":"2.0","id":0,"method":"a"},{"jsonrpc":"2.0","id":1,"#),
        "{up}"
    );
    // The upstream answers out of order.
    let upstream = br#"[{"jsonrpc":"2.0","id":3,"result":null},{"jsonrpc":"2.0","id":1,"result":"B"},{"id":2,"result":1},{"jsonrpc":"2.0","id":0,"error":{"code":-32601,"message":"nope"}}]"#;
    let answers = parse_answers(&Bytes::from_static(upstream), 4, true).unwrap();
    let replies = c
        .iter()
        .zip(&answers)
        .filter_map(|(c, a)| c.id.map(|id| (Some(id), Reply::Upstream(a))));
    let out = String::from_utf8(encode_client(true, replies).to_vec()).unwrap();
    assert_eq!(
        out,
        r#"[{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"nope"}},{"jsonrpc":"2.0","id":7,"result":"B"},{"jsonrpc":"2.0","id":null,"result":null}]"#
    );
}

#[test]
fn ids_of_every_json_type() {
    for (id, ok) in [
        ("1", true),
        ("-1.5e3", true),
        ("18446744073709551616123", true),
        ("\"x\"", true),
        ("null", true),
        ("true", false),
        ("{}", false),
        ("[1]", false),
    ] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
        let req = parse_request(body.as_bytes(), 10).unwrap();
        match (&req.items[0], ok) {
            (Item::Call(c), true) => assert_eq!(c.id.unwrap().get(), id),
            (Item::Invalid { id: None, .. }, false) => {}
            (other, _) => panic!("id {id}: {other:?}"),
        }
    }
}

#[test]
fn whole_body_errors() {
    let code = |body: &[u8]| parse_request(body, 3).unwrap_err().code();
    assert_eq!(code(b"{"), PARSE_ERROR);
    assert_eq!(code(b""), PARSE_ERROR);
    assert_eq!(code(b"\xff\xfe"), PARSE_ERROR);
    assert_eq!(code(b"[]"), INVALID_REQUEST);
    assert_eq!(code(b"42"), INVALID_REQUEST);
    assert_eq!(code(b"\"x\""), INVALID_REQUEST);
    assert_eq!(code(b"nul"), PARSE_ERROR);
    let four = br#"[{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","id":1,"method":"m"}]"#;
    assert!(matches!(
        parse_request(four, 3),
        Err(ClientError::BatchTooLarge { got: 4, max: 3 })
    ));
    let e = error_body(&parse_request(b"{", 3).unwrap_err()).to_vec();
    let v = answer_for(&e);
    assert_eq!(v["id"], serde_json::Value::Null);
    assert_eq!(v["error"]["code"], -32700);
}

#[test]
fn invalid_items_answer_with_their_id() {
    let body = br#"[1,{"jsonrpc":"1.0","id":5,"method":"m"},{"jsonrpc":"2.0","id":6},{"jsonrpc":"2.0","id":8,"method":3},{"jsonrpc":"2.0","id":9,"method":"ok"}]"#;
    let req = parse_request(body, 10).unwrap();
    let ids: Vec<Option<&str>> = req
        .items
        .iter()
        .map(|i| match i {
            Item::Invalid { id, error } => {
                assert_eq!(error.code(), INVALID_REQUEST);
                id.map(RawValue::get)
            }
            Item::Call(c) => Some(c.method.as_str()),
        })
        .collect();
    assert_eq!(ids, [None, Some("5"), Some("6"), Some("8"), Some("ok")]);
}

#[test]
fn missing_jsonrpc_version_is_invalid() {
    let req = parse_request(br#"{"id":1,"method":"m"}"#, 1).unwrap();
    assert!(matches!(req.items[0], Item::Invalid { .. }));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert_eq!(
        parse_request(deep.as_bytes(), 10).unwrap_err().code(),
        PARSE_ERROR
    );
    let in_params = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{deep}}}"#);
    assert_eq!(
        parse_request(in_params.as_bytes(), 10).unwrap_err().code(),
        PARSE_ERROR
    );
    // Brackets inside strings do not count; 128 levels are fine.
    let ok = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":["{}\\\"[[",{}{}]}}"#,
        "[".repeat(500),
        "[".repeat(126),
        "]".repeat(126)
    );
    assert!(parse_request(ok.as_bytes(), 10).is_ok(), "{ok:.80}");
}

#[test]
fn short_or_mismatched_batch_answers_are_rejected() {
    /// The variant, by name: each case must be told apart by type, not only by its text.
    fn variant(e: &AnswerError) -> &'static str {
        match e {
            AnswerError::Malformed { .. } => "Malformed",
            AnswerError::Count { .. } => "Count",
            AnswerError::NoId => "NoId",
            AnswerError::UnknownId(_) => "UnknownId",
            AnswerError::DuplicateId(_) => "DuplicateId",
            AnswerError::NotResultOrError(_) => "NotResultOrError",
            AnswerError::ErrorWithoutCode => "ErrorWithoutCode",
            AnswerError::Unexpected { .. } => "Unexpected",
        }
    }
    let bad: &[(&[u8], &str, &str)] = &[
        (br#"[{"id":0,"result":1}]"#, "Count", "1 items for 2"),
        (
            br#"[{"id":0,"result":1},{"id":0,"result":2}]"#,
            "DuplicateId",
            "two answers with id 0",
        ),
        (
            br#"[{"id":0,"result":1},{"id":5,"result":2}]"#,
            "UnknownId",
            "unknown id 5",
        ),
        (
            br#"[{"id":0,"result":1},{"id":18446744073709551615,"result":2}]"#,
            "UnknownId",
            "unknown id 18446744073709551615",
        ),
        (
            br#"[{"id":0,"result":1},{"result":2}]"#,
            "NoId",
            "without a numeric id",
        ),
        (
            br#"[{"id":0,"result":1},{"id":"1","result":2}]"#,
            "Malformed",
            "expected a batch answer",
        ),
        (
            br#"[{"id":0,"result":1},{"id":1}]"#,
            "NotResultOrError",
            "exactly one of result and error",
        ),
        (
            br#"[{"id":0,"result":1},{"id":1,"result":1,"error":{"code":1}}]"#,
            "NotResultOrError",
            "exactly one",
        ),
        (
            br#"[{"id":0,"result":1},{"id":1,"error":{"message":"x"}}]"#,
            "ErrorWithoutCode",
            "integer code",
        ),
        (
            br#"{"id":0,"error":{"code":-32005,"message":"rate limited"}}"#,
            "Malformed",
            "expected a batch answer",
        ),
        (
            b"<html>502 Bad Gateway</html>",
            "Malformed",
            "body starts \"<html>",
        ),
        (b"\x00\x01garbage", "Malformed", "expected a batch answer"),
    ];
    for (body, kind, why) in bad {
        let e = parse_answers(&Bytes::copy_from_slice(body), 2, true).unwrap_err();
        assert_eq!(variant(&e), *kind, "{e}");
        assert!(e.to_string().contains(why), "{e} should contain {why}");
    }
    assert!(parse_answers(&Bytes::from_static(br#"{"id":1,"result":1}"#), 1, false).is_err());
    assert!(parse_answers(&Bytes::from_static(br#"[{"id":0,"result":1}]"#), 1, false).is_err());
}

#[test]
fn null_result_is_an_answer() {
    let a = parse_answers(
        &Bytes::from_static(br#"{"jsonrpc":"2.0","id":0,"result":null}"#),
        1,
        false,
    )
    .unwrap();
    assert!(matches!(&a[0], Answer::Result(r) if r.is_null()));
}

#[test]
fn node_trouble_classification() {
    let a = parse_answers(
        &Bytes::from_static(br#"[{"id":0,"error":{"code":-32000,"message":"header not found"}},{"id":1,"error":{"code":3,"message":"execution reverted","data":"0x08c379a0"}}]"#),
        2,
        true,
    )
    .unwrap();
    assert!(a[0].is_node_trouble());
    assert!(!a[1].is_node_trouble());
    match &a[1] {
        Answer::Error(e) => assert_eq!(
            e.raw.text(),
            r#"{"code":3,"message":"execution reverted","data":"0x08c379a0"}"#
        ),
        Answer::Result(_) => panic!("expected an error"),
    }
}

#[test]
fn notifications_only_get_an_empty_body() {
    let req = parse_request(br#"[{"jsonrpc":"2.0","method":"a"}]"#, 1).unwrap();
    let c = calls(&req);
    let answers = parse_answers(&Bytes::from_static(br#"[{"id":0,"result":1}]"#), 1, true).unwrap();
    let replies = c
        .iter()
        .zip(&answers)
        .filter_map(|(c, a)| c.id.map(|id| (Some(id), Reply::Upstream(a))));
    assert!(encode_client(true, replies).is_empty());
}

#[test]
fn local_error_messages_are_escaped_json() {
    let e = ClientError::InvalidRequest("bad \"quote\" \n".into());
    let v = answer_for(&error_body(&e).to_vec());
    assert_eq!(v["error"]["message"], "invalid request: bad \"quote\" \n");
    assert_eq!(v["jsonrpc"], "2.0");
}

#[test]
fn method_names_are_escaped_upstream() {
    let req = parse_request(br#"{"jsonrpc":"2.0","id":1,"method":"a\"b\u0000"}"#, 1).unwrap();
    let up = encode_upstream(&calls(&req), false);
    let v: serde_json::Value = serde_json::from_slice(&up).unwrap();
    assert_eq!(v["method"], "a\"b\u{0}");
}

/// The client answer for `client` (a request) from `upstream` (the node's body), both ways:
/// as [`encode_client`] writes it, and piece by piece.
fn both_ways(client: &[u8], upstream: &'static [u8]) -> (crate::body::ClientBody, Vec<u8>) {
    let req = parse_request(client, 10).unwrap();
    let n = req.items.len();
    let answers = parse_answers(&Bytes::from_static(upstream), n, req.batch).unwrap();
    let replies = || {
        req.items.iter().zip(&answers).map(|(item, a)| match item {
            Item::Call(c) => (c.id, Reply::Upstream(a)),
            Item::Invalid { .. } => unreachable!(),
        })
    };
    let fast = encode_client(req.batch, replies());
    let slow = encode_pieces(req.batch, replies().collect()).to_vec();
    (fast, slow)
}

#[test]
fn an_answer_numbered_as_sent_is_passed_on_whole() {
    let client =
        br#"[{"jsonrpc":"2.0","id":0,"method":"m"},{"jsonrpc":"2.0","id":1,"method":"m"}]"#;
    let big = r#"[{"jsonrpc":"2.0","id":0,"result":"0xaa"},{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}]
"#;
    let upstream: &'static [u8] = Box::leak(big.to_string().into_boxed_str()).as_bytes();
    let (fast, slow) = both_ways(client, upstream);
    assert_eq!(fast.to_vec(), slow, "the same bytes either way");
    assert_eq!(fast.chunk_count(), 1, "one piece");
    assert_eq!(
        fast.to_vec(),
        &upstream[..upstream.len() - 1],
        "the node's newline left out"
    );
}

#[test]
fn other_ids_or_spacing_are_written_piece_by_piece() {
    for (client, upstream) in [
        // The client's ids differ from the positions sent upstream.
        (
            &br#"[{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","id":2,"method":"m"}]"#[..],
            &br#"[{"jsonrpc":"2.0","id":0,"result":1},{"jsonrpc":"2.0","id":1,"result":2}]"#[..],
        ),
        // The node spaces its envelope or orders its fields otherwise.
        (
            br#"[{"jsonrpc":"2.0","id":0,"method":"m"}]"#,
            br#"[{"jsonrpc": "2.0", "id": 0, "result": 1}]"#,
        ),
        (
            br#"[{"jsonrpc":"2.0","id":0,"method":"m"}]"#,
            br#"[{"id":0,"jsonrpc":"2.0","result":1}]"#,
        ),
        // Answered in another order.
        (
            br#"[{"jsonrpc":"2.0","id":0,"method":"m"},{"jsonrpc":"2.0","id":1,"method":"m"}]"#,
            br#"[{"jsonrpc":"2.0","id":1,"result":2},{"jsonrpc":"2.0","id":0,"result":1}]"#,
        ),
    ] {
        let (fast, slow) = both_ways(client, upstream);
        assert_eq!(fast.to_vec(), slow);
        assert_ne!(
            fast.to_vec(),
            upstream,
            "{}",
            String::from_utf8_lossy(upstream)
        );
    }
}
