//! Byte mutations of a seed for the bounded runs, the kinds AFL++'s havoc
//! stage applies (bit flips, boundary values, inserted, deleted, duplicated
//! and spliced ranges) — without its coverage feedback.

use rand::{rngs::StdRng, Rng};

use crate::MAX_INPUT_BYTES;

/// Byte values at the edges of signed and unsigned ranges, and CBOR/LEB128
/// continuation and length markers.
const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, 0x18, 0x19, 0x1a, 0x1b, 0x9f, 0xbf];

/// `base` with one to eight mutations; `other` is spliced in by some.
pub fn mutate(rng: &mut StdRng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut input = base.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        let length = input.len();
        match rng.random_range(0..8) {
            0 if length > 0 => {
                let at = rng.random_range(0..length);
                input[at] ^= 1 << rng.random_range(0..8);
            }
            1 if length > 0 => {
                let at = rng.random_range(0..length);
                input[at] = rng.random();
            }
            2 if length > 0 => {
                let at = rng.random_range(0..length);
                input[at] = INTERESTING[rng.random_range(0..INTERESTING.len())];
            }
            3 => {
                let at = rng.random_range(0..=length);
                let count = rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..count).map(|_| rng.random()).collect();
                input.splice(at..at, bytes);
            }
            4 if length > 0 => {
                let at = rng.random_range(0..length);
                let end = rng.random_range(at..=length.min(at + 64));
                input.drain(at..end);
            }
            5 if length > 0 => {
                let at = rng.random_range(0..length);
                let end = rng.random_range(at..=length.min(at + 256));
                let copy = input[at..end].to_vec();
                let to = rng.random_range(0..=length);
                input.splice(to..to, copy);
            }
            6 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let to = rng.random_range(0..=length);
                input.truncate(to);
                input.extend_from_slice(&other[from..]);
            }
            _ if length > 0 => {
                input.truncate(rng.random_range(0..length));
            }
            _ => {}
        }
    }
    input.truncate(MAX_INPUT_BYTES);
    input
}
