//! Runs one process and measures it: wall-clock time from spawn to exit, and its peak
//! resident memory (from `wait4`, which reports the largest of the process and of the
//! children it waited for).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::libc;

/// A process still running after this long is killed (by its pid) and counted as failed.
pub const TIMEOUT: Duration = Duration::from_secs(600);

pub struct Outcome {
    pub wall: Duration,
    pub status: ExitStatus,
    /// Peak resident set, in KiB.
    pub max_rss_kib: u64,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit status and the end of the error output, for a failure message.
    pub fn failure(&self, what: &str) -> String {
        let mut text = format!("{what}: {}", self.status);
        if self.timed_out {
            text.push_str(&format!(" (killed after {}s)", TIMEOUT.as_secs()));
        }
        let stderr = tail(self.stderr.trim(), 1500);
        let stdout = tail(self.stdout.trim(), 500);
        if !stderr.is_empty() {
            text.push_str("\n  stderr: ");
            text.push_str(&stderr.replace('\n', "\n          "));
        }
        if !stdout.is_empty() {
            text.push_str("\n  stdout: ");
            text.push_str(&stdout.replace('\n', "\n          "));
        }
        text
    }
}

/// The last `limit` bytes of a text (on a character boundary), marked when cut.
fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

/// Spawns `command` with null stdin and piped output, and waits for it with `wait4`; kills
/// it after [`TIMEOUT`].
pub fn measure(command: &mut Command) -> Outcome {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|error| panic!("spawn {command:?}: {error}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let stdout = std::thread::spawn(move || read_all(stdout));
    let stderr = std::thread::spawn(move || read_all(stderr));
    let pid = child.id() as libc::pid_t;

    // The watchdog kills the child only while it is not reaped yet (`exited` is set, under
    // the lock, before the pid is reaped), so the pid it kills is always this child's.
    let exited = Arc::new((Mutex::new(false), Condvar::new()));
    let watchdog = {
        let exited = Arc::clone(&exited);
        std::thread::spawn(move || {
            let (lock, condvar) = &*exited;
            let guard = lock.lock().expect("watchdog lock");
            let (guard, timeout) =
                condvar.wait_timeout_while(guard, TIMEOUT, |exited| !*exited).expect("watchdog wait");
            if timeout.timed_out() && !*guard {
                // SAFETY: plain syscall on our own, not yet reaped, child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return true;
            }
            false
        })
    };

    // Wait for the exit without reaping, then reap with `wait4` for the resource usage.
    loop {
        // SAFETY: an all-zero `siginfo_t` is a valid value, which `waitid` overwrites.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live, writable `siginfo_t`.
        let waited = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if waited == 0 {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "waitid for {command:?}: {error}");
    }
    let wall = start.elapsed();
    {
        let (lock, condvar) = &*exited;
        *lock.lock().expect("watchdog lock") = true;
        condvar.notify_all();
    }
    let timed_out = watchdog.join().expect("watchdog");

    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value, which `wait4` overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers point to live, writable values of the right types; `pid` is
        // our own child, which nothing else waits for (`Child` is dropped without waiting).
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "wait4 for {command:?}: {error}");
    }
    drop(child);
    Outcome {
        wall,
        status: ExitStatus::from_raw(status),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        timed_out,
    }
}

fn read_all(mut reader: impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = reader.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
