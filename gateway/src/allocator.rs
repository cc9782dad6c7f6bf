//! The process's memory allocator: jemalloc, set to give freed pages back.
//!
//! Every new client passes through a pingora session (tens of KiB for the
//! request phase) before its socket moves to the direct path, where it costs
//! about 1 KiB. glibc's malloc kept the freed session memory in holes between
//! the long-lived allocations: with 10,000 idle direct subscribers RSS was
//! 6–8 KiB per subscriber, and still 2.0–2.5 KiB with a `malloc_trim` after
//! every connection burst (benches/README.md). jemalloc keeps small objects
//! in size-class slabs apart from the large request buffers, so the freed
//! request memory leaves whole pages free; with the options below its
//! background thread returns pages unused for a second to the OS.
//!
//! The options ([`malloc_conf`]) are jemalloc's own, read once when the
//! first allocation initialises it; an operator can still override them with
//! the `_RJEM_MALLOC_CONF` environment variable (jemalloc's `MALLOC_CONF`,
//! under the prefix this build uses).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The option string, NUL-terminated for C.
///
/// * `background_thread:true`: a jemalloc thread purges unused pages on its
///   own schedule (else purging happens only inside allocation calls, so an
///   idle gateway would keep them).
/// * `dirty_decay_ms:1000`: pages unused for about a second are purged.
/// * `muzzy_decay_ms:0`: purged with `MADV_DONTNEED` at once, skipping the
///   lazy `MADV_FREE` stage, whose pages stay in RSS until the kernel needs
///   them.
static OPTIONS: [u8; 60] = *b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// jemalloc's `const char *malloc_conf` (under the `_rjem_` prefix of
/// tikv-jemalloc-sys): a pointer to [`OPTIONS`].
#[allow(unsafe_code, non_upper_case_globals)]
// SAFETY: jemalloc declares this symbol weak and reads it as a pointer to a
// NUL-terminated string, once, when it initialises. A `&'static u8` is a
// plain, non-null pointer, here to the first byte of a NUL-terminated
// array that lives for the whole process and is never written. No Rust code
// reads it, and nothing else exports this name.
#[export_name = "_rjem_malloc_conf"]
static malloc_conf: &u8 = &OPTIONS[0];

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// Resident set size of this process, in KiB.
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn jemalloc_reads_the_options() {
        assert_eq!(super::OPTIONS.last(), Some(&0), "NUL-terminated");
        assert_eq!(
            tikv_jemalloc_ctl::opt::background_thread::read().ok(),
            Some(true),
            "jemalloc did not read the gateway's malloc_conf"
        );
    }

    /// What the options are for: memory freed in many mid-sized blocks (a
    /// burst of request phases) leaves the RSS within seconds.
    #[test]
    fn freed_pages_go_back_to_the_os() {
        let before = rss_kib();
        let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 32 * 1024]).collect();
        let grown = rss_kib();
        assert!(grown >= before + 100 * 1024, "RSS {before} -> {grown} KiB");
        drop(blocks);
        let deadline = Instant::now() + Duration::from_secs(10);
        while rss_kib() > grown - 96 * 1024 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let after = rss_kib();
        assert!(
            after <= grown - 96 * 1024,
            "RSS stayed at {after} KiB after freeing 128 MiB (was {grown}, {before} before)"
        );
    }
}
