//! The kernel's part of a swap: what the containers taking an alias listen on, whether
//! they accept connections once wired, and how many connections the containers it leaves
//! still have. What to check, and what the answers mean, comes from [`crate::plan::Swap`].

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{Kernel, KernelError, SwapWait, netns, sockets};
use crate::plan::{Listening, Swap};
use crate::state::NamespaceName;

/// How long a wired container gets to accept a verifying connection: its link has just
/// come up, and the host resolves its neighbour entry on the first packet.
const VERIFY_WITHIN: Duration = Duration::from_secs(5);
/// How often the connections of draining containers are counted.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// How long after the repoint the first count waits. A connection sent to the old
/// container just before the repoint may have no socket there yet: its first packet may
/// still be on its way, or have been dropped (a full accept queue) and be sent again after
/// TCP's initial retransmission timeout of 1 s, to the old container still (conntrack keeps
/// the address it was given). Removing the old container before then would turn that
/// retry into a failed connection.
const DRAIN_SETTLE: Duration = Duration::from_millis(1500);

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
    /// fails. `wait.waiting` hears of each port that did not accept at the first try.
    pub(super) fn verify(&self, swap: &Swap, wait: &SwapWait) -> Result<(), KernelError> {
        let within = wait.within.unwrap_or(VERIFY_WITHIN).max(VERIFY_WITHIN);
        let deadline = Instant::now() + within;
        for readiness in &swap.verify {
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
                                (wait.waiting)(readiness);
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

    /// Waits until the containers the aliases left have no connection in use on the
    /// addresses they leave (see [`sockets::Socket::is_in_use`]), or the swap's timeout
    /// has passed.
    pub(super) fn drain(&self, swap: &Swap) -> Result<Vec<Drained>, KernelError> {
        let started = Instant::now();
        let timeout = Duration::from_millis(swap.timeout.0);
        let mut drained = Vec::new();
        std::thread::sleep(DRAIN_SETTLE.min(timeout));
        for leaving in &swap.drain {
            // A container counts as drained when two counts in a row find nothing in use,
            // so that a connection between its handshake's packets is not missed.
            let mut idle = 0;
            let object = format!("the connections of container `{}`", leaving.container);
            let remaining = loop {
                let open = match self.sockets_in(&leaving.namespace) {
                    Ok(sockets) => sockets
                        .iter()
                        .filter(|socket| socket.is_in_use())
                        .filter(|socket| leaving.addresses.iter().any(|address| socket.address == *address))
                        .count(),
                    // A container that is gone has nothing left to drain.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
                    Err(error) => return Err(KernelError::new("count", object, error)),
                };
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

    fn sockets_in(&self, namespace: &NamespaceName) -> io::Result<Vec<sockets::Socket>> {
        let file = netns::open(&self.places.namespace(namespace))?;
        netns::inside(Some(&file), sockets::read_tcp)
    }
}
