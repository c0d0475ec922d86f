//! The parts stored bytes are made of, written by [`Writer`] and read back by [`Reader`], which
//! turns every damage into an error naming what was read.
//!
//! Two families: the fixed-width parts of the first formats (`u32`, `u64`, strings behind a
//! `u32` length), and the compact parts of the current ones: LEB128 variable-length integers
//! (7 bits a byte, low first), strings behind such a length, and timestamps written as the
//! difference from the one before them in the same list.

use super::codec::corrupt;
use crate::document::Fields;
use crate::hlc::Hlc;
use crate::CoreError;

/// Whether [`Writer::hlc_after`] writes `hlc`'s node: it differs from `previous`'s.
pub(super) fn node_changed(hlc: Hlc, previous: Hlc) -> bool {
    hlc.node != previous.node
}

/// Writes the layout's parts.
pub(super) struct Writer(pub(super) Vec<u8>);

/// How many bytes [`Writer::varint`] writes for `n`.
pub(super) fn varint_len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

impl Writer {
    pub(super) fn u32(&mut self, n: u32) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    pub(super) fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    /// Only the layouts of earlier formats hold these (written by tests).
    #[cfg(test)]
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }

    #[cfg(test)]
    pub(super) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A variable-length integer: one byte below 128, at most ten.
    pub(super) fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    /// Text behind its variable-length length.
    pub(super) fn text(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    /// What `write` writes, behind its variable-length length.
    pub(super) fn prefixed(&mut self, write: impl FnOnce(&mut Self)) {
        // One byte for the length, as most are short; moved along when it takes more.
        let at = self.0.len();
        self.0.push(0);
        write(self);
        let len = self.0.len() - at - 1;
        if len < 0x80 {
            self.0[at] = len as u8;
        } else {
            let mut prefix = Writer(Vec::new());
            prefix.varint(len as u64);
            self.0.splice(at..=at, prefix.0);
        }
    }

    /// A number near `base` (a time after another): its difference, zigzag encoded so that
    /// a smaller one is short too.
    pub(super) fn after(&mut self, n: u64, base: u64) {
        let delta = n.wrapping_sub(base) as i64;
        self.varint(((delta << 1) ^ (delta >> 63)) as u64);
    }

    /// A timestamp: `u64` wall, `u32` counter, `u32` node ([`Reader::hlc`] reads it).
    pub(super) fn fixed_hlc(&mut self, hlc: Hlc) {
        self.u64(hlc.wall);
        self.u32(hlc.counter);
        self.u32(hlc.node);
    }

    /// A timestamp after `previous` (the one before it in the same list): the wall clock's
    /// difference (zigzag, so an earlier one is short too) and the counter; the node only when
    /// it changed ([`node_changed`], which the caller's flag byte says).
    pub(super) fn hlc_after(&mut self, hlc: Hlc, previous: Hlc) {
        self.after(hlc.wall, previous.wall);
        self.varint(u64::from(hlc.counter));
        if node_changed(hlc, previous) {
            self.u32(hlc.node);
        }
    }
}

