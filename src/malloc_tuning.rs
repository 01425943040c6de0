//! glibc malloc settings that keep dialsync's resident memory near its live heap.
//!
//! Measured with the e2e bench (ranges shape, 100k rules): by default glibc gives every thread
//! that allocates its own arena (tokio's workers and blocking threads), and freed memory in
//! one arena cannot serve another, so peak RSS ran 25-30 MB above the peak heap. Its mmap
//! threshold also grows each time a large block is freed, after which the next large vector
//! (a body, a dial plan's rows) comes from the heap and stays there once freed.
//!
//! Set once at start, before any thread exists. Other C libraries (musl) are left as they are.

/// Arenas for the whole process: one per core dialsync is meant to use at most.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

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
