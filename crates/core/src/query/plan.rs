//! How a collection answers a query: by looking up the `_id`s it names, through the index that
//! reads the fewest entries (stopping at the limit when the index's order is the query's), or
//! by scanning every document. A live query that maintains the same query answers before any
//! of these (see `Collection::find`).
//!
//! Every candidate an index yields is checked against the whole query again, so an index only
//! narrows what is read; the results always equal [`Query::run`]'s.

use super::{Op, Operand, Query};
use crate::collection::View;
use crate::document::{Document, ID_FIELD};
use crate::index::{self, prefix_range, Entries, Indexes, KeyRange};
use crate::query::key::AFTER;
use std::ops::Bound;

/// How a query is answered (see `Collection::explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// From a live query that maintains the same query.
    Live,
    /// By looking up the `_id`s the query names.
    Ids,
    /// Through an index.
    Index {
        /// The index's fields.
        fields: Vec<String>,
        /// The index's order is the query's: reading stops at the limit.
        ordered: bool,
        /// Every entry read matches the query: `count` reads no document.
        exact: bool,
    },
    /// By reading every document.
    Scan,
}

enum Plan<'q> {
    Ids(Vec<&'q str>),
    Index(IndexPlan),
    Scan,
}

struct IndexPlan {
    index: usize,
    ranges: Vec<KeyRange>,
    order: Order,
    /// Every entry in the ranges matches the query: a count needs no document.
    exact: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Not the query's order: the matches are sorted.
    Unordered,
    /// The query's order.
    Forward,
    /// The query's order read backwards (keys from the last; ids within a key still first to
    /// last, as ties are broken by ascending `_id`).
    Backward,
}

/// The documents `query` selects, in order. `track`: the query comes from the application, so
/// a full scan counts towards an automatic index.
pub(crate) fn find<'c>(
    query: &Query,
    view: &View<'c>,
    indexes: &mut Indexes,
    track: bool,
) -> Vec<&'c Document> {
    let plan = choose(query, view, indexes, track);
    run(query, plan, view, indexes)
}

/// Calls `each` with the ids of the documents [`find`] returns, in order. An index whose
/// entries all match gives them without reading a document.
pub(crate) fn find_ids(
    query: &Query,
    view: &View<'_>,
    indexes: &mut Indexes,
    each: &mut dyn FnMut(&str),
) {
    let plan = choose(query, view, indexes, true);
    if let Plan::Index(index) = &plan {
        let entries = indexes.list()[index.index].entries();
        let limit = query.limit.unwrap_or(usize::MAX);
        match index.order {
            _ if !index.exact => {}
            Order::Forward | Order::Backward => {
                ids(entries, index)
                    .skip(query.offset)
                    .take(limit)
                    .for_each(each);
                return;
            }
            Order::Unordered if query.sort.is_empty() => {
                let mut all: Vec<&str> = ids(entries, index).collect();
                all.sort_unstable();
                all.into_iter()
                    .skip(query.offset)
                    .take(limit)
                    .for_each(each);
                return;
            }
            Order::Unordered => {}
        }
    }
    for doc in run(query, plan, view, indexes) {
        each(doc.id());
    }
}

/// Answers `query` by `plan`.
fn run<'c>(query: &Query, plan: Plan<'_>, view: &View<'c>, indexes: &Indexes) -> Vec<&'c Document> {
    let matching = |doc: &&Document| query.matches(doc);
    match plan {
        Plan::Ids(ids) => query.select(
            ids.into_iter()
                .filter_map(|id| view.get(id))
                .filter(matching),
        ),
        Plan::Index(plan) => {
            let entries = indexes.list()[plan.index].entries();
            let docs = ids(entries, &plan)
                .filter_map(|id| view.get(id))
                .filter(matching);
            match plan.order {
                Order::Unordered => query.select(docs),
                Order::Forward | Order::Backward => docs
                    .skip(query.offset)
                    .take(query.limit.unwrap_or(usize::MAX))
                    .collect(),
            }
        }
        Plan::Scan => query.run(view.docs()),
    }
}