/// Reads the layout's parts.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    pub(super) what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes` from their start; `what` names them in errors.
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, at: 0, what }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], CoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt(self.what, "it ends early"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(super) fn u8(&mut self) -> Result<u8, CoreError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| corrupt(self.what, "it ends early"))?;
        self.at += 1;
        Ok(byte)
    }

    pub(super) fn u32(&mut self) -> Result<u32, CoreError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    pub(super) fn u64(&mut self) -> Result<u64, CoreError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], CoreError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(super) fn str(&mut self) -> Result<&'a str, CoreError> {
        let bytes = self.bytes()?;
        self.utf8(bytes)
    }

    pub(super) fn string(&mut self) -> Result<String, CoreError> {
        self.str().map(str::to_owned)
    }

    pub(super) fn hlc(&mut self) -> Result<Hlc, CoreError> {
        Ok(Hlc {
            wall: self.u64()?,
            counter: self.u32()?,
            node: self.u32()?,
        })
    }

    /// What [`Writer::varint`] wrote.
    pub(super) fn varint(&mut self) -> Result<u64, CoreError> {
        // Most numbers (lengths, counters, a timestamp's difference) fit in one byte.
        if let Some(&byte) = self.bytes.get(self.at).filter(|&&b| b < 0x80) {
            self.at += 1;
            return Ok(u64::from(byte));
        }
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            n |= bits << shift;
            if byte < 0x80 {
                return Ok(n);
            }
        }
        Err(corrupt(self.what, "a number is too long"))
    }

    /// A variable-length integer that must fit 32 bits.
    pub(super) fn varint32(&mut self) -> Result<u32, CoreError> {
        let n = self.varint()?;
        u32::try_from(n).map_err(|_| corrupt(self.what, "a number is too large"))
    }

    /// What [`Writer::text`] wrote.
    pub(super) fn text(&mut self) -> Result<&'a str, CoreError> {
        let bytes = self.prefixed()?;
        self.utf8(bytes)
    }

    /// What [`Writer::prefixed`] wrote around.
    pub(super) fn prefixed(&mut self) -> Result<&'a [u8], CoreError> {
        let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        self.take(len)
    }

    /// How many bytes were read.
    pub(super) fn position(&self) -> usize {
        self.at
    }

    /// What [`Writer::after`] wrote, given the same `base`.
    pub(super) fn after(&mut self, base: u64) -> Result<u64, CoreError> {
        let zigzag = self.varint()?;
        let delta = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        Ok(base.wrapping_add(delta as u64))
    }

    /// What [`Writer::hlc_after`] wrote, given whether the node changed.
    pub(super) fn hlc_after(
        &mut self,
        previous: Hlc,
        node_changed: bool,
    ) -> Result<Hlc, CoreError> {
        Ok(Hlc {
            wall: self.after(previous.wall)?,
            counter: self.varint32()?,
            node: if node_changed {
                self.u32()?
            } else {
                previous.node
            },
        })
    }

    /// A document's fields behind a `u32` length: canonical JSON text this crate wrote (an
    /// object).
    pub(super) fn fields(&mut self) -> Result<Fields<&'a str>, CoreError> {
        let text = self.str()?;
        self.object(text)
    }

    /// A document's fields behind a variable-length length.
    pub(super) fn text_fields(&mut self) -> Result<Fields<&'a str>, CoreError> {
        let text = self.text()?;
        self.object(text)
    }

    /// What [`Reader::text_fields`] reads, or no fields (an empty text) where a thin history
    /// entry leaves a document's out (see [`super::stored_tx`]; storage never holds those).
    pub(super) fn thin_fields(&mut self) -> Result<Fields<&'a str>, CoreError> {
        match self.text()? {
            "" => Ok(Fields::from_canonical("")),
            text => self.object(text),
        }
    }

    fn object(&self, text: &'a str) -> Result<Fields<&'a str>, CoreError> {
        self.check_object(text.as_bytes())?;
        Ok(Fields::from_canonical(text))
    }

    /// A document's fields as [`Writer::text`] wrote them, checked to be an object's text but
    /// not yet to be UTF-8 (see [`crate::document::Document::from_utf8`]).
    pub(super) fn object_bytes(&mut self) -> Result<&'a [u8], CoreError> {
        let text = self.prefixed()?;
        self.check_object(text)?;
        Ok(text)
    }

    /// An error unless `text` is enclosed in braces, as an object's JSON text is.
    fn check_object(&self, text: &[u8]) -> Result<(), CoreError> {
        if text.first() == Some(&b'{') && text.last() == Some(&b'}') {
            Ok(())
        } else {
            Err(corrupt(self.what, "a document's fields are not an object"))
        }
    }

    fn utf8(&self, bytes: &'a [u8]) -> Result<&'a str, CoreError> {
        std::str::from_utf8(bytes).map_err(|_| corrupt(self.what, "text is not UTF-8"))
    }

    /// A capacity for `count` items that a damaged count cannot blow up.
    pub(super) fn capped(&self, count: u64) -> usize {
        usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len() - self.at)
    }

    /// Whether every byte was read.
    pub(super) fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// An error unless every byte was read.
    pub(super) fn end(&self) -> Result<(), CoreError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(corrupt(self.what, "it has bytes left over"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_parts_read_back_as_written() {
        let numbers = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let previous = Hlc {
            wall: 1_700_000_000_000,
            counter: 9,
            node: 4,
        };
        let later = Hlc {
            wall: previous.wall + 5,
            counter: 0,
            node: 4,
        };
        let earlier = Hlc {
            wall: previous.wall - 70_000,
            counter: 70_000,
            node: 8,
        };
        let mut out = Writer(Vec::new());
        for n in numbers {
            let before = out.0.len();
            out.varint(n);
            assert_eq!(out.0.len() - before, varint_len(n), "{n}'s length");
        }
        out.text("é\"x");
        out.hlc_after(later, previous);
        out.hlc_after(earlier, previous);
        let mut r = Reader::new(&out.0, "test");
        for n in numbers {
            assert_eq!(r.varint().unwrap(), n);
        }
        assert_eq!(r.text().unwrap(), "é\"x");
        assert_eq!(r.hlc_after(previous, false).unwrap(), later);
        assert_eq!(r.hlc_after(previous, true).unwrap(), earlier);
        r.end().unwrap();
        // One byte below 128; a timestamp in the same millisecond as the one before, three.
        assert_eq!(out.0[0..3], [0, 1, 127]);
        let mut same = Writer(Vec::new());
        same.hlc_after(later, later);
        assert_eq!(same.0.len(), 2);
    }

    #[test]
    fn damaged_numbers_are_errors() {
        let too_long = [0x80u8; 11];
        assert!(Reader::new(&too_long, "test").varint().is_err());
        let past_64_bits = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&past_64_bits, "test").varint().is_err());
        let cut = [0x80u8];
        assert!(Reader::new(&cut, "test").varint().is_err());
        let mut big = Writer(Vec::new());
        big.varint(1 << 40);
        assert!(Reader::new(&big.0, "test").varint32().is_err());
        let mut long_text = Writer(Vec::new());
        long_text.varint(5);
        long_text.0.extend_from_slice(b"ab");
        assert!(Reader::new(&long_text.0, "test").text().is_err());
    }
}
