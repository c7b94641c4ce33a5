//! The sockets on one gateway, and the loops that answer them. Answers from the stack's
//! names are sent from the loop that received the query, with no task in between; a
//! query forwarded to the host's name servers and a TCP connection get a task of their
//! own, each holding a slot that the core shares among clients ([`crate::names::Slots`]),
//! so that no client can take them all.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, setsockopt, socket, sockopt,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use super::slotted::Slotted;
use super::{PORT, upstream};
use crate::names::{FORWARDS, Index, Response, TCP_CONNECTIONS, Transport, respond, unanswered};

/// How long an open TCP connection may take to send its next query, whole, counted from
/// when it opened or got its last reply. A client that asks again soon (RFC 7766) reuses
/// its connection; one that sends nothing, or a byte at a time, gives up its slot.
const QUERY_WAIT: Duration = Duration::from_secs(10);
/// How long a reply may take to be taken whole by a TCP client: one that does not read
/// would otherwise hold its connection for ever.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// What every loop reads: the names to answer from and the name servers to forward to,
/// each swapped whole by a reload; and the slots of forwarded queries and TCP
/// connections, shared among clients.
pub struct Shared {
    pub index: ArcSwap<Index>,
    pub upstreams: ArcSwap<Vec<IpAddr>>,
    forwards: Arc<Slotted>,
    connections: Arc<Slotted>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            index: ArcSwap::from_pointee(Index::default()),
            upstreams: ArcSwap::from_pointee(Vec::new()),
            forwards: Slotted::new(FORWARDS),
            connections: Slotted::new(TCP_CONNECTIONS),
        }
    }
}

/// The loops of one gateway; dropping this closes its sockets.
pub struct Listening {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Listens on port 53 of `gateway`, over UDP and TCP. The address need not exist yet
/// (`IP_FREEBIND`): a bridge that gets its address after the server starts is served
/// from that moment.
pub fn listen_on(gateway: Ipv4Addr, shared: &Arc<Shared>) -> io::Result<Listening> {
    let udp = UdpSocket::from_std(std::net::UdpSocket::from(bound(gateway, SockType::Datagram)?))?;
    let tcp = bound(gateway, SockType::Stream)?;
    listen(&tcp, Backlog::new(128).map_err(io::Error::from)?)?;
    let tcp = TcpListener::from_std(std::net::TcpListener::from(tcp))?;
    let tasks = vec![
        tokio::spawn(answer_udp(Arc::new(udp), gateway, Arc::clone(shared))),
        tokio::spawn(accept_tcp(tcp, gateway, Arc::clone(shared))),
    ];
    Ok(Listening { tasks })
}

/// A non-blocking socket bound to port 53 of `gateway`.
fn bound(gateway: Ipv4Addr, kind: SockType) -> io::Result<OwnedFd> {
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    setsockopt(&fd, sockopt::IpFreebind, &true)?;
    // A listener may bind while connections of the one before it linger; UDP takes no such
    // option, so that no other process can share its port.
    if kind == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(gateway, PORT)))?;
    Ok(fd)
}

async fn answer_udp(socket: Arc<UdpSocket>, gateway: Ipv4Addr, shared: Arc<Shared>) {
    let mut buffer = vec![0; usize::from(u16::MAX)];
    loop {
        // Errors of a datagram socket concern one datagram; the next one is served.
        let Ok((length, SocketAddr::V4(client))) = socket.recv_from(&mut buffer).await else { continue };
        let query = &buffer[..length];
        match answer(&shared, gateway, *client.ip(), Transport::Udp, query) {
            Response::Reply(reply) => {
                let _ = socket.send_to(&reply, client).await;
            }
            Response::Forward => {
                // Without a slot the query is dropped, and its client asks again.
                let (socket, upstreams, query) = (Arc::clone(&socket), shared.upstreams.load_full(), query.to_vec());
                shared.forwards.spawn(*client.ip(), async move {
                    let reply = upstream::over_udp(&upstreams, &query).await;
                    if let Some(reply) = reply.or_else(|| unanswered(&query, Transport::Udp)) {
                        let _ = socket.send_to(&reply, client).await;
                    }
                });
            }
            Response::Drop => {}
        }
    }
}

/// What to do with a query, as the core says. Should the core ever panic on a packet, the
/// packet is dropped and the loop lives on: a panic would otherwise end the loop, and with
/// it every answer on that gateway.
fn answer(shared: &Shared, gateway: Ipv4Addr, client: Ipv4Addr, transport: Transport, query: &[u8]) -> Response {
    let index = shared.index.load();
    std::panic::catch_unwind(AssertUnwindSafe(|| respond(&index, gateway, client, transport, query)))
        .unwrap_or(Response::Drop)
}

async fn accept_tcp(listener: TcpListener, gateway: Ipv4Addr, shared: Arc<Shared>) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok((stream, SocketAddr::V4(client))) => (stream, client),
            Ok(_) => continue,
            // Out of descriptors, most likely: the connections open now free some soon.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // A stranger's connection is closed unread, so that strangers cannot use up the
        // connections; one that gets no slot is closed at once too.
        if !shared.index.load().knows(gateway, *client.ip()) {
            continue;
        }
        let answering = Arc::clone(&shared);
        shared.connections.spawn(*client.ip(), async move {
            let _ = answer_tcp(stream, gateway, *client.ip(), &answering).await;
        });
    }
}

/// Answers the queries of one TCP connection, each framed by its length, until the client
/// closes it, falls idle, is too slow to send a query or take a reply, or sends what gets
/// no reply.
async fn answer_tcp(mut stream: TcpStream, gateway: Ipv4Addr, client: Ipv4Addr, shared: &Shared) -> io::Result<()> {
    loop {
        let deadline = Instant::now() + QUERY_WAIT;
        let length = timeout_at(deadline, stream.read_u16()).await.map_err(io::Error::from)??;
        let mut query = vec![0; usize::from(length)];
        timeout_at(deadline, stream.read_exact(&mut query)).await.map_err(io::Error::from)??;
        let reply = match answer(shared, gateway, client, Transport::Tcp, &query) {
            Response::Reply(reply) => reply,
            Response::Forward => {
                let upstreams = shared.upstreams.load_full();
                let reply = upstream::over_tcp(&upstreams, &query).await;
                match reply.or_else(|| unanswered(&query, Transport::Tcp)) {
                    Some(reply) => reply,
                    None => return Ok(()),
                }
            }
            Response::Drop => return Ok(()),
        };
        let length = u16::try_from(reply.len()).map_err(io::Error::other)?;
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&reply);
        timeout_at(Instant::now() + REPLY_WAIT, stream.write_all(&framed)).await.map_err(io::Error::from)??;
    }
}
