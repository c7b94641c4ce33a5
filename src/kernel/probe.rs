//! Probes: connections opened from inside the containers' namespaces, for `stackctl check`.
//!
//! A socket belongs to the namespace of the thread that created it, and namespace
//! membership belongs to a thread. So each source container gets a std thread of its own
//! (never one of tokio's) that joins the source's namespace, starts every connection of
//! that source at once on non-blocking sockets, and waits for all of them together with
//! poll(2) until each has its answer or the deadline has passed. Sources run side by side,
//! a round at a time (as many as there are threads for, and room in the kernel's neighbour
//! table), so that a stack takes about one timeout per round.
//!
//! The probes decide nothing: which connections to try, and what their outcomes mean for
//! the stack, comes from [`crate::check`].

use std::fs::File;
use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, connect, getsockopt, recv, send, sockopt,
};

use super::{IN_FLIGHT, Kernel, KernelError, netns};
use crate::check::pacing::{rounds, sources};
use crate::check::{Outcome, Probe};
use crate::model::Protocol;
use crate::state::Scope;

/// Open files kept free of probe sockets: the namespaces, netlink sockets, standard streams
/// and whatever else the process holds.
const RESERVED_FILES: u64 = 256;

/// The kernel's neighbour (ARP) table is one table for every namespace, of at most
/// `net.ipv4.neigh.default.gc_thresh3` entries (1024 unless raised). A probe straight to an
/// address on a shared network makes an entry at each end, so probing every pair of a large
/// stack at once overflows the table: the kernel then drops packets, the probes' (which
/// would read as blocked) and everyone else's on the host. So when the probes need more
/// entries than the table has room for, sources are probed in rounds that fit, this long
/// apart: an entry its source resolved stays reachable, and cannot be evicted, for up to
/// 1.5 times `base_reachable_time` (30 s by default) and then 5 s more.
const NEIGHBOUR_AGE: Duration = Duration::from_secs(50);

/// How [`Kernel::probe`] paces probes that need more neighbour entries than the kernel's
/// table has room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub rounds: usize,
    /// The time from the start of one round to the start of the next.
    pub interval: Duration,
    /// The neighbour entries the probes may make, and the room the table has for them.
    pub needed: usize,
    pub room: usize,
}

impl Kernel {
    /// How [`Kernel::probe`] will pace `probes`: `None` when they all fit in the neighbour
    /// table at once.
    pub fn pacing(&self, probes: &[Probe]) -> Option<Pacing> {
        let sources = sources(probes);
        let room = neighbour_room();
        let (rounds, paced) = rounds(&sources, room, IN_FLIGHT);
        paced.then(|| Pacing {
            rounds: rounds.len(),
            interval: NEIGHBOUR_AGE,
            needed: sources.iter().map(|source| source.neighbours).sum(),
            room,
        })
    }

    /// Makes `probes`, each from inside the namespace of its source, and returns their
    /// outcomes in the same order. A probe with no answer by `timeout` counts as timed out
    /// (TCP) or unanswered (UDP). Sources are probed side by side, a round at a time: a
    /// round takes about one timeout, and rounds are [`NEIGHBOUR_AGE`] apart when the
    /// neighbour table is too small for all of them at once. Fails when a source's
    /// namespace cannot be entered, a socket cannot be opened, or a connection fails in a
    /// way that says nothing about reachability.
    pub fn probe(&self, scope: &Scope, probes: &[Probe], timeout: Duration) -> Result<Vec<Outcome>, KernelError> {
        let sources = sources(probes);
        let (rounds, paced) = rounds(&sources, neighbour_room(), IN_FLIGHT);
        let budget = socket_budget();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; probes.len()];
        let mut previous: Option<Instant> = None;
        for round in rounds {
            if let Some(started) = previous.filter(|_| paced) {
                std::thread::sleep((started + NEIGHBOUR_AGE).saturating_duration_since(Instant::now()));
            }
            previous = Some(Instant::now());
            let mut opened = Vec::with_capacity(round.len());
            for source in round {
                let object = format!("namespace of `{}`", source.name);
                let Some(name) = scope.namespaces.get(source.name) else {
                    let error = io::Error::new(io::ErrorKind::NotFound, "the container has no namespace of its own");
                    return Err(KernelError::new("probe from", object, error));
                };
                let path = self.places.namespace(name);
                let file = netns::open(&path)
                    .map_err(|error| KernelError::new("open", format!("{object} ({})", path.display()), error))?;
                let made: Vec<&Probe> = source.probes.iter().map(|index| &probes[*index]).collect();
                opened.push((object, file, made, &source.probes));
            }
            // The open-file limit is shared by the round's threads: each opens at most its
            // share at once, and takes one timeout per share.
            let at_once = (budget / opened.len()).max(1);
            let results: Vec<Result<Vec<Outcome>, KernelError>> = std::thread::scope(|threads| {
                let running: Vec<_> = opened
                    .iter()
                    .map(|(object, file, made, _)| {
                        threads.spawn(move || probe_from(file, object, made, at_once, timeout))
                    })
                    .collect();
                running
                    .into_iter()
                    .zip(&opened)
                    .map(|(thread, (object, ..))| {
                        thread.join().unwrap_or_else(|_| {
                            Err(KernelError::new("probe from", object, io::Error::other("the probe thread panicked")))
                        })
                    })
                    .collect()
            });
            for ((.., indices), result) in opened.iter().zip(results) {
                for (index, outcome) in indices.iter().zip(result?) {
                    outcomes[*index] = Some(outcome);
                }
            }
        }
        Ok(outcomes.into_iter().map(|outcome| outcome.expect("every probe is made")).collect())
    }
}

