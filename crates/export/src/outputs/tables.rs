//! ethereum-etl 2.4.2's PostgreSQL tables (`ethereumetl/streaming/
//! postgres_tables.py`) for the seven stream entities, the DDL SQLAlchemy
//! emits for them, the upsert ethereum-etl runs (`create_insert_statement_
//! for_table`: `ON CONFLICT (<primary key>) DO UPDATE SET` every other
//! column), and its item converters (`UnixTimestampItemConverter`,
//! `IntToDecimalItemConverter`, `ListFieldItemConverter('topics', 'topic',
//! fill=4)`, `blob_versioned_hashes` joined with commas), and how pg8000
//! sends a Python list (a PostgreSQL array: `function_sighashes` into its
//! `VARCHAR[]` column, `trace_address` into its `VARCHAR` column as the
//! array's text, `{}` or `{0,1}`).
//!
//! Values travel as text (one `text[]` parameter per column, `unnest`ed and
//! cast to the column type in SQL), so integers of any size arrive exact and
//! a value the column cannot hold fails exactly as it does for ethereum-etl.

use crate::mappers::enrich::rfc3339_utc;
use crate::pyfmt::{float_repr, py_str};
use crate::pyvalue::PyValue;
use crate::round::Entity;
use crate::round::Item;

/// A column type, as SQLAlchemy's PostgreSQL dialect spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `TIMESTAMP` (without time zone).
    Timestamp,
    /// `BigInteger`.
    BigInt,
    /// `String` (unbounded `VARCHAR`).
    Varchar,
    /// `Numeric(38)`.
    Numeric38,
    /// `Numeric(78)`.
    Numeric78,
    /// `Float` (double precision).
    Float,
    /// `Integer`.
    Int,
    /// `Boolean`.
    Bool,
    /// `VARCHAR(42)` (addresses).
    Varchar42,
    /// `ARRAY(String)`.
    VarcharArray,
}

impl ColumnType {
    /// The SQL type name.
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Timestamp => "TIMESTAMP WITHOUT TIME ZONE",
            ColumnType::BigInt => "BIGINT",
            ColumnType::Varchar => "VARCHAR",
            ColumnType::Numeric38 => "NUMERIC(38)",
            ColumnType::Numeric78 => "NUMERIC(78)",
            ColumnType::Float => "FLOAT",
            ColumnType::Int => "INTEGER",
            ColumnType::Bool => "BOOLEAN",
            ColumnType::Varchar42 => "VARCHAR(42)",
            ColumnType::VarcharArray => "VARCHAR[]",
        }
    }
}

/// One table: name, columns in declaration order, primary key.
#[derive(Debug)]
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// `(column, type)` in ethereum-etl's order.
    pub columns: &'static [(&'static str, ColumnType)],
    /// Primary-key columns, in ethereum-etl's order.
    pub key: &'static [&'static str],
    /// The primary key's constraint name when ethereum-etl names it (else PostgreSQL's
    /// `<table>_pkey`).
    pub key_name: Option<&'static str>,
}

#[rustfmt::skip]
use ColumnType::{BigInt as I, Bool as B, Float as F, Int as I32, Numeric38 as N38, Numeric78 as N78, Timestamp as T, Varchar as S, Varchar42 as A, VarcharArray as SA};

/// `blocks`.
#[rustfmt::skip]
pub const BLOCKS: Table = Table {
    name: "blocks",
    columns: &[
        ("timestamp", T), ("number", I), ("hash", S), ("parent_hash", S), ("nonce", S),
        ("sha3_uncles", S), ("logs_bloom", S), ("transactions_root", S), ("state_root", S),
        ("receipts_root", S), ("miner", S), ("difficulty", N38), ("total_difficulty", N38),
        ("size", I), ("extra_data", S), ("gas_limit", I), ("gas_used", I),
        ("transaction_count", I), ("base_fee_per_gas", I), ("withdrawals_root", S),
        ("blob_gas_used", I), ("excess_blob_gas", I),
    ],
    key: &["hash"],
    key_name: None,
};

