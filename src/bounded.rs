//! A map bounded in bytes, oldest entry out first: what the answer cache ([`crate::cache`])
//! and the verification cache ([`crate::verify::cache`]) keep their entries in. Not
//! synchronised: each cache holds one behind its own mutex.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Entries with a weight each, at most `limit` in all.
#[derive(Debug)]
pub struct Bounded<K, V> {
    /// The entries and their weights.
    entries: HashMap<K, (V, usize)>,
    /// Insertion order, oldest first.
    order: VecDeque<K>,
    /// The weights held.
    weight: usize,
    /// The bound.
    limit: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// An empty map of at most `limit`.
    pub fn new(limit: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            limit,
        }
    }

    /// The entry for `key`, if held.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Keeps `value` under `key` (an entry already there stays, one heavier than the whole
    /// bound is not kept), letting the oldest entries go until the bound holds again.
    pub fn insert(&mut self, key: K, value: V, weight: usize) {
        if weight > self.limit || self.entries.contains_key(&key) {
            return;
        }
        self.weight += weight;
        self.order.push_back(key.clone());
        self.entries.insert(key, (value, weight));
        while self.weight > self.limit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, w)) = self.entries.remove(&old) {
                self.weight -= w;
            }
        }
    }

    /// Keeps only the entries `keep` says yes to; returns how many went.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|k, (v, w)| {
            let kept = keep(k, v);
            if !kept {
                freed += *w;
            }
            kept
        });
        self.weight -= freed;
        let entries = &self.entries;
        self.order.retain(|k| entries.contains_key(k));
        before - self.entries.len()
    }

    /// The weight held.
    pub fn weight(&self) -> usize {
        self.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_out_first_and_nothing_heavier_than_the_bound() {
        let mut m = Bounded::new(30);
        m.insert("a", 1, 10);
        m.insert("b", 2, 10);
        m.insert("a", 9, 10);
        assert_eq!(m.get(&"a"), Some(&1), "an entry already there stays");
        m.insert("c", 3, 15);
        assert_eq!(m.get(&"a"), None, "the oldest went");
        assert_eq!((m.get(&"b"), m.get(&"c")), (Some(&2), Some(&3)));
        assert_eq!(m.weight(), 25);
        m.insert("huge", 4, 31);
        assert_eq!(m.get(&"huge"), None);
        assert_eq!(m.weight(), 25);
    }

    #[test]
    fn retain_drops_entries_their_weight_and_their_place_in_line() {
        let mut m = Bounded::new(30);
        m.insert("a", 1, 10);
        m.insert("b", 2, 10);
        m.insert("c", 3, 10);
        assert_eq!(m.retain(|_, v| *v != 2), 1);
        assert_eq!((m.get(&"b"), m.weight()), (None, 20));
        m.insert("b", 4, 10);
        m.insert("d", 5, 10);
        assert_eq!(m.get(&"a"), None, "the oldest went, not the new b");
        assert_eq!((m.get(&"b"), m.get(&"c")), (Some(&4), Some(&3)));
        assert_eq!(m.weight(), 30);
    }
}
