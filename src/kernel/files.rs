//! The files a stack keeps on a host beside its kernel objects, and their removal once
//! destroy has removed those objects: its containers' hosts and `resolv.conf` files (under
//! `/etc/netns`), its zone on the host's name server, its apply record and its lock (under
//! `/run/stackctl/HOST`), and, when no stack is left on the host, the name server's files,
//! the lock that applies take to pick subnets, and the host's directory.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::KernelError;
use super::lock::{ApplyLock, LockError};
use super::resolver::{Files, Supervisor};
use super::writing::partial;
use super::{Places, record, write_record};
use crate::state::{KernelState, Scope};

/// Removes every file the stack keeps on its host, the lock's last (`lock` is the stack's,
/// held): called once destroy has left none of the stack's objects. The name files of
/// every container of the stack go, also of those whose namespace was gone before
/// destroy, which destroy could not see; another tool's files in their directories stay,
/// and so do those directories. Nothing of it is in the host's namespace: it needs none.
pub fn remove_files(places: &Places, scope: &Scope, lock: ApplyLock) -> Result<(), KernelError> {
    let object = |what: &str| format!("{what} of stack `{}`", scope.stack);
    remove_name_directories(places, scope)
        .map_err(|error| KernelError::new("remove", object("the name files"), error))?;
    Supervisor::new(places, &scope.host)
        .withdraw(&scope.stack)
        .map_err(|error| KernelError::new("withdraw", object("the names"), error))?;
    write_record(places, &scope.host, &scope.stack, &KernelState::default())
        .map_err(|error| KernelError::new("remove", object("the apply record"), error))?;
    lock.remove().map_err(|error| KernelError::new("remove", object("the lock"), error))?;
    let host = places.state.join(scope.host.tag());
    remove_subnets_lock(places, scope, &host)
        .map_err(|error| KernelError::new("remove", format!("the subnets lock of {}", host.display()), error))?;
    // The host's directory, and stackctl's, once nothing is left in them.
    for directory in [host.as_path(), places.state.as_path()] {
        remove_empty_directory(directory)
            .map_err(|error| KernelError::new("remove", directory.display().to_string(), error))?;
    }
    Ok(())
}

/// The lock that applies take to pick subnets on the host, once no stack has anything left
/// in the host's directory, and no apply holds it (one that waits for it opens the path
/// again once it has the lock of a file that is gone).
fn remove_subnets_lock(places: &Places, scope: &Scope, host: &Path) -> io::Result<()> {
    let path = places.subnets_lock(&scope.host);
    let others = match std::fs::read_dir(host) {
        Ok(entries) => entries.flatten().any(|entry| entry.path() != path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if others || path.symlink_metadata().is_err() {
        return Ok(());
    }
    match ApplyLock::acquire(&path, Duration::ZERO, |_| {}) {
        Ok(lock) => lock.remove(),
        // Held: an apply is about to make a stack's networks on this host.
        Err(LockError::Timeout { .. }) => Ok(()),
        Err(error) => Err(io::Error::other(error)),
    }
}

/// What the stack has for its host outside the host's namespace, by path, in this order:
/// its namespaces under `/run/netns`, its directories of name files under `/etc/netns`, and its lock,
/// apply record and zone under stackctl's run directory. A scratch host deleted by hand
/// (`ip netns delete`) leaves them all behind.
pub fn left_for_host(places: &Places, scope: &Scope) -> Result<Vec<PathBuf>, KernelError> {
    let prefix = scope.namespace_prefix();
    let mut left = Vec::new();
    for directory in [&places.netns, &places.etc_netns] {
        let entries = match std::fs::read_dir(directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(KernelError::new("list", directory.display().to_string(), error)),
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
            .map(|entry| entry.path())
            .collect();
        found.sort();
        left.extend(found);
    }
    let kept = [
        places.lock(&scope.host, &scope.stack),
        record::path(places, &scope.host, &scope.stack),
        Files::of(places, &scope.host).zone(&scope.stack),
    ];
    left.extend(kept.into_iter().filter(|path| path.symlink_metadata().is_ok()));
    Ok(left)
}

/// The hosts and `resolv.conf` files in every directory under `/etc/netns` named for a
/// container of the stack on this host, and each directory left empty.
fn remove_name_directories(places: &Places, scope: &Scope) -> io::Result<()> {
    let prefix = scope.namespace_prefix();
    let entries = match std::fs::read_dir(&places.etc_netns) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(&prefix) || !entry.file_type()?.is_dir() {
            continue;
        }
        let directory = entry.path();
        for name in ["hosts", "resolv.conf"] {
            let file = directory.join(name);
            remove_file(&file)?;
            remove_file(&partial(&file))?;
        }
        remove_empty_directory(&directory)?;
    }
    Ok(())
}

/// Removes a file; one that is not there is fine.
pub(super) fn remove_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Removes a directory when it is empty; one that is not, or not there, is left as it is.
pub(super) fn remove_empty_directory(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir(path) {
        Err(error) if !matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty) => Err(error),
        _ => Ok(()),
    }
}
