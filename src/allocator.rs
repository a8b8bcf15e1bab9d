//! The process's allocator (mimalloc), and the heap a burst freed handed back to the kernel so
//! the resident size returns to what serving needs.

/// The allocator every Rust allocation of the process goes through: mimalloc, whose
/// per-thread free lists serve the 50-odd small allocations of a request at a fraction of
/// glibc's cost (see bench/README.md). C code (AWS-LC) still uses glibc's `malloc`. Fuzzing
/// builds keep the system allocator, which the sanitizer watches.
#[cfg(not(fuzzing))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands memory freed after a burst (large bodies, batches) back to the OS, so the resident
/// size returns to its idle level instead of staying at the burst's peak: mimalloc's free
/// pages (it returns them on its own after a delay; this is at once), and glibc's heap for
/// the C code.
pub fn release_free_heap() {
    // Only where mimalloc is the allocator (and so linked in).
    #[cfg(not(fuzzing))]
    {
        unsafe extern "C" {
            fn mi_collect(force: bool);
        }
        // SAFETY: mi_collect takes no pointers; it frees what this thread's heap and the
        // abandoned pages no longer use, and may be called at any time from any thread.
        unsafe {
            mi_collect(true);
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns unused pages of glibc's own heap to the kernel; it
        // takes no pointers and is safe to call at any time from any thread.
        unsafe {
            malloc_trim(0);
        }
    }
}
