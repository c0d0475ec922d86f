//! An ordered map for keys handed out in increasing order (transaction ids, sequence numbers):
//! its keys sit sorted in one vector and its values beside them in another, so a lookup is a
//! binary search and adding the newest key is a push. A `BTreeMap` costs the wasm a copy of its
//! node code (insert, remove, merge, steal, search, drop) for every key and value type; this map's
//! code per type is a few vector operations.
//!
//! Removing a key leaves a hole (the key stays, its value goes) so that removal costs no shift;
//! holes at either end are skipped at once, and the vectors are compacted (and their spare room
//! given back) when holes outnumber the values, which keeps removal amortized O(1), iteration
//! O(len) and the room held within a small multiple of what the values take.
//!
//! Where inserts come out of order: transactions finish (and enter the history) in the order
//! their answers arrive; a transaction back on the wire after its slot was compacted away; a load
//! meeting a transaction in an older record than a newer one's. Each shifts the keys above it.

use std::fmt;
use std::iter::{FilterMap, Zip};
use std::ops::{Bound, Index, RangeBounds};
use std::vec;

/// An ordered map whose keys mostly arrive in increasing order.
///
/// Lookup, [`IdMap::get`] and [`IdMap::remove`] are O(log n) (amortized for removal), and so is
/// inserting a key above every key held (or one that was removed). Inserting a new key below the
/// newest shifts the keys above it: O(k) for k keys above, which stays small where inserts come
/// slightly out of order (answers of parallel requests) and is O(n) only for a key far in the
/// past.
#[derive(Clone)]
pub struct IdMap<K, V> {
    /// The keys and where the holes are.
    slots: Slots<K>,
    /// Every slot's value; `None` is a hole (its key was removed).
    values: Vec<Option<V>>,
}

/// A map's keys and the bookkeeping of its holes, apart from its values: this code is compiled
/// once per key type instead of once per map type. What is a hole, it asks the map.
#[derive(Clone)]
struct Slots<K> {
    /// Every slot's key, sorted and distinct.
    keys: Vec<K>,
    /// The number of values (slots that are not holes).
    len: usize,
    /// The first slot that may hold a value: every slot before it is a hole.
    head: usize,
}

/// Whether slot `i` is a hole.
type Holes<'a> = &'a dyn Fn(usize) -> bool;

impl<K: Ord + Copy> Slots<K> {
    /// The slot of `key` among the slots after the leading holes (`Err`: where it would go).
    fn find(&self, key: &K) -> Result<usize, usize> {
        match self.keys[self.head..].binary_search(key) {
            Ok(i) => Ok(self.head + i),
            Err(i) => Err(self.head + i),
        }
    }

    /// The slot for `key`, and whether it is new (the map adds a hole there for it).
    fn place(&mut self, key: K) -> (usize, bool) {
        if self.keys.last().is_none_or(|last| *last < key) {
            self.keys.push(key);
            return (self.keys.len() - 1, true);
        }
        let placed = match self.keys.binary_search(&key) {
            Ok(i) => (i, false),
            Err(i) => {
                self.keys.insert(i, key);
                (i, true)
            }
        };
        self.head = self.head.min(placed.0);
        placed
    }

    /// Notes a value taken out: drops the holes at the end and skips those at the start.
    /// Returns how many slots are left.
    fn taken(&mut self, holes: Holes) -> usize {
        self.len -= 1;
        while !self.keys.is_empty() && holes(self.keys.len() - 1) {
            self.keys.pop();
        }
        self.head = self.head.min(self.keys.len());
        while self.head < self.keys.len() && holes(self.head) {
            self.head += 1;
        }
        self.keys.len()
    }

    /// The slots whose keys are within `start` and `end`, past the leading holes.
    fn span(&self, start: Bound<&K>, end: Bound<&K>) -> (usize, usize) {
        let keys = &self.keys[self.head..];
        // How many keys are below `k` (or at most `k`, `through` it).
        let below = |k: &K, through: bool| keys.partition_point(|x| x < k || (through && x == k));
        let from = match start {
            Bound::Included(k) => below(k, false),
            Bound::Excluded(k) => below(k, true),
            Bound::Unbounded => 0,
        };
        let to = match end {
            Bound::Included(k) => below(k, true),
            Bound::Excluded(k) => below(k, false),
            Bound::Unbounded => keys.len(),
        };
        (self.head + from, self.head + to.max(from))
    }

