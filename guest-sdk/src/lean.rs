//! Lean builds: the plugin compiled for `wasm32-unknown-unknown` instead of `wasm32-wasip2` (`lean = true` in
//! `plughost.toml`). Rust's std then links no WASI at all, so the component imports exactly the capabilities the
//! plugin calls and nothing else, and wit-component adds no shim modules. A fresh instance of it is cheaper.
//!
//! On that target Rust's own allocator (dlmalloc) takes its heap from `memory.grow`, which every fresh instance
//! would pay for on its first allocation. The SDK's allocator serves allocations from a static arena first. The
//! arena is zeroed linear memory that is part of the module's initial memory, so a call that fits in it never grows
//! memory. Past the arena it falls back to dlmalloc, so the memory cap still applies as usual. Every call runs in
//! a fresh instance, so a bump allocator that frees only its most recent block wastes nothing that matters.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes served from the arena before dlmalloc takes over.
pub const ARENA_BYTES: usize = 128 * 1024;

#[repr(C, align(16))]
struct Bytes(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the arena's bytes are handed out only by `Arena::alloc`, each range to one owner, and
// wasm32-unknown-unknown runs one thread.
unsafe impl Sync for Bytes {}

static BYTES: Bytes = Bytes(UnsafeCell::new([0; ARENA_BYTES]));

/// Offset of the first free byte of the arena.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The bump-then-dlmalloc allocator of lean builds.
#[derive(Debug)]
pub struct Arena;

fn base() -> usize {
    BYTES.0.get() as usize
}

fn in_arena(ptr: *mut u8) -> bool {
    let p = ptr as usize;
    p >= base() && p < base() + ARENA_BYTES
}

impl Arena {
    /// A block of `layout` from the arena, if it still fits.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let next = base() + NEXT.load(Ordering::Relaxed);
        let start = next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let end = start.checked_add(layout.size())?;
        if end > base() + ARENA_BYTES {
            return None;
        }
        NEXT.store(end - base(), Ordering::Relaxed);
        // Derived from the arena's own pointer, so the block keeps the static's provenance.
        Some(BYTES.0.get().cast::<u8>().wrapping_add(start - base()))
    }

    /// Whether `ptr..ptr+size` is the arena's most recent block.
    fn is_last(ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == base() + NEXT.load(Ordering::Relaxed)
    }
}

// SAFETY: blocks from the arena are aligned, in bounds and never handed out twice while live (`NEXT` only moves back
// over the most recent block when it is freed or resized); everything else is dlmalloc's.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's contract for `alloc`, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !in_arena(ptr) {
            // SAFETY: `ptr` came from `System.alloc` with this layout (it is not an arena block).
            return unsafe { System.dealloc(ptr, layout) };
        }
        if Self::is_last(ptr, layout.size()) {
            NEXT.store(ptr as usize - base(), Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !in_arena(ptr) {
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // The most recent block grows or shrinks in place while it fits.
        if Self::is_last(ptr, layout.size()) && ptr as usize + new_size <= base() + ARENA_BYTES {
            NEXT.store(ptr as usize + new_size - base(), Ordering::Relaxed);
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout by `realloc`'s contract.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least `min(old, new)` bytes long.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: the old block is no longer used (it moves the arena back only if it is still the last).
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}
