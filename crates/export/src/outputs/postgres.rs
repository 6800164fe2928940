//! The PostgreSQL output of `stream`. Each round is written in one
//! transaction: one upsert per table (ethereum-etl's tables and
//! `ON CONFLICT ... DO UPDATE`, see [`super::tables`]), then `COMMIT`; the
//! state file advances only after that. A round repeated after a crash
//! therefore rewrites the same rows in place: every block, transaction, log
//! and transfer is in its table exactly once.
//!
//! Differences from ethereum-etl, all on the safe side: its exporter commits
//! each item type separately; missing tables are created here (with the DDL
//! SQLAlchemy emits for ethereum-etl's table definitions) instead of failing;
//! a connection lost mid-stream is re-opened at the next round.
//!
//! TLS follows libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` in the
//! URL's query ([`super::pg_tls`]); the other query parameters are
//! tokio-postgres's (`connect_timeout`, `application_name`, ...).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use super::pg_tls::{Attempt, PgTls};
use super::tables::{item_type, table_for, Table};
use crate::error::{ExportError, Result};
use crate::round::Entity;
use crate::round::Round;

/// Connection attempts give up after this long unless the URL sets
/// `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection with the upserts prepared on it.
struct Connection {
    client: Client,
    /// The background task driving the socket; aborted on drop.
    task: tokio::task::JoinHandle<()>,
    /// Prepared upsert per table name.
    upserts: HashMap<&'static str, Statement>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Rows upserted into PostgreSQL.
pub struct PgOutput {
    /// Everything but TLS, which [`PgTls`] decides per attempt.
    config: tokio_postgres::Config,
    /// `sslmode` and its certificates, as libpq reads them.
    tls: PgTls,
    /// `user@host:port/database`, for messages (never the password).
    target: String,
    /// `None` before `open` and after a failed round.
    conn: Option<Connection>,
    /// The tables of the entities being streamed.
    tables: Vec<&'static Table>,
}

impl PgOutput {
    /// Parses `postgresql://` or `postgresql+<driver>://` (SQLAlchemy's form;
    /// the driver is ignored). Missing host: localhost; missing port: 5432.
    pub fn from_url(url: &str) -> Result<PgOutput> {
        let bad = |why: &str| {
            ExportError::Usage(format!(
                "bad PostgreSQL URL {:?}: {why} (expected postgresql://user:password@host:port/database)",
                redact(url)
            ))
        };
        let rest = url
            .strip_prefix("postgresql")
            .and_then(|r| match r.strip_prefix('+') {
                Some(driver) => driver.split_once("://").map(|(_, rest)| rest),
                None => r.strip_prefix("://"),
            })
            .ok_or_else(|| bad("the scheme must be postgresql:// or postgresql+<driver>://"))?;
        let (rest, tls) = split_tls_params(rest).map_err(|e| {
            ExportError::Usage(format!("bad PostgreSQL URL {:?}: {e}", redact(url)))
        })?;
        let mut config = tokio_postgres::Config::from_str(&format!("postgresql://{rest}"))
            .map_err(|e| bad(&e.to_string()))?;
        let user = config
            .get_user()
            .ok_or_else(|| bad("it names no user"))?
            .to_owned();
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        config.application_name("nodewatch-export");
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config.get_dbname().unwrap_or(&user).to_owned();
        Ok(PgOutput {
            target: format!("{user}@{host}:{port}/{db}"),
            config,
            tls,
            conn: None,
            tables: Vec::new(),
        })
    }

    /// `user@host:port/database`.
    #[cfg(test)]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connects, creates the missing tables of `entities` and prepares the
    /// upserts. Failing here stops the stream (exit 1) with the reason.
    pub async fn open(&mut self, entities: &[Entity]) -> Result<()> {
        self.tables = entities.iter().map(|e| table_for(*e)).collect();
        self.connect().await.map_err(|e| match e {
            ExportError::Database { message, .. } => ExportError::Database {
                message,
                retriable: false,
            },
            other => other,
        })
    }

