//! The directory output of `stream` (a nodewatch-export extension): per
//! round and entity, one file whose bytes are exactly what the batch export
//! of that block range writes:
//!
//! ```text
//! DIR/blocks/blocks_00000000_00000099.csv                  export_blocks_and_transactions --blocks-output
//! DIR/transactions/transactions_00000000_00000099.csv      ... --transactions-output
//! DIR/receipts/receipts_00000000_00000099.csv              export_receipts_and_logs --receipts-output
//! DIR/logs/logs_00000000_00000099.csv                      ... --logs-output
//! DIR/token_transfers/token_transfers_00000000_00000099.csv  export_token_transfers
//! DIR/traces/traces_00000000_00000099.csv                  export_traces
//! DIR/contracts/contracts_00000000_00000099.csv            extract_contracts (of those traces)
//! DIR/tokens/tokens_00000000_00000099.csv                  the tokens among those contracts
//! ```
//!
//! Entity `transaction` writes transactions and their receipts (the
//! receipts are fetched anyway). The tokens file holds the contracts whose
//! `is_erc20` or `is_erc721` is true, as `stream` finds them (what
//! `extract_tokens` writes from the JSON contracts file; from a CSV file it
//! takes every contract, "False" being a non-empty string). Block numbers are zero-padded to 8 digits
//! (wider when needed); `--output-format json` gives `.json` files of JSON
//! lines. Each file is written under a temporary name and renamed when
//! complete, and the state file advances after all files of a round are in
//! place. A file whose range starts after the last synced block belongs to
//! a round that was interrupted: it is removed when the stream starts (and
//! after a failed round), together with temporary files, and written again.

use std::path::{Path, PathBuf};

use crate::error::{ExportError, Result};
use crate::mappers::blocks::{BLOCK_FIELDS, TRANSACTION_FIELDS};
use crate::mappers::contracts::CONTRACT_FIELDS;
use crate::mappers::receipts::{LOG_FIELDS, RECEIPT_FIELDS};
use crate::mappers::token_transfers::TOKEN_TRANSFER_FIELDS;
use crate::mappers::tokens::TOKEN_FIELDS;
use crate::mappers::traces::TRACE_FIELDS;
use crate::pyvalue::PyValue;
use crate::round::Entity;
use crate::round::Round;
use crate::sink::{Format, ItemWriter, SharedStdout};

/// The kinds of file, in the order a round writes them.
const KINDS: &[(&str, &[&str])] = &[
    ("blocks", BLOCK_FIELDS),
    ("transactions", TRANSACTION_FIELDS),
    ("receipts", RECEIPT_FIELDS),
    ("logs", LOG_FIELDS),
    ("token_transfers", TOKEN_TRANSFER_FIELDS),
    ("traces", TRACE_FIELDS),
    ("contracts", CONTRACT_FIELDS),
    ("tokens", TOKEN_FIELDS),
];

/// The file kinds an entity produces.
fn kinds_of(entity: Entity) -> &'static [&'static str] {
    match entity {
        Entity::Block => &["blocks"],
        Entity::Transaction => &["transactions", "receipts"],
        Entity::Log => &["logs"],
        Entity::TokenTransfer => &["token_transfers"],
        Entity::Trace => &["traces"],
        Entity::Contract => &["contracts"],
        Entity::Token => &["tokens"],
    }
}

/// Files per entity and block range under a root directory.
pub struct DirOutput {
    root: PathBuf,
    format: Format,
}

/// `{kind}_{lo:08}_{hi:08}.{csv|json}`.
pub fn file_name(kind: &str, lo: u64, hi: u64, format: Format) -> String {
    let ext = match format {
        Format::Csv => "csv",
        Format::Json => "json",
    };
    format!("{kind}_{lo:08}_{hi:08}.{ext}")
}

/// The block range in a file name made by [`file_name`].
pub fn parse_file_name(kind: &str, name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix(kind)?.strip_prefix('_')?;
    let stem = rest
        .strip_suffix(".csv")
        .or_else(|| rest.strip_suffix(".json"))?;
    let (lo, hi) = stem.split_once('_')?;
    Some((lo.parse().ok()?, hi.parse().ok()?))
}

