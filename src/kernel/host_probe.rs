//! Probes of published ports, from the host's own namespace, and the witnesses that prove
//! their arrival in the containers' namespaces, for `stackctl check`.
//!
//! A witness is a socket made inside a container's namespace, by a thread that joins it
//! for that; the socket stays in that namespace after the thread is gone. So one thread,
//! in the host's namespace, waits with poll(2) on the probes and the witnesses together:
//! it accepts the witnesses' connections and answers their datagrams with the run's token
//! while the probes wait for it. A connection to a port that a program of the container
//! holds is looked for among the container's sockets before it is closed.
//!
//! The probes decide nothing: which to make, and what each outcome means, comes from
//! [`crate::check::published`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrIn, accept4, bind, connect, getsockname, getsockopt,
    listen, recv, recvfrom, send, sendto, setsockopt, socket, sockopt,
};

use super::probe::{reading, socket_budget};
use super::{Kernel, KernelError, netns, sockets};
use crate::check::{Delivery, HostProbe, Outcome};
use crate::model::Protocol;
use crate::state::Scope;

/// What holds the container's end of a probe: the address and port a publication forwards
/// to, inside the container's namespace.
enum End {
    /// A witness: only its token proves arrival.
    Witness(OwnedFd),
    /// A program of the container.
    Held,
    /// Nothing can: the container does not have the address. Nothing can arrive either, and
    /// as with a witness only a token (which cannot come) would prove arrival.
    Absent,
}

/// A container's end: its protocol, address and port.
type EndKey = (Protocol, Ipv4Addr, u16);

/// A probe under way, or done.
enum Step {
    /// TCP: the handshake is under way.
    Connecting(OwnedFd),
    /// TCP: connected to a witness's port; the token read so far.
    Reading(OwnedFd, Vec<u8>),
    /// UDP: the datagram is sent.
    Sent(OwnedFd),
    /// TCP: connected to a port a program of the container holds, from `port`. The socket
    /// stays open until the container's sockets are read.
    Connected {
        _open: OwnedFd,
        port: u16,
    },
    Done(Delivery),
}

impl Kernel {
    /// Makes `probes` from the host's namespace and returns what each met, in the same
    /// order: a witness listens, for the time of the probes, on each container end that no
    /// program of the container holds. A probe with no answer by `timeout` counts as timed
    /// out (TCP), unanswered (UDP), or answered by something else (connected, without the
    /// token). Fails when a container's namespace cannot be entered, a socket cannot be
    /// opened or bound, or a probe fails in a way that says nothing about where it went.
    pub fn probe_from_host(
        &self,
        scope: &Scope,
        probes: &[HostProbe],
        timeout: Duration,
    ) -> Result<Vec<Delivery>, KernelError> {
        if probes.is_empty() {
            return Ok(Vec::new());
        }
        let token = token().map_err(|error| KernelError::new("draw", "a token for the witnesses", error))?;
        let mut wanted: BTreeMap<&str, Vec<EndKey>> = BTreeMap::new();
        for probe in probes {
            let ends = wanted.entry(&probe.container).or_default();
            let end = (probe.protocol, probe.to, probe.container_port);
            if !ends.contains(&end) {
                ends.push(end);
            }
        }
        let mut namespaces: BTreeMap<&str, File> = BTreeMap::new();
        let mut ends: BTreeMap<(&str, EndKey), End> = BTreeMap::new();
        for (container, keys) in wanted {
            let object = format!("namespace of `{container}`");
            let Some(name) = scope.namespaces.get(container) else {
                let error = io::Error::new(io::ErrorKind::NotFound, "the container has no namespace of its own");
                return Err(KernelError::new("listen as a witness in", object, error));
            };
            let path = self.places.namespace(name);
            let file = netns::open(&path)
                .map_err(|error| KernelError::new("open", format!("{object} ({})", path.display()), error))?;
            let made = netns::inside(Some(&file), || keys.iter().map(|key| end(*key)).collect::<io::Result<Vec<_>>>())
                .map_err(|error| KernelError::new("listen as a witness in", &object, error))?;
            ends.extend(keys.into_iter().zip(made).map(|(key, end)| ((container, key), end)));
            namespaces.insert(container, file);
        }

        // The sockets at once: each probe's, the witnesses' and the connections they accept.
        let at_once = (socket_budget().saturating_sub(ends.len()) / 2).max(1);
        netns::inside(self.host_file.as_ref(), || {
            let mut deliveries = Vec::with_capacity(probes.len());
            for share in probes.chunks(at_once) {
                deliveries.extend(look_in(share, exchange(share, &ends, &token, timeout)?, &namespaces)?);
            }
            Ok(deliveries)
        })
        .map_err(|error| KernelError::new("probe published ports from", "the host", error))
    }
}

