//! JSON-RPC 2.0 on the wire: client requests in, upstream answers back, client answers out.
//!
//! Only the envelope is parsed. `params`, `result` and `error` stay raw JSON
//! ([`RawValue`]) borrowed from or copied out of the body and are written back byte for byte;
//! nothing is re-serialised. Ids are rewritten on the way upstream to their position (`0..n`),
//! so an upstream answer is matched by position whatever ids, duplicates or id types the
//! client used, and a short batch or an unknown id is detected instead of passed on.

use std::fmt::Write as _;
use std::io::Write as _;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::body::{ClientBody, Writer, SHARE_FROM};
use crate::error::{is_node_trouble, AnswerError, ClientError};

/// One client request: a single call or a batch, each item valid or answered with an error.
#[derive(Debug)]
pub struct ClientRequest<'a> {
    /// Whether the client sent an array (the answer is an array too).
    pub batch: bool,
    /// Items in request order.
    pub items: Vec<Item<'a>>,
}

/// One item of a client request.
#[derive(Debug)]
pub enum Item<'a> {
    /// A well-formed call, forwarded upstream.
    Call(Call<'a>),
    /// A malformed item, answered locally with this error and id (`null` when unknown).
    Invalid {
        /// The id to answer with, raw.
        id: Option<&'a RawValue>,
        /// Why the item is invalid.
        error: ClientError,
    },
}

/// A well-formed call.
#[derive(Debug)]
pub struct Call<'a> {
    /// The client's id, raw (`None` for a notification, which gets no answer item).
    pub id: Option<&'a RawValue>,
    /// The method name.
    pub method: String,
    /// The params, raw.
    pub params: Option<&'a RawValue>,
}

/// The envelope of one client item, every field raw so a bad field type still lets us
/// answer with the item's id.
#[derive(Deserialize)]
struct RawCall<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

/// Deserialises a field that is present (even as `null`) to `Some(raw)`; absent fields
/// take `None` through `#[serde(default)]`. Plain `Option<&RawValue>` would turn `null` into
/// `None`, losing the difference between `"id": null` and a notification.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Deepest nesting of arrays and objects accepted in a client body. serde_json bounds its
/// own recursion, but raw values are skipped without that bound, so deep `params` would
/// otherwise be passed upstream.
pub const MAX_JSON_DEPTH: usize = 128;

/// Parses a client body. Whole-body problems are `Err`; per-item problems become
/// [`Item::Invalid`] so the rest of a batch is still served.
pub fn parse_request(body: &[u8], max_batch: usize) -> Result<ClientRequest<'_>, ClientError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ClientError::Parse(format!("body is not UTF-8: {e}")))?;
    check_depth(body, MAX_JSON_DEPTH)?;
    let first = text.trim_start().as_bytes().first().copied();
    match first {
        Some(b'[') => {
            let raw: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|e| ClientError::Parse(e.to_string()))?;
            if raw.is_empty() {
                return Err(ClientError::InvalidRequest("empty batch".into()));
            }
            if raw.len() > max_batch {
                return Err(ClientError::BatchTooLarge {
                    got: raw.len(),
                    max: max_batch,
                });
            }
            Ok(ClientRequest {
                batch: true,
                items: raw.into_iter().map(parse_item).collect(),
            })
        }
        Some(b'{') => {
            let raw: &RawValue =
                serde_json::from_str(text).map_err(|e| ClientError::Parse(e.to_string()))?;
            Ok(ClientRequest {
                batch: false,
                items: vec![parse_item(raw)],
            })
        }
        None => Err(ClientError::Parse("empty body".into())),
        Some(_) => {
            // Valid JSON that is neither object nor array is an invalid request; anything
            // else is a parse error.
            serde_json::from_str::<&RawValue>(text)
                .map_err(|e| ClientError::Parse(e.to_string()))?;
            Err(ClientError::InvalidRequest(
                "expected a request object or a batch array".into(),
            ))
        }
    }
}

