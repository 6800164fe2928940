//! Mapping of raw JSON-RPC objects to export rows, field for field as
//! ethereum-etl 2.4.2's mappers and item exporters do it. Each mapper returns
//! the row values in the exporter's column order (`*_FIELDS`).

pub mod blocks;
pub mod contracts;
pub mod enrich;
pub mod receipts;
pub mod token_transfers;
pub mod tokens;
pub mod trace_ids;
pub mod traces;

use super::error::ExportError;
use super::hexnum::{hex_to_dec, NotAString};
use super::pyvalue::PyValue;

/// ethereum-etl's `hex_to_dec(json_dict.get(key))`, with `what` naming the
/// object in the error when the value is not a string.
pub(crate) fn hex_field(
    obj: &PyValue,
    key: &str,
    what: &dyn Fn() -> String,
) -> Result<PyValue, ExportError> {
    hex_to_dec(obj.get(key).unwrap_or(&PyValue::None)).map_err(|NotAString(ty)| {
        ExportError::Data(format!(
            "{}: field {key:?} is a JSON {ty}, expected a hex string",
            what()
        ))
    })
}

/// ethereum-etl's `to_normalized_address`: lower-cases strings, passes
/// anything else through.
pub(crate) fn normalized_address(value: &PyValue) -> PyValue {
    match value {
        PyValue::Str(s) => PyValue::Str(s.to_lowercase()),
        other => other.clone(),
    }
}

/// `json_dict.get(key)`, cloned.
pub(crate) fn field(obj: &PyValue, key: &str) -> PyValue {
    obj.get_or_none(key)
}
