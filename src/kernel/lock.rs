//! The apply lock: two applies (or destroys) of one stack on one host never run at once.
//!
//! The lock is an exclusive `flock` on a file, and the last destroy of a stack removes that
//! file, which others may be waiting on. So a lock is held only on the file its path
//! names: whoever takes the lock on a file checks, once it holds it, that the path still
//! names that file (same device and inode), and otherwise lets it go and starts again with
//! whatever the path names now. A waiter that opened the file before it was removed then
//! never runs beside one that opened the file made after: the remover unlinks the file
//! while it holds the lock, so by the time the old file is free, its path no longer names it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Held until dropped; the kernel releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, Error)]
pub enum LockError {
    #[error("another apply of this stack still holds the lock {} after {waited:?}{}", path.display(), holder(*pid))]
    Timeout { path: PathBuf, waited: Duration, pid: Option<u32> },
    #[error("cannot take the lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn holder(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (held by pid {pid})")).unwrap_or_default()
}

impl ApplyLock {
    /// Takes the lock at `path`, waiting up to `timeout`; `waiting` is called once, with
    /// the holder's pid, if the lock is busy.
    pub fn acquire(path: &Path, timeout: Duration, waiting: impl FnOnce(Option<u32>)) -> Result<ApplyLock, LockError> {
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
                    let pid = holder_pid(&mut file);
                    if let Some(waiting) = waiting.take() {
                        waiting(pid);
                    }
                    if start.elapsed() >= timeout {
                        return Err(LockError::Timeout { path: path.to_owned(), waited: timeout, pid });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::Error(error)) => return Err(io_error(error)),
            }
        }
        // The holder's pid, for the message of whoever waits next.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(io_error)?;
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

/// Opens (or creates, readable by root only, never through a symbolic link) the file at
/// `path`, and its directory first: the last destroy on a host removes both.
fn open(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
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

fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