    /// Whether holes outnumber the values.
    fn crowded(&self) -> bool {
        self.keys.len() > 2 * self.len
    }

    /// Drops the keys of the holes, and the room left over once the map holds a fraction of
    /// what it held.
    fn compact(&mut self, holes: Holes) {
        let mut kept = 0;
        for i in self.head..self.keys.len() {
            if !holes(i) {
                self.keys[kept] = self.keys[i];
                kept += 1;
            }
        }
        self.keys.truncate(kept);
        self.keys.shrink_to(2 * kept);
        self.head = 0;
    }
}

impl<K, V> Default for IdMap<K, V> {
    fn default() -> Self {
        Self {
            slots: Slots {
                keys: Vec::new(),
                len: 0,
                head: 0,
            },
            values: Vec::new(),
        }
    }
}

impl<K: Ord + Copy, V> IdMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.slots.len
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.slots.len == 0
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.values[self.slots.find(key).ok()?].as_ref()
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.slots.find(key).ok()?;
        self.values[i].as_mut()
    }

    /// Whether the map holds `key`.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`'s value, returning the one it replaces. O(1) amortized for a key above every
    /// key held, O(log n) for one held or removed; otherwise it shifts the slots above it.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let (i, new) = self.slots.place(key);
        if new {
            self.values.insert(i, None);
        }
        let old = self.values[i].replace(value);
        if old.is_none() {
            self.slots.len += 1;
        }
        old
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.slots.find(key).ok()?;
        let value = self.values[i].take()?;
        let values = &self.values;
        let left = self.slots.taken(&|j| values[j].is_none());
        self.values.truncate(left);
        if self.slots.crowded() {
            let values = &self.values;
            self.slots.compact(&|j| values[j].is_none());
            self.values.retain(Option::is_some);
            self.values.shrink_to(2 * self.slots.len);
        }
        Some(value)
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.entries(self.slots.head, self.slots.keys.len())
    }

    /// The entries of slots `start..end`.
    fn entries(&self, start: usize, end: usize) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        let values = self.values[start..end].iter();
        self.slots.keys[start..end]
            .iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k, v.as_ref()?)))
    }

    /// The entries whose keys are in `range`, in key order.
    pub fn range(&self, range: impl RangeBounds<K>) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        let (start, end) = self.slots.span(range.start_bound(), range.end_bound());
        self.entries(start, end)
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// The entries in key order, their values to change.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&K, &mut V)> {
        let values = self.values[self.slots.head..].iter_mut();
        self.slots.keys[self.slots.head..]
            .iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k, v.as_mut()?)))
    }

    /// The values in key order, to change.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> {
        self.iter_mut().map(|(_, v)| v)
    }

    /// The entry of the lowest key.
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.iter().next()
    }

    /// The entry of the highest key.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.iter().next_back()
    }

    /// The values, taken out in key order.
    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> {
        self.values.into_iter().flatten()
    }
}

impl<K, V> IntoIterator for IdMap<K, V> {
    type Item = (K, V);
    type IntoIter = FilterMap<Zip<vec::IntoIter<K>, vec::IntoIter<Option<V>>>, Taken<K, V>>;

    /// The entries, taken out in key order.
    fn into_iter(self) -> Self::IntoIter {
        let taken: Taken<K, V> = |(k, v)| Some((k, v?));
        self.slots
            .keys
            .into_iter()
            .zip(self.values)
            .filter_map(taken)
    }
}

/// A slot taken out of the map: its entry, unless it is a hole.
type Taken<K, V> = fn((K, Option<V>)) -> Option<(K, V)>;

impl<K: Ord + Copy, V: PartialEq> PartialEq for IdMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.slots.len == other.slots.len && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Copy, V> Index<&K> for IdMap<K, V> {
    type Output = V;

    fn index(&self, key: &K) -> &V {
        self.get(key).expect("no entry for the key")
    }
}

