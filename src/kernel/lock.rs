//! The apply lock: two applies (or destroys) of one stack on one host never run at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Held until dropped; the kernel releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
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
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io_error)?;
        let start = Instant::now();
        let mut waiting = Some(waiting);
        loop {
            match file.try_lock() {
                Ok(()) => break,
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
        Ok(ApplyLock { _file: file })
    }
}

fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
