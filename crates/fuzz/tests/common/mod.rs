//! What the fuzz targets share: how long each runs, the allocation bound, and the error codes
//! docs/PROTOCOL.md lists.
#![allow(dead_code)] // each target uses a different part

use std::time::Duration;

/// How long a target generates inputs after replaying its corpus, unless
/// `BOLERO_RANDOM_TEST_TIME_MS` says otherwise (`npm run fuzz` runs longer).
pub const TEST_TIME: Duration = Duration::from_secs(15);

/// The most bytes handling one input of `len` bytes may hold at once: a fixed allowance plus a
/// multiple of the input. Anything more is an unbounded allocation.
pub fn allocation_bound(len: usize) -> usize {
    (16 << 20) + 64 * len
}

/// The error codes of docs/PROTOCOL.md's table: the only codes a refusal may carry.
pub fn documented_codes() -> Vec<String> {
    let protocol = include_str!("../../../../docs/PROTOCOL.md");
    let table = protocol
        .split("## Error codes")
        .nth(1)
        .expect("docs/PROTOCOL.md has an error code table");
    table
        .lines()
        .filter_map(|line| line.strip_prefix('|')?.split('|').next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
        .collect()
}

/// A test start time: 2026-01-01.
pub const T0: u64 = 1_767_225_600_000;
