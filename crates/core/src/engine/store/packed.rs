//! The history entries' bytes in memory, packed many to a page: each entry is its `varint` time
//! of last change, its `varint` length and its bytes ([`StoredTx`]'s, thin or whole), written
//! after the one before in the page being filled; an entry larger than a quarter of a page gets a
//! page of its own. An entry is found by its [`Packed`] place (8 bytes): where one allocation per entry
//! (with its header and the allocator's) cost about twice the bytes of a single insert's thin
//! entry, a page costs one allocation for hundreds of them.
//!
//! An entry written again (thin, or holding its own copy of a document) goes to the page being
//! filled, and its old bytes are dead; so are a dropped entry's. A page is given back when none
//! of its entries is live, and its slot is reused. Dead bytes in a page that still holds live
//! ones stay until the page empties: an entry is written again at most once per document it
//! leaves out, so they stay within the history's own size.

use super::bytes::{varint_len, Reader, Writer};
use super::StoredTx;
use crate::transaction::TxId;
use crate::Millis;
use std::num::NonZeroU32;
use std::rc::Rc;

/// The room a page is made with: entries are appended until the next does not fit.
const PAGE_BYTES: usize = 16 * 1024;

/// Where an entry's bytes are: its page's slot (counted from 1) and its offset in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) struct Packed {
    page: NonZeroU32,
    offset: u32,
}

impl Packed {
    fn slot(self) -> usize {
        self.page.get() as usize - 1
    }
}

/// A page: the entries' bytes, and how many of them are live.
#[derive(Debug, Default)]
struct Page {
    bytes: Vec<u8>,
    live: usize,
}

/// The pages holding the history entries' bytes (see the module's documentation).
#[derive(Debug, Default)]
pub(in crate::engine) struct PackedHistory {
    pages: Vec<Page>,
    /// The slots of pages given back, to reuse.
    empty: Vec<usize>,
    /// The slot of the page being filled.
    filling: Option<usize>,
}

impl PackedHistory {
    /// Packs `bytes`, an entry last changed at `updated_at`, and returns its place.
    pub(in crate::engine) fn pack(&mut self, updated_at: Millis, bytes: &[u8]) -> Packed {
        let size = varint_len(updated_at) + varint_len(bytes.len() as u64) + bytes.len();
        let fits = |page: &Page| page.bytes.capacity() - page.bytes.len() >= size;
        let slot = match self.filling {
            Some(slot) if fits(&self.pages[slot]) => slot,
            _ => {
                // A large entry's page is its own: the page being filled stays so.
                let large = size > PAGE_BYTES / 4;
                let slot = self.new_page(if large { size } else { PAGE_BYTES });
                if !large {
                    self.filling = Some(slot);
                }
                slot
            }
        };
        let page = &mut self.pages[slot];
        let offset = page.bytes.len();
        // The head written straight into the page (its room was checked above).
        let mut writer = Writer(std::mem::take(&mut page.bytes));
        writer.varint(updated_at);
        writer.varint(bytes.len() as u64);
        writer.0.extend_from_slice(bytes);
        page.bytes = writer.0;
        page.live += 1;
        Packed {
            page: NonZeroU32::new(slot as u32 + 1).expect("a slot counted from 1"),
            offset: offset as u32,
        }
    }

    /// A page of `room` bytes, in the slot of a page given back if there is one.
    fn new_page(&mut self, room: usize) -> usize {
        let page = Page {
            bytes: Vec::with_capacity(room),
            live: 0,
        };
        match self.empty.pop() {
            Some(slot) => {
                self.pages[slot] = page;
                slot
            }
            None => {
                self.pages.push(page);
                self.pages.len() - 1
            }
        }
    }

    /// The time of last change and the bytes of the entry at `at`.
    pub(in crate::engine) fn get(&self, at: Packed) -> (Millis, &[u8]) {
        let bytes = &self.pages[at.slot()].bytes[at.offset as usize..];
        let mut r = Reader::new(bytes, "a packed history entry");
        let head = (|| Ok::<_, crate::CoreError>((r.varint()?, r.varint()?)))();
        let (updated_at, len) = head.expect("packed by `pack`");
        let start = r.position();
        (updated_at, &bytes[start..start + len as usize])
    }

    /// The entry at `at`, as storage holds it when its bytes are whole; its bytes copied.
    pub(in crate::engine) fn stored(&self, id: TxId, at: Packed) -> StoredTx {
        let (updated_at, bytes) = self.get(at);
        StoredTx {
            id,
            updated_at,
            bytes: Rc::from(bytes),
        }
    }

    /// Lets go of the entry at `at`: its page is given back once none of its entries is live.
    pub(in crate::engine) fn release(&mut self, at: Packed) {
        let slot = at.slot();
        let page = &mut self.pages[slot];
        page.live -= 1;
        if page.live == 0 {
            *page = Page::default();
            if self.filling == Some(slot) {
                self.filling = None;
            }
            self.empty.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_share_pages_which_are_given_back_once_empty() {
        let mut packed = PackedHistory::default();
        let small: Vec<Packed> = (0..3u8)
            .map(|i| packed.pack(1_000 + u64::from(i), &[i; 40]))
            .collect();
        assert!(small.iter().all(|at| at.page == small[0].page), "one page");
        assert_eq!(packed.get(small[1]), (1_001, &[1u8; 40][..]));
        // An entry larger than a page has a page of its own, and the small ones go on beside it.
        let large = packed.pack(7, &vec![9; PAGE_BYTES * 2]);
        assert_ne!(large.page, small[0].page);
        assert_eq!(packed.get(large).1.len(), PAGE_BYTES * 2);
        let after = packed.pack(8, b"after");
        assert_eq!(packed.get(after), (8, &b"after"[..]));
        assert_eq!(after.page, small[0].page);
        for at in &small[..2] {
            packed.release(*at);
        }
        assert_eq!(packed.get(small[2]), (1_002, &[2u8; 40][..]));
        packed.release(small[2]);
        packed.release(large);
        assert_eq!(packed.pages[large.slot()].bytes.capacity(), 0, "given back");
        packed.release(after);
        assert_eq!(packed.pages[after.slot()].bytes.capacity(), 0, "given back");
        // The slots are reused.
        let again = packed.pack(9, b"again");
        assert_eq!(packed.pages.len(), 2);
        assert_eq!(packed.get(again), (9, &b"again"[..]));
    }
}
