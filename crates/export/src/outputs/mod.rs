//! Where `stream` writes a round, chosen by `-o` like ethereum-etl's
//! `create_item_exporters` (a comma-separated list; absent or `console` is
//! the console):
//!
//! * `console`: the JSON items `ethereumetl stream` prints ([`Console`]).
//! * `postgresql://user:pass@host:port/db` or SQLAlchemy's
//!   `postgresql+<driver>://...`: ethereum-etl's tables, one transaction per
//!   round ([`postgres::PgOutput`], layout in [`tables`], TLS as libpq's
//!   `sslmode` in [`pg_tls`]).
//! * an existing directory, or a path ending in `/`: CSV (or JSON-lines)
//!   files per entity and round, each the bytes the batch export of that
//!   range writes ([`dir::DirOutput`]; a nodewatch-export extension).
//!
//! Every output writes a round idempotently, so the round that was in flight
//! when a stream was killed can simply be written again after a restart.

pub mod dir;
#[cfg(test)]
mod pg_throughput;
pub mod pg_tls;
pub mod postgres;
pub mod tables;

use std::io::Write;

use crate::error::{ExportError, Result};
use crate::round::Entity;
use crate::round::Round;
use crate::sink::Format;

/// The console output: one `json.dumps` line per item on stdout.
#[derive(Debug, Default)]
pub struct Console;

impl Console {
    fn write_round(&mut self, round: &Round, entities: &[Entity]) -> Result<()> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for line in round.console_lines(entities)? {
            out.write_all(line.as_bytes())
                .map_err(|e| ExportError::io("-", e))?;
        }
        out.flush().map_err(|e| ExportError::io("-", e))
    }
}

/// One output of `stream`.
pub enum StreamOutput {
    /// Items printed on stdout.
    Console(Console),
    /// Rows upserted into PostgreSQL.
    Postgres(Box<postgres::PgOutput>),
    /// Files per entity and block range.
    Directory(dir::DirOutput),
}

impl StreamOutput {
    /// Parses one `-o` entry. `format` applies to directory outputs.
    pub fn parse(spec: &str, format: Format) -> Result<StreamOutput> {
        let spec = spec.trim();
        if spec == "console" {
            return Ok(StreamOutput::Console(Console));
        }
        if spec.starts_with("postgresql") {
            return postgres::PgOutput::from_url(spec)
                .map(|pg| StreamOutput::Postgres(Box::new(pg)));
        }
        let known_remote = ["projects", "kinesis://", "kafka", "gs://"];
        if let Some(kind) = known_remote.iter().find(|p| spec.starts_with(**p)) {
            return Err(ExportError::Usage(format!(
                "stream output {kind}... is not supported by nodewatch-export (supported: console, postgresql://..., a directory)"
            )));
        }
        if spec.ends_with('/') || std::path::Path::new(spec).is_dir() {
            return Ok(StreamOutput::Directory(dir::DirOutput::new(spec, format)));
        }
        Err(ExportError::Usage(format!(
            "Unable to determine item exporter type for output {spec:?}: use console, \
             postgresql://user:password@host:port/database, or a directory (an existing one, \
             or a path ending in \"/\")"
        )))
    }

    async fn open(&mut self, entities: &[Entity], last_synced: i128) -> Result<()> {
        match self {
            StreamOutput::Console(_) => Ok(()),
            StreamOutput::Postgres(pg) => pg.open(entities).await,
            StreamOutput::Directory(d) => d.open(entities, last_synced),
        }
    }

    async fn write_round(&mut self, round: &Round, entities: &[Entity]) -> Result<()> {
        match self {
            StreamOutput::Console(c) => c.write_round(round, entities),
            StreamOutput::Postgres(pg) => pg.write_round(round, entities).await.map(drop),
            StreamOutput::Directory(d) => d.write_round(round, entities),
        }
    }

    fn after_failure(&mut self, last_synced: i128) -> Result<()> {
        match self {
            StreamOutput::Console(_) => Ok(()),
            StreamOutput::Postgres(pg) => {
                pg.disconnect();
                Ok(())
            }
            StreamOutput::Directory(d) => d.remove_uncommitted(last_synced),
        }
    }
}

/// The outputs of one `stream`, written in the order given.
pub struct StreamOutputs(Vec<StreamOutput>);

impl StreamOutputs {
    /// Parses `-o` (absent means the console).
    pub fn parse(spec: Option<&str>, format: Format) -> Result<StreamOutputs> {
        let spec = spec.unwrap_or("console");
        spec.split(',')
            .map(|s| StreamOutput::parse(s, format))
            .collect::<Result<Vec<_>>>()
            .map(StreamOutputs)
    }

    /// Prepares every output: connects to databases and creates missing
    /// tables, creates directories and removes what an interrupted run left
    /// beyond `last_synced`.
    pub async fn open(&mut self, entities: &[Entity], last_synced: i128) -> Result<()> {
        for o in &mut self.0 {
            o.open(entities, last_synced).await?;
        }
        Ok(())
    }

    /// Writes a round to every output; when this returns `Ok` the round is
    /// durable everywhere and the state file may advance.
    pub async fn write_round(&mut self, round: &Round, entities: &[Entity]) -> Result<()> {
        for o in &mut self.0 {
            o.write_round(round, entities).await?;
        }
        Ok(())
    }

    /// Cleans up after a failed round that will be retried.
    pub fn after_failure(&mut self, last_synced: i128) -> Result<()> {
        for o in &mut self.0 {
            o.after_failure(last_synced)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(spec: Option<&str>) -> Result<Vec<&'static str>> {
        Ok(StreamOutputs::parse(spec, Format::Csv)?
            .0
            .iter()
            .map(|o| match o {
                StreamOutput::Console(_) => "console",
                StreamOutput::Postgres(_) => "postgres",
                StreamOutput::Directory(_) => "dir",
            })
            .collect())
    }

    #[test]
    fn outputs_are_recognised_like_ethereum_etl() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(kinds(None).unwrap(), ["console"]);
        assert_eq!(
            kinds(Some(&format!(
                "console, postgresql+pg8000://u:p@127.0.0.1:5/db,{d}"
            )))
            .unwrap(),
            ["console", "postgres", "dir"]
        );
        assert_eq!(kinds(Some("not/yet/there/")).unwrap(), ["dir"]);
        for bad in [
            "out.csv",
            "kafka/127.0.0.1:9092",
            "gs://bucket",
            "postgresql://",
        ] {
            assert_eq!(kinds(Some(bad)).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
