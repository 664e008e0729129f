//! A damaged index entry may point at any bytes, and their length field may claim any
//! size up to 4 GiB: recovery checks that the claimed frame fits the file before it
//! allocates a buffer for it (FORMAT.md §10 step 3). Measured with a global allocator
//! that records the largest allocation, so this binary holds this one test only.
mod common;
use common::*;
use reel_log::index::{self, IndexEntry};
use reel_log::storage::OpenMode;
use reel_log::storage::Storage;
use reel_log::storage::sim::SimStorage;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only the requested
// size is recorded.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every path above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`; same contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

#[test]
fn an_index_entry_at_a_frame_claiming_gigabytes_allocates_nothing_for_it() {
    // The largest records allowed, so that a 2 GiB claim is within the frame limit and
    // only the file's length can refuse it.
    let mut cfg = small_config();
    cfg.capacity = 1 << 20;
    cfg.segment_size = 512 << 10;
    cfg.max_record_size = (u32::MAX / 2) as u64;
    let sim = SimStorage::new();
    let log = open_sim(&sim, cfg);
    let n = 40;
    append_n(&log, n, 200);
    log.sync().unwrap();
    let tail = log.segments().unwrap().last().unwrap().path.clone();
    drop(log);
    let idx = tail.with_extension("idx");
    let good = {
        let f = sim.open(&idx, OpenMode::Read).unwrap();
        index::load(&*f, 0, &idx).unwrap()
    };
    // Record n-1's length field now claims 2 GiB, and an index entry (with a valid
    // checksum) names that frame.
    let at = 32 + 228 * (n - 1);
    sim.corrupt(&tail, at + 4, &(2u32 << 30).to_le_bytes())
        .unwrap();
    let mut b = Vec::new();
    index::encode_entry(
        &mut b,
        &IndexEntry {
            seq: n - 1,
            offset: at,
            ts_max_before: good.last().unwrap().ts_max_before,
        },
    );
    sim.corrupt(&idx, index::entry_pos(good.len() as u64), &b)
        .unwrap();

    let log = open_sim(&sim, cfg);
    LARGEST.store(0, Ordering::SeqCst);
    assert_eq!(append_n(&log, 1, 200), n..n + 1);
    let largest = LARGEST.load(Ordering::SeqCst);
    assert!(
        largest <= 64 << 20,
        "recovery allocated {largest} bytes for a frame that does not fit the file"
    );
    // The damaged record is below the published end: kept and reported.
    let report = log.recovery_report().unwrap();
    assert_eq!(
        report
            .damage
            .iter()
            .map(|d| (d.offset, d.first_seq, d.resume_seq))
            .collect::<Vec<_>>(),
        vec![(at, n - 1, n)]
    );
    assert_eq!(report.cut, None);
}
