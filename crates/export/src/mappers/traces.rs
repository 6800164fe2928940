//! Traces, field for field as ethereum-etl 2.4.2's `EthTraceMapper` builds
//! them: from Parity/OpenEthereum `trace_block` objects, from geth
//! `callTracer` trees (`extract_geth_traces`), and the mainnet genesis
//! allocations and DAO-fork transfers that `--genesis-traces` and
//! `--daofork-traces` add. Statuses and ids are in [`super::trace_ids`].

use crate::error::ExportError;
use crate::pyvalue::PyValue;

use super::{field, hex_field, normalized_address};

/// Columns of ethereum-etl's traces exporter (`trace_index` is computed but not exported).
pub const TRACE_FIELDS: &[&str] = &[
    "block_number",
    "transaction_hash",
    "transaction_index",
    "from_address",
    "to_address",
    "value",
    "input",
    "output",
    "trace_type",
    "call_type",
    "reward_type",
    "gas",
    "gas_used",
    "subtraces",
    "trace_address",
    "error",
    "status",
    "trace_id",
];

/// Columns of ethereum-etl's geth traces exporter.
pub const GETH_TRACE_FIELDS: &[&str] = &["block_number", "transaction_traces"];

/// The block of the DAO fork on mainnet (`DAOFORK_BLOCK_NUMBER`).
pub const DAOFORK_BLOCK_NUMBER: u64 = 1_920_000;

/// ethereum-etl's `EthTrace`: every attribute is a Python value.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub block_number: PyValue,
    pub transaction_hash: PyValue,
    pub transaction_index: PyValue,
    pub from_address: PyValue,
    pub to_address: PyValue,
    pub value: PyValue,
    pub input: PyValue,
    pub output: PyValue,
    pub trace_type: PyValue,
    pub call_type: PyValue,
    pub reward_type: PyValue,
    pub gas: PyValue,
    pub gas_used: PyValue,
    pub subtraces: PyValue,
    pub trace_address: PyValue,
    pub error: PyValue,
    pub status: PyValue,
    pub trace_id: PyValue,
}

impl Default for Trace {
    /// `EthTrace()`: everything `None` except `subtraces = 0`.
    fn default() -> Self {
        Trace {
            block_number: PyValue::None,
            transaction_hash: PyValue::None,
            transaction_index: PyValue::None,
            from_address: PyValue::None,
            to_address: PyValue::None,
            value: PyValue::None,
            input: PyValue::None,
            output: PyValue::None,
            trace_type: PyValue::None,
            call_type: PyValue::None,
            reward_type: PyValue::None,
            gas: PyValue::None,
            gas_used: PyValue::None,
            subtraces: PyValue::Int(0),
            trace_address: PyValue::None,
            error: PyValue::None,
            status: PyValue::None,
            trace_id: PyValue::None,
        }
    }
}

impl Trace {
    /// The exporter row, in [`TRACE_FIELDS`] order.
    pub fn into_row(self) -> Vec<PyValue> {
        vec![
            self.block_number,
            self.transaction_hash,
            self.transaction_index,
            self.from_address,
            self.to_address,
            self.value,
            self.input,
            self.output,
            self.trace_type,
            self.call_type,
            self.reward_type,
            self.gas,
            self.gas_used,
            self.subtraces,
            self.trace_address,
            self.error,
            self.status,
            self.trace_id,
        ]
    }

    /// The trace as the dict ethereum-etl's jobs pass on (`trace_to_dict` without `type`
    /// and `trace_index`).
    pub fn to_dict(&self) -> PyValue {
        PyValue::dict(TRACE_FIELDS.iter().copied().zip(self.clone().into_row()))
    }
}

/// Python truthiness.
pub(crate) fn truthy(v: &PyValue) -> bool {
    match v {
        PyValue::None => false,
        PyValue::Bool(b) => *b,
        PyValue::Int(i) => *i != 0,
        PyValue::BigInt(_) => true,
        PyValue::Float(f) => *f != 0.0,
        PyValue::Str(s) => !s.is_empty(),
        PyValue::List(l) => !l.is_empty(),
        PyValue::Dict(d) => !d.is_empty(),
    }
}

