//! ethereum-etl 2.4.2's `trace_status_calculator` and `trace_id_calculator`
//! over the traces of one block: a trace fails when it has an error or any
//! ancestor in its transaction failed; transaction traces are identified by
//! type, hash and trace address, block-level traces (rewards, genesis,
//! DAO fork) by type, block and their rank in Python's sort order.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::error::ExportError;
use crate::pyfmt::{py_repr, py_str};
use crate::pyvalue::PyValue;

use super::traces::{truthy, Trace};

fn address_key(address: &PyValue, sep: &str) -> String {
    match address {
        PyValue::List(items) => items.iter().map(py_str).collect::<Vec<_>>().join(sep),
        _ => String::new(),
    }
}

fn address_len(address: &PyValue) -> usize {
    match address {
        PyValue::List(items) => items.len(),
        _ => 0,
    }
}

/// `calculate_trace_statuses`.
pub fn calculate_statuses(traces: &mut [Trace]) -> Result<(), ExportError> {
    let mut by_tx: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in traces.iter_mut().enumerate() {
        let failed = match &t.error {
            PyValue::None => false,
            PyValue::Str(s) => !s.is_empty(),
            other => truthy(other),
        };
        t.status = PyValue::Int(if failed { 0 } else { 1 });
        if let PyValue::Str(h) = &t.transaction_hash {
            if !h.is_empty() {
                by_tx.entry(h.clone()).or_default().push(i);
            }
        }
    }
    for group in by_tx.values_mut() {
        group.sort_by_key(|&i| address_len(&traces[i].trace_address));
        let mut index: HashMap<String, usize> = HashMap::new();
        for &i in group.iter() {
            index.insert(address_key(&traces[i].trace_address, ","), i);
        }
        for &i in group.iter() {
            let PyValue::List(address) = &traces[i].trace_address else {
                continue;
            };
            let Some((_, parent_address)) = address.split_last() else {
                continue;
            };
            let parent_key = address_key(&PyValue::List(parent_address.to_vec()), ",");
            let Some(&parent) = index.get(&parent_key) else {
                return Err(ExportError::Data(format!(
                    "A parent trace for trace with trace_address {} in transaction {} is not found",
                    py_repr(&traces[i].trace_address),
                    py_str(&traces[i].transaction_hash)
                )));
            };
            if traces[parent].status == PyValue::Int(0) {
                traces[i].status = PyValue::Int(0);
            }
        }
    }
    Ok(())
}

fn concat(parts: &[&PyValue]) -> String {
    parts
        .iter()
        .map(|p| py_str(p))
        .collect::<Vec<_>>()
        .join("_")
}

/// `calculate_trace_ids`, for the traces of one `trace_block` call.
pub fn calculate_ids(traces: &mut [Trace]) -> Result<(), ExportError> {
    // Groups keyed by (block, type) in first-seen order; ids only depend on the group.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, t) in traces.iter_mut().enumerate() {
        if truthy(&t.transaction_hash) {
            let address = PyValue::Str(address_key(&t.trace_address, "_"));
            t.trace_id = concat(&[&t.trace_type, &t.transaction_hash, &address]).into();
            continue;
        }
        let key = format!(
            "{}\u{0}{}",
            py_repr(&t.block_number),
            py_repr(&t.trace_type)
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    for (_, mut members) in groups {
        sort_block_scoped(traces, &mut members)?;
        for (rank, &i) in members.iter().enumerate() {
            let t = &traces[i];
            let id = concat(&[&t.trace_type, &t.block_number, &PyValue::Int(rank as i128)]);
            traces[i].trace_id = id.into();
        }
    }
    Ok(())
}

/// Python's stable `sorted(key=(reward_type, from_address, to_address, value))`.
fn sort_block_scoped(traces: &[Trace], members: &mut [usize]) -> Result<(), ExportError> {
    let key = |t: &Trace| {
        [
            t.reward_type.clone(),
            t.from_address.clone(),
            t.to_address.clone(),
            t.value.clone(),
        ]
    };
    let mut failure = None;
    members.sort_by(|&a, &b| {
        let (ka, kb) = (key(&traces[a]), key(&traces[b]));
        tuple_cmp(&ka, &kb).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            Ordering::Equal
        })
    });
    match failure {
        Some(e) => Err(ExportError::Data(format!("cannot order block traces: {e}"))),
        None => Ok(()),
    }
}

