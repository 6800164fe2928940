//! Reading the input files of the extract commands and of
//! `export_receipts_and_logs`, streaming: plain lines, CSV rows as dicts
//! (like Python's `csv.DictReader`) and JSON lines (like `json.loads` per
//! line). `-` reads stdin. A file that cannot be opened is a usage error.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use super::error::{ExportError, Result};
use super::pyvalue::PyValue;

/// Opens `path` for reading (`-` is stdin).
pub fn open(path: &str) -> Result<Box<dyn BufRead + Send>> {
    if path == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let file = File::open(path)
        .map_err(|e| ExportError::Usage(format!("cannot open input file {path:?}: {e}")))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(ExportError::Usage(format!("input {path:?} is a directory")));
    }
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

/// Lines of `path` without their line terminator (`\n` or `\r\n`).
pub fn lines(path: &str) -> Result<impl Iterator<Item = Result<String>>> {
    let reader = open(path)?;
    let name = PathBuf::from(path);
    Ok(reader.lines().map(move |line| {
        line.map(|mut l| {
            if l.ends_with('\r') {
                l.pop();
            }
            l
        })
        .map_err(|e| ExportError::io(&name, e))
    }))
}

/// Rows of a CSV file as dicts keyed by the header, like `csv.DictReader`:
/// missing trailing cells are `None`, blank lines are skipped.
pub fn csv_dicts(path: &str) -> Result<impl Iterator<Item = Result<PyValue>>> {
    let reader: Box<dyn Read + Send> = open(path)?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let name = PathBuf::from(path);
    let mut header: Option<Vec<String>> = None;
    let mut records = std::iter::from_fn(move || {
        let mut record = csv::StringRecord::new();
        match csv.read_record(&mut record) {
            Ok(true) => Some(Ok(record)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    });
    Ok(std::iter::from_fn(move || loop {
        let record = match records.next()? {
            Ok(r) => r,
            Err(e) => {
                return Some(Err(ExportError::Csv {
                    path: name.clone(),
                    source: e,
                }))
            }
        };
        if record.is_empty() {
            continue;
        }
        match &header {
            None => header = Some(record.iter().map(str::to_owned).collect()),
            Some(names) => {
                let mut entries: Vec<(String, PyValue)> = Vec::with_capacity(names.len());
                for (i, key) in names.iter().enumerate() {
                    let value = record.get(i).map_or(PyValue::None, PyValue::from);
                    match entries.iter_mut().find(|(k, _)| k == key) {
                        Some(slot) => slot.1 = value,
                        None => entries.push((key.clone(), value)),
                    }
                }
                return Some(Ok(PyValue::Dict(entries)));
            }
        }
    }))
}

/// Items of a JSON-lines file (blank lines are skipped).
pub fn json_lines(path: &str) -> Result<impl Iterator<Item = Result<PyValue>>> {
    let path_owned = path.to_owned();
    Ok(lines(path)?
        .enumerate()
        .filter(|(_, line)| !matches!(line, Ok(l) if l.trim().is_empty()))
        .map(move |(n, line)| {
            let line = line?;
            serde_json::from_str::<PyValue>(&line).map_err(|e| {
                ExportError::Data(format!("{path_owned}:{}: invalid JSON: {e}", n + 1))
            })
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn csv_rows_behave_like_dict_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "x.csv", "a,b,a\r\n1,\"x,y\",3\r\n\r\n4\r\n");
        let rows: Vec<PyValue> = csv_dicts(&p).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(
            rows,
            vec![
                PyValue::dict([("a", "3".into()), ("b", "x,y".into())]),
                PyValue::dict([("a", PyValue::None), ("b", PyValue::None)]),
            ]
        );
    }

    #[test]
    fn json_lines_keep_types_and_report_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "x.json", "{\"a\": 1}\n\n{\"a\": \"s\"}\n");
        let rows: Vec<PyValue> = json_lines(&p).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(rows[0].get("a"), Some(&PyValue::Int(1)));
        assert_eq!(rows[1].get("a"), Some(&PyValue::Str("s".into())));
        let bad = write(&dir, "bad.json", "{oops\n");
        let err = json_lines(&bad).unwrap().next().unwrap().unwrap_err();
        assert!(err.to_string().contains(":1:"), "{err}");
    }

    #[test]
    fn missing_input_is_a_usage_error() {
        let err = lines("/definitely/not/here").err().unwrap();
        assert_eq!(err.exit_code(), 2);
    }
}
