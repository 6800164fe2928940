//! The export commands themselves, one module per ethereum-etl command
//! family, plus the range and batching helpers they share.

pub mod block_range;
pub(crate) mod block_receipts;
pub mod blocks;
pub mod contracts;
pub mod export_all;
pub mod extract;
pub mod receipts;
pub mod stream;
pub mod token_transfers;
pub mod tokens;
pub mod traces;

use super::error::{ExportError, Result};

/// ethereum-etl's `validate_range` (negative values are rejected by the
/// argument parser already).
pub fn check_range(start: u64, end: u64) -> Result<()> {
    if end < start {
        return Err(ExportError::Usage(format!(
            "the end block ({end}) must be greater than or equal to the start block ({start})"
        )));
    }
    Ok(())
}

/// Inclusive `(first, last)` block ranges of at most `batch_size` blocks.
pub fn block_batches(start: u64, end: u64, batch_size: usize) -> impl Iterator<Item = (u64, u64)> {
    let size = batch_size.max(1) as u64;
    let mut next = Some(start);
    std::iter::from_fn(move || {
        let lo = next?;
        if lo > end {
            return None;
        }
        let hi = lo.saturating_add(size - 1).min(end);
        next = hi.checked_add(1);
        Some((lo, hi))
    })
}

/// Groups an iterator of results into batches of `size`, stopping at the
/// first error (which is yielded as its own item).
pub fn chunked<T, I>(iter: I, size: usize) -> impl Iterator<Item = Result<Vec<T>>>
where
    I: Iterator<Item = Result<T>>,
{
    let size = size.max(1);
    let mut iter = iter.fuse();
    let mut pending_error: Option<ExportError> = None;
    let mut done = false;
    std::iter::from_fn(move || {
        if let Some(e) = pending_error.take() {
            done = true;
            return Some(Err(e));
        }
        if done {
            return None;
        }
        let mut batch = Vec::with_capacity(size);
        for item in iter.by_ref() {
            match item {
                Ok(v) => batch.push(v),
                Err(e) if batch.is_empty() => {
                    done = true;
                    return Some(Err(e));
                }
                Err(e) => {
                    pending_error = Some(e);
                    return Some(Ok(batch));
                }
            }
            if batch.len() == size {
                break;
            }
        }
        if batch.is_empty() {
            None
        } else {
            Some(Ok(batch))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_the_range_inclusively() {
        assert_eq!(
            block_batches(0, 4, 2).collect::<Vec<_>>(),
            vec![(0, 1), (2, 3), (4, 4)]
        );
        assert_eq!(block_batches(5, 5, 100).collect::<Vec<_>>(), vec![(5, 5)]);
        assert_eq!(
            block_batches(u64::MAX - 1, u64::MAX, 1).collect::<Vec<_>>(),
            vec![(u64::MAX - 1, u64::MAX - 1), (u64::MAX, u64::MAX)]
        );
    }

    #[test]
    fn reversed_range_is_a_usage_error() {
        assert_eq!(check_range(2, 1).unwrap_err().exit_code(), 2);
        assert!(check_range(1, 1).is_ok());
    }

    #[test]
    fn chunked_stops_at_the_first_error() {
        let items = vec![
            Ok(1),
            Ok(2),
            Ok(3),
            Err(ExportError::Data("x".into())),
            Ok(5),
        ];
        let out: Vec<_> = chunked(items.into_iter(), 2).collect();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap(), &vec![1, 2]);
        assert_eq!(out[1].as_ref().unwrap(), &vec![3]);
        assert!(out[2].is_err());
    }
}