/// Rejects bodies nested deeper than `max`; a linear scan that skips strings.
fn check_depth(body: &[u8], max: usize) -> Result<(), ClientError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(ClientError::Parse(format!(
                        "JSON nested deeper than {max} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn parse_item(raw: &RawValue) -> Item<'_> {
    let invalid = |id, why: &str| Item::Invalid {
        id,
        error: ClientError::InvalidRequest(why.to_string()),
    };
    if !raw.get().starts_with('{') {
        return invalid(None, "batch item is not a request object");
    }
    let call: RawCall<'_> = match serde_json::from_str(raw.get()) {
        Ok(call) => call,
        Err(_) => return invalid(None, "malformed request object"),
    };
    let id = match call.id {
        Some(id) if matches!(id.get().as_bytes()[0], b'{' | b'[' | b't' | b'f') => {
            return invalid(None, "id must be a string, number or null");
        }
        other => other,
    };
    if call.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        return invalid(id, "jsonrpc must be \"2.0\"");
    }
    let method = match call.method.map(|m| serde_json::from_str::<String>(m.get())) {
        Some(Ok(method)) if !method.is_empty() => method,
        Some(_) => return invalid(id, "method must be a non-empty string"),
        None => return invalid(id, "missing method"),
    };
    Item::Call(Call {
        id,
        method,
        params: call.params,
    })
}

/// Encodes calls for an upstream, each with its position as id, as a batch or a single call.
pub fn encode_upstream(calls: &[&Call<'_>], batch: bool) -> Vec<u8> {
    let size: usize = calls
        .iter()
        .map(|c| 48 + c.method.len() + c.params.map_or(0, |p| p.get().len()))
        .sum();
    let mut out = Vec::with_capacity(size + 2);
    if batch {
        out.push(b'[');
    }
    for (i, call) in calls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        write!(out, "{i}").expect("writing to a Vec cannot fail");
        out.extend_from_slice(b",\"method\":");
        serde_json::to_writer(&mut out, &call.method).expect("writing to a Vec cannot fail");
        if let Some(params) = call.params {
            out.extend_from_slice(b",\"params\":");
            out.extend_from_slice(params.get().as_bytes());
        }
        out.push(b'}');
    }
    if batch {
        out.push(b']');
    }
    out
}

/// One raw JSON value: a slice of the upstream's answer body (no copy), with that whole body,
/// or text made here.
#[derive(Debug, Clone)]
pub struct RawJson(Bytes, Option<Bytes>);

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for RawJson {}

impl RawJson {
    /// The JSON text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text (it came from a parsed JSON document, so it is UTF-8).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// How many bytes of it a client body copies (large values are shared, not copied).
    fn copied_len(&self) -> usize {
        if self.0.len() < SHARE_FROM {
            self.0.len()
        } else {
            0
        }
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        &self.0[..] == b"null"
    }

    /// The slice of `body` that `raw` (parsed out of `body`) occupies.
    fn within(body: &Bytes, raw: &RawValue) -> Self {
        let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
        Self(
            body.slice(start..start + raw.get().len()),
            Some(body.clone()),
        )
    }
}

impl From<Bytes> for RawJson {
    /// Wraps JSON text nodewatch kept (the answer cache); valid JSON by construction.
    fn from(json: Bytes) -> Self {
        Self(json, None)
    }
}

impl From<String> for RawJson {
    /// Wraps JSON text made by nodewatch itself; the caller vouches that it is valid JSON.
    fn from(json: String) -> Self {
        Self(Bytes::from(json), None)
    }
}

/// One upstream answer item, matched to its call.
#[derive(Debug)]
pub enum Answer {
    /// `result`, raw.
    Result(RawJson),
    /// `error`, raw, with its code and message read for classification.
    Error(RpcError),
}

