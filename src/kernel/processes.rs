//! The processes inside the stack's namespaces, read from `/proc`, and ending them when the
//! user asked for it (`--kill-processes`) before their namespace is deleted.
//!
//! A process is in a namespace when its `/proc/PID/ns/net` names the namespace's inode,
//! which is the inode of the namespace's file under `/run/netns` too.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::plan::Process;

/// How long a process has to end after SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(3);
/// How long a process may take to go once killed.
const END_WAIT: Duration = Duration::from_secs(2);

/// The inode of an open namespace file, which names the namespace.
pub fn inode(namespace: &File) -> io::Result<u64> {
    Ok(namespace.metadata()?.ino())
}

/// Whether opening a namespace failed because there is none at its path: nothing, or a
/// file that is no network namespace (the empty file of an interrupted creation).
fn no_namespace(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::InvalidInput)
}

/// The processes in each of `namespaces` (container by namespace inode), by container, in
/// one pass over `/proc`. This process is never one of them.
pub fn running_in(namespaces: &HashMap<u64, String>) -> BTreeMap<String, Vec<Process>> {
    let mut running: BTreeMap<String, Vec<Process>> = BTreeMap::new();
    if namespaces.is_empty() {
        return running;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return running };
    let own = std::process::id();
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|pid| *pid != own)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Some(container) = namespace_of(pid).and_then(|inode| namespaces.get(&inode)) else { continue };
        // A process that ended since it was listed is not there.
        let Some(command) = command_line(pid) else { continue };
        running.entry(container.clone()).or_default().push(Process { pid, command });
    }
    running
}

/// The processes in the namespace at `path` now; none when it is gone.
pub fn running_at(path: &Path) -> io::Result<Vec<Process>> {
    let namespace = match super::netns::open(path) {
        Ok(file) => inode(&file)?,
        Err(error) if no_namespace(&error) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let here = HashMap::from([(namespace, String::new())]);
    Ok(running_in(&here).into_values().next().unwrap_or_default())
}

/// The inode of a process's network namespace, from the link `/proc/PID/ns/net`, which
/// reads `net:[INODE]`; `None` once the process has ended (a zombie has none either).
fn namespace_of(pid: u32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let link = link.to_str()?;
    link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// A process's command line, its arguments separated by spaces; its name in brackets when
/// it has none.
fn command_line(pid: u32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let arguments: Vec<String> = bytes
        .split(|byte| *byte == 0)
        .filter(|argument| !argument.is_empty())
        .map(|argument| String::from_utf8_lossy(argument).into_owned())
        .collect();
    if !arguments.is_empty() {
        return Some(arguments.join(" "));
    }
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(format!("[{}]", name.trim_end()))
}

/// Ends `processes`, which were seen in the namespace at `path`: SIGTERM to each, then,
/// after a grace period, SIGKILL to those still there. Each signal goes by pid, and only
/// while the pid still runs in that namespace: a pid that ended, or was taken since by a
/// process elsewhere, is left alone. Fails when one is still there after SIGKILL.
pub fn end(path: &Path, processes: &[Process]) -> io::Result<()> {
    if processes.is_empty() {
        return Ok(());
    }
    let namespace = match super::netns::open(path) {
        Ok(file) => inode(&file)?,
        // No namespace there: nothing of it to end.
        Err(error) if no_namespace(&error) => return Ok(()),
        Err(error) => return Err(error),
    };
    let inside = |process: &&Process| namespace_of(process.pid) == Some(namespace);
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        for process in processes.iter().filter(inside) {
            match kill(Pid::from_raw(process.pid as i32), signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let wait = if signal == Signal::SIGTERM { GRACE } else { END_WAIT };
        let deadline = Instant::now() + wait;
        while processes.iter().any(|process| inside(&process)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    match processes.iter().find(inside) {
        Some(process) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("process {} ({}) did not end when killed", process.pid, process.command),
        )),
        None => Ok(()),
    }
}
