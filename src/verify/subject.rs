//! Which calls are verified, and what each one asked for: pure, from the method name and the
//! raw params (a call whose params cannot be read is not verified here; the node judges it).

use nodewatch_verify::B256;
use serde_json::value::RawValue;

use crate::config::VerifyConfig;

/// The block a call asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// By number.
    Number(u64),
    /// By hash.
    Hash(B256),
    /// By a tag (`latest`, `finalized`, …) or a form not read here: any block may answer.
    Tag,
}

/// What a verified call is, with what it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `eth_getBlockByNumber` / `eth_getBlockByHash`: checked against its own hash.
    Block(Asked),
    /// `eth_getBlockReceipts`: checked against the block's verified header.
    BlockReceipts(Asked),
    /// `eth_getTransactionReceipt`: checked against its block's verified receipts.
    Receipt(Option<B256>),
    /// `eth_getTransactionByHash` and the by-block-and-index forms: the hash from its fields.
    Transaction(Option<B256>),
    /// `eth_getLogs`: each log against its block's verified receipts, and completeness.
    Logs,
}

/// The block tag whose block is still being built.
const PENDING: &str = "pending";

/// The subject of a call, if `config` verifies it.
pub fn subject(method: &str, params: Option<&RawValue>, config: &VerifyConfig) -> Option<Subject> {
    if !config.enabled {
        return None;
    }
    let first = || first_param(params);
    match method {
        "eth_getBlockByNumber" | "eth_getBlockByHash" if config.header => {
            let param = first();
            // A pending block has no hash yet: nothing to check it against.
            (param.as_deref() != Some(PENDING)).then(|| Subject::Block(asked(param.as_deref())))
        }
        "eth_getBlockReceipts" if config.receipts => {
            Some(Subject::BlockReceipts(asked(first().as_deref())))
        }
        "eth_getTransactionReceipt" if config.receipts => {
            Some(Subject::Receipt(first().as_deref().and_then(hash)))
        }
        "eth_getTransactionByHash" if config.transactions => {
            Some(Subject::Transaction(first().as_deref().and_then(hash)))
        }
        "eth_getTransactionByBlockHashAndIndex" | "eth_getTransactionByBlockNumberAndIndex"
            if config.transactions =>
        {
            Some(Subject::Transaction(None))
        }
        "eth_getLogs" if config.logs => Some(Subject::Logs),
        _ => None,
    }
}

/// The first param, when it is a string.
fn first_param(params: Option<&RawValue>) -> Option<String> {
    let values: Vec<serde_json::Value> = serde_json::from_str(params?.get()).ok()?;
    values.first()?.as_str().map(str::to_owned)
}

/// A block parameter: a number, a hash, or anything else.
fn asked(param: Option<&str>) -> Asked {
    let Some(p) = param else {
        return Asked::Tag;
    };
    if let Some(h) = hash(p) {
        return Asked::Hash(h);
    }
    match p
        .strip_prefix("0x")
        .map(|digits| u64::from_str_radix(digits, 16))
    {
        Some(Ok(n)) => Asked::Number(n),
        _ => Asked::Tag,
    }
}

/// A 32-byte hash written as `0x` and 64 hex digits.
fn hash(p: &str) -> Option<B256> {
    (p.len() == 66).then(|| p.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: &str, params: &str) -> Option<Subject> {
        let raw = RawValue::from_string(params.to_string()).unwrap();
        subject(method, Some(&raw), &VerifyConfig::default())
    }

    #[test]
    fn reads_what_each_call_asked_for() {
        assert_eq!(
            of("eth_getBlockByNumber", r#"["0x1b4", true]"#),
            Some(Subject::Block(Asked::Number(436)))
        );
        assert_eq!(
            of("eth_getBlockByNumber", r#"["latest", false]"#),
            Some(Subject::Block(Asked::Tag))
        );
        let h = format!("0x{}", "ab".repeat(32));
        assert_eq!(
            of("eth_getBlockReceipts", &format!(r#"["{h}"]"#)),
            Some(Subject::BlockReceipts(Asked::Hash(h.parse().unwrap())))
        );
        assert_eq!(
            of("eth_getTransactionReceipt", &format!(r#"["{h}"]"#)),
            Some(Subject::Receipt(Some(h.parse().unwrap())))
        );
        assert_eq!(
            of("eth_getLogs", r#"[{"fromBlock":"0x1"}]"#),
            Some(Subject::Logs)
        );
        assert_eq!(of("eth_call", "[]"), None);
        assert_eq!(of("eth_getBlockByNumber", r#"["pending", true]"#), None);
        assert_eq!(
            of("eth_getBlockReceipts", r#"[{"blockHash":"0x00"}]"#),
            Some(Subject::BlockReceipts(Asked::Tag))
        );
        assert_eq!(
            of("eth_getBlockByNumber", r#"["0xzz", true]"#),
            Some(Subject::Block(Asked::Tag))
        );
    }

    #[test]
    fn switches_turn_checks_off() {
        let raw = RawValue::from_string(r#"["0x1", true]"#.to_string()).unwrap();
        let off = VerifyConfig {
            enabled: false,
            ..VerifyConfig::default()
        };
        assert_eq!(subject("eth_getBlockByNumber", Some(&raw), &off), None);
        let no_logs = VerifyConfig {
            logs: false,
            ..VerifyConfig::default()
        };
        assert_eq!(subject("eth_getLogs", Some(&raw), &no_logs), None);
    }
}