/// How many documents [`find`] would return; an index whose entries all match counts them
/// without reading a document.
pub(crate) fn count(query: &Query, view: &View<'_>, indexes: &mut Indexes, track: bool) -> usize {
    if query.filter.is_empty() && !query.include_deleted {
        return query.window_len(view.live());
    }
    let reach = query.reach().unwrap_or(usize::MAX);
    let matches = match choose(query, view, indexes, track) {
        Plan::Ids(ids) => ids
            .into_iter()
            .filter_map(|id| view.get(id))
            .filter(|doc| query.matches(doc))
            .count(),
        Plan::Index(plan) => {
            let entries = indexes.list()[plan.index].entries();
            if plan.exact {
                walk(entries, &plan.ranges, usize::MAX)
            } else {
                ids(entries, &plan)
                    .filter_map(|id| view.get(id))
                    .filter(|doc| query.matches(doc))
                    .take(reach)
                    .count()
            }
        }
        Plan::Scan => return query.count(view.docs()),
    };
    query.window_len(matches)
}

/// How [`find`] would answer `query` (without counting towards an automatic index).
pub(crate) fn explain(query: &Query, view: &View<'_>, indexes: &mut Indexes) -> Access {
    match choose(query, view, indexes, false) {
        Plan::Ids(_) => Access::Ids,
        Plan::Index(plan) => Access::Index {
            fields: indexes.list()[plan.index].fields().to_vec(),
            ordered: plan.order != Order::Unordered,
            exact: plan.exact,
        },
        Plan::Scan => Access::Scan,
    }
}

fn choose<'q>(query: &'q Query, view: &View<'_>, indexes: &mut Indexes, track: bool) -> Plan<'q> {
    if let Some(ids) = id_lookup(query) {
        return Plan::Ids(ids);
    }
    if query.include_deleted {
        // Indexes hold no tombstones.
        return Plan::Scan;
    }
    if !indexes.list().is_empty() {
        indexes.build(view);
        if let Some(plan) = best_index(query, view, indexes) {
            return Plan::Index(plan);
        }
    }
    match scan_field(query) {
        Some(field) if track && indexes.note_scan(field) => choose(query, view, indexes, false),
        _ => Plan::Scan,
    }
}

/// The ids a query names by `_id` equality or `$in`, without repeats.
fn id_lookup(query: &Query) -> Option<Vec<&str>> {
    let mut ids: Vec<&str> =
        query
            .filter
            .iter()
            .find_map(|c| match (&c.op, c.path == ID_FIELD) {
                (Op::Eq(v), true) => Some(v.as_str().into_iter().collect()),
                (Op::In(vs), true) => Some(vs.iter().filter_map(Operand::as_str).collect()),
                _ => None,
            })?;
    ids.sort_unstable();
    ids.dedup();
    Some(ids)
}

/// The field a full scan for `query` counts towards an automatic index: the first it filters
/// on by equality, `$in` or a range; else its first sort field; else `_id` when it has a limit
/// (results come in `_id` order).
fn scan_field(query: &Query) -> Option<&str> {
    let filtered = query.filter.iter().find(|c| {
        c.path != crate::document::DELETED_FIELD
            && matches!(
                c.op,
                Op::Eq(_) | Op::In(_) | Op::Gt(_) | Op::Gte(_) | Op::Lt(_) | Op::Lte(_)
            )
    });
    match (filtered, query.sort.first()) {
        (Some(c), _) => Some(&c.path),
        (None, Some(s)) => Some(&s.field),
        (None, None) => query.limit.map(|_| ID_FIELD),
    }
}

