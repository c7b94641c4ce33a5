//! The files a stack keeps on a host beside its kernel objects, and their removal once
//! destroy has removed those objects: its containers' hosts and `resolv.conf` files (under
//! `/etc/netns`), its zone on the host's name server, its apply record and its lock (under
//! `/run/stackctl/HOST`), and, when no stack is left on the host, the name server's files
//! and the host's directory.

use std::io;
use std::path::Path;

use super::error::KernelError;
use super::lock::ApplyLock;
use super::{Kernel, partial, write_record};
use crate::state::{KernelState, Scope};

impl Kernel {
    /// Removes every file the stack keeps on the host, the lock's last (`lock` is the
    /// stack's, held): called once destroy has left none of the stack's objects. The name
    /// files of every container of the stack go, also of those whose namespace was gone
    /// before destroy, which destroy could not see; another tool's files in their
    /// directories stay, and so do those directories.
    pub fn remove_files(&self, scope: &Scope, lock: ApplyLock) -> Result<(), KernelError> {
        let object = |what: &str| format!("{what} of stack `{}`", scope.stack);
        self.remove_name_directories(scope)
            .map_err(|error| KernelError::new("remove", object("the name files"), error))?;
        self.names()
            .withdraw(&scope.stack)
            .map_err(|error| KernelError::new("withdraw", object("the names"), error))?;
        write_record(&self.places, &self.host_namespace, &scope.stack, &KernelState::default())
            .map_err(|error| KernelError::new("remove", object("the apply record"), error))?;
        lock.remove().map_err(|error| KernelError::new("remove", object("the lock"), error))?;
        // The host's directory, and stackctl's, once nothing is left in them.
        let host = self.places.state.join(self.host_namespace.tag());
        for directory in [host.as_path(), self.places.state.as_path()] {
            remove_empty_directory(directory)
                .map_err(|error| KernelError::new("remove", directory.display().to_string(), error))?;
        }
        Ok(())
    }

    /// The hosts and `resolv.conf` files in every directory under `/etc/netns` named for a
    /// container of the stack on this host, and each directory left empty.
    fn remove_name_directories(&self, scope: &Scope) -> io::Result<()> {
        let prefix = scope.namespace_prefix();
        let entries = match std::fs::read_dir(&self.places.etc_netns) {
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
