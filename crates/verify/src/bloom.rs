//! Blooms of logs (EIP-234 `m3:2048`): the receipts' blooms and their union are a large
//! part of verifying receipts (one keccak per address and per topic), so the keccak of each
//! distinct address and topic is computed once per block and reused (mainnet blocks repeat
//! the same token contracts and event signatures many times).

use alloy_primitives::map::{AddressHashMap, B256HashMap};
use alloy_primitives::{keccak256, Bloom, BloomInput, Log, B256};

/// Room for the distinct addresses and topics of a large mainnet block, so the maps do not
/// grow while a block is checked.
const DISTINCT_GUESS: usize = 512;

/// Computes blooms of logs, remembering the keccak of each address and topic seen.
pub(crate) struct BloomCache {
    addresses: AddressHashMap<B256>,
    topics: B256HashMap<B256>,
}

impl Default for BloomCache {
    fn default() -> Self {
        BloomCache {
            addresses: AddressHashMap::with_capacity_and_hasher(DISTINCT_GUESS, Default::default()),
            topics: B256HashMap::with_capacity_and_hasher(DISTINCT_GUESS, Default::default()),
        }
    }
}

impl BloomCache {
    /// The bloom of `logs`: each log's address and topics.
    pub(crate) fn bloom_of(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        for log in logs {
            let hash = *self
                .addresses
                .entry(log.address)
                .or_insert_with(|| keccak256(log.address));
            bloom.accrue(BloomInput::Hash(hash));
            for topic in log.data.topics() {
                let hash = *self
                    .topics
                    .entry(*topic)
                    .or_insert_with(|| keccak256(topic));
                bloom.accrue(BloomInput::Hash(hash));
            }
        }
        bloom
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, Bytes, LogData};

    #[test]
    fn cached_blooms_equal_alloys() {
        let log = |a: u8, t: &[u8]| Log {
            address: Address::repeat_byte(a),
            data: LogData::new(
                t.iter().map(|b| B256::repeat_byte(*b)).collect(),
                Bytes::new(),
            )
            .unwrap(),
        };
        let logs = vec![
            log(1, &[2, 3]),
            log(1, &[3]),
            log(4, &[]),
            log(2, &[1, 1, 1, 1]),
        ];
        let mut cache = BloomCache::default();
        for _ in 0..2 {
            let mut expected = Bloom::ZERO;
            logs.iter().for_each(|l| expected.accrue_log(l));
            assert_eq!(cache.bloom_of(&logs), expected);
        }
        assert_eq!(cache.bloom_of(&[]), Bloom::ZERO);
    }
}