/// `transactions` (transactions joined with their receipts).
#[rustfmt::skip]
pub const TRANSACTIONS: Table = Table {
    name: "transactions",
    columns: &[
        ("hash", S), ("nonce", I), ("transaction_index", I), ("from_address", S),
        ("to_address", S), ("value", N38), ("gas", I), ("gas_price", I), ("input", S),
        ("receipt_cumulative_gas_used", I), ("receipt_gas_used", I),
        ("receipt_contract_address", S), ("receipt_root", S), ("receipt_status", I),
        ("block_timestamp", T), ("block_number", I), ("block_hash", S), ("max_fee_per_gas", I),
        ("max_priority_fee_per_gas", I), ("transaction_type", I),
        ("receipt_effective_gas_price", I), ("receipt_l1_fee", I), ("receipt_l1_gas_used", I),
        ("receipt_l1_gas_price", I), ("receipt_l1_fee_scalar", F), ("max_fee_per_blob_gas", I),
        ("blob_versioned_hashes", S), ("receipt_blob_gas_price", I), ("receipt_blob_gas_used", I),
    ],
    key: &["hash"],
    key_name: None,
};

/// `logs` (topics spread over `topic0`..`topic3`).
#[rustfmt::skip]
pub const LOGS: Table = Table {
    name: "logs",
    columns: &[
        ("log_index", I), ("transaction_hash", S), ("transaction_index", I), ("address", S),
        ("data", S), ("topic0", S), ("topic1", S), ("topic2", S), ("topic3", S),
        ("block_timestamp", T), ("block_number", I), ("block_hash", S),
    ],
    key: &["log_index", "transaction_hash"],
    key_name: None,
};

/// `token_transfers`.
#[rustfmt::skip]
pub const TOKEN_TRANSFERS: Table = Table {
    name: "token_transfers",
    columns: &[
        ("token_address", S), ("from_address", S), ("to_address", S), ("value", N78),
        ("transaction_hash", S), ("log_index", I), ("block_timestamp", T), ("block_number", I),
        ("block_hash", S),
    ],
    key: &["transaction_hash", "log_index"],
    key_name: None,
};

/// `traces`.
#[rustfmt::skip]
pub const TRACES: Table = Table {
    name: "traces",
    columns: &[
        ("transaction_hash", S), ("transaction_index", I), ("from_address", S),
        ("to_address", S), ("value", N38), ("input", S), ("output", S), ("trace_type", S),
        ("call_type", S), ("reward_type", S), ("gas", I), ("gas_used", I), ("subtraces", I),
        ("trace_address", S), ("error", S), ("status", I32), ("block_timestamp", T),
        ("block_number", I), ("block_hash", S), ("trace_id", S),
    ],
    key: &["trace_id"],
    key_name: None,
};

/// `tokens` (`function_sighashes` stays NULL: token items have none).
#[rustfmt::skip]
pub const TOKENS: Table = Table {
    name: "tokens",
    columns: &[
        ("address", A), ("name", S), ("symbol", S), ("decimals", I32),
        ("function_sighashes", SA), ("total_supply", N78), ("block_number", I),
    ],
    key: &["address", "block_number"],
    key_name: Some("tokens_pk"),
};

/// `contracts`.
#[rustfmt::skip]
pub const CONTRACTS: Table = Table {
    name: "contracts",
    columns: &[
        ("address", A), ("bytecode", S), ("function_sighashes", SA), ("is_erc20", B),
        ("is_erc721", B), ("block_number", I),
    ],
    key: &["address", "block_number"],
    key_name: Some("contracts_pk"),
};

/// The table an entity's items go to.
pub fn table_for(entity: Entity) -> &'static Table {
    match entity {
        Entity::Block => &BLOCKS,
        Entity::Transaction => &TRANSACTIONS,
        Entity::Log => &LOGS,
        Entity::TokenTransfer => &TOKEN_TRANSFERS,
        Entity::Trace => &TRACES,
        Entity::Contract => &CONTRACTS,
        Entity::Token => &TOKENS,
    }
}

