//! Process memory: the heap a burst freed, and the program's own pages only start-up used,
//! handed back to the kernel so the resident size is what serving needs.
//!
//! Most of an idle server's resident size is not data but the pages of its own binary: start-up
//! (configuration, schema compilation, the key store, the HTTP client) runs code spread over most
//! of the executable, and the kernel maps the cached pages around every page it touches. Once
//! the server is serving, [`release_startup_pages`] asks the kernel to reclaim those pages
//! (`MADV_DONTNEED` on its code, `MADV_PAGEOUT` on its other read-only mappings). This changes
//! no content: the code a request runs is mapped back from the page cache on first use, pages
//! the process wrote (relocated constants) are not file pages and stay, and pages other
//! processes share are left to them. Linux only; elsewhere, and on a kernel that refuses the
//! advice, it does nothing.

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

/// Asks the kernel to reclaim the resident pages of this executable's read-only mappings (its
/// code and constants). Returns how many bytes of mappings were advised (0 when there is
/// nothing to do or the platform has no such advice). Never fails: this is an economy, not a
/// requirement.
///
/// Code mappings that hold only file pages (no page was ever written, which is what a
/// mapping that was never writable holds) are unmapped from this process with
/// `MADV_DONTNEED`: the page cache keeps the file's pages, in the large folios it read them
/// into, and a page a request needs again is a minor fault, not a read. Every other read-only
/// mapping (constants the loader relocated before making them read-only are anonymous pages;
/// `MADV_DONTNEED` would revert them to the file's bytes) gets `MADV_PAGEOUT`, which reclaims
/// only clean file pages and keeps the rest.
pub fn release_startup_pages() -> usize {
    // The kernel names the executable the same way in both places (" (deleted)" included when
    // the file was replaced since), whatever file system it lives on.
    let (Ok(exe), Ok(smaps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/smaps"),
    ) else {
        return 0;
    };
    let Some(exe) = exe.to_str() else {
        return 0;
    };
    own_read_only_mappings(&smaps, exe)
        .filter(|m| {
            let advice = if m.executable && m.anonymous_kib == Some(0) {
                Advice::Unmap
            } else {
                Advice::PageOut
            };
            advise(m.start, m.end - m.start, advice)
        })
        .map(|m| m.end - m.start)
        .sum()
}

/// What to ask of the kernel for one mapping.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Advice {
    /// `MADV_DONTNEED`: drop the process's mappings of the pages (only for mappings without
    /// anonymous pages: the file's bytes are what a refault reads).
    Unmap,
    /// `MADV_PAGEOUT`: reclaim the clean file pages, keep the others.
    PageOut,
}

/// `madvise` over one mapping; whether the kernel took the advice.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise(start: usize, len: usize, advice: Advice) -> bool {
    const MADV_RANDOM: i32 = 1;
    const MADV_DONTNEED: i32 = 4;
    const MADV_PAGEOUT: i32 = 21;
    unsafe extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    let addr = start as *mut std::ffi::c_void;
    match advice {
        Advice::Unmap => {
            // The code a request runs comes back page by page, not with the cached pages
            // around each (fault-around): one request otherwise maps about 2.4 MB of code
            // back, this way about 2 MB. Taken or not, the unmapping below still helps.
            // SAFETY: MADV_RANDOM only tunes how this mapping is faulted and read ahead; it
            // changes no content and takes no pointer beyond the mapping's own range.
            unsafe { madvise(addr, len, MADV_RANDOM) };
            // SAFETY: the range is a whole mapping of this process's executable, page-aligned
            // as the kernel reported it, and not writable. MADV_DONTNEED is only given for a
            // mapping the kernel reported without anonymous pages, so every page it drops reads
            // back from the file as it was.
            unsafe { madvise(addr, len, MADV_DONTNEED) == 0 }
        }
        // SAFETY: as above (a whole read-only mapping of the executable). MADV_PAGEOUT changes
        // no content: clean file pages are read back on use, and pages written before the
        // mapping became read-only (relocated constants) are anonymous, so they are kept (or
        // swapped), never reverted to the file's bytes.
        Advice::PageOut => unsafe { madvise(addr, len, MADV_PAGEOUT) == 0 },
    }
}

/// No such advice here (and no `/proc/self/smaps` to find mappings in).
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn advise(_start: usize, _len: usize, _advice: Advice) -> bool {
    false
}

/// One read-only mapping of the executable, from `/proc/self/smaps`.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    executable: bool,
    /// Its `Anonymous:` field (pages written since it was mapped); `None` when absent.
    anonymous_kib: Option<u64>,
}

