//! ERC-20/ERC-721 `Transfer` events to token-transfer rows, with the exact
//! rules of ethereum-etl's `EthTokenTransferExtractor`: the first topic must
//! case-insensitively be the Transfer signature, the data part is cut into
//! 64-character words appended to the topics, and only logs with exactly four
//! topics+words become transfers.

use crate::error::ExportError;
use crate::hexnum::{hex_to_dec, NotAString};
use crate::pyvalue::PyValue;

use super::normalized_address;

/// `keccak256("Transfer(address,address,uint256)")`.
pub const TRANSFER_EVENT_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// Columns of the token-transfers export, in order.
pub const TOKEN_TRANSFER_FIELDS: &[&str] = &[
    "token_address",
    "from_address",
    "to_address",
    "value",
    "transaction_hash",
    "log_index",
    "block_number",
];

/// The parts of a log the extractor looks at, as ethereum-etl's
/// `EthReceiptLog` holds them.
#[derive(Debug, Clone)]
pub struct LogView {
    /// Emitting contract.
    pub address: PyValue,
    /// Topics; `None` when the log has none recorded.
    pub topics: Option<Vec<PyValue>>,
    /// Hex data.
    pub data: PyValue,
    /// Passed through to the output.
    pub transaction_hash: PyValue,
    /// Passed through to the output.
    pub log_index: PyValue,
    /// Passed through to the output.
    pub block_number: PyValue,
}

impl LogView {
    /// A log read back from an export file (ethereum-etl's
    /// `dict_to_receipt_log`): string topics are comma-split.
    pub fn from_export_item(item: &PyValue) -> LogView {
        let topics = match item.get_or_none("topics") {
            PyValue::Str(s) => {
                let t = s.trim();
                Some(if t.is_empty() {
                    Vec::new()
                } else {
                    t.split(',').map(PyValue::from).collect()
                })
            }
            PyValue::List(l) => Some(l),
            PyValue::None => None,
            other => Some(vec![other]),
        };
        LogView {
            address: item.get_or_none("address"),
            topics,
            data: item.get_or_none("data"),
            transaction_hash: item.get_or_none("transaction_hash"),
            log_index: item.get_or_none("log_index"),
            block_number: item.get_or_none("block_number"),
        }
    }
}

/// Returns the token-transfer row for `log`, or `None` when it is not a
/// transfer. `label` names the log in warnings and errors.
pub fn extract_transfer(
    log: &LogView,
    label: &dyn Fn() -> String,
) -> Result<Option<Vec<PyValue>>, ExportError> {
    let topics = match &log.topics {
        Some(t) if !t.is_empty() => t,
        _ => return Ok(None),
    };
    let first = topics[0].as_str().ok_or_else(|| {
        ExportError::Data(format!(
            "{}: topic is a JSON {}, expected a string",
            label(),
            topics[0].type_name()
        ))
    })?;
    if first.to_lowercase() != TRANSFER_EVENT_TOPIC {
        return Ok(None);
    }
    let mut words: Vec<PyValue> = topics.clone();
    words.extend(split_to_words(&log.data, label)?);
    if words.len() != 4 {
        eprintln!(
            "warning: the number of topics and data parts is not equal to 4 in {}",
            label()
        );
        return Ok(None);
    }
    let value = hex_to_dec(&words[3]).map_err(|NotAString(ty)| {
        ExportError::Data(format!(
            "{}: transfer value is a JSON {ty}, expected a hex string",
            label()
        ))
    })?;
    Ok(Some(vec![
        normalized_address(&log.address),
        word_to_address(&words[1], label)?,
        word_to_address(&words[2], label)?,
        value,
        log.transaction_hash.clone(),
        log.log_index.clone(),
        log.block_number.clone(),
    ]))
}