/// `EthTraceMapper.json_dict_to_trace`: one Parity `trace_block` object.
pub fn map_parity_trace(json: &PyValue, label: &str) -> Result<Trace, ExportError> {
    let what = || label.to_owned();
    let mut t = Trace {
        block_number: field(json, "blockNumber"),
        transaction_hash: field(json, "transactionHash"),
        transaction_index: field(json, "transactionPosition"),
        subtraces: field(json, "subtraces"),
        trace_address: json
            .get("traceAddress")
            .cloned()
            .unwrap_or(PyValue::List(Vec::new())),
        trace_type: field(json, "type"),
        ..Trace::default()
    };
    let error = field(json, "error");
    if truthy(&error) {
        t.error = error;
    }
    let empty = PyValue::Dict(Vec::new());
    let action = json
        .get("action")
        .filter(|v| !v.is_none())
        .unwrap_or(&empty);
    let result = json
        .get("result")
        .filter(|v| !v.is_none())
        .unwrap_or(&empty);
    let kind = t.trace_type.as_str().unwrap_or("").to_owned();
    if kind == "call" || kind == "create" {
        t.from_address = normalized_address(&field(action, "from"));
        t.value = hex_field(action, "value", &what)?;
        t.gas = hex_field(action, "gas", &what)?;
        t.gas_used = hex_field(result, "gasUsed", &what)?;
    }
    match kind.as_str() {
        "call" => {
            t.call_type = field(action, "callType");
            t.to_address = normalized_address(&field(action, "to"));
            t.input = field(action, "input");
            t.output = field(result, "output");
        }
        "create" => {
            t.to_address = field(result, "address");
            t.input = field(action, "init");
            t.output = field(result, "code");
        }
        "suicide" => {
            t.from_address = normalized_address(&field(action, "address"));
            t.to_address = normalized_address(&field(action, "refundAddress"));
            t.value = hex_field(action, "balance", &what)?;
        }
        "reward" => {
            t.to_address = normalized_address(&field(action, "author"));
            t.value = hex_field(action, "value", &what)?;
            t.reward_type = field(action, "rewardType");
        }
        _ => {}
    }
    Ok(t)
}

/// `EthTraceMapper.geth_trace_to_traces`: the call trees of one block's
/// transactions, flattened depth first.
pub fn geth_trace_to_traces(
    block_number: &PyValue,
    transaction_traces: &[PyValue],
    label: &str,
) -> Result<Vec<Trace>, ExportError> {
    let mut out = Vec::new();
    for (tx_index, tx_trace) in transaction_traces.iter().enumerate() {
        let label = format!("{label}, transaction {tx_index}");
        walk_geth_call(
            block_number,
            tx_index,
            tx_trace,
            Vec::new(),
            &label,
            &mut out,
        )?;
    }
    Ok(out)
}

fn walk_geth_call(
    block_number: &PyValue,
    tx_index: usize,
    call: &PyValue,
    trace_address: Vec<PyValue>,
    label: &str,
    out: &mut Vec<Trace>,
) -> Result<(), ExportError> {
    let what = || label.to_owned();
    if !matches!(call, PyValue::Dict(_)) {
        return Err(ExportError::Data(format!(
            "{label}: a call trace is a JSON {}, expected an object",
            call.type_name()
        )));
    }
    let kind = match call.get("type") {
        Some(PyValue::Str(s)) => s.to_lowercase(),
        _ => {
            return Err(ExportError::Data(format!(
                "{label}: a call trace has no string \"type\""
            )))
        }
    };
    let (trace_type, call_type) = match kind.as_str() {
        "selfdestruct" => ("suicide".to_owned(), PyValue::None),
        "call" | "callcode" | "delegatecall" | "staticcall" => ("call".to_owned(), kind.into()),
        _ => (kind, PyValue::None),
    };
    let calls: &[PyValue] = match call.get("calls") {
        None | Some(PyValue::None) => &[],
        Some(PyValue::List(calls)) => calls,
        Some(other) => {
            return Err(ExportError::Data(format!(
                "{label}: \"calls\" is a JSON {}, expected an array",
                other.type_name()
            )))
        }
    };
    out.push(Trace {
        block_number: block_number.clone(),
        transaction_index: PyValue::Int(tx_index as i128),
        from_address: normalized_address(&field(call, "from")),
        to_address: normalized_address(&field(call, "to")),
        input: field(call, "input"),
        output: field(call, "output"),
        value: hex_field(call, "value", &what)?,
        gas: hex_field(call, "gas", &what)?,
        gas_used: hex_field(call, "gasUsed", &what)?,
        error: field(call, "error"),
        trace_type: trace_type.into(),
        call_type,
        subtraces: PyValue::Int(calls.len() as i128),
        trace_address: PyValue::List(trace_address.clone()),
        ..Trace::default()
    });
    for (i, child) in calls.iter().enumerate() {
        let mut address = trace_address.clone();
        address.push(PyValue::Int(i as i128));
        walk_geth_call(block_number, tx_index, child, address, label, out)?;
    }
    Ok(())
}

const GENESIS_ALLOC: &str = include_str!("../../data/mainnet_genesis_alloc.txt");
const DAOFORK_STATE_CHANGES: &str = include_str!("../../data/mainnet_daofork_state_changes.txt");

/// Whitespace-separated fields of a data file, comment lines skipped.
fn data_rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
}

fn wei(s: &str) -> PyValue {
    s.parse::<i128>()
        .map(PyValue::Int)
        .unwrap_or_else(|_| PyValue::BigInt(s.to_owned()))
}