/// A token for this run: what witnesses answer, and nothing else would.
fn token() -> io::Result<Vec<u8>> {
    let mut random = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut random)?;
    let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("stackctl check witness {hex}\n").into_bytes())
}

/// Makes the container's end of `key` in the namespace of the calling thread: a witness
/// bound to the address and port, unless a program holds them.
fn end((protocol, address, port): EndKey) -> io::Result<End> {
    let kind = match protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let witness = socket(AddressFamily::Inet, kind, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)?;
    // The connections a witness of an earlier run closed wait out TIME_WAIT on its port;
    // with SO_REUSEADDR they do not hold it, while a program's listener still does. UDP
    // gets no such option: it would let the witness share a program's port.
    if protocol == Protocol::Tcp {
        setsockopt(&witness, sockopt::ReuseAddr, &true)?;
    }
    match bind(witness.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(address, port))) {
        Ok(()) => {}
        Err(Errno::EADDRINUSE) => return Ok(End::Held),
        Err(Errno::EADDRNOTAVAIL) => return Ok(End::Absent),
        Err(error) => return Err(error.into()),
    }
    if protocol == Protocol::Tcp {
        listen(&witness, Backlog::MAXCONN)?;
    }
    Ok(End::Witness(witness))
}

/// Starts every probe of `probes`, then serves the witnesses and waits for the probes'
/// answers together until the deadline.
fn exchange(
    probes: &[HostProbe],
    ends: &BTreeMap<(&str, EndKey), End>,
    token: &[u8],
    timeout: Duration,
) -> io::Result<Vec<Step>> {
    let deadline = Instant::now() + timeout;
    let held = |probe: &HostProbe| {
        matches!(
            ends.get(&(probe.container.as_str(), (probe.protocol, probe.to, probe.container_port))),
            Some(End::Held)
        )
    };
    let witnesses: Vec<(&OwnedFd, Protocol)> = ends
        .iter()
        .filter_map(|((_, (protocol, ..)), end)| match end {
            End::Witness(socket) => Some((socket, *protocol)),
            End::Held | End::Absent => None,
        })
        .collect();
    // The connections the witnesses accepted, closed once every probe is settled (see
    // `close_accepted`).
    let mut accepted: Vec<OwnedFd> = Vec::new();
    let mut steps = Vec::with_capacity(probes.len());
    for probe in probes {
        steps.push(start(probe, held(probe)).map_err(|error| failed(probe, error))?);
    }
    loop {
        let waiting: Vec<(usize, BorrowedFd, PollFlags)> = steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| match step {
                // A connection that completes or fails makes the socket writable.
                Step::Connecting(socket) => Some((index, socket.as_fd(), PollFlags::POLLOUT)),
                Step::Reading(socket, _) | Step::Sent(socket) => Some((index, socket.as_fd(), PollFlags::POLLIN)),
                Step::Connected { .. } | Step::Done(_) => None,
            })
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if waiting.is_empty() || left.is_zero() {
            break;
        }
        let mut fds: Vec<PollFd> = witnesses
            .iter()
            .map(|(socket, _)| PollFd::new(socket.as_fd(), PollFlags::POLLIN))
            .chain(waiting.iter().map(|(_, socket, events)| PollFd::new(*socket, *events)))
            .collect();
        // Rounded up, so that the last wait does not spin on a deadline less than 1 ms away.
        let wait = PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
        let ready: Vec<bool> = fds.iter().map(|fd| fd.revents().is_some_and(|events| !events.is_empty())).collect();
        drop(fds);
        let woken: Vec<usize> = waiting
            .iter()
            .zip(&ready[witnesses.len()..])
            .filter_map(|((index, ..), ready)| ready.then_some(*index))
            .collect();
        drop(waiting);
        // The witnesses first, so that the tokens they send are read in this round.
        for ((socket, protocol), _) in witnesses.iter().zip(&ready).filter(|(_, ready)| **ready) {
            accepted.extend(answer(socket, *protocol, token)?);
        }
        for index in woken {
            let probe = &probes[index];
            let step = std::mem::replace(&mut steps[index], Step::Done(Delivery::NoAnswer));
            steps[index] = advance(step, probe, held(probe), token).map_err(|error| failed(probe, error))?;
        }
    }
    close_accepted(accepted);
    Ok(steps
        .into_iter()
        .map(|step| match step {
            Step::Connecting(_) => Step::Done(Delivery::TimedOut),
            // Accepted, and no token by the deadline: not the witness.
            Step::Reading(..) => Step::Done(Delivery::Elsewhere),
            Step::Sent(_) => Step::Done(Delivery::NoAnswer),
            done @ (Step::Connected { .. } | Step::Done(_)) => done,
        })
        .collect())
}

