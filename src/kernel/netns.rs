//! Network namespaces: creating and deleting named ones, and opening rtnetlink connections
//! inside them.
//!
//! A netlink socket talks to the namespace of the thread that opened it, and namespace
//! membership belongs to a thread. So every socket for another namespace is opened on a
//! dedicated std thread that joins the namespace first; tokio's own threads never change
//! namespace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs, statfs};
use rtnetlink::{Handle, LinkUnspec};
use tokio::runtime::Handle as Runtime;

use super::error::io_error;
use super::writing::{Access, Holder, directory, new_file};
use crate::plan::{AdoptedPath, FileKind, NamespaceId};
use crate::state::NamespaceConf;

/// Opens an rtnetlink connection in the current thread's namespace, driven by `runtime`.
pub fn connect_here(runtime: &Runtime) -> io::Result<Handle> {
    let _entered = runtime.enter();
    let (connection, handle, _) = rtnetlink::new_connection_with_strict_check()?;
    runtime.spawn(connection);
    Ok(handle)
}

/// What is at a path, as a namespace.
enum Found {
    Network(File),
    /// A namespace of another type: `/proc/PID/ns/uts`, or a bind mount of one. Joining it
    /// as a network namespace fails with nothing but "Invalid argument".
    OtherNamespace,
    /// No namespace at all, such as the empty file left by a creation that was interrupted
    /// before its bind mount.
    File(FileKind),
}

/// What is at `path`, found without blocking and without opening anything but a namespace.
///
/// A path may lead anywhere: opening a FIFO blocks until a writer comes, and opening a
/// device may act on it. So the file system is asked first (`statfs` opens nothing), only
/// a file of the kernel's namespace file system is opened, and then without blocking;
/// the type of namespace comes from the open descriptor, which is what is used after.
fn inspect(path: &Path) -> io::Result<Found> {
    if statfs(path)?.filesystem_type() != NSFS_MAGIC {
        return Ok(Found::File(file_kind(&std::fs::metadata(path)?)));
    }
    let file = OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC).open(path)?;
    // The path may have changed since `statfs`: the descriptor decides.
    if !fstatfs(&file).is_ok_and(|stat| stat.filesystem_type() == NSFS_MAGIC) {
        return Ok(Found::File(file_kind(&file.metadata()?)));
    }
    // SAFETY: NS_GET_NSTYPE takes no argument; it only reads the type of the namespace
    // that the open descriptor refers to, and returns it.
    let nstype = unsafe { nix::libc::ioctl(file.as_raw_fd(), nix::libc::NS_GET_NSTYPE) };
    Ok(if nstype == nix::libc::CLONE_NEWNET { Found::Network(file) } else { Found::OtherNamespace })
}

fn file_kind(metadata: &std::fs::Metadata) -> FileKind {
    let kind = metadata.file_type();
    if kind.is_file() {
        if metadata.len() == 0 { FileKind::EmptyFile } else { FileKind::RegularFile }
    } else if kind.is_dir() {
        FileKind::Directory
    } else if kind.is_fifo() {
        FileKind::Fifo
    } else if kind.is_socket() {
        FileKind::Socket
    } else if kind.is_block_device() || kind.is_char_device() {
        FileKind::Device
    } else {
        FileKind::Other
    }
}

fn not_a_network_namespace() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a network namespace")
}

/// Opens the network namespace at `path`, failing when it is not one; never blocks.
pub fn open(path: &Path) -> io::Result<File> {
    match inspect(path)? {
        Found::Network(file) => Ok(file),
        Found::OtherNamespace | Found::File(_) => Err(not_a_network_namespace()),
    }
}