impl<K: Ord + Copy + fmt::Debug, V: fmt::Debug> fmt::Debug for IdMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::collections::BTreeMap;

    fn entries(map: &IdMap<u64, u64>) -> Vec<(u64, u64)> {
        map.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn inserts_out_of_order_and_iterates_in_key_order() {
        let mut map = IdMap::new();
        for k in [5, 1, 9, 3, 7] {
            assert_eq!(map.insert(k, k * 10), None);
        }
        assert_eq!(map.insert(3, 31), Some(30));
        assert_eq!(entries(&map), [(1, 10), (3, 31), (5, 50), (7, 70), (9, 90)]);
        assert_eq!(map.len(), 5);
        let back: Vec<u64> = map.keys().rev().copied().collect();
        assert_eq!(back, [9, 7, 5, 3, 1]);
    }

    #[test]
    fn removes_anywhere_and_reuses_a_removed_key() {
        let mut map = IdMap::new();
        for k in 0..10 {
            map.insert(k, k);
        }
        assert_eq!(map.remove(&4), Some(4));
        assert_eq!(map.remove(&4), None);
        assert_eq!(map.remove(&0), Some(0));
        assert_eq!(map.remove(&9), Some(9));
        assert_eq!(map.get(&4), None);
        assert!(!map.contains_key(&0));
        assert_eq!(map.first_key_value(), Some((&1, &1)));
        assert_eq!(map.last_key_value(), Some((&8, &8)));
        assert_eq!(map.insert(4, 40), None);
        assert_eq!(map.insert(0, 1), None);
        assert_eq!(map.first_key_value(), Some((&0, &1)));
        assert_eq!(map[&4], 40);
        assert_eq!(map.len(), 9);
    }

    #[test]
    fn compacts_holes_once_they_outnumber_the_values() {
        let mut map = IdMap::new();
        for k in 0..100 {
            map.insert(k, k);
        }
        // Every other key from the middle: holes the ends cannot skip.
        for k in (1..99).step_by(2) {
            map.remove(&k);
        }
        assert!(
            map.slots.keys.len() <= 2 * map.len() + 1,
            "{} slots",
            map.slots.keys.len()
        );
        let expected: Vec<(u64, u64)> = (0..100)
            .filter(|k| k % 2 == 0 || *k == 99)
            .map(|k| (k, k))
            .collect();
        assert_eq!(entries(&map), expected);
        // Removed from the front, the slots left behind are dropped.
        for k in (0..90).step_by(2) {
            map.remove(&k);
        }
        assert!(
            map.slots.keys.len() <= 2 * map.len() + 1,
            "{} slots",
            map.slots.keys.len()
        );
        assert_eq!(
            entries(&map),
            [(90, 90), (92, 92), (94, 94), (96, 96), (98, 98), (99, 99)]
        );
        // The room the removed values took is given back.
        assert!(
            map.values.capacity() < 50,
            "room for {}",
            map.values.capacity()
        );
    }

    #[test]
    fn ranges_match_a_btree_map() {
        let mut rng = Rng::new(7);
        let mut map = IdMap::new();
        let mut model = BTreeMap::new();
        for step in 0..2_000u64 {
            // Mostly the next key, sometimes one in the past; removals anywhere.
            let key = match rng.up_to(3) {
                0 => rng.up_to(step),
                _ => step,
            };
            if rng.up_to(2) == 0 {
                assert_eq!(map.remove(&key), model.remove(&key));
            } else {
                assert_eq!(map.insert(key, step), model.insert(key, step));
            }
            assert_eq!(map.len(), model.len());
            let (lo, hi) = (rng.up_to(step + 1), rng.up_to(step + 1));
            let got: Vec<_> = map.range(lo..hi.max(lo)).rev().collect();
            let want: Vec<_> = model.range(lo..hi.max(lo)).rev().collect();
            assert_eq!(got, want);
            let got: Vec<_> = map.range(..=lo).collect();
            assert_eq!(got, model.range(..=lo).collect::<Vec<_>>());
        }
        assert_eq!(
            map.into_values().collect::<Vec<_>>(),
            model.into_values().collect::<Vec<_>>()
        );
    }
}
