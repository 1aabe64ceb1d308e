//! Patterns that are a sequence of byte-class runs (`^[0-9a-f]{2}-[0-9a-f]{32}$`,
//! `^https?://[^\s]+$`): matched by looking each byte up in its run's class, with no state
//! carried from byte to byte. A run that varies in length is the last, or is followed by a run
//! of at least one byte of a class it shares nothing with (so where it ends is forced: it takes
//! every byte of its class it can). A pattern that only starts with runs of fixed lengths
//! (`^[0-9]{4}-[0-9]{2}…(Z|[+-]…)$`) is split: the runs, and the rest for a DFA.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

use super::head::{Head, MAX_POSITION_RANGES};

/// One run: between `min` and `max` bytes of one class.
#[derive(Debug, Clone)]
struct Run {
    /// The class as a set of ASCII bytes (bit `b`: byte `b`).
    bits: u128,
    /// `class[b]`: byte `b` is in the class (ASCII bytes only).
    class: Box<[bool; 256]>,
    /// The same class as its ranges of bytes, when it has at most [`MAX_RANGES`]: a run of it
    /// is then checked sixteen bytes at a time.
    ranges: Option<Box<[(u8, u8)]>>,
    min: usize,
    max: Option<usize>,
}

/// The most ranges a class is checked by sixteen bytes at a time.
const MAX_RANGES: usize = 4;

impl Run {
    fn new(bits: u128, min: usize, max: Option<usize>) -> Run {
        Run {
            bits,
            class: table(bits),
            ranges: ranges(bits),
            min,
            max,
        }
    }

    fn fixed(&self) -> bool {
        self.max == Some(self.min)
    }

    /// Whether every byte of `bytes` is in the class.
    fn holds(&self, bytes: &[u8]) -> bool {
        let mut rest = bytes;
        if let Some(ranges) = &self.ranges {
            while let Some((chunk, after)) = rest.split_first_chunk::<16>() {
                if !in_ranges(chunk, ranges) {
                    return false;
                }
                rest = after;
            }
        }
        rest.iter()
            .fold(true, |ok, &b| ok & self.class[usize::from(b)])
    }
}

/// Whether all sixteen bytes lie in one of `ranges` (SSE2, part of every x86-64).
#[cfg(target_arch = "x86_64")]
fn in_ranges(chunk: &[u8; 16], ranges: &[(u8, u8)]) -> bool {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline; `chunk` is 16 readable bytes and the load
    // has no alignment requirement.
    let mask = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let mut inside = _mm_setzero_si128();
        for &(lo, hi) in ranges {
            // lo <= b <= hi exactly when min(max(b, lo), hi) == b (unsigned).
            let clamped = _mm_min_epu8(
                _mm_max_epu8(v, _mm_set1_epi8(lo as i8)),
                _mm_set1_epi8(hi as i8),
            );
            inside = _mm_or_si128(inside, _mm_cmpeq_epi8(clamped, v));
        }
        _mm_movemask_epi8(inside)
    };
    mask == 0xFFFF
}

#[cfg(not(target_arch = "x86_64"))]
fn in_ranges(chunk: &[u8; 16], ranges: &[(u8, u8)]) -> bool {
    chunk
        .iter()
        .all(|&b| ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi))
}

/// The ranges of the ASCII set `bits`, if there are at most [`MAX_RANGES`].
fn ranges(bits: u128) -> Option<Box<[(u8, u8)]>> {
    let mut out = Vec::new();
    let mut b = 0u8;
    while b < 128 {
        if bits & (1u128 << b) == 0 {
            b += 1;
            continue;
        }
        let lo = b;
        while b < 128 && bits & (1u128 << b) != 0 {
            b += 1;
        }
        out.push((lo, b - 1));
    }
    (out.len() <= MAX_RANGES).then(|| out.into_boxed_slice())
}

/// A pattern as runs, anchored at both ends; or the runs a pattern starts with.
#[derive(Debug, Clone)]
pub struct Runs {
    /// The runs of fixed lengths the pattern starts with, each byte's class at most two
    /// ranges, as one [`Head`] (when there are at least two such bytes).
    head: Option<Head>,
    /// The runs after the head.
    rest: Vec<Run>,
}

/// What follows the runs a pattern starts with: the rest of its parts (ending with `$`).
pub type Tail = Hir;

impl Runs {
    /// `hir` as runs then a tail: the whole of it as runs and no tail, if it is `^`, runs, `$`,
    /// each varying run followed by a disjoint run of at least one byte or the last
    /// ([`Runs::matches`]); or the runs of fixed lengths it starts with (at least one) and the
    /// rest ([`Runs::fixed_len`]); `None` otherwise.
    pub fn split(hir: &Hir) -> Option<(Runs, Option<Tail>)> {
        let HirKind::Concat(parts) = hir.kind() else {
            return None;
        };
        let (first, rest) = parts.split_first()?;
        if !matches!(first.kind(), HirKind::Look(Look::Start)) {
            return None;
        }
        let mut runs = Vec::new();
        let mut taken = 0;
        while let Some(part) = rest.get(taken) {
            if !runs_of(part, &mut runs) {
                break;
            }
            taken += 1;
        }
        let tail = &rest[taken..];
        if let [last] = tail {
            if matches!(last.kind(), HirKind::Look(Look::End)) && forced(&runs) {
                return Some((Runs::with_head(runs), None));
            }
        }
        // A tail: it starts where the runs end, which only runs of fixed lengths fix.
        let fixed = runs.iter().take_while(|r| r.fixed()).count();
        if fixed == 0 || fixed < runs.len() || tail.is_empty() {
            return None;
        }
        Some((Runs::with_head(runs), Some(Hir::concat(tail.to_vec()))))
    }