/// How many neighbour entries the probes may make: the table's limit less its entries, and
/// less a quarter of the limit kept for the host's and the containers' own traffic. The
/// limit and the count are shown only to the initial namespace; elsewhere the kernel's
/// default limit is assumed, and an empty table.
fn neighbour_room() -> usize {
    let limit = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(1024);
    // A header line, then a line per CPU whose first field is the table's entries, in hex.
    let entries = std::fs::read_to_string("/proc/net/stat/arp_cache")
        .ok()
        .and_then(|text| {
            let first = text.lines().nth(1)?.split_whitespace().next()?.to_owned();
            usize::from_str_radix(&first, 16).ok()
        })
        .unwrap_or(0);
    limit.saturating_sub(entries).saturating_sub(limit / 4)
}

/// How many probe sockets may be open at once: the limit on open files, raised to its hard
/// limit (a probe of a large stack needs thousands of sockets at once to finish in one
/// timeout), less a reserve.
pub(super) fn socket_budget() -> usize {
    // Linux's default soft limit, when the limit cannot be read.
    let limit = super::limits::raise_open_files(super::limits::OpenFiles::AllAllowed).map_or(1024, |(soft, _)| soft);
    let budget = limit.saturating_sub(RESERVED_FILES).max(limit / 2);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// Joins `namespace` (this thread is the caller's to spend) and makes `probes` from there,
/// `at_once` at a time.
fn probe_from(
    namespace: &File,
    object: &str,
    probes: &[&Probe],
    at_once: usize,
    timeout: Duration,
) -> Result<Vec<Outcome>, KernelError> {
    setns(namespace.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|error| KernelError::new("enter", object, error))?;
    let mut outcomes = Vec::with_capacity(probes.len());
    for share in probes.chunks(at_once) {
        outcomes.extend(probe_together(share, object, timeout)?);
    }
    Ok(outcomes)
}

/// A probe under way, or done.
enum Attempt {
    Waiting(OwnedFd),
    Done(Outcome),
}

/// Starts every probe, then waits for their answers together until the deadline. Every
/// socket is closed on return.
fn probe_together(probes: &[&Probe], object: &str, timeout: Duration) -> Result<Vec<Outcome>, KernelError> {
    let deadline = Instant::now() + timeout;
    let failed = |probe: &Probe, error: Errno| {
        KernelError::new(format!("probe {}:{}/{} from", probe.address, probe.port, probe.protocol), object, error)
    };
    let mut attempts = Vec::with_capacity(probes.len());
    for probe in probes {
        attempts.push(start(probe).map_err(|error| match error {
            Failure::Socket(error) => KernelError::new("open a socket in", object, error),
            Failure::Probe(error) => failed(probe, error),
        })?);
    }
    loop {
        let waiting: Vec<(usize, &OwnedFd)> = attempts
            .iter()
            .enumerate()
            .filter_map(|(index, attempt)| match attempt {
                Attempt::Waiting(socket) => Some((index, socket)),
                Attempt::Done(_) => None,
            })
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if waiting.is_empty() || left.is_zero() {
            break;
        }
        let mut fds: Vec<PollFd> = waiting
            .iter()
            .map(|(index, socket)| {
                let events = match probes[*index].protocol {
                    // A connection that completes or fails makes the socket writable.
                    Protocol::Tcp => PollFlags::POLLOUT,
                    Protocol::Udp => PollFlags::POLLIN,
                };
                PollFd::new(socket.as_fd(), events)
            })
            .collect();
        // Rounded up, so that the last wait does not spin on a deadline less than 1 ms away.
        let wait = PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(KernelError::new("wait for probes in", object, error)),
        }
        let ready: Vec<(usize, PollFlags)> = waiting
            .iter()
            .zip(&fds)
            .filter_map(|((index, _), fd)| fd.revents().filter(|events| !events.is_empty()).map(|e| (*index, e)))
            .collect();
        drop(fds);
        for (index, events) in ready {
            let probe = probes[index];
            let Attempt::Waiting(socket) = &attempts[index] else { continue };
            if let Some(outcome) = answer(probe.protocol, socket, events).map_err(|error| failed(probe, error))? {
                attempts[index] = Attempt::Done(outcome);
            }
        }
    }
    Ok(attempts
        .into_iter()
        .zip(probes)
        .map(|(attempt, probe)| match (attempt, probe.protocol) {
            (Attempt::Done(outcome), _) => outcome,
            (Attempt::Waiting(_), Protocol::Tcp) => Outcome::TimedOut,
            (Attempt::Waiting(_), Protocol::Udp) => Outcome::NoAnswer,
        })
        .collect())
}

