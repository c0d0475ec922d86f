//! Sorting small lists through one compiled sort. Each element type sorted with the standard
//! library's sorts gets its own copy of them in the wasm (a few KB each); these find the order
//! over indices with a dynamic comparison, one copy for every type, then apply it in place.
//! Ties keep their order (the sort is stable). Lists that grow with the data (index builds,
//! query results) keep the standard sorts, which compare without an indirection.

use std::cmp::Ordering;
use std::collections::BTreeSet;

/// The indices of `len` elements in sorted order, equal elements by index.
fn order(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    idx.sort_unstable_by(|&a, &b| cmp(a, b).then(a.cmp(&b)));
    idx
}

/// Sorts `v` stably by its order.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp)
}

/// Sorts `v` stably by `f`.
pub fn sort_by<T>(v: &mut [T], f: impl Fn(&T, &T) -> Ordering) {
    let idx = order(v.len(), &|a, b| f(&v[a], &v[b]));
    // Position i takes the element first at idx[i]; an earlier swap moved that element to the
    // position the chain of idx leads to from there.
    for i in 0..idx.len() {
        let mut j = idx[i];
        while j < i {
            j = idx[j];
        }
        v.swap(i, j);
    }
}

/// Inserts `item` into the sorted `items` where it belongs, unless it is there already: whether
/// it was not. A few items kept this way take less code in the wasm than a `BTreeSet` of them.
pub fn insert_sorted<T: Ord>(items: &mut Vec<T>, item: T) -> bool {
    match items.binary_search(&item) {
        Ok(_) => false,
        Err(i) => {
            items.insert(i, item);
            true
        }
    }
}

/// A set of `items` built by inserting them one by one. `collect()` into a `BTreeSet` sorts a
/// buffer of them first with the standard stable sort (and `BTreeSet::from` an array), a copy
/// per element type; sets built once or from a few items take this instead.
pub fn set<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    set.extend(items);
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn sorts_as_the_standard_stable_sort_does() {
        let mut rng = Rng::new(7);
        for len in [0, 1, 2, 3, 10, 100, 1000] {
            for _ in 0..20 {
                // Few distinct keys, so most elements tie; the second field shows their order.
                let mut v: Vec<(u64, usize)> =
                    (0..len).map(|i| (rng.up_to(len as u64 / 3), i)).collect();
                let mut expected = v.clone();
                expected.sort_by_key(|e| e.0);
                sort_by(&mut v, |a, b| a.0.cmp(&b.0));
                assert_eq!(v, expected);
                let mut strings: Vec<String> = v.iter().map(|e| format!("{}", e.1 % 17)).collect();
                let mut expected: Vec<String> = strings.clone();
                expected.sort();
                sort(&mut strings);
                assert_eq!(strings, expected);
            }
        }
    }
}