/// ethereum-etl's `split_to_words`: drop the first two characters and cut the
/// rest into 64-character chunks, each prefixed with `0x`.
fn split_to_words(data: &PyValue, label: &dyn Fn() -> String) -> Result<Vec<PyValue>, ExportError> {
    let s = match data {
        PyValue::None => return Ok(Vec::new()),
        PyValue::Str(s) => s,
        other => {
            return Err(ExportError::Data(format!(
                "{}: log data is a JSON {}, expected a string",
                label(),
                other.type_name()
            )))
        }
    };
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 2 {
        return Ok(Vec::new());
    }
    Ok(chars[2..]
        .chunks(64)
        .map(|c| PyValue::Str(format!("0x{}", c.iter().collect::<String>())))
        .collect())
}

/// ethereum-etl's `word_to_address`.
fn word_to_address(word: &PyValue, label: &dyn Fn() -> String) -> Result<PyValue, ExportError> {
    match word {
        PyValue::None => Ok(PyValue::None),
        PyValue::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            if chars.len() >= 40 {
                let tail: String = chars[chars.len() - 40..].iter().collect();
                Ok(PyValue::Str(format!("0x{tail}").to_lowercase()))
            } else {
                Ok(PyValue::Str(s.to_lowercase()))
            }
        }
        other => Err(ExportError::Data(format!(
            "{}: topic is a JSON {}, expected a string",
            label(),
            other.type_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(topics: &[&str], data: &str) -> LogView {
        LogView {
            address: "0xToken".into(),
            topics: Some(topics.iter().map(|t| PyValue::from(*t)).collect()),
            data: data.into(),
            transaction_hash: "0xtx".into(),
            log_index: "3".into(),
            block_number: PyValue::Int(9),
        }
    }

    fn label() -> String {
        "log 3".into()
    }

    const FROM: &str = "0x000000000000000000000000F39FD6E51AAD88F6F4CE6AB8827279CFFFB92266";
    const TO: &str = "0x0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc";

    #[test]
    fn erc20_transfer_uses_the_data_word_as_value() {
        let data = format!("0x{:064x}", 1000);
        let row = extract_transfer(
            &view(
                &[
                    &TRANSFER_EVENT_TOPIC.to_uppercase().replace("0X", "0x"),
                    FROM,
                    TO,
                ],
                &data,
            ),
            &label,
        )
        .unwrap()
        .unwrap();
        assert_eq!(row[0], PyValue::Str("0xtoken".into()));
        assert_eq!(
            row[1],
            PyValue::Str("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266".into())
        );
        assert_eq!(row[3], PyValue::Int(1000));
        assert_eq!(
            row[5],
            PyValue::Str("3".into()),
            "log_index passes through untouched"
        );
    }

    #[test]
    fn erc721_transfer_has_the_id_as_fourth_topic() {
        let id = format!("0x{:064x}", 7);
        let row = extract_transfer(&view(&[TRANSFER_EVENT_TOPIC, FROM, TO, &id], "0x"), &label)
            .unwrap()
            .unwrap();
        assert_eq!(row[3], PyValue::Int(7));
    }

    #[test]
    fn other_shapes_are_not_transfers() {
        assert_eq!(extract_transfer(&view(&[], "0x"), &label).unwrap(), None);
        assert_eq!(
            extract_transfer(&view(&["0x1234", FROM, TO], "0x"), &label).unwrap(),
            None
        );
        assert_eq!(
            extract_transfer(&view(&[TRANSFER_EVENT_TOPIC, FROM, TO], "0x"), &label).unwrap(),
            None
        );
        let five = format!("0x{:0128x}", 1);
        assert_eq!(
            extract_transfer(&view(&[TRANSFER_EVENT_TOPIC, FROM, TO], &five), &label).unwrap(),
            None
        );
    }

    #[test]
    fn short_words_and_string_topics_follow_python() {
        assert_eq!(
            word_to_address(&"0xABC".into(), &label).unwrap(),
            PyValue::Str("0xabc".into())
        );
        let v =
            LogView::from_export_item(&PyValue::dict([("topics", PyValue::Str(" a,b ".into()))]));
        assert_eq!(v.topics, Some(vec!["a".into(), "b".into()]));
        let v = LogView::from_export_item(&PyValue::dict([("topics", PyValue::Str("".into()))]));
        assert_eq!(v.topics, Some(vec![]));
    }
}
