//! The fixed-length start of a pattern of byte-class runs (`[0-9]{4}-[0-9]{2}-…`), each byte's
//! class at most two ranges: checked sixteen positions at a time against each position's
//! ranges, with no branch or lookup per byte.

/// One window of sixteen positions: the bytes allowed at each are `lo1..=hi1` and `lo2..=hi2`.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Where the window starts in the string.
    at: usize,
    lo1: [u8; 16],
    hi1: [u8; 16],
    lo2: [u8; 16],
    hi2: [u8; 16],
}

/// The first `len` positions of a pattern, each with its ranges.
#[derive(Debug, Clone)]
pub struct Head {
    len: usize,
    /// Covering `0..len`: at 0, 16, 32…, and a last one ending at `len` (overlapping the one
    /// before it). A string shorter than sixteen bytes is checked in a copy padded to sixteen
    /// (the positions past `len` allow every byte).
    windows: Vec<Window>,
}

/// The most ranges one position's class may have.
pub const MAX_POSITION_RANGES: usize = 2;

impl Head {
    /// The head of the positions' classes, each given by its ranges (one or two, else `None`).
    pub fn new(positions: &[&[(u8, u8)]]) -> Option<Head> {
        let len = positions.len();
        if len == 0
            || positions
                .iter()
                .any(|r| r.is_empty() || r.len() > MAX_POSITION_RANGES)
        {
            return None;
        }
        let mut starts: Vec<usize> = (0..len / 16).map(|k| k * 16).collect();
        if len % 16 != 0 {
            starts.push(len.saturating_sub(16));
        }
        let window = |at: usize| {
            // Past the end: any byte (0..=255 twice).
            let mut w = Window {
                at,
                lo1: [0; 16],
                hi1: [255; 16],
                lo2: [0; 16],
                hi2: [255; 16],
            };
            for (i, ranges) in positions.iter().skip(at).take(16).enumerate() {
                let (first, second) = (ranges[0], *ranges.last().unwrap_or(&ranges[0]));
                (w.lo1[i], w.hi1[i]) = first;
                (w.lo2[i], w.hi2[i]) = second;
            }
            w
        };
        Some(Head {
            len,
            windows: starts.into_iter().map(window).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether `s` is at least as long as the head and its first bytes are in their classes.
    pub fn holds(&self, s: &[u8]) -> bool {
        if s.len() < self.len {
            return false;
        }
        if s.len() < 16 {
            let mut padded = [0u8; 16];
            padded[..self.len].copy_from_slice(&s[..self.len]);
            return self.windows.iter().all(|w| window_holds(&padded, w));
        }
        self.windows.iter().all(|w| {
            s.get(w.at..w.at + 16)
                .and_then(|c| <&[u8; 16]>::try_from(c).ok())
                .is_some_and(|chunk| window_holds(chunk, w))
        })
    }
}

/// Whether each byte of `chunk` is in one of its position's two ranges (SSE2, part of every
/// x86-64).
#[cfg(target_arch = "x86_64")]
fn window_holds(chunk: &[u8; 16], w: &Window) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline; every pointer is to sixteen readable bytes
    // and the loads have no alignment requirement.
    let mask = unsafe {
        let load = |b: &[u8; 16]| _mm_loadu_si128(b.as_ptr().cast::<__m128i>());
        let v = load(chunk);
        // lo <= b <= hi exactly when min(max(b, lo), hi) == b (unsigned).
        let within =
            |lo: __m128i, hi: __m128i| _mm_cmpeq_epi8(_mm_min_epu8(_mm_max_epu8(v, lo), hi), v);
        let one = within(load(&w.lo1), load(&w.hi1));
        let two = within(load(&w.lo2), load(&w.hi2));
        _mm_movemask_epi8(_mm_or_si128(one, two))
    };
    mask == 0xFFFF
}

#[cfg(not(target_arch = "x86_64"))]
fn window_holds(chunk: &[u8; 16], w: &Window) -> bool {
    (0..16).all(|i| {
        let b = chunk[i];
        (w.lo1[i] <= b && b <= w.hi1[i]) || (w.lo2[i] <= b && b <= w.hi2[i])
    })
}
