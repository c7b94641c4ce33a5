//! The kernel's part of a swap: what the containers taking an alias listen on, whether
//! they accept connections once wired, and how many connections the containers it leaves
//! still have. What to check, and what the answers mean, comes from [`crate::plan::Swap`].
//!
//! From the repoint on, new connections through an alias follow its new rule, but a
//! connection whose first packet the old rule sent to an old backend stays there: conntrack
//! keeps the choice, also for that first packet's retransmissions. A SYN the old backend
//! dropped (a full accept queue, a container that stopped accepting) would be sent again,
//! 1 s, 3 s, 7 s later, to the old backend still, and fail once the swap removes it. So,
//! at the repoint and at every count of the drain, the conntrack entries through the
//! aliases to old backends that have had no reply are deleted: each retry then starts a
//! new connection, which the new rule sends to a new backend. An answer to one of those
//! SYNs that was already on its way finds no entry and is refused by the host, and the
//! client sends its SYN again a second later, to the new backend.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::conntrack::{Entry, Table};
use super::{Kernel, KernelError, SwapWait, netns, sockets};
use crate::model::Protocol;
use crate::plan::{Leaving, Listening, Readiness, Swap};
use crate::state::NamespaceName;

/// How long a wired container gets to accept a verifying connection: its link has just
/// come up, and the host resolves its neighbour entry on the first packet.
const VERIFY_WITHIN: Duration = Duration::from_secs(5);
/// How often the connections of draining containers are counted.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// How long after the repoint the first count waits: a first packet that the old rule sent
/// on just before the repoint may still be on its way to the old container, with neither
/// a socket there nor, until the host passed it on, a conntrack entry.
const DRAIN_SETTLE: Duration = Duration::from_millis(250);

/// How a container that an alias left drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    pub container: String,
    /// Connections still established when the drain ended: 0 unless it timed out.
    pub remaining: usize,
    pub waited: Duration,
}

impl Kernel {
    /// What each container that takes an alias listens on, read before any change.
    pub fn listening(&self, swap: &Swap) -> Result<BTreeMap<String, Listening>, KernelError> {
        let mut listening = BTreeMap::new();
        for readiness in &swap.verify {
            if listening.contains_key(&readiness.container) {
                continue;
            }
            let object = format!("the sockets of container `{}`", readiness.container);
            let found = match self.sockets_in(&readiness.namespace) {
                Ok(sockets) => Listening::On(
                    sockets.iter().filter(|socket| socket.is_listening()).map(|s| (s.address, s.port)).collect(),
                ),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Listening::NoNamespace,
                Err(error) => return Err(KernelError::new("read", object, error)),
            };
            listening.insert(readiness.container.clone(), found);
        }
        Ok(listening)
    }