    /// Drops the connection; the next round reconnects.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    async fn connect(&mut self) -> Result<()> {
        self.conn = None;
        let (client, task) = self.open_client().await?;
        let mut conn = Connection {
            client,
            task,
            upserts: HashMap::new(),
        };
        for table in &self.tables {
            let exists: bool = conn
                .client
                .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table.name])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| self.error(&format!("cannot look up table {}", table.name), &e))?;
            if !exists {
                conn.client
                    .batch_execute(&table.create_sql())
                    .await
                    .map_err(|e| self.error(&format!("cannot create table {}", table.name), &e))?;
            }
            let stmt = conn
                .client
                .prepare(&table.upsert_sql())
                .await
                .map_err(|e| {
                    // A server's refusal is about the table; anything else about the connection.
                    let doing = match e.as_db_error() {
                        Some(_) => format!(
                            "table {} does not have ethereum-etl's layout (columns and primary key)",
                            table.name
                        ),
                        None => format!("cannot prepare the upsert into table {}", table.name),
                    };
                    self.error(&doing, &e)
                })?;
            conn.upserts.insert(table.name, stmt);
        }
        self.conn = Some(conn);
        Ok(())
    }

    /// A client from the sslmode's first attempt, or from its fallback.
    async fn open_client(&self) -> Result<(Client, tokio::task::JoinHandle<()>)> {
        let (first, fallback) = self.tls.attempts();
        let e = match self.try_connect(first).await {
            Ok(connected) => return Ok(connected),
            Err(e) => e,
        };
        let first_failure = self.tls.explain(&e).unwrap_or_else(|| detail(&e));
        let Some(fallback) = fallback else {
            return Err(self.connect_error(first_failure, &e));
        };
        let e = match self.try_connect(fallback).await {
            Ok(connected) => return Ok(connected),
            Err(e) => e,
        };
        let mut message = self.tls.explain(&e).unwrap_or_else(|| detail(&e));
        if message != first_failure {
            let how = if first == Attempt::Plain {
                "without"
            } else {
                "with"
            };
            message.push_str(&format!(" (and before that, {how} TLS: {first_failure})"));
        }
        Err(self.connect_error(message, &e))
    }

    /// "cannot connect" with what went wrong; retriable as the error's kind says.
    fn connect_error(&self, message: String, e: &tokio_postgres::Error) -> ExportError {
        ExportError::Database {
            message: format!(
                "PostgreSQL {}: cannot connect to PostgreSQL: {message}",
                self.target
            ),
            retriable: retriable(e),
        }
    }

    /// One connection attempt; the connection is driven by a spawned task.
    async fn try_connect(
        &self,
        attempt: Attempt,
    ) -> std::result::Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
        let mut config = self.config.clone();
        // As libpq: no TLS over Unix-domain sockets.
        let unix = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
        let connector = self.tls.connector().filter(|_| !unix);
        // The error, if any, surfaces on the client's next call.
        match (attempt, connector) {
            (Attempt::Plain, _) | (_, None) => {
                config.ssl_mode(SslMode::Disable);
                let (client, connection) = config.connect(NoTls).await?;
                Ok((client, tokio::spawn(async move { drop(connection.await) })))
            }
            (tls, Some(connector)) => {
                config.ssl_mode(match tls {
                    Attempt::TlsIfOffered => SslMode::Prefer,
                    _ => SslMode::Require,
                });
                let (client, connection) = config.connect(connector).await?;
                Ok((client, tokio::spawn(async move { drop(connection.await) })))
            }
        }
    }

    /// Upserts the round's items and commits; returns the rows written.
    pub async fn write_round(&mut self, round: &Round, entities: &[Entity]) -> Result<u64> {
        if self.conn.is_none() {
            self.connect().await?;
        }
        let items = round.items(entities)?;
        let mut batches = Vec::new();
        for table in &self.tables {
            let columns = columns_of(table, &items, item_type(table));
            if !columns.is_empty() && !columns[0].is_empty() {
                batches.push((*table, columns));
            }
        }
        let what = format!("blocks {}..={}", round.lo, round.hi);
        let result = self.upsert_all(&batches, &what).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn upsert_all(
        &mut self,
        batches: &[(&'static Table, Vec<Vec<Option<String>>>)],
        what: &str,
    ) -> Result<u64> {
        let target = self.target.clone();
        let fail = |doing: String, e: &tokio_postgres::Error| error(&target, &doing, e);
        let Some(conn) = self.conn.as_mut() else {
            return Err(ExportError::Database {
                message: format!("PostgreSQL {target}: not connected"),
                retriable: true,
            });
        };
        let tx = conn
            .client
            .transaction()
            .await
            .map_err(|e| fail(format!("cannot begin the transaction for {what}"), &e))?;
        let mut rows = 0;
        for (table, columns) in batches {
            let Some(stmt) = conn.upserts.get(table.name) else {
                continue;
            };
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = columns
                .iter()
                .map(|c| c as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            rows += tx
                .execute(stmt, &params)
                .await
                .map_err(|e| fail(format!("cannot write {what} to table {}", table.name), &e))?;
        }
        tx.commit()
            .await
            .map_err(|e| fail(format!("cannot commit {what}"), &e))?;
        Ok(rows)
    }

    fn error(&self, doing: &str, e: &tokio_postgres::Error) -> ExportError {
        error(&self.target, doing, e)
    }
}

/// The rows of `items` of type `kind` for `table`, column by column (the
/// shape of the upsert's parameters). A key seen twice keeps its last row,
/// as ethereum-etl's row-by-row upsert would.
fn columns_of(table: &Table, items: &[crate::round::Item], kind: &str) -> Vec<Vec<Option<String>>> {
    let rows: Vec<Vec<Option<String>>> = items
        .iter()
        .filter(|item| {
            item.first()
                .is_some_and(|(k, v)| k == "type" && v.as_str() == Some(kind))
        })
        .map(|item| table.row(item))
        .collect();
    let mut last_of_key: HashMap<Vec<&Option<String>>, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        last_of_key.insert(table.key_of(row), i);
    }
    let mut columns: Vec<Vec<Option<String>>> =
        vec![Vec::with_capacity(rows.len()); table.columns.len()];
    for (i, row) in rows.iter().enumerate() {
        if last_of_key.get(&table.key_of(row)) != Some(&i) {
            continue;
        }
        for (c, value) in row.iter().enumerate() {
            columns[c].push(value.clone());
        }
    }
    columns
}

/// A database error with its context; decides whether a retry may help.
fn error(target: &str, doing: &str, e: &tokio_postgres::Error) -> ExportError {
    ExportError::Database {
        message: format!("PostgreSQL {target}: {doing}: {}", detail(e)),
        retriable: retriable(e),
    }
}

/// Whether a retry may help.
fn retriable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // Connection problems, serialization failures and deadlocks,
        // resource shortages, administrator shutdowns.
        Some(code) => {
            let class = &code.code()[..2];
            matches!(class, "08" | "40" | "53" | "57") || *code == SqlState::TOO_MANY_CONNECTIONS
        }
        // Socket-level trouble (refused, reset, closed, timed out).
        None => true,
    }
}