/// The `type` of the items that go to `table`.
pub fn item_type(table: &Table) -> &'static str {
    match table.name {
        "blocks" => "block",
        "transactions" => "transaction",
        "logs" => "log",
        "traces" => "trace",
        "contracts" => "contract",
        "tokens" => "token",
        _ => "token_transfer",
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Table {
    /// `CREATE TABLE` as SQLAlchemy's `metadata.create_all` emits it
    /// (`IF NOT EXISTS` added).
    pub fn create_sql(&self) -> String {
        let mut cols: Vec<String> = self
            .columns
            .iter()
            .map(|(name, ty)| {
                let not_null = if self.key.contains(name) {
                    " NOT NULL"
                } else {
                    ""
                };
                format!("{} {}{not_null}", quoted(name), ty.sql())
            })
            .collect();
        let key: Vec<String> = self.key.iter().map(|k| quoted(k)).collect();
        let constraint = self
            .key_name
            .map_or(String::new(), |n| format!("CONSTRAINT {} ", quoted(n)));
        cols.push(format!("{constraint}PRIMARY KEY ({})", key.join(", ")));
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n    {}\n)",
            quoted(self.name),
            cols.join(",\n    ")
        )
    }

    /// The upsert: parameter `$i` is a `text[]` holding column `i` of every row.
    pub fn upsert_sql(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|(n, _)| quoted(n)).collect();
        let casts: Vec<String> = self
            .columns
            .iter()
            .map(|(n, ty)| format!("{}::{}", quoted(n), ty.sql()))
            .collect();
        let params: Vec<String> = (1..=self.columns.len())
            .map(|i| format!("${i}::text[]"))
            .collect();
        let key: Vec<String> = self.key.iter().map(|k| quoted(k)).collect();
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|(n, _)| !self.key.contains(n))
            .map(|(n, _)| format!("{0} = excluded.{0}", quoted(n)))
            .collect();
        format!(
            "INSERT INTO {table} ({names}) SELECT {casts} FROM unnest({params}) AS t({names}) \
             ON CONFLICT ({key}) DO UPDATE SET {updates}",
            table = quoted(self.name),
            names = names.join(", "),
            casts = casts.join(", "),
            params = params.join(", "),
            key = key.join(", "),
            updates = updates.join(", "),
        )
    }

    /// The row ethereum-etl's converters make of an enriched item, one text
    /// value (or NULL) per column.
    pub fn row(&self, item: &Item) -> Vec<Option<String>> {
        let get = |key: &str| item.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        self.columns
            .iter()
            .map(|(name, _)| {
                if let Some(i) = name
                    .strip_prefix("topic")
                    .and_then(|i| i.parse::<usize>().ok())
                {
                    return match get("topics") {
                        Some(PyValue::List(topics)) => topics.get(i).and_then(text),
                        _ => None,
                    };
                }
                let value = get(name)?;
                match (*name, value) {
                    (n, PyValue::Int(t)) if n.ends_with("timestamp") => {
                        Some(sql_timestamp(*t).unwrap_or_else(|| t.to_string()))
                    }
                    ("blob_versioned_hashes", PyValue::List(hashes)) => {
                        Some(hashes.iter().map(py_str).collect::<Vec<String>>().join(","))
                    }
                    (_, v) => text(v),
                }
            })
            .collect()
    }

    /// The primary-key values of a row made by [`Table::row`].
    pub fn key_of<'r>(&self, row: &'r [Option<String>]) -> Vec<&'r Option<String>> {
        self.key
            .iter()
            .filter_map(|k| self.columns.iter().position(|(n, _)| n == k))
            .map(|i| &row[i])
            .collect()
    }
}

/// A value as the driver would send it, in text form.
fn text(value: &PyValue) -> Option<String> {
    match value {
        PyValue::None => None,
        PyValue::Bool(b) => Some(b.to_string()),
        PyValue::Int(i) => Some(i.to_string()),
        PyValue::BigInt(s) | PyValue::Str(s) => Some(s.clone()),
        PyValue::Float(f) => Some(float_repr(*f)),
        PyValue::List(items) => Some(array_text(items)),
        other => Some(py_str(other)),
    }
}

/// A list as PostgreSQL prints an array (`array_out`): `{a,b}`, elements in
/// double quotes when they would not read back alone, `NULL` for `None`.
fn array_text(items: &[PyValue]) -> String {
    let elements: Vec<String> = items
        .iter()
        .map(|v| match text(v) {
            None => "NULL".to_owned(),
            Some(t) => {
                let plain = !t.is_empty()
                    && !t.eq_ignore_ascii_case("null")
                    && !t
                        .chars()
                        .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
                if plain {
                    t
                } else {
                    format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
                }
            }
        })
        .collect();
    format!("{{{}}}", elements.join(","))
}