fn failed(probe: &HostProbe, error: Errno) -> io::Error {
    io::Error::other(format!("probe {}:{}/{}: {error}", probe.address, probe.port, probe.protocol))
}

/// Opens the probe's socket and starts it: TCP sends its SYN; UDP connects (which only
/// sets the peer) and sends one byte.
fn start(probe: &HostProbe, held: bool) -> Result<Step, Errno> {
    let kind = match probe.protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let socket = socket(AddressFamily::Inet, kind, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)?;
    let peer = SockaddrIn::from(SocketAddrV4::new(probe.address, probe.port));
    let settled = |error: Errno| refusal(error, probe.protocol).map(Step::Done).ok_or(error);
    match (connect(socket.as_raw_fd(), &peer), probe.protocol) {
        (Ok(()), Protocol::Tcp) => connected(socket, held),
        (Err(Errno::EINPROGRESS), Protocol::Tcp) => Ok(Step::Connecting(socket)),
        (Ok(()), Protocol::Udp) => match send(socket.as_raw_fd(), &[0], MsgFlags::empty()) {
            Ok(_) => Ok(Step::Sent(socket)),
            Err(error) => settled(error),
        },
        (Err(error), _) => settled(error),
    }
}

/// A TCP probe whose connection was accepted: it reads the token, or, to a held port,
/// waits for the container's sockets to be read.
fn connected(socket: OwnedFd, held: bool) -> Result<Step, Errno> {
    if held {
        let own: SockaddrIn = getsockname(socket.as_raw_fd())?;
        Ok(Step::Connected { _open: socket, port: own.port() })
    } else {
        Ok(Step::Reading(socket, Vec::new()))
    }
}

/// The next step of a probe whose socket `poll` reported ready.
fn advance(step: Step, probe: &HostProbe, held: bool, token: &[u8]) -> Result<Step, Errno> {
    match step {
        Step::Connecting(socket) => match getsockopt(&socket, sockopt::SocketError)? {
            0 => connected(socket, held),
            code => {
                let error = Errno::from_raw(code);
                refusal(error, Protocol::Tcp).map(Step::Done).ok_or(error)
            }
        },
        Step::Reading(socket, mut read) => {
            let mut buffer = vec![0; token.len() - read.len()];
            match recv(socket.as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT) {
                Ok(length) if length > 0 => {
                    read.extend_from_slice(&buffer[..length]);
                    if !token.starts_with(&read) {
                        Ok(Step::Done(Delivery::Elsewhere))
                    } else if read.len() == token.len() {
                        Ok(Step::Done(Delivery::Token))
                    } else {
                        Ok(Step::Reading(socket, read))
                    }
                }
                Err(Errno::EAGAIN) => Ok(Step::Reading(socket, read)),
                // Closed or reset before the whole token: not the witness.
                Ok(_) | Err(_) => Ok(Step::Done(Delivery::Elsewhere)),
            }
        }
        Step::Sent(socket) => {
            let mut buffer = vec![0; token.len() + 1];
            match recv(socket.as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT) {
                Ok(_) if held => Ok(Step::Done(Delivery::Replied)),
                Ok(length) if buffer[..length] == *token => Ok(Step::Done(Delivery::Token)),
                Ok(_) => Ok(Step::Done(Delivery::Elsewhere)),
                Err(Errno::EAGAIN) => Ok(Step::Sent(socket)),
                Err(error) => refusal(error, probe.protocol).map(Step::Done).ok_or(error),
            }
        }
        done @ (Step::Connected { .. } | Step::Done(_)) => Ok(done),
    }
}