    /// Connects from the host to every port the swap verifies, now that the containers are
    /// wired, retrying until `wait` runs out; the first port that does not accept by then
    /// fails. `wait.waiting` hears of each port that did not accept at the first try, and
    /// how long it is waited for.
    pub(super) fn verify(&self, ports: &[Readiness], wait: &SwapWait) -> Result<(), KernelError> {
        let within = wait.within.unwrap_or(VERIFY_WITHIN).max(VERIFY_WITHIN);
        let deadline = Instant::now() + within;
        for readiness in ports {
            let target = SocketAddr::from((readiness.address, readiness.port));
            let object = format!(
                "that container `{}` accepts tcp/{} at {} before the alias moves to it",
                readiness.container, readiness.port, readiness.address
            );
            let mut told = false;
            let connected = netns::inside(self.host_file.as_ref(), || {
                loop {
                    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
                    match TcpStream::connect_timeout(&target, left.min(Duration::from_secs(1))) {
                        Ok(_) => return Ok(()),
                        Err(error) if Instant::now() >= deadline => return Err(error),
                        Err(_) => {
                            if !std::mem::replace(&mut told, true) {
                                (wait.waiting)(readiness, within);
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            });
            connected.map_err(|error| KernelError::new("verify", object, error))?;
        }
        Ok(())
    }

    /// Waits until the containers the aliases left have no connection in use that what
    /// follows would cut (see [`Kernel::in_use`]), or the swap's timeout has passed.
    /// Deletes, as it goes, the unanswered connections through the aliases to old
    /// backends (see the module's documentation).
    pub(super) fn drain(&self, swap: &Swap) -> Result<Vec<Drained>, KernelError> {
        let started = Instant::now();
        let timeout = Duration::from_millis(swap.timeout.0);
        let table_object = "the conntrack table of the host";
        let mut table = netns::inside(self.host_file.as_ref(), Table::open)
            .map_err(|error| KernelError::new("open", table_object, error))?;
        forget_unanswered(&mut table, swap).map_err(|error| KernelError::new("read", table_object, error))?;
        std::thread::sleep(DRAIN_SETTLE.min(timeout));
        let mut drained = Vec::new();
        for leaving in &swap.drain {
            // A container counts as drained when two counts in a row find nothing in use,
            // so that a connection between its handshake's packets is not missed.
            let mut idle = 0;
            let remaining = loop {
                let entries = forget_unanswered(&mut table, swap)
                    .map_err(|error| KernelError::new("read", table_object, error))?;
                let open = self.in_use(swap, leaving, &entries)?;
                idle = if open == 0 { idle + 1 } else { 0 };
                if idle == 2 || started.elapsed() >= timeout {
                    break open;
                }
                std::thread::sleep(DRAIN_POLL);
            };
            drained.push(Drained { container: leaving.container.clone(), remaining, waited: started.elapsed() });
        }
        Ok(drained)
    }

    /// The connections of a container an alias leaves that what follows would cut: its
    /// sockets on the addresses it loses, and, where it keeps its address, its
    /// connections through the aliases that a flow the removal deletes carries.
    fn in_use(&self, swap: &Swap, leaving: &Leaving, entries: &[Entry]) -> Result<usize, KernelError> {
        let mut open = 0;
        if !leaving.addresses.is_empty() {
            open += match self.sockets_in(&leaving.namespace) {
                Ok(sockets) => sockets
                    .iter()
                    .filter(|socket| socket.is_in_use())
                    .filter(|socket| leaving.addresses.iter().any(|address| socket.address == *address))
                    .count(),
                // A container that is gone has nothing left to drain.
                Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
                Err(error) => {
                    let object = format!("the connections of container `{}`", leaving.container);
                    return Err(KernelError::new("count", object, error));
                }
            };
        }
        let through: Vec<_> = swap
            .left()
            .filter(|(_, backend)| {
                backend.container == leaving.container && !leaving.addresses.contains(&backend.address)
            })
            .collect();
        open += entries
            .iter()
            .filter(|entry| entry.is_in_use())
            .filter(|entry| {
                through.iter().any(|(address, backend)| {
                    entry.is_through(*address, backend.address)
                        && leaving.flows.iter().any(|flow| {
                            flow.to == backend.address
                                && flow.from == *entry.original.source.ip()
                                && flow.carries(Protocol::Tcp, entry.original.destination.port())
                        })
                })
            })
            .count();
        Ok(open)
    }

    fn sockets_in(&self, namespace: &NamespaceName) -> io::Result<Vec<sockets::Socket>> {
        let file = netns::open(&self.places.namespace(namespace))?;
        netns::inside(Some(&file), sockets::read_tcp)
    }
}

/// Deletes the conntrack entries through the swap's aliases to the backends they left that
/// have had no reply; returns the entries that remain.
fn forget_unanswered(table: &mut Table, swap: &Swap) -> io::Result<Vec<Entry>> {
    let mut remaining = Vec::new();
    for entry in table.list()? {
        let unanswered =
            entry.is_unreplied() && swap.left().any(|(address, backend)| entry.is_through(address, backend.address));
        if unanswered {
            table.delete(&entry)?;
        } else {
            remaining.push(entry);
        }
    }
    Ok(remaining)
}
