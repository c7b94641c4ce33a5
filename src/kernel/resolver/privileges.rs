//! What the name server keeps of root's privileges once its pid file and control socket are
//! open: only the capability to bind port 53 (`CAP_NET_BIND_SERVICE`), which a reload needs
//! for the gateway of a network that a later apply brings; as user and group nobody, with
//! no supplementary group, and no way to gain a privilege again (`PR_SET_NO_NEW_PRIVS`,
//! and a bounding set that holds nothing else).
//!
//! Nothing else it does needs a privilege: it reads no file (apply sends the zones and the
//! host's `resolv.conf` over the control socket), accepts on sockets it holds, forwards from
//! sockets on ports the kernel picks, and enters no namespace after the host's, which it
//! joined before. The pid file and the control socket stay root's: their descriptors,
//! opened before, are all it needs of them.

use std::io;

use nix::errno::Errno;
use nix::libc;
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};

/// The only capability kept: binding ports below 1024.
const NET_BIND_SERVICE: u32 = 10;
/// Changing the bounding set needs this capability.
const SETPCAP: u32 = 8;
/// The user and group the server runs as: the kernel's overflow ids, which own no file and
/// hold no privilege. Another process of that user may signal the server (a dead server is
/// replaced by the next apply), but not trace it or read its memory, since the server
/// holds a capability that such a process does not and is marked not dumpable.
const NOBODY: u32 = 65534;
/// The version of the capability sets' layout that `capget` and `capset` take: two
/// 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Gives up every privilege but binding port 53. The process must be alone (no other
/// thread), since capabilities belong to each thread. A server not started as root keeps
/// its user, and only lowers its capabilities; without `CAP_SETPCAP` its bounding set
/// stays as it is, which `no_new_privs` keeps from mattering.
pub fn give_up() -> io::Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!("{threads} threads run: privileges are given up before any starts")));
    }
    let held = capabilities()?;
    if held.effective & (1 << SETPCAP) != 0 {
        drop_bounding_set()?;
    }
    if Uid::effective().is_root() {
        let nobody = (Uid::from_raw(NOBODY), Gid::from_raw(NOBODY));
        setgroups(&[])?;
        setresgid(nobody.1, nobody.1, nobody.1)?;
        // Without this, the capabilities go with root's user id.
        nix::sys::prctl::set_keepcaps(true)?;
        setresuid(nobody.0, nobody.0, nobody.0)?;
        nix::sys::prctl::set_keepcaps(false)?;
    }
    let kept = held.permitted & (1 << NET_BIND_SERVICE);
    set_capabilities(Sets { effective: kept, permitted: kept, inheritable: 0 })?;
    // SAFETY: prctl with these integer arguments reads and writes no memory of this process.
    if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    nix::sys::prctl::set_dumpable(false)?;
    nix::sys::prctl::set_no_new_privs()?;
    Ok(())
}

/// Removes every capability but binding port 53 from the bounding set, which bounds what
/// any program this process ran could gain.
fn drop_bounding_set() -> io::Result<()> {
    // Capabilities are numbered from 0 up to the last one this kernel knows, past which
    // the kernel says EINVAL.
    for capability in 0..64 {
        if capability == NET_BIND_SERVICE {
            continue;
        }
        // SAFETY: prctl with these integer arguments reads and writes no memory of this
        // process.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(capability), 0, 0, 0) } != 0 {
            match Errno::last() {
                Errno::EINVAL => break,
                errno => return Err(errno.into()),
            }
        }
    }
    Ok(())
}

/// Capability sets as `capget` and `capset` take them: each set in two of these, the
/// first for capabilities 0 to 31 (where both used here lie), the second for the rest.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct Sets {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

/// This thread's capabilities 0 to 31.
fn capabilities() -> io::Result<Sets> {
    let mut header = Header { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut sets = [Sets::default(); 2];
    // SAFETY: the kernel writes two `Sets` for version 3, which `sets` holds.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, sets.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sets[0])
}

/// Sets this thread's capabilities 0 to 31 to `low`, and every one above to none.
fn set_capabilities(low: Sets) -> io::Result<()> {
    let mut header = Header { version: CAPABILITY_VERSION_3, pid: 0 };
    let sets = [low, Sets::default()];
    // SAFETY: the kernel reads two `Sets` for version 3, which `sets` holds.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, sets.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
