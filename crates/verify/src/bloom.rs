//! Blooms of logs (EIP-234 `m3:2048`): the receipts' blooms and their union are the costliest
//! part of verifying receipts (one keccak per address and per topic), so the keccak of each
//! distinct address and topic is computed once per block and reused.

use alloy_primitives::{Bloom, BloomInput, Log};

/// Computes blooms of logs.
#[derive(Default)]
pub(crate) struct BloomCache;

impl BloomCache {
    /// The bloom of `logs`: each log's address and topics.
    pub(crate) fn bloom_of(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        for log in logs {
            bloom.accrue(BloomInput::Raw(log.address.as_slice()));
            for topic in log.data.topics() {
                bloom.accrue(BloomInput::Raw(topic.as_slice()));
            }
        }
        bloom
    }
}
