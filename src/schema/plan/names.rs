//! A fixed set of names (an object's members, a string's allowed values), looked up by a small
//! open-addressed table keyed on each name's length and its first and last eight bytes.

/// A name's length and its first and last eight bytes (each zero-padded, overlapping for names
/// under sixteen bytes): equal for equal names; for names of up to sixteen bytes, equal only for
/// equal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameKey {
    len: usize,
    head: u64,
    tail: u64,
}

/// The eight bytes of `b` from `at` (which has eight after it).
fn word8(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map_or(0, u64::from_le_bytes)
}

/// The four bytes of `b` from `at` (which has four after it).
fn word4(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
}

/// The up to eight bytes of `b` (shorter than eight), zero-padded.
fn short8(b: &[u8]) -> u64 {
    match b.len() {
        // Two overlapping words: the bytes they share are the same.
        4.. => word4(b, 0) | (word4(b, b.len() - 4) << ((b.len() - 4) * 8)),
        _ => b.iter().rev().fold(0, |p, &c| (p << 8) | u64::from(c)),
    }
}

/// Whether two names are equal: names of up to sixteen bytes by two overlapping word
/// comparisons (no call to `memcmp`).
#[inline]
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..=3 => a == b,
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

impl NameKey {
    #[inline]
    fn of(name: &str) -> NameKey {
        let b = name.as_bytes();
        let len = b.len();
        let (head, tail) = if len >= 8 {
            (word8(b, 0), word8(b, len - 8))
        } else {
            (short8(b), 0)
        };
        NameKey { len, head, tail }
    }

    fn slot(self, shift: u32) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ (self.len as u64).rotate_left(56))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> shift) as usize
    }
}

/// What of a name its [`NameKey`] does not hold: the bytes between its first and last eight
/// (none for a name of up to sixteen bytes).
fn middle(name: &str) -> &[u8] {
    let b = name.as_bytes();
    b.get(8..b.len().saturating_sub(8)).unwrap_or_default()
}

/// The names, in the order given (repeats dropped), each found by its index.
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    names: Vec<Box<str>>,
    keys: Vec<NameKey>,
    /// Open addressing: `index + 1` of a name, 0 for an empty slot; a power of two at least
    /// twice the number of names.
    slots: Vec<u32>,
    /// 64 minus log2 of the slot count.
    shift: u32,
}

impl NameIndex {
    pub fn new(names: impl IntoIterator<Item = Box<str>>) -> NameIndex {
        let mut index = NameIndex::default();
        for name in names {
            if !index.names.contains(&name) {
                index.keys.push(NameKey::of(&name));
                index.names.push(name);
            }
        }
        let size = (index.names.len() * 2).next_power_of_two().max(8);
        index.shift = 64 - size.trailing_zeros();
        index.slots = vec![0; size];
        for (i, key) in index.keys.iter().enumerate() {
            let mut slot = key.slot(index.shift);
            while index.slots[slot] != 0 {
                slot = (slot + 1) & (size - 1);
            }
            index.slots[slot] = i as u32 + 1;
        }
        index
    }

    /// The index of `name`, if it is one of the names.
    #[inline]
    pub fn find(&self, name: &str) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let key = NameKey::of(name);
        let mask = self.slots.len() - 1;
        let mut slot = key.slot(self.shift);
        loop {
            let i = (*self.slots.get(slot)? as usize).checked_sub(1)?;
            if self.keys[i] == key && (key.len <= 16 || middle(&self.names[i]) == middle(name)) {
                return Some(i);
            }
            slot = (slot + 1) & mask;
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
