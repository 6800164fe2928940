//! An `eth_getLogs` filter as geth applies it: addresses (one or many, empty = any) and topic
//! positions (null = any, one topic, or an OR-list); `matches` for a log, `may_match` for a
//! header bloom (false means the block certainly has no matching log).

use alloy_primitives::{Address, Bloom, BloomInput, Log, B256};
use serde::Deserialize;

use crate::hex::{self, BadField};
use crate::rpc;
use crate::verdict::{BlockRef, Wrong};

/// Most topic positions a filter may have (a log has at most four topics).
const MAX_TOPIC_POSITIONS: usize = 4;

/// The filter part of `eth_getLogs` params.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// A log matches when its address is one of these; empty matches any address.
    pub addresses: Vec<Address>,
    /// Per topic position: `None` (or an empty list) matches anything, else one of the list.
    pub topics: Vec<Option<Vec<B256>>>,
}

/// The `eth_getLogs` filter object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcFilter<'a> {
    pub(crate) from_block: Option<&'a str>,
    pub(crate) to_block: Option<&'a str>,
    pub(crate) block_hash: Option<&'a str>,
    #[serde(borrow)]
    pub(crate) address: Option<OneOrMany<'a>>,
    #[serde(borrow)]
    pub(crate) topics: Option<Vec<Option<TopicEntry<'a>>>>,
}