/// What an error of a probe says, if anything: as between containers (see
/// [`reading`]); a refusal says only that something refused.
fn refusal(error: Errno, protocol: Protocol) -> Option<Delivery> {
    reading(error, protocol).map(|outcome| match outcome {
        Outcome::Refused => Delivery::Refused,
        Outcome::TimedOut => Delivery::TimedOut,
        // `reading` gives nothing else.
        Outcome::Unreachable | Outcome::Connected | Outcome::Answered | Outcome::NoAnswer => Delivery::Unreachable,
    })
}

/// A witness whose socket `poll` reported ready answers everyone waiting with the token:
/// it accepts each connection and writes the token, and returns the connections; it
/// answers each datagram.
fn answer(witness: &OwnedFd, protocol: Protocol, token: &[u8]) -> io::Result<Vec<OwnedFd>> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    let mut connections = Vec::new();
    loop {
        match protocol {
            Protocol::Tcp => match accept4(witness.as_raw_fd(), SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC) {
                Ok(accepted) => {
                    // SAFETY: accept4 returned a new descriptor, which nothing else owns.
                    let accepted = unsafe { OwnedFd::from_raw_fd(accepted) };
                    // A fresh connection's send buffer holds the token whole; a peer that
                    // has gone already is no matter.
                    let _ = send(accepted.as_raw_fd(), token, flags);
                    connections.push(accepted);
                }
                Err(Errno::EAGAIN) => return Ok(connections),
                Err(Errno::EINTR | Errno::ECONNABORTED) => {}
                Err(error) => return Err(error.into()),
            },
            Protocol::Udp => match recvfrom::<SockaddrIn>(witness.as_raw_fd(), &mut [0; 64]) {
                Ok((_, Some(peer))) => {
                    let _ = sendto(witness.as_raw_fd(), token, &peer, flags);
                }
                Ok((_, None)) | Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(connections),
                Err(error) => return Err(error.into()),
            },
        }
    }
}

/// Closes the connections the witnesses accepted with a reset, once every probe has read
/// its token or given up. A connection closed the ordinary way by its witness would wait
/// out TIME_WAIT in the container's namespace, on the container's port, for a minute: a
/// program started then, that binds the port without SO_REUSEADDR, would fail.
fn close_accepted(accepted: Vec<OwnedFd>) {
    let reset = nix::libc::linger { l_onoff: 1, l_linger: 0 };
    for connection in accepted {
        // Failing, it closes the ordinary way: the port waits, and nothing else is wrong.
        let _ = setsockopt(&connection, sockopt::Linger, &reset);
    }
}

/// The deliveries of `steps`, once the connections to held ports are looked for among
/// their containers' sockets (each container's read once); then every socket is closed.
fn look_in(probes: &[HostProbe], steps: Vec<Step>, namespaces: &BTreeMap<&str, File>) -> io::Result<Vec<Delivery>> {
    let mut tables: BTreeMap<&str, Vec<sockets::Socket>> = BTreeMap::new();
    for (probe, step) in probes.iter().zip(&steps) {
        if matches!(step, Step::Connected { .. }) && !tables.contains_key(probe.container.as_str()) {
            let namespace = namespaces.get(probe.container.as_str());
            let namespace = namespace.ok_or_else(|| io::Error::other("no namespace for a held port"))?;
            tables.insert(&probe.container, netns::inside(Some(namespace), sockets::read_tcp)?);
        }
    }
    Ok(probes
        .iter()
        .zip(steps)
        .map(|(probe, step)| match step {
            Step::Connected { port: own, .. } => {
                let found = tables[probe.container.as_str()].iter().any(|socket| {
                    socket.address == IpAddr::V4(probe.to)
                        && socket.port == probe.container_port
                        && socket.peer_port == own
                        && !socket.is_listening()
                });
                if found { Delivery::InContainer } else { Delivery::Elsewhere }
            }
            Step::Done(delivery) => delivery,
            Step::Connecting(_) | Step::Reading(..) | Step::Sent(_) => {
                unreachable!("every probe is settled by the deadline")
            }
        })
        .collect())
}