/// Tuple comparison: the first unequal pair decides, through `<`.
fn tuple_cmp(a: &[PyValue], b: &[PyValue]) -> Result<Ordering, String> {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return py_cmp(x, y);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

/// `<` between two Python values of comparable types.
fn py_cmp(a: &PyValue, b: &PyValue) -> Result<Ordering, String> {
    match (a, b) {
        (PyValue::Str(x), PyValue::Str(y)) => Ok(x.cmp(y)),
        (PyValue::Int(x), PyValue::Int(y)) => Ok(x.cmp(y)),
        (PyValue::Int(_) | PyValue::BigInt(_), PyValue::Int(_) | PyValue::BigInt(_)) => {
            Ok(big_cmp(&py_str(a), &py_str(b)))
        }
        _ => Err(format!(
            "'<' not supported between instances of '{}' and '{}'",
            a.type_name(),
            b.type_name()
        )),
    }
}

/// Compares two decimal integers given as text.
fn big_cmp(a: &str, b: &str) -> Ordering {
    match (a.strip_prefix('-'), b.strip_prefix('-')) {
        (Some(x), Some(y)) => big_cmp(y, x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx_trace(hash: &str, address: &[i128], error: Option<&str>) -> Trace {
        Trace {
            block_number: PyValue::Int(3),
            transaction_hash: hash.into(),
            trace_type: "call".into(),
            trace_address: PyValue::List(address.iter().map(|&i| PyValue::Int(i)).collect()),
            error: error.map_or(PyValue::None, PyValue::from),
            ..Trace::default()
        }
    }

    #[test]
    fn failures_propagate_to_descendants_only() {
        let mut traces = vec![
            tx_trace("0xa", &[], None),
            tx_trace("0xa", &[0], Some("Reverted")),
            tx_trace("0xa", &[0, 0], None),
            tx_trace("0xa", &[1], None),
            tx_trace("0xb", &[], Some("out of gas")),
            tx_trace("0xb", &[0], None),
        ];
        calculate_statuses(&mut traces).unwrap();
        let statuses: Vec<_> = traces.iter().map(|t| t.status.clone()).collect();
        let expected: Vec<PyValue> = [1, 0, 0, 1, 0, 0]
            .iter()
            .map(|&s| PyValue::Int(s))
            .collect();
        assert_eq!(statuses, expected);
        let mut orphan = vec![tx_trace("0xc", &[2, 0], None)];
        assert!(calculate_statuses(&mut orphan).is_err());
    }

    #[test]
    fn ids_name_the_transaction_or_the_rank_in_the_block() {
        let reward = |to: &str, value: i128, kind: &str| Trace {
            block_number: PyValue::Int(9),
            to_address: to.into(),
            value: PyValue::Int(value),
            reward_type: kind.into(),
            trace_type: "reward".into(),
            ..Trace::default()
        };
        let mut traces = vec![
            tx_trace("0xa", &[0, 1], None),
            reward("0xb", 2, "uncle"),
            reward("0xb", 5, "block"),
            reward("0xa", 7, "uncle"),
        ];
        calculate_ids(&mut traces).unwrap();
        let ids: Vec<_> = traces.iter().map(|t| py_str(&t.trace_id)).collect();
        assert_eq!(
            ids,
            ["call_0xa_0_1", "reward_9_2", "reward_9_0", "reward_9_1"]
        );
    }

    #[test]
    fn big_values_sort_numerically() {
        assert_eq!(big_cmp("100", "99"), Ordering::Greater);
        assert_eq!(big_cmp("-100", "-99"), Ordering::Less);
        assert_eq!(
            py_cmp(&PyValue::BigInt("1".repeat(40)), &PyValue::Int(5)),
            Ok(Ordering::Greater)
        );
    }
}
