//! A counting global allocator: the system allocator, plus a count of the heap
//! bytes currently allocated, for the idle-memory mode.
//!
//! Counting is off until [`enable`] is called (the `idle-memory` mode does so
//! first thing), so the `h1` mode pays one relaxed load per allocation and no
//! atomic read-modify-write. Bytes freed that were allocated before counting
//! started make the count drift down, which is why it is signed and only ever
//! read as a difference between two points.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The allocator type installed as `#[global_allocator]` in `main.rs`.
pub struct Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Starts counting.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Bytes allocated and not yet freed since [`enable`] (may be negative).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst)
}

fn add(bytes: usize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE.fetch_add(bytes as isize, Ordering::Relaxed);
    }
}

fn sub(bytes: usize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments, which
// upholds GlobalAlloc's contract; the counting touches only atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            sub(layout.size());
            add(new_size);
        }
        p
    }
}
