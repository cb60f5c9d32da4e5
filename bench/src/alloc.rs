//! A counting global allocator: the system allocator, plus a count of the heap
//! bytes currently allocated, for the idle-memory mode.
//!
//! Counting is off until [`enable`] is called (the `idle-memory` mode does so
//! first thing), so the `h1` mode pays one relaxed load per allocation and no
//! atomic read-modify-write. Bytes freed that were allocated before counting
//! started make the count drift down, which is why it is signed and only ever
//! read as a difference between two points.
//!
//! The `proxy` mode runs a server in the same process, on other threads, and
//! wants the client's bytes alone: it counts per thread instead
//! ([`count_this_thread`], [`thread_live_bytes`]), in a plain thread-local
//! counter (no atomic on the hot path). Bytes one thread allocates and another
//! frees are then not seen as freed; the client's runtime is a current-thread
//! one, so its allocations and frees stay on one thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The allocator type installed as `#[global_allocator]` in `main.rs`.
pub struct Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Whether some thread counts its own bytes (so the others need not look).
static THREAD_COUNTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread's live bytes since [`count_this_thread`]; `None`: not counting.
    static THREAD_LIVE: Cell<Option<isize>> = const { Cell::new(None) };
}

/// Starts counting.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Bytes allocated and not yet freed since [`enable`] (may be negative).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Starts (or restarts, from zero) counting the bytes the calling thread
/// allocates and frees.
pub fn count_this_thread() {
    THREAD_COUNTING.store(true, Ordering::SeqCst);
    THREAD_LIVE.with(|live| live.set(Some(0)));
}

/// Bytes the calling thread allocated and did not free since
/// [`count_this_thread`] (0 if it does not count; may be negative).
pub fn thread_live_bytes() -> isize {
    THREAD_LIVE.with(|live| live.get().unwrap_or(0))
}

fn add(bytes: usize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE.fetch_add(bytes as isize, Ordering::Relaxed);
    }
    if THREAD_COUNTING.load(Ordering::Relaxed) {
        thread_add(bytes as isize);
    }
}

fn sub(bytes: usize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
    if THREAD_COUNTING.load(Ordering::Relaxed) {
        thread_add(-(bytes as isize));
    }
}

/// Adds `delta` to this thread's count, if it counts. `try_with`: a thread
/// being torn down may still allocate after its thread-locals are gone (this
/// one has no destructor, so in practice it never is).
fn thread_add(delta: isize) {
    let _ = THREAD_LIVE.try_with(|live| {
        if let Some(n) = live.get() {
            live.set(Some(n + delta));
        }
    });
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
