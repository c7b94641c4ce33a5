//! The host's name server: one process per host namespace, like Podman's aardvark-dns,
//! serving every stack's names on the gateways of their networks. What it answers, and how
//! it shares its connections and forwards among clients, is decided by the core
//! ([`crate::names`]); this is the shell around it: the process and its sockets
//! ([`server`], [`listen`]), the work that holds the shared slots ([`slotted`]), the
//! privileges it gives up ([`privileges`]), the host's own name servers it forwards to
//! ([`upstream`]), its control socket ([`control`]), how apply finds the servers that run
//! for a host ([`running`]), and how it starts, reloads, replaces and stops them
//! ([`supervise`]).
//!
//! Everything it uses lives in one directory per host, under stackctl's state directory,
//! which only root may enter: a zone file per stack (read by apply, which sends the zones
//! to the server), the control socket, the pid file (locked while the server runs) and
//! the server's log.

mod control;
mod listen;
mod privileges;
mod running;
mod server;
mod slotted;
mod supervise;
mod upstream;

pub use server::serve;
pub use supervise::Supervisor;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::{HostNamespace, Places};

/// The port the server answers on.
const PORT: u16 = 53;

/// The files of one host's name server.
#[derive(Debug, Clone)]
pub struct Files {
    pub directory: PathBuf,
}

impl Files {
    /// The files of the name server of `host`.
    pub fn of(places: &Places, host: &HostNamespace) -> Files {
        Files { directory: places.state.join(host.tag()).join("names") }
    }

    /// The zone file of a stack.
    pub fn zone(&self, stack: &str) -> PathBuf {
        self.directory.join(format!("{stack}{ZONE_SUFFIX}"))
    }

    /// The stack whose zone a file in the directory is, if it is a zone file.
    fn stack_of(file_name: &str) -> Option<&str> {
        file_name.strip_suffix(ZONE_SUFFIX).filter(|stack| !stack.is_empty() && !stack.starts_with('.'))
    }

    pub fn control(&self) -> PathBuf {
        self.directory.join("control.sock")
    }

    pub fn pid(&self) -> PathBuf {
        self.directory.join("resolver.pid")
    }

    pub fn log(&self) -> PathBuf {
        self.directory.join("resolver.log")
    }

    /// Held while a zone is published or withdrawn, so that two applies never start two
    /// servers or reload one at once.
    fn supervision_lock(&self) -> PathBuf {
        self.directory.join("supervise.lock")
    }

    /// The text of every stack's zone file, by stack. A file that is not UTF-8 is no zone
    /// that stackctl wrote: it is left out, so its stack's names show as to make until its
    /// next apply writes the file again.
    fn zones(&self) -> io::Result<BTreeMap<String, String>> {
        let mut zones = BTreeMap::new();
        for stack in self.stacks()? {
            if let Ok(text) = String::from_utf8(std::fs::read(self.zone(&stack))?) {
                zones.insert(stack, text);
            }
        }
        Ok(zones)
    }

    /// The stacks that have a zone file, in name order.
    fn stacks(&self) -> io::Result<Vec<String>> {
        let mut stacks = Vec::new();
        for entry in std::fs::read_dir(&self.directory)? {
            let entry = entry?;
            if let Some(stack) = Self::stack_of(&entry.file_name().to_string_lossy()) {
                stacks.push(stack.to_owned());
            }
        }
        stacks.sort();
        Ok(stacks)
    }
}

const ZONE_SUFFIX: &str = ".zone.json";

/// What a server and the stackctl that talks to it must agree on: a server of another
/// version is replaced.
pub fn version() -> String {
    format!(
        "{}+zone{}+control{}",
        env!("CARGO_PKG_VERSION"),
        crate::names::ZONE_FORMAT_VERSION,
        control::PROTOCOL_VERSION
    )
}