/// `EthSpecialTraceService.get_genesis_traces`: mainnet's genesis allocations.
pub fn genesis_traces() -> Vec<Trace> {
    data_rows(GENESIS_ALLOC)
        .map(|f| Trace {
            block_number: PyValue::Int(0),
            to_address: f[0].into(),
            value: wei(f[1]),
            trace_type: "genesis".into(),
            status: PyValue::Int(1),
            ..Trace::default()
        })
        .collect()
}

/// `EthSpecialTraceService.get_daofork_traces`: the DAO refund transfers.
pub fn daofork_traces() -> Vec<Trace> {
    data_rows(DAOFORK_STATE_CHANGES)
        .map(|f| Trace {
            block_number: PyValue::Int(DAOFORK_BLOCK_NUMBER as i128),
            from_address: f[0].into(),
            to_address: f[1].into(),
            value: wei(f[2]),
            trace_type: "daofork".into(),
            status: PyValue::Int(1),
            ..Trace::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PyValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn parity_calls_creates_and_suicides_map_like_ethereum_etl() {
        let call = parse(
            r#"{"action":{"callType":"staticcall","from":"0xAB","gas":"0x10","input":"0x","to":"0xCD","value":"0x0"},
               "blockNumber":5,"result":null,"subtraces":0,"traceAddress":[1],"transactionHash":"0xh",
               "transactionPosition":2,"type":"call","error":"Reverted"}"#,
        );
        let t = map_parity_trace(&call, "t").unwrap();
        assert_eq!(t.from_address, "0xab".into());
        assert_eq!(t.to_address, "0xcd".into());
        assert_eq!(
            (t.gas.clone(), t.gas_used.clone()),
            (PyValue::Int(16), PyValue::None)
        );
        assert_eq!(t.error, "Reverted".into());
        let create = parse(
            r#"{"action":{"from":"0xA","gas":"0x1","init":"0x60","value":"0x2"},"result":{"address":"0xBEEF","code":"0x00","gasUsed":"0x1"},"type":"create"}"#,
        );
        let t = map_parity_trace(&create, "t").unwrap();
        assert_eq!(
            t.to_address,
            "0xBEEF".into(),
            "create addresses are not normalized"
        );
        assert_eq!(t.trace_address, PyValue::List(vec![]));
        assert_eq!(t.subtraces, PyValue::None, "json_dict.get('subtraces')");
        let suicide = parse(
            r#"{"action":{"address":"0xA","refundAddress":"0xB","balance":"0x3"},"type":"suicide","error":""}"#,
        );
        let t = map_parity_trace(&suicide, "t").unwrap();
        assert_eq!(
            (t.value, t.gas, t.error),
            (PyValue::Int(3), PyValue::None, PyValue::None)
        );
    }

    #[test]
    fn geth_trees_flatten_depth_first_with_addresses() {
        let tree = parse(
            r#"{"type":"CALL","from":"0xA","to":"0xB","value":"0x1","gas":"0x2","gasUsed":"0x1","input":"0x",
                "calls":[{"type":"STATICCALL","from":"0xB","to":"0xC","gas":"0x1","gasUsed":"0x1","input":"0x",
                          "calls":[{"type":"SELFDESTRUCT","from":"0xC","to":"0xA","value":"0x0"}]},
                         {"type":"CREATE2","from":"0xB","to":"0xD","gas":"0x1","gasUsed":"0x1","input":"0x","error":"x"}]}"#,
        );
        let traces = geth_trace_to_traces(&PyValue::Int(7), &[tree], "block 7").unwrap();
        let shape: Vec<(String, PyValue, String)> = traces
            .iter()
            .map(|t| {
                (
                    t.trace_type.as_str().unwrap().to_owned(),
                    t.call_type.clone(),
                    crate::pyfmt::py_repr(&t.trace_address),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("call".into(), "call".into(), "[]".into()),
                ("call".into(), "staticcall".into(), "[0]".into()),
                ("suicide".into(), PyValue::None, "[0, 0]".into()),
                ("create2".into(), PyValue::None, "[1]".into()),
            ]
        );
        assert_eq!(traces[0].subtraces, PyValue::Int(2));
        assert_eq!(traces[3].error, "x".into());
        assert!(traces
            .iter()
            .all(|t| t.status.is_none() && t.trace_id.is_none()));
    }

    #[test]
    fn special_traces_hold_ethereum_etl_tables() {
        let genesis = genesis_traces();
        assert_eq!(genesis.len(), 8893);
        assert_eq!(
            genesis[0].to_address,
            "0x3282791d6fd713f1e94f4bfd565eaa78b3a0599d".into()
        );
        assert_eq!(
            genesis[0].value,
            PyValue::Int(1_337_000_000_000_000_000_000)
        );
        let dao = daofork_traces();
        assert_eq!(dao.len(), 116);
        assert_eq!(dao[0].block_number, PyValue::Int(1_920_000));
    }
}
