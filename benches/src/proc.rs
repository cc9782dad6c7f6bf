//! CPU time and memory of the system under test, from `/proc`.
//!
//! nginx and Pushpin run several processes, so a system is a set of root
//! PIDs together with all of their descendants, looked up at each reading.

use std::collections::HashSet;

/// Linux's USER_HZ, 100 on every architecture benchmarks run on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The fields of `/proc/PID/stat` after the command name (which is in
/// parentheses and may hold spaces); field 3 of stat is at index 0.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `roots` and every live descendant of them.
pub fn process_tree(roots: &[u32]) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let ppid = stat_fields(pid)
                .and_then(|f| f.get(1).and_then(|v| v.parse().ok()))
                .unwrap_or(0);
            parents.push((pid, ppid));
        }
    }
    let mut tree: HashSet<u32> = roots.iter().copied().collect();
    // Bounded: each round adds at least one process or stops.
    for _ in 0..64 {
        let before = tree.len();
        for (pid, ppid) in &parents {
            if tree.contains(ppid) {
                tree.insert(*pid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    let mut pids: Vec<u32> = tree.into_iter().collect();
    pids.sort_unstable();
    pids
}

/// utime + stime of every thread of `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Some(fields) = stat_fields(pid) else {
        return 0.0;
    };
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here at indices 11 and 12.
    (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_SECOND
}

/// Resident set size of `pid` in KiB (VmRSS), 0 when it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Proportional set size of `pid` in KiB (`Pss:` of `/proc/PID/smaps_rollup`):
/// each shared page counts divided by the number of processes mapping it, so
/// that the PSS of a process tree adds its shared memory (nginx's shared
/// zone, libraries) once. 0 when it is gone or unreadable.
pub fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|rollup| {
            rollup
                .lines()
                .find_map(|line| line.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of `pid` (entries of `/proc/PID/fd`), 0 when gone.
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// CPU-seconds of every process of a tree, by PID (to difference two readings
/// over the processes present in both).
pub fn tree_cpu(roots: &[u32]) -> Vec<(u32, f64)> {
    process_tree(roots)
        .into_iter()
        .map(|pid| (pid, cpu_seconds(pid)))
        .collect()
}

/// CPU-seconds spent between two readings of [`tree_cpu`]; a process that
/// appeared in between counts from zero.
pub fn cpu_between(before: &[(u32, f64)], after: &[(u32, f64)]) -> f64 {
    after
        .iter()
        .map(|(pid, cpu)| {
            let start = before
                .iter()
                .find(|(p, _)| p == pid)
                .map_or(0.0, |(_, c)| *c);
            (cpu - start).max(0.0)
        })
        .sum()
}

/// Total RSS of a tree in KiB. Shared pages (nginx's shared memory, shared
/// libraries) count once per process, as `ps` adds them up.
pub fn tree_rss_kib(roots: &[u32]) -> u64 {
    process_tree(roots).into_iter().map(rss_kib).sum()
}

/// Total PSS of a tree in KiB: shared pages count once in all.
pub fn tree_pss_kib(roots: &[u32]) -> u64 {
    process_tree(roots).into_iter().map(pss_kib).sum()
}

/// Open file descriptors of every process of a tree.
pub fn tree_fds(roots: &[u32]) -> u64 {
    process_tree(roots).into_iter().map(open_fds).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_in_its_own_tree_with_memory_and_cpu() {
        let me = std::process::id();
        assert!(process_tree(&[me]).contains(&me));
        assert!(tree_rss_kib(&[me]) > 0);
        let (rss, pss) = (rss_kib(me), pss_kib(me));
        assert!(pss > 0 && pss <= rss + 64, "pss {pss} rss {rss}");
        assert!(tree_pss_kib(&[me]) >= pss);
        assert!(open_fds(me) >= 3, "stdin, stdout, stderr at least");
        assert_eq!(open_fds(u32::MAX), 0);
        assert!(cpu_seconds(me) >= 0.0);
    }

    #[test]
    fn cpu_between_counts_new_processes_from_zero() {
        let before = [(1, 1.0), (2, 5.0)];
        let after = [(1, 1.5), (3, 2.0)];
        assert!((cpu_between(&before, &after) - 2.5).abs() < 1e-9);
    }
}