/// Why a probe could not be started: no socket, or an error that says nothing about
/// reachability.
enum Failure {
    Socket(Errno),
    Probe(Errno),
}

/// Opens the probe's socket and starts its connection: TCP sends its SYN; UDP connects
/// (which only sets the peer) and sends one byte, which a listener may answer and a closed
/// port answers with ICMP port unreachable.
fn start(probe: &Probe) -> Result<Attempt, Failure> {
    let kind = match probe.protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let socket =
        nix::sys::socket::socket(AddressFamily::Inet, kind, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
            .map_err(Failure::Socket)?;
    let peer = SockaddrIn::from(SocketAddrV4::new(probe.address, probe.port));
    let settled = |error: Errno| reading(error, probe.protocol).map(Attempt::Done).ok_or(Failure::Probe(error));
    match (connect(socket.as_raw_fd(), &peer), probe.protocol) {
        (Ok(()), Protocol::Tcp) => Ok(Attempt::Done(Outcome::Connected)),
        (Err(Errno::EINPROGRESS), Protocol::Tcp) => Ok(Attempt::Waiting(socket)),
        (Ok(()), Protocol::Udp) => match send(socket.as_raw_fd(), &[0], MsgFlags::empty()) {
            Ok(_) => Ok(Attempt::Waiting(socket)),
            Err(error) => settled(error),
        },
        (Err(error), _) => settled(error),
    }
}

/// The outcome of a probe whose socket `poll` reported ready with `events`, or `None` when
/// it is still waiting.
fn answer(protocol: Protocol, socket: &OwnedFd, events: PollFlags) -> Result<Option<Outcome>, Errno> {
    if protocol == Protocol::Udp && events.contains(PollFlags::POLLIN) {
        return match recv(socket.as_raw_fd(), &mut [0; 1], MsgFlags::MSG_DONTWAIT) {
            Ok(_) => Ok(Some(Outcome::Answered)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(error) => reading(error, protocol).map(Some).ok_or(error),
        };
    }
    match getsockopt(socket, sockopt::SocketError)? {
        0 if protocol == Protocol::Tcp => Ok(Some(Outcome::Connected)),
        0 => Ok(None),
        code => {
            let error = Errno::from_raw(code);
            reading(error, protocol).map(Some).ok_or(error)
        }
    }
}

/// What an error of a connection says about reachability, if anything: a refusal means the
/// destination was reached; no route, an unreachable host or network, a rejecting firewall
/// and TCP giving up mean it was not.
pub(super) fn reading(error: Errno, protocol: Protocol) -> Option<Outcome> {
    match (error, protocol) {
        (Errno::ECONNREFUSED, _) => Some(Outcome::Refused),
        (Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::EACCES | Errno::EPERM, _) => Some(Outcome::Unreachable),
        (Errno::ETIMEDOUT, Protocol::Tcp) => Some(Outcome::TimedOut),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_that_say_something_about_reachability_are_read() {
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            assert_eq!(reading(Errno::ECONNREFUSED, protocol), Some(Outcome::Refused));
            for unreachable in [Errno::EHOSTUNREACH, Errno::ENETUNREACH, Errno::EACCES, Errno::EPERM] {
                assert_eq!(reading(unreachable, protocol), Some(Outcome::Unreachable), "{unreachable}");
            }
            assert_eq!(reading(Errno::EINVAL, protocol), None);
        }
        assert_eq!(reading(Errno::ETIMEDOUT, Protocol::Tcp), Some(Outcome::TimedOut));
    }
}
