//! Ordered, bounded concurrency: batches are fetched (and mapped) by up to
//! `workers` tokio tasks at once, while their results are handed to a single
//! consumer strictly in batch order. At most `workers` batches are in flight
//! or waiting, so memory stays bounded whatever the range; a failing batch
//! stops the pipeline and the tasks still running are aborted.
//!
//! [`write_ordered`] is the export jobs' use of it: each batch's rows go to
//! the job's files in batch order, then the progress bar advances.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{self, StreamExt};
use tokio::task::JoinHandle;

use super::error::{ExportError, Result};
use super::progress::{Progress, Ui};
use super::pyvalue::PyValue;
use super::sink::ItemWriter;

/// A spawned task that is aborted when dropped unfinished.
struct AbortOnDrop<T>(JoinHandle<Result<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(result) => result,
            Err(e) => Err(ExportError::Rpc(format!("a fetch task failed: {e}"))),
        })
    }
}

/// Runs `fetch` on every batch with up to `workers` running concurrently and
/// passes the results to `consume` in the order of `batches`.
pub async fn run_ordered<I, T, F, Fut, C>(
    batches: I,
    workers: usize,
    mut fetch: F,
    mut consume: C,
) -> Result<()>
where
    I: Iterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
    C: FnMut(T) -> Result<()>,
{
    let mut results = stream::iter(batches)
        .map(|batch| AbortOnDrop(tokio::spawn(fetch(batch))))
        .buffered(workers.max(1));
    while let Some(result) = results.next().await {
        consume(result?)?;
    }
    Ok(())
}

/// One fetched batch of an export job, ready to write.
pub struct Batch {
    /// Rows in the order they are written, each with the index of its output
    /// (a block, then its transactions: one stdout gets them interleaved as
    /// ethereum-etl writes them).
    pub rows: Vec<(usize, Vec<PyValue>)>,
    /// How far the batch moves the progress bar (its blocks, or its items).
    pub units: u64,
}

impl Batch {
    /// Rows for a job's only output; the progress bar counts them.
    pub fn rows(rows: Vec<Vec<PyValue>>) -> Batch {
        Batch {
            units: rows.len() as u64,
            rows: rows.into_iter().map(|r| (0, r)).collect(),
        }
    }

    /// Items with rows of their own (a block and its transactions, a receipt
    /// and its logs): each item's row (output 0), then its children's
    /// (output 1); the progress bar counts the items.
    pub fn with_children(
        items: impl IntoIterator<Item = (Vec<PyValue>, Vec<Vec<PyValue>>)>,
    ) -> Batch {
        let mut batch = Batch {
            rows: Vec::new(),
            units: 0,
        };
        for (row, children) in items {
            batch.rows.push((0, row));
            batch.rows.extend(children.into_iter().map(|c| (1, c)));
            batch.units += 1;
        }
        batch
    }

    /// The batch, moving the progress bar by `units` (its blocks) instead.
    pub fn covering(self, units: u64) -> Batch {
        Batch { units, ..self }
    }
}

/// [`run_ordered`] writing each batch to `outputs` (by the rows' output
/// index; `None` is an output not asked for) and then advancing `progress`.
pub async fn write_ordered<I, F, Fut>(
    batches: I,
    workers: usize,
    fetch: F,
    outputs: &mut [Option<&mut ItemWriter>],
    progress: &Progress,
) -> Result<()>
where
    I: Iterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<Batch>> + Send + 'static,
{
    run_ordered(batches, workers, fetch, |batch: Batch| {
        for (output, row) in &batch.rows {
            if let Some(Some(out)) = outputs.get_mut(*output) {
                out.write(row)?;
            }
        }
        progress.inc(batch.units);
        Ok(())
    })
    .await
}

/// The end of a job with one output: the progress bar closed, the output finished, and
/// ethereum-etl's `<entity> items exported: N` line. Returns N.
pub fn finish_one(progress: &Progress, out: ItemWriter, ui: &Ui, entity: &str) -> Result<u64> {
    progress.finish();
    let n = out.finish()?;
    ui.summary(&format!("{entity} items exported: {n}"));
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_back_in_batch_order_even_when_finishing_out_of_order() {
        let mut seen = Vec::new();
        run_ordered(
            0..20u64,
            5,
            |i| async move {
                // Later batches finish first.
                tokio::time::sleep(Duration::from_millis(20 - i)).await;
                Ok(i)
            },
            |i| {
                seen.push(i);
                Ok(())
            },
        )
        .await
        .unwrap();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_first_failure_stops_the_run() {
        let mut seen = Vec::new();
        let err = run_ordered(
            0..10u64,
            2,
            |i| async move {
                if i == 3 {
                    Err(ExportError::Rpc("block 3 failed".into()))
                } else {
                    Ok(i)
                }
            },
            |i| {
                seen.push(i);
                Ok(())
            },
        )
        .await
        .unwrap_err();
        assert_eq!(seen, vec![0, 1, 2]);
        assert!(err.to_string().contains("block 3"));
    }
}
