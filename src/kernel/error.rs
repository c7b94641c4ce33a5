//! Errors of the kernel adapters: which operation, on which object, and what the kernel said.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
#[error("{operation} {object}: {source}")]
pub struct KernelError {
    /// What was being done: `create bridge`, `read namespace`, ...
    pub operation: String,
    /// The object, named as the plan names it, with its kernel name.
    pub object: String,
    #[source]
    pub source: io::Error,
}

impl KernelError {
    pub fn new(operation: impl Into<String>, object: impl Into<String>, source: impl Into<io::Error>) -> Self {
        KernelError { operation: operation.into(), object: object.into(), source: source.into() }
    }

    /// Whether the kernel refused for lack of privilege.
    pub fn is_permission(&self) -> bool {
        self.source.kind() == io::ErrorKind::PermissionDenied
    }

    /// Whether the kernel was only busy (or interrupted, or short of buffers for a
    /// moment): the same operation may succeed later.
    pub fn is_transient(&self) -> bool {
        use nix::errno::Errno;
        self.source.raw_os_error().is_some_and(|code| {
            [Errno::EAGAIN, Errno::EBUSY, Errno::EINTR, Errno::ETIMEDOUT, Errno::ENOBUFS]
                .contains(&Errno::from_raw(code))
        })
    }
}

/// The kernel's errno behind an rtnetlink error, as an I/O error.
pub fn io_error(error: rtnetlink::Error) -> io::Error {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// Whether an error says the object is already gone, which a deletion takes as done.
pub fn is_absent(error: &io::Error) -> bool {
    use nix::errno::Errno;
    error.raw_os_error().is_some_and(|code| {
        [Errno::ENODEV, Errno::ENOENT, Errno::ESRCH, Errno::EADDRNOTAVAIL].contains(&Errno::from_raw(code))
    })
}