/// The error's text: the server's message, or the chain of causes (each
/// shown once: tokio-postgres's text already ends with its cause's).
fn detail(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(&format!(": {part}"));
        }
        source = s.source();
    }
    text
}

/// Splits libpq's TLS parameters (decoded) off the query of `rest` (the URL
/// after `://`); returns the URL without them and the TLS settings.
fn split_tls_params(rest: &str) -> std::result::Result<(String, PgTls), String> {
    let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut others = Vec::new();
    let mut ssl = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if PgTls::PARAMS.contains(&key) {
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("{key}: not UTF-8 once decoded"))?;
            ssl.push((key.to_owned(), value.into_owned()));
        } else {
            others.push(pair);
        }
    }
    let tls = PgTls::from_params(&mut ssl)?;
    let url = match others.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", others.join("&")),
    };
    Ok((url, tls))
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_sqlalchemy_form_are_accepted() {
        let pg = PgOutput::from_url("postgresql+pg8000://etl:s3cret@127.0.0.1:5433/chain").unwrap();
        assert_eq!(pg.target(), "etl@127.0.0.1:5433/chain");
        let pg = PgOutput::from_url("postgresql://etl@/chain").unwrap();
        assert_eq!(pg.target(), "etl@localhost:5432/chain");
        for bad in [
            "postgresql:/x",
            "postgresqlx://u@h/db",
            "postgresql://h/db",
            "postgresql://u@h:notaport/db",
        ] {
            let e = PgOutput::from_url(bad).err().expect(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        let pg = PgOutput::from_url(
            "postgresql+psycopg2://u@h/db?connect_timeout=3&sslmode=require&application_name=x",
        )
        .unwrap();
        assert_eq!(
            pg.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(pg.tls.attempts(), (Attempt::Tls, None));
        let e = PgOutput::from_url("postgresql://u:pw@h/db?sslmode=verify-ful")
            .err()
            .unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("invalid sslmode \"verify-ful\""),
            "{e}"
        );
        let e = PgOutput::from_url("postgresql://u:s3cret@h:x/db")
            .err()
            .unwrap();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_one_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut pg = PgOutput::from_url(&format!("postgresql://u:pw@127.0.0.1:{port}/db")).unwrap();
        let e = pg.open(&[Entity::Block]).await.unwrap_err();
        assert!(e.stops_stream());
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("PostgreSQL u@127.0.0.1:{port}/db: cannot connect")),
            "{text}"
        );
        assert!(!text.contains("pw"), "{text}");
    }
}