    /// The runs, the fixed-length ones they start with taken as a [`Head`] where they can be.
    fn with_head(mut runs: Vec<Run>) -> Runs {
        let mut positions: Vec<&[(u8, u8)]> = Vec::new();
        let mut taken = 0;
        for run in &runs {
            match &run.ranges {
                Some(r) if run.fixed() && r.len() <= MAX_POSITION_RANGES => {
                    positions.extend(std::iter::repeat_n(&**r, run.min));
                    taken += 1;
                }
                _ => break,
            }
        }
        let head = (positions.len() >= 2)
            .then(|| Head::new(&positions))
            .flatten();
        if head.is_some() {
            runs.drain(..taken);
        }
        Runs { head, rest: runs }
    }

    /// The number of bytes the runs take, when each has a fixed length.
    pub fn fixed_len(&self) -> Option<usize> {
        let head = self.head.as_ref().map_or(0, Head::len);
        self.rest
            .iter()
            .try_fold(head, |n, r| r.fixed().then_some(n + r.min))
    }

    /// Whether the ASCII string `s` matches.
    pub fn matches(&self, s: &[u8]) -> bool {
        let mut at = 0;
        if let Some(head) = &self.head {
            if !head.holds(s) {
                return false;
            }
            at = head.len();
        }
        let last = self.rest.len().saturating_sub(1);
        for (i, run) in self.rest.iter().enumerate() {
            let left = s.len().saturating_sub(at);
            let n = if run.fixed() {
                run.min
            } else if i == last {
                // The last run takes the rest.
                left
            } else {
                // Followed by a disjoint run: it takes all of its class it may.
                let most = run.max.map_or(left, |max| max.min(left));
                s[at..at + most]
                    .iter()
                    .take_while(|&&b| run.class[usize::from(b)])
                    .count()
            };
            if n < run.min || run.max.is_some_and(|max| n > max) {
                return false;
            }
            let Some(bytes) = s.get(at..at + n) else {
                return false;
            };
            if !run.holds(bytes) {
                return false;
            }
            at += n;
        }
        at == s.len()
    }
}

/// Appends the runs of one part of a pattern; `false` if it is not runs.
fn runs_of(part: &Hir, runs: &mut Vec<Run>) -> bool {
    let class = |sub: &Hir| match sub.kind() {
        HirKind::Class(class) => ascii_class(class),
        HirKind::Literal(literal) => match &*literal.0 {
            [b] => bit(*b),
            _ => None,
        },
        _ => None,
    };
    match part.kind() {
        HirKind::Literal(literal) => {
            let Some(bits) = literal
                .0
                .iter()
                .map(|&b| bit(b))
                .collect::<Option<Vec<_>>>()
            else {
                return false;
            };
            runs.extend(bits.into_iter().map(|b| Run::new(b, 1, Some(1))));
            true
        }
        HirKind::Class(c) => ascii_class(c).is_some_and(|bits| {
            runs.push(Run::new(bits, 1, Some(1)));
            true
        }),
        HirKind::Repetition(rep) => {
            let min = usize::try_from(rep.min).ok();
            let max = rep.max.map(usize::try_from).transpose().ok();
            match (class(&rep.sub), min, max) {
                (Some(bits), Some(min), Some(max)) => {
                    runs.push(Run::new(bits, min, max));
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether every varying run but the last is followed by a run of at least one byte that
/// shares no byte with it (so greedy matching is the only matching).
fn forced(runs: &[Run]) -> bool {
    runs.windows(2)
        .all(|w| w[0].fixed() || (w[1].min >= 1 && w[0].bits & w[1].bits == 0))
}

/// The lookup table of a set of ASCII bytes.
fn table(bits: u128) -> Box<[bool; 256]> {
    let mut t = Box::new([false; 256]);
    for (b, slot) in t.iter_mut().enumerate().take(128) {
        *slot = bits & (1u128 << b) != 0;
    }
    t
}

fn bit(b: u8) -> Option<u128> {
    (b < 128).then(|| 1u128 << b)
}

/// The ASCII bytes of a class (bytes above 127 are left out: only ASCII strings are matched).
fn ascii_class(class: &Class) -> Option<u128> {
    let mut bits = 0u128;
    let mut add = |lo: u32, hi: u32| {
        for b in lo..=hi.min(127) {
            bits |= 1u128 << b;
        }
    };
    match class {
        Class::Bytes(c) => c
            .iter()
            .for_each(|r| add(u32::from(r.start()), u32::from(r.end()))),
        Class::Unicode(c) => c
            .iter()
            .for_each(|r| add(u32::from(r.start()), u32::from(r.end()))),
    }
    Some(bits)
}
