//! The process's own limits, raised to what the work needs: `check`'s probes and an
//! apply's namespaces hold thousands of files at once, more than the usual soft limit of
//! 1024 (and a large stack more than many hard limits).

use std::io;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// How many open files the work wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFiles {
    /// At least this many: an apply's namespaces.
    AtLeast(u64),
    /// As many as the hard limit allows: `check`'s probes go faster with more at once.
    AllAllowed,
}

/// Raises the soft limit on open files to what is wanted, as any process may up to the
/// hard limit; when the hard limit is short of it, raises both, which a process with
/// `CAP_SYS_RESOURCE` may (up to `fs.nr_open`). Returns the limits now, soft and hard,
/// raised as far as allowed.
pub fn raise_open_files(wanted: OpenFiles) -> io::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let wanted = match wanted {
        OpenFiles::AtLeast(wanted) => wanted,
        OpenFiles::AllAllowed => hard,
    };
    if soft >= wanted {
        return Ok((soft, hard));
    }
    if setrlimit(Resource::RLIMIT_NOFILE, wanted, hard.max(wanted)).is_ok() {
        return Ok((wanted, hard.max(wanted)));
    }
    // Without CAP_SYS_RESOURCE: as far as the hard limit.
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok((hard, hard))
}
