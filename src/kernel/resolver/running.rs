//! The name servers that run for a host, found by what they are: processes in the host's
//! network namespace whose command line is stackctl's name server, for this host's
//! directory or holding a socket on port 53 there. The pid file alone does not find them:
//! it goes with stackctl's run directory, and a server whose file is gone keeps its
//! gateways' port and answers from the zones it last had.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::PORT;
use crate::kernel::sockets;
use crate::kernel::{HostNamespace, Places};

/// Where a host's name servers run and what they serve.
pub struct Host {
    /// The host's network namespace, by inode, as `/proc/PID/ns/net` names it; `None` for a
    /// scratch host deleted by hand, whose namespace no name finds any more.
    namespace: Option<u64>,
    /// The directory of its files.
    directory: PathBuf,
}

impl Host {
    pub fn new(places: &Places, host: &HostNamespace, directory: &Path) -> io::Result<Host> {
        let path = match host {
            // The namespace of this process's main thread, which never leaves it.
            HostNamespace::Current => "/proc/self/ns/net".into(),
            HostNamespace::Named(name) => places.netns.join(name),
        };
        let namespace = match std::fs::metadata(path) {
            Ok(metadata) => Some(metadata.ino()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        Ok(Host { namespace, directory: directory.to_owned() })
    }

    /// The pids of the name servers running for the host: processes whose command line is
    /// stackctl's name server, in the host's namespace, and either serving its directory
    /// or holding a socket on port 53 there, which its server needs. When the host's
    /// namespace is gone, those whose command line gives its directory. This process is
    /// never one of them.
    pub fn name_servers(&self) -> io::Result<Vec<i32>> {
        let own = std::process::id() as i32;
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc")? {
            let Some(pid) = entry?.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
            if pid == own {
                continue;
            }
            let serves = self.serves(pid);
            if serves == Serves::Directory || (serves == Serves::Other && holds_port(pid)) {
                found.push(pid);
            }
        }
        found.sort_unstable();
        Ok(found)
    }

    /// Kills the name server `pid` and waits for it to end, once `/proc` shows that it is
    /// a name server of the host; any other process is left alone. Fails when it is not,
    /// or when it does not end.
    pub fn end(&self, pid: i32, wait: Duration) -> io::Result<()> {
        if self.serves(pid) == Serves::Nothing {
            return Err(io::Error::other(format!(
                "pid {pid} is not stackctl's name server in this host's namespace: it is left alone"
            )));
        }
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(error) => return Err(error.into()),
        }
        let deadline = Instant::now() + wait;
        // An ended process is gone, or a zombie, which has no command line.
        while self.serves(pid) != Serves::Nothing {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the name server (pid {pid}) did not end when killed"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// What `pid` serves of the host, by its command line and its namespace.
    fn serves(&self, pid: i32) -> Serves {
        if let Some(namespace) = self.namespace
            && namespace_of(pid) != Some(namespace)
        {
            return Serves::Nothing;
        }
        // A process that ended since it was listed serves nothing.
        let Ok(command_line) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return Serves::Nothing };
        match served(&command_line) {
            Some(Some(directory)) if directory == self.directory => Serves::Directory,
            Some(_) if self.namespace.is_some() => Serves::Other,
            _ => Serves::Nothing,
        }
    }
}

/// What a process serves of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    /// It is a name server of the host's directory.
    Directory,
    /// It is a name server in the host's namespace, of another directory or none given.
    Other,
    /// It is no name server of the host.
    Nothing,
}

/// Whether `pid` runs `stackctl resolver`, by its command line.
pub fn is_name_server(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| served(&line).is_some())
}

/// For the command line of a name server (`stackctl [--host-netns NAME] resolver [--dir
/// DIR]`, arguments separated by NUL bytes), the directory it was given; `None` for any
/// other command.
fn served(command_line: &[u8]) -> Option<Option<&Path>> {
    let mut arguments = command_line.split(|byte| *byte == 0);
    let program = Path::new(OsStr::from_bytes(arguments.next()?));
    if !program.file_name()?.as_bytes().starts_with(b"stackctl") {
        return None;
    }
    let arguments: Vec<&[u8]> = arguments.collect();
    if !arguments.contains(&&b"resolver"[..]) {
        return None;
    }
    let directory =
        arguments.windows(2).find(|pair| pair[0] == b"--dir").map(|pair| Path::new(OsStr::from_bytes(pair[1])));
    Some(directory)
}

/// The inode of a process's network namespace, from the link `/proc/PID/ns/net`
/// (`net:[INODE]`); `None` once it has ended.
fn namespace_of(pid: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    link.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Whether `pid` holds a TCP or UDP socket on port 53, on any address of its namespace.
fn holds_port(pid: i32) -> bool {
    let Ok(sockets) = sockets::read_of_process(pid, &["udp", "tcp"]) else { return false };
    let inodes: Vec<u64> = sockets.iter().filter(|socket| socket.port == PORT).map(|socket| socket.inode).collect();
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    descriptors.flatten().any(|descriptor| {
        let Ok(target) = std::fs::read_link(descriptor.path()) else { return false };
        let target = target.to_string_lossy();
        let inode = target.strip_prefix("socket:[").and_then(|rest| rest.strip_suffix(']'));
        inode.and_then(|inode| inode.parse().ok()).is_some_and(|inode: u64| inode != 0 && inodes.contains(&inode))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_servers_command_line_gives_its_directory() {
        let cases: &[(&[u8], Option<Option<&str>>)] = &[
            (b"/usr/bin/stackctl\0resolver\0--dir\0/run/stackctl/host/names\0", Some(Some("/run/stackctl/host/names"))),
            (
                b"/target/debug/stackctl\0--host-netns\0lab\0resolver\0--dir\0/run/stackctl/netns-lab/names\0",
                Some(Some("/run/stackctl/netns-lab/names")),
            ),
            (b"stackctl\0resolver\0", Some(None)),
            (b"/usr/bin/stackctl\0apply\0--yes\0", None),
            (b"/usr/bin/sleep\0resolver\0--dir\0/run/stackctl/host/names\0", None),
            (b"", None),
        ];
        for (line, expected) in cases {
            let found = served(line).map(|directory| directory.map(|directory| directory.to_str().expect("UTF-8")));
            assert_eq!(found, *expected, "{}", String::from_utf8_lossy(line));
        }
    }
}
