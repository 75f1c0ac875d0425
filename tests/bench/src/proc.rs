//! Child processes: wall time and peak RSS (`VmHWM` from `/proc`), which std does not expose.

use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a child process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub wall: Duration,
    /// Peak resident set size, KiB.
    pub max_rss_kib: u64,
    pub success: bool,
}

/// Peak RSS so far (`VmHWM`, KiB) of a live process, from `/proc/<pid>/status`.
///
/// Not `wait4`'s `ru_maxrss`: on Linux a spawned child's `ru_maxrss` starts from the
/// RSS of the parent it was forked (or vforked) from, so it reports the bench's size.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits for `child` (blocking), sampling its `VmHWM` every 5 ms until it exits;
/// returns (exited with 0, peak RSS in KiB).
pub fn wait_sampling(mut child: Child) -> io::Result<(bool, u64)> {
    let pid = child.id();
    let mut peak = 0u64;
    loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status.success(), peak));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `cmd` to completion with stdout to `stdout_file` (stderr discarded), timing it
/// from spawn to exit.
pub async fn run_measured(mut cmd: Command, stdout_file: &Path) -> io::Result<Exit> {
    let out = std::fs::File::create(stdout_file)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd.spawn()?;
    let (success, max_rss_kib) = tokio::task::spawn_blocking(move || wait_sampling(child))
        .await
        .map_err(|e| io::Error::other(e.to_string()))??;
    Ok(Exit {
        wall: start.elapsed(),
        max_rss_kib,
        success,
    })
}

/// Runs `cmd` to completion, timed; Err carries its stderr when it fails.
pub async fn run_timed(mut cmd: Command) -> Result<Duration, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let start = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let wall = start.elapsed();
    if out.status.success() {
        Ok(wall)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
