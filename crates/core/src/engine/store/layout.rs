//! Where stored documents live: each collection's snapshot pages, and the log records not yet
//! folded into them.
//!
//! A document's page follows from its id by linear hashing: with `n` pages, `level` =
//! ⌊log2 n⌋ and `split` = n − 2^level, a hash goes to `h mod 2^level`, or to
//! `h mod 2^(level+1)` when that is below `split`. The page count grows one split at a time
//! (page `split` divides into itself and page `2^level + split`), so no step rewrites a
//! collection whole. A collection's first pages are laid out from its size at once, and written
//! over several slices (a page not written yet leaves its documents in the log). Records are
//! deleted only in order, once every page a record touched has been rewritten after it.

use crate::id_map::IdMap;
use std::collections::HashMap;

/// A stable 64-bit hash of a document id (FNV-1a): the page it goes to.
pub fn hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One collection's pages: for each, the record it includes everything up to (0: not written
/// yet, its documents are all in the log), and about how many bytes its documents take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pages {
    as_of: Vec<u64>,
    bytes: Vec<usize>,
}

impl Pages {
    /// Pages as stored: `as_of` per index, from 0 (0 for a page not written yet).
    pub fn new(as_of: Vec<u64>) -> Self {
        let bytes = vec![0; as_of.len()];
        Pages { as_of, bytes }
    }

    /// How many pages there are, written or not.
    pub fn count(&self) -> usize {
        self.as_of.len()
    }

    /// The page a hash goes to, if there are pages.
    pub fn index_of(&self, hash: u64) -> Option<u32> {
        index_for(self.count(), hash)
    }

    /// The record page `index` includes everything up to.
    pub fn as_of(&self, index: u32) -> u64 {
        self.as_of.get(index as usize).copied().unwrap_or(0)
    }

    /// Whether a change stored in record `seq` to a document with this hash is in its page.
    pub fn covers(&self, hash: u64, seq: u64) -> bool {
        self.index_of(hash).is_some_and(|i| self.as_of(i) >= seq)
    }

    /// Counts `bytes` more for the page of `hash` (a change written to the log).
    pub fn grow(&mut self, hash: u64, bytes: usize) {
        if let Some(i) = self.index_of(hash) {
            self.bytes[i as usize] += bytes;
        }
    }

    /// About how many bytes page `index` holds.
    pub fn bytes(&self, index: u32) -> usize {
        self.bytes.get(index as usize).copied().unwrap_or(0)
    }

    /// Sets out the first pages of a collection holding `total_bytes`: enough of them that
    /// each holds about `page_bytes`, none written yet.
    pub fn lay_out(total_bytes: usize, page_bytes: usize) -> Pages {
        let count = total_bytes.div_ceil(page_bytes.max(1)).max(1);
        Pages {
            as_of: vec![0; count],
            bytes: vec![total_bytes / count; count],
        }
    }

    /// The next split, if the pages hold more than `page_bytes` on average: the page to
    /// divide and the new page's index.
    pub fn due_split(&self, total_bytes: usize, page_bytes: usize) -> Option<(u32, u32)> {
        let count = self.count();
        if count == 0 || total_bytes <= page_bytes.saturating_mul(count) {
            return None;
        }
        Some(((count - (1 << count.ilog2())) as u32, count as u32))
    }

    /// Records that page `index` was written at record `seq` holding `bytes` (the new page of
    /// a split, `index == count()`, is added).
    pub fn written(&mut self, index: u32, seq: u64, bytes: usize) {
        let i = index as usize;
        if i == self.as_of.len() {
            self.as_of.push(seq);
            self.bytes.push(bytes);
        } else if i < self.as_of.len() {
            self.as_of[i] = seq;
            self.bytes[i] = bytes;
        }
    }
}

/// The page of `hash` among `count` pages (see the module's comment).
pub fn index_for(count: usize, hash: u64) -> Option<u32> {
    if count == 0 {
        return None;
    }
    let level = 1u64 << count.ilog2();
    let split = count as u64 - level;
    let low = hash & (level - 1);
    Some(if low < split {
        hash & (2 * level - 1)
    } else {
        low
    } as u32)
}

/// A record not yet folded into pages: what it touched and what lives only in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unfolded {
    /// The documents it stored or removed: the id hashes, by collection.
    pub touched: Vec<(String, Vec<u64>)>,
    /// About how many bytes it takes.
    pub bytes: usize,
}

impl Unfolded {
    /// Notes a document stored or removed (in collection order, so a group is appended to).
    pub fn touch(&mut self, collection: &str, hash: u64) {
        self.group(collection, 1).push(hash);
    }

    /// The hashes noted for `collection`, the last group, with room for `more`.
    pub fn group(&mut self, collection: &str, more: usize) -> &mut Vec<u64> {
        if self.touched.last().is_none_or(|(c, _)| c != collection) {
            self.touched.push((collection.to_owned(), Vec::new()));
        }
        let hashes = &mut self.touched.last_mut().expect("a group was just made").1;
        hashes.reserve(more);
        hashes
    }
}