/// The index plan reading the fewest entries, if one reads fewer than a scan reads documents
/// (`view`). Reading every document of an index in the query's order is worth it when they all
/// match: nothing is sorted. On a tie, the index with fewer fields wins (its count is cheaper).
fn best_index(query: &Query, view: &View<'_>, indexes: &Indexes) -> Option<IndexPlan> {
    let mut best: Option<(usize, usize, IndexPlan)> = None;
    let mut budget = view.len();
    for (i, index) in indexes.list().iter().enumerate() {
        let Some(candidate) = candidate(query, index.fields()) else {
            continue;
        };
        // An ordered read stops after the window's matches; residual conditions may skip some.
        let target = match (candidate.order, query.reach()) {
            (Order::Forward | Order::Backward, Some(reach)) => {
                reach.saturating_mul(1 << candidate.residual.min(16)).max(1)
            }
            _ => usize::MAX,
        };
        let cap = budget.min(target);
        let read = match candidate.prefix.as_ref() {
            // Every document that is not deleted.
            Some(prefix) if prefix.is_empty() => view.live(),
            // Equalities select the same documents whatever index serves them: counted in one
            // lookup by an index on exactly those fields, if there is one.
            Some(prefix) => {
                let pinned = &index.fields()[..candidate.pinned];
                let exact = indexes.list().iter().find(|i| i.fields() == pinned);
                match exact {
                    Some(exact) => exact
                        .entries()
                        .get(prefix.as_slice())
                        .map_or(0, |p| p.len()),
                    None => walk(index.entries(), &candidate.ranges, cap),
                }
            }
            None => walk(index.entries(), &candidate.ranges, cap),
        };
        let cost = match candidate.order {
            Order::Unordered => read,
            _ if target < usize::MAX => read.min(target),
            // Every entry matches, in order: nothing to sort.
            _ if candidate.residual == 0 => read / 2,
            _ => read,
        };
        let better = match &best {
            Some((c, fields, _)) => (cost, index.fields().len()) < (*c, *fields),
            None => cost < budget,
        };
        if better {
            budget = budget.min(cost);
            let plan = IndexPlan {
                index: i,
                ranges: candidate.ranges,
                order: candidate.order,
                exact: candidate.residual == 0 && candidate.exact,
            };
            best = Some((cost, index.fields().len(), plan));
        }
    }
    best.map(|(_, _, plan)| plan)
}

/// How many ids the ranges hold, counting no further than just past `cap`.
fn walk(entries: &Entries, ranges: &[KeyRange], cap: usize) -> usize {
    let mut total = 0usize;
    for range in ranges {
        for (_, posting) in index::range(entries, range) {
            total += posting.len();
            if total > cap {
                return total;
            }
        }
    }
    total
}

/// The ids an index plan reads, in its order.
fn ids<'e>(entries: &'e Entries, plan: &'e IndexPlan) -> Box<dyn Iterator<Item = &'e str> + 'e> {
    match plan.order {
        Order::Backward => Box::new(
            plan.ranges
                .iter()
                .flat_map(|r| index::range(entries, r).rev().flat_map(|(_, p)| p.ids())),
        ),
        _ => Box::new(
            plan.ranges
                .iter()
                .flat_map(|r| index::range(entries, r).flat_map(|(_, p)| p.ids())),
        ),
    }
}

/// What an index on `fields` offers a query.
struct Candidate {
    ranges: Vec<KeyRange>,
    /// How many leading fields equalities pin.
    pinned: usize,
    /// Their key, when the ranges are just the keys starting with it.
    prefix: Option<Vec<u8>>,
    order: Order,
    /// Conditions the ranges do not enforce.
    residual: usize,
    /// The ranges hold only values the conditions they enforce accept.
    exact: bool,
}

/// The index's ranges for `query`: equalities on its leading fields make a prefix, and the
/// next field may add an `$in` list or a range. `None` if the index neither narrows the
/// query nor orders it.
fn candidate(query: &Query, fields: &[String]) -> Option<Candidate> {
    let mut used = vec![false; query.filter.len()];
    let mut prefix = Vec::new();
    let mut pinned = 0;
    while let Some((i, value)) = fields.get(pinned).and_then(|f| point(query, f)) {
        prefix.extend_from_slice(value.key());
        used[i] = true;
        pinned += 1;
    }
    let mut exact = true;
    let mut multi = false;
    let mut plain = None;
    let next = fields.get(pinned);
    let ranges = match next.and_then(|f| in_list(query, f)) {
        Some((i, values)) => {
            used[i] = true;
            multi = true;
            let mut keys: Vec<Vec<u8>> = values
                .iter()
                .map(|v| [prefix.as_slice(), v.key()].concat())
                .collect();
            crate::sort::sort(&mut keys);
            keys.dedup();
            keys.into_iter().map(prefix_range).collect()
        }
        None => match next.and_then(|f| bounds(query, f, &prefix, &mut used, &mut exact)) {
            Some(range) => vec![range],
            None => {
                plain = Some(prefix.clone());
                vec![prefix_range(prefix)]
            }
        },
    };
    let ranges: Vec<KeyRange> = ranges.into_iter().filter(|r| !is_empty(r)).collect();
    let order = if multi {
        Order::Unordered
    } else {
        order(query, &fields[pinned..])
    };
    if !used.contains(&true) && order == Order::Unordered {
        return None;
    }
    Some(Candidate {
        ranges,
        pinned,
        prefix: plain,
        order,
        residual: used.iter().filter(|u| !**u).count(),
        exact,
    })
}

