//! The binaries' global allocator: mimalloc, asked the way its fastest path answers.
//!
//! `mimalloc::MiMalloc` passes every request to `mi_malloc_aligned`, which checks the alignment
//! before it reaches the allocation `mi_malloc` makes directly. Every mimalloc block is aligned
//! to at least a word (its size classes are whole words, each page starts 16-aligned), so a
//! request whose alignment is at most a word, and not above its size, gets `mi_malloc`'s block
//! as it is; anything else still goes through the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every `mi_malloc` block has.
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator (`#[global_allocator] static A: Mimalloc = Mimalloc;`).
pub struct Mimalloc;

fn plain(align: usize, size: usize) -> bool {
    align <= WORD && align <= size
}

// SAFETY: each call passes the request to mimalloc, whose blocks meet the layout: a word-aligned
// block for an alignment of at most a word not above the size (see the module comment), the
// aligned calls for the rest; `mi_free` frees both kinds.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions accept any size and a power-of-two alignment.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps its
        // alignment (a word-aligned block for a plain request, the aligned call otherwise).
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request gets a block with its alignment, through growth and shrinking too.
    #[test]
    fn blocks_meet_their_layouts() {
        let a = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 7, 8, 9, 15, 16, 17, 24, 48, 100, 1000, 70_000] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero size; each block is freed once, with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null() && p as usize % align == 0, "{size} {align}");
                    p.write_bytes(0xab, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert!(
                        !q.is_null() && q as usize % align == 0,
                        "grown {size} {align}"
                    );
                    assert!((0..size).all(|i| *q.add(i) == 0xab), "kept {size} {align}");
                    a.dealloc(q, Layout::from_size_align(size * 3, align).expect("layout"));
                    let z = a.alloc_zeroed(layout);
                    assert!(!z.is_null() && z as usize % align == 0);
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed {size} {align}");
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