/// Opens the named namespace at `path` that plays the host; `None` when there is none yet:
/// nothing at `path`, or the empty file of an interrupted [`create`], which creating the
/// host reuses.
pub fn open_host(path: &Path) -> io::Result<Option<File>> {
    match inspect(path) {
        Ok(Found::Network(file)) => Ok(Some(file)),
        Ok(Found::File(FileKind::EmptyFile)) => Ok(None),
        Ok(Found::OtherNamespace | Found::File(_)) => Err(not_a_network_namespace()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// What is at `path`, and the namespace, open, when it is a network namespace.
pub fn look(path: &Path) -> (AdoptedPath, Option<File>) {
    match inspect(path) {
        Ok(Found::Network(file)) => match identity(&file) {
            Ok(id) => (AdoptedPath::Namespace(id), Some(file)),
            Err(error) => (AdoptedPath::Unreadable(error.to_string()), None),
        },
        Ok(Found::OtherNamespace) => (AdoptedPath::OtherNamespace, None),
        Ok(Found::File(kind)) => (AdoptedPath::NotANamespace(kind), None),
        Err(error) if error.kind() == io::ErrorKind::NotFound => (AdoptedPath::Missing, None),
        Err(error) => (AdoptedPath::Unreadable(error.to_string()), None),
    }
}

/// What names the namespace `file` is, whatever path led to it.
pub fn identity(file: &File) -> io::Result<NamespaceId> {
    let metadata = file.metadata()?;
    Ok(NamespaceId { device: metadata.dev(), inode: metadata.ino() })
}

/// Opens one rtnetlink connection in each of `namespaces`, in order, from one thread that
/// moves from namespace to namespace.
pub fn connect_all(namespaces: Vec<File>, runtime: &Runtime) -> Vec<io::Result<Handle>> {
    let runtime = runtime.clone();
    std::thread::spawn(move || {
        namespaces
            .iter()
            .map(|namespace| {
                setns(namespace.as_fd(), CloneFlags::CLONE_NEWNET)?;
                connect_here(&runtime)
            })
            .collect()
    })
    .join()
    .unwrap_or_else(|_| vec![Err(io::Error::other("the namespace thread panicked"))])
}

/// Runs `work` inside `namespace`, on a thread that joins it; with `None`, here (the
/// process's own namespace, which plays the host unless a named one does).
pub fn inside<T: Send>(namespace: Option<&File>, work: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    match namespace {
        None => work(),
        Some(namespace) => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(namespace.as_fd(), CloneFlags::CLONE_NEWNET)?;
                    work()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
        }),
    }
}

/// Runs `work` on a fresh std thread, which may change namespace, and awaits its result.
async fn on_own_thread<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    receiver.await.unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
}

/// Opens a connection inside the namespace `file`.
pub async fn connect(file: File, runtime: &Runtime) -> io::Result<(File, Handle)> {
    let runtime = runtime.clone();
    on_own_thread(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET)?;
        let handle = connect_here(&runtime)?;
        Ok((file, handle))
    })
    .await
}

/// Creates the named namespace at `path` with the settings `conf` (for a container's:
/// IPv6 and IPv4 forwarding off, see [`NamespaceConf::for_a_container`]; IPv6 link-local
/// addresses and their duplicate detection would also cost more than the rest of a
/// container's wiring) and its loopback up, and opens a connection in it. A file left by
/// an interrupted creation is reused.
///
/// Loopback is up before the namespace is mounted at `path`, so that no one ever finds it
/// there without: a namespace that plays the host (`--host-netns`) is no resource of the
/// stack that a later apply would repair, and without loopback its programs cannot reach
/// 127.0.0.1, where ports are published.
pub async fn create(path: &Path, runtime: &Runtime, conf: NamespaceConf) -> io::Result<(File, Handle)> {
    let path: PathBuf = path.to_owned();
    let runtime = runtime.clone();
    on_own_thread(move || {
        if let Some(parent) = path.parent() {
            directory(parent, Access::Everyone, Holder::Shared)?;
            share(parent)?;
        }
        // Only a mount point: what shows at the path once mounted is the namespace's.
        match new_file(&path, Access::RootOnly) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && open(&path).is_err() => {}
            Err(error) => return Err(error),
        }
        unshare(CloneFlags::CLONE_NEWNET)?;
        write_conf(conf)?;
        let handle = connect_here(&runtime)?;
        // The loopback interface is always index 1 in a network namespace.
        let loopback_up = handle.link().set(LinkUnspec::new_with_index(1).up().build()).execute();
        runtime.block_on(loopback_up).map_err(io_error)?;
        mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
        Ok((open(&path)?, handle))
    })
    .await
}

/// Writes `conf` as the settings of the calling thread's network namespace: `/proc/sys/net`
/// is the namespace of whoever opens it.
pub fn write_conf(conf: NamespaceConf) -> io::Result<()> {
    let bit = |on: bool| if on { "1" } else { "0" };
    for scope in ["all", "default"] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{scope}/disable_ipv6"), bit(!conf.ipv6))?;
    }
    std::fs::write("/proc/sys/net/ipv4/ip_forward", bit(conf.forwarding))
}

/// Makes the directory of named namespaces a mount point with shared propagation, as `ip
/// netns add` does: a namespace mounted or unmounted under it is then mounted or unmounted
/// in every copy of it. Otherwise a later `ip netns add`, which makes the directory a mount
/// point of its own, copies the namespaces already mounted there, and deleting one of them
/// fails with `EBUSY`.
fn share(directory: &Path) -> io::Result<()> {
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, directory, None::<&str>, shared, None::<&str>) {
        // Not a mount point yet.
        Err(nix::Error::EINVAL) => {
            mount(Some(directory), directory, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
            Ok(mount(None::<&str>, directory, None::<&str>, shared, None::<&str>)?)
        }
        done => Ok(done?),
    }
}

/// Deletes the named namespace at `path`. The kernel frees it, and the interfaces in it,
/// once no process is left inside.
pub fn delete(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        // Not mounted: the file of an interrupted creation.
        Ok(()) | Err(nix::Error::EINVAL) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(error) => return Err(error.into()),
    }
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}