/// The log as the engine tracks it.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// The next record's sequence number.
    pub next_seq: u64,
    /// Records in storage (or being written), by sequence number.
    records: IdMap<u64, Unfolded>,
    /// Their bytes in all.
    bytes: usize,
    /// Pages per collection.
    pub pages: HashMap<String, Pages>,
}

impl Log {
    /// About how many bytes the log holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = (&u64, &Unfolded)> {
        self.records.iter()
    }

    /// Whether record `seq` is in storage (or being written).
    pub fn contains(&self, seq: u64) -> bool {
        self.records.contains_key(&seq)
    }

    /// Adds a record.
    pub fn insert(&mut self, seq: u64, record: Unfolded) {
        self.bytes += record.bytes;
        if let Some(old) = self.records.insert(seq, record) {
            self.bytes -= old.bytes;
        }
    }

    /// Removes a record.
    pub fn remove(&mut self, seq: u64) {
        if let Some(old) = self.records.remove(&seq) {
            self.bytes -= old.bytes;
        }
    }

    /// The oldest records whose every touched document's page is rewritten at or after it,
    /// once the pages in `rewritten` are (in order: a record goes only with all before it).
    pub fn foldable(&self, rewritten: &[(String, u32)]) -> Vec<u64> {
        let covered = |collection: &str, hash: u64, seq: u64| {
            self.pages.get(collection).is_some_and(|pages| {
                pages.index_of(hash).is_some_and(|index| {
                    pages.as_of(index) >= seq
                        || rewritten
                            .iter()
                            .any(|(c, i)| c == collection && *i == index)
                })
            })
        };
        self.records
            .iter()
            .take_while(|(seq, record)| {
                record.touched.iter().all(|(collection, hashes)| {
                    hashes.iter().all(|hash| covered(collection, *hash, **seq))
                })
            })
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// The pages to rewrite next: those the oldest records touched and that do not include
    /// them yet, in order, while their bytes stay within `budget` (at least one page).
    pub fn stale_pages(&self, budget: usize) -> Vec<(String, u32)> {
        let mut chosen: Vec<(String, u32)> = Vec::new();
        let mut spent = 0;
        for (seq, record) in self.records.iter() {
            let touched = record
                .touched
                .iter()
                .flat_map(|(c, hashes)| hashes.iter().map(move |h| (c, h)));
            for (collection, hash) in touched {
                let Some(pages) = self.pages.get(collection) else {
                    continue;
                };
                let Some(index) = pages.index_of(*hash) else {
                    continue;
                };
                if pages.as_of(index) >= *seq
                    || chosen.iter().any(|(c, i)| c == collection && *i == index)
                {
                    continue;
                }
                let bytes = pages.bytes(index);
                if !chosen.is_empty() && spent + bytes > budget {
                    return chosen;
                }
                spent += bytes;
                chosen.push((collection.clone(), index));
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_hashing_splits_one_page_at_a_time() {
        assert_eq!(index_for(0, 7), None);
        assert_eq!(index_for(1, 7), Some(0));
        // 3 pages: level 2 (mask 1), split 1: page 0 is divided into 0 and 2.
        assert_eq!(index_for(3, 0b100), Some(0));
        assert_eq!(index_for(3, 0b110), Some(2));
        assert_eq!(index_for(3, 0b101), Some(1));
        // Every hash lands on an existing page, and a split only moves documents of the
        // divided page, to the new one.
        assert_eq!(Pages::default().due_split(usize::MAX, 1), None);
        assert_eq!(Pages::lay_out(1_000, 300).count(), 4);
        assert_eq!(Pages::lay_out(0, 300).count(), 1);
        for count in 1..40usize {
            let split = Pages::new(vec![0; count]).due_split(usize::MAX, 1).unwrap();
            for hash in 0..500u64 {
                let before = index_for(count, hash).unwrap();
                let after = index_for(count + 1, hash).unwrap();
                assert!((after as usize) < count + 1);
                if before != after {
                    assert_eq!((before, after), split, "count {count} hash {hash}");
                }
            }
        }
    }

    #[test]
    fn records_fold_in_order_once_their_pages_are_rewritten() {
        let mut log = Log::default();
        let mut pages = Pages::new(vec![0, 0]);
        pages.grow(0, 100);
        pages.grow(1, 100);
        log.pages.insert("t".into(), pages);
        let record = |touched: &[u64]| Unfolded {
            touched: vec![("t".to_owned(), touched.to_vec())],
            bytes: 10,
        };
        log.insert(1, record(&[0]));
        log.insert(2, record(&[1]));
        log.insert(3, record(&[0]));
        assert_eq!((log.len(), log.bytes()), (3, 30));
        assert_eq!(log.stale_pages(150), [("t".to_owned(), 0)]);
        assert_eq!(log.foldable(&[("t".into(), 0)]), [1]);
        assert_eq!(log.foldable(&[("t".into(), 1)]), Vec::<u64>::new());
        assert_eq!(log.foldable(&[("t".into(), 0), ("t".into(), 1)]), [1, 2, 3]);
        log.pages.get_mut("t").unwrap().written(0, 4, 100);
        assert_eq!(log.stale_pages(usize::MAX), [("t".to_owned(), 1)]);
    }
}
