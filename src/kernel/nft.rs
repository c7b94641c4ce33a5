//! Running `nft` in the host namespace: listing the stack's tables, and checking or making
//! a script in one transaction. The script comes from the core ([`crate::firewall`]).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sched::{CloneFlags, setns};

/// Where `nft` runs: the process's own namespace, or a named host namespace.
pub struct Nft<'a> {
    pub namespace: Option<&'a File>,
}

impl Nft<'_> {
    fn command(&self) -> Command {
        let mut command = Command::new("nft");
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(namespace) = self.namespace {
            let fd = namespace.as_raw_fd();
            // SAFETY: between fork and exec the child only makes the setns system call,
            // which is async-signal-safe; the descriptor stays open in the parent.
            unsafe {
                command.pre_exec(move || {
                    setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
                });
            }
        }
        command
    }

    /// Runs nft: its standard output when it succeeds, else its error output. The outer
    /// error is one of starting it at all.
    fn run(&self, arguments: &[&str], input: Option<&str>) -> io::Result<Result<String, String>> {
        let mut child = self.command().args(arguments).spawn().map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => io::Error::new(
                io::ErrorKind::NotFound,
                "`nft` is not installed: install the nftables package (apt install nftables)",
            ),
            _ => error,
        })?;
        if let Some(input) = input {
            child.stdin.take().expect("piped stdin").write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let output = child.wait_with_output()?;
        Ok(if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        })
    }

    /// The JSON listing of a table, or `None` when the host has no such table.
    pub fn list(&self, family: &str, table: &str) -> io::Result<Option<String>> {
        match self.run(&["-j", "list", "table", family, table], None)? {
            Ok(listing) => Ok(Some(listing)),
            Err(stderr) if stderr.contains("No such file or directory") => Ok(None),
            Err(stderr) => Err(failure(&stderr)),
        }
    }

    /// The JSON listing of every chain of every table.
    pub fn list_chains(&self) -> io::Result<String> {
        self.run(&["-j", "list", "chains"], None)?.map_err(|stderr| failure(&stderr))
    }

    /// Checks a script against the kernel without changing anything: it fails on a feature
    /// that the kernel or this `nft` lacks.
    pub fn check(&self, script: &str) -> io::Result<()> {
        self.transaction(&["-c", "-f", "-"], script)
    }

    /// Makes a script: one transaction, so the tables change whole or not at all.
    pub fn apply(&self, script: &str) -> io::Result<()> {
        self.transaction(&["-f", "-"], script)
    }

    fn transaction(&self, arguments: &[&str], script: &str) -> io::Result<()> {
        self.run(arguments, Some(script))?.map(drop).map_err(|stderr| failure(&stderr))
    }
}

/// What nft said, on one line per error.
fn failure(stderr: &str) -> io::Error {
    let message: Vec<&str> = stderr.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    io::Error::other(format!("nft: {}", message.join(" / ")))
}