/// A JSON-RPC error object from an upstream.
#[derive(Debug)]
pub struct RpcError {
    /// `code`.
    pub code: i64,
    /// `message`.
    pub message: String,
    /// The whole object, raw, passed to the client unchanged.
    pub raw: RawJson,
}

impl Answer {
    /// Whether this answer is a node-trouble error (fail over) rather than a real answer.
    pub fn is_node_trouble(&self) -> bool {
        matches!(self, Answer::Error(e) if is_node_trouble(e.code, &e.message))
    }
}

#[derive(Deserialize)]
struct RawAnswer<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: i64,
    #[serde(default)]
    message: String,
}

/// Parses an upstream's answer to `expected` calls sent by [`encode_upstream`], in call
/// order. Anything but exactly one answer per call (not an array, short, unknown, missing or
/// duplicate ids, neither or both of result and error) is an error: never passed on.
/// Results and errors are slices of `body`, not copies.
pub fn parse_answers(
    body: &Bytes,
    expected: usize,
    batch: bool,
) -> Result<Vec<Answer>, AnswerError> {
    let raw: Vec<RawAnswer<'_>> = if batch {
        serde_json::from_slice::<Vec<RawAnswer<'_>>>(body)
            .map_err(|e| AnswerError::malformed(body, "a batch answer array", e))?
    } else {
        serde_json::from_slice::<RawAnswer>(body)
            .map(|item| vec![item])
            .map_err(|e| AnswerError::malformed(body, "an answer object", e))?
    };
    if raw.len() != expected {
        return Err(AnswerError::Count {
            got: raw.len(),
            expected,
        });
    }
    let mut slots: Vec<Option<Answer>> = (0..expected).map(|_| None).collect();
    for item in raw {
        let id = item.id.ok_or(AnswerError::NoId)?;
        let slot = usize::try_from(id)
            .ok()
            .and_then(|at| slots.get_mut(at))
            .ok_or(AnswerError::UnknownId(id))?;
        if slot.is_some() {
            return Err(AnswerError::DuplicateId(id));
        }
        *slot = Some(match (item.result, item.error) {
            (Some(result), None) => Answer::Result(RawJson::within(body, result)),
            (None, Some(raw)) => {
                let fields: ErrorFields =
                    serde_json::from_str(raw.get()).map_err(|_| AnswerError::ErrorWithoutCode)?;
                Answer::Error(RpcError {
                    code: fields.code,
                    message: fields.message,
                    raw: RawJson::within(body, raw),
                })
            }
            _ => return Err(AnswerError::NotResultOrError(id)),
        });
    }
    // Lengths match and ids are unique and in range, so every slot is filled.
    Ok(slots.into_iter().flatten().collect())
}

/// What the client gets for one item.
#[derive(Debug)]
pub enum Reply<'r> {
    /// An upstream's answer, passed through.
    Upstream(&'r Answer),
    /// A locally made error.
    Local(&'r ClientError),
}

/// Encodes the client's answer: one object, or an array with one item per request that has
/// an id, in request order. Returns an empty body when nothing is to be answered
/// (notifications only), as JSON-RPC 2.0 asks. Large results are not copied: the body holds
/// slices of the upstream answers ([`crate::body`]).
pub fn encode_client<'r>(
    batch: bool,
    replies: impl IntoIterator<Item = (Option<&'r RawValue>, Reply<'r>)>,
) -> ClientBody {
    let replies: Vec<_> = replies.into_iter().collect();
    match upstream_body_as_is(batch, &replies) {
        Some(whole) => ClientBody::from(whole),
        None => encode_pieces(batch, replies),
    }
}

