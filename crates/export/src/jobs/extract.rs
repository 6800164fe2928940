//! `extract_csv_column` and `extract_field`: write one column/field of every
//! input item, one per line (`value + "\n"`), as ethereum-etl does.

use crate::error::{ExportError, Result};
use crate::input;
use crate::pyvalue::PyValue;
use crate::sink::{Output, SharedStdout};

/// `extract_csv_column -i INPUT -c COLUMN -o OUTPUT`: the input is always CSV.
pub fn extract_csv_column(input_path: &str, column: &str, output: &str) -> Result<u64> {
    let items = input::csv_dicts(input_path)?;
    write_field(items, input_path, column, output)
}

/// `extract_field -i INPUT -f FIELD -o OUTPUT`: CSV when the input ends in
/// `.csv`, JSON lines otherwise (ethereum-etl's rule).
pub fn extract_field(input_path: &str, field: &str, output: &str) -> Result<u64> {
    if input_path.ends_with(".csv") {
        write_field(input::csv_dicts(input_path)?, input_path, field, output)
    } else {
        write_field(input::json_lines(input_path)?, input_path, field, output)
    }
}

fn write_field<I>(items: I, input_path: &str, field: &str, output: &str) -> Result<u64>
where
    I: Iterator<Item = Result<PyValue>>,
{
    let stdout = SharedStdout::default();
    let mut out = Output::create(output, &stdout)?;
    let mut count = 0u64;
    let mut line = String::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        match item.get(field) {
            Some(PyValue::Str(s)) => {
                line.clear();
                line.push_str(s);
                line.push('\n');
                out.write_all(line.as_bytes())?;
                count += 1;
            }
            Some(other) => {
                return Err(ExportError::Data(format!(
                    "{input_path}: item {}: field {field:?} is a {}, not a string",
                    i + 1,
                    match other {
                        PyValue::None => "missing value",
                        _ => other.type_name(),
                    }
                )))
            }
            None => {
                return Err(ExportError::Data(format!(
                    "{input_path}: item {}: no field {field:?}",
                    i + 1
                )))
            }
        }
    }
    out.finish()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_csv_and_json_fields_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("in.csv");
        std::fs::write(&csv, "hash,n\r\n0xa,1\r\n0xb,2\r\n").unwrap();
        let json = dir.path().join("in.json");
        std::fs::write(&json, "{\"hash\": \"0xa\"}\n{\"hash\": \"0xb\"}\n").unwrap();
        let out = dir.path().join("out.txt");
        let out_s = out.to_str().unwrap();
        assert_eq!(
            extract_csv_column(csv.to_str().unwrap(), "hash", out_s).unwrap(),
            2
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "0xa\n0xb\n");
        assert_eq!(
            extract_field(json.to_str().unwrap(), "hash", out_s).unwrap(),
            2
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "0xa\n0xb\n");
        assert_eq!(extract_field(csv.to_str().unwrap(), "n", out_s).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "1\n2\n");
    }

    #[test]
    fn missing_column_fails_cleanly_and_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("in.csv");
        std::fs::write(&csv, "hash\r\n0xa\r\n").unwrap();
        let out = dir.path().join("out.txt");
        let err =
            extract_csv_column(csv.to_str().unwrap(), "nope", out.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("nope"));
        assert!(!out.exists());
    }
}
