//! A claim's dice: the deterministic numbers that every varying part of a claim is drawn from,
//! the same for the same user's same claim.

use crate::users::mix;

/// A claim's dice: a deterministic sequence of numbers for one user's claim.
pub(super) struct Dice {
    seed: [u64; 2],
    throws: u64,
}

impl Dice {
    pub(super) fn new(user: usize, claim: usize) -> Self {
        Self {
            seed: [user as u64, claim as u64],
            throws: 0,
        }
    }

    pub(super) fn next(&mut self) -> u64 {
        self.throws += 1;
        mix(&[self.seed[0], self.seed[1], 0xE0B, self.throws])
    }

    /// A number in `0..n`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
