//! A measurement, run by hand: the PostgreSQL output's throughput alone (no node), on
//! synthetic rounds upserted through [`PgOutput`](crate::outputs::postgres::PgOutput).

use std::time::{Duration, Instant};

use nodewatch_testkit::postgres::Postgres;

/// A row laid out as `fields`, with the given values and None elsewhere.
fn row_of(
    fields: &[&str],
    values: &[(&str, crate::pyvalue::PyValue)],
) -> Vec<crate::pyvalue::PyValue> {
    use crate::pyvalue::PyValue;
    fields
        .iter()
        .map(|f| {
            values
                .iter()
                .find(|(k, _)| k == f)
                .map_or(PyValue::None, |(_, v)| v.clone())
        })
        .collect()
}

/// Throughput of the PostgreSQL output alone (no node): synthetic rounds of 100 blocks x 20
/// transactions x 2 logs (one an ERC-20 Transfer) upserted through `PgOutput`.
/// `cargo test --release -p nodewatch-export --lib -- --ignored --nocapture postgres_write`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn postgres_write_throughput() {
    use crate::mappers::blocks::{MappedBlock, BLOCK_FIELDS, TRANSACTION_FIELDS};
    use crate::mappers::receipts::{MappedReceipt, LOG_FIELDS, RECEIPT_FIELDS};
    use crate::outputs::postgres::PgOutput;
    use crate::pyvalue::PyValue::{Int, List, Str};
    use crate::round::{Entity, Round};
    let Some(pg_bin) = nodewatch_testkit::tools::require_postgres() else {
        return;
    };
    let pg = Postgres::start(&pg_bin).await;
    let entities = [
        Entity::Block,
        Entity::Transaction,
        Entity::Log,
        Entity::TokenTransfer,
    ];
    let mut out = PgOutput::from_url(&pg.url("postgres")).unwrap();
    out.open(&entities).await.unwrap();
    let word = |n: u64| Str(format!("0x{n:064x}"));
    let transfer = Str("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef".into());
    let (rounds, per_round, txs_per_block) = (20u64, 100u64, 20u64);
    let (mut rows, mut busy) = (0u64, Duration::ZERO);
    for r in 0..rounds {
        let (lo, hi) = (r * per_round, r * per_round + per_round - 1);
        let mut round = Round {
            lo,
            hi,
            blocks: Vec::new(),
            receipts: Vec::new(),
            traces: Vec::new(),
            contracts: Vec::new(),
            tokens: Vec::new(),
        };
        for n in lo..=hi {
            let ts = Int(1_700_000_000 + 12 * i128::from(n));
            let block = row_of(
                BLOCK_FIELDS,
                &[
                    ("number", Int(n.into())),
                    ("hash", word(n)),
                    ("timestamp", ts.clone()),
                    ("gas_used", Int(21_000)),
                ],
            );
            let mut transactions = Vec::new();
            for t in 0..txs_per_block {
                let h = word(1_000_000 + n * 100 + t);
                transactions.push(row_of(
                    TRANSACTION_FIELDS,
                    &[
                        ("hash", h.clone()),
                        ("block_number", Int(n.into())),
                        ("block_timestamp", ts.clone()),
                        ("value", Int(10_i128.pow(20))),
                        ("input", Str("0x".into())),
                        ("blob_versioned_hashes", List(vec![])),
                    ],
                ));
                let logs = (0..2)
                    .map(|i| {
                        let topics = if i == 0 {
                            vec![transfer.clone(), word(1), word(2)]
                        } else {
                            vec![word(3)]
                        };
                        row_of(
                            LOG_FIELDS,
                            &[
                                ("log_index", Int((t * 2 + i).into())),
                                ("transaction_hash", h.clone()),
                                ("block_number", Int(n.into())),
                                (
                                    "address",
                                    Str("0x00000000000000000000000000000000000000aa".into()),
                                ),
                                ("data", word(5)),
                                ("topics", List(topics)),
                            ],
                        )
                    })
                    .collect();
                round.receipts.push(MappedReceipt {
                    receipt: row_of(
                        RECEIPT_FIELDS,
                        &[
                            ("transaction_hash", h),
                            ("status", Int(1)),
                            ("gas_used", Int(21_000)),
                        ],
                    ),
                    logs,
                });
            }
            round.blocks.push(MappedBlock {
                block,
                transactions,
            });
        }
        let started = Instant::now();
        rows += out.write_round(&round, &entities).await.unwrap();
        busy += started.elapsed();
    }
    eprintln!(
        "FIGURE postgres-write: {rows} rows ({} blocks) in {:.2}s = {:.0} rows/s (one transaction per 100-block round)",
        rounds * per_round,
        busy.as_secs_f64(),
        rows as f64 / busy.as_secs_f64()
    );
}
