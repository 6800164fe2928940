//! Output files exactly as ethereum-etl writes them. A path ending in `.json`
//! gets JSON lines (`json.dumps` of the item, fields in exporter order),
//! anything else gets CSV (Python `csv.writer` excel dialect: CRLF, minimal
//! quoting, header written with the first row, an empty file when there are
//! no rows). `-` is stdout, shared so two item types sent to stdout
//! interleave in item order. Files are written under a temporary name and
//! renamed into place only when complete; an abandoned export leaves no file.

use std::fs::File;
use std::io::{BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::error::{ExportError, Result};
use super::pyfmt::{csv_cell, write_json, write_json_str, DEFAULT_SEPARATORS};
use super::pyvalue::PyValue;

/// The serialization chosen from an output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values.
    Csv,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// ethereum-etl's rule: `.json` suffix means JSON lines, everything else CSV.
    pub fn for_path(path: &str) -> Format {
        if path.ends_with(".json") {
            Format::Json
        } else {
            Format::Csv
        }
    }
}

/// A handle on the process's stdout that several outputs can share.
#[derive(Clone)]
pub struct SharedStdout(Arc<Mutex<BufWriter<Stdout>>>);

impl Default for SharedStdout {
    fn default() -> Self {
        SharedStdout(Arc::new(Mutex::new(BufWriter::with_capacity(
            1 << 16,
            std::io::stdout(),
        ))))
    }
}

enum Dest {
    File {
        file: BufWriter<File>,
        tmp: PathBuf,
        path: PathBuf,
    },
    Stdout(SharedStdout),
}

/// A byte sink: a file written atomically, or (shared) stdout.
pub struct Output {
    dest: Dest,
    finished: bool,
}

impl Output {
    /// Opens `path` (`-` for stdout). Parent directories are created, as
    /// ethereum-etl does; the data goes to a hidden temporary file beside it.
    pub fn create(path: &str, stdout: &SharedStdout) -> Result<Output> {
        if path == "-" {
            return Ok(Output {
                dest: Dest::Stdout(stdout.clone()),
                finished: false,
            });
        }
        let final_path = PathBuf::from(path);
        let file_name = final_path
            .file_name()
            .ok_or_else(|| ExportError::Usage(format!("output path {path:?} names no file")))?
            .to_string_lossy()
            .into_owned();
        let parent = final_path.parent().unwrap_or(Path::new(""));
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| ExportError::io(parent, e))?;
        }
        let tmp = final_path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
        Ok(Output {
            dest: Dest::File {
                file: BufWriter::with_capacity(1 << 16, file),
                tmp,
                path: final_path,
            },
            finished: false,
        })
    }

    /// Appends bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.dest {
            Dest::File { file, tmp, .. } => {
                file.write_all(bytes).map_err(|e| ExportError::io(&*tmp, e))
            }
            Dest::Stdout(out) => {
                let mut guard = out.0.lock().unwrap_or_else(|p| p.into_inner());
                guard.write_all(bytes).map_err(|e| ExportError::io("-", e))
            }
        }
    }

    /// Flushes and, for files, renames the temporary file into place.
    pub fn finish(mut self) -> Result<()> {
        match &mut self.dest {
            Dest::File { file, tmp, path } => {
                file.flush().map_err(|e| ExportError::io(&*tmp, e))?;
                file.get_ref()
                    .sync_data()
                    .map_err(|e| ExportError::io(&*tmp, e))?;
                rename_durably(tmp, path)?;
                // Only now is there nothing left for Drop to clean up.
                self.finished = true;
                Ok(())
            }
            Dest::Stdout(out) => {
                let mut guard = out.0.lock().unwrap_or_else(|p| p.into_inner());
                guard.flush().map_err(|e| ExportError::io("-", e))
            }
        }
    }
}

