//! Structure-aware fuzzing of Ferrosync's protocol. The fuzzer's bytes become frames through
//! `arbitrary`: client frames for the server's decoding and apply path, server frames for the
//! engine's inbound handling, both well-formed enough to reach deep into the rules and damaged
//! on purpose to exercise every refusal. The targets in `tests/` run them under bolero and
//! check the invariants: no panic, bounded allocation, every bad input a structured error, no
//! state change from a refused message.
//!
//! A fuzz input that is UTF-8 text opening with `{` or `[` is taken as a frame as it stands:
//! that is how the committed corpus (readable frames) reaches the targets.

pub mod alloc;
pub mod client;
pub mod json;
pub mod server;

/// The frame an input stands for: its text when it is a JSON frame as it stands, else the
/// frame `build` makes from the bytes (`None`: too few bytes for one).
pub fn frame_text(
    bytes: &[u8],
    build: impl FnOnce(&mut arbitrary::Unstructured) -> arbitrary::Result<String>,
) -> Option<String> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.trim_start().starts_with(['{', '[']) {
            return Some(text.to_owned());
        }
    }
    build(&mut arbitrary::Unstructured::new(bytes)).ok()
}
