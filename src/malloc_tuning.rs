//! glibc malloc settings that keep dialsync's resident memory near its live heap.
//!
//! Measured with the e2e bench (ranges shape, 100k rules): by default glibc gives every thread
//! that allocates its own arena (tokio's workers and blocking threads), and freed memory in
//! one arena cannot serve another, so peak RSS ran 25-30 MB above the peak heap. Its mmap
//! threshold also grows each time a large block is freed, after which the next large vector
//! (a body, a dial plan's rows) comes from the heap and stays there once freed.
//!
//! Set once at start, before any thread exists. Other C libraries (musl) are left as they are.

/// One arena for the whole process. The fetch decodes on tokio's workers and the rest of the
/// cycle runs on the main thread; with two arenas, what the fetch freed stayed resident in one
/// while the audit grew the other. One arena took the first sync's peak from 73 to 65 MB, the
/// no-change cycle's from 57 to 55, with no CPU cost the bench can see: a cycle allocates
/// from one thread at a time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 1;

/// Blocks at least this large are mapped on their own and returned to the system when
/// freed. Fixed, which also turns off glibc's growing threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Applies the settings; a setting glibc refuses leaves its default, which is only costlier.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called from main before any
    // other thread is started, as glibc asks.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
