//! The bounded cache of verified headers and receipt sets, so that a batch of a hundred
//! receipts of one block costs one `eth_getBlockReceipts` and one header, not a hundred, and
//! a re-asked block costs nothing.
//!
//! Keyed by block hash: a hash names one block's content for ever, so an entry can never go
//! stale through a reorg. Numbers are not keys (a number's block changes in a reorg); the
//! callers look blocks up by number afresh. Entries leave oldest first once the byte bound is
//! passed ([`crate::bounded`]). One mutex, held only to look up or insert (never across an
//! await), recovering from poisoning.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nodewatch_verify::{Header, VerifiedReceipts, B256};
use prometheus::IntGauge;

use super::flight::Flights;
use crate::bounded::Bounded;

/// What one header costs in the cache (its fields and the map entry), in bytes.
pub const HEADER_BYTES: usize = 512;

/// A verified header or receipt set.
#[derive(Debug, Clone)]
enum Entry {
    Header(Arc<Header>),
    Receipts(Arc<VerifiedReceipts>),
}

impl Entry {
    fn bytes(&self) -> usize {
        match self {
            Entry::Header(_) => HEADER_BYTES,
            Entry::Receipts(r) => r.approx_bytes().max(HEADER_BYTES),
        }
    }
}

/// Which map an entry lives in (a block's header and its receipts are two entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Header,
    Receipts,
}

/// The cache shared by every request.
#[derive(Debug)]
pub struct VerifiedCache {
    /// The entries by (block hash, kind), bounded in bytes (`verify.cache_bytes`).
    inner: Mutex<Bounded<(B256, Kind), Entry>>,
    /// `nodewatch_verify_cache_bytes`.
    gauge: IntGauge,
    /// Receipt-set fetches under way: one per block at a time.
    pub flights: Flights,
}

impl VerifiedCache {
    /// An empty cache of at most `limit` bytes, reporting its size on `gauge`.
    pub fn new(limit: usize, gauge: IntGauge) -> Self {
        Self {
            inner: Mutex::new(Bounded::new(limit)),
            gauge,
            flights: Flights::default(),
        }
    }

    /// The verified header of block `hash`, if held.
    pub fn header(&self, hash: &B256) -> Option<Arc<Header>> {
        match self.lock().get(&(*hash, Kind::Header)) {
            Some(Entry::Header(h)) => Some(Arc::clone(h)),
            _ => None,
        }
    }

    /// The verified receipts of block `hash`, if held.
    pub fn receipts(&self, hash: &B256) -> Option<Arc<VerifiedReceipts>> {
        match self.lock().get(&(*hash, Kind::Receipts)) {
            Some(Entry::Receipts(r)) => Some(Arc::clone(r)),
            _ => None,
        }
    }

    /// Keeps a verified header.
    pub fn put_header(&self, header: Arc<Header>) {
        self.put((header.hash, Kind::Header), Entry::Header(header));
    }

    /// Keeps a verified receipt set.
    pub fn put_receipts(&self, receipts: Arc<VerifiedReceipts>) {
        let key = (receipts.block.1, Kind::Receipts);
        self.put(key, Entry::Receipts(receipts));
    }

    fn put(&self, key: (B256, Kind), entry: Entry) {
        let weight = entry.bytes();
        let mut inner = self.lock();
        inner.insert(key, entry, weight);
        self.gauge.set(inner.weight() as i64);
    }

    fn lock(&self) -> MutexGuard<'_, Bounded<(B256, Kind), Entry>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodewatch_verify::Bloom;

    fn header(n: u8) -> Arc<Header> {
        Arc::new(Header {
            number: u64::from(n),
            hash: B256::repeat_byte(n),
            parent_hash: B256::ZERO,
            transactions_root: B256::ZERO,
            receipts_root: B256::ZERO,
            logs_bloom: Bloom::ZERO,
            withdrawals_root: None,
            base_fee: None,
            gas_used: 0,
            timestamp: 0,
        })
    }

    #[test]
    fn keeps_headers_by_hash_and_evicts_the_oldest_past_the_bound() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let cache = VerifiedCache::new(3 * HEADER_BYTES, gauge.clone());
        for n in 1..=3 {
            cache.put_header(header(n));
        }
        assert_eq!(
            cache.header(&B256::repeat_byte(2)).map(|h| h.number),
            Some(2)
        );
        cache.put_header(header(4));
        assert!(
            cache.header(&B256::repeat_byte(1)).is_none(),
            "oldest evicted"
        );
        assert!(cache.header(&B256::repeat_byte(4)).is_some());
        assert_eq!(gauge.get(), 3 * HEADER_BYTES as i64);
        assert!(
            cache.receipts(&B256::repeat_byte(4)).is_none(),
            "kinds apart"
        );
    }

    #[test]
    fn a_second_insert_of_the_same_block_is_not_counted_twice() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let cache = VerifiedCache::new(10 * HEADER_BYTES, gauge.clone());
        cache.put_header(header(1));
        cache.put_header(header(1));
        assert_eq!(gauge.get(), HEADER_BYTES as i64);
    }
}
