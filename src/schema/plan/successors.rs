//! The order an object's members come in, learnt from the documents read: producers write an
//! object's members in one order, so the member after a given one is nearly always the one that
//! followed it last time, and one comparison of names finds it (a miss falls back to the name
//! index and relearns). Only a guess: a wrong one costs one comparison, never a wrong answer.

use std::sync::atomic::{AtomicU8, Ordering};

/// Slot 0: the member an object started with last time; slot `i + 1`: the member that last
/// followed member `i`. `u8::MAX` for none yet. Shared by every reader of the plan: a guess is
/// read and, on a miss, written with relaxed ordering (any value read is a member index or
/// `u8::MAX`, and is checked before it is used).
#[derive(Debug, Default)]
pub struct Successors(Box<[AtomicU8]>);

impl Clone for Successors {
    fn clone(&self) -> Successors {
        Successors(
            self.0
                .iter()
                .map(|a| AtomicU8::new(a.load(Ordering::Relaxed)))
                .collect(),
        )
    }
}

impl Successors {
    /// None learnt yet, for `members` members (at most 254).
    pub fn new(members: usize) -> Successors {
        Successors((0..=members).map(|_| AtomicU8::new(u8::MAX)).collect())
    }

    /// The member guessed to come after `after` (0: the start; `i + 1`: member `i`).
    #[inline]
    pub fn guess(&self, after: usize) -> Option<usize> {
        let g = self.0.get(after)?.load(Ordering::Relaxed);
        (g != u8::MAX).then_some(usize::from(g))
    }

    /// Member `found` came after `after`.
    #[inline]
    pub fn learn(&self, after: usize, found: usize) {
        if let (Some(slot), Ok(found)) = (self.0.get(after), u8::try_from(found)) {
            slot.store(found, Ordering::Relaxed);
        }
    }
}
