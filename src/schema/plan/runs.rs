//! Patterns that are a fixed sequence of byte-class runs (`^[0-9a-f]{2}-[0-9a-f]{32}$`,
//! `^[^\s]+$`): matched by looking each byte up in its run's class, with no state carried from
//! byte to byte. Only the last run may vary in length.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// One run: between `min` and `max` bytes of one class.
#[derive(Debug, Clone)]
struct Run {
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
            class: table(bits),
            ranges: ranges(bits),
            min,
            max,
        }
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

/// A pattern as runs, anchored at both ends.
#[derive(Debug, Clone)]
pub struct Runs(Vec<Run>);

impl Runs {
    /// The runs of `hir`, if it is `^`, then runs, then `$`, every run but the last of a fixed
    /// length.
    pub fn of(hir: &Hir) -> Option<Runs> {
        let HirKind::Concat(parts) = hir.kind() else {
            return None;
        };
        let (first, rest) = parts.split_first()?;
        let (last, middle) = rest.split_last()?;
        if !matches!(first.kind(), HirKind::Look(Look::Start))
            || !matches!(last.kind(), HirKind::Look(Look::End))
        {
            return None;
        }
        let mut runs = Vec::new();
        for part in middle {
            match part.kind() {
                HirKind::Literal(literal) => {
                    for &b in literal.0.iter() {
                        runs.push(Run::new(bit(b)?, 1, Some(1)));
                    }
                }
                HirKind::Class(class) => runs.push(Run::new(ascii_class(class)?, 1, Some(1))),
                HirKind::Repetition(rep) => match rep.sub.kind() {
                    HirKind::Class(class) => runs.push(Run::new(
                        ascii_class(class)?,
                        usize::try_from(rep.min).ok()?,
                        rep.max.map(usize::try_from).transpose().ok()?,
                    )),
                    _ => return None,
                },
                _ => return None,
            }
        }
        let varying = runs.iter().position(|r| r.max != Some(r.min));
        if varying.is_some_and(|i| i + 1 != runs.len()) {
            return None;
        }
        Some(Runs(runs))
    }

    /// Whether the ASCII string `s` matches.
    pub fn matches(&self, s: &[u8]) -> bool {
        let mut at = 0;
        for run in &self.0 {
            let n = match run.max {
                Some(max) if max == run.min => max,
                // The last run takes the rest.
                max => {
                    let n = s.len().saturating_sub(at);
                    if n < run.min || max.is_some_and(|max| n > max) {
                        return false;
                    }
                    n
                }
            };
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
