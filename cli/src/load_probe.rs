//! `doorstep bench growth-load FILE`, run by `doorstep bench growth` in a fresh process: loads
//! the Automerge document in FILE and prints two figures, one per line: the most heap the load
//! held at once (bytes requested from the allocator), and the peak resident memory it added (KB).
//!
//! The heap is counted by this command's global allocator, which counts only while the probe
//! runs: every other subcommand pays one relaxed load per allocation. The heap figure resolves a
//! single byte; the resident one moves in pages and with what the allocator keeps or gives back,
//! so a document of a few KB cannot be told from an empty one by it (the bench prints both).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use doorstep_core::{Error, Result};

use crate::bench::status_kb;

/// The system allocator, counting the bytes held and the most held at once while [`COUNTING`].
pub struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    if COUNTING.load(Relaxed) {
        let now = HELD.fetch_add(by, Relaxed) + by;
        PEAK.fetch_max(now, Relaxed);
    }
}

fn shrank(by: usize) {
    if COUNTING.load(Relaxed) {
        // Saturating: a block allocated before counting began may be freed after.
        let _ = HELD.fetch_update(Relaxed, Relaxed, |held| Some(held.saturating_sub(by)));
    }
}

// SAFETY: every call is passed to `System` unchanged; the counting only reads the layouts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        shrank(layout.size());
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            // The new block is counted before the old one is let go: a block that moves holds
            // both for a moment, and a peak is never under-counted.
            grew(new_size);
            shrank(layout.size());
        }
        q
    }
}

/// Loads FILE twice (the first pages in the code and warms the allocator) and prints the
/// second load's peak heap, in bytes, and peak resident memory, in KB, beyond what was held before.
pub fn run(path: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(path)?;
    let load =
        || automerge::AutoCommit::load(&bytes).map_err(|e| Error::File(format!("not an Automerge document: {e}")));
    drop(load()?);
    // Writing 5 to clear_refs sets VmHWM to the current RSS.
    std::fs::write("/proc/self/clear_refs", "5")?;
    let rss_before = status_kb("self", "VmRSS:")?;
    HELD.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let am = load()?;
    COUNTING.store(false, Relaxed);
    let (heap_peak, rss_peak) = (PEAK.load(Relaxed), status_kb("self", "VmHWM:")?);
    drop(am);
    println!("{heap_peak}\n{}", rss_peak.saturating_sub(rss_before));
    Ok(())
}