/// `address`: one string or a list.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<'a> {
    One(&'a str),
    Many(#[serde(borrow)] Vec<&'a str>),
}

/// One topic position: one topic or an OR-list (null inside the list is ignored).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum TopicEntry<'a> {
    One(&'a str),
    Many(#[serde(borrow)] Vec<Option<&'a str>>),
}

impl LogFilter {
    /// The filter of `eth_getLogs` params (`[{fromBlock, toBlock, address, topics, blockHash}]`).
    pub fn from_params(params: &[u8]) -> Result<Self, Wrong> {
        Self::read_params(params).map(|(_, filter)| filter)
    }

    /// The params' filter object and its filter.
    pub(crate) fn read_params(params: &[u8]) -> Result<(RpcFilter<'_>, Self), Wrong> {
        let malformed = |e: String| Wrong::malformed(BlockRef::UNKNOWN, format!("params: {e}"));
        let (f,): (RpcFilter<'_>,) = rpc::parse(params).map_err(malformed)?;
        let filter = Self::read(f.address.as_ref(), f.topics.as_deref())
            .map_err(|e| malformed(e.to_string()))?;
        Ok((f, filter))
    }

    /// Reads the `address` and `topics` of a filter object.
    pub(crate) fn read(
        address: Option<&OneOrMany<'_>>,
        topics: Option<&[Option<TopicEntry<'_>>]>,
    ) -> Result<Self, BadField> {
        let addresses = match address {
            None => Vec::new(),
            Some(OneOrMany::One(a)) => vec![hex::fixed::<20>("address", a)?.into()],
            Some(OneOrMany::Many(list)) => list
                .iter()
                .map(|a| hex::fixed::<20>("address", a).map(Address::from))
                .collect::<Result<_, _>>()?,
        };
        let topics = topics.unwrap_or_default();
        if topics.len() > MAX_TOPIC_POSITIONS {
            return Err(BadField {
                field: "topics",
                reason: format!("{} positions, at most 4", topics.len()),
            });
        }
        let position = |entry: &Option<TopicEntry<'_>>| -> Result<Option<Vec<B256>>, BadField> {
            Ok(match entry {
                None => None,
                Some(TopicEntry::One(t)) => Some(vec![hex::fixed::<32>("topics", t)?]),
                Some(TopicEntry::Many(list)) => {
                    let list: Vec<B256> = list
                        .iter()
                        .flatten()
                        .map(|t| hex::fixed::<32>("topics", t))
                        .collect::<Result<_, _>>()?;
                    (!list.is_empty()).then_some(list)
                }
            })
        };
        Ok(LogFilter {
            addresses,
            topics: topics.iter().map(position).collect::<Result<_, _>>()?,
        })
    }

    /// Whether `log` matches (geth's rule: a log with fewer topics than the filter has
    /// positions never matches).
    pub fn matches(&self, log: &Log) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        let topics = log.data.topics();
        if self.topics.len() > topics.len() {
            return false;
        }
        self.topics
            .iter()
            .zip(topics)
            .all(|(wanted, got)| wanted.as_ref().is_none_or(|list| list.contains(got)))
    }

    /// Whether a block with header bloom `bloom` may hold a matching log.
    pub fn may_match(&self, bloom: &Bloom) -> bool {
        let has = |input: &[u8]| bloom.contains_input(BloomInput::Raw(input));
        if !self.addresses.is_empty() && !self.addresses.iter().any(|a| has(a.as_slice())) {
            return false;
        }
        self.topics
            .iter()
            .flatten()
            .all(|list| list.iter().any(|t| has(t.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Bytes, LogData};

    fn log(address: u8, topics: &[u8]) -> Log {
        let topics = topics.iter().map(|t| B256::repeat_byte(*t)).collect();
        Log {
            address: Address::repeat_byte(address),
            data: LogData::new(topics, Bytes::new()).unwrap(),
        }
    }

    fn filter(json: &str) -> LogFilter {
        #[derive(Deserialize)]
        struct F<'a> {
            #[serde(borrow)]
            address: Option<OneOrMany<'a>>,
            #[serde(borrow)]
            topics: Option<Vec<Option<TopicEntry<'a>>>>,
        }
        let f: F<'_> = serde_json::from_str(json).unwrap();
        LogFilter::read(f.address.as_ref(), f.topics.as_deref()).unwrap()
    }

    fn h(b: u8) -> String {
        B256::repeat_byte(b).to_string()
    }

    #[test]
    fn params_give_the_filter_or_a_malformed_verdict() {
        let params = format!(
            r#"[{{"fromBlock":"0x1","address":"{}","topics":[null,"{}"]}}]"#,
            Address::repeat_byte(1),
            h(2)
        );
        let f = LogFilter::from_params(params.as_bytes()).unwrap();
        assert_eq!(f.addresses, vec![Address::repeat_byte(1)]);
        assert_eq!(f.topics, vec![None, Some(vec![B256::repeat_byte(2)])]);
        for bad in [
            &b"{}"[..],
            b"[{\"address\":\"0x12\"}]",
            b"[{\"topics\":[1]}]",
            b"[{\"topics\":[null,null,null,null,null]}]",
        ] {
            assert_eq!(
                LogFilter::from_params(bad).unwrap_err().check,
                crate::Check::Malformed
            );
        }
    }

    #[test]
    fn address_one_or_many() {
        let one = filter(&format!(r#"{{"address":"{}"}}"#, Address::repeat_byte(1)));
        assert!(one.matches(&log(1, &[])));
        assert!(!one.matches(&log(2, &[])));
        let many = filter(&format!(
            r#"{{"address":["{}","{}"]}}"#,
            Address::repeat_byte(1),
            Address::repeat_byte(2)
        ));
        assert!(many.matches(&log(2, &[])) && !many.matches(&log(3, &[])));
        assert!(filter("{}").matches(&log(9, &[1, 2])));
    }

    #[test]
    fn topics_null_one_and_or_lists() {
        let f = filter(&format!(r#"{{"topics":[null,["{}","{}"]]}}"#, h(2), h(3)));
        assert!(f.matches(&log(1, &[9, 3])));
        assert!(!f.matches(&log(1, &[9, 4])));
        assert!(!f.matches(&log(1, &[9])), "fewer topics than positions");
        let f = filter(&format!(r#"{{"topics":["{}"]}}"#, h(7)));
        assert!(f.matches(&log(1, &[7, 1, 2])) && !f.matches(&log(1, &[1, 7])));
        assert!(filter(r#"{"topics":[[]]}"#).matches(&log(1, &[5])));
    }

    #[test]
    fn bloom_may_match_only_when_every_part_is_in_it() {
        let mut bloom = Bloom::ZERO;
        bloom.accrue_log(&log(1, &[7]));
        assert!(filter(&format!(r#"{{"topics":["{}"]}}"#, h(7))).may_match(&bloom));
        assert!(!filter(&format!(r#"{{"topics":["{}"]}}"#, h(8))).may_match(&bloom));
        let addr = format!(
            r#"{{"address":["{}","{}"]}}"#,
            Address::repeat_byte(2),
            Address::repeat_byte(1)
        );
        assert!(filter(&addr).may_match(&bloom));
        assert!(
            !filter(&format!(r#"{{"address":"{}"}}"#, Address::repeat_byte(3))).may_match(&bloom)
        );
        assert!(filter("{}").may_match(&Bloom::ZERO));
    }
}