impl DirOutput {
    /// An output rooted at `root` (created when the stream opens it).
    pub fn new(root: &str, format: Format) -> DirOutput {
        DirOutput {
            root: PathBuf::from(root),
            format,
        }
    }

    fn dir(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    /// Creates the directories and removes what an interrupted run left.
    pub fn open(&mut self, entities: &[Entity], last_synced: i128) -> Result<()> {
        for kind in entities.iter().flat_map(|e| kinds_of(*e)) {
            let dir = self.dir(kind);
            std::fs::create_dir_all(&dir).map_err(|e| ExportError::io(&dir, e))?;
        }
        self.remove_uncommitted(last_synced)
    }

    /// Removes temporary files and files of rounds after `last_synced`.
    pub fn remove_uncommitted(&self, last_synced: i128) -> Result<()> {
        for (kind, _) in KINDS {
            let dir = self.dir(kind);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry.map_err(|e| ExportError::io(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let leftover = (name.starts_with('.') && name.ends_with(".tmp"))
                    || parse_file_name(kind, &name)
                        .is_some_and(|(lo, _)| i128::from(lo) > last_synced);
                if leftover {
                    remove(&entry.path())?;
                }
            }
        }
        Ok(())
    }

    /// Writes the round's files.
    pub fn write_round(&mut self, round: &Round, entities: &[Entity]) -> Result<()> {
        let wanted: Vec<&str> = entities
            .iter()
            .flat_map(|e| kinds_of(*e))
            .copied()
            .collect();
        let stdout = SharedStdout::default();
        for (kind, fields) in KINDS.iter().filter(|(k, _)| wanted.contains(k)) {
            let path = self
                .dir(kind)
                .join(file_name(kind, round.lo, round.hi, self.format));
            let path = path.to_string_lossy().into_owned();
            let mut out = ItemWriter::open(&path, fields, &stdout)?;
            let mut write = |row: &[PyValue]| out.write(row);
            match *kind {
                "blocks" => round.blocks.iter().try_for_each(|b| write(&b.block))?,
                "transactions" => round.transactions().try_for_each(|t| write(t))?,
                "receipts" => round.receipts.iter().try_for_each(|r| write(&r.receipt))?,
                "logs" => round.logs().try_for_each(|l| write(l))?,
                "token_transfers" => round.token_transfers()?.iter().try_for_each(|t| write(t))?,
                "traces" => round.trace_rows().try_for_each(|t| write(&t))?,
                "contracts" => round.contracts.iter().try_for_each(|c| write(c))?,
                _ => round.tokens.iter().try_for_each(|t| write(t))?,
            }
            out.finish()?;
        }
        Ok(())
    }
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ExportError::io(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = file_name("logs", 0, 99, Format::Csv);
        assert_eq!(n, "logs_00000000_00000099.csv");
        assert_eq!(parse_file_name("logs", &n), Some((0, 99)));
        let n = file_name("token_transfers", 123_456_789, 123_456_790, Format::Json);
        assert_eq!(
            parse_file_name("token_transfers", &n),
            Some((123_456_789, 123_456_790))
        );
        assert_eq!(parse_file_name("blocks", "logs_1_2.csv"), None);
        assert_eq!(parse_file_name("blocks", "blocks_1_x.csv"), None);
    }

    #[test]
    fn uncommitted_files_and_temporaries_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = DirOutput::new(tmp.path().to_str().unwrap(), Format::Csv);
        out.open(&[Entity::Block], -1).unwrap();
        let blocks = tmp.path().join("blocks");
        for name in [
            "blocks_00000000_00000009.csv",
            "blocks_00000010_00000019.csv",
            "blocks_00000020_00000024.csv",
            ".blocks_00000020_00000029.csv.77.tmp",
            "notes.txt",
        ] {
            std::fs::write(blocks.join(name), b"x").unwrap();
        }
        out.open(&[Entity::Block], 19).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&blocks)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "blocks_00000000_00000009.csv",
                "blocks_00000010_00000019.csv",
                "notes.txt"
            ]
        );
    }
}