/// Renames `tmp` (its data already synced) to `path`, then syncs the directory, so that
/// after a power cut the name points at the complete file or the old one, never at an empty
/// one.
pub(crate) fn rename_durably(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|e| ExportError::io(path, e))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ExportError::io(dir, e))
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Dest::File { tmp, .. } = &self.dest {
            if !self.finished {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Encoder {
    Csv {
        writer: Box<csv::Writer<Output>>,
        header_written: bool,
    },
    Json {
        out: Output,
        line: String,
    },
}

/// Writes items of one type with a fixed field list, in CSV or JSON lines.
pub struct ItemWriter {
    fields: &'static [&'static str],
    encoder: Encoder,
    count: u64,
    path: String,
}

impl ItemWriter {
    /// Opens an item writer on `path`, choosing the format from its suffix.
    pub fn open(
        path: &str,
        fields: &'static [&'static str],
        stdout: &SharedStdout,
    ) -> Result<Self> {
        let out = Output::create(path, stdout)?;
        let encoder = match Format::for_path(path) {
            Format::Csv => Encoder::Csv {
                writer: Box::new(python_csv_writer(out)),
                header_written: false,
            },
            Format::Json => Encoder::Json {
                out,
                line: String::new(),
            },
        };
        Ok(ItemWriter {
            fields,
            encoder,
            count: 0,
            path: path.to_owned(),
        })
    }

    /// Writes one item; `values` are in the order of the writer's fields.
    pub fn write(&mut self, values: &[PyValue]) -> Result<()> {
        debug_assert_eq!(values.len(), self.fields.len());
        match &mut self.encoder {
            Encoder::Csv {
                writer,
                header_written,
            } => {
                if !*header_written {
                    *header_written = true;
                    writer
                        .write_record(self.fields.iter())
                        .map_err(|e| csv_write_error(&self.path, e))?;
                }
                writer
                    .write_record(
                        values
                            .iter()
                            .map(|v| csv_cell(v))
                            .collect::<Vec<_>>()
                            .iter()
                            .map(|c| c.as_bytes()),
                    )
                    .map_err(|e| csv_write_error(&self.path, e))?;
                // Push the record through so outputs sharing stdout interleave in order.
                writer.flush().map_err(|e| ExportError::io(&self.path, e))?;
            }
            Encoder::Json { out, line } => {
                line.clear();
                json_line(line, self.fields, values);
                out.write_all(line.as_bytes())?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Completes the output; returns the number of items written.
    pub fn finish(self) -> Result<u64> {
        let out = match self.encoder {
            Encoder::Csv { writer, .. } => writer
                .into_inner()
                .map_err(|e| ExportError::io(&self.path, std::io::Error::other(e.to_string())))?,
            Encoder::Json { out, .. } => out,
        };
        out.finish()?;
        Ok(self.count)
    }
}

fn csv_write_error(path: &str, e: csv::Error) -> ExportError {
    ExportError::io(path, std::io::Error::other(e))
}

/// A `csv::Writer` configured like Python's default `csv.writer` (excel
/// dialect: CRLF, minimal quoting, doubled quotes).
fn python_csv_writer(out: Output) -> csv::Writer<Output> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .double_quote(true)
        .has_headers(false)
        .flexible(true)
        .from_writer(out)
}

/// Appends `json.dumps(dict(zip(fields, values))) + "\n"` to `out`.
pub fn json_line(out: &mut String, fields: &[&str], values: &[PyValue]) {
    out.push('{');
    for (i, (field, value)) in fields.iter().zip(values).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_json_str(out, field);
        out.push_str(": ");
        write_json(out, value, DEFAULT_SEPARATORS);
    }
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["a", "b", "c"];

    fn write_items(path: &Path, items: &[Vec<PyValue>]) -> Vec<u8> {
        let stdout = SharedStdout::default();
        let mut w = ItemWriter::open(path.to_str().unwrap(), FIELDS, &stdout).unwrap();
        for item in items {
            w.write(item).unwrap();
        }
        assert_eq!(w.finish().unwrap(), items.len() as u64);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn csv_uses_crlf_minimal_quoting_and_header_with_first_row() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_items(
            &dir.path().join("x.csv"),
            &[vec![
                PyValue::Int(1),
                PyValue::List(vec!["0xa".into(), "0xb".into()]),
                "say \"hi\"\nthere".into(),
            ]],
        );
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "a,b,c\r\n1,\"0xa,0xb\",\"say \"\"hi\"\"\nthere\"\r\n"
        );
    }

    #[test]
    fn no_rows_gives_an_empty_file_and_no_temp_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/empty.csv");
        assert!(write_items(&path, &[]).is_empty());
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn json_lines_follow_field_order() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_items(
            &dir.path().join("x.json"),
            &[vec![
                PyValue::None,
                PyValue::List(vec![]),
                PyValue::BigInt("123456789012345678901234567890".into()),
            ]],
        );
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "{\"a\": null, \"b\": [], \"c\": 123456789012345678901234567890}\n"
        );
    }

    #[test]
    fn a_failed_rename_reports_the_path_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        std::fs::write(taken.join("x"), b"x").unwrap();
        let mut out = Output::create(taken.to_str().unwrap(), &SharedStdout::default()).unwrap();
        out.write_all(b"data").unwrap();
        let err = out.finish().unwrap_err();
        assert!(err.to_string().contains("taken"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn abandoned_output_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.json");
        {
            let mut out = Output::create(path.to_str().unwrap(), &SharedStdout::default()).unwrap();
            out.write_all(b"partial").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_durable_rename_moves_the_file_and_names_a_missing_target() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join(".a.tmp"), dir.path().join("a.csv"));
        std::fs::write(&tmp, "x\n").unwrap();
        rename_durably(&tmp, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x\n");
        assert!(!tmp.exists());
        let gone = dir.path().join("no/such/b.csv");
        let err = rename_durably(&path, &gone).unwrap_err().to_string();
        assert!(err.contains("no/such/b.csv"), "{err}");
    }
}
