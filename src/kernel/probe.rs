//! Probes: connections opened from inside the containers' namespaces, for `stackctl check`.
//!
//! A socket belongs to the namespace of the thread that created it, and namespace
//! membership belongs to a thread. So each source container gets a std thread of its own
//! (never one of tokio's) that joins the source's namespace, starts every connection of
//! that source at once on non-blocking sockets, and waits for all of them together with
//! poll(2) until each has its answer or the deadline has passed. Sources run side by side,
//! a batch at a time, so that a stack takes about one timeout per batch.
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
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, connect, getsockopt, recv, send, sockopt,
};

use super::{IN_FLIGHT, Kernel, KernelError, netns};
use crate::check::{Outcome, Probe};
use crate::model::Protocol;
use crate::state::Scope;

/// Open files kept free of probe sockets: the namespaces, netlink sockets, standard streams
/// and whatever else the process holds.
const RESERVED_FILES: u64 = 256;

impl Kernel {
    /// Makes `probes`, each from inside the namespace of its source, and returns their
    /// outcomes in the same order. A probe with no answer by `timeout` counts as timed out
    /// (TCP) or unanswered (UDP). Fails when a source's namespace cannot be entered or a
    /// socket cannot be opened, or a connection fails in a way that says nothing about
    /// reachability.
    pub fn probe(&self, scope: &Scope, probes: &[Probe], timeout: Duration) -> Result<Vec<Outcome>, KernelError> {
        // The probes of each source, by index, sources in order of first appearance.
        let mut sources: Vec<(&str, Vec<usize>)> = Vec::new();
        for (index, probe) in probes.iter().enumerate() {
            match sources.iter_mut().find(|(source, _)| *source == probe.source) {
                Some((_, indices)) => indices.push(index),
                None => sources.push((&probe.source, vec![index])),
            }
        }
        let budget = socket_budget();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; probes.len()];
        for batch in sources.chunks(IN_FLIGHT) {
            let mut opened = Vec::with_capacity(batch.len());
            for (source, indices) in batch {
                let object = format!("namespace of `{source}`");
                let Some(name) = scope.namespaces.get(*source) else {
                    let error = io::Error::new(io::ErrorKind::NotFound, "the container has no namespace of its own");
                    return Err(KernelError::new("probe from", object, error));
                };
                let path = self.places.namespace(name);
                let file = netns::open(&path)
                    .map_err(|error| KernelError::new("open", format!("{object} ({})", path.display()), error))?;
                let probes: Vec<&Probe> = indices.iter().map(|index| &probes[*index]).collect();
                opened.push((object, file, probes, indices));
            }
            // The open-file limit is shared by the batch's threads: each opens at most its
            // share at once, and takes one timeout per share.
            let at_once = (budget / opened.len()).max(1);
            let results: Vec<Result<Vec<Outcome>, KernelError>> = std::thread::scope(|threads| {
                let running: Vec<_> = opened
                    .iter()
                    .map(|(object, file, probes, _)| {
                        threads.spawn(move || probe_from(file, object, probes, at_once, timeout))
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

/// How many probe sockets may be open at once: the limit on open files, raised to its hard
/// limit (a probe of a large stack needs thousands of sockets at once to finish in one
/// timeout), less a reserve.
fn socket_budget() -> usize {
    let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() => hard,
        Ok((soft, _)) => soft,
        // Linux's default soft limit.
        Err(_) => 1024,
    };
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
fn reading(error: Errno, protocol: Protocol) -> Option<Outcome> {
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