/// [`encode_client`] piece by piece: the envelope copied, large values shared.
fn encode_pieces(batch: bool, replies: Vec<(Option<&RawValue>, Reply<'_>)>) -> ClientBody {
    let copied: usize = replies
        .iter()
        .map(|(id, reply)| {
            let body = match reply {
                Reply::Upstream(Answer::Result(r)) => r.copied_len(),
                Reply::Upstream(Answer::Error(e)) => e.raw.copied_len(),
                Reply::Local(_) => 128,
            };
            32 + id.map_or(4, |id| id.get().len()) + body
        })
        .sum();
    let mut out = Writer::with_capacity(copied + 2);
    if batch && !replies.is_empty() {
        out.copy(b"[");
    }
    let answered = !replies.is_empty();
    for (n, (id, reply)) in replies.into_iter().enumerate() {
        if n > 0 {
            out.copy(b",");
        }
        out.copy(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.copy(id.map_or("null", RawValue::get).as_bytes());
        match reply {
            Reply::Upstream(Answer::Result(r)) => {
                out.copy(b",\"result\":");
                out.share(&r.0);
            }
            Reply::Upstream(Answer::Error(e)) => {
                out.copy(b",\"error\":");
                out.share(&e.raw.0);
            }
            Reply::Local(e) => {
                out.copy(b",\"error\":");
                out.copy(error_object(e.code(), &e.to_string()).as_bytes());
            }
        }
        out.copy(b"}");
    }
    if batch && answered {
        out.copy(b"]");
    }
    out.finish()
}

/// The upstream's answer body itself, when it is byte for byte the client's answer: the client
/// numbered its calls 0, 1, … as nodewatch numbers them upstream (ethereum-etl and
/// nodewatch-export do), every call went to one upstream in one request, and the node wrote
/// the envelope as nodewatch would (`{"jsonrpc":"2.0","id":N,"result":…}`, no spaces). Then the
/// answer is passed on uncopied and in one piece; anything else is `None` and is written
/// piece by piece. Trailing whitespace of the node's body (geth ends it with a newline) is
/// left out, so the bytes are exactly the ones [`encode_client`] would write.
fn upstream_body_as_is(batch: bool, replies: &[(Option<&RawValue>, Reply<'_>)]) -> Option<Bytes> {
    let mut source: Option<&Bytes> = None;
    let mut at = 0;
    for (n, (id, reply)) in replies.iter().enumerate() {
        let (key, value): (&[u8], _) = match reply {
            Reply::Upstream(Answer::Result(r)) => (b"result", r),
            Reply::Upstream(Answer::Error(e)) => (b"error", &e.raw),
            Reply::Local(_) => return None,
        };
        let whole = value.1.as_ref()?;
        if source.is_some_and(|s| s.as_ptr() != whole.as_ptr() || s.len() != whole.len()) {
            return None;
        }
        source = Some(whole);
        let start = (value.0.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        let mut head = whole.get(at..start)?;
        let opening: &[u8] = match (n, batch) {
            (0, true) => b"[",
            (0, false) => b"",
            _ => b"},",
        };
        for piece in [
            opening,
            b"{\"jsonrpc\":\"2.0\",\"id\":",
            id.map_or("null", RawValue::get).as_bytes(),
            b",\"",
            key,
            b"\":",
        ] {
            head = head.strip_prefix(piece)?;
        }
        if !head.is_empty() {
            return None;
        }
        at = start + value.0.len();
    }
    let whole = source?;
    let closing: &[u8] = if batch { b"}]" } else { b"}" };
    let rest = whole[at..].strip_prefix(closing)?;
    rest.iter()
        .all(|b| b.is_ascii_whitespace())
        .then(|| whole.slice(..at + closing.len()))
}

/// A JSON-RPC error object as text.
pub fn error_object(code: i64, message: &str) -> String {
    let mut s = String::with_capacity(message.len() + 32);
    let _ = write!(
        s,
        "{{\"code\":{code},\"message\":{}}}",
        serde_json::Value::from(message)
    );
    s
}

/// A whole client answer for an error that concerns the body as a whole (`id` null).
pub fn error_body(e: &ClientError) -> ClientBody {
    encode_client(false, [(None, Reply::Local(e))])
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
