//! Memory and open files of a process tree, from `/proc`, as one JSON line:
//! `procstat PID...` prints `{"pids":[...],"processes":N,"rss_kib":…,
//! "pss_kib":…,"fds":…}` summed over the PIDs and all their descendants
//! (RSS counts shared pages once per process, PSS once in all). For scripts
//! that watch a gateway whose PID changes (`benches/run-chaos`).
#![allow(clippy::print_stdout, reason = "a command-line tool printing one line")]

use sse_gateway_benches::proc::{open_fds, process_tree, pss_kib, rss_kib};

fn main() -> anyhow::Result<()> {
    let roots = std::env::args()
        .skip(1)
        .map(|arg| {
            arg.parse::<u32>()
                .map_err(|_| anyhow::anyhow!("usage: procstat PID... ({arg:?} is not a PID)"))
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    let tree = process_tree(&roots);
    let line = serde_json::json!({
        "pids": roots,
        "processes": tree.iter().filter(|pid| rss_kib(**pid) > 0).count(),
        "rss_kib": tree.iter().map(|pid| rss_kib(*pid)).sum::<u64>(),
        "pss_kib": tree.iter().map(|pid| pss_kib(*pid)).sum::<u64>(),
        "fds": tree.iter().map(|pid| open_fds(*pid)).sum::<u64>(),
    });
    println!("{line}");
    Ok(())
}
