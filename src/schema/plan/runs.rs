//! Patterns that are a fixed sequence of byte-class runs (`^[0-9a-f]{2}-[0-9a-f]{32}$`,
//! `^[^\s]+$`): matched by looking each byte up in its run's class, with no state carried from
//! byte to byte. Only the last run may vary in length.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// One run: between `min` and `max` bytes of one class.
#[derive(Debug, Clone)]
struct Run {
    /// `class[b]`: byte `b` is in the class (ASCII bytes only).
    class: Box<[bool; 256]>,
    min: usize,
    max: Option<usize>,
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
                        runs.push(Run {
                            class: table(bit(b)?),
                            min: 1,
                            max: Some(1),
                        });
                    }
                }
                HirKind::Class(class) => runs.push(Run {
                    class: table(ascii_class(class)?),
                    min: 1,
                    max: Some(1),
                }),
                HirKind::Repetition(rep) => match rep.sub.kind() {
                    HirKind::Class(class) => runs.push(Run {
                        class: table(ascii_class(class)?),
                        min: usize::try_from(rep.min).ok()?,
                        max: rep.max.map(usize::try_from).transpose().ok()?,
                    }),
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
            if !bytes.iter().all(|&b| run.class[usize::from(b)]) {
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