/// Whether an index whose entries, past the pinned prefix, are ordered by `rest` (then `_id`)
/// gives the query's order (its sort fields, then `_id`). Fields an equality pins are constant
/// among the results, so they are left out of both.
fn order(query: &Query, rest: &[String]) -> Order {
    let mut rest: Vec<&String> = rest.iter().filter(|f| point(query, f).is_none()).collect();
    let sort: Vec<_> = query
        .sort
        .iter()
        .filter(|s| point(query, &s.field).is_none())
        .collect();
    let ascending = sort.iter().all(|s| !s.descending);
    // A last `_id` field orders as the ties already are (ascending only).
    if ascending && rest.len() == sort.len() + 1 && rest.last().is_some_and(|f| *f == ID_FIELD) {
        rest.pop();
    }
    if rest.len() != sort.len() || rest.iter().zip(&sort).any(|(f, s)| **f != s.field) {
        return Order::Unordered;
    }
    match sort.first().map(|s| s.descending) {
        None => Order::Forward,
        Some(descending) if sort.iter().any(|s| s.descending != descending) => Order::Unordered,
        Some(true) => Order::Backward,
        Some(false) => Order::Forward,
    }
}

/// An equality on `field` (`$eq`, or `$in` with one value).
fn point<'q>(query: &'q Query, field: &str) -> Option<(usize, &'q Operand)> {
    query
        .filter
        .iter()
        .enumerate()
        .find_map(|(i, c)| match &c.op {
            Op::Eq(v) if c.path == field => Some((i, v)),
            Op::In(vs) if c.path == field && vs.len() == 1 => Some((i, &vs[0])),
            _ => None,
        })
}

/// An `$in` list on `field` (other than a single value).
fn in_list<'q>(query: &'q Query, field: &str) -> Option<(usize, &'q [Operand])> {
    query
        .filter
        .iter()
        .enumerate()
        .find_map(|(i, c)| match &c.op {
            Op::In(vs) if c.path == field && vs.len() != 1 => Some((i, vs.as_slice())),
            _ => None,
        })
}

/// The key range of the first lower and upper bounds on `field` (within the bound's type when
/// only one is given).
fn bounds(
    query: &Query,
    field: &str,
    prefix: &[u8],
    used: &mut [bool],
    exact: &mut bool,
) -> Option<KeyRange> {
    let mut start = None;
    let mut end = None;
    for (i, c) in query
        .filter
        .iter()
        .enumerate()
        .filter(|(_, c)| c.path == field)
    {
        match &c.op {
            Op::Gt(v) if start.is_none() => {
                start = Some((i, v, Bound::Excluded(join(prefix, &[v.key(), &[AFTER]]))))
            }
            Op::Gte(v) if start.is_none() => {
                start = Some((i, v, Bound::Included(join(prefix, &[v.key()]))))
            }
            Op::Lt(v) if end.is_none() => {
                end = Some((i, v, Bound::Excluded(join(prefix, &[v.key()]))))
            }
            Op::Lte(v) if end.is_none() => {
                end = Some((i, v, Bound::Excluded(join(prefix, &[v.key(), &[AFTER]]))))
            }
            _ => {}
        }
    }
    let (first, after) = match (&start, &end) {
        (None, None) => return None,
        (Some((_, v, _)), None) | (None, Some((_, v, _))) => v.type_range(),
        (Some((_, low, _)), Some((_, high, _))) => {
            *exact &= low.type_range() == high.type_range();
            low.type_range()
        }
    };
    let start = match start {
        Some((i, _, bound)) => {
            used[i] = true;
            bound
        }
        None => Bound::Included(join(prefix, &[&[first]])),
    };
    let end = match end {
        Some((i, _, bound)) => {
            used[i] = true;
            bound
        }
        None => Bound::Excluded(join(prefix, &[&[after]])),
    };
    Some((start, end))
}

fn join(prefix: &[u8], tail: &[&[u8]]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    for part in tail {
        out.extend_from_slice(part);
    }
    out
}

/// Whether a range holds no key (`BTreeMap::range` refuses such ranges).
fn is_empty(range: &KeyRange) -> bool {
    match range {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}