/// `datetime.utcfromtimestamp(t).strftime('%Y-%m-%d %H:%M:%S')`.
pub fn sql_timestamp(t: i128) -> Option<String> {
    let t = i64::try_from(t).ok()?;
    let iso = rfc3339_utc(t);
    Some(iso.trim_end_matches('Z').replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, PyValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn ddl_matches_sqlalchemy() {
        let sql = LOGS.create_sql();
        assert!(
            sql.starts_with(
                "CREATE TABLE IF NOT EXISTS \"logs\" (\n    \"log_index\" BIGINT NOT NULL,"
            ),
            "{sql}"
        );
        assert!(
            sql.ends_with("PRIMARY KEY (\"log_index\", \"transaction_hash\")\n)"),
            "{sql}"
        );
        assert!(BLOCKS
            .create_sql()
            .contains("\"timestamp\" TIMESTAMP WITHOUT TIME ZONE,"));
    }

    #[test]
    fn upsert_updates_every_non_key_column() {
        let sql = TOKEN_TRANSFERS.upsert_sql();
        assert!(sql.contains("FROM unnest($1::text[], "), "{sql}");
        assert!(sql.contains("$9::text[]) AS t("), "{sql}");
        assert!(sql.contains("ON CONFLICT (\"transaction_hash\", \"log_index\") DO UPDATE SET \"token_address\" = excluded.\"token_address\""), "{sql}");
        assert!(!sql.contains("\"log_index\" = excluded"), "{sql}");
    }

    #[test]
    fn rows_follow_ethereum_etl_converters() {
        let log = item(&[
            ("type", "log".into()),
            ("log_index", PyValue::Int(2)),
            ("transaction_hash", "0xab".into()),
            ("topics", PyValue::List(vec!["0x1".into(), "0x2".into()])),
            ("block_timestamp", PyValue::Int(1_700_000_012)),
            (
                "block_number",
                PyValue::BigInt("123456789012345678901234567890".into()),
            ),
        ]);
        let row = LOGS.row(&log);
        let col =
            |name: &str| row[LOGS.columns.iter().position(|(n, _)| *n == name).unwrap()].clone();
        assert_eq!(col("log_index").as_deref(), Some("2"));
        assert_eq!(col("topic0").as_deref(), Some("0x1"));
        assert_eq!(col("topic1").as_deref(), Some("0x2"));
        assert_eq!(col("topic2"), None);
        assert_eq!(col("address"), None);
        assert_eq!(
            col("block_timestamp").as_deref(),
            Some("2023-11-14 22:13:32")
        );
        assert_eq!(
            col("block_number").as_deref(),
            Some("123456789012345678901234567890")
        );
        assert_eq!(
            LOGS.key_of(&row),
            [&Some("2".to_owned()), &Some("0xab".to_owned())]
        );

        let tx = item(&[
            (
                "blob_versioned_hashes",
                PyValue::List(vec!["0x01".into(), "0x02".into()]),
            ),
            ("receipt_l1_fee_scalar", PyValue::Float(1.5)),
        ]);
        let row = TRANSACTIONS.row(&tx);
        let col = |name: &str| {
            row[TRANSACTIONS
                .columns
                .iter()
                .position(|(n, _)| *n == name)
                .unwrap()]
            .clone()
        };
        assert_eq!(col("blob_versioned_hashes").as_deref(), Some("0x01,0x02"));
        assert_eq!(col("receipt_l1_fee_scalar").as_deref(), Some("1.5"));
        let empty = TRANSACTIONS.row(&item(&[("blob_versioned_hashes", PyValue::List(vec![]))]));
        assert_eq!(empty[26].as_deref(), Some(""));
    }

    #[test]
    fn lists_travel_as_postgresql_arrays() {
        let list = |v: Vec<PyValue>| text(&PyValue::List(v)).unwrap();
        assert_eq!(list(vec![]), "{}");
        assert_eq!(list(vec![PyValue::Int(0), PyValue::Int(12)]), "{0,12}");
        assert_eq!(
            list(vec!["0xa9059cbb".into(), "0x18160ddd".into()]),
            "{0xa9059cbb,0x18160ddd}"
        );
        assert_eq!(
            list(vec![
                "a b".into(),
                "".into(),
                "x\"y\\".into(),
                PyValue::None,
                "null".into()
            ]),
            "{\"a b\",\"\",\"x\\\"y\\\\\",NULL,\"null\"}"
        );
        let sql = TOKENS.create_sql();
        assert!(sql.contains("\"function_sighashes\" VARCHAR[],"), "{sql}");
        assert!(
            sql.ends_with(
                "CONSTRAINT \"tokens_pk\" PRIMARY KEY (\"address\", \"block_number\")\n)"
            ),
            "{sql}"
        );
        assert!(TRACES
            .create_sql()
            .ends_with("PRIMARY KEY (\"trace_id\")\n)"));
    }
}
