//! The apply lock: two applies (or destroys) of one stack on one host never run at once.
//!
//! The lock is an exclusive `flock` on a file, and the last destroy of a stack removes that
//! file, which others may be waiting on. So a lock is held only on the file its path
//! names: whoever takes the lock on a file checks, once it holds it, that the path still
//! names that file (same device and inode), and otherwise lets it go and starts again with
//! whatever the path names now. A waiter that opened the file before it was removed then
//! never runs beside one that opened the file made after: the remover unlinks the file
//! while it holds the lock, so by the time the old file is free, its path no longer names it.
//!
//! Only root takes the lock: the file is root's, readable by root only (0600), in a
//! directory only root enters (0700), opened without following a symbolic link, and
//! refused when another user owns it. Whoever could open it could hold it, and stop
//! every apply. Who holds it is read from the kernel's table of locks (`/proc/locks`), not
//! from the file, which a holder that ended would leave naming a pid long gone.

use std::fs::{File, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::writing::{Access, Holder as DirectoryHolder, directory, lock_file};

/// Held until dropped; the kernel releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
    path: PathBuf,
}

/// The process that holds a lock, as the kernel's table of locks names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`), when it can be read.
    pub command: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.command {
            Some(command) => write!(f, "pid {} ({command})", self.pid),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

#[derive(Debug, Error)]
pub enum LockError {
    #[error("another process still holds the lock {} after {waited:?}{}", path.display(), held_by(holder))]
    Timeout { path: PathBuf, waited: Duration, holder: Option<LockHolder> },
    #[error("cannot take the lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn held_by(holder: &Option<LockHolder>) -> String {
    holder.as_ref().map(|holder| format!(" (held by {holder})")).unwrap_or_default()
}

impl ApplyLock {
    /// Takes the lock at `path`, waiting up to `timeout`; `waiting` is called once, with
    /// the holder, if the lock is busy.
    pub fn acquire(
        path: &Path,
        timeout: Duration,
        waiting: impl FnOnce(Option<&LockHolder>),
    ) -> Result<ApplyLock, LockError> {
        let io_error = |source| LockError::Io { path: path.to_owned(), source };
        let start = Instant::now();
        let mut waiting = Some(waiting);
        let mut file = open(path).map_err(io_error)?;
        loop {
            match file.try_lock() {
                Ok(()) if names(path, &file).map_err(io_error)? => break,
                // The file was removed (or replaced) before the lock was ours: its path
                // names another file now, whose lock is the one to take.
                Ok(()) => file = open(path).map_err(io_error)?,
                Err(TryLockError::WouldBlock) => {
                    let holder = holder(&file);
                    if let Some(waiting) = waiting.take() {
                        waiting(holder.as_ref());
                    }
                    if start.elapsed() >= timeout {
                        return Err(LockError::Timeout { path: path.to_owned(), waited: timeout, holder });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::Error(error)) => return Err(io_error(error)),
            }
        }
        Ok(ApplyLock { _file: file, path: path.to_owned() })
    }

    /// Removes the lock's file, then lets the lock go. Whoever waits on the removed file
    /// takes the lock on a new one (see the module's comment); one that already opened a
    /// new file may take it at once, so this is the last thing the holder does.
    pub fn remove(self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

/// Opens (or creates) the file at `path`, and its directory first: the last destroy on a
/// host removes both.
fn open(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        directory(parent, Access::RootOnly, DirectoryHolder::Stackctl)?;
    }
    lock_file(path, Access::RootOnly)
}

/// Whether `path` still names `file`.
fn names(path: &Path, file: &File) -> io::Result<bool> {
    let held = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// The process that holds the `flock` on `file`, from the kernel's table of locks.
fn holder(file: &File) -> Option<LockHolder> {
    let metadata = file.metadata().ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let device = (nix::sys::stat::major(metadata.dev()), nix::sys::stat::minor(metadata.dev()));
    let pid = flock_holder(&locks, device, metadata.ino())?;
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|command| command.trim().to_owned());
    Some(LockHolder { pid, command })
}

/// The pid that holds a `flock` on the file (`device` as major and minor, and `inode`),
/// from the text of `/proc/locks`: lines such as `3: FLOCK  ADVISORY  WRITE 4242 00:1a:1234
/// 0 EOF`, where the device is in hexadecimal; a line of a process that waits for the
/// lock has `->` after its number. A pid of 0 is one outside this `/proc`'s pid namespace.
fn flock_holder(locks: &str, device: (u64, u64), inode: u64) -> Option<u32> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "FLOCK", _, _, pid, file, ..] = fields.as_slice() else { return None };
        let mut parts = file.split(':');
        let major = u64::from_str_radix(parts.next()?, 16).ok()?;
        let minor = u64::from_str_radix(parts.next()?, 16).ok()?;
        let held = parts.next()?.parse::<u64>().ok()?;
        let pid = pid.parse::<u32>().ok().filter(|pid| *pid != 0)?;
        ((major, minor) == device && held == inode).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_holder_is_the_process_the_table_of_locks_names_for_the_file() {
        let locks = "1: POSIX  ADVISORY  WRITE 10 00:1a:99 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 00:2b:1234 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 4343 00:2b:1234 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 77 00:2b:12345 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 88 fd:01:1234 0 EOF\n";
        assert_eq!(flock_holder(locks, (0, 0x2b), 1234), Some(4242));
        assert_eq!(flock_holder(locks, (0, 0x2b), 12345), Some(77));
        assert_eq!(flock_holder(locks, (0xfd, 1), 1234), Some(88));
        assert_eq!(flock_holder(locks, (0, 0x1a), 99), None, "a POSIX lock is no flock");
        assert_eq!(flock_holder(locks, (0, 0x2b), 1), None);
    }

    /// The real holder is named, whatever its lock file holds.
    #[test]
    fn a_busy_lock_names_the_process_that_holds_it() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("host").join("shop.lock");
        let held = ApplyLock::acquire(&path, Duration::from_secs(1), |_| {}).expect("take it");
        std::fs::write(&path, "999999").expect("a stale pid in the file");
        let mut told = None;
        let error = ApplyLock::acquire(&path, Duration::from_millis(100), |holder| told = holder.cloned())
            .expect_err("the lock is held");
        let LockError::Timeout { holder, .. } = &error else { panic!("{error}") };
        let pid = std::process::id();
        assert_eq!(holder.as_ref().map(|holder| holder.pid), Some(pid));
        assert_eq!(told.map(|holder| holder.pid), Some(pid));
        assert!(error.to_string().contains(&format!("(held by pid {pid} (")), "{error}");
        drop(held);
    }

    /// Two waiters, one on the file the holder removes and one on the file made after it,
    /// never hold the lock at once.
    #[test]
    fn waiters_on_a_removed_lock_file_and_on_its_successor_never_hold_it_together() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = Arc::new(directory.path().join("host").join("shop.lock"));
        let holders = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let waiter = |name: &'static str| {
            let (path, holders, most) = (Arc::clone(&path), Arc::clone(&holders), Arc::clone(&most));
            std::thread::spawn(move || {
                let lock = ApplyLock::acquire(&path, Duration::from_secs(10), |_| {}).expect(name);
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
                holders.fetch_sub(1, Ordering::SeqCst);
                drop(lock);
            })
        };
        let holder = ApplyLock::acquire(&path, Duration::from_secs(1), |_| {}).expect("the first takes it");
        // The first waiter opens the file that is about to be removed, and waits on it.
        let first = waiter("the waiter on the removed file");
        std::thread::sleep(Duration::from_millis(200));
        holder.remove().expect("remove the lock file");
        // The second opens the file made after the removal.
        let second = waiter("the waiter on the new file");
        first.join().expect("first waiter");
        second.join().expect("second waiter");
        assert_eq!(most.load(Ordering::SeqCst), 1, "both waiters held the lock at once");
        assert!(path.exists(), "the lock file of the last holder stays");
    }
}
