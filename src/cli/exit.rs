//! Exit codes, a contract with scripts and pipelines.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// An error other than the ones below.
    Error = 1,
    /// There are changes (only with `--detailed-exitcode`).
    Changes = 2,
    /// The command line is wrong (clap's own default of 2 is remapped: 2 means changes).
    Usage = 64,
    /// The stack file is invalid, or a saved plan was tampered with: it holds what its stack
    /// file does not give.
    InvalidInput = 65,
    /// A saved plan is stale: its stack file, the stack's objects or the host changed since
    /// it was made (sysexits' "temporary failure": planning again gives a good one).
    StalePlan = 75,
    /// The live kernel needs root (or `CAP_NET_ADMIN` and `CAP_SYS_ADMIN`).
    NoPrivilege = 77,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
