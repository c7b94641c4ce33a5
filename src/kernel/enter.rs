//! `stackctl exec`: running a program inside a container's namespace, the way `ip netns
//! exec` does, with the container's hosts file in place of `/etc/hosts` and its
//! `resolv.conf` in place of `/etc/resolv.conf`.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};

use super::netns;

/// Joins the namespace at `namespace`, binds `hosts` over `/etc/hosts` and `resolv_conf`
/// over `/etc/resolv.conf` (each when it exists) in a mount namespace of its own, and
/// replaces this process with `command`. Returns only when that fails. Must run before
/// the process starts any other thread: a process with several threads cannot take a
/// mount namespace of its own.
pub fn enter(namespace: &Path, hosts: &Path, resolv_conf: &Path, command: &[OsString]) -> io::Error {
    let prepare = || -> io::Result<()> {
        setns(netns::open(namespace)?.as_fd(), CloneFlags::CLONE_NEWNET)?;
        unshare(CloneFlags::CLONE_NEWNS)?;
        // Mounts made here must not propagate back to the host.
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)?;
        for (file, over) in [(hosts, "/etc/hosts"), (resolv_conf, "/etc/resolv.conf")] {
            if file.exists() {
                mount(Some(file), over, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|error| io::Error::other(format!("bind {} over {over}: {error}", file.display())))?;
            }
        }
        Ok(())
    };
    if let Err(error) = prepare() {
        return error;
    }
    let (program, arguments) = command.split_first().expect("clap requires a command");
    Command::new(program).args(arguments).exec()
}