/// The mappings of `/proc/self/smaps` (or `/proc/self/maps`, without the fields) that map the
/// file `path` without write permission.
fn own_read_only_mappings<'a>(smaps: &'a str, path: &'a str) -> impl Iterator<Item = Mapping> + 'a {
    let mut lines = smaps.lines().peekable();
    std::iter::from_fn(move || {
        loop {
            let line = lines.next()?;
            let Some(mut mapping) = header(line, path) else {
                continue;
            };
            // The fields that follow, up to the next mapping's line.
            while let Some(field) = lines.next_if(|l| header_fields(l).is_none()) {
                if let Some(kib) = field.strip_prefix("Anonymous:") {
                    mapping.anonymous_kib = kib.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
            return Some(mapping);
        }
    })
}

/// A mapping line's range and permissions, and the rest of the line (the path, which may hold
/// spaces); `None` for a field line.
fn header_fields(line: &str) -> Option<(usize, usize, &str, &str)> {
    // address perms offset dev inode, then the path.
    let mut f = line.splitn(6, ' ');
    let (range, perms) = (f.next()?, f.next()?);
    let (_offset, _dev, _inode) = (f.next()?, f.next()?, f.next()?);
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some((start, end, perms, f.next().unwrap_or("").trim_start()))
}

/// The mapping on `line` if it maps `path` without write permission.
fn header(line: &str, path: &str) -> Option<Mapping> {
    let (start, end, perms, file) = header_fields(line)?;
    (file == path && !perms.contains('w') && end > start).then(|| Mapping {
        start,
        end,
        executable: perms.contains('x'),
        anonymous_kib: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_unwritable_mappings_are_chosen() {
        let maps = "\
55d0a0000000-55d0a0100000 r--p 00000000 08:01 4242                       /srv/my app/gatehouse
55d0a0100000-55d0a0900000 r-xp 00100000 08:01 4242                       /srv/my app/gatehouse
55d0a0900000-55d0a0a00000 rw-p 00900000 08:01 4242                       /srv/my app/gatehouse
55d0a0a00000-55d0a0b00000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000200000 r-xp 00000000 08:01 77                         /usr/lib/libc.so.6
7f0000300000-7f0000400000 r--p 00000000 08:01 4242                       /srv/my app/gatehouse.old
7f0000500000-7f0000600000 ---p 00000000 00:00 0
garbage line";
        let got: Vec<_> = own_read_only_mappings(maps, "/srv/my app/gatehouse")
            .map(|m| (m.start, m.end, m.executable))
            .collect();
        assert_eq!(
            got,
            vec![
                (0x55d0a0000000, 0x55d0a0100000, false),
                (0x55d0a0100000, 0x55d0a0900000, true),
            ]
        );
        // A binary replaced on disk since it started is still this process's.
        let deleted = "55d0a0100000-55d0a0900000 r-xp 00100000 08:01 4242 /srv/gh (deleted)";
        let got: Vec<_> = own_read_only_mappings(deleted, "/srv/gh (deleted)")
            .map(|m| (m.start, m.end))
            .collect();
        assert_eq!(got, vec![(0x55d0a0100000, 0x55d0a0900000)]);
    }

    #[test]
    fn each_mappings_anonymous_pages_are_read_from_its_own_fields() {
        // Only a code mapping without anonymous pages may be unmapped: the relocated
        // constants of the first mapping must never be.
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 08:01 4242 /srv/gatehouse
Size:               1024 kB
Anonymous:            36 kB
VmFlags: rd mr mw me dw
55d0a0100000-55d0a0900000 r-xp 00100000 08:01 4242 /srv/gatehouse
Size:               8192 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw
55d0a0a00000-55d0a0b00000 rw-p 00000000 00:00 0 [heap]
Anonymous:           512 kB
7f0000000000-7f0000200000 r-xp 00000000 08:01 4242 /srv/gatehouse
Size:               2048 kB
Anonymous:             4 kB";
        let got: Vec<_> = own_read_only_mappings(smaps, "/srv/gatehouse")
            .map(|m| (m.executable, m.anonymous_kib))
            .collect();
        assert_eq!(
            got,
            vec![(false, Some(36)), (true, Some(0)), (true, Some(4))]
        );
    }

    #[test]
    fn releasing_pages_keeps_the_program_working() {
        // The advice changes no content: code and constants read back the same afterwards.
        let table: Vec<u64> = (0..1000).map(|i| i * 31).collect();
        let advised = release_startup_pages();
        if cfg!(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        )) {
            assert!(
                advised > 0,
                "this test binary's own mappings were not found"
            );
        }
        assert_eq!(table.iter().sum::<u64>(), 31 * 999 * 1000 / 2);
        assert_eq!(format!("{:?}", Some("still here")), "Some(\"still here\")");
    }
}
